//! Unit tests of the writer and reader against real files.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::layout::{HEADER_SIZE, STATE_RETIRED};
use super::*;
use crate::types::{mask, MacAddr, Prefix};

/// A scratch directory on tmpfs when there is one (where table files live in production; route
/// files are large and sparse), else the default temporary directory.
pub(super) fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// A route for `dst` whose fields vary with `n` (also used by the model tests).
pub(super) fn route(dst: Prefix, n: u32) -> Route {
    Route {
        dst,
        via: (n % 3 != 0).then(|| Ipv4Addr::from(n.wrapping_mul(2_654_435_761))),
        dev: (n % 5 != 0).then(|| format!("eth{}", n % 1000).parse().unwrap()),
        metric: n,
    }
}

fn arp(mac: u64, n: u32) -> ArpEntry {
    ArpEntry {
        mac: MacAddr::from_u64(mac),
        ip: Ipv4Addr::from(n),
        dev: (n % 2 == 0).then(|| format!("veth{}", n % 100).parse().unwrap()),
    }
}

fn sorted<R: Record>(mut v: Vec<Versioned<R>>) -> Vec<Versioned<R>> {
    v.sort_by_key(|e| e.entry.key());
    v
}

fn no_tmp_files(d: &Path) {
    for e in std::fs::read_dir(d).unwrap() {
        let name = e.unwrap().file_name();
        assert!(!name.to_string_lossy().contains(".tmp."), "{name:?} left");
    }
}

#[test]
fn route_round_trip() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 100, 0o644).unwrap();
    assert_eq!((w.len(), w.capacity(), w.generation()), (0, 100, 1));
    let r = RouteReader::open(&path).unwrap();
    assert_eq!((r.len(), r.capacity(), r.generation()), (0, 100, 1));
    assert!(r.is_empty() && w.is_empty());

    let a = route(p("10.0.0.0/8"), 1);
    let b = route(p("10.1.0.0/16"), 2);
    let c = route(p("0.0.0.0/0"), 3);
    w.upsert(&a, 11).unwrap();
    w.upsert(&b, 12).unwrap();
    w.upsert(&c, 13).unwrap();
    assert_eq!(w.len(), 3);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r.get(&a.dst),
        Some(Versioned {
            entry: a.clone(),
            seq: 11
        })
    );
    assert_eq!(r.get(&c.dst).unwrap().entry, c);
    assert_eq!(r.get(&p("10.0.0.0/9")), None);

    // Replace in place.
    let b2 = route(b.dst, 99);
    w.upsert(&b2, 14).unwrap();
    assert_eq!(w.len(), 3);
    assert_eq!(r.get(&b.dst), Some(Versioned { entry: b2, seq: 14 }));

    assert!(w.remove(&a.dst, 15));
    assert!(!w.remove(&a.dst, 16));
    assert_eq!(r.get(&a.dst), None);
    assert_eq!(r.len(), 2);
    assert_eq!(r.entries().len(), 2);

    w.set_table_seq(16);
    assert_eq!(r.table_seq(), 16);

    w.clear(17);
    assert_eq!((w.len(), r.len()), (0, 0));
    assert!(r.entries().is_empty());
    assert_eq!(r.get(&b.dst), None);
    // Usable after clear.
    w.upsert(&a, 18).unwrap();
    assert_eq!(r.get(&a.dst).unwrap().seq, 18);
    assert!(!r.is_retired());
    assert_eq!(w.path(), path.as_path());
    assert_eq!(r.path(), path.as_path());
    no_tmp_files(d.path());
}

