//! The hidden client role: `rtm-bench --as-client follow|late-join --socket PATH --name NAME`.
//!
//! A real client process built on the `rtm` library. It talks to its parent over its stdin
//! and stdout, one line per message. On stdin: `stop` (or EOF) ends the run; `quiet` stops the
//! 2 ms progress tick for the rest of the run (so that during the latency probes, and the floor
//! measured after them, a client wakes for nothing but notifications), answered by `quiet`;
//! `progress` asks for a report at once. On stdout:
//!
//! - `ready SEQ LEN` once the subscription started (`Start` received; LEN = live routes in shm),
//! - `p CHANGES` progress: change notifications handled so far (every 1024, on the 2 ms tick
//!   unless quiet, and when asked),
//! - `flushed` as soon as a flush event arrived and shared memory is empty,
//! - `r {json}` the final report (counts, latency samples, flush times), then it exits.
//!
//! On each change notification it reads the entry from shared memory, as `rtm-client` does.
//! A route whose metric has [`LAT_FLAG`] set is a latency probe: the low 31 bits are the probe id
//! and the client records when it saw that entry in shm (CLOCK_MONOTONIC).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use rtm::shm::{ShmReader, TableReader};
use rtm::wire::{Caps, ChangeOp, Event, Key, Table, Tables};
use rtm::{Client, Mirror, Route};
use serde_json::json;

use crate::util::now_ns;

/// Metric bit that marks a latency probe.
pub const LAT_FLAG: u32 = 0x8000_0000;
/// The whole metric of a latency probe that names its id in the low 16 bits of its address
/// instead (so that every probe has the same next hop, as most real changes do).
pub const LAT_BY_ADDR: u32 = 0x4000_0000;

/// The probe id of a route, if it is a latency probe.
pub fn probe_id(r: &Route) -> Option<u32> {
    if r.metric == LAT_BY_ADDR {
        Some(r.dst.addr_u32() & 0xffff)
    } else {
        (r.metric & LAT_FLAG != 0).then_some(r.metric & !LAT_FLAG)
    }
}

pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

pub fn main(mode: &str, socket: &Path, name: &str) -> Result<()> {
    let rt = crate::cli::runtime()?;
    match mode {
        "follow" => rt.block_on(follow(socket, name)),
        "late-join" => rt.block_on(late_join(socket, name)),
        other => Err(anyhow!("unknown client mode {other:?}")),
    }
}

/// Register, wait for the table's `Start`, then sync a mirror as `rtm-client` does.
async fn late_join(socket: &Path, name: &str) -> Result<()> {
    let t0 = now_ns();
    let mut c = Client::connect(socket, name, Caps::default()).await?;
    let mut mirror = Mirror::open(c.welcome(), c.shm_owners(), Tables::Route, true)?;
    c.subscribe(Tables::Route).await?;
    let start = loop {
        match c.next_event().await? {
            Some(ev @ Event::Start { .. }) => break ev,
            Some(_) => continue,
            None => return Err(anyhow!("daemon closed the connection before Start")),
        }
    };
    let t_start = now_ns();
    let mut lines = Vec::new();
    mirror.on_event(start, &mut lines);
    let t_synced = now_ns();
    let count = mirror.route.as_ref().map_or(0, |m| m.len());
    say(&format!(
        "r {}",
        json!({
            "start_ns": t_start - t0,
            "synced_ns": t_synced - t0,
            "count": count,
            "lines": lines.len(),
        })
    ));
    let _ = c.deregister(Duration::from_secs(2)).await;
    Ok(())
}

/// What the parent can ask of a following client.
enum Command {
    Stop,
    Quiet,
    Progress,
}

#[derive(Default)]
struct Counts {
    changes: u64,
    missing: u64,
    stale: u64,
    resyncs: u64,
    flushes: Vec<u64>,
    samples: Vec<(u32, u64)>,
}

async fn follow(socket: &Path, name: &str) -> Result<()> {
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<Command>();
    // Parent's commands on stdin; `stop` or EOF ends the run.
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let cmd = match line.as_deref().map(str::trim) {
                Ok("quiet") => Command::Quiet,
                Ok("progress") => Command::Progress,
                Ok("stop") | Err(_) => break,
                Ok(_) => continue,
            };
            if cmd_tx.send(cmd).is_err() {
                return;
            }
        }
        let _ = cmd_tx.send(Command::Stop);
    });

    let mut c = Client::connect(socket, name, Caps::default()).await?;
    let reader_path = c.welcome().route_shm.clone();
    let mut reader: ShmReader<Route> =
        ShmReader::<Route>::open_owned(reader_path.as_ref(), c.shm_owners())
            .context("open route shm")?;
    c.subscribe(Tables::Route).await?;

    let mut n = Counts::default();
    let mut reported = u64::MAX;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut bye = false;
    let mut quiet = false;
    loop {
        // As rtm-client does: start the shm misses of the next 16 events together.
        c.warm_ahead(16, |ev| {
            if let Event::Change {
                op: ChangeOp::Create | ChangeOp::Update,
                key: Key::Route(p),
                ..
            } = ev
            {
                reader.prefetch(p);
            }
        });
        tokio::select! {
            biased;
            cmd = cmd_rx.recv() => match cmd.unwrap_or(Command::Stop) {
                Command::Stop => break,
                Command::Quiet => {
                    quiet = true;
                    say("quiet");
                }
                Command::Progress => {
                    say(&format!("p {}", n.changes));
                    reported = n.changes;
                }
            },
            ev = c.next_event() => {
                let Some(ev) = ev? else { bye = true; break };
                match ev {
                    Event::Start { table: Table::Route, seq } => {
                        say(&format!("ready {seq} {}", reader.len()));
                    }
                    Event::Change { op, key: Key::Route(p), seq, .. } => {
                        n.changes += 1;
                        if op != ChangeOp::Delete {
                            if reader.is_retired() {
                                let _ = reader.refresh();
                            }
                            match reader.get(&p) {
                                Some(v) => {
                                    let t = now_ns();
                                    if let Some(id) = probe_id(&v.entry) {
                                        n.samples.push((id, t));
                                    }
                                    if v.seq < (seq & rtm::shm::SEQ_MASK) {
                                        n.stale += 1;
                                    }
                                }
                                None => n.missing += 1,
                            }
                        }
                        if n.changes % 1024 == 0 {
                            say(&format!("p {}", n.changes));
                            reported = n.changes;
                        }
                    }
                    Event::Flush { table: Table::Route, .. } => {
                        // The daemon empties shm before it sends the flush; wait (bounded)
                        // in case it did not, so the time is "client sees it empty".
                        let end = now_ns() + 1_000_000_000;
                        while !reader.is_empty() && now_ns() < end {
                            std::hint::spin_loop();
                        }
                        n.flushes.push(now_ns());
                        say("flushed");
                    }
                    Event::Resync { .. } => n.resyncs += 1,
                    Event::Bye => { bye = true; break }
                    _ => {}
                }
            }
            _ = tick.tick(), if !quiet => {
                if reported != n.changes {
                    say(&format!("p {}", n.changes));
                    reported = n.changes;
                }
            }
        }
    }
    say(&format!("p {}", n.changes));
    say(&format!(
        "r {}",
        json!({
            "changes": n.changes,
            "missing": n.missing,
            "stale": n.stale,
            "resyncs": n.resyncs,
            "flushes": n.flushes,
            "samples": n.samples,
            "bye": bye,
        })
    ));
    if !bye {
        let _ = c.deregister(Duration::from_secs(2)).await;
    }
    Ok(())
}
