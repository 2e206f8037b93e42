//! Multi-process torn-read stress test.
//!
//! The test re-executes its own binary twice as reader processes (selected by an environment
//! variable) that map the table file read-only, while this process rewrites entries as fast as it
//! can for at least two seconds and until both readers are reading, removing and re-adding keys
//! and republishing generations (see `common`). Every field of every entry is derived from one
//! counter `n`, so any torn read shows up as an entry whose fields disagree. Readers exit
//! non-zero on the first inconsistent entry.
#![forbid(unsafe_code)]
#![cfg(not(loom))]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::OnceLock;

use common::Stress;
use rtm_proto::shm::{RouteWriter, TableReader, TableWriter, Versioned};
use rtm_proto::{Hop, Prefix, Route};

const STRESS: Stress = Stress {
    test: "torn_read_stress",
    role_env: "RTM_SHM_STRESS_READER",
    tag: "READS ",
    counted: "consistent reads",
};
const KEYS: u32 = 500;

/// The KEYS distinct keys: prefixes of every length 0..=32 inside 10.0.0.0/8 (and /0), nested so
/// lookups meet several candidates.
fn keys() -> &'static [Prefix] {
    static KEYS_: OnceLock<Vec<Prefix>> = OnceLock::new();
    KEYS_.get_or_init(|| {
        let mut out: Vec<Prefix> = Vec::new();
        let mut j = 0u32;
        while out.len() < KEYS as usize {
            let len = (j % 33) as u8;
            let addr = Ipv4Addr::from(0x0a00_0000 | (j.wrapping_mul(0x9e37_79b9) >> 8));
            let p = Prefix::truncating(addr, len);
            if !out.contains(&p) {
                out.push(p);
            }
            j += 1;
        }
        out
    })
}

fn key(i: u32) -> Prefix {
    keys()[i as usize]
}

fn key_index(p: &Prefix) -> Option<u32> {
    keys().iter().position(|k| k == p).map(|i| i as u32)
}

/// The entry written for change `n` of key `n % KEYS`: every field derives from `n`. One
/// change in three writes a multipath route of 2 to 16 paths (a group of two or three records),
/// each path's fields and weight derived from `n` too.
fn route_for(n: u64) -> Route {
    let i = (n % u64::from(KEYS)) as u32;
    let m = n as u32;
    if m % 3 == 1 {
        let hops = (0..2 + m % 15)
            .map(|k| Hop {
                via: Some(Ipv4Addr::from(m.wrapping_mul(40_503).wrapping_add(k))),
                dev: (k % 4 != 0).then(|| format!("p{}", (m + k) % 100_000).parse().unwrap()),
                weight: 1 + ((m + k) % 256) as u16,
            })
            .collect();
        return Route::multipath(key(i), m, hops);
    }
    Route {
        dst: key(i),
        via: (m % 7 != 0).then(|| Ipv4Addr::from(m.wrapping_mul(2_654_435_761) ^ 0x5555_5555)),
        dev: (m % 11 != 0).then(|| format!("d{}", m % 100_000).parse().unwrap()),
        metric: m,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

/// Checks an entry read by a reader against the formula.
fn check(v: &Versioned<Route>) -> Result<(), String> {
    let n = v.seq;
    let want = route_for(n);
    if v.entry != want || u64::from(v.entry.metric) != n & 0xffff_ffff {
        return Err(format!(
            "torn entry: got {:?} seq {n}, want {want:?}",
            v.entry
        ));
    }
    Ok(())
}

/// Dedupe-friendly distinct keys: n and the key index agree (n % KEYS == index of dst).
fn check_key(v: &Versioned<Route>, idx: u32) -> Result<(), String> {
    if v.seq % u64::from(KEYS) != u64::from(idx) {
        return Err(format!(
            "entry {:?} seq {} under key #{idx}",
            v.entry, v.seq
        ));
    }
    Ok(())
}

fn reader_main(path: &Path) -> Result<u64, String> {
    let mut reads = 0u64;
    let mut x = std::process::id().wrapping_mul(0x2545_f491);
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let keys = keys();
    let mut round = 0u64;
    common::read_rounds::<Route>(path, |r| {
        round += 1;
        for _ in 0..200 {
            let i = rand() % KEYS;
            if let Some(v) = r.get(&keys[i as usize]) {
                check(&v)?;
                check_key(&v, i)?;
                reads += 1;
            }
            let a = Ipv4Addr::from(0x0a00_0000 | (rand() & 0x00ff_ffff));
            if let Some(v) = r.lookup(a).map_err(|e| e.to_string())? {
                // The metric is the change that wrote the route; the rest derives from it.
                let want = route_for(u64::from(v.metric));
                if v != want {
                    return Err(format!("lookup({a}): torn route {v:?}, want {want:?}"));
                }
                if !v.dst.contains(a) {
                    return Err(format!("lookup({a}) returned {v:?}"));
                }
                reads += 1;
            }
            // The path a flow takes: one of its route's paths (or its next hop), with the
            // route's metric.
            if let Some((at, hop)) = r.lookup_path(a, rand()).map_err(|e| e.to_string())? {
                let want = route_for(u64::from(hop.metric));
                let ok = at.dst == want.dst
                    && if want.is_multipath() {
                        want.nexthops
                            .iter()
                            .any(|h| (h.via, h.dev) == (hop.via, hop.dev))
                    } else {
                        (want.via, want.dev) == (hop.via, hop.dev)
                    };
                if !ok {
                    return Err(format!("lookup_path({a}): {at:?} {hop:?}, not of {want:?}"));
                }
                reads += 1;
            }
        }
        if round % 16 == 0 {
            for v in r.entries() {
                check(&v)?;
                let idx = key_index(&v.entry.dst).ok_or("unknown key")?;
                check_key(&v, idx)?;
                reads += 1;
            }
        }
        Ok(())
    })?;
    Ok(reads)
}

#[test]
fn torn_read_stress() {
    if STRESS.reader(reader_main) {
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes");
    let mut w = RouteWriter::create(&path, KEYS as usize, 0o644, Vec::new(), 0).unwrap();
    let mut n = 0u64;
    for _ in 0..KEYS {
        w.upsert(&route_for(n), n).unwrap();
        n += 1;
    }

    let mut present = vec![true; KEYS as usize];
    let republished = STRESS.write_while_read::<Route>(&path, &mut w, n, |w, n| {
        let i = (n % u64::from(KEYS)) as usize;
        // Every 5th change of a present key removes it; an absent key is re-added.
        if present[i] && n % 5 == 0 {
            assert!(w.remove(&key(i as u32), n).unwrap());
            present[i] = false;
        } else {
            w.upsert(&route_for(n), n).unwrap();
            present[i] = true;
        }
    });
    assert!(republished > 0);
}