#[test]
fn arp_round_trip() {
    let d = dir();
    let path = d.path().join("arp");
    let mut w = ArpWriter::create(&path, 50, 0o644).unwrap();
    let r = ArpReader::open(&path).unwrap();
    let mut model = BTreeMap::new();
    for n in 0..50u32 {
        let e = arp(0x0200_0000_0000 + u64::from(n) * 7, n);
        w.upsert(&e, u64::from(n)).unwrap();
        model.insert(
            e.mac,
            Versioned {
                entry: e,
                seq: u64::from(n),
            },
        );
    }
    for (k, v) in &model {
        assert_eq!(r.get(k).as_ref(), Some(v));
    }
    // In key order already (the model is a BTreeMap).
    assert_eq!(r.entries(), model.values().cloned().collect::<Vec<_>>());
    let gone = *model.keys().next().unwrap();
    assert!(w.remove(&gone, 100));
    model.remove(&gone);
    assert_eq!(r.get(&gone), None);
    assert_eq!(
        sorted(r.entries()),
        model.values().cloned().collect::<Vec<_>>()
    );

    // Republish a different set: new generation, old mapping retired.
    let fresh: Vec<_> = (0..10u32)
        .map(|n| Versioned {
            entry: arp(0x0600_0000_0000 + u64::from(n), n + 1000),
            seq: 500 + u64::from(n),
        })
        .collect();
    w.republish(fresh.clone()).unwrap();
    assert_eq!(w.generation(), 2);
    assert_eq!(w.len(), 10);
    assert!(r.is_retired());
    let r2 = ArpReader::open(&path).unwrap();
    assert_eq!(r2.generation(), 2);
    assert_eq!(sorted(r2.entries()), sorted(fresh));
    // A kind mismatch is refused.
    let e = RouteReader::open(&path).unwrap_err();
    assert!(matches!(e, ShmError::BadFile { .. }), "{e}");
    assert!(e.to_string().contains("arp"), "{e}");
}

#[test]
fn full_leaves_table_unchanged() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 4, 0o644).unwrap();
    let r = RouteReader::open(&path).unwrap();
    let keys: Vec<Prefix> = (0..5u8).map(|i| p(&format!("10.{i}.0.0/16"))).collect();
    for (i, k) in keys[..4].iter().enumerate() {
        w.upsert(&route(*k, i as u32), i as u64).unwrap();
    }
    let before = sorted(r.entries());
    let e = w.upsert(&route(keys[4], 9), 9).unwrap_err();
    assert!(matches!(e, ShmError::Full { capacity: 4 }));
    assert_eq!(e.to_string(), "table full (capacity 4)");
    assert_eq!(w.len(), 4);
    assert_eq!(r.get(&keys[4]), None);
    assert_eq!(sorted(r.entries()), before);
    // Replacing an existing key still works when full.
    w.upsert(&route(keys[0], 42), 10).unwrap();
    assert_eq!(r.get(&keys[0]).unwrap().entry.metric, 42);
    // Republishing too many keys is refused and changes nothing.
    let too_many: Vec<_> = keys
        .iter()
        .map(|k| Versioned {
            entry: route(*k, 1),
            seq: 1,
        })
        .collect();
    assert!(matches!(
        w.republish(too_many),
        Err(ShmError::Full { capacity: 4 })
    ));
    assert_eq!(w.generation(), 1);
    assert!(!r.is_retired());
    assert_eq!(w.len(), 4);
}

/// Random churn against a model; every key must stay findable through compactions.
#[test]
fn churn_and_compaction_keep_every_key() {
    let d = dir();
    let path = d.path().join("arp");
    let cap = 200;
    let mut w = ArpWriter::create(&path, cap, 0o644).unwrap();
    let mut r = ArpReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut model: HashMap<MacAddr, Versioned<ArpEntry>> = HashMap::new();
    for step in 0..20_000u64 {
        let mac = MacAddr::from_u64(rng.random_range(0..400u64) * 0x1_0001);
        if rng.random_bool(0.5) && model.len() < cap {
            let e = arp(mac.to_u64(), step as u32);
            w.upsert(&e, step).unwrap();
            model.insert(
                mac,
                Versioned {
                    entry: e,
                    seq: step,
                },
            );
        } else {
            assert_eq!(w.remove(&mac, step), model.remove(&mac).is_some());
        }
        if step % 97 == 0 {
            let was_retired = r.is_retired();
            assert_eq!(r.refresh().unwrap(), was_retired);
            assert_eq!(r.generation(), w.generation());
            for k in (0..400u64).map(|i| MacAddr::from_u64(i * 0x1_0001)) {
                assert_eq!(r.get(&k).as_ref(), model.get(&k), "step {step} key {k}");
            }
            assert_eq!(r.len(), model.len());
        }
    }
    assert!(w.generation() > 1, "churn never compacted");
    r.refresh().unwrap();
    let mut want: Vec<_> = model.values().cloned().collect();
    want.sort_by_key(|v| v.entry.mac);
    assert_eq!(sorted(r.entries()), want);
    no_tmp_files(d.path());
}

