//! docs/guarantees.md §10 against the real `rtmd`: hostile sessions of the kind the
//! `daemon_requests` fuzz target produces, written byte for byte to the socket. Each session is
//! answered or closed (never left hanging), every frame the daemon sends decodes, and afterwards
//! the daemon still answers on a fresh connection with its tables consistent.
//!
//! Sessions saved from fuzzing (`RTM_FUZZ_WIRE_OUT`, see fuzz/README.md) go in
//! `fuzz/regressions/daemon_requests/*.wire` and are replayed here too.
#![forbid(unsafe_code)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rtm::wire::{
    self, Caps, ClientMsg, DebugAction, DebugTarget, Failure, Hello, Op, Reply, Request, ServerMsg,
    Tables,
};
use rtm::{ArpEntry, IfName, MacAddr, Prefix, Route};

const SENTINEL: u32 = u32::MAX;

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn frame(m: &ClientMsg) -> Vec<u8> {
    framed(&wire::encode(m).unwrap())
}

fn hello(version: u16, name: &str) -> Vec<u8> {
    frame(&ClientMsg::Hello(Hello {
        version,
        name: name.into(),
        caps: Caps { sigusr1: false },
    }))
}

fn req(id: u32, req: Request) -> Vec<u8> {
    frame(&ClientMsg::Request { id, req })
}

fn read_exact(s: &mut UnixStream, buf: &mut [u8], end: Instant, what: &str) -> bool {
    let mut got = 0;
    while got < buf.len() {
        assert!(
            Instant::now() < end,
            "{what}: the daemon neither answered nor closed"
        );
        match s.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: read: {e}"),
        }
    }
    true
}

/// Writes `bytes`, a sentinel `Status` and a half-close; returns every message the daemon
/// sent until the sentinel's reply or EOF.
fn session(inst: &Instance, bytes: Vec<u8>, what: &str) -> Vec<ServerMsg> {
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(DEADLINE)).unwrap();
    let writer = thread::spawn(move || {
        let _ = w.write_all(&bytes);
        let _ = w.write_all(&req(SENTINEL, Request::Status));
        let _ = w.shutdown(Shutdown::Write);
    });
    let end = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if !read_exact(&mut s, &mut len, end, what) {
            break;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if !read_exact(&mut s, &mut body, end, what) {
            break;
        }
        let msg = wire::decode::<ServerMsg>(&body)
            .unwrap_or_else(|e| panic!("{what}: undecodable frame from the daemon: {e}"));
        let done = matches!(msg, ServerMsg::Reply { id: SENTINEL, .. });
        got.push(msg);
        if done {
            break;
        }
    }
    writer.join().unwrap();
    got
}

fn replies(msgs: &[ServerMsg]) -> Vec<(u32, Result<Reply, Failure>)> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Reply { id, result } if *id != SENTINEL => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

fn answered_sentinel(msgs: &[ServerMsg]) -> bool {
    msgs.iter()
        .any(|m| matches!(m, ServerMsg::Reply { id: SENTINEL, .. }))
}

/// The daemon answers on a fresh connection and its counts agree with `show`.
fn healthy(inst: &Instance, what: &str) {
    let st = inst.ctl_json(&["status"]);
    let routes = inst.ctl_json(&["route", "show"]);
    let arps = inst.ctl_json(&["arp", "show"]);
    assert_eq!(
        st["routes"].as_u64(),
        Some(routes.as_array().unwrap().len() as u64),
        "{what}: {st}"
    );
    assert_eq!(
        st["arps"].as_u64(),
        Some(arps.as_array().unwrap().len() as u64),
        "{what}: {st}"
    );
    assert!(
        st["routes"].as_u64() <= st["route_capacity"].as_u64(),
        "{what}: {st}"
    );
    let r = &st["restarts"];
    for k in ["route", "arp", "broker", "listener"] {
        assert_eq!(r[k], 0, "{what}: an actor was restarted: {st}");
    }
}

