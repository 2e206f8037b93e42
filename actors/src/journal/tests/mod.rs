//! The journal's behaviour through its API and its files: round trips, torn tails, corruption,
//! compaction, symlinks, locking and a failed write.

use super::format::{decode_records, FILE_HEADER, FRAME_HEADER, SNAP_MAGIC};
use super::record::{RecordRef, RecordV1, RecordV2};
use super::*;
use crc32c::crc32c;
use rtm_proto::types::route_v1::RouteV1;
use rtm_proto::{ArpEntry, MacAddr, Origin, Prefix, Route};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

fn route(i: u32) -> Route {
    Route {
        dst: Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap(),
        via: Some(Ipv4Addr::new(192, 168, 1, (i % 250) as u8 + 1)),
        dev: Some("eth0".parse().unwrap()),
        metric: i,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

fn fast() -> JournalOptions {
    JournalOptions {
        fsync: FsyncPolicy::Never,
        compact_min: DEFAULT_COMPACT_MIN,
    }
}

type Map = BTreeMap<Prefix, Versioned<Route>>;

fn open(dir: &Path) -> Result<(Journal<Route>, Recovered<Route>), JournalError> {
    Journal::open(dir, "route", fast())
}

/// Applies records to a model map, as replay should.
fn model(map: &mut Map, recs: &[JournalRecord<Route>]) {
    for r in recs {
        match r {
            JournalRecord::Put { seq, entry } => {
                map.insert(
                    entry.dst,
                    Versioned {
                        entry: entry.clone(),
                        seq: *seq,
                    },
                );
            }
            JournalRecord::Del { key, .. } => {
                map.remove(key);
            }
            JournalRecord::Flush { .. } => map.clear(),
        }
    }
}

fn puts(seqs: std::ops::RangeInclusive<u64>) -> Vec<JournalRecord<Route>> {
    seqs.map(|s| JournalRecord::Put {
        seq: s,
        entry: route(s as u32),
    })
    .collect()
}

#[test]
fn crc32c_known_answer() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn staged_by_reference_decodes_to_the_record() {
    let kernel = Route {
        nexthops: Vec::new(),
        origin: Origin::Kernel,
        ..route(8)
    };
    let recs: Vec<JournalRecord<Route>> = vec![
        JournalRecord::Put {
            seq: 1,
            entry: route(7),
        },
        JournalRecord::Put {
            seq: 2,
            entry: kernel.clone(),
        },
        JournalRecord::Del {
            seq: 300,
            key: route(7).dst,
        },
        JournalRecord::Flush { seq: 1 << 40 },
    ];
    for r in &recs {
        let by_ref = match r {
            JournalRecord::Put { seq, entry } => {
                postcard::to_allocvec(&RecordRef::put(*seq, entry))
            }
            JournalRecord::Del { seq, key } => {
                let r: RecordRef<'_, Route> = RecordRef::Del { seq: *seq, key };
                postcard::to_allocvec(&r)
            }
            JournalRecord::Flush { seq } => {
                let r: RecordRef<'_, Route> = RecordRef::Flush { seq: *seq };
                postcard::to_allocvec(&r)
            }
        }
        .unwrap();
        assert_eq!(
            &decode_records::<Route>(&by_ref, FORMAT_VERSION).unwrap(),
            std::slice::from_ref(r)
        );
    }
    // The origin costs one byte per entry (format 2), nothing per delete or flush; a route's
    // (empty) nexthops one more (format 3).
    let v1 = postcard::to_allocvec(&RecordV1::<_, Prefix>::Put {
        seq: 2,
        entry: RouteV1(kernel.clone()),
    })
    .unwrap();
    let v2 = postcard::to_allocvec(&RecordV2::<_, Prefix>::Put {
        seq: 2,
        origin: kernel.origin.as_u8(),
        entry: RouteV1(kernel.clone()),
    })
    .unwrap();
    let v3 = postcard::to_allocvec(&RecordRef::put(2, &kernel)).unwrap();
    assert_eq!(v2.len(), v1.len() + 1);
    assert_eq!(v3.len(), v2.len() + 1);
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Map::new();
    {
        let (mut j, rec) = open(dir.path()).unwrap();
        assert!(rec.entries.is_empty());
        assert_eq!(rec.seq, 0);
        let b1 = puts(1..=10);
        j.append(&b1).unwrap();
        model(&mut want, &b1);
        let b2 = vec![
            JournalRecord::Del {
                seq: 11,
                key: route(3).dst,
            },
            JournalRecord::Put {
                seq: 12,
                entry: Route {
                    metric: 99,
                    ..route(4)
                },
            },
        ];
        j.append(&b2).unwrap();
        model(&mut want, &b2);
        // Staged by reference, committed once.
        j.stage_put(13, &route(100)).unwrap();
        j.stage_del(14, &route(5).dst).unwrap();
        assert_eq!(j.staged(), 2);
        j.commit().unwrap();
        model(
            &mut want,
            &[
                JournalRecord::Put {
                    seq: 13,
                    entry: route(100),
                },
                JournalRecord::Del {
                    seq: 14,
                    key: route(5).dst,
                },
            ],
        );
        assert_eq!(j.last_seq(), 14);
    }
    let (j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.seq, 14);
    assert_eq!(rec.replayed, 14);
    assert_eq!(rec.truncated_tail, None);
    // Opening compacted: everything is in the snapshot now.
    assert_eq!(j.journal_len(), FILE_HEADER as u64);
    drop(j);
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.seq, 14);
    assert_eq!(rec.replayed, 0);
    assert_eq!(rec.from_snapshot, want.len() as u64);
}

#[test]
fn arp_round_trip_and_kind_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let e = ArpEntry {
        mac: MacAddr([0, 0x11, 0x22, 0x33, 0x44, 0x55]),
        ip: Ipv4Addr::new(192, 168, 1, 10),
        dev: None,
    };
    {
        let (mut j, _) = Journal::<ArpEntry>::open(dir.path(), "arp", fast()).unwrap();
        j.append(&[JournalRecord::Put {
            seq: 1,
            entry: e.clone(),
        }])
        .unwrap();
    }
    let (_, rec) = Journal::<ArpEntry>::open(dir.path(), "arp", fast()).unwrap();
    assert_eq!(rec.entries[&e.mac].entry, e);
    // The ARP files read as a route table: refused, naming the file.
    std::fs::rename(dir.path().join("arp.snap"), dir.path().join("route.snap")).unwrap();
    let err = open(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, JournalError::BadHeader { .. }), "{msg}");
    assert!(
        msg.contains("route.snap") && msg.contains("arp table"),
        "{msg}"
    );
}

