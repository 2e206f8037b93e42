//! Lookups in this process: longest-prefix match and ARP lookups read straight from rtmd's
//! shared memory, against in-process baselines (a `prefix-trie` map and a `HashMap`) holding
//! the same entries. Both must give the same answers before their speeds are compared.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Result};
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rtm::shm::ShmReader;
use rtm::{ArpEntry, MacAddr, Route};

use crate::phases::Bench;
use crate::report::phase;
use crate::{table, util};

/// Runs `f` over `keys` in passes until this thread has used `min` of CPU time; lookups per
/// CPU-second and a checksum. (Per CPU-second, not wall-clock second: on a shared machine the
/// time other processes run must not count against the code measured.)
fn rate<K>(keys: &[K], min: Duration, mut f: impl FnMut(&K) -> u64) -> (f64, u64) {
    let mut n = 0u64;
    let mut sum = 0u64;
    let t0 = util::thread_cpu_ns();
    loop {
        for k in keys {
            sum = sum.wrapping_add(f(std::hint::black_box(k)));
        }
        n += keys.len() as u64;
        let el = util::thread_cpu_ns() - t0;
        if el as u128 >= min.as_nanos() {
            return (n as f64 * 1e9 / el as f64, std::hint::black_box(sum));
        }
    }
}

/// Addresses per `lookup_batch` call in the batched LPM figure (a burst of packets).
const LOOKUP_BURST: usize = 256;

/// Lookups per second of thread CPU time through `lookup_batch`, `LOOKUP_BURST` addresses a
/// call, over `addrs` (cycled) for at least `min`.
fn batched_rate(reader: &ShmReader<Route>, addrs: &[Ipv4Addr], min: Duration) -> f64 {
    let bursts: Vec<&[Ipv4Addr]> = addrs.chunks(LOOKUP_BURST).collect();
    let mut out = vec![None; LOOKUP_BURST];
    let (calls_per_s, _) = rate(&bursts, min, |b| {
        let out = &mut out[..b.len()];
        reader.lookup_batch(b, out);
        out.iter()
            .map(|v| v.as_ref().map_or(0, |v| v.metric as u64 + 1))
            .sum()
    });
    calls_per_s * addrs.len() as f64 / bursts.len().max(1) as f64
}

fn trie_of(routes: &[Route]) -> PrefixMap<Ipv4Net, u32> {
    let mut t = PrefixMap::new();
    for (i, r) in routes.iter().enumerate() {
        let net = Ipv4Net::new(r.dst.addr(), r.dst.len()).expect("valid prefix");
        t.insert(net, i as u32);
    }
    t
}

fn trie_lpm(t: &PrefixMap<Ipv4Net, u32>, a: Ipv4Addr) -> Option<(Ipv4Net, u32)> {
    t.get_lpm(&Ipv4Net::new(a, 32).expect("/32"))
        .map(|(p, v)| (p, *v))
}

