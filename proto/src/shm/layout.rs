//! The byte layout of an rtm shared-memory table file (layout version 4).
//!
//! All integers are in the host's native byte order (the file never leaves the machine). The file
//! holds offsets and sizes only, never pointers, so every process may map it anywhere.
//!
//! ```text
//! offset            size               contents
//! 0                 4096               Header (one page)
//! 4096 + S * i      S                  hash slot i, for i in 0..slot_count; S = slot_size:
//!                                      64 for ARP tables, 32 for route tables
//! route tables only:
//! tbl24_offset      4 * 2^24 (64 MiB)  tbl24: one LPM entry word per /24 block
//! tbl8_offset       1024 * tbl8_groups tbl8: groups of 256 LPM entry words
//! nexthop_offset    64 * nexthop_count next-hop slots (see "Next hops")
//! file length = 4096 + 64 * slot_count                          for ARP tables
//!             = nexthop_offset + 64 * nexthop_count             for route tables
//! (exactly; readers refuse any other length)
//! ```
//!
//! `tbl24_offset` is `4096 + 32 * slot_count` rounded up to a multiple of 4096, `tbl8_offset` is
//! `tbl24_offset + 4 * 2^24`, `nexthop_offset` is `tbl8_offset + 1024 * tbl8_groups`. The LPM
//! regions start all-zero (no route) and the writer touches only the pages it needs, so on tmpfs
//! untouched pages of the big regions use no memory.
//!
//! # Header (4096 bytes)
//!
//! ```text
//! offset size type  field           changes after creation?
//!   0     8   u64   magic           no   b"RTMSHM\0\0" read as a little-endian u64 (MAGIC)
//!   8     4   u32   layout_version  no   LAYOUT_VERSION (= 4)
//!  12     4   u32   kind            no   TableKind: 1 = route, 2 = arp
//!  16     4   u32   header_size     no   HEADER_SIZE (= 4096)
//!  20     4   u32   slot_size       no   hash slot size: SLOT_SIZE (= 64) for ARP tables,
//!                                        ROUTE_SLOT_SIZE (= 32) for route tables
//!  24     8   u64   slot_count      no   >= MIN_SLOTS (any value; not a power of two in general)
//!  32     8   u64   capacity        no   most live entries the writer will hold (< slot_count)
//!  40     8   u64   generation      no   1 for a fresh table; +1 each time the file is replaced
//!  48     4   u32   state           yes  STATE_ACTIVE (1) or STATE_RETIRED (2)
//!  52     4   u32   writer_pid      no   pid of the process that created the file
//!  56     8   u64   live            yes  number of LIVE slots (advisory; readers don't rely on it)
//!  64     8   u64   tombstones      yes  number of TOMBSTONE slots (advisory)
//!  72     8   u64   table_seq       yes  last committed per-table change sequence (Release store)
//!  80     8   u64   tbl24_offset    no   route: as above; arp: 0
//!  88     8   u64   tbl8_offset     no   route: as above; arp: 0
//!  96     8   u64   tbl8_groups     no   route: number of tbl8 groups (<= 2^24); arp: 0
//! 104     8   u64   nexthop_offset  no   route: as above; arp: 0
//! 112     8   u64   nexthop_count   no   route: number of next-hop slots (<= 2^24); arp: 0
//! 120  3976   -     reserved        no   zero
//! ```
//!
//! Fields that "change after creation" are only ever written with atomic stores by the single
//! writer process. Fields that don't are written before the file is renamed into place, so any
//! reader that can open the file sees them.
//!
//! # Hash slots
//!
//! ARP tables (64 bytes, one cache line), holding the entry itself:
//!
//! ```text
//! offset size field
//!   0     8   seq     seqlock word: even = stable, odd = being written (see `seqlock`)
//!   8    48   rec     6 words: the record as produced by `Record::encode`; word 0 is the key word
//!  56     8   meta    bits 63..62: slot state (EMPTY 0, LIVE 1, TOMBSTONE 2);
//!                     bits 61..0: sequence number of the change that last wrote the slot
//! ```
//!
//! Route tables (32 bytes, two to a cache line), naming the route's next-hop slot:
//!
//! ```text
//! offset size field
//!   0     8   seq     seqlock word
//!   8     8   key     the key word (`Record::key_word` of the prefix)
//!  16     8   hop     bits 23..0: index of the route's next-hop slot; bits 63..24 zero
//!  24     8   meta    as above
//! ```
//!
//! A route is its key with the via, dev and metric of the next-hop slot its hash slot names.
//! A reader of a route's hash slot reads the slot (seqlock), then the next-hop slot (seqlock),
//! then re-checks the hash slot's sequence word: the writer never lets a next-hop slot go while
//! a hash slot names it, and rewrites a private next-hop slot in place only while the hash slot
//! naming it is odd (see "Writer rules"), so an unchanged hash slot means the next hop read is
//! the route's own at that moment. Exact-match reads have no ABA gap (model-checked in
//! `proto/tests/loom_exact_match.rs`).
//!
//! An all-zero slot is EMPTY: a freshly sized file is a valid empty table.
//!
//! # Hash table
//!
//! Open addressing over `slot_count` slots: the home slot of a key is [`home_slot`]`(hash(kw),
//! slot_count)` (the high 64 bits of `hash(kw) * slot_count`, with [`hash`] the splitmix64
//! finalizer), then linear probing upward, wrapping from `slot_count - 1` to 0. A reader looking
//! for a key stops at an EMPTY slot, skips TOMBSTONE slots and LIVE slots holding other keys,
//! and never probes more than `slot_count` slots. Entries never move while the file is live;
//! deletes leave tombstones (or EMPTY slots when the next slot is EMPTY). When LIVE + TOMBSTONE
//! slots exceed 7/8 of the slots the writer compacts by publishing a new generation.
//!
//! # LPM (route tables): DIR-24-8
//!
//! Longest-prefix match uses the DIR-24-8 scheme. An *entry word* (u32) is
//!
//! ```text
//! 0                                   no route
//! bit 31 VALID | bit 30 GROUP=0 | bits 29..24 depth (0..=32) | bits 23..0 next-hop index
//!                                     a route of that prefix length, whose next hop (via, dev,
//!                                     metric) is in that next-hop slot
//! bit 31 VALID | bit 30 GROUP=1 | bits 23..0 group index (tbl24 only)
//!                                     look at tbl8[group * 256 + (addr & 0xff)] instead
//! ```
//!
//! `tbl24[addr >> 8]` is the entry for every address of that /24 unless it points at a group,
//! whose 256 entries hold the answer per last octet. For each address the entry names the longest
//! prefix present that contains it: its length (the prefix itself is the address truncated to
//! it) and its next hop. There is at most one prefix of a given length containing an address, so
//! an entry with depth `d` in a prefix's range is that prefix.
//!
//! ## Next hops
//!
//! The next-hop slots have the layout of ARP hash slots (64 bytes, seqlock word first). One in use
//! holds a route's record with key word 0 (as if the route were `0.0.0.0/0`): its via, dev and
//! metric, and state LIVE. There are two kinds, told apart only by the writer:
//!
//! - *shared*: the routes longer than /16 with the same (via, dev, metric) all name one slot. A
//!   table of a million routes through a few dozen next hops keeps them in a few cache lines, so
//!   a lookup costs one dependent miss (the tbl24 word; two for a /24 holding longer prefixes)
//!   instead of also missing on the route's own hash slot. A shared slot is never written while
//!   a route names it.
//! - *private*: each route of /16 or shorter has a slot of its own, rewritten in place (under its
//!   seqlock, inside a write of the route's hash slot) when the route's next hop changes:
//!   repointing its entries instead would rewrite up to 2^24 words.
//!
//! A slot no route uses any more keeps its last contents (still LIVE) until it is reused. Slot
//! indices say nothing across generations.
//!
//! ## Writer rules (single writer)
//! - Insert: the route's next-hop slot exists (a new one is written LIVE first), then the
//!   route's hash slot naming it is written (LIVE), then entries are stored with `Release`.
//! - Replace with the same next hop: only the hash slot is rewritten (its change sequence).
//! - Replace with another next hop: a private slot is rewritten in place, between the hash
//!   slot's odd and even sequence stores. Otherwise the new shared slot exists first, then the
//!   hash slot is rewritten to name it, then the prefix's entries are switched to it
//!   (`Release`), then the old one loses a user.
//! - Delete: entries are switched to the next covering prefix (or 0) first, then the hash slot
//!   becomes a TOMBSTONE (or EMPTY, see "Hash table"), then the next-hop slot loses a user.
//! - A next-hop slot no route uses any more, and a group whose /24 holds no prefix longer than
//!   /24 any more (it is folded back into its tbl24 word), are *quarantined*: reused only after a
//!   grace period (or, when no fresh one is left, the oldest at once). Before refilling a reused
//!   group the writer issues `fence(Release)`; a next-hop slot's refill is a seqlock write, whose
//!   own release fence orders the earlier stores the same way.
//!
//! ## Reader rules (lock-free, read-only mapping)
//! 1. `w = tbl24[addr >> 8]` (Relaxed load, `fence(Acquire)`); if it is a group, `e =
//!    tbl8[..]` (Relaxed, `fence(Acquire)`), else `e = w`. Indices are bounds-checked.
//! 2. `e == 0`: re-check `w` if a group was followed; answer "no route".
//! 3. Otherwise read next-hop slot `e.index` under its seqlock and accept it only if it is LIVE
//!    and decodes to a route with key word 0. The answer is `addr/e.depth` (truncated) with that
//!    next hop.
//! 4. Re-load the group entry and `w`; accept only if both are unchanged.
//! 5. On any failure retry. While the writer is alive (see "Writer liveness") a failure is
//!    transient (a slot being written, words being changed), so the reader keeps retrying, for a
//!    bounded time. After it, or at once when the writer is gone, the reader probes the hash
//!    table for `addr/32 .. addr/0` instead. The probes wait for a slot a live writer is
//!    writing, and skip one only if the writer is gone (it died mid-update; the file no longer
//!    changes then).
//!
//! A stale entry (pointing at a next-hop slot or group that was freed and reused) fails step 4:
//! the writer changed the word before reusing what it pointed at, and the fences order those
//! stores before the reuse; the seqlock of step 3 keeps a torn next hop out. So a lookup returns
//! a route that was the longest match at some moment during the lookup, never garbage, with one
//! gap (ABA): between the reader's steps 3 and 4 the slot it read is let go, refilled with
//! another next hop, and a word equal to `w` (and `e`) is stored again. Then the reader may
//! answer with a next hop the prefix never had. Refills wait for the grace period unless no
//! fresh slot or group is left, so this needs a reader descheduled across a whole let-go /
//! refill / re-store cycle. The hash table (exact match) has no such gap.
//!
//! # Writer liveness
//!
//! The writer holds an exclusive `flock(2)` on the file from before it is renamed into place
//! until the writer lets go of the file (a clean stop, a newer generation replacing it, or the
//! writer's death: the kernel releases the lock of a dead process). A slot whose seqlock word
//! stays odd is therefore only abandoned when a non-blocking shared `flock` on the reader's own
//! descriptor succeeds: with the lock held, the writer is merely descheduled in the middle of the
//! slot and will finish it, so readers wait for it instead of skipping a live entry (skipping it
//! would make an exact match miss a present key, or a longest-prefix match return a shorter
//! prefix). Readers release the shared lock at once; `writer_pid` is informational only (a pid
//! can be recycled).
//!
//! # Versioning
//!
//! `layout_version` covers this whole description, and readers refuse versions they don't know.
//! Version 1 had no LPM arrays and power-of-two slot counts; version 2 had no next-hop slots (its
//! entries held the route's hash-slot index); version 3 kept whole routes in 64-byte hash slots.

