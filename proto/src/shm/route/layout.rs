//! The route table file, layout version 5: its regions and the encoding of every word in them.
//!
//! ```text
//! offset                 size                  contents
//! 0                      4096                  header (`shm::header`), with top_lpm and top_blk
//! region[TIER1] = 4096   4 × 2^16              tier 1: one value per /16 (routes /0–/16)
//! region[VALUES]         4 × 2^16              the value table of tier-2 chunks
//! region[NH]             64 × region[NH_CAP]   next-hop records
//! region[LPM]            64 × region[LPM_MAX]  the LPM heap: pages of top_lpm and chunks;
//!                                              lpm_lines of it are in use (grows in place)
//! region[BLK]            64 × region[BLK_MAX]  the block heap: pages of top_blk and entry
//!                                              blocks; heap_lines of it in use (grows in place)
//! ```
//!
//! Only the parts in use are backed by storage; a reader maps up to the end of the block heap's
//! reservation (`map_len`) and reads a heap only below its line count in the header.
//!
//! # Values
//!
//! A *value* (u32) says which route an address matches: `0` is none; otherwise bit 31 is set,
//! bit 30 is the route's origin (0: written through rtm, 1: mirrored from the kernel; the same
//! number as the entry's flags), bits 29..24 are the route's prefix length `depth` and bits
//! 23..0 its next-hop index. The
//! matching prefix is the address truncated to `depth` bits: a value names a route without
//! naming its prefix, so neighbouring address ranges with equal values are one range.
//!
//! # Longest-prefix match
//!
//! Routes of /0–/16 live in tier 1; routes of /17–/32 in tier 2, whose answer wins when it has
//! one:
//!
//! ```text
//! v = tier2(addr); if v == 0 { v = tier1[addr >> 16] }
//! ```
//!
//! Tier 2 resolves an address in its *slot* (its /18: `addr >> 14`, 2^18 slots) through
//! `top_lpm[addr >> 24]`, the first LPM-heap line of that /8's *page* (0: no page, every slot
//! empty): a page is 64 lines holding 1024 slot words (u32, the low half of each u64 first),
//! one per slot of the /8, indexed by `(addr >> 14) & 1023`. A slot word is
//!
//! ```text
//! 0                              empty: tier 1 answers
//! bit 31 set                     a value: the answer for the whole slot
//! bit 31 clear, non-zero         a chunk: bits 30..29 = depth - 1 of its tree (0..=3),
//!                                bits 28..0 = LPM-heap line of its root
//! ```
//!
//! A chunk divides the slot's 2^14 addresses (the key `k = addr & 0x3fff`) into ranges sorted
//! by start, the first at 0, each with a 16-bit index into the value table (0: the value 0).
//! Its lines:
//!
//! ```text
//! leaf line (up to 16 ranges):
//!   words 0..3  starts: 16 u16 lanes (lane i = bits 16(i%4).. of word i/4); unused lanes hold
//!               FILL (0x4000, above every key)
//!   words 4..7  value indices: 16 u16 lanes, lane i in word 4 + i/4
//! node line (trees of depth 2..=4):
//!   words 0..6  pivots: 28 u16 lanes, the first start under each child; FILL when unused
//!   word 7      bits 31..0: LPM-heap line of the first child (children are consecutive lines)
//! ```
//!
//! The range holding `k` in a line is `count(starts <= k) - 1`, counted four lanes at a time
//! with the carry-free subtraction `((k * 0x0001_0001_0001_0001) | H) - starts) & H` (`H` the
//! lanes' top bits): keys and starts are below 2^15, so no lane borrows from the next. A node
//! picks its child the same way; depth - 1 nodes lead to a leaf. The answer is
//! `values[index]`.
//!
//! # Next hops
//!
//! Record `i` of the next-hop region, 64 bytes, holds one next hop:
//!
//! ```text
//! word 0   seqlock sequence word (records are rewritten in place only under it)
//! word 1   bits 31..0 via address; bit 32 via present; bits 63..33 zero
//! word 2   bits 31..0 metric
//! words 3,4 device: 16 bytes, little-endian across the words: byte 0 = name length
//!           (0 = none, 1..=15), then the name, zero padded
//! words 5..7 zero
//! ```
//!
//! or is the head of a next-hop group (a multipath route's paths), which takes this record and
//! the next `ceil(n / 14)`:
//!
//! ```text
//! head     word 1 bit 63 set (the group mark), bits 8..0 the path count n (2..=256), the rest
//!          zero; word 2 the metric; words 3..7 zero
//! members  words 1..7 each hold two 32-bit member words (low half first), in path order:
//!          bits 23..0 the index of the path's next-hop record (metric 0), bits 31..24 its
//!          weight - 1; unused member words zero
//! ```
//!
//! Routes with the same via, device and metric share one record; multipath routes with the same
//! paths (in order, with weights) and metric share one group, and a group's paths share records
//! with the single-path routes of metric 0 through them. Routes name either kind the same way
//! (a value's or an entry's 24-bit index). A file that holds a group has the header's `incompat`
//! bit [`crate::shm::header::INCOMPAT_GROUPS`] set, so a reader that does not know groups
//! refuses it rather than misreading it. IPv6 and other routing tables get files of their own,
//! told apart by the header's `family` and `table_id`.
//!
//! # Entries (exact match and key order)
//!
//! Every route has a 16-byte entry in the *block* of the slot its prefix starts in
//! (`prefix.addr >> 14`), found through `top_blk[addr >> 24]` and a page of the block heap laid
//! out as for the LPM. A block word is `0` (no routes start in the slot) or `count << 26 | line`
//! with `count` 1..=62 entries packed four to a line from `line` on; `count` 63 means a long
//! block whose first line's word 0 holds the count and whose entries start at the next line.
//! Entries are sorted by prefix (address, then length):
//!
//! ```text
//! word A   bits 31..0 address; bits 37..32 length; bits 39..38 flags: the route's origin (0 rtm,
//!          1 kernel; no writer writes 2 or 3); bits 63..40 next-hop index
//! word B   bits 61..0 sequence number of the change that last wrote the route
//! ```
//!
//! # Change and reclamation
//!
//! Nothing a reader can reach is ever changed in place, except next-hop records (under their
//! seqlock) and single words (tier 1, the value table, page and top words), each stored with
//! `Release`: a new chunk or block is written whole into free lines, then published by one
//! store of the word that names it. The lines it replaces, and next-hop records and value-table
//! entries nothing names any more, are freed, and the writer reuses freed memory only after it
//! has incremented the header's `epoch` (a `Release` store, then a `Release` fence). A reader
//! loads `epoch` before it starts (then an `Acquire` fence) and again after it has read
//! everything (after an `Acquire` fence): if the two agree, nothing it read was reused
//! meanwhile, so what it read is what the words named when it read them. Otherwise it starts
//! again. The writer increments the epoch at most once per batch of changes (or per
//! millisecond).

