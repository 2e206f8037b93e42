//! Durable tables for `rtmd --state-dir DIR`: one snapshot and one append-only journal per table.
//!
//! Each table actor owns one [`Journal`]; nothing is shared between tables. A change is
//! *acknowledged* (replied to, written to shared memory, announced) only after the journal
//! holds it on disk, so every acknowledged change is back after a crash, a power loss (with
//! [`FsyncPolicy::Always`]) or a restart.
//!
//! # Files
//!
//! For a table named `route` (the ARP table is `arp`), in `DIR`:
//!
//! | file | what |
//! |---|---|
//! | `route.snap` | the whole table at one sequence number (written by compaction) |
//! | `route.journal` | every change after the snapshot, appended batch by batch |
//! | `route.lock` | `flock(2)`ed for as long as a daemon uses the table: a second `rtmd` on the same state directory refuses to start |
//! | `route.snap.tmp`, `route.journal.tmp` | exist only during a compaction; a leftover one is deleted at start |
//!
//! `DIR` is created with mode 0700 if missing, every file with mode 0600. Files are opened with
//! `O_NOFOLLOW` and temporary files are created with `O_EXCL`, so a symlink planted in the
//! state directory is never followed; all names are resolved relative to one open handle of
//! `DIR`.
//!
//! # On-disk format (version 1)
//!
//! All integers are little-endian. Both files start with a 40-byte header:
//!
//! ```text
//! offset size  field
//!  0      8    magic        "rtm-snap" (snapshot) or "rtm-jrnl" (journal)
//!  8      4    version      1
//! 12      4    kind         table kind: 1 = route, 2 = arp (a route file is never read as ARP)
//! 16      8    seq          snapshot: the table's sequence number it was taken at;
//!                           journal: the seq of the snapshot it continues ("base")
//! 24      8    count        snapshot: number of entries; journal: 0
//! 32      4    reserved     0
//! 36      4    header_crc   CRC-32C of bytes 0..36
//! ```
//!
//! The rest of the file is a sequence of *frames*:
//!
//! ```text
//!  0      4    magic        "RTMF"
//!  4      4    len          payload length in bytes (at most 1 GiB)
//!  8      8    last_seq     seq of the last record in the payload
//! 16      4    payload_crc  CRC-32C of the payload
//! 20      4    header_crc   CRC-32C of bytes 0..20 of this frame header
//! 24    len    payload      records, each a postcard-encoded [`JournalRecord`], back to back
//! ```
//!
//! A journal frame holds exactly one committed batch (one [`Journal::commit`]), so a batch is
//! replayed whole or not at all. Snapshot frames hold up to about 1 MiB of `Put` records each.
//! Within a journal, sequence numbers strictly increase. Records are `Put { seq, entry }`,
//! `Del { seq, key }` and `Flush { seq }`; the entry and key use the table type's serde
//! encoding (the same compact postcard encoding as the wire protocol).
//!
//! # Start-up
//!
//! [`Journal::open`] reads the snapshot (any damage there is an error: it was written to a
//! temporary file, synced and renamed into place, so it cannot be torn), then replays the
//! journal frame by frame:
//!
//! - A bad frame at the **end** (short header, bad checksum, a length running past the end of
//!   the file) is a write that a crash cut short. Nothing in it was acknowledged: it is dropped,
//!   and a warning names the file and the offset.
//! - A bad frame followed by a valid frame is **corruption** of acknowledged data: `open` fails
//!   with [`JournalError::Corrupt`], naming the file, the offset of the bad frame and the offset
//!   of the next valid one. Nothing is dropped silently; move the file aside or restore it.
//! - Records at or below the snapshot's seq are skipped (a crash between the two renames of a
//!   compaction leaves a new snapshot next to the old journal).
//!
//! The recovered sequence number is the larger of the snapshot's and the last replayed
//! record's, so sequence numbers never go backwards across restarts. Then the state is
//! compacted: a fresh snapshot and an empty journal.
//!
//! # Compaction
//!
//! Write `NAME.snap.tmp` (`O_CREAT|O_EXCL|O_NOFOLLOW`, 0600), sync it, rename it over
//! `NAME.snap`, sync the directory; then the same for a new, empty `NAME.journal` whose base is
//! the snapshot's seq. A crash at any point leaves a readable pair. The table actor calls
//! [`Journal::compact`] when [`Journal::needs_compaction`] says the journal has grown past
//! `max(compact_min, 2 × snapshot size)` (`compact_min` defaults to 64 MiB). A compaction writes
//! the whole table, and the table actor is busy until it is done.
//!
//! # Fsync policy and its cost
//!
//! [`FsyncPolicy::Always`] (the default): every [`Journal::commit`] is one `pwrite(2)` of one
//! frame followed by one `fdatasync(2)`. The caller applies a whole request (a single
//! `rtmctl route add`, or a pipelined batch) in memory, stages all its records, commits once,
//! and only then publishes. The cost is therefore per *request*, not per change: a lone change
//! pays a full device flush, a batch of thousands pays about the same. Compaction syncs the
//! new files and the directory.
//!
//! [`FsyncPolicy::Never`]: `commit` writes the frame but never syncs (nor does compaction).
//! The data is in the kernel's page cache when the change is acknowledged, so it survives a
//! crash or kill of `rtmd`, but **not a power loss or a kernel crash**: the last seconds of
//! acknowledged changes can be lost, and a compaction caught by a power loss can leave a
//! damaged snapshot (a clear start-up error, not silent loss). Use it where the tables are
//! re-created by a controller anyway, or on a disk whose flushes are too slow.
//!
//! What a commit costs with each policy and batch size, and what compaction and start-up cost
//! for a given table size: BENCHMARKS.md, journal (`cargo bench -p rtm-actors --bench journal`).
//!
//! # Use from a table actor
//!
//! 1. At start: `let (journal, recovered) = Journal::open(dir, "route", policy)?` and seed the
//!    table and its sequence counter from `recovered` (then republish shared memory from it).
//! 2. Per request: apply the ops to the in-memory table, calling `stage_put` / `stage_del` /
//!    `stage_flush` with each change's seq (by reference, nothing is cloned); then `commit()`
//!    once; only on `Ok` write shared memory, reply and notify.
//! 3. After a commit: `if journal.needs_compaction() { journal.compact(entries.values(), seq) }`.
//!
//! # Errors
//!
//! If a commit fails (write or fdatasync error), the batch is not acknowledged and the journal
//! refuses further commits ([`JournalError::Poisoned`]): after a failed `fdatasync` the kernel
//! may have dropped the dirty pages, so what is on disk is unknown. A successful
//! [`Journal::compact`] with the state the caller considers durable clears that. Sequence numbers
//! of a failed batch should not be handed out again (it may still reach the disk).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rtm_proto::shm::{Record, TableKind, Versioned};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The on-disk format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Default for [`JournalOptions::compact_min`]: 64 MiB.
pub const DEFAULT_COMPACT_MIN: u64 = 64 << 20;