/// The lookup phases: LPM (routed and uniform addresses, single and batched), then ARP.
pub fn compare(bench: &mut Bench) -> Result<()> {
    let (s, seed, daemon) = (bench.sizes, bench.args.seed, bench.daemon);
    let (routes, arps) = (bench.routes, bench.arps);
    let rep = &mut *bench.rep;
    phase("LPM lookups: shm vs prefix-trie");
    let reader: ShmReader<Route> = ShmReader::open(&daemon.shm("route"))?;
    if reader.len() != routes.len() {
        bail!(
            "route shm holds {} entries, expected {}",
            reader.len(),
            routes.len()
        );
    }
    let trie = trie_of(routes);
    let addrs = table::routed_addrs(routes, s.lookup_keys, seed);
    // Both must give the same answers before their speeds are compared.
    let check = addrs.len().min(100_000);
    let mismatches = addrs[..check]
        .iter()
        .filter(|&&a| {
            reader.lookup(a).map(|v| v.dst.to_string())
                != trie_lpm(&trie, a).map(|(p, _)| p.to_string())
        })
        .count();
    rep.add("lpm_mismatches", mismatches as f64, "lookups");
    let (shm_rate, _) = rate(&addrs, s.lookup_time, |&a| {
        reader.lookup(a).map_or(0, |v| v.metric as u64 + 1)
    });
    let (trie_rate, _) = rate(&addrs, s.lookup_time, |&a| {
        trie_lpm(&trie, a).map_or(0, |(_, v)| v as u64 + 1)
    });
    rep.add("lpm_lookups_per_s", shm_rate, "lookups/s");
    rep.add("lpm_baseline_prefix_trie_per_s", trie_rate, "lookups/s");
    rep.add("lpm_speedup_vs_prefix_trie", shm_rate / trie_rate, "x");
    // The same addresses through `lookup_batch`, in bursts as a data plane would have them.
    let mut out = vec![None; LOOKUP_BURST];
    let batched_mismatches: usize = addrs[..check]
        .chunks(LOOKUP_BURST)
        .map(|b| {
            reader.lookup_batch(b, &mut out[..b.len()]);
            b.iter()
                .zip(&out)
                .filter(|(&a, v)| {
                    v.as_ref().map(|v| v.dst.to_string())
                        != trie_lpm(&trie, a).map(|(p, _)| p.to_string())
                })
                .count()
        })
        .sum();
    rep.add(
        "lpm_batched_mismatches",
        batched_mismatches as f64,
        "lookups",
    );
    let batch_rate = batched_rate(&reader, &addrs, s.lookup_time);
    rep.add("lpm_lookups_batched_per_s", batch_rate, "lookups/s");
    rep.add(
        "lpm_batched_speedup_vs_prefix_trie",
        batch_rate / trie_rate,
        "x",
    );
    let uni = table::uniform_addrs(s.lookup_keys, seed);
    let hits = uni
        .iter()
        .filter(|&&a| trie_lpm(&trie, a).is_some())
        .count();
    let (shm_u, _) = rate(&uni, s.lookup_time, |&a| {
        reader.lookup(a).map_or(0, |v| v.metric as u64 + 1)
    });
    let (trie_u, _) = rate(&uni, s.lookup_time, |&a| {
        trie_lpm(&trie, a).map_or(0, |(_, v)| v as u64 + 1)
    });
    rep.add("lpm_uniform_lookups_per_s", shm_u, "lookups/s");
    rep.add(
        "lpm_uniform_lookups_batched_per_s",
        batched_rate(&reader, &uni, s.lookup_time),
        "lookups/s",
    );
    rep.add(
        "lpm_uniform_baseline_prefix_trie_per_s",
        trie_u,
        "lookups/s",
    );
    rep.add(
        "lpm_uniform_hit_ratio",
        hits as f64 / uni.len() as f64,
        "ratio",
    );

    phase("ARP lookups: shm vs HashMap");
    let arp_reader: ShmReader<ArpEntry> = ShmReader::open(&daemon.shm("arp"))?;
    let map: HashMap<MacAddr, ArpEntry> = arps.iter().map(|e| (e.mac, e.clone())).collect();
    let keys = table::random_macs(arps, s.lookup_keys, seed);
    let missing = keys
        .iter()
        .filter(|m| arp_reader.get(m).map(|v| v.entry.ip) != map.get(m).map(|e| e.ip))
        .count();
    rep.add("arp_mismatches", missing as f64, "lookups");
    let (shm_rate, _) = rate(&keys, s.lookup_time, |m| {
        arp_reader
            .get(m)
            .map_or(0, |v| u32::from(v.entry.ip) as u64)
    });
    let (map_rate, _) = rate(&keys, s.lookup_time, |m| {
        map.get(m).map_or(0, |e| u32::from(e.ip) as u64)
    });
    rep.add("arp_lookups_per_s", shm_rate, "lookups/s");
    rep.add("arp_baseline_hashmap_per_s", map_rate, "lookups/s");
    rep.add("arp_speedup_vs_hashmap", shm_rate / map_rate, "x");
    Ok(())
}
