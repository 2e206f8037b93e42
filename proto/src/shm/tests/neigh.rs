//! The neighbour table: the kernel's key (IP, device), lookups by IP and by MAC that stay right
//! through changes, removals, growth and compaction, the limit, files that are not what they
//! claim, and readers racing the writer.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{arps_at, dir, neighs_at, no_tmp_files};
use crate::shm::{NeighReader, ShmError, TableReader, TableWriter, Versioned};
use crate::types::{IfName, MacAddr, NeighKey, Neighbour, Origin};

fn n(ip: &str, dev: &str, mac: u64, origin: Origin) -> Neighbour {
    Neighbour {
        ip: ip.parse().unwrap(),
        dev: dev.parse().unwrap(),
        mac: MacAddr::from_u64(mac),
        origin,
    }
}

fn dev(s: &str) -> IfName {
    s.parse().unwrap()
}

fn entries_of(vs: Vec<Versioned<Neighbour>>) -> Vec<Neighbour> {
    vs.into_iter().map(|v| v.entry).collect()
}

/// What the model says `by_ip` and `by_mac` answer.
fn model_by_ip(
    m: &BTreeMap<NeighKey, Versioned<Neighbour>>,
    ip: Ipv4Addr,
) -> Vec<Versioned<Neighbour>> {
    m.values().filter(|v| v.entry.ip == ip).cloned().collect()
}

fn model_by_mac(
    m: &BTreeMap<NeighKey, Versioned<Neighbour>>,
    mac: MacAddr,
) -> Vec<Versioned<Neighbour>> {
    m.values().filter(|v| v.entry.mac == mac).cloned().collect()
}

/// Entries written come back by key, by IP and by MAC, with their origin, in key order.
#[test]
fn neigh_round_trip() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 100);
    let es = [
        n("10.0.0.2", "eth0", 0x0200_0000_0001, Origin::Kernel),
        n("10.0.0.1", "eth1", 0x0200_0000_0002, Origin::Rtm),
        n("10.0.0.1", "eth0", 0x0200_0000_0003, Origin::Kernel),
    ];
    for (i, e) in es.iter().enumerate() {
        w.upsert(e, i as u64 + 1).unwrap();
    }
    let r = NeighReader::open(&path).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!((w.len_of(Origin::Kernel), w.len_of(Origin::Rtm)), (2, 1));
    for (i, e) in es.iter().enumerate() {
        let want = Versioned {
            entry: e.clone(),
            seq: i as u64 + 1,
        };
        assert_eq!(r.lookup(e.ip, &e.dev).unwrap().as_ref(), Some(&want));
        assert_eq!(r.get(&e.key()).as_ref(), Some(&want));
        assert_eq!(w.get(&e.key()).as_ref(), Some(&want));
        assert_eq!(r.by_mac(&e.mac).unwrap(), vec![want]);
    }
    let keys: Vec<NeighKey> = r.entries().iter().map(|v| v.entry.key()).collect();
    assert_eq!(keys, [es[2].key(), es[1].key(), es[0].key()]);
    assert_eq!(r.entries(), w.entries());
    assert_eq!(r.lookup(es[0].ip, &dev("eth1")).unwrap(), None);
    assert_eq!(
        r.lookup("10.0.0.9".parse().unwrap(), &dev("eth0")).unwrap(),
        None
    );
    assert!(r
        .by_mac(&MacAddr::from_u64(0x0200_0000_0009))
        .unwrap()
        .is_empty());
    // A kernel entry rewritten by rtm reads back as rtm's.
    let mut e = es[0].clone();
    e.origin = Origin::Rtm;
    w.upsert(&e, 9).unwrap();
    assert_eq!(r.get(&e.key()).unwrap().entry.origin, Origin::Rtm);
    assert_eq!((w.len_of(Origin::Kernel), w.len_of(Origin::Rtm)), (1, 2));
    no_tmp_files(d.path());
}

