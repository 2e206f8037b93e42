//! The on-disk codec of snapshot and journal files: the file header, frames and their
//! CRC-32C checksums, and the encoding of a whole snapshot. The layout is documented in the
//! [module docs](super#on-disk-format-version-3): it is the contract of the state directory.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

// CRC-32C (Castagnoli), as used by iSCSI, ext4 and btrfs; the crate uses the CPU's
// instruction where there is one.
use crc32c::crc32c;
use rtm_proto::shm::{Record, TableKind, Versioned};
use serde::Serialize;

use super::entry::JournalEntry;
use super::error::{io_err, JournalError};
use super::record::{JournalRecord, RecordRef, RecordV1, RecordV2};

/// The on-disk format version this code writes. It reads this one and every one back to
/// [`OLDEST_FORMAT_VERSION`].
///
/// 1: the first. 2: a `Put` record also holds the entry's origin. 3: a `Put` holds the entry's
/// current serde form (a route's with its `nexthops`), 1 and 2 its legacy one
/// ([`JournalEntry::Legacy`]).
pub const FORMAT_VERSION: u32 = 3;

/// The oldest on-disk format version this code reads (and rewrites in [`FORMAT_VERSION`] at
/// start).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

pub(super) const SNAP_MAGIC: [u8; 8] = *b"rtm-snap";
pub(super) const JOURNAL_MAGIC: [u8; 8] = *b"rtm-jrnl";
pub(super) const FILE_HEADER: usize = 40;
const FRAME_MAGIC: [u8; 4] = *b"RTMF";
pub(super) const FRAME_HEADER: usize = 24;
const MAX_FRAME: usize = 1 << 30;
/// A snapshot frame is closed once its payload reaches this size.
const SNAP_CHUNK: usize = 1 << 20;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

// ===== file header =====

pub(super) fn file_header(
    magic: [u8; 8],
    kind: TableKind,
    seq: u64,
    count: u64,
) -> [u8; FILE_HEADER] {
    let mut h = [0u8; FILE_HEADER];
    h[0..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&kind.as_u32().to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    h[24..32].copy_from_slice(&count.to_le_bytes());
    let crc = crc32c(&h[0..36]);
    h[36..40].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A checked file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileHeader {
    /// The format version of the file's records, between [`OLDEST_FORMAT_VERSION`] and
    /// [`FORMAT_VERSION`].
    pub version: u32,
    pub seq: u64,
    pub count: u64,
}

/// Checks a file header: its magic, checksum, table kind, and a format version this code
/// reads.
pub(super) fn parse_file_header(
    path: &Path,
    data: &[u8],
    magic: [u8; 8],
    what: &str,
    kind: TableKind,
) -> Result<FileHeader, JournalError> {
    let bad = |why: String| JournalError::BadHeader {
        path: path.to_path_buf(),
        why,
    };
    if data.len() < FILE_HEADER {
        return Err(bad(format!(
            "too short for an rtm {what} ({} bytes)",
            data.len()
        )));
    }
    if data[0..8] != magic {
        return Err(bad(format!("not an rtm {what} (bad magic)")));
    }
    if crc32c(&data[0..36]) != u32_at(data, 36) {
        return Err(bad(format!("{what} header checksum mismatch")));
    }
    let version = u32_at(data, 8);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        let newer = if version > FORMAT_VERSION {
            " (the file was written by a newer rtmd)"
        } else {
            ""
        };
        return Err(bad(format!(
            "{what} format version {version}; this rtmd reads versions \
             {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}{newer}"
        )));
    }
    let k = u32_at(data, 12);
    if k != kind.as_u32() {
        let found = TableKind::from_u32(k)
            .map(|t| t.to_string())
            .unwrap_or_else(|| format!("unknown kind {k}"));
        return Err(bad(format!(
            "{what} holds the {found} table, expected {kind}"
        )));
    }
    Ok(FileHeader {
        version,
        seq: u64_at(data, 16),
        count: u64_at(data, 24),
    })
}

// ===== frames =====

/// Fills in the frame header at `buf[0..FRAME_HEADER]` for the payload after it.
pub(super) fn seal_frame(buf: &mut [u8], last_seq: u64) {
    let len = (buf.len() - FRAME_HEADER) as u32;
    let payload_crc = crc32c(&buf[FRAME_HEADER..]);
    buf[0..4].copy_from_slice(&FRAME_MAGIC);
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    buf[8..16].copy_from_slice(&last_seq.to_le_bytes());
    buf[16..20].copy_from_slice(&payload_crc.to_le_bytes());
    let crc = crc32c(&buf[0..20]);
    buf[20..24].copy_from_slice(&crc.to_le_bytes());
}

pub(super) struct Frame<'a> {
    pub payload: &'a [u8],
    pub last_seq: u64,
    /// Offset of the byte after the frame.
    pub end: usize,
}

