//! `rtm-bench` — measures a real `rtmd` with real client processes; BENCHMARKS.md says what
//! each figure means.
//!
//! It starts the `rtmd` that sits next to its own executable on a scratch socket and shm
//! directory, drives it with the `rtm` library (batches of many ops per frame), re-executes
//! itself as client processes (`--as-client`, hidden) that read every notified entry from shared
//! memory, and prints `name: value unit` lines (or one JSON object with `--json`).
//! `BENCHMARKS.md` says what each figure counts.
//!
//! - `args`: the command line and the sizes it implies; `deadline`: the overall `--timeout`.
//! - `daemon`: the rtmd under test; `clients`: the client processes it is measured with, whose
//!   roles are in `client_role` and `latency`.
//! - `pump`: the writer that loads the table; `perf`: `perf record` of rtmd during one phase.
//! - `phases`: the measured phases in order; `dashboard`: the `--dashboard` run instead; `lookups`: in-process lookups from shared memory
//!   against baselines; `latency`: probes and the machine's floor; `kernel`: the kernel FIB
//!   comparison; `kernel_mirror`: the `--kernel-mirror` run (rtmd following the kernel).
//! - `table`: the generated Internet-like table; `report`: the figures and how they print;
//!   `util`: clocks, process figures, scratch directory; `child` (shared with the tests):
//!   children under a deadline.
#![forbid(unsafe_code)]

mod args;
mod bench;
#[path = "../../cli/child.rs"]
mod child;
#[path = "../../cli/mod.rs"]
mod cli;
mod client_role;
mod clients;
mod daemon;
mod dashboard;
mod deadline;
mod kernel;
mod kernel_mirror;
mod latency;
mod lookups;
mod perf;
mod phases;
mod pump;
mod report;
mod sessions;
mod table;
mod util;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;

use crate::args::{rtmd_path, Args, Sizes};
use crate::bench::Bench;
use crate::daemon::Daemon;
use crate::deadline::Deadline;
use crate::report::{phase, print_report, Report};
use crate::util::{now_ns, ScratchDir};

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

/// One whole run: the table, the daemon, every phase, the kernel comparison, the report.
fn run(args: &Args) -> Result<()> {
    let q = args.quick;
    let s = Sizes::of(args);
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

    if let Some(n) = args.sessions {
        return run_sessions(args, &s, n, &rtmd, &dl, started);
    }
    if args.kernel_mirror {
        if !nix::unistd::geteuid().is_root() {
            bail!("--kernel-mirror needs root to create a network namespace");
        }
        let scratch = ScratchDir::new("kernel-mirror", args.scratch_dir.as_deref())?;
        let run = kernel_mirror::Run {
            rtmd: &rtmd,
            dir: scratch.path(),
            routes: &routes,
            clients: args.clients,
            samples: s.lat_samples,
            rate: args.latency_rate,
            dl: &dl,
        };
        kernel_mirror::measure(&run, &mut rep)?;
        print_report(args, &s, &rep, (now_ns() - started) as f64 / 1e9);
        return Ok(());
    }
    let scratch = ScratchDir::new("run", args.scratch_dir.as_deref())?;
    let clog = scratch.path().join("clients.log");
    let extra: &[&str] = if args.dashboard {
        &["--http-listen", "127.0.0.1:0"]
    } else {
        &[]
    };
    let daemon = Daemon::start(&rtmd, scratch.path(), s.routes, s.arps, extra, &dl)?;
    let mut bench = Bench {
        args,
        sizes: &s,
        dl: &dl,
        daemon: &daemon,
        routes: &routes,
        arps: &arps,
        client_log: &clog,
        rep: &mut rep,
    };
    let result = if args.dashboard {
        dashboard::measure(&mut bench)
    } else {
        phases::measure(&mut bench)
    };
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

    if args.compare_kernel && !args.dashboard {
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

/// `--sessions N`: only the many-subscribers phase, on an rtmd of its own ([`sessions`]).
fn run_sessions(
    args: &Args,
    s: &Sizes,
    n: usize,
    rtmd: &std::path::Path,
    dl: &Deadline,
    started: u64,
) -> Result<()> {
    if n == 0 {
        bail!("--sessions must be at least 1");
    }
    let mut rep = Report::default();
    let scratch = ScratchDir::new("sessions", args.scratch_dir.as_deref())?;
    let extra = sessions::daemon_args(n);
    let daemon = Daemon::start_with(rtmd, scratch.path(), args.session_updates, 1024, dl, &extra)?;
    let result = sessions::run(&daemon, n, args.session_updates, args.seed, dl, &mut rep);
    let stopped = daemon.stop();
    if let Err(e) = result {
        bail!(
            "{e:#}\n--- rtmd log ---\n{}",
            std::fs::read_to_string(scratch.path().join("rtmd.log")).unwrap_or_default()
        );
    }
    stopped?;
    let elapsed_s = (now_ns() - started) as f64 / 1e9;
    print_report(args, s, &rep, elapsed_s);
    Ok(())
}
