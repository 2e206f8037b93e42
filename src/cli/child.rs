//! Child processes under a deadline: waiting for one, running a command to completion, and a
//! guard that never leaves one behind. A child that overstays is killed by its own handle —
//! never by name — and reaped.
//!
//! Shared by `rtm-bench` and the integration tests, which each include this file with
//! `#[path]`; it is not part of the `rtm` library, so it uses nothing but std.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often a waiting caller looks at its child.
const POLL: Duration = Duration::from_millis(2);

/// Waits for `child` until `deadline` passes; then kills it by its own handle, reaps it and
/// returns `None`.
pub fn wait_deadline(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < end => thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Runs `cmd` to completion under `deadline`, fed `stdin` if given (else `/dev/null`), and
/// returns its status, stdout and stderr. The pipes are written and drained on threads so a
/// chatty child never blocks on a full pipe. Fails if the command cannot be spawned, or with
/// [`io::ErrorKind::TimedOut`] if the deadline passed (the child was killed).
pub fn run(mut cmd: Command, stdin: Option<&[u8]>, deadline: Duration) -> io::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("spawn {what}: {e}")))?;
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("piped");
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let Some(status) = wait_deadline(&mut child, deadline) else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} did not finish within {deadline:?} (killed)"),
        ));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Reads `r` to its end on a thread.
fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// A child that is killed (by its own handle) and reaped when dropped, so an early return or
/// a failed assertion leaves none behind.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits up to `d` for the child to exit by itself, then kills it; `None` if it had to be
    /// killed.
    pub fn finish(mut self, d: Duration) -> Option<ExitStatus> {
        wait_deadline(&mut self.0, d)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
