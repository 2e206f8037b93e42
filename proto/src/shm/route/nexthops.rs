//! The writer's index of the next-hop records: routes with the same next hop share one record,
//! found by its fields; a record no route names any more is freed, and reused only after the
//! next epoch.

use std::collections::HashMap;

use super::view::NextHop;

pub(super) struct NextHops {
    index: HashMap<NextHop, u32, foldhash::fast::RandomState>,
    /// Routes naming each record.
    refs: Vec<u32>,
    free: Vec<u32>,
    pending: Vec<u32>,
    /// First record never used (record 0 is never used).
    next: u32,
    /// Records the file has room for.
    pub cap: u32,
}

/// What [`NextHops::acquire`] did.
pub(super) enum Acquired {
    /// An existing record gained a route.
    Shared(u32),
    /// A new record: the caller writes its fields before anything names it.
    New(u32),
}

impl NextHops {
    pub fn new(cap: u32) -> NextHops {
        NextHops {
            index: HashMap::default(),
            refs: vec![0; cap as usize],
            free: Vec::new(),
            pending: Vec::new(),
            next: 1,
            cap,
        }
    }

    /// The record of `nh` with one more route naming it; `None` if it is new and there is no
    /// room.
    pub fn acquire(&mut self, nh: &NextHop) -> Option<Acquired> {
        if let Some(&i) = self.index.get(nh) {
            self.refs[i as usize] += 1;
            return Some(Acquired::Shared(i));
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.next < self.cap => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        self.index.insert(*nh, i);
        self.refs[i as usize] = 1;
        Some(Acquired::New(i))
    }

    /// One route fewer names record `i` of `nh`; freed at zero.
    pub fn release(&mut self, i: u32, nh: &NextHop) {
        let r = &mut self.refs[i as usize];
        *r -= 1;
        if *r == 0 {
            self.index.remove(nh);
            self.pending.push(i);
        }
    }

    /// The record of `nh`, if it has one.
    pub fn index_of(&self, nh: &NextHop) -> Option<u32> {
        self.index.get(nh).copied()
    }

    /// New records possible now.
    pub fn room(&self) -> usize {
        (self.cap - self.next) as usize + self.free.len()
    }

    /// Records in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether records wait for the next epoch.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn reclaim(&mut self) {
        self.free.append(&mut self.pending);
    }

    /// No route names any record (a flush, after the epoch moved on).
    pub fn reset(&mut self) {
        self.index.clear();
        self.refs.iter_mut().for_each(|r| *r = 0);
        self.free.clear();
        self.pending.clear();
        self.next = 1;
    }

    /// Rebuilds the index of a freshly built file: record `i` holds `nh` for `refs` routes.
    pub fn adopt(&mut self, i: u32, nh: NextHop, refs: u32) {
        self.index.insert(nh, i);
        self.refs[i as usize] = refs;
        self.next = self.next.max(i + 1);
    }
}
