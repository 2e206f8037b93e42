//! The single writer of a table file (the daemon).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FileType, FlockOperation, Mode, OFlags};

use super::layout::{
    self, check_header, hash, home_slot, meta, meta_seq, meta_state, next_slot, nexthops_for,
    prev_slot, route_entry, slot_count_for, tbl8_groups_for, Geometry, HashSlot, Header,
    HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_LPM_SLOTS, PAYLOAD_WORDS, ROUTE_HOP_WORD, SLOT_EMPTY,
    SLOT_LIVE, SLOT_TOMBSTONE, STATE_ACTIVE, STATE_RETIRED,
};
use super::lpm::Lpm;
use super::mapping::{map_read_write, prefetch, Mapping};
use super::nexthop::{hop_of, own_hop, write_hop, NextHops, PRIVATE_MAX_LEN};
use super::sync::Ordering::{Relaxed, Release};
use super::{file_id, Record, ShmError, Versioned};

/// Owns a table file read-write and keeps it in sync with the caller's table.
///
/// There must be only one writer per path. The shared hash table is also the writer's index: it
/// probes its own mapping for its keys (no process-local copy of the keys), which keeps the
/// daemon's memory per entry small. For route tables it also maintains the DIR-24-8 arrays and
/// the next-hop slots (see [`layout`]), asking the hash table for the next covering prefix when
/// one is deleted. A route's hash slot names its next-hop slot, so the writer finds a route's
/// next hop the way a reader does.
pub struct ShmWriter<R: Record> {
    path: PathBuf,
    mode: u32,
    capacity: usize,
    slot_count: usize,
    generation: u64,
    t: Table,
    _record: PhantomData<fn() -> R>,
}

/// The writer's state of one file.
struct Table {
    map: Mapping,
    /// Number of LIVE slots.
    live: usize,
    /// Number of TOMBSTONE slots.
    tombstones: usize,
    /// Every slot that may be non-EMPTY (each once), so `clear` is O(slots used).
    dirty: Vec<u32>,
    in_dirty: Vec<u64>,
    /// LIVE route prefixes per length (LPM tables), so deletes probe only lengths in use.
    len_counts: [u32; 33],
    /// LPM tables: the DIR-24-8 arrays' bookkeeping and the next-hop slots in use.
    lpm: Option<(Lpm, NextHops)>,
    /// Identity of our file, so `remove_file` never unlinks someone else's.
    dev_ino: (u64, u64),
    /// The file, kept open for its exclusive `flock`: readers wait for a slot left odd only
    /// while it is held (layout: "Writer liveness"). Closing it (dropping the table, or the
    /// process dying) releases the lock.
    _liveness: File,
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

/// The hash-slot words of a LIVE entry: for tables without LPM the record itself, for route
/// tables the key word and `hop`, the index of the route's next-hop slot.
fn live_words<R: Record>(rec: &R, hop: Option<usize>, seq: u64) -> <R::Slot as HashSlot>::Words {
    let mut w = R::Slot::zero_words();
    let ws = w.as_mut();
    match hop {
        Some(nh) => {
            ws[0] = R::key_word(&rec.key());
            ws[ROUTE_HOP_WORD] = nh as u64;
        }
        None => ws[..PAYLOAD_WORDS].copy_from_slice(&rec.encode()),
    }
    set_meta::<R::Slot>(&mut w, meta(SLOT_LIVE, seq));
    w
}

/// The words of an EMPTY or TOMBSTONE slot: all zero but the meta word.
fn state_words<S: HashSlot>(state: u64, seq: u64) -> S::Words {
    let mut w = S::zero_words();
    set_meta::<S>(&mut w, meta(state, seq));
    w
}

fn set_meta<S: HashSlot>(w: &mut S::Words, m: u64) {
    *w.as_mut().last_mut().expect("slots have a meta word") = m;
}

fn state_of<S: HashSlot>(slot: &S) -> u64 {
    meta_state(slot.meta().load(Relaxed))
}

/// The next-hop slot a LIVE route hash slot of our own mapping names.
fn hop_index<S: HashSlot>(slot: &S) -> usize {
    slot.word(ROUTE_HOP_WORD).load(Relaxed) as usize
}

/// First slot in `key_word`'s probe sequence that is not LIVE. The caller guarantees one exists
/// (live entries never fill the table: capacity < slot_count).
fn free_slot<S: HashSlot>(slots: &[S], key_word: u64) -> usize {
    let n = slots.len();
    let mut i = home_slot(hash(key_word), n);
    for _ in 0..n {
        if state_of(&slots[i]) != SLOT_LIVE {
            return i;
        }
        i = next_slot(i, n);
    }
    unreachable!("no free slot although live entries < slot count")
}

/// The LIVE slot holding `key_word`, probing our own mapping like a reader does.
fn find_slot<S: HashSlot>(slots: &[S], key_word: u64) -> Option<usize> {
    let n = slots.len();
    let mut i = home_slot(hash(key_word), n);
    for _ in 0..n {
        let s = &slots[i];
        match state_of(s) {
            SLOT_EMPTY => return None,
            SLOT_LIVE if s.word(0).load(Relaxed) == key_word => return Some(i),
            _ => {}
        }
        i = next_slot(i, n);
    }
    None
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
    let geo = check_header(map.header(), R::KIND).ok()?;
    map.with_geometry(&geo).ok()
}

impl Table {
    fn mark_dirty(&mut self, i: usize) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if self.in_dirty[w] & b == 0 {
            self.in_dirty[w] |= b;
            self.dirty.push(i as u32);
        }
    }