/// The frame at `off`, or why there is no valid one there.
pub(super) fn frame_at(data: &[u8], off: usize) -> Result<Frame<'_>, &'static str> {
    let rest = &data[off..];
    if rest.len() < FRAME_HEADER {
        return Err("incomplete frame header");
    }
    if rest[0..4] != FRAME_MAGIC {
        return Err("bad frame magic");
    }
    if crc32c(&rest[0..20]) != u32_at(rest, 20) {
        return Err("frame header checksum mismatch");
    }
    let len = u32_at(rest, 4) as usize;
    if len > MAX_FRAME || len > rest.len() - FRAME_HEADER {
        return Err("frame runs past the end of the file");
    }
    let payload = &rest[FRAME_HEADER..FRAME_HEADER + len];
    if crc32c(payload) != u32_at(rest, 16) {
        return Err("frame checksum mismatch");
    }
    Ok(Frame {
        payload,
        last_seq: u64_at(rest, 8),
        end: off + FRAME_HEADER + len,
    })
}

/// The offset of the first valid frame strictly after `off`.
pub(super) fn next_valid_frame(data: &[u8], off: usize) -> Option<usize> {
    let mut from = off + 1;
    while from + FRAME_HEADER <= data.len() {
        let pos = data[from..].windows(4).position(|w| w == FRAME_MAGIC)?;
        let cand = from + pos;
        if frame_at(data, cand).is_ok() {
            return Some(cand);
        }
        from = cand + 1;
    }
    None
}

/// Decodes the records of one frame's payload, of a file of format `version` (one
/// [`parse_file_header`] accepted). Formats 1 and 2 hold entries in their legacy serde form.
pub(super) fn decode_records<R: JournalEntry>(
    payload: &[u8],
    version: u32,
) -> Result<Vec<JournalRecord<R>>, String> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let at = payload.len() - rest.len();
        let undecodable =
            |e| format!("undecodable record at payload byte {at} ({e}); written by a newer rtmd?");
        let unknown = |why| format!("record at payload byte {at}: {why}");
        let (rec, tail) = match version {
            1 => {
                let (rec, tail) = postcard::take_from_bytes::<RecordV1<R::Legacy, R::Key>>(rest)
                    .map_err(undecodable)?;
                (rec.upgrade(R::from_legacy), tail)
            }
            2 => {
                let (rec, tail) = postcard::take_from_bytes::<RecordV2<R::Legacy, R::Key>>(rest)
                    .map_err(undecodable)?;
                (rec.into_record(R::from_legacy).map_err(unknown)?, tail)
            }
            // FORMAT_VERSION: parse_file_header lets no other through.
            _ => {
                let (rec, tail) =
                    postcard::take_from_bytes::<RecordV2<R, R::Key>>(rest).map_err(undecodable)?;
                (rec.into_record(|entry| entry).map_err(unknown)?, tail)
            }
        };
        out.push(rec);
        rest = tail;
    }
    if out.is_empty() {
        return Err("empty frame".into());
    }
    Ok(out)
}

// ===== snapshot =====

/// Writes `entries` as a snapshot at `seq` to `f`, a new empty file at `path`: the header,
/// then frames of `Put` records of about [`SNAP_CHUNK`] bytes each. Returns the file's size.
/// Does not sync.
pub(super) fn write_snapshot<'a, R>(
    f: &mut File,
    path: &Path,
    kind: TableKind,
    entries: impl IntoIterator<Item = &'a Versioned<R>>,
    seq: u64,
) -> Result<u64, JournalError>
where
    R: Record + Serialize + 'a,
    R::Key: Serialize,
{
    let werr = |e: std::io::Error| io_err("cannot write", path, e);
    // The header goes first as a placeholder; the count is known at the end.
    f.write_all(&[0u8; FILE_HEADER]).map_err(werr)?;
    let mut written = FILE_HEADER as u64;
    let mut count = 0u64;
    let mut chunk = vec![0u8; FRAME_HEADER];
    let mut chunk_seq = 0;
    for v in entries {
        let rec = RecordRef::put(v.seq, &v.entry);
        chunk = postcard::to_extend(&rec, chunk).map_err(|source| JournalError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
        chunk_seq = chunk_seq.max(v.seq);
        count += 1;
        if chunk.len() >= SNAP_CHUNK {
            seal_frame(&mut chunk, chunk_seq);
            f.write_all(&chunk).map_err(werr)?;
            written += chunk.len() as u64;
            chunk.truncate(FRAME_HEADER);
            chunk_seq = 0;
        }
    }
    if chunk.len() > FRAME_HEADER {
        seal_frame(&mut chunk, chunk_seq);
        f.write_all(&chunk).map_err(werr)?;
        written += chunk.len() as u64;
    }
    f.write_all_at(&file_header(SNAP_MAGIC, kind, seq, count), 0)
        .map_err(werr)?;
    Ok(written)
}