const SNAP_MAGIC: [u8; 8] = *b"rtm-snap";
const JOURNAL_MAGIC: [u8; 8] = *b"rtm-jrnl";
const FILE_HEADER: usize = 40;
const FRAME_MAGIC: [u8; 4] = *b"RTMF";
const FRAME_HEADER: usize = 24;
const MAX_FRAME: usize = 1 << 30;
const SNAP_CHUNK: usize = 1 << 20;
const FILE_MODE: u32 = 0o600;

// ===== policy and options =====

/// When a commit waits for the disk. See the module docs for what each one survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `fdatasync(2)` after every commit: acknowledged changes survive a power loss.
    #[default]
    Always,
    /// Never sync: acknowledged changes survive a crash of `rtmd`, not of the machine.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!("fsync policy {other:?}: expected always or never")),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Never => "never",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    pub fsync: FsyncPolicy,
    /// [`Journal::needs_compaction`] is true once the journal is larger than
    /// `max(compact_min, 2 × snapshot size)`.
    pub compact_min: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            fsync: FsyncPolicy::Always,
            compact_min: DEFAULT_COMPACT_MIN,
        }
    }
}

impl From<FsyncPolicy> for JournalOptions {
    fn from(fsync: FsyncPolicy) -> Self {
        JournalOptions {
            fsync,
            ..JournalOptions::default()
        }
    }
}

