//! Read-only access to a table file (clients).

use std::fs::File;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FileType, FlockOperation, Mode, OFlags};

use super::layout::{
    check_header, entry_depth, entry_index, entry_is_group, hash, home_slot, meta_seq, meta_state,
    next_slot, HashSlot, GROUP_ENTRIES, HEADER_SIZE, META_WORD, PAYLOAD_WORDS, ROUTE_HOP_WORD,
    SLOT_EMPTY, SLOT_LIVE, SLOT_WORDS, STATE_RETIRED, TBL24_ENTRIES,
};
use super::lpm::{read_entry, still};
use super::mapping::{map_read_only, Mapping};
use super::seqlock::{read_slot, try_read_slot_since, ReadError, Since, READ_PATIENCE};
use super::sync::{fence, AtomicU32, Ordering::Acquire, Ordering::Relaxed};
use super::{file_id, Record, ShmError, Versioned};
use crate::types::{Prefix, Route};

/// A read-only view of a table file another process writes.
///
/// The mapping is `PROT_READ` of a file opened `O_RDONLY | O_NOFOLLOW`; the reader never needs
/// write access. Reads are lock-free: each slot is read under its seqlock and retried while the
/// writer is alive; a slot that stays unreadable after the writer is gone (it died mid-update) is
/// skipped.
pub struct ShmReader<R: Record> {
    path: PathBuf,
    map: Mapping,
    /// The mapped file, kept open to ask whether its writer still holds the liveness lock.
    file: File,
    capacity: usize,
    generation: u64,
    /// (st_dev, st_ino) of the mapped file, to notice the path being replaced.
    id: (u64, u64),
    _record: PhantomData<fn() -> R>,
}

#[inline]
fn payload(w: &[u64; SLOT_WORDS]) -> [u64; PAYLOAD_WORDS] {
    w[..PAYLOAD_WORDS].try_into().expect("6 words")
}

/// The record words of a hash slot that holds its record (ARP tables); `None` for shorter slots.
#[inline]
fn inline_record(w: &[u64]) -> Option<[u64; PAYLOAD_WORDS]> {
    w.get(..PAYLOAD_WORDS)?.try_into().ok()
}

/// What a hash slot read torn-free holds.
enum Resolved<R> {
    /// A live entry.
    Live(Versioned<R>),
    /// A slot in this state (EMPTY or TOMBSTONE).
    NotLive(u64),
    /// Words no writer would write, or a next-hop slot that stayed unreadable (its writer died
    /// in the middle of it).
    Invalid,
    /// The hash slot changed while its next-hop slot was being read.
    Changed,
}

