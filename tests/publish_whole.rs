//! Readers keep the last complete table while rtmd rebuilds it: a daemon started with
//! `--state-dir` over files kept by `--keep-shm`, and a table actor's repair after a failure,
//! both build the new generation whole before it replaces the old file. Driven by a stall hook
//! (`RTMD_DEBUG_STALL_PUBLISH`, fault-injection builds): while rtmd is stopped right before it
//! publishes a table, lookups from shared memory still answer every route present before.
#![cfg(feature = "fault-injection")]
#![forbid(unsafe_code)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const STALL: &str = "RTMD_DEBUG_STALL_PUBLISH";

fn lookup(inst: &Instance, addr: &str) -> std::process::Output {
    let mut c = Command::new(RTM_CLIENT);
    c.args(["lookup", addr, "--instance", "t"])
        .arg("--shm-dir")
        .arg(&inst.shm_dir);
    run(c, None, DEADLINE)
}

/// Waits until the log has `n` stall lines.
fn wait_for_stalls(inst: &Instance, n: usize) {
    let end = Instant::now() + DEADLINE;
    while inst
        .log_text()
        .matches("stalling before publishing")
        .count()
        < n
    {
        assert!(Instant::now() < end, "no stall: {}", inst.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every route of `routes` answers its lookup from shared memory, 5 rounds.
fn all_found(inst: &Instance, routes: &[(String, String)]) {
    for _ in 0..5 {
        for (addr, want) in routes {
            let o = lookup(inst, addr);
            assert_eq!(code(&o), 0, "lookup {addr}: {}", stderr(&o));
            assert_eq!(stdout(&o), *want, "lookup {addr}");
        }
    }
}

fn routes() -> Vec<(String, String)> {
    (1..=20)
        .map(|i| (format!("10.{i}.0.9"), format!("10.{i}.0.0/16 dev eth0\n")))
        .collect()
}

#[test]
fn a_warm_restart_keeps_the_old_table_readable_until_the_new_one_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let flags = ["--state-dir", state.to_str().unwrap(), "--keep-shm"];
    let mut inst = Instance::start_with(&flags);
    let text: String = (1..=20)
        .map(|i| format!("route add 10.{i}.0.0/16 dev eth0\n"))
        .collect();
    assert_eq!(code(&inst.batch(&text, false)), 0);
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success());

    // Restart, stalled after the journal is read and before the route table is published.
    let mut cmd = inst.daemon_cmd(&flags);
    cmd.env(STALL, "route:3000")
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&inst.log)
                .unwrap(),
        );
    inst.daemon = Some(cmd.spawn().unwrap());
    wait_for_stalls(&inst, 1);
    all_found(&inst, &routes());
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);
    all_found(&inst, &routes());
    assert_eq!(inst.routes().len(), 20);
}

#[test]
fn a_repair_keeps_the_old_table_readable_until_the_new_one_is_whole() {
    let mut inst = Instance::unstarted();
    let mut cmd = inst.daemon_cmd(&[]);
    cmd.env(STALL, "route:3000")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&inst.log).unwrap());
    inst.daemon = Some(cmd.spawn().unwrap());
    // Without a state directory the start publishes an empty table: no stall there.
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);
    let text: String = (1..=20)
        .map(|i| format!("route add 10.{i}.0.0/16 dev eth0\n"))
        .collect();
    assert_eq!(code(&inst.batch(&text, false)), 0);

    // A failure in the route actor: its restart repairs (republishes) the table, stalled
    // right before the new generation replaces the file.
    let mut panic = KillOnDrop(
        inst.ctl_cmd(&["debug", "panic", "route"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_stalls(&inst, 1);
    all_found(&inst, &routes());
    wait_deadline(&mut panic.0, DEADLINE).expect("rtmctl debug returns");
    inst.eventually("the route actor restarted", || {
        inst.status()["restarts"]["route"] == 1
    });
    all_found(&inst, &routes());
    assert_eq!(inst.routes().len(), 20);
}