// ===== records =====

/// One change of a table, as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "R: Serialize, R::Key: Serialize",
    deserialize = "R: DeserializeOwned, R::Key: DeserializeOwned"
))]
pub enum JournalRecord<R: Record> {
    /// Create or update the entry with `entry.key()`.
    Put { seq: u64, entry: R },
    /// Delete `key`.
    Del { seq: u64, key: R::Key },
    /// Empty the table.
    Flush { seq: u64 },
}

impl<R: Record> JournalRecord<R> {
    pub fn seq(&self) -> u64 {
        match self {
            JournalRecord::Put { seq, .. }
            | JournalRecord::Del { seq, .. }
            | JournalRecord::Flush { seq } => *seq,
        }
    }
}

/// [`JournalRecord`] by reference, for staging without cloning. Encodes exactly like it
/// (same variants in the same order; serde encodes `&T` as `T`).
#[derive(Serialize)]
#[serde(bound(serialize = "R: Serialize, R::Key: Serialize"))]
enum RecordRef<'a, R: Record> {
    Put { seq: u64, entry: &'a R },
    Del { seq: u64, key: &'a R::Key },
    Flush { seq: u64 },
}

/// What [`Journal::open`] found on disk.
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
}

// ===== errors =====

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state directory {} is in use by another rtmd (lock {} is held)", dir.display(), lock.display())]
    Locked { dir: PathBuf, lock: PathBuf },
    #[error("{} is a symlink or not a regular file; refusing to use it", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: {why}", path.display())]
    BadHeader { path: PathBuf, why: String },
    #[error("{} is corrupt at offset {offset}: {why}{}", path.display(), follows(*next_valid))]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
        /// Offset of the next valid frame after the bad one (journal only).
        next_valid: Option<u64>,
    },
    #[error("journal {}: sequence number {seq} is not above {last}", path.display())]
    SeqOrder { path: PathBuf, seq: u64, last: u64 },
    #[error("journal {}: cannot encode a record: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: postcard::Error,
    },
    #[error("journal {} is unusable after a failed write ({why}); no change is acknowledged until the table is compacted", path.display())]
    Poisoned { path: PathBuf, why: String },
}

fn follows(next: Option<u64>) -> String {
    match next {
        Some(n) => format!(
            "; a valid record follows at offset {n}, so this is damage to acknowledged changes, \
             not a torn last write (restore the file or move it aside)"
        ),
        None => String::new(),
    }
}

