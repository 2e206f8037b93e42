//! Start-up: reading a table's snapshot and replaying its journal on top, with the rules of
//! the [module docs](super#start-up) for telling a torn last write from corruption.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rtm_proto::shm::{Record, TableKind, Versioned};
use rustix::fs::OFlags;
use tracing::warn;

use super::entry::JournalEntry;
use super::error::{io_err, JournalError};
use super::files::open_existing;
use super::format::{
    decode_records, frame_at, next_valid_frame, parse_file_header, FileHeader, FILE_HEADER,
    FORMAT_VERSION, JOURNAL_MAGIC, SNAP_MAGIC,
};
use super::record::JournalRecord;

/// What [`Journal::open`](super::Journal::open) found on disk.
#[derive(Debug)]
pub struct Recovered<R: Record> {
    /// The table, each entry with the seq of the change that last wrote it.
    pub entries: BTreeMap<R::Key, Versioned<R>>,
    /// The table's sequence number: at least the highest seq ever acknowledged.
    pub seq: u64,
    /// Entries read from the snapshot.
    pub from_snapshot: u64,
    /// Journal records applied on top of the snapshot.
    pub replayed: u64,
    /// Offset in the journal at which a torn last write was dropped, if there was one.
    pub truncated_tail: Option<u64>,
    /// The format version of the oldest file read, if it was older than
    /// [`FORMAT_VERSION`]: the start rewrote the table in the current
    /// format.
    pub migrated_from: Option<u32>,
}

/// A table's files as start-up found them.
pub(super) struct Found<R: Record> {
    pub recovered: Recovered<R>,
    /// Bytes in the snapshot file (0 if there is none).
    pub snap_len: u64,
    /// The journal and its length if it can be appended to as it is: it continues the
    /// snapshot, holds no frames, and both are of the current format. Otherwise the table must
    /// be compacted.
    pub clean: Option<(File, u64)>,
}

/// Reads the snapshot `snap` and replays the journal `journal` (each a name in `dirfd` and its
/// path for messages); either may be missing.
pub(super) fn recover<R>(
    dirfd: &OwnedFd,
    (snap_name, snap_path): (&str, &Path),
    (journal_name, journal_path): (&str, &Path),
) -> Result<Found<R>, JournalError>
where
    R: JournalEntry,
{
    let mut entries = BTreeMap::new();
    // The oldest format version of the files read.
    let mut oldest = FORMAT_VERSION;
    let (snap_seq, snap_len, from_snapshot) =
        match open_existing(dirfd, snap_name, snap_path, OFlags::RDONLY)? {
            Some(mut f) => {
                let mut data = Vec::new();
                f.read_to_end(&mut data)
                    .map_err(|e| io_err("cannot read", snap_path, e))?;
                let h = read_snapshot(snap_path, &data, &mut entries)?;
                oldest = oldest.min(h.version);
                (Some(h.seq), data.len() as u64, h.count)
            }
            None => (None, 0, 0),
        };

    let mut seq = snap_seq.unwrap_or(0);
    let mut replayed = 0;
    let mut truncated_tail = None;
    let mut clean = None;
    if let Some(mut f) = open_existing(dirfd, journal_name, journal_path, OFlags::RDWR)? {
        let mut data = Vec::new();
        f.read_to_end(&mut data)
            .map_err(|e| io_err("cannot read", journal_path, e))?;
        let r = replay(journal_path, &data, snap_seq, R::KIND, &mut entries)?;
        oldest = oldest.min(r.version);
        seq = seq.max(r.seq);
        replayed = r.replayed;
        truncated_tail = r.torn_at;
        if let Some(off) = r.torn_at {
            warn!(
                path = %journal_path.display(),
                offset = off,
                dropped = data.len() as u64 - off,
                "journal ends in a torn write (never acknowledged); dropping it"
            );
        }
        // An older format is rewritten, never appended to.
        if r.frames == 0
            && r.torn_at.is_none()
            && snap_seq == Some(r.base)
            && oldest == FORMAT_VERSION
        {
            clean = Some((f, data.len() as u64));
        }
    }
    Ok(Found {
        recovered: Recovered {
            entries,
            seq,
            from_snapshot,
            replayed,
            truncated_tail,
            migrated_from: (oldest < FORMAT_VERSION).then_some(oldest),
        },
        snap_len,
        clean,
    })
}

