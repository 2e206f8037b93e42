//! The writer's bookkeeping of the heap: which lines are free, which wait for the next epoch
//! before they may be reused, and how far the file backs the heap. Nothing of it is in shared
//! memory: a reader never needs it.

use std::collections::{BTreeMap, BTreeSet};

pub(super) struct Heap {
    /// First line never handed out (line 0 is never used: a word naming line 0 means "none").
    pub next: u32,
    /// Lines the file backs.
    pub cap: u32,
    /// Lines the readers' mappings hold: the file never grows past them.
    pub max: u32,
    /// Free runs by first line: first line → length. Adjacent runs are always merged, so that
    /// the copies a block leaves behind as it grows come back as one run long enough for the
    /// next, larger copy.
    runs: BTreeMap<u32, u32>,
    /// The same runs by (length, first line), for the best fit.
    by_len: BTreeSet<(u32, u32)>,
    /// Freed since the last epoch: reusable only after the next one.
    pending: Vec<(u32, u32)>,
    pending_lines: u64,
    /// Lines in `runs`.
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
            runs: BTreeMap::new(),
            by_len: BTreeSet::new(),
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

    /// The free run of `n` lines, else the smallest longer one (the lowest first line among
    /// equals): (first line, its length).
    fn take_run(&mut self, n: u32) -> Option<(u32, u32)> {
        let &(len, line) = self.by_len.range((n, 0)..).next()?;
        self.remove_run(line, len);
        Some((line, len))
    }

    fn insert_run(&mut self, line: u32, n: u32) {
        self.runs.insert(line, n);
        self.by_len.insert((n, line));
        self.free_lines += u64::from(n);
    }

    fn remove_run(&mut self, line: u32, n: u32) {
        self.runs.remove(&line);
        self.by_len.remove(&(n, line));
        self.free_lines -= u64::from(n);
    }

    /// Makes `n` lines from `line` free, merged with the free runs just before and after it.
    fn put_free(&mut self, mut line: u32, mut n: u32) {
        if let Some((&before, &len)) = self.runs.range(..line).next_back() {
            debug_assert!(before + len <= line, "a run freed twice");
            if before + len == line {
                self.remove_run(before, len);
                line = before;
                n += len;
            }
        }
        if let Some(&len) = self.runs.get(&(line + n)) {
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
        self.runs.clear();
        self.by_len.clear();
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
}
