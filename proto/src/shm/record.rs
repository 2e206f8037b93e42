//! What every table file has in common: the record trait, versioned entries, errors, and the
//! writer and reader interfaces the daemon's table actor and the client library use.

use std::path::{Path, PathBuf};

/// The table kind recorded in a file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TableKind {
    Route = 1,
    Arp = 2,
    /// The kernel's neighbours, keyed by (IP, device): [`crate::types::Neighbour`].
    Neigh = 3,
}

impl TableKind {
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Route => "route",
            TableKind::Arp => "arp",
            TableKind::Neigh => "neigh",
        }
    }

    pub fn as_u32(self) -> u32 {
        self as u32
    }

    pub fn from_u32(v: u32) -> Option<TableKind> {
        match v {
            1 => Some(TableKind::Route),
            2 => Some(TableKind::Arp),
            3 => Some(TableKind::Neigh),
            _ => None,
        }
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A table entry that lives in a shared-memory table file of its kind.
pub trait Record: Clone + Sized + Send + 'static {
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
    /// The single writer of this kind's files (the daemon).
    #[cfg(not(loom))]
    type Writer: TableWriter<Self>;
    /// A read-only view of this kind's files (clients).
    #[cfg(not(loom))]
    type Reader: TableReader<Self>;
    fn key(&self) -> Self::Key;
    /// Who put the entry into its table.
    fn origin(&self) -> crate::types::Origin {
        crate::types::Origin::Rtm
    }
    /// Sets who put the entry into its table (for kinds that record it).
    fn set_origin(&mut self, _origin: crate::types::Origin) {}
}

/// An entry with the sequence number of the change that last wrote it.
///
/// Sequence numbers are stored in 62 bits (taken modulo 2^62); see [`SEQ_MASK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<R> {
    pub entry: R,
    pub seq: u64,
}

/// Change sequence numbers as the files store them: the low 62 bits.
pub const SEQ_MASK: u64 = (1 << 62) - 1;

/// Errors opening, reading or writing a shared-memory table.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("shared-memory file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configured limit: nothing was changed.
    #[error("table full (capacity {capacity})")]
    Full { capacity: usize },
    /// The file system of the shared-memory directory cannot back the table: nothing was
    /// changed.
    #[error("no space in {} for the {table} table", dir.display())]
    NoSpace { dir: PathBuf, table: &'static str },
    /// A limit of the file layout (not the configured one): nothing was changed.
    #[error("{what} (limit {limit})")]
    Layout { what: String, limit: u64 },
    #[error("bad shared-memory file {}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },
    /// The file is owned by a uid the reader does not trust (see [`crate::shm::Owners`]):
    /// another local user may have made it to serve fake tables. Nothing was mapped.
    #[error(
        "shared-memory file {} is owned by uid {owner}, not by {}: another user may have made it to serve fake tables",
        path.display(),
        crate::shm::owner::uid_list(expected)
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        expected: Vec<u32>,
    },
    /// A read kept meeting the writer in the middle of a change (a writer stopped, not dead,
    /// in the middle of it): the answer is unknown, not absent.
    #[error("shared-memory table {} busy: the writer is in the middle of a change", path.display())]
    Busy { path: PathBuf },
}

