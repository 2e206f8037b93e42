//! `--sessions N`: many registered subscribers on one rtmd, from a few threads of this process
//! (each a runtime with N / threads connections), so the machine is not flooded with processes.
//!
//! It measures rtmd's resident memory and open descriptors before and after N subscribers
//! registered (idle), then runs `--session-updates` route additions in batch frames, paced so
//! that no subscriber is more than half its queue behind, and checks that every subscriber saw
//! every change: a contiguous sequence from its `Start` to the last change, or a `Resync` that
//! covers a gap. Before the run it times `rtmctl clients` (its reply comes in pages) and checks
//! it lists all N.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rtm::wire::{Caps, Event, Op, Tables};
use rtm::Client;

use crate::daemon::{Daemon, CLIENT_QUEUE};
use crate::deadline::Deadline;
use crate::pump::BATCH;
use crate::report::{phase, Report};
use crate::util;

/// Threads (each with its own runtime) the subscribers are spread over.
const THREADS: usize = 4;
/// Most changes the slowest subscriber may be behind before the writer waits.
const WINDOW: u64 = CLIENT_QUEUE / 2;
/// How long a subscriber may wait for an event once the run is over.
const TAIL: Duration = Duration::from_secs(60);

/// What one subscriber saw.
#[derive(Default, Clone, Copy)]
struct Seen {
    /// The last sequence number it has (from `Start`, a change or a `Resync`).
    last: u64,
    resyncs: u64,
    /// A change whose sequence number did not follow the one before, with no resync between.
    gaps: u64,
}

/// The rtmd flags a sessions run needs: room for `n` subscribers and their connections.
pub fn daemon_args(n: usize) -> Vec<String> {
    vec![
        "--max-clients".into(),
        n.to_string(),
        "--max-connections".into(),
        (n + 64).to_string(),
    ]
}

/// Raises this process's soft open-file limit to its hard limit (it holds `n` sockets).
fn raise_own_fd_limit(n: usize) -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    if (hard as usize) < n + 64 {
        bail!("the open-file limit ({hard}) is too low for {n} subscribers in this process");
    }
    Ok(())
}

