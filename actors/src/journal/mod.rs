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
//! `DIR` is created with mode 0700 if missing (each directory created is synced into its
//! parent), every file with mode 0600. Files are opened with
//! `O_NOFOLLOW` and temporary files are created with `O_EXCL`, so a symlink planted in the
//! state directory is never followed; all names are resolved relative to one open handle of
//! `DIR`.
//!
//! # On-disk format (version 3)
//!
//! All integers are little-endian. Both files start with a 40-byte header:
//!
//! ```text
//! offset size  field
//!  0      8    magic        "rtm-snap" (snapshot) or "rtm-jrnl" (journal)
//!  8      4    version      3 (FORMAT_VERSION); 1 and 2 are still read, see "Versions" below
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
//! 24    len    payload      records (below), each postcard-encoded, back to back
//! ```
//!
//! A journal frame holds exactly one committed batch (one [`Journal::commit`]), so a batch is
//! replayed whole or not at all. Snapshot frames hold up to about 1 MiB of `Put` records each.
//! Within a journal, sequence numbers strictly increase. Records are `Put { seq, origin, entry }`,
//! `Del { seq, key }` and `Flush { seq }` (postcard: the variant index, then the fields in
//! order); `origin` is one byte, the entry's [`Origin`](rtm_proto::Origin) (`0` rtm, `1`
//! kernel: [`Record::origin`], restored with [`Record::set_origin`]); the entry and key use the
//! table type's serde encoding (the same compact postcard encoding as the wire protocol, which
//! leaves the origin out): for a route `dst`, `via`, `dev`, `metric`, then `nexthops` (a
//! length, then each hop's `via`, `dev`, `weight`; length 0 for a route with one next hop). An
//! unknown origin number is an error naming the file and offset.
//!
//! ## Versions
//!
//! - **1**: as 2 without `origin`: a route's origin was lost across a restart.
//! - **2**: `Put` records carry the entry's origin, so routes mirrored from the kernel are
//!   still kernel routes after a restart. A route is its four fields before multipath routes
//!   (`dst`, `via`, `dev`, `metric`: [`route_v1`](rtm_proto::types::route_v1)).
//! - **3** (this code writes it): the records of 2; a route's serde form has `nexthops` after
//!   `metric`, so a multipath route is stored whole. ARP entries did not change.
//!
//! What an entry type stored in 1 and 2 is its [`JournalEntry::Legacy`] form, turned into the
//! entry by [`JournalEntry::from_legacy`] (a route with one next hop, `nexthops` empty). Each
//! file is decoded by its own header's version, so a snapshot and a journal of different
//! versions replay together. A version-1 file is read with origin rtm for every entry. After
//! reading a file of version 1 or 2 the start rewrites the table in version 3 (the compaction
//! below runs whenever a file of an older version was read) and logs one info line naming the
//! directory and both versions (the older one being the oldest of the two files). The rewrite
//! is an ordinary compaction, so a crash in its middle leaves a version-3 snapshot next to the
//! older journal it supersedes: a readable pair. A file of a version newer than
//! [`FORMAT_VERSION`] (or 0) is refused with [`JournalError::BadHeader`] naming the file, its
//! version and the versions this code reads; nothing is changed. An rtmd of older code refuses
//! a state directory of a newer version the same way, so a downgrade needs the state directory
//! the old release left (a copy taken before the upgrade) or an empty one.
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
//! compacted: a fresh snapshot and an empty journal, both in the current format (skipped only
//! when the journal is already empty, continues the snapshot, and both are of the current
//! format).
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
//! If a commit fails, the batch is not acknowledged. A failed *write* (a full disk: `ENOSPC`,
//! a quota) leaves at most a torn frame, which is cut off again (`ftruncate` to the committed
//! length): the journal stays usable, the batch's sequence numbers are free again, and the next
//! commit succeeds as soon as there is room. A failed `fdatasync` (or a failed cut) is different:
//! the kernel may have dropped the dirty pages, so what is on disk is unknown, and the journal
//! refuses further commits ([`JournalError::Poisoned`]) until a successful [`Journal::compact`]
//! with the state the caller considers durable. The numbers of such a batch are never handed
//! out again (it may still reach the disk): [`Journal::seq_floor`] says where the next must
//! start.
//!
//! # Where things are
//!
//! This file holds [`Journal`]. Beside it: `options.rs` (fsync policy, compaction threshold),
//! `entry.rs` (what an entry type needs: [`JournalEntry`]), `record.rs` (what a journal records), `format.rs` (the codec of headers, frames and
//! snapshots), `files.rs` (opening files without following symlinks), `replay.rs` (start-up:
//! snapshot and replay), `error.rs`.

mod entry;
mod error;
mod files;
mod format;
mod options;
mod record;
mod replay;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rtm_proto::shm::{Record, TableKind, Versioned};
use tracing::info;

pub use entry::JournalEntry;
pub use error::JournalError;
pub use format::{FORMAT_VERSION, OLDEST_FORMAT_VERSION};
pub use options::{FsyncPolicy, JournalOptions, DEFAULT_COMPACT_MIN};
pub use record::JournalRecord;
pub use replay::Recovered;

