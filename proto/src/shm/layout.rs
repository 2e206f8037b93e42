//! The byte layout of an rtm shared-memory table file (layout version 1).
//!
//! All integers are in the host's native byte order (the file never leaves the machine). The file
//! holds offsets and sizes only, never pointers, so every process may map it anywhere.
//!
//! ```text
//! offset            size  contents
//! 0                 4096  Header (one page)
//! 4096 + 64 * i       64  Slot i, for i in 0..slot_count
//! file length = 4096 + 64 * slot_count (exactly; readers refuse any other length)
//! ```
//!
//! # Header (4096 bytes)
//!
//! ```text
//! offset size type  field           changes after creation?
//!   0     8   u64   magic           no   b"RTMSHM\0\0" read as a little-endian u64 (MAGIC)
//!   8     4   u32   layout_version  no   LAYOUT_VERSION (= 1)
//!  12     4   u32   kind            no   TableKind: 1 = route, 2 = arp
//!  16     4   u32   header_size     no   HEADER_SIZE (= 4096)
//!  20     4   u32   slot_size       no   SLOT_SIZE (= 64)
//!  24     8   u64   slot_count      no   power of two, >= MIN_SLOTS
//!  32     8   u64   capacity        no   most live entries the writer will hold (< slot_count)
//!  40     8   u64   generation      no   1 for a fresh table; +1 each time the file is replaced
//!  48     4   u32   state           yes  STATE_ACTIVE (1) or STATE_RETIRED (2)
//!  52     4   u32   writer_pid      no   pid of the process that created the file
//!  56     8   u64   live            yes  number of LIVE slots (advisory; readers don't rely on it)
//!  64     8   u64   tombstones      yes  number of TOMBSTONE slots (advisory)
//!  72     8   u64   table_seq       yes  last committed per-table change sequence (Release store)
//!  80  4016   -     reserved        no   zero
//! ```
//!
//! Fields that "change after creation" are only ever written with atomic stores by the single
//! writer process. Fields that don't are written before the file is renamed into place, so any
//! reader that can open the file sees them.
//!
//! # Slot (64 bytes, one cache line)
//!
//! ```text
//! offset size field
//!   0     8   seq     seqlock word: even = stable, odd = being written (see `seqlock`)
//!   8    48   rec     6 words: the record as produced by `Record::encode`; word 0 is the key word
//!  56     8   meta    bits 63..62: slot state (EMPTY 0, LIVE 1, TOMBSTONE 2);
//!                     bits 61..0: sequence number of the change that last wrote the slot
//! ```
//!
//! An all-zero slot is EMPTY: a freshly sized file is a valid empty table.
//!
//! # Hash table
//!
//! Open addressing over `slot_count` slots: the home slot of a key is
//! `hash(key_word) & (slot_count - 1)` with [`hash`] (the splitmix64 finalizer), then linear
//! probing upward, wrapping around. A reader looking for a key stops at an EMPTY slot, skips
//! TOMBSTONE slots and LIVE slots holding other keys, and never probes more than `slot_count`
//! slots. Entries never move while the file is live; deletes leave tombstones. When LIVE +
//! TOMBSTONE slots exceed 7/8 of the slots the writer compacts by publishing a new generation.
//!
//! # Versioning
//!
//! `layout_version` covers this whole description. A different layout (e.g. a DIR-24-8 route
//! table for faster longest-prefix match) gets a new `layout_version` (or a new `kind`), and
//! readers refuse versions they don't know, so it can replace this one without silent misreads.

use super::sync::{AtomicU32, AtomicU64};

/// `b"RTMSHM\0\0"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RTMSHM\0\0");
/// Version of the layout described in this module.
pub const LAYOUT_VERSION: u32 = 1;
/// Size of the header; slots start at this offset.
pub const HEADER_SIZE: usize = 4096;
/// Size of one slot.
pub const SLOT_SIZE: usize = 64;
/// Words of a slot after the seqlock word: the record plus the meta word.
pub const SLOT_WORDS: usize = 7;
/// Words a record encodes to (word 0 is the key word).
pub const PAYLOAD_WORDS: usize = 6;
/// Index of the meta word (state + change sequence) among the slot words.
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

/// Slot count for a capacity: a power of two, at least ceil(capacity * 5 / 4) and
/// [`MIN_SLOTS`]. `None` if the capacity is over [`MAX_CAPACITY`].
pub fn slot_count_for(capacity: usize) -> Option<usize> {
    if capacity > MAX_CAPACITY {
        return None;
    }
    let want = (capacity + capacity.div_ceil(4)).max(MIN_SLOTS);
    Some(want.next_power_of_two())
}

/// Total file length for a slot count.
pub fn file_len(slot_count: usize) -> Option<usize> {
    slot_count.checked_mul(SLOT_SIZE)?.checked_add(HEADER_SIZE)
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
    pub reserved: [AtomicU64; (HEADER_SIZE - 80) / 8],
}

/// One slot: the seqlock word and [`SLOT_WORDS`] words guarded by it.
#[repr(C, align(64))]
pub struct Slot {
    pub seq: AtomicU64,
    pub words: [AtomicU64; SLOT_WORDS],
}

impl Slot {
    /// A zeroed (EMPTY) slot, for tests and models; real slots live in a mapping.
    pub fn new() -> Slot {
        Slot {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::new()
    }
}

/// Checks a mapped header against this layout and the expected kind; returns
/// `(slot_count, capacity)`. The caller must still check the file length against the slot count.
#[cfg(not(loom))]
pub(crate) fn check_header(h: &Header, kind: TableKind) -> Result<(usize, usize), String> {
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
    if hs as usize != HEADER_SIZE || ss as usize != SLOT_SIZE {
        return Err(format!(
            "header/slot size {hs}/{ss}, expected {HEADER_SIZE}/{SLOT_SIZE}"
        ));
    }
    let n = h.slot_count.load(Relaxed);
    let cap = h.capacity.load(Relaxed);
    if !n.is_power_of_two() || n < MIN_SLOTS as u64 || n > (MAX_CAPACITY as u64) * 2 {
        return Err(format!("bad slot count {n}"));
    }
    if cap >= n {
        return Err(format!("capacity {cap} not below slot count {n}"));
    }
    Ok((n as usize, cap as usize))
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
    assert!(offset_of!(Header, reserved) == 80);
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(align_of::<Slot>() == SLOT_SIZE);
    assert!(offset_of!(Slot, words) == 8);
    assert!(HEADER_SIZE % SLOT_SIZE == 0);
    assert!(PAYLOAD_WORDS + 1 == SLOT_WORDS && META_WORD == PAYLOAD_WORDS);
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
        assert_eq!(slot_count_for(7), Some(16));
        assert_eq!(slot_count_for(100), Some(128));
        assert_eq!(slot_count_for(1000), Some(2048));
        assert_eq!(slot_count_for(1024), Some(2048));
        assert_eq!(slot_count_for(MAX_CAPACITY + 1), None);
        for c in 0..5000 {
            let n = slot_count_for(c).unwrap();
            assert!(n.is_power_of_two() && n * 4 >= c * 5 && n > c);
        }
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
