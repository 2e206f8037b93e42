//! The route file's own rules: round trips, limits, generations and retirement, modes, bad and
//! planted files, growth in place, and the header's byte offsets.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::{dir, lookup, no_tmp_files, p, route, routes_at};
use crate::shm::{
    Planned, RouteReader, RouteWriter, ShmError, TableReader, TableWriter, Versioned,
};
use crate::types::{Prefix, Route};

#[test]
fn route_round_trip() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 100);
    assert_eq!((w.len(), w.capacity(), w.generation()), (0, 100, 1));
    let r = RouteReader::open(&path).unwrap();
    assert_eq!((r.len(), r.capacity(), r.generation()), (0, 100, 1));
    assert!(r.is_empty() && w.is_empty());

    let a = route(p("10.0.0.0/8"), 1);
    let b = route(p("10.1.0.0/16"), 2);
    let c = route(p("0.0.0.0/0"), 3);
    let e = route(p("10.1.2.0/24"), 4);
    for (x, s) in [(&a, 11), (&b, 12), (&c, 13), (&e, 14)] {
        w.upsert(x, s).unwrap();
    }
    assert_eq!((w.len(), r.len()), (4, 4));
    assert_eq!(
        r.get(&a.dst),
        Some(Versioned {
            entry: a.clone(),
            seq: 11
        })
    );
    assert_eq!(r.get(&c.dst).unwrap().entry, c);
    assert_eq!(r.get(&p("10.0.0.0/9")), None);
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 1, 2, 3)), Some(e.clone()));
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 1, 3, 3)), Some(b.clone()));

    // Replace: same key, other next hop.
    let b2 = route(b.dst, 99);
    w.upsert(&b2, 15).unwrap();
    assert_eq!(w.len(), 4);
    assert_eq!(
        r.get(&b.dst),
        Some(Versioned {
            entry: b2.clone(),
            seq: 15
        })
    );
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 1, 3, 3)), Some(b2));

    assert!(w.remove(&a.dst, 16).unwrap());
    assert!(!w.remove(&a.dst, 17).unwrap());
    assert_eq!(r.get(&a.dst), None);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r.entries().iter().map(|v| v.entry.dst).collect::<Vec<_>>(),
        vec![c.dst, b.dst, e.dst],
        "key order"
    );
    w.set_table_seq(16);
    assert_eq!(r.table_seq(), 16);

    w.clear(17);
    assert_eq!((w.len(), r.len()), (0, 0));
    assert!(r.entries().is_empty());
    assert_eq!(r.get(&b.dst), None);
    assert_eq!(lookup(&r, Ipv4Addr::new(10, 1, 2, 3)), None);
    // Usable after clear.
    w.upsert(&a, 18).unwrap();
    assert_eq!(r.get(&a.dst).unwrap().seq, 18);
    assert!(!r.is_retired());
    assert_eq!(w.path(), path.as_path());
    assert_eq!(r.path(), path.as_path());
    no_tmp_files(d.path());
}

#[test]
fn full_leaves_table_unchanged() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 4);
    let r = RouteReader::open(&path).unwrap();
    let keys: Vec<Prefix> = (0..5u8).map(|i| p(&format!("10.{i}.0.0/16"))).collect();
    for (i, k) in keys[..4].iter().enumerate() {
        w.upsert(&route(*k, i as u32), i as u64).unwrap();
    }
    let before = r.entries();
    let e = w.upsert(&route(keys[4], 9), 9).unwrap_err();
    assert!(matches!(e, ShmError::Full { capacity: 4 }));
    assert_eq!(e.to_string(), "table full (capacity 4)");
    assert_eq!(w.len(), 4);
    assert_eq!(r.get(&keys[4]), None);
    assert_eq!(r.entries(), before);
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

