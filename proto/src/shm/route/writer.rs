//! The single writer of a route file (the daemon's route table actor).
//!
//! Every change is copy-on-write: the chunk and the entry block of the slot it touches are
//! written whole into free heap lines and published by one store of the word that names them
//! (layout: "Change and reclamation"). The file is the writer's index too: it finds a route, and
//! the route that covers a deleted one, by reading its own file as a reader does; what it keeps
//! in its heap is only the bookkeeping of free lines and of shared next-hop records.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::build::{build, Image};
use super::chunk::{self, is_len, loses_to, Ranges};
use super::heap::Heap;
use super::layout::{
    block_lines, block_word, chunk_of, chunk_word, entry_fields, entry_order, entry_word, slot_of,
    value, KEY_MASK, MAX_HEAP_LINES, MAX_NEXTHOPS, ORIGIN_RTM, PAGE_LINES, PAGE_SLOTS, REGION_HEAP,
    REGION_NH, REGION_NH_CAP, REGION_TIER1, SHORT_BLOCK_MAX, SLOTS, TIER1_WORDS, VALUE_VALID,
};
use super::nexthops::{Acquired, NextHops};
use super::view::{NextHop, View};
use crate::shm::file::{self, NewFile};
use crate::shm::header::{Header, FAMILY_INET, HEADER_SIZE, LAYOUT_VERSION, MAGIC, STATE_ACTIVE};
use crate::shm::mapping::{prefetch, Mapping};
use crate::shm::record::{Access, Planned, ShmError, TableKind, TableWriter, Versioned, SEQ_MASK};
use crate::shm::seqlock::write_words;
use crate::shm::sync::{fence, AtomicU32, Line, Ordering::Relaxed, Ordering::Release};
use crate::types::{Prefix, Route};

/// Fresh heap lines a new file keeps beyond what it holds, at least.
const MIN_HEADROOM: u32 = 1024;
/// Next-hop records a new file has room for, at least.
const MIN_NEXTHOPS: usize = 1024;
/// How often at most the writer moves the epoch on (readers that straddle it read again).
const EPOCH_EVERY: Duration = Duration::from_millis(1);
/// Freed lines past which the writer moves the epoch on at once.
const EPOCH_AFTER_LINES: u64 = 1 << 14;

/// A run of heap lines: (first, count), if there is one.
type Lines = Option<(u32, u32)>;

/// Where a route file's regions are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Regions {
    pub tier1: usize,
    pub nh: usize,
    pub nh_cap: usize,
    pub heap: usize,
    pub map_len: usize,
}

impl Regions {
    /// The regions for `nh_cap` next-hop records and at most `heap_max` heap lines.
    fn new(nh_cap: usize, heap_max: usize) -> Regions {
        let tier1 = HEADER_SIZE;
        let nh = tier1 + TIER1_WORDS * 4;
        let heap = nh + nh_cap * 64;
        Regions {
            tier1,
            nh,
            nh_cap,
            heap,
            map_len: (heap + heap_max * 64).next_multiple_of(HEADER_SIZE),
        }
    }

    /// The regions a header describes, if they are consistent.
    pub fn of(region: &[u64; 8], map_len: u64) -> Option<Regions> {
        let r = Regions {
            tier1: usize::try_from(region[REGION_TIER1]).ok()?,
            nh: usize::try_from(region[REGION_NH]).ok()?,
            nh_cap: usize::try_from(region[REGION_NH_CAP]).ok()?,
            heap: usize::try_from(region[REGION_HEAP]).ok()?,
            map_len: usize::try_from(map_len).ok()?,
        };
        let ok = r.tier1 == HEADER_SIZE
            && r.nh == r.tier1 + TIER1_WORDS * 4
            && r.nh_cap <= MAX_NEXTHOPS
            && r.heap == r.nh + r.nh_cap * 64
            && r.heap <= r.map_len
            && (r.map_len - r.heap) / 64 <= MAX_HEAP_LINES;
        ok.then_some(r)
    }

    pub fn heap_max(&self) -> usize {
        (self.map_len - self.heap) / 64
    }
}

