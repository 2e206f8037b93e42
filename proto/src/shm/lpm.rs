//! DIR-24-8 longest-prefix match of a route table (layout in [`super::layout`], "LPM"): the
//! writer's maintenance of `tbl24`/`tbl8`, and the reader's first step.
//!
//! The writer keeps no copy of the routes here: entries name a prefix length and a next-hop
//! slot ([`super::nexthop`]), and the hash table itself answers "which prefixes are present" when
//! a delete needs the next covering prefix.
//!
//! The module is private except in loom builds, where `tests/loom_lpm.rs` drives these `pub`
//! items directly.

use super::layout::{
    entry_depth, entry_index, entry_is_group, group_entry, route_entry, GROUP_ENTRIES,
    TBL24_ENTRIES,
};
use super::recycle::Recycler;
use super::sync::{
    fence, AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};

/// tbl24 words per 4 KiB page.
const PAGE_WORDS: usize = 1024;

/// The writer's bookkeeping for the LPM arrays of one file.
#[derive(Debug)]
pub struct Lpm {
    groups: Recycler,
    /// Groups currently referenced from tbl24.
    live_groups: usize,
    /// One bit per tbl24 page that may hold a non-zero word, so `clear` touches only those.
    dirty_pages: Vec<u64>,
}

/// Stores `new` in every entry of tbl24 words `first..first + count` for which `hit` holds:
/// the word itself, or each of the 256 entries of the group it links to.
fn rewrite24(
    t24: &[AtomicU32],
    t8: &[AtomicU32],
    first: usize,
    count: usize,
    hit: impl Fn(u32) -> bool,
    new: u32,
) {
    for w24 in &t24[first..first + count] {
        let w = w24.load(Relaxed);
        if entry_is_group(w) {
            let base = entry_index(w) * GROUP_ENTRIES;
            for x in &t8[base..base + GROUP_ENTRIES] {
                if hit(x.load(Relaxed)) {
                    x.store(new, Release);
                }
            }
        } else if hit(w) {
            w24.store(new, Release);
        }
    }
}

/// The `(first index, count)` of the tbl24 words a prefix of length `len <= 24` covers.
fn range24(addr: u32, len: u8) -> (usize, usize) {
    ((addr >> 8) as usize, 1usize << (24 - len))
}

/// The `(first index, count)` inside a group of a prefix of length `len > 24`.
fn range8(addr: u32, len: u8) -> (usize, usize) {
    ((addr & 0xff) as usize, 1usize << (32 - len))
}

/// Whether an entry should be overwritten by a new prefix of length `len` covering it: it is
/// empty, or it names a prefix that is not longer.
fn covered(x: u32, len: u8) -> bool {
    x == 0 || entry_depth(x) <= len
}

impl Lpm {
    pub fn new(groups: usize) -> Lpm {
        Lpm {
            groups: Recycler::new(groups),
            live_groups: 0,
            dirty_pages: vec![0; TBL24_ENTRIES / PAGE_WORDS / 64],
        }
    }

