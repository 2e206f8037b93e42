//! Subscribers: `rtm-client --json --reconnect` processes whose event lines are checked as
//! they arrive — between a `sync-done` and the next `resync` (or reconnect) every line's
//! sequence number must be higher than the one before (docs/cli.md: a change already shown by
//! an earlier line is not printed again, so numbers may be skipped, never repeated) — and
//! whose printed table (the sync, then each change applied) must equal the table in shared
//! memory once the writers stop.

use std::collections::HashMap;
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
    /// The highest sequence number printed.
    pub upto: u64,
    /// The route table as printed: what the last sync showed with every later change applied
    /// (key → entry in the JSON shape of docs/cli.md).
    pub view: HashMap<String, serde_json::Value>,
    /// The `sync` lines of a sync in progress (they replace `view` at its `sync-done`).
    pending: HashMap<String, serde_json::Value>,
    pub events: u64,
    /// Sequence numbers passed over between two printed lines (changes shown by an earlier
    /// line, as docs/cli.md allows).
    pub skipped: u64,
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
    let key = v["key"].as_str().map(str::to_owned);
    match (op, seq) {
        ("sync-done", Some(q)) => {
            s.syncs += 1;
            s.expect = Some(q + 1);
            s.upto = q;
            s.view = std::mem::take(&mut s.pending);
        }
        ("resync", _) => {
            s.resyncs += 1;
            s.expect = None;
        }
        ("sync", _) => {
            // A (re)sync after a reconnect starts again without a `resync` line.
            if s.expect.take().is_some() {
                s.pending.clear();
            }
            if let Some(k) = key {
                s.pending.insert(k, normal(&v["entry"]));
            }
        }
        (_, Some(q)) => {
            s.events += 1;
            let Some(e) = s.expect else { return };
            if q < e {
                s.violations.push(format!(
                    "subscriber {n}: seq {q} after {} was printed ({})",
                    e - 1,
                    line.trim()
                ));
            }
            s.skipped += q.saturating_sub(e);
            s.expect = Some(q.max(e - 1) + 1);
            s.upto = s.upto.max(q);
            match (op, key) {
                ("create" | "update", Some(k)) if v["entry"].is_object() => {
                    s.view.insert(k, normal(&v["entry"]));
                }
                // No entry: the key is already gone (its `delete` follows).
                ("create" | "update" | "delete", Some(k)) => {
                    s.view.remove(&k);
                }
                ("flush", _) => s.view.clear(),
                _ => {}
            }
        }
        _ => {}
    }
}

/// A route entry as `rtm-client --json` prints it, absent fields as `null`.
pub fn normal(entry: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "dst": entry["dst"],
        "via": entry["via"],
        "dev": entry["dev"],
        "metric": entry["metric"],
        "nexthops": entry["nexthops"],
    })
}

/// The same shape for a route read from shared memory.
pub fn route_value(r: &rtm::Route) -> serde_json::Value {
    serde_json::json!({
        "dst": r.dst.to_string(),
        "via": r.via.map(|v| v.to_string()),
        "dev": r.dev.as_ref().map(|d| d.to_string()),
        "metric": r.metric,
        "nexthops": if r.is_multipath() {
            r.nexthops
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "via": h.via.map(|v| v.to_string()),
                        "dev": h.dev.as_ref().map(|d| d.to_string()),
                        "weight": h.weight,
                    })
                })
                .collect::<Vec<_>>()
                .into()
        } else {
            serde_json::Value::Null
        },
    })
}
