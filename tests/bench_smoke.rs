//! `rtm-bench --quick` runs end to end and prints every required figure. No thresholds: the
//! benchmark measures, tests only check that it works (BENCHMARKS.md).
#![forbid(unsafe_code)]

mod common;

use common::netns::needs_netns;

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

/// Runs `rtm-bench` with `args`; its standard output, after checking that it succeeded.
fn bench(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtm-bench"));
    cmd.args(args);
    let o = common::run(cmd, None, BENCH_DEADLINE);
    let (status, stdout, stderr) = (o.status, common::stdout(&o), common::stderr(&o));
    assert!(
        status.success(),
        "rtm-bench {args:?}: {status}\n{stdout}\n{stderr}"
    );
    stdout
}

/// The value of the figure `name` (a `name: VALUE UNIT` line), which must be a finite number.
fn figure(stdout: &str, name: &str) -> f64 {
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
    v
}

#[test]
fn quick_run_prints_every_figure() {
    let stdout = bench(&["--quick"]);
    for name in REQUIRED {
        figure(&stdout, name);
    }
    assert!(
        stdout
            .lines()
            .any(|l| l == "notifications_lost_clients_8: 0 events"),
        "notifications were lost:\n{stdout}"
    );
}

#[test]
fn dashboard_run_prints_every_figure_and_resyncs_a_stalled_stream() {
    let stdout = bench(&["--quick", "--dashboard"]);
    for name in [
        "dashboard_routes_page_p50_ms",
        "dashboard_routes_page_p99_ms",
        "dashboard_lpm_search_p50_ms",
        "dashboard_lpm_search_p99_ms",
        "dashboard_stream_latency_p50_ms",
        "dashboard_stream_latency_p99_ms",
        "dashboard_idle_cpu_pct",
        "dashboard_unstalled_rss_growth_bytes",
        "dashboard_stalled_rss_growth_bytes",
        "dashboard_stalled_rss_growth_after_bytes",
        "dashboard_stalled_stream_bytes_read",
    ] {
        figure(&stdout, name);
    }
    assert!(
        figure(&stdout, "dashboard_stalled_resync") >= 1.0,
        "the stalled stream was not resynced:\n{stdout}"
    );
}

#[test]
fn sessions_run_counts_descriptors_and_loses_nothing() {
    let stdout = bench(&["--quick", "--sessions", "64", "--session-updates", "2000"]);
    for name in [
        "sessions_64_rss_per_subscriber_bytes",
        "sessions_64_clients_list_ms",
        "sessions_64_updates_per_s",
        "sessions_64_events_per_s",
    ] {
        figure(&stdout, name);
    }
    // One descriptor per subscriber without a SIGUSR1 handler, beside rtmd's own.
    let fds = figure(&stdout, "sessions_64_fds");
    assert!((64.0..64.0 + 64.0).contains(&fds), "{fds} fds:\n{stdout}");
    assert_eq!(figure(&stdout, "sessions_64_lost"), 0.0, "{stdout}");
}

#[test]
fn kernel_mirror_run_follows_a_burst_and_loses_nothing() {
    needs_netns!();
    let stdout = bench(&["--quick", "--kernel-mirror"]);
    // Not `kernel_mirror_burst_ip_monitor_after_ip_ms`: on a loaded machine the kernel drops
    // events for `ip monitor` too, and then that figure is skipped.
    for name in [
        "kernel_mirror_burst_ip_ms",
        "kernel_mirror_burst_clients_8_after_ip_ms",
        "kernel_mirror_latency_p50_us",
        "kernel_mirror_latency_p99_us",
        "kernel_ip_monitor_latency_p50_us",
        "kernel_ip_monitor_latency_p99_us",
        "kernel_mirror_enobufs_equal_after_ip_ms",
        "kernel_mirror_enobufs_redumps",
    ] {
        figure(&stdout, name);
    }
    assert_eq!(figure(&stdout, "kernel_mirror_burst_routes"), 16384.0);
    for zero in [
        "kernel_mirror_burst_lost_clients_8",
        "kernel_mirror_burst_differing_prefixes",
        "kernel_mirror_latency_missing",
        "kernel_mirror_enobufs_differing_prefixes",
    ] {
        assert_eq!(figure(&stdout, zero), 0.0, "{zero}:\n{stdout}");
    }
}