impl ShmError {
    pub(crate) fn io(path: &Path, source: impl Into<std::io::Error>) -> ShmError {
        ShmError::Io {
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    pub(crate) fn bad(path: &Path, why: impl Into<String>) -> ShmError {
        ShmError::BadFile {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// Who may read a table file: its exact mode (0644 or tighter) and, optionally, its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub mode: u32,
    pub group: Option<u32>,
}

impl From<u32> for Access {
    fn from(mode: u32) -> Access {
        Access { mode, group: None }
    }
}

/// A change a writer is asked to make room for before it is made.
#[derive(Debug, Clone, Copy)]
pub enum Planned<'a, R: Record> {
    Put(&'a R),
    Del(&'a R::Key),
    Flush,
}

/// The writer of one table file: what the daemon's table actor needs. There is exactly one per
/// path; it keeps the file the authoritative copy of the table.
#[cfg(not(loom))]
pub trait TableWriter<R: Record>: Sized + Send + Unpin {
    /// Publishes a table file at `path` holding `entries` (a new generation: the file is
    /// complete, with its mode and group, before it appears at the path, and a previous file
    /// there is retired), sized for what it holds and allowed to grow to `limit` entries.
    /// `table_seq` is the sequence number the entries are complete to. Every later generation
    /// gets the same access.
    fn create(
        path: &Path,
        limit: usize,
        access: impl Into<Access>,
        entries: Vec<Versioned<R>>,
        table_seq: u64,
    ) -> Result<Self, ShmError>;
    /// Makes sure the coming changes `ops` cannot fail for lack of space: the file grows (or a
    /// larger generation is published) now if it must. After `Ok`, [`TableWriter::upsert`]
    /// and [`TableWriter::remove`] of those changes do not fail. On `Err` nothing changed.
    fn reserve<'a>(&mut self, ops: impl Iterator<Item = Planned<'a, R>>) -> Result<(), ShmError>
    where
        R: 'a;
    /// Inserts or replaces the entry with `rec`'s key; `seq` is the change's sequence number.
    fn upsert(&mut self, rec: &R, seq: u64) -> Result<(), ShmError>;
    /// Deletes `key`; `Ok(false)` if it was absent. Fails only for a change that was not
    /// reserved, when the file cannot grow.
    fn remove(&mut self, key: &R::Key, seq: u64) -> Result<bool, ShmError>;
    /// Empties the table.
    fn clear(&mut self, seq: u64);
    fn contains(&self, key: &R::Key) -> bool;
    fn get(&self, key: &R::Key) -> Option<Versioned<R>>;
    /// Every entry, in key order.
    fn entries(&self) -> Vec<Versioned<R>>;
    /// Starts loading what a change of `key` will touch first.
    fn prefetch(&self, key: &R::Key);
    /// Publishes a new generation holding exactly `entries` (later duplicates of a key win).
    fn republish(&mut self, entries: Vec<Versioned<R>>) -> Result<(), ShmError>;
    /// Publishes the last committed sequence number (readers' sync point).
    fn set_table_seq(&self, seq: u64);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Entries `origin` put into the table (kinds that record no origin: all are rtm's).
    fn len_of(&self, origin: crate::types::Origin) -> usize {
        if origin == crate::types::Origin::Rtm {
            self.len()
        } else {
            0
        }
    }
    /// The most entries the table may hold (its configured limit).
    fn capacity(&self) -> usize;
    fn generation(&self) -> u64;
    fn path(&self) -> &Path;
    /// Bytes of shared memory the file holds (allocated, not merely addressed).
    fn allocated_bytes(&self) -> u64;
    /// Clean stop: unlinks the file if the path still holds it.
    fn remove_file(self) -> std::io::Result<()>;
}

/// A read-only view of a table file.
#[cfg(not(loom))]
pub trait TableReader<R: Record>: Sized + Send + Sync + Unpin {
    /// Opens and checks the file at `path` (never follows a symlink; refuses files others may
    /// write, and files owned by anyone but root, the caller and the owner of the directory
    /// holding the file: [`crate::shm::Owners::DirOwner`]).
    fn open(path: &Path) -> Result<Self, ShmError> {
        Self::open_owned(path, crate::shm::Owners::DirOwner)
    }
    /// As [`TableReader::open`], accepting files owned by root, the caller and the uid
    /// `owners` names; [`TableReader::refresh`] reopens the path with the same rule.
    fn open_owned(path: &Path, owners: crate::shm::Owners) -> Result<Self, ShmError>;
    /// The entry with `key`.
    fn get(&self, key: &R::Key) -> Option<Versioned<R>>;
    /// Every entry, in key order.
    fn entries(&self) -> Vec<Versioned<R>>;
    /// Entries according to the header (advisory while the writer is busy).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The most entries the writer will hold (its configured limit).
    fn capacity(&self) -> usize;
    /// The last committed sequence number the writer published.
    fn table_seq(&self) -> u64;
    fn generation(&self) -> u64;
    /// Whether the writer has replaced this file with a newer generation.
    fn is_retired(&self) -> bool;
    /// Reopens the path if this file was retired or replaced; `Ok(true)` if it did.
    fn refresh(&mut self) -> Result<bool, ShmError>;
    fn path(&self) -> &Path;
    /// Starts loading the memory a `get` of `key` reads.
    fn prefetch(&self, key: &R::Key);
}
