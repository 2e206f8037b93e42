//! `rtm-torture` — a bounded, seeded chaos run against a real `rtmd` (docs/torture.md).
//!
//! Writers batch route changes through `rtmctl batch -`, readers look routes up in shared
//! memory, subscribers (`rtm-client` processes) follow the events; meanwhile faults are
//! injected at random (seeded): clients killed or stopped, rtmd killed and restarted on the
//! same `--state-dir`, actor panics (fault-injection builds), a full state disk and a full shm
//! directory (root only: tmpfs mounts in a mount namespace of its own), slow readers and hostile
//! connections. After every fault the invariants are checked; one line per fault, a summary at
//! the end, exit 1 on any violation.
#![forbid(unsafe_code)]

#[path = "../../cli/child.rs"]
#[allow(dead_code)]
mod child;
mod invariants;
mod lab;
mod model;
mod subs;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use nix::sys::signal::Signal;
use rtm::shm::{RouteReader, TableReader};

use crate::lab::{Lab, Namespace};
use crate::model::{Model, KEYS};
use crate::subs::Sub;

/// A seeded chaos run against a real rtmd: faults at random, invariants after each.
#[derive(Parser)]
#[command(name = "rtm-torture", version)]
struct Args {
    /// How long to inject faults (then the run stops and reports).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the random choices; the same seed makes the same choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// rtmd's --state-dir (default: a tmpfs in the run's mount namespace as root, else a
    /// directory in the scratch directory). A given directory rules out the full-state-disk
    /// fault.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Directory for the run's socket, logs and files (default: a new one under /tmp, removed
    /// at the end of a run without violations).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Directory holding rtmd, rtmctl and rtm-client (default: this executable's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Writer threads (each owns 256 routes).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Reader threads (lookups from shared memory).
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Subscriber processes.
    #[arg(long, default_value_t = 3)]
    subscribers: usize,
}

/// xorshift64*: small, seeded, enough for choosing faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    ClientKill,
    ClientStop,
    RtmdKill,
    ActorPanic,
    StateFull,
    ShmFull,
    SlowReader,
    HostileIdle,
    HostileGarbage,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::ClientKill,
        Kind::ClientStop,
        Kind::RtmdKill,
        Kind::ActorPanic,
        Kind::StateFull,
        Kind::ShmFull,
        Kind::SlowReader,
        Kind::HostileIdle,
        Kind::HostileGarbage,
    ];
    fn name(self) -> &'static str {
        match self {
            Kind::ClientKill => "client-kill",
            Kind::ClientStop => "client-stop",
            Kind::RtmdKill => "rtmd-kill",
            Kind::ActorPanic => "actor-panic",
            Kind::StateFull => "state-full",
            Kind::ShmFull => "shm-full",
            Kind::SlowReader => "slow-reader",
            Kind::HostileIdle => "hostile-idle",
            Kind::HostileGarbage => "hostile-garbage",
        }
    }
}