fn io_err(what: &'static str, path: &Path, e: impl Into<io::Error>) -> JournalError {
    JournalError::Io {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

// ===== CRC-32C =====

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32C (Castagnoli), as used by iSCSI, ext4 and btrfs.
fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ===== headers and frames =====

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn file_header(magic: [u8; 8], kind: TableKind, seq: u64, count: u64) -> [u8; FILE_HEADER] {
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

/// Checks a file header; returns (seq, count).
fn parse_file_header(
    path: &Path,
    data: &[u8],
    magic: [u8; 8],
    what: &str,
    kind: TableKind,
) -> Result<(u64, u64), JournalError> {
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
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "{what} format version {version}; this rtmd reads version {FORMAT_VERSION}"
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
    Ok((u64_at(data, 16), u64_at(data, 24)))
}

/// Fills in the frame header at `buf[0..FRAME_HEADER]` for the payload after it.
fn seal_frame(buf: &mut [u8], last_seq: u64) {
    let len = (buf.len() - FRAME_HEADER) as u32;
    let payload_crc = crc32c(&buf[FRAME_HEADER..]);
    buf[0..4].copy_from_slice(&FRAME_MAGIC);
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    buf[8..16].copy_from_slice(&last_seq.to_le_bytes());
    buf[16..20].copy_from_slice(&payload_crc.to_le_bytes());
    let crc = crc32c(&buf[0..20]);
    buf[20..24].copy_from_slice(&crc.to_le_bytes());
}

struct Frame<'a> {
    payload: &'a [u8],
    last_seq: u64,
    end: usize,
}

/// The frame at `off`, or why there is no valid one there.
fn frame_at(data: &[u8], off: usize) -> Result<Frame<'_>, &'static str> {
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
fn next_valid_frame(data: &[u8], off: usize) -> Option<usize> {
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

/// Decodes the records of one frame's payload.
fn decode_records<R>(payload: &[u8]) -> Result<Vec<JournalRecord<R>>, String>
where
    R: Record + DeserializeOwned,
    R::Key: DeserializeOwned,
{
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (rec, tail) = postcard::take_from_bytes::<JournalRecord<R>>(rest).map_err(|e| {
            format!(
                "undecodable record at payload byte {} ({e}); written by a newer rtmd?",
                payload.len() - rest.len()
            )
        })?;
        out.push(rec);
        rest = tail;
    }
    if out.is_empty() {
        return Err("empty frame".into());
    }
    Ok(out)
}

// ===== file helpers =====

fn open_at(dir: &OwnedFd, name: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
}

/// Opens an existing regular file, or `Ok(None)` if there is none.
fn open_existing(
    dir: &OwnedFd,
    name: &str,
    path: &Path,
    flags: OFlags,
) -> Result<Option<File>, JournalError> {
    match open_at(dir, name, flags) {
        Ok(fd) => {
            let f = File::from(fd);
            let meta = f.metadata().map_err(|e| io_err("cannot stat", path, e))?;
            if !meta.file_type().is_file() {
                return Err(JournalError::NotRegular {
                    path: path.to_path_buf(),
                });
            }
            Ok(Some(f))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(Errno::LOOP) => Err(JournalError::NotRegular {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io_err("cannot open", path, e)),
    }
}

fn remove_at(dir: &OwnedFd, name: &str, path: &Path) -> Result<(), JournalError> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(io_err("cannot remove", path, e)),
    }
}

// ===== the journal =====

/// The durable copy of one table: its snapshot and journal files, exclusively locked.
pub struct Journal<R: Record> {
    dir: PathBuf,
    dirfd: OwnedFd,
    name: String,
    kind: TableKind,
    journal_path: PathBuf,
    snap_path: PathBuf,
    file: File,
    /// Bytes of the journal file that hold committed frames.
    len: u64,
    snap_len: u64,
    /// Highest seq committed (or of the snapshot).
    last_seq: u64,
    /// Frame header space followed by the staged records.
    buf: Vec<u8>,
    staged: usize,
    staged_seq: u64,
    /// Highest seq of a batch whose commit failed (it may still reach the disk).
    burned_seq: u64,
    opts: JournalOptions,
    poisoned: Option<String>,
    _lock: File,
    _record: PhantomData<fn() -> R>,
}

impl<R: Record> fmt::Debug for Journal<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("journal", &self.journal_path)
            .field("len", &self.len)
            .field("snap_len", &self.snap_len)
            .field("last_seq", &self.last_seq)
            .field("staged", &self.staged)
            .finish_non_exhaustive()
    }
}

impl<R> Journal<R>
where
    R: Record + Serialize + DeserializeOwned,
    R::Key: Serialize + DeserializeOwned,
{
    /// Opens (creating if needed) table `name` in `dir`, locks it, recovers its state and
    /// compacts it. The table kind comes from `R`; `name` is the file stem (`route`, `arp`).
    pub fn open(
        dir: &Path,
        name: &str,
        opts: impl Into<JournalOptions>,
    ) -> Result<(Self, Recovered<R>), JournalError> {
        let opts = opts.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("cannot create state directory", dir, e))?;
        let dirfd = rustix::fs::openat(
            rustix::fs::CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("cannot open state directory", dir, e))?;

        let lock_name = format!("{name}.lock");
        let lock_path = dir.join(&lock_name);
        let lock = match open_at(&dirfd, &lock_name, OFlags::RDWR | OFlags::CREATE) {
            Ok(fd) => File::from(fd),
            Err(Errno::LOOP) => return Err(JournalError::NotRegular { path: lock_path }),
            Err(e) => return Err(io_err("cannot open lock file", &lock_path, e)),
        };
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                return Err(JournalError::Locked {
                    dir: dir.to_path_buf(),
                    lock: lock_path,
                })
            }
            Err(e) => return Err(io_err("cannot lock", &lock_path, e)),
        }

        let snap_name = format!("{name}.snap");
        let journal_name = format!("{name}.journal");
        let snap_path = dir.join(&snap_name);
        let journal_path = dir.join(&journal_name);
        for tmp in [format!("{snap_name}.tmp"), format!("{journal_name}.tmp")] {
            remove_at(&dirfd, &tmp, &dir.join(&tmp))?;
        }

        // The snapshot.
        let mut entries = BTreeMap::new();
        let (snap_seq, snap_len, from_snapshot) =
            match open_existing(&dirfd, &snap_name, &snap_path, OFlags::RDONLY)? {
                Some(mut f) => {
                    let mut data = Vec::new();
                    f.read_to_end(&mut data)
                        .map_err(|e| io_err("cannot read", &snap_path, e))?;
                    let (seq, count) = read_snapshot(&snap_path, &data, &mut entries)?;
                    (Some(seq), data.len() as u64, count)
                }
                None => (None, 0, 0),
            };

        // The journal.
        let mut seq = snap_seq.unwrap_or(0);
        let mut replayed = 0;
        let mut truncated_tail = None;
        let mut clean = None;
        if let Some(mut f) = open_existing(&dirfd, &journal_name, &journal_path, OFlags::RDWR)? {
            let mut data = Vec::new();
            f.read_to_end(&mut data)
                .map_err(|e| io_err("cannot read", &journal_path, e))?;
            let r = replay(&journal_path, &data, snap_seq, R::KIND, &mut entries)?;
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
            if r.frames == 0 && r.torn_at.is_none() && snap_seq == Some(r.base) {
                clean = Some((f, data.len() as u64));
            }
        }

        let compact = clean.is_none();
        let (file, len) = match clean {
            Some(c) => c,
            // Replaced by the compaction below; any handle will do until then.
            None => (
                lock.try_clone()
                    .map_err(|e| io_err("cannot duplicate", &lock_path, e))?,
                0,
            ),
        };
        let mut j = Journal {
            dir: dir.to_path_buf(),
            dirfd,
            name: name.to_string(),
            kind: R::KIND,
            journal_path,
            snap_path,
            file,
            len,
            snap_len,
            last_seq: seq,
            buf: vec![0; FRAME_HEADER],
            staged: 0,
            staged_seq: seq,
            burned_seq: 0,
            opts,
            poisoned: None,
            _lock: lock,
            _record: PhantomData,
        };
        if compact {
            j.compact(entries.values(), seq)?;
        }
        info!(
            table = %j.kind,
            dir = %j.dir.display(),
            entries = entries.len(),
            seq,
            from_snapshot,
            replayed,
            "table state recovered"
        );
        Ok((
            j,
            Recovered {
                entries,
                seq,
                from_snapshot,
                replayed,
                truncated_tail,
            },
        ))
    }

    // ----- appending -----

    fn check_seq(&self, seq: u64) -> Result<(), JournalError> {
        if seq <= self.staged_seq {
            return Err(JournalError::SeqOrder {
                path: self.journal_path.clone(),
                seq,
                last: self.staged_seq,
            });
        }
        Ok(())
    }

    fn stage_ref(&mut self, seq: u64, rec: &RecordRef<'_, R>) -> Result<(), JournalError> {
        self.check_seq(seq)?;
        let buf = std::mem::take(&mut self.buf);
        match postcard::to_extend(rec, buf) {
            Ok(buf) => {
                self.buf = buf;
                self.staged += 1;
                self.staged_seq = seq;
                Ok(())
            }
            Err(source) => {
                // The buffer is gone with the error: stage nothing of this batch.
                self.discard();
                Err(JournalError::Encode {
                    path: self.journal_path.clone(),
                    source,
                })
            }
        }
    }

    /// Stages "entry `entry.key()` is now `entry`" for the next [`commit`](Self::commit).
    /// `seq` must be above every seq staged or committed before.
    pub fn stage_put(&mut self, seq: u64, entry: &R) -> Result<(), JournalError> {
        self.stage_ref(seq, &RecordRef::Put { seq, entry })
    }

    /// Stages "`key` is deleted".
    pub fn stage_del(&mut self, seq: u64, key: &R::Key) -> Result<(), JournalError> {
        self.stage_ref(seq, &RecordRef::Del { seq, key })
    }

    /// Stages "the table is emptied".
    pub fn stage_flush(&mut self, seq: u64) -> Result<(), JournalError> {
        let rec: RecordRef<'_, R> = RecordRef::Flush { seq };
        self.stage_ref(seq, &rec)
    }

    /// Stages a record.
    pub fn stage(&mut self, rec: &JournalRecord<R>) -> Result<(), JournalError> {
        match rec {
            JournalRecord::Put { seq, entry } => self.stage_put(*seq, entry),
            JournalRecord::Del { seq, key } => self.stage_del(*seq, key),
            JournalRecord::Flush { seq } => self.stage_flush(*seq),
        }
    }

    /// Drops the staged records; their sequence numbers may be staged again.
    pub fn discard(&mut self) {
        self.buf.clear();
        self.buf.resize(FRAME_HEADER, 0);
        self.staged = 0;
        self.staged_seq = self.last_seq.max(self.burned_seq);
    }

    /// Number of staged records.
    pub fn staged(&self) -> usize {
        self.staged
    }

    /// Makes the staged records durable: one write of one frame, then (with
    /// [`FsyncPolicy::Always`]) one `fdatasync`. Only after `Ok` may they be acknowledged.
    /// Nothing staged: nothing written, `Ok`. On error nothing is acknowledged and the journal
    /// is poisoned (see the module docs).
    pub fn commit(&mut self) -> Result<(), JournalError> {
        if let Some(why) = &self.poisoned {
            let why = why.clone();
            self.discard();
            return Err(JournalError::Poisoned {
                path: self.journal_path.clone(),
                why,
            });
        }
        if self.staged == 0 {
            return Ok(());
        }
        seal_frame(&mut self.buf, self.staged_seq);
        let mut res = self.file.write_all_at(&self.buf, self.len);
        if res.is_ok() && self.opts.fsync == FsyncPolicy::Always {
            res = rustix::fs::fdatasync(&self.file).map_err(io::Error::from);
        }
        match res {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                self.last_seq = self.staged_seq;
                self.discard();
                Ok(())
            }
            Err(e) => {
                // Best effort: a later reopen sees at most a torn tail.
                let _ = rustix::fs::ftruncate(&self.file, self.len);
                self.poisoned = Some(e.to_string());
                // The batch may still reach the disk: its numbers stay used.
                self.burned_seq = self.staged_seq;
                self.discard();
                Err(io_err("cannot write journal", &self.journal_path, e))
            }
        }
    }

    /// Stages `records` and commits them: one write, one fsync.
    pub fn append(&mut self, records: &[JournalRecord<R>]) -> Result<(), JournalError> {
        for r in records {
            if let Err(e) = self.stage(r) {
                self.discard();
                return Err(e);
            }
        }
        self.commit()
    }

    // ----- compaction -----

    /// Whether the journal has grown past `max(compact_min, 2 × snapshot size)`.
    pub fn needs_compaction(&self) -> bool {
        self.len > self.opts.compact_min.max(self.snap_len.saturating_mul(2))
    }

    /// Writes `entries` as the new snapshot at `seq` and starts an empty journal. `entries` must
    /// be the whole table with every committed change applied; records staged and not committed
    /// are dropped (the snapshot supersedes them). `seq` may not be below the last committed
    /// seq. Success also clears a poisoned journal.
    pub fn compact<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Versioned<R>>,
        seq: u64,
    ) -> Result<(), JournalError>
    where
        R: 'a,
    {
        let floor = self.last_seq.max(self.burned_seq);
        if seq < floor {
            return Err(JournalError::SeqOrder {
                path: self.snap_path.clone(),
                seq,
                last: floor,
            });
        }
        self.discard();
        let sync = self.opts.fsync == FsyncPolicy::Always;
        let snap_name = format!("{}.snap", self.name);
        let snap_tmp = format!("{snap_name}.tmp");
        let snap_tmp_path = self.dir.join(&snap_tmp);
        let snap_len = match self.write_snapshot(&snap_tmp, &snap_tmp_path, entries, seq, sync) {
            Ok(n) => n,
            Err(e) => {
                let _ = remove_at(&self.dirfd, &snap_tmp, &snap_tmp_path);
                return Err(e);
            }
        };
        rustix::fs::renameat(&self.dirfd, &snap_tmp, &self.dirfd, &snap_name)
            .map_err(|e| io_err("cannot rename into place", &self.snap_path, e))?;
        if sync {
            rustix::fs::fsync(&self.dirfd)
                .map_err(|e| io_err("cannot sync state directory", &self.dir, e))?;
        }
        self.snap_len = snap_len;
        // From here the old journal still replays correctly on top of the new snapshot
        // (its records are all at or below `seq`), so a failure below loses nothing.

        let journal_name = format!("{}.journal", self.name);
        let journal_tmp = format!("{journal_name}.tmp");
        let journal_tmp_path = self.dir.join(&journal_tmp);
        let file = match self
            .create_tmp(&journal_tmp, &journal_tmp_path)
            .and_then(|f| {
                let h = file_header(JOURNAL_MAGIC, self.kind, seq, 0);
                f.write_all_at(&h, 0)
                    .map_err(|e| io_err("cannot write", &journal_tmp_path, e))?;
                if sync {
                    rustix::fs::fsync(&f)
                        .map_err(|e| io_err("cannot sync", &journal_tmp_path, e))?;
                }
                Ok(f)
            }) {
            Ok(f) => f,
            Err(e) => {
                let _ = remove_at(&self.dirfd, &journal_tmp, &journal_tmp_path);
                return Err(e);
            }
        };
        rustix::fs::renameat(&self.dirfd, &journal_tmp, &self.dirfd, &journal_name)
            .map_err(|e| io_err("cannot rename into place", &self.journal_path, e))?;
        // The old file is gone from the directory: appending to it would be lost.
        self.file = file;
        self.len = FILE_HEADER as u64;
        self.last_seq = seq;
        self.staged_seq = seq;
        self.poisoned = None;
        if sync {
            if let Err(e) = rustix::fs::fsync(&self.dirfd) {
                self.poisoned = Some(format!("cannot sync state directory: {e}"));
                return Err(io_err("cannot sync state directory", &self.dir, e));
            }
        }
        Ok(())
    }

    fn create_tmp(&self, name: &str, path: &Path) -> Result<File, JournalError> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL;
        let fd = match open_at(&self.dirfd, name, flags) {
            Err(Errno::EXIST) => {
                // Left by a compaction that failed; unlink removes a symlink, never its target.
                remove_at(&self.dirfd, name, path)?;
                open_at(&self.dirfd, name, flags)
            }
            other => other,
        }
        .map_err(|e| io_err("cannot create", path, e))?;
        Ok(File::from(fd))
    }

    fn write_snapshot<'a>(
        &self,
        name: &str,
        path: &Path,
        entries: impl IntoIterator<Item = &'a Versioned<R>>,
        seq: u64,
        sync: bool,
    ) -> Result<u64, JournalError>
    where
        R: 'a,
    {
        let werr = |e: io::Error| io_err("cannot write", path, e);
        let mut f = self.create_tmp(name, path)?;
        // The header goes first as a placeholder; the count is known at the end.
        f.write_all(&[0u8; FILE_HEADER]).map_err(werr)?;
        let mut written = FILE_HEADER as u64;
        let mut count = 0u64;
        let mut chunk = vec![0u8; FRAME_HEADER];
        let mut chunk_seq = 0;
        for v in entries {
            let rec = RecordRef::Put {
                seq: v.seq,
                entry: &v.entry,
            };
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
        f.write_all_at(&file_header(SNAP_MAGIC, self.kind, seq, count), 0)
            .map_err(werr)?;
        if sync {
            rustix::fs::fsync(&f).map_err(|e| io_err("cannot sync", path, e))?;
        }
        Ok(written)
    }

    // ----- inspection -----

    /// Bytes in the journal file (header and committed frames).
    pub fn journal_len(&self) -> u64 {
        self.len
    }

    /// Bytes in the snapshot file.
    pub fn snapshot_len(&self) -> u64 {
        self.snap_len
    }

    /// The highest committed sequence number (or the snapshot's).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    pub fn snapshot_path(&self) -> &Path {
        &self.snap_path
    }

    pub fn options(&self) -> JournalOptions {
        self.opts
    }
}

