//! Room in the route file: the epoch that makes freed memory reusable, the lines a batch of
//! changes reserves before it is committed (so that writing it cannot fail for want of space),
//! and growing the heaps.
//!
//! A batch's reservation is made of real runs of lines, one for each chunk and entry block the
//! batch will write (`batch`): the writes take their lines from it (best fit), which always
//! succeeds, and what is left goes back to the heap. Changes that add routes also keep
//! [`SLACK`] lines of each heap free, so that on a full file system deletes still find the few
//! lines their copies need.

use std::path::Path;
use std::time::{Duration, Instant};

use super::super::layout::MAX_HEAP_LINES;
use super::RouteWriter;
use crate::shm::file;
use crate::shm::record::{ShmError, TableKind};
use crate::shm::sync::{fence, Ordering::Relaxed, Ordering::Release};

/// How often at most the writer moves the epoch on (readers that straddle it read again).
const EPOCH_EVERY: Duration = Duration::from_millis(1);
/// Freed lines past which the writer moves the epoch on at once.
const EPOCH_AFTER_LINES: u64 = 1 << 14;
/// Lines of each heap that changes adding routes leave free for deletes.
pub(super) const SLACK: u32 = 64;
/// Fresh heap lines a new file keeps beyond what it holds, and the least a heap grows by, when
/// the file system has the room.
pub(super) const MIN_HEADROOM: u32 = 256;

/// Which heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Which {
    Lpm,
    Blk,
}

/// Reserved runs up to this many lines are kept by length; longer ones in a list.
const RUN_CLASSES: usize = 65;

/// Lines reserved for a batch, not yet used: runs taken from freed ones, each as long as the
/// write it was taken for, and one run of fresh lines for all the other writes.
#[derive(Debug, Default)]
pub(super) struct Reserved {
    /// `by_len[n]`: the first lines of the reserved runs of `n` lines (`n < RUN_CLASSES`).
    by_len: Vec<Vec<u32>>,
    /// Longer runs: (length, first line).
    long: Vec<(u32, u32)>,
    /// (first line, length).
    fresh: (u32, u32),
    lines: u64,
}

impl Reserved {
    /// Lines reserved and not used yet.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    fn push(&mut self, line: u32, n: u32) {
        self.put(line, n);
        self.lines += u64::from(n);
    }

    fn put(&mut self, line: u32, n: u32) {
        let k = n as usize;
        if k < RUN_CLASSES {
            if self.by_len.len() <= k {
                self.by_len.resize_with(k + 1, Vec::new);
            }
            self.by_len[k].push(line);
        } else {
            self.long.push((n, line));
        }
    }

    /// A run of exactly `n` lines.
    fn exact(&mut self, n: u32) -> Option<u32> {
        let k = n as usize;
        if k < RUN_CLASSES {
            return self.by_len.get_mut(k)?.pop();
        }
        let i = self.long.iter().position(|&(len, _)| len == n)?;
        Some(self.long.swap_remove(i).1)
    }

    /// The shortest run longer than `n` lines: (length, first line).
    fn longer(&mut self, n: u32) -> Option<(u32, u32)> {
        let from = n as usize + 1;
        if let Some(k) = (from..self.by_len.len()).find(|&k| !self.by_len[k].is_empty()) {
            let line = self.by_len[k].pop().expect("not empty");
            return Some((k as u32, line));
        }
        let (i, _) = self
            .long
            .iter()
            .enumerate()
            .filter(|(_, &(len, _))| len > n)
            .min_by_key(|(_, &(len, _))| len)?;
        Some(self.long.swap_remove(i))
    }

    fn set_fresh(&mut self, line: u32, n: u32) {
        debug_assert_eq!(self.fresh.1, 0);
        self.fresh = (line, n);
        self.lines += u64::from(n);
    }

    /// `n` lines: a run of exactly that length, else from the fresh run, else from the
    /// shortest longer run (whose rest stays reserved). Each write takes what was reserved for
    /// one of its length, so the first two always serve.
    fn take(&mut self, n: u32) -> Option<u32> {
        let line = if let Some(line) = self.exact(n) {
            line
        } else if self.fresh.1 >= n {
            let line = self.fresh.0;
            self.fresh = (line + n, self.fresh.1 - n);
            line
        } else {
            let (len, line) = self.longer(n)?;
            if len > n {
                self.put(line + n, len - n);
            }
            line
        };
        self.lines -= u64::from(n);
        Some(line)
    }

    /// Every run, emptying the reservation.
    fn drain(&mut self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.lines = 0;
        let fresh = std::mem::take(&mut self.fresh);
        let short = self
            .by_len
            .iter_mut()
            .enumerate()
            .flat_map(|(n, lines)| lines.drain(..).map(move |line| (line, n as u32)));
        short
            .chain(self.long.drain(..).map(|(n, line)| (line, n)))
            .chain((fresh.1 > 0).then_some(fresh))
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

    /// Reserves the runs `lpm` and `blk` of the two heaps, keeping `slack` lines of each
    /// spare: freed lines first, then fresh ones, growing the file. If growing published a new
    /// generation, nothing is reserved and the caller plans again; on `Err` nothing is
    /// reserved.
    pub(super) fn reserve_lines(
        &mut self,
        lpm: &[u32],
        blk: &[u32],
        slack: u32,
    ) -> Result<(), ShmError> {
        self.unreserve();
        let generation = self.generation;
        let r = self.reserve_runs(Which::Lpm, lpm, slack).and_then(|()| {
            if self.generation == generation {
                self.reserve_runs(Which::Blk, blk, slack)
            } else {
                Ok(())
            }
        });
        if r.is_err() || self.generation != generation {
            self.unreserve();
        }
        r
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
            if fresh_lines > 0 {
                let n = fresh_lines as u32;
                let line = self
                    .heap_mut(which)
                    .alloc_fresh(n)
                    .expect("room was made for it");
                self.reserved_mut(which).set_fresh(line, n);
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
            let groups = self.groups;
            return self.rebuild(&routes, values_cap, nh_cap, lpm_max, blk_max, groups);
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
