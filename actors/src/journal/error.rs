//! Everything that can go wrong with a table's state directory, each error naming the file.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state directory {} is in use by another rtmd (lock {} is held)", dir.display(), lock.display())]
    Locked { dir: PathBuf, lock: PathBuf },
    #[error("{} is a symlink or not a regular file; refusing to use it", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: {why}", path.display())]
    BadHeader { path: PathBuf, why: String },
    #[error("{} is corrupt at offset {offset}: {why}{}", path.display(), follows(*next_valid))]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
        /// Offset of the next valid frame after the bad one (journal only).
        next_valid: Option<u64>,
    },
    #[error("journal {}: sequence number {seq} is not above {last}", path.display())]
    SeqOrder { path: PathBuf, seq: u64, last: u64 },
    #[error("journal {}: cannot encode a record: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: postcard::Error,
    },
    #[error("journal {} is unusable after a failed write ({why}); no change is acknowledged until the table is compacted", path.display())]
    Poisoned { path: PathBuf, why: String },
}

fn follows(next: Option<u64>) -> String {
    match next {
        Some(n) => format!(
            "; a valid record follows at offset {n}, so this is damage to acknowledged changes, \
             not a torn last write (restore the file or move it aside)"
        ),
        None => String::new(),
    }
}

pub(super) fn io_err(what: &'static str, path: &Path, e: impl Into<io::Error>) -> JournalError {
    JournalError::Io {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    }
}
