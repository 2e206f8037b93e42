//! Lookups from a shared-memory table file vs in-process baselines, on the same generated
//! Internet-like table and the same keys as `rtm-bench`.
//!
//! `cargo bench --bench lookups` (table size: `RTM_BENCH_ROUTES`, default 1,048,576 routes;
//! `RTM_BENCH_ARPS`, default 65,536 entries). The shm file is written with `ShmWriter` in a
//! temporary directory and read through `ShmReader`, exactly as clients read rtmd's file.
#![forbid(unsafe_code)]

#[path = "../src/bin/rtm-bench/table.rs"]
mod table;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::LazyLock;

use divan::{black_box, Bencher};
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rtm_proto::shm::{ArpReader, ArpWriter, RouteReader, RouteWriter, TableReader, TableWriter};
use rtm_proto::{ArpEntry, MacAddr, Prefix, Route};

const KEYS: usize = 1 << 20;

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Data {
    _dir: tempfile::TempDir,
    _route_writer: RouteWriter,
    _arp_writer: ArpWriter,
    routes: RouteReader,
    arps: ArpReader,
    trie: PrefixMap<Ipv4Net, u32>,
    map: HashMap<MacAddr, ArpEntry>,
    addrs: Vec<Ipv4Addr>,
    uniform: Vec<Ipv4Addr>,
    macs: Vec<MacAddr>,
    /// Prefixes of the table in a scrambled order (exact matches).
    prefixes: Vec<Prefix>,
    nets: Vec<Ipv4Net>,
}

static DATA: LazyLock<Data> = LazyLock::new(|| {
    let n = env_size("RTM_BENCH_ROUTES", 1 << 20);
    let m = env_size("RTM_BENCH_ARPS", 65_536);
    let seed = table::DEFAULT_SEED;
    let routes = table::internet_routes(n, seed);
    let arps = table::arp_entries(m, seed);
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let rpath = dir.path().join("bench.route");
    let apath = dir.path().join("bench.arp");
    let rw = RouteWriter::create(&rpath, n, 0o644, table::versioned(routes.clone()), n as u64)
        .expect("route shm");
    let aw = ArpWriter::create(&apath, m, 0o644, table::versioned(arps.clone()), m as u64)
        .expect("arp shm");
    let mut trie = PrefixMap::new();
    for (i, r) in routes.iter().enumerate() {
        trie.insert(
            Ipv4Net::new(r.dst.addr(), r.dst.len()).expect("prefix"),
            i as u32,
        );
    }
    Data {
        routes: RouteReader::open(&rpath).expect("open route shm"),
        arps: ArpReader::open(&apath).expect("open arp shm"),
        _route_writer: rw,
        _arp_writer: aw,
        _dir: dir,
        trie,
        map: arps.iter().map(|a| (a.mac, a.clone())).collect(),
        addrs: table::routed_addrs(&routes, KEYS, seed),
        uniform: table::uniform_addrs(KEYS, seed),
        macs: table::random_macs(&arps, KEYS, seed),
        prefixes: scrambled(&routes),
        nets: scrambled(&routes)
            .iter()
            .map(|p| Ipv4Net::new(p.addr(), p.len()).expect("prefix"))
            .collect(),
    }
});

/// [`KEYS`] prefixes of `routes`, in an order that jumps around the table.
fn scrambled(routes: &[Route]) -> Vec<Prefix> {
    (0..KEYS)
        .map(|i| routes[i.wrapping_mul(2_654_435_761) % routes.len()].dst)
        .collect()
}

/// Runs `f` on the next key of `keys` (cycling) in each iteration.
fn cycle<K: Copy, T>(b: Bencher, keys: &[K], f: impl Fn(K) -> T) {
    let mut i = 0usize;
    b.bench_local(|| {
        i = (i + 1) & (keys.len() - 1);
        f(black_box(keys[i]))
    });
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn lpm_shm(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.addrs, |a| {
        d.routes.lookup(a).map(|v| v.map(|v| v.metric))
    });
}

/// The next-hop index only, for data planes that resolve next hops themselves.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn lpm_shm_nh(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.addrs, |a| {
        d.routes.lookup_nh(a).map(|v| v.map(|v| v.nexthop))
    });
}

/// Addresses per `lookup_batch` call (a burst of packets).
const BURST: usize = 256;

/// `lookup_batch` on the next `BURST` keys per iteration; divan reports it per address.
#[divan::bench(sample_count = 200, sample_size = 10)]
fn lpm_shm_batched(b: Bencher) {
    let d = &*DATA;
    batches(b, &d.addrs);
}

#[divan::bench(sample_count = 200, sample_size = 10)]
fn lpm_shm_batched_uniform(b: Bencher) {
    let d = &*DATA;
    batches(b, &d.uniform);
}

fn batches(b: Bencher, keys: &[Ipv4Addr]) {
    let d = &*DATA;
    let mut out = vec![None; BURST];
    let mut i = 0usize;
    b.counter(divan::counter::ItemsCount::new(BURST))
        .bench_local(|| {
            i = (i + BURST) & (keys.len() - 1);
            let _ = d
                .routes
                .lookup_batch(black_box(&keys[i..i + BURST]), &mut out);
            out.iter().flatten().map(|v| v.metric).sum::<u32>()
        });
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn lpm_prefix_trie(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.addrs, |a| {
        d.trie
            .get_lpm(&Ipv4Net::new(a, 32).expect("/32"))
            .map(|(_, v)| *v)
    });
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn lpm_shm_uniform(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.uniform, |a| {
        d.routes.lookup(a).map(|v| v.map(|v| v.metric))
    });
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn lpm_prefix_trie_uniform(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.uniform, |a| {
        d.trie
            .get_lpm(&Ipv4Net::new(a, 32).expect("/32"))
            .map(|(_, v)| *v)
    });
}

/// Exact match of a route by its prefix: its slot's entry block, then its next-hop record.
#[divan::bench(sample_count = 1000, sample_size = 100)]
fn route_get_shm(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.prefixes, |p| d.routes.get(&p).map(|v| v.seq));
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn route_get_prefix_trie(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.nets, |n| d.trie.get(&n).copied());
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn arp_shm(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.macs, |m| d.arps.get(&m).map(|v| v.entry.ip));
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn arp_hashmap(b: Bencher) {
    let d = &*DATA;
    cycle(b, &d.macs, |m| d.map.get(&m).map(|e| e.ip));
}

/// One pass over every key of every structure, so the page tables of the shm mapping
/// and the caches are warm before divan takes its samples; otherwise the first samples measure
/// page faults.
fn warm(d: &Data) {
    let mut sum = 0u64;
    for &a in d.addrs.iter().chain(&d.uniform) {
        sum += d
            .routes
            .lookup(a)
            .ok()
            .flatten()
            .map_or(0, |v| v.metric as u64);
        sum += d
            .trie
            .get_lpm(&Ipv4Net::new(a, 32).expect("/32"))
            .map_or(0, |(_, v)| *v as u64);
    }
    for (p, n) in d.prefixes.iter().zip(&d.nets) {
        sum += d.routes.get(p).map_or(0, |v| v.seq);
        sum += d.trie.get(n).map_or(0, |v| *v as u64);
    }
    for m in &d.macs {
        sum += d.arps.get(m).map_or(0, |v| u32::from(v.entry.ip) as u64);
        sum += d.map.get(m).map_or(0, |e| u32::from(e.ip) as u64);
    }
    black_box(sum);
}

fn main() {
    warm(&DATA);
    divan::main();
}