/// Heap lines a table allowed `limit` routes may come to need (its mappings' size).
fn heap_max_for(limit: usize, used: usize) -> usize {
    let by_limit = limit.saturating_add(limit / 2).saturating_add(1 << 14);
    by_limit.max(used * 2).min(MAX_HEAP_LINES)
}

pub struct RouteWriter {
    path: PathBuf,
    access: Access,
    limit: usize,
    generation: u64,
    /// Our file, open for its liveness lock.
    _file: File,
    map: Mapping,
    dev_ino: (u64, u64),
    reg: Regions,
    heap: Heap,
    nhs: NextHops,
    live: usize,
    /// Routes per prefix length, so a delete probes only the lengths in use for what covers it.
    len_counts: [u32; 33],
    last_epoch: Instant,
}

/// A freshly written file, not yet at its path.
struct Written {
    new: NewFile,
    map: Mapping,
    reg: Regions,
    heap_cap: u32,
}

/// What a new file is made for besides its contents.
struct Spec {
    access: Access,
    /// Next-hop records it has room for.
    nh_cap: usize,
    /// Heap lines readers map: it grows in place up to them.
    heap_max: usize,
    generation: u64,
    table_seq: u64,
    limit: usize,
}

/// Writes `img` into a new file next to `path`: sized for what it holds plus headroom, its
/// storage reserved, and mapped for growth up to `spec.heap_max` lines.
fn write_file(path: &Path, img: &Image, spec: &Spec) -> Result<Written, ShmError> {
    let Spec {
        access,
        nh_cap,
        heap_max,
        generation,
        table_seq,
        limit,
    } = *spec;
    let used = img.heap.len();
    let heap_cap = (used + (used / 4).max(MIN_HEADROOM as usize)).min(heap_max.max(used));
    let reg = Regions::new(nh_cap, heap_max.max(heap_cap));
    let file_len = reg.heap + heap_cap * 64;
    let new = file::create_new(path, access)?;
    file::allocate(&new.file, path, TableKind::Route, 0, file_len as u64)?;
    let map = Mapping::read_write(&new.file, reg.map_len, file_len)
        .map_err(|e| ShmError::io(&new.tmp, e))?;
    let h = map.header();
    h.magic.store(MAGIC, Relaxed);
    h.layout_version.store(LAYOUT_VERSION, Relaxed);
    h.kind.store(TableKind::Route as u32, Relaxed);
    h.header_size.store(HEADER_SIZE as u32, Relaxed);
    h.family.store(FAMILY_INET, Relaxed);
    h.writer_pid.store(
        rustix::process::getpid().as_raw_nonzero().get() as u32,
        Relaxed,
    );
    h.generation.store(generation, Relaxed);
    h.state.store(STATE_ACTIVE, Relaxed);
    h.table_seq.store(table_seq, Relaxed);
    h.live.store(img.live as u64, Relaxed);
    h.file_len.store(file_len as u64, Relaxed);
    h.map_len.store(reg.map_len as u64, Relaxed);
    h.region[REGION_TIER1].store(reg.tier1 as u64, Relaxed);
    h.region[REGION_NH].store(reg.nh as u64, Relaxed);
    h.region[REGION_NH_CAP].store(reg.nh_cap as u64, Relaxed);
    h.region[REGION_HEAP].store(reg.heap as u64, Relaxed);
    h.heap_lines.store(heap_cap as u64, Relaxed);
    h.limit.store(limit as u64, Relaxed);
    let bad = |what: &str| ShmError::bad(&new.tmp, format!("cannot view the {what}"));
    let tier1 = map
        .u32s(reg.tier1, TIER1_WORDS)
        .ok_or_else(|| bad("tier 1"))?;
    for (w, &v) in tier1.iter().zip(&img.tier1) {
        if v != 0 {
            w.store(v, Relaxed);
        }
    }
    let nh = map
        .lines(reg.nh, reg.nh_cap)
        .ok_or_else(|| bad("next hops"))?;
    for (i, (hop, _)) in img.nexthops.iter().enumerate() {
        write_record(&nh[i + 1], &hop.encode());
    }
    let heap = map.lines(reg.heap, heap_cap).ok_or_else(|| bad("heap"))?;
    for (line, words) in heap.iter().zip(&img.heap) {
        for (w, &v) in line.iter().zip(words) {
            if v != 0 {
                w.store(v, Relaxed);
            }
        }
    }
    for (w, &v) in h.top_lpm.iter().zip(&img.top_lpm) {
        w.store(v, Relaxed);
    }
    for (w, &v) in h.top_blk.iter().zip(&img.top_blk) {
        w.store(v, Relaxed);
    }
    Ok(Written {
        new,
        map,
        reg,
        heap_cap: heap_cap as u32,
    })
}

