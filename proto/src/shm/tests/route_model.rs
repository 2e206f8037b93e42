//! The route table against `prefix-trie`: random adds, replaces and deletes of nested and
//! overlapping prefixes of every length, republishes, clears; every lookup path (single,
//! batched, next-hop index, by exact-match probing) and the table in key order must agree with
//! the model after every step.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{dir, lookup, multipath_route, route, routes_at};
use crate::shm::route::view::group_records;
use crate::shm::{RouteReader, RouteWriter, TableReader, TableWriter, Versioned, BATCH_GROUP};
use crate::types::{mask, Prefix, Route};

/// A route whose fields vary with `n`; one in six multipath.
fn any_route(dst: Prefix, n: u32) -> Route {
    if n % 6 == 5 {
        multipath_route(dst, n / 6)
    } else {
        route(dst, n)
    }
}

fn net(p: &Prefix) -> Ipv4Net {
    Ipv4Net::new(p.addr(), p.len()).unwrap()
}

/// A prefix length: every length, short ones rarer.
fn random_len(rng: &mut StdRng) -> u8 {
    match rng.random_range(0..1000) {
        0..=9 => rng.random_range(0..8),
        10..=100 => 32,
        101..=400 => rng.random_range(25..32),
        401..=500 => rng.random_range(16..19),
        _ => rng.random_range(8..25),
    }
}

/// Addresses from a few /16s (in two /8s) so prefixes nest and overlap a lot, plus rare others.
fn random_addr(rng: &mut StdRng) -> u32 {
    if rng.random_range(0..20) == 0 {
        return rng.random();
    }
    let hi = [0x0a00_0000u32, 0x0a01_0000, 0x0a80_0000, 0xc0a8_0000][rng.random_range(0..4)];
    // Few distinct third octets, so /25–/32s share chunks.
    let third = rng.random_range(0..6u32) << 8;
    hi | third | rng.random_range(0..256u32)
}

pub(super) struct Model {
    pub trie: PrefixMap<Ipv4Net, Versioned<Route>>,
    pub keys: Vec<Prefix>,
}

impl Model {
    pub fn new() -> Model {
        Model {
            trie: PrefixMap::new(),
            keys: Vec::new(),
        }
    }

    pub fn lpm(&self, a: Ipv4Addr) -> Option<&Route> {
        self.trie
            .get_lpm(&Ipv4Net::new(a, 32).unwrap())
            .map(|(_, v)| &v.entry)
    }

    /// Next-hop records the routes need: one per distinct (via, dev, metric), where a
    /// multipath route's paths count with metric 0, and the records of each distinct group
    /// (metric and paths).
    fn next_hops(&self) -> usize {
        let mut hops = HashSet::new();
        let mut groups = HashSet::new();
        for (_, v) in self.trie.iter() {
            let r = &v.entry;
            if r.is_multipath() {
                hops.extend(r.nexthops.iter().map(|h| (h.via, h.dev, 0)));
                groups.insert((r.metric, r.nexthops.clone()));
            } else {
                hops.insert((r.via, r.dev, r.metric));
            }
        }
        hops.len()
            + groups
                .iter()
                .map(|(_, paths)| group_records(paths.len()))
                .sum::<usize>()
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

    fn sorted(&self) -> Vec<Versioned<Route>> {
        let mut want: Vec<_> = self.trie.iter().map(|(_, v)| v.clone()).collect();
        want.sort_by_key(|v| v.entry.dst);
        want
    }
}

/// The longest prefix by exact-match probes of every length, as a second opinion.
fn lookup_by_probing(r: &RouteReader, a: Ipv4Addr) -> Option<Route> {
    (0..=32u8)
        .rev()
        .find_map(|len| r.get(&Prefix::truncating(a, len)))
        .map(|v| v.entry)
}

pub(super) fn check_lookups(r: &RouteReader, model: &Model, rng: &mut StdRng, n: usize, ctx: &str) {
    for _ in 0..n {
        let a = model.probe_addr(rng);
        let want = model.lpm(a);
        assert_eq!(lookup(r, a).as_ref(), want, "{ctx}: lookup({a})");
        assert_eq!(lookup_by_probing(r, a).as_ref(), want, "{ctx}: probe({a})");
        let nh = r.lookup_nh(a).unwrap();
        assert_eq!(
            nh.map(|n| n.dst),
            want.map(|w| w.dst),
            "{ctx}: lookup_nh({a})"
        );
        if let (Some(n), Some(w)) = (nh, want) {
            let hash: u32 = rng.random();
            let path = r.nexthop_for(n.nexthop, hash).unwrap();
            let got = match r.group(n.nexthop).unwrap() {
                Some(g) => {
                    let h = g.pick(hash).expect("a member");
                    assert_eq!(
                        (path.via, path.dev, path.metric),
                        (h.via, h.dev, g.metric),
                        "{ctx}: {a}: the path of hash {hash:#x}"
                    );
                    let mut r = Route::multipath(n.dst, g.metric, g.hops);
                    r.origin = n.origin;
                    r
                }
                None => {
                    assert_eq!(path, r.nexthop(n.nexthop).unwrap(), "{ctx}: {a}");
                    path.route(n.dst, n.origin)
                }
            };
            assert_eq!(got, *w, "{ctx}: {a}");
        }
    }
    for a in [0u32, u32::MAX, 0x0a00_0000, 0x0aff_ffff] {
        let a = Ipv4Addr::from(a);
        assert_eq!(lookup(r, a).as_ref(), model.lpm(a), "{ctx}: lookup({a})");
    }
    check_batches(r, model, rng, n, ctx);
}

/// `lookup_batch` against the model and against `lookup`, on batches of lengths around the
/// group size (and empty ones), about `n` addresses in all.
fn check_batches(r: &RouteReader, model: &Model, rng: &mut StdRng, n: usize, ctx: &str) {
    let g = BATCH_GROUP;
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
        r.lookup_batch(&addrs, &mut out).unwrap();
        let mut nhs = vec![None; len];
        r.lookup_nh_batch(&addrs, &mut nhs).unwrap();
        for ((a, got), nh) in addrs.iter().zip(&out).zip(&nhs) {
            assert_eq!(got.as_ref(), model.lpm(*a), "{ctx}: batch of {len}: {a}");
            assert_eq!(*got, lookup(r, *a), "{ctx}: batch of {len} vs lookup: {a}");
            assert_eq!(
                nh.map(|n| n.dst),
                got.as_ref().map(|g| g.dst),
                "{ctx}: nh batch {a}"
            );
        }
    }
}

