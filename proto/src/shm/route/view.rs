//! Reading a route file: the views of its regions and the reads every process makes of them —
//! a longest-prefix match to a value, a next-hop record, a prefix's entry in its block, a
//! slot's entries in key order — and the epoch protocol that makes them safe while the writer
//! reuses memory (layout: "Change and reclamation").
//!
//! These functions see only slices of atomics, so the same code runs on a file's mapping and on
//! the plain memory of the loom models.

use std::net::Ipv4Addr;

use super::chunk;
use super::layout::{
    block_of, chunk_of, entry_fields, slot_of, KEY_MASK, LONG_BLOCK, PAGE_SLOTS, SHORT_BLOCK_MAX,
    SLOT_BITS, VALUE_VALID,
};
use crate::shm::seqlock::try_read_words;
use crate::shm::sync::{
    fence, prefetch, AtomicU32, AtomicU64, Line, Ordering::Acquire, Ordering::Relaxed,
};
use crate::types::{Hop, IfName, Origin, Prefix, Route, MAX_NEXTHOPS};

/// The regions of a route file, as slices of atomics.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub epoch: &'a AtomicU64,
    pub top_lpm: &'a [AtomicU32],
    pub top_blk: &'a [AtomicU32],
    pub tier1: &'a [AtomicU32],
    pub values: &'a [AtomicU32],
    pub nh: &'a [Line],
    /// The LPM heap's lines in use: pages of `top_lpm`, chunks.
    pub lpm: &'a [Line],
    /// The block heap's lines in use: pages of `top_blk`, entry blocks.
    pub blk: &'a [Line],
}

/// The part of a route file a longest-prefix match reads.
#[derive(Clone, Copy)]
pub struct Lpm<'a> {
    pub top: &'a [AtomicU32],
    pub tier1: &'a [AtomicU32],
    pub values: &'a [AtomicU32],
    pub lines: &'a [Line],
}

impl Lpm<'_> {
    /// The value of the longest prefix matching `addr` (0: none): tier 2, then tier 1.
    #[inline(always)]
    pub fn value(&self, addr: u32) -> Result<u32, Garbage> {
        let page = load_acquire32(self.top.get((addr >> 24) as usize).ok_or(Garbage)?);
        let w = if page == 0 {
            0
        } else {
            let k = ((addr >> SLOT_BITS) as usize) % PAGE_SLOTS;
            let line = self.lines.get(page as usize + k / 16).ok_or(Garbage)?;
            let w = (line[(k % 16) / 2].load(Relaxed) >> (32 * (k & 1))) as u32;
            fence(Acquire);
            w
        };
        let v = if w & VALUE_VALID != 0 {
            w
        } else if w != 0 {
            let (depth, root) = chunk_of(w);
            let i = chunk::search(self.lines, depth, root, addr & KEY_MASK).ok_or(Garbage)?;
            self.values
                .get(usize::from(i))
                .ok_or(Garbage)?
                .load(Relaxed)
        } else {
            0
        };
        if v != 0 {
            return Ok(v);
        }
        Ok(self
            .tier1
            .get((addr >> 16) as usize)
            .map_or(0, |w| w.load(Relaxed)))
    }
}

/// Addresses a batched lookup works on together, stage by stage, so that their memory misses
/// overlap.
pub const BATCH_GROUP: usize = 32;

