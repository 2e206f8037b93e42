//! Where an rtm instance lives. The socket: `--socket PATH` > env `RTM_SOCKET` >
//! `/run/rtm/rtm.sock` for root > `$XDG_RUNTIME_DIR/rtm/rtm.sock` > `/tmp/rtm-$UID/rtm.sock`;
//! clients (`rtmctl`, `rtm-client`) also take `/run/rtm/rtm.sock` whenever it exists, so they
//! find the system daemon (which runs as its own user) whoever they run as.

use std::path::{Path, PathBuf};

/// Default directory of the shared-memory files.
pub const DEFAULT_SHM_DIR: &str = "/dev/shm";
/// Default instance name: the files are `DIR/NAME.route` and `DIR/NAME.arp`.
pub const DEFAULT_INSTANCE: &str = "rtm";

/// The kernel neighbour table's file (`DIR/NAME.neigh`) of the instance whose route file is
/// `route_shm` (`DIR/NAME.route`, as the daemon's welcome names it): the welcome predates the
/// neighbour table, so clients find its file beside the route file.
pub fn neigh_shm_of(route_shm: &Path) -> PathBuf {
    route_shm.with_extension("neigh")
}

/// The system instance's socket (the one `deploy/rtmd.service` passes).
pub const SYSTEM_SOCKET: &str = "/run/rtm/rtm.sock";

/// The daemon's socket path when neither `--socket` nor `RTM_SOCKET` is given.
pub fn default_socket() -> PathBuf {
    per_user_socket(effective_uid(), std::env::var_os("XDG_RUNTIME_DIR"))
}

fn per_user_socket(uid: u32, xdg_runtime_dir: Option<std::ffi::OsString>) -> PathBuf {
    if uid == 0 {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    match xdg_runtime_dir.filter(|v| !v.is_empty()) {
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

/// `--socket` (clap also fills it from `RTM_SOCKET`) or the daemon's default.
pub fn socket_path(given: Option<PathBuf>) -> PathBuf {
    given
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(default_socket)
}

/// The socket a client connects to: `--socket`/`RTM_SOCKET`, else the system socket when it
/// exists (whatever user the daemon and the client run as), else the per-user default.
pub fn client_socket_path(given: Option<PathBuf>) -> PathBuf {
    client_socket_from(
        given,
        Path::new(SYSTEM_SOCKET),
        effective_uid(),
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

fn client_socket_from(
    given: Option<PathBuf>,
    system: &Path,
    uid: u32,
    xdg_runtime_dir: Option<std::ffi::OsString>,
) -> PathBuf {
    if let Some(p) = given.filter(|p| !p.as_os_str().is_empty()) {
        return p;
    }
    if uid == 0 || system.exists() {
        return system.to_path_buf();
    }
    per_user_socket(uid, xdg_runtime_dir)
}

/// The shared-memory file of a table.
pub fn shm_path(dir: &Path, instance: &str, table: crate::wire::Table) -> PathBuf {
    dir.join(format!("{instance}.{}", table.name()))
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client finds the system socket first when it exists, whatever its uid; the daemon's
    /// default does not change with it.
    #[test]
    fn clients_prefer_an_existing_system_socket() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("rtm.sock");
        let xdg = Some(std::ffi::OsString::from("/run/user/1000"));
        let user = PathBuf::from("/run/user/1000/rtm/rtm.sock");
        assert_eq!(client_socket_from(None, &system, 1000, xdg.clone()), user);
        assert_eq!(
            client_socket_from(None, &system, 1000, None),
            PathBuf::from("/tmp/rtm-1000/rtm.sock")
        );
        assert_eq!(client_socket_from(None, &system, 0, xdg.clone()), system);
        std::fs::write(&system, b"").unwrap();
        assert_eq!(client_socket_from(None, &system, 1000, xdg.clone()), system);
        let given = PathBuf::from("/elsewhere.sock");
        assert_eq!(
            client_socket_from(Some(given.clone()), &system, 1000, xdg.clone()),
            given
        );
        assert_eq!(
            client_socket_from(Some(PathBuf::new()), &system, 1000, xdg.clone()),
            system
        );
        assert_eq!(per_user_socket(1000, xdg), user);
    }
}
