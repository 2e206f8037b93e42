//! Model-based tests: the DIR-24-8 route table against `prefix-trie`, the ARP table against a
//! `HashMap`, through random add/replace/delete sequences, clears, republishes and compactions.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::*;
use crate::types::{mask, MacAddr, Prefix};

use super::tests::route;

fn net(p: &Prefix) -> Ipv4Net {
    Ipv4Net::new(p.addr(), p.len()).unwrap()
}

/// A prefix length: mostly /8–/32 (cheap to insert), now and then /0–/7 (whose inserts rewrite
/// up to all 2^24 tbl24 words, slow in debug builds).
fn random_len(rng: &mut StdRng) -> u8 {
    match rng.random_range(0..1000) {
        0 => 0,
        1..=4 => rng.random_range(1..8),
        5..=100 => 32,
        101..=400 => rng.random_range(25..32),
        _ => rng.random_range(8..25),
    }
}

/// Addresses from a few /16s (in two /8s) so prefixes nest and overlap a lot, plus rare others.
fn random_addr(rng: &mut StdRng) -> u32 {
    if rng.random_range(0..20) == 0 {
        return rng.random();
    }
    let hi = [0x0a00_0000u32, 0x0a01_0000, 0x0a80_0000, 0xc0a8_0000][rng.random_range(0..4)];
    // Few distinct third octets, so /25–/32s share groups.
    let third = rng.random_range(0..6u32) << 8;
    hi | third | rng.random_range(0..256u32)
}

struct Model {
    trie: PrefixMap<Ipv4Net, Versioned<Route>>,
    keys: Vec<Prefix>,
}

impl Model {
    fn lpm(&self, a: Ipv4Addr) -> Option<&Route> {
        self.trie
            .get_lpm(&Ipv4Net::new(a, 32).unwrap())
            .map(|(_, v)| &v.entry)
    }

    /// Next-hop slots the routes in the model need: one per distinct next hop (via, dev,
    /// metric) of the routes longer than /16, plus one per route of /16 or shorter.
    fn next_hops(&self) -> usize {
        let (short, long): (Vec<_>, Vec<_>) =
            self.trie.iter().partition(|(_, v)| v.entry.dst.len() <= 16);
        let hops: std::collections::HashSet<_> = long
            .iter()
            .map(|(_, v)| (v.entry.via, v.entry.dev, v.entry.metric))
            .collect();
        hops.len() + short.len()
    }

    /// Addresses worth looking up: inside, at the edges of and right outside known prefixes.
    fn probe_addr(&self, rng: &mut StdRng) -> Ipv4Addr {
        if self.keys.is_empty() || rng.random_range(0..4) == 0 {
            return Ipv4Addr::from(random_addr(rng));
        }
        let k = self.keys[rng.random_range(0..self.keys.len())];
        let host = !mask(k.len());
        let a = match rng.random_range(0..4) {
            0 => k.addr_u32(),
            1 => k.addr_u32() | host,
            2 => (k.addr_u32() | host).wrapping_add(1),
            _ => k.addr_u32() | (rng.random::<u32>() & host),
        };
        Ipv4Addr::from(a)
    }
}

fn check_lookups(r: &RouteReader, model: &Model, rng: &mut StdRng, n: usize, ctx: &str) {
    for _ in 0..n {
        let a = model.probe_addr(rng);
        let want = model.lpm(a);
        assert_eq!(r.lookup(a).as_ref(), want, "{ctx}: lookup({a})");
        // Without a concurrent writer the fast path alone must answer, first time.
        assert_eq!(
            r.lookup_lpm_once(a).as_ref().map(Option::as_ref),
            Some(want),
            "{ctx}: DIR-24-8 lookup({a})"
        );
        assert_eq!(r.lookup_by_probing(a).as_ref(), want, "{ctx}: probe({a})");
    }
    for a in [0u32, u32::MAX, 0x0a00_0000, 0x0aff_ffff] {
        let a = Ipv4Addr::from(a);
        assert_eq!(r.lookup(a).as_ref(), model.lpm(a), "{ctx}: lookup({a})");
    }
    check_batches(r, model, rng, n, ctx);
}

