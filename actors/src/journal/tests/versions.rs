//! Journal format versions: each entry's origin (format 2 on), a route's nexthops (format 3),
//! files of formats 1 and 2 read and rewritten, mixed pairs after a crash in the middle of the
//! rewrite, newer formats refused.

use super::*;
use crate::journal::format::{file_header, seal_frame, JOURNAL_MAGIC};
use rtm_proto::types::Hop;
use serde::Serialize;

fn kernel_route(i: u32) -> Route {
    Route {
        nexthops: Vec::new(),
        origin: Origin::Kernel,
        ..route(i)
    }
}

/// A multipath route to 10.200.i.0/24 with `n` next hops (n >= 2).
fn multipath(i: u32, n: u8) -> Route {
    let hops = (1..=n)
        .map(|h| Hop {
            via: Some(Ipv4Addr::new(192, 0, 2, h)),
            dev: (h % 2 == 0).then(|| "eth1".parse().unwrap()),
            weight: u16::from(h),
        })
        .collect();
    let dst = Prefix::new(Ipv4Addr::from(0x0ac8_0000 | (i << 8)), 24).unwrap();
    let r = Route::multipath(dst, i, hops);
    assert!(r.is_multipath());
    r.validate().unwrap();
    r
}

fn origins(rec: &Recovered<Route>) -> Vec<(Prefix, Origin)> {
    rec.entries
        .values()
        .map(|v| (v.entry.dst, v.entry.origin))
        .collect()
}

/// The format version in a file's header.
fn version_of(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// `header` with its version set to `version` (and its checksum fixed).
fn with_version(mut header: [u8; FILE_HEADER], version: u32) -> [u8; FILE_HEADER] {
    header[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c(&header[0..36]);
    header[36..40].copy_from_slice(&crc.to_le_bytes());
    header
}

/// A route record of format 1, as an older rtmd wrote it.
type V1 = RecordV1<RouteV1, Prefix>;
/// A route record of format 2, as the release before format 3 wrote it.
type V2 = RecordV2<RouteV1, Prefix>;

/// A record of an older format, for writing files of it.
trait OldRecord: Serialize {
    const VERSION: u32;
    fn seq(&self) -> u64;
}

impl<E: Serialize, K: Serialize> OldRecord for RecordV1<E, K> {
    const VERSION: u32 = 1;
    fn seq(&self) -> u64 {
        match self {
            RecordV1::Put { seq, .. } | RecordV1::Del { seq, .. } | RecordV1::Flush { seq } => *seq,
        }
    }
}

impl<E: Serialize, K: Serialize> OldRecord for RecordV2<E, K> {
    const VERSION: u32 = 2;
    fn seq(&self) -> u64 {
        match self {
            RecordV2::Put { seq, .. } | RecordV2::Del { seq, .. } | RecordV2::Flush { seq } => *seq,
        }
    }
}

/// A file of an older format, as an older rtmd wrote it: `header`'s magic, kind, seq and count,
/// then one frame per batch.
fn old_file<T: OldRecord>(header: [u8; FILE_HEADER], batches: &[Vec<T>]) -> Vec<u8> {
    let mut out = with_version(header, T::VERSION).to_vec();
    for batch in batches {
        let mut frame = vec![0u8; FRAME_HEADER];
        let mut last = 0;
        for r in batch {
            last = r.seq();
            frame = postcard::to_extend(r, frame).unwrap();
        }
        seal_frame(&mut frame, last);
        out.extend_from_slice(&frame);
    }
    out
}

fn v1_put(seq: u64, entry: Route) -> V1 {
    RecordV1::Put {
        seq,
        entry: RouteV1(entry),
    }
}

fn v2_put(seq: u64, entry: Route) -> V2 {
    RecordV2::Put {
        seq,
        origin: entry.origin.as_u8(),
        entry: RouteV1(entry),
    }
}

/// A route snapshot of an older format at `seq` holding `entries` (seq, route).
fn old_snapshot<T: OldRecord>(
    seq: u64,
    entries: &[(u64, Route)],
    put: fn(u64, Route) -> T,
) -> Vec<u8> {
    let recs: Vec<_> = entries.iter().map(|(s, r)| put(*s, r.clone())).collect();
    let header = file_header(SNAP_MAGIC, TableKind::Route, seq, entries.len() as u64);
    old_file(header, &[recs])
}

fn v1_snapshot(seq: u64, entries: &[(u64, Route)]) -> Vec<u8> {
    old_snapshot(seq, entries, v1_put)
}

fn v2_snapshot(seq: u64, entries: &[(u64, Route)]) -> Vec<u8> {
    old_snapshot(seq, entries, v2_put)
}

/// A journal frame of the current format holding `recs`.
fn current_frame(recs: &[JournalRecord<Route>]) -> Vec<u8> {
    let mut frame = vec![0u8; FRAME_HEADER];
    for r in recs {
        let by_ref = match r {
            JournalRecord::Put { seq, entry } => RecordRef::put(*seq, entry),
            JournalRecord::Del { seq, key } => RecordRef::Del { seq: *seq, key },
            JournalRecord::Flush { seq } => RecordRef::Flush { seq: *seq },
        };
        frame = postcard::to_extend(&by_ref, frame).unwrap();
    }
    seal_frame(&mut frame, recs.last().unwrap().seq());
    frame
}

#[test]
fn a_kernel_origin_survives_replay_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let want = vec![
        (route(1).dst, Origin::Rtm),
        (route(2).dst, Origin::Kernel),
        (route(3).dst, Origin::Kernel),
    ];
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.stage_put(1, &route(1)).unwrap();
        j.stage_put(2, &kernel_route(2)).unwrap();
        j.commit().unwrap();
        j.append(&[JournalRecord::Put {
            seq: 3,
            entry: kernel_route(3),
        }])
        .unwrap();
    }
    // From the journal.
    let (mut j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.replayed, 3);
    assert_eq!(origins(&rec), want);
    assert_eq!(rec.entries[&route(2).dst].entry, kernel_route(2));
    assert_eq!(rec.migrated_from, None);
    // An origin changing in place (rtm takes over a kernel route) is a change like any other.
    j.append(&[JournalRecord::Put {
        seq: 4,
        entry: route(3),
    }])
    .unwrap();
    let mut map = rec.entries.clone();
    model(
        &mut map,
        &[JournalRecord::Put {
            seq: 4,
            entry: route(3),
        }],
    );
    // From an explicit compaction's snapshot.
    j.compact(map.values(), 4).unwrap();
    drop(j);
    let (j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.from_snapshot, 3);
    assert_eq!(rec.replayed, 0);
    assert_eq!(rec.entries, map);
    assert_eq!(
        origins(&rec),
        vec![
            (route(1).dst, Origin::Rtm),
            (route(2).dst, Origin::Kernel),
            (route(3).dst, Origin::Rtm),
        ]
    );
    for p in [j.snapshot_path(), j.journal_path()] {
        assert_eq!(version_of(p), FORMAT_VERSION, "{}", p.display());
    }
}

