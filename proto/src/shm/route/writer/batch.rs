//! A batch of changes, planned when it is reserved and written when its last change arrives.
//!
//! The table actor reserves a request's changes, makes them durable, then hands them to the
//! writer one by one; readers hear of them only once all of them are written. So the writer
//! plays the batch on a copy of the slots it touches when it is reserved — every chunk and
//! every entry block as the batch leaves it — reserves exactly the lines those final images
//! take (freed runs first), and writes each touched chunk and block once, when the last change
//! arrives: one copy per slot and batch instead of one per change, and nothing left to fail for
//! want of space.
//!
//! A batch that holds a flush is written as what follows its last flush, on the emptied table:
//! what comes before is erased by the flush anyway.

use std::collections::{HashMap, HashSet};

use super::super::chunk::{self, is_len, loses_to, Ranges};
use super::super::layout::{
    block_lines, entry_order, entry_word, slot_of, value, value_flags, value_nh, ORIGIN_RTM,
    PAGE_LINES, PAGE_SLOTS, VALUE_VALID,
};
use super::super::nexthops::{Acquired, GroupKey, RecKey};
use super::super::view::encode_group;
use super::file::write_record;
use super::paint::{tier2_spans, OldChunk};
use super::room::{Which, SLACK};
use super::{Needs, RouteWriter};
use crate::shm::record::{Planned, ShmError, SEQ_MASK};
use crate::shm::sync::Ordering::Relaxed;
use crate::types::{Prefix, Route, MAX_NEXTHOPS, MAX_WEIGHT};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// What one change of a batch does, as planned.
#[derive(Debug, Clone)]
enum Kind {
    /// The route through this next hop or group and its record (acquired when planned).
    Put(RecKey, u32),
    Del,
    /// Erased by a later flush of the same batch: nothing to write.
    Skip,
    Flush,
}

#[derive(Debug, Clone)]
struct Step {
    key: Prefix,
    kind: Kind,
    /// The prefix's value before the change (0: absent) and after it (0: deleted).
    old: u32,
    new: u32,
    seq: u64,
    /// A put's entry flags (its route's origin); 0 for other steps.
    flags: u8,
}

/// What [`RouteWriter::flush_step`] found.
pub(super) enum FlushStep {
    Erased,
    Next,
    NotReserved,
}

/// A reserved batch (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Batch {
    steps: Vec<Step>,
    /// Changes handed to the writer so far.
    next: usize,
    /// The steps planned (their next-hop records acquired, their lines reserved): the ones
    /// after a flush are planned once it has emptied the table.
    plan_from: usize,
    planned: usize,
    /// The tier-2 slots the planned steps change, with their final ranges and the chunk they
    /// replace (decoded once, when planned).
    chunks: Vec<(usize, Ranges, OldChunk)>,
}

impl Batch {
    fn is_done(&self) -> bool {
        self.next == self.steps.len()
    }
}

/// A multipath route the file cannot hold as it is (the table actor refuses such routes
/// before they reach the writer; the writer does not rely on it).
fn unfit_group(r: &Route) -> Option<ShmError> {
    let n = r.nexthops.len();
    let weights_ok = r
        .nexthops
        .iter()
        .all(|h| (1..=MAX_WEIGHT).contains(&h.weight));
    (r.is_multipath() && (!(2..=MAX_NEXTHOPS).contains(&n) || !weights_ok)).then(|| {
        ShmError::Layout {
            what: format!(
                "route {}: {n} paths with weights 1..={MAX_WEIGHT} (2 paths at least)",
                r.dst
            ),
            limit: MAX_NEXTHOPS as u64,
        }
    })
}

/// The changes `ops` as steps (not planned yet), and where the last flush is.
fn steps_of<'a>(
    ops: impl Iterator<Item = Planned<'a, Route>>,
) -> Result<(Vec<Step>, Option<usize>), ShmError> {
    let mut steps = Vec::new();
    let mut last_flush = None;
    for op in ops {
        let (key, kind, flags) = match op {
            Planned::Put(r) => {
                if let Some(e) = unfit_group(r) {
                    return Err(e);
                }
                (r.dst, Kind::Put(RecKey::of(r), 0), r.origin.as_u8())
            }
            Planned::Del(k) => (*k, Kind::Del, 0),
            Planned::Flush => {
                last_flush = Some(steps.len());
                (Prefix::truncating(0u32.into(), 0), Kind::Flush, 0)
            }
        };
        steps.push(Step {
            key,
            kind,
            old: 0,
            new: 0,
            seq: 0,
            flags,
        });
    }
    if let Some(f) = last_flush {
        for s in &mut steps[..f] {
            s.kind = Kind::Skip;
        }
    }
    Ok((steps, last_flush))
}