/// One MAC answering for several IPs (and on several devices) loses none of them; one IP on
/// several devices is one entry per device.
#[test]
fn one_mac_many_ips_one_ip_many_devices() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 100);
    let mac = 0x0242_ac11_0002;
    let shared: Vec<Neighbour> = (1..=5)
        .map(|i| n(&format!("192.168.1.{i}"), "eth0", mac, Origin::Kernel))
        .chain([n("192.168.1.1", "eth1", mac, Origin::Kernel)])
        .collect();
    let other = n("192.168.1.1", "eth2", 0x0242_ac11_0003, Origin::Kernel);
    for (i, e) in shared.iter().chain([&other]).enumerate() {
        w.upsert(e, i as u64).unwrap();
    }
    let r = NeighReader::open(&path).unwrap();
    let mut want = shared.clone();
    want.sort_by_key(Neighbour::key);
    assert_eq!(entries_of(r.by_mac(&MacAddr::from_u64(mac)).unwrap()), want);
    let ip1: Ipv4Addr = "192.168.1.1".parse().unwrap();
    let devs: Vec<IfName> = r.by_ip(ip1).unwrap().iter().map(|v| v.entry.dev).collect();
    assert_eq!(devs, [dev("eth0"), dev("eth1"), dev("eth2")]);
    assert_eq!(r.lookup(ip1, &dev("eth2")).unwrap().unwrap().entry, other);
    assert_eq!(r.by_ip("192.168.1.3".parse().unwrap()).unwrap().len(), 1);
    assert!(r.by_ip("192.168.1.9".parse().unwrap()).unwrap().is_empty());
}

/// Removing an entry, or moving it to another MAC, leaves both indices right: the MAC no
/// longer finds it, its IP's other devices are still found.
#[test]
fn removal_and_a_new_mac_keep_both_indices_right() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 100);
    let (m1, m2) = (0x0200_0000_0001, 0x0200_0000_0002);
    let a = n("10.1.0.1", "eth0", m1, Origin::Kernel);
    let b = n("10.1.0.1", "eth1", m1, Origin::Kernel);
    let c = n("10.1.0.2", "eth0", m1, Origin::Kernel);
    for (i, e) in [&a, &b, &c].into_iter().enumerate() {
        w.upsert(e, i as u64).unwrap();
    }
    let r = NeighReader::open(&path).unwrap();
    assert!(w.remove(&a.key(), 10).unwrap());
    assert!(!w.remove(&a.key(), 11).unwrap());
    assert_eq!(
        entries_of(r.by_mac(&a.mac).unwrap()),
        [b.clone(), c.clone()]
    );
    assert_eq!(entries_of(r.by_ip(a.ip).unwrap()), std::slice::from_ref(&b));
    assert_eq!(r.lookup(a.ip, &a.dev).unwrap(), None);
    // b moves to another MAC.
    let mut b2 = b.clone();
    b2.mac = MacAddr::from_u64(m2);
    w.upsert(&b2, 12).unwrap();
    assert_eq!(
        entries_of(r.by_mac(&a.mac).unwrap()),
        std::slice::from_ref(&c)
    );
    assert_eq!(entries_of(r.by_mac(&b2.mac).unwrap()), [b2.clone()]);
    assert_eq!(entries_of(r.by_ip(a.ip).unwrap()), [b2.clone()]);
    // a comes back, into a slot a removal freed.
    w.upsert(&a, 13).unwrap();
    assert_eq!(entries_of(r.by_mac(&a.mac).unwrap()), [a.clone(), c]);
    assert_eq!(entries_of(r.by_ip(a.ip).unwrap()), [a, b2]);
    assert_eq!(r.len(), 3);
    assert_eq!(w.len(), 3);
}

