//! docs/guarantees.md §9 and docs/configuration.md: who may change the tables (decided by the
//! kernel's credentials, never by what a client says), file modes and groups, symlinks, and the
//! per-request limits. The tests that switch users run only as root (they use `setpriv`); elsewhere
//! they print why they are skipped.
#![forbid(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;

use common::*;
use nix::sys::signal::Signal;
use rtm_proto::wire::{self, Caps, ClientMsg, Hello, Op, Reply, Request, ServerMsg};
use rtm_proto::Route;

const NOBODY: &str = "65534";
/// A group id no account on the test machine has; only the test hands it out.
const ADMIN_GID: &str = "47101";

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: switching users needs root (setpriv)");
    false
}

/// `rtmctl ARGS` run as uid/gid nobody with the given supplementary groups.
fn ctl_as(inst: &Instance, gid: &str, groups: &[&str], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", NOBODY, "--regid", gid]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg("--groups").arg(groups.join(","));
    }
    cmd.arg(RTMCTL).arg("--socket").arg(&inst.socket).args(args);
    run(cmd, None, DEADLINE)
}

/// Lets other users reach the instance's socket (the temp dir is private).
fn open_dir(inst: &Instance) {
    std::fs::set_permissions(inst.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn others_may_read_but_not_change() {
    if !root() {
        return;
    }
    let inst = Instance::start_with(&["--socket-mode", "0666"]);
    open_dir(&inst);
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    inst.ctl_ok(&["arp", "add", "02:00:00:00:00:01", "10.1.0.1"]);
    let before = inst.ctl_ok(&["route", "show"]);

    let o = ctl_as(&inst, NOBODY, &[], &["route", "show"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), before);
    let o = ctl_as(&inst, NOBODY, &[], &["route", "get", "10.1.2.3"]);
    assert_eq!(stdout(&o), "10.1.0.0/16 dev eth0\n");
    assert_eq!(code(&ctl_as(&inst, NOBODY, &[], &["status"])), 0);

    for args in [
        &["route", "add", "10.2.0.0/16", "dev", "eth0"][..],
        &["route", "del", "10.1.0.0/16"],
        &["arp", "replace", "02:00:00:00:00:01", "10.9.9.9"],
        &["flush"],
    ] {
        let o = ctl_as(&inst, NOBODY, &[], args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim(),
            "rtmctl: permission denied: uid 65534 may not change tables",
            "{args:?}"
        );
    }
    let o = run(
        {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
                .arg(RTMCTL)
                .arg("--socket")
                .arg(&inst.socket)
                .args(["batch", "-"]);
            c
        },
        Some(b"route add 10.3.0.0/16 dev eth0\n"),
        DEADLINE,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(inst.ctl_ok(&["route", "show"]), before);
    assert_eq!(
        inst.ctl_ok(&["arp", "show"]),
        "10.1.0.1 lladdr 02:00:00:00:00:01\n"
    );
    let status = inst.ctl_json(&["status"]);
    assert_eq!(status["counters"]["denied"], 5);
    let log = inst.log_text();
    assert!(
        log.contains("mutation denied") && log.contains("uid=65534"),
        "{log}"
    );
}

#[test]
fn admin_group_members_may_change_by_primary_or_supplementary_group() {
    if !root() {
        return;
    }
    let inst = Instance::start_with(&["--socket-mode", "0666", "--admin-group", ADMIN_GID]);
    open_dir(&inst);
    let o = ctl_as(
        &inst,
        NOBODY,
        &[ADMIN_GID],
        &["route", "add", "10.1.0.0/16", "dev", "eth0"],
    );
    assert_eq!(code(&o), 0, "supplementary: {}", stderr(&o));
    let o = ctl_as(&inst, ADMIN_GID, &[], &["route", "del", "10.1.0.0/16"]);
    assert_eq!(code(&o), 0, "primary: {}", stderr(&o));
    let o = ctl_as(
        &inst,
        NOBODY,
        &["47102"],
        &["route", "add", "10.2.0.0/16", "dev", "eth0"],
    );
    assert_eq!(code(&o), 2, "another group: {}", stderr(&o));
    assert_eq!(inst.ctl_ok(&["route", "show"]), "");
}

#[test]
fn default_socket_is_not_open_to_other_users() {
    if !root() {
        return;
    }
    let inst = Instance::start();
    open_dir(&inst);
    let mode = std::fs::metadata(&inst.socket).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");
    let o = ctl_as(&inst, NOBODY, &[], &["status"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

#[test]
fn socket_and_shm_groups_and_modes() {
    let inst = Instance::start_with(&[
        "--socket-group",
        ADMIN_GID,
        "--shm-group",
        ADMIN_GID,
        "--shm-mode",
        "0640",
    ]);
    let sock = std::fs::metadata(&inst.socket).unwrap();
    assert_eq!(sock.gid().to_string(), ADMIN_GID);
    for p in [inst.route_shm(), inst.arp_shm()] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o777, 0o640, "{}", p.display());
        assert_eq!(m.gid().to_string(), ADMIN_GID, "{}", p.display());
    }
    // Shared memory writable by others is refused outright.
    let o = run(inst.daemon_cmd(&["--shm-mode", "0664"]), None, DEADLINE);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("shm-mode"), "{}", stderr(&o));
}

#[test]
fn a_symlink_planted_at_the_shm_path_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let mut inst = Instance::start();
    inst.signal_daemon(Signal::SIGTERM);
    inst.wait_daemon();
    std::os::unix::fs::symlink(&victim, inst.route_shm()).unwrap();
    inst.spawn_daemon(&[]);
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let meta = std::fs::symlink_metadata(inst.route_shm()).unwrap();
    assert!(meta.file_type().is_file(), "shm path is still a symlink");
}

#[test]
fn signals_go_only_to_the_connected_process_whatever_it_claims() {
    // A bystander with the default SIGUSR1 action (death): if rtmd ever signalled it, it dies.
    // It sleeps far longer than the test can take, even on a busy machine: only a signal from
    // rtmd can end it before the test drops (and kills) it.
    let mut bystander = KillOnDrop(Command::new("sleep").arg("3600").spawn().unwrap());
    let claim = bystander.0.id().to_string();
    let inst = Instance::start();
    // The client names itself after the bystander's PID, then after pid 0.
    let mut c1 = inst.client(&claim, &[]);
    let mut c2 = inst.client("0", &[]);
    inst.eventually("both registered", || inst.client_names().len() == 2);
    let listed = inst.ctl_json(&["clients"]);
    for c in listed.as_array().unwrap() {
        assert_ne!(c["pid"].to_string(), claim, "daemon took a claimed pid");
        assert_ne!(c["pid"], 0);
    }
    inst.ctl_ok(&["flush"]);
    c1.expect(|e| e["op"] == "signal");
    c2.expect(|e| e["op"] == "signal");
    assert!(
        bystander.0.try_wait().unwrap().is_none(),
        "the bystander was signalled"
    );
}

#[test]
fn a_batch_over_the_limit_is_refused_whole() {
    let inst = Instance::start_with(&["--max-batch", "100"]);
    let text: String = (0..150)
        .map(|i| format!("route add 10.0.{i}.0/24 dev eth0\n"))
        .collect();
    let o = inst.batch(&text, false);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("limit exceeded: batch of 150 operations in one request (limit 100)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(inst.ctl_ok(&["route", "show"]), "");
    // Within the limit it goes through.
    let o = inst.batch(&text[..text.len() / 2], false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn write_frame(s: &mut UnixStream, msg: &ClientMsg) {
    let body = wire::encode(msg).unwrap();
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&body).unwrap();
}

fn read_frame(s: &mut UnixStream) -> ServerMsg {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    wire::decode(&body).unwrap()
}

#[test]
fn pipelined_requests_are_answered_in_order_with_one_in_flight() {
    let inst = Instance::start_with(&["--max-inflight", "1"]);
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write_frame(
        &mut s,
        &ClientMsg::Hello(Hello {
            version: wire::PROTOCOL_VERSION,
            name: "pipeliner".into(),
            caps: Caps::default(),
        }),
    );
    assert!(matches!(read_frame(&mut s), ServerMsg::Welcome(_)));
    // 300 requests written before any answer is read: the daemon reads them one at a time.
    let n = 300u32;
    let mut writer = s.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..n {
            let route = Route {
                dst: format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap(),
                via: None,
                dev: Some("eth0".parse().unwrap()),
                metric: i,
                nexthops: Vec::new(),
                origin: Default::default(),
            };
            let req = if i % 3 == 2 {
                let prev = i - 1;
                Request::RouteGet(std::net::Ipv4Addr::new(
                    10,
                    (prev / 256) as u8,
                    (prev % 256) as u8,
                    1,
                ))
            } else {
                Request::Apply(Op::RouteReplace(route))
            };
            write_frame(&mut writer, &ClientMsg::Request { id: i, req });
        }
    });
    let mut last_seq = 0;
    for i in 0..n {
        match read_frame(&mut s) {
            ServerMsg::Reply { id, result } => {
                assert_eq!(id, i, "replies out of order");
                match result.unwrap().normalized() {
                    Reply::Done { seq } => {
                        assert!(seq > last_seq);
                        last_seq = seq;
                    }
                    Reply::Route(r) => assert_eq!(r.metric, i - 1, "get saw the op before it"),
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    t.join().unwrap();
}
