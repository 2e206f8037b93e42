//! Building a whole route file's contents at once from its routes: at start-up, when the table
//! is republished (grown, compacted or repaired) — one pass over the routes in key order, no
//! per-route copy-on-write.

use std::collections::{BTreeMap, HashMap};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use super::chunk::{self, Ranges};
use super::layout::{
    block_lines, block_word, chunk_word, entry_word, slot_of, value, KEY_MASK, PAGE_LINES,
    PAGE_SLOTS, SHORT_BLOCK_MAX, SLOTS, TIER1_WORDS, VALUE_SLOTS,
};
use super::nexthops::{GroupKey, RecKey};
use super::view::NextHop;
use crate::shm::record::{Versioned, SEQ_MASK};
use crate::types::{Origin, Route};

/// A route file's contents, before they are written to a file.
pub(super) struct Image {
    pub tier1: Vec<u32>,
    /// Value-table entries 1.. with the number of chunk ranges naming each.
    pub values: Vec<(u32, u32)>,
    /// Next-hop records and groups, by first record (from 1, in order).
    pub nexthops: Vec<ImgRecord>,
    /// Records they take: the first free record.
    pub nh_next: u32,
    /// LPM-heap lines; line 0 unused.
    pub lpm: Vec<[u64; 8]>,
    /// Block-heap lines; line 0 unused.
    pub blk: Vec<[u64; 8]>,
    pub top_lpm: [u32; 256],
    pub top_blk: [u32; 256],
    pub live: usize,
    pub len_counts: [u32; 33],
    /// Routes per origin (index: [`Origin::as_u8`]).
    pub origins: [usize; Origin::ALL.len()],
}

/// A next-hop record or group of an image.
pub(super) struct ImgRecord {
    /// Its (first) record.
    pub at: u32,
    pub key: RecKey,
    /// Routes naming it, and for a next hop's record, groups naming it.
    pub refs: u32,
    /// A group's members: (record, weight).
    pub members: Vec<(u32, u16)>,
}

/// The records of an image being built, found by their contents.
struct Records<'a> {
    img: &'a mut Vec<ImgRecord>,
    index: FastMap<RecKey, u32>,
    next: u32,
}

impl Records<'_> {
    /// The position in `img` of `key`'s record, made (with a group's members) if new; a new
    /// record starts with no references.
    fn of(&mut self, key: RecKey) -> u32 {
        if let Some(&p) = self.index.get(&key) {
            return p;
        }
        let members = match &key {
            RecKey::Hop(_) => Vec::new(),
            RecKey::Group(g) => g
                .hops
                .iter()
                .map(|h| {
                    let p = self.of(RecKey::Hop(GroupKey::member(h)));
                    let m = &mut self.img[p as usize];
                    m.refs += 1;
                    (m.at, h.weight)
                })
                .collect(),
        };
        let at = self.next;
        self.next += key.records();
        self.img.push(ImgRecord {
            at,
            key: key.clone(),
            refs: 0,
            members,
        });
        let p = self.img.len() as u32 - 1;
        self.index.insert(key, p);
        p
    }
}

/// A page of slot words being filled.
type Page = Box<[u32; PAGE_SLOTS]>;

/// Appends a page of slot words to `heap`; returns its first line.
fn write_page(heap: &mut Vec<[u64; 8]>, page: &[u32; PAGE_SLOTS]) -> u32 {
    let at = heap.len();
    heap.resize(at + PAGE_LINES, [0; 8]);
    for (k, &w) in page.iter().enumerate() {
        heap[at + k / 16][(k % 16) / 2] |= u64::from(w) << (32 * (k & 1));
    }
    at as u32
}

/// More distinct tier-2 values than the value table holds.
pub(super) struct TooManyValues;