/// `lookup_batch` against the model and against `lookup`, on batches of lengths around the
/// group size (and empty ones), about `n` addresses in all.
fn check_batches(r: &RouteReader, model: &Model, rng: &mut StdRng, n: usize, ctx: &str) {
    let g = crate::shm::BATCH_GROUP;
    let mut lens = vec![0, 1, g - 1, g, g + 1, 2 * g + 3];
    while lens.iter().sum::<usize>() < n {
        lens.push(rng.random_range(0..4 * g));
    }
    for len in lens {
        let addrs: Vec<Ipv4Addr> = (0..len)
            .map(|k| match k % 7 {
                // Repeats within a batch, and the extremes.
                0 if k > 0 => Ipv4Addr::from(rng.random_range(0..2u32) * u32::MAX),
                1 if k > 1 => Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + k as u32),
                _ => model.probe_addr(rng),
            })
            .collect();
        // Stale answers in `out` must be overwritten.
        let stale = model.trie.iter().next().map(|(_, v)| v.entry.clone());
        let mut out = vec![stale; len];
        r.lookup_batch(&addrs, &mut out);
        for (a, got) in addrs.iter().zip(&out) {
            assert_eq!(got.as_ref(), model.lpm(*a), "{ctx}: batch of {len}: {a}");
            assert_eq!(*got, r.lookup(*a), "{ctx}: batch of {len} vs lookup: {a}");
        }
    }
}

#[test]
fn lpm_model_add_replace_delete() {
    let d = super::tests::dir();
    let path = d.path().join("routes");
    let cap = 400;
    let mut w = RouteWriter::create(&path, cap, 0o644).unwrap();
    let mut r = RouteReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut model = Model {
        trie: PrefixMap::new(),
        keys: Vec::new(),
    };
    let mut seq = 0u64;
    let mut republishes = 0;
    let mut clears = 0;
    for step in 0..4000u32 {
        seq += 1;
        let op = rng.random_range(0..100);
        if op < 55 && model.keys.len() < cap {
            // Add a new prefix or replace an existing one.
            let dst = if !model.keys.is_empty() && rng.random_range(0..4) == 0 {
                model.keys[rng.random_range(0..model.keys.len())]
            } else {
                let len = random_len(&mut rng);
                Prefix::truncating(Ipv4Addr::from(random_addr(&mut rng)), len)
            };
            // Half the routes share a few next hops (so replacing one may keep or change its
            // next hop, and next-hop slots are shared and released), half have their own.
            let n = if rng.random_bool(0.5) {
                rng.random_range(0..6)
            } else {
                rng.random()
            };
            let v = Versioned {
                entry: route(dst, n),
                seq,
            };
            w.upsert(&v.entry, seq).unwrap();
            if model.trie.insert(net(&dst), v).is_none() {
                model.keys.push(dst);
            }
        } else if op < 97 {
            // Delete a present prefix (or try an absent one).
            if !model.keys.is_empty() && rng.random_range(0..8) != 0 {
                let k = model
                    .keys
                    .swap_remove(rng.random_range(0..model.keys.len()));
                assert!(w.remove(&k, seq), "step {step}: remove {k}");
                model.trie.remove(&net(&k));
            } else {
                let k = Prefix::truncating(Ipv4Addr::from(random_addr(&mut rng)), 32);
                assert_eq!(w.remove(&k, seq), model.trie.remove(&net(&k)).is_some());
                model.keys.retain(|x| *x != k);
            }
        } else if op < 99 {
            // What a restarted writer does: republish the whole table as a new generation.
            let entries: Vec<_> = model.trie.iter().map(|(_, v)| v.clone()).collect();
            w.republish(entries).unwrap();
            republishes += 1;
        } else if rng.random_range(0..4) == 0 {
            w.clear(seq);
            model.trie = PrefixMap::new();
            model.keys.clear();
            clears += 1;
        }
        assert_eq!(w.len(), model.keys.len());
        assert_eq!(w.next_hops_in_use(), model.next_hops(), "step {step}");
        if r.is_retired() {
            assert!(r.refresh().unwrap());
        }
        if step % 20 == 0 {
            check_lookups(&r, &model, &mut rng, 40, &format!("step {step}"));
            // Exact matches (through the routes' next-hop slots) give the model's entry and
            // change sequence.
            for _ in 0..model.keys.len().min(40) {
                let k = model.keys[rng.random_range(0..model.keys.len())];
                assert_eq!(
                    r.get(&k).as_ref(),
                    model.trie.get(&net(&k)),
                    "step {step}: get {k}"
                );
            }
        }
        if step % 200 == 0 {
            let mut want: Vec<_> = model.trie.iter().map(|(_, v)| v.clone()).collect();
            want.sort_by_key(|v| v.entry.dst);
            assert_eq!(r.entries(), want, "step {step}: reader's entries");
            let mut own = w.entries();
            own.sort_by_key(|v| v.entry.dst);
            assert_eq!(own, want, "step {step}: writer's entries");
        }
    }
    assert!(republishes > 0 && clears > 0);
    check_lookups(&r, &model, &mut rng, 2000, "end");

    // Removing everything leaves no route and no group in use.
    for k in std::mem::take(&mut model.keys) {
        assert!(w.remove(&k, seq));
        model.trie.remove(&net(&k));
    }
    r.refresh().unwrap();
    assert_eq!(w.lpm().unwrap().live_groups(), 0);
    assert_eq!(w.next_hops_in_use(), 0);
    check_lookups(&r, &model, &mut rng, 500, "empty");
}