/// Compaction is driven by tombstones: a table where removes can't be trimmed must compact.
#[test]
fn tombstones_trigger_compaction() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 100, 0o644).unwrap(); // 125 slots
    let mut rng = StdRng::seed_from_u64(1);
    let mut live: Vec<Prefix> = Vec::new();
    let mut n = 0u32;
    while w.generation() == 1 {
        // Keep the table 3/4 full of random /32s, removing a random one each time.
        while live.len() < 75 {
            let k = Prefix::truncating(Ipv4Addr::from(rng.random::<u32>()), 32);
            if !live.contains(&k) {
                w.upsert(&route(k, n), u64::from(n)).unwrap();
                live.push(k);
                n += 1;
            }
        }
        let k = live.swap_remove(rng.random_range(0..live.len()));
        assert!(w.remove(&k, u64::from(n)));
        assert!(n < 100_000, "never compacted");
    }
    let r = RouteReader::open(&path).unwrap();
    assert_eq!(r.generation(), 2);
    assert_eq!(r.entries().len(), live.len());
    for k in &live {
        assert_eq!(r.get(k).unwrap().entry.dst, *k);
        // The compacted generation has its LPM arrays rebuilt.
        assert_eq!(r.lookup(k.addr()).unwrap().dst, *k);
    }
}

fn brute_lpm(routes: &BTreeMap<Prefix, Route>, a: Ipv4Addr) -> Option<Route> {
    routes
        .values()
        .filter(|r| r.dst.contains(a))
        .max_by_key(|r| r.dst.len())
        .cloned()
}

#[test]
fn lpm_matches_brute_force() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 600, 0o644).unwrap();
    let r = RouteReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    let mut routes = BTreeMap::new();
    let a = Ipv4Addr::new(192, 0, 2, 77);
    assert_eq!(r.lookup(a), None);
    for round in 0..3 {
        while routes.len() < 200 * (round + 1) {
            // Bias lengths so nesting is common; include /0 and /32.
            // (Short prefixes rewrite millions of tbl24 words: slow in debug builds.)
            let len = match rng.random_range(0..40) {
                0 => 0,
                1..=3 => rng.random_range(1..8),
                4..=7 => 32,
                _ => rng.random_range(8..=31),
            };
            // Few distinct high bits so prefixes overlap.
            let addr = Ipv4Addr::from(rng.random::<u32>() & 0x0f0f_ffff);
            let dst = Prefix::truncating(addr, len);
            let rt = route(dst, rng.random());
            w.upsert(&rt, 1).unwrap();
            routes.insert(dst, rt);
        }
        // Remove a few, including /0 in the second round.
        if round == 1 {
            let zero = p("0.0.0.0/0");
            assert_eq!(w.remove(&zero, 2), routes.remove(&zero).is_some());
        }
        let keys: Vec<Prefix> = routes.keys().copied().collect();
        for k in keys.iter().step_by(7) {
            assert!(w.remove(k, 2));
            routes.remove(k);
        }
        for i in 0..5000 {
            let addr = if i % 2 == 0 {
                Ipv4Addr::from(rng.random::<u32>() & 0x0f0f_ffff)
            } else {
                // Inside or right next to a known prefix.
                let k = keys[rng.random_range(0..keys.len())];
                let host = rng.random::<u32>() & !mask(k.len());
                Ipv4Addr::from(k.addr_u32() | host)
            };
            assert_eq!(r.lookup(addr), brute_lpm(&routes, addr), "{addr}");
        }
    }
    // /0 catches everything once present.
    let dflt = route(p("0.0.0.0/0"), 5);
    w.upsert(&dflt, 3).unwrap();
    assert!(r.lookup(Ipv4Addr::new(255, 255, 255, 255)).is_some());
    let host = route(p("203.0.113.9/32"), 6);
    w.upsert(&host, 4).unwrap();
    assert_eq!(r.lookup(Ipv4Addr::new(203, 0, 113, 9)).unwrap(), host);
    assert_eq!(
        r.lookup(Ipv4Addr::new(203, 0, 113, 8)).unwrap().dst,
        brute_lpm(&routes, Ipv4Addr::new(203, 0, 113, 8)).map_or(dflt.dst, |x| x.dst)
    );
}

