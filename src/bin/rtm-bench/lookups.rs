//! Lookups in this process: longest-prefix match and ARP lookups read straight from rtmd's
//! shared memory, against in-process baselines holding the same entries and answering the same
//! type — a `prefix-trie` map to the whole `Route` (cloned) for the full-entry lookup, the same
//! trie to a `u32` for the next-hop-index lookup, a `HashMap` to the `ArpEntry` (cloned) for
//! ARP. Both sides must give the same answers before their speeds are compared.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rtm::shm::{
    ArpReader, NextHopRef, RouteReader, RouteWriter, ShmError, TableReader, TableWriter,
};
use rtm::{ArpEntry, MacAddr, Route};

use crate::bench::Bench;
use crate::report::{phase, Report};
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

/// Lookups per CPU-second when each address depends on the previous answer (`step` maps an
/// answer to 0 or 1, which moves the walk through `addrs` on by one or two): the latency a
/// one-off lookup sees, since no two lookups overlap.
fn chain_rate(addrs: &[Ipv4Addr], min: Duration, mut f: impl FnMut(Ipv4Addr) -> u64) -> f64 {
    let mut n = 0u64;
    let mut i = 0usize;
    let t0 = util::thread_cpu_ns();
    loop {
        for _ in 0..4096 {
            let step = f(addrs[i]) & 1;
            i = (i + 1 + step as usize) % addrs.len();
        }
        n += 4096;
        let el = util::thread_cpu_ns() - t0;
        if el as u128 >= min.as_nanos() {
            return n as f64 * 1e9 / el as f64;
        }
    }
}

/// Addresses per batch call in the batched LPM figures (a burst of packets).
const LOOKUP_BURST: usize = 256;

/// Lookups per second of thread CPU time through `batch`, `LOOKUP_BURST` addresses a call,
/// over `addrs` (cycled) for at least `min`.
fn batched_rate<T: Clone>(
    addrs: &[Ipv4Addr],
    min: Duration,
    mut batch: impl FnMut(&[Ipv4Addr], &mut [Option<T>]),
    score: impl Fn(&Option<T>) -> u64,
) -> f64 {
    let bursts: Vec<&[Ipv4Addr]> = addrs.chunks(LOOKUP_BURST).collect();
    let mut out: Vec<Option<T>> = vec![None; LOOKUP_BURST];
    let (calls_per_s, _) = rate(&bursts, min, |b| {
        let out = &mut out[..b.len()];
        batch(b, out);
        out.iter().map(&score).sum()
    });
    calls_per_s * addrs.len() as f64 / bursts.len().max(1) as f64
}

fn net(r: &Route) -> Ipv4Net {
    Ipv4Net::new(r.dst.addr(), r.dst.len()).expect("valid prefix")
}

fn lpm<V>(t: &PrefixMap<Ipv4Net, V>, a: Ipv4Addr) -> Option<(Ipv4Net, &V)> {
    t.get_lpm(&Ipv4Net::new(a, 32).expect("/32"))
}

fn route_score(r: &Option<Route>) -> u64 {
    r.as_ref().map_or(0, |v| u64::from(v.metric) + 1)
}

fn nh_score(r: &Option<NextHopRef>) -> u64 {
    r.map_or(0, |v| u64::from(v.nexthop) + 1)
}

/// The baselines: the same routes in `prefix-trie`, once to the whole route and once to an
/// index.
struct Tries {
    routes: PrefixMap<Ipv4Net, Route>,
    index: PrefixMap<Ipv4Net, u32>,
}

impl Tries {
    fn of(routes: &[Route]) -> Tries {
        let mut t = Tries {
            routes: PrefixMap::new(),
            index: PrefixMap::new(),
        };
        for (i, r) in routes.iter().enumerate() {
            t.routes.insert(net(r), r.clone());
            t.index.insert(net(r), i as u32);
        }
        t
    }
}

/// Both sides agree on `addrs`: lookups, batches and next-hop lookups of shared memory give
/// the trie's prefix. Returns the number of disagreements.
fn mismatches(reader: &RouteReader, tries: &Tries, addrs: &[Ipv4Addr]) -> Result<usize> {
    let mut bad = 0;
    let mut out = vec![None; LOOKUP_BURST];
    let mut nhs = vec![None; LOOKUP_BURST];
    for b in addrs.chunks(LOOKUP_BURST) {
        reader.lookup_batch(b, &mut out[..b.len()])?;
        reader.lookup_nh_batch(b, &mut nhs[..b.len()])?;
        for ((&a, got), nh) in b.iter().zip(&out).zip(&nhs) {
            let want = lpm(&tries.routes, a).map(|(_, r)| r);
            let single = reader.lookup(a)?;
            if single.as_ref() != want
                || got.as_ref() != want
                || nh.map(|n| n.dst) != want.map(|w| w.dst)
            {
                bad += 1;
            }
        }
    }
    Ok(bad)
}

