//! `rtm-torture` runs a short seeded chaos run end to end: faults are injected and every
//! invariant holds after each (docs/torture.md). The longer runs are in `.ci/run`.
#![forbid(unsafe_code)]

mod common;

use std::process::Command;
use std::time::Duration;

/// The whole run, killed by its handle past this (it injects faults for 10 s, then stops).
const TORTURE_DEADLINE: Duration = Duration::from_secs(120);

fn figure(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}:` line in:\n{stdout}"))
        .to_string()
}

#[test]
fn short_run_injects_faults_and_every_invariant_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtm-torture"));
    cmd.args(["--seconds", "10", "--seed", "14", "--dir"])
        .arg(dir.path());
    let o = common::run(cmd, None, TORTURE_DEADLINE);
    let (stdout, stderr) = (common::stdout(&o), common::stderr(&o));
    assert!(
        o.status.success(),
        "rtm-torture: {}\n{stdout}\n{stderr}",
        o.status
    );
    let faults: u64 = figure(&stdout, "faults_injected").parse().unwrap();
    assert!(faults > 0, "no fault injected:\n{stdout}");
    assert_eq!(figure(&stdout, "invariant_violations"), "0", "{stdout}");
    // One line per fault.
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with("fault ") && l.contains(" held: "))
        .count();
    assert_eq!(lines as u64, faults, "{stdout}");
    let acked: u64 = figure(&stdout, "acknowledged_changes").parse().unwrap();
    assert!(acked > 0, "no change acknowledged:\n{stdout}");
    // The fault-injection build has the actor panics.
    if cfg!(feature = "fault-injection") {
        assert_ne!(figure(&stdout, "fault actor-panic"), "skipped", "{stdout}");
    }
}
