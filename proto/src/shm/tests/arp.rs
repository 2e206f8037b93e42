//! The ARP table: round trips, churn through growth and compaction, and a writer that died or
//! stopped in the middle of a slot.

use std::collections::{BTreeMap, HashMap};

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{arp, arps_at, dir, no_tmp_files};
use crate::shm::{ArpReader, ShmError, TableReader, TableWriter, Versioned};
use crate::types::MacAddr;

#[test]
fn arp_round_trip() {
    let d = dir();
    let path = d.path().join("arp");
    let mut w = arps_at(&path, 50);
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
    let mut r = r;
    r.refresh().unwrap();
    for (k, v) in &model {
        assert_eq!(r.get(k).as_ref(), Some(v));
    }
    assert_eq!(r.entries(), model.values().cloned().collect::<Vec<_>>());
    let e = w.upsert(&arp(0x0300_0000_0000, 1), 101).unwrap_err();
    assert!(matches!(e, ShmError::Full { capacity: 50 }), "{e}");
    let gone = *model.keys().next().unwrap();
    assert!(w.remove(&gone, 100).unwrap());
    model.remove(&gone);
    assert_eq!(r.get(&gone), None);
    assert_eq!(r.entries(), model.values().cloned().collect::<Vec<_>>());
    w.clear(102);
    assert!(r.entries().is_empty());
    no_tmp_files(d.path());
}

/// Random churn against a model; every key stays findable through growth and compactions, and
/// a reader following the generations always agrees.
#[test]
fn churn_grows_and_compacts() {
    let d = dir();
    let path = d.path().join("arp");
    let cap = 2000;
    let mut w = arps_at(&path, cap);
    let mut r = ArpReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut model: HashMap<MacAddr, Versioned<_>> = HashMap::new();
    let mut generations = 1;
    for step in 0..40_000u64 {
        let mac = MacAddr::from_u64(rng.random_range(0..3000u64) * 0x1_0001);
        // The table fills, then drains, then fills again.
        let fill = (step / 10_000) % 2 == 0;
        if rng.random_bool(if fill { 0.7 } else { 0.3 }) && model.len() < cap {
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
            assert_eq!(w.remove(&mac, step).unwrap(), model.remove(&mac).is_some());
        }
        if w.generation() != generations {
            generations = w.generation();
        }
        if step % 211 == 0 {
            r.refresh().unwrap();
            assert_eq!(r.generation(), w.generation());
            for k in (0..3000u64)
                .step_by(7)
                .map(|i| MacAddr::from_u64(i * 0x1_0001))
            {
                assert_eq!(r.get(&k).as_ref(), model.get(&k), "step {step} key {k}");
            }
            assert_eq!(r.len(), model.len());
        }
    }
    assert!(
        generations > 3,
        "the table never grew or shrank ({generations})"
    );
    r.refresh().unwrap();
    let mut want: Vec<_> = model.values().cloned().collect();
    want.sort_by_key(|v| v.entry.mac);
    assert_eq!(r.entries(), want);
    no_tmp_files(d.path());
}

/// A writer that died in the middle of a slot leaves it odd and its liveness lock released:
/// readers skip that slot and still find everything else. One that is alive but stopped makes
/// a read through that slot answer busy instead of waiting.
#[test]
fn a_dead_writers_slot_is_skipped_a_stopped_one_is_busy() {
    let d = dir();
    let path = d.path().join("arp");
    let mut w = arps_at(&path, 10);
    let es: Vec<_> = (1..=5u64).map(|i| arp(i, i as u32)).collect();
    for e in &es {
        w.upsert(e, 1).unwrap();
    }
    let r = ArpReader::open(&path).unwrap();
    let victim = es[2].mac;
    let seq_word = w.slot_seq_of(&victim).expect("present");
    seq_word.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Alive (the writer holds its lock): busy, not a wrong answer.
    assert!(matches!(r.lookup(&victim), Err(ShmError::Busy { .. })));
    // Dead: skipped.
    w.release_liveness_lock();
    assert_eq!(r.get(&victim), None);
    for e in es.iter().filter(|e| e.mac != victim) {
        assert_eq!(r.get(&e.mac).unwrap().entry, *e);
    }
}

/// Many device names: the table that grows its name region past the first capacity (and a
/// reservation that asks for an odd one) stays readable, each entry with its device.
#[test]
fn many_device_names_stay_readable() {
    use crate::shm::Planned;
    use crate::types::ArpEntry;
    let d = dir();
    let path = d.path().join("arp");
    let mut w = arps_at(&path, 1000);
    let entry = |n: u32| ArpEntry {
        mac: MacAddr::from_u64(0x0200_0000_0000 + u64::from(n)),
        ip: std::net::Ipv4Addr::from(0x0a00_0000 + n),
        dev: Some(format!("veth{n}").parse().unwrap()),
    };
    for n in 0..125 {
        w.upsert(&entry(n), u64::from(n) + 1).unwrap();
    }
    // More names than the capacity has room for, reserved together as a batch would: the
    // name region grows by an odd count of names unless it is rounded.
    let more: Vec<ArpEntry> = (125..256).map(entry).collect();
    w.reserve(more.iter().map(Planned::Put)).unwrap();
    for (i, e) in more.iter().enumerate() {
        w.upsert(e, 100 + i as u64).unwrap();
    }
    let r = ArpReader::open(&path).unwrap();
    for n in 0..256 {
        let e = entry(n);
        assert_eq!(r.get(&e.mac).map(|v| v.entry), Some(e), "entry {n}");
    }
}
