//! Reuse of indices (tbl8 groups, next-hop slots) that readers may still be looking at.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a freed index stays unused (unless no other is left). Readers re-check what they
/// found anyway; the grace period makes a reader that was descheduled inside a freed group or
/// next-hop slot very unlikely to see it refilled at all.
pub(crate) const GRACE: Duration = Duration::from_millis(100);

/// Hands out the indices `0..count`: fresh ones first, then freed ones once they have been
/// quarantined for [`GRACE`].
#[derive(Debug)]
pub(crate) struct Recycler {
    count: usize,
    /// Indices `next_fresh..count` have never been used in this file.
    next_fresh: usize,
    /// Freed indices, oldest first, with the time they were freed.
    quarantine: VecDeque<(u32, Instant)>,
}

impl Recycler {
    pub(crate) fn new(count: usize) -> Recycler {
        Recycler {
            count,
            next_fresh: 0,
            quarantine: VecDeque::new(),
        }
    }

    /// Whether [`Recycler::alloc`] would succeed.
    pub(crate) fn can_alloc(&self) -> bool {
        self.next_fresh < self.count || !self.quarantine.is_empty()
    }

    /// An index to fill: an old enough quarantined one, else a fresh one, else the oldest
    /// quarantined one. The bool says whether it was used before.
    pub(crate) fn alloc(&mut self) -> Option<(usize, bool)> {
        if let Some(&(i, t)) = self.quarantine.front() {
            if t.elapsed() >= GRACE || self.next_fresh == self.count {
                self.quarantine.pop_front();
                return Some((i as usize, true));
            }
        }
        if self.next_fresh < self.count {
            self.next_fresh += 1;
            return Some((self.next_fresh - 1, false));
        }
        None
    }

    /// How many indices were handed out so far: every index ever in use is below this.
    #[cfg(not(loom))] // only next-hop slots ask, and the loom model has none
    pub(crate) fn issued(&self) -> usize {
        self.next_fresh
    }

    /// Puts `i` in quarantine; call once nothing a new reader can find points at it.
    pub(crate) fn free(&mut self, i: usize) {
        self.quarantine.push_back((i as u32, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_first_then_oldest_freed() {
        let mut r = Recycler::new(2);
        assert_eq!(r.alloc(), Some((0, false)));
        r.free(0);
        // Inside the grace period a fresh index is preferred...
        assert_eq!(r.alloc(), Some((1, false)));
        // ...and with none left the quarantined one is taken anyway.
        assert_eq!(r.alloc(), Some((0, true)));
        assert!(!r.can_alloc());
        assert_eq!(r.alloc(), None);
        r.free(1);
        assert!(r.can_alloc());
        assert_eq!(r.alloc(), Some((1, true)));
    }
}