/// Builds the image of `routes` (sorted by prefix, each prefix once).
pub(super) fn build(routes: &[Versioned<Route>]) -> Result<Image, TooManyValues> {
    let mut img = Image {
        tier1: vec![0; TIER1_WORDS],
        values: Vec::new(),
        nexthops: Vec::new(),
        nh_next: 1,
        lpm: vec![[0; 8]],
        blk: vec![[0; 8]],
        top_lpm: [0; 256],
        top_blk: [0; 256],
        live: routes.len(),
        len_counts: [0; 33],
        origins: [0; Origin::ALL.len()],
    };
    let mut value_index: FastMap<u32, u16> = FastMap::default();
    let mut records = Records {
        img: &mut img.nexthops,
        index: FastMap::default(),
        next: 1,
    };
    // Tables name few next hops: a small direct-mapped cache in front of the map saves
    // hashing one per route. (Position in the records, record.)
    let mut recent: [Option<(NextHop, u32, u32)>; 16] = [None; 16];
    let mut nh_of = Vec::with_capacity(routes.len());
    for v in routes {
        let (p, i) = if v.entry.is_multipath() {
            let p = records.of(RecKey::of(&v.entry));
            (p, records.img[p as usize].at)
        } else {
            let nh = NextHop::of(&v.entry);
            let way = (nh.via.map_or(0, u32::from) ^ nh.metric) as usize % recent.len();
            match recent[way] {
                Some((h, p, i)) if h == nh => (p, i),
                _ => {
                    let p = records.of(RecKey::Hop(nh));
                    let i = records.img[p as usize].at;
                    recent[way] = Some((nh, p, i));
                    (p, i)
                }
            }
        };
        records.img[p as usize].refs += 1;
        nh_of.push(i);
        img.len_counts[v.entry.dst.len() as usize] += 1;
        img.origins[v.entry.origin.as_u8() as usize] += 1;
    }
    img.nh_next = records.next;

    // Tier 1 and the tier-2 paint jobs (slot, low, high, value), in key order: a route painted
    // after the routes that contain it wins where it lies. A /17 paints two slots: the second
    // slot's job waits in `carry` until the jobs of the first are all in, so that the jobs stay
    // in slot order and each slot's in key order.
    type Job = (u32, u32, u32, u32);
    let mut jobs: Vec<Job> = Vec::with_capacity(routes.len());
    let mut carry: Option<Job> = None;
    let push = |jobs: &mut Vec<Job>, carry: &mut Option<Job>, job: Job| {
        if let Some(c) = carry.take_if(|c| c.0 <= job.0) {
            jobs.push(c);
        }
        jobs.push(job);
    };
    for (v, &nh) in routes.iter().zip(&nh_of) {
        let (addr, len) = (v.entry.dst.addr_u32(), v.entry.dst.len());
        let val = value(len, nh, v.entry.origin.as_u8());
        if len <= 16 {
            let first = (addr >> 16) as usize;
            img.tier1[first..first + (1usize << (16 - len))].fill(val);
        } else if len == 17 {
            let s = slot_of(addr) as u32;
            push(&mut jobs, &mut carry, (s, 0, KEY_MASK + 1, val));
            carry = Some((s + 1, 0, KEY_MASK + 1, val));
        } else {
            let lo = addr & KEY_MASK;
            let hi = lo + (1 << (32 - u32::from(len)));
            push(&mut jobs, &mut carry, (slot_of(addr) as u32, lo, hi, val));
        }
    }
    jobs.extend(carry);
    debug_assert!(jobs.is_sorted_by_key(|j| j.0));
    let mut pages: BTreeMap<usize, Page> = BTreeMap::new();
    let (mut r, mut painted): (Ranges, Ranges) = (Vec::new(), Vec::new());
    // Buffers kept across slots: one allocation each, not one per slot.
    let (mut indexed, mut lines) = (Vec::new(), Vec::new());
    // As for next hops: (value, index), value 0 never cached.
    let mut recent_values = [(0u32, 0u16); 64];
    for ops in jobs.chunk_by(|a, b| a.0 == b.0) {
        let slot = ops[0].0 as usize;
        r.clear();
        r.push((0, 0));
        for &(_, lo, hi, v) in ops {
            chunk::paint_into(&r, lo, hi, |_| true, v, &mut painted);
            std::mem::swap(&mut r, &mut painted);
        }
        let w = if r.len() == 1 {
            r[0].1
        } else {
            indexed.clear();
            for &(s, v) in &r {
                let i = if v == 0 {
                    0
                } else {
                    let way = (v ^ (v >> 24)) as usize % recent_values.len();
                    let i = match recent_values[way] {
                        (w, i) if w == v => i,
                        _ => {
                            let next = img.values.len() + 1;
                            if next >= VALUE_SLOTS && !value_index.contains_key(&v) {
                                return Err(TooManyValues);
                            }
                            let i = *value_index.entry(v).or_insert_with(|| {
                                img.values.push((v, 0));
                                next as u16
                            });
                            recent_values[way] = (v, i);
                            i
                        }
                    };
                    img.values[usize::from(i) - 1].1 += 1;
                    i
                };
                indexed.push((s, i));
            }
            let at = img.lpm.len() as u32;
            let depth = chunk::encode_into(&indexed, at, &mut lines);
            img.lpm.extend_from_slice(&lines);
            chunk_word(depth, at)
        };
        if w != 0 {
            pages
                .entry(slot / PAGE_SLOTS)
                .or_insert_with(|| Box::new([0; PAGE_SLOTS]))[slot % PAGE_SLOTS] = w;
        }
    }
    for (p, page) in pages {
        img.top_lpm[p] = write_page(&mut img.lpm, &page);
    }

    // Entry blocks: routes are in key order, so each slot's are consecutive and sorted. A
    // slot's block takes at most a line per 4 routes and 2 more; capacity is only address
    // space until it is written, and reserving it saves copying the heap as it grows.
    let slots = routes.len().min(SLOTS);
    img.blk
        .reserve(routes.len() / 4 + 2 * slots + PAGE_LINES * slots.div_ceil(PAGE_SLOTS));
    let mut pages: BTreeMap<usize, Page> = BTreeMap::new();
    let mut i = 0;
    while i < routes.len() {
        let slot = slot_of(routes[i].entry.dst.addr_u32());
        let end = i + routes[i..]
            .iter()
            .take_while(|v| slot_of(v.entry.dst.addr_u32()) == slot)
            .count();
        let n = end - i;
        let at = img.blk.len();
        img.blk.resize(at + block_lines(n), [0; 8]);
        let first = if n as u32 > SHORT_BLOCK_MAX {
            img.blk[at][0] = n as u64;
            at + 1
        } else {
            at
        };
        for (j, (v, &nh)) in routes[i..end].iter().zip(&nh_of[i..end]).enumerate() {
            let l = &mut img.blk[first + j / 4];
            l[(j % 4) * 2] = entry_word(
                v.entry.dst.addr_u32(),
                v.entry.dst.len(),
                v.entry.origin.as_u8(),
                nh,
            );
            l[(j % 4) * 2 + 1] = v.seq & SEQ_MASK;
        }
        pages
            .entry(slot / PAGE_SLOTS)
            .or_insert_with(|| Box::new([0; PAGE_SLOTS]))[slot % PAGE_SLOTS] =
            block_word(n as u32, at as u32);
        i = end;
    }
    for (p, page) in pages {
        img.top_blk[p] = write_page(&mut img.blk, &page);
    }
    Ok(img)
}
