//! Daemon-wide counters and the supervisor's restart accounting, shared by every actor.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rtm_proto::wire::Restarts;

/// The actors the supervisor restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Route,
    Arp,
    Broker,
    Listener,
}

impl ActorKind {
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Route => "route",
            ActorKind::Arp => "arp",
            ActorKind::Broker => "broker",
            ActorKind::Listener => "listener",
        }
    }
}

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
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub fn bump_by(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let pairs: [(&str, &AtomicU64); 13] = [
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
        ];
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.load(Relaxed)))
            .collect()
    }
}

/// How many restarts the supervisor allows within a time window before it gives up and stops
/// the daemon with [`EXIT_RESTART_BUDGET`], so that the service manager restarts the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    pub max: u32,
    pub window: Duration,
}

impl Default for RestartBudget {
    fn default() -> Self {
        RestartBudget {
            max: 5,
            window: Duration::from_secs(10),
        }
    }
}

/// Exit code of a daemon that stopped because its actors failed too often (EX_SOFTWARE).
pub const EXIT_RESTART_BUDGET: i32 = 70;

/// Restart counts per actor kind, and the last failure seen.
#[derive(Debug)]
pub struct Health {
    pub started: Instant,
    pub counters: Counters,
    /// Set at the start of a clean stop: new connections are refused.
    pub shutting_down: AtomicBool,
    /// Session writers told to close that are still writing (a clean stop waits for them to
    /// hand `bye` to their clients).
    pub closing_writers: AtomicU64,
    restarts: [AtomicU64; 4],
    last_failure: Mutex<Option<String>>,
    budget: RestartBudget,
    /// When the restarts inside the budget's window happened.
    recent: Mutex<VecDeque<Instant>>,
    /// Set once the budget is spent: the daemon is on its way out.
    exhausted: AtomicBool,
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
            shutting_down: AtomicBool::new(false),
            closing_writers: AtomicU64::new(0),
            restarts: Default::default(),
            last_failure: Mutex::new(None),
            budget,
            recent: Mutex::new(VecDeque::new()),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Counts a restart of `kind`. Returns `false` when this restart spends the budget: more
    /// than `budget.max` restarts (of any actor) within `budget.window`.
    pub fn record_restart(&self, kind: ActorKind, reason: &str) -> bool {
        self.restarts[kind as usize].fetch_add(1, Relaxed);
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{}: {reason}", kind.name()));
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.budget.window)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        let within = recent.len() <= self.budget.max as usize;
        if !within {
            self.exhausted.store(true, Relaxed);
        }
        within
    }

    /// Whether the restart budget has been spent.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Relaxed)
    }

    pub fn budget(&self) -> RestartBudget {
        self.budget
    }

    pub fn restarts(&self) -> Restarts {
        let r = |k: ActorKind| self.restarts[k as usize].load(Relaxed);
        Restarts {
            route: r(ActorKind::Route),
            arp: r(ActorKind::Arp),
            broker: r(ActorKind::Broker),
            listener: r(ActorKind::Listener),
        }
    }

    pub fn last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Runs `f`, turning a panic into `Err(message)` so that an actor can stop itself and let the
/// supervisor restart it (actix does not restart an actor whose handler panicked).
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(panic_message)
}

/// The message a panic was raised with.
pub fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}