fn route(dst: &str, dev: Option<&str>) -> Route {
    Route {
        dst: dst.parse::<Prefix>().unwrap(),
        via: None,
        dev: dev.map(|d| d.parse::<IfName>().unwrap()),
        metric: 0,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

#[test]
fn hostile_sessions_are_answered_or_closed_and_leave_the_daemon_healthy() {
    let inst = Instance::start_with(&["--max-frame", "65536"]);
    let v = wire::PROTOCOL_VERSION;

    // A request before Hello closes the session without an answer.
    let got = session(&inst, req(1, Request::Status), "request before hello");
    assert!(
        replies(&got).is_empty() && !answered_sentinel(&got),
        "{got:?}"
    );
    healthy(&inst, "request before hello");

    // A second Hello is out of order: closed.
    let got = session(&inst, [hello(v, "a"), hello(v, "b")].concat(), "two hellos");
    assert!(!answered_sentinel(&got), "{got:?}");

    // Versions the daemon does not speak are refused.
    for version in [0, u16::MAX] {
        let got = session(&inst, hello(version, "old"), "version");
        assert!(
            matches!(
                got.as_slice(),
                [ServerMsg::Refused(Failure::Version { .. })]
            ),
            "{version}: {got:?}"
        );
    }

    // A route without a next hop, on the wire where the CLI cannot send it: refused.
    let bad = Route {
        dst: "10.7.0.0/16".parse().unwrap(),
        via: None,
        dev: None,
        metric: 0,
        nexthops: Vec::new(),
        origin: Default::default(),
    };
    let got = session(
        &inst,
        [hello(v, "x"), req(1, Request::Apply(Op::RouteAdd(bad)))].concat(),
        "no next hop",
    );
    assert!(
        matches!(replies(&got).as_slice(), [(1, Err(Failure::Invalid(_)))]),
        "{got:?}"
    );
    assert_eq!(inst.ctl_line("route show"), "");

    // A gateway or neighbour that cannot be a next hop, on the wire where the CLI refuses it
    // before sending: the daemon refuses it too, naming the value.
    let multicast_gw = Route {
        dst: "10.8.0.0/16".parse().unwrap(),
        via: Some("224.0.0.1".parse().unwrap()),
        dev: None,
        metric: 0,
        nexthops: Vec::new(),
        origin: Default::default(),
    };
    let group_mac = ArpEntry {
        mac: "01:00:5e:00:00:01".parse().unwrap(),
        ip: "192.0.2.9".parse().unwrap(),
        dev: None,
    };
    let got = session(
        &inst,
        [
            hello(v, "x"),
            req(1, Request::Apply(Op::RouteAdd(multicast_gw))),
            req(2, Request::Apply(Op::ArpAdd(group_mac))),
        ]
        .concat(),
        "not a next hop",
    );
    match replies(&got).as_slice() {
        [(1, Err(Failure::Invalid(r))), (2, Err(Failure::Invalid(a)))] => {
            assert!(r.contains("224.0.0.1 is a multicast address"), "{r}");
            assert!(
                a.contains("01:00:5e:00:00:01 is a multicast address"),
                "{a}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(inst.ctl_line("route show"), "");
    assert_eq!(inst.ctl_line("arp show"), "");

    // Batches past the table's capacity with --force: the table fills, the rest is refused,
    // nothing else changes. (Two frames: each stays under --max-frame.)
    let batch = |id: u32, from: u32| {
        let ops: Vec<Op> = (from..from + 4100)
            .map(|i| {
                let a = std::net::Ipv4Addr::from(0x0a00_0000 | (i << 8));
                Op::RouteAdd(route(&format!("{a}/24"), Some("eth0")))
            })
            .collect();
        let f = req(id, Request::Batch { ops, force: true });
        assert!(f.len() < 65_536, "{}", f.len());
        f
    };
    let got = session(
        &inst,
        [hello(v, "x"), batch(2, 0), batch(3, 4100)].concat(),
        "batch past capacity",
    );
    match replies(&got).as_slice() {
        [(
            2,
            Ok(Reply::Batch {
                applied: 4100,
                failures: f1,
            }),
        ), (
            3,
            Ok(Reply::Batch {
                applied: 4092,
                failures,
            }),
        )] => {
            assert!(f1.is_empty(), "{f1:?}");
            assert_eq!(failures.len(), 8);
            assert!(failures
                .iter()
                .all(|f| matches!(f.failure, Failure::Full { .. })));
        }
        other => panic!("batch past capacity: {other:?}"),
    }
    healthy(&inst, "batch past capacity");
    inst.ctl_line("flush");

    // A frame over --max-frame closes the session; so does an empty frame and a frame that
    // holds a server message.
    let big = req(
        3,
        Request::Batch {
            ops: vec![Op::ArpDel(MacAddr([2, 0, 0, 0, 0, 1])); 20_000],
            force: false,
        },
    );
    assert!(big.len() > 65_536);
    for (what, bytes) in [
        ("oversized frame", [hello(v, "x"), big].concat()),
        ("empty frame", [hello(v, "x"), framed(&[])].concat()),
        (
            "server message",
            [
                hello(v, "x"),
                framed(&wire::encode(&ServerMsg::Events(vec![wire::Event::Bye])).unwrap()),
            ]
            .concat(),
        ),
        (
            "half a frame",
            [hello(v, "x"), vec![0, 0, 0, 9, 1]].concat(),
        ),
    ] {
        let got = session(&inst, bytes, what);
        assert!(!answered_sentinel(&got), "{what}: {got:?}");
        healthy(&inst, what);
    }

    // Subscribing twice, deregistering and talking on, debug hooks in a build without them.
    let got = session(
        &inst,
        [
            hello(v, "x"),
            req(
                4,
                Request::Subscribe {
                    tables: Tables::All,
                },
            ),
            req(
                5,
                Request::Subscribe {
                    tables: Tables::Route,
                },
            ),
            req(
                6,
                Request::Debug(DebugAction::Stall {
                    target: DebugTarget::Route,
                    ms: 0,
                }),
            ),
            req(7, Request::Deregister),
            // Answered on the spot (no table involved) if the session still took it.
            req(
                8,
                Request::Debug(DebugAction::Stall {
                    target: DebugTarget::Session,
                    ms: 0,
                }),
            ),
            req(9, Request::Status),
        ]
        .concat(),
        "subscribe twice, debug, deregister",
    );
    let r = replies(&got);
    assert!(matches!(r[0], (4, Ok(Reply::Subscribed))), "{r:?}");
    assert!(matches!(r[1], (5, Err(Failure::Invalid(_)))), "{r:?}");
    // Only a build with the test hooks carries a debug request out.
    if cfg!(feature = "fault-injection") {
        assert!(matches!(r[2], (6, Ok(Reply::Done { .. }))), "{r:?}");
    } else {
        assert!(matches!(r[2], (6, Err(Failure::Unsupported(_)))), "{r:?}");
    }
    assert!(matches!(r[3], (7, Ok(Reply::Deregistered))), "{r:?}");
    assert_eq!(r.len(), 4, "answered after Deregister: {r:?}");
    healthy(&inst, "subscribe twice");
    inst.eventually("no client left registered", || {
        inst.client_names().is_empty()
    });

    // Sessions saved by the fuzzer.
    replay_saved(&inst);
}

fn replay_saved(inst: &Instance) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/daemon_requests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wire"))
        .collect();
    files.sort();
    for f in files {
        let what = f.display().to_string();
        session(inst, std::fs::read(&f).unwrap(), &what);
        healthy(inst, &what);
        inst.ctl_line("flush");
    }
}
