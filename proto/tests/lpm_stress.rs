//! Multi-process stress test of the longest-prefix-match path (single and batched lookups).
//!
//! The test re-executes its own binary as two reader processes (selected by an environment
//! variable) that map the route table read-only and do longest-prefix lookups, while this process
//! changes routes as fast as it can for at least two seconds and until both readers are reading
//! (see `common`): it toggles prefixes of a fixed family per address range in and out (which
//! rewrites chunks and tier-1 words and frees and reuses heap lines and next-hop records),
//! rewrites their contents, and republishes generations. A third of the versions use one of a
//! few shared next hops (shared records), the others a next hop of their own.
//!
//! Every address has a known finite set of prefixes that can ever contain it, some of them
//! always present, and every route's fields derive from its prefix and its version (or are one of
//! the shared next hops). A reader fails on any answer outside that set, any answer shorter than
//! an always-present prefix, a missing answer, or a route whose fields disagree (a torn next hop,
//! or one read from a slot that was reused under the reader).
#![forbid(unsafe_code)]
#![cfg(not(loom))]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;

use common::Stress;
use rtm_proto::shm::{RouteWriter, TableWriter};
use rtm_proto::{Prefix, Route};

const STRESS: Stress = Stress {
    test: "lpm_stress",
    role_env: "RTM_LPM_STRESS_READER",
    tag: "LOOKUPS ",
    counted: "checked lookups",
};
/// /16 blocks 10.B.0.0/16 for B in 0..BLOCKS.
const BLOCKS: u32 = 64;
/// /24s per block that have a family of longer prefixes (third octet 0..FAMILIES); third octets
/// FAMILIES..FAMILIES+2 have none.
const FAMILIES: u32 = 4;

fn pfx(a: u32, len: u8) -> Prefix {
    Prefix::new(Ipv4Addr::from(a), len).unwrap()
}

/// Prefixes that are always present: 10.0.0.0/8 and every block's /16.
fn fixed() -> Vec<Prefix> {
    let mut v = vec![pfx(0x0a00_0000, 8)];
    v.extend((0..BLOCKS).map(|b| pfx(0x0a00_0000 | b << 16, 16)));
    v
}

/// Prefixes the writer toggles: per family a /24, a /28 (x.x.x.16) and a /32 (x.x.x.17), plus a
/// /20 per block that covers the families.
fn toggled() -> Vec<Prefix> {
    let mut v = Vec::new();
    for b in 0..BLOCKS {
        let base = 0x0a00_0000 | b << 16;
        v.push(pfx(base, 20));
        for f in 0..FAMILIES {
            let a = base | f << 8;
            v.push(pfx(a, 24));
            v.push(pfx(a | 16, 28));
            v.push(pfx(a | 17, 32));
        }
    }
    v
}

/// Metrics from here on mark the shared next hops.
const SHARED_METRIC: u32 = 0xf000_0000;
/// Number of shared next hops.
const SHARED: u32 = 4;