#[test]
fn an_unknown_origin_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&puts(1..=1)).unwrap();
    }
    let path = dir.path().join("route.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    // Payload: variant 0 (Put), seq 1, then the origin byte.
    let origin_at = FILE_HEADER + FRAME_HEADER + 2;
    assert_eq!(bytes[origin_at], Origin::Rtm.as_u8());
    bytes[origin_at] = 7;
    let mut frame = bytes[FILE_HEADER..].to_vec();
    seal_frame(&mut frame, 1);
    bytes.truncate(FILE_HEADER);
    bytes.extend_from_slice(&frame);
    std::fs::write(&path, &bytes).unwrap();
    let err = open(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("route.journal") && msg.contains("unknown origin 7"),
        "{msg}"
    );
}

#[test]
fn format_1_files_are_read_with_origin_rtm_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    // A format-1 record of a route that today would be a kernel route: format 1 never
    // recorded an origin, so it comes back as rtm's.
    let snap = v1_snapshot(3, &[(1, route(1)), (2, kernel_route(2)), (3, route(3))]);
    let journal = old_file(
        file_header(JOURNAL_MAGIC, TableKind::Route, 3, 0),
        &[
            vec![
                v1_put(4, route(4)),
                RecordV1::Del {
                    seq: 5,
                    key: route(1).dst,
                },
            ],
            vec![v1_put(
                6,
                Route {
                    metric: 77,
                    ..route(3)
                },
            )],
        ],
    );
    std::fs::write(dir.path().join("route.snap"), &snap).unwrap();
    std::fs::write(dir.path().join("route.journal"), &journal).unwrap();
    let mut want = Map::new();
    for (s, r) in [
        (2, route(2)),
        (4, route(4)),
        (
            6,
            Route {
                metric: 77,
                ..route(3)
            },
        ),
    ] {
        want.insert(r.dst, Versioned { entry: r, seq: s });
    }

    let (j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert!(rec.entries.values().all(|v| v.entry.origin == Origin::Rtm));
    assert_eq!((rec.seq, rec.from_snapshot, rec.replayed), (6, 3, 3));
    assert_eq!(rec.migrated_from, Some(1));
    // Rewritten in the current format at once.
    assert_eq!(version_of(j.snapshot_path()), FORMAT_VERSION);
    assert_eq!(version_of(j.journal_path()), FORMAT_VERSION);
    assert_eq!(j.journal_len(), FILE_HEADER as u64);
    drop(j);
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.migrated_from, None);
}

