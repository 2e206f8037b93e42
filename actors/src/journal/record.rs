//! The records a journal holds: one per change of a table (put, delete, flush), each with the
//! change's sequence number.

use rtm_proto::shm::Record;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One change of a table, as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "R: Serialize, R::Key: Serialize",
    deserialize = "R: DeserializeOwned, R::Key: DeserializeOwned"
))]
pub enum JournalRecord<R: Record> {
    /// Create or update the entry with `entry.key()`.
    Put { seq: u64, entry: R },
    /// Delete `key`.
    Del { seq: u64, key: R::Key },
    /// Empty the table.
    Flush { seq: u64 },
}

impl<R: Record> JournalRecord<R> {
    pub fn seq(&self) -> u64 {
        match self {
            JournalRecord::Put { seq, .. }
            | JournalRecord::Del { seq, .. }
            | JournalRecord::Flush { seq } => *seq,
        }
    }
}

/// [`JournalRecord`] by reference, for staging without cloning. Encodes exactly like it
/// (same variants in the same order; serde encodes `&T` as `T`).
#[derive(Serialize)]
#[serde(bound(serialize = "R: Serialize, R::Key: Serialize"))]
pub(super) enum RecordRef<'a, R: Record> {
    Put { seq: u64, entry: &'a R },
    Del { seq: u64, key: &'a R::Key },
    Flush { seq: u64 },
}
