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

use super::build::{build, Image, TooManyValues};
use super::chunk::{self, is_len, loses_to, Ranges};
use super::heap::Heap;
use super::layout::{
    block_lines, block_word, chunk_of, chunk_word, entry_fields, entry_order, entry_word, slot_of,
    value, value_depth, value_nh, KEY_MASK, MAX_HEAP_LINES, MAX_NEXTHOPS, ORIGIN_RTM, PAGE_LINES,
    PAGE_SLOTS, REGION_BLK, REGION_BLK_MAX, REGION_LPM, REGION_LPM_MAX, REGION_NH, REGION_NH_CAP,
    REGION_TIER1, REGION_VALUES, SHORT_BLOCK_MAX, SLOTS, TIER1_WORDS, VALUE_SLOTS, VALUE_VALID,
};
use super::nexthops::{Acquired, NextHops};
use super::values::Values;
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
    pub values: usize,
    pub nh: usize,
    pub nh_cap: usize,
    pub lpm: usize,
    pub lpm_max: usize,
    pub blk: usize,
    pub blk_max: usize,
    pub map_len: usize,
}

impl Regions {
    /// The regions for `nh_cap` next-hop records and at most `lpm_max` and `blk_max` heap
    /// lines.
    fn new(nh_cap: usize, lpm_max: usize, blk_max: usize) -> Regions {
        let tier1 = HEADER_SIZE;
        let values = tier1 + TIER1_WORDS * 4;
        let nh = values + VALUE_SLOTS * 4;
        let lpm = nh + nh_cap * 64;
        let blk = lpm + lpm_max * 64;
        Regions {
            tier1,
            values,
            nh,
            nh_cap,
            lpm,
            lpm_max,
            blk,
            blk_max,
            map_len: (blk + blk_max * 64).next_multiple_of(HEADER_SIZE),
        }
    }

    /// The regions a header describes, if they are consistent.
    pub fn of(region: &[u64; 8], map_len: u64) -> Option<Regions> {
        let get = |i: usize| usize::try_from(region[i]).ok();
        let (nh_cap, lpm_max, blk_max) = (
            get(REGION_NH_CAP)?,
            get(REGION_LPM_MAX)?,
            get(REGION_BLK_MAX)?,
        );
        if nh_cap > MAX_NEXTHOPS || lpm_max > MAX_HEAP_LINES || blk_max > MAX_HEAP_LINES {
            return None;
        }
        let r = Regions::new(nh_cap, lpm_max, blk_max);
        let ok = get(REGION_TIER1)? == r.tier1
            && get(REGION_VALUES)? == r.values
            && get(REGION_NH)? == r.nh
            && get(REGION_LPM)? == r.lpm
            && get(REGION_BLK)? == r.blk
            && usize::try_from(map_len).ok()? == r.map_len;
        ok.then_some(r)
    }
}

/// Lines a heap of a table allowed `limit` routes may come to need (its part of the readers'
/// mapping), given `used` lines now.
fn heap_max_for(limit: usize, used: usize) -> usize {
    let by_limit = (limit / 2).saturating_add(1 << 15);
    by_limit.max(used * 2).min(MAX_HEAP_LINES)
}

/// Which heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    Lpm,
    Blk,
}

pub struct RouteWriter {
    path: PathBuf,
    access: Access,
    limit: usize,
    generation: u64,
    /// Our file, open for its liveness lock.
    file: File,
    map: Mapping,
    dev_ino: (u64, u64),
    reg: Regions,
    lpm: Heap,
    blk: Heap,
    values: Values,
    nhs: NextHops,
    live: usize,
    /// Routes per prefix length, so a delete probes only the lengths in use for what covers it.
    len_counts: [u32; 33],
    last_epoch: Instant,
}

/// What a new file is made for besides its contents.
struct Spec {
    access: Access,
    /// Next-hop records it has room for.
    nh_cap: usize,
    /// Lines of each heap readers map: the heaps grow in place up to them.
    lpm_max: usize,
    blk_max: usize,
    generation: u64,
    table_seq: u64,
    limit: usize,
}

