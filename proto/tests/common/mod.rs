//! What the multi-process shared-memory tests share: collecting a reader process.

use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};

/// Waits for reader `k` until `deadline` (killing it by its handle past that), checks that it
/// succeeded, and returns the count it printed after `tag` (e.g. `"READS "`), which must be > 0.
pub fn reap_reader(k: usize, child: &mut Child, deadline: Instant, tag: &str) -> u64 {
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reader {k} (pid {}) timed out and was killed", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "reader {k} failed: {status}\n{out}\n{err}"
    );
    let n: u64 = out
        .lines()
        .find_map(|l| l.split(tag).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("reader {k} printed no count:\n{out}\n{err}"))
        .parse()
        .unwrap();
    assert!(n > 0, "reader {k} counted nothing");
    n
}