/// Random churn against a model, few MACs shared by many keys and few IPs on several devices:
/// every answer stays right through growth and compaction, and a reader following the
/// generations always agrees.
#[test]
fn churn_grows_and_compacts() {
    let d = dir();
    let path = d.path().join("neigh");
    let cap = 1500;
    let mut w = neighs_at(&path, cap);
    let mut r = NeighReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut model: BTreeMap<NeighKey, Versioned<Neighbour>> = BTreeMap::new();
    let ip = |i: u32| Ipv4Addr::from(0x0a00_0000 + i);
    let mac = |i: u64| MacAddr::from_u64(0x0200_0000_0000 + i);
    let mut generations = std::collections::BTreeSet::new();
    for step in 0..30_000u64 {
        let key = NeighKey {
            ip: ip(rng.random_range(0..700)),
            dev: dev(&format!("eth{}", rng.random_range(0..3))),
        };
        let fill = (step / 7_500) % 2 == 0;
        if rng.random_bool(if fill { 0.7 } else { 0.3 }) && model.len() < cap {
            let e = Neighbour {
                ip: key.ip,
                dev: key.dev,
                mac: mac(rng.random_range(0..200)),
                origin: if step % 3 == 0 {
                    Origin::Rtm
                } else {
                    Origin::Kernel
                },
            };
            w.upsert(&e, step).unwrap();
            model.insert(
                key,
                Versioned {
                    entry: e,
                    seq: step,
                },
            );
        } else {
            assert_eq!(w.remove(&key, step).unwrap(), model.remove(&key).is_some());
        }
        generations.insert(w.generation());
        if step % 499 == 0 {
            r.refresh().unwrap();
            assert_eq!(r.generation(), w.generation());
            assert_eq!(r.len(), model.len());
            for i in (0..700).step_by(13) {
                assert_eq!(
                    r.by_ip(ip(i)).unwrap(),
                    model_by_ip(&model, ip(i)),
                    "step {step}"
                );
            }
            for i in (0..200).step_by(7) {
                assert_eq!(
                    r.by_mac(&mac(i)).unwrap(),
                    model_by_mac(&model, mac(i)),
                    "step {step}"
                );
            }
            assert_eq!(r.get(&key).as_ref(), model.get(&key));
            let kernel = model
                .values()
                .filter(|v| v.entry.origin == Origin::Kernel)
                .count();
            assert_eq!(w.len_of(Origin::Kernel), kernel);
        }
    }
    assert!(
        generations.len() > 3,
        "the table never grew or shrank ({generations:?})"
    );
    r.refresh().unwrap();
    assert_eq!(r.entries(), model.values().cloned().collect::<Vec<_>>());
    no_tmp_files(d.path());
}

/// Many neighbours sharing one MAC (Calico gives every pod ee:ee:ee:ee:ee:ee; proxy ARP and
/// load balancers answer many addresses with one MAC) put all their MAC slots on one probe
/// path. The writer's adds, MAC changes and removals still read a few MAC slots each, not the
/// whole run of that MAC's slots, and both indices stay right.
#[test]
fn one_mac_for_thousands_of_neighbours_costs_the_writer_few_probes_per_change() {
    const N: u32 = 5_000;
    /// MAC slots the writer may read per change, on average over a phase: a few for the change
    /// itself, and its share of the rebuilds that growth and TOMBSTONEs bring. Before the
    /// writer kept its own index of MAC slots, an add or removal read the whole run, thousands.
    const PER_CHANGE: u64 = 16;
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, N as usize);
    let r = || NeighReader::open(&path).unwrap();
    let (shared, other) = (0xeeee_eeee_eeee, 0x0200_0000_0001);
    let e = |i: u32, mac: u64| Neighbour {
        ip: Ipv4Addr::from(0x0a00_0000 + i),
        dev: dev("cali0"),
        mac: MacAddr::from_u64(mac),
        origin: Origin::Kernel,
    };
    let mut seq = 0u64;
    let mut seen = 0u64;
    let mut phase = |w: &crate::shm::NeighWriter, what: &str, changes: u32| {
        let probes = w.mac_probes() - seen;
        seen = w.mac_probes();
        eprintln!("{what}: {probes} MAC slots read for {changes} changes");
        assert!(
            probes <= u64::from(changes) * PER_CHANGE,
            "{what}: {probes} MAC slots read for {changes} changes"
        );
    };
    for i in 0..N {
        seq += 1;
        w.upsert(&e(i, shared), seq).unwrap();
    }
    phase(&w, "adds", N);
    assert_eq!(
        r().by_mac(&MacAddr::from_u64(shared)).unwrap().len(),
        N as usize
    );
    // Every third entry moves to another MAC and back.
    for mac in [other, shared] {
        for i in (0..N).step_by(3) {
            seq += 1;
            w.upsert(&e(i, mac), seq).unwrap();
        }
    }
    phase(&w, "MAC changes", 2 * N.div_ceil(3));
    // The first half goes (leaving TOMBSTONEs in the run) and comes back.
    for i in 0..N / 2 {
        seq += 1;
        assert!(w.remove(&e(i, shared).key(), seq).unwrap());
    }
    for i in 0..N / 2 {
        seq += 1;
        w.upsert(&e(i, shared), seq).unwrap();
    }
    phase(&w, "removals and re-adds", N);
    let by_mac = r().by_mac(&MacAddr::from_u64(shared)).unwrap();
    assert_eq!(
        entries_of(by_mac),
        (0..N).map(|i| e(i, shared)).collect::<Vec<_>>()
    );
    assert!(r().by_mac(&MacAddr::from_u64(other)).unwrap().is_empty());
    // Then all go, the last added first.
    for i in (0..N).rev() {
        seq += 1;
        assert!(w.remove(&e(i, shared).key(), seq).unwrap());
    }
    phase(&w, "removals", N);
    assert!(r().by_mac(&MacAddr::from_u64(shared)).unwrap().is_empty());
    assert_eq!((w.len(), r().len()), (0, 0));
}

