//! The single writer of a table file (the daemon).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

use super::layout::{
    self, check_header, file_len, hash, meta, meta_seq, meta_state, slot_count_for, Header, Slot,
    HEADER_SIZE, LAYOUT_VERSION, MAGIC, META_WORD, PAYLOAD_WORDS, SLOT_EMPTY, SLOT_LIVE, SLOT_SIZE,
    SLOT_TOMBSTONE, SLOT_WORDS, STATE_ACTIVE, STATE_RETIRED,
};
use super::mapping::{map_read_write, Mapping};
use super::seqlock::write_slot;
use super::sync::Ordering::{Relaxed, Release};
use super::{file_id, Record, ShmError, Versioned};

/// Owns a table file read-write and keeps it in sync with the caller's table.
///
/// There must be only one writer per path. It keeps a process-local index from key to slot, so
/// it never probes shared memory for its own keys.
pub struct ShmWriter<R: Record> {
    path: PathBuf,
    mode: u32,
    map: Mapping,
    capacity: usize,
    slot_count: usize,
    generation: u64,
    /// Slot of every live key.
    index: HashMap<R::Key, usize>,
    /// Number of TOMBSTONE slots.
    tombstones: usize,
    /// Every slot that may be non-EMPTY (each once), so `clear` is O(slots used).
    dirty: Vec<usize>,
    in_dirty: Vec<bool>,
    /// Identity of our file, so `remove_file` never unlinks someone else's.
    dev_ino: (u64, u64),
}

/// A freshly built, not yet published table file.
struct Built<K> {
    tmp: TmpFile,
    map: Mapping,
    index: HashMap<K, usize>,
    dirty: Vec<usize>,
    in_dirty: Vec<bool>,
    dev_ino: (u64, u64),
}

/// Unlinks the temporary file unless it was renamed into place.
struct TmpFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(format!(
        ".tmp.{}",
        rustix::process::getpid().as_raw_nonzero()
    ));
    PathBuf::from(s)
}

fn slot_words<R: Record>(rec: &R, state: u64, seq: u64) -> [u64; SLOT_WORDS] {
    let mut w = [0u64; SLOT_WORDS];
    w[..PAYLOAD_WORDS].copy_from_slice(&rec.encode());
    w[META_WORD] = meta(state, seq);
    w
}

/// First slot in `key_word`'s probe sequence that is not LIVE. The caller guarantees one exists
/// (live entries never fill the table: capacity < slot_count).
fn free_slot(slots: &[Slot], key_word: u64) -> usize {
    let m = slots.len() - 1;
    let mut i = hash(key_word) as usize & m;
    for _ in 0..slots.len() {
        if meta_state(slots[i].words[META_WORD].load(Relaxed)) != SLOT_LIVE {
            return i;
        }
        i = (i + 1) & m;
    }
    unreachable!("no free slot although live entries < slot count")
}

/// Maps an existing valid table file of kind `R::KIND` owned by our euid, read-write.
fn open_existing<R: Record>(path: &Path) -> Option<Mapping> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
    {
        return None;
    }
    let file = File::from(fd);
    let map = Mapping::read_write(map_read_write(&file).ok()?).ok()?;
    let (slots, _) = check_header(map.header(), R::KIND).ok()?;
    map.with_slots(slots).ok()
}