/// The header's region words of a route file.
pub const REGION_TIER1: usize = 0;
pub const REGION_NH: usize = 1;
pub const REGION_NH_CAP: usize = 2;
pub const REGION_BLK: usize = 3;
pub const REGION_VALUES: usize = 4;
pub const REGION_LPM: usize = 5;
pub const REGION_LPM_MAX: usize = 6;
pub const REGION_BLK_MAX: usize = 7;

/// Words of tier 1 (one per /16).
pub const TIER1_WORDS: usize = 1 << 16;
/// Entries of the value table (chunk value indices are 16 bits; index 0 is the value 0).
pub const VALUE_SLOTS: usize = 1 << 16;
/// Slots of tier 2 (one per /18).
pub const SLOTS: usize = 1 << 18;
/// Slot words in a page (the slots of one /8).
pub const PAGE_SLOTS: usize = 1024;
/// Heap lines a page takes.
pub const PAGE_LINES: usize = PAGE_SLOTS * 4 / 64;
/// Bits of an address below its slot.
pub const SLOT_BITS: u32 = 14;
/// A slot key's mask.
pub const KEY_MASK: u32 = (1 << SLOT_BITS) - 1;
/// The lane value above every key: unused lanes of starts and pivots.
pub const FILL: u16 = 1 << SLOT_BITS;
/// Ranges in a leaf line.
pub const LEAF_RANGES: usize = 16;
/// Children of a node line.
pub const NODE_FANOUT: usize = 28;
/// Deepest tree of a chunk.
pub const MAX_TREE_DEPTH: usize = 4;

/// Value flag: the value names a route.
pub const VALUE_VALID: u32 = 1 << 31;
const DEPTH_SHIFT: u32 = 24;
/// Bits of a next-hop index.
pub const NH_BITS: u32 = 24;
const NH_MASK: u32 = (1 << NH_BITS) - 1;
/// Most next-hop records of a file.
pub const MAX_NEXTHOPS: usize = 1 << NH_BITS;

