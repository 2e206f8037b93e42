//! Multipath routes in the route file: next-hop groups shared by their contents and freed with
//! their last route, their members shared with single-path routes, the whole group for a
//! reader, a member picked by flow hash in proportion to the weights, and the header's
//! `incompat` bit that keeps readers which do not know groups away.

use std::net::Ipv4Addr;

use super::{dir, lookup, p, routes_at};
use crate::shm::route::view::group_records;
use crate::shm::{Planned, RouteReader, TableReader, TableWriter};
use crate::types::{Hop, Prefix, Route};

fn hop(via: [u8; 4], dev: &str, weight: u16) -> Hop {
    Hop {
        via: Some(Ipv4Addr::from(via)),
        dev: Some(dev.parse().unwrap()),
        weight,
    }
}

fn incompat(path: &std::path::Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    u64::from_le_bytes(b[176..184].try_into().unwrap())
}

/// How many of `n` hashes spread evenly over the hash space each member of the route through
/// record `i` takes.
fn spread(r: &RouteReader, i: u32, members: usize, n: u64) -> Vec<u64> {
    let g = r.group(i).unwrap().expect("a group");
    let mut counts = vec![0u64; members];
    for k in 0..n {
        let hash = ((k << 32) / n) as u32;
        let path = r.nexthop_for(i, hash).unwrap();
        let m = g
            .hops
            .iter()
            .position(|h| (h.via, h.dev) == (path.via, path.dev))
            .expect("a member");
        assert_eq!(path.metric, g.metric);
        counts[m] += 1;
    }
    counts
}

#[test]
fn groups_are_shared_spread_by_weight_and_freed() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 100);
    let mut r = RouteReader::open(&path).unwrap();
    assert_eq!(incompat(&path), 0, "no group, no incompat bit");

    let (x, y) = (
        hop([192, 0, 2, 1], "eth0", 1),
        hop([192, 0, 2, 2], "eth1", 3),
    );
    let a = Route::multipath(p("10.0.0.0/8"), 5, vec![x, y]);
    w.upsert(&a, 1).unwrap();
    // The first group republishes the file with the bit set: this reader moves to it.
    assert_eq!(incompat(&path), 1);
    assert!(r.is_retired());
    assert!(r.refresh().unwrap());
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 9, 9, 9)), Some(a.clone()));
    assert_eq!(r.get(&a.dst).unwrap().entry, a);
    // Two member records, and the group's head and one member record.
    assert_eq!(w.nexthops_in_use(), 2 + group_records(2));
    let ia = r
        .lookup_nh(Ipv4Addr::new(10, 0, 0, 1))
        .unwrap()
        .unwrap()
        .nexthop;
    let g = r.group(ia).unwrap().unwrap();
    assert_eq!((g.metric, g.hops.clone()), (5, vec![x, y]));
    // Weights 1 and 3: a quarter and three quarters of the flows.
    assert_eq!(spread(&r, ia, 2, 1024), vec![256, 768]);
    for hash in [0, 1 << 30, (1 << 30) + 1, u32::MAX] {
        let (at, path) = r
            .lookup_path(Ipv4Addr::new(10, 2, 3, 4), hash)
            .unwrap()
            .unwrap();
        assert_eq!((at.dst, at.nexthop), (a.dst, ia));
        assert_eq!(path, r.nexthop_for(ia, hash).unwrap());
        let want = if hash < 1 << 30 { &x } else { &y };
        assert_eq!(
            (path.via, path.dev, path.metric),
            (want.via, want.dev, 5),
            "{hash:#x}"
        );
    }
    assert_eq!(r.lookup_path(Ipv4Addr::new(11, 0, 0, 1), 7).unwrap(), None);

    // The same paths share the group; a single-path route through a member (metric 0)
    // shares the member's record.
    let b = Route::multipath(p("10.1.0.0/16"), 5, vec![x, y]);
    let c = Route::new(p("192.0.2.0/24"), x.via, x.dev, 0);
    w.upsert(&b, 2).unwrap();
    w.upsert(&c, 3).unwrap();
    assert_eq!(w.nexthops_in_use(), 2 + group_records(2));
    let ib = r
        .lookup_nh(Ipv4Addr::new(10, 1, 0, 1))
        .unwrap()
        .unwrap()
        .nexthop;
    assert_eq!(ia, ib, "one group for both routes");
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 1, 2, 3)), Some(b.clone()));
    assert_eq!(lookup(&r, Ipv4Addr::new(192, 0, 2, 9)), Some(c.clone()));
    assert!(r
        .group(
            r.lookup_nh(Ipv4Addr::new(192, 0, 2, 9))
                .unwrap()
                .unwrap()
                .nexthop
        )
        .unwrap()
        .is_none());

    // Other weights are another group; the old one stays for b.
    let a2 = Route::multipath(
        a.dst,
        5,
        vec![
            hop([192, 0, 2, 1], "eth0", 2),
            hop([192, 0, 2, 2], "eth1", 2),
        ],
    );
    w.upsert(&a2, 4).unwrap();
    assert_eq!(w.nexthops_in_use(), 2 + 2 * group_records(2));
    let ia2 = r
        .lookup_nh(Ipv4Addr::new(10, 0, 0, 1))
        .unwrap()
        .unwrap()
        .nexthop;
    assert_ne!(ia2, ib);
    assert_eq!(spread(&r, ia2, 2, 1024), vec![512, 512]);
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 0, 0, 1)), Some(a2.clone()));

    // The last route of a group frees it; members go with their last user.
    assert!(w.remove(&b.dst, 5).unwrap());
    assert_eq!(w.nexthops_in_use(), 2 + group_records(2));
    assert!(w.remove(&a2.dst, 6).unwrap());
    assert_eq!(w.nexthops_in_use(), 1, "c's next hop is left");
    assert!(w.remove(&c.dst, 7).unwrap());
    assert_eq!(w.nexthops_in_use(), 0);
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 0, 0, 1)), None);
}