fn fds_of(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

pub fn run(
    daemon: &Daemon,
    n: usize,
    updates: usize,
    seed: u64,
    dl: &Deadline,
    rep: &mut Report,
) -> Result<()> {
    raise_own_fd_limit(n)?;
    let pid = daemon.pid();
    let p = |s: &str| format!("sessions_{n}_{s}");
    let rss0 = util::proc_status_bytes(pid, "VmRSS")?;
    let fds0 = fds_of(pid)?;

    phase(&format!("sessions: {n} subscribers from {THREADS} threads"));
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let registered = Arc::new(AtomicU64::new(0));
    let (target_tx, target_rx) = tokio::sync::watch::channel(u64::MAX);
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let ids: Vec<usize> = (t..n).step_by(THREADS).collect();
        let socket = daemon.socket.clone();
        let (progress, registered, target) =
            (progress.clone(), registered.clone(), target_rx.clone());
        threads.push(thread::spawn(move || -> Result<Vec<Seen>> {
            let rt = crate::cli::runtime()?;
            rt.block_on(subscribers(&socket, ids, progress, registered, target))
        }));
    }
    let end = Instant::now() + dl.cap(Duration::from_secs(600))?;
    // Registered, and its Start read.
    while registered.load(Relaxed) < n as u64 {
        if threads.iter().any(|t| t.is_finished()) || Instant::now() > end {
            let got = registered.load(Relaxed);
            for t in threads {
                if t.is_finished() {
                    t.join()
                        .map_err(|_| anyhow!("a subscriber thread panicked"))??;
                }
            }
            bail!("only {got} of {n} subscribers registered");
        }
        thread::sleep(Duration::from_millis(20));
    }
    // Let the sessions settle (their Start written, buffers freed) before measuring.
    thread::sleep(Duration::from_millis(500));
    let rss1 = util::proc_status_bytes(pid, "VmRSS")?;
    let fds1 = fds_of(pid)?;
    rep.add(
        p("rss_per_subscriber_bytes"),
        rss1.saturating_sub(rss0) as f64 / n as f64,
        "B",
    );
    rep.add(p("fds"), fds1 as f64, "fds");
    rep.note(format!(
        "sessions: rtmd RSS {} -> {} KiB, fds {fds0} -> {fds1} with {n} idle subscribers",
        rss0 / 1024,
        rss1 / 1024
    ));

    clients_list(&daemon.socket, n, rep)?;

    phase(&format!(
        "sessions: {updates} route additions to {n} subscribers"
    ));
    let routes = crate::table::internet_routes(updates, seed);
    let mut w = crate::pump::Writer::connect(&daemon.socket)?;
    // Every subscriber started at the same sequence number: nothing changed while they came.
    let base = progress.iter().map(|a| a.load(Relaxed)).max().unwrap_or(0);
    let started = Instant::now();
    let mut last = base;
    for chunk in routes.chunks(BATCH) {
        loop {
            let slowest = progress.iter().map(|a| a.load(Relaxed)).min().unwrap_or(0);
            if last <= slowest + WINDOW {
                break;
            }
            if Instant::now() > end {
                bail!("subscribers stopped following (slowest at {slowest}, writer at {last})");
            }
            thread::sleep(Duration::from_millis(1));
        }
        let ops: Vec<Op> = chunk.iter().map(|r| Op::RouteAdd(r.clone())).collect();
        let len = ops.len() as u64;
        w.batch(ops)?;
        last += len;
    }
    target_tx.send_replace(last);
    let mut seen = Vec::with_capacity(n);
    for t in threads {
        seen.extend(
            t.join()
                .map_err(|_| anyhow!("a subscriber thread panicked"))??,
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let lost = seen.iter().filter(|s| s.last < last || s.gaps > 0).count();
    let resyncs: u64 = seen.iter().map(|s| s.resyncs).sum();
    rep.add(p("lost"), lost as f64, "subscribers");
    rep.add(p("resyncs"), resyncs as f64, "resyncs");
    rep.add(p("updates_per_s"), updates as f64 / secs, "updates/s");
    rep.add(p("events_per_s"), (updates * n) as f64 / secs, "events/s");
    let rss2 = util::proc_status_bytes(pid, "VmRSS")?;
    rep.note(format!(
        "sessions: rtmd RSS {} KiB after the run ({} B per subscriber over the start)",
        rss2 / 1024,
        rss2.saturating_sub(rss0) / n as u64
    ));
    Ok(())
}

/// The subscribers of one thread: connect and subscribe all, then follow until the target.
async fn subscribers(
    socket: &Path,
    ids: Vec<usize>,
    progress: Arc<Vec<AtomicU64>>,
    registered: Arc<AtomicU64>,
    target: tokio::sync::watch::Receiver<u64>,
) -> Result<Vec<Seen>> {
    let mut clients = Vec::with_capacity(ids.len());
    for &i in &ids {
        let mut c = Client::connect(socket, &format!("bench-sub-{i}"), Caps::default())
            .await
            .with_context(|| format!("subscriber {i}: connect"))?;
        c.subscribe(Tables::Route)
            .await
            .with_context(|| format!("subscriber {i}: subscribe"))?;
        clients.push(c);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(ids)
        .map(|(c, i)| follow(c, i, progress.clone(), registered.clone(), target.clone()))
        .collect();
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .collect()
}

async fn follow(
    mut c: Client,
    i: usize,
    progress: Arc<Vec<AtomicU64>>,
    registered: Arc<AtomicU64>,
    mut target: tokio::sync::watch::Receiver<u64>,
) -> Result<Seen> {
    let mut s = Seen::default();
    let mut started = false;
    loop {
        let goal = *target.borrow_and_update();
        if started && s.last >= goal {
            return Ok(s);
        }
        let ev = if goal == u64::MAX {
            tokio::select! {
                ev = c.next_event() => ev,
                _ = target.changed() => continue,
            }
        } else {
            tokio::time::timeout(TAIL, c.next_event())
                .await
                .map_err(|_| anyhow!("subscriber {i}: no event for {TAIL:?} at seq {}", s.last))?
        };
        match ev.with_context(|| format!("subscriber {i}"))? {
            Some(Event::Start { seq, .. }) => {
                s.last = seq;
                started = true;
                progress[i].store(s.last, Relaxed);
                registered.fetch_add(1, Relaxed);
                continue;
            }
            Some(Event::Change { seq, .. } | Event::Flush { seq, .. }) => {
                if seq != s.last + 1 {
                    s.gaps += 1;
                }
                s.last = seq;
            }
            Some(Event::Resync { seq, .. }) => {
                s.resyncs += 1;
                s.last = seq;
            }
            Some(Event::Bye) | None => bail!("subscriber {i}: rtmd closed at seq {}", s.last),
        }
        progress[i].store(s.last, Relaxed);
    }
}

/// Times `rtmctl clients` (from next to this executable) and checks it lists `n` subscribers.
fn clients_list(socket: &Path, n: usize, rep: &mut Report) -> Result<()> {
    let exe = std::env::current_exe()?;
    let rtmctl = exe
        .parent()
        .map(|d| d.join("rtmctl"))
        .context("no rtmctl")?;
    let mut cmd = std::process::Command::new(&rtmctl);
    cmd.arg("--socket").arg(socket).args(["-j", "clients"]);
    let started = Instant::now();
    let out = util::run_ok(cmd, Duration::from_secs(60))?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rows = rows.as_array().map_or(0, Vec::len);
    if rows != n {
        bail!("rtmctl clients listed {rows} subscribers, expected {n}");
    }
    rep.add(format!("sessions_{n}_clients_list_ms"), ms, "ms");
    Ok(())
}
