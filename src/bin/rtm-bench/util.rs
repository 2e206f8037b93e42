//! Clocks, CPU and memory figures of processes, percentiles, commands that must succeed, the
//! scratch directory.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::child;

/// CLOCK_MONOTONIC in nanoseconds. The clock is system-wide, so timestamps taken in different
/// processes compare directly.
pub fn now_ns() -> u64 {
    ns(rustix::time::clock_gettime(
        rustix::time::ClockId::Monotonic,
    ))
}

/// CPU time this thread has used, in nanoseconds (CLOCK_THREAD_CPUTIME_ID). In-process lookup
/// rates are taken per second of it, so time the scheduler gives to other processes on a busy
/// machine does not count against the code measured.
pub fn thread_cpu_ns() -> u64 {
    ns(rustix::time::clock_gettime(
        rustix::time::ClockId::ThreadCPUTime,
    ))
}

fn ns(ts: rustix::time::Timespec) -> u64 {
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/PID/stat`
/// (10 ms resolution); NaN if it cannot be read.
pub fn proc_cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at state (field 3);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0 // USER_HZ
}

/// CPU time (user + system) of every child this process has reaped, in seconds.
pub fn reaped_children_cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(ru) => {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            tv(ru.user_time()) + tv(ru.system_time())
        }
        Err(_) => f64::NAN,
    }
}

/// Runs a command to completion under a deadline (see [`child::run`]); a non-zero exit is an
/// error that quotes stderr.
pub fn run_ok(cmd: Command, deadline: Duration) -> Result<Output> {
    let what = format!("{cmd:?}");
    let o = child::run(cmd, None, deadline)?;
    if !o.status.success() {
        bail!(
            "{what} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(o)
}

/// Counts the lines a reader yields, on a thread; the count is shared.
pub fn count_lines<R: Read + Send + 'static>(r: R) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let n = std::sync::Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 16, r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    n2.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    n
}

/// The `q` quantile (0..=1) of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A field of `/proc/PID/status` in bytes (the file gives kB).
pub fn proc_status_bytes(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parse {field} in /proc/{pid}/status"))?;
            return Ok(kb * 1024);
        }
    }
    bail!("no {field} in /proc/{pid}/status")
}

/// Bytes actually allocated to a file (st_blocks × 512): what a sparse tmpfs file costs.
pub fn allocated_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok(m.blocks() * 512)
}

/// The size of the file system holding `path`, and the bytes in use on it.
pub fn fs_usage(path: &Path) -> Result<(u64, u64)> {
    let v = rustix::fs::statvfs(path).with_context(|| format!("statvfs {}", path.display()))?;
    Ok((
        v.f_blocks * v.f_frsize,
        (v.f_blocks - v.f_bfree) * v.f_frsize,
    ))
}

/// Apparent size of a file.
pub fn file_len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len())
}

/// A scratch directory removed (recursively) when dropped.
pub struct ScratchDir(pub std::path::PathBuf);

impl ScratchDir {
    /// A fresh directory under `base` if given, else under `/dev/shm` (tmpfs, where production
    /// shm lives), else under the temp dir.
    pub fn new(tag: &str, base: Option<&Path>) -> Result<ScratchDir> {
        let pid = std::process::id();
        let nanos = now_ns();
        let tmp = std::env::temp_dir();
        let bases: Vec<&Path> = match base {
            Some(b) => vec![b],
            None => vec![Path::new("/dev/shm"), &tmp],
        };
        for base in &bases {
            let p = base.join(format!("rtm-bench-{tag}-{pid}-{nanos}"));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(ScratchDir(p));
            }
        }
        bail!("cannot create a scratch directory in any of {bases:?}")
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