/// What writers and readers share with the fault loop.
struct Shared {
    model: Mutex<Model>,
    /// Held by a writer for each batch; the fault loop takes all of them to quiesce.
    gates: Vec<Mutex<()>>,
    stop: AtomicBool,
    next_metric: AtomicU32,
    batches_ok: AtomicU64,
    batches_failed: AtomicU64,
    lookups: AtomicU64,
    /// Resyncs seen by subscribers (added when one is replaced and at the end).
    resyncs: AtomicU64,
    /// Events (with a sequence number) seen by subscribers.
    events: AtomicU64,
    /// Sequence numbers subscribers passed over (changes an earlier line already showed).
    skipped_seqs: AtomicU64,
    violations: Mutex<Vec<String>>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rtm-torture: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn bin_dir(args: &Args) -> Result<PathBuf> {
    if let Some(d) = &args.bin_dir {
        return Ok(d.clone());
    }
    let exe = std::env::current_exe().context("own executable")?;
    Ok(exe
        .parent()
        .context("executable's directory")?
        .to_path_buf())
}

/// Runs the whole thing; returns the number of violations.
fn run(args: &Args) -> Result<usize> {
    let bins = bin_dir(args)?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            std::env::temp_dir().join(format!("rtm-torture-{}-{}", std::process::id(), args.seed))
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let shm_dir = dir.join("shm");
    std::fs::create_dir_all(&shm_dir)?;
    let mut skipped: BTreeMap<Kind, String> = BTreeMap::new();

    let ns_why = Namespace::unsupported();
    let own_state = args.state_dir.is_none();
    let state_dir = match &args.state_dir {
        Some(s) => {
            std::fs::create_dir_all(s)?;
            s.canonicalize()?
        }
        None => dir.join("state"),
    };
    std::fs::create_dir_all(&state_dir)?;
    let ns = match &ns_why {
        None => {
            let mounts: Vec<&std::path::Path> = if own_state {
                vec![&shm_dir, &state_dir]
            } else {
                vec![&shm_dir]
            };
            match Namespace::hold(&dir, &mounts) {
                Ok(ns) => Some(ns),
                Err(e) => {
                    skipped.insert(Kind::StateFull, format!("{e:#}"));
                    skipped.insert(Kind::ShmFull, format!("{e:#}"));
                    None
                }
            }
        }
        Some(why) => {
            skipped.insert(Kind::StateFull, why.clone());
            skipped.insert(Kind::ShmFull, why.clone());
            None
        }
    };
    if ns.is_some() && !own_state {
        skipped.insert(
            Kind::StateFull,
            "--state-dir given: its file system is not the run's to fill".into(),
        );
    }

    let mut lab = Lab {
        socket: dir.join("rtm.sock"),
        shm_dir,
        state_dir,
        ns,
        rtmd_bin: bins.join("rtmd"),
        rtmctl_bin: bins.join("rtmctl"),
        client_bin: bins.join("rtm-client"),
        rtmd: None,
        starts: 0,
        dir: dir.clone(),
    };
    lab.start_rtmd()?;

    // Are the debug hooks there (rtmctl knows `debug`, rtmd carries them out)?
    let probe = lab.rtmctl(
        &["debug", "stall", "route", "1"],
        None,
        Duration::from_secs(5),
    )?;
    if !probe.status.success() {
        skipped.insert(
            Kind::ActorPanic,
            format!(
                "no fault-injection build (`rtmctl debug` said: {})",
                String::from_utf8_lossy(&probe.stderr).trim()
            ),
        );
    }
    for (k, why) in &skipped {
        println!("skip {}: {why}", k.name());
    }
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| !skipped.contains_key(k))
        .collect();

    let shared = Arc::new(Shared {
        model: Mutex::new(Model::new(args.writers)),
        gates: (0..args.writers).map(|_| Mutex::new(())).collect(),
        stop: AtomicBool::new(false),
        next_metric: AtomicU32::new(1),
        batches_ok: AtomicU64::new(0),
        batches_failed: AtomicU64::new(0),
        lookups: AtomicU64::new(0),
        resyncs: AtomicU64::new(0),
        events: AtomicU64::new(0),
        skipped_seqs: AtomicU64::new(0),
        violations: Mutex::new(Vec::new()),
    });
    let lab_ref = Arc::new(LabCmd {
        rtmctl: lab.rtmctl_bin.clone(),
        socket: lab.socket.clone(),
        ns_pid: lab.ns.as_ref().map(|n| n.pid()),
        route_file: lab.route_file(),
    });

    let mut threads = Vec::new();
    for w in 0..args.writers {
        let (s, l) = (shared.clone(), lab_ref.clone());
        let seed = args.seed ^ (0x1000 + w as u64);
        threads.push(thread::spawn(move || writer(&s, &l, w, seed)));
    }
    for r in 0..args.readers {
        let (s, l) = (shared.clone(), lab_ref.clone());
        let seed = args.seed ^ (0x2000 + r as u64);
        threads.push(thread::spawn(move || reader(&s, &l, seed)));
    }
    let mut subs = Vec::new();
    let mut sub_gen = 0;
    for n in 0..args.subscribers {
        subs.push(Sub::spawn(&lab, n, sub_gen)?);
    }

    let mut rng = Rng::new(args.seed);
    let mut counts: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut faults = 0u64;
    let mut max_rss = 0u64;
    let mut max_fds = 0usize;
    let mut max_status = Duration::ZERO;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut violations_seen = 0usize;

