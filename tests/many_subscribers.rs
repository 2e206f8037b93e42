//! Many registered subscribers from one process: each costs rtmd one descriptor (no pidfd
//! without a SIGUSR1 handler), `rtmctl clients` lists them all (a version 4 session gets the
//! list in pages, an older one in one reply), and each receives every change, in order, both
//! from a batch (queued shared) and from single changes (queued one by one).
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::net::UnixStream;

use common::raw::{frame, read_msg, welcomed};
use common::*;
use rtm::wire::{self, ClientMsg, Event, Reply, Request, ServerMsg, Tables};

const SUBSCRIBERS: usize = 300;

fn send(s: &mut UnixStream, m: &ClientMsg) {
    s.write_all(&frame(m)).expect("write a frame");
}

/// A subscriber of the route table: its connection and the last sequence number it has.
struct Sub {
    s: UnixStream,
    last: u64,
}

fn subscribe(inst: &Instance, i: usize) -> Sub {
    let mut s = welcomed(inst, &format!("sub-{i}"), wire::PROTOCOL_VERSION);
    send(
        &mut s,
        &ClientMsg::Request {
            id: 1,
            req: Request::Subscribe {
                tables: Tables::Route,
            },
        },
    );
    let (mut subscribed, mut start) = (false, None);
    while !subscribed || start.is_none() {
        match read_msg(&mut s) {
            ServerMsg::Reply {
                id: 1,
                result: Ok(Reply::Subscribed),
            } => subscribed = true,
            ServerMsg::Events(evs) => {
                for ev in evs {
                    match ev {
                        Event::Start { seq, .. } if start.is_none() => start = Some(seq),
                        other => panic!("sub-{i}: unexpected event {other:?} before changes"),
                    }
                }
            }
            other => panic!("sub-{i}: unexpected {other:?}"),
        }
    }
    Sub {
        s,
        last: start.unwrap(),
    }
}

/// The pages of one `Clients` request on `s`: (rows, more) per reply frame.
fn clients_pages(s: &mut UnixStream) -> Vec<(Vec<String>, bool)> {
    send(
        s,
        &ClientMsg::Request {
            id: 7,
            req: Request::Clients,
        },
    );
    let mut pages = Vec::new();
    loop {
        match read_msg(s) {
            ServerMsg::Reply {
                id: 7,
                result: Ok(Reply::ClientsPage { clients, more }),
            } => {
                pages.push((clients.into_iter().map(|c| c.name).collect(), more));
                if !more {
                    return pages;
                }
            }
            ServerMsg::Reply {
                id: 7,
                result: Ok(Reply::Clients(all)),
            } => {
                pages.push((all.into_iter().map(|c| c.name).collect(), false));
                return pages;
            }
            other => panic!("unexpected answer to clients: {other:?}"),
        }
    }
}

#[test]
fn many_subscribers_are_listed_in_pages_and_each_gets_every_change() {
    let inst = Instance::start_with(&["--max-clients", "400"]);
    let pid = inst.daemon_pid();
    let fds_before = fd_count(pid);
    let mut subs: Vec<Sub> = (0..SUBSCRIBERS).map(|i| subscribe(&inst, i)).collect();

    // One descriptor each: a client without a SIGUSR1 handler leaves no pidfd open in rtmd
    // (two each would be 600). A few descriptors of rtmd's start may close meanwhile.
    let fds = fd_count(pid) - fds_before;
    assert!(
        (SUBSCRIBERS - 16..SUBSCRIBERS + 16).contains(&fds),
        "{SUBSCRIBERS} subscribers hold {fds} descriptors in rtmd"
    );

    // rtmctl lists every one of them.
    let listed = inst.ctl_json(&["clients"]);
    let names: BTreeSet<String> = listed
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = (0..SUBSCRIBERS).map(|i| format!("sub-{i}")).collect();
    assert_eq!(names, want);

    // At version 4 the list comes in pages of at most CLIENTS_CHUNK, `more` on all but the
    // last; a version 3 session gets it in one reply.
    let mut v4 = welcomed(&inst, "lister-4", wire::PROTOCOL_VERSION);
    let pages = clients_pages(&mut v4);
    let sizes: Vec<usize> = pages.iter().map(|(rows, _)| rows.len()).collect();
    let full = SUBSCRIBERS / wire::CLIENTS_CHUNK;
    let mut want_sizes = vec![wire::CLIENTS_CHUNK; full];
    want_sizes.push(SUBSCRIBERS % wire::CLIENTS_CHUNK);
    assert_eq!(sizes, want_sizes);
    assert!(pages.len() > 1, "300 subscribers span more than one page");
    let mores: Vec<bool> = pages.iter().map(|(_, more)| *more).collect();
    assert!(mores[..mores.len() - 1].iter().all(|m| *m) && !mores[mores.len() - 1]);
    let paged: BTreeSet<String> = pages.into_iter().flat_map(|(rows, _)| rows).collect();
    assert_eq!(paged, want);
    let mut v3 = welcomed(&inst, "lister-3", 3);
    let pages = clients_pages(&mut v3);
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].0.len(), SUBSCRIBERS);

    // A batch (its events queued shared by all subscribers), then single changes.
    let text: String = (0..100)
        .map(|i| format!("route add 10.{}.{}.0/24 dev eth0\n", i / 250, i % 250))
        .collect();
    assert_eq!(code(&inst.batch(&text, false)), 0);
    for i in 0..3 {
        inst.ctl_line(&format!("route add 172.16.{i}.0/24 dev eth1"));
    }
    let changes = 103;
    let start = subs[0].last;
    for (i, sub) in subs.iter_mut().enumerate() {
        assert_eq!(sub.last, start, "sub-{i} started elsewhere");
        while sub.last < start + changes {
            let ServerMsg::Events(evs) = read_msg(&mut sub.s) else {
                panic!("sub-{i}: expected events");
            };
            for ev in evs {
                match ev {
                    Event::Change { seq, .. } => {
                        assert_eq!(seq, sub.last + 1, "sub-{i}: change out of order");
                        sub.last = seq;
                    }
                    other => panic!("sub-{i}: unexpected {other:?}"),
                }
            }
        }
        assert_eq!(sub.last, start + changes, "sub-{i}");
    }
}