impl Lpm<'_> {
    /// [`Lpm::value`] of up to [`BATCH_GROUP`] addresses: `out[i]` answers `addrs[i]`. Each
    /// step of the walk is taken for the whole group before the next — the page words, then
    /// the chunks — with the lines the next step reads prefetched, so that the misses of the
    /// group overlap instead of following one another.
    #[inline]
    pub fn values(&self, addrs: &[u32], out: &mut [u32]) -> Result<(), Garbage> {
        let n = addrs.len().min(out.len()).min(BATCH_GROUP);
        let mut page_lines: [Option<&Line>; BATCH_GROUP] = [None; BATCH_GROUP];
        for (a, pl) in addrs[..n].iter().zip(&mut page_lines) {
            let page = self
                .top
                .get((a >> 24) as usize)
                .ok_or(Garbage)?
                .load(Relaxed);
            if page != 0 {
                let k = ((a >> SLOT_BITS) as usize) % PAGE_SLOTS;
                // A page past the lines the reader knows: the heap grew (or garbage).
                let l = self.lines.get(page as usize + k / 16).ok_or(Garbage)?;
                prefetch(l);
                *pl = Some(l);
            }
        }
        fence(Acquire);
        let mut words = [0u32; BATCH_GROUP];
        for ((a, pl), w) in addrs[..n].iter().zip(&page_lines).zip(&mut words) {
            let Some(line) = pl else { continue };
            let k = ((a >> SLOT_BITS) as usize) % PAGE_SLOTS;
            *w = (line[(k % 16) / 2].load(Relaxed) >> (32 * (k & 1))) as u32;
            if *w != 0 && *w & VALUE_VALID == 0 {
                if let Some(l) = self.lines.get(chunk_of(*w).1 as usize) {
                    prefetch(l);
                }
            }
        }
        fence(Acquire);
        for ((a, w), o) in addrs[..n].iter().zip(&words).zip(out.iter_mut()) {
            let v = if w & VALUE_VALID != 0 {
                *w
            } else if *w != 0 {
                let (depth, root) = chunk_of(*w);
                let i = chunk::search(self.lines, depth, root, a & KEY_MASK).ok_or(Garbage)?;
                self.values
                    .get(usize::from(i))
                    .ok_or(Garbage)?
                    .load(Relaxed)
            } else {
                0
            };
            *o = if v != 0 {
                v
            } else {
                self.tier1
                    .get((a >> 16) as usize)
                    .map_or(0, |t| t.load(Relaxed))
            };
        }
        Ok(())
    }
}

/// A read found memory that cannot be what the words named: reused under the reader (the
/// epoch tells), or past the part of the heap the reader knows (it grew).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Garbage;

/// A next-hop record's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop {
    pub via: Option<Ipv4Addr>,
    pub dev: Option<IfName>,
    pub metric: u32,
}

impl NextHop {
    pub fn of(r: &Route) -> NextHop {
        NextHop {
            via: r.via,
            dev: r.dev,
            metric: r.metric,
        }
    }

    /// The route to `dst` through this next hop, put into the table by `origin`.
    #[inline]
    pub fn route(&self, dst: Prefix, origin: Origin) -> Route {
        Route {
            dst,
            via: self.via,
            dev: self.dev,
            metric: self.metric,
            nexthops: Vec::new(),
            origin,
        }
    }

    /// The record's words 1..=7.
    pub fn encode(&self) -> [u64; 7] {
        let via = self
            .via
            .map_or(0, |a| (1u64 << 32) | u64::from(u32::from(a)));
        let [d0, d1] = crate::shm::dev::encode(self.dev.as_ref());
        [via, u64::from(self.metric), d0, d1, 0, 0, 0]
    }

    /// The fields from words 1..=7; `None` for words no writer writes.
    #[inline]
    pub fn decode(w: &[u64; 7]) -> Option<NextHop> {
        if w[0] >> 33 != 0 || w[1] >> 32 != 0 || w[4] | w[5] | w[6] != 0 {
            return None;
        }
        let via = (w[0] >> 32 == 1).then(|| Ipv4Addr::from(w[0] as u32));
        if via.is_none() && w[0] != 0 {
            return None;
        }
        Some(NextHop {
            via,
            dev: crate::shm::dev::decode([w[2], w[3]])?,
            metric: w[1] as u32,
        })
    }
}

/// Word 1's mark of a next-hop group's head record (never set in a next hop's record).
pub const GROUP_MARK: u64 = 1 << 63;
/// Word 1's bits of a group head that hold its member count.
const GROUP_COUNT_MASK: u64 = 0x1ff;
/// Member words in each member record of a group (two in each of words 1..=7).
pub const MEMBERS_PER_RECORD: usize = 14;
/// A member word's bits that name the member's record; the bits above hold its weight − 1.
const MEMBER_INDEX_MASK: u32 = (1 << 24) - 1;

/// What a next-hop record holds: one next hop, or the head of a next-hop group (a multipath
/// route's next hops), whose members follow it in the next
/// [`group_records`]` − 1` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Hop(NextHop),
    Group { paths: u16, metric: u32 },
}

impl Record {
    /// The record's contents from words 1..=7; `None` for words no writer writes.
    #[inline]
    pub fn decode(w: &[u64; 7]) -> Option<Record> {
        if w[0] & GROUP_MARK == 0 {
            return NextHop::decode(w).map(Record::Hop);
        }
        let n = (w[0] & GROUP_COUNT_MASK) as usize;
        let clean = w[0] & !(GROUP_MARK | GROUP_COUNT_MASK) == 0
            && w[1] >> 32 == 0
            && w[2] | w[3] | w[4] | w[5] | w[6] == 0;
        (clean && (2..=MAX_NEXTHOPS).contains(&n)).then_some(Record::Group {
            paths: n as u16,
            metric: w[1] as u32,
        })
    }
}