#[test]
fn republish_retires_and_refresh_remaps() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 10, 0o644).unwrap();
    w.upsert(&route(p("10.0.0.0/8"), 1), 1).unwrap();
    w.set_table_seq(1);
    let mut r = RouteReader::open(&path).unwrap();
    assert!(!r.refresh().unwrap());
    assert!(!r.is_retired());

    let new = route(p("172.16.0.0/12"), 2);
    w.republish([Versioned {
        entry: new.clone(),
        seq: 7,
    }])
    .unwrap();
    assert!(r.is_retired());
    // The old mapping still reads its old content.
    assert_eq!(r.generation(), 1);
    assert!(r.get(&p("10.0.0.0/8")).is_some());
    assert!(r.refresh().unwrap());
    assert!(!r.is_retired());
    assert_eq!(r.generation(), 2);
    assert_eq!(r.table_seq(), 1, "table_seq carried over");
    assert_eq!(r.get(&p("10.0.0.0/8")), None);
    assert_eq!(r.entries(), vec![Versioned { entry: new, seq: 7 }]);
    assert!(!r.refresh().unwrap());

    // A new writer (daemon restart) continues the generation and retires the old file.
    let w2 = RouteWriter::create(&path, 20, 0o644).unwrap();
    assert_eq!(w2.generation(), 3);
    assert!(r.is_retired());
    assert!(r.refresh().unwrap());
    assert_eq!((r.generation(), r.capacity(), r.len()), (3, 20, 0));
    // The old writer's mapping was retired too (it no longer owns the path).
    drop(w);

    // Replaced by rename without retiring (e.g. a writer that lost the old file): the inode
    // check catches it.
    let other = d.path().join("other");
    let w3 = RouteWriter::create(&other, 5, 0o644).unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert!(!r.is_retired());
    assert!(r.refresh().unwrap());
    assert_eq!(r.capacity(), 5);

    // w2 no longer owns the path: its clean stop leaves the file alone.
    w2.remove_file().unwrap();
    assert!(path.exists());
    assert!(!r.refresh().unwrap());
    w3.remove_file().unwrap(); // its own name is gone: nothing to do
    assert!(path.exists());

    // Clean stop: the file goes away, readers keep their mapping.
    let w4 = RouteWriter::create(&path, 6, 0o644).unwrap();
    assert!(r.is_retired(), "w3's file was valid and ours: retired");
    assert!(r.refresh().unwrap());
    w4.remove_file().unwrap();
    assert!(!path.exists());
    assert!(!r.refresh().unwrap());
    assert_eq!(r.capacity(), 6);
}

#[test]
fn exact_mode_and_generation_rules() {
    let d = dir();
    let path = d.path().join("t");
    let w = ArpWriter::create(&path, 10, 0o640).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    drop(w);
    // A file of another kind at the path doesn't continue its generation.
    let w = RouteWriter::create(&path, 10, 0o644).unwrap();
    assert_eq!(w.generation(), 1);
    let w2 = RouteWriter::create(&path, 10, 0o644).unwrap();
    assert_eq!(w2.generation(), 2);
    drop(w);
    // Garbage at the path: replaced, generation 1.
    std::fs::write(&path, b"hello").unwrap();
    let w3 = RouteWriter::create(&path, 10, 0o644).unwrap();
    assert_eq!(w3.generation(), 1);
    // A stale temporary file from a dead process with our pid doesn't block us.
    let tmp = PathBuf::from(format!("{}.tmp.{}", path.display(), std::process::id()));
    std::fs::write(&tmp, b"stale").unwrap();
    let w4 = RouteWriter::create(&path, 10, 0o644).unwrap();
    assert_eq!(w4.generation(), 2);
    no_tmp_files(d.path());
    // Absurd capacity is an error naming the path.
    let e = RouteWriter::create(&d.path().join("huge"), usize::MAX, 0o644).unwrap_err();
    assert!(e.to_string().contains("huge"), "{e}");
    drop((w2, w3));
}

