//! Where an rtm instance lives. All three binaries resolve the socket the same way:
//! `--socket PATH` > env `RTM_SOCKET` > `/run/rtm/rtm.sock` for root >
//! `$XDG_RUNTIME_DIR/rtm/rtm.sock` > `/tmp/rtm-$UID/rtm.sock`.

use std::path::{Path, PathBuf};

/// Default directory of the shared-memory files.
pub const DEFAULT_SHM_DIR: &str = "/dev/shm";
/// Default instance name: the files are `DIR/NAME.route` and `DIR/NAME.arp`.
pub const DEFAULT_INSTANCE: &str = "rtm";

/// The socket path when neither `--socket` nor `RTM_SOCKET` is given.
pub fn default_socket() -> PathBuf {
    let uid = effective_uid();
    if uid == 0 {
        return PathBuf::from("/run/rtm/rtm.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Path::new(&dir).join("rtm/rtm.sock"),
        None => fallback_dir(uid).join("rtm.sock"),
    }
}

/// The socket directory of the last resort for `uid`, in the world-writable `/tmp`.
pub fn fallback_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/rtm-{uid}"))
}

/// If `socket` lies in our fallback directory (`/tmp/rtm-$UID`), checks that the directory is
/// ours: anyone can create that name in `/tmp` first, then serve fake tables on a socket in it
/// (or read what we send). It must be a real directory (not a symlink), owned by our effective
/// uid, and writable by no one else. A missing directory passes (the daemon creates it).
pub fn check_socket_dir(socket: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid = effective_uid();
    let dir = fallback_dir(uid);
    if socket.parent() != Some(dir.as_path()) {
        return Ok(());
    }
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot inspect socket directory {}: {e}",
                dir.display()
            ))
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    let why = if !meta.file_type().is_dir() {
        Some("is not a directory (a symlink or a file)".to_string())
    } else if meta.uid() != uid {
        Some(format!("is owned by uid {}, not by uid {uid}", meta.uid()))
    } else if mode & 0o022 != 0 {
        Some(format!("has mode {mode:04o}: others may write in it"))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(format!(
            "socket directory {} {why}; another user may have made it to serve fake tables: \
             remove it, or pass --socket",
            dir.display()
        )),
    }
}

/// `--socket` (clap also fills it from `RTM_SOCKET`) or the default.
pub fn socket_path(given: Option<PathBuf>) -> PathBuf {
    given
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(default_socket)
}

/// The shared-memory file of a table.
pub fn shm_path(dir: &Path, instance: &str, table: crate::wire::Table) -> PathBuf {
    dir.join(format!("{instance}.{}", table.name()))
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}