#[test]
fn lpm_model_add_replace_delete() {
    let d = dir();
    let path = d.path().join("routes");
    let cap = 400;
    let mut w = routes_at(&path, cap);
    let mut r = RouteReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut model = Model::new();
    let mut seq = 0u64;
    let (mut republishes, mut clears) = (0, 0);
    for step in 0..4000u32 {
        seq += 1;
        let op = rng.random_range(0..100);
        if op < 55 && model.keys.len() < cap {
            // Add a new prefix or replace an existing one.
            let dst = if !model.keys.is_empty() && rng.random_range(0..4) == 0 {
                model.keys[rng.random_range(0..model.keys.len())]
            } else {
                Prefix::truncating(Ipv4Addr::from(random_addr(&mut rng)), random_len(&mut rng))
            };
            // Half the routes share a few next hops (so replacing one may keep or change its
            // next hop, and records are shared and released), half have their own.
            let n = if rng.random_bool(0.5) {
                rng.random_range(0..18)
            } else {
                rng.random()
            };
            let v = Versioned {
                entry: any_route(dst, n),
                seq,
            };
            w.reserve([crate::shm::Planned::Put(&v.entry)].into_iter())
                .unwrap();
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
                assert!(w.remove(&k, seq).unwrap(), "step {step}: remove {k}");
                model.trie.remove(&net(&k));
            } else {
                let k = Prefix::truncating(Ipv4Addr::from(random_addr(&mut rng)), 32);
                assert_eq!(
                    w.remove(&k, seq).unwrap(),
                    model.trie.remove(&net(&k)).is_some()
                );
                model.keys.retain(|x| *x != k);
            }
        } else if op < 99 {
            // What a restarted writer does: republish the whole table as a new generation.
            w.republish(model.sorted()).unwrap();
            republishes += 1;
        } else if rng.random_range(0..4) == 0 {
            w.clear(seq);
            model = Model::new();
            clears += 1;
        }
        assert_eq!(w.len(), model.keys.len());
        assert_eq!(w.nexthops_in_use(), model.next_hops(), "step {step}");
        let kernel = model
            .trie
            .iter()
            .filter(|(_, v)| v.entry.origin == crate::types::Origin::Kernel)
            .count();
        assert_eq!(
            w.len_of(crate::types::Origin::Kernel),
            kernel,
            "step {step}: kernel routes"
        );
        if r.is_retired() {
            assert!(r.refresh().unwrap());
        }
        if step % 20 == 0 {
            check_lookups(&r, &model, &mut rng, 40, &format!("step {step}"));
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
            let want = model.sorted();
            assert_eq!(r.entries(), want, "step {step}: reader's entries");
            assert_eq!(w.entries(), want, "step {step}: writer's entries");
        }
    }
    assert!(republishes > 0 && clears > 0);
    check_lookups(&r, &model, &mut rng, 2000, "end");

    // Removing everything leaves no route, no next hop, and no chunk or block in use: only
    // the pages remain.
    for k in std::mem::take(&mut model.keys) {
        assert!(w.remove(&k, seq).unwrap());
        model.trie.remove(&net(&k));
    }
    r.refresh().unwrap();
    assert_eq!(w.nexthops_in_use(), 0);
    let (lpm, blk) = w.heap_in_use();
    let page = crate::shm::route::layout::PAGE_LINES as u64;
    assert!(
        lpm % page == 0 && blk % page == 0,
        "lines other than pages in use: {lpm} {blk}"
    );
    check_lookups(&r, &model, &mut rng, 500, "empty");
}

