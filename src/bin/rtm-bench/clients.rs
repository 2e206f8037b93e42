//! Client processes: this executable again in a hidden role (`--as-client`, see `client_role`
//! and `latency`), driven through its stdin and heard through its stdout — `p N` progress
//! lines, kept as a counter, and message lines such as `ready` or `r {json}`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::child::KillOnDrop;
use crate::util;

/// A client process in the hidden client role.
pub struct ClientProc {
    pub child: KillOnDrop,
    stdin: Option<ChildStdin>,
    progress: Arc<AtomicU64>,
    msgs: mpsc::Receiver<String>,
    name: String,
}

impl ClientProc {
    pub fn spawn(mode: &str, socket: &Path, name: &str, log: &Path) -> Result<ClientProc> {
        let exe = std::env::current_exe()?;
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(exe)
            .args(["--as-client", mode, "--name", name])
            .arg("--socket")
            .arg(socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .context("spawn client process")?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped");
        let progress = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let p = progress.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("p ") {
                    if let Ok(n) = n.trim().parse() {
                        p.store(n, Ordering::Release);
                    }
                } else if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(ClientProc {
            child: KillOnDrop(child),
            stdin,
            progress,
            msgs: rx,
            name: name.to_string(),
        })
    }

    pub fn progress(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }

    /// The next message line starting with `prefix` (others are skipped), within `d`.
    pub fn expect(&mut self, prefix: &str, d: Duration) -> Result<String> {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.msgs.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l[prefix.len()..].trim().to_string()),
                Ok(_) => continue,
                Err(_) => bail!(
                    "client {} sent no `{prefix}` within {d:?} (exit: {:?})",
                    self.name,
                    self.child.0.try_wait().ok().flatten()
                ),
            }
        }
    }

    /// A line for the client's stdin (see `client_role`).
    pub fn command(&mut self, cmd: &str) -> Result<()> {
        let s = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("client {} stopped", self.name))?;
        s.write_all(cmd.as_bytes())?;
        s.write_all(b"\n")?;
        Ok(())
    }

    fn send_stop(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"stop\n");
        }
    }

    /// Waits for the report a client sends without being asked (the floor roles), then for
    /// its exit (killed by its handle if it does not exit).
    pub fn report(mut self, d: Duration) -> Result<Value> {
        let r = self.expect("r ", d)?;
        let v: Value = serde_json::from_str(&r).context("client report")?;
        let _ = self.child.finish(Duration::from_secs(5));
        Ok(v)
    }

    /// Asks the client to stop and returns its final report.
    pub fn finish(mut self, d: Duration) -> Result<Value> {
        self.send_stop();
        self.report(d)
    }
}

/// CPU seconds used so far by all the client processes together.
pub fn clients_cpu_s(cs: &[ClientProc]) -> f64 {
    cs.iter().map(|c| util::proc_cpu_s(c.child.id())).sum()
}

/// Notifications a follower lost: expected − received, plus one per resync.
pub fn lost(r: &Value, expected: u64) -> u64 {
    let got = r["changes"].as_u64().unwrap_or(0);
    let resyncs = r["resyncs"].as_u64().unwrap_or(0);
    let missing = r["missing"].as_u64().unwrap_or(0);
    expected.saturating_sub(got) + resyncs + missing
}