#[test]
fn bad_files_are_refused() {
    let d = dir();
    // Route files are large (sparse) because of tbl24: patch their header in place.
    let route_case = |name: &str, patch: &dyn Fn(&std::fs::File)| {
        let f = d.path().join(name);
        drop(RouteWriter::create(&f, 10, 0o644).unwrap());
        let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        patch(&file);
        let e = RouteReader::open(&f).unwrap_err();
        assert!(matches!(e, ShmError::BadFile { .. }), "{name}: {e}");
        assert!(e.to_string().contains(name), "{name}: {e}");
        e.to_string()
    };
    use std::os::unix::fs::FileExt;
    let put = |f: &std::fs::File, off: u64, v: u64| f.write_all_at(&v.to_ne_bytes(), off).unwrap();
    assert!(route_case("rversion", &|f| f.write_all_at(&[1], 8).unwrap()).contains("version"));
    route_case("rslots", &|f| put(f, 24, 200));
    route_case("rt24", &|f| put(f, 80, 12288));
    route_case("rt8", &|f| put(f, 88, 4096));
    route_case("rgroups", &|f| put(f, 96, 1));
    route_case("rgroups0", &|f| put(f, 96, 0));
    route_case("rshort", &|f| {
        f.set_len(f.metadata().unwrap().len() - 4).unwrap()
    });

    let path = d.path().join("arp");
    let w = ArpWriter::create(&path, 10, 0o644).unwrap();
    let good = std::fs::read(&path).unwrap();
    drop(w);

    let bad = |name: &str, bytes: &[u8]| {
        let f = d.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let e = ArpReader::open(&f).unwrap_err();
        assert!(matches!(e, ShmError::BadFile { .. }), "{name}: {e}");
        assert!(e.to_string().contains(name), "{name}: {e}");
        e.to_string()
    };
    let mut b = good.clone();
    b[0] ^= 0xff;
    assert!(bad("magic", &b).contains("magic"));
    let mut b = good.clone();
    b[8] = 1;
    assert!(bad("version", &b).contains("version"));
    let mut b = good.clone();
    b[80] = 1; // LPM fields in an arp table
    bad("lpmfields", &b);
    let mut b = good.clone();
    b[24] = 32; // slot count no longer matches the length
    bad("slots", &b);
    let mut b = good.clone();
    b.truncate(good.len() - 64);
    bad("short", &b);
    bad("tiny", &good[..100]);
    bad("empty", &[]);
    let mut b = good.clone();
    b[32] = 200; // capacity >= slot count
    bad("capacity", &b);

    // A symlink to a valid file is refused, not followed.
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let e = RouteReader::open(&link).unwrap_err();
    assert!(
        matches!(&e, ShmError::BadFile { why, .. } if why.contains("symbolic link")),
        "{e}"
    );
    // A directory or a missing file.
    assert!(matches!(
        ArpReader::open(d.path()),
        Err(ShmError::BadFile { .. })
    ));
    let e = ArpReader::open(&d.path().join("missing")).unwrap_err();
    assert!(matches!(e, ShmError::Io { .. }) && e.to_string().contains("missing"));
    // World-writable.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        ArpReader::open(&path),
        Err(ShmError::BadFile { .. })
    ));
}

