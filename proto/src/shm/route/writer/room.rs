//! Room in the route file: the epoch that makes freed memory reusable, the lines a batch of
//! changes reserves before it is committed (so that writing it cannot fail for want of space),
//! and growing the heaps.
//!
//! A batch's reservation is made of real runs of lines, taken out of the heap in the order the
//! changes will ask for them and each as long as the longest the change can need: the changes
//! then take their lines from it (best fit), which always succeeds, and what is left goes back
//! to the heap. Changes that add routes also keep [`SLACK`] lines of each heap free, so that on
//! a full file system deletes still find the few lines their copies need.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use super::super::chunk::{self, is_len, loses_to, Ranges};
use super::super::layout::{
    block_lines, slot_of, value, MAX_HEAP_LINES, MAX_NEXTHOPS, PAGE_LINES, PAGE_SLOTS,
};
use super::super::view::NextHop;
use super::{tier2_spans, RouteWriter};
use crate::shm::file;
use crate::shm::record::{ShmError, TableKind};
use crate::shm::sync::{fence, AtomicU32, Ordering::Relaxed, Ordering::Release};
use crate::types::Prefix;

/// How often at most the writer moves the epoch on (readers that straddle it read again).
const EPOCH_EVERY: Duration = Duration::from_millis(1);
/// Freed lines past which the writer moves the epoch on at once.
const EPOCH_AFTER_LINES: u64 = 1 << 14;
/// Lines of each heap that changes adding routes leave free for deletes.
pub(super) const SLACK: u32 = 64;
/// Fresh heap lines a new file keeps beyond what it holds, and the least a heap grows by, when
/// the file system has the room.
pub(super) const MIN_HEADROOM: u32 = 256;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Which heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Which {
    Lpm,
    Blk,
}

/// A planned change of one prefix, for the room it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Add or update the route, through this next hop.
    Put(NextHop),
    Del,
}

/// Runs of lines reserved for a batch, not yet used, by length.
#[derive(Debug, Default)]
pub(super) struct Reserved {
    runs: BTreeMap<u32, Vec<u32>>,
    lines: u64,
}

impl Reserved {
    /// Lines reserved and not used yet.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    fn push(&mut self, line: u32, n: u32) {
        self.runs.entry(n).or_default().push(line);
        self.lines += u64::from(n);
    }

    /// `n` lines from the shortest reserved run that holds them; the rest of it stays reserved.
    fn take(&mut self, n: u32) -> Option<u32> {
        let (&len, lines) = self.runs.range_mut(n..).next()?;
        let line = lines.pop()?;
        if lines.is_empty() {
            self.runs.remove(&len);
        }
        self.lines -= u64::from(len);
        if len > n {
            self.push(line + n, len - n);
        }
        Some(line)
    }

    /// Every run, emptying the reservation.
    fn drain(&mut self) -> impl Iterator<Item = (u32, u32)> {
        self.lines = 0;
        std::mem::take(&mut self.runs)
            .into_iter()
            .flat_map(|(n, lines)| lines.into_iter().map(move |l| (l, n)))
    }
}