/// Writes a complete table file holding `entries` (unique keys, at most `capacity`) at a
/// temporary name next to `path`.
fn build<R: Record>(
    path: &Path,
    mode: u32,
    capacity: usize,
    slot_count: usize,
    generation: u64,
    table_seq: u64,
    entries: &[Versioned<R>],
) -> Result<Built<R::Key>, ShmError> {
    let tmp = tmp_path(path);
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(&tmp, flags, Mode::from_raw_mode(mode)) {
        Err(rustix::io::Errno::EXIST) => {
            // Left by an earlier process with our pid that died; unlink never follows links.
            rustix::fs::unlink(&tmp).map_err(|e| ShmError::io(&tmp, e))?;
            rustix::fs::open(&tmp, flags, Mode::from_raw_mode(mode))
        }
        r => r,
    }
    .map_err(|e| ShmError::io(&tmp, e))?;
    let tmp = TmpFile {
        path: tmp,
        armed: true,
    };
    let io_err = |e: io::Error| ShmError::io(&tmp.path, e);
    // Exactly `mode`, whatever the umask.
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| io_err(e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(e.into()))?;
    let dev_ino = file_id(&st);
    let file = File::from(fd);
    let len = file_len(slot_count).expect("slot count checked");
    file.set_len(len as u64).map_err(io_err)?;
    let map = Mapping::read_write(map_read_write(&file).map_err(io_err)?)
        .and_then(|m| m.with_slots(slot_count))
        .map_err(|why| ShmError::bad(&tmp.path, why))?;
    debug_assert!(map.is_writable());

    let h: &Header = map.header();
    h.magic.store(MAGIC, Relaxed);
    h.layout_version.store(LAYOUT_VERSION, Relaxed);
    h.kind.store(R::KIND.as_u32(), Relaxed);
    h.header_size.store(HEADER_SIZE as u32, Relaxed);
    h.slot_size.store(SLOT_SIZE as u32, Relaxed);
    h.slot_count.store(slot_count as u64, Relaxed);
    h.capacity.store(capacity as u64, Relaxed);
    h.generation.store(generation, Relaxed);
    h.state.store(STATE_ACTIVE, Relaxed);
    h.writer_pid.store(
        rustix::process::getpid().as_raw_nonzero().get() as u32,
        Relaxed,
    );
    h.table_seq.store(table_seq, Relaxed);

    let slots = map.slots();
    let mut index = HashMap::with_capacity(entries.len());
    let mut dirty = Vec::with_capacity(entries.len());
    let mut in_dirty = vec![false; slot_count];
    for v in entries {
        let i = free_slot(slots, R::key_word(&v.entry.key()));
        write_slot(&slots[i], &slot_words(&v.entry, SLOT_LIVE, v.seq));
        index.insert(v.entry.key(), i);
        dirty.push(i);
        in_dirty[i] = true;
    }
    h.live.store(index.len() as u64, Relaxed);
    h.tombstones.store(0, Relaxed);
    Ok(Built {
        tmp,
        map,
        index,
        dirty,
        in_dirty,
        dev_ino,
    })
}

