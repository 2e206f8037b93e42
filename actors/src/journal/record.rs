//! The records a journal holds: one per change of a table (put, delete, flush), each with the
//! change's sequence number; and their encodings, one per on-disk format version.

use rtm_proto::shm::Record;
use rtm_proto::Origin;
use serde::{Deserialize, Serialize};

/// One change of a table, as the journal stores it. A `Put`'s entry carries its origin
/// ([`Record::origin`]); the journal keeps it (format 2 on).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A record as the current format (3) writes it, by reference, for staging without cloning: a
/// `Put` holds the entry's origin ([`Origin::as_u8`], one byte) before the entry's serde form.
/// Decodes as [`RecordV2<R, R::Key>`](RecordV2).
#[derive(Serialize)]
#[serde(bound(serialize = "R: Serialize, R::Key: Serialize"))]
pub(super) enum RecordRef<'a, R: Record> {
    Put { seq: u64, origin: u8, entry: &'a R },
    Del { seq: u64, key: &'a R::Key },
    Flush { seq: u64 },
}

impl<'a, R: Record> RecordRef<'a, R> {
    pub(super) fn put(seq: u64, entry: &'a R) -> Self {
        RecordRef::Put {
            seq,
            origin: entry.origin().as_u8(),
            entry,
        }
    }
}

/// A record of format 2 or 3, with the entry in form `E` and the key in form `K`. Both formats
/// lay a record out alike; they differ in the entry's form: format 2 holds the entry's legacy
/// form ([`JournalEntry::Legacy`](super::JournalEntry::Legacy)), format 3 the entry type's own
/// (what [`RecordRef`] writes). (Tests write format 2, to stand for files of older releases.)
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) enum RecordV2<E, K> {
    Put { seq: u64, origin: u8, entry: E },
    Del { seq: u64, key: K },
    Flush { seq: u64 },
}

/// A record of format 1 (read only): a `Put` is the entry's legacy serde form alone, so the
/// entry's origin was not recorded. (Tests write it, to stand for files of older releases.)
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) enum RecordV1<E, K> {
    Put { seq: u64, entry: E },
    Del { seq: u64, key: K },
    Flush { seq: u64 },
}

impl<E, K> RecordV1<E, K> {
    /// The record, its entry made by `entry`. Format 1 did not record origins: every entry it
    /// holds was written through rtm.
    pub(super) fn upgrade<R>(self, entry: impl FnOnce(E) -> R) -> JournalRecord<R>
    where
        R: Record<Key = K>,
    {
        match self {
            RecordV1::Put { seq, entry: e } => {
                let mut entry = entry(e);
                entry.set_origin(Origin::Rtm);
                JournalRecord::Put { seq, entry }
            }
            RecordV1::Del { seq, key } => JournalRecord::Del { seq, key },
            RecordV1::Flush { seq } => JournalRecord::Flush { seq },
        }
    }
}

impl<E, K> RecordV2<E, K> {
    /// The record, its entry made by `entry`, or why not (an origin this code does not know).
    pub(super) fn into_record<R>(
        self,
        entry: impl FnOnce(E) -> R,
    ) -> Result<JournalRecord<R>, String>
    where
        R: Record<Key = K>,
    {
        Ok(match self {
            RecordV2::Put {
                seq,
                origin,
                entry: e,
            } => {
                let origin = Origin::from_u8(origin).ok_or_else(|| {
                    format!(
                        "entry with seq {seq} has unknown origin {origin}; \
                         written by a newer rtmd?"
                    )
                })?;
                let mut entry = entry(e);
                entry.set_origin(origin);
                JournalRecord::Put { seq, entry }
            }
            RecordV2::Del { seq, key } => JournalRecord::Del { seq, key },
            RecordV2::Flush { seq } => JournalRecord::Flush { seq },
        })
    }
}