    while Instant::now() < end && !kinds.is_empty() {
        thread::sleep(rng.ms(100, 400));
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let detail = match inject(kind, &mut lab, &mut subs, &mut sub_gen, &mut rng, &shared) {
            Ok(d) => d,
            Err(e) => {
                violate(&shared, format!("{}: {e:#}", kind.name()));
                format!("failed: {e:#}")
            }
        };
        faults += 1;
        *counts.entry(kind).or_default() += 1;
        let held = invariants::check(&mut lab, &mut subs, &shared);
        max_rss = max_rss.max(held.rss_kib);
        max_fds = max_fds.max(held.fds);
        max_status = max_status.max(held.status);
        let v = shared.violations.lock().unwrap().len();
        println!(
            "fault {faults} t={:.1}s {}: {detail}; held: {} (status {} ms, rss {} KiB, fds {}, acked {}){}",
            started.elapsed().as_secs_f64(),
            kind.name(),
            if v == violations_seen { "all invariants" } else { "NOT all invariants" },
            held.status.as_millis(),
            held.rss_kib,
            held.fds,
            shared.model.lock().unwrap().acked_changes,
            if v == violations_seen { String::new() } else {
                format!(" — {}", shared.violations.lock().unwrap()[violations_seen..].join("; "))
            }
        );
        violations_seen = v;
    }

    // Stop: writers and readers first, then the subscribers and rtmd.
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    for s in &subs {
        let seen = s.seen.lock().unwrap();
        shared.resyncs.fetch_add(seen.resyncs, Ordering::Relaxed);
        shared.events.fetch_add(seen.events, Ordering::Relaxed);
        shared
            .skipped_seqs
            .fetch_add(seen.skipped, Ordering::Relaxed);
        drop(seen);
        violations_of_sub(&shared, s);
    }
    drop(subs);
    match lab.stop_rtmd() {
        Some(st) if st.success() => {}
        Some(st) => violate(
            &shared,
            format!("rtmd did not stop cleanly on SIGTERM: {st}"),
        ),
        None => violate(
            &shared,
            "rtmd did not stop within 10 s of SIGTERM (killed)".into(),
        ),
    }

    let m = shared.model.lock().unwrap();
    let violations = shared.violations.lock().unwrap();
    println!("seconds: {:.1}", started.elapsed().as_secs_f64());
    println!("seed: {}", args.seed);
    println!("faults_injected: {faults}");
    for k in Kind::ALL {
        match skipped.get(&k) {
            Some(_) => println!("fault {}: skipped", k.name()),
            None => println!(
                "fault {}: {}",
                k.name(),
                counts.get(&k).copied().unwrap_or(0)
            ),
        }
    }
    println!("rtmd_starts: {}", lab.starts);
    println!("acknowledged_changes: {}", m.acked_changes);
    println!("undecided_changes: {}", m.unknown_changes);
    println!(
        "batches: {} acknowledged, {} failed or refused",
        shared.batches_ok.load(Ordering::Relaxed),
        shared.batches_failed.load(Ordering::Relaxed)
    );
    println!("shm_lookups: {}", shared.lookups.load(Ordering::Relaxed));
    println!(
        "subscriber_events: {}",
        shared.events.load(Ordering::Relaxed)
    );
    println!(
        "subscriber_skipped_seqs: {}",
        shared.skipped_seqs.load(Ordering::Relaxed)
    );
    println!(
        "subscriber_resyncs: {}",
        shared.resyncs.load(Ordering::Relaxed)
    );
    println!("max_rtmd_rss_kib: {max_rss}");
    println!("max_rtmd_fds: {max_fds}");
    println!("max_status_ms: {}", max_status.as_millis());
    for v in violations.iter() {
        println!("violation: {v}");
    }
    println!("invariant_violations: {}", violations.len());
    if violations.is_empty() && args.dir.is_none() {
        drop(lab);
        let _ = std::fs::remove_dir_all(&dir);
    } else if !violations.is_empty() {
        println!("files kept in {}", dir.display());
    }
    Ok(violations.len())
}

/// What writer and reader threads need of the lab.
struct LabCmd {
    rtmctl: PathBuf,
    socket: PathBuf,
    ns_pid: Option<u32>,
    route_file: PathBuf,
}

fn violate(s: &Shared, v: String) {
    s.violations.lock().unwrap().push(v);
}