/// The four figures of one address set: full entry and next-hop index, single and batched,
/// with their baselines and ratios. `prefix` names the set (`lpm` or `lpm_uniform`).
fn lpm_figures(
    rep: &mut Report,
    prefix: &str,
    reader: &RouteReader,
    tries: &Tries,
    addrs: &[Ipv4Addr],
    min: Duration,
) {
    // Single lookups through a handle, as a data plane's loop would take one.
    let l = reader.lookups();
    let (single, _) = rate(addrs, min, |&a| route_score(&l.route(a).unwrap_or(None)));
    let (trie_route, _) = rate(addrs, min, |&a| {
        route_score(&lpm(&tries.routes, a).map(|(_, r)| r.clone()))
    });
    let batched = batched_rate(
        addrs,
        min,
        |b, o| {
            let _ = reader.lookup_batch(b, o);
        },
        route_score,
    );
    let (nh_single, _) = rate(addrs, min, |&a| nh_score(&l.nexthop_of(a).unwrap_or(None)));
    let (trie_u32, _) = rate(addrs, min, |&a| {
        lpm(&tries.index, a).map_or(0, |(_, v)| u64::from(*v) + 1)
    });
    let nh_batched = batched_rate(
        addrs,
        min,
        |b, o| {
            let _ = reader.lookup_nh_batch(b, o);
        },
        nh_score,
    );
    rep.add(format!("{prefix}_lookups_per_s"), single, "lookups/s");
    rep.add(
        format!("{prefix}_lookups_batched_per_s"),
        batched,
        "lookups/s",
    );
    rep.add(
        format!("{prefix}_baseline_prefix_trie_per_s"),
        trie_route,
        "lookups/s",
    );
    rep.add(
        format!("{prefix}_speedup_vs_prefix_trie"),
        single / trie_route,
        "x",
    );
    rep.add(
        format!("{prefix}_batched_speedup_vs_prefix_trie"),
        batched / trie_route,
        "x",
    );
    rep.add(format!("{prefix}_nh_lookups_per_s"), nh_single, "lookups/s");
    rep.add(
        format!("{prefix}_nh_lookups_batched_per_s"),
        nh_batched,
        "lookups/s",
    );
    rep.add(
        format!("{prefix}_nh_baseline_prefix_trie_per_s"),
        trie_u32,
        "lookups/s",
    );
    rep.add(
        format!("{prefix}_nh_speedup_vs_prefix_trie"),
        nh_single / trie_u32,
        "x",
    );
    rep.add(
        format!("{prefix}_nh_batched_speedup_vs_prefix_trie"),
        nh_batched / trie_u32,
        "x",
    );
}