#[test]
fn writer_never_follows_a_symlink() {
    let d = dir();
    let target = d.path().join("target");
    std::fs::write(&target, b"precious").unwrap();
    let path = d.path().join("routes");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let w = RouteWriter::create(&path, 10, 0o644).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(!std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(w.generation(), 1);
    RouteReader::open(&path).unwrap();

    // A symlink at the temporary name is not followed either: the writer replaces it.
    let tmp = PathBuf::from(format!("{}.tmp.{}", path.display(), std::process::id()));
    std::os::unix::fs::symlink(&target, &tmp).unwrap();
    let w2 = RouteWriter::create(&path, 10, 0o644).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(w2.generation(), 2);
    drop(w);
}

/// A writer that died mid-update leaves a slot odd and its liveness lock released: readers give
/// up on that slot and still find everything else.
#[test]
fn odd_slot_of_a_dead_writer_is_skipped() {
    use super::sync::Ordering::Relaxed;
    let d = dir();
    let path = d.path().join("arp");
    let mut w = ArpWriter::create(&path, 10, 0o644).unwrap();
    let es: Vec<_> = (1..=5u64).map(|i| arp(i, i as u32)).collect();
    for e in &es {
        w.upsert(e, 1).unwrap();
    }
    let r = ArpReader::open(&path).unwrap();
    let victim = es[2].mac;
    let slot = w.slot_of(&victim).unwrap();
    slot.seq.store(slot.seq.load(Relaxed) + 1, Relaxed);
    w.release_liveness_lock();
    let t = std::time::Instant::now();
    assert_eq!(r.get(&victim), None);
    assert_eq!(r.entries().len(), 4);
    for e in &es {
        if e.mac != victim {
            assert_eq!(r.get(&e.mac).unwrap().entry, *e);
        }
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    // A republish (as a restarted writer does) yields a file without odd slots.
    w.republish(es.iter().map(|e| Versioned {
        entry: e.clone(),
        seq: 2,
    }))
    .unwrap();
    let r = ArpReader::open(&path).unwrap();
    assert_eq!(r.entries().len(), 5);
}

/// Makes the slots of these sequence words odd (writes in progress), runs `read` while another
/// thread finishes the writes after `stuck`, or instead releases the writer's lock (its death)
/// when `dies`; returns what `read` returned and the time from just before the slots went odd
/// to its return (so a read that waited for the writes took at least `stuck`).
fn with_slots_stuck<T: Send>(
    w: &RouteWriter,
    slots: &[&super::sync::AtomicU64],
    stuck: std::time::Duration,
    dies: bool,
    read: impl FnOnce() -> T + Send,
) -> (T, std::time::Duration) {
    use super::sync::Ordering::{Relaxed, Release};
    let start = std::time::Instant::now();
    let seqs: Vec<u64> = slots.iter().map(|s| s.load(Relaxed)).collect();
    for s in slots {
        s.store(s.load(Relaxed) + 1, Relaxed);
    }
    std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(stuck);
            if dies {
                w.release_liveness_lock();
            } else {
                for (s, &q) in slots.iter().zip(&seqs) {
                    s.store(q + 2, Release);
                }
            }
        });
        let got = read();
        (got, start.elapsed())
    })
}

/// 10.0.0.0/8 and 10.5.0.0/16 in a fresh route file, a reader of it, and an address in both.
struct Nested {
    _d: tempfile::TempDir,
    w: RouteWriter,
    r: RouteReader,
    wide: Route,
    narrow: Route,
    a: Ipv4Addr,
}

fn nested() -> Nested {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = RouteWriter::create(&path, 100, 0o644).unwrap();
    let (wide, narrow) = (route(p("10.0.0.0/8"), 1), route(p("10.5.0.0/16"), 2));
    w.upsert(&wide, 1).unwrap();
    w.upsert(&narrow, 2).unwrap();
    let r = RouteReader::open(&path).unwrap();
    Nested {
        _d: d,
        w,
        r,
        wide,
        narrow,
        a: "10.5.3.17".parse().unwrap(),
    }
}

/// While the writer holds its liveness lock, a slot it leaves odd for much longer than the
/// readers' patience (a descheduled writer) is waited for: exact and longest-prefix matches get
/// the entry, never a miss or a shorter prefix. Once the lock is gone (a writer that died
/// mid-update) the slot is given up on. Longest-prefix matches read the route's next-hop slot and,
/// after [`LPM_PATIENCE`](super::reader) of retries, probe the hash table; exact matches read its
/// hash slot.
#[test]
fn a_descheduled_writer_is_waited_for() {
    let Nested {
        _d,
        w,
        r,
        narrow,
        a,
        ..
    } = nested();
    let slot = w.slot_of(&narrow.dst).unwrap();
    let hop = w.next_hop_slot_of(&narrow.dst).unwrap();
    let long = super::seqlock::READ_PATIENCE * 25;

    // Both the next-hop slot (the DIR-24-8 path) and the hash slot (the probing fallback, taken
    // after 10 ms) stay odd for 50 ms: neither path may skip them.
    let (got, took) = with_slots_stuck(&w, &[&hop.seq, &slot.seq], long, false, || r.lookup(a));
    assert_eq!(got, Some(narrow.clone()));
    assert!(took >= long, "{took:?}");
    let (got, _) = with_slots_stuck(&w, &[&hop.seq, &slot.seq], long, false, || {
        let mut out = [None];
        r.lookup_batch(&[a], &mut out);
        out[0].take()
    });
    assert_eq!(got, Some(narrow.clone()));
    // A next-hop slot stuck for less than the lookups' patience is waited for on the DIR-24-8
    // path itself: probing the (intact) hash table would have answered at once.
    let short = super::seqlock::READ_PATIENCE * 2;
    let (got, took) = with_slots_stuck(&w, &[&hop.seq], short, false, || r.lookup(a));
    assert_eq!(got, Some(narrow.clone()));
    assert!(took >= short, "{took:?}");
}