/// A restarted writer (a new `ShmWriter` on the same path, then `republish`) rebuilds the LPM.
#[test]
fn lpm_rebuilt_by_restarted_writer() {
    let d = super::tests::dir();
    let path = d.path().join("routes");
    let mut rng = StdRng::seed_from_u64(99);
    let mut model = Model {
        trie: PrefixMap::new(),
        keys: Vec::new(),
    };
    let mut w = RouteWriter::create(&path, 1000, 0o644).unwrap();
    for seq in 0..800u64 {
        let len = random_len(&mut rng).max(8);
        let dst = Prefix::truncating(Ipv4Addr::from(random_addr(&mut rng)), len);
        let v = Versioned {
            entry: route(dst, seq as u32),
            seq,
        };
        w.upsert(&v.entry, seq).unwrap();
        if model.trie.insert(net(&dst), v).is_none() {
            model.keys.push(dst);
        }
    }
    let mut r = RouteReader::open(&path).unwrap();
    check_lookups(&r, &model, &mut rng, 1000, "first writer");
    // The old writer goes away without cleaning up; a new one starts empty, then republishes.
    drop(w);
    let mut w2 = RouteWriter::create(&path, 1000, 0o644).unwrap();
    assert!(r.is_retired());
    r.refresh().unwrap();
    assert_eq!(r.lookup(Ipv4Addr::new(10, 0, 0, 1)), None);
    w2.republish(model.trie.iter().map(|(_, v)| v.clone()))
        .unwrap();
    r.refresh().unwrap();
    assert_eq!(r.generation(), 3);
    check_lookups(&r, &model, &mut rng, 3000, "restarted writer");
}

/// /0, /32 and a full nest of lengths at one address; deleting from the middle of the nest.
#[test]
fn lpm_nested_edges() {
    let d = super::tests::dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 100, 0o644).unwrap();
    let r = RouteReader::open(&path).unwrap();
    let a = Ipv4Addr::new(10, 1, 2, 3);
    let at = |len: u8| Prefix::truncating(a, len);
    for len in (0..=32u8).step_by(4).chain([25, 31, 32]) {
        w.upsert(&route(at(len), u32::from(len)), 1).unwrap();
    }
    assert_eq!(r.lookup(a).unwrap().dst, at(32));
    assert_eq!(r.lookup(Ipv4Addr::new(10, 1, 2, 2)).unwrap().dst, at(31));
    assert_eq!(r.lookup(Ipv4Addr::new(10, 1, 2, 0)).unwrap().dst, at(28));
    assert_eq!(r.lookup(Ipv4Addr::new(10, 1, 2, 200)).unwrap().dst, at(24));
    assert_eq!(r.lookup(Ipv4Addr::new(200, 1, 2, 3)).unwrap().dst, at(0));
    // The same answers batched: /32, /31, /28, /24 and /0 (many times over, in several groups).
    let addrs: Vec<Ipv4Addr> = (0..3 * crate::shm::BATCH_GROUP as u32 + 5)
        .map(|k| match k % 5 {
            0 => a,
            1 => Ipv4Addr::new(10, 1, 2, 2),
            2 => Ipv4Addr::new(10, 1, 2, 0),
            3 => Ipv4Addr::new(10, 1, 2, 200),
            _ => Ipv4Addr::from(0xc801_0203 + k),
        })
        .collect();
    let mut out = vec![None; addrs.len()];
    r.lookup_batch(&addrs, &mut out);
    let want = [at(32), at(31), at(28), at(24), at(0)];
    for (k, got) in out.iter().enumerate() {
        assert_eq!(got.as_ref().unwrap().dst, want[k % 5], "{}", addrs[k]);
    }
    r.lookup_batch(&[], &mut []);
    for len in [32, 31, 28, 24] {
        assert!(w.remove(&at(len), 2));
    }
    assert_eq!(r.lookup(a).unwrap().dst, at(25));
    assert!(w.remove(&at(25), 3));
    // No prefix longer than /24 left: the group is folded back.
    assert_eq!(w.lpm().unwrap().live_groups(), 0);
    assert_eq!(r.lookup(a).unwrap().dst, at(20));
    assert!(w.remove(&at(0), 4));
    assert_eq!(r.lookup(Ipv4Addr::new(200, 1, 2, 3)), None);
    assert_eq!(r.lookup(a).unwrap().dst, at(20));
    w.clear(5);
    assert_eq!(r.lookup(a), None);
    w.upsert(&route(at(32), 7), 6).unwrap();
    assert_eq!(r.lookup(a), Some(route(at(32), 7)));
    assert_eq!(r.lookup(Ipv4Addr::new(10, 1, 2, 4)), None);
}

