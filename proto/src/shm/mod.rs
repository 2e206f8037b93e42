//! Shared-memory tables: `rtmd` publishes its route and ARP tables as files that clients map
//! read-only and read directly, without asking the daemon.
//!
//! - One file per table: a 4096-byte header and a number of hash slots, laid out as documented
//!   in [`layout`]. The slots form an open-addressing hash table keyed by a 64-bit key word
//!   ([`Record::key_word`]) with linear probing and tombstones; entries never move while a file
//!   is live. ARP slots (64 bytes) hold the entry; route slots (32 bytes) hold the prefix, the
//!   change sequence and the index of a next-hop slot (via, dev, metric): one shared by every
//!   route longer than /16 with the same next hop, or one of its own for a /16 or shorter.
//!   Route files also carry DIR-24-8 arrays for longest-prefix match whose entries hold a
//!   prefix length and a next-hop slot index.
//! - Every slot is guarded by its own seqlock ([`seqlock`]): the single writer ([`ShmWriter`])
//!   bumps the slot's sequence word around each update, readers ([`ShmReader`]) retry torn
//!   reads a bounded time and skip slots that stay unreadable.
//! - Growing, compacting or repairing a table never changes a published file's size: the writer
//!   writes a whole new file next to it, `rename(2)`s it over the path (a new *generation*), and
//!   marks the old file's header RETIRED. Readers that see RETIRED call [`ShmReader::refresh`].
//! - Each live slot also carries the sequence number of the change that last wrote it
//!   ([`Versioned::seq`]); the header carries the last committed sequence of the whole table
//!   ([`ShmReader::table_seq`]).
//!
//! All shared memory is accessed through atomics (`Relaxed` loads + fences on the read side,
//! which is all a read-only mapping allows); the only `unsafe` code is in `mapping`.

pub mod layout;
#[cfg(not(loom))]
mod lpm;
/// Public only in loom builds, for the model in `tests/loom_lpm.rs`.
#[cfg(loom)]
pub mod lpm;
#[cfg(not(loom))]
mod nexthop;
mod recycle;
pub mod seqlock;
mod sync;

#[cfg(not(loom))]
mod mapping;
#[cfg(not(loom))]
mod reader;
mod records;
#[cfg(not(loom))]
mod writer;

use std::path::PathBuf;

pub use layout::{TableKind, PAYLOAD_WORDS};
#[cfg(not(loom))]
pub use reader::{ShmReader, BATCH_GROUP};
#[cfg(not(loom))]
pub use writer::ShmWriter;

#[cfg(not(loom))]
use crate::types::{ArpEntry, Route};

/// A table entry that can live in a shared-memory slot.
///
/// `encode` must put [`Record::key_word`] of the entry's key in word 0 (readers compare that word
/// before decoding), and `decode(&r.encode())` must give back `r`.
pub trait Record: Clone + Sized {
    /// What identifies an entry. Keys cross process boundaries (wire, journal) and actor
    /// mailboxes, hence the serde and thread bounds.
    type Key: Copy
        + Eq
        + std::hash::Hash
        + Ord
        + std::fmt::Display
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + Unpin
        + 'static;
    /// The table kind recorded in the file header.
    const KIND: TableKind;
    /// The hash slots of this kind's files ([`layout`], "Hash slots"): whole records for ARP
    /// tables, a key and a next-hop slot index for route tables.
    type Slot: layout::HashSlot;
    fn key(&self) -> Self::Key;
    /// A unique 64-bit encoding of a key (equal words iff equal keys).
    fn key_word(key: &Self::Key) -> u64;
    /// The record as [`PAYLOAD_WORDS`] words, key word first.
    fn encode(&self) -> [u64; PAYLOAD_WORDS];
    /// The record back from its words; `None` if the words are not a valid record.
    fn decode(words: &[u64; PAYLOAD_WORDS]) -> Option<Self>;
    /// Whether files of this table carry the DIR-24-8 LPM arrays (route tables).
    const LPM: bool = false;
    /// For LPM tables: the key as (address bits, prefix length); `None` otherwise.
    fn lpm_prefix(_key: &Self::Key) -> Option<(u32, u8)> {
        None
    }
    /// For LPM tables: the key word of the prefix `addr/len` (`addr` has no host bits).
    fn prefix_key_word(_addr: u32, _len: u8) -> Option<u64> {
        None
    }
}

/// An entry with the sequence number of the change that last wrote it.
///
/// Sequence numbers are stored in 62 bits (taken modulo 2^62).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<R> {
    pub entry: R,
    pub seq: u64,
}

/// Errors opening or writing a shared-memory table.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("shared-memory file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("table full (capacity {capacity})")]
    Full { capacity: usize },
    #[error("bad shared-memory file {}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },
}

/// A file's identity: (st_dev, st_ino).
#[cfg(not(loom))]
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub(crate) fn file_id(st: &rustix::fs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

#[cfg(not(loom))]
impl ShmError {
    pub(crate) fn io(path: &std::path::Path, source: impl Into<std::io::Error>) -> ShmError {
        ShmError::Io {
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    pub(crate) fn bad(path: &std::path::Path, why: impl Into<String>) -> ShmError {
        ShmError::BadFile {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

#[cfg(not(loom))]
pub type RouteWriter = ShmWriter<Route>;
#[cfg(not(loom))]
pub type ArpWriter = ShmWriter<ArpEntry>;
#[cfg(not(loom))]
pub type RouteReader = ShmReader<Route>;
#[cfg(not(loom))]
pub type ArpReader = ShmReader<ArpEntry>;

#[cfg(all(test, not(loom)))]
mod model_tests;
#[cfg(all(test, not(loom)))]
mod tests;
