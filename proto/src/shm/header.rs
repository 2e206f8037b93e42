//! The first page of every table file (layout version 5), shared by both table kinds.
//!
//! All integers are in the host's native byte order (a table file never leaves its machine);
//! the file holds offsets and indices, never pointers, so every process may map it anywhere.
//!
//! ```text
//! offset size type      field          changes?  meaning
//!    0     8  u64       magic          no   b"RTMSHM\0\0" read as a little-endian u64
//!    8     4  u32       layout_version no   LAYOUT_VERSION (5)
//!   12     4  u32       kind           no   1 = route, 2 = arp
//!   16     4  u32       header_size    no   HEADER_SIZE (4096)
//!   20     4  u32       family         no   address family of the keys: 4 (IPv4)
//!   24     4  u32       table_id       no   routing table id (0 until several tables exist)
//!   28     4  u32       writer_pid     no   pid of the process that created the file
//!   32     8  u64       generation     no   1 for a fresh table; +1 each time the file is replaced
//!   40     4  u32       state          yes  STATE_ACTIVE (1) or STATE_RETIRED (2)
//!   44     4  u32       -              -    zero
//!   48     8  u64       epoch          yes  reclamation epoch (route files; see `route`)
//!   56     8  u64       table_seq      yes  last committed change sequence of the table
//!   64     8  u64       live           yes  entries in the table (advisory)
//!   72     8  u64       file_len       yes  bytes of the file backed by storage (only grows)
//!   80     8  u64       map_len        no   bytes a reader maps: file_len may grow up to it
//!   88    64  u64 × 8   region         no   the kind's regions (offsets and counts; see `route`,
//!                                           `arp`)
//!  152     8  u64       heap_lines     yes  route files: lines of the block heap the file backs
//!  160     8  u64       limit          no   most entries the writer will hold
//!  168     8  u64       lpm_lines      yes  route files: lines of the LPM heap the file backs
//!  176     8  u64       incompat       no   features a reader must know to read the file (none
//!                                           yet: a reader refuses a file with a bit it does not
//!                                           know, so a feature can come without a new version)
//!  184  1864  -         -              -    zero
//! 2048  1024  u32 × 256 top_lpm        yes  route files: LPM page of each /8 (see `route`)
//! 3072  1024  u32 × 256 top_blk        yes  route files: entry-block page of each /8
//! ```
//!
//! Fields that change are only ever written with atomic stores by the single writer; the others
//! are written before the file is renamed into place, so every reader that can open the file
//! sees them.

use super::record::TableKind;
use super::sync::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed},
};

/// `b"RTMSHM\0\0"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RTMSHM\0\0");
/// Version of the layout: 5 (the size-following layout with its LPM in chunks).
pub const LAYOUT_VERSION: u32 = 5;
/// Size of the header page.
pub const HEADER_SIZE: usize = 4096;
/// Header `state`: the file is the current one.
pub const STATE_ACTIVE: u32 = 1;
/// Header `state`: the file was replaced; readers reopen the path.
pub const STATE_RETIRED: u32 = 2;
/// Address family of IPv4 keys.
pub const FAMILY_INET: u32 = 4;
/// `incompat` bit: the route file may hold next-hop groups (multipath routes), which a reader
/// that does not know them would misread; such a reader refuses the file.
pub const INCOMPAT_GROUPS: u64 = 1;
/// The `incompat` feature bits this program reads.
pub const INCOMPAT_KNOWN: u64 = INCOMPAT_GROUPS;

/// The header page, as atomics (other processes change it while it is mapped).
#[repr(C)]
pub struct Header {
    pub magic: AtomicU64,
    pub layout_version: AtomicU32,
    pub kind: AtomicU32,
    pub header_size: AtomicU32,
    pub family: AtomicU32,
    pub table_id: AtomicU32,
    pub writer_pid: AtomicU32,
    pub generation: AtomicU64,
    pub state: AtomicU32,
    _pad: AtomicU32,
    pub epoch: AtomicU64,
    pub table_seq: AtomicU64,
    pub live: AtomicU64,
    pub file_len: AtomicU64,
    pub map_len: AtomicU64,
    pub region: [AtomicU64; 8],
    pub heap_lines: AtomicU64,
    pub limit: AtomicU64,
    pub lpm_lines: AtomicU64,
    pub incompat: AtomicU64,
    _reserved: [AtomicU64; 233],
    pub top_lpm: [AtomicU32; 256],
    pub top_blk: [AtomicU32; 256],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);

/// What a reader learns from a header it accepted.
#[derive(Debug, Clone, Copy)]
pub struct HeaderInfo {
    pub generation: u64,
    pub map_len: u64,
    pub limit: u64,
    pub region: [u64; 8],
}

impl Header {
    /// Checks the fields that never change: magic, version, kind, sizes. `file_size` gives the
    /// file's length from `fstat`; it is asked only after `file_len` is read, because a writer
    /// grows the file before it raises `file_len`, and a length taken earlier can be older than
    /// the header. Returns the checked header and the length it was checked against.
    pub fn check(
        &self,
        kind: TableKind,
        file_size: impl FnOnce() -> u64,
    ) -> Result<(HeaderInfo, u64), String> {
        if self.magic.load(Relaxed) != MAGIC {
            return Err("not an rtm table file (bad magic)".into());
        }
        let v = self.layout_version.load(Relaxed);
        if v != LAYOUT_VERSION {
            return Err(format!(
                "layout version {v}, this program reads version {LAYOUT_VERSION}"
            ));
        }
        let k = self.kind.load(Relaxed);
        if k != kind as u32 {
            let what = TableKind::from_u32(k).map_or("unknown", TableKind::name);
            return Err(format!("a {what} table, not a {} table", kind.name()));
        }
        if self.header_size.load(Relaxed) as usize != HEADER_SIZE {
            return Err("bad header size".into());
        }
        if self.family.load(Relaxed) != FAMILY_INET {
            return Err(format!(
                "address family {} is not IPv4",
                self.family.load(Relaxed)
            ));
        }
        let unknown = self.incompat.load(Relaxed) & !INCOMPAT_KNOWN;
        if unknown != 0 {
            return Err(format!(
                "the file uses features this program does not read (incompat bits {unknown:#x})"
            ));
        }
        let map_len = self.map_len.load(Relaxed);
        let file_len = self.file_len.load(Acquire);
        let file_size = file_size();
        if file_len > file_size || file_len > map_len || file_len < HEADER_SIZE as u64 {
            return Err(format!(
                "header says {file_len} bytes of {map_len} are in use, the file has {file_size}"
            ));
        }
        if map_len > 1 << 40 || map_len % HEADER_SIZE as u64 != 0 {
            return Err(format!("implausible mapping length {map_len}"));
        }
        let info = HeaderInfo {
            generation: self.generation.load(Relaxed),
            map_len,
            limit: self.limit.load(Relaxed),
            region: std::array::from_fn(|i| self.region[i].load(Relaxed)),
        };
        Ok((info, file_size))
    }
}