use super::sync::{AtomicU32, AtomicU64};

/// `b"RTMSHM\0\0"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RTMSHM\0\0");
/// Version of the layout described in this module.
pub const LAYOUT_VERSION: u32 = 4;
/// Size of the header; slots start at this offset.
pub const HEADER_SIZE: usize = 4096;
/// Size of an ARP hash slot and of a next-hop slot.
pub const SLOT_SIZE: usize = 64;
/// Words of such a slot after the seqlock word: the record plus the meta word.
pub const SLOT_WORDS: usize = 7;
/// Size of a route hash slot.
pub const ROUTE_SLOT_SIZE: usize = 32;
/// Words of a route hash slot after the seqlock word: key, next-hop index, meta.
pub const ROUTE_SLOT_WORDS: usize = 3;
/// Index of the next-hop word among a route hash slot's words.
pub const ROUTE_HOP_WORD: usize = 1;
/// Words a record encodes to (word 0 is the key word).
pub const PAYLOAD_WORDS: usize = 6;
/// Index of the meta word (state + change sequence) among a 64-byte slot's words (in every
/// slot it is the last word).
pub const META_WORD: usize = 6;
/// Smallest slot count a table is created with.
pub const MIN_SLOTS: usize = 8;
/// Largest capacity accepted (keeps sizes far from overflow).
pub const MAX_CAPACITY: usize = 1 << 30;