    /// Groups in use (for tests and diagnostics).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn live_groups(&self) -> usize {
        self.live_groups
    }

    fn mark(&mut self, i: usize) {
        let page = i / PAGE_WORDS;
        self.dirty_pages[page / 64] |= 1 << (page % 64);
    }

    /// Whether inserting a prefix of length `len` at `addr` can get the group it may need.
    pub fn can_insert(&self, t24: &[AtomicU32], addr: u32, len: u8) -> bool {
        len <= 24
            || entry_is_group(t24[(addr >> 8) as usize].load(Relaxed))
            || self.groups.can_alloc()
    }

    fn free_group(&mut self, g: usize) {
        self.live_groups -= 1;
        self.groups.free(g);
    }

    /// Makes the prefix `addr/len`, whose next hop is in next-hop slot `nh`, the answer for every
    /// address it covers that no longer prefix covers. The next-hop slot must already be
    /// written. Returns false (and changes nothing) only if a group was needed and none is left
    /// (see [`Lpm::can_insert`]).
    pub fn insert(
        &mut self,
        t24: &[AtomicU32],
        t8: &[AtomicU32],
        addr: u32,
        len: u8,
        nh: usize,
    ) -> bool {
        let e = route_entry(nh, len);
        if len <= 24 {
            let (first, count) = range24(addr, len);
            rewrite24(t24, t8, first, count, |w| covered(w, len), e);
            if count >= PAGE_WORDS {
                for page in first / PAGE_WORDS..(first + count) / PAGE_WORDS {
                    self.dirty_pages[page / 64] |= 1 << (page % 64);
                }
            } else {
                self.mark(first);
            }
            return true;
        }
        let i = (addr >> 8) as usize;
        let w = t24[i].load(Relaxed);
        let (lo, count) = range8(addr, len);
        if entry_is_group(w) {
            let base = entry_index(w) * GROUP_ENTRIES;
            for x in &t8[base + lo..base + lo + count] {
                if covered(x.load(Relaxed), len) {
                    x.store(e, Release);
                }
            }
            return true;
        }
        let Some((g, reused)) = self.groups.alloc() else {
            return false;
        };
        if reused {
            // Orders the stores that unlinked this group (made before it was freed) before the
            // refill, for readers that still hold the old link (they re-check it).
            fence(Release);
        }
        let group = &t8[g * GROUP_ENTRIES..(g + 1) * GROUP_ENTRIES];
        for (j, x) in group.iter().enumerate() {
            x.store(if (lo..lo + count).contains(&j) { e } else { w }, Relaxed);
        }
        // Publish the filled group.
        t24[i].store(group_entry(g), Release);
        self.live_groups += 1;
        self.mark(i);
        true
    }

    /// Switches the prefix `addr/len` from next-hop slot `old` to `new` (already written).
    pub fn repoint(
        &mut self,
        t24: &[AtomicU32],
        t8: &[AtomicU32],
        addr: u32,
        len: u8,
        old: usize,
        new: usize,
    ) {
        let (old, new) = (route_entry(old, len), route_entry(new, len));
        self.rewrite(t24, t8, addr, len, old, new);
    }

    /// Stores `new` in every entry of the range of `addr/len` that holds `old`. For a prefix
    /// longer than /24, returns the group its entries are in.
    fn rewrite(
        &self,
        t24: &[AtomicU32],
        t8: &[AtomicU32],
        addr: u32,
        len: u8,
        old: u32,
        new: u32,
    ) -> Option<usize> {
        if len <= 24 {
            let (first, count) = range24(addr, len);
            rewrite24(t24, t8, first, count, |w| w == old, new);
            return None;
        }
        let w = t24[(addr >> 8) as usize].load(Relaxed);
        if !entry_is_group(w) {
            debug_assert!(false, "prefix longer than /24 without a group");
            return None;
        }
        let g = entry_index(w);
        let (lo, count) = range8(addr, len);
        for x in &t8[g * GROUP_ENTRIES + lo..g * GROUP_ENTRIES + lo + count] {
            if x.load(Relaxed) == old {
                x.store(new, Release);
            }
        }
        Some(g)
    }

    /// Removes the prefix `addr/len`, whose next hop is in next-hop slot `nh`: every address
    /// that it answered is answered by `repl` instead (the entry word of the longest remaining
    /// prefix covering `addr/len`, or 0).
    pub fn remove(
        &mut self,
        t24: &[AtomicU32],
        t8: &[AtomicU32],
        addr: u32,
        len: u8,
        nh: usize,
        repl: u32,
    ) {
        let Some(g) = self.rewrite(t24, t8, addr, len, route_entry(nh, len), repl) else {
            return;
        };
        let i = (addr >> 8) as usize;
        let group = &t8[g * GROUP_ENTRIES..(g + 1) * GROUP_ENTRIES];
        // Without prefixes longer than /24 left, all 256 entries hold the same word (the covering
        // prefix of the whole /24, or 0): fold the group back into tbl24 and quarantine it.
        if group.iter().all(|x| covered(x.load(Relaxed), 24)) {
            let v = group[0].load(Relaxed);
            debug_assert!(group.iter().all(|x| x.load(Relaxed) == v));
            t24[i].store(v, Release);
            self.free_group(g);
        }
    }

    /// Empties both arrays (every address answers "no route"), touching only pages that were
    /// written. All groups are quarantined.
    pub fn clear(&mut self, t24: &[AtomicU32]) {
        for (k, bits) in self.dirty_pages.iter_mut().enumerate() {
            let mut b = *bits;
            while b != 0 {
                let page = k * 64 + b.trailing_zeros() as usize;
                b &= b - 1;
                for w24 in &t24[page * PAGE_WORDS..(page + 1) * PAGE_WORDS] {
                    let w = w24.load(Relaxed);
                    if w != 0 {
                        w24.store(0, Release);
                        if entry_is_group(w) {
                            self.live_groups -= 1;
                            self.groups.free(entry_index(w));
                        }
                    }
                }
            }
            *bits = 0;
        }
    }
}

/// A reader's first step for `addr`: `(tbl24 word, entry word)` where the entry word comes from
/// the group if the tbl24 word points at one. `None` if the words are out of range (a file being
/// rewritten under us is never trusted).
#[inline]
pub fn read_entry(t24: &[AtomicU32], t8: &[AtomicU32], addr: u32) -> Option<(u32, u32)> {
    let w = t24.get((addr >> 8) as usize)?.load(Relaxed);
    fence(Acquire);
    if !entry_is_group(w) {
        return Some((w, w));
    }
    let e = t8
        .get(entry_index(w) * GROUP_ENTRIES + (addr & 0xff) as usize)?
        .load(Relaxed);
    fence(Acquire);
    Some((w, e))
}

/// Whether the words [`read_entry`] returned are still in place (the reader's last step).
#[inline]
pub fn still(t24: &[AtomicU32], t8: &[AtomicU32], addr: u32, w: u32, e: u32) -> bool {
    if entry_is_group(w) {
        let now = t8[entry_index(w) * GROUP_ENTRIES + (addr & 0xff) as usize].load(Relaxed);
        fence(Acquire);
        if now != e {
            return false;
        }
    }
    t24[(addr >> 8) as usize].load(Relaxed) == w
}