#[test]
fn a_format_1_pair_with_an_empty_journal_is_rewritten_too() {
    // What a clean format-1 state directory looks like: a snapshot and a journal with no
    // frames continuing it. It must not be appended to as it is (its header says format 1).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("route.snap"),
        v1_snapshot(2, &[(2, route(2))]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("route.journal"),
        old_file::<V1>(file_header(JOURNAL_MAGIC, TableKind::Route, 2, 0), &[]),
    )
    .unwrap();
    let (mut j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.migrated_from, Some(1));
    assert_eq!(version_of(j.journal_path()), FORMAT_VERSION);
    assert_eq!(version_of(j.snapshot_path()), FORMAT_VERSION);
    j.append(&[JournalRecord::Put {
        seq: 3,
        entry: kernel_route(3),
    }])
    .unwrap();
    drop(j);
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(
        origins(&rec),
        vec![(route(2).dst, Origin::Rtm), (route(3).dst, Origin::Kernel)]
    );
}

#[test]
fn mixed_format_pairs_replay() {
    // A crash in the middle of the rewrite at start leaves a new snapshot next to the old
    // journal (the snapshot is renamed into place first).
    let src = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(src.path()).unwrap();
        j.append(&[
            JournalRecord::Put {
                seq: 1,
                entry: route(1),
            },
            JournalRecord::Put {
                seq: 2,
                entry: kernel_route(2),
            },
        ])
        .unwrap();
    }
    drop(open(src.path()).unwrap()); // current snapshot at seq 2, empty journal
    let new_snap = std::fs::read(src.path().join("route.snap")).unwrap();
    assert_eq!(version_of(&src.path().join("route.snap")), FORMAT_VERSION);

    // Current snapshot, format-1 or format-2 journal: records at or below the snapshot's seq
    // (the old journal of the rewrite) and records above it.
    let journals = [
        (
            1,
            old_file(
                file_header(JOURNAL_MAGIC, TableKind::Route, 0, 0),
                &[
                    vec![v1_put(1, route(1)), v1_put(2, route(2))],
                    vec![v1_put(3, route(3))],
                ],
            ),
        ),
        (
            2,
            old_file(
                file_header(JOURNAL_MAGIC, TableKind::Route, 0, 0),
                &[
                    vec![v2_put(1, route(1)), v2_put(2, kernel_route(2))],
                    vec![v2_put(3, route(3))],
                ],
            ),
        ),
    ];
    for (version, journal) in journals {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("route.snap"), &new_snap).unwrap();
        std::fs::write(dir.path().join("route.journal"), &journal).unwrap();
        let (j, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.replayed, 1, "format {version}");
        assert_eq!(rec.seq, 3);
        assert_eq!(rec.migrated_from, Some(version));
        assert_eq!(
            origins(&rec),
            vec![
                (route(1).dst, Origin::Rtm),
                (route(2).dst, Origin::Kernel),
                (route(3).dst, Origin::Rtm),
            ]
        );
        assert_eq!(rec.entries[&route(3).dst].entry, route(3));
        assert_eq!(version_of(j.journal_path()), FORMAT_VERSION);
        assert_eq!(version_of(j.snapshot_path()), FORMAT_VERSION);
    }

    // Format-1 or format-2 snapshot, current journal (holding a multipath route, which only
    // the current format can).
    let snaps = [
        (1, v1_snapshot(1, &[(1, route(1))])),
        (2, v2_snapshot(1, &[(1, route(1))])),
    ];
    for (version, snap) in snaps {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("route.snap"), &snap).unwrap();
        let mut journal = file_header(JOURNAL_MAGIC, TableKind::Route, 1, 0).to_vec();
        journal.extend_from_slice(&current_frame(&[
            JournalRecord::Put {
                seq: 2,
                entry: kernel_route(2),
            },
            JournalRecord::Put {
                seq: 3,
                entry: multipath(3, 3),
            },
        ]));
        std::fs::write(dir.path().join("route.journal"), &journal).unwrap();
        let (_, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.replayed, 2, "format {version}");
        assert_eq!(rec.migrated_from, Some(version));
        assert_eq!(
            origins(&rec),
            vec![
                (route(1).dst, Origin::Rtm),
                (route(2).dst, Origin::Kernel),
                (multipath(3, 3).dst, Origin::Rtm),
            ]
        );
        assert_eq!(rec.entries[&multipath(3, 3).dst].entry, multipath(3, 3));
    }

    // A format-1 snapshot and a format-2 journal: the oldest is named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("route.snap"),
        v1_snapshot(1, &[(1, route(1))]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("route.journal"),
        old_file(
            file_header(JOURNAL_MAGIC, TableKind::Route, 1, 0),
            &[vec![v2_put(2, kernel_route(2))]],
        ),
    )
    .unwrap();
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.migrated_from, Some(1));
    assert_eq!(
        origins(&rec),
        vec![(route(1).dst, Origin::Rtm), (route(2).dst, Origin::Kernel)]
    );
}