/// Header `state`: the file is the current one.
pub const STATE_ACTIVE: u32 = 1;
/// Header `state`: the file was replaced; readers should reopen the path.
pub const STATE_RETIRED: u32 = 2;

/// Slot state: never used since the table was created or cleared; readers stop probing.
pub const SLOT_EMPTY: u64 = 0;
/// Slot state: holds a record.
pub const SLOT_LIVE: u64 = 1;
/// Slot state: held a record that was removed; readers keep probing.
pub const SLOT_TOMBSTONE: u64 = 2;

const STATE_SHIFT: u32 = 62;
/// Mask of the change-sequence bits of the meta word (change sequences are stored mod 2^62).
pub const SEQ_MASK: u64 = (1 << STATE_SHIFT) - 1;

/// Builds a meta word from a slot state and a change sequence.
pub const fn meta(state: u64, seq: u64) -> u64 {
    (state << STATE_SHIFT) | (seq & SEQ_MASK)
}

/// The slot state of a meta word.
pub const fn meta_state(meta: u64) -> u64 {
    meta >> STATE_SHIFT
}

/// The change sequence of a meta word.
pub const fn meta_seq(meta: u64) -> u64 {
    meta & SEQ_MASK
}

/// The fixed hash of a key word: the splitmix64 finalizer. Every process must use exactly this.
pub const fn hash(key_word: u64) -> u64 {
    let mut z = key_word;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The home slot of a key whose hash is `h` in a table of `slot_count` slots: the high word of
/// `h * slot_count` (uniform for any slot count, no division).
#[inline]
pub const fn home_slot(h: u64, slot_count: usize) -> usize {
    ((h as u128 * slot_count as u128) >> 64) as usize
}

/// The slot after `i` in probe order.
#[inline]
pub const fn next_slot(i: usize, slot_count: usize) -> usize {
    if i + 1 == slot_count {
        0
    } else {
        i + 1
    }
}

/// The slot before `i` in probe order.
#[inline]
pub const fn prev_slot(i: usize, slot_count: usize) -> usize {
    if i == 0 {
        slot_count - 1
    } else {
        i - 1
    }
}

/// Slot count for a capacity: capacity + ceil(capacity / 4), at least [`MIN_SLOTS`] (live
/// entries fill at most 80 % of the slots). `None` if the capacity is over [`MAX_CAPACITY`].
pub fn slot_count_for(capacity: usize) -> Option<usize> {
    if capacity > MAX_CAPACITY {
        return None;
    }
    Some((capacity + capacity.div_ceil(4)).max(MIN_SLOTS))
}

/// Entries in tbl24.
pub const TBL24_ENTRIES: usize = 1 << 24;
/// Entries in one tbl8 group.
pub const GROUP_ENTRIES: usize = 256;
/// Largest slot count of a route table (its next-hop slots are counted from its capacity, and
/// next-hop indices are 24 bits in an entry word).
pub const MAX_LPM_SLOTS: usize = 1 << 24;
/// Most next-hop slots a route table has (next-hop indices are 24 bits).
pub const MAX_NEXTHOPS: usize = 1 << 24;
/// Most tbl8 groups a route table has (group indices are 24 bits).
pub const MAX_GROUPS: usize = 1 << 24;

/// Entry word flag: the entry holds a route (or a group).
pub const ENTRY_VALID: u32 = 1 << 31;
/// Entry word flag (tbl24 only): bits 23..0 are a tbl8 group index.
pub const ENTRY_GROUP: u32 = 1 << 30;
const ENTRY_DEPTH_SHIFT: u32 = 24;
const ENTRY_INDEX_MASK: u32 = (1 << 24) - 1;

/// The entry word for a route of prefix length `depth` whose next hop is in next-hop slot `nh`.
#[inline]
pub const fn route_entry(nh: usize, depth: u8) -> u32 {
    ENTRY_VALID | ((depth as u32) << ENTRY_DEPTH_SHIFT) | (nh as u32 & ENTRY_INDEX_MASK)
}

/// The tbl24 word pointing at group `group`.
#[inline]
pub const fn group_entry(group: usize) -> u32 {
    ENTRY_VALID | ENTRY_GROUP | (group as u32 & ENTRY_INDEX_MASK)
}

/// Whether an entry word points at a group.
#[inline]
pub const fn entry_is_group(e: u32) -> bool {
    e & (ENTRY_VALID | ENTRY_GROUP) == ENTRY_VALID | ENTRY_GROUP
}

/// The next-hop or group index of an entry word.
#[inline]
pub const fn entry_index(e: u32) -> usize {
    (e & ENTRY_INDEX_MASK) as usize
}

/// The prefix length of a route entry word.
#[inline]
pub const fn entry_depth(e: u32) -> u8 {
    ((e >> ENTRY_DEPTH_SHIFT) & 0x3f) as u8
}

/// Number of tbl8 groups of a route table with this capacity: a group is only in use while its
/// /24 holds a prefix longer than /24, so live groups never exceed live routes; the extra 256
/// leave room for quarantined groups. Untouched groups cost no memory on tmpfs.
pub fn tbl8_groups_for(capacity: usize) -> usize {
    (capacity + 256).min(MAX_GROUPS)
}

/// Number of next-hop slots of a route table with this capacity: each live route uses one, so
/// live ones never exceed live routes; the extra 256 leave room for quarantined ones.
pub fn nexthops_for(capacity: usize) -> usize {
    (capacity + 256).min(MAX_NEXTHOPS)
}

/// The LPM regions of a route table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LpmRegions {
    pub tbl24: usize,
    pub tbl8: usize,
    pub groups: usize,
    pub nexthops: usize,
    pub nexthop_count: usize,
}

