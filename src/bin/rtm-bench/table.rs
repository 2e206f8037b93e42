//! Deterministic benchmark data: an Internet-like IPv4 route table, lookup addresses inside it,
//! and ARP entries. Everything is generated from a seed, so two runs (and the divan benches,
//! which include this file) use exactly the same data.

#![allow(dead_code)] // the benches use only part of it

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtm_proto::shm::Versioned;
use rtm_proto::{ArpEntry, IfName, MacAddr, Prefix, Route};

/// Prefix-length weights per 10,000 routes, shaped like a full IPv4 Internet table: ~60 % /24,
/// 38 % /16–/23 (most of them /22 and /23), 1 % /8–/15 and 1 % longer than /24.
pub const LEN_WEIGHTS: [(u8, u32); 25] = [
    (8, 2),
    (9, 2),
    (10, 4),
    (11, 7),
    (12, 10),
    (13, 15),
    (14, 25),
    (15, 35),
    (16, 130),
    (17, 60),
    (18, 100),
    (19, 250),
    (20, 400),
    (21, 500),
    (22, 1310),
    (23, 1050),
    (24, 6000),
    (25, 12),
    (26, 20),
    (27, 18),
    (28, 18),
    (29, 16),
    (30, 8),
    (31, 4),
    (32, 4),
];

/// The interface and subnet every generated next hop uses. 198.18.0.0/15 is the benchmarking
/// range (RFC 2544); no generated prefix overlaps it, so the kernel comparison can put its veth
/// there without clashing with a route.
pub const DEV: &str = "veth0";
pub const GW_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
pub const LOCAL_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const BENCH_RANGE: (u32, u8) = (0xC612_0000, 15);

pub const DEFAULT_SEED: u64 = 0x5eed_2026_1126;

fn pick_len(rng: &mut StdRng) -> u8 {
    let total: u32 = LEN_WEIGHTS.iter().map(|&(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for &(len, w) in &LEN_WEIGHTS {
        if x < w {
            return len;
        }
        x -= w;
    }
    24
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    let m = rtm_proto::types::mask(len);
    a.0 & m == b.0 & m
}

/// `n` routes with unique prefixes, in generation order (random). Unicast space only (first
/// octet 1..=223, not 127), nothing overlapping 198.18.0.0/15. Each route has `via 198.18.0.x
/// dev veth0` (x in 2..=9) and metric 0.
pub fn internet_routes(n: usize, seed: u64) -> Vec<Route> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen: HashSet<(u32, u8)> = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let dev: IfName = DEV.parse().expect("valid ifname");
    let mut attempts = 0usize;
    while out.len() < n {
        attempts += 1;
        assert!(
            attempts < n.saturating_mul(50) + 1000,
            "cannot draw {n} unique prefixes"
        );
        let len = pick_len(&mut rng);
        let first = loop {
            let o = rng.random_range(1u32..=223);
            if o != 127 {
                break o;
            }
        };
        let addr = (first << 24) | (rng.random::<u32>() & 0x00ff_ffff);
        let addr = addr & rtm_proto::types::mask(len);
        if overlaps((addr, len), BENCH_RANGE) || !seen.insert((addr, len)) {
            continue;
        }
        let gw = Ipv4Addr::from(u32::from(GW_NET) + 2 + (out.len() % 8) as u32);
        out.push(Route {
            dst: Prefix::new(Ipv4Addr::from(addr), len).expect("host bits cleared"),
            via: Some(gw),
            dev: Some(dev),
            metric: 0,
            nexthops: Vec::new(),
            origin: Default::default(),
        });
    }
    out
}

/// `n` lookup addresses, each inside a randomly chosen route of `routes` (random host bits), so
/// every lookup hits something, as forwarded traffic does.
pub fn routed_addrs(routes: &[Route], n: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xadd5);
    (0..n)
        .map(|_| {
            let r = &routes[rng.random_range(0..routes.len())];
            let host = !rtm_proto::types::mask(r.dst.len());
            Ipv4Addr::from(r.dst.addr_u32() | (rng.random::<u32>() & host))
        })
        .collect()
}

/// `n` addresses drawn uniformly from the whole IPv4 space (many miss every route).
pub fn uniform_addrs(n: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0a11);
    (0..n)
        .map(|_| Ipv4Addr::from(rng.random::<u32>()))
        .collect()
}

/// `n` ARP entries with unique, locally administered unicast MACs.
pub fn arp_entries(n: usize, seed: u64) -> Vec<ArpEntry> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xa4b);
    let mut seen = HashSet::with_capacity(n);
    let dev: IfName = DEV.parse().expect("valid ifname");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut b: [u8; 6] = rng.random();
        b[0] = (b[0] | 0x02) & !0x01;
        let mac = MacAddr(b);
        if !seen.insert(mac) {
            continue;
        }
        let i = out.len() as u32;
        out.push(ArpEntry {
            mac,
            ip: Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff)),
            dev: Some(dev),
        });
    }
    out
}

/// `n` keys drawn at random (with repeats) from `entries`.
pub fn random_macs(entries: &[ArpEntry], n: usize, seed: u64) -> Vec<MacAddr> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x3ac);
    (0..n)
        .map(|_| entries[rng.random_range(0..entries.len())].mac)
        .collect()
}

/// Histogram of prefix lengths, for the report.
pub fn length_shares(routes: &[Route]) -> [usize; 33] {
    let mut h = [0usize; 33];
    for r in routes {
        h[r.dst.len() as usize] += 1;
    }
    h
}

/// Entries with the sequence numbers of a table filled in order (1, 2, …).
pub fn versioned<T>(v: Vec<T>) -> Vec<Versioned<T>> {
    v.into_iter()
        .enumerate()
        .map(|(i, entry)| Versioned {
            entry,
            seq: i as u64 + 1,
        })
        .collect()
}
