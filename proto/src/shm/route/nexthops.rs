//! The writer's index of the next-hop records: routes with the same next hop share one record,
//! and multipath routes with the same next hops (and weights and metric) share one group, found
//! by their contents; a record or group no route names any more is freed, and reused only
//! after the next epoch.
//!
//! A group takes a run of consecutive records (its head, then its member records) and holds one
//! reference on the record of each member next hop (a record of metric 0, shared with the
//! routes through that next hop alone).

use std::collections::HashMap;
use std::sync::Arc;

use super::view::{group_records, NextHop};
use crate::types::{Hop, Route};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A multipath route's next hops as one shared object: its metric and members, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub metric: u32,
    pub hops: Vec<Hop>,
}

impl GroupKey {
    /// The record of member `h` (a next hop without metric: the group has the metric).
    pub fn member(h: &Hop) -> NextHop {
        NextHop {
            via: h.via,
            dev: h.dev,
            metric: 0,
        }
    }
}

/// What a route's record holds: what routes share a record by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RecKey {
    Hop(NextHop),
    Group(Arc<GroupKey>),
}

impl RecKey {
    #[inline]
    pub fn of(r: &Route) -> RecKey {
        if r.is_multipath() {
            RecKey::Group(Arc::new(GroupKey {
                metric: r.metric,
                hops: r.nexthops.clone(),
            }))
        } else {
            RecKey::Hop(NextHop::of(r))
        }
    }

    /// Whether `r` names this record: its next hop, or its metric and paths.
    #[inline]
    pub fn is(&self, r: &Route) -> bool {
        match self {
            RecKey::Hop(h) => !r.is_multipath() && *h == NextHop::of(r),
            RecKey::Group(g) => r.is_multipath() && g.metric == r.metric && g.hops == r.nexthops,
        }
    }

    /// Consecutive records it takes.
    pub fn records(&self) -> u32 {
        match self {
            RecKey::Hop(_) => 1,
            RecKey::Group(g) => group_records(g.hops.len()) as u32,
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self, RecKey::Group(_))
    }
}

pub(super) struct NextHops {
    index: FastMap<RecKey, u32>,
    /// The contents of each group's head record (a next hop's record is read from the file).
    groups: FastMap<u32, Arc<GroupKey>>,
    /// Routes (and groups) naming each record.
    refs: Vec<u32>,
    free: Vec<u32>,
    /// Freed runs of records by length (groups), to be reused by groups of the same length.
    free_runs: FastMap<u32, Vec<u32>>,
    /// Freed records and runs (first, length) waiting for the next epoch.
    pending: Vec<(u32, u32)>,
    /// First record never used (record 0 is never used).
    next: u32,
    /// Records the file has room for.
    pub cap: u32,
    /// Records taken by keys in use.
    used: usize,
}

/// What [`NextHops::acquire`] did.
pub(super) enum Acquired {
    /// An existing record gained a route.
    Shared(u32),
    /// A new record (or run, for a group): the caller writes it before anything names it.
    New(u32),
}

impl NextHops {
    pub fn new(cap: u32) -> NextHops {
        NextHops {
            index: FastMap::default(),
            groups: FastMap::default(),
            refs: vec![0; cap as usize],
            free: Vec::new(),
            free_runs: FastMap::default(),
            pending: Vec::new(),
            next: 1,
            cap,
            used: 0,
        }
    }

    /// The record of `key` with one more route naming it; `None` if it is new and there is no
    /// room. A new group's members must be acquired by the caller.
    pub fn acquire(&mut self, key: &RecKey) -> Option<Acquired> {
        if let Some(&i) = self.index.get(key) {
            self.refs[i as usize] += 1;
            return Some(Acquired::Shared(i));
        }
        let len = key.records();
        let i = if len == 1 {
            match self.free.pop() {
                Some(i) => i,
                None => self.bump(1)?,
            }
        } else {
            match self.free_runs.get_mut(&len).and_then(Vec::pop) {
                Some(i) => i,
                None => self.bump(len)?,
            }
        };
        self.index.insert(key.clone(), i);
        if let RecKey::Group(g) = key {
            self.groups.insert(i, g.clone());
        }
        self.refs[i as usize] = 1;
        self.used += len as usize;
        Some(Acquired::New(i))
    }

    fn bump(&mut self, len: u32) -> Option<u32> {
        (self.cap - self.next >= len).then(|| {
            self.next += len;
            self.next - len
        })
    }

    /// One route fewer names record `i` of `key`; whether that freed it (a group's caller then
    /// releases its members).
    pub fn release(&mut self, i: u32, key: &RecKey) -> bool {
        let r = &mut self.refs[i as usize];
        *r -= 1;
        if *r != 0 {
            return false;
        }
        self.index.remove(key);
        self.groups.remove(&i);
        self.used -= key.records() as usize;
        self.pending.push((i, key.records()));
        true
    }

    /// The record of `key`, if it has one.
    pub fn index_of(&self, key: &RecKey) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// The group whose head is record `i`, if it is one.
    pub fn group_at(&self, i: u32) -> Option<&Arc<GroupKey>> {
        self.groups.get(&i)
    }

    /// Whether `singles` new records and new groups taking `runs` records each fit now, as
    /// [`NextHops::acquire`] would place them: singles in freed records, each group in a freed
    /// run of its length, the rest at the tail.
    pub fn fits(&self, singles: usize, runs: &[u32]) -> bool {
        let tail = (self.cap - self.next) as usize;
        let mut from_tail = singles.saturating_sub(self.free.len());
        let mut reused: FastMap<u32, usize> = FastMap::default();
        for &len in runs {
            let n = reused.entry(len).or_default();
            if *n < self.free_runs.get(&len).map_or(0, Vec::len) {
                *n += 1;
            } else {
                from_tail += len as usize;
            }
        }
        from_tail <= tail
    }

    /// Records in use (by keys in use; a group counts all its records).
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether records wait for the next epoch.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn reclaim(&mut self) {
        for (i, len) in self.pending.drain(..) {
            if len == 1 {
                self.free.push(i);
            } else {
                self.free_runs.entry(len).or_default().push(i);
            }
        }
    }

    /// No route names any record (a flush, after the epoch moved on).
    pub fn reset(&mut self) {
        self.index.clear();
        self.groups.clear();
        self.refs.iter_mut().for_each(|r| *r = 0);
        self.free.clear();
        self.free_runs.clear();
        self.pending.clear();
        self.next = 1;
        self.used = 0;
    }

    /// Rebuilds the index of a freshly built file: record `i` holds `key` for `refs` routes
    /// (and groups).
    pub fn adopt(&mut self, i: u32, key: RecKey, refs: u32) {
        let len = key.records();
        if let RecKey::Group(g) = &key {
            self.groups.insert(i, g.clone());
        }
        self.index.insert(key, i);
        self.refs[i as usize] = refs;
        self.used += len as usize;
        self.next = self.next.max(i + len);
    }
}