/// Reads a snapshot into `entries`; returns (seq, count).
fn read_snapshot<R>(
    path: &Path,
    data: &[u8],
    entries: &mut BTreeMap<R::Key, Versioned<R>>,
) -> Result<(u64, u64), JournalError>
where
    R: Record + DeserializeOwned,
    R::Key: DeserializeOwned,
{
    let (seq, count) = parse_file_header(path, data, SNAP_MAGIC, "snapshot", R::KIND)?;
    let corrupt = |offset: usize, why: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why,
        next_valid: None,
    };
    let mut off = FILE_HEADER;
    while off < data.len() {
        let frame = frame_at(data, off).map_err(|why| corrupt(off, why.into()))?;
        for rec in decode_records::<R>(frame.payload).map_err(|why| corrupt(off, why))? {
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
    Ok((seq, count))
}

struct Replay {
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
    R: Record + DeserializeOwned,
    R::Key: DeserializeOwned,
{
    let (base, _) = parse_file_header(path, data, JOURNAL_MAGIC, "journal", kind)?;
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
        let records = decode_records::<R>(frame.payload).map_err(|why| corrupt(off, why))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rtm_proto::{ArpEntry, MacAddr, Prefix, Route};
    use std::net::Ipv4Addr;

    fn route(i: u32) -> Route {
        Route {
            dst: Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap(),
            via: Some(Ipv4Addr::new(192, 168, 1, (i % 250) as u8 + 1)),
            dev: Some("eth0".parse().unwrap()),
            metric: i,
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
    fn staged_by_reference_encodes_like_owned() {
        let recs = vec![
            JournalRecord::Put {
                seq: 1,
                entry: route(7),
            },
            JournalRecord::Del {
                seq: 300,
                key: route(7).dst,
            },
            JournalRecord::Flush { seq: 1 << 40 },
        ];
        for r in &recs {
            let owned = postcard::to_allocvec(r).unwrap();
            let by_ref = match r {
                JournalRecord::Put { seq, entry } => {
                    postcard::to_allocvec(&RecordRef::Put { seq: *seq, entry })
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
            assert_eq!(owned, by_ref);
        }
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
}