/// Random adds, MAC changes and removals among three MACs, so that each MAC's slots form long
/// runs that the writer's hints must follow while slots in them empty and fill: after every
/// few changes every MAC's answer is the model's, and so is every address's.
#[test]
fn runs_of_few_macs_stay_whole_through_churn() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 300);
    let r = || NeighReader::open(&path).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let mut model: BTreeMap<NeighKey, Versioned<Neighbour>> = BTreeMap::new();
    let mac = |j: u64| MacAddr::from_u64(0xeeee_eeee_ee00 + j);
    for step in 1..6_000u64 {
        let e = Neighbour {
            ip: Ipv4Addr::from(0x0a09_0000 + rng.random_range(0..250u32)),
            dev: dev("cali0"),
            mac: mac(rng.random_range(0..3)),
            origin: Origin::Kernel,
        };
        let ip = e.ip;
        if rng.random_bool(0.6) {
            w.upsert(&e, step).unwrap();
            model.insert(
                e.key(),
                Versioned {
                    entry: e,
                    seq: step,
                },
            );
        } else {
            assert_eq!(
                w.remove(&e.key(), step).unwrap(),
                model.remove(&e.key()).is_some()
            );
        }
        if step % 3 == 0 {
            let r = r();
            for j in 0..3 {
                assert_eq!(
                    r.by_mac(&mac(j)).unwrap(),
                    model_by_mac(&model, mac(j)),
                    "step {step}"
                );
            }
            assert_eq!(r.by_ip(ip).unwrap(), model_by_ip(&model, ip), "step {step}");
        }
    }
    assert_eq!(r().entries(), model.values().cloned().collect::<Vec<_>>());
}

/// A MAC's slot that is the start of the writer's search for it, emptied and then taken by
/// another MAC, is that MAC's start no longer: once it is EMPTY again with an EMPTY slot before
/// it, a new slot of the first MAC goes to its home, where readers look, not past the gap.
#[test]
fn a_slot_taken_by_another_mac_stops_being_the_first_macs_start() {
    use crate::shm::neigh::layout::home;
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 100);
    // 64 MAC slots (header, 64 device names, 64 entry slots and 64 MAC slots).
    let n = 64;
    let homed = |h: usize| (0x0200_0000_0000u64..).find(|&m| home(m, n) == h).unwrap();
    let (m, m2, m3) = (homed(10), homed(12), homed(11));
    let e = |i: u32, mac: u64| Neighbour {
        ip: Ipv4Addr::from(0x0a0a_0000 + i),
        dev: dev("eth0"),
        mac: MacAddr::from_u64(mac),
        origin: Origin::Kernel,
    };
    let (x, a, b, c, y) = (e(1, m), e(2, m), e(3, m2), e(4, m3), e(5, m));
    // Slots 10, 11, 12: x and a (MAC m), b (m2).
    for (s, v) in [&x, &a, &b].into_iter().enumerate() {
        w.upsert(v, s as u64 + 1).unwrap();
    }
    assert_eq!(w.allocated_bytes(), 12 * 1024);
    // Slot 11 becomes a TOMBSTONE, which c (m3, homed there) takes.
    assert!(w.remove(&a.key(), 4).unwrap());
    w.upsert(&c, 5).unwrap();
    // Slots 12, 11, 10 empty in turn.
    for (s, v) in [&b, &c, &x].into_iter().enumerate() {
        assert!(w.remove(&v.key(), s as u64 + 6).unwrap());
    }
    w.upsert(&y, 9).unwrap();
    let r = NeighReader::open(&path).unwrap();
    assert_eq!(entries_of(r.by_mac(&y.mac).unwrap()), [y]);
}