/// Where the regions of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub slot_count: usize,
    pub capacity: usize,
    /// Size of one hash slot: [`ROUTE_SLOT_SIZE`] for route tables, [`SLOT_SIZE`] otherwise.
    pub slot_size: usize,
    /// Route tables only.
    pub lpm: Option<LpmRegions>,
}

impl Geometry {
    /// The geometry of a file with `slot_count` hash slots and, for route tables, `(groups,
    /// next-hop slots)`.
    pub fn new(
        slot_count: usize,
        capacity: usize,
        lpm: Option<(usize, usize)>,
    ) -> Option<Geometry> {
        let slot_size = if lpm.is_some() {
            ROUTE_SLOT_SIZE
        } else {
            SLOT_SIZE
        };
        let slots_end = slot_count
            .checked_mul(slot_size)?
            .checked_add(HEADER_SIZE)?;
        let lpm = match lpm {
            None => None,
            Some((groups, nexthop_count)) => {
                let tbl24 = slots_end.checked_next_multiple_of(HEADER_SIZE)?;
                let tbl8 = tbl24.checked_add(TBL24_ENTRIES * 4)?;
                let nexthops = groups.checked_mul(GROUP_ENTRIES * 4)?.checked_add(tbl8)?;
                Some(LpmRegions {
                    tbl24,
                    tbl8,
                    groups,
                    nexthops,
                    nexthop_count,
                })
            }
        };
        Some(Geometry {
            slot_count,
            capacity,
            slot_size,
            lpm,
        })
    }