/// A next-hop group as a reader gets it whole ([`crate::shm::RouteReader::group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub metric: u32,
    /// The members with their weights, in order.
    pub hops: Vec<Hop>,
}

impl Group {
    /// The member a flow of hash `hash` takes (see [`crate::shm::RouteReader::nexthop_for`]);
    /// `None` for a group without members (never read from a file).
    pub fn pick(&self, hash: u32) -> Option<&Hop> {
        self.hops
            .get(pick(self.hops.iter().map(|h| h.weight), hash))
    }
}

/// The member of a group whose share of the 32-bit hash space holds `hash`: the space is cut
/// in the members' order into parts in proportion to their `weights` (hash-threshold, as the
/// kernel picks a multipath route's next hop).
pub fn pick(weights: impl Iterator<Item = u16> + Clone, hash: u32) -> usize {
    let total: u64 = weights.clone().map(u64::from).sum();
    let x = (u64::from(hash) * total) >> 32;
    let mut upto = 0u64;
    for (k, w) in weights.enumerate() {
        upto += u64::from(w);
        if x < upto {
            return k;
        }
    }
    0
}

/// Records a group of `paths` next hops takes: its head, then its member records.
#[inline]
pub const fn group_records(paths: usize) -> usize {
    1 + paths.div_ceil(MEMBERS_PER_RECORD)
}

/// Words 1..=7 of each record of a group: the head (`metric`, the count), then the member
/// records. `members` are (record index, weight) of each next hop, in order.
pub fn encode_group(metric: u32, members: &[(u32, u16)]) -> Vec<[u64; 7]> {
    let mut out = vec![[
        GROUP_MARK | members.len() as u64,
        u64::from(metric),
        0,
        0,
        0,
        0,
        0,
    ]];
    for chunk in members.chunks(MEMBERS_PER_RECORD) {
        let mut w = [0u64; 7];
        for (k, &(i, weight)) in chunk.iter().enumerate() {
            let word = (i & MEMBER_INDEX_MASK) | (u32::from(weight - 1) << 24);
            w[k / 2] |= u64::from(word) << (32 * (k % 2));
        }
        out.push(w);
    }
    out
}

/// A record's words 1..=7, read under its seqlock; `Garbage` in the middle of a rewrite.
#[inline(always)]
fn read_words(l: &Line) -> Result<[u64; 7], Garbage> {
    let (seq, words) = l.split_first().expect("a line has 8 words");
    let words: &[AtomicU64; 7] = words.try_into().expect("7 words");
    try_read_words(seq, words).map_err(|_| Garbage)
}

/// A next-hop record's contents, read under its seqlock; `Garbage` in the middle of a rewrite.
#[inline(always)]
pub fn read_record(l: &Line) -> Result<Record, Garbage> {
    Record::decode(&read_words(l)?).ok_or(Garbage)
}

/// Loads a word that names memory written before it, and orders the reads of that memory
/// after it.
#[inline(always)]
fn load_acquire32(w: &AtomicU32) -> u32 {
    let v = w.load(Relaxed);
    fence(Acquire);
    v
}