/// Clearing empties both indices; the table fills again afterwards.
#[test]
fn clear_empties_both_indices() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 100);
    let e = n("10.0.0.1", "eth0", 0x0200_0000_0001, Origin::Kernel);
    w.upsert(&e, 1).unwrap();
    let r = NeighReader::open(&path).unwrap();
    // Header, 64 device names, 64 entry slots and 64 MAC slots, in whole pages.
    assert_eq!(w.allocated_bytes(), 12 * 1024);
    w.clear(2);
    assert!(r.entries().is_empty());
    assert!(r.by_mac(&e.mac).unwrap().is_empty());
    assert!(r.by_ip(e.ip).unwrap().is_empty());
    assert_eq!((r.len(), w.len(), w.len_of(Origin::Kernel)), (0, 0, 0));
    w.upsert(&e, 3).unwrap();
    assert_eq!(entries_of(r.by_mac(&e.mac).unwrap()), [e]);
}

/// A full table refuses a new key and changes nothing; an existing key may still change.
#[test]
fn a_full_table_refuses_a_new_key_and_changes_nothing() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 10);
    for i in 0..10u32 {
        let e = n(
            &format!("10.0.0.{i}"),
            "eth0",
            0x0200_0000_0001,
            Origin::Kernel,
        );
        w.upsert(&e, u64::from(i)).unwrap();
    }
    let r = NeighReader::open(&path).unwrap();
    let (before, generation) = (r.entries(), w.generation());
    let e = w
        .upsert(
            &n("10.0.0.99", "eth9", 0x0200_0000_0001, Origin::Kernel),
            20,
        )
        .unwrap_err();
    assert!(matches!(e, ShmError::Full { capacity: 10 }), "{e}");
    assert_eq!(
        (r.entries(), w.generation(), w.len()),
        (before.clone(), generation, 10)
    );
    assert_eq!(
        r.by_mac(&MacAddr::from_u64(0x0200_0000_0001)).unwrap(),
        before
    );
    let e = w
        .republish(
            (0..11)
                .map(|i| Versioned {
                    entry: n(&format!("10.0.1.{i}"), "eth0", 1, Origin::Rtm),
                    seq: 0,
                })
                .collect(),
        )
        .unwrap_err();
    assert!(matches!(e, ShmError::Full { capacity: 10 }), "{e}");
    assert_eq!(w.generation(), generation);
    w.upsert(&n("10.0.0.3", "eth0", 0x0200_0000_0002, Origin::Kernel), 21)
        .unwrap();
    assert_eq!(
        r.by_mac(&MacAddr::from_u64(0x0200_0000_0002))
            .unwrap()
            .len(),
        1
    );
}

/// A file of another kind, and a neighbour file whose header misplaces the MAC slots, are
/// refused; so is a neighbour file opened as an ARP file.
#[test]
fn files_that_are_not_neighbour_files_are_refused() {
    use std::os::unix::fs::FileExt;
    let d = dir();
    let arp = d.path().join("arp");
    let _a = arps_at(&arp, 10);
    assert!(matches!(
        NeighReader::open(&arp),
        Err(ShmError::BadFile { .. })
    ));
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 10);
    w.upsert(&n("10.0.0.1", "eth0", 1, Origin::Kernel), 1)
        .unwrap();
    assert!(matches!(
        crate::shm::ArpReader::open(&path),
        Err(ShmError::BadFile { .. })
    ));
    // The header's region words are at byte 88; word 4 places the MAC slots.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let at = 88 + 8 * crate::shm::neigh::layout::REGION_MACS as u64;
    f.write_all_at(&(1u64 << 40).to_le_bytes(), at).unwrap();
    let e = NeighReader::open(&path).unwrap_err();
    assert!(e.to_string().contains("inconsistent regions"), "{e}");
}

/// A writer that died in the middle of an entry slot leaves it odd and its liveness lock
/// released: readers skip that slot (by IP and by MAC) and still find the rest. One that is
/// alive but stopped makes a read through that slot answer busy instead of waiting.
#[test]
fn a_dead_writers_slot_is_skipped_a_stopped_one_is_busy() {
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 10);
    let mac = 0x0200_0000_0007;
    let es: Vec<_> = ["eth0", "eth1", "eth2"]
        .map(|dv| n("10.0.0.1", dv, mac, Origin::Kernel))
        .into();
    for e in &es {
        w.upsert(e, 1).unwrap();
    }
    let r = NeighReader::open(&path).unwrap();
    let victim = es[1].key();
    let seq_word = w.slot_seq_of(&victim).expect("present");
    seq_word.fetch_add(1, Ordering::Relaxed);
    assert!(matches!(r.by_ip(victim.ip), Err(ShmError::Busy { .. })));
    assert!(matches!(r.by_mac(&es[0].mac), Err(ShmError::Busy { .. })));
    w.release_liveness_lock();
    let rest = vec![es[0].clone(), es[2].clone()];
    assert_eq!(entries_of(r.by_ip(victim.ip).unwrap()), rest);
    assert_eq!(entries_of(r.by_mac(&es[0].mac).unwrap()), rest);
    assert_eq!(r.get(&victim), None);
}

