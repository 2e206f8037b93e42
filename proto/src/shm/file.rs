//! Table files on disk, whatever their kind: creating a new generation next to the path
//! (`O_EXCL | O_NOFOLLOW`, exact mode, pages reserved with `fallocate`), growing it, renaming
//! it into place and retiring the file it replaces; opening one read-only with its checks; the
//! writer's liveness lock; and removing our own file at a clean stop.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FallocateFlags, FileType, FlockOperation, Mode, OFlags};

use super::header::{Header, HeaderInfo, HEADER_SIZE, STATE_RETIRED};
use super::mapping::Mapping;
use super::owner::Owners;
use super::record::{Access, ShmError, TableKind};
use super::sync::Ordering::Release;

/// A file's identity: (st_dev, st_ino).
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub(crate) fn file_id(st: &rustix::fs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// A new file being written next to its path; unlinked unless renamed into place.
pub(crate) struct NewFile {
    pub file: File,
    pub tmp: PathBuf,
    pub dev_ino: (u64, u64),
    armed: bool,
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlink(&self.tmp);
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(format!(
        ".tmp.{}",
        rustix::process::getpid().as_raw_nonzero()
    ));
    PathBuf::from(s)
}

/// Creates `<path>.tmp.<pid>` with exactly the mode and group of `access` (never following a
/// symlink), holding the writer's liveness lock (a `flock` readers test to tell a stopped
/// writer from a dead one).
pub(crate) fn create_new(path: &Path, access: Access) -> Result<NewFile, ShmError> {
    let mode = access.mode;
    let tmp = tmp_path(path);
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(&tmp, flags, Mode::from_raw_mode(mode)) {
        Err(rustix::io::Errno::EXIST) => {
            // Left by an earlier process with our pid that died; unlink never follows links.
            rustix::fs::unlink(&tmp).map_err(|e| ShmError::io(&tmp, e))?;
            rustix::fs::open(&tmp, flags, Mode::from_raw_mode(mode))
        }
        r => r,
    }
    .map_err(|e| ShmError::io(&tmp, e))?;
    let mut new = NewFile {
        file: File::from(fd),
        tmp,
        dev_ino: (0, 0),
        armed: true,
    };
    let tmp = new.tmp.clone();
    let io = |e: rustix::io::Errno| ShmError::io(&tmp, e);
    if let Some(gid) = access.group {
        rustix::fs::fchown(&new.file, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(io)?;
    }
    // Exactly `mode`, whatever the umask (and after the group: chown may clear set-id bits).
    rustix::fs::fchmod(&new.file, Mode::from_raw_mode(mode & 0o7777)).map_err(io)?;
    // Nobody else can have this brand-new file open, so the lock is ours at once.
    flock(&new.file, FlockOperation::NonBlockingLockExclusive).map_err(io)?;
    let st = rustix::fs::fstat(&new.file).map_err(io)?;
    new.dev_ino = file_id(&st);
    Ok(new)
}

/// Reserves the file's storage for `[offset, offset + len)`, growing the file to cover it. On
/// tmpfs this is what keeps a later write from meeting a full file system with SIGBUS: the
/// refusal comes here, as [`ShmError::NoSpace`], before anything is reachable.
pub(crate) fn allocate(
    file: &File,
    path: &Path,
    kind: TableKind,
    offset: u64,
    len: u64,
) -> Result<(), ShmError> {
    if len == 0 {
        return Ok(());
    }
    match rustix::fs::fallocate(file, FallocateFlags::empty(), offset, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOSPC) | Err(rustix::io::Errno::FBIG) => Err(ShmError::NoSpace {
            dir: path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            table: kind.name(),
        }),
        Err(e) => Err(ShmError::io(path, e)),
    }
}

/// The file currently at `path` if it is a table file of `kind` that we (our euid) own, mapped
/// read-write for its header only: the one a new generation retires.
pub(crate) fn open_current(path: &Path, kind: TableKind) -> Option<(File, Mapping)> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
        || (st.st_size as u64) < HEADER_SIZE as u64
    {
        return None;
    }
    let file = File::from(fd);
    let map = Mapping::read_write(&file, HEADER_SIZE, HEADER_SIZE).ok()?;
    map.header().check(kind, || file_size(&file)).ok()?;
    Some((file, map))
}