#[test]
fn republish_retires_and_refresh_remaps() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 10);
    w.upsert(&route(p("10.0.0.0/8"), 1), 1).unwrap();
    w.set_table_seq(1);
    let mut r = RouteReader::open(&path).unwrap();
    assert!(!r.refresh().unwrap());
    assert!(!r.is_retired());

    let new = route(p("172.16.0.0/12"), 2);
    w.republish(vec![Versioned {
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
    let w2 = routes_at(&path, 20);
    assert_eq!(w2.generation(), 3);
    assert!(r.is_retired());
    assert!(r.refresh().unwrap());
    assert_eq!((r.generation(), r.capacity(), r.len()), (3, 20, 0));
    drop(w);

    // Replaced by rename without retiring: the inode check catches it.
    let other = d.path().join("other");
    let w3 = routes_at(&other, 5);
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
    let w4 = routes_at(&path, 6);
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
    let w = super::arps_at(&path, 10);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    drop(w);
    assert_eq!(mode, 0o644);
    let w = RouteWriter::create(&path, 10, 0o640, Vec::new(), 0).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    // A file of another kind at the path doesn't continue its generation.
    assert_eq!(w.generation(), 1);
    let w2 = routes_at(&path, 10);
    assert_eq!(w2.generation(), 2);
    drop(w);
    // Garbage at the path: replaced, generation 1.
    std::fs::write(&path, b"hello").unwrap();
    let w3 = routes_at(&path, 10);
    assert_eq!(w3.generation(), 1);
    // A stale temporary file from a dead process with our pid doesn't block us.
    let tmp = PathBuf::from(format!("{}.tmp.{}", path.display(), std::process::id()));
    std::fs::write(&tmp, b"stale").unwrap();
    let w4 = routes_at(&path, 10);
    assert_eq!(w4.generation(), 2);
    no_tmp_files(d.path());
    drop((w2, w3));
}

#[test]
fn bad_files_are_refused() {
    let d = dir();
    let case = |name: &str, patch: &dyn Fn(&std::fs::File)| {
        let f = d.path().join(name);
        drop(routes_at(&f, 10));
        let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        patch(&file);
        let e = RouteReader::open(&f).unwrap_err();
        assert!(matches!(e, ShmError::BadFile { .. }), "{name}: {e}");
        assert!(e.to_string().contains(name), "{name}: {e}");
        e.to_string()
    };
    use std::os::unix::fs::FileExt;
    let put = |f: &std::fs::File, off: u64, v: u64| f.write_all_at(&v.to_ne_bytes(), off).unwrap();
    assert!(case("magic", &|f| f.write_all_at(&[0], 0).unwrap()).contains("magic"));
    assert!(case("version", &|f| f.write_all_at(&[4], 8).unwrap()).contains("version"));
    assert!(case("kind", &|f| f.write_all_at(&[2], 12).unwrap()).contains("arp"));
    case("family", &|f| f.write_all_at(&[6], 20).unwrap());
    assert!(case("incompat", &|f| put(f, 176, 1 << 3)).contains("incompat bits 0x8"));
    case("filelen", &|f| put(f, 72, 1 << 40));
    case("maplen", &|f| put(f, 80, 12345));
    case("tier1", &|f| put(f, 88, 8192));
    case("nhcap", &|f| put(f, 104, 3));
    case("short", &|f| f.set_len(100).unwrap());
    // The empty file, a directory, a symlink, a missing file, a world-writable one.
    let empty = d.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        RouteReader::open(&empty),
        Err(ShmError::BadFile { .. })
    ));
    assert!(matches!(
        RouteReader::open(d.path()),
        Err(ShmError::BadFile { .. })
    ));
    let good = d.path().join("good");
    drop(routes_at(&good, 10));
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let e = RouteReader::open(&link).unwrap_err();
    assert!(
        matches!(&e, ShmError::BadFile { why, .. } if why.contains("symbolic link")),
        "{e}"
    );
    let e = RouteReader::open(&d.path().join("missing")).unwrap_err();
    assert!(matches!(e, ShmError::Io { .. }) && e.to_string().contains("missing"));
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        RouteReader::open(&good),
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
    let w = routes_at(&path, 10);
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
    let w2 = routes_at(&path, 10);
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(w2.generation(), 2);
    drop(w);
}

/// The file starts small and grows in place as routes arrive; a reader opened on the small
/// file follows the growth without reopening, and the file never holds far more than the
/// table needs.
#[test]
fn the_file_grows_with_the_table_and_readers_follow() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 200_000);
    let small = w.allocated_bytes();
    assert!(small < 1 << 20, "an empty route file holds {small} bytes");
    let r = RouteReader::open(&path).unwrap();
    let mut seq = 0;
    let keys: Vec<Prefix> = (0..50_000u32)
        .map(|i| Prefix::truncating(Ipv4Addr::from(0x0a00_0000 + i * 256), 24))
        .collect();
    for chunk in keys.chunks(1000) {
        let routes: Vec<_> = chunk.iter().map(|k| route(*k, seq as u32 % 7)).collect();
        w.reserve(routes.iter().map(Planned::Put)).unwrap();
        for rt in &routes {
            seq += 1;
            w.upsert(rt, seq).unwrap();
        }
    }
    assert_eq!(w.generation(), 1, "grew in place");
    let big = w.allocated_bytes();
    assert!(big > small);
    assert!(big < 64 * 50_000 + (2 << 20), "{big} bytes for 50k routes");
    eprintln!("{big} bytes for 50k routes, {small} empty");
    for k in keys.iter().step_by(997) {
        assert_eq!(lookup(&r, k.addr()).unwrap().dst, *k);
        assert_eq!(r.get(k).unwrap().entry.dst, *k);
    }
    assert_eq!(r.entries().len(), keys.len());
}

