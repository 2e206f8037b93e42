//! `rtm-bench` — measures a real `rtmd` with real client processes (SPEC §6).
//!
//! It starts the `rtmd` that sits next to its own executable on a scratch socket and shm
//! directory, drives it with the `rtm` library (batches of many ops per frame), re-executes
//! itself as client processes (`--as-client`, hidden) that read every notified entry from shared
//! memory, and prints `name: value unit` lines (or one JSON object with `--json`).
//! `BENCHMARKS.md` says what each figure counts.

#[path = "../../cli/mod.rs"]
mod cli;
mod client_role;
mod kernel;
mod latency;
mod table;
mod util;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use rtm::shm::ShmReader;
use rtm::wire::{Caps, Op, Reply, Request, Tables};
use rtm::{ArpEntry, Client, ClientError, MacAddr, Route};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::client_role::LAT_FLAG;
use crate::util::{now_ns, quantile, Guarded, ScratchDir};

/// Benchmarks a real rtmd with real client processes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Routes in the table (and ops per update phase) [default: 1048576; --quick: 16384]
    #[arg(long)]
    routes: Option<usize>,
    /// Client processes for the fan-out phase
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// ARP entries for the ARP lookup test [default: 65536; --quick: 4096]
    #[arg(long)]
    arps: Option<usize>,
    /// Small sizes, a few seconds (CI)
    #[arg(long)]
    quick: bool,
    /// One JSON object instead of lines
    #[arg(long)]
    json: bool,
    /// Also insert the same routes into the kernel FIB of a fresh network namespace with
    /// `ip -batch`, with 0, 1 and 8 `ip monitor route` listeners (root only)
    #[arg(long)]
    compare_kernel: bool,
    /// Seed of the generated table, addresses and MACs
    #[arg(long, default_value_t = table::DEFAULT_SEED)]
    seed: u64,
    /// Latency probes (one op each, paced) [default: 5000; --quick: 300]
    #[arg(long)]
    latency_samples: Option<usize>,
    /// Latency probes per second
    #[arg(long, default_value_t = 2000)]
    latency_rate: u32,
    /// The rtmd binary [default: next to this executable]
    #[arg(long)]
    rtmd: Option<PathBuf>,
    /// Run `perf record -g` on rtmd during one phase and write the profile here
    #[arg(long)]
    perf_out: Option<PathBuf>,
    /// The phase `--perf-out` profiles
    #[arg(long, default_value = "clients_8", value_parser = ["inserts", "clients_1", "clients_8"])]
    perf_phase: String,
    /// Overall deadline in seconds; every child is killed when it passes
    #[arg(long)]
    timeout: Option<u64>,
    /// Where the scratch directory (socket, shm files, logs) is made [default: /dev/shm, else
    /// the temp dir]. E.g. a tmpfs mounted with `huge=within_size` to measure huge pages
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
    #[arg(long, hide = true)]
    as_client: Option<String>,
    #[arg(long, hide = true)]
    socket: Option<PathBuf>,
    #[arg(long, hide = true, default_value = "rtm-bench-client")]
    name: String,
}

/// Ops per batch frame (the library's recommended chunk).
const BATCH: usize = rtm::wire::BATCH_CHUNK;
/// Batches in flight before the writer waits for a reply.
const DEPTH: usize = 4;
/// Per-subscriber queue given to rtmd (its default).
const CLIENT_QUEUE: u64 = 65_536;
/// Most notifications the slowest client may be behind before the writer waits: half the
/// daemon's per-client queue, so no client is ever pushed into a resync.
const WINDOW: u64 = CLIENT_QUEUE / 2;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(mode) = &args.as_client {
        let Some(socket) = &args.socket else {
            eprintln!("rtm-bench: --as-client needs --socket");
            return ExitCode::from(1);
        };
        let done = if mode.starts_with("floor-") {
            latency::role(mode, socket)
        } else {
            client_role::main(mode, socket, &args.name)
        };
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rtm-bench client {}: {e:#}", args.name);
                ExitCode::from(1)
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtm-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

// ===== results =====

struct Metric {
    name: String,
    value: f64,
    unit: &'static str,
}

#[derive(Default)]
struct Report {
    metrics: Vec<Metric>,
    notes: Vec<String>,
    /// `name: skipped (why)` lines for parts that could not run.
    skipped: Vec<(String, String)>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        let m = Metric {
            name: name.into(),
            value,
            unit,
        };
        eprintln!("  {}: {} {}", m.name, fmt_value(m.value), m.unit);
        self.metrics.push(m);
    }

    fn skip(&mut self, name: &str, why: &str) {
        eprintln!("  {name}: skipped ({why})");
        self.skipped.push((name.to_string(), why.to_string()));
    }

    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  {s}");
        self.notes.push(s);
    }
}

