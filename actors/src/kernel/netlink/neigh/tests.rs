use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::neighbour::{NeighbourCacheInfo, NeighbourState};

use super::*;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

/// A neighbour message as the kernel sends one: `ip` on link 3 in `state`, with `lladdr`.
fn msg(ip: &str, state: NeighbourState, lladdr: Option<&[u8]>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = 3;
    m.header.state = state;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            ip.parse().unwrap(),
        )));
    if let Some(l) = lladdr {
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(l.to_vec()));
    }
    m.attributes.push(NeighbourAttribute::CacheInfo(
        NeighbourCacheInfo::parse(&[0; 16]).unwrap(),
    ));
    m.attributes.push(NeighbourAttribute::Probes(0));
    m
}

/// `m` as one netlink frame of type RTM_NEWNEIGH (`new`) or RTM_DELNEIGH.
fn frame(new: bool, m: NeighbourMessage) -> Vec<u8> {
    let inner = if new {
        RouteNetlinkMessage::NewNeighbour(m)
    } else {
        RouteNetlinkMessage::DelNeighbour(m)
    };
    let mut nl = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(inner),
    );
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

fn ev(new: bool, m: NeighbourMessage) -> Option<NeighEvent> {
    event(&frame(new, m)).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn a_reachable_entry_is_a_put_and_its_deletion_a_del() {
    let m = msg("192.0.2.10", NeighbourState::Reachable, Some(&A));
    let k = KernelNeighbour {
        ip: ip("192.0.2.10"),
        ifindex: 3,
        mac: MacAddr(A),
    };
    assert_eq!(parse(&m), Ok(k));
    assert_eq!(ev(true, m.clone()), Some(NeighEvent::Put(k)));
    assert_eq!(
        ev(false, m),
        Some(NeighEvent::Del {
            ip: ip("192.0.2.10"),
            ifindex: 3
        })
    );
}

#[test]
fn every_state_with_a_mac_is_a_put() {
    for s in [
        NeighbourState::Permanent,
        NeighbourState::Noarp,
        NeighbourState::Reachable,
        NeighbourState::Stale,
        NeighbourState::Delay,
        NeighbourState::Probe,
    ] {
        let got = ev(true, msg("192.0.2.10", s, Some(&A)));
        assert!(matches!(got, Some(NeighEvent::Put(_))), "{s}: {got:?}");
    }
}

/// An entry turning FAILED (sent without NDA_LLADDR) or INCOMPLETE has no MAC any more: the
/// neighbour at its key is gone.
#[test]
fn an_entry_without_a_mac_any_more_is_a_del() {
    let del = Some(NeighEvent::Del {
        ip: ip("192.0.2.10"),
        ifindex: 3,
    });
    for (s, l) in [
        (NeighbourState::Failed, None),
        (NeighbourState::Incomplete, None),
        (NeighbourState::None, None),
        // A state without a valid MAC, whatever the message carries.
        (NeighbourState::Failed, Some(&A[..])),
        // A valid state but no address: nothing to forward to either.
        (NeighbourState::Reachable, None),
    ] {
        let m = msg("192.0.2.10", s, l);
        assert_eq!(parse(&m), Err(NeighSkip::NoMac), "{s}");
        assert_eq!(ev(true, m), del, "{s}");
    }
}

#[test]
fn each_skip_is_named() {
    let reachable = || msg("192.0.2.10", NeighbourState::Reachable, Some(&A));

    let mut v6 = reachable();
    v6.header.family = AddressFamily::Inet6;
    v6.attributes[0] =
        NeighbourAttribute::Destination(NeighbourAddress::Inet6("2001:db8::1".parse().unwrap()));
    assert_eq!(parse(&v6), Err(NeighSkip::NotInet));
    assert_eq!(ev(true, v6.clone()), None);
    assert_eq!(ev(false, v6), None);

    let mut bridge = reachable();
    bridge.header.family = AddressFamily::Bridge;
    bridge.attributes.remove(0);
    assert_eq!(parse(&bridge), Err(NeighSkip::NotInet));
    assert_eq!(ev(true, bridge), None);

    let mut no_dst = reachable();
    no_dst.attributes.remove(0);
    assert_eq!(parse(&no_dst), Err(NeighSkip::NoAddress));
    assert_eq!(ev(true, no_dst), None);

    let mut proxy = msg("192.0.2.99", NeighbourState::None, None);
    proxy.header.flags = NeighbourFlags::Proxy;
    assert_eq!(parse(&proxy), Err(NeighSkip::Proxy));
    let skipped = Some(NeighEvent::Skipped(NeighSkip::Proxy, ip("192.0.2.99"), 3));
    assert_eq!(ev(true, proxy.clone()), skipped);
    // A proxy entry deleted is no neighbour deleted.
    assert_eq!(ev(false, proxy), skipped);

    for l in [&[1, 2, 3, 4][..], &[0x80; 20][..], &[][..]] {
        let m = msg("192.0.2.10", NeighbourState::Permanent, Some(l));
        assert_eq!(parse(&m), Err(NeighSkip::NotEthernet), "{l:?}");
        assert_eq!(
            ev(true, m),
            Some(NeighEvent::Skipped(
                NeighSkip::NotEthernet,
                ip("192.0.2.10"),
                3
            ))
        );
    }

    let zero = msg("192.0.2.10", NeighbourState::Permanent, Some(&[0; 6]));
    assert_eq!(parse(&zero), Err(NeighSkip::ZeroMac));

    for a in ["0.0.0.0", "255.255.255.255", "224.0.0.5"] {
        let m = msg(a, NeighbourState::Noarp, Some(&[0x01, 0, 0x5e, 0, 0, 5]));
        assert_eq!(parse(&m), Err(NeighSkip::NotUnicastIp), "{a}");
    }

    for kind in [RouteType::Local, RouteType::Broadcast, RouteType::Multicast] {
        let mut m = msg("192.0.2.255", NeighbourState::Permanent, Some(&[0xff; 6]));
        m.header.kind = kind;
        assert_eq!(parse(&m), Err(NeighSkip::NotUnicastType), "{kind:?}");
    }

    // Every reason has its text, and says whether it ends a mirrored neighbour at its key.
    let all = [
        NeighSkip::NotInet,
        NeighSkip::NoAddress,
        NeighSkip::Proxy,
        NeighSkip::NoMac,
        NeighSkip::NotEthernet,
        NeighSkip::ZeroMac,
        NeighSkip::NotUnicastIp,
        NeighSkip::NotUnicastType,
    ];
    let texts: BTreeSet<_> = all.iter().map(|s| s.why()).collect();
    assert_eq!(texts.len(), all.len());
    let ending: Vec<_> = all.into_iter().filter(|s| s.ends_entry()).collect();
    assert_eq!(
        ending,
        [
            NeighSkip::NoMac,
            NeighSkip::NotEthernet,
            NeighSkip::ZeroMac,
            NeighSkip::NotUnicastType
        ]
    );
}

/// Frames of other types on the socket are not neighbour events.
#[test]
fn other_frames_are_none_and_garbage_an_error() {
    let mut link = netlink_packet_route::link::LinkMessage::default();
    link.header.index = 3;
    let mut nl = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)),
    );
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    assert_eq!(event(&buf).unwrap(), None);
    assert!(event(&[1, 2, 3]).is_err());
    assert!(is_neigh_type(RTM_NEWNEIGH) && is_neigh_type(RTM_DELNEIGH));
    assert!(!is_neigh_type(24));
}

