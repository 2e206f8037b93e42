//! Fault injection for tests (`rtmctl debug ...`), compiled in only with the `fault-injection`
//! feature.
//!
//! Each supervised actor keeps a [`Faults`] and calls [`Faults::trip`] at the points where a
//! panic can be armed (its interval tick, its stream handler, its `restarting` hook). Without
//! the feature `Faults` is an empty type and `trip` does nothing, so a default build contains
//! no hook at all; the daemon then answers every debug request with `Unsupported`.

use rtm_proto::wire::PanicPoint;

/// Panics armed for later points in one actor.
#[derive(Debug, Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: Vec<PanicPoint>,
}

impl Faults {
    /// Arms a panic at the next `point`.
    #[cfg(feature = "fault-injection")]
    pub fn arm(&mut self, point: PanicPoint) {
        self.armed.push(point);
    }

    /// Panics if a panic was armed at `point` (once per arming).
    #[inline]
    pub fn trip(&mut self, point: PanicPoint) {
        #[cfg(feature = "fault-injection")]
        if let Some(i) = self.armed.iter().position(|p| *p == point) {
            self.armed.swap_remove(i);
            panic!("injected panic ({})", point.name());
        }
        #[cfg(not(feature = "fault-injection"))]
        let _ = point;
    }
}

/// Whether this daemon was built with the fault-injection hooks.
pub const ENABLED: bool = cfg!(feature = "fault-injection");

/// A debug request delivered to one actor (fault-injection builds only).
#[cfg(feature = "fault-injection")]
#[derive(actix::Message)]
#[rtype(result = "Result<(), rtm_proto::wire::Failure>")]
pub struct Inject(pub rtm_proto::wire::DebugAction);

/// Blocks the calling actor's thread (a stuck actor).
#[cfg(feature = "fault-injection")]
pub fn stall(ms: u32) {
    tracing::warn!(ms, "stalling this actor's thread");
    std::thread::sleep(std::time::Duration::from_millis(ms.into()));
}

/// A panic raised right now, in a handler.
#[cfg(feature = "fault-injection")]
pub fn panic_now(target: rtm_proto::wire::DebugTarget) -> ! {
    panic!("injected panic in the {} actor (handler)", target.name());
}

/// Carries out a debug request on a supervised actor: panics now (in this handler, or in a
/// future it spawns on the actor), stalls, or arms a panic for a later point. `faults` picks
/// the actor's [`Faults`]; `has_stream` says whether it has a stream handler to arm.
///
/// The answer is always given synchronously: a restart drops every future still pending on the
/// actor's context, so a reply carried by one would be lost.
#[cfg(feature = "fault-injection")]
pub fn inject<A: crate::restart::Restartable>(
    act: &mut A,
    action: rtm_proto::wire::DebugAction,
    ctx: &mut actix::Context<A>,
    has_stream: bool,
    faults: impl FnOnce(&mut A) -> &mut Faults,
) -> Result<(), rtm_proto::wire::Failure> {
    use actix::{ActorFutureExt, AsyncContext};
    use rtm_proto::wire::{DebugAction, Failure};
    match action {
        DebugAction::Stall { ms, .. } => stall(ms),
        DebugAction::Panic { target, point } => match point {
            PanicPoint::Handler => {
                crate::restart::guarded(act, ctx, |_, _| panic_now(target));
            }
            PanicPoint::Async => {
                ctx.spawn(
                    crate::restart::guarded_future(async move {
                        tokio::task::yield_now().await;
                        panic!("injected panic in the {} actor (async)", target.name())
                    })
                    .map(|_, _, _| ()),
                );
            }
            PanicPoint::Publish => {
                return Err(Failure::Unsupported(format!(
                    "the {} actor writes no shared memory",
                    target.name()
                )))
            }
            PanicPoint::Stream if !has_stream => {
                return Err(Failure::Unsupported(format!(
                    "the {} actor has no stream",
                    target.name()
                )))
            }
            PanicPoint::Interval | PanicPoint::Restart | PanicPoint::Stream => {
                faults(act).arm(point);
            }
        },
    }
    Ok(())
}

/// Names a thing and a time, `WHAT:MS` (`route:3000`): in a fault-injection build rtmd then
/// stalls for MS milliseconds each time it is about to publish WHAT, so that a test can check
/// what others see meanwhile. WHAT is a table (`route`, `arp`: its shared memory, whole — at
/// start, once the table's state is recovered, and in the restart's repair) or `socket` (the
/// bound socket file, before its configured mode and group are set).
pub const PUBLISH_STALL_ENV: &str = "RTMD_DEBUG_STALL_PUBLISH";

/// Stalls before publishing `table` if [`PUBLISH_STALL_ENV`] asks for it (fault-injection
/// builds only; otherwise nothing).
pub fn stall_before_publish(table: &str) {
    #[cfg(feature = "fault-injection")]
    if let Some(ms) = std::env::var(PUBLISH_STALL_ENV).ok().and_then(|v| {
        let (t, ms) = v.split_once(':')?;
        (t == table).then(|| ms.parse::<u32>().ok()).flatten()
    }) {
        tracing::warn!(what = table, ms, "stalling before publishing");
        stall(ms);
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = table;
}

/// Set (to anything) in a fault-injection build, rtmd takes no pidfd of its peers, as on a
/// kernel without `SO_PEERPIDFD` and `pidfd_open`.
pub const NO_PIDFD_ENV: &str = "RTMD_DEBUG_NO_PIDFD";

/// Whether [`NO_PIDFD_ENV`] asks rtmd to do without pidfds (never in other builds).
pub fn without_pidfds() -> bool {
    cfg!(feature = "fault-injection") && std::env::var_os(NO_PIDFD_ENV).is_some()
}
