//! The route writer's CPU per change, in process: what the route table actor spends in shared
//! memory for each `route add`, `route replace` and `route del`, against `prefix-trie` doing
//! the same changes to an in-process map (the baseline) on the same routes in the same run.
//!
//! `cargo bench --bench writer` (table size: `RTM_BENCH_ROUTES`, default 1,048,576 routes;
//! repetitions: `RTM_BENCH_REPS`, default 3, the median is printed). Changes go in batches of
//! 4,096, reserved and then handed over one by one, as the table actor does with a `Batch`
//! request; the file is in `/dev/shm` when it can be. Last, the milliseconds to build and
//! publish the whole table as a new file at once (`RouteWriter::create` from the sorted routes),
//! what the route table actor does when it restarts, after reading them from its file.
//!
//! Then the same prefixes as multipath routes of 16 paths, spread over 64 distinct groups (the
//! route file shares a group among the routes with the same paths, as a real table's few ECMP
//! sets are): the same three phases against the same baseline, and the ratio to the
//! single-path figures of the same run.
#![forbid(unsafe_code)]

#[path = "../src/bin/rtm-bench/table.rs"]
mod table;

use std::hint::black_box;
use std::time::Instant;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rtm_proto::shm::{Planned, RouteWriter, TableWriter};
use std::net::Ipv4Addr;

use rtm_proto::{Hop, Prefix, Route};

const BATCH: usize = 4096;

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds per change of each phase: (insert, update, delete).
fn rtm_run(routes: &[Route], updated: &[Route]) -> [f64; 3] {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let path = dir.path().join("bench.route");
    let n = routes.len();
    let mut w = RouteWriter::create(&path, n, 0o644, Vec::new(), 0).expect("route shm");
    let mut seq = 0u64;
    let mut put = |w: &mut RouteWriter, rs: &[Route]| {
        let t = Instant::now();
        for batch in rs.chunks(BATCH) {
            w.reserve(batch.iter().map(Planned::Put)).expect("reserve");
            for r in batch {
                seq += 1;
                w.upsert(r, seq).expect("upsert");
            }
        }
        t.elapsed().as_nanos() as f64 / rs.len() as f64
    };
    let insert = put(&mut w, routes);
    let update = put(&mut w, updated);
    assert_eq!(w.len(), n);
    let keys: Vec<Prefix> = routes.iter().map(|r| r.dst).collect();
    let t = Instant::now();
    for batch in keys.chunks(BATCH) {
        w.reserve(batch.iter().map(Planned::Del)).expect("reserve");
        for k in batch {
            seq += 1;
            assert!(w.remove(k, seq).expect("remove"));
        }
    }
    let delete = t.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(w.len(), 0);
    [insert, update, delete]
}

/// Milliseconds to build and publish `routes` as a new file at once.
fn build_run(routes: &[Route]) -> f64 {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let mut entries = table::versioned(routes.to_vec());
    entries.sort_by_key(|v| v.entry.dst);
    let n = entries.len();
    let t = Instant::now();
    let w = RouteWriter::create(&dir.path().join("bench.route"), n * 2, 0o644, entries, 0)
        .expect("route shm");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(w.len(), n);
    ms
}

fn trie_run(routes: &[Route], updated: &[Route]) -> [f64; 3] {
    let net = |r: &Route| Ipv4Net::new(r.dst.addr(), r.dst.len()).expect("prefix");
    let mut map: PrefixMap<Ipv4Net, Route> = PrefixMap::new();
    let put = |map: &mut PrefixMap<Ipv4Net, Route>, rs: &[Route]| {
        let t = Instant::now();
        for r in rs {
            black_box(map.insert(net(r), r.clone()));
        }
        t.elapsed().as_nanos() as f64 / rs.len() as f64
    };
    let insert = put(&mut map, routes);
    let update = put(&mut map, updated);
    let t = Instant::now();
    for r in routes {
        black_box(map.remove(&net(r)));
    }
    let delete = t.elapsed().as_nanos() as f64 / routes.len() as f64;
    [insert, update, delete]
}