/// What an IPv4 neighbour event costs in netlink bytes (the socket is charged more: each
/// datagram's whole buffer).
#[test]
fn an_ipv4_neighbour_event_is_76_bytes() {
    let f = frame(true, msg("192.0.2.10", NeighbourState::Reachable, Some(&A)));
    assert_eq!(f.len(), 76);
}

#[test]
fn a_dump_is_sorted_into_neighbours_and_skips() {
    let mut proxy = msg("192.0.2.99", NeighbourState::None, None);
    proxy.header.flags = NeighbourFlags::Proxy;
    let d = NeighDump::of([
        RouteNetlinkMessage::NewNeighbour(msg("192.0.2.10", NeighbourState::Stale, Some(&A))),
        RouteNetlinkMessage::NewNeighbour(msg("192.0.2.11", NeighbourState::Failed, None)),
        RouteNetlinkMessage::NewNeighbour(proxy),
    ]);
    assert_eq!(
        d.neighbours,
        [KernelNeighbour {
            ip: ip("192.0.2.10"),
            ifindex: 3,
            mac: MacAddr(A)
        }]
    );
    assert_eq!(
        d.skipped,
        [
            (NeighSkip::NoMac, ip("192.0.2.11"), 3),
            (NeighSkip::Proxy, ip("192.0.2.99"), 3)
        ]
    );
    match dump_request() {
        RouteNetlinkMessage::GetNeighbour(m) => {
            assert_eq!(m.header.family, AddressFamily::Inet);
            assert!(!m.header.flags.contains(NeighbourFlags::Proxy));
        }
        other => panic!("{other:?}"),
    }
}

