//! Creating the daemon's socket file so that it never has a looser mode than its owner's alone:
//! `bind(2)` creates the file with `0777 & !umask`, and the configured mode and group are set
//! only after it, so under a permissive umask every local user could connect (and act on what
//! the access rules allow anyone) in between.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use rustix::fs::Mode;

/// Binds `path` with the umask at `0177` (the socket file is created `0600`), then restores the
/// umask. The umask is process-wide: this runs at start-up, before the actors run, and no other
/// thread creates files meanwhile.
pub fn bind_owner_only(path: &Path) -> std::io::Result<UnixListener> {
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound
}

/// Creates the socket's directory `dir` if missing (mode 0700 when it is the `/tmp/rtm-$UID`
/// fallback) and checks that a fallback directory is ours ([`rtm_proto::paths::check_socket_dir`]).
pub fn create_dir(socket: &Path, dir: &Path) -> std::io::Result<()> {
    let denied = |why| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    rtm_proto::paths::check_socket_dir(socket).map_err(denied)?;
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    if dir == rtm_proto::paths::fallback_dir(rustix::process::geteuid().as_raw()) {
        b.mode(0o700);
    }
    b.create(dir)?;
    // Made by someone else between the check and the creation?
    rtm_proto::paths::check_socket_dir(socket).map_err(denied)
}