fn violations_of_sub(shared: &Shared, s: &Sub) {
    let mut seen = s.seen.lock().unwrap();
    for v in seen.violations.drain(..) {
        violate(shared, v);
    }
}

/// Batches of 1..=32 replaces and deletes of the writer's own routes through `rtmctl batch -`.
fn writer(s: &Shared, l: &LabCmd, w: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    while !s.stop.load(Ordering::Relaxed) {
        {
            let _gate = s.gates[w].lock().unwrap();
            let n = 1 + rng.below(32) as usize;
            let mut changes = Vec::with_capacity(n);
            let mut text = String::new();
            {
                let mut m = s.model.lock().unwrap();
                for _ in 0..n {
                    let k = rng.below(KEYS as u64) as usize;
                    let key = &m.keys[w][k];
                    let certain = key.pending.is_empty()
                        && key.acked.is_some()
                        && !changes.iter().any(|(kk, _)| *kk == k);
                    let change = if certain && rng.below(5) == 0 {
                        None
                    } else {
                        let metric = s.next_metric.fetch_add(1, Ordering::Relaxed);
                        m.attempted.insert(metric, (w, k));
                        Some(metric)
                    };
                    text.push_str(&model::line(w, k, change));
                    text.push('\n');
                    changes.push((k, change));
                }
            }
            let mut c = match l.ns_pid {
                Some(pid) => {
                    let mut c = std::process::Command::new("nsenter");
                    c.arg("-t")
                        .arg(pid.to_string())
                        .arg("-m")
                        .arg("--")
                        .arg(&l.rtmctl);
                    c
                }
                None => std::process::Command::new(&l.rtmctl),
            };
            c.arg("--socket").arg(&l.socket).args(["batch", "-"]);
            let ok = child::run(c, Some(text.as_bytes()), Duration::from_secs(20))
                .is_ok_and(|o| o.status.success());
            let mut m = s.model.lock().unwrap();
            for (k, change) in changes {
                let key = &mut m.keys[w][k];
                if ok {
                    key.acked = change;
                    key.pending.clear();
                } else {
                    key.pending.push(change);
                }
            }
            if ok {
                m.acked_changes += n as u64;
                s.batches_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                m.unknown_changes += n as u64;
                s.batches_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Lookups from shared memory (exact and longest-prefix); every route read must be one a
/// change attempted, whole.
fn reader(s: &Shared, l: &LabCmd, seed: u64) {
    let mut rng = Rng::new(seed);
    let writers = s.gates.len();
    let mut r: Option<RouteReader> = None;
    while !s.stop.load(Ordering::Relaxed) {
        let Some(rd) = r.as_mut() else {
            r = RouteReader::open(&l.route_file).ok();
            if r.is_none() {
                thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        if rd.refresh().is_err() {
            r = None;
            continue;
        }
        for _ in 0..200 {
            let w = rng.below(writers as u64) as usize;
            let k = rng.below(KEYS as u64) as usize;
            let p = model::prefix(w, k);
            let got = if rng.below(2) == 0 {
                rd.get(&p).map(|v| v.entry)
            } else {
                let a = std::net::Ipv4Addr::from(p.addr_u32() | 1);
                match rd.lookup(a) {
                    Ok(x) => x,
                    Err(_) => continue,
                }
            };
            s.lookups.fetch_add(1, Ordering::Relaxed);
            if let Some(route) = got {
                let m = s.model.lock().unwrap();
                if !m.seen(w, k, &route) {
                    drop(m);
                    violate(
                        s,
                        format!("torn or unknown read from shared memory for {p}: {route}"),
                    );
                }
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Injects one fault of `kind` and recovers from it; says what it did.
fn inject(
    kind: Kind,
    lab: &mut Lab,
    subs: &mut [Sub],
    sub_gen: &mut u32,
    rng: &mut Rng,
    shared: &Shared,
) -> Result<String> {
    Ok(match kind {
        Kind::ClientKill => {
            let i = rng.below(subs.len() as u64) as usize;
            let old = subs[i].child.id();
            violations_of_sub(shared, &subs[i]);
            {
                let seen = subs[i].seen.lock().unwrap();
                shared.resyncs.fetch_add(seen.resyncs, Ordering::Relaxed);
                shared.events.fetch_add(seen.events, Ordering::Relaxed);
                shared
                    .skipped_seqs
                    .fetch_add(seen.skipped, Ordering::Relaxed);
            }
            *sub_gen += 1;
            subs[i] = Sub::spawn(lab, i, *sub_gen)?; // the old one is killed as it drops
            format!("SIGKILL subscriber {i} (pid {old}), started a new one")
        }
        Kind::ClientStop => {
            let i = rng.below(subs.len() as u64) as usize;
            let d = rng.ms(200, 3000);
            subs[i].signal(Signal::SIGSTOP);
            thread::sleep(d);
            subs[i].signal(Signal::SIGCONT);
            format!(
                "SIGSTOP subscriber {i} for {} ms, then SIGCONT",
                d.as_millis()
            )
        }
        Kind::SlowReader => {
            let i = rng.below(subs.len() as u64) as usize;
            let d = rng.ms(200, 3000);
            subs[i].hold.store(true, Ordering::Relaxed);
            thread::sleep(d);
            subs[i].hold.store(false, Ordering::Relaxed);
            format!(
                "subscriber {i}'s output left unread for {} ms",
                d.as_millis()
            )
        }
        Kind::RtmdKill => {
            thread::sleep(rng.ms(0, 300));
            let pid = lab.rtmd_pid();
            lab.kill_rtmd();
            thread::sleep(rng.ms(0, 500));
            lab.start_rtmd()?;
            format!(
                "SIGKILL rtmd (pid {}), restarted on the same state",
                pid.unwrap_or(0)
            )
        }
        Kind::ActorPanic => {
            const TARGETS: [(&str, &[&str]); 5] = [
                ("route", &["handler", "async", "interval", "publish"]),
                ("arp", &["handler", "async", "interval"]),
                ("broker", &["handler", "async"]),
                ("listener", &["handler", "async"]),
                ("session", &["handler", "async"]),
            ];
            let (t, points) = TARGETS[rng.below(TARGETS.len() as u64) as usize];
            let p = points[rng.below(points.len() as u64) as usize];
            let o = lab.rtmctl(
                &["debug", "panic", t, "in", p],
                None,
                Duration::from_secs(10),
            )?;
            format!(
                "debug panic {t} in {p}: exit {}{}",
                o.status.code().unwrap_or(-1),
                if o.status.success() {
                    String::new()
                } else {
                    format!(" ({})", String::from_utf8_lossy(&o.stderr).trim())
                }
            )
        }
        Kind::StateFull | Kind::ShmFull => {
            let d = if kind == Kind::StateFull {
                lab.state_dir.clone()
            } else {
                lab.shm_dir.clone()
            };
            lab.fill(&d)?;
            let before = shared.batches_failed.load(Ordering::Relaxed);
            thread::sleep(rng.ms(300, 1500));
            // A restart on a full disk too, now and then: rtmd must either start or say why.
            let restarted = if rng.below(3) == 0 {
                lab.kill_rtmd();
                let r = lab.start_rtmd();
                lab.unfill(&d)?;
                if r.is_err() {
                    lab.kill_rtmd();
                    lab.start_rtmd()?;
                    " (restart on the full disk refused; started once freed)"
                } else {
                    " (restarted on the full disk)"
                }
            } else {
                lab.unfill(&d)?;
                ""
            };
            let failed = shared.batches_failed.load(Ordering::Relaxed) - before;
            format!(
                "filled {}: {failed} batches failed or refused meanwhile{restarted}",
                d.display()
            )
        }
        Kind::HostileIdle => {
            let n = 1 + rng.below(32);
            let conns: Vec<UnixStream> = (0..n)
                .filter_map(|_| UnixStream::connect(&lab.socket).ok())
                .collect();
            thread::sleep(rng.ms(200, 1500));
            let held = conns.len();
            drop(conns);
            format!("{held} connections opened and left silent, then closed")
        }
        Kind::HostileGarbage => {
            let mut c = UnixStream::connect(&lab.socket)?;
            let n = 1 + rng.below(4096) as usize;
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            let _ = c.write_all(&junk);
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = [0u8; 4096];
            let mut closed = false;
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        closed = true;
                        break;
                    }
                    Ok(_) => {}
                }
            }
            format!(
                "{n} random bytes sent; connection {}",
                if closed {
                    "closed by rtmd"
                } else {
                    "still open after 5 s"
                }
            )
        }
    })
}
