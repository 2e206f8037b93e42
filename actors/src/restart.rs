//! Making actix actors restartable after a panic.
//!
//! `actix::Supervisor` restarts an actor only when it *stops*; a panic inside the actor instead
//! kills it and its supervisor for good. So every piece of code a supervised actor runs — each
//! message handler, the future of an async handler, interval ticks, stream items and the
//! lifecycle hooks — goes through one of the guards below. A guard catches the panic, records
//! it (restart count, last failure, restart budget) and stops the actor, which the supervisor
//! then restarts with the same address, mailbox and state; the actor's `restarting` hook
//! repairs whatever it publishes.
//!
//! When the restart budget ([`RestartBudget`](crate::health::RestartBudget)) is spent, the
//! guard stops the whole daemon with exit code
//! [`EXIT_RESTART_BUDGET`](crate::health::EXIT_RESTART_BUDGET) instead: a daemon that keeps
//! failing is better restarted as a process by systemd than left limping.

use std::future::Future;

use actix::prelude::*;
use futures_util::FutureExt;
use tracing::error;

use crate::health::{catch_panic, panic_message, ActorKind, Health, EXIT_RESTART_BUDGET};

/// A supervised actor whose failures the guards can record.
pub trait Restartable: Actor<Context = Context<Self>> + Supervised {
    const KIND: ActorKind;
    fn health(&self) -> &Health;
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
    let health = act.health();
    // Logging comes last and may not fail the recovery itself.
    if health.record_restart(A::KIND, why) {
        ctx.stop();
        let _ = catch_panic(|| error!(actor = kind, "actor failed: {why}; restarting it"));
    } else {
        let b = health.budget();
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
