//! The writer's changes to what readers search: slot words, the chunks of tier 2 and tier 1's
//! words (longest-prefix match), and the entry blocks (exact match and key order). Each is a
//! copy-on-write of one chunk or block, published by one store.

use super::super::chunk::{self, Ranges};
use super::super::layout::{
    block_lines, block_word, chunk_of, chunk_word, entry_fields, flags_origin, slot_of, value,
    KEY_MASK, PAGE_LINES, PAGE_SLOTS, SHORT_BLOCK_MAX, VALUE_VALID,
};
use super::room::Which;
use super::{too_many_values, RouteWriter};
use crate::shm::record::{ShmError, Versioned, SEQ_MASK};
use crate::shm::sync::{AtomicU32, Ordering::Relaxed, Ordering::Release};
use crate::types::{Prefix, Route};

use super::super::nexthops::RecKey;
use super::super::view::Record;

/// A chunk in the file: its root line, its lines and the value indices of its ranges (to
/// release when it is replaced); `None` for a slot word holding one value.
pub(super) type OldChunk = Option<(u32, u32, Vec<u16>)>;

/// A run of heap lines: (first, count), if there is one.
pub(super) type Lines = Option<(u32, u32)>;

/// The slots a tier-2 prefix covers and its key range in each.
pub(super) fn tier2_spans(addr: u32, len: u8) -> impl Iterator<Item = (usize, u32, u32)> {
    let s = slot_of(addr);
    let (n, lo, hi) = if len == 17 {
        (2, 0, KEY_MASK + 1)
    } else {
        let lo = addr & KEY_MASK;
        (1, lo, lo + (1 << (32 - u32::from(len))))
    };
    (0..n).map(move |i| (s + i, lo, hi))
}

impl RouteWriter {
    // ===== slot words =====

    /// Stores slot word `w` of `slot` in the pages of `which` heap, making the page if needed.
    pub(super) fn set_slot_word(
        &mut self,
        which: Which,
        slot: usize,
        w: u32,
    ) -> Result<(), ShmError> {
        let p = slot / PAGE_SLOTS;
        let mut page = self.top(which)[p].load(Relaxed);
        if page == 0 {
            if w == 0 {
                return Ok(());
            }
            page = self.alloc(which, PAGE_LINES as u32)?;
            self.write_lines(which, page, &[[0u64; 8]; PAGE_LINES]);
            self.top(which)[p].store(page, Release);
        }
        let k = slot % PAGE_SLOTS;
        let word = &self.lines_of(which)[page as usize + k / 16][(k % 16) / 2];
        let shift = 32 * (k & 1);
        let old = word.load(Relaxed);
        word.store(
            (old & !(0xffff_ffffu64 << shift)) | (u64::from(w) << shift),
            Release,
        );
        Ok(())
    }

    fn top(&self, which: Which) -> &[AtomicU32; 256] {
        match which {
            Which::Lpm => &self.header().top_lpm,
            Which::Blk => &self.header().top_blk,
        }
    }

    // ===== longest-prefix match =====

    /// The ranges of a tier-2 slot with their values, and for a chunk its root, lines and
    /// value indices (to release when it is replaced).
    pub(super) fn slot_ranges(&self, slot: usize) -> (Ranges, OldChunk) {
        let w = self.view().tier2_word(slot).unwrap_or(0);
        if w == 0 || w & VALUE_VALID != 0 {
            return (chunk::uniform(w), None);
        }
        let (depth, root) = chunk_of(w);
        let (indexed, lines) = chunk::decode(self.view().lpm, depth, root);
        let ranges = indexed
            .iter()
            .map(|&(s, i)| (s, self.values.get(i)))
            .collect();
        let indices = indexed.into_iter().map(|(_, i)| i).collect();
        (ranges, Some((root, lines, indices)))
    }

    /// Repaints the tier-1 words of `addr/len` (a /0–/16) whose value `repaint` accepts with
    /// `new`, each with one store.
    pub(super) fn paint_tier1(&self, addr: u32, len: u8, repaint: impl Fn(u32) -> bool, new: u32) {
        let first = (addr >> 16) as usize;
        let words = &self.view().tier1[first..first + (1usize << (16 - len))];
        for w in words {
            if repaint(w.load(Relaxed)) {
                w.store(new, Release);
            }
        }
    }

