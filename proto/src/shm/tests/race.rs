//! Readers on other threads while the writer changes the same slots as fast as it can, reusing
//! every line and next-hop record it frees as soon as the epoch allows: no answer may ever mix
//! one route's prefix with another's next hop, or be a state the table never had.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{dir, routes_at};
use crate::shm::{Planned, RouteReader, TableReader, TableWriter};
use crate::types::{Prefix, Route};

/// The routes in play: a /16 always there, and /24s, /28s and /32s inside it that come and go.
/// A route's metric says which prefix it belongs to (high 16 bits: its index) and which change
/// wrote it (low 16 bits), and its via is derived from its metric: an answer whose parts come
/// from different routes or changes shows.
fn prefixes() -> Vec<Prefix> {
    let mut v = vec![Prefix::truncating(Ipv4Addr::new(10, 7, 0, 0), 16)];
    for i in 0..8u8 {
        v.push(Prefix::truncating(Ipv4Addr::new(10, 7, i, 0), 24));
        v.push(Prefix::truncating(Ipv4Addr::new(10, 7, i, 16), 28));
        v.push(Prefix::truncating(Ipv4Addr::new(10, 7, i, 17), 32));
    }
    v
}

fn route(i: usize, dst: Prefix, change: u32) -> Route {
    let metric = ((i as u32) << 16) | (change & 0xffff);
    Route {
        dst,
        via: Some(Ipv4Addr::from(metric.wrapping_mul(2_654_435_761))),
        dev: Some(format!("e{}", change % 7).parse().unwrap()),
        metric,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

/// Whether `r` is a route the writer could have written for an address that `prefixes` matches.
fn plausible(r: &Route, all: &[Prefix]) -> bool {
    let i = (r.metric >> 16) as usize;
    all.get(i) == Some(&r.dst)
        && r.via == Some(Ipv4Addr::from(r.metric.wrapping_mul(2_654_435_761)))
        && r.dev == Some(format!("e{}", (r.metric & 0xffff) % 7).parse().unwrap())
}

#[test]
fn readers_never_see_a_route_mixed_with_another() {
    let d = dir();
    let path = d.path().join("routes");
    let all = prefixes();
    let mut w = routes_at(&path, 100);
    w.upsert(&route(0, all[0], 0), 1).unwrap();
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..3 {
            let (all, stop, reads, path) = (&all, &stop, &reads, &path);
            s.spawn(move || {
                let mut r = RouteReader::open(path).unwrap();
                let addrs: Vec<Ipv4Addr> = (0..8u8)
                    .flat_map(|i| {
                        [
                            Ipv4Addr::new(10, 7, i, 1),
                            Ipv4Addr::new(10, 7, i, 17),
                            Ipv4Addr::new(10, 7, i, 20),
                        ]
                    })
                    .collect();
                let mut out = vec![None; addrs.len()];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if r.is_retired() {
                        r.refresh().unwrap();
                    }
                    for a in &addrs {
                        let got = r.lookup(*a).unwrap().expect("the /16 is always there");
                        assert!(
                            got.dst.contains(*a) && plausible(&got, all),
                            "thread {t}: {a} -> {got:?}"
                        );
                        if let Some(nh) = r.lookup_nh(*a).unwrap() {
                            assert!(nh.dst.contains(*a));
                        }
                    }
                    r.lookup_batch(&addrs, &mut out).unwrap();
                    for (a, got) in addrs.iter().zip(&out) {
                        let got = got.as_ref().expect("the /16 is always there");
                        assert!(
                            got.dst.contains(*a) && plausible(got, all),
                            "thread {t}: batch {a} -> {got:?}"
                        );
                    }
                    for k in all {
                        if let Some(v) = r.get(k) {
                            assert!(
                                plausible(&v.entry, all) && v.entry.dst == *k,
                                "thread {t}: get {k}"
                            );
                        }
                    }
                    n += 1;
                }
                reads.fetch_add(n, Ordering::Relaxed);
            });
        }
        // The writer: every change rewrites chunks and blocks of the /16's slots and frees the
        // old ones; reserve moves the epoch on often, so freed memory is reused at once.
        let mut present = vec![false; all.len()];
        present[0] = true;
        let mut x = 1u32;
        for change in 1..60_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = 1 + (x as usize % (all.len() - 1));
            let seq = u64::from(change) + 1;
            if present[i] && x % 3 == 0 {
                assert!(w.remove(&all[i], seq).unwrap());
                present[i] = false;
            } else {
                let r = route(i, all[i], change);
                w.reserve(std::iter::once(Planned::Put(&r))).unwrap();
                w.upsert(&r, seq).unwrap();
                present[i] = true;
            }
            if change % 10_000 == 0 {
                w.republish(w.entries()).unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
}