/// The header's fields at the offsets the layout documents, on disk.
#[test]
fn header_layout_on_disk() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 77);
    w.upsert(&route(p("10.0.0.0/24"), 1), 5).unwrap();
    w.set_table_seq(5);
    let b = std::fs::read(&path).unwrap();
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(&b[..8], b"RTMSHM\0\0");
    assert_eq!(u32_at(8), 5, "layout version");
    assert_eq!(u32_at(12), 1, "kind");
    assert_eq!(u32_at(16), 4096, "header size");
    assert_eq!(u32_at(20), 4, "family");
    assert_eq!(u32_at(28), std::process::id(), "writer pid");
    assert_eq!(u64_at(32), 1, "generation");
    assert_eq!(u32_at(40), 1, "state");
    assert_eq!(u64_at(56), 5, "table seq");
    assert_eq!(u64_at(64), 1, "live");
    assert_eq!(u64_at(72), b.len() as u64, "file length");
    assert_eq!(u64_at(88), 4096, "tier 1");
    assert_eq!(u64_at(120), 4096 + 4 * 65536, "values");
    assert_eq!(
        u64_at(96),
        u64_at(120) + 4 * 1024,
        "next hops (1024 values)"
    );
    assert_eq!(u64_at(128), u64_at(96) + 64 * u64_at(104), "LPM heap");
    assert_eq!(u64_at(112), u64_at(128) + 64 * u64_at(136), "block heap");
    assert_eq!(
        u64_at(152) * 64 + u64_at(112),
        b.len() as u64,
        "block heap lines"
    );
    assert!(
        u64_at(168) > 0 && u64_at(168) <= u64_at(136),
        "LPM heap lines"
    );
    assert_eq!(u64_at(160), 77, "limit");
    assert_eq!(u64_at(176), 0, "incompat features");
    assert_ne!(u32_at(2048 + 4 * 10), 0, "top_lpm[10]");
    assert_ne!(u32_at(3072 + 4 * 10), 0, "top_blk[10]");
}

#[test]
fn handles_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    fn send<T: Send>() {}
    both::<RouteReader>();
    both::<crate::shm::ArpReader>();
    send::<RouteWriter>();
    send::<crate::shm::ArpWriter>();
}

/// A reader that only ever looks up in batches follows a grown LPM heap: pages made after it
/// opened the file, past the lines it knew, holding plain values (no chunk), still answer.
#[test]
fn batched_lookups_follow_a_grown_heap() {
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 10_000);
    let r = RouteReader::open(&path).unwrap();
    // One /18 in each of 40 /8s: 40 pages of 64 lines, well past the first heap's headroom.
    let routes: Vec<Route> = (1..=40u32)
        .map(|i| route(Prefix::truncating(Ipv4Addr::from(i << 24), 18), i))
        .collect();
    for (seq, rt) in routes.iter().enumerate() {
        w.upsert(rt, seq as u64 + 1).unwrap();
    }
    let addrs: Vec<Ipv4Addr> = routes.iter().map(|rt| rt.dst.addr()).collect();
    let mut out = vec![None; addrs.len()];
    r.lookup_nh_batch(&addrs, &mut out).unwrap();
    for (rt, got) in routes.iter().zip(&out) {
        assert_eq!(
            got.map(|g| g.dst),
            Some(rt.dst),
            "batched lookup of {}",
            rt.dst
        );
    }
    let mut full = vec![None; addrs.len()];
    r.lookup_batch(&addrs, &mut full).unwrap();
    assert!(full
        .iter()
        .zip(&routes)
        .all(|(g, rt)| g.as_ref() == Some(rt)));
}

