//! How a [`Journal`](super::Journal) trades durability for speed: the fsync policy (what an
//! acknowledged change survives) and when the journal is compacted.

use std::fmt;
use std::str::FromStr;

/// Default for [`JournalOptions::compact_min`]: 64 MiB.
pub const DEFAULT_COMPACT_MIN: u64 = 64 << 20;

/// When a commit waits for the disk. See the [module docs](super) for what each one survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `fdatasync(2)` after every commit: acknowledged changes survive a power loss.
    #[default]
    Always,
    /// Never sync: acknowledged changes survive a crash of `rtmd`, not of the machine.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!("fsync policy {other:?}: expected always or never")),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Never => "never",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    pub fsync: FsyncPolicy,
    /// [`Journal::needs_compaction`](super::Journal::needs_compaction) is true once the
    /// journal is larger than `max(compact_min, 2 × snapshot size)`.
    pub compact_min: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            fsync: FsyncPolicy::Always,
            compact_min: DEFAULT_COMPACT_MIN,
        }
    }
}

impl From<FsyncPolicy> for JournalOptions {
    fn from(fsync: FsyncPolicy) -> Self {
        JournalOptions {
            fsync,
            ..JournalOptions::default()
        }
    }
}
