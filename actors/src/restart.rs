//! Restarting failed actors: the panic guards every supervised actor runs its code under, and
//! the restart budget.
//!
//! `actix::Supervisor` restarts an actor only when it *stops*; a panic inside the actor instead
//! kills it and its supervisor for good. So every piece of code a supervised actor runs — each
//! message handler, the future of an async handler, interval ticks, stream items and the
//! lifecycle hooks — goes through one of the guards below. A guard catches the panic, records
//! it in the [`RestartLog`] (restart count, last failure, restart budget) and stops the actor,
//! which the supervisor then restarts with the same address, mailbox and state; the actor's
//! `restarting` hook repairs whatever it publishes.
//!
//! When the restart budget ([`RestartBudget`]) is spent, the guard stops the whole daemon with
//! exit code [`EXIT_RESTART_BUDGET`] instead: a daemon that keeps failing is better restarted as
//! a process by systemd than left limping.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::FutureExt;
use rtm_proto::wire::Restarts;
use tracing::error;

/// The actors the supervisor restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Route,
    Arp,
    Broker,
    Listener,
    Registry,
    Kernel,
    /// The kernel's neighbours (appended: the kinds index [`RestartLog`]'s counts).
    Neigh,
}

impl ActorKind {
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Route => "route",
            ActorKind::Arp => "arp",
            ActorKind::Broker => "broker",
            ActorKind::Listener => "listener",
            ActorKind::Registry => "registry",
            ActorKind::Kernel => "kernel",
            ActorKind::Neigh => "neigh",
        }
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

/// The key of the registry's restarts in `Status::counters`; `rtmctl status` shows it as
/// `restarts.registry`.
pub const REGISTRY_RESTARTS: &str = rtm_proto::wire::REGISTRY_RESTARTS;

/// Exit code of a daemon that stopped because its actors failed too often (EX_SOFTWARE).
pub const EXIT_RESTART_BUDGET: i32 = 70;

/// Restart counts per actor kind, the last failure seen, and the restarts inside the budget's
/// window.
#[derive(Debug)]
pub struct RestartLog {
    counts: [AtomicU64; 7],
    last_failure: Mutex<Option<String>>,
    budget: RestartBudget,
    /// When the restarts inside the budget's window happened.
    recent: Mutex<VecDeque<Instant>>,
    /// Set once the budget is spent: the daemon is on its way out.
    exhausted: AtomicBool,
}

impl RestartLog {
    pub fn new(budget: RestartBudget) -> Self {
        RestartLog {
            counts: Default::default(),
            last_failure: Mutex::new(None),
            budget,
            recent: Mutex::new(VecDeque::new()),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Counts a restart of `kind`. Returns `false` when this restart spends the budget: more
    /// than `budget.max` restarts (of any actor) within `budget.window`.
    pub fn record(&self, kind: ActorKind, reason: &str) -> bool {
        self.counts[kind as usize].fetch_add(1, Relaxed);
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

    /// Restarts of `kind`.
    pub fn count(&self, kind: ActorKind) -> u64 {
        self.counts[kind as usize].load(Relaxed)
    }

    /// Restarts per actor kind, as `rtmctl status` shows them (the registry's travel in the
    /// counters, as [`REGISTRY_RESTARTS`]: the wire's `Restarts` has no field for it).
    pub fn counts(&self) -> Restarts {
        let r = |k: ActorKind| self.counts[k as usize].load(Relaxed);
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

/// A supervised actor whose failures the guards can record.
pub trait Restartable: Actor<Context = Context<Self>> + Supervised {
    const KIND: ActorKind;
    /// Where its restarts are counted.
    fn restarts(&self) -> &RestartLog;
}

/// Runs `f` on the actor; a panic stops the actor for a restart and gives `None`.
pub fn guarded<A, T>(
    act: &mut A,
    ctx: &mut Context<A>,
    f: impl FnOnce(&mut A, &mut Context<A>) -> T,
) -> Option<T>
where
    A: Restartable,
{
    match catch_panic(|| f(act, ctx)) {
        Ok(v) => Some(v),
        Err(why) => {
            failed(act, ctx, &why);
            None
        }
    }
}

/// Wraps the future of an async handler: a panic while it runs stops the actor for a restart
/// and resolves to `Err(reason)`.
pub fn guarded_future<A, F>(fut: F) -> impl ActorFuture<A, Output = Result<F::Output, String>>
where
    A: Restartable,
    F: Future + 'static,
{
    actix::fut::wrap_future::<_, A>(std::panic::AssertUnwindSafe(fut).catch_unwind()).map(
        |r, act: &mut A, ctx| {
            r.map_err(|p| {
                let why = panic_message(p);
                failed(act, ctx, &why);
                why
            })
        },
    )
}

/// Records a failure of `act` and stops it, so that its supervisor restarts it — or stops the
/// daemon if the restart budget is spent.
pub fn failed<A: Restartable>(act: &mut A, ctx: &mut Context<A>, why: &str) {
    let kind = A::KIND.name();
    let restarts = act.restarts();
    // Logging comes last and may not fail the recovery itself.
    if restarts.record(A::KIND, why) {
        ctx.stop();
        let _ = catch_panic(|| error!(actor = kind, "actor failed: {why}; restarting it"));
    } else {
        let b = restarts.budget();
        System::current().stop_with_code(EXIT_RESTART_BUDGET);
        let _ = catch_panic(|| {
            error!(
                actor = kind,
                "actor failed: {why}; restart budget spent ({} restarts within {:?}): \
                 stopping rtmd with exit code {EXIT_RESTART_BUDGET} so that it is restarted \
                 as a whole",
                b.max,
                b.window
            )
        });
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
