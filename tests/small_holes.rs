//! Small holes a hostile or unlucky client could use: over-long client names, and a client that
//! announces a SIGUSR1 handler where rtmd cannot take a pidfd to signal it.
#![forbid(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use common::*;
use rtm::wire::{self, Caps, ClientMsg, Hello, ServerMsg};

/// A name over 255 bytes is refused at the handshake with the limit named; names up to the
/// limit register, and `rtmctl clients` keeps answering for everyone.
#[test]
fn an_over_long_client_name_is_refused_with_the_limit() {
    let inst = Instance::start();
    let long = "n".repeat(wire::MAX_CLIENT_NAME + 1);
    let mut c = inst.client_unsynced(&long, &[]);
    let (st, err) = c.wait();
    assert_eq!(st.code(), Some(2), "refused by the daemon: {err}");
    assert!(
        err.contains("client name of 256 bytes") && err.contains("limit 255"),
        "{err}"
    );
    assert!(!err.contains(&long), "the name is not echoed whole: {err}");

    // A raw client with a 1 MB name in a frame rtmd accepts (a larger max-frame).
    let inst = Instance::start_with(&["--max-frame", "4194304"]);
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = wire::encode(&ClientMsg::Hello(Hello {
        version: wire::PROTOCOL_VERSION,
        name: "x".repeat(1 << 20),
        caps: Caps::default(),
    }))
    .unwrap();
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    match wire::decode::<ServerMsg>(&reply).unwrap() {
        ServerMsg::Refused(f) => assert!(f.to_string().contains("limit 255"), "{f}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        !inst.log_text().contains(&"x".repeat(1000)),
        "the name reached the log whole"
    );

    let fits = "m".repeat(wire::MAX_CLIENT_NAME);
    let _ok = inst.client(&fits, &[]);
    assert_eq!(inst.client_names(), [fits]);
}

/// Without a pidfd of the client (an old kernel; simulated by a fault-injection hook), a client
/// announcing a SIGUSR1 handler is refused with the reason instead of registered and never
/// signalled; a subscriber without the handler registers as usual.
#[cfg(feature = "fault-injection")]
#[test]
fn a_sigusr1_client_without_a_pidfd_is_refused_with_the_reason() {
    let mut inst = Instance::unstarted();
    let mut cmd: Command = inst.daemon_cmd(&[]);
    cmd.env("RTMD_DEBUG_NO_PIDFD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&inst.log).unwrap());
    inst.daemon = Some(cmd.spawn().unwrap());
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);

    let mut c = inst.client_unsynced("signalled", &[]);
    let (st, err) = c.wait();
    assert_eq!(st.code(), Some(2), "refused by the daemon: {err}");
    assert!(err.contains("SIGUSR1") && err.contains("no pidfd"), "{err}");
    // `rtmctl watch` announces no handler: it registers.
    let _w = inst.watch();
    inst.eventually("the watcher is registered", || {
        inst.client_names().len() == 1
    });
    assert!(inst
        .log_text()
        .contains("has no pidfd; refusing its registration"));
}

/// The socket file never has a looser mode than `0600` before its configured mode is set, even
/// under umask `000`: rtmd is stopped (a fault-injection stall) between bind and chmod.
#[cfg(feature = "fault-injection")]
#[test]
fn the_socket_is_owner_only_until_its_mode_is_set() {
    use std::os::unix::fs::PermissionsExt;
    let mut inst = Instance::unstarted();
    let daemon = inst.daemon_cmd(&["--socket-mode", "0660"]);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"umask 000; exec "$0" "$@""#])
        .arg(daemon.get_program())
        .args(daemon.get_args())
        .env("RTMD_DEBUG_STALL_PUBLISH", "socket:2000")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&inst.log).unwrap());
    inst.daemon = Some(cmd.spawn().unwrap());
    inst.eventually("rtmd stalls after bind", || {
        inst.log_text().contains("stalling before publishing")
    });
    let mode = std::fs::symlink_metadata(&inst.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "between bind and chmod: {mode:o}");
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);
    let mode = std::fs::metadata(&inst.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "the configured mode: {mode:o}");
}

