//! A slot's chunk: the address ranges of one /18 and their values, in one leaf line or a small
//! tree of lines (layout: "Longest-prefix match"). Searching a chunk is what a reader does;
//! encoding, decoding and repainting ranges is the writer's part.

use super::layout::{value_depth, FILL, KEY_MASK, LEAF_RANGES, MAX_TREE_DEPTH, NODE_FANOUT};
use crate::shm::sync::Ordering::Relaxed;
use crate::shm::sync::{lanes_le, Line};

/// Four lanes of [`FILL`], above every key.
const FILL_LANES: u64 = FILL as u64 * 0x0001_0001_0001_0001;

/// The four words of `line` from `at` on.
#[inline(always)]
fn words4(line: &Line, at: usize) -> [u64; 4] {
    std::array::from_fn(|i| line[at + i].load(Relaxed))
}

/// The value index of key `k` in `line`, a leaf.
#[inline(always)]
fn leaf(line: &Line, k: u32) -> Option<u16> {
    let c = lanes_le(words4(line, 0), k);
    // No lane counted: not a leaf of a chunk (garbage), and `get` refuses the index.
    let i = (c as usize).wrapping_sub(1);
    let w = line.get(4 + i / 4)?.load(Relaxed);
    Some((w >> (16 * (i % 4))) as u16)
}

/// The value index of key `k` (`addr & 0x3fff`) in the chunk of `depth` levels rooted at
/// `root`, or `None` if the lines read cannot be a chunk (memory reused under a reader: the
/// epoch check tells it to retry).
#[inline(always)]
pub fn search(lpm: &[Line], depth: usize, root: u32, k: u32) -> Option<u16> {
    let line = lpm.get(root as usize)?;
    if depth == 1 {
        return leaf(line, k);
    }
    search_tree(lpm, depth, line, k)
}

/// [`search`] below a node line: chunks of more than one line are rare.
#[inline(never)]
fn search_tree<'a>(lpm: &'a [Line], depth: usize, mut line: &'a Line, k: u32) -> Option<u16> {
    for _ in 1..depth.min(super::layout::MAX_TREE_DEPTH) {
        let mut high = words4(line, 4);
        // Word 7 is the first child's line, not pivots.
        high[3] = FILL_LANES;
        let c = lanes_le(words4(line, 0), k) + lanes_le(high, k);
        let child = (c as usize).checked_sub(1)?;
        let base = line[7].load(Relaxed) as u32 as usize;
        line = lpm.get(base.checked_add(child)?)?;
    }
    leaf(line, k)
}

/// A chunk as the writer handles it: ranges `(start, value)` sorted by start, the first at 0,
/// no two neighbours with equal values. Chunks in the file hold value indices instead of
/// values (the value table maps them back).
pub type Ranges = Vec<(u16, u32)>;

/// Lines of a chunk holding `n` ranges, and its tree depth.
pub fn shape(n: usize) -> (usize, usize) {
    let mut level = n.div_ceil(LEAF_RANGES).max(1);
    let (mut lines, mut depth) = (level, 1);
    while level > 1 {
        level = level.div_ceil(NODE_FANOUT);
        lines += level;
        depth += 1;
    }
    (lines, depth)
}

/// Encodes `r` — ranges with value indices, at least two — as lines to be written from LPM-heap
/// line `at` on; returns the lines and the tree depth. The root comes first, then each level
/// down; the leaves last.
pub fn encode(r: &[(u16, u16)], at: u32) -> (Vec<[u64; 8]>, usize) {
    let mut lines = Vec::new();
    let depth = encode_into(r, at, &mut lines);
    (lines, depth)
}