#[test]
fn a_newer_format_is_refused_naming_the_file_and_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&puts(1..=2)).unwrap();
    }
    drop(open(dir.path()).unwrap());
    for name in ["route.snap", "route.journal"] {
        let path = dir.path().join(name);
        let good = std::fs::read(&path).unwrap();
        let mut bad = good.clone();
        let header: [u8; FILE_HEADER] = bad[..FILE_HEADER].try_into().unwrap();
        bad[..FILE_HEADER].copy_from_slice(&with_version(header, FORMAT_VERSION + 1));
        std::fs::write(&path, &bad).unwrap();
        let err = open(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, JournalError::BadHeader { .. }), "{msg}");
        assert!(
            msg.contains(name)
                && msg.contains(&format!("format version {}", FORMAT_VERSION + 1))
                && msg.contains(&format!("versions 1 to {FORMAT_VERSION}"))
                && msg.contains("newer rtmd"),
            "{msg}"
        );
        // Refused, not rewritten.
        assert_eq!(std::fs::read(&path).unwrap(), bad);
        std::fs::write(&path, &good).unwrap();
    }
    // Version 0 was never written.
    let path = dir.path().join("route.snap");
    let mut bad = std::fs::read(&path).unwrap();
    let header: [u8; FILE_HEADER] = bad[..FILE_HEADER].try_into().unwrap();
    bad[..FILE_HEADER].copy_from_slice(&with_version(header, 0));
    std::fs::write(&path, &bad).unwrap();
    let msg = open(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("route.snap") && msg.contains("format version 0"),
        "{msg}"
    );
}