    /// Replaces tier-2 slot `slot`'s chunk with `ranges` (a value for the whole slot if there
    /// is one range): the new chunk is written into reserved lines and published by one store;
    /// the old one's lines and value entries (`old`, as [`RouteWriter::slot_ranges`] found
    /// them) are freed. `image` is a buffer the caller keeps from one chunk to the next.
    pub(super) fn write_chunk(
        &mut self,
        slot: usize,
        ranges: &Ranges,
        old: OldChunk,
        image: &mut Vec<[u64; 8]>,
    ) -> Result<(), ShmError> {
        let w = if ranges.len() == 1 {
            ranges[0].1
        } else {
            let mut indexed = Vec::with_capacity(ranges.len());
            for &(s, v) in ranges {
                let (i, fresh) = self.values.acquire(v).ok_or_else(too_many_values)?;
                if fresh {
                    // The entry holds its value before a chunk names it.
                    self.view().values[usize::from(i)].store(v, Release);
                }
                indexed.push((s, i));
            }
            let (lines, _) = chunk::shape(indexed.len());
            let at = self.alloc(Which::Lpm, lines as u32)?;
            let depth = chunk::encode_into(&indexed, at, image);
            self.write_lines(Which::Lpm, at, image);
            chunk_word(depth, at)
        };
        self.set_slot_word(Which::Lpm, slot, w)?;
        if let Some((root, lines, indices)) = old {
            self.lpm.release(root, lines);
            for i in indices {
                self.values.release(i);
            }
        }
        Ok(())
    }

    /// The value of the longest route shorter than `len` that contains `addr/len`, among the
    /// routes of the same tier (0: none; tier 1 answers for tier 2).
    pub(super) fn covering(&self, addr: u32, len: u8) -> u32 {
        let v = self.view();
        let shortest = if len >= 17 { 17 } else { 0 };
        for l in (shortest..len).rev() {
            if self.len_counts[l as usize] == 0 {
                continue;
            }
            let q = Prefix::truncating(addr.into(), l);
            if let Ok(Some((nh, flags, _))) = v.find(q.addr_u32(), l) {
                return value(l, nh, flags);
            }
        }
        0
    }

    // ===== entry blocks =====

    /// The entries of `slot`'s block into `entries` (emptied first), and the block's (first
    /// line, lines).
    pub(super) fn block_entries(&self, slot: usize, entries: &mut Vec<(u64, u64)>) -> Lines {
        entries.clear();
        let v = self.view();
        let (n, first) = v.block(slot).unwrap_or((0, 0));
        if n == 0 {
            return None;
        }
        entries.extend((0..n).map(|i| v.entry(first, i).unwrap_or((0, 0))));
        let start = if n as u32 > SHORT_BLOCK_MAX {
            first - 1
        } else {
            first
        };
        Some((start, block_lines(n) as u32))
    }

    /// Replaces `slot`'s block with `entries` (sorted); `image` is a buffer the caller keeps
    /// from one block to the next.
    pub(super) fn set_block(
        &mut self,
        slot: usize,
        entries: &[(u64, u64)],
        old: Lines,
        image: &mut Vec<[u64; 8]>,
    ) -> Result<(), ShmError> {
        let n = entries.len();
        let w = if n == 0 {
            0
        } else {
            let lines = block_lines(n);
            let at = self.alloc(Which::Blk, lines as u32)?;
            image.clear();
            image.resize(lines, [0u64; 8]);
            let skip = usize::from(n as u32 > SHORT_BLOCK_MAX);
            if skip == 1 {
                image[0][0] = n as u64;
            }
            for (j, &(a, b)) in entries.iter().enumerate() {
                image[skip + j / 4][(j % 4) * 2] = a;
                image[skip + j / 4][(j % 4) * 2 + 1] = b;
            }
            self.write_lines(Which::Blk, at, image);
            block_word(n as u32, at)
        };
        self.set_slot_word(Which::Blk, slot, w)?;
        if let Some((line, lines)) = old {
            self.blk.release(line, lines);
        }
        Ok(())
    }

    /// What next-hop record `i` of our own file holds.
    pub(super) fn rec_key(&self, i: u32) -> Option<RecKey> {
        if let Some(g) = self.nhs.group_at(i) {
            return Some(RecKey::Group(g.clone()));
        }
        match self.view().record(i).ok()? {
            Record::Hop(h) => Some(RecKey::Hop(h)),
            Record::Group { .. } => None,
        }
    }

    /// A versioned route from an entry's words.
    pub(super) fn route_of(&self, a: u64, b: u64) -> Option<Versioned<Route>> {
        let (addr, len, flags, nh) = entry_fields(a);
        let dst = Prefix::truncating(addr.into(), len);
        Some(Versioned {
            entry: self.view().route(nh, dst, flags_origin(flags)?).ok()?,
            seq: b & SEQ_MASK,
        })
    }
}