/// Writes a next-hop record's words 1..=7 under its seqlock.
fn write_record(line: &Line, words: &[u64; 7]) {
    let (seq, rest) = line.split_first().expect("a line has 8 words");
    write_words(seq, rest.try_into().expect("7 words"), words);
}

/// Sorts routes by prefix and keeps the last of each prefix.
fn unique(mut entries: Vec<Versioned<Route>>) -> Vec<Versioned<Route>> {
    // Stable: equal keys stay in their order, so the last one given is kept.
    entries.sort_by_key(|v| v.entry.dst);
    let mut out: Vec<Versioned<Route>> = Vec::with_capacity(entries.len());
    for v in entries {
        match out.last_mut() {
            Some(last) if last.entry.dst == v.entry.dst => *last = v,
            _ => out.push(v),
        }
    }
    out
}

/// The slots a tier-2 prefix covers and its key range in each.
fn tier2_spans(addr: u32, len: u8) -> impl Iterator<Item = (usize, u32, u32)> {
    let s = slot_of(addr);
    let (n, lo, hi) = if len == 17 {
        (2, 0, KEY_MASK + 1)
    } else {
        let lo = addr & KEY_MASK;
        (1, lo, lo + (1 << (32 - u32::from(len))))
    };
    (0..n).map(move |i| (s + i, lo, hi))
}

impl RouteWriter {
    fn header(&self) -> &Header {
        self.map.header()
    }