/// A freshly written file, not yet at its path.
struct Written {
    new: NewFile,
    map: Mapping,
    reg: Regions,
    lpm_cap: u32,
    blk_cap: u32,
}

/// Lines a heap holding `used` lines starts with: what it holds plus headroom.
fn start_cap(used: usize, max: usize) -> usize {
    (used + (used / 4).max(MIN_HEADROOM as usize)).min(max.max(used))
}

/// Writes `img` into a new file next to `path`: each heap sized for what it holds plus
/// headroom, the storage reserved, and mapped for growth up to the spec's maximum.
fn write_file(path: &Path, img: &Image, spec: &Spec) -> Result<Written, ShmError> {
    let lpm_cap = start_cap(img.lpm.len(), spec.lpm_max);
    let blk_cap = start_cap(img.blk.len(), spec.blk_max);
    let reg = Regions::new(
        spec.nh_cap,
        spec.lpm_max.max(lpm_cap),
        spec.blk_max.max(blk_cap),
    );
    let new = file::create_new(path, spec.access)?;
    let to_lpm_end = reg.lpm + lpm_cap * 64;
    let file_len = reg.blk + blk_cap * 64;
    file::allocate(&new.file, path, TableKind::Route, 0, to_lpm_end as u64)?;
    file::allocate(
        &new.file,
        path,
        TableKind::Route,
        reg.blk as u64,
        (blk_cap * 64) as u64,
    )?;
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
    h.generation.store(spec.generation, Relaxed);
    h.state.store(STATE_ACTIVE, Relaxed);
    h.table_seq.store(spec.table_seq, Relaxed);
    h.live.store(img.live as u64, Relaxed);
    h.file_len.store(file_len as u64, Relaxed);
    h.map_len.store(reg.map_len as u64, Relaxed);
    for (i, v) in [
        (REGION_TIER1, reg.tier1),
        (REGION_NH, reg.nh),
        (REGION_NH_CAP, reg.nh_cap),
        (REGION_BLK, reg.blk),
        (REGION_VALUES, reg.values),
        (REGION_LPM, reg.lpm),
        (REGION_LPM_MAX, reg.lpm_max),
        (REGION_BLK_MAX, reg.blk_max),
    ] {
        h.region[i].store(v as u64, Relaxed);
    }
    h.heap_lines.store(blk_cap as u64, Relaxed);
    h.lpm_lines.store(lpm_cap as u64, Relaxed);
    h.limit.store(spec.limit as u64, Relaxed);
    let bad = |what: &str| ShmError::bad(&new.tmp, format!("cannot view the {what}"));
    let store32 = |dst: &[AtomicU32], src: &mut dyn Iterator<Item = u32>| {
        for (w, v) in dst.iter().zip(src) {
            if v != 0 {
                w.store(v, Relaxed);
            }
        }
    };
    let tier1 = map
        .u32s(reg.tier1, TIER1_WORDS)
        .ok_or_else(|| bad("tier 1"))?;
    store32(tier1, &mut img.tier1.iter().copied());
    let values = map
        .u32s(reg.values, VALUE_SLOTS)
        .ok_or_else(|| bad("values"))?;
    store32(&values[1..], &mut img.values.iter().map(|&(v, _)| v));
    let nh = map
        .lines(reg.nh, reg.nh_cap)
        .ok_or_else(|| bad("next hops"))?;
    for (i, (hop, _)) in img.nexthops.iter().enumerate() {
        write_record(&nh[i + 1], &hop.encode());
    }
    for (off, cap, lines, what) in [
        (reg.lpm, lpm_cap, &img.lpm, "LPM heap"),
        (reg.blk, blk_cap, &img.blk, "block heap"),
    ] {
        let heap = map.lines(off, cap).ok_or_else(|| bad(what))?;
        for (line, words) in heap.iter().zip(lines) {
            for (w, &v) in line.iter().zip(words) {
                if v != 0 {
                    w.store(v, Relaxed);
                }
            }
        }
    }
    store32(&h.top_lpm, &mut img.top_lpm.iter().copied());
    store32(&h.top_blk, &mut img.top_blk.iter().copied());
    Ok(Written {
        new,
        map,
        reg,
        lpm_cap: lpm_cap as u32,
        blk_cap: blk_cap as u32,
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

fn nh_cap_for(n: usize) -> usize {
    ((n + 1) * 2)
        .next_power_of_two()
        .clamp(MIN_NEXTHOPS, MAX_NEXTHOPS)
}

fn too_many_values() -> ShmError {
    ShmError::Layout {
        what: "distinct (prefix length, next hop) pairs among the routes of /17-/32".into(),
        limit: VALUE_SLOTS as u64 - 1,
    }
}

impl RouteWriter {
    fn header(&self) -> &Header {
        self.map.header()
    }

    /// The writer's view of its file.
    fn view(&self) -> View<'_> {
        let h = self.header();
        let m = &self.map;
        View {
            epoch: &h.epoch,
            top_lpm: &h.top_lpm,
            top_blk: &h.top_blk,
            tier1: m
                .u32s(self.reg.tier1, TIER1_WORDS)
                .expect("tier 1 is in the file"),
            values: m
                .u32s(self.reg.values, VALUE_SLOTS)
                .expect("values are in the file"),
            nh: m
                .lines(self.reg.nh, self.reg.nh_cap)
                .expect("next hops are in the file"),
            lpm: m
                .lines(self.reg.lpm, self.lpm.cap as usize)
                .expect("LPM heap in the file"),
            blk: m
                .lines(self.reg.blk, self.blk.cap as usize)
                .expect("block heap in the file"),
        }
    }

    fn heap(&self, which: Which) -> &Heap {
        match which {
            Which::Lpm => &self.lpm,
            Which::Blk => &self.blk,
        }
    }

    fn heap_mut(&mut self, which: Which) -> &mut Heap {
        match which {
            Which::Lpm => &mut self.lpm,
            Which::Blk => &mut self.blk,
        }
    }

    fn lines_of(&self, which: Which) -> &[Line] {
        let v = self.view();
        match which {
            Which::Lpm => v.lpm,
            Which::Blk => v.blk,
        }
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
            lpm_cap,
            blk_cap,
        } = w;
        let dev_ino = new.dev_ino;
        let file = file::publish(new, path, old)?;
        let mut nhs = NextHops::new(reg.nh_cap as u32);
        for (i, (hop, refs)) in img.nexthops.iter().enumerate() {
            nhs.adopt(i as u32 + 1, *hop, *refs);
        }
        let mut values = Values::new();
        for (i, &(v, refs)) in img.values.iter().enumerate() {
            values.adopt(i as u16 + 1, v, refs);
        }
        Ok(RouteWriter {
            path: path.to_path_buf(),
            access,
            limit,
            generation,
            file,
            dev_ino,
            lpm: Heap::new(img.lpm.len() as u32, lpm_cap, reg.lpm_max as u32),
            blk: Heap::new(img.blk.len() as u32, blk_cap, reg.blk_max as u32),
            map,
            reg,
            values,
            nhs,
            live: img.live,
            len_counts: img.len_counts,
            last_epoch: Instant::now(),
        })
    }

    /// Publishes a new generation holding `routes` (sorted, unique) with room for at least
    /// `nh_cap` next hops and the heap maxima, and switches to it.
    fn rebuild(
        &mut self,
        routes: &[Versioned<Route>],
        nh_cap: usize,
        lpm_max: usize,
        blk_max: usize,
    ) -> Result<(), ShmError> {
        let img = build(routes).map_err(|TooManyValues| too_many_values())?;
        let spec = Spec {
            access: self.access,
            nh_cap: nh_cap.max(nh_cap_for(img.nexthops.len())),
            lpm_max: lpm_max.max(heap_max_for(self.limit, img.lpm.len())),
            blk_max: blk_max.max(heap_max_for(self.limit, img.blk.len())),
            generation: self.generation.wrapping_add(1),
            table_seq: self.header().table_seq.load(Relaxed),
            limit: self.limit,
        };
        let w = write_file(&self.path, &img, &spec)?;
        let next = RouteWriter::adopt(
            &self.path,
            self.access,
            self.limit,
            spec.generation,
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
        let pending = self.lpm.pending_lines() + self.blk.pending_lines();
        if pending == 0 && !self.nhs.has_pending() && !self.values.has_pending() {
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
        self.lpm.reclaim();
        self.blk.reclaim();
        self.nhs.reclaim();
        self.values.reclaim();
        self.last_epoch = Instant::now();
    }

    /// Makes sure `lines` fresh lines of `which` heap are backed by the file: grows it in
    /// place, or republishes into a larger mapping if the readers' mappings are too small.
    fn ensure_room(&mut self, which: Which, lines: u64) -> Result<(), ShmError> {
        let heap = self.heap(which);
        if heap.room() >= lines {
            return Ok(());
        }
        let want = u64::from(heap.next) + lines;
        if want > u64::from(heap.max) {
            // The readers' mappings cannot hold it: a new generation with a larger one.
            let grow = |max: usize| (want as usize).max(max * 2).min(MAX_HEAP_LINES);
            if want as usize > MAX_HEAP_LINES {
                return Err(ShmError::Layout {
                    what: "route file heap lines".into(),
                    limit: MAX_HEAP_LINES as u64,
                });
            }
            let (lpm_max, blk_max) = match which {
                Which::Lpm => (grow(self.reg.lpm_max), self.reg.blk_max),
                Which::Blk => (self.reg.lpm_max, grow(self.reg.blk_max)),
            };
            let routes = self.entries();
            return self.rebuild(&routes, self.reg.nh_cap, lpm_max, blk_max);
        }
        let cap = u64::from(heap.cap);
        let new_cap = want
            .max(cap + cap / 4)
            .max(cap + u64::from(MIN_HEADROOM))
            .min(u64::from(heap.max));
        let base = match which {
            Which::Lpm => self.reg.lpm,
            Which::Blk => self.reg.blk,
        } as u64;
        file::allocate(
            &self.file,
            &self.path,
            TableKind::Route,
            base + cap * 64,
            (new_cap - cap) * 64,
        )?;
        let h = self.header();
        match which {
            Which::Lpm => h.lpm_lines.store(new_cap, Release),
            Which::Blk => {
                let file_len = self.reg.blk as u64 + new_cap * 64;
                self.map.set_valid(file_len as usize);
                h.file_len.store(file_len, Release);
                h.heap_lines.store(new_cap, Release);
            }
        }
        self.heap_mut(which).cap = new_cap as u32;
        Ok(())
    }

    /// Lines of each heap that changes of these prefixes need at most, given the file as it
    /// is: each rewrites its slot's entry block and the chunk of each tier-2 slot it covers
    /// (two more ranges at most), and may need a page. Changes of the same slot are counted
    /// cumulatively.
    fn need(&self, ops: &[Prefix]) -> (u64, u64) {
        let v = self.view();
        let mut per_slot: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut pages: HashSet<(Which, usize)> = HashSet::new();
        let (mut lpm, mut blk) = (0u64, 0u64);
        let mut page = |top: &[AtomicU32], which: Which, slot: usize| -> u64 {
            let p = slot / PAGE_SLOTS;
            if top[p].load(Relaxed) == 0 && pages.insert((which, p)) {
                PAGE_LINES as u64
            } else {
                0
            }
        };
        for &dst in ops {
            let (addr, len) = (dst.addr_u32(), dst.len());
            let s = slot_of(addr);
            let (n, _) = v.block(s).unwrap_or((0, 0));
            let e = per_slot.entry(s).or_default();
            e.0 += 1;
            blk += block_lines(n + e.0) as u64 + page(v.top_blk, Which::Blk, s);
            if len >= 17 {
                for (t, _, _) in tier2_spans(addr, len) {
                    let ranges = match v.tier2_word(t) {
                        Ok(w) if w != 0 && w & VALUE_VALID == 0 => {
                            let (depth, root) = chunk_of(w);
                            chunk::decode(v.lpm, depth, root).0.len()
                        }
                        _ => 1,
                    };
                    let e = per_slot.entry(t).or_default();
                    e.1 += 1;
                    lpm += chunk::shape(ranges + 2 * e.1).0 as u64 + page(v.top_lpm, Which::Lpm, t);
                }
            }
        }
        (lpm, blk)
    }

    fn ensure_need(&mut self, ops: &[Prefix]) -> Result<(), ShmError> {
        let (lpm, blk) = self.need(ops);
        self.ensure_room(Which::Lpm, lpm)?;
        self.ensure_room(Which::Blk, blk)
    }

    fn alloc(&mut self, which: Which, n: u32) -> Result<u32, ShmError> {
        if let Some(l) = self.heap_mut(which).alloc(n) {
            return Ok(l);
        }
        self.ensure_room(which, u64::from(n))?;
        self.heap_mut(which)
            .alloc(n)
            .ok_or_else(|| ShmError::NoSpace {
                dir: self
                    .path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                table: "route",
            })
    }

    /// Writes `lines` from line `at` of `which` heap on.
    fn write_lines(&self, which: Which, at: u32, lines: &[[u64; 8]]) {
        let heap = &self.lines_of(which)[at as usize..at as usize + lines.len()];
        for (line, words) in heap.iter().zip(lines) {
            for (w, &v) in line.iter().zip(words) {
                w.store(v, Relaxed);
            }
        }
    }

    // ===== slot words =====

    /// Stores slot word `w` of `slot` in the pages of `which` heap, making the page if needed.
    fn set_slot_word(&mut self, which: Which, slot: usize, w: u32) -> Result<(), ShmError> {
        let p = slot / PAGE_SLOTS;
        let mut page = self.top(which)[p].load(Relaxed);
        if page == 0 {
            if w == 0 {
                return Ok(());
            }
            page = self.alloc(which, PAGE_LINES as u32)?;
            self.write_lines(which, page, &[[0u64; 8]; PAGE_LINES]);
            self.top(which)[p].store(page, Release);
        }
        let k = slot % PAGE_SLOTS;
        let word = &self.lines_of(which)[page as usize + k / 16][(k % 16) / 2];
        let shift = 32 * (k & 1);
        let old = word.load(Relaxed);
        word.store(
            (old & !(0xffff_ffffu64 << shift)) | (u64::from(w) << shift),
            Release,
        );
        Ok(())
    }

    fn top(&self, which: Which) -> &[AtomicU32; 256] {
        match which {
            Which::Lpm => &self.header().top_lpm,
            Which::Blk => &self.header().top_blk,
        }
    }

    // ===== longest-prefix match =====

    /// The ranges of a tier-2 slot with their values, and for a chunk its root, lines and
    /// value indices (to release when it is replaced).
    fn slot_ranges(&self, slot: usize) -> (Ranges, Option<(u32, u32, Vec<u16>)>) {
        let w = self.view().tier2_word(slot).unwrap_or(0);
        if w == 0 || w & VALUE_VALID != 0 {
            return (chunk::uniform(w), None);
        }
        let (depth, root) = chunk_of(w);
        let (indexed, lines) = chunk::decode(self.view().lpm, depth, root);
        let ranges = indexed
            .iter()
            .map(|&(s, i)| (s, self.values.get(i)))
            .collect();
        let indices = indexed.into_iter().map(|(_, i)| i).collect();
        (ranges, Some((root, lines, indices)))
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
                let mut indexed = Vec::with_capacity(painted.len());
                for &(s, v) in &painted {
                    let (i, fresh) = self.values.acquire(v).ok_or_else(too_many_values)?;
                    if fresh {
                        // The entry holds its value before a chunk names it.
                        self.view().values[usize::from(i)].store(v, Release);
                    }
                    indexed.push((s, i));
                }
                let (lines, _) = chunk::shape(indexed.len());
                let at = self.alloc(Which::Lpm, lines as u32)?;
                let (image, depth) = chunk::encode(&indexed, at);
                self.write_lines(Which::Lpm, at, &image);
                chunk_word(depth, at)
            };
            self.set_slot_word(Which::Lpm, slot, w)?;
            if let Some((root, lines, indices)) = old {
                self.lpm.release(root, lines);
                for i in indices {
                    self.values.release(i);
                }
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
        old: Lines,
    ) -> Result<(), ShmError> {
        let n = entries.len();
        let w = if n == 0 {
            0
        } else {
            let lines = block_lines(n);
            let at = self.alloc(Which::Blk, lines as u32)?;
            let mut image = vec![[0u64; 8]; lines];
            let skip = usize::from(n as u32 > SHORT_BLOCK_MAX);
            if skip == 1 {
                image[0][0] = n as u64;
            }
            for (j, &(a, b)) in entries.iter().enumerate() {
                image[skip + j / 4][(j % 4) * 2] = a;
                image[skip + j / 4][(j % 4) * 2 + 1] = b;
            }
            self.write_lines(Which::Blk, at, &image);
            block_word(n as u32, at)
        };
        self.set_slot_word(Which::Blk, slot, w)?;
        if let Some((line, lines)) = old {
            self.blk.release(line, lines);
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

    /// Heap lines handed out and not freed, LPM and blocks (tests and figures).
    pub fn heap_in_use(&self) -> (u64, u64) {
        (self.lpm.in_use, self.blk.in_use)
    }

    /// The route `addr` matches (longest-prefix match on the writer's own file).
    pub fn lookup(&self, addr: std::net::Ipv4Addr) -> Option<Route> {
        let v = self.view();
        let val = v.value(u32::from(addr)).ok()?;
        if val == 0 {
            return None;
        }
        let hop = v.nexthop(value_nh(val)).ok()?;
        Some(hop.route(Prefix::truncating(addr, value_depth(val))))
    }
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
        let img = build(&routes).map_err(|TooManyValues| too_many_values())?;
        drop(routes);
        let old = file::open_current(path, TableKind::Route);
        let generation = old.as_ref().map_or(1, |(_, m)| {
            m.header().generation.load(Relaxed).wrapping_add(1)
        });
        let spec = Spec {
            access,
            nh_cap: nh_cap_for(img.nexthops.len()),
            lpm_max: heap_max_for(limit, img.lpm.len()),
            blk_max: heap_max_for(limit, img.blk.len()),
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
                    keys.push(r.dst);
                }
                Planned::Del(k) => keys.push(*k),
                Planned::Flush => {}
            }
        }
        if new_hops.len() > self.nhs.room() {
            // The next-hop region is full: a new generation with a larger one.
            let cap = nh_cap_for(self.nhs.len() + new_hops.len());
            if cap <= self.reg.nh_cap {
                return Err(ShmError::Layout {
                    what: "distinct next hops".into(),
                    limit: MAX_NEXTHOPS as u64 - 1,
                });
            }
            let routes = self.entries();
            self.rebuild(&routes, cap, self.reg.lpm_max, self.reg.blk_max)?;
        }
        // Each new range of a chunk may need a new value; well within the table, or refuse.
        if self.values.room() < 2 * keys.len() {
            return Err(too_many_values());
        }
        self.ensure_need(&keys)
    }

    fn upsert(&mut self, rec: &Route, seq: u64) -> Result<(), ShmError> {
        self.settle(false);
        let (addr, len) = (rec.dst.addr_u32(), rec.dst.len());
        self.ensure_need(&[rec.dst])?;
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
                return Err(ShmError::Layout {
                    what: "distinct next hops".into(),
                    limit: self.reg.nh_cap as u64 - 1,
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
        if self.ensure_need(&[*key]).is_err() {
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
        // Nothing is reachable any more: after the epoch, every line, record and value is free.
        self.advance_epoch();
        self.lpm.reset();
        self.blk.reset();
        self.nhs.reset();
        self.values.reset();
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
        let v = self.view();
        for (top, heap) in [(v.top_lpm, v.lpm), (v.top_blk, v.blk)] {
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
        self.rebuild(&routes, 0, 0, 0)
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
        let reg = &self.reg;
        (reg.lpm + self.lpm.cap as usize * 64 + self.blk.cap as usize * 64) as u64
    }

    fn remove_file(self) -> std::io::Result<()> {
        let RouteWriter {
            path,
            dev_ino,
            map,
            file,
            ..
        } = self;
        drop(map);
        drop(file);
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
            .field("lpm_lines", &self.lpm.cap)
            .field("blk_lines", &self.blk.cap)
            .finish()
    }
}