    /// Total file length.
    pub fn file_len(&self) -> Option<usize> {
        match self.lpm {
            None => self
                .slot_count
                .checked_mul(self.slot_size)?
                .checked_add(HEADER_SIZE),
            Some(l) => l
                .nexthop_count
                .checked_mul(SLOT_SIZE)?
                .checked_add(l.nexthops),
        }
    }
}

/// Which table a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TableKind {
    Route = 1,
    Arp = 2,
}

impl TableKind {
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    pub fn from_u32(v: u32) -> Option<TableKind> {
        match v {
            1 => Some(TableKind::Route),
            2 => Some(TableKind::Arp),
            _ => None,
        }
    }
}

impl TableKind {
    /// The size of this kind's hash slots.
    pub const fn slot_size(self) -> usize {
        match self {
            TableKind::Route => ROUTE_SLOT_SIZE,
            TableKind::Arp => SLOT_SIZE,
        }
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TableKind::Route => "route",
            TableKind::Arp => "arp",
        })
    }
}

/// The file header, as laid out above. Every field is an atomic so that `&Header` can point into
/// a mapping other processes write.
#[repr(C)]
pub struct Header {
    pub magic: AtomicU64,
    pub layout_version: AtomicU32,
    pub kind: AtomicU32,
    pub header_size: AtomicU32,
    pub slot_size: AtomicU32,
    pub slot_count: AtomicU64,
    pub capacity: AtomicU64,
    pub generation: AtomicU64,
    pub state: AtomicU32,
    pub writer_pid: AtomicU32,
    pub live: AtomicU64,
    pub tombstones: AtomicU64,
    pub table_seq: AtomicU64,
    pub tbl24_offset: AtomicU64,
    pub tbl8_offset: AtomicU64,
    pub tbl8_groups: AtomicU64,
    pub nexthop_offset: AtomicU64,
    pub nexthop_count: AtomicU64,
    pub reserved: [AtomicU64; (HEADER_SIZE - 120) / 8],
}

