//! Journal format versions: each entry's origin (format 2), format-1 files read and rewritten,
//! mixed pairs after a crash in the middle of the rewrite, newer formats refused.

use super::*;
use crate::journal::format::{file_header, seal_frame, JOURNAL_MAGIC};

fn kernel_route(i: u32) -> Route {
    Route {
        nexthops: Vec::new(),
        origin: Origin::Kernel,
        ..route(i)
    }
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

/// A file of format 1, as an older rtmd wrote it: `header`'s magic, kind, seq and count, then
/// one frame per batch of `RecordV1`s.
fn v1_file(header: [u8; FILE_HEADER], batches: &[Vec<RecordV1<Route>>]) -> Vec<u8> {
    let mut out = with_version(header, 1).to_vec();
    for batch in batches {
        let mut frame = vec![0u8; FRAME_HEADER];
        let mut last = 0;
        for r in batch {
            last = match r {
                RecordV1::Put { seq, .. } | RecordV1::Del { seq, .. } | RecordV1::Flush { seq } => {
                    *seq
                }
            };
            frame = postcard::to_extend(r, frame).unwrap();
        }
        seal_frame(&mut frame, last);
        out.extend_from_slice(&frame);
    }
    out
}

fn v1_put(seq: u64, entry: Route) -> RecordV1<Route> {
    RecordV1::Put { seq, entry }
}

/// A format-1 route snapshot at `seq` holding `entries` (seq, route).
fn v1_snapshot(seq: u64, entries: &[(u64, Route)]) -> Vec<u8> {
    let recs: Vec<_> = entries.iter().map(|(s, r)| v1_put(*s, r.clone())).collect();
    let header = file_header(SNAP_MAGIC, TableKind::Route, seq, entries.len() as u64);
    v1_file(header, &[recs])
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
    let journal = v1_file(
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
        v1_file(file_header(JOURNAL_MAGIC, TableKind::Route, 2, 0), &[]),
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
    drop(open(src.path()).unwrap()); // format-2 snapshot at seq 2, empty journal
    let v2_snap = std::fs::read(src.path().join("route.snap")).unwrap();
    assert_eq!(version_of(&src.path().join("route.snap")), FORMAT_VERSION);

    // Format-2 snapshot, format-1 journal: records at or below the snapshot's seq (the old
    // journal of the rewrite) and records above it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("route.snap"), &v2_snap).unwrap();
    std::fs::write(
        dir.path().join("route.journal"),
        v1_file(
            file_header(JOURNAL_MAGIC, TableKind::Route, 0, 0),
            &[
                vec![v1_put(1, route(1)), v1_put(2, route(2))],
                vec![v1_put(3, route(3))],
            ],
        ),
    )
    .unwrap();
    let (j, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.replayed, 1);
    assert_eq!(rec.seq, 3);
    assert_eq!(rec.migrated_from, Some(1));
    assert_eq!(
        origins(&rec),
        vec![
            (route(1).dst, Origin::Rtm),
            (route(2).dst, Origin::Kernel),
            (route(3).dst, Origin::Rtm),
        ]
    );
    assert_eq!(version_of(j.journal_path()), FORMAT_VERSION);
    drop(j);

    // Format-1 snapshot, format-2 journal.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("route.snap"),
        v1_snapshot(1, &[(1, route(1))]),
    )
    .unwrap();
    let mut journal = file_header(JOURNAL_MAGIC, TableKind::Route, 1, 0).to_vec();
    let mut frame = vec![0u8; FRAME_HEADER];
    frame = postcard::to_extend(&RecordRef::put(2, &kernel_route(2)), frame).unwrap();
    seal_frame(&mut frame, 2);
    journal.extend_from_slice(&frame);
    std::fs::write(dir.path().join("route.journal"), &journal).unwrap();
    let (_, rec) = open(dir.path()).unwrap();
    assert_eq!(rec.replayed, 1);
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
                && msg.contains("format version 3")
                && msg.contains("versions 1 to 2")
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
