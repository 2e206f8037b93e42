//! The writer's bookkeeping of the heap: which lines are free, which wait for the next epoch
//! before they may be reused, and how far the file backs the heap. Nothing of it is in shared
//! memory: a reader never needs it.

use std::collections::{BTreeMap, HashMap};

type Map = HashMap<u32, u32, foldhash::fast::RandomState>;

/// Free runs are listed in size classes up to this many lines; longer ones by exact size.
const CLASSES: usize = 65;

pub(super) struct Heap {
    /// First line never handed out (line 0 is never used: a word naming line 0 means "none").
    pub next: u32,
    /// Lines the file backs.
    pub cap: u32,
    /// Lines the readers' mappings hold: the file never grows past them.
    pub max: u32,
    /// The free runs, first line → length. Adjacent runs are always merged, so that the
    /// copies a block leaves behind as it grows come back as one run long enough for the next,
    /// larger copy.
    by_start: Map,
    /// The same runs, one past the last line → first line.
    by_end: Map,
    /// First lines of free runs by length (`free[n]`: runs of `n` lines). Only hints: a run
    /// merged away or taken leaves its line here, and [`Heap::take_run`] checks each against
    /// `by_start` and drops the stale.
    free: Vec<Vec<u32>>,
    /// Bit `c` set: `free[c]` is not empty.
    nonempty: u128,
    /// Longer runs' first lines by length, hints in the same way.
    big: BTreeMap<u32, Vec<u32>>,
    /// Hints in `free` and `big`, stale or not.
    hints: usize,
    /// Freed since the last epoch: reusable only after the next one.
    pending: Vec<(u32, u32)>,
    pending_lines: u64,
    /// Lines in free runs.
    free_lines: u64,
    /// Lines handed out and not freed.
    pub in_use: u64,
}

impl Heap {
    pub fn new(next: u32, cap: u32, max: u32) -> Heap {
        Heap {
            next: next.max(1),
            cap,
            max,
            by_start: Map::default(),
            by_end: Map::default(),
            free: vec![Vec::new(); CLASSES],
            nonempty: 0,
            big: BTreeMap::new(),
            hints: 0,
            pending: Vec::new(),
            pending_lines: 0,
            free_lines: 0,
            in_use: u64::from(next.max(1) - 1),
        }
    }

    /// `n` consecutive lines: freed ones if there are (a run of that size, else the smallest
    /// larger one, split), else fresh ones. `None` if the file does not back enough (the caller
    /// reserves room first).
    pub fn alloc(&mut self, n: u32) -> Option<u32> {
        self.alloc_reused(n).or_else(|| self.alloc_fresh(n))
    }

