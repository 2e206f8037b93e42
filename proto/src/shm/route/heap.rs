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
    big: BTreeMap<u32, Vec<u32>>,
    /// Freed since the last epoch: reusable only after the next one.
    pending: Vec<(u32, u32)>,
    pending_lines: u64,
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
            big: BTreeMap::new(),
            pending: Vec::new(),
            pending_lines: 0,
            in_use: u64::from(next.max(1) - 1),
        }
    }

    /// `n` consecutive lines: a freed run of that size if there is one, else fresh ones. `None`
    /// if the file does not back enough (the caller reserves room first).
    pub fn alloc(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n > 0);
        let reused = if (n as usize) < CLASSES {
            self.free[n as usize].pop()
        } else {
            let r = self.big.get_mut(&n).and_then(Vec::pop);
            if self.big.get(&n).is_some_and(Vec::is_empty) {
                self.big.remove(&n);
            }
            r
        };
        let line = match reused {
            Some(l) => l,
            None if self.room() >= u64::from(n) => {
                let l = self.next;
                self.next += n;
                l
            }
            None => return None,
        };
        self.in_use += u64::from(n);
        Some(line)
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
        for (line, n) in self.pending.drain(..) {
            if (n as usize) < CLASSES {
                self.free[n as usize].push(line);
            } else {
                self.big.entry(n).or_default().push(line);
            }
        }
        self.pending_lines = 0;
    }

    /// Everything is free again (a flush, after the epoch moved on).
    pub fn reset(&mut self) {
        self.next = 1;
        self.free.iter_mut().for_each(Vec::clear);
        self.big.clear();
        self.pending.clear();
        self.pending_lines = 0;
        self.in_use = 0;
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
}