/// Shared next hop `k` (for any prefix).
fn shared_for(dst: Prefix, k: u32) -> Route {
    Route {
        dst,
        via: Some(Ipv4Addr::new(192, 0, 2, k as u8 + 1)),
        dev: Some(format!("s{k}").parse().unwrap()),
        metric: SHARED_METRIC + k,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

/// The route written as version `n` of `dst`: every third version one of the shared next hops,
/// the others with every field derived from (dst, n).
fn route_for(dst: Prefix, n: u64) -> Route {
    if n % 3 == 0 {
        return shared_for(dst, (n / 3 % u64::from(SHARED)) as u32);
    }
    let m = n as u32;
    assert!(m < SHARED_METRIC, "version {n} too large for this test");
    let h = dst.addr_u32().wrapping_mul(0x9e37_79b9) ^ u32::from(dst.len()) ^ m;
    Route {
        dst,
        via: (m % 3 != 0).then(|| Ipv4Addr::from(h)),
        dev: (m % 5 != 0).then(|| format!("e{}", h % 10_000).parse().unwrap()),
        metric: m,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

/// The prefixes that may answer a lookup of `a` (longest first), and the shortest length an
/// answer may have (the longest always-present prefix containing `a`).
fn candidates(a: u32) -> (Vec<Prefix>, u8) {
    let mut c = Vec::new();
    let block = (a >> 16) & 0xff;
    if a >> 24 != 10 {
        return (c, 33);
    }
    let third = (a >> 8) & 0xff;
    let last = a & 0xff;
    if block < BLOCKS {
        if third < FAMILIES {
            if last == 17 {
                c.push(pfx(a, 32));
            }
            if (16..32).contains(&last) {
                c.push(pfx(a & !0xf, 28));
            }
            c.push(pfx(a & !0xff, 24));
        }
        if third < 16 {
            c.push(pfx(a & !0xfff, 20));
        }
        c.push(pfx(a & !0xffff, 16));
        c.push(pfx(0x0a00_0000, 8));
        (c, 16)
    } else {
        c.push(pfx(0x0a00_0000, 8));
        (c, 8)
    }
}

fn check(a: u32, got: Option<Route>) -> Result<(), String> {
    let (cands, min_len) = candidates(a);
    let addr = Ipv4Addr::from(a);
    let Some(v) = got else {
        return if cands.is_empty() {
            Ok(())
        } else {
            Err(format!("lookup({addr}) found nothing"))
        };
    };
    if !cands.contains(&v.dst) || v.dst.len() < min_len {
        return Err(format!(
            "lookup({addr}) returned {}, possible: {cands:?} (at least /{min_len})",
            v.dst
        ));
    }
    // Every field derives from the prefix and the change that wrote it (the metric): a torn
    // next hop, or another prefix's, does not match.
    let want = if v.metric >= SHARED_METRIC {
        shared_for(v.dst, (v.metric - SHARED_METRIC) % SHARED)
    } else {
        route_for(v.dst, u64::from(v.metric))
    };
    if v != want {
        return Err(format!(
            "lookup({addr}) returned a torn route {v:?}, want {want:?}"
        ));
    }
    Ok(())
}

fn reader_main(path: &Path) -> Result<u64, String> {
    let mut lookups = 0u64;
    let mut batched = 0u64;
    let mut x = std::process::id().wrapping_mul(0x2545_f491) | 1;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut round = 0u64;
    let mut addrs = Vec::with_capacity(1000);
    let mut out = Vec::with_capacity(1000);
    common::read_rounds::<Route>(path, |r| {
        addrs.clear();
        for _ in 0..1000 {
            let x = rand();
            // Mostly addresses in the families, some elsewhere in the blocks and outside them.
            let a = match x % 8 {
                0 => 0x0a00_0000 | (x >> 8) & 0x00ff_ffff,
                1 => x,
                _ => {
                    let block = (x >> 3) % (BLOCKS + 2);
                    let third = (x >> 10) % (FAMILIES + 2);
                    let last = [0, 15, 16, 17, 18, 31, 32, 255][((x >> 16) % 8) as usize];
                    0x0a00_0000 | block << 16 | third << 8 | last
                }
            };
            addrs.push(Ipv4Addr::from(a));
        }
        // Rounds alternate between single lookups and batches of varying length.
        round += 1;
        if round % 2 == 0 {
            for &a in &addrs {
                check(a.into(), r.lookup(a).map_err(|e| e.to_string())?)?;
            }
        } else {
            let len = 1 + (round / 2 % 100) as usize;
            for chunk in addrs.chunks(len) {
                out.clear();
                out.resize(chunk.len(), None);
                r.lookup_batch(chunk, &mut out).map_err(|e| e.to_string())?;
                for (&a, got) in chunk.iter().zip(out.drain(..)) {
                    check(a.into(), got)?;
                }
            }
            batched += addrs.len() as u64;
        }
        lookups += addrs.len() as u64;
        Ok(())
    })?;
    if batched == 0 {
        return Err("no batched lookups".to_string());
    }
    Ok(lookups)
}

#[test]
fn lpm_stress() {
    if STRESS.reader(reader_main) {
        return;
    }

    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let path = dir.path().join("routes");
    let fixed = fixed();
    let toggled = toggled();
    // Little spare capacity: slots and groups get reused quickly.
    let cap = fixed.len() + toggled.len() + 8;
    let mut w = RouteWriter::create(&path, cap, 0o644, Vec::new(), 0).unwrap();
    let mut n = 1u64;
    for &p in &fixed {
        w.upsert(&route_for(p, n), n).unwrap();
        n += 1;
    }
    let mut present = vec![false; toggled.len()];

    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let republished = STRESS.write_while_read::<Route>(&path, &mut w, n, |w, n| {
        let r = rand();
        if r % 16 == 0 {
            // Rewrite an always-present prefix in place.
            let p = fixed[(r >> 8) as usize % fixed.len()];
            w.upsert(&route_for(p, n), n).unwrap();
        } else {
            let i = (r >> 8) as usize % toggled.len();
            if present[i] && r % 3 != 0 {
                assert!(w.remove(&toggled[i], n).unwrap());
                present[i] = false;
            } else {
                w.upsert(&route_for(toggled[i], n), n).unwrap();
                present[i] = true;
            }
        }
    });
    assert!(republished > 0);
}