/// Where a value keeps its route's origin (one bit: there are two origins).
const VALUE_ORIGIN_SHIFT: u32 = 30;
const _: () = assert!(crate::types::Origin::ALL.len() <= 2);

/// The value of a route of prefix length `depth` through next-hop record `nh`, whose entry
/// has `flags` (its origin's number).
#[inline]
pub const fn value(depth: u8, nh: u32, flags: u8) -> u32 {
    VALUE_VALID
        | (((flags & 1) as u32) << VALUE_ORIGIN_SHIFT)
        | ((depth as u32) << DEPTH_SHIFT)
        | (nh & NH_MASK)
}

/// A value's entry flags (its route's origin).
#[inline]
pub const fn value_flags(v: u32) -> u8 {
    ((v >> VALUE_ORIGIN_SHIFT) & 1) as u8
}

/// A value's route's origin.
#[inline]
pub fn value_origin(v: u32) -> crate::types::Origin {
    if value_flags(v) == 0 {
        crate::types::Origin::Rtm
    } else {
        crate::types::Origin::Kernel
    }
}

/// The origin entry `flags` name; `None` for flags no writer writes.
#[inline]
pub fn flags_origin(flags: u8) -> Option<crate::types::Origin> {
    crate::types::Origin::from_u8(flags)
}

/// A value's prefix length.
#[inline]
pub const fn value_depth(v: u32) -> u8 {
    ((v >> DEPTH_SHIFT) & 0x3f) as u8
}

/// A value's next-hop index.
#[inline]
pub const fn value_nh(v: u32) -> u32 {
    v & NH_MASK
}

/// Slot word of a chunk whose tree has `depth` levels (1..=4) and whose root is `line`.
#[inline]
pub const fn chunk_word(depth: usize, line: u32) -> u32 {
    (((depth as u32 - 1) & 3) << 29) | (line & CHUNK_LINE_MASK)
}

const CHUNK_LINE_MASK: u32 = (1 << 29) - 1;
/// Most lines a heap of a route file has (block lines are 26 bits).
pub const MAX_HEAP_LINES: usize = 1 << 26;

/// A chunk slot word's (tree depth, root line).
#[inline]
pub const fn chunk_of(w: u32) -> (usize, u32) {
    (((w >> 29) & 3) as usize + 1, w & CHUNK_LINE_MASK)
}

/// Entries a short block holds; its count field says so, [`LONG_BLOCK`] says "see line 0".
pub const SHORT_BLOCK_MAX: u32 = 62;
/// Block count field of a long block.
pub const LONG_BLOCK: u32 = 63;
const BLOCK_LINE_MASK: u32 = (1 << 26) - 1;

/// A block word.
#[inline]
pub const fn block_word(count: u32, line: u32) -> u32 {
    let c = if count > SHORT_BLOCK_MAX {
        LONG_BLOCK
    } else {
        count
    };
    (c << 26) | (line & BLOCK_LINE_MASK)
}

/// A block word's (count field, first line).
#[inline]
pub const fn block_of(w: u32) -> (u32, u32) {
    (w >> 26, w & BLOCK_LINE_MASK)
}

/// Heap lines a block of `count` entries takes.
#[inline]
pub const fn block_lines(count: usize) -> usize {
    if count == 0 {
        0
    } else if count as u32 <= SHORT_BLOCK_MAX {
        count.div_ceil(4)
    } else {
        1 + count.div_ceil(4)
    }
}

/// Entry flags of a route written through rtm (flags are the origin's number,
/// [`crate::types::Origin::as_u8`]).
pub const ORIGIN_RTM: u8 = 0;

/// An entry's first word.
#[inline]
pub const fn entry_word(addr: u32, len: u8, flags: u8, nh: u32) -> u64 {
    addr as u64 | ((len as u64 & 0x3f) << 32) | ((flags as u64 & 3) << 38) | ((nh as u64) << 40)
}

/// An entry word's (address, length, flags, next hop).
#[inline]
pub const fn entry_fields(w: u64) -> (u32, u8, u8, u32) {
    (
        w as u32,
        ((w >> 32) & 0x3f) as u8,
        ((w >> 38) & 3) as u8,
        (w >> 40) as u32,
    )
}

/// The sort key of an entry word: (address, length).
#[inline]
pub const fn entry_order(w: u64) -> u64 {
    ((w & 0xffff_ffff) << 8) | ((w >> 32) & 0x3f)
}

/// The slot a prefix starts in.
#[inline]
pub const fn slot_of(addr: u32) -> usize {
    (addr >> SLOT_BITS) as usize
}