// --- Against the kernel, in a network namespace of the test's own ---

/// Set in the child the test runs inside the namespace (`ip netns exec`): it dumps and prints.
const CHILD: &str = "RTM_NEIGH_DUMP_IN_NETNS";

/// A network namespace of the test's own, deleted on drop (also when the test fails).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ns = Netns(format!("rtm-neigh-{}-{n}", std::process::id()));
        ns.ip(&["netns", "add", &ns.0], false);
        ns
    }

    /// `ip [-n NS] ARGS`, which must succeed; its output.
    fn ip(&self, args: &[&str], inside: bool) -> String {
        let mut c = Command::new("timeout");
        c.args(["30", "ip"]);
        if inside {
            c.args(["-n", &self.0]);
        }
        let o = c.args(args).output().expect("ip");
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .args(["30", "ip", "netns", "del", &self.0])
            .status();
    }
}

/// Why the namespace test cannot run here, if it cannot.
fn unsupported() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root to make a network namespace");
    }
    let ip = Command::new("timeout").args(["30", "ip", "-V"]).output();
    if !ip.is_ok_and(|o| o.status.success()) {
        return Some("needs `ip` (iproute2)");
    }
    None
}

/// Runs the test `name` of this module again, as a child inside `ns` (with [`CHILD`] set), and
/// returns what it printed; fails if the child failed.
fn run_inside(ns: &Netns, name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let name = format!("{}::{name}", module_path!().split_once("::").unwrap().1);
    let o = Command::new("timeout")
        .args(["60", "ip", "netns", "exec", &ns.0])
        .arg(&exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "child: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// In the child: dump the links and neighbours of the namespace it runs in and print them.
fn dump_child() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (links, d) = rt.block_on(async {
        (
            super::super::dump_links().await.unwrap(),
            super::super::dump_neighbours().await.unwrap(),
        )
    });
    for l in links {
        println!("LINK {} {}", l.index, l.name);
    }
    for n in d.neighbours {
        println!("NEIGH {} {} {}", n.ip, n.ifindex, n.mac);
    }
    for (why, ip, i) in d.skipped {
        println!("SKIP {ip} {i} {why:?}");
    }
}

/// The dump, run in a namespace with a veth pair and neighbours of every kind, finds what
/// `ip -j neigh show nud all` lists there, less what it does not mirror, each for its reason.
#[test]
fn the_dump_matches_ip_neigh_in_a_namespace() {
    if std::env::var_os(CHILD).is_some() {
        dump_child();
        return;
    }
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = Netns::new();
    let ip_in = |cmd: &str| {
        ns.ip(&cmd.split_whitespace().collect::<Vec<_>>(), true);
    };
    for c in [
        "link add va type veth peer name vb",
        "link set va up",
        "link set vb up",
        "addr add 192.0.2.1/24 dev va",
        "addr add 198.51.100.1/24 dev vb",
        "neigh add 192.0.2.10 lladdr 02:00:00:00:00:0a nud permanent dev va",
        // One MAC for two addresses.
        "neigh add 192.0.2.11 lladdr 02:00:00:00:00:0b nud reachable dev va",
        "neigh add 192.0.2.12 lladdr 02:00:00:00:00:0b nud stale dev va",
        "neigh add 192.0.2.13 lladdr 02:00:00:00:00:0d nud noarp dev va",
        // One address on two links.
        "neigh add 192.0.2.10 lladdr 02:00:00:00:00:1a nud reachable dev vb",
        "neigh add 198.51.100.10 lladdr 02:00:00:00:00:0b nud permanent dev vb",
        // Not mirrored: no MAC, proxy, zero MAC, multicast, the link's own address, the
        // subnet's broadcast.
        "neigh add 192.0.2.14 nud incomplete dev va",
        "neigh add proxy 192.0.2.99 dev va",
        "neigh add 192.0.2.70 lladdr 00:00:00:00:00:00 nud permanent dev va",
        "neigh add 224.0.0.5 lladdr 01:00:5e:00:00:05 nud permanent dev va",
        "neigh add 192.0.2.1 lladdr 02:00:00:00:00:01 nud permanent dev va",
        "neigh add 192.0.2.255 lladdr ff:ff:ff:ff:ff:ff nud permanent dev va",
    ] {
        ip_in(c);
    }

    let out = run_inside(&ns, "the_dump_matches_ip_neigh_in_a_namespace");
    let mut links = BTreeMap::new();
    let (mut got, mut skipped) = (BTreeSet::new(), BTreeMap::new());
    for l in out.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["LINK", i, name] => {
                links.insert(i.to_string(), name.to_string());
            }
            ["NEIGH", ip, i, mac] => {
                got.insert((ip.to_string(), i.to_string(), mac.to_string()));
            }
            ["SKIP", ip, i, why] => {
                skipped.insert((ip.to_string(), i.to_string()), why.to_string());
            }
            _ => {}
        }
    }
    let got: BTreeSet<(String, String, String)> = got
        .into_iter()
        .map(|(ip, i, mac)| (ip, links[&i].clone(), mac))
        .collect();
    let skipped: BTreeMap<(String, String), String> = skipped
        .into_iter()
        .map(|((ip, i), why)| ((ip, links[&i].clone()), why))
        .collect();

    // What `ip` lists with a MAC in a state of NUD_VALID, a unicast address, not all zero.
    let listed: serde_json::Value =
        serde_json::from_str(&ns.ip(&["-j", "-4", "neigh", "show", "nud", "all"], true)).unwrap();
    let mut want = BTreeSet::new();
    for e in listed.as_array().unwrap() {
        let (Some(dst), Some(dev), Some(mac)) =
            (e["dst"].as_str(), e["dev"].as_str(), e["lladdr"].as_str())
        else {
            continue;
        };
        let states: Vec<&str> = e["state"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        let no_mac = states
            .iter()
            .any(|s| matches!(*s, "FAILED" | "INCOMPLETE" | "NONE"));
        if no_mac
            || mac == "00:00:00:00:00:00"
            || unicast_next_hop("neighbour", dst.parse().unwrap()).is_err()
            // The kernel types these local and broadcast (asserted below).
            || ["192.0.2.1", "192.0.2.255"].contains(&dst)
        {
            continue;
        }
        want.insert((dst.to_string(), dev.to_string(), mac.to_lowercase()));
    }
    assert_eq!(got, want);
    assert_eq!(want.len(), 6, "{want:?}");

    let why = |ip: &str, dev: &str| skipped.get(&(ip.to_string(), dev.to_string())).cloned();
    assert_eq!(why("192.0.2.14", "va").as_deref(), Some("NoMac"));
    assert_eq!(why("192.0.2.70", "va").as_deref(), Some("ZeroMac"));
    assert_eq!(why("224.0.0.5", "va").as_deref(), Some("NotUnicastIp"));
    assert_eq!(why("192.0.2.1", "va").as_deref(), Some("NotUnicastType"));
    assert_eq!(why("192.0.2.255", "va").as_deref(), Some("NotUnicastType"));
    // Proxy entries are not in a neighbour dump at all.
    assert_eq!(why("192.0.2.99", "va"), None);
    drop(ns);
}

