//! The daemon-wide figures every actor updates: the counters `rtmctl status` shows, the restart
//! log, and the flags of a clean stop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::restart::{RestartBudget, RestartLog};

/// Monotonic counters shown by `rtmctl status`.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub changes: AtomicU64,
    pub failed_requests: AtomicU64,
    pub denied: AtomicU64,
    pub events_sent: AtomicU64,
    pub resyncs: AtomicU64,
    pub sessions_opened: AtomicU64,
    pub sessions_closed: AtomicU64,
    pub bad_frames: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub signals_sent: AtomicU64,
    pub flushes: AtomicU64,
    pub session_failures: AtomicU64,
    /// Connections refused by `--max-connections` or the open-file limit.
    pub connections_refused: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub fn bump_by(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let pairs: [(&str, &AtomicU64); 14] = [
            ("requests", &self.requests),
            ("changes", &self.changes),
            ("failed_requests", &self.failed_requests),
            ("denied", &self.denied),
            ("events_sent", &self.events_sent),
            ("resyncs", &self.resyncs),
            ("sessions_opened", &self.sessions_opened),
            ("sessions_closed", &self.sessions_closed),
            ("bad_frames", &self.bad_frames),
            ("handshake_timeouts", &self.handshake_timeouts),
            ("signals_sent", &self.signals_sent),
            ("flushes", &self.flushes),
            ("session_failures", &self.session_failures),
            ("connections_refused", &self.connections_refused),
        ];
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.load(Relaxed)))
            .collect()
    }
}

/// What every actor shares about the daemon as a whole.
#[derive(Debug)]
pub struct Health {
    pub started: Instant,
    pub counters: Counters,
    /// Restarts per actor, the last failure and the restart budget.
    pub restarts: RestartLog,
    /// Set at the start of a clean stop: new connections are refused.
    pub shutting_down: AtomicBool,
    /// Session writers told to close that are still writing (a clean stop waits for them to
    /// hand `bye` to their clients).
    pub closing_writers: AtomicU64,
    /// Open connections and the open-file limit they are sized to.
    pub connections: crate::connections::Connections,
    /// Each table's size as its actor last published it (route, ARP, neighbours), so that
    /// `status` answers without waiting for a table busy with file work.
    pub table_sizes: [TableSizes; 3],
    /// The tables keep a journal (`--state-dir`): `status` then reports its counters.
    pub journal: JournalCounters,
    /// The kernel import's and export's counters (`status` reports those of the sides on, and
    /// the kernel actors' restarts if either is).
    pub kernel: KernelCounters,
    /// Commit → socket write of notifications (`/metrics`' `rtm_notification_delay_seconds`).
    pub notify_delay: DelayHistogram,
}