/// [`encode`] into `lines` (emptied first), so that a caller encoding many chunks keeps one
/// buffer; returns the tree depth.
pub fn encode_into(r: &[(u16, u16)], at: u32, lines: &mut Vec<[u64; 8]>) -> usize {
    let n = r.len();
    let (total, depth) = shape(n);
    debug_assert!(depth <= MAX_TREE_DEPTH, "{n} ranges");
    // Level sizes, root level first (on the stack: a chunk is encoded for every slot that
    // changes, and most are one leaf).
    let mut sizes = [0usize; MAX_TREE_DEPTH];
    let mut levels = 1;
    sizes[0] = n.div_ceil(LEAF_RANGES).max(1);
    while sizes[levels - 1] > 1 {
        sizes[levels] = sizes[levels - 1].div_ceil(NODE_FANOUT);
        levels += 1;
    }
    let sizes = &mut sizes[..levels];
    sizes.reverse();
    let mut first = [0usize; MAX_TREE_DEPTH]; // first line of each level
    let mut off = 0;
    for (f, s) in first.iter_mut().zip(sizes.iter()) {
        *f = off;
        off += s;
    }
    lines.clear();
    lines.resize(total, [0u64; 8]);
    // Leaves.
    let leaves = first[levels - 1];
    for (j, part) in r.chunks(LEAF_RANGES).enumerate() {
        let l = &mut lines[leaves + j];
        let mut starts = [FILL; LEAF_RANGES];
        let mut vals = [0u16; LEAF_RANGES];
        for (i, &(s, v)) in part.iter().enumerate() {
            starts[i] = s;
            vals[i] = v;
        }
        for w in 0..4 {
            l[w] = lanes(&starts[4 * w..4 * w + 4]);
            l[4 + w] = lanes(&vals[4 * w..4 * w + 4]);
        }
    }
    if levels == 1 {
        return depth;
    }
    // Nodes, level by level upwards: the first start under each child.
    let mut below: Vec<u16> = r.chunks(LEAF_RANGES).map(|c| c[0].0).collect();
    for lvl in (0..levels - 1).rev() {
        let mut this = Vec::with_capacity(sizes[lvl]);
        for (j, kids) in below.chunks(NODE_FANOUT).enumerate() {
            let l = &mut lines[first[lvl] + j];
            let mut piv = [FILL; NODE_FANOUT];
            piv[..kids.len()].copy_from_slice(kids);
            for (w, q) in l.iter_mut().zip(piv.chunks(4)) {
                *w = lanes(q);
            }
            l[7] = u64::from(at) + (first[lvl + 1] + j * NODE_FANOUT) as u64;
            this.push(kids[0]);
        }
        below = this;
    }
    depth
}

fn lanes(q: &[u16]) -> u64 {
    q.iter()
        .enumerate()
        .fold(0, |w, (i, &s)| w | (u64::from(s) << (16 * i)))
}

/// The u16 lanes of `words` that are not FILL.
fn used_lanes(words: &[u64]) -> impl Iterator<Item = (usize, u16)> + '_ {
    words
        .iter()
        .flat_map(|w| (0..4).map(move |i| (*w >> (16 * i)) as u16))
        .enumerate()
        .filter(|&(_, s)| s != FILL)
}

/// The ranges (with value indices) of the chunk of `depth` levels rooted at `root` in the
/// writer's own mapping, and the lines it takes.
pub fn decode(lpm: &[Line], depth: usize, root: u32) -> (Vec<(u16, u16)>, u32) {
    let mut out = Vec::new();
    let mut lines = 0;
    walk(lpm, depth, root, &mut out, &mut lines);
    (out, lines)
}

fn walk(lpm: &[Line], depth: usize, line: u32, out: &mut Vec<(u16, u16)>, lines: &mut u32) {
    *lines += 1;
    let l = &lpm[line as usize];
    let w: [u64; 8] = std::array::from_fn(|i| l[i].load(Relaxed));
    if depth == 1 {
        for (i, s) in used_lanes(&w[..4]) {
            out.push((s, (w[4 + i / 4] >> (16 * (i % 4))) as u16));
        }
    } else {
        let base = w[7] as u32;
        for (i, _) in used_lanes(&w[..7]) {
            walk(lpm, depth - 1, base + i as u32, out, lines);
        }
    }
}

/// Sets the value of every address in `[lo, hi)` whose value `repaint` accepts to `new`,
/// keeping the ranges sorted and merged. `hi` may be 2^14 (the end of the slot).
pub fn paint(r: &Ranges, lo: u32, hi: u32, repaint: impl Fn(u32) -> bool, new: u32) -> Ranges {
    let mut out: Ranges = Vec::with_capacity(r.len() + 2);
    paint_into(r, lo, hi, repaint, new, &mut out);
    out
}