    /// `n` consecutive freed lines: a run of that size, else the smallest larger run, whose
    /// rest stays free.
    pub fn alloc_reused(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n > 0);
        let (line, run) = self.take_run(n)?;
        if run > n {
            self.insert_run(line + n, run - n);
        }
        self.in_use += u64::from(n);
        Some(line)
    }

    /// `n` consecutive lines never handed out, if the file backs them.
    pub fn alloc_fresh(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n > 0);
        if self.room() < u64::from(n) {
            return None;
        }
        let line = self.next;
        self.next += n;
        self.in_use += u64::from(n);
        Some(line)
    }

    /// Whether a hint names a free run of `len` lines now.
    fn live(&self, line: u32, len: u32) -> bool {
        self.by_start.get(&line) == Some(&len)
    }

    /// The free run of `n` lines, else the smallest longer one: (first line, its length),
    /// taken out of the free runs.
    fn take_run(&mut self, n: u32) -> Option<(u32, u32)> {
        if self.free_lines < u64::from(n) {
            return None;
        }
        let n_us = n as usize;
        if n_us < CLASSES {
            loop {
                let classes = self.nonempty & (u128::MAX << n_us);
                if classes == 0 {
                    break;
                }
                let size = classes.trailing_zeros() as usize;
                while let Some(line) = self.free[size].pop() {
                    self.hints -= 1;
                    if self.live(line, size as u32) {
                        if self.free[size].is_empty() {
                            self.nonempty &= !(1u128 << size);
                        }
                        self.remove_run(line, size as u32);
                        return Some((line, size as u32));
                    }
                }
                self.nonempty &= !(1u128 << size);
            }
        }
        loop {
            let (&size, lines) = self.big.range_mut(n.max(CLASSES as u32)..).next()?;
            let mut found = None;
            while let Some(line) = lines.pop() {
                self.hints -= 1;
                if self.by_start.get(&line) == Some(&size) {
                    found = Some(line);
                    break;
                }
            }
            if lines.is_empty() {
                self.big.remove(&size);
            }
            if let Some(line) = found {
                self.remove_run(line, size);
                return Some((line, size));
            }
        }
    }

    fn insert_run(&mut self, line: u32, n: u32) {
        self.by_start.insert(line, n);
        self.by_end.insert(line + n, line);
        self.free_lines += u64::from(n);
        if (n as usize) < CLASSES {
            self.free[n as usize].push(line);
            self.nonempty |= 1u128 << n;
        } else {
            self.big.entry(n).or_default().push(line);
        }
        self.hints += 1;
        if self.hints > 2 * self.by_start.len() + 4096 {
            self.rehint();
        }
    }

    fn remove_run(&mut self, line: u32, n: u32) {
        self.by_start.remove(&line);
        self.by_end.remove(&(line + n));
        self.free_lines -= u64::from(n);
    }

    /// Lists the free runs' hints afresh, dropping the stale ones.
    fn rehint(&mut self) {
        self.free.iter_mut().for_each(Vec::clear);
        self.nonempty = 0;
        self.big.clear();
        for (&line, &n) in &self.by_start {
            if (n as usize) < CLASSES {
                self.free[n as usize].push(line);
                self.nonempty |= 1u128 << n;
            } else {
                self.big.entry(n).or_default().push(line);
            }
        }
        self.hints = self.by_start.len();
    }

    /// Makes `n` lines from `line` free, merged with the free runs just before and after it.
    fn put_free(&mut self, mut line: u32, mut n: u32) {
        if let Some(before) = self.by_end.get(&line).copied() {
            let len = line - before;
            self.remove_run(before, len);
            line = before;
            n += len;
        }
        if let Some(len) = self.by_start.get(&(line + n)).copied() {
            self.remove_run(line + n, len);
            n += len;
        }
        self.insert_run(line, n);
    }

    /// Gives back `n` lines from `line` that were handed out but never written or published
    /// (what is left of a reservation): free at once, no reader can have seen them.
    pub fn unreserve(&mut self, line: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.put_free(line, n);
        self.in_use -= u64::from(n);
    }

    /// Frees `n` lines from `line`: reusable after the next epoch.
    pub fn release(&mut self, line: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.pending.push((line, n));
        self.pending_lines += u64::from(n);
        self.in_use -= u64::from(n);
    }

    /// Lines waiting for the next epoch.
    pub fn pending_lines(&self) -> u64 {
        self.pending_lines
    }

    /// After the epoch moved on: what was freed before it is reusable.
    pub fn reclaim(&mut self) {
        for (line, n) in std::mem::take(&mut self.pending) {
            self.put_free(line, n);
        }
        self.pending_lines = 0;
    }

    /// Everything is free again (a flush, after the epoch moved on).
    pub fn reset(&mut self) {
        self.next = 1;
        self.by_start.clear();
        self.by_end.clear();
        self.free.iter_mut().for_each(Vec::clear);
        self.nonempty = 0;
        self.big.clear();
        self.hints = 0;
        self.pending.clear();
        self.pending_lines = 0;
        self.free_lines = 0;
        self.in_use = 0;
    }

    /// Lines the file backs that are not in use: fresh, free, or free after the next epoch.
    pub fn spare(&self) -> u64 {
        self.room() + self.free_lines + self.pending_lines
    }

    /// Fresh lines the file backs beyond those handed out.
    pub fn room(&self) -> u64 {
        u64::from(self.cap.saturating_sub(self.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_lines_come_back_only_after_reclaim() {
        let mut h = Heap::new(1, 10, 100);
        let a = h.alloc(3).unwrap();
        assert_eq!(a, 1);
        h.release(a, 3);
        assert_eq!(h.alloc(3), Some(4), "not before the epoch");
        h.reclaim();
        assert_eq!(h.alloc(3), Some(1));
        assert_eq!(h.alloc(4), None, "only 3 fresh lines are left");
        assert_eq!(h.alloc(3), Some(7));
        assert_eq!(h.room(), 0);
    }

    #[test]
    fn a_longer_free_run_is_split_before_fresh_lines_are_used() {
        let mut h = Heap::new(1, 200, 400);
        let a = h.alloc(100).unwrap();
        h.release(a, 100);
        h.reclaim();
        assert_eq!(h.alloc(3), Some(1), "the freed run of 100 is split");
        assert_eq!(h.alloc(97), Some(4), "its rest");
        assert_eq!(h.alloc(2), Some(101), "then fresh lines");
        assert_eq!(h.in_use, 102);
        assert_eq!(h.spare(), 97);
        h.unreserve(101, 2);
        assert_eq!(h.spare(), 99);
        assert_eq!(h.alloc_reused(2), Some(101), "given back at once");
    }

    #[test]
    fn freed_neighbours_merge_into_one_run() {
        let mut h = Heap::new(1, 100, 100);
        let (a, b, c) = (
            h.alloc(10).unwrap(),
            h.alloc(10).unwrap(),
            h.alloc(10).unwrap(),
        );
        let d = h.alloc(5).unwrap();
        h.release(a, 10);
        h.release(c, 10);
        h.release(b, 10);
        h.reclaim();
        assert_eq!(h.alloc_reused(30), Some(a), "a, b and c are one run again");
        h.release(a, 30);
        h.reclaim();
        assert_eq!(h.alloc_reused(31), None, "d is still in use");
        h.release(d, 5);
        h.reclaim();
        assert_eq!(h.alloc_reused(35), Some(a));
        assert_eq!(
            (h.in_use, h.spare()),
            (35, 64),
            "line 0 is never handed out"
        );
    }

    /// Random allocations, frees, epochs and give-backs against a model of which lines are
    /// in use: nothing is handed out twice, every free line is in one run, and no two free
    /// runs touch (they would have been merged).
    #[test]
    fn random_use_keeps_runs_disjoint_and_merged() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut h = Heap::new(1, 4000, 4000);
            let mut used = vec![false; 4000];
            let mut live: Vec<(u32, u32)> = Vec::new();
            let mut pending: Vec<(u32, u32)> = Vec::new();
            for _ in 0..3000 {
                match rng.random_range(0..10) {
                    0..=4 => {
                        let n = if rng.random_bool(0.9) {
                            rng.random_range(1..8)
                        } else {
                            rng.random_range(60..120)
                        };
                        if let Some(l) = h.alloc(n) {
                            for i in l..l + n {
                                assert!(!used[i as usize], "line {i} handed out twice");
                                used[i as usize] = true;
                            }
                            live.push((l, n));
                        }
                    }
                    5..=7 if !live.is_empty() => {
                        let (l, n) = live.swap_remove(rng.random_range(0..live.len()));
                        if rng.random_bool(0.2) {
                            h.unreserve(l, n);
                            used[l as usize..(l + n) as usize].fill(false);
                        } else {
                            h.release(l, n);
                            pending.push((l, n));
                        }
                    }
                    _ => {
                        h.reclaim();
                        for (l, n) in pending.drain(..) {
                            used[l as usize..(l + n) as usize].fill(false);
                        }
                    }
                }
                let mut runs: Vec<(u32, u32)> = h.by_start.iter().map(|(&l, &n)| (l, n)).collect();
                runs.sort_unstable();
                let mut free = 0u64;
                for w in runs.windows(2) {
                    assert!(w[0].0 + w[0].1 < w[1].0, "runs {w:?} touch or overlap");
                }
                for &(l, n) in &runs {
                    assert!(l + n <= h.next);
                    assert!(used[l as usize..(l + n) as usize].iter().all(|u| !u));
                    assert_eq!(h.by_end.get(&(l + n)), Some(&l));
                    free += u64::from(n);
                }
                assert_eq!(free, h.free_lines);
                assert_eq!(h.by_end.len(), runs.len());
            }
        }
    }
}