/// The exact-match side of [`a_descheduled_writer_is_waited_for`] (a stuck hash or next-hop slot
/// is waited for by `get` and `entries`; a stuck hash slot not by longest-prefix matches), and
/// a writer that dies in the middle of both slots of a route, as in a rewrite of its own
/// next-hop slot: the lookup then probes, skipping the abandoned hash slot, and exact matches
/// skip the route.
#[test]
fn a_dead_writers_slots_are_skipped() {
    let Nested {
        _d,
        w,
        r,
        wide,
        narrow,
        a,
    } = nested();
    let slot = w.slot_of(&narrow.dst).unwrap();
    let hop = w.next_hop_slot_of(&narrow.dst).unwrap();
    let long = super::seqlock::READ_PATIENCE * 25;

    let (got, took) = with_slots_stuck(&w, &[&slot.seq], long, false, || r.get(&narrow.dst));
    assert_eq!(got.map(|v| v.entry), Some(narrow.clone()));
    assert!(took >= long, "{took:?}");
    // An exact match reads the route's next-hop slot too, and waits for it the same way.
    let (got, took) = with_slots_stuck(&w, &[&hop.seq], long, false, || r.get(&narrow.dst));
    assert_eq!(got.map(|v| v.entry), Some(narrow.clone()));
    assert!(took >= long, "{took:?}");
    let (got, took) = with_slots_stuck(&w, &[&slot.seq], long, false, || r.entries());
    assert_eq!(got.len(), 2);
    assert!(took >= long, "{took:?}");
    // A stuck hash slot does not hold up a longest-prefix match at all.
    let (got, took) = with_slots_stuck(&w, &[&slot.seq], long, false, || r.lookup(a));
    assert_eq!(got, Some(narrow.clone()));
    assert!(took < long, "{took:?}");

    // Last: the writer's death cannot be undone.
    let ((hit, got, all), _) = with_slots_stuck(&w, &[&hop.seq, &slot.seq], long, true, || {
        (r.lookup(a), r.get(&narrow.dst), r.entries())
    });
    assert_eq!(hit, Some(wide.clone()));
    assert_eq!(got, None);
    assert_eq!(all.into_iter().map(|v| v.entry).collect::<Vec<_>>(), [wide]);
}

#[test]
fn header_layout_on_disk() {
    let d = dir();
    let path = d.path().join("routes");
    let w = RouteWriter::create(&path, 100, 0o644).unwrap();
    w.set_table_seq(0x1122);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let mut b = vec![0u8; HEADER_SIZE];
    use std::io::Read;
    std::fs::File::open(&path)
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(&b[..8], b"RTMSHM\0\0");
    assert_eq!(u32_at(8), 4);
    assert_eq!(u32_at(12), 1);
    assert_eq!(u32_at(16), 4096);
    assert_eq!(u32_at(20), 32);
    assert_eq!(u64_at(24), 125);
    assert_eq!(u64_at(32), 100);
    assert_eq!(u64_at(40), 1);
    assert_eq!(u32_at(48), 1);
    assert_eq!(u32_at(52), std::process::id());
    assert_eq!(u64_at(72), 0x1122);
    // 125 32-byte slots end at 4096 + 4000; tbl24 starts on the next page, tbl8 64 MiB later,
    // 356 groups, then 356 next-hop slots.
    assert_eq!(u64_at(80), 2 * 4096);
    assert_eq!(u64_at(88), 2 * 4096 + (64 << 20));
    assert_eq!(u64_at(96), 356);
    let nh = 2 * 4096 + (64 << 20) + 356 * 1024;
    assert_eq!(u64_at(104), nh as u64);
    assert_eq!(u64_at(112), 356);
    assert_eq!(len, nh + 356 * 64);
    // Arp files have no LPM arrays.
    let apath = d.path().join("arp");
    let _a = ArpWriter::create(&apath, 100, 0o644).unwrap();
    let ab = std::fs::read(&apath).unwrap();
    assert_eq!(ab.len(), HEADER_SIZE + 125 * 64);
    assert_eq!(u32::from_ne_bytes(ab[20..24].try_into().unwrap()), 64);
    assert_eq!(&ab[80..120], &[0u8; 40]);
    let _ = STATE_RETIRED;
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RouteReader>();
    send_sync::<ArpReader>();
    send_sync::<RouteWriter>();
    send_sync::<ArpWriter>();
}

