//! A small tmpfs in a mount namespace of its own, for the tests of a full file system: the
//! namespace is held by a `sleep` that the returned guard kills, and the tests run rtmd inside
//! it with `nsenter`. Needs root and util-linux; [`unsupported`] says why not where it cannot.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{code, path_exists, run, stderr, KillOnDrop, DEADLINE};

/// Mounts a tmpfs and holds its namespace: `$1` size, `$2` mount point, `$3` a file made once
/// the mount is there (outside the tmpfs, so visible outside the namespace).
const MOUNT_AND_HOLD: &str =
    r#"mount -t tmpfs -o size="$1" tmpfs "$2" && : > "$3" && exec sleep 3600"#;

/// Why these tests cannot run on this machine, if they cannot: not root, no util-linux, or no
/// right to make a mount namespace and mount a tmpfs in it (a restricted container).
pub fn unsupported() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root to mount a tmpfs in a mount namespace".into());
    }
    for tool in ["unshare", "nsenter"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if !found {
            return Some(format!("needs `{tool}` (util-linux)"));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut probe = Command::new("unshare");
    probe
        .args([
            "--mount",
            "--propagation",
            "private",
            "mount",
            "-t",
            "tmpfs",
        ])
        .args(["-o", "size=4k", "tmpfs"])
        .arg(dir.path());
    let o = run(probe, None, DEADLINE);
    (code(&o) != 0).then(|| {
        format!(
            "cannot mount a tmpfs in a mount namespace here: {}",
            stderr(&o).trim()
        )
    })
}

/// Mounts a tmpfs of `size` at `mount` in a new mount namespace; returns the process that holds
/// the namespace (and with it the tmpfs). `dir` takes the marker and the holder's stderr.
pub fn hold(dir: &Path, mount: &Path, size: &str) -> KillOnDrop {
    let mounted = dir.join("mounted");
    let err_path = dir.join("holder.err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .args([MOUNT_AND_HOLD, "sh", size])
        .arg(mount)
        .arg(&mounted)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut holder = KillOnDrop(cmd.spawn().expect("spawn unshare"));
    let end = Instant::now() + DEADLINE;
    while !path_exists(&mounted) {
        if let Some(st) = holder.0.try_wait().unwrap() {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!("cannot mount a {size} tmpfs ({st}): {}", err.trim());
        }
        assert!(Instant::now() < end, "the tmpfs was not mounted in time");
        thread::sleep(Duration::from_millis(10));
    }
    holder
}