#[test]
fn flush_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&puts(1..=5)).unwrap();
        j.append(&[
            JournalRecord::Flush { seq: 6 },
            JournalRecord::Put {
                seq: 7,
                entry: route(42),
            },
        ])
        .unwrap();
        j.append(&[JournalRecord::Flush { seq: 8 }]).unwrap();
        j.append(&[JournalRecord::Put {
            seq: 9,
            entry: route(43),
        }])
        .unwrap();
    }
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.seq, 9);
    assert_eq!(rec.entries.len(), 1);
    assert_eq!(rec.entries[&route(43).dst].seq, 9);
}

#[test]
fn seq_never_goes_backwards_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&puts(1..=3)).unwrap();
        // Emptying the table must not lose the counter.
        j.append(&[
            JournalRecord::Del {
                seq: 4,
                key: route(1).dst,
            },
            JournalRecord::Flush { seq: 10 },
        ])
        .unwrap();
    }
    let (mut j, rec) = open(dir.path()).unwrap();
    assert!(rec.entries.is_empty());
    assert_eq!(rec.seq, 10);
    let err = j.append(&[JournalRecord::Flush { seq: 10 }]).unwrap_err();
    assert!(matches!(
        err,
        JournalError::SeqOrder {
            seq: 10,
            last: 10,
            ..
        }
    ));
    assert!(j.compact([], 9).is_err());
    j.append(&[JournalRecord::Flush { seq: 11 }]).unwrap();
    drop(j);
    // Twice, so the seq passes through a snapshot-only state too.
    for _ in 0..2 {
        let (_, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.seq, 11);
    }
}

/// Writes a journal with two batches without letting `open` compact it; returns the
/// state after the first batch, the journal bytes and the offset of the second frame.
fn two_batches(dir: &Path) -> (Map, Map, Vec<u8>, usize) {
    let (mut j, _) = open(dir).unwrap();
    let b1 = puts(1..=4);
    let b2 = vec![
        JournalRecord::Put {
            seq: 5,
            entry: route(5),
        },
        JournalRecord::Del {
            seq: 6,
            key: route(2).dst,
        },
    ];
    j.append(&b1).unwrap();
    let mid = j.journal_len() as usize;
    j.append(&b2).unwrap();
    let mut after1 = Map::new();
    model(&mut after1, &b1);
    let mut after2 = after1.clone();
    model(&mut after2, &b2);
    let bytes = std::fs::read(j.journal_path()).unwrap();
    assert_eq!(bytes.len() as u64, j.journal_len());
    (after1, after2, bytes, mid)
}

