//! The state directory's files, opened so that a symlink planted there is never followed:
//! every name is resolved relative to one open handle of the directory, with `O_NOFOLLOW`;
//! temporary files are created with `O_EXCL`; every file gets mode 0600.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::error::{io_err, JournalError};

const FILE_MODE: u32 = 0o600;

/// Creates `dir` (mode 0700) if it is missing and opens a handle to it. Each directory it
/// creates is synced into its parent, so that after a power loss the files written in it
/// later are not lost with a directory entry that never reached the disk.
pub(super) fn open_state_dir(dir: &Path) -> Result<OwnedFd, JournalError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .collect();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err("cannot create state directory", dir, e))?;
    // Outermost first: each new directory's entry is made durable in its parent.
    for created in missing.iter().rev() {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent)?;
    }
    rustix::fs::openat(
        rustix::fs::CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("cannot open state directory", dir, e))
}

/// `fsync`s a directory.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    let what = "cannot sync the directory holding the state directory";
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(what, dir, e))?;
    rustix::fs::fsync(&fd).map_err(|e| io_err(what, dir, e))
}

/// Opens and `flock`s table `name`'s lock file, so that a second `rtmd` on the same state
/// directory refuses to start. The lock lasts as long as the returned file.
pub(super) fn lock_table(dirfd: &OwnedFd, dir: &Path, name: &str) -> Result<File, JournalError> {
    let lock_name = format!("{name}.lock");
    let lock_path = dir.join(&lock_name);
    let lock = match open_at(dirfd, &lock_name, OFlags::RDWR | OFlags::CREATE) {
        Ok(fd) => File::from(fd),
        Err(Errno::LOOP) => return Err(JournalError::NotRegular { path: lock_path }),
        Err(e) => return Err(io_err("cannot open lock file", &lock_path, e)),
    };
    match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(lock),
        Err(Errno::WOULDBLOCK) => Err(JournalError::Locked {
            dir: dir.to_path_buf(),
            lock: lock_path,
        }),
        Err(e) => Err(io_err("cannot lock", &lock_path, e)),
    }
}

fn open_at(dir: &OwnedFd, name: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
}

/// Opens an existing regular file, or `Ok(None)` if there is none.
pub(super) fn open_existing(
    dir: &OwnedFd,
    name: &str,
    path: &Path,
    flags: OFlags,
) -> Result<Option<File>, JournalError> {
    match open_at(dir, name, flags) {
        Ok(fd) => {
            let f = File::from(fd);
            let meta = f.metadata().map_err(|e| io_err("cannot stat", path, e))?;
            if !meta.file_type().is_file() {
                return Err(JournalError::NotRegular {
                    path: path.to_path_buf(),
                });
            }
            Ok(Some(f))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(Errno::LOOP) => Err(JournalError::NotRegular {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io_err("cannot open", path, e)),
    }
}

/// Writes file `name` anew so that a crash leaves either the old or the new file: fills
/// `name.tmp` (created with `O_EXCL`) with `fill`, syncs it if `sync`, and renames it over
/// `name`. A failure before the rename removes the temporary file. The directory is not
/// synced. Returns the new file and what `fill` returned.
pub(super) fn write_and_rename<T>(
    dirfd: &OwnedFd,
    dir: &Path,
    name: &str,
    sync: bool,
    fill: impl FnOnce(&mut File, &Path) -> Result<T, JournalError>,
) -> Result<(File, T), JournalError> {
    let tmp = format!("{name}.tmp");
    let tmp_path = dir.join(&tmp);
    let written = create_tmp(dirfd, &tmp, &tmp_path).and_then(|mut f| {
        let filled = fill(&mut f, &tmp_path)?;
        if sync {
            rustix::fs::fsync(&f).map_err(|e| io_err("cannot sync", &tmp_path, e))?;
        }
        Ok((f, filled))
    });
    if written.is_err() {
        let _ = remove_at(dirfd, &tmp, &tmp_path);
    }
    let written = written?;
    rustix::fs::renameat(dirfd, &tmp, dirfd, name)
        .map_err(|e| io_err("cannot rename into place", &dir.join(name), e))?;
    Ok(written)
}

/// Creates a new temporary file, replacing one a failed compaction left behind.
fn create_tmp(dir: &OwnedFd, name: &str, path: &Path) -> Result<File, JournalError> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL;
    let fd = match open_at(dir, name, flags) {
        Err(Errno::EXIST) => {
            // Left by a compaction that failed; unlink removes a symlink, never its target.
            remove_at(dir, name, path)?;
            open_at(dir, name, flags)
        }
        other => other,
    }
    .map_err(|e| io_err("cannot create", path, e))?;
    Ok(File::from(fd))
}

/// Removes a file if it is there (a symlink itself, never its target).
pub(super) fn remove_at(dir: &OwnedFd, name: &str, path: &Path) -> Result<(), JournalError> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(io_err("cannot remove", path, e)),
    }
}
