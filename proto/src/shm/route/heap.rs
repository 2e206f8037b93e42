//! The writer's bookkeeping of the heap: which lines are free, which wait for the next epoch
//! before they may be reused, and how far the file backs the heap. Nothing of it is in shared
//! memory: a reader never needs it.

use std::collections::BTreeMap;

/// Free runs kept in size classes up to this many lines; longer ones by exact size.
const CLASSES: usize = 65;

pub(super) struct Heap {
    /// First line never handed out (line 0 is never used: a word naming line 0 means "none").
    pub next: u32,
    /// Lines the file backs.
    pub cap: u32,
    /// Lines the readers' mappings hold: the file never grows past them.
    pub max: u32,
    free: Vec<Vec<u32>>,
    /// Bit `c` set: `free[c]` is not empty.
    nonempty: u128,
    big: BTreeMap<u32, Vec<u32>>,
    /// Freed since the last epoch: reusable only after the next one.
    pending: Vec<(u32, u32)>,
    pending_lines: u64,
    /// Lines in `free` and `big`.
    free_lines: u64,
    /// Lines that became free since the free runs were last merged.
    freed_since_merge: u64,
    /// Lines handed out and not freed.
    pub in_use: u64,
}

impl Heap {
    pub fn new(next: u32, cap: u32, max: u32) -> Heap {
        Heap {
            next: next.max(1),
            cap,
            max,
            free: vec![Vec::new(); CLASSES],
            nonempty: 0,
            big: BTreeMap::new(),
            pending: Vec::new(),
            pending_lines: 0,
            free_lines: 0,
            freed_since_merge: 0,
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
    /// rest stays free. If none is long enough though enough lines are free, and lines were
    /// freed since the last merge, the free runs that touch are merged first (see
    /// [`Heap::merge_runs`]).
    pub fn alloc_reused(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n > 0);
        let (line, run) = match self.take_run(n) {
            Some(r) => r,
            None if self.free_lines >= u64::from(n)
                && self.freed_since_merge >= (self.free_lines / 2).max(u64::from(n)) =>
            {
                self.merge_runs();
                self.take_run(n)?
            }
            None => return None,
        };
        if run > n {
            self.put_free(line + n, run - n);
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

    /// Merges the free runs that touch into one. A chunk or entry block that grows with each
    /// change is copied each time, and its old copies, each a line shorter than the next, never
    /// fit a later copy alone: merged, they do. Done only when a run was wanted that no free
    /// run holds and at least half as many lines as are free became free since the last merge,
    /// so that its cost (a sort of the free runs) is spread over as many lines. (Merging also
    /// before each growth of the file cost `rtm-bench`'s inserts 18-36 %: a heap filling up
    /// grows many times, each time with many free runs to sort.)
    fn merge_runs(&mut self) {
        let mut runs: Vec<(u32, u32)> = Vec::with_capacity(64);
        for (n, lines) in self.free.iter_mut().enumerate() {
            runs.extend(lines.drain(..).map(|line| (line, n as u32)));
        }
        for (n, lines) in std::mem::take(&mut self.big) {
            runs.extend(lines.into_iter().map(|line| (line, n)));
        }
        self.nonempty = 0;
        self.free_lines = 0;
        self.freed_since_merge = 0;
        runs.sort_unstable();
        let mut at = 0;
        while at < runs.len() {
            let (line, mut n) = runs[at];
            at += 1;
            while at < runs.len() && runs[at].0 == line + n {
                n += runs[at].1;
                at += 1;
            }
            self.put_free(line, n);
        }
    }

    /// The free run of `n` lines, else the smallest longer one: (first line, its length).
    fn take_run(&mut self, n: u32) -> Option<(u32, u32)> {
        if self.free_lines == 0 {
            return None;
        }
        let n_us = n as usize;
        if n_us < CLASSES {
            let classes = self.nonempty & (u128::MAX << n_us);
            if classes != 0 {
                let size = classes.trailing_zeros() as usize;
                let line = self.free[size].pop()?;
                if self.free[size].is_empty() {
                    self.nonempty &= !(1u128 << size);
                }
                self.free_lines -= size as u64;
                return Some((line, size as u32));
            }
        }
        let (&size, runs) = self.big.range_mut(n.max(CLASSES as u32)..).next()?;
        let line = runs.pop()?;
        if runs.is_empty() {
            self.big.remove(&size);
        }
        self.free_lines -= u64::from(size);
        Some((line, size))
    }

    fn put_free(&mut self, line: u32, n: u32) {
        self.free_lines += u64::from(n);
        if (n as usize) < CLASSES {
            self.free[n as usize].push(line);
            self.nonempty |= 1u128 << n;
        } else {
            self.big.entry(n).or_default().push(line);
        }
    }

    /// Gives back `n` lines from `line` that were handed out but never written or published
    /// (what is left of a reservation): free at once, no reader can have seen them.
    pub fn unreserve(&mut self, line: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.put_free(line, n);
        self.freed_since_merge += u64::from(n);
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
        self.freed_since_merge += self.pending_lines;
        self.pending_lines = 0;
    }

    /// Everything is free again (a flush, after the epoch moved on).
    pub fn reset(&mut self) {
        self.next = 1;
        self.free.iter_mut().for_each(Vec::clear);
        self.nonempty = 0;
        self.big.clear();
        self.pending.clear();
        self.pending_lines = 0;
        self.free_lines = 0;
        self.freed_since_merge = 0;
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

    impl Heap {
        /// Every free run: (first line, length).
        fn runs(&self) -> Vec<(u32, u32)> {
            let small = self.free.iter().enumerate();
            let small = small.flat_map(|(n, ls)| ls.iter().map(move |&l| (l, n as u32)));
            let big = self
                .big
                .iter()
                .flat_map(|(&n, ls)| ls.iter().map(move |&l| (l, n)));
            small.chain(big).collect()
        }
    }

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
    /// in use: nothing is handed out twice, free runs hold only free lines and never overlap,
    /// and after a merge no two of them touch.
    #[test]
    fn random_use_keeps_runs_disjoint_and_merges_them() {
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
                let merge = rng.random_bool(0.05);
                if merge {
                    h.merge_runs();
                }
                let mut runs = h.runs();
                runs.sort_unstable();
                for w in runs.windows(2) {
                    assert!(w[0].0 + w[0].1 <= w[1].0, "runs {w:?} overlap");
                    assert!(
                        !merge || w[0].0 + w[0].1 < w[1].0,
                        "runs {w:?} touch after a merge"
                    );
                }
                let mut free = 0u64;
                for &(l, n) in &runs {
                    assert!(l + n <= h.next);
                    assert!(used[l as usize..(l + n) as usize].iter().all(|u| !u));
                    free += u64::from(n);
                }
                assert_eq!(free, h.free_lines);
                let in_use = used.iter().filter(|&&u| u).count() as u64;
                let pending: u64 = pending.iter().map(|&(_, n)| u64::from(n)).sum();
                assert_eq!(
                    h.in_use + pending,
                    in_use,
                    "lines in use or waiting for the epoch"
                );
                assert_eq!(
                    h.in_use + h.free_lines + h.pending_lines(),
                    u64::from(h.next) - 1
                );
            }
        }
    }
}