impl View<'_> {
    /// The slot word of `slot` in the pages under `top`, in `heap` (0: none).
    #[inline(always)]
    fn slot_word(heap: &[Line], top: &[AtomicU32], slot: usize) -> Result<u32, Garbage> {
        let page = load_acquire32(top.get(slot / PAGE_SLOTS).ok_or(Garbage)?);
        if page == 0 {
            return Ok(0);
        }
        let k = slot % PAGE_SLOTS;
        let line = heap.get(page as usize + k / 16).ok_or(Garbage)?;
        let w = line[(k % 16) / 2].load(Relaxed);
        fence(Acquire);
        Ok((w >> (32 * (k & 1))) as u32)
    }

    /// Tier 2's slot word of `slot` (0: empty).
    #[inline(always)]
    pub fn tier2_word(&self, slot: usize) -> Result<u32, Garbage> {
        Self::slot_word(self.lpm, self.top_lpm, slot)
    }

    /// The block word of `slot` (0: no routes start in it).
    #[inline(always)]
    pub fn block_word(&self, slot: usize) -> Result<u32, Garbage> {
        Self::slot_word(self.blk, self.top_blk, slot)
    }

    /// Tier 2's value for `addr` (0: no route of /17–/32 matches).
    #[inline(always)]
    pub fn tier2(&self, addr: u32) -> Result<u32, Garbage> {
        let w = self.tier2_word(slot_of(addr))?;
        if w == 0 || w & VALUE_VALID != 0 {
            return Ok(w);
        }
        let (depth, root) = chunk_of(w);
        let i = chunk::search(self.lpm, depth, root, addr & KEY_MASK).ok_or(Garbage)?;
        Ok(self
            .values
            .get(usize::from(i))
            .ok_or(Garbage)?
            .load(Relaxed))
    }

    /// The value of the longest prefix matching `addr` (0: none).
    #[inline(always)]
    pub fn value(&self, addr: u32) -> Result<u32, Garbage> {
        self.lpm().value(addr)
    }

    /// The part a longest-prefix match reads.
    #[inline(always)]
    pub fn lpm(&self) -> Lpm<'_> {
        Lpm {
            top: self.top_lpm,
            tier1: self.tier1,
            values: self.values,
            lines: self.lpm,
        }
    }

    /// Next-hop record `i`. Records are rewritten in place only under their seqlock; one found
    /// in the middle of a write reads as `Garbage` (the caller retries).
    #[inline(always)]
    pub fn record(&self, i: u32) -> Result<Record, Garbage> {
        read_record(self.nh.get(i as usize).ok_or(Garbage)?)
    }

    /// Next-hop record `i` into `hop` if it holds one next hop (`Ok(true)`); `Ok(false)`, and
    /// `hop` untouched, if it heads a group. The batched lookups' read: the next hop is
    /// decoded straight into its place, not through a [`Record`] (see `GroupHops` in the
    /// reader).
    #[inline(always)]
    pub fn hop_into(&self, i: u32, hop: &mut Option<NextHop>) -> Result<bool, Garbage> {
        let w = read_words(self.nh.get(i as usize).ok_or(Garbage)?)?;
        if w[0] & GROUP_MARK == 0 {
            *hop = Some(NextHop::decode(&w).ok_or(Garbage)?);
            return Ok(true);
        }
        match Record::decode(&w) {
            Some(_) => Ok(false),
            None => Err(Garbage),
        }
    }

    /// The member words of the group whose head is record `i`, with `paths` members: each is
    /// (record index, weight).
    fn members(&self, i: u32, paths: u16, out: &mut [(u32, u16)]) -> Result<(), Garbage> {
        let n = usize::from(paths);
        for (r, chunk) in out[..n].chunks_mut(MEMBERS_PER_RECORD).enumerate() {
            let at = (i as usize).checked_add(1 + r).ok_or(Garbage)?;
            let w = read_words(self.nh.get(at).ok_or(Garbage)?)?;
            for (k, m) in chunk.iter_mut().enumerate() {
                let word = (w[k / 2] >> (32 * (k % 2))) as u32;
                let index = word & MEMBER_INDEX_MASK;
                if index == 0 {
                    return Err(Garbage);
                }
                *m = (index, (word >> 24) as u16 + 1);
            }
            // The member words after the last are zero.
            let used = chunk.len();
            let odd = if used % 2 == 1 { w[used / 2] >> 32 } else { 0 };
            if odd | w[used.div_ceil(2)..].iter().fold(0, |a, &x| a | x) != 0 {
                return Err(Garbage);
            }
        }
        Ok(())
    }

    /// The route to `dst` of `origin` through next-hop record `i`: its next hop, or for a
    /// group, every member with its weight.
    pub fn route(&self, i: u32, dst: Prefix, origin: Origin) -> Result<Route, Garbage> {
        let w = read_words(self.nh.get(i as usize).ok_or(Garbage)?)?;
        // A next hop is decoded straight into the route, not through a `Record` (see
        // `GroupHops` in the reader).
        if w[0] & GROUP_MARK == 0 {
            return Ok(NextHop::decode(&w).ok_or(Garbage)?.route(dst, origin));
        }
        let Some(Record::Group { paths, metric }) = Record::decode(&w) else {
            return Err(Garbage);
        };
        let mut m = [(0u32, 0u16); MAX_NEXTHOPS];
        self.members(i, paths, &mut m)?;
        let mut hops = Vec::with_capacity(usize::from(paths));
        for &(index, weight) in &m[..usize::from(paths)] {
            let Record::Hop(h) = self.record(index)? else {
                return Err(Garbage);
            };
            hops.push(Hop {
                via: h.via,
                dev: h.dev,
                weight,
            });
        }
        let mut r = Route::multipath(dst, metric, hops);
        r.origin = origin;
        Ok(r)
    }

    /// The next hop through record `i` that a flow of hash `hash` takes: the record's own, or
    /// for a group, the member whose share of the hash space (in proportion to its weight,
    /// members in order) holds `hash`, with the group's metric.
    pub fn nexthop_for(&self, i: u32, hash: u32) -> Result<NextHop, Garbage> {
        match self.record(i)? {
            Record::Hop(h) => Ok(h),
            Record::Group { paths, metric } => {
                let mut m = [(0u32, 0u16); MAX_NEXTHOPS];
                self.members(i, paths, &mut m)?;
                let m = &m[..usize::from(paths)];
                let index = m[pick(m.iter().map(|&(_, w)| w), hash)].0;
                match self.record(index)? {
                    Record::Hop(h) => Ok(NextHop { metric, ..h }),
                    Record::Group { .. } => Err(Garbage),
                }
            }
        }
    }

    /// The entries of `slot`'s block: (count, first entry line).
    #[inline]
    pub fn block(&self, slot: usize) -> Result<(usize, u32), Garbage> {
        let w = self.block_word(slot)?;
        if w == 0 {
            return Ok((0, 0));
        }
        let (c, line) = block_of(w);
        if c == LONG_BLOCK {
            let n = self.blk.get(line as usize).ok_or(Garbage)?[0].load(Relaxed);
            let n = usize::try_from(n).map_err(|_| Garbage)?;
            if n <= SHORT_BLOCK_MAX as usize || n > 1 << 16 {
                return Err(Garbage);
            }
            Ok((n, line + 1))
        } else {
            Ok((c as usize, line))
        }
    }

    /// Entry `i` of the block starting at line `first`: (word A, word B).
    #[inline(always)]
    pub fn entry(&self, first: u32, i: usize) -> Result<(u64, u64), Garbage> {
        let l = self.blk.get(first as usize + i / 4).ok_or(Garbage)?;
        let j = (i % 4) * 2;
        Ok((l[j].load(Relaxed), l[j + 1].load(Relaxed)))
    }

    /// The entry of prefix `addr/len`: (next-hop index, flags, sequence word), if present.
    #[inline]
    pub fn find(&self, addr: u32, len: u8) -> Result<Option<(u32, u8, u64)>, Garbage> {
        let (n, first) = self.block(slot_of(addr))?;
        // Blocks are short: a linear scan reads the few lines in order.
        for i in 0..n {
            let (a, b) = self.entry(first, i)?;
            let (ea, el, flags, nh) = entry_fields(a);
            if ea == addr && el == len {
                return Ok(Some((nh, flags, b)));
            }
            if (ea, el) > (addr, len) {
                break;
            }
        }
        Ok(None)
    }
}

