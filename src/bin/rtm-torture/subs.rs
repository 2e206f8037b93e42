//! Subscribers: `rtm-client --json --reconnect` processes whose event lines are checked as
//! they arrive — between a `sync-done` and the next `resync` (or reconnect) the sequence
//! numbers of the route table must follow each other without a gap or a repeat.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::child::KillOnDrop;
use crate::lab::Lab;

#[derive(Default)]
pub struct Seen {
    /// The next sequence number expected (`None`: not synced, or after a resync).
    pub expect: Option<u64>,
    /// The highest sequence number complete in what was printed.
    pub upto: u64,
    pub events: u64,
    pub resyncs: u64,
    pub syncs: u64,
    pub violations: Vec<String>,
    pub eof: bool,
}

pub struct Sub {
    pub n: usize,
    pub child: KillOnDrop,
    pub seen: Arc<Mutex<Seen>>,
    /// While set, its standard output is not drained (a slow reader).
    pub hold: Arc<AtomicBool>,
}

impl Sub {
    pub fn spawn(lab: &Lab, n: usize, generation: u32) -> Result<Sub> {
        let mut c = lab.command(&lab.client_bin);
        c.arg("--socket")
            .arg(&lab.socket)
            .args(["--json", "--table", "route", "--reconnect", "--name"])
            .arg(format!("torture-{n}-{generation}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(lab.dir.join(format!("sub-{n}.err")))?);
        let mut child = KillOnDrop(c.spawn().context("spawn rtm-client")?);
        let out = child.0.stdout.take().expect("piped");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let hold = Arc::new(AtomicBool::new(false));
        let (s, h) = (seen.clone(), hold.clone());
        thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            loop {
                while h.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                }
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => check(&mut s.lock().unwrap(), n, &line),
                }
            }
            s.lock().unwrap().eof = true;
        });
        Ok(Sub {
            n,
            child,
            seen,
            hold,
        })
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }
}

fn check(s: &mut Seen, n: usize, line: &str) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        s.violations.push(format!(
            "subscriber {n}: a line that is not JSON: {}",
            line.trim()
        ));
        return;
    };
    let op = v["op"].as_str().unwrap_or("");
    let seq = v["seq"].as_u64();
    match (op, seq) {
        ("sync-done", Some(q)) => {
            s.syncs += 1;
            s.expect = Some(q + 1);
            s.upto = q;
        }
        ("resync", _) => {
            s.resyncs += 1;
            s.expect = None;
        }
        ("sync", _) => {
            // A (re)sync after a reconnect starts again without a `resync` line.
            s.expect = None;
        }
        (_, Some(q)) => {
            s.events += 1;
            if let Some(e) = s.expect {
                if q != e {
                    s.violations.push(format!(
                        "subscriber {n}: seq {q} where {e} was due ({})",
                        line.trim()
                    ));
                }
                s.expect = Some(q + 1);
                s.upto = q;
            }
        }
        _ => {}
    }
}