/// While one thread rewrites two routes as fast as it can (a /16 whose next-hop slot is its own
/// and rewritten in place, and a /24 whose every change moves it to another shared next-hop slot,
/// so slots are let go and refilled while readers follow them), another reads both: every
/// exact-match answer carries the next hop written by the change its sequence number names
/// (metric == sequence), never one from another change, and every answer was current at some
/// moment during the read.
#[test]
fn reads_never_mix_a_next_hop_with_another_change() {
    use std::sync::atomic::{
        AtomicBool, AtomicU64,
        Ordering::{Acquire, Release},
    };
    let d = dir();
    let path = d.path().join("routes");
    // 8 routes of capacity give 264 next-hop slots: once the /24's changes have used the fresh
    // ones up, each slot it lets go is refilled about 260 of its changes later, so a reader
    // descheduled for that long (it happens here) meets a refilled slot.
    let mut w = RouteWriter::create(&path, 8, 0o644).unwrap();
    let private = route(p("10.5.0.0/16"), 0);
    let shared = route(p("10.6.1.0/24"), 0);
    let with = |r: &Route, k: u64| Route {
        metric: k as u32,
        ..r.clone()
    };
    w.upsert(&route(p("10.0.0.0/8"), 0), 1).unwrap();
    w.upsert(&with(&private, 2), 2).unwrap();
    w.upsert(&with(&shared, 3), 3).unwrap();
    let r = RouteReader::open(&path).unwrap();
    // The last change made so far: changes k >= 4 alternate between the /16 (even k) and the
    // /24 (odd k).
    let done = AtomicU64::new(3);
    let stop = AtomicBool::new(false);
    const CHANGES: u64 = 100_000;
    let addrs: [(Prefix, Ipv4Addr); 2] = [
        (private.dst, "10.5.9.9".parse().unwrap()),
        (shared.dst, "10.6.1.77".parse().unwrap()),
    ];
    let read_all = || {
        let mut reads = 0u64;
        while !stop.load(Acquire) || reads < 1000 {
            for (dst, a) in addrs {
                let before = done.load(Acquire);
                let got = r.get(&dst).expect("the route is always present");
                let hit = r.lookup(a).expect("the route is always present");
                let after = done.load(Acquire);
                assert_eq!(u64::from(got.entry.metric), got.seq, "mixed answer {got:?}");
                // The answer's change is this route's and was made by `after + 1` at the latest
                // (that one may be in progress), and no earlier than the route's last change
                // made by `before`.
                let parity = u64::from(dst == shared.dst);
                let latest = if before % 2 == parity {
                    before
                } else {
                    before - 1
                };
                for (what, m) in [("get", got.seq), ("lookup", u64::from(hit.metric))] {
                    assert_eq!(m % 2, parity, "{what} of {dst}: change {m} is not its own");
                    assert!(
                        (latest..=after + 1).contains(&m),
                        "{what} of {dst} answered change {m}, not current between {before} and {after}"
                    );
                }
                assert_eq!(hit.dst, dst);
                reads += 1;
            }
        }
        reads
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 4..CHANGES {
                let target = if k % 2 == 0 { &private } else { &shared };
                w.upsert(&with(target, k), k).unwrap();
                done.store(k, Release);
            }
            stop.store(true, Release);
        });
        // Two readers: one is often descheduled while the other and the writer run.
        let other = s.spawn(read_all);
        assert!(read_all() >= 1000);
        assert!(other.join().expect("reader panicked") >= 1000);
    });
}