#[test]
#[should_panic(expected = "lookup_batch")]
fn lookup_batch_wants_as_many_answers_as_addresses() {
    let d = super::tests::dir();
    let path = d.path().join("routes");
    let _w = RouteWriter::create(&path, 10, 0o644).unwrap();
    let r = RouteReader::open(&path).unwrap();
    r.lookup_batch(&[Ipv4Addr::LOCALHOST; 3], &mut [None, None]);
}

#[test]
fn arp_model_with_tombstone_rebuilds() {
    let d = super::tests::dir();
    let path = d.path().join("arp");
    let cap = 300;
    let mut w = ArpWriter::create(&path, cap, 0o644).unwrap();
    let mut r = ArpReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(0xa2b);
    let mut model: HashMap<MacAddr, Versioned<ArpEntry>> = HashMap::new();
    // MACs from a pool bigger than the capacity, so keys come and go and tombstones pile up.
    let mac = |i: u64| {
        MacAddr::from_u64(0x02_00_00_00_00_00 | i.wrapping_mul(0x9e37_79b9) & 0xff_ffff_ffff)
    };
    let mut generations = vec![w.generation()];
    for step in 0..20_000u64 {
        let k = mac(rng.random_range(0..700));
        match rng.random_range(0..10) {
            0..=5 if model.len() < cap || model.contains_key(&k) => {
                let e = ArpEntry {
                    mac: k,
                    ip: Ipv4Addr::from(rng.random::<u32>()),
                    dev: rng
                        .random_bool(0.5)
                        .then(|| format!("v{}", step % 50).parse().unwrap()),
                };
                w.upsert(&e, step).unwrap();
                model.insert(
                    k,
                    Versioned {
                        entry: e,
                        seq: step,
                    },
                );
            }
            0..=5 => {
                let e = ArpEntry {
                    mac: k,
                    ip: Ipv4Addr::new(1, 2, 3, 4),
                    dev: None,
                };
                assert!(matches!(w.upsert(&e, step), Err(ShmError::Full { .. })));
            }
            _ => assert_eq!(w.remove(&k, step), model.remove(&k).is_some()),
        }
        if generations.last() != Some(&w.generation()) {
            generations.push(w.generation());
        }
        assert_eq!(w.len(), model.len());
        if step % 50 == 0 {
            if r.is_retired() {
                r.refresh().unwrap();
            }
            for i in 0..700 {
                let k = mac(i);
                assert_eq!(r.get(&k).as_ref(), model.get(&k), "step {step} {k}");
            }
            let mut got = r.entries();
            got.sort_by_key(|v| v.entry.mac);
            let mut want: Vec<_> = model.values().cloned().collect();
            want.sort_by_key(|v| v.entry.mac);
            assert_eq!(got, want, "step {step}");
        }
    }
    // Tombstones piled up and were compacted away several times (new generations).
    assert!(generations.len() > 2, "generations {generations:?}");
    r.refresh().unwrap();
    assert!(r.len() == model.len());
}