impl<R: Record> ShmReader<R> {
    /// Opens and validates the table file at `path` (magic, layout version, kind, header and
    /// slot sizes, slot count vs file length). Refuses a symlink at `path` (not followed), a
    /// file that is not regular, and a world-writable file.
    pub fn open(path: &Path) -> Result<Self, ShmError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => ShmError::bad(path, "is a symbolic link (not followed)"),
            e => ShmError::io(path, e),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| ShmError::io(path, e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(ShmError::bad(path, "not a regular file"));
        }
        if st.st_mode & 0o002 != 0 {
            return Err(ShmError::bad(path, "world-writable"));
        }
        if (st.st_size as u64) < HEADER_SIZE as u64 {
            return Err(ShmError::bad(
                path,
                format!("{} bytes, shorter than the header", st.st_size),
            ));
        }
        let file = File::from(fd);
        let map = map_read_only(&file).map_err(|e| ShmError::io(path, e))?;
        let map = Mapping::read_only(map).map_err(|why| ShmError::bad(path, why))?;
        let geo = check_header(map.header(), R::KIND).map_err(|why| ShmError::bad(path, why))?;
        let capacity = geo.capacity;
        let map = map
            .with_geometry(&geo)
            .map_err(|why| ShmError::bad(path, why))?;
        let generation = map.header().generation.load(Relaxed);
        Ok(ShmReader {
            path: path.to_path_buf(),
            map,
            file,
            capacity,
            generation,
            id: file_id(&st),
            _record: PhantomData,
        })
    }

    fn slots(&self) -> &[R::Slot] {
        self.map.slots()
    }

    /// Whether the file's writer still holds its exclusive `flock` (layout: "Writer liveness"):
    /// only then is a slot left odd worth waiting for. If `flock` itself fails (a file system
    /// without it), the writer counts as gone and odd slots are skipped after the patience.
    fn writer_alive(&self) -> bool {
        match flock(&self.file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = flock(&self.file, FlockOperation::Unlock);
                false
            }
            Err(rustix::io::Errno::WOULDBLOCK) => true,
            Err(_) => false,
        }
    }

    /// The entry in a hash slot read torn-free at sequence word `s1` as `w`, if it is LIVE and
    /// valid. For a route this reads the next-hop slot the hash slot names, then re-checks the
    /// hash slot (layout: "Hash slots").
    fn resolve(&self, slot: &R::Slot, s1: u64, w: &<R::Slot as HashSlot>::Words) -> Resolved<R> {
        let w = w.as_ref();
        let m = *w.last().expect("slots have a meta word");
        if meta_state(m) != SLOT_LIVE {
            return Resolved::NotLive(meta_state(m));
        }
        let words: [u64; PAYLOAD_WORDS] = if R::LPM {
            let idx = w[ROUTE_HOP_WORD];
            let Some(nh) = usize::try_from(idx)
                .ok()
                .and_then(|i| self.map.nexthops().get(i))
            else {
                return Resolved::Invalid;
            };
            // Waits while a live writer writes it; None: it died in the middle of it.
            let Some(hop) = read_slot(nh, || self.writer_alive()) else {
                return Resolved::Invalid;
            };
            if meta_state(hop[META_WORD]) != SLOT_LIVE || hop[0] != 0 {
                // Only a slot let go and refilled since we read the hash slot looks like this;
                // the re-check below tells.
                return if slot.unchanged(s1) {
                    Resolved::Invalid
                } else {
                    Resolved::Changed
                };
            }
            let mut p = payload(&hop);
            p[0] = w[0];
            if !slot.unchanged(s1) {
                return Resolved::Changed;
            }
            p
        } else {
            match inline_record(w) {
                Some(p) => p,
                None => return Resolved::Invalid,
            }
        };
        match R::decode(&words) {
            Some(entry) => Resolved::Live(Versioned {
                entry,
                seq: meta_seq(m),
            }),
            None => Resolved::Invalid,
        }
    }

    /// Reads hash slot `slot` until it is settled: `None` if it stayed unreadable (its writer
    /// died in the middle of it), else what [`ShmReader::resolve`] made of it.
    fn read_hash_slot(&self, slot: &R::Slot) -> Option<Resolved<R>> {
        loop {
            let (s1, w) = slot.read_at(|| self.writer_alive())?;
            match self.resolve(slot, s1, &w) {
                // Rewritten while we followed it to its next hop: read it again.
                Resolved::Changed => continue,
                r => return Some(r),
            }
        }
    }

    /// The entry with `key`, if present.
    pub fn get(&self, key: &R::Key) -> Option<Versioned<R>> {
        let kw = R::key_word(key);
        let slots = self.slots();
        let n = slots.len();
        let mut i = home_slot(hash(kw), n);
        for _ in 0..n {
            // An unreadable slot (None: its writer died in the middle of it) is skipped: it may
            // hide an entry, but we never wait forever on a dead writer. The key word is looked
            // at before anything else is read.
            let slot = &slots[i];
            if let Some((s1, w)) = slot.read_at(|| self.writer_alive()) {
                let state = meta_state(*w.as_ref().last().expect("slots have a meta word"));
                if state == SLOT_EMPTY {
                    return None;
                }
                if state == SLOT_LIVE && w.as_ref()[0] == kw {
                    if !R::LPM {
                        // The entry is in the slot. Decoded straight into the answer: building
                        // it inside a `Resolved` and moving it out stalls on store forwarding.
                        let m = *w.as_ref().last().expect("slots have a meta word");
                        let entry = inline_record(w.as_ref())
                            .and_then(|p| R::decode(&p))
                            .filter(|e| e.key() == *key);
                        if let Some(entry) = entry {
                            return Some(Versioned {
                                entry,
                                seq: meta_seq(m),
                            });
                        }
                    } else {
                        let r = match self.resolve(slot, s1, &w) {
                            Resolved::Changed => self.read_hash_slot(slot),
                            r => Some(r),
                        };
                        match r {
                            Some(Resolved::Live(v)) if v.entry.key() == *key => return Some(v),
                            // Emptied while we followed it: nothing after it can hold the key.
                            Some(Resolved::NotLive(SLOT_EMPTY)) => return None,
                            _ => {}
                        }
                    }
                }
            }
            i = next_slot(i, n);
        }
        None
    }

    /// Loads the first cache line a [`ShmReader::get`] of `key` reads (its home slot) without
    /// using it. Calling it for a group of keys before getting them one by one lets the memory
    /// misses of the group overlap.
    #[inline]
    pub fn prefetch(&self, key: &R::Key) {
        let slots = self.slots();
        if let Some(slot) = slots.get(home_slot(hash(R::key_word(key)), slots.len())) {
            std::hint::black_box(slot.seq().load(Relaxed));
        }
    }

    /// Every live entry, each read torn-free, in key order. While the writer is changing the
    /// table a key can be seen twice (removed and re-added during the scan); then only the copy
    /// with the higher sequence number is returned.
    pub fn entries(&self) -> Vec<Versioned<R>> {
        // The header's count is a hint from another process: never size an allocation by it
        // unchecked (a corrupt file must not abort the reader).
        let hint = self.len().min(self.slots().len());
        let mut out: Vec<Versioned<R>> = Vec::with_capacity(hint);
        for slot in self.slots() {
            // Never written since the file was created: EMPTY, no need to take the seqlock.
            if slot.seq().load(Relaxed) == 0 {
                continue;
            }
            if let Some(Resolved::Live(v)) = self.read_hash_slot(slot) {
                out.push(v);
            }
        }
        // Sorting (which callers mostly want anyway) also puts the copies of a key side by
        // side: keep the newest. Cheaper than a hash set of a million keys.
        out.sort_unstable_by(|a, b| a.entry.key().cmp(&b.entry.key()).then(b.seq.cmp(&a.seq)));
        out.dedup_by(|later, first| later.entry.key() == first.entry.key());
        out
    }

    /// Live entries according to the header (advisory while the writer is busy).
    pub fn len(&self) -> usize {
        (self.map.header().live.load(Relaxed) as usize).min(self.capacity)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The last committed per-table sequence number the writer published (acquire semantics:
    /// slot writes made before the writer set it are visible after reading it).
    pub fn table_seq(&self) -> u64 {
        let s = self.map.header().table_seq.load(Relaxed);
        fence(Acquire);
        s
    }

    /// Whether the writer has replaced this file with a newer generation.
    pub fn is_retired(&self) -> bool {
        let retired = self.map.header().state.load(Relaxed) == STATE_RETIRED;
        fence(Acquire);
        retired
    }

    /// If this mapping is retired or the file at the path was replaced, reopens the path.
    /// `Ok(true)` if it remapped. If the path is gone and this mapping is not retired, keeps the
    /// current mapping (`Ok(false)`). On error the current mapping is kept.
    pub fn refresh(&mut self) -> Result<bool, ShmError> {
        let retired = self.is_retired();
        let replaced = match rustix::fs::lstat(&self.path) {
            Ok(st) => file_id(&st) != self.id,
            Err(rustix::io::Errno::NOENT) if !retired => return Ok(false),
            Err(e) => return Err(ShmError::io(&self.path, e)),
        };
        if !retired && !replaced {
            return Ok(false);
        }
        *self = ShmReader::open(&self.path)?;
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Attempts of the DIR-24-8 path spent spinning; after them a reader yields its CPU between
/// attempts (the writer may be descheduled in the middle of a change).
const LPM_SPINS: u32 = 32;

/// How long [`ShmReader::lookup`] keeps retrying the DIR-24-8 path before it answers by probing
/// the hash table instead (at once if the writer is gone). Only a writer descheduled in the
/// middle of a change for this long gets here; the probes then wait for its slot too.
const LPM_PATIENCE: std::time::Duration = std::time::Duration::from_millis(10);

/// Addresses [`ShmReader::lookup_batch`] works on together: their memory loads are issued
/// back to back so that the misses overlap. Measured on a 300k-route table (random addresses):
/// groups of 8 / 16 / 32 gave about 7.5 / 9 / 11 M lookups/s (layout version 2, whose lookups
/// also read the route's hash slot); prefetching the next group's tbl24 words on top did not
/// help.
pub const BATCH_GROUP: usize = 32;

/// Ways of a [`HopMemo`].
const MEMO_WAYS: usize = 8;

/// Next hops already decoded during one call, by next-hop slot (direct mapped): with a few
/// distinct next hops, a batch reads and decodes each once and afterwards only checks that its
/// seqlock word has not moved.
#[derive(Default)]
struct HopMemo {
    ways: [Option<(usize, u64, Route)>; MEMO_WAYS],
}

/// How one DIR-24-8 attempt ended. The answer itself (a route or none) is written to the
/// caller's place directly: a `Route` is built byte by byte, and copying it again right after
/// (as returning it inside an enum did) stalls on store forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// The answer was written.
    Done,
    /// Something changed under us (or the slot is being written): try again.
    Retry,
}

impl ShmReader<Route> {
    /// Longest-prefix match: the most specific route containing `addr`.
    ///
    /// Answered from the DIR-24-8 arrays: the tbl24 word (and, for the few /24s holding longer
    /// prefixes, a tbl8 word), then the next-hop slot it names, which tables with few next hops
    /// keep in the cache. See [`super::layout`] for why a concurrent update can only make an
    /// attempt retry, never return a wrong route (but for the ABA gap documented there). Unlike
    /// [`ShmReader::get`], the answer carries no change sequence number: the arrays don't hold
    /// one. A retry means a change is in progress, so attempts are retried
    /// while the writer is alive, up to [`LPM_PATIENCE`]. After that, or at once if the writer is
    /// gone (it died in the middle of a change), the answer comes from probing the hash table
    /// for `addr/32` down to `addr/0`; those probes wait for a slot a live writer is writing, so
    /// they never skip a present route.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<Route> {
        let a = u32::from(addr);
        let mut answer = None;
        for _ in 0..LPM_SPINS {
            if self.lpm_attempt(a, &mut answer) == Attempt::Done {
                return answer;
            }
            std::hint::spin_loop();
        }
        let start = std::time::Instant::now();
        let mut since = start;
        loop {
            std::thread::yield_now();
            if self.lpm_attempt(a, &mut answer) == Attempt::Done {
                return answer;
            }
            if start.elapsed() > LPM_PATIENCE {
                return self.lookup_by_probing(addr);
            }
            if since.elapsed() > READ_PATIENCE {
                if !self.writer_alive() {
                    return self.lookup_by_probing(addr);
                }
                since = std::time::Instant::now();
            }
        }
    }

    /// [`ShmReader::lookup`] for many addresses: `out[i]` becomes the longest match of
    /// `addrs[i]`, with the same guarantees as `lookup` (each answer was the longest match at
    /// some moment during the call).
    ///
    /// Faster than one `lookup` after another on tables that don't fit in the caches: the
    /// tbl24 word of a random address is usually a cache and TLB miss. This does the addresses
    /// [`BATCH_GROUP`] at a time, one step at a time (all tbl24 words, then the tbl8 words, then
    /// touching the next-hop slots), so the misses of a group are in flight together instead of
    /// one after another; then it validates each answer exactly as `lookup` does. An address
    /// whose answer doesn't validate (the writer changed something under it) is looked up again
    /// with `lookup`.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    pub fn lookup_batch(&self, addrs: &[Ipv4Addr], out: &mut [Option<Route>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: {} addresses but {} answer places",
            addrs.len(),
            out.len()
        );
        let mut memo = HopMemo::default();
        for (a, o) in addrs.chunks(BATCH_GROUP).zip(out.chunks_mut(BATCH_GROUP)) {
            self.lookup_group(a, o, &mut memo);
        }
    }

    /// [`ShmReader::lookup_batch`] for at most [`BATCH_GROUP`] addresses (and as many answers).
    #[inline]
    fn lookup_group(&self, addrs: &[Ipv4Addr], out: &mut [Option<Route>], memo: &mut HopMemo) {
        let n = addrs.len().min(out.len()).min(BATCH_GROUP);
        let (t24, t8) = (self.map.tbl24(), self.map.tbl8());
        // A route reader's mapping always has the whole tbl24 (checked when it was opened); as an
        // array, every `addr >> 8` indexes it without a bounds check.
        let Ok(t24) = <&[AtomicU32; TBL24_ENTRIES]>::try_from(t24) else {
            for (o, &a) in out.iter_mut().zip(addrs) {
                *o = self.lookup(a);
            }
            return;
        };
        // Step 1 of the reader rules (what `read_entry` does for one address), for the whole
        // group: first every tbl24 word (independent loads whose misses overlap), one acquire
        // fence, then the tbl8 words of those that point at a group, one acquire fence. Per
        // address the loads and fences are in the same order as in `read_entry`.
        let mut a = [0u32; BATCH_GROUP];
        let mut w = [0u32; BATCH_GROUP];
        for i in 0..n {
            a[i] = u32::from(addrs[i]);
            w[i] = t24[(a[i] >> 8) as usize].load(Relaxed);
        }
        fence(Acquire);
        // The entry words; `None` where a group index is out of range (`lookup` retries those).
        let mut e = [None::<u32>; BATCH_GROUP];
        for i in 0..n {
            e[i] = if entry_is_group(w[i]) {
                t8.get(entry_index(w[i]) * GROUP_ENTRIES + (a[i] & 0xff) as usize)
                    .map(|x| x.load(Relaxed))
            } else {
                Some(w[i])
            };
        }
        fence(Acquire);
        // Start loading the next-hop slots' cache lines (usually already cached): a plain load
        // of each seqlock word, whose value is not used. The real read of each slot, under its
        // seqlock, follows in `finish_attempt`.
        let hops = self.map.nexthops();
        let mut touched = 0u64;
        for &x in e.iter().take(n).flatten() {
            if x != 0 {
                if let Some(slot) = hops.get(entry_index(x)) {
                    touched ^= slot.seq.load(Relaxed);
                }
            }
        }
        // Keeps the touching loads from being optimized away.
        std::hint::black_box(touched);
        // Steps 2-4, exactly as for a single lookup; whatever doesn't validate goes through
        // `lookup` (retries, then the hash-probe fallback).
        for i in 0..n {
            let done = e[i].map(|x| self.finish_attempt(a[i], w[i], x, &mut out[i], Some(memo)));
            if done != Some(Attempt::Done) {
                out[i] = self.lookup(addrs[i]);
            }
        }
    }

    /// One DIR-24-8 attempt for `a`; on `Done` the answer is in `answer`.
    fn lpm_attempt(&self, a: u32, answer: &mut Option<Route>) -> Attempt {
        let (t24, t8) = (self.map.tbl24(), self.map.tbl8());
        let Some((w, e)) = read_entry(t24, t8, a) else {
            return Attempt::Retry;
        };
        self.finish_attempt(a, w, e, answer, None)
    }

    /// Steps 2–4 of the reader rules (see [`super::layout`]) for the tbl24 word `w` and the entry
    /// word `e` that step 1 ([`read_entry`], or the batched equivalent) read for `a`: read the
    /// next-hop slot `e` names, check it holds a next hop, re-check `w`/`e`. On `Done` the
    /// answer is in `answer` (which is left alone on `Retry`).
    #[inline]
    fn finish_attempt(
        &self,
        a: u32,
        w: u32,
        e: u32,
        answer: &mut Option<Route>,
        memo: Option<&mut HopMemo>,
    ) -> Attempt {
        let (t24, t8) = (self.map.tbl24(), self.map.tbl8());
        if e == 0 {
            // Read directly from tbl24 the word is the answer; through a group, the group must
            // still belong to this /24.
            if w == e || still(t24, t8, a, w, e) {
                *answer = None;
                return Attempt::Done;
            }
            return Attempt::Retry;
        }
        let idx = entry_index(e);
        let Some(slot) = self.map.nexthops().get(idx) else {
            return Attempt::Retry;
        };
        let way = memo.map(|m| &mut m.ways[idx % MEMO_WAYS]);
        let known = way
            .as_deref()
            .and_then(Option::as_ref)
            .filter(|k| k.0 == idx)
            .map(|k| k.1);
        let hop = match try_read_slot_since(slot, known) {
            Err(ReadError::Busy) => return Attempt::Retry,
            Ok(Since::Unchanged) => match way.as_deref() {
                Some(Some((_, _, hop))) => hop.clone(),
                _ => return Attempt::Retry,
            },
            Ok(Since::Read(seq, words)) => {
                // A next hop is a route record with key word 0 (it decodes as `0.0.0.0/0`).
                if meta_state(words[META_WORD]) != SLOT_LIVE || words[0] != 0 {
                    return Attempt::Retry;
                }
                let Some(hop) = Route::decode(&payload(&words)) else {
                    return Attempt::Retry;
                };
                if let Some(way) = way {
                    *way = Some((idx, seq, hop.clone()));
                }
                hop
            }
        };
        if !still(t24, t8, a, w, e) {
            return Attempt::Retry;
        }
        let depth = entry_depth(e);
        if depth > 32 {
            return Attempt::Retry;
        }
        *answer = Some(Route {
            dst: Prefix::truncating(Ipv4Addr::from(a), depth),
            ..hop
        });
        Attempt::Done
    }

    /// One DIR-24-8 attempt without retries or fallback (tests check the fast path alone):
    /// `Some(answer)` unless the attempt had to retry.
    #[cfg(test)]
    pub(super) fn lookup_lpm_once(&self, addr: Ipv4Addr) -> Option<Option<Route>> {
        let mut answer = None;
        match self.lpm_attempt(u32::from(addr), &mut answer) {
            Attempt::Done => Some(answer),
            Attempt::Retry => None,
        }
    }

    /// Longest-prefix match by exact-match probes of `addr/32` down to `addr/0` (the fallback,
    /// and an independent answer for tests).
    pub fn lookup_by_probing(&self, addr: Ipv4Addr) -> Option<Route> {
        (0..=32u8)
            .rev()
            .find_map(|len| self.get(&Prefix::truncating(addr, len)))
            .map(|v| v.entry)
    }
}

impl<R: Record> std::fmt::Debug for ShmReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmReader")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("capacity", &self.capacity)
            .finish()
    }
}
