//! docs/cli.md ("Where an instance lives") and docs/guarantees.md §8: one daemon per socket, clean
//! stop, and what clients see when the daemon stops cleanly or dies.
#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;
use nix::sys::signal::Signal;

fn instance_files(inst: &Instance) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&inst.shm_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn clean_stop_says_bye_and_removes_socket_and_shm() {
    let mut inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    let mut c = inst.client("c", &[]);
    let mut w = inst.watch();
    inst.eventually("both registered", || inst.client_names().len() == 2);
    assert!(instance_files(&inst).contains(&"t.route".to_string()));

    inst.signal_daemon(Signal::SIGTERM);
    assert_eq!(c.next()["op"], "bye");
    assert_eq!(w.next()["op"], "bye");
    let (st, err) = c.wait();
    assert!(st.success(), "client: {st} {err}");
    let (st, err) = w.wait();
    assert!(st.success(), "watch: {st} {err}");
    let st = inst.wait_daemon();
    assert!(st.success(), "rtmd: {st}: {}", inst.log_text());
    assert!(!path_exists(&inst.socket), "socket left behind");
    assert_eq!(instance_files(&inst), Vec::<String>::new());
}

#[test]
fn second_daemon_on_the_same_socket_is_refused() {
    let inst = Instance::start();
    let mut second = inst.daemon_cmd(&[]);
    let o = run(
        {
            second.env("RUST_LOG", "error");
            second
        },
        None,
        DEADLINE,
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already serving"), "{}", stderr(&o));
    // The first one still serves.
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    assert_eq!(inst.ctl_ok(&["route", "show"]), "10.1.0.0/16 dev eth0\n");

    // Another socket but the same instance: refused too, and the refused daemon leaves no
    // lock file of its own behind.
    let other = inst.socket.with_file_name("other.sock");
    let mut third = Command::new(RTMD);
    third
        .arg("--socket")
        .arg(&other)
        .arg("--shm-dir")
        .arg(&inst.shm_dir)
        .args(["--instance", "t"])
        .env("RUST_LOG", "error");
    let o = run(third, None, DEADLINE);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("in use by another rtmd"),
        "{}",
        stderr(&o)
    );
    let lock = inst.socket.with_file_name("other.sock.lock");
    assert!(!path_exists(&lock), "{} left behind", lock.display());
    assert!(!path_exists(&other));
    inst.ctl_ok(&["route", "show"]);
}

#[test]
fn daemon_killed_clients_fail_fast_and_shm_stays_readable() {
    let mut inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "via", "192.168.1.1"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.168.1.10"]);
    let mut c = inst.client("c", &[]);
    inst.signal_daemon(Signal::SIGKILL);
    inst.wait_daemon();
    // `wait` has a deadline: a client that spins or hangs instead of exiting fails here.
    let (st, err) = c.wait();
    assert!(!st.success(), "client must fail when the daemon vanishes");
    assert!(err.contains("without saying bye"), "{err}");

    // Data planes keep reading: the one-shot readers work without the daemon.
    let shm = |args: &[&str]| {
        let mut cmd = Command::new(RTM_CLIENT);
        cmd.arg("--socket")
            .arg(&inst.socket)
            .args(args)
            .arg("--shm-dir")
            .arg(&inst.shm_dir)
            .args(["--instance", "t"]);
        run(cmd, None, DEADLINE)
    };
    let o = shm(&["dump"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "10.1.0.0/16 via 192.168.1.1\n192.168.1.10 lladdr 00:11:22:33:44:55\n"
    );
    let o = shm(&["lookup", "10.1.200.3", "--json"]);
    assert_eq!(
        stdout(&o).trim(),
        r#"{"dst":"10.1.0.0/16","via":"192.168.1.1","metric":0}"#
    );
    assert_eq!(code(&shm(&["lookup", "11.0.0.1"])), 2);
    assert_eq!(code(&shm(&["lookup", "11.0.0"])), 1);
    let o = shm(&["arp", "0011.2233.4455"]);
    assert_eq!(stdout(&o), "192.168.1.10 lladdr 00:11:22:33:44:55\n");

    // A new daemon replaces the stale socket.
    inst.spawn_daemon(&[]);
    assert_eq!(inst.ctl_ok(&["route", "show"]), "");
}

#[test]
fn reconnecting_client_resyncs_with_a_new_daemon() {
    let mut inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    let mut c = inst.client("r", &["--reconnect"]);
    inst.signal_daemon(Signal::SIGKILL);
    inst.wait_daemon();
    inst.spawn_daemon(&[]);
    inst.eventually("client re-registered", || inst.client_names() == ["r"]);
    // After the reconnect the client prints the (new, empty) table again, then live events.
    let done = c.expect(|v| v["op"] == "sync-done" && v["table"] == "route");
    assert_eq!(done["count"], 0);
    inst.ctl_ok(&["route", "add", "10.2.0.0/16", "dev", "eth1"]);
    let v = c.expect(|v| v["op"] == "create");
    assert_eq!(v["key"], "10.2.0.0/16");
    assert_eq!(v["seq"], 1);
    c.signal(Signal::SIGUSR2);
    let m = c.collect_until(|v| v["op"] == "mirror-done");
    assert_eq!(m[0]["entry"]["dst"], "10.2.0.0/16");
    assert_eq!(m.last().unwrap()["routes"], 1);
}

#[test]
fn sighup_reloads_limits_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rtmd.toml");
    std::fs::write(&conf, "max-clients = 5\n").unwrap();
    let inst = Instance::start_with(&["--config", conf.to_str().unwrap()]);
    let _a = inst.client("a", &[]);
    let _b = inst.client("b", &[]);
    std::fs::write(&conf, "max-clients = 2\n").unwrap();
    inst.signal_daemon(Signal::SIGHUP);
    let log = || inst.log_text();
    inst.eventually("config reloaded", || log().contains("config reloaded"));
    let mut c = inst.client_unsynced("c", &[]);
    let (st, err) = c.wait();
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("allows 2"), "{err}");
    // A broken file keeps the settings in force.
    std::fs::write(&conf, "max-clients = \"many\"\n").unwrap();
    inst.signal_daemon(Signal::SIGHUP);
    inst.eventually("reload refused", || log().contains("config reload failed"));
    assert_eq!(inst.client_names().len(), 2);
}

#[test]
fn flags_keep_precedence_over_the_file_across_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rtmd.toml");
    std::fs::write(&conf, "max-clients = 1\n").unwrap();
    let inst = Instance::start_with(&["--config", conf.to_str().unwrap(), "--max-clients", "3"]);
    let log = || inst.log_text();
    inst.signal_daemon(Signal::SIGHUP);
    inst.eventually("config reloaded", || log().contains("config reloaded"));
    let _a = inst.client("a", &[]);
    let _b = inst.client("b", &[]);
    let mut names = inst.client_names();
    names.sort();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn a_daemon_whose_stderr_is_gone_still_serves_and_stops_cleanly() {
    // Logs to a pipe whose reader is gone (a closed terminal, a restarted log collector).
    let mut inst = Instance::start();
    inst.signal_daemon(Signal::SIGTERM);
    inst.wait_daemon();
    let mut cmd = inst.daemon_cmd(&[]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stderr.take());
    inst.daemon = Some(child);
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    assert_eq!(inst.ctl_ok(&["route", "show"]), "10.1.0.0/16 dev eth0\n");
    inst.signal_daemon(Signal::SIGTERM);
    let st = inst.wait_daemon();
    assert!(st.success(), "rtmd: {st}");
    assert!(!path_exists(&inst.socket), "socket left behind");
}