#[test]
fn each_format_decodes_its_own_encoding_of_routes() {
    let recs: Vec<JournalRecord<Route>> = vec![
        JournalRecord::Put {
            seq: 1,
            entry: route(1),
        },
        JournalRecord::Put {
            seq: 2,
            entry: kernel_route(2),
        },
        JournalRecord::Del {
            seq: 3,
            key: route(1).dst,
        },
        JournalRecord::Flush { seq: 4 },
        JournalRecord::Put {
            seq: 5,
            entry: Route {
                via: None,
                metric: 0,
                ..route(5)
            },
        },
    ];
    let encode = |version: u32, r: &JournalRecord<Route>| -> Vec<u8> {
        match (version, r.clone()) {
            (1, JournalRecord::Put { seq, entry }) => postcard::to_allocvec(&v1_put(seq, entry)),
            (1, JournalRecord::Del { seq, key }) => postcard::to_allocvec(&V1::Del { seq, key }),
            (1, JournalRecord::Flush { seq }) => postcard::to_allocvec(&V1::Flush { seq }),
            (2, JournalRecord::Put { seq, entry }) => postcard::to_allocvec(&v2_put(seq, entry)),
            (2, JournalRecord::Del { seq, key }) => postcard::to_allocvec(&V2::Del { seq, key }),
            (2, JournalRecord::Flush { seq }) => postcard::to_allocvec(&V2::Flush { seq }),
            (_, r) => {
                let by_ref: RecordRef<'_, Route> = match &r {
                    JournalRecord::Put { seq, entry } => RecordRef::put(*seq, entry),
                    JournalRecord::Del { seq, key } => RecordRef::Del { seq: *seq, key },
                    JournalRecord::Flush { seq } => RecordRef::Flush { seq: *seq },
                };
                postcard::to_allocvec(&by_ref)
            }
        }
        .unwrap()
    };
    for version in OLDEST_FORMAT_VERSION..=FORMAT_VERSION {
        // One record at a time, and all back to back in one payload.
        let mut payload = Vec::new();
        let mut wants = Vec::new();
        for r in &recs {
            let bytes = encode(version, r);
            let mut want = r.clone();
            if let (1, JournalRecord::Put { entry, .. }) = (version, &mut want) {
                entry.origin = Origin::Rtm; // format 1 has no origin
            }
            assert_eq!(
                decode_records::<Route>(&bytes, version).unwrap(),
                vec![want.clone()],
                "format {version}: {r:?}"
            );
            payload.extend_from_slice(&bytes);
            wants.push(want);
        }
        assert_eq!(
            decode_records::<Route>(&payload, version).unwrap(),
            wants,
            "format {version}"
        );
    }
    // What format 3 changed: a route put of format 2 is not one of format 3.
    let old = encode(2, &recs[0]);
    let err = decode_records::<Route>(&old, 3).unwrap_err();
    assert!(
        err.contains("undecodable record at payload byte 0"),
        "{err}"
    );
    // A multipath route has a form in format 3 only.
    let mp = JournalRecord::Put {
        seq: 9,
        entry: multipath(9, 4),
    };
    assert_eq!(
        decode_records::<Route>(&encode(3, &mp), 3).unwrap(),
        vec![mp.clone()]
    );
    let JournalRecord::Put { entry, .. } = &mp else {
        unreachable!()
    };
    assert!(postcard::to_allocvec(&RouteV1(entry.clone())).is_err());
}

#[test]
fn format_2_files_are_read_with_their_origins_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    // What the release before format 3 left: a snapshot and a journal with every kind of
    // record, kernel routes among them.
    let snap = v2_snapshot(
        3,
        &[(1, route(1)), (2, kernel_route(2)), (3, kernel_route(3))],
    );
    let journal = old_file(
        file_header(JOURNAL_MAGIC, TableKind::Route, 3, 0),
        &[
            vec![
                v2_put(4, route(4)),
                RecordV2::Del {
                    seq: 5,
                    key: route(1).dst,
                },
            ],
            vec![v2_put(
                6,
                Route {
                    metric: 77,
                    dev: None,
                    ..kernel_route(3)
                },
            )],
        ],
    );
    std::fs::write(dir.path().join("route.snap"), &snap).unwrap();
    std::fs::write(dir.path().join("route.journal"), &journal).unwrap();
    let mut want = Map::new();
    for (s, r) in [
        (2, kernel_route(2)),
        (4, route(4)),
        (
            6,
            Route {
                metric: 77,
                dev: None,
                ..kernel_route(3)
            },
        ),
    ] {
        want.insert(r.dst, Versioned { entry: r, seq: s });
    }

    let (mut j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert!(rec.entries.values().all(|v| v.entry.nexthops.is_empty()));
    assert_eq!((rec.seq, rec.from_snapshot, rec.replayed), (6, 3, 3));
    assert_eq!(rec.migrated_from, Some(2));
    // Rewritten in the current format at once.
    assert_eq!(version_of(j.snapshot_path()), FORMAT_VERSION);
    assert_eq!(version_of(j.journal_path()), FORMAT_VERSION);
    assert_eq!(j.journal_len(), FILE_HEADER as u64);
    // And appended to in it: a flush, then a multipath route.
    let more = [
        JournalRecord::Flush { seq: 7 },
        JournalRecord::Put {
            seq: 8,
            entry: multipath(8, 2),
        },
    ];
    j.append(&more).unwrap();
    model(&mut want, &more);
    drop(j);
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.migrated_from, None);
    assert_eq!(rec.replayed, 2);
}

