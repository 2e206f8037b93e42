//! The writer's index of the value table: chunks name values by a 16-bit index; equal values
//! share an entry, found by the value; an entry no chunk range names any more is freed, and
//! reused only after the next epoch.

use std::collections::HashMap;

pub(super) struct Values {
    /// Entries the file's value table holds (entry 0 included).
    cap: usize,
    index: HashMap<u32, u16, foldhash::fast::RandomState>,
    /// Chunk ranges naming each entry.
    refs: Vec<u32>,
    value: Vec<u32>,
    free: Vec<u16>,
    pending: Vec<u16>,
    /// First entry never used (entry 0 is the value 0).
    next: u32,
}

impl Values {
    pub fn new(cap: usize) -> Values {
        Values {
            cap,
            index: HashMap::default(),
            refs: vec![0; cap],
            value: vec![0; cap],
            free: Vec::new(),
            pending: Vec::new(),
            next: 1,
        }
    }

    /// The index of `v` with one more range naming it, and whether it is new (the caller
    /// writes the table entry before anything names it); `None` if the table is full.
    pub fn acquire(&mut self, v: u32) -> Option<(u16, bool)> {
        if v == 0 {
            return Some((0, false));
        }
        if let Some(&i) = self.index.get(&v) {
            self.refs[usize::from(i)] += 1;
            return Some((i, false));
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None if (self.next as usize) < self.cap => {
                self.next += 1;
                (self.next - 1) as u16
            }
            None => return None,
        };
        self.index.insert(v, i);
        self.refs[usize::from(i)] = 1;
        self.value[usize::from(i)] = v;
        Some((i, true))
    }

    /// One range fewer names entry `i`; freed at zero.
    pub fn release(&mut self, i: u16) {
        if i == 0 {
            return;
        }
        let r = &mut self.refs[usize::from(i)];
        *r -= 1;
        if *r == 0 {
            self.index.remove(&self.value[usize::from(i)]);
            self.pending.push(i);
        }
    }

    /// The value of entry `i`.
    pub fn get(&self, i: u16) -> u32 {
        self.value[usize::from(i)]
    }

    /// New entries possible now.
    pub fn room(&self) -> usize {
        self.cap - self.next as usize + self.free.len()
    }

    /// Whether an entry holds `v` (0 is always there).
    pub fn contains(&self, v: u32) -> bool {
        v == 0 || self.index.contains_key(&v)
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn reclaim(&mut self) {
        self.free.append(&mut self.pending);
    }

    pub fn reset(&mut self) {
        self.index.clear();
        self.refs.iter_mut().for_each(|r| *r = 0);
        self.free.clear();
        self.pending.clear();
        self.next = 1;
    }

    /// Rebuilds the index of a freshly built file: entry `i` holds `v` for `refs` ranges.
    pub fn adopt(&mut self, i: u16, v: u32, refs: u32) {
        self.index.insert(v, i);
        self.refs[usize::from(i)] = refs;
        self.value[usize::from(i)] = v;
        self.next = self.next.max(u32::from(i) + 1);
    }
}