/// Removes a path when dropped (the fallback directory lives in the real `/tmp`).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `/tmp/rtm-$UID`, the socket directory of last resort, is used only if it is the user's own:
/// one planted by another user (here root, for uid 64999) makes rtmctl and rtmd refuse it with
/// the reason; one rtmd creates itself is private and works. Needs root (to act as uid 64999).
#[test]
fn a_planted_fallback_socket_dir_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run as another uid");
        return;
    }
    const UID: u32 = 64_999;
    let fallback = std::path::PathBuf::from(format!("/tmp/rtm-{UID}"));
    let _ = std::fs::remove_dir_all(&fallback);
    let _cleanup = RemoveOnDrop(fallback.clone());
    let as_user = |program: &str| {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            "env",
            "-u",
            "XDG_RUNTIME_DIR",
            "-u",
            "RTM_SOCKET",
            program,
        ]);
        c
    };
    // Planted by root, open to everyone.
    std::fs::create_dir(&fallback).unwrap();
    std::fs::set_permissions(&fallback, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut ctl = as_user(RTMCTL);
    ctl.arg("status");
    let o = run(ctl, None, DEADLINE);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "socket directory /tmp/rtm-{UID} is owned by uid 0"
        )),
        "{}",
        stderr(&o)
    );

    // rtmd as that user refuses it too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shm = dir.path().join("shm");
    std::fs::create_dir(&shm).unwrap();
    std::os::unix::fs::chown(&shm, Some(UID), Some(UID)).unwrap();
    let mut daemon = as_user(RTMD);
    daemon.arg("--shm-dir").arg(&shm).args([
        "--instance",
        "t",
        "--route-capacity",
        "1024",
        "--arp-capacity",
        "64",
    ]);
    let o = run(daemon, None, DEADLINE);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("owned by uid 0"), "{}", stderr(&o));

    // Gone: rtmd makes its own, private, and everything works.
    std::fs::remove_dir_all(&fallback).unwrap();
    let mut daemon = as_user(RTMD);
    daemon
        .arg("--shm-dir")
        .arg(&shm)
        .args([
            "--instance",
            "t",
            "--route-capacity",
            "1024",
            "--arp-capacity",
            "64",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _rtmd = KillOnDrop(daemon.spawn().unwrap());
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let mut ctl = as_user(RTMCTL);
        ctl.arg("status");
        if code(&run(ctl, None, DEADLINE)) == 0 {
            break;
        }
        assert!(std::time::Instant::now() < end, "rtmd did not come up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let meta = std::fs::symlink_metadata(&fallback).unwrap();
    assert_eq!(meta.uid(), UID);
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

/// The registry is supervised like the other actors: a panic in it is a `registry` restart
/// (`rtmctl status`), its registrations survive, subscribing and listing work after it, and a
/// clean stop still says `bye` to every subscriber.
#[cfg(feature = "fault-injection")]
#[test]
fn a_failed_registry_is_restarted_with_its_clients() {
    use nix::sys::signal::Signal;
    let mut inst = Instance::start();
    let mut a = inst.client("a", &[]);
    let o = inst.debug("panic registry");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    inst.eventually("the registry restarted", || {
        inst.status()["restarts"]["registry"] == 1
    });
    let st = inst.status();
    for other in ["route", "arp", "broker", "listener"] {
        assert_eq!(st["restarts"][other], 0, "{st}");
    }
    assert!(st["counters"].get("registry_restarts").is_none(), "{st}");
    assert!(
        inst.ctl_ok(&["status"]).contains("registry 1"),
        "the text status"
    );
    assert_eq!(inst.client_names(), ["a"]);
    let _b = inst.client("b", &[]);
    let mut names = inst.client_names();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    assert_eq!(a.expect(|v| v["op"] == "create")["key"], "10.1.0.0/16");
    inst.signal_daemon(Signal::SIGTERM);
    a.expect(|v| v["op"] == "bye");
    assert!(inst.wait_daemon().success());
}