#[test]
fn a_multipath_route_round_trips_in_format_3() {
    let dir = tempfile::tempdir().unwrap();
    let kernel_mp = Route {
        origin: Origin::Kernel,
        ..multipath(2, 5)
    };
    let batch = vec![
        JournalRecord::Put {
            seq: 1,
            entry: multipath(1, 2),
        },
        JournalRecord::Put {
            seq: 2,
            entry: kernel_mp.clone(),
        },
        JournalRecord::Put {
            seq: 3,
            entry: route(3),
        },
        // A route that becomes multipath, and one that stops being.
        JournalRecord::Put {
            seq: 4,
            entry: Route {
                dst: route(3).dst,
                ..multipath(4, 3)
            },
        },
        JournalRecord::Put {
            seq: 5,
            entry: Route {
                dst: multipath(1, 2).dst,
                ..route(5)
            },
        },
    ];
    let mut want = Map::new();
    model(&mut want, &batch);
    {
        let (mut j, _) = open(dir.path()).unwrap();
        j.append(&batch[..2]).unwrap();
        j.append(&batch[2..]).unwrap();
    }
    // From the journal, then from the snapshot the start wrote.
    for from_snapshot in [0, 3] {
        let (j, rec) = open(dir.path()).unwrap();
        assert_eq!(rec.entries, want);
        assert_eq!(rec.from_snapshot, from_snapshot);
        assert_eq!(rec.migrated_from, None);
        assert_eq!(rec.entries[&kernel_mp.dst].entry, kernel_mp);
        assert_eq!(rec.entries[&kernel_mp.dst].entry.nexthops.len(), 5);
        assert_eq!(
            rec.entries[&route(3).dst].entry.nexthops,
            multipath(4, 3).nexthops
        );
        assert!(rec.entries[&multipath(1, 2).dst].entry.nexthops.is_empty());
        for p in [j.snapshot_path(), j.journal_path()] {
            assert_eq!(version_of(p), FORMAT_VERSION, "{}", p.display());
        }
    }
}

#[test]
fn arp_entries_of_formats_1_and_2_are_read_unchanged() {
    let arp = |i: u8| ArpEntry {
        mac: MacAddr([2, 0, 0, 0, 0, i]),
        ip: Ipv4Addr::new(192, 168, 1, i),
        dev: (i % 2 == 0).then(|| "eth0".parse().unwrap()),
    };
    let journal_of = |version: u32| -> Vec<u8> {
        let header = file_header(JOURNAL_MAGIC, TableKind::Arp, 0, 0);
        if version == 1 {
            old_file(
                header,
                &[
                    vec![
                        RecordV1::Put {
                            seq: 1,
                            entry: arp(1),
                        },
                        RecordV1::Put {
                            seq: 2,
                            entry: arp(2),
                        },
                    ],
                    vec![RecordV1::Del {
                        seq: 3,
                        key: arp(1).mac,
                    }],
                ],
            )
        } else {
            old_file(
                header,
                &[
                    vec![
                        RecordV2::Put {
                            seq: 1,
                            origin: 0,
                            entry: arp(1),
                        },
                        RecordV2::Put {
                            seq: 2,
                            origin: 0,
                            entry: arp(2),
                        },
                    ],
                    vec![RecordV2::Del {
                        seq: 3,
                        key: arp(1).mac,
                    }],
                ],
            )
        }
    };
    for version in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("arp.journal"), journal_of(version)).unwrap();
        let (j, rec) = Journal::<ArpEntry>::open(dir.path(), "arp", fast()).unwrap();
        assert_eq!(rec.migrated_from, Some(version));
        assert_eq!(rec.seq, 3);
        let got: Vec<_> = rec.entries.values().map(|v| v.entry.clone()).collect();
        assert_eq!(got, vec![arp(2)], "format {version}");
        assert_eq!(version_of(j.journal_path()), FORMAT_VERSION);
        assert_eq!(version_of(j.snapshot_path()), FORMAT_VERSION);
        drop(j);
        let (_, rec) = Journal::<ArpEntry>::open(dir.path(), "arp", fast()).unwrap();
        assert_eq!(rec.migrated_from, None);
        assert_eq!(rec.entries[&arp(2).mac].entry, arp(2));
    }
}
