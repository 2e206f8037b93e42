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
        None => PathBuf::from(format!("/tmp/rtm-{uid}/rtm.sock")),
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