    /// The writer's view of its file.
    fn view(&self) -> View<'_> {
        let h = self.header();
        View {
            epoch: &h.epoch,
            top_lpm: &h.top_lpm,
            top_blk: &h.top_blk,
            tier1: self
                .map
                .u32s(self.reg.tier1, TIER1_WORDS)
                .expect("tier 1 is in the file"),
            nh: self
                .map
                .lines(self.reg.nh, self.reg.nh_cap)
                .expect("next hops are in the file"),
            heap: self
                .map
                .lines(self.reg.heap, self.heap.cap as usize)
                .expect("the heap is in the file"),
        }
    }

    fn heap_lines(&self) -> &[Line] {
        self.map
            .lines(self.reg.heap, self.heap.cap as usize)
            .expect("the heap is in the file")
    }

    /// Publishes a freshly written file at `path`, retiring `old`, and builds the writer of it.
    #[allow(clippy::too_many_arguments)]
    fn adopt(
        path: &Path,
        access: Access,
        limit: usize,
        generation: u64,
        w: Written,
        old: Option<&Header>,
        img: &Image,
    ) -> Result<RouteWriter, ShmError> {
        let Written {
            new,
            map,
            reg,
            heap_cap,
        } = w;
        let dev_ino = new.dev_ino;
        let file = file::publish(new, path, old)?;
        let mut nhs = NextHops::new(reg.nh_cap as u32);
        for (i, (hop, refs)) in img.nexthops.iter().enumerate() {
            nhs.adopt(i as u32 + 1, *hop, *refs);
        }
        Ok(RouteWriter {
            path: path.to_path_buf(),
            access,
            limit,
            generation,
            _file: file,
            dev_ino,
            heap: Heap::new(img.heap.len() as u32, heap_cap, reg.heap_max() as u32),
            map,
            reg,
            nhs,
            live: img.live,
            len_counts: img.len_counts,
            last_epoch: Instant::now(),
        })
    }

    /// Publishes a new generation holding `routes` (sorted, unique) with room for `nh_cap`
    /// next hops and `heap_max` heap lines, and switches to it.
    fn rebuild(
        &mut self,
        routes: &[Versioned<Route>],
        nh_cap: usize,
        heap_max: usize,
    ) -> Result<(), ShmError> {
        let img = build(routes);
        let generation = self.generation.wrapping_add(1);
        let table_seq = self.header().table_seq.load(Relaxed);
        let nh_cap = nh_cap.max(nh_cap_for(img.nexthops.len()));
        let heap_max = heap_max.max(heap_max_for(self.limit, img.heap.len()));
        let spec = Spec {
            access: self.access,
            nh_cap,
            heap_max,
            generation,
            table_seq,
            limit: self.limit,
        };
        let w = write_file(&self.path, &img, &spec)?;
        let next = RouteWriter::adopt(
            &self.path,
            self.access,
            self.limit,
            generation,
            w,
            Some(self.header()),
            &img,
        )?;
        *self = next;
        Ok(())
    }

    // ===== epoch and room =====

    /// Moves the epoch on so that what was freed before may be reused, if it is time.
    fn settle(&mut self, now: bool) {
        let pending = self.heap.pending_lines();
        if pending == 0 && !self.nhs.has_pending() {
            return;
        }
        if !now && pending < EPOCH_AFTER_LINES && self.last_epoch.elapsed() < EPOCH_EVERY {
            return;
        }
        self.advance_epoch();
    }

    /// Increments the header's epoch (a `Release` store, then a `Release` fence, so that
    /// whatever is written into reused memory after it is only seen by readers that also see
    /// the new epoch) and makes what was freed before it reusable.
    fn advance_epoch(&mut self) {
        let h = self.header();
        let e = h.epoch.load(Relaxed);
        h.epoch.store(e.wrapping_add(1), Release);
        fence(Release);
        self.heap.reclaim();
        self.nhs.reclaim();
        self.last_epoch = Instant::now();
    }

    /// Makes sure `lines` fresh heap lines are backed by the file: grows it in place, or
    /// republishes into a larger mapping if the readers' mappings are too small.
    fn ensure_room(&mut self, lines: u64) -> Result<(), ShmError> {
        if self.heap.room() >= lines {
            return Ok(());
        }
        let want = u64::from(self.heap.next) + lines;
        if want > u64::from(self.heap.max) {
            // The readers' mappings cannot hold it: a new generation with a larger one.
            let routes = self.entries();
            let heap_max = ((want as usize) * 2).max(self.reg.heap_max() * 2);
            if heap_max > MAX_HEAP_LINES && want as usize > MAX_HEAP_LINES {
                return Err(ShmError::Full {
                    capacity: self.live,
                });
            }
            return self.rebuild(&routes, self.reg.nh_cap, heap_max.min(MAX_HEAP_LINES));
        }
        let cap = u64::from(self.heap.cap);
        let new_cap = want
            .max(cap + cap / 4)
            .max(cap + u64::from(MIN_HEADROOM))
            .min(u64::from(self.heap.max));
        let (at, len) = ((self.reg.heap as u64) + cap * 64, (new_cap - cap) * 64);
        file::allocate(&self._file, &self.path, TableKind::Route, at, len)?;
        let file_len = self.reg.heap + new_cap as usize * 64;
        self.map.set_valid(file_len);
        let h = self.header();
        h.file_len.store(file_len as u64, Release);
        h.heap_lines.store(new_cap, Release);
        self.heap.cap = new_cap as u32;
        Ok(())
    }

    /// Heap lines changes of these routes need at most, given the file as it is: each
    /// rewrites its slot's entry block and the chunk of each tier-2 slot it covers (two more
    /// ranges at most), and may need a page. Changes of the same slot are counted cumulatively.
    fn need(&self, ops: &[(Prefix, bool)]) -> u64 {
        let v = self.view();
        let mut per_slot: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut pages: HashSet<(bool, usize)> = HashSet::new();
        let mut need = 0u64;
        let mut page = |top: &[AtomicU32], lpm: bool, slot: usize, need: &mut u64| {
            let p = slot / PAGE_SLOTS;
            if top[p].load(Relaxed) == 0 && pages.insert((lpm, p)) {
                *need += PAGE_LINES as u64;
            }
        };
        for &(dst, _) in ops {
            let (addr, len) = (dst.addr_u32(), dst.len());
            let s = slot_of(addr);
            let (n, _) = v.block(s).unwrap_or((0, 0));
            let e = per_slot.entry(s).or_default();
            e.0 += 1;
            need += block_lines(n + e.0) as u64;
            page(v.top_blk, false, s, &mut need);
            if len >= 17 {
                for (t, _, _) in tier2_spans(addr, len) {
                    let ranges = match v.tier2_word(t) {
                        Ok(w) if w != 0 && w & VALUE_VALID == 0 => {
                            chunk::size_of_chunk(v.heap, chunk_of(w).1).0
                        }
                        _ => 1,
                    };
                    let e = per_slot.entry(t).or_default();
                    e.1 += 1;
                    need += chunk::shape(ranges + 2 * e.1).0 as u64;
                    page(v.top_lpm, true, t, &mut need);
                }
            }
        }
        need
    }

    // ===== slot words =====

    /// Stores slot word `w` of `slot` in the pages under `top`, making the page if needed.
    fn set_slot_word(&mut self, lpm: bool, slot: usize, w: u32) -> Result<(), ShmError> {
        let p = slot / PAGE_SLOTS;
        let top = if lpm {
            &self.header().top_lpm[p]
        } else {
            &self.header().top_blk[p]
        };
        let mut page = top.load(Relaxed);
        if page == 0 {
            if w == 0 {
                return Ok(());
            }
            page = self.alloc(PAGE_LINES as u32)?;
            for line in &self.heap_lines()[page as usize..page as usize + PAGE_LINES] {
                for word in line {
                    word.store(0, Relaxed);
                }
            }
            let top = if lpm {
                &self.header().top_lpm[p]
            } else {
                &self.header().top_blk[p]
            };
            top.store(page, Release);
        }
        let k = slot % PAGE_SLOTS;
        let word = &self.heap_lines()[page as usize + k / 16][(k % 16) / 2];
        let shift = 32 * (k & 1);
        let old = word.load(Relaxed);
        word.store(
            (old & !(0xffff_ffffu64 << shift)) | (u64::from(w) << shift),
            Release,
        );
        Ok(())
    }

    fn alloc(&mut self, n: u32) -> Result<u32, ShmError> {
        if let Some(l) = self.heap.alloc(n) {
            return Ok(l);
        }
        self.ensure_room(u64::from(n))?;
        self.heap.alloc(n).ok_or_else(|| ShmError::NoSpace {
            dir: self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            table: "route",
        })
    }

    /// Writes `lines` from heap line `at` on.
    fn write_lines(&self, at: u32, lines: &[[u64; 8]]) {
        let heap = &self.heap_lines()[at as usize..at as usize + lines.len()];
        for (line, words) in heap.iter().zip(lines) {
            for (w, &v) in line.iter().zip(words) {
                w.store(v, Relaxed);
            }
        }
    }

    // ===== longest-prefix match =====

    /// The ranges of a tier-2 slot and, for a chunk, its (root, lines).
    fn slot_ranges(&self, slot: usize) -> (Ranges, Option<(u32, u32)>) {
        let w = self.view().tier2_word(slot).unwrap_or(0);
        if w == 0 || w & VALUE_VALID != 0 {
            return (chunk::uniform(w), None);
        }
        let root = chunk_of(w).1;
        let heap = self.heap_lines();
        let (_, lines) = chunk::size_of_chunk(heap, root);
        (chunk::decode(heap, root), Some((root, lines as u32)))
    }

    /// Repaints the addresses of `addr/len` whose value `repaint` accepts with `new`.
    fn paint(
        &mut self,
        addr: u32,
        len: u8,
        repaint: impl Fn(u32) -> bool + Copy,
        new: u32,
    ) -> Result<(), ShmError> {
        if len <= 16 {
            let first = (addr >> 16) as usize;
            let words = &self.view().tier1[first..first + (1usize << (16 - len))];
            for w in words {
                if repaint(w.load(Relaxed)) {
                    w.store(new, Release);
                }
            }
            return Ok(());
        }
        for (slot, lo, hi) in tier2_spans(addr, len) {
            let (r, old) = self.slot_ranges(slot);
            let painted = chunk::paint(&r, lo, hi, repaint, new);
            if painted == r {
                continue;
            }
            let w = if painted.len() == 1 {
                painted[0].1
            } else {
                let (lines, _) = chunk::shape(painted.len());
                let at = self.alloc(lines as u32)?;
                let (image, depth) = chunk::encode(&painted, at);
                self.write_lines(at, &image);
                chunk_word(depth, at)
            };
            self.set_slot_word(true, slot, w)?;
            if let Some((root, lines)) = old {
                self.heap.release(root, lines);
            }
        }
        Ok(())
    }

    /// The value of the longest route shorter than `len` that contains `addr/len`, among the
    /// routes of the same tier (0: none; tier 1 answers for tier 2).
    fn covering(&self, addr: u32, len: u8) -> u32 {
        let v = self.view();
        let shortest = if len >= 17 { 17 } else { 0 };
        for l in (shortest..len).rev() {
            if self.len_counts[l as usize] == 0 {
                continue;
            }
            let q = Prefix::truncating(addr.into(), l);
            if let Ok(Some((nh, _, _))) = v.find(q.addr_u32(), l) {
                return value(l, nh);
            }
        }
        0
    }

    // ===== entry blocks =====

    /// The entries of `slot`'s block and its (first line, lines).
    fn block_entries(&self, slot: usize) -> (Vec<(u64, u64)>, Lines) {
        let v = self.view();
        let (n, first) = v.block(slot).unwrap_or((0, 0));
        if n == 0 {
            return (Vec::new(), None);
        }
        let entries = (0..n)
            .map(|i| v.entry(first, i).unwrap_or((0, 0)))
            .collect();
        let start = if n as u32 > SHORT_BLOCK_MAX {
            first - 1
        } else {
            first
        };
        (entries, Some((start, block_lines(n) as u32)))
    }

    /// Replaces `slot`'s block with `entries` (sorted).
    fn set_block(
        &mut self,
        slot: usize,
        entries: &[(u64, u64)],
        old: Option<(u32, u32)>,
    ) -> Result<(), ShmError> {
        let n = entries.len();
        let w = if n == 0 {
            0
        } else {
            let lines = block_lines(n);
            let at = self.alloc(lines as u32)?;
            let mut image = vec![[0u64; 8]; lines];
            let skip = usize::from(n as u32 > SHORT_BLOCK_MAX);
            if skip == 1 {
                image[0][0] = n as u64;
            }
            for (j, &(a, b)) in entries.iter().enumerate() {
                image[skip + j / 4][(j % 4) * 2] = a;
                image[skip + j / 4][(j % 4) * 2 + 1] = b;
            }
            self.write_lines(at, &image);
            block_word(n as u32, at)
        };
        self.set_slot_word(false, slot, w)?;
        if let Some((line, lines)) = old {
            self.heap.release(line, lines);
        }
        Ok(())
    }

    /// Reads the next-hop record `i` of our own file.
    fn hop(&self, i: u32) -> Option<NextHop> {
        self.view().nexthop(i).ok()
    }

    /// A versioned route from an entry's words.
    fn route_of(&self, a: u64, b: u64) -> Option<Versioned<Route>> {
        let (addr, len, _, nh) = entry_fields(a);
        let hop = self.hop(nh)?;
        Some(Versioned {
            entry: hop.route(Prefix::truncating(addr.into(), len)),
            seq: b & SEQ_MASK,
        })
    }

    /// Publishes the new header count.
    fn sync_live(&self) {
        self.header().live.store(self.live as u64, Relaxed);
    }

    /// Next-hop records in use (tests and figures).
    pub fn nexthops_in_use(&self) -> usize {
        self.nhs.len()
    }

    /// Heap lines handed out and not freed (tests and figures).
    pub fn heap_in_use(&self) -> u64 {
        self.heap.in_use
    }
}