    fn sync_counts(&self) {
        let h = self.map.header();
        h.live.store(self.live as u64, Relaxed);
        h.tombstones.store(self.tombstones as u64, Relaxed);
    }

    /// The entry in hash slot `i` of our own mapping, if it is LIVE (no seqlock needed: only we
    /// write it).
    fn read_own<R: Record>(&self, i: usize) -> Option<Versioned<R>> {
        let s = &self.map.slots::<R::Slot>()[i];
        let m = s.meta().load(Relaxed);
        if meta_state(m) != SLOT_LIVE {
            return None;
        }
        let words = if self.lpm.is_some() {
            let mut w = own_hop(self.map.nexthops().get(hop_index(s))?);
            w[0] = s.word(0).load(Relaxed);
            w
        } else {
            std::array::from_fn(|k| s.word(k).load(Relaxed))
        };
        Some(Versioned {
            entry: R::decode(&words)?,
            seq: meta_seq(m),
        })
    }

    /// Writes a new LIVE entry into a free slot and, for LPM tables, makes it the answer for the
    /// addresses it covers. The caller checked capacity and [`Table::can_insert`].
    fn insert_new<R: Record>(&mut self, rec: &R, seq: u64) {
        let key = rec.key();
        let slots = self.map.slots::<R::Slot>();
        let i = free_slot(slots, R::key_word(&key));
        if state_of(&slots[i]) == SLOT_TOMBSTONE {
            self.tombstones -= 1;
        }
        // The next hop first, then the hash slot naming it (LIVE), then the LPM words naming
        // the next hop.
        let lpm = match (self.lpm.as_mut(), R::lpm_prefix(&key)) {
            (Some((lpm, hops)), Some((addr, len))) => {
                let nh = hops.acquire(self.map.nexthops(), len, &hop_of(rec));
                Some((lpm, addr, len, nh))
            }
            _ => None,
        };
        slots[i].write(&live_words(rec, lpm.as_ref().map(|l| l.3), seq));
        if let Some((lpm, addr, len, nh)) = lpm {
            let ok = lpm.insert(self.map.tbl24(), self.map.tbl8(), addr, len, nh);
            debug_assert!(ok, "can_insert was checked");
            self.len_counts[usize::from(len)] += 1;
        }
        self.mark_dirty(i);
        self.live += 1;
    }