/// [`paint`] into `out` (emptied first), so that a caller painting many times can keep one
/// buffer.
pub fn paint_into(
    r: &Ranges,
    lo: u32,
    hi: u32,
    repaint: impl Fn(u32) -> bool,
    new: u32,
    out: &mut Ranges,
) {
    out.clear();
    let mut push = |s: u32, v: u32| {
        if out.last().is_none_or(|&(_, last)| last != v) {
            out.push((s as u16, v));
        }
    };
    for (i, &(s, v)) in r.iter().enumerate() {
        let s = u32::from(s);
        let e = r.get(i + 1).map_or(KEY_MASK + 1, |&(n, _)| u32::from(n));
        if e <= lo || s >= hi || !repaint(v) {
            push(s, v);
            continue;
        }
        if s < lo {
            push(s, v);
        }
        push(s.max(lo), new);
        if e > hi {
            push(hi, v);
        }
    }
}

/// The ranges of a slot holding one value throughout.
pub fn uniform(v: u32) -> Ranges {
    vec![(0, v)]
}

/// Whether a value loses to a route of length `len` (it is empty or a shorter route).
#[inline]
pub fn loses_to(len: u8) -> impl Fn(u32) -> bool + Copy {
    move |v| v == 0 || value_depth(v) < len
}

/// Whether a value is the route of length `len` (in its own range: at most one route of a
/// length contains an address).
#[inline]
pub fn is_len(len: u8) -> impl Fn(u32) -> bool + Copy {
    move |v| v != 0 && value_depth(v) == len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::sync::AtomicU64;

    fn heap_of(lines: &[[u64; 8]]) -> Vec<Line> {
        lines
            .iter()
            .map(|l| std::array::from_fn(|i| AtomicU64::new(l[i])))
            .collect()
    }

    /// Ranges with about `n` boundaries at pseudo-random places, value indices distinct.
    fn ranges(n: usize, seed: u32) -> Vec<(u16, u16)> {
        let mut starts: Vec<u16> = (0..n as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % (KEY_MASK + 1)) as u16)
            .collect();
        starts.push(0);
        starts.sort_unstable();
        starts.dedup();
        starts
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, i as u16 + 1))
            .collect()
    }

    fn index_at(r: &[(u16, u16)], k: u32) -> u16 {
        r.iter()
            .rev()
            .find(|&&(s, _)| u32::from(s) <= k)
            .map(|&(_, v)| v)
            .unwrap()
    }

    #[test]
    fn every_key_finds_its_range_at_every_size() {
        for n in [
            1, 2, 15, 16, 17, 27, 28, 29, 447, 448, 449, 1000, 12543, 12544, 12600, 16383,
        ] {
            let r = ranges(n, n as u32);
            if r.len() < 2 {
                continue;
            }
            let at = 5;
            let (lines, depth) = encode(&r, at);
            assert_eq!((lines.len(), depth), shape(r.len()));
            let mut all = vec![[0u64; 8]; at as usize];
            all.extend(lines);
            let heap = heap_of(&all);
            for k in (0..=KEY_MASK).step_by(if n > 1000 { 1 } else { 3 }) {
                assert_eq!(
                    search(&heap, depth, at, k),
                    Some(index_at(&r, k)),
                    "{} ranges, key {k}",
                    r.len()
                );
            }
            assert_eq!(
                decode(&heap, depth, at),
                (r.clone(), shape(r.len()).0 as u32)
            );
        }
    }

    #[test]
    fn paint_splits_and_merges() {
        use super::super::layout::value;
        let a = value(17, 1, 0);
        let b = value(24, 2, 0);
        let r = uniform(a);
        let r = paint(&r, 256, 512, loses_to(24), b);
        assert_eq!(r, vec![(0, a), (256, b), (512, a)]);
        // A longer route inside stays; the shorter one around it is repainted.
        let c = value(20, 3, 0);
        let r2 = paint(&r, 0, 1024, loses_to(20), c);
        assert_eq!(r2, vec![(0, c), (256, b), (512, c), (1024, a)]);
        // Deleting b restores what covers it.
        let r3 = paint(&r2, 256, 512, is_len(24), c);
        assert_eq!(r3, vec![(0, c), (1024, a)]);
        // Painting the whole slot.
        assert_eq!(paint(&r3, 0, KEY_MASK + 1, |_| true, 0), uniform(0));
    }

    #[test]
    fn garbage_never_panics() {
        let heap = heap_of(&[[u64::MAX; 8], [0; 8], [0x1234_5678_9abc_def0; 8]]);
        for depth in 1..=4 {
            for root in 0..4 {
                for k in [0, 1, KEY_MASK] {
                    let _ = search(&heap, depth, root, k);
                }
            }
        }
    }
}
