//! `--perf-out`: a `perf record` of rtmd during one phase.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::child::KillOnDrop;

/// `perf record` on rtmd while it lives; stopped with SIGINT so it writes its file.
pub struct Perf(Option<KillOnDrop>);

impl Perf {
    pub fn start(out: Option<&PathBuf>, pid: u32) -> Result<Perf> {
        let Some(out) = out else {
            return Ok(Perf(None));
        };
        let child = Command::new("perf")
            .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn perf record")?;
        thread::sleep(Duration::from_millis(300));
        Ok(Perf(Some(KillOnDrop(child))))
    }

    pub fn stop(self) {
        if let Some(g) = self.0 {
            let pid = nix::unistd::Pid::from_raw(g.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = g.finish(Duration::from_secs(60));
        }
    }
}
