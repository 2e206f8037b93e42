//! `rtm-bench --quick` runs end to end and prints every required figure. No thresholds: the
//! benchmark measures, tests only check that it works (BENCHMARKS.md).
#![forbid(unsafe_code)]

mod common;

use std::process::Command;
use std::time::Duration;

/// The whole quick run, killed by its handle past this.
const BENCH_DEADLINE: Duration = Duration::from_secs(55);

const REQUIRED: &[&str] = &[
    "updates_per_s_clients_1",
    "updates_per_s_clients_8",
    "notifications_lost_clients_8",
    "notify_latency_p50_us",
    "notify_latency_p99_us",
    "notify_floor_p50_us",
    "notify_floor_p99_us",
    "reply_floor_p50_us",
    "reply_floor_p99_us",
    "lpm_lookups_per_s",
    "lpm_baseline_prefix_trie_per_s",
    "lpm_nh_lookups_per_s",
    "lpm_nh_lookups_batched_per_s",
    "lpm_nh_baseline_prefix_trie_per_s",
    "lpm_chain_lookups_per_s",
    "lpm_nh_chain_lookups_per_s",
    "route_republish_ms",
    "route_republish_cpu_ms",
    "arp_lookups_per_s",
    "arp_baseline_hashmap_per_s",
    "late_join_ms",
    "late_join_usable_ms",
    "flush_ms",
    "status_rtt_p99_us_during_route_writes",
    "bytes_per_route",
    "shm_empty_allocated_bytes",
    "shm_fs_used_bytes",
];

#[test]
fn quick_run_prints_every_figure() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtm-bench"));
    cmd.arg("--quick");
    let o = common::run(cmd, None, BENCH_DEADLINE);
    let (status, stdout, stderr) = (o.status, common::stdout(&o), common::stderr(&o));
    assert!(
        status.success(),
        "rtm-bench --quick: {status}\n{stdout}\n{stderr}"
    );

    for name in REQUIRED {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no `{name}:` line in:\n{stdout}"));
        let value = line[name.len() + 2..]
            .split_whitespace()
            .next()
            .unwrap_or("");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("`{line}`: value is not a number"));
        assert!(v.is_finite(), "`{line}`: value is not finite");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l == "notifications_lost_clients_8: 0 events"),
        "notifications were lost:\n{stdout}"
    );
}