/// A restarted writer (a new file created from the routes of the old one) answers alike, and
/// readers of the old file are told to move.
#[test]
fn lpm_rebuilt_by_restarted_writer() {
    let d = dir();
    let path = d.path().join("routes");
    let mut rng = StdRng::seed_from_u64(99);
    let mut model = Model::new();
    let mut w = routes_at(&path, 1000);
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
    // The old writer goes away without cleaning up; a new one builds its file from the routes.
    let routes = w.entries();
    let generation = w.generation();
    drop(w);
    let _w2 = RouteWriter::create(&path, 1000, 0o644, routes, 800).unwrap();
    assert!(r.is_retired());
    r.refresh().unwrap();
    assert_eq!(r.generation(), generation + 1);
    assert_eq!(r.table_seq(), 800);
    check_lookups(&r, &model, &mut rng, 3000, "restarted writer");
}

/// /0, /32 and a full nest of lengths at one address; deleting from the middle of the nest.
#[test]
fn lpm_nested_edges() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 100);
    let r = RouteReader::open(&path).unwrap();
    let a = Ipv4Addr::new(10, 1, 2, 3);
    let at = |len: u8| Prefix::truncating(a, len);
    for len in (0..=32u8).step_by(4).chain([17, 25, 31, 32]) {
        w.upsert(&route(at(len), u32::from(len)), 1).unwrap();
    }
    let dst = |a: Ipv4Addr| lookup(&r, a).unwrap().dst;
    assert_eq!(dst(a), at(32));
    assert_eq!(dst(Ipv4Addr::new(10, 1, 2, 2)), at(31));
    assert_eq!(dst(Ipv4Addr::new(10, 1, 2, 0)), at(28));
    assert_eq!(dst(Ipv4Addr::new(10, 1, 2, 200)), at(24));
    assert_eq!(dst(Ipv4Addr::new(10, 1, 100, 1)), at(17));
    assert_eq!(dst(Ipv4Addr::new(200, 1, 2, 3)), at(0));
    // The same answers batched, many times over, in several groups.
    let addrs: Vec<Ipv4Addr> = (0..3 * BATCH_GROUP as u32 + 5)
        .map(|k| match k % 5 {
            0 => a,
            1 => Ipv4Addr::new(10, 1, 2, 2),
            2 => Ipv4Addr::new(10, 1, 2, 0),
            3 => Ipv4Addr::new(10, 1, 2, 200),
            _ => Ipv4Addr::from(0xc801_0203 + k),
        })
        .collect();
    let mut out = vec![None; addrs.len()];
    r.lookup_batch(&addrs, &mut out).unwrap();
    let want = [at(32), at(31), at(28), at(24), at(0)];
    for (k, got) in out.iter().enumerate() {
        assert_eq!(got.as_ref().unwrap().dst, want[k % 5], "{}", addrs[k]);
    }
    r.lookup_batch(&[], &mut []).unwrap();
    for len in [32, 31, 28, 24] {
        assert!(w.remove(&at(len), 2).unwrap());
    }
    assert_eq!(dst(a), at(25));
    assert!(w.remove(&at(25), 3).unwrap());
    assert_eq!(dst(a), at(20));
    assert!(w.remove(&at(20), 3).unwrap());
    // Deleting a /20 inside a /17: the /17 answers again.
    assert_eq!(dst(a), at(17));
    assert!(w.remove(&at(17), 3).unwrap());
    assert_eq!(dst(a), at(16));
    assert!(w.remove(&at(0), 4).unwrap());
    assert_eq!(lookup(&r, Ipv4Addr::new(200, 1, 2, 3)), None);
    assert_eq!(dst(a), at(16));
    w.clear(5);
    assert_eq!(lookup(&r, a), None);
    w.upsert(&route(at(32), 7), 6).unwrap();
    assert_eq!(lookup(&r, a), Some(route(at(32), 7)));
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 1, 2, 4)), None);
}

