//! Multi-process torn-read stress test of the neighbour file.
//!
//! As `shm_stress.rs` for routes: the test re-executes its own binary as reader processes that
//! map the neighbour file read-only while this process changes entries as fast as it can —
//! moving them between a few shared MACs, removing and re-adding them, republishing
//! generations (see `common`). Every field of an entry derives from the counter `n` of the
//! change that wrote it (its sequence number), so a torn read, or an answer by IP or by MAC
//! that holds an entry with another IP or MAC, shows. A few steady entries, written before the
//! readers start and never changed, share the churning MACs: every read by their IP, their
//! key or their MAC must find them, so an answer that misses an entry also shows. Readers exit
//! non-zero on the first.
#![forbid(unsafe_code)]
#![cfg(not(loom))]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;

use common::Stress;
use rtm_proto::shm::{NeighWriter, TableReader, TableWriter, Versioned};
use rtm_proto::{IfName, MacAddr, Neighbour, Origin};

const STRESS: Stress = Stress {
    test: "neigh_torn_read_stress",
    role_env: "RTM_SHM_NEIGH_STRESS_READER",
    tag: "READS ",
    counted: "consistent reads",
};
/// Distinct (IP, device) keys: IPs on one to three devices each.
const KEYS: u32 = 600;
/// Distinct MACs the entries share.
const MACS: u64 = 37;
/// Steady entries: never changed after the start, each with one of the first shared MACs.
const STEADY: u8 = 5;

fn key_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (i / 3).wrapping_mul(0x9e37_79b9) >> 8)
}

fn key_dev(i: u32) -> IfName {
    format!("dev{}", i % 3).parse().unwrap()
}

fn mac(j: u64) -> MacAddr {
    MacAddr::from_u64(0x0200_0000_0000 + j)
}

/// Steady entry `j`: on an address no churning key has (TEST-NET-1), with MAC `j`.
fn steady(j: u8) -> Neighbour {
    Neighbour {
        ip: Ipv4Addr::new(192, 0, 2, j),
        dev: "steady0".parse().unwrap(),
        mac: mac(u64::from(j)),
        origin: Origin::Kernel,
    }
}

/// The steady entry `v` claims to be, if it is on a steady entry's address.
fn steady_of(v: &Neighbour) -> Option<Neighbour> {
    let [a, b, c, j] = v.ip.octets();
    ((a, b, c) == (192, 0, 2)).then(|| steady(j))
}

/// The entry written for change `n` of key `n % KEYS`: every field derives from `n`.
fn neigh_for(n: u64) -> Neighbour {
    let i = (n % u64::from(KEYS)) as u32;
    Neighbour {
        ip: key_ip(i),
        dev: key_dev(i),
        mac: mac(n.wrapping_mul(7919) % MACS),
        origin: if n % 2 == 0 {
            Origin::Kernel
        } else {
            Origin::Rtm
        },
    }
}

/// Checks an entry read by a reader against the formula.
fn check(v: &Versioned<Neighbour>) -> Result<(), String> {
    let want = steady_of(&v.entry).unwrap_or_else(|| neigh_for(v.seq));
    if v.entry != want {
        return Err(format!(
            "torn entry: got {:?} seq {}, want {want:?}",
            v.entry, v.seq
        ));
    }
    Ok(())
}

fn reader_main(path: &Path) -> Result<u64, String> {
    let mut reads = 0u64;
    let mut x = std::process::id().wrapping_mul(0x2545_f491) | 1;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut round = 0u64;
    common::read_rounds::<Neighbour>(path, |r| {
        round += 1;
        for _ in 0..200 {
            let i = rand() % KEYS;
            let ip = key_ip(i);
            for v in r.by_ip(ip).map_err(|e| e.to_string())? {
                check(&v)?;
                if v.entry.ip != ip {
                    return Err(format!("by_ip({ip}) returned {:?}", v.entry));
                }
                reads += 1;
            }
            if let Some(v) = r.lookup(ip, &key_dev(i)).map_err(|e| e.to_string())? {
                check(&v)?;
                if v.entry.key() != neigh_for(u64::from(i)).key() {
                    return Err(format!(
                        "lookup({ip}, {}) returned {:?}",
                        key_dev(i),
                        v.entry
                    ));
                }
                reads += 1;
            }
            let mj = u64::from(rand()) % MACS;
            let m = mac(mj);
            let mut found_steady = false;
            for v in r.by_mac(&m).map_err(|e| e.to_string())? {
                check(&v)?;
                if v.entry.mac != m {
                    return Err(format!("by_mac({m}) returned {:?}", v.entry));
                }
                found_steady |= steady_of(&v.entry).is_some();
                reads += 1;
            }
            if mj < u64::from(STEADY) && !found_steady {
                return Err(format!("by_mac({m}) missed {:?}", steady(mj as u8)));
            }
            // A steady entry is always there, by address, by key and by MAC.
            let s = steady((rand() % u32::from(STEADY)) as u8);
            let by_ip = r.by_ip(s.ip).map_err(|e| e.to_string())?;
            if by_ip.iter().map(|v| &v.entry).ne([&s]) {
                return Err(format!("by_ip({}) returned {by_ip:?}, want {s:?}", s.ip));
            }
            let got = r.lookup(s.ip, &s.dev).map_err(|e| e.to_string())?;
            if got.as_ref().map(|v| &v.entry) != Some(&s) {
                return Err(format!("lookup({}, {}) returned {got:?}", s.ip, s.dev));
            }
            reads += 2;
        }
        if round % 16 == 0 {
            for v in r.entries() {
                check(&v)?;
                reads += 1;
            }
        }
        Ok(())
    })?;
    Ok(reads)
}

#[test]
fn neigh_torn_read_stress() {
    if STRESS.reader(reader_main) {
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("neigh");
    let limit = KEYS as usize + usize::from(STEADY);
    let mut w = NeighWriter::create(&path, limit, 0o644, Vec::new(), 0).unwrap();
    let mut n = 0u64;
    for _ in 0..KEYS {
        w.upsert(&neigh_for(n), n).unwrap();
        n += 1;
    }
    for j in 0..STEADY {
        w.upsert(&steady(j), n).unwrap();
        n += 1;
    }

    let mut present = vec![true; KEYS as usize];
    let republished = STRESS.write_while_read::<Neighbour>(&path, &mut w, n, |w, n| {
        let i = (n % u64::from(KEYS)) as usize;
        // Every 5th change of a present key removes it; an absent key is re-added.
        if present[i] && n % 5 == 0 {
            assert!(w.remove(&neigh_for(n).key(), n).unwrap());
            present[i] = false;
        } else {
            w.upsert(&neigh_for(n), n).unwrap();
            present[i] = true;
        }
    });
    assert!(republished > 0);
}