    /// Rewrites the LIVE entry in hash slot `i` (same key) with `rec`. For a route, the LPM
    /// words and next-hop slots change only if the next hop does.
    fn replace<R: Record>(&mut self, i: usize, rec: &R, seq: u64) {
        let slot = &self.map.slots::<R::Slot>()[i];
        let (Some((lpm, hops)), Some((addr, len))) = (self.lpm.as_mut(), R::lpm_prefix(&rec.key()))
        else {
            slot.write(&live_words(rec, None, seq));
            return;
        };
        let nhs = self.map.nexthops();
        let old = hop_index(slot);
        let new = hop_of(rec);
        if own_hop(&nhs[old]) == new {
            slot.write(&live_words(rec, Some(old), seq));
        } else if len <= PRIVATE_MAX_LEN {
            // Its own slot, rewritten in place while the hash slot is odd: a reader of the hash
            // slot gets the old next hop with the old change sequence or the new with the new.
            // LPM readers see the old next hop or the new one, both valid during the change.
            slot.write_around(&live_words(rec, Some(old), seq), || {
                write_hop(&nhs[old], &new)
            });
        } else {
            let to = hops.acquire(nhs, len, &new);
            slot.write(&live_words(rec, Some(to), seq));
            lpm.repoint(self.map.tbl24(), self.map.tbl8(), addr, len, old, to);
            hops.release(nhs, old, len);
        }
    }

    fn can_insert<R: Record>(&self, key: &R::Key) -> bool {
        match (self.lpm.as_ref(), R::lpm_prefix(key)) {
            (Some((lpm, _)), Some((addr, len))) => lpm.can_insert(self.map.tbl24(), addr, len),
            _ => true,
        }
    }

    /// The entry word of the longest LIVE prefix strictly shorter than `len` that contains
    /// `addr`, or 0.
    fn covering<R: Record>(&self, addr: u32, len: u8) -> u32 {
        let slots = self.map.slots::<R::Slot>();
        for l in (0..len).rev() {
            if self.len_counts[usize::from(l)] == 0 {
                continue;
            }
            let a = addr & crate::types::mask(l);
            if let Some(kw) = R::prefix_key_word(a, l) {
                if let Some(i) = find_slot(slots, kw) {
                    return route_entry(hop_index(&slots[i]), l);
                }
            }
        }
        0
    }
}