/// The lookup phases: LPM (routed and uniform addresses; full entry and next-hop index;
/// single, batched and as a dependent chain), then ARP.
/// What a route table actor's restart spends before it answers again: reading every route
/// from its file and publishing them whole as a new file (here next to the daemon's, then
/// removed).
fn republish(rep: &mut Report, reader: &RouteReader, shm: &std::path::Path) -> Result<()> {
    phase("route table republish, in process");
    let (t0, cpu0) = (Instant::now(), util::thread_cpu_ns());
    let entries = reader.entries();
    let read = t0.elapsed();
    let path = shm.with_extension("bench-republish");
    let n = entries.len();
    let t1 = Instant::now();
    let w = match RouteWriter::create(&path, n.max(1) * 2, 0o600, entries, 0) {
        Ok(w) => w,
        // A republish holds two generations at once: on a small tmpfs the second may not fit.
        Err(e @ ShmError::NoSpace { .. }) => {
            let why = format!("{e} (a republish needs room for a second copy of the table)");
            for name in [
                "route_entries_read_ms",
                "route_republish_ms",
                "route_republish_cpu_ms",
            ] {
                rep.skip(name, &why);
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let build = t1.elapsed();
    let cpu = util::thread_cpu_ns() - cpu0;
    w.remove_file()?;
    rep.add("route_entries_read_ms", read.as_secs_f64() * 1e3, "ms");
    rep.add(
        "route_republish_ms",
        (read + build).as_secs_f64() * 1e3,
        "ms",
    );
    // The same work in this thread's CPU time: what it costs when the machine is not shared.
    rep.add("route_republish_cpu_ms", cpu as f64 / 1e6, "ms");
    Ok(())
}

pub fn compare(bench: &mut Bench) -> Result<()> {
    let (s, seed, daemon) = (bench.sizes, bench.args.seed, bench.daemon);
    let (routes, arps) = (bench.routes, bench.arps);
    let rep = &mut *bench.rep;
    phase("LPM lookups: shm vs prefix-trie");
    let reader = RouteReader::open(&daemon.shm("route"))?;
    if reader.len() != routes.len() {
        bail!(
            "route shm holds {} entries, expected {}",
            reader.len(),
            routes.len()
        );
    }
    let tries = Tries::of(routes);
    let addrs = table::routed_addrs(routes, s.lookup_keys, seed);
    let uni = table::uniform_addrs(s.lookup_keys, seed);
    let check = addrs.len().min(100_000);
    rep.add(
        "lpm_mismatches",
        mismatches(&reader, &tries, &addrs[..check])? as f64,
        "lookups",
    );
    rep.add(
        "lpm_uniform_mismatches",
        mismatches(&reader, &tries, &uni[..check.min(uni.len())])? as f64,
        "lookups",
    );
    lpm_figures(rep, "lpm", &reader, &tries, &addrs, s.lookup_time);
    lpm_figures(rep, "lpm_uniform", &reader, &tries, &uni, s.lookup_time);
    let hits = uni
        .iter()
        .filter(|&&a| lpm(&tries.index, a).is_some())
        .count();
    rep.add(
        "lpm_uniform_hit_ratio",
        hits as f64 / uni.len() as f64,
        "ratio",
    );
    // Dependent chains: each address picked by the previous answer.
    let l = reader.lookups();
    let chain = chain_rate(&addrs, s.lookup_time, |a| {
        route_score(&l.route(a).unwrap_or(None))
    });
    let nh_chain = chain_rate(&addrs, s.lookup_time, |a| {
        nh_score(&l.nexthop_of(a).unwrap_or(None))
    });
    let trie_chain = chain_rate(&addrs, s.lookup_time, |a| {
        route_score(&lpm(&tries.routes, a).map(|(_, r)| r.clone()))
    });
    let trie_nh_chain = chain_rate(&addrs, s.lookup_time, |a| {
        lpm(&tries.index, a).map_or(0, |(_, v)| u64::from(*v) + 1)
    });
    rep.add("lpm_chain_lookups_per_s", chain, "lookups/s");
    rep.add(
        "lpm_chain_baseline_prefix_trie_per_s",
        trie_chain,
        "lookups/s",
    );
    rep.add("lpm_nh_chain_lookups_per_s", nh_chain, "lookups/s");
    rep.add(
        "lpm_nh_chain_baseline_prefix_trie_per_s",
        trie_nh_chain,
        "lookups/s",
    );

    republish(rep, &reader, &daemon.shm("route"))?;

    phase("ARP lookups: shm vs HashMap");
    let arp_reader = ArpReader::open(&daemon.shm("arp"))?;
    let map: HashMap<MacAddr, ArpEntry> = arps.iter().map(|e| (e.mac, e.clone())).collect();
    let keys = table::random_macs(arps, s.lookup_keys, seed);
    let missing = keys
        .iter()
        .filter(|m| arp_reader.get(m).map(|v| v.entry) != map.get(m).cloned())
        .count();
    rep.add("arp_mismatches", missing as f64, "lookups");
    let (shm_rate, _) = rate(&keys, s.lookup_time, |m| {
        arp_reader
            .lookup(m)
            .ok()
            .flatten()
            .map_or(0, |v| u64::from(u32::from(v.entry.ip)))
    });
    let (map_rate, _) = rate(&keys, s.lookup_time, |m| {
        map.get(m)
            .cloned()
            .map_or(0, |e| u64::from(u32::from(e.ip)))
    });
    rep.add("arp_lookups_per_s", shm_rate, "lookups/s");
    rep.add("arp_baseline_hashmap_per_s", map_rate, "lookups/s");
    rep.add("arp_speedup_vs_hashmap", shm_rate / map_rate, "x");
    Ok(())
}
