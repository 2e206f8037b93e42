//! A measurement, not a test (ignored by default): DIR-24-8 lookups from a read-only mapping vs
//! `prefix-trie` in-process on the same Internet-like table, writer update rates, and the shm
//! footprint. Run with
//!
//! ```text
//! cargo test --release -p rtm-proto --test lpm_measure -- --ignored --nocapture
//! ```
//!
//! (`RTM_MEASURE_ROUTES` overrides the table size, default 1,000,000.) Lookup rates are per
//! second of this thread's CPU time; the writer's rates are wall clock.
#![cfg(not(loom))]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rtm_proto::shm::{RouteReader, RouteWriter};
use rtm_proto::{Prefix, Route};

/// Internet-like lengths: mostly /24, many /16–/23, a few /8–/15 and longer than /24.
fn internet_len(rng: &mut StdRng) -> u8 {
    match rng.random_range(0..1000) {
        0..=14 => rng.random_range(8..16),
        15..=409 => rng.random_range(16..24),
        410..=989 => 24,
        _ => rng.random_range(25..=32),
    }
}

fn unicast(rng: &mut StdRng) -> u32 {
    loop {
        let a: u32 = rng.random();
        let top = a >> 24;
        if (1..224).contains(&top) && top != 127 && top != 10 {
            return a;
        }
    }
}

/// CPU time of this thread in seconds: lookup rates per second of CPU, so that other load on
/// a shared machine changes them less than wall-clock rates.
fn cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

#[test]
#[ignore = "measurement; run explicitly with --release --ignored --nocapture"]
fn lpm_measure() {
    let n: usize = std::env::var("RTM_MEASURE_ROUTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = StdRng::seed_from_u64(2026);
    let mut routes: Vec<Route> = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::with_capacity(n);
    while routes.len() < n {
        let len = internet_len(&mut rng);
        let dst = Prefix::truncating(Ipv4Addr::from(unicast(&mut rng)), len);
        if seen.insert(dst) {
            let k = routes.len() as u32;
            routes.push(Route {
                dst,
                via: Some(Ipv4Addr::from(0xc0a8_0000 | (k & 0xffff))),
                dev: Some(format!("eth{}", k % 8).parse().unwrap()),
                metric: k % 100,
            });
        }
    }
    drop(seen);

    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let path = dir.path().join("routes");
    let mut w = RouteWriter::create(&path, 1 << 20, 0o644).unwrap();
    let t = Instant::now();
    for (i, r) in routes.iter().enumerate() {
        w.upsert(r, i as u64 + 1).unwrap();
    }
    let ins = t.elapsed();
    println!(
        "writer inserts: {n} in {:.3} s = {:.2} M/s",
        ins.as_secs_f64(),
        n as f64 / ins.as_secs_f64() / 1e6
    );
    let st = std::fs::metadata(&path).unwrap();
    println!(
        "shm file: {} MiB apparent, {:.1} MiB allocated = {:.1} B/route",
        st.len() >> 20,
        (st.blocks() * 512) as f64 / (1 << 20) as f64,
        (st.blocks() * 512) as f64 / n as f64
    );

    let mut trie: PrefixMap<Ipv4Net, Route> = PrefixMap::new();
    for r in &routes {
        trie.insert(Ipv4Net::new(r.dst.addr(), r.dst.len()).unwrap(), r.clone());
    }
    let reader = RouteReader::open(&path).unwrap();

    let q = 10_000_000usize;
    let addrs: Vec<u32> = (0..q).map(|_| unicast(&mut rng)).collect();
    // Agreement first (a sample), then timing.
    for &a in addrs.iter().take(200_000) {
        let got = reader.lookup(Ipv4Addr::from(a));
        let want = trie
            .get_lpm(&Ipv4Net::new(Ipv4Addr::from(a), 32).unwrap())
            .map(|(_, r)| r.clone());
        assert_eq!(got, want, "{}", Ipv4Addr::from(a));
    }
    // The batched lookup agrees with the single one on the same sample.
    let sample: Vec<Ipv4Addr> = addrs.iter().take(200_000).map(|&a| a.into()).collect();
    let mut out = vec![None; sample.len()];
    reader.lookup_batch(&sample, &mut out);
    for (&a, got) in sample.iter().zip(&out) {
        assert_eq!(*got, reader.lookup(a), "batched {a}");
    }
    let t = cpu_s();
    let mut hits = 0usize;
    for &a in &addrs {
        if let Some(v) = reader.lookup(Ipv4Addr::from(a)) {
            hits += black_box(v.metric) as usize & 1;
        }
    }
    let shm_t = cpu_s() - t;
    // Batched: the same addresses in batches of 256 (a data plane's burst of packets).
    const BURST: usize = 256;
    let mut burst = [Ipv4Addr::UNSPECIFIED; BURST];
    let mut out = vec![None; BURST];
    let t = cpu_s();
    for chunk in addrs.chunks(BURST) {
        for (b, &a) in burst.iter_mut().zip(chunk) {
            *b = Ipv4Addr::from(a);
        }
        let k = chunk.len();
        reader.lookup_batch(&burst[..k], &mut out[..k]);
        for v in out[..k].iter().flatten() {
            hits += black_box(v.metric) as usize & 1;
        }
    }
    let batch_t = cpu_s() - t;
    let t = cpu_s();
    for &a in &addrs {
        if let Some((_, r)) = trie.get_lpm(&Ipv4Net::new(Ipv4Addr::from(a), 32).unwrap()) {
            hits += black_box(r.metric) as usize & 1;
        }
    }
    let trie_t = cpu_s() - t;
    black_box(hits);
    let shm_rate = q as f64 / shm_t;
    let batch_rate = q as f64 / batch_t;
    let trie_rate = q as f64 / trie_t;
    println!(
        "lookups: shm DIR-24-8 {:.2} M/s, batched {:.2} M/s, prefix-trie {:.2} M/s, \
         ratio {:.2}x single, {:.2}x batched",
        shm_rate / 1e6,
        batch_rate / 1e6,
        trie_rate / 1e6,
        shm_rate / trie_rate,
        batch_rate / trie_rate
    );

    // Updates on the full table: replace in place, delete + re-add.
    let t = Instant::now();
    let m = 500_000.min(n);
    for (i, r) in routes.iter().take(m).enumerate() {
        let mut r2 = r.clone();
        r2.metric += 1;
        w.upsert(&r2, (n + i) as u64).unwrap();
    }
    let rep = t.elapsed();
    let t = Instant::now();
    for (i, r) in routes.iter().take(m).enumerate() {
        assert!(w.remove(&r.dst, (2 * n + i) as u64));
    }
    let del = t.elapsed();
    let t = Instant::now();
    for (i, r) in routes.iter().take(m).enumerate() {
        w.upsert(r, (3 * n + i) as u64).unwrap();
    }
    let readd = t.elapsed();
    println!(
        "writer on a full table: replace {:.2} M/s, delete {:.2} M/s, re-add {:.2} M/s (generation {})",
        m as f64 / rep.as_secs_f64() / 1e6,
        m as f64 / del.as_secs_f64() / 1e6,
        m as f64 / readd.as_secs_f64() / 1e6,
        w.generation()
    );
    let t = Instant::now();
    w.republish(reader.entries()).unwrap();
    println!(
        "republish (new generation, LPM rebuilt) of {} routes: {:.3} s",
        w.len(),
        t.elapsed().as_secs_f64()
    );
}