/// Renames the new file over `path` and marks `old` (the file it replaces, if any) retired;
/// returns the file, whose liveness lock the writer keeps.
pub(crate) fn publish(
    mut new: NewFile,
    path: &Path,
    old: Option<&Header>,
) -> Result<File, ShmError> {
    rustix::fs::rename(&new.tmp, path).map_err(|e| ShmError::io(path, e))?;
    new.armed = false;
    if let Some(old) = old {
        old.state.store(STATE_RETIRED, Release);
    }
    new.file.try_clone().map_err(|e| ShmError::io(path, e))
}

/// A table file opened read-only by a client, checked.
pub(crate) struct Opened {
    pub file: File,
    pub map: Mapping,
    pub info: HeaderInfo,
    pub dev_ino: (u64, u64),
}

/// Opens the table file at `path` read-only: never follows a symlink, refuses what is not a
/// regular file, is writable by others or is owned by a uid `owners` does not accept, checks
/// the header for `kind`, and maps what the header says a reader maps.
pub(crate) fn open_read_only(
    path: &Path,
    kind: TableKind,
    owners: Owners,
) -> Result<Opened, ShmError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => ShmError::bad(path, "is a symbolic link (not followed)"),
        e => ShmError::io(path, e),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| ShmError::io(path, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(ShmError::bad(path, "not a regular file"));
    }
    if st.st_mode & 0o002 != 0 {
        return Err(ShmError::bad(path, "world-writable"));
    }
    let expected = owners.uids(path);
    if !expected.contains(&st.st_uid) {
        return Err(ShmError::Owner {
            path: path.to_path_buf(),
            owner: st.st_uid,
            expected,
        });
    }
    let size = st.st_size as u64;
    if size < HEADER_SIZE as u64 {
        return Err(ShmError::bad(
            path,
            format!("{size} bytes, shorter than the header"),
        ));
    }
    let file = File::from(fd);
    let head =
        Mapping::read_only(&file, HEADER_SIZE, HEADER_SIZE).map_err(|e| ShmError::io(path, e))?;
    let (info, size) = head
        .header()
        .check(kind, || file_size(&file).max(size))
        .map_err(|why| ShmError::bad(path, why))?;
    drop(head);
    let map = Mapping::read_only(&file, info.map_len as usize, size as usize)
        .map_err(|e| ShmError::io(path, e))?;
    Ok(Opened {
        file,
        map,
        info,
        dev_ino: file_id(&st),
    })
}

/// The file's length now (a reader about to trust a larger `file_len` from the header).
pub(crate) fn file_size(file: &File) -> u64 {
    rustix::fs::fstat(file).map_or(0, |st| st.st_size as u64)
}

/// Whether the file's writer still holds its exclusive `flock`: only then is a record left in
/// the middle of a write worth waiting for. If `flock` itself fails (a file system without
/// it), the writer counts as gone.
pub(crate) fn writer_alive(file: &File) -> bool {
    match flock(file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(file, FlockOperation::Unlock);
            false
        }
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        Err(_) => false,
    }
}

/// Whether the path now names a file other than `dev_ino` (or nothing).
pub(crate) fn replaced(path: &Path, dev_ino: (u64, u64)) -> Result<bool, rustix::io::Errno> {
    match rustix::fs::lstat(path) {
        Ok(st) => Ok(file_id(&st) != dev_ino),
        Err(rustix::io::Errno::NOENT) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Clean stop: unlinks `path` if it still holds our file (`dev_ino`).
pub(crate) fn remove_if_ours(path: &Path, dev_ino: (u64, u64)) -> std::io::Result<()> {
    match rustix::fs::lstat(path) {
        Ok(st) if file_id(&st) == dev_ino => std::fs::remove_file(path),
        Ok(_) => Ok(()),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