/// The most paths a route may have, several member records' worth, through every read path,
/// across a republish and a restart of the writer from the file.
#[test]
fn a_group_of_the_most_paths_reads_back_whole() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 1000);
    let n = crate::types::MAX_NEXTHOPS;
    let hops: Vec<Hop> = (0..n)
        .map(|k| {
            hop(
                [10, 255, (k / 250) as u8, (k % 250) as u8 + 1],
                &format!("e{}", k % 7),
                (k % 256) as u16 + 1,
            )
        })
        .collect();
    let big = Route::multipath(p("198.51.100.0/24"), 7, hops.clone());
    let small = Route::multipath(p("198.51.100.128/25"), 0, hops[..2].to_vec());
    w.upsert(&big, 1).unwrap();
    w.upsert(&small, 2).unwrap();
    assert_eq!(w.nexthops_in_use(), n + group_records(n) + group_records(2));
    let mut r = RouteReader::open(&path).unwrap();
    let check = |r: &RouteReader| {
        let addrs = [
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 200),
        ];
        let mut out = vec![None; addrs.len()];
        r.lookup_batch(&addrs, &mut out).unwrap();
        assert_eq!(out, vec![Some(big.clone()), Some(small.clone())]);
        assert_eq!(lookup(r, addrs[0]), Some(big.clone()));
        let i = r.lookup_nh(addrs[0]).unwrap().unwrap().nexthop;
        assert_eq!(r.group(i).unwrap().unwrap().hops, hops);
        assert_eq!(r.entries(), w_entries(&big, &small));
    };
    check(&r);
    w.republish(r.entries()).unwrap();
    assert!(r.refresh().unwrap());
    check(&r);
    drop(w);
    let w = crate::shm::RouteWriter::create(&path, 1000, 0o644, r.entries(), 2).unwrap();
    assert_eq!(w.nexthops_in_use(), n + group_records(n) + group_records(2));
    r.refresh().unwrap();
    check(&r);
    assert_eq!(incompat(&path), 1);
}

fn w_entries(big: &Route, small: &Route) -> Vec<crate::shm::Versioned<Route>> {
    let mut v = vec![
        crate::shm::Versioned {
            entry: big.clone(),
            seq: 1,
        },
        crate::shm::Versioned {
            entry: small.clone(),
            seq: 2,
        },
    ];
    v.sort_by_key(|v| v.entry.dst);
    v
}

/// A file that holds groups keeps its bit when they are gone until a republish, and a file
/// rebuilt without groups drops it, so readers that do not know groups can read it again.
#[test]
fn the_incompat_bit_goes_with_the_last_group_at_a_republish() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 10);
    let m = Route::multipath(
        p("10.0.0.0/8"),
        0,
        vec![hop([192, 0, 2, 1], "a", 1), hop([192, 0, 2, 2], "b", 1)],
    );
    w.upsert(&m, 1).unwrap();
    assert_eq!(incompat(&path), 1);
    assert!(w.remove(&m.dst, 2).unwrap());
    assert_eq!(incompat(&path), 1);
    let single = Route::new(
        Prefix::truncating(Ipv4Addr::new(10, 0, 0, 0), 8),
        Some(Ipv4Addr::new(192, 0, 2, 1)),
        None,
        0,
    );
    w.upsert(&single, 3).unwrap();
    let entries = w.entries();
    w.republish(entries).unwrap();
    assert_eq!(incompat(&path), 0);
}