#[test]
fn torn_tail_at_every_offset_recovers_the_previous_batch() {
    let src = tempfile::tempdir().unwrap();
    let (after1, after2, bytes, mid) = two_batches(src.path());
    let snap = std::fs::read(src.path().join("route.snap")).unwrap();
    for cut in mid..=bytes.len() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("route.snap"), &snap).unwrap();
        std::fs::write(dir.path().join("route.journal"), &bytes[..cut]).unwrap();
        let (j, rec) = open(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        if cut == bytes.len() {
            assert_eq!(rec.entries, after2);
            assert_eq!(rec.seq, 6);
            assert_eq!(rec.truncated_tail, None);
        } else {
            assert_eq!(rec.entries, after1, "cut at {cut}");
            assert_eq!(rec.seq, 4, "cut at {cut}");
            let want = (cut > mid).then_some(mid as u64);
            assert_eq!(rec.truncated_tail, want, "cut at {cut}");
        }
        // The torn bytes are gone: the next start is clean.
        assert_eq!(j.journal_len(), FILE_HEADER as u64);
        drop(j);
        let (_, again) = open(dir.path()).unwrap();
        assert_eq!(again.truncated_tail, None);
        assert_eq!(again.entries, rec.entries);
    }
}

#[test]
fn garbage_after_the_last_frame_is_a_torn_tail() {
    let src = tempfile::tempdir().unwrap();
    let (_, after2, mut bytes, _) = two_batches(src.path());
    let end = bytes.len();
    // A crash can leave zeros (or anything) after the last complete frame.
    bytes.extend_from_slice(&[0u8; 100]);
    std::fs::write(src.path().join("route.journal"), &bytes).unwrap();
    let (_, rec) = open(src.path()).unwrap();
    assert_eq!(rec.entries, after2);
    assert_eq!(rec.truncated_tail, Some(end as u64));
}

#[test]
fn corruption_before_a_valid_frame_is_an_error() {
    let src = tempfile::tempdir().unwrap();
    let (_, _, bytes, mid) = two_batches(src.path());
    // A flipped bit anywhere in the first frame (header or payload) is followed by the
    // valid second frame: that is damage to acknowledged data, not a torn write.
    for at in [FILE_HEADER, FILE_HEADER + 5, FILE_HEADER + 21, mid - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        std::fs::write(src.path().join("route.journal"), &bad).unwrap();
        let err = open(src.path()).unwrap_err();
        let msg = err.to_string();
        match err {
            JournalError::Corrupt {
                offset,
                next_valid,
                ref path,
                ..
            } => {
                assert_eq!(offset, FILE_HEADER as u64, "{msg}");
                assert_eq!(next_valid, Some(mid as u64), "{msg}");
                assert!(path.ends_with("route.journal"));
            }
            other => panic!("flip at {at}: {other}"),
        }
        assert!(
            msg.contains("route.journal") && msg.contains("offset 40"),
            "{msg}"
        );
    }
    // The files were not touched by the failed opens.
    std::fs::write(src.path().join("route.journal"), &bytes).unwrap();
    assert!(open(src.path()).is_ok());
}

#[test]
fn corrupt_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&puts(1..=20)).unwrap();
    }
    drop(open(dir.path()).unwrap()); // compacts into the snapshot
    let path = dir.path().join("route.snap");
    let mut snap = std::fs::read(&path).unwrap();
    let n = snap.len();
    snap[n - 3] ^= 1;
    std::fs::write(&path, &snap).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(err, JournalError::Corrupt { offset: 40, .. }),
        "{err}"
    );
    // A snapshot cut short is not a torn tail either.
    snap[n - 3] ^= 1;
    std::fs::write(&path, &snap[..n - 3]).unwrap();
    assert!(matches!(
        open(dir.path()).unwrap_err(),
        JournalError::Corrupt { .. }
    ));
}