impl RouteWriter {
    /// Plans and reserves the batch `ops`: after `Ok`, each of them, handed over in order, is
    /// written without fail. On `Err` nothing changed.
    pub(super) fn reserve_batch<'a>(
        &mut self,
        ops: impl Iterator<Item = Planned<'a, Route>>,
    ) -> Result<(), ShmError> {
        self.settle(false);
        self.drop_batch();
        let (steps, last_flush) = steps_of(ops)?;
        let from = last_flush.map_or(0, |f| f + 1);
        let (puts, dels): (Vec<&Step>, Vec<&Step>) = steps[from..]
            .iter()
            .filter(|s| !matches!(s.kind, Kind::Flush | Kind::Skip))
            .partition(|s| matches!(s.kind, Kind::Put(..)));
        let need = if last_flush.is_some() {
            // Planned on the emptied table: count everything as new.
            Needs {
                values: 2 * puts.len() + dels.len(),
                ..new_records(puts.iter().filter_map(|s| s.rec_key()), |_| false)
            }
        } else {
            self.new_needs(&puts, &dels)
        };
        self.make_table_room(need)?;
        let mut batch = Batch {
            steps,
            next: 0,
            plan_from: from,
            planned: from,
            chunks: Vec::new(),
        };
        if let Some(f) = last_flush {
            // The part after the flush will take at most this much of the emptied heaps.
            let (lpm, blk) = self.sketch_from_empty(&batch.steps[f + 1..]);
            self.ensure_room(Which::Lpm, lpm + u64::from(SLACK))?;
            self.ensure_room(Which::Blk, blk + u64::from(SLACK))?;
            self.batch = Some(batch);
            return Ok(());
        }
        self.plan_batch(&mut batch)?;
        self.batch = Some(batch);
        Ok(())
    }

    /// Next-hop records and value-table entries the changes `puts` and `dels` may need that the
    /// table does not hold: a put's next hop or group (with its members) and its own value (its
    /// length and record), the value a put splits where its slot is one value now; a delete's
    /// covering route's value.
    fn new_needs(&self, puts: &[&Step], dels: &[&Step]) -> Needs {
        let v = self.view();
        let mut values: Vec<u32> = Vec::new();
        let mut unknown: FastSet<(u8, u8, &RecKey)> = FastSet::default();
        for s in puts {
            let Some(key) = s.rec_key() else { continue };
            let (addr, len) = (s.key.addr_u32(), s.key.len());
            let index = self.nhs.index_of(key);
            if len < 17 {
                continue;
            }
            match index {
                Some(i) => values.push(value(len, i, s.flags)),
                None => {
                    unknown.insert((len, s.flags, key));
                }
            }
            for (t, _, _) in tier2_spans(addr, len) {
                if let Ok(w) = v.tier2_word(t) {
                    if w & VALUE_VALID != 0 {
                        values.push(w);
                    }
                }
            }
        }
        for s in dels {
            if s.key.len() >= 17 {
                values.push(self.covering(s.key.addr_u32(), s.key.len()));
            }
        }
        values.sort_unstable();
        values.dedup();
        values.retain(|&val| !self.values.contains(val));
        Needs {
            values: values.len() + unknown.len(),
            ..new_records(puts.iter().filter_map(|s| s.rec_key()), |k| {
                self.nhs.index_of(k).is_some()
            })
        }
    }

    /// Acquires the next-hop records of the steps from `batch.plan_from` on, plays them on
    /// copies of the slots they touch, and reserves the lines of the final images. On `Err`
    /// nothing stays acquired or reserved.
    fn plan_batch(&mut self, batch: &mut Batch) -> Result<(), ShmError> {
        let from = batch.plan_from;
        let slack = if batch.steps[from..]
            .iter()
            .any(|s| matches!(s.kind, Kind::Put(..)))
        {
            SLACK
        } else {
            0
        };
        // Growing past the readers' mapping publishes a new generation, with its records
        // numbered anew: plan again on it.
        for _ in 0..3 {
            let generation = self.generation;
            self.acquire_hops(&mut batch.steps[from..])?;
            let (lpm, blk, chunks) = self.play(&mut batch.steps[from..]);
            match self.reserve_lines(&lpm, &blk, slack) {
                Ok(()) if self.generation == generation => {
                    batch.chunks = chunks;
                    batch.planned = batch.steps.len();
                    return Ok(());
                }
                Ok(()) => self.unreserve(),
                Err(e) => {
                    if self.generation == generation {
                        self.release_hops(&batch.steps[from..]);
                    }
                    return Err(e);
                }
            }
        }
        Err(self.no_space())
    }

    /// Acquires the next-hop record of each put of `steps` (writing new ones before anything
    /// names them); on `Err` releases what it acquired.
    fn acquire_hops(&mut self, steps: &mut [Step]) -> Result<(), ShmError> {
        for k in 0..steps.len() {
            let Kind::Put(key, _) = &steps[k].kind else {
                continue;
            };
            let key = key.clone();
            match self.acquire_record(&key) {
                Ok(i) => steps[k].kind = Kind::Put(key, i),
                Err(e) => {
                    self.release_hops(&steps[..k]);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The record of `key` with one more route naming it. A new one is written before it is
    /// returned (a new group after its members' records), so nothing names it half-written.
    fn acquire_record(&mut self, key: &RecKey) -> Result<u32, ShmError> {
        let group = match key {
            RecKey::Group(g) if self.nhs.index_of(key).is_none() => g,
            _ => return self.acquire_one(key),
        };
        let mut members = Vec::with_capacity(group.hops.len());
        for h in &group.hops {
            let member = RecKey::Hop(GroupKey::member(h));
            match self.acquire_one(&member) {
                Ok(i) => members.push((i, h.weight)),
                Err(e) => {
                    for (h, &(i, _)) in group.hops.iter().zip(&members) {
                        self.release_record(i, &RecKey::Hop(GroupKey::member(h)));
                    }
                    return Err(e);
                }
            }
        }
        let at = match self.acquire_one(key) {
            Ok(at) => at,
            Err(e) => {
                for (h, &(i, _)) in group.hops.iter().zip(&members) {
                    self.release_record(i, &RecKey::Hop(GroupKey::member(h)));
                }
                return Err(e);
            }
        };
        let v = self.view();
        for (k, words) in encode_group(group.metric, &members).iter().enumerate() {
            write_record(&v.nh[at as usize + k], words);
        }
        Ok(at)
    }

    /// The record of `key` with one more route naming it; a new next hop's record written, a
    /// new group's left for the caller to write.
    fn acquire_one(&mut self, key: &RecKey) -> Result<u32, ShmError> {
        match self.nhs.acquire(key) {
            Some(Acquired::Shared(i)) => Ok(i),
            Some(Acquired::New(i)) => {
                if let RecKey::Hop(hop) = key {
                    write_record(&self.view().nh[i as usize], &hop.encode());
                }
                Ok(i)
            }
            None => Err(ShmError::Layout {
                what: "next-hop records (distinct next hops and groups)".into(),
                limit: self.reg.nh_cap as u64 - 1,
            }),
        }
    }

    /// One route fewer names record `i`, which holds `key`; a group freed by that gives back
    /// its members' records.
    fn release_record(&mut self, i: u32, key: &RecKey) {
        if !self.nhs.release(i, key) {
            return;
        }
        if let RecKey::Group(g) = key {
            for h in &g.hops {
                let member = RecKey::Hop(GroupKey::member(h));
                if let Some(m) = self.nhs.index_of(&member) {
                    self.release_record(m, &member);
                }
            }
        }
    }

    /// Plays `steps` on copies of the slots they touch: fills in each step's old and new value,
    /// and returns the runs of lines the final images take (LPM, blocks) with the final ranges
    /// of each tier-2 slot that changes.
    #[allow(clippy::type_complexity)]
    fn play(&self, steps: &mut [Step]) -> (Vec<u32>, Vec<u32>, Vec<(usize, Ranges, OldChunk)>) {
        let v = self.view();
        let mut ranges: FastMap<usize, (Ranges, bool, OldChunk)> =
            FastMap::with_capacity_and_hasher(steps.len(), Default::default());
        let mut blocks: FastMap<usize, usize> =
            FastMap::with_capacity_and_hasher(steps.len(), Default::default());
        let mut now: FastMap<Prefix, u32> =
            FastMap::with_capacity_and_hasher(steps.len(), Default::default());
        let mut scratch = Ranges::new();
        let value_of = |now: &FastMap<Prefix, u32>, p: Prefix| -> u32 {
            match now.get(&p) {
                Some(&val) => val,
                None => match v.find(p.addr_u32(), p.len()) {
                    Ok(Some((nh, flags, _))) => value(p.len(), nh, flags),
                    _ => 0,
                },
            }
        };
        for s in steps.iter_mut() {
            let (addr, len) = (s.key.addr_u32(), s.key.len());
            s.old = value_of(&now, s.key);
            s.new = match s.kind {
                Kind::Put(_, nh) => value(len, nh, s.flags),
                Kind::Del if s.old == 0 => continue,
                // What the covering route of the same tier answers there, as the batch left it.
                Kind::Del => (if len >= 17 { 17 } else { 0 }..len)
                    .rev()
                    .map(|l| value_of(&now, Prefix::truncating(addr.into(), l)))
                    .find(|&val| val != 0)
                    .unwrap_or(0),
                Kind::Skip | Kind::Flush => continue,
            };
            if len >= 17 && s.old != s.new {
                let (old, new) = (s.old, s.new);
                let repaint = |x: u32| {
                    if old == 0 {
                        loses_to(len)(x)
                    } else {
                        is_len(len)(x)
                    }
                };
                for (t, lo, hi) in tier2_spans(addr, len) {
                    let (r, changed, _) = ranges.entry(t).or_insert_with(|| {
                        let (r, old) = self.slot_ranges(t);
                        (r, false, old)
                    });
                    chunk::paint_into(r, lo, hi, repaint, new, &mut scratch);
                    if scratch != *r {
                        std::mem::swap(r, &mut scratch);
                        *changed = true;
                    }
                }
            }
            let count = blocks
                .entry(slot_of(addr))
                .or_insert_with(|| v.block(slot_of(addr)).map_or(0, |(n, _)| n));
            match s.kind {
                Kind::Del => *count -= 1,
                Kind::Put(..) if s.old == 0 => *count += 1,
                _ => {}
            }
            now.insert(
                s.key,
                if matches!(s.kind, Kind::Del) {
                    0
                } else {
                    s.new
                },
            );
        }
        let (mut lpm, mut blk) = (Vec::new(), Vec::new());
        let mut chunks: Vec<(usize, Ranges, OldChunk)> = ranges
            .into_iter()
            .filter(|(_, (_, changed, _))| *changed)
            .map(|(t, (r, _, old))| (t, r, old))
            .collect();
        chunks.sort_unstable_by_key(|&(t, _, _)| t);
        let mut pages = Vec::new();
        for (t, r, _) in &chunks {
            if r.len() > 1 {
                lpm.push(chunk::shape(r.len()).0 as u32);
            }
            if (r.len() > 1 || r[0].1 != 0) && v.top_lpm[t / PAGE_SLOTS].load(Relaxed) == 0 {
                pages.push(t / PAGE_SLOTS);
            }
        }
        pages.sort_unstable();
        pages.dedup();
        lpm.extend(pages.iter().map(|_| PAGE_LINES as u32));
        let mut pages = Vec::new();
        for (&slot, &count) in &blocks {
            if count > 0 {
                blk.push(block_lines(count) as u32);
                if v.top_blk[slot / PAGE_SLOTS].load(Relaxed) == 0 {
                    pages.push(slot / PAGE_SLOTS);
                }
            }
        }
        pages.sort_unstable();
        pages.dedup();
        blk.extend(pages.iter().map(|_| PAGE_LINES as u32));
        (lpm, blk, chunks)
    }

    /// Lines the steps after a flush take at most on the emptied table (LPM, blocks), without
    /// acquiring anything: every next hop counted as a record of its own.
    fn sketch_from_empty(&self, steps: &[Step]) -> (u64, u64) {
        let mut slots: FastMap<usize, usize> = FastMap::default();
        let mut blocks: FastMap<usize, usize> = FastMap::default();
        let mut pages = (Vec::new(), Vec::new());
        for s in steps {
            let (addr, len) = (s.key.addr_u32(), s.key.len());
            if !matches!(s.kind, Kind::Put(..)) {
                continue;
            }
            if len >= 17 {
                for (t, _, _) in tier2_spans(addr, len) {
                    *slots.entry(t).or_default() += 2;
                    pages.0.push(t / PAGE_SLOTS);
                }
            }
            *blocks.entry(slot_of(addr)).or_default() += 1;
            pages.1.push(slot_of(addr) / PAGE_SLOTS);
        }
        for p in [&mut pages.0, &mut pages.1] {
            p.sort_unstable();
            p.dedup();
        }
        let lpm = slots
            .values()
            .map(|&n| chunk::shape(n + 1).0 as u64)
            .sum::<u64>()
            + (pages.0.len() * PAGE_LINES) as u64;
        let blk = blocks.values().map(|&n| block_lines(n) as u64).sum::<u64>()
            + (pages.1.len() * PAGE_LINES) as u64;
        (lpm, blk)
    }

    /// Gives back what the records of `steps`' puts were acquired for.
    fn release_hops(&mut self, steps: &[Step]) {
        for s in steps {
            if let Kind::Put(key, i) = &s.kind {
                self.release_record(*i, key);
            }
        }
    }

    /// Forgets a batch that will not be written (a request that failed after its reservation,
    /// a change that is not the next one reserved, a republish).
    pub(super) fn drop_batch(&mut self) {
        if let Some(b) = self.batch.take() {
            // Nothing of a batch is written before its last change: every record it acquired
            // goes back.
            self.release_hops(&b.steps[b.plan_from..b.planned]);
        }
        self.unreserve();
    }

    /// Hands over the next change (a put of `put`, or a delete): `Some(whether the prefix was there)` if it is the next one
    /// the batch reserved (written with the rest when the last one arrives); `None` if no batch
    /// expects it.
    pub(super) fn hand_over(
        &mut self,
        key: Prefix,
        put: Option<&Route>,
        seq: u64,
    ) -> Result<Option<bool>, ShmError> {
        let Some(b) = self.batch.as_mut() else {
            return Ok(None);
        };
        let Some(s) = b.steps.get_mut(b.next) else {
            return Ok(None);
        };
        let expected = match (&s.kind, put) {
            (Kind::Put(planned, _), Some(r)) => {
                planned.is(r) && s.flags == r.origin.as_u8() && s.key == key
            }
            (Kind::Del, None) => s.key == key,
            (Kind::Skip, _) => s.key == key,
            _ => false,
        };
        if !expected {
            return Ok(None);
        }
        s.seq = seq;
        let existed = s.old != 0;
        b.next += 1;
        if b.is_done() {
            let b = self.batch.take().expect("a batch");
            self.write_batch(b)?;
        }
        Ok(Some(existed))
    }

    /// Hands over a flush: whether it is one the batch reserved that a later flush erases
    /// anyway (nothing to do), the batch's own flush (the caller empties the table, then
    /// [`RouteWriter::after_flush`] plans the rest), or no batch expects it.
    pub(super) fn flush_step(&mut self) -> FlushStep {
        let Some(b) = self.batch.as_mut() else {
            return FlushStep::NotReserved;
        };
        match b.steps.get(b.next).map(|s| &s.kind) {
            Some(Kind::Skip) => {
                b.next += 1;
                FlushStep::Erased
            }
            Some(Kind::Flush) => FlushStep::Next,
            _ => FlushStep::NotReserved,
        }
    }

    /// After the batch's flush emptied the table: the steps after it are planned and reserved
    /// on the empty table (room for them was made when the batch was reserved).
    pub(super) fn after_flush(&mut self) -> Result<(), ShmError> {
        let Some(mut b) = self.batch.take() else {
            return Ok(());
        };
        b.next += 1;
        if b.is_done() {
            return Ok(());
        }
        b.plan_from = b.next;
        b.planned = b.next;
        self.plan_batch(&mut b)?;
        self.batch = Some(b);
        Ok(())
    }

    /// Writes a batch whose changes have all arrived: tier 1 in order, each changed chunk once,
    /// each touched block once, then the bookkeeping.
    fn write_batch(&mut self, b: Batch) -> Result<(), ShmError> {
        let steps = &b.steps[b.plan_from..];
        for s in steps {
            let (addr, len) = (s.key.addr_u32(), s.key.len());
            if len <= 16 && s.old != s.new && !matches!(s.kind, Kind::Skip | Kind::Flush) {
                let (old, new) = (s.old, s.new);
                if old == 0 {
                    self.paint_tier1(addr, len, loses_to(len), new);
                } else {
                    self.paint_tier1(addr, len, is_len(len), new);
                }
            }
        }
        let mut image = Vec::new();
        for (slot, ranges, old) in b.chunks {
            self.write_chunk(slot, &ranges, old, &mut image)?;
        }
        // The steps that change entry blocks, by slot (stable: in order within a slot).
        let mut by_block: Vec<(usize, &Step)> = steps
            .iter()
            .filter(|s| {
                matches!(s.kind, Kind::Put(..)) || (matches!(s.kind, Kind::Del) && s.old != 0)
            })
            .map(|s| (slot_of(s.key.addr_u32()), s))
            .collect();
        by_block.sort_by_key(|&(slot, _)| slot);
        let mut entries = Vec::new();
        for group in by_block.chunk_by(|a, b| a.0 == b.0) {
            let slot = group[0].0;
            let old_block = self.block_entries(slot, &mut entries);
            for &(_, s) in group {
                let (addr, len) = (s.key.addr_u32(), s.key.len());
                let probe = entry_order(entry_word(addr, len, ORIGIN_RTM, 0));
                let at = entries.binary_search_by_key(&probe, |&(a, _)| entry_order(a));
                match (&s.kind, at) {
                    (&Kind::Put(_, nh), Ok(i)) => {
                        entries[i] = (entry_word(addr, len, s.flags, nh), s.seq & SEQ_MASK)
                    }
                    (&Kind::Put(_, nh), Err(i)) => {
                        entries.insert(i, (entry_word(addr, len, s.flags, nh), s.seq & SEQ_MASK))
                    }
                    (_, Ok(i)) => {
                        entries.remove(i);
                    }
                    (_, Err(_)) => {}
                }
            }
            self.set_block(slot, &entries, old_block, &mut image)?;
        }
        for s in steps {
            let len = usize::from(s.key.len());
            match s.kind {
                Kind::Put(..) if s.old != 0 => {
                    self.release_hop(value_nh(s.old));
                    self.origins[usize::from(value_flags(s.old))] -= 1;
                    self.origins[usize::from(s.flags)] += 1;
                }
                Kind::Put(..) => {
                    self.live += 1;
                    self.len_counts[len] += 1;
                    self.origins[usize::from(s.flags)] += 1;
                }
                Kind::Del if s.old != 0 => {
                    self.release_hop(value_nh(s.old));
                    self.live -= 1;
                    self.len_counts[len] -= 1;
                    self.origins[usize::from(value_flags(s.old))] -= 1;
                }
                _ => {}
            }
        }
        self.sync_live();
        debug_assert_eq!(
            self.reserved_lines(),
            0,
            "a batch used less than it reserved"
        );
        self.unreserve();
        Ok(())
    }

    fn release_hop(&mut self, i: u32) {
        if let Some(key) = self.rec_key(i) {
            self.release_record(i, &key);
        }
    }
}

impl Step {
    /// A put's next hop or group.
    fn rec_key(&self) -> Option<&RecKey> {
        match &self.kind {
            Kind::Put(key, _) => Some(key),
            _ => None,
        }
    }
}

/// The next-hop records the distinct `keys` that `known` does not find take: one per next hop,
/// a run per group, and one per member of a new group that is not found either.
fn new_records<'a>(
    keys: impl Iterator<Item = &'a RecKey>,
    known: impl Fn(&RecKey) -> bool,
) -> Needs {
    let mut seen: FastSet<&RecKey> = FastSet::default();
    let mut members: FastSet<RecKey> = FastSet::default();
    let mut need = Needs::default();
    for key in keys {
        if known(key) || !seen.insert(key) {
            continue;
        }
        match key {
            RecKey::Hop(_) => need.singles += 1,
            RecKey::Group(g) => {
                need.groups = true;
                need.runs.push(key.records());
                for h in &g.hops {
                    let m = RecKey::Hop(GroupKey::member(h));
                    if !known(&m) && !seen.contains(&m) {
                        members.insert(m);
                    }
                }
            }
        }
    }
    members.retain(|m| !seen.contains(m));
    need.singles += members.len();
    need
}