/// Records freed by groups serve single next hops again (and the other way round): a table
/// whose free records are scattered among runs of another length is packed into a new
/// generation rather than refused.
#[test]
fn records_freed_by_groups_serve_single_next_hops() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 1000);
    let two = vec![hop([192, 0, 2, 1], "a", 1), hop([192, 0, 2, 2], "b", 1)];
    let prefix = |i: u32| Prefix::truncating(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24);
    let mut seq = 0;
    // Groups of distinct metrics, then all gone: their runs are free, the tail is used up.
    for i in 0..120 {
        seq += 1;
        w.upsert(&Route::multipath(prefix(i), i, two.clone()), seq)
            .unwrap();
    }
    for i in 0..120 {
        seq += 1;
        assert!(w.remove(&prefix(i), seq).unwrap());
    }
    assert_eq!(w.nexthops_in_use(), 0);
    for i in 0..200 {
        seq += 1;
        let r = Route::new(prefix(i), Some(Ipv4Addr::new(198, 51, 100, 1)), None, i);
        w.upsert(&r, seq).unwrap();
    }
    assert_eq!(w.nexthops_in_use(), 200);
    // And groups again, where single next hops were.
    for i in 0..200 {
        seq += 1;
        assert!(w.remove(&prefix(i), seq).unwrap());
    }
    for i in 0..150 {
        seq += 1;
        w.upsert(&Route::multipath(prefix(i), i, two.clone()), seq)
            .unwrap();
    }
    assert_eq!(w.nexthops_in_use(), 2 + 150 * group_records(2));
    let r = RouteReader::open(&path).unwrap();
    assert_eq!(
        lookup(&r, Ipv4Addr::new(10, 0, 149, 1)),
        Some(Route::multipath(prefix(149), 149, two))
    );
}

/// A multipath route the file cannot hold (one path, a weight out of 1..=256) is refused by
/// the writer itself, and nothing changes.
#[test]
fn the_writer_refuses_groups_it_cannot_hold() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 10);
    let dst = p("10.0.0.0/8");
    let mut one = Route::new(dst, None, None, 0);
    one.nexthops = vec![hop([192, 0, 2, 1], "a", 1)];
    let heavy = Route::multipath(
        dst,
        0,
        vec![hop([192, 0, 2, 1], "a", 257), hop([192, 0, 2, 2], "b", 1)],
    );
    let light = Route::multipath(
        dst,
        0,
        vec![hop([192, 0, 2, 1], "a", 0), hop([192, 0, 2, 2], "b", 1)],
    );
    for r in [one, heavy, light] {
        let e = w.upsert(&r, 1).unwrap_err().to_string();
        assert!(
            e.contains("route 10.0.0.0/8") && e.contains("weights 1..=256"),
            "{e}"
        );
    }
    assert_eq!((w.len(), w.nexthops_in_use()), (0, 0));
    assert_eq!(incompat(&path), 0);
}

/// Groups freed by their last route leave runs that new groups of the same length take in
/// place: the file is not republished for room it has.
#[test]
fn freed_group_runs_are_reused_in_place() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 1000);
    let two = vec![hop([192, 0, 2, 1], "a", 1), hop([192, 0, 2, 2], "b", 1)];
    let prefix = |i: u32| Prefix::truncating(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24);
    let mut seq = 0;
    for i in 0..400 {
        seq += 1;
        w.upsert(&Route::multipath(prefix(i), i, two.clone()), seq)
            .unwrap();
    }
    let generation = w.generation();
    // Other metrics: other groups of the same length, round after round, each taking the
    // runs the previous round freed.
    for round in 1..5 {
        for i in 0..400 {
            seq += 1;
            assert!(w.remove(&prefix(i), seq).unwrap());
        }
        // One batch, as a request of many changes is: room for all of it is made up front.
        let routes: Vec<Route> = (0..400)
            .map(|i| Route::multipath(prefix(i), 1000 * round + i, two.clone()))
            .collect();
        w.reserve(routes.iter().map(Planned::Put)).unwrap();
        for r in &routes {
            seq += 1;
            w.upsert(r, seq).unwrap();
        }
    }
    assert_eq!(w.nexthops_in_use(), 2 + 400 * group_records(2));
    assert_eq!(w.generation(), generation, "republished for room it had");
    let r = RouteReader::open(&path).unwrap();
    assert_eq!(
        lookup(&r, Ipv4Addr::new(10, 0, 7, 1)),
        Some(Route::multipath(prefix(7), 4007, two))
    );
}
