//! The command line, and the sizes a run works with once `--quick` and the defaults are
//! applied.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Parser;

use crate::table;

/// Benchmarks a real rtmd with real client processes.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Args {
    /// Routes in the table (and ops per update phase) [default: 1048576; --quick: 16384]
    #[arg(long)]
    pub routes: Option<usize>,
    /// Client processes for the fan-out phase
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// ARP entries for the ARP lookup test [default: 65536; --quick: 4096]
    #[arg(long)]
    pub arps: Option<usize>,
    /// Small sizes, a few seconds (CI)
    #[arg(long)]
    pub quick: bool,
    /// One JSON object instead of lines
    #[arg(long)]
    pub json: bool,
    /// Also insert the same routes into the kernel FIB of a fresh network namespace with
    /// `ip -batch`, with 0, 1 and 8 `ip monitor route` listeners (root only)
    #[arg(long)]
    pub compare_kernel: bool,
    /// Measure the web dashboard instead of the other phases: pages, address searches, the
    /// event stream's latency, an idle open page's CPU and a stalled stream's memory, with
    /// --routes loaded and --clients followers subscribed
    #[arg(long)]
    pub dashboard: bool,
    /// Measure rtmd following the kernel (`--kernel import`) instead of the other phases: an
    /// `ip -batch` burst of --routes [default 100000] and latency probes, against `ip monitor`
    /// in the same network namespace (root only)
    #[arg(long, conflicts_with_all = ["dashboard", "compare_kernel"])]
    pub kernel_mirror: bool,
    /// Seed of the generated table, addresses and MACs
    #[arg(long, default_value_t = table::DEFAULT_SEED)]
    pub seed: u64,
    /// Latency probes (one op each, paced) [default: 5000; --quick: 300]
    #[arg(long)]
    pub latency_samples: Option<usize>,
    /// Latency probes per second
    #[arg(long, default_value_t = 2000)]
    pub latency_rate: u32,
    /// The rtmd binary [default: next to this executable]
    #[arg(long)]
    pub rtmd: Option<PathBuf>,
    /// Run `perf record -g` on rtmd during one phase and write the profile here
    #[arg(long)]
    pub perf_out: Option<PathBuf>,
    /// The phase `--perf-out` profiles
    #[arg(long, default_value = "clients_8", value_parser = ["inserts", "clients_1", "clients_8"])]
    pub perf_phase: String,
    /// Overall deadline in seconds; every child is killed when it passes
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Where the scratch directory (socket, shm files, logs) is made [default: /dev/shm, else
    /// the temp dir]. E.g. a tmpfs mounted with `huge=within_size` to measure huge pages
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,
    /// Instead of the other phases: hold this many registered subscribers (from a few
    /// threads) and measure rtmd's memory and descriptors per subscriber, a run of
    /// `--session-updates` changes to all of them, and `rtmctl clients`
    #[arg(long)]
    pub sessions: Option<usize>,
    /// Route additions in the `--sessions` run
    #[arg(long, default_value_t = 100_000)]
    pub session_updates: usize,
    #[arg(long, hide = true)]
    pub as_client: Option<String>,
    #[arg(long, hide = true)]
    pub socket: Option<PathBuf>,
    #[arg(long, hide = true, default_value = "rtm-bench-client")]
    pub name: String,
}

/// How much a run measures: the table, the probes and the time each in-process lookup rate
/// is taken over.
pub struct Sizes {
    pub routes: usize,
    pub arps: usize,
    pub lat_samples: usize,
    pub lookup_time: Duration,
    pub lookup_keys: usize,
    pub late_join_runs: usize,
}

impl Sizes {
    /// The sizes asked for, else the defaults (small ones with `--quick`).
    pub fn of(args: &Args) -> Sizes {
        let q = args.quick;
        Sizes {
            routes: args.routes.unwrap_or(match (q, args.kernel_mirror) {
                (true, _) => 16_384,
                (false, true) => 100_000,
                (false, false) => 1 << 20,
            }),
            arps: args.arps.unwrap_or(if q { 4096 } else { 65_536 }),
            lat_samples: args.latency_samples.unwrap_or(if q { 300 } else { 5000 }),
            lookup_time: Duration::from_millis(if q { 100 } else { 1000 }),
            lookup_keys: if q { 1 << 16 } else { 1 << 20 },
            late_join_runs: if q { 1 } else { 3 },
        }
    }
}

/// The rtmd to measure: `--rtmd`, else the one next to this executable.
pub fn rtmd_path(args: &Args) -> Result<PathBuf> {
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