/// The kernel's events, read from a socket joined with [`join`] and decoded with [`event`],
/// keep the mirror's neighbours equal to the kernel's through adds, a MAC change, a state
/// flip, a proxy entry, an entry turning FAILED, a link renamed while up, a link set down
/// (and its peer losing its carrier) and a link deleted.
#[test]
fn events_keep_the_mirror_equal_to_the_kernel_in_a_namespace() {
    if std::env::var_os(CHILD).is_some() {
        events_child();
        return;
    }
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = Netns::new();
    for c in [
        "link add va type veth peer name vb",
        "link set va up",
        "link set vb up",
        "addr add 192.0.2.1/24 dev va",
        "addr add 198.51.100.1/24 dev vb",
    ] {
        ns.ip(&c.split_whitespace().collect::<Vec<_>>(), true);
    }
    let out = run_inside(
        &ns,
        "events_keep_the_mirror_equal_to_the_kernel_in_a_namespace",
    );
    println!("{out}");
    assert!(out.contains("EVENTS DONE"), "{out}");
    drop(ns);
}

/// One step of the event test: what the mirror changed, and how many neighbour events the
/// kernel sent.
struct Step {
    changes: Vec<String>,
    neigh_events: usize,
}

/// In the child, inside the namespace.
fn events_child() {
    use std::collections::HashMap;
    use std::time::Duration;

    use netlink_sys::protocols::NETLINK_ROUTE;
    use netlink_sys::AsyncSocketExt;

    use crate::kernel::netlink::Link;
    use crate::kernel::reconcile::neigh::{NeighChange, Neighbours};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = TokioSocket::new(NETLINK_ROUTE).unwrap();
        s.socket_mut().bind_auto().unwrap();
        join(&s).unwrap();
        s.socket_ref().add_membership(1).unwrap(); // RTNLGRP_LINK

        let mut links: HashMap<u32, Link> = super::super::dump_links()
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.index, l))
            .collect();
        let mut mirror = Neighbours::default();
        let d = super::super::dump_neighbours().await.unwrap();
        assert_eq!(mirror.reconcile(d.neighbours, &links), []);

        let shown = |c: &NeighChange| match c {
            NeighChange::Put(n) => format!("put {n}"),
            NeighChange::Del(k) => format!("del {k}"),
        };
        let ip = |cmd: &str| {
            let st = Command::new("timeout")
                .args(["10", "ip"])
                .args(cmd.split_whitespace())
                .status()
                .unwrap();
            assert!(st.success(), "ip {cmd}");
        };

        // Runs `cmds`, then applies every event heard for `wait`.
        let mut step = async |cmds: &[&str], wait: Duration| -> Step {
            for c in cmds {
                ip(c);
            }
            let mut out = Step {
                changes: Vec::new(),
                neigh_events: 0,
            };
            let end = tokio::time::Instant::now() + wait;
            while let Ok(r) = tokio::time::timeout_at(end, s.recv_from_full()).await {
                let (data, _) = r.unwrap();
                // What the mirror's task does with a datagram (`neighbours::follow`).
                let (heard, bad) = side_events(&data);
                assert_eq!(bad, 0);
                for h in heard {
                    let changes = match h {
                        NeighSide::Neigh(e) => {
                            out.neigh_events += 1;
                            mirror.event(e, &links)
                        }
                        NeighSide::Link(l) => {
                            links.insert(l.index, l.clone());
                            mirror.link(&l)
                        }
                        NeighSide::LinkRemoved(i) => {
                            links.remove(&i);
                            mirror.link_removed(i)
                        }
                    };
                    out.changes.extend(changes.iter().map(shown));
                }
            }
            println!(
                "STEP {cmds:?}: {:?} ({} neighbour events)",
                out.changes, out.neigh_events
            );
            out
        };
        let short = Duration::from_millis(500);

        let a = step(
            &[
                "neigh add 192.0.2.10 lladdr 02:00:00:00:00:0a nud permanent dev va",
                "neigh add 192.0.2.11 lladdr 02:00:00:00:00:0b nud reachable dev va",
                "neigh add 192.0.2.12 lladdr 02:00:00:00:00:0b nud reachable dev vb",
                "neigh add 198.51.100.20 lladdr 02:00:00:00:00:2a nud permanent dev vb",
            ],
            short,
        )
        .await;
        assert_eq!(
            a.changes,
            [
                "put 192.0.2.10 dev va lladdr 02:00:00:00:00:0a",
                "put 192.0.2.11 dev va lladdr 02:00:00:00:00:0b",
                "put 192.0.2.12 dev vb lladdr 02:00:00:00:00:0b",
                "put 198.51.100.20 dev vb lladdr 02:00:00:00:00:2a",
            ]
        );

        let b = step(
            &["neigh replace 192.0.2.11 lladdr 02:00:00:00:00:0c nud reachable dev va"],
            short,
        )
        .await;
        assert_eq!(
            b.changes,
            ["put 192.0.2.11 dev va lladdr 02:00:00:00:00:0c"]
        );

        // A state flip: the kernel tells it, rtm hears nothing.
        let c = step(
            &["neigh replace 192.0.2.11 lladdr 02:00:00:00:00:0c nud stale dev va"],
            short,
        )
        .await;
        assert!(c.neigh_events > 0);
        assert_eq!(c.changes, Vec::<String>::new());

        let d = step(
            &[
                "neigh add proxy 192.0.2.11 dev va",
                "neigh del proxy 192.0.2.11 dev va",
            ],
            short,
        )
        .await;
        // Linux 6.18 sends no event for a proxy entry made or deleted; one that did would
        // change nothing either.
        assert_eq!(d.changes, Vec::<String>::new());

        // The stale entry is used, probed once quickly, and fails: a delete.
        for (k, v) in [
            ("delay_first_probe_time", "1"),
            ("retrans_time_ms", "100"),
            ("ucast_solicit", "1"),
            ("mcast_solicit", "1"),
            ("app_solicit", "0"),
        ] {
            std::fs::write(format!("/proc/sys/net/ipv4/neigh/va/{k}"), v).unwrap();
        }
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        udp.send_to(b"x", "192.0.2.11:9").unwrap();
        let e = step(&[], Duration::from_secs(3)).await;
        assert_eq!(e.changes, ["del 192.0.2.11 dev va"]);

        // Renamed while up (Linux 6.18 allows it for a veth): the neighbours stay, and the
        // kernel sends only the link's RTM_NEWLINK. rtm moves them to the new name, and back.
        let renamed = Command::new("timeout")
            .args(["10", "ip", "link", "set", "vb", "name", "vc"])
            .status()
            .unwrap();
        if renamed.success() {
            let mut r = step(&[], short).await;
            assert_eq!(r.neigh_events, 0);
            r.changes.sort();
            assert_eq!(
                r.changes,
                [
                    "del 192.0.2.12 dev vb",
                    "del 198.51.100.20 dev vb",
                    "put 192.0.2.12 dev vc lladdr 02:00:00:00:00:0b",
                    "put 198.51.100.20 dev vc lladdr 02:00:00:00:00:2a",
                ]
            );
            let mut back = step(&["link set vc name vb"], short).await;
            back.changes.sort();
            assert_eq!(
                back.changes,
                [
                    "del 192.0.2.12 dev vc",
                    "del 198.51.100.20 dev vc",
                    "put 192.0.2.12 dev vb lladdr 02:00:00:00:00:0b",
                    "put 198.51.100.20 dev vb lladdr 02:00:00:00:00:2a",
                ]
            );
        } else {
            println!("this kernel does not rename a link that is up: rename step skipped");
        }

        // Down: the link's neighbours go, PERMANENT too; its peer loses its carrier and with it
        // its neighbours but the PERMANENT ones.
        let mut f = step(&["link set va down"], short).await;
        f.changes.sort();
        assert_eq!(
            f.changes,
            ["del 192.0.2.10 dev va", "del 192.0.2.12 dev vb"]
        );

        // Deleted: whatever was on either end of the pair goes.
        let mut g = step(
            &[
                "link set va up",
                "neigh add 192.0.2.30 lladdr 02:00:00:00:00:30 nud permanent dev va",
                "link del va",
            ],
            short,
        )
        .await;
        g.changes.sort();
        assert_eq!(
            g.changes,
            [
                "del 192.0.2.30 dev va",
                "del 198.51.100.20 dev vb",
                "put 192.0.2.30 dev va lladdr 02:00:00:00:00:30",
            ]
        );

        // The mirror equals a fresh dump.
        let d = super::super::dump_neighbours().await.unwrap();
        assert_eq!(mirror.reconcile(d.neighbours, &links), []);
        assert_eq!(mirror.held(), 0);
        println!("EVENTS DONE");
    });
}