fn fmt_value(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn phase(name: &str) {
    eprintln!("rtm-bench: {name}");
}

// ===== processes =====

struct Deadline(Instant);

impl Deadline {
    fn left(&self) -> Result<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow!("overall --timeout passed"))
    }

    /// `d`, capped by the overall deadline.
    fn cap(&self, d: Duration) -> Result<Duration> {
        Ok(d.min(self.left()?))
    }
}

struct Daemon {
    child: Guarded,
    socket: PathBuf,
    shm_dir: PathBuf,
    log: PathBuf,
}

const INSTANCE: &str = "bench";

impl Daemon {
    fn start(rtmd: &Path, dir: &Path, routes: usize, arps: usize, dl: &Deadline) -> Result<Self> {
        let socket = dir.join("rtm.sock");
        let shm_dir = dir.join("shm");
        std::fs::create_dir(&shm_dir)?;
        let log = dir.join("rtmd.log");
        let logf = File::create(&log)?;
        let mut cmd = Command::new(rtmd);
        cmd.arg("--socket")
            .arg(&socket)
            .arg("--shm-dir")
            .arg(&shm_dir)
            .args(["--instance", INSTANCE])
            .args(["--route-capacity", &routes.max(1024).to_string()])
            .args(["--arp-capacity", &arps.max(1024).to_string()])
            .args(["--client-queue", &CLIENT_QUEUE.to_string()])
            .args(["--max-clients", "1024"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        let child = Guarded(
            cmd.spawn()
                .with_context(|| format!("spawn {}", rtmd.display()))?,
        );
        let mut d = Daemon {
            child,
            socket,
            shm_dir,
            log,
        };
        let end = Instant::now() + dl.cap(Duration::from_secs(30))?;
        while UnixStream::connect(&d.socket).is_err() {
            if let Some(st) = d.child.0.try_wait()? {
                bail!("rtmd exited early ({st}): {}", d.log_text());
            }
            if Instant::now() > end {
                bail!("rtmd did not come up: {}", d.log_text());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(d)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn shm(&self, table: &str) -> PathBuf {
        self.shm_dir.join(format!("{INSTANCE}.{table}"))
    }

    /// Daemon CPU time so far (user + system), in seconds.
    fn cpu_s(&self) -> f64 {
        util::proc_cpu_s(self.pid())
    }

    /// SIGTERM, then wait (bounded); killed by its handle if it does not stop.
    fn stop(self) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        match self.child.finish(Duration::from_secs(10)) {
            Some(st) if st.success() => Ok(()),
            Some(st) => bail!("rtmd exited with {st}"),
            None => bail!("rtmd did not stop within 10 s after SIGTERM (killed)"),
        }
    }
}

/// A client process in the hidden client role.
struct ClientProc {
    child: Guarded,
    stdin: Option<ChildStdin>,
    progress: Arc<AtomicU64>,
    msgs: mpsc::Receiver<String>,
    name: String,
}

impl ClientProc {
    fn spawn(mode: &str, socket: &Path, name: &str, log: &Path) -> Result<ClientProc> {
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
            child: Guarded(child),
            stdin,
            progress,
            msgs: rx,
            name: name.to_string(),
        })
    }

    fn progress(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }

    /// The next message line starting with `prefix` (others are skipped), within `d`.
    fn expect(&mut self, prefix: &str, d: Duration) -> Result<String> {
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
    fn command(&mut self, cmd: &str) -> Result<()> {
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
    fn report(mut self, d: Duration) -> Result<Value> {
        let r = self.expect("r ", d)?;
        let v: Value = serde_json::from_str(&r).context("client report")?;
        let _ = self.child.finish(Duration::from_secs(5));
        Ok(v)
    }

    /// Asks the client to stop and returns its final report.
    fn finish(mut self, d: Duration) -> Result<Value> {
        self.send_stop();
        self.report(d)
    }
}

// ===== the writer =====

fn block<T>(
    rt: &Runtime,
    d: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T> {
    rt.block_on(async { tokio::time::timeout(d, f).await })
        .map_err(|_| anyhow!("rtmd did not answer within {d:?}"))?
        .map_err(Into::into)
}

const CALL: Duration = Duration::from_secs(30);

/// Sends `batches` (pipelined, `DEPTH` frames in flight) and returns the seconds until every
/// follower has handled every notification (or, without followers, until the last reply).
/// The slowest follower is never more than `WINDOW` notifications behind the writer.
fn pump(
    rt: &Runtime,
    w: &mut Client,
    batches: Vec<Vec<Op>>,
    followers: &[ClientProc],
    dl: &Deadline,
) -> Result<f64> {
    let base: Vec<u64> = followers.iter().map(|c| c.progress()).collect();
    let behind_min = |fs: &[ClientProc]| -> u64 {
        fs.iter()
            .zip(&base)
            .map(|(c, b)| c.progress() - b)
            .min()
            .unwrap_or(u64::MAX)
    };
    let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let t0 = Instant::now();
    let mut inflight: VecDeque<(u32, usize)> = VecDeque::new();
    let mut sent = 0u64;
    let recv_one = |w: &mut Client, inflight: &mut VecDeque<(u32, usize)>| -> Result<()> {
        let (id, result) = block(rt, CALL, w.recv_reply())?;
        let (want, len) = inflight.pop_front().expect("a batch in flight");
        if id != want {
            bail!("reply {id} for batch {want}");
        }
        match result.map_err(ClientError::Refused)? {
            Reply::Batch { applied, failures }
                if failures.is_empty() && applied as usize == len =>
            {
                Ok(())
            }
            other => bail!("batch not fully applied: {other:?}"),
        }
    };
    for b in batches {
        let len = b.len() as u64;
        while inflight.len() >= DEPTH {
            recv_one(w, &mut inflight)?;
        }
        if !followers.is_empty() {
            while sent + len > behind_min(followers).saturating_add(WINDOW) {
                dl.left()?;
                thread::sleep(Duration::from_micros(50));
            }
        }
        let id = block(
            rt,
            CALL,
            w.send(Request::Batch {
                ops: b,
                force: false,
            }),
        )?;
        inflight.push_back((id, len as usize));
        sent += len;
    }
    while !inflight.is_empty() {
        recv_one(w, &mut inflight)?;
    }
    let end = Instant::now() + dl.cap(Duration::from_secs(120))?;
    while !followers.is_empty() && behind_min(followers) < total {
        if Instant::now() > end {
            let got: Vec<u64> = followers
                .iter()
                .zip(&base)
                .map(|(c, b)| c.progress() - b)
                .collect();
            bail!("clients did not receive all {total} notifications: {got:?}");
        }
        thread::sleep(Duration::from_micros(50));
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn batches(ops: impl Iterator<Item = Op>) -> Vec<Vec<Op>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(BATCH);
    for op in ops {
        cur.push(op);
        if cur.len() == BATCH {
            out.push(std::mem::replace(&mut cur, Vec::with_capacity(BATCH)));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `perf record` on rtmd while it lives; stopped with SIGINT so it writes its file.
struct Perf(Option<Guarded>);

impl Perf {
    fn start(out: Option<&PathBuf>, pid: u32) -> Result<Perf> {
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
        Ok(Perf(Some(Guarded(child))))
    }

    fn stop(self) {
        if let Some(g) = self.0 {
            let pid = nix::unistd::Pid::from_raw(g.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = g.finish(Duration::from_secs(60));
        }
    }
}

// ===== lookups in process =====

/// Runs `f` over `keys` in passes until this thread has used `min` of CPU time; lookups per
/// CPU-second and a checksum. (Per CPU-second, not wall-clock second: on a shared machine the
/// time other processes run must not count against the code measured.)
fn rate<K>(keys: &[K], min: Duration, mut f: impl FnMut(&K) -> u64) -> (f64, u64) {
    let mut n = 0u64;
    let mut sum = 0u64;
    let t0 = util::thread_cpu_ns();
    loop {
        for k in keys {
            sum = sum.wrapping_add(f(std::hint::black_box(k)));
        }
        n += keys.len() as u64;
        let el = util::thread_cpu_ns() - t0;
        if el as u128 >= min.as_nanos() {
            return (n as f64 * 1e9 / el as f64, std::hint::black_box(sum));
        }
    }
}

/// Addresses per `lookup_batch` call in the batched LPM figure (a burst of packets).
const LOOKUP_BURST: usize = 256;

/// Lookups per second of thread CPU time through `lookup_batch`, `LOOKUP_BURST` addresses a
/// call, over `addrs` (cycled) for at least `min`.
fn batched_rate(reader: &ShmReader<Route>, addrs: &[Ipv4Addr], min: Duration) -> f64 {
    let bursts: Vec<&[Ipv4Addr]> = addrs.chunks(LOOKUP_BURST).collect();
    let mut out = vec![None; LOOKUP_BURST];
    let (calls_per_s, _) = rate(&bursts, min, |b| {
        let out = &mut out[..b.len()];
        reader.lookup_batch(b, out);
        out.iter()
            .map(|v| v.as_ref().map_or(0, |v| v.metric as u64 + 1))
            .sum()
    });
    calls_per_s * addrs.len() as f64 / bursts.len().max(1) as f64
}

fn trie_of(routes: &[Route]) -> PrefixMap<Ipv4Net, u32> {
    let mut t = PrefixMap::new();
    for (i, r) in routes.iter().enumerate() {
        let net = Ipv4Net::new(r.dst.addr(), r.dst.len()).expect("valid prefix");
        t.insert(net, i as u32);
    }
    t
}

fn trie_lpm(t: &PrefixMap<Ipv4Net, u32>, a: Ipv4Addr) -> Option<(Ipv4Net, u32)> {
    t.get_lpm(&Ipv4Net::new(a, 32).expect("/32"))
        .map(|(p, v)| (p, *v))
}

// ===== the run =====

struct Sizes {
    routes: usize,
    arps: usize,
    lat_samples: usize,
    lookup_time: Duration,
    lookup_keys: usize,
    late_join_runs: usize,
}

fn rtmd_path(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.rtmd {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe()?;
    let p = exe
        .parent()
        .ok_or_else(|| anyhow!("no directory for {}", exe.display()))?
        .join("rtmd");
    if !p.exists() {
        bail!(
            "{} not found: build it (cargo build [--release] --bins) or pass --rtmd",
            p.display()
        );
    }
    Ok(p)
}

fn run(args: &Args) -> Result<()> {
    let q = args.quick;
    let s = Sizes {
        routes: args.routes.unwrap_or(if q { 16_384 } else { 1 << 20 }),
        arps: args.arps.unwrap_or(if q { 4096 } else { 65_536 }),
        lat_samples: args.latency_samples.unwrap_or(if q { 300 } else { 5000 }),
        lookup_time: Duration::from_millis(if q { 100 } else { 1000 }),
        lookup_keys: if q { 1 << 16 } else { 1 << 20 },
        late_join_runs: if q { 1 } else { 3 },
    };
    if s.routes == 0 || s.arps == 0 || args.clients == 0 {
        bail!("--routes, --arps and --clients must be at least 1");
    }
    let dl = Deadline(
        Instant::now() + Duration::from_secs(args.timeout.unwrap_or(if q { 50 } else { 1800 })),
    );
    let rtmd = rtmd_path(args)?;
    let mut rep = Report::default();
    let started = now_ns();

    phase(&format!(
        "generating {} Internet-like routes (seed {:#x})",
        s.routes, args.seed
    ));
    let routes = table::internet_routes(s.routes, args.seed);
    let arps = table::arp_entries(s.arps, args.seed);
    let shares = table::length_shares(&routes);
    let pct = |r: std::ops::RangeInclusive<usize>| {
        100.0 * r.map(|l| shares[l]).sum::<usize>() as f64 / routes.len() as f64
    };
    rep.note(format!(
        "table: {} routes, /24 {:.1}%, /16-/23 {:.1}%, /8-/15 {:.1}%, >/24 {:.1}%",
        routes.len(),
        pct(24..=24),
        pct(16..=23),
        pct(8..=15),
        pct(25..=32)
    ));

    let scratch = ScratchDir::new("run", args.scratch_dir.as_deref())?;
    let clog = scratch.path().join("clients.log");
    let daemon = Daemon::start(&rtmd, scratch.path(), s.routes, s.arps, &dl)?;
    let result = measure(args, &s, &dl, &daemon, &routes, &arps, &clog, &mut rep);
    let stopped = daemon.stop();
    if let Err(e) = result {
        let clients = std::fs::read_to_string(&clog).unwrap_or_default();
        bail!(
            "{e:#}\n--- client log ---\n{}\n--- rtmd log ---\n{}",
            clients.trim(),
            std::fs::read_to_string(scratch.path().join("rtmd.log")).unwrap_or_default()
        );
    }
    stopped?;

    if args.compare_kernel {
        if nix::unistd::geteuid().is_root() {
            phase("kernel FIB comparison (ip -batch in a fresh network namespace)");
            kernel::compare(&routes, scratch.path(), &dl, &mut rep)?;
        } else {
            rep.skip("kernel_compare", "needs root to create a network namespace");
        }
    }

    let elapsed_s = (now_ns() - started) as f64 / 1e9;
    print_report(args, &s, &rep, elapsed_s);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn measure(
    args: &Args,
    s: &Sizes,
    dl: &Deadline,
    daemon: &Daemon,
    routes: &[Route],
    arps: &[ArpEntry],
    clog: &Path,
    rep: &mut Report,
) -> Result<()> {
    let rt = crate::cli::runtime()?;
    let mut w = block(
        &rt,
        CALL,
        Client::connect(&daemon.socket, "rtm-bench-writer", Caps::default()),
    )?;
    let n = routes.len();
    let k = args.clients;
    let perf_for = |p: &str| {
        if args.perf_phase == p {
            args.perf_out.as_ref()
        } else {
            None
        }
    };

    // 1. Inserts, no subscriber.
    phase("inserts, 0 clients");
    let ops = batches(routes.iter().cloned().map(Op::RouteAdd));
    let perf = Perf::start(perf_for("inserts"), daemon.pid())?;
    let cpu0 = daemon.cpu_s();
    let secs = pump(&rt, &mut w, ops, &[], dl)?;
    let cpu = daemon.cpu_s() - cpu0;
    perf.stop();
    rep.add("inserts_per_s_clients_0", n as f64 / secs, "ops/s");
    rep.add("daemon_cpu_us_per_insert", cpu * 1e6 / n as f64, "us");

    // Memory at the full table.
    let rss_anon = util::proc_status_bytes(daemon.pid(), "RssAnon")?;
    let route_shm = util::allocated_bytes(&daemon.shm("route"))?;
    let arp_shm = util::allocated_bytes(&daemon.shm("arp"))?;
    rep.add("daemon_rss_anon_bytes", rss_anon as f64, "bytes");
    rep.add("shm_route_allocated_bytes", route_shm as f64, "bytes");
    rep.add(
        "shm_route_file_bytes",
        util::file_len(&daemon.shm("route"))? as f64,
        "bytes",
    );
    rep.add("shm_arp_allocated_bytes", arp_shm as f64, "bytes");
    rep.add(
        "bytes_per_route",
        (rss_anon + route_shm + arp_shm) as f64 / n as f64,
        "bytes",
    );

    // 2. ARP entries, then lookups from shared memory against in-process baselines.
    phase("ARP inserts");
    let t0 = Instant::now();
    pump(
        &rt,
        &mut w,
        batches(arps.iter().cloned().map(Op::ArpAdd)),
        &[],
        dl,
    )?;
    rep.add(
        "arp_inserts_per_s_clients_0",
        arps.len() as f64 / t0.elapsed().as_secs_f64(),
        "ops/s",
    );
    lookups(s, args.seed, daemon, routes, arps, rep)?;

    // 3. Late join of the full table.
    phase("late join");
    let mut usable = Vec::new();
    let mut synced = Vec::new();
    for i in 0..s.late_join_runs {
        let mut c = ClientProc::spawn("late-join", &daemon.socket, &format!("late-{i}"), clog)?;
        let r = c.expect("r ", dl.cap(Duration::from_secs(120))?)?;
        let v: Value = serde_json::from_str(&r)?;
        let count = v["count"].as_u64().unwrap_or(0);
        if count != n as u64 {
            bail!("late joiner synced {count} routes, expected {n}");
        }
        usable.push(v["start_ns"].as_f64().unwrap_or(f64::NAN) / 1e6);
        synced.push(v["synced_ns"].as_f64().unwrap_or(f64::NAN) / 1e6);
        let _ = c.child.finish(Duration::from_secs(5));
    }
    usable.sort_by(f64::total_cmp);
    synced.sort_by(f64::total_cmp);
    rep.add("late_join_ms", quantile(&synced, 0.5), "ms");
    rep.add("late_join_usable_ms", quantile(&usable, 0.5), "ms");

    // 4. Updates delivered to one client.
    phase("updates, 1 client");
    let mut one = vec![ClientProc::spawn("follow", &daemon.socket, "one", clog)?];
    one[0].expect("ready", dl.cap(Duration::from_secs(30))?)?;
    let ops = batches(routes.iter().map(|r| {
        let mut r = r.clone();
        r.metric = 1;
        Op::RouteReplace(r)
    }));
    let perf = Perf::start(perf_for("clients_1"), daemon.pid())?;
    let cpu0 = daemon.cpu_s();
    let ccpu0 = clients_cpu_s(&one);
    let secs = pump(&rt, &mut w, ops, &one, dl)?;
    let cpu = daemon.cpu_s() - cpu0;
    let ccpu = clients_cpu_s(&one) - ccpu0;
    perf.stop();
    let r = one
        .pop()
        .expect("one")
        .finish(dl.cap(Duration::from_secs(30))?)?;
    rep.add("updates_per_s_clients_1", n as f64 / secs, "ops/s");
    rep.add(
        "daemon_cpu_us_per_update_clients_1",
        cpu * 1e6 / n as f64,
        "us",
    );
    rep.add(
        "clients_cpu_us_per_update_clients_1",
        ccpu * 1e6 / n as f64,
        "us",
    );
    rep.add(
        "notifications_lost_clients_1",
        lost(&r, n as u64) as f64,
        "events",
    );

    // 5. Updates delivered to K clients.
    phase(&format!("updates, {k} clients"));
    let mut many = Vec::with_capacity(k);
    for i in 0..k {
        many.push(ClientProc::spawn(
            "follow",
            &daemon.socket,
            &format!("fan-{i}"),
            clog,
        )?);
    }
    for c in &mut many {
        c.expect("ready", dl.cap(Duration::from_secs(60))?)?;
    }
    let ops = batches(routes.iter().map(|r| {
        let mut r = r.clone();
        r.metric = 2;
        Op::RouteReplace(r)
    }));
    let perf = Perf::start(perf_for("clients_8"), daemon.pid())?;
    let cpu0 = daemon.cpu_s();
    let ccpu0 = clients_cpu_s(&many);
    let secs = pump(&rt, &mut w, ops, &many, dl)?;
    let cpu = daemon.cpu_s() - cpu0;
    let ccpu = clients_cpu_s(&many) - ccpu0;
    perf.stop();
    rep.add(
        format!("updates_per_s_clients_{k}"),
        n as f64 / secs,
        "ops/s",
    );
    rep.add(
        format!("daemon_cpu_us_per_update_clients_{k}"),
        cpu * 1e6 / n as f64,
        "us",
    );
    rep.add(
        format!("clients_cpu_us_per_update_clients_{k}"),
        ccpu * 1e6 / n as f64,
        "us",
    );

    // 6. Latency: single paced ops, each a probe the clients recognise by its metric. From
    // here on the clients are quiet: they wake only for notifications, during the probes and
    // during the floor measured after them.
    phase(&format!(
        "latency, {} probes at {}/s",
        s.lat_samples, args.latency_rate
    ));
    let samples = s.lat_samples.min(n);
    for c in &mut many {
        c.command("quiet")?;
    }
    for c in &mut many {
        c.expect("quiet", dl.cap(Duration::from_secs(30))?)?;
    }
    let base: Vec<u64> = many.iter().map(|c| c.progress()).collect();
    let (sent_at, mut rtt) = latency::paced(samples, args.latency_rate, |i| {
        let mut r = routes[i].clone();
        r.metric = LAT_FLAG | i as u32;
        block(&rt, CALL, w.apply(Op::RouteReplace(r))).map(drop)
    })?;
    // Quiet clients report only when asked: ask those still behind every 5 ms (one may not
    // have handled the last probes yet when first asked).
    let end = Instant::now() + dl.cap(Duration::from_secs(30))?;
    let mut ask_at = Instant::now();
    loop {
        let mut behind = many
            .iter_mut()
            .zip(&base)
            .filter(|(c, b)| c.progress() - *b < samples as u64)
            .peekable();
        if behind.peek().is_none() {
            break;
        }
        if Instant::now() > end {
            bail!("clients did not see every latency probe");
        }
        if Instant::now() >= ask_at {
            for (c, _) in behind {
                c.command("progress")?;
            }
            ask_at += Duration::from_millis(5);
        }
        thread::sleep(Duration::from_millis(1));
    }

    // The machine's floor for the same probes: the same hops with no rtm code in them.
    phase(&format!(
        "latency floor, {samples} probes through a bare relay"
    ));
    let floor = latency::floor(
        &daemon.socket.with_file_name("floor.sock"),
        k,
        samples,
        args.latency_rate,
        clog,
        dl,
    )?;

    // 7. Flush: request sent -> every client saw the flush with shm empty.
    phase("flush");
    let t_flush = now_ns();
    block(&rt, CALL, w.apply(Op::Flush(Tables::Route)))?;
    let flush_reply = (now_ns() - t_flush) as f64 / 1e6;
    for c in &mut many {
        c.expect("flushed", dl.cap(Duration::from_secs(30))?)?;
    }

    // Collect the reports.
    let mut lost_k = 0u64;
    let mut lat = Vec::with_capacity(samples * k);
    let mut flush_seen = 0u64;
    let mut probes_missing = 0u64;
    for c in many {
        let r = c.finish(dl.cap(Duration::from_secs(30))?)?;
        lost_k += lost(&r, (n + samples) as u64);
        probes_missing += latency::collect(&r, &sent_at, &mut lat);
        if let Some(t) = r["flushes"].as_array().and_then(|a| a.first()?.as_u64()) {
            flush_seen = flush_seen.max(t);
        }
    }
    rep.add(
        format!("notifications_lost_clients_{k}"),
        lost_k as f64,
        "events",
    );
    lat.sort_by(f64::total_cmp);
    rtt.sort_by(f64::total_cmp);
    rep.add("notify_latency_p50_us", quantile(&lat, 0.5), "us");
    rep.add("notify_latency_p99_us", quantile(&lat, 0.99), "us");
    rep.add("notify_latency_max_us", quantile(&lat, 1.0), "us");
    rep.add("notify_latency_samples", lat.len() as f64, "samples");
    rep.add(
        "notify_latency_probes_missing",
        probes_missing as f64,
        "samples",
    );
    rep.add("commit_reply_p50_us", quantile(&rtt, 0.5), "us");
    rep.add("commit_reply_p99_us", quantile(&rtt, 0.99), "us");
    for (what, v) in [("notify", &floor.notify), ("reply", &floor.reply)] {
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            rep.add(format!("{what}_floor_{name}_us"), quantile(v, q), "us");
        }
    }
    rep.add(
        "flush_ms",
        flush_seen.saturating_sub(t_flush) as f64 / 1e6,
        "ms",
    );
    rep.add("flush_reply_ms", flush_reply, "ms");
    Ok(())
}

/// CPU seconds used so far by all the client processes together.
fn clients_cpu_s(cs: &[ClientProc]) -> f64 {
    cs.iter().map(|c| util::proc_cpu_s(c.child.id())).sum()
}

/// Notifications a follower lost: expected − received, plus one per resync.
fn lost(r: &Value, expected: u64) -> u64 {
    let got = r["changes"].as_u64().unwrap_or(0);
    let resyncs = r["resyncs"].as_u64().unwrap_or(0);
    let missing = r["missing"].as_u64().unwrap_or(0);
    expected.saturating_sub(got) + resyncs + missing
}

fn lookups(
    s: &Sizes,
    seed: u64,
    daemon: &Daemon,
    routes: &[Route],
    arps: &[ArpEntry],
    rep: &mut Report,
) -> Result<()> {
    phase("LPM lookups: shm vs prefix-trie");
    let reader: ShmReader<Route> = ShmReader::open(&daemon.shm("route"))?;
    if reader.len() != routes.len() {
        bail!(
            "route shm holds {} entries, expected {}",
            reader.len(),
            routes.len()
        );
    }
    let trie = trie_of(routes);
    let addrs = table::routed_addrs(routes, s.lookup_keys, seed);
    // Both must give the same answers before their speeds are compared.
    let check = addrs.len().min(100_000);
    let mismatches = addrs[..check]
        .iter()
        .filter(|&&a| {
            reader.lookup(a).map(|v| v.dst.to_string())
                != trie_lpm(&trie, a).map(|(p, _)| p.to_string())
        })
        .count();
    rep.add("lpm_mismatches", mismatches as f64, "lookups");
    let (shm_rate, _) = rate(&addrs, s.lookup_time, |&a| {
        reader.lookup(a).map_or(0, |v| v.metric as u64 + 1)
    });
    let (trie_rate, _) = rate(&addrs, s.lookup_time, |&a| {
        trie_lpm(&trie, a).map_or(0, |(_, v)| v as u64 + 1)
    });
    rep.add("lpm_lookups_per_s", shm_rate, "lookups/s");
    rep.add("lpm_baseline_prefix_trie_per_s", trie_rate, "lookups/s");
    rep.add("lpm_speedup_vs_prefix_trie", shm_rate / trie_rate, "x");
    // The same addresses through `lookup_batch`, in bursts as a data plane would have them.
    let mut out = vec![None; LOOKUP_BURST];
    let batched_mismatches: usize = addrs[..check]
        .chunks(LOOKUP_BURST)
        .map(|b| {
            reader.lookup_batch(b, &mut out[..b.len()]);
            b.iter()
                .zip(&out)
                .filter(|(&a, v)| {
                    v.as_ref().map(|v| v.dst.to_string())
                        != trie_lpm(&trie, a).map(|(p, _)| p.to_string())
                })
                .count()
        })
        .sum();
    rep.add(
        "lpm_batched_mismatches",
        batched_mismatches as f64,
        "lookups",
    );
    let batch_rate = batched_rate(&reader, &addrs, s.lookup_time);
    rep.add("lpm_lookups_batched_per_s", batch_rate, "lookups/s");
    rep.add(
        "lpm_batched_speedup_vs_prefix_trie",
        batch_rate / trie_rate,
        "x",
    );
    let uni = table::uniform_addrs(s.lookup_keys, seed);
    let hits = uni
        .iter()
        .filter(|&&a| trie_lpm(&trie, a).is_some())
        .count();
    let (shm_u, _) = rate(&uni, s.lookup_time, |&a| {
        reader.lookup(a).map_or(0, |v| v.metric as u64 + 1)
    });
    let (trie_u, _) = rate(&uni, s.lookup_time, |&a| {
        trie_lpm(&trie, a).map_or(0, |(_, v)| v as u64 + 1)
    });
    rep.add("lpm_uniform_lookups_per_s", shm_u, "lookups/s");
    rep.add(
        "lpm_uniform_lookups_batched_per_s",
        batched_rate(&reader, &uni, s.lookup_time),
        "lookups/s",
    );
    rep.add(
        "lpm_uniform_baseline_prefix_trie_per_s",
        trie_u,
        "lookups/s",
    );
    rep.add(
        "lpm_uniform_hit_ratio",
        hits as f64 / uni.len() as f64,
        "ratio",
    );

    phase("ARP lookups: shm vs HashMap");
    let arp_reader: ShmReader<ArpEntry> = ShmReader::open(&daemon.shm("arp"))?;
    let map: HashMap<MacAddr, ArpEntry> = arps.iter().map(|e| (e.mac, e.clone())).collect();
    let keys = table::random_macs(arps, s.lookup_keys, seed);
    let missing = keys
        .iter()
        .filter(|m| arp_reader.get(m).map(|v| v.entry.ip) != map.get(m).map(|e| e.ip))
        .count();
    rep.add("arp_mismatches", missing as f64, "lookups");
    let (shm_rate, _) = rate(&keys, s.lookup_time, |m| {
        arp_reader
            .get(m)
            .map_or(0, |v| u32::from(v.entry.ip) as u64)
    });
    let (map_rate, _) = rate(&keys, s.lookup_time, |m| {
        map.get(m).map_or(0, |e| u32::from(e.ip) as u64)
    });
    rep.add("arp_lookups_per_s", shm_rate, "lookups/s");
    rep.add("arp_baseline_hashmap_per_s", map_rate, "lookups/s");
    rep.add("arp_speedup_vs_hashmap", shm_rate / map_rate, "x");
    Ok(())
}

fn print_report(args: &Args, s: &Sizes, rep: &Report, elapsed_s: f64) {
    if args.json {
        let mut metrics = serde_json::Map::new();
        let mut units = serde_json::Map::new();
        for m in &rep.metrics {
            let v = serde_json::Number::from_f64(m.value).map_or(Value::Null, Value::Number);
            metrics.insert(m.name.clone(), v);
            units.insert(m.name.clone(), Value::from(m.unit));
        }
        let out = serde_json::json!({
            "params": {
                "routes": s.routes,
                "arps": s.arps,
                "clients": args.clients,
                "quick": args.quick,
                "seed": args.seed,
                "latency_samples": s.lat_samples,
                "latency_rate": args.latency_rate,
                "batch_ops": BATCH,
                "compare_kernel": args.compare_kernel,
                "elapsed_s": elapsed_s,
            },
            "metrics": metrics,
            "units": units,
            "notes": rep.notes,
            "skipped": rep.skipped.iter().map(|(n, w)| (n.clone(), Value::from(w.clone()))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{out}");
    } else {
        let mut out = String::new();
        for n in &rep.notes {
            out += &format!("# {n}\n");
        }
        for m in &rep.metrics {
            out += &format!("{}: {} {}\n", m.name, fmt_value(m.value), m.unit);
        }
        for (name, why) in &rep.skipped {
            out += &format!("{name}: skipped ({why})\n");
        }
        out += &format!("# elapsed {elapsed_s:.1} s\n");
        print!("{out}");
    }
}