/// A slot: a seqlock word and `N` words guarded by it, the last of which is the meta word.
/// Slots are placed at multiples of their own size from a page boundary, so a slot never
/// straddles a cache line.
#[repr(C, align(32))]
pub struct SlotN<const N: usize> {
    pub seq: AtomicU64,
    pub words: [AtomicU64; N],
}

/// A 64-byte slot: an ARP hash slot or a next-hop slot.
pub type Slot = SlotN<SLOT_WORDS>;
/// A 32-byte route hash slot.
pub type RouteSlot = SlotN<ROUTE_SLOT_WORDS>;

impl<const N: usize> SlotN<N> {
    /// A zeroed (EMPTY) slot, for tests and models; real slots live in a mapping.
    pub fn new() -> SlotN<N> {
        SlotN {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl<const N: usize> Default for SlotN<N> {
    fn default() -> Self {
        SlotN::new()
    }
}

mod sealed {
    pub trait Sealed {}
    impl<const N: usize> Sealed for super::SlotN<N> {}
}

/// What the hash table needs of a slot type, whatever its size: [`SlotN`] of any width (the
/// trait is sealed, so the mapping code can rely on that). Word 0 is the key word, the last
/// word the meta word.
pub trait HashSlot: sealed::Sealed + Sync + Sized + 'static {
    /// The guarded words, as one array.
    type Words: Copy + AsRef<[u64]> + AsMut<[u64]> + PartialEq + std::fmt::Debug;
    /// All words zero.
    fn zero_words() -> Self::Words;
    /// The seqlock word.
    fn seq(&self) -> &AtomicU64;
    /// Guarded word `i`.
    fn word(&self, i: usize) -> &AtomicU64;
    /// The meta word (slot state and change sequence).
    fn meta(&self) -> &AtomicU64;
    /// [`super::seqlock::write_slot`].
    fn write(&self, w: &Self::Words);
    /// [`super::seqlock::write_slot_around`].
    fn write_around(&self, w: &Self::Words, inside: impl FnOnce());
    /// [`super::seqlock::read_slot_at`].
    #[cfg(not(loom))]
    fn read_at(&self, writer_alive: impl Fn() -> bool) -> Option<(u64, Self::Words)>;
    /// [`super::seqlock::unchanged`].
    fn unchanged(&self, s1: u64) -> bool;
}

impl<const N: usize> HashSlot for SlotN<N> {
    type Words = [u64; N];

    fn zero_words() -> [u64; N] {
        [0; N]
    }

    #[inline]
    fn seq(&self) -> &AtomicU64 {
        &self.seq
    }

    #[inline]
    fn word(&self, i: usize) -> &AtomicU64 {
        &self.words[i]
    }

    #[inline]
    fn meta(&self) -> &AtomicU64 {
        &self.words[N - 1]
    }

    #[inline]
    fn write(&self, w: &[u64; N]) {
        super::seqlock::write_slot(self, w);
    }

    #[inline]
    fn write_around(&self, w: &[u64; N], inside: impl FnOnce()) {
        super::seqlock::write_slot_around(self, w, inside);
    }

    #[cfg(not(loom))]
    #[inline]
    fn read_at(&self, writer_alive: impl Fn() -> bool) -> Option<(u64, [u64; N])> {
        super::seqlock::read_slot_at(self, writer_alive)
    }

    #[inline]
    fn unchanged(&self, s1: u64) -> bool {
        super::seqlock::unchanged(self, s1)
    }
}

/// Checks a mapped header against this layout and the expected kind; returns the file's
/// geometry. The caller must still check the file length against it.
#[cfg(not(loom))]
pub(crate) fn check_header(h: &Header, kind: TableKind) -> Result<Geometry, String> {
    use super::sync::Ordering::Relaxed;
    let magic = h.magic.load(Relaxed);
    if magic != MAGIC {
        return Err(format!("wrong magic {magic:#018x} (not an rtm table file)"));
    }
    let v = h.layout_version.load(Relaxed);
    if v != LAYOUT_VERSION {
        return Err(format!(
            "layout version {v}, this build reads version {LAYOUT_VERSION}"
        ));
    }
    let k = h.kind.load(Relaxed);
    if k != kind.as_u32() {
        let found =
            TableKind::from_u32(k).map_or_else(|| format!("unknown kind {k}"), |t| t.to_string());
        return Err(format!("holds a {found} table, expected {kind}"));
    }
    let hs = h.header_size.load(Relaxed);
    let ss = h.slot_size.load(Relaxed);
    let want_ss = kind.slot_size();
    if hs as usize != HEADER_SIZE || ss as usize != want_ss {
        return Err(format!(
            "header/slot size {hs}/{ss}, expected {HEADER_SIZE}/{want_ss}"
        ));
    }
    let n = h.slot_count.load(Relaxed);
    let cap = h.capacity.load(Relaxed);
    if n < MIN_SLOTS as u64 || n > (MAX_CAPACITY as u64) * 2 {
        return Err(format!("bad slot count {n}"));
    }
    if cap >= n {
        return Err(format!("capacity {cap} not below slot count {n}"));
    }
    let (n, cap) = (n as usize, cap as usize);
    let t24 = h.tbl24_offset.load(Relaxed);
    let t8 = h.tbl8_offset.load(Relaxed);
    let groups = h.tbl8_groups.load(Relaxed);
    let nh = h.nexthop_offset.load(Relaxed);
    let nhs = h.nexthop_count.load(Relaxed);
    let geo = match kind {
        TableKind::Arp => {
            if (t24, t8, groups, nh, nhs) != (0, 0, 0, 0, 0) {
                return Err("LPM fields set in an arp table".to_string());
            }
            Geometry::new(n, cap, None)
        }
        TableKind::Route => {
            if n > MAX_LPM_SLOTS {
                return Err(format!("slot count {n} over {MAX_LPM_SLOTS}"));
            }
            if groups == 0 || groups > MAX_GROUPS as u64 {
                return Err(format!("bad tbl8 group count {groups}"));
            }
            if nhs == 0 || nhs > MAX_NEXTHOPS as u64 {
                return Err(format!("bad next-hop count {nhs}"));
            }
            let g = Geometry::new(n, cap, Some((groups as usize, nhs as usize)));
            let offsets = g
                .and_then(|g| g.lpm)
                .map(|l| (l.tbl24 as u64, l.tbl8 as u64, l.nexthops as u64));
            if offsets != Some((t24, t8, nh)) {
                return Err(format!("bad LPM offsets {t24}/{t8}/{nh}"));
            }
            g
        }
    };
    geo.ok_or_else(|| format!("slot count {n} overflows"))
}

// The layout above is a contract between processes: fail the build if the structs drift from it.
#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(offset_of!(Header, layout_version) == 8);
    assert!(offset_of!(Header, kind) == 12);
    assert!(offset_of!(Header, header_size) == 16);
    assert!(offset_of!(Header, slot_size) == 20);
    assert!(offset_of!(Header, slot_count) == 24);
    assert!(offset_of!(Header, capacity) == 32);
    assert!(offset_of!(Header, generation) == 40);
    assert!(offset_of!(Header, state) == 48);
    assert!(offset_of!(Header, writer_pid) == 52);
    assert!(offset_of!(Header, live) == 56);
    assert!(offset_of!(Header, tombstones) == 64);
    assert!(offset_of!(Header, table_seq) == 72);
    assert!(offset_of!(Header, tbl24_offset) == 80);
    assert!(offset_of!(Header, tbl8_offset) == 88);
    assert!(offset_of!(Header, tbl8_groups) == 96);
    assert!(offset_of!(Header, nexthop_offset) == 104);
    assert!(offset_of!(Header, nexthop_count) == 112);
    assert!(offset_of!(Header, reserved) == 120);
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(size_of::<RouteSlot>() == ROUTE_SLOT_SIZE);
    // Aligned to the smaller size; placed at multiples of their own size in the file.
    assert!(align_of::<Slot>() == ROUTE_SLOT_SIZE && align_of::<RouteSlot>() == ROUTE_SLOT_SIZE);
    assert!(offset_of!(Slot, words) == 8 && offset_of!(RouteSlot, words) == 8);
    assert!(HEADER_SIZE % SLOT_SIZE == 0 && SLOT_SIZE % ROUTE_SLOT_SIZE == 0);
    assert!(PAYLOAD_WORDS + 1 == SLOT_WORDS && META_WORD == PAYLOAD_WORDS);
    assert!(ROUTE_HOP_WORD + 2 == ROUTE_SLOT_WORDS);
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(&MAGIC.to_le_bytes(), b"RTMSHM\0\0");
    }