#[test]
#[should_panic(expected = "lookup_batch")]
fn lookup_batch_wants_as_many_answers_as_addresses() {
    let d = dir();
    let path = d.path().join("routes");
    let _w = routes_at(&path, 10);
    let r = RouteReader::open(&path).unwrap();
    let _ = r.lookup_batch(&[Ipv4Addr::LOCALHOST; 3], &mut [None, None]);
}

/// Every address of a dense /16 (all lengths /17–/32 nested, thousands of ranges in some slots,
/// so chunks are trees of every depth) against the model.
#[test]
fn dense_slots_build_deep_chunks() {
    let d = dir();
    let path = d.path().join("routes");
    let mut rng = StdRng::seed_from_u64(5);
    let mut model = Model::new();
    let mut w = routes_at(&path, 10_000);
    for seq in 0..6000u64 {
        let len = rng.random_range(17..=32);
        let dst = Prefix::truncating(
            Ipv4Addr::from(0x0a05_0000 | rng.random_range(0..1 << 16)),
            len,
        );
        let v = Versioned {
            entry: route(dst, rng.random_range(0..50)),
            seq,
        };
        w.upsert(&v.entry, seq).unwrap();
        if model.trie.insert(net(&dst), v).is_none() {
            model.keys.push(dst);
        }
    }
    let r = RouteReader::open(&path).unwrap();
    for a in (0x0a05_0000u32..0x0a06_0000).step_by(7) {
        let a = Ipv4Addr::from(a);
        assert_eq!(lookup(&r, a).as_ref(), model.lpm(a), "{a}");
    }
    // The bulk builder makes the same answers as the changes one by one.
    let path2 = d.path().join("routes2");
    let _w2 = RouteWriter::create(&path2, 10_000, 0o644, w.entries(), 0).unwrap();
    let r2 = RouteReader::open(&path2).unwrap();
    for a in (0x0a05_0000u32..0x0a06_0000).step_by(5) {
        let a = Ipv4Addr::from(a);
        assert_eq!(lookup(&r2, a).as_ref(), model.lpm(a), "built: {a}");
    }
}

/// A batch reserves exactly the lines its changes then use: random batches of adds, replaces
/// and deletes crowded into a few slots (deep chunks, long blocks, the same prefix changed
/// twice in a batch), each reserved as a whole, then applied. A change that needed more than
/// the reservation panics in the writer (debug builds); what is left over must be nothing.
#[test]
fn batches_use_exactly_what_they_reserve() {
    use crate::shm::Planned;
    let d = dir();
    let path = d.path().join("routes");
    let mut rng = StdRng::seed_from_u64(17);
    let mut model = Model::new();
    let mut w = routes_at(&path, 100_000);
    let mut seq = 0u64;
    for batch in 0..300 {
        let mut ops: Vec<Option<Route>> = Vec::new();
        let mut dels: Vec<Prefix> = Vec::new();
        for _ in 0..rng.random_range(1..60) {
            if !model.keys.is_empty() && rng.random_range(0..3) == 0 {
                let k = model.keys[rng.random_range(0..model.keys.len())];
                dels.push(k);
                ops.push(None);
            } else {
                let dst =
                    Prefix::truncating(Ipv4Addr::from(random_addr(&mut rng)), random_len(&mut rng));
                ops.push(Some(any_route(
                    dst,
                    rng.random_range(0..(batch % 9 + 2) * 6),
                )));
            }
        }
        let mut di = dels.iter();
        let planned: Vec<Planned<Route>> = ops
            .iter()
            .map(|o| match o {
                Some(r) => Planned::Put(r),
                None => Planned::Del(di.next().unwrap()),
            })
            .collect();
        w.reserve(planned.into_iter()).unwrap();
        let mut di = dels.iter();
        for o in &ops {
            seq += 1;
            match o {
                Some(r) => {
                    w.upsert(r, seq).unwrap();
                    let v = Versioned {
                        entry: r.clone(),
                        seq,
                    };
                    if model.trie.insert(net(&r.dst), v).is_none() {
                        model.keys.push(r.dst);
                    }
                }
                None => {
                    let k = *di.next().unwrap();
                    let present = model.trie.remove(&net(&k)).is_some();
                    assert_eq!(
                        w.remove(&k, seq).unwrap(),
                        present,
                        "batch {batch}: del {k}"
                    );
                    model.keys.retain(|x| *x != k);
                }
            }
        }
        assert_eq!(
            w.reserved_lines(),
            0,
            "batch {batch}: lines reserved and not used"
        );
    }
    let r = RouteReader::open(&path).unwrap();
    check_lookups(&r, &model, &mut rng, 3000, "after the batches");
}
