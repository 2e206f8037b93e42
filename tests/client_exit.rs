//! docs/guarantees.md §4: clients that leave, cleanly or killed, are removed; nobody else notices.
#![forbid(unsafe_code)]

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

#[test]
fn terminated_and_killed_clients_disappear() {
    let inst = Instance::start();
    let mut gone_clean = inst.client("clean", &[]);
    let gone_killed = inst.client("killed", &[]);
    let mut stays = inst.client("stays", &[]);
    let mut names = inst.client_names();
    names.sort();
    assert_eq!(names, ["clean", "killed", "stays"]);

    gone_clean.signal(Signal::SIGTERM);
    assert_eq!(gone_clean.next()["op"], "bye");
    let (st, err) = gone_clean.wait();
    assert!(st.success(), "{st}: {err}");
    // Deregistration is acknowledged before the client exits: it is gone at once.
    assert!(!inst.client_names().contains(&"clean".to_string()));

    gone_killed.signal(Signal::SIGKILL);
    inst.eventually("killed client removed", || inst.client_names() == ["stays"]);

    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    let v = stays.next();
    assert_eq!(v["op"], "create");
    assert_eq!(v["key"], "10.1.0.0/16");
}

#[test]
fn many_connect_disconnect_cycles_leave_no_stale_record() {
    let inst = Instance::start();
    let mut stays = inst.client("stays", &[]);
    for i in 0..30 {
        let mut c = inst.client(&format!("cycle{i}"), &["--table", "route"]);
        if i % 2 == 0 {
            c.signal(Signal::SIGKILL);
        } else {
            // The clean way: deregister, wait for the daemon's ack, say bye, exit 0.
            c.signal(Signal::SIGTERM);
            assert_eq!(c.next()["op"], "bye");
            let (st, err) = c.wait();
            assert!(st.success(), "{st}: {err}");
        }
    }
    inst.eventually("only the steady client is left", || {
        inst.client_names() == ["stays"]
    });
    let status = inst.ctl_json(&["status"]);
    assert_eq!(status["clients"], 1);
    assert!(status["counters"]["sessions_closed"].as_u64().unwrap() >= 30);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.168.1.10"]);
    assert_eq!(stays.next()["key"], "00:11:22:33:44:55");
}

#[test]
fn max_clients_refuses_with_a_reason_but_not_one_shot_requests() {
    let inst = Instance::start_with(&["--max-clients", "1"]);
    let _one = inst.client("one", &[]);
    let mut two = inst.client_unsynced("two", &[]);
    let (st, err) = two.wait();
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("too many clients"), "{err}");
    // One-shot requests still work.
    assert_eq!(inst.client_names(), ["one"]);
}

/// A subscriber whose output nobody reads any more (`rtm-client | head -1`, `rtmctl watch |
/// head -1`) deregisters and exits 0 at its next line instead of staying registered.
#[test]
fn subscribers_whose_output_is_closed_deregister_and_exit() {
    let inst = Instance::start();
    let mut stays = inst.client("stays", &[]);

    // rtm-client: read its one sync line, then close the pipe.
    let mut cmd = Command::new(RTM_CLIENT);
    cmd.arg("--socket")
        .arg(inst.socket.as_path())
        .args(["--json", "--name", "piped", "--table", "route"]);
    let mut piped = KillOnDrop(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rtm-client"),
    );
    // Read on a thread so the wait has a deadline; the pipe closes when the thread ends.
    let out = piped.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(out).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(DEADLINE)
        .expect("rtm-client printed nothing");
    assert!(first.contains("sync-done"), "{first}");
    assert!(inst.client_names().contains(&"piped".to_string()));

    // rtmctl watch: closed from the start; it prints nothing until an event.
    let mut watch = KillOnDrop(
        inst.ctl_cmd(&["-j", "watch"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rtmctl watch"),
    );
    drop(watch.0.stdout.take());
    inst.eventually("watch registered", || {
        inst.client_names().contains(&"rtmctl-watch".to_string())
    });

    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    for (what, child) in [("rtm-client", &mut piped), ("rtmctl watch", &mut watch)] {
        let st = wait_deadline(&mut child.0, DEADLINE);
        assert!(
            st.is_some_and(|s| s.success()),
            "{what} with its output closed: {st:?}"
        );
    }
    // Both deregistered before they exited.
    assert_eq!(inst.client_names(), ["stays"]);
    assert_eq!(stays.next()["key"], "10.1.0.0/16");
}
