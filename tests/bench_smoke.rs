//! `rtm-bench --quick` runs end to end and prints every required figure. No thresholds: the
//! benchmark measures, tests only check that it works (SPEC §6).

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(55);

const REQUIRED: &[&str] = &[
    "updates_per_s_clients_1",
    "updates_per_s_clients_8",
    "notifications_lost_clients_8",
    "notify_latency_p50_us",
    "notify_latency_p99_us",
    "lpm_lookups_per_s",
    "lpm_baseline_prefix_trie_per_s",
    "arp_lookups_per_s",
    "arp_baseline_hashmap_per_s",
    "late_join_ms",
    "flush_ms",
    "bytes_per_route",
];

#[test]
fn quick_run_prints_every_figure() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtm-bench"))
        .arg("--quick")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rtm-bench");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    let status = status.unwrap_or_else(|| {
        panic!("rtm-bench --quick did not finish within {DEADLINE:?}\n{stdout}\n{stderr}")
    });
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