/// `routes`' prefixes and metrics as multipath routes of `paths` equal-weight paths, over
/// `groups` distinct sets of paths.
fn multipath(routes: &[Route], paths: usize, groups: usize) -> Vec<Route> {
    let sets: Vec<Vec<Hop>> = (0..groups)
        .map(|g| {
            (0..paths)
                .map(|k| Hop {
                    via: Some(Ipv4Addr::new(
                        100,
                        64 + (g / 256) as u8,
                        (g % 256) as u8,
                        k as u8 + 1,
                    )),
                    dev: Some(format!("eth{k}").parse().expect("a name")),
                    weight: 1,
                })
                .collect()
        })
        .collect();
    routes
        .iter()
        .enumerate()
        .map(|(i, r)| Route::multipath(r.dst, r.metric, sets[i % groups].clone()))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let n = env_size("RTM_BENCH_ROUTES", 1 << 20);
    let reps = env_size("RTM_BENCH_REPS", 3).max(1);
    let routes = table::internet_routes(n, table::DEFAULT_SEED);
    let updated: Vec<Route> = routes
        .iter()
        .map(|r| Route {
            metric: r.metric + 1,
            ..r.clone()
        })
        .collect();
    let mp = multipath(&routes, 16, 64);
    let mp_updated: Vec<Route> = mp
        .iter()
        .map(|r| Route {
            metric: r.metric + 1,
            ..r.clone()
        })
        .collect();
    let (mut rtm, mut trie) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
    let (mut rtm_mp, mut trie_mp) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
    let mut build = Vec::new();
    // Alternate, so that a noisy neighbour hits both sides alike.
    for _ in 0..reps {
        for (i, x) in rtm_run(&routes, &updated).into_iter().enumerate() {
            rtm[i].push(x);
        }
        for (i, x) in trie_run(&routes, &updated).into_iter().enumerate() {
            trie[i].push(x);
        }
        build.push(build_run(&routes));
        for (i, x) in rtm_run(&mp, &mp_updated).into_iter().enumerate() {
            rtm_mp[i].push(x);
        }
        for (i, x) in trie_run(&mp, &mp_updated).into_iter().enumerate() {
            trie_mp[i].push(x);
        }
    }
    println!("route writer, {n} routes, batches of {BATCH}, median of {reps} (ns per change)");
    println!(
        "{:<8} {:>10} {:>14} {:>8}",
        "change", "rtm shm", "prefix-trie", "ratio"
    );
    for (i, name) in ["insert", "update", "delete"].iter().enumerate() {
        let (a, b) = (median(rtm[i].clone()), median(trie[i].clone()));
        println!("{name:<8} {a:>10.0} {b:>14.0} {:>7.2}x", a / b);
        println!("writer_ns_per_{name} {a:.0}");
        println!("trie_ns_per_{name} {b:.0}");
    }
    let b = median(build);
    println!("whole table built and published at once: {b:.1} ms");
    println!("writer_ms_build {b:.1}");
    println!("multipath: 16 paths over 64 groups (ns per change; last column: rtm multipath / rtm single-path)");
    println!(
        "{:<8} {:>10} {:>14} {:>8} {:>8}",
        "change", "rtm shm", "prefix-trie", "ratio", "vs 1"
    );
    for (i, name) in ["insert", "update", "delete"].iter().enumerate() {
        let (a, b) = (median(rtm_mp[i].clone()), median(trie_mp[i].clone()));
        let single = median(rtm[i].clone());
        println!(
            "{name:<8} {a:>10.0} {b:>14.0} {:>7.2}x {:>7.2}x",
            a / b,
            a / single
        );
        println!("writer_mp16_ns_per_{name} {a:.0}");
        println!("trie_mp16_ns_per_{name} {b:.0}");
    }
}