/// Reads a snapshot into `entries`; returns its header.
fn read_snapshot<R>(
    path: &Path,
    data: &[u8],
    entries: &mut BTreeMap<R::Key, Versioned<R>>,
) -> Result<FileHeader, JournalError>
where
    R: JournalEntry,
{
    let header = parse_file_header(path, data, SNAP_MAGIC, "snapshot", R::KIND)?;
    let FileHeader {
        version,
        seq,
        count,
    } = header;
    let corrupt = |offset: usize, why: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why,
        next_valid: None,
    };
    let mut off = FILE_HEADER;
    while off < data.len() {
        let frame = frame_at(data, off).map_err(|why| corrupt(off, why.into()))?;
        for rec in decode_records::<R>(frame.payload, version).map_err(|why| corrupt(off, why))? {
            let JournalRecord::Put { seq: s, entry } = rec else {
                return Err(corrupt(off, "a snapshot holds only entries".into()));
            };
            if s > seq {
                return Err(corrupt(
                    off,
                    format!("entry with seq {s} above the snapshot's seq {seq}"),
                ));
            }
            if entries
                .insert(entry.key(), Versioned { entry, seq: s })
                .is_some()
            {
                return Err(corrupt(off, "duplicate key".into()));
            }
        }
        off = frame.end;
    }
    if entries.len() as u64 != count {
        return Err(corrupt(
            off,
            format!(
                "{} entries where the header says {count} (truncated?)",
                entries.len()
            ),
        ));
    }
    Ok(header)
}

struct Replay {
    version: u32,
    base: u64,
    seq: u64,
    frames: u64,
    replayed: u64,
    torn_at: Option<u64>,
}

/// Applies the journal in `data` on top of the snapshot already in `entries`.
fn replay<R>(
    path: &Path,
    data: &[u8],
    snap_seq: Option<u64>,
    kind: TableKind,
    entries: &mut BTreeMap<R::Key, Versioned<R>>,
) -> Result<Replay, JournalError>
where
    R: JournalEntry,
{
    let FileHeader {
        version, seq: base, ..
    } = parse_file_header(path, data, JOURNAL_MAGIC, "journal", kind)?;
    let snap = snap_seq.unwrap_or(0);
    if base > snap {
        return Err(JournalError::BadHeader {
            path: path.to_path_buf(),
            why: format!(
                "the journal continues a snapshot at seq {base} but the snapshot is at seq {snap}{}",
                if snap_seq.is_none() { " (missing)" } else { "" }
            ),
        });
    }
    let corrupt = |offset: usize, why: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why,
        next_valid: None,
    };
    let mut out = Replay {
        version,
        base,
        seq: base,
        frames: 0,
        replayed: 0,
        torn_at: None,
    };
    let mut off = FILE_HEADER;
    while off < data.len() {
        let frame = match frame_at(data, off) {
            Ok(f) => f,
            Err(why) => {
                if let Some(next) = next_valid_frame(data, off) {
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        offset: off as u64,
                        why: why.into(),
                        next_valid: Some(next as u64),
                    });
                }
                out.torn_at = Some(off as u64);
                break;
            }
        };
        let records =
            decode_records::<R>(frame.payload, version).map_err(|why| corrupt(off, why))?;
        for rec in records {
            let s = rec.seq();
            if s <= out.seq {
                return Err(corrupt(
                    off,
                    format!("sequence number {s} does not follow {}", out.seq),
                ));
            }
            out.seq = s;
            if s <= snap {
                continue; // already in the snapshot
            }
            match rec {
                JournalRecord::Put { seq, entry } => {
                    entries.insert(entry.key(), Versioned { entry, seq });
                }
                JournalRecord::Del { key, .. } => {
                    entries.remove(&key);
                }
                JournalRecord::Flush { .. } => entries.clear(),
            }
            out.replayed += 1;
        }
        if frame.last_seq != out.seq {
            return Err(corrupt(
                off,
                format!(
                    "frame says its last seq is {} but its last record has {}",
                    frame.last_seq, out.seq
                ),
            ));
        }
        out.frames += 1;
        off = frame.end;
    }
    Ok(out)
}