impl RouteWriter {
    /// Moves the epoch on so that what was freed before may be reused, if it is time.
    pub(super) fn settle(&mut self, now: bool) {
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
    pub(super) fn advance_epoch(&mut self) {
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

    /// Lines of each heap that `changes` need, as runs: the batch is played on a copy of the
    /// ranges of each slot it touches (next hops without a record yet get stand-in values of
    /// their own), so each change's chunk is counted at the size it will have, as is each
    /// block; a page for each page the batch opens. Every copy counts: the lines it replaces
    /// are reusable only after the epoch that follows the batch.
    pub(super) fn plan(&self, changes: &[(Prefix, Change)]) -> (Vec<u32>, Vec<u32>) {
        let v = self.view();
        let mut ranges: FastMap<usize, Ranges> = FastMap::default();
        let mut blocks: FastMap<usize, usize> = FastMap::default();
        // Values of the prefixes the batch changed so far (0: deleted).
        let mut now: FastMap<Prefix, u32> = FastMap::default();
        let mut stand_in: FastMap<NextHop, u32> = FastMap::default();
        let mut pages: HashSet<(Which, usize), foldhash::fast::RandomState> = HashSet::default();
        let (mut lpm, mut blk) = (Vec::new(), Vec::new());
        let mut page = |top: &[AtomicU32], which: Which, slot: usize, runs: &mut Vec<u32>| {
            let p = slot / PAGE_SLOTS;
            if top[p].load(Relaxed) == 0 && pages.insert((which, p)) {
                runs.push(PAGE_LINES as u32);
            }
        };
        let value_of = |now: &FastMap<Prefix, u32>, p: Prefix| -> u32 {
            match now.get(&p) {
                Some(&val) => val,
                None => match v.find(p.addr_u32(), p.len()) {
                    Ok(Some((nh, _, _))) => value(p.len(), nh),
                    _ => 0,
                },
            }
        };
        for &(dst, change) in changes {
            let (addr, len) = (dst.addr_u32(), dst.len());
            let old = value_of(&now, dst);
            let new = match change {
                Change::Put(hop) => {
                    let n = stand_in.len() as u32;
                    let nh = self.nhs.index_of(&hop).unwrap_or_else(|| {
                        *stand_in.entry(hop).or_insert(MAX_NEXTHOPS as u32 - 1 - n)
                    });
                    value(len, nh)
                }
                // What the covering route of the same tier answers there, as the batch left it.
                Change::Del if old == 0 => continue,
                Change::Del => (if len >= 17 { 17 } else { 0 }..len)
                    .rev()
                    .map(|l| value_of(&now, Prefix::truncating(addr.into(), l)))
                    .find(|&val| val != 0)
                    .unwrap_or(0),
            };
            if len >= 17 && old != new {
                let repaint = |x: u32| {
                    if old == 0 {
                        loses_to(len)(x)
                    } else {
                        is_len(len)(x)
                    }
                };
                for (t, lo, hi) in tier2_spans(addr, len) {
                    let r = ranges.entry(t).or_insert_with(|| self.slot_ranges(t).0);
                    let painted = chunk::paint(r, lo, hi, repaint, new);
                    if painted == *r {
                        continue;
                    }
                    if painted.len() > 1 {
                        lpm.push(chunk::shape(painted.len()).0 as u32);
                    }
                    if painted.len() > 1 || painted[0].1 != 0 {
                        page(v.top_lpm, Which::Lpm, t, &mut lpm);
                    }
                    *r = painted;
                }
            }
            let s = slot_of(addr);
            let count = blocks
                .entry(s)
                .or_insert_with(|| v.block(s).map_or(0, |(n, _)| n));
            match (change, old) {
                (Change::Del, _) => *count -= 1,
                (Change::Put(_), 0) => *count += 1,
                _ => {}
            }
            if *count > 0 {
                blk.push(block_lines(*count) as u32);
                page(v.top_blk, Which::Blk, s, &mut blk);
            }
            now.insert(dst, if change == Change::Del { 0 } else { new });
        }
        (lpm, blk)
    }

    /// Reserves the lines `changes` need (see [`RouteWriter::plan`]), keeping [`SLACK`] lines
    /// spare if any of them adds a route: freed lines first, then fresh ones, growing the file.
    /// On a refusal nothing stays reserved.
    pub(super) fn reserve_room(&mut self, changes: &[(Prefix, Change)]) -> Result<(), ShmError> {
        self.unreserve();
        self.reserved_changes = 0;
        let slack = if changes.iter().any(|&(_, c)| c != Change::Del) {
            SLACK
        } else {
            0
        };
        // Growing past the readers' mapping publishes a new generation, laid out differently:
        // plan again on it.
        for _ in 0..3 {
            let generation = self.generation;
            let (lpm, blk) = self.plan(changes);
            let r = self.reserve_runs(Which::Lpm, &lpm, slack).and_then(|()| {
                if self.generation == generation {
                    self.reserve_runs(Which::Blk, &blk, slack)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = r {
                self.unreserve();
                return Err(e);
            }
            if self.generation == generation {
                return Ok(());
            }
            self.unreserve();
        }
        Err(self.no_space())
    }

    /// Takes `runs` out of `which` heap into its reservation: freed runs first (moving the
    /// epoch on once if freed lines wait for it and are needed), then fresh lines, growing the
    /// file so that `slack` lines are left spare beyond them.
    fn reserve_runs(&mut self, which: Which, runs: &[u32], slack: u32) -> Result<(), ShmError> {
        let mut epoch_moved = false;
        loop {
            let mut fresh = Vec::new();
            for &n in runs {
                match self.heap_mut(which).alloc_reused(n) {
                    Some(line) => self.reserved_mut(which).push(line, n),
                    None => fresh.push(n),
                }
            }
            let fresh_lines: u64 = fresh.iter().map(|&n| u64::from(n)).sum();
            let heap = self.heap(which);
            let other_spare = heap.spare() - heap.room();
            let need = fresh_lines + u64::from(slack).saturating_sub(other_spare);
            if need > heap.room() && !epoch_moved && heap.pending_lines() > 0 {
                self.unreserve_heap(which);
                self.advance_epoch();
                epoch_moved = true;
                continue;
            }
            let generation = self.generation;
            self.ensure_room(which, need)?;
            if self.generation != generation {
                // A new file: the caller plans again.
                return Ok(());
            }
            for n in fresh {
                let line = self
                    .heap_mut(which)
                    .alloc_fresh(n)
                    .expect("room was made for it");
                self.reserved_mut(which).push(line, n);
            }
            return Ok(());
        }
    }

    /// Gives back what is left of the last batch's reservation.
    pub(super) fn unreserve(&mut self) {
        self.unreserve_heap(Which::Lpm);
        self.unreserve_heap(Which::Blk);
    }

    fn unreserve_heap(&mut self, which: Which) {
        let runs: Vec<_> = self.reserved_mut(which).drain().collect();
        for (line, n) in runs {
            self.heap_mut(which).unreserve(line, n);
        }
    }

    /// Makes sure `lines` fresh lines of `which` heap are backed by the file: grows it in
    /// place (by a quarter if the file system has room, else by what is asked), or republishes
    /// into a larger mapping if the readers' mappings are too small.
    pub(super) fn ensure_room(&mut self, which: Which, lines: u64) -> Result<(), ShmError> {
        let heap = self.heap(which);
        if heap.room() >= lines {
            return Ok(());
        }
        let want = u64::from(heap.next) + lines;
        if want > u64::from(heap.max) {
            // The readers' mappings cannot hold it: a new generation with a larger one.
            if want as usize > MAX_HEAP_LINES {
                return Err(ShmError::Layout {
                    what: "route file heap lines".into(),
                    limit: MAX_HEAP_LINES as u64,
                });
            }
            let grow = |max: usize| (want as usize).max(max * 2).min(MAX_HEAP_LINES);
            let (lpm_max, blk_max) = match which {
                Which::Lpm => (grow(self.reg.lpm_max), self.reg.blk_max),
                Which::Blk => (self.reg.lpm_max, grow(self.reg.blk_max)),
            };
            self.unreserve();
            let routes = self.all_routes();
            let (values_cap, nh_cap) = (self.reg.values_cap, self.reg.nh_cap);
            return self.rebuild(&routes, values_cap, nh_cap, lpm_max, blk_max);
        }
        let cap = u64::from(heap.cap);
        let roomy = want
            .max(cap + cap / 4)
            .max(cap + u64::from(MIN_HEADROOM))
            .min(u64::from(heap.max));
        match self.grow(which, cap, roomy) {
            Err(ShmError::NoSpace { .. }) if roomy > want => self.grow(which, cap, want),
            r => r,
        }
    }

    /// Backs `which` heap with the file up to `new_cap` lines (from `cap`).
    fn grow(&mut self, which: Which, cap: u64, new_cap: u64) -> Result<(), ShmError> {
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

    /// `n` lines of `which` heap: from the change's reservation, which holds them (else from
    /// the heap, growing it in place if it can: never a new generation in the middle of a
    /// change).
    pub(super) fn alloc(&mut self, which: Which, n: u32) -> Result<u32, ShmError> {
        if let Some(l) = self.reserved_mut(which).take(n) {
            return Ok(l);
        }
        if let Some(l) = self.heap_mut(which).alloc(n) {
            return Ok(l);
        }
        debug_assert!(false, "a change needed more than its reservation");
        let heap = self.heap(which);
        if u64::from(heap.next) + u64::from(n) > u64::from(heap.max) {
            return Err(self.no_space());
        }
        self.ensure_room(which, u64::from(n))?;
        self.heap_mut(which).alloc(n).ok_or_else(|| self.no_space())
    }

    pub(super) fn no_space(&self) -> ShmError {
        ShmError::NoSpace {
            dir: self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            table: "route",
        }
    }

    /// Writes `lines` from line `at` of `which` heap on.
    pub(super) fn write_lines(&self, which: Which, at: u32, lines: &[[u64; 8]]) {
        let heap = &self.lines_of(which)[at as usize..at as usize + lines.len()];
        for (line, words) in heap.iter().zip(lines) {
            for (w, &v) in line.iter().zip(words) {
                w.store(v, Relaxed);
            }
        }
    }
}