/// Writes a complete table file holding `entries` (unique keys, at most `capacity`) at a
/// temporary name next to `path`.
fn build<R: Record>(
    path: &Path,
    mode: u32,
    geo: &Geometry,
    generation: u64,
    table_seq: u64,
    entries: &[Versioned<R>],
) -> Result<(Table, TmpFile), ShmError> {
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
    // Nobody else can have this brand-new file open, so the lock is ours at once.
    flock(&fd, FlockOperation::NonBlockingLockExclusive).map_err(|e| io_err(e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(e.into()))?;
    let dev_ino = file_id(&st);
    let file = File::from(fd);
    let len = geo.file_len().expect("geometry checked");
    // A sparse file: pages nobody writes stay unallocated.
    file.set_len(len as u64).map_err(io_err)?;
    let map = Mapping::read_write(map_read_write(&file).map_err(io_err)?)
        .and_then(|m| m.with_geometry(geo))
        .map_err(|why| ShmError::bad(&tmp.path, why))?;
    debug_assert!(map.is_writable());

    let h: &Header = map.header();
    h.magic.store(MAGIC, Relaxed);
    h.layout_version.store(LAYOUT_VERSION, Relaxed);
    h.kind.store(R::KIND.as_u32(), Relaxed);
    h.header_size.store(HEADER_SIZE as u32, Relaxed);
    h.slot_size.store(geo.slot_size as u32, Relaxed);
    h.slot_count.store(geo.slot_count as u64, Relaxed);
    h.capacity.store(geo.capacity as u64, Relaxed);
    h.generation.store(generation, Relaxed);
    h.state.store(STATE_ACTIVE, Relaxed);
    h.writer_pid.store(
        rustix::process::getpid().as_raw_nonzero().get() as u32,
        Relaxed,
    );
    h.table_seq.store(table_seq, Relaxed);
    if let Some(l) = geo.lpm {
        h.tbl24_offset.store(l.tbl24 as u64, Relaxed);
        h.tbl8_offset.store(l.tbl8 as u64, Relaxed);
        h.tbl8_groups.store(l.groups as u64, Relaxed);
        h.nexthop_offset.store(l.nexthops as u64, Relaxed);
        h.nexthop_count.store(l.nexthop_count as u64, Relaxed);
    }

    let mut t = Table {
        map,
        live: 0,
        tombstones: 0,
        dirty: Vec::with_capacity(entries.len()),
        in_dirty: vec![0; geo.slot_count.div_ceil(64)],
        len_counts: [0; 33],
        lpm: geo
            .lpm
            .map(|l| (Lpm::new(l.groups), NextHops::new(l.nexthop_count))),
        dev_ino,
        _liveness: file,
    };
    // Shorter prefixes first: each LPM insert then only overwrites what it wins.
    let mut order: Vec<&Versioned<R>> = entries.iter().collect();
    if R::LPM {
        order.sort_by_key(|v| R::lpm_prefix(&v.entry.key()).map(|(_, l)| l));
    }
    for v in order {
        if !t.can_insert::<R>(&v.entry.key()) {
            return Err(ShmError::Full {
                capacity: geo.capacity,
            });
        }
        t.insert_new(&v.entry, v.seq);
    }
    t.sync_counts();
    Ok((t, tmp))
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
        let too_big = |limit: String| {
            ShmError::io(
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("capacity {capacity} over {limit}"),
                ),
            )
        };
        let slot_count =
            slot_count_for(capacity).ok_or_else(|| too_big(layout::MAX_CAPACITY.to_string()))?;
        if R::LPM && slot_count > MAX_LPM_SLOTS {
            return Err(too_big(format!(
                "{} for route tables",
                MAX_LPM_SLOTS * 4 / 5
            )));
        }
        let geo = Geometry::new(
            slot_count,
            capacity,
            R::LPM.then(|| (tbl8_groups_for(capacity), nexthops_for(capacity))),
        )
        .ok_or_else(|| too_big("the address space".to_string()))?;
        let old = open_existing::<R>(path);
        let generation = old
            .as_ref()
            .map_or(1, |m| m.header().generation.load(Relaxed).wrapping_add(1));
        let (t, mut tmp) = build::<R>(path, mode, &geo, generation, 0, &[])?;
        rustix::fs::rename(&tmp.path, path).map_err(|e| ShmError::io(path, e))?;
        tmp.armed = false;
        if let Some(old) = old {
            old.header().state.store(STATE_RETIRED, Release);
        }
        Ok(ShmWriter {
            path: path.to_path_buf(),
            mode,
            capacity,
            slot_count,
            generation,
            t,
            _record: PhantomData,
        })
    }

    fn slots(&self) -> &[R::Slot] {
        self.t.map.slots()
    }

    fn header(&self) -> &Header {
        self.t.map.header()
    }

    /// Inserts or replaces the entry with `rec`'s key; `seq` is the change's sequence number.
    /// `Full` (and no change) if the key is new and the table holds `capacity` entries.
    pub fn upsert(&mut self, rec: &R, seq: u64) -> Result<(), ShmError> {
        let key = rec.key();
        if let Some(i) = find_slot(self.slots(), R::key_word(&key)) {
            self.t.replace(i, rec, seq);
            return Ok(());
        }
        if self.t.live >= self.capacity || !self.t.can_insert::<R>(&key) {
            return Err(ShmError::Full {
                capacity: self.capacity,
            });
        }
        self.t.insert_new(rec, seq);
        self.t.sync_counts();
        self.maybe_compact();
        Ok(())
    }

    /// Prefetches the cache lines a change of `key` will touch first (its home slot and, for a
    /// route, its tbl24 word: adding or deleting a route, or changing its next hop, rewrites
    /// its LPM entries), so that callers can start the memory misses of many changes together
    /// before making them one by one. A prefetch instruction where there is one (x86-64): a
    /// load here held up the instructions after it until its line came in.
    #[inline]
    pub fn prefetch(&self, key: &R::Key) {
        let slots = self.slots();
        if let Some(slot) = slots.get(home_slot(hash(R::key_word(key)), slots.len())) {
            prefetch(slot);
        }
        if let (true, Some((addr, _))) = (self.t.lpm.is_some(), R::lpm_prefix(key)) {
            if let Some(w) = self.t.map.tbl24().get((addr >> 8) as usize) {
                prefetch(w);
            }
        }
    }

    /// Removes the entry with `key`; false if there was none.
    pub fn remove(&mut self, key: &R::Key, seq: u64) -> bool {
        let Some(i) = find_slot(self.slots(), R::key_word(key)) else {
            return false;
        };
        let mut hop = None;
        if let (Some((addr, len)), true) = (R::lpm_prefix(key), self.t.lpm.is_some()) {
            self.t.len_counts[usize::from(len)] -= 1;
            let repl = self.t.covering::<R>(addr, len);
            let nh = hop_index(&self.slots()[i]);
            let t = &mut self.t;
            if let Some((lpm, _)) = t.lpm.as_mut() {
                // Every address this prefix answered gets the covering prefix before the slot
                // is freed, and before its next hop may be.
                lpm.remove(t.map.tbl24(), t.map.tbl8(), addr, len, nh, repl);
            }
            hop = Some((nh, len));
        }
        self.t.live -= 1;
        let n = self.slot_count;
        let slots = self.t.map.slots::<R::Slot>();
        if state_of(&slots[next_slot(i, n)]) == SLOT_EMPTY {
            // No probe sequence goes through slot i to reach a slot after it (the next slot is
            // EMPTY), so it can become EMPTY itself, and so can the run of tombstones before it.
            // No live entry moves, so concurrent readers find exactly what they would otherwise.
            let empty = state_words::<R::Slot>(SLOT_EMPTY, seq);
            slots[i].write(&empty);
            let mut j = prev_slot(i, n);
            while j != i && state_of(&slots[j]) == SLOT_TOMBSTONE {
                slots[j].write(&empty);
                self.t.tombstones -= 1;
                j = prev_slot(j, n);
            }
        } else {
            slots[i].write(&state_words::<R::Slot>(SLOT_TOMBSTONE, seq));
            self.t.tombstones += 1;
        }
        // No hash slot or entry word names the next hop for this route any more.
        if let (Some((nh, len)), Some((_, hops))) = (hop, self.t.lpm.as_mut()) {
            hops.release(self.t.map.nexthops(), nh, len);
        }
        self.t.sync_counts();
        self.maybe_compact();
        true
    }

    /// Empties the table in place, in O(slots used): after it returns no reader finds any entry.
    pub fn clear(&mut self, seq: u64) {
        let t = &mut self.t;
        // The LPM words first, so no reader follows them to a slot that is going away.
        if let Some((lpm, _)) = t.lpm.as_mut() {
            lpm.clear(t.map.tbl24());
        }

        t.len_counts = [0; 33];
        let slots = t.map.slots::<R::Slot>();
        // Then every live entry becomes a tombstone (readers keep probing past them), then every
        // used slot becomes EMPTY: a reader racing with this sees each entry either present or
        // removed, never a hole that hides a still-live entry.
        let tomb = state_words::<R::Slot>(SLOT_TOMBSTONE, seq);
        for &i in &t.dirty {
            if state_of(&slots[i as usize]) == SLOT_LIVE {
                slots[i as usize].write(&tomb);
            }
        }
        // No hash slot names a next hop any more.
        if let Some((_, hops)) = t.lpm.as_mut() {
            hops.clear();
        }
        t.live = 0;
        t.map.header().live.store(0, Relaxed);
        let empty = R::Slot::zero_words();
        for &i in &t.dirty {
            if slots[i as usize].meta().load(Relaxed) != 0 {
                slots[i as usize].write(&empty);
            }
        }
        t.in_dirty.fill(0);
        t.dirty.clear();
        t.tombstones = 0;
        t.sync_counts();
    }

    /// Every live entry, read back from our own mapping (no seqlock needed: only we write it);
    /// order unspecified.
    pub fn entries(&self) -> Vec<Versioned<R>> {
        self.t
            .dirty
            .iter()
            .filter_map(|&i| self.t.read_own(i as usize))
            .collect()
    }

    /// The entry with `key`, read back from our own mapping.
    pub fn get(&self, key: &R::Key) -> Option<Versioned<R>> {
        find_slot(self.slots(), R::key_word(key))
            .and_then(|i| self.t.read_own::<R>(i))
            .filter(|v| v.entry.key() == *key)
    }

    /// Whether an entry with `key` is present.
    pub fn contains(&self, key: &R::Key) -> bool {
        find_slot(self.slots(), R::key_word(key)).is_some()
    }

    fn maybe_compact(&mut self) {
        if (self.t.live + self.t.tombstones) * 8 > self.slot_count * 7 {
            let entries = self.entries();
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
        drop(pos);
        self.publish(list)
    }

    fn publish(&mut self, entries: Vec<Versioned<R>>) -> Result<(), ShmError> {
        let generation = self.generation.wrapping_add(1);
        let table_seq = self.header().table_seq.load(Relaxed);
        let geo = Geometry::new(
            self.slot_count,
            self.capacity,
            R::LPM.then(|| (tbl8_groups_for(self.capacity), nexthops_for(self.capacity))),
        )
        .expect("checked at create");
        let (t, mut tmp) =
            build::<R>(&self.path, self.mode, &geo, generation, table_seq, &entries)?;
        drop(entries);
        rustix::fs::rename(&tmp.path, &self.path).map_err(|e| ShmError::io(&self.path, e))?;
        tmp.armed = false;
        let old = std::mem::replace(&mut self.t, t);
        old.map.header().state.store(STATE_RETIRED, Release);
        self.generation = generation;
        Ok(())
    }

    /// Sets the header's last committed table sequence (a Release store).
    pub fn set_table_seq(&self, seq: u64) {
        self.header().table_seq.store(seq, Release);
    }

    pub fn len(&self) -> usize {
        self.t.live
    }

    pub fn is_empty(&self) -> bool {
        self.t.live == 0
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
    pub(super) fn slot_of(&self, key: &R::Key) -> Option<&R::Slot> {
        find_slot(self.slots(), R::key_word(key)).map(|i| &self.slots()[i])
    }

    /// The next-hop slot `key`'s route and its LPM entries name (tests stall a writer in it).
    #[cfg(test)]
    pub(super) fn next_hop_slot_of(&self, key: &R::Key) -> Option<&super::layout::Slot> {
        self.t.lpm.as_ref()?;
        let i = find_slot(self.slots(), R::key_word(key))?;
        self.t.map.nexthops().get(hop_index(&self.slots()[i]))
    }

    /// Releases the liveness lock as the death of the writer would (tests simulate a writer
    /// that died in the middle of a slot with it).
    #[cfg(test)]
    pub(super) fn release_liveness_lock(&self) {
        flock(&self.t._liveness, FlockOperation::Unlock).expect("unlock");
    }

    /// The LPM bookkeeping (tests).
    #[cfg(test)]
    pub(super) fn lpm(&self) -> Option<&Lpm> {
        self.t.lpm.as_ref().map(|(l, _)| l)
    }

    /// Distinct next hops in use (tests).
    #[cfg(test)]
    pub(super) fn next_hops_in_use(&self) -> usize {
        self.t.lpm.as_ref().map_or(0, |(_, h)| h.len())
    }

    /// Clean stop: drops the mapping and unlinks the file. If the path no longer holds our file
    /// (another writer replaced it, or it is gone) nothing is unlinked.
    pub fn remove_file(self) -> io::Result<()> {
        let ShmWriter { path, t, .. } = self;
        let dev_ino = t.dev_ino;
        drop(t);
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
            .field("len", &self.t.live)
            .field("capacity", &self.capacity)
            .field("tombstones", &self.t.tombstones)
            .finish()
    }
}