/// A /18 filled one route at a time rewrites its entry block with every change, one line longer
/// now and then: the copies it leaves behind must come back (merged) for the next, longer copy,
/// else the heap grows with every change and a new generation follows another.
#[test]
fn a_dense_block_written_a_route_at_a_time_reuses_its_old_copies() {
    let d = dir();
    let path = d.path().join("routes");
    let routes: Vec<Route> = (0..4096u32)
        .map(|i| Route {
            dst: format!("198.19.{}.{}/32", i >> 8, i & 0xff)
                .parse()
                .unwrap(),
            via: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dev: None,
            metric: 7,
            nexthops: Vec::new(),
            origin: Default::default(),
        })
        .collect();
    let mut w = routes_at(&path, 8192);
    for (i, r) in routes.iter().enumerate() {
        w.upsert(r, i as u64 + 1).unwrap();
    }
    let one_by_one = std::fs::metadata(&path).unwrap().len();
    let at_once_path = d.path().join("at-once");
    let entries = routes
        .iter()
        .enumerate()
        .map(|(i, r)| Versioned {
            entry: r.clone(),
            seq: i as u64 + 1,
        })
        .collect();
    let at_once = RouteWriter::create(&at_once_path, 8192, 0o644, entries, 4096).unwrap();
    let built = std::fs::metadata(&at_once_path).unwrap().len();
    assert_eq!(w.generation(), 1, "growing republished the table");
    assert!(
        one_by_one <= 2 * built,
        "{one_by_one} bytes written a route at a time, {built} built at once"
    );
    assert_eq!(w.len(), at_once.len());
}

/// A route's origin is its own: the same next hop under two origins reads back with each
/// route's own, through every read (exact match, longest-prefix match, next-hop lookups, the
/// whole table) and after the table is rebuilt from its entries.
#[test]
fn origins_are_kept_per_route_whatever_the_next_hop() {
    use crate::types::Origin;
    let d = dir();
    let path = d.path().join("routes");
    let mut w = routes_at(&path, 100);
    let r = RouteReader::open(&path).unwrap();
    let with = |dst: &str, origin| Route {
        nexthops: Vec::new(),
        origin,
        ..route(p(dst), 1)
    };
    // Both tiers, and a /32 inside a /24 of the other origin.
    let routes = [
        with("10.0.0.0/8", Origin::Kernel),
        with("10.1.2.0/24", Origin::Rtm),
        with("10.1.2.3/32", Origin::Kernel),
        with("192.168.0.0/16", Origin::Rtm),
    ];
    for (i, x) in routes.iter().enumerate() {
        w.upsert(x, i as u64 + 1).unwrap();
    }
    let check = |r: &RouteReader, routes: &[Route]| {
        for x in routes {
            assert_eq!(r.get(&x.dst).unwrap().entry, *x, "get {}", x.dst);
            assert_eq!(lookup(r, x.dst.addr()), Some(x.clone()), "lookup {}", x.dst);
            let n = r.lookup_nh(x.dst.addr()).unwrap().unwrap();
            assert_eq!((n.dst, n.origin), (x.dst, x.origin), "lookup_nh {}", x.dst);
        }
        let mut all: Vec<Route> = r.entries().into_iter().map(|v| v.entry).collect();
        all.sort_by_key(|x| x.dst);
        let mut want = routes.to_vec();
        want.sort_by_key(|x| x.dst);
        assert_eq!(all, want);
    };
    check(&r, &routes);
    let kernel = |w: &RouteWriter| (w.len_of(Origin::Kernel), w.len_of(Origin::Rtm));
    assert_eq!(kernel(&w), (2, 2));
    // Only the origin changes: the next hop stays, the answers change.
    let mut flipped = routes.clone();
    for (i, x) in flipped.iter_mut().enumerate() {
        x.origin = if x.origin == Origin::Rtm {
            Origin::Kernel
        } else {
            Origin::Rtm
        };
        w.upsert(x, 10 + i as u64).unwrap();
    }
    check(&r, &flipped);
    assert_eq!(kernel(&w), (2, 2));
    w.remove(&flipped[1].dst, 20).unwrap();
    assert_eq!(kernel(&w), (1, 2), "the /24 was the kernel's");
    // Rebuilt whole from its own entries: the same.
    w.republish(w.entries()).unwrap();
    let r = RouteReader::open(&path).unwrap();
    let rest = [flipped[0].clone(), flipped[2].clone(), flipped[3].clone()];
    check(&r, &rest);
    assert_eq!(kernel(&w), (1, 2));
    w.clear(30);
    assert_eq!(kernel(&w), (0, 0));
}