/// What a read made under the epoch protocol came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstable {
    /// Memory kept being reused under the reader (or the writer is rewriting a next-hop record
    /// it holds); after this many tries the reader gives up.
    Busy,
    /// The read met memory past what the reader has mapped as backed: it must refresh its view
    /// of the heap and try again.
    Grown,
}

/// Tries of a read before it answers [`Unstable::Busy`].
pub const TRIES: u32 = 1000;

/// Runs `read` so that what it answers is consistent: between two loads of the epoch, retried
/// while the epoch moved (memory was reused under it). A read that met garbage with the epoch
/// unchanged met memory the reader does not know is backed (the heap grew): `Grown`.
#[inline(always)]
pub fn consistent<T>(
    epoch: &AtomicU64,
    mut read: impl FnMut() -> Result<T, Garbage>,
) -> Result<T, Unstable> {
    let e1 = epoch.load(Relaxed);
    fence(Acquire);
    let r = read();
    fence(Acquire);
    if epoch.load(Relaxed) == e1 {
        return r.map_err(|Garbage| Unstable::Grown);
    }
    consistent_again(epoch, read)
}

/// [`consistent`] after a first try that straddled an epoch.
#[cold]
#[inline(never)]
fn consistent_again<T>(
    epoch: &AtomicU64,
    mut read: impl FnMut() -> Result<T, Garbage>,
) -> Result<T, Unstable> {
    for _ in 0..TRIES {
        std::hint::spin_loop();
        let e1 = epoch.load(Relaxed);
        fence(Acquire);
        let r = read();
        fence(Acquire);
        if epoch.load(Relaxed) == e1 {
            return r.map_err(|Garbage| Unstable::Grown);
        }
    }
    Err(Unstable::Busy)
}