    #[test]
    fn slot_counts() {
        assert_eq!(slot_count_for(0), Some(8));
        assert_eq!(slot_count_for(6), Some(8));
        assert_eq!(slot_count_for(7), Some(9));
        assert_eq!(slot_count_for(100), Some(125));
        assert_eq!(slot_count_for(1 << 20), Some(1_310_720));
        assert_eq!(slot_count_for(MAX_CAPACITY + 1), None);
        for c in 0..5000 {
            let n = slot_count_for(c).unwrap();
            assert!(n * 4 >= c * 5 && n > c);
        }
        for n in [8usize, 9, 125, 1_310_720] {
            for h in [0u64, 1, u64::MAX, hash(5), hash(77)] {
                assert!(home_slot(h, n) < n);
            }
            assert_eq!(next_slot(n - 1, n), 0);
            assert_eq!(prev_slot(0, n), n - 1);
        }
    }

    #[test]
    fn entry_words() {
        let e = route_entry(MAX_LPM_SLOTS - 1, 32);
        assert!(!entry_is_group(e));
        assert_eq!((entry_index(e), entry_depth(e)), (MAX_LPM_SLOTS - 1, 32));
        let e = route_entry(0, 0);
        assert_ne!(e, 0);
        assert_eq!((entry_index(e), entry_depth(e)), (0, 0));
        let g = group_entry(12345);
        assert!(entry_is_group(g));
        assert_eq!(entry_index(g), 12345);
        assert!(!entry_is_group(0));
        let geo = Geometry::new(125, 100, Some((356, 357))).unwrap();
        assert_eq!(geo.slot_size, ROUTE_SLOT_SIZE);
        let l = geo.lpm.unwrap();
        // 4096 + 125 * 32 bytes, rounded up to a page.
        assert_eq!(l.tbl24, 2 * 4096);
        assert_eq!(l.tbl8, l.tbl24 + 64 * 1024 * 1024);
        assert_eq!(l.nexthops, l.tbl8 + 356 * 1024);
        assert_eq!(geo.file_len(), Some(l.nexthops + 357 * 64));
    }

    #[test]
    fn meta_round_trip() {
        for (st, seq) in [
            (SLOT_LIVE, 0),
            (SLOT_TOMBSTONE, 12345),
            (SLOT_LIVE, SEQ_MASK),
        ] {
            let m = meta(st, seq);
            assert_eq!((meta_state(m), meta_seq(m)), (st, seq));
        }
        assert_eq!(meta(SLOT_EMPTY, 0), 0);
    }

    #[test]
    fn hash_is_fixed() {
        // Pinned values: changing the hash silently breaks every reader of existing files.
        assert_eq!(hash(0), 0);
        assert_eq!(hash(1), 0x5692_161d_100b_05e5);
    }
}