/// The entry of change `c` for key `k` of the race below: its MAC is one of a few, derived
/// from `c`, and the sequence number is `c`.
fn race_entry(k: u32, c: u64) -> Neighbour {
    Neighbour {
        ip: Ipv4Addr::from(0x0a07_0000 + k / 3),
        dev: format!("e{}", k % 3).parse().unwrap(),
        mac: MacAddr::from_u64(0x0200_0000_0000 + (c * 31 + u64::from(k)) % 5),
        origin: if c % 2 == 0 {
            Origin::Kernel
        } else {
            Origin::Rtm
        },
    }
}

/// Steady entry `j` of the race below: never changed during it, on an address of its own, with
/// one of the MACs the racing entries move between.
fn steady_entry(j: u64) -> Neighbour {
    Neighbour {
        ip: Ipv4Addr::from(0x0a08_0000 + j as u32),
        dev: dev("s0"),
        mac: MacAddr::from_u64(0x0200_0000_0000 + j),
        origin: Origin::Kernel,
    }
}

/// Readers on other threads while the writer moves entries between a few MACs, removes and
/// re-adds them and republishes generations: every answer by IP or by MAC is an entry the
/// writer wrote, whole, with the IP or MAC asked for; and every answer holds the steady
/// entries it asks for, which share those MACs but never change.
#[test]
fn readers_racing_the_writer_never_see_a_wrong_neighbour() {
    const KEYS: u32 = 48;
    const STEADY: u64 = 5;
    let d = dir();
    let path = d.path().join("neigh");
    let mut w = neighs_at(&path, 64);
    for j in 0..STEADY {
        w.upsert(&steady_entry(j), 0).unwrap();
    }
    let stop = AtomicBool::new(false);
    let (reads, steady_reads) = (AtomicU64::new(0), AtomicU64::new(0));
    // An entry read is right if it is a steady entry or what change `seq` wrote for its key.
    let right = |v: &Versioned<Neighbour>| {
        if v.entry.dev == dev("s0") {
            return v.seq == 0 && (0..STEADY).any(|j| steady_entry(j) == v.entry);
        }
        let k = (u32::from(v.entry.ip) - 0x0a07_0000) * 3
            + v.entry.dev.to_string()[1..].parse::<u32>().unwrap();
        k < KEYS && race_entry(k, v.seq) == v.entry
    };
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (stop, reads, steady_reads, path, right) =
                (&stop, &reads, &steady_reads, &path, &right);
            s.spawn(move || {
                let mut r = NeighReader::open(path).unwrap();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    r.refresh().unwrap();
                    i += 1;
                    let ip = Ipv4Addr::from(0x0a07_0000 + (i % 16) as u32);
                    for v in r.by_ip(ip).unwrap() {
                        assert!(v.entry.ip == ip && right(&v), "by_ip({ip}): {v:?}");
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    let mac = steady_entry(i % STEADY).mac;
                    let by_mac = r.by_mac(&mac).unwrap();
                    for v in &by_mac {
                        assert!(v.entry.mac == mac && right(v), "by_mac({mac}): {v:?}");
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    // Every MAC asked for is a steady entry's.
                    let s = steady_entry(i % STEADY);
                    assert!(
                        by_mac.iter().any(|v| v.entry == s),
                        "by_mac({mac}) missed {s:?}: {by_mac:?}"
                    );
                    let ip = s.ip;
                    assert_eq!(entries_of(r.by_ip(ip).unwrap()), [s], "by_ip({ip})");
                    steady_reads.fetch_add(2, Ordering::Relaxed);
                }
            });
        }
        let mut present = [false; KEYS as usize];
        for c in 1..200_000u64 {
            let k = (c % u64::from(KEYS)) as u32;
            if present[k as usize] && c % 7 == 0 {
                assert!(w.remove(&race_entry(k, c).key(), c).unwrap());
                present[k as usize] = false;
            } else {
                w.upsert(&race_entry(k, c), c).unwrap();
                present[k as usize] = true;
            }
            if c % 20_000 == 0 {
                w.republish(w.entries()).unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(steady_reads.load(Ordering::Relaxed) > 0);
}