fn nh_cap_for(n: usize) -> usize {
    ((n + 1) * 2)
        .next_power_of_two()
        .clamp(MIN_NEXTHOPS, MAX_NEXTHOPS)
}

impl TableWriter<Route> for RouteWriter {
    fn create(
        path: &Path,
        limit: usize,
        access: impl Into<Access>,
        entries: Vec<Versioned<Route>>,
        table_seq: u64,
    ) -> Result<Self, ShmError> {
        let access = access.into();
        let routes = unique(entries);
        if routes.len() > limit {
            return Err(ShmError::Full { capacity: limit });
        }
        let img = build(&routes);
        drop(routes);
        let old = file::open_current(path, TableKind::Route);
        let generation = old.as_ref().map_or(1, |(_, m)| {
            m.header().generation.load(Relaxed).wrapping_add(1)
        });
        let spec = Spec {
            access,
            nh_cap: nh_cap_for(img.nexthops.len()),
            heap_max: heap_max_for(limit, img.heap.len()),
            generation,
            table_seq,
            limit,
        };
        let w = write_file(path, &img, &spec)?;
        RouteWriter::adopt(
            path,
            access,
            limit,
            generation,
            w,
            old.as_ref().map(|(_, m)| m.header()),
            &img,
        )
    }

    fn reserve<'a>(
        &mut self,
        ops: impl Iterator<Item = Planned<'a, Route>>,
    ) -> Result<(), ShmError> {
        self.settle(false);
        let mut keys = Vec::new();
        let mut new_hops: HashSet<NextHop> = HashSet::new();
        for op in ops {
            match op {
                Planned::Put(r) => {
                    let nh = NextHop::of(r);
                    if !self.nhs.has(&nh) {
                        new_hops.insert(nh);
                    }
                    keys.push((r.dst, true));
                }
                Planned::Del(k) => keys.push((*k, false)),
                Planned::Flush => {}
            }
        }
        if new_hops.len() > self.nhs.room() {
            // The next-hop region is full: a new generation with a larger one.
            let routes = self.entries();
            let cap = nh_cap_for(self.nhs.len() + new_hops.len());
            if cap <= self.reg.nh_cap || cap > MAX_NEXTHOPS {
                return Err(ShmError::Full {
                    capacity: self.limit,
                });
            }
            self.rebuild(&routes, cap, self.reg.heap_max())?;
        }
        let need = self.need(&keys);
        self.ensure_room(need)
    }

    fn upsert(&mut self, rec: &Route, seq: u64) -> Result<(), ShmError> {
        self.settle(false);
        let (addr, len) = (rec.dst.addr_u32(), rec.dst.len());
        let need = self.need(&[(rec.dst, true)]);
        self.ensure_room(need)?;
        let hop = NextHop::of(rec);
        let existing = self.view().find(addr, len).ok().flatten();
        if existing.is_none() && self.live >= self.limit {
            return Err(ShmError::Full {
                capacity: self.limit,
            });
        }
        let nh = match self.nhs.acquire(&hop) {
            Some(Acquired::Shared(i)) => i,
            Some(Acquired::New(i)) => {
                // The record exists before anything names it.
                write_record(&self.view().nh[i as usize], &hop.encode());
                i
            }
            None => {
                return Err(ShmError::Full {
                    capacity: self.limit,
                })
            }
        };
        match existing {
            None => self.paint(addr, len, loses_to(len), value(len, nh))?,
            Some((old, _, _)) if old != nh => self.paint(addr, len, is_len(len), value(len, nh))?,
            Some(_) => {}
        }
        let slot = slot_of(addr);
        let (mut entries, old_block) = self.block_entries(slot);
        let word = entry_word(addr, len, ORIGIN_RTM, nh);
        let order = entry_order(word);
        match entries.binary_search_by_key(&order, |&(a, _)| entry_order(a)) {
            Ok(i) => entries[i] = (word, seq & SEQ_MASK),
            Err(i) => entries.insert(i, (word, seq & SEQ_MASK)),
        }
        self.set_block(slot, &entries, old_block)?;
        match existing {
            Some((old, _, _)) => {
                if let Some(old_hop) = self.hop(old) {
                    self.nhs.release(old, &old_hop);
                }
            }
            None => {
                self.live += 1;
                self.len_counts[len as usize] += 1;
                self.sync_live();
            }
        }
        Ok(())
    }

    fn remove(&mut self, key: &Prefix, _seq: u64) -> bool {
        self.settle(false);
        let (addr, len) = (key.addr_u32(), key.len());
        let Ok(Some((nh, _, _))) = self.view().find(addr, len) else {
            return false;
        };
        if self.ensure_room(self.need(&[(*key, false)])).is_err() {
            // Cannot happen after a reserve; without one, the route stays.
            return false;
        }
        let cover = self.covering(addr, len);
        if self.paint(addr, len, is_len(len), cover).is_err() {
            return false;
        }
        let slot = slot_of(addr);
        let (mut entries, old_block) = self.block_entries(slot);
        entries.retain(|&(a, _)| {
            let (ea, el, _, _) = entry_fields(a);
            (ea, el) != (addr, len)
        });
        if self.set_block(slot, &entries, old_block).is_err() {
            return false;
        }
        if let Some(hop) = self.hop(nh) {
            self.nhs.release(nh, &hop);
        }
        self.live -= 1;
        self.len_counts[len as usize] -= 1;
        self.sync_live();
        true
    }

    fn clear(&mut self, _seq: u64) {
        let h = self.header();
        for w in h.top_lpm.iter().chain(&h.top_blk) {
            w.store(0, Release);
        }
        for w in self.view().tier1 {
            w.store(0, Release);
        }
        // Nothing is reachable any more: after the epoch, every line and record is free.
        self.advance_epoch();
        self.heap.reset();
        self.nhs.reset();
        self.live = 0;
        self.len_counts = [0; 33];
        self.sync_live();
    }

    fn contains(&self, key: &Prefix) -> bool {
        matches!(self.view().find(key.addr_u32(), key.len()), Ok(Some(_)))
    }

    fn get(&self, key: &Prefix) -> Option<Versioned<Route>> {
        let (nh, _, b) = self.view().find(key.addr_u32(), key.len()).ok()??;
        let hop = self.hop(nh)?;
        Some(Versioned {
            entry: hop.route(*key),
            seq: b & SEQ_MASK,
        })
    }

    fn entries(&self) -> Vec<Versioned<Route>> {
        let v = self.view();
        let mut out = Vec::with_capacity(self.live);
        for slot in 0..SLOTS {
            if slot % PAGE_SLOTS == 0 && v.top_blk[slot / PAGE_SLOTS].load(Relaxed) == 0 {
                continue;
            }
            let Ok((n, first)) = v.block(slot) else {
                continue;
            };
            for i in 0..n {
                if let Ok((a, b)) = v.entry(first, i) {
                    out.extend(self.route_of(a, b));
                }
            }
        }
        out
    }

    fn prefetch(&self, key: &Prefix) {
        let s = slot_of(key.addr_u32());
        let h = self.header();
        let heap = self.heap_lines();
        for top in [&h.top_lpm, &h.top_blk] {
            let page = top[s / PAGE_SLOTS].load(Relaxed) as usize;
            if let Some(l) = heap.get(page + (s % PAGE_SLOTS) / 16).filter(|_| page != 0) {
                prefetch(l);
            }
        }
    }

    fn republish(&mut self, entries: Vec<Versioned<Route>>) -> Result<(), ShmError> {
        let routes = unique(entries);
        if routes.len() > self.limit {
            return Err(ShmError::Full {
                capacity: self.limit,
            });
        }
        self.rebuild(&routes, 0, 0)
    }

    fn set_table_seq(&self, seq: u64) {
        self.header().table_seq.store(seq, Release);
    }

    fn len(&self) -> usize {
        self.live
    }

    fn capacity(&self) -> usize {
        self.limit
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn allocated_bytes(&self) -> u64 {
        self.header().file_len.load(Relaxed)
    }

    fn remove_file(self) -> std::io::Result<()> {
        let RouteWriter {
            path,
            dev_ino,
            map,
            _file,
            ..
        } = self;
        drop(map);
        drop(_file);
        file::remove_if_ours(&path, dev_ino)
    }
}

impl std::fmt::Debug for RouteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteWriter")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("len", &self.live)
            .field("limit", &self.limit)
            .field("heap_lines", &self.heap.cap)
            .finish()
    }
}

impl RouteWriter {
    /// The route `addr` matches (longest-prefix match on the writer's own file).
    pub fn lookup(&self, addr: std::net::Ipv4Addr) -> Option<Route> {
        let v = self.view();
        let val = v.value(u32::from(addr)).ok()?;
        if val == 0 {
            return None;
        }
        let hop = v.nexthop(super::layout::value_nh(val)).ok()?;
        Some(hop.route(Prefix::truncating(addr, super::layout::value_depth(val))))
    }
}