#[test]
fn compaction_keeps_the_state_and_shrinks_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        fsync: FsyncPolicy::Never,
        compact_min: 4096,
    };
    let mut want = Map::new();
    let (mut j, _) = Journal::<Route>::open(dir.path(), "route", opts).unwrap();
    let mut seq = 0;
    while !j.needs_compaction() {
        let b = vec![
            JournalRecord::Put {
                seq: seq + 1,
                entry: route((seq % 50) as u32),
            },
            JournalRecord::Del {
                seq: seq + 2,
                key: route(((seq + 7) % 50) as u32).dst,
            },
        ];
        j.append(&b).unwrap();
        model(&mut want, &b);
        seq += 2;
    }
    let before = j.journal_len();
    assert!(before > 4096);
    j.compact(want.values(), seq).unwrap();
    assert_eq!(j.journal_len(), FILE_HEADER as u64);
    assert!(j.snapshot_len() < before);
    assert!(!j.needs_compaction());
    j.append(&[JournalRecord::Flush { seq: seq + 1 }]).unwrap();
    want.clear();
    drop(j);
    let (_, rec) = Journal::<Route>::open(dir.path(), "route", opts).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.seq, seq + 1);
    assert_eq!(rec.replayed, 1);
}

#[test]
fn crash_between_the_renames_of_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = open(dir.path()).unwrap();
    let b = puts(1..=6);
    j.append(&b).unwrap();
    let mut want = Map::new();
    model(&mut want, &b);
    let old_journal = std::fs::read(j.journal_path()).unwrap();
    j.compact(want.values(), 6).unwrap();
    drop(j);
    // New snapshot, old journal (base 0, records 1..=6 already in the snapshot).
    std::fs::write(dir.path().join("route.journal"), &old_journal).unwrap();
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.seq, 6);
    assert_eq!(rec.replayed, 0);
}

#[test]
fn journal_newer_than_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&puts(1..=3)).unwrap();
    }
    drop(open(dir.path()).unwrap()); // snapshot at 3, empty journal with base 3
    std::fs::remove_file(dir.path().join("route.snap")).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("snapshot at seq 3"), "{err}");
}

#[test]
fn symlinks_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("route.journal")).unwrap();
    let err = open(&state).unwrap_err();
    assert!(matches!(err, JournalError::NotRegular { .. }), "{err}");
    assert!(err.to_string().contains("route.journal"), "{err}");
    std::fs::remove_file(state.join("route.journal")).unwrap();
    // A planted temporary file is removed, never written through.
    std::os::unix::fs::symlink(&victim, state.join("route.snap.tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("route.journal.tmp")).unwrap();
    let (mut j, _) = open(&state).unwrap();
    j.append(&puts(1..=2)).unwrap();
    j.compact([], 2).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    for f in ["route.snap", "route.journal", "route.lock"] {
        let mode = std::fs::metadata(state.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn a_second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(dir.path()).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another rtmd"), "{err}");
    // The other table of the same directory is independent.
    let _arp = Journal::<ArpEntry>::open(dir.path(), "arp", fast()).unwrap();
    drop(j);
    open(dir.path()).unwrap();
}

#[test]
fn staged_records_are_checked_and_can_be_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = open(dir.path()).unwrap();
    j.stage_put(1, &route(1)).unwrap();
    assert!(j.stage_put(1, &route(2)).is_err());
    j.discard();
    j.commit().unwrap(); // nothing staged: nothing written
    assert_eq!(j.journal_len(), FILE_HEADER as u64);
    j.stage_put(1, &route(1)).unwrap();
    j.commit().unwrap();
    drop(j);
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.seq, 1);
}

#[test]
fn a_failed_commit_poisons_until_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = open(dir.path()).unwrap();
    j.append(&puts(1..=2)).unwrap();
    let mut want = Map::new();
    model(&mut want, &puts(1..=2));
    // Make the next write fail: swap in a read-only handle of the same file.
    let read_only = File::open(j.journal_path()).unwrap();
    let good = std::mem::replace(&mut j.file, read_only);
    let err = j.append(&puts(3..=4)).unwrap_err();
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    j.file = good;
    let err = j.append(&puts(5..=5)).unwrap_err();
    assert!(matches!(err, JournalError::Poisoned { .. }), "{err}");
    // The failed batch's numbers are not handed out again...
    assert!(j.compact(want.values(), 3).is_err());
    // ...and a compaction with the acknowledged state makes the journal usable again.
    j.compact(want.values(), 4).unwrap();
    j.append(&puts(5..=5)).unwrap();
    model(&mut want, &puts(5..=5));
    drop(j);
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.seq, 5);
}

#[test]
fn a_missing_state_dir_is_created_with_its_parents_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/state");
    let (mut j, _) = open(&nested).unwrap();
    j.append(&puts(1..=1)).unwrap();
    for p in [dir.path().join("a"), dir.path().join("a/b"), nested.clone()] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", p.display());
    }
    drop(j);
    let (_, rec) = open(&nested).unwrap();
    assert_eq!(rec.seq, 1);
}

mod versions;