use error::io_err;
use files::remove_at;
use format::{file_header, seal_frame, FILE_HEADER, FRAME_HEADER, JOURNAL_MAGIC};
use record::RecordRef;

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

impl<R: JournalEntry> Journal<R> {
    /// Opens (creating if needed) table `name` in `dir`, locks it, recovers its state and
    /// compacts it. The table kind comes from `R`; `name` is the file stem (`route`, `arp`).
    pub fn open(
        dir: &Path,
        name: &str,
        opts: impl Into<JournalOptions>,
    ) -> Result<(Self, Recovered<R>), JournalError> {
        let opts = opts.into();
        let dirfd = files::open_state_dir(dir)?;
        let lock = files::lock_table(&dirfd, dir, name)?;

        let snap_name = format!("{name}.snap");
        let journal_name = format!("{name}.journal");
        let snap_path = dir.join(&snap_name);
        let journal_path = dir.join(&journal_name);
        for tmp in [format!("{snap_name}.tmp"), format!("{journal_name}.tmp")] {
            remove_at(&dirfd, &tmp, &dir.join(&tmp))?;
        }

        let replay::Found {
            recovered,
            snap_len,
            clean,
        } = replay::recover::<R>(
            &dirfd,
            (&snap_name, &snap_path),
            (&journal_name, &journal_path),
        )?;
        let seq = recovered.seq;

        let compact = clean.is_none();
        let (file, len) = match clean {
            Some(c) => c,
            // Replaced by the compaction below; any handle will do until then.
            None => (
                lock.try_clone().map_err(|e| {
                    io_err("cannot duplicate", &dir.join(format!("{name}.lock")), e)
                })?,
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
            j.compact(recovered.entries.values(), seq)?;
        }
        if let Some(old) = recovered.migrated_from {
            info!(
                table = %j.kind,
                dir = %j.dir.display(),
                from_version = old,
                to_version = FORMAT_VERSION,
                "table state read in an older journal format, rewritten in the current one"
            );
        }
        info!(
            table = %j.kind,
            dir = %j.dir.display(),
            entries = recovered.entries.len(),
            seq,
            from_snapshot = recovered.from_snapshot,
            replayed = recovered.replayed,
            "table state recovered"
        );
        Ok((j, recovered))
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
        self.stage_ref(seq, &RecordRef::put(seq, entry))
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
        if let Err(e) = self.file.write_all_at(&self.buf, self.len) {
            // The frame is not whole in the file (a full disk, a quota): cut what was written
            // of it. Once the file is back at its committed length the frame can never replay,
            // so the journal stays usable and the batch's numbers are free again.
            if let Err(t) = rustix::fs::ftruncate(&self.file, self.len) {
                self.poisoned = Some(format!("{e}; cutting the torn frame failed: {t}"));
                self.burned_seq = self.staged_seq;
            }
            self.discard();
            return Err(io_err("cannot write journal", &self.journal_path, e));
        }
        if self.opts.fsync == FsyncPolicy::Always {
            if let Err(e) = rustix::fs::fdatasync(&self.file) {
                // The kernel may have dropped the dirty pages, and the whole frame may still
                // reach the disk: what is on disk is unknown until a compaction.
                let _ = rustix::fs::ftruncate(&self.file, self.len);
                self.poisoned = Some(e.to_string());
                // Its numbers stay used.
                self.burned_seq = self.staged_seq;
                self.discard();
                return Err(io_err("cannot sync journal", &self.journal_path, e));
            }
        }
        self.len += self.buf.len() as u64;
        self.last_seq = self.staged_seq;
        self.discard();
        Ok(())
    }

    /// Whether a failed write left the journal refusing commits until a compaction.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The highest sequence number the journal may hold: the last committed one, or that of a
    /// batch whose commit failed in a way that may still bring it to disk. Numbers at or below
    /// it are never handed out again.
    pub fn seq_floor(&self) -> u64 {
        self.last_seq.max(self.burned_seq)
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
        let kind = self.kind;
        let snap_name = format!("{}.snap", self.name);
        let (_, snap_len) =
            files::write_and_rename(&self.dirfd, &self.dir, &snap_name, sync, |f, path| {
                format::write_snapshot(f, path, kind, entries, seq)
            })?;
        if sync {
            rustix::fs::fsync(&self.dirfd)
                .map_err(|e| io_err("cannot sync state directory", &self.dir, e))?;
        }
        self.snap_len = snap_len;
        // From here the old journal still replays correctly on top of the new snapshot
        // (its records are all at or below `seq`), so a failure below loses nothing.

        let journal_name = format!("{}.journal", self.name);
        let (file, ()) =
            files::write_and_rename(&self.dirfd, &self.dir, &journal_name, sync, |f, path| {
                f.write_all_at(&file_header(JOURNAL_MAGIC, kind, seq, 0), 0)
                    .map_err(|e| io_err("cannot write", path, e))
            })?;
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