/// Upper bounds (seconds) of [`DelayHistogram`]'s buckets; one more bucket holds the rest.
pub const DELAY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// A Prometheus-style histogram of delays: a count per bucket (not cumulative; `/metrics`
/// sums them) and the total in nanoseconds. Recording is a few relaxed atomic adds.
#[derive(Debug, Default)]
pub struct DelayHistogram {
    buckets: [AtomicU64; DELAY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl DelayHistogram {
    pub fn record(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        let i = DELAY_BUCKETS
            .iter()
            .position(|&le| s <= le)
            .unwrap_or(DELAY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Cumulative counts per bucket (the last is `+Inf`, the total count) and the sum in
    /// seconds.
    pub fn snapshot(&self) -> ([u64; DELAY_BUCKETS.len() + 1], f64) {
        let mut out = [0; DELAY_BUCKETS.len() + 1];
        let mut total = 0;
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            total += b.load(Relaxed);
            *o = total;
        }
        (out, self.sum_ns.load(Relaxed) as f64 / 1e9)
    }
}

/// What the tables' journals did (both tables together); shown only with `--state-dir`.
#[derive(Debug, Default)]
pub struct JournalCounters {
    pub on: AtomicBool,
    /// Requests made durable (one commit each, whatever their size).
    pub commits: AtomicU64,
    /// Commits that failed (a full or failing state disk): the request was refused.
    pub commit_failures: AtomicU64,
    /// Snapshots rewritten and journals started afresh.
    pub compactions: AtomicU64,
    pub compaction_failures: AtomicU64,
}

impl JournalCounters {
    /// The counters under their `rtmctl status` names, if the tables keep a journal.
    pub fn snapshot(&self) -> Option<[(&'static str, u64); 4]> {
        self.on.load(Relaxed).then(|| {
            [
                ("journal_commits", self.commits.load(Relaxed)),
                (
                    "journal_commit_failures",
                    self.commit_failures.load(Relaxed),
                ),
                ("journal_compactions", self.compactions.load(Relaxed)),
                (
                    "journal_compaction_failures",
                    self.compaction_failures.load(Relaxed),
                ),
            ]
        })
    }
}

/// What the kernel import (`--kernel import`) and export (`--kernel export`) have done.
#[derive(Debug, Default)]
pub struct KernelCounters {
    pub import: AtomicBool,
    pub export: AtomicBool,
    /// Dumps of the kernel's routes reconciled into rtm: one at start, one after each restart
    /// of the import and each overflow.
    pub dumps: AtomicU64,
    /// Times the kernel dropped events (`ENOBUFS`) or sent one that did not decode.
    pub overflows: AtomicU64,
    /// Changes the import made to rtm's table.
    pub changes: AtomicU64,
    /// Kernel routes rtm's table refused (full, …): logged, and left out of rtm.
    pub refused: AtomicU64,
    /// The same four for the kernel's neighbours, which the import follows on a socket of
    /// their own.
    pub neigh_dumps: AtomicU64,
    pub neigh_overflows: AtomicU64,
    pub neigh_changes: AtomicU64,
    pub neigh_refused: AtomicU64,
    /// Whole-table reconciles of the export (start, restart, flush, resync, backlog).
    pub export_reconciles: AtomicU64,
    /// Route writes the kernel took from the export (each add, replace or removal).
    pub export_writes: AtomicU64,
    /// Writes the kernel refused (no such link, a gateway off-link, a route rtm did not
    /// write in the way, …): logged, and tried again at the next change or reconcile.
    pub export_failures: AtomicU64,
}

impl KernelCounters {
    /// Whether rtmd runs with `--kernel` (import, export or both).
    pub fn on(&self) -> bool {
        self.import.load(Relaxed) || self.export.load(Relaxed)
    }

    /// The counters under their `rtmctl status` names, of the sides that are on.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        if self.import.load(Relaxed) {
            out.extend([
                ("kernel_dumps", self.dumps.load(Relaxed)),
                ("kernel_overflows", self.overflows.load(Relaxed)),
                ("kernel_changes", self.changes.load(Relaxed)),
                ("kernel_refused", self.refused.load(Relaxed)),
                ("kernel_neigh_dumps", self.neigh_dumps.load(Relaxed)),
                ("kernel_neigh_overflows", self.neigh_overflows.load(Relaxed)),
                ("kernel_neigh_changes", self.neigh_changes.load(Relaxed)),
                ("kernel_neigh_refused", self.neigh_refused.load(Relaxed)),
            ]);
        }
        if self.export.load(Relaxed) {
            out.extend([
                (
                    "kernel_export_reconciles",
                    self.export_reconciles.load(Relaxed),
                ),
                ("kernel_export_writes", self.export_writes.load(Relaxed)),
                ("kernel_export_failures", self.export_failures.load(Relaxed)),
            ]);
        }
        out
    }
}

/// Entries and capacity of one table, kept up to date by its actor.
#[derive(Debug, Default)]
pub struct TableSizes {
    pub len: AtomicU64,
    pub capacity: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health::new(RestartBudget::default())
    }
}

impl Health {
    pub fn new(budget: RestartBudget) -> Self {
        Health {
            started: Instant::now(),
            counters: Counters::default(),
            restarts: RestartLog::new(budget),
            shutting_down: AtomicBool::new(false),
            closing_writers: AtomicU64::new(0),
            connections: Default::default(),
            table_sizes: Default::default(),
            journal: JournalCounters::default(),
            kernel: KernelCounters::default(),
            notify_delay: DelayHistogram::default(),
        }
    }
}
