//! docs/guarantees.md §7: with `--state-dir`, every acknowledged change survives a crash of the
//! daemon, shared memory stays readable while it is down, and `--reconnect` clients resync with the
//! restarted daemon.
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// Daemon flags for a durable instance with room for the big batch.
fn durable(inst_dir: &std::path::Path) -> Vec<String> {
    vec![
        "--state-dir".into(),
        inst_dir.join("state").display().to_string(),
        "--route-capacity".into(),
        "65536".into(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn shown_routes(inst: &Instance) -> BTreeSet<String> {
    inst.ctl_json(&["route", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn acknowledged_changes_survive_sigkill_in_the_middle_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let flags = durable(dir.path());
    let mut inst = Instance::start_with(&args(&flags));
    inst.ctl_ok(&["route", "add", "192.0.2.0/24", "dev", "eth0"]);
    inst.ctl_ok(&[
        "arp",
        "add",
        "02:00:00:00:00:01",
        "192.0.2.1",
        "dev",
        "eth0",
    ]);
    inst.ctl_ok(&["route", "del", "192.0.2.0/24"]);

    // A subscriber hears of a change only once it is durable: what it saw was acknowledged.
    let mut watcher = inst.watch();
    inst.eventually("watch registered", || inst.client_names().len() == 1);

    let n = 40_000;
    let lines: Vec<String> = (0..n)
        .map(|i| format!("route add 10.{}.{}.0/24 dev eth{}", i / 256, i % 256, i % 4))
        .collect();
    let text = lines.join("\n") + "\n";
    let mut batch = inst.ctl_cmd(&["batch", "-"]);
    batch
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = batch.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(text.as_bytes());
    });

    // Kill the daemon once a part of the batch is announced, but not all of it.
    let mut seen = BTreeSet::new();
    let mut last_seq = 0;
    let end = Instant::now() + DEADLINE;
    while seen.len() < 5_000 {
        assert!(Instant::now() < end, "batch did not progress");
        let ev = watcher.next();
        if ev["op"] == "create" && ev["table"] == "route" {
            seen.insert(ev["key"].as_str().unwrap().to_string());
            last_seq = ev["seq"].as_u64().unwrap();
        }
    }
    inst.signal_daemon(Signal::SIGKILL);
    inst.wait_daemon();
    let _ = wait_deadline(&mut child, DEADLINE);
    let _ = writer.join();
    // Everything the watcher received before the kill was acknowledged. It prints the rest of
    // what it received, then ends with its connection.
    while let Some(ev) = watcher.next_within(DEADLINE) {
        if ev["op"] == "create" && ev["table"] == "route" {
            seen.insert(ev["key"].as_str().unwrap().to_string());
            last_seq = last_seq.max(ev["seq"].as_u64().unwrap());
        }
    }
    drop(watcher);

    // While the daemon is down the data plane still reads shared memory.
    let o = run(
        {
            let mut c = std::process::Command::new(RTM_CLIENT);
            c.args(["--json", "dump", "--table", "route", "--instance", "t"])
                .arg("--shm-dir")
                .arg(&inst.shm_dir);
            c
        },
        None,
        DEADLINE,
    );
    assert_eq!(code(&o), 0, "dump while down: {}", stderr(&o));
    let dumped: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(dumped["routes"].as_array().unwrap().len() >= seen.len());

    inst.spawn_daemon(&args(&flags));
    let after = shown_routes(&inst);
    let missing: Vec<_> = seen.difference(&after).take(5).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // The batch is applied in order: what came back is a prefix of it, nothing out of order.
    let k = after.len();
    assert!(k >= seen.len() && k <= n, "{k} routes after restart");
    for (i, line) in lines.iter().enumerate() {
        let dst = line.split_whitespace().nth(2).unwrap();
        assert_eq!(
            after.contains(dst),
            i < k,
            "line {} ({dst}) vs {k} kept",
            i + 1
        );
    }
    // Changes before the batch are back too, and sequence numbers never go backwards.
    assert_eq!(
        inst.ctl_ok(&["arp", "show"]),
        "192.0.2.1 lladdr 02:00:00:00:00:01 dev eth0\n"
    );
    assert!(!after.contains("192.0.2.0/24"));
    let mut w = inst.watch();
    inst.eventually("watch registered", || inst.client_names().len() == 1);
    inst.ctl_ok(&["route", "add", "198.51.100.0/24", "dev", "eth1"]);
    let ev = w.expect(|e| e["op"] == "create");
    assert!(
        ev["seq"].as_u64().unwrap() > last_seq,
        "seq {} after restart, {last_seq} seen before",
        ev["seq"]
    );
}

#[test]
fn reconnecting_client_resyncs_with_the_restored_table() {
    let dir = tempfile::tempdir().unwrap();
    let flags = durable(dir.path());
    let mut inst = Instance::start_with(&args(&flags));
    for i in 0..50 {
        inst.ctl_line(&format!("route add 10.0.{i}.0/24 via 192.0.2.1 metric {i}"));
    }
    let mut c = inst.client("r", &["--reconnect"]);
    inst.signal_daemon(Signal::SIGKILL);
    inst.wait_daemon();
    inst.spawn_daemon(&args(&flags));
    // The client comes back on its own and prints the restored table again, exactly once.
    let synced = c.collect_until(|e| e["op"] == "sync-done" && e["table"] == "route");
    let keys: Vec<&str> = synced
        .iter()
        .filter(|e| e["op"] == "sync" && e["table"] == "route")
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(keys.len(), 50, "sync after reconnect: {keys:?}");
    assert_eq!(unique.len(), 50);
    let done = synced.last().unwrap();
    assert_eq!(done["count"], 50);
    // Then live changes, with sequence numbers above the restored table's.
    inst.ctl_ok(&["route", "del", "10.0.7.0/24"]);
    let ev = c.expect(|e| e["op"] == "delete");
    assert_eq!(ev["key"], "10.0.7.0/24");
    assert!(ev["seq"].as_u64().unwrap() > done["seq"].as_u64().unwrap());
}

#[test]
fn keep_shm_leaves_the_tables_readable_across_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = durable(dir.path());
    flags.push("--keep-shm".into());
    let mut inst = Instance::start_with(&args(&flags));
    inst.ctl_ok(&["route", "add", "10.9.0.0/16", "dev", "eth0"]);
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success());
    assert!(path_exists(&inst.route_shm()), "route shm removed");
    let o = run(
        {
            let mut c = std::process::Command::new(RTM_CLIENT);
            c.args(["lookup", "10.9.1.1", "--instance", "t"])
                .arg("--shm-dir")
                .arg(&inst.shm_dir);
            c
        },
        None,
        DEADLINE,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "10.9.0.0/16 dev eth0\n");
    inst.spawn_daemon(&args(&flags));
    assert_eq!(inst.ctl_ok(&["route", "show"]), "10.9.0.0/16 dev eth0\n");
}

#[test]
fn keep_shm_without_a_state_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(RTMD);
    cmd.arg("--socket")
        .arg(dir.path().join("s"))
        .arg("--shm-dir")
        .arg(dir.path())
        .arg("--keep-shm");
    let o = run(cmd, None, DEADLINE);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("keep-shm"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--state-dir"), "{}", stderr(&o));
}