impl<R: Record> ShmWriter<R> {
    /// Publishes a new, empty table file at `path` (a new generation).
    ///
    /// Writes `<path>.tmp.<pid>` (created `O_EXCL | O_NOFOLLOW` with exactly `mode`), sizes and
    /// initialises it, then renames it over `path`. If a valid table file of the same kind owned
    /// by our euid was at `path`, the new generation is the old one + 1 and the old file is
    /// marked RETIRED; otherwise the generation is 1. A symlink at `path` is replaced, never
    /// followed.
    pub fn create(path: &Path, capacity: usize, mode: u32) -> Result<Self, ShmError> {
        let slot_count = slot_count_for(capacity).ok_or_else(|| {
            ShmError::io(
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("capacity {capacity} over {}", layout::MAX_CAPACITY),
                ),
            )
        })?;
        let old = open_existing::<R>(path);
        let generation = old
            .as_ref()
            .map_or(1, |m| m.header().generation.load(Relaxed).wrapping_add(1));
        let built = build::<R>(path, mode, capacity, slot_count, generation, 0, &[])?;
        let mut w = ShmWriter {
            path: path.to_path_buf(),
            mode,
            map: built.map,
            capacity,
            slot_count,
            generation,
            index: built.index,
            tombstones: 0,
            dirty: built.dirty,
            in_dirty: built.in_dirty,
            dev_ino: built.dev_ino,
        };
        let mut tmp = built.tmp;
        rustix::fs::rename(&tmp.path, path).map_err(|e| ShmError::io(path, e))?;
        tmp.armed = false;
        if let Some(old) = old {
            old.header().state.store(STATE_RETIRED, Release);
        }
        w.sync_counts();
        Ok(w)
    }

    fn slots(&self) -> &[Slot] {
        self.map.slots()
    }

    fn header(&self) -> &Header {
        self.map.header()
    }

    fn sync_counts(&mut self) {
        let h = self.map.header();
        h.live.store(self.index.len() as u64, Relaxed);
        h.tombstones.store(self.tombstones as u64, Relaxed);
    }

    fn mark_dirty(&mut self, i: usize) {
        if !self.in_dirty[i] {
            self.in_dirty[i] = true;
            self.dirty.push(i);
        }
    }

    /// Inserts or replaces the entry with `rec`'s key; `seq` is the change's sequence number.
    /// `Full` (and no change) if the key is new and the table holds `capacity` entries.
    pub fn upsert(&mut self, rec: &R, seq: u64) -> Result<(), ShmError> {
        let key = rec.key();
        let words = slot_words(rec, SLOT_LIVE, seq);
        if let Some(&i) = self.index.get(&key) {
            write_slot(&self.slots()[i], &words);
            return Ok(());
        }
        if self.index.len() >= self.capacity {
            return Err(ShmError::Full {
                capacity: self.capacity,
            });
        }
        let i = free_slot(self.slots(), R::key_word(&key));
        let was = meta_state(self.slots()[i].words[META_WORD].load(Relaxed));
        write_slot(&self.slots()[i], &words);
        if was == SLOT_TOMBSTONE {
            self.tombstones -= 1;
        }
        self.mark_dirty(i);
        self.index.insert(key, i);
        self.sync_counts();
        self.maybe_compact();
        Ok(())
    }

    /// Removes the entry with `key`; false if there was none.
    pub fn remove(&mut self, key: &R::Key, seq: u64) -> bool {
        let Some(i) = self.index.remove(key) else {
            return false;
        };
        let m = self.slot_count - 1;
        let slots = self.map.slots();
        let state = |j: usize| meta_state(slots[j].words[META_WORD].load(Relaxed));
        if state((i + 1) & m) == SLOT_EMPTY {
            // No probe sequence goes through slot i to reach a slot after it (the next slot is
            // EMPTY), so it can become EMPTY itself, and so can the run of tombstones before it.
            // No live entry moves, so concurrent readers find exactly what they would otherwise.
            let mut empty = [0u64; SLOT_WORDS];
            empty[META_WORD] = meta(SLOT_EMPTY, seq);
            write_slot(&slots[i], &empty);
            let mut j = i.wrapping_sub(1) & m;
            while j != i && state(j) == SLOT_TOMBSTONE {
                write_slot(&slots[j], &empty);
                self.tombstones -= 1;
                j = j.wrapping_sub(1) & m;
            }
        } else {
            let mut tomb = [0u64; SLOT_WORDS];
            tomb[META_WORD] = meta(SLOT_TOMBSTONE, seq);
            write_slot(&slots[i], &tomb);
            self.tombstones += 1;
        }
        self.sync_counts();
        self.maybe_compact();
        true
    }

    /// Empties the table in place, in O(slots used): after it returns no reader finds any entry.
    pub fn clear(&mut self, seq: u64) {
        let slots = self.map.slots();
        // First every live entry becomes a tombstone (readers keep probing past them), then every
        // used slot becomes EMPTY: a reader racing with this sees each entry either present or
        // removed, never a hole that hides a still-live entry.
        let mut tomb = [0u64; SLOT_WORDS];
        tomb[META_WORD] = meta(SLOT_TOMBSTONE, seq);
        for &i in self.index.values() {
            write_slot(&slots[i], &tomb);
        }
        self.index.clear();
        self.map.header().live.store(0, Relaxed);
        let empty = [0u64; SLOT_WORDS];
        for &i in &self.dirty {
            if slots[i].words[META_WORD].load(Relaxed) != 0 {
                write_slot(&slots[i], &empty);
            }
            self.in_dirty[i] = false;
        }
        self.dirty.clear();
        self.tombstones = 0;
        self.sync_counts();
    }

    /// Every live entry, read back from our own mapping.
    fn current_entries(&self) -> Vec<Versioned<R>> {
        let slots = self.slots();
        self.index
            .values()
            .filter_map(|&i| {
                let w: [u64; SLOT_WORDS] = std::array::from_fn(|k| slots[i].words[k].load(Relaxed));
                let p: [u64; PAYLOAD_WORDS] = w[..PAYLOAD_WORDS].try_into().expect("6 words");
                Some(Versioned {
                    entry: R::decode(&p)?,
                    seq: meta_seq(w[META_WORD]),
                })
            })
            .collect()
    }

    fn maybe_compact(&mut self) {
        if (self.index.len() + self.tombstones) * 8 > self.slot_count * 7 {
            let entries = self.current_entries();
            // Best effort: if it fails the table stays correct, only probes get longer; the next
            // change tries again.
            let _ = self.publish(entries);
        }
    }

    /// Publishes a new generation holding exactly `entries` (later duplicates of a key win),
    /// with the same rename-and-retire steps as [`ShmWriter::create`]. `Full` (and no change) if
    /// there are more than `capacity` distinct keys.
    pub fn republish(
        &mut self,
        entries: impl IntoIterator<Item = Versioned<R>>,
    ) -> Result<(), ShmError> {
        let mut pos: HashMap<R::Key, usize> = HashMap::new();
        let mut list: Vec<Versioned<R>> = Vec::new();
        for v in entries {
            match pos.get(&v.entry.key()) {
                Some(&p) => list[p] = v,
                None => {
                    if list.len() >= self.capacity {
                        return Err(ShmError::Full {
                            capacity: self.capacity,
                        });
                    }
                    pos.insert(v.entry.key(), list.len());
                    list.push(v);
                }
            }
        }
        self.publish(list)
    }

    fn publish(&mut self, entries: Vec<Versioned<R>>) -> Result<(), ShmError> {
        let generation = self.generation.wrapping_add(1);
        let table_seq = self.header().table_seq.load(Relaxed);
        let built = build::<R>(
            &self.path,
            self.mode,
            self.capacity,
            self.slot_count,
            generation,
            table_seq,
            &entries,
        )?;
        let mut tmp = built.tmp;
        rustix::fs::rename(&tmp.path, &self.path).map_err(|e| ShmError::io(&self.path, e))?;
        tmp.armed = false;
        let old = std::mem::replace(&mut self.map, built.map);
        old.header().state.store(STATE_RETIRED, Release);
        self.generation = generation;
        self.index = built.index;
        self.dirty = built.dirty;
        self.in_dirty = built.in_dirty;
        self.dev_ino = built.dev_ino;
        self.tombstones = 0;
        self.sync_counts();
        Ok(())
    }

    /// Sets the header's last committed table sequence (a Release store).
    pub fn set_table_seq(&self, seq: u64) {
        self.header().table_seq.store(seq, Release);
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The slot holding `key` (tests simulate a writer dying mid-update with it).
    #[cfg(test)]
    pub(super) fn slot_of(&self, key: &R::Key) -> Option<&Slot> {
        self.index.get(key).map(|&i| &self.slots()[i])
    }

    /// Clean stop: drops the mapping and unlinks the file. If the path no longer holds our file
    /// (another writer replaced it, or it is gone) nothing is unlinked.
    pub fn remove_file(self) -> io::Result<()> {
        let ShmWriter {
            path, map, dev_ino, ..
        } = self;
        drop(map);
        match rustix::fs::lstat(&path) {
            Ok(st) if file_id(&st) == dev_ino => std::fs::remove_file(&path),
            Ok(_) => Ok(()),
            Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl<R: Record> std::fmt::Debug for ShmWriter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmWriter")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("len", &self.index.len())
            .field("capacity", &self.capacity)
            .field("tombstones", &self.tombstones)
            .finish()
    }
}
