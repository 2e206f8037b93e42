//! The supervisor's watchdog: while the service manager asks for keep-alives
//! (`WatchdogSec=`), every third of the period the supervisor sends each long-lived actor a
//! [`Ping`] and sends `WATCHDOG=1` only if all of them answered within that third. An actor that
//! is stuck (a handler that blocks, a mailbox that never drains) therefore stops the
//! keep-alives, and systemd restarts the whole daemon.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use tracing::{info, warn};

use crate::listener::Listener;
use crate::registry::Registry;
use crate::service_manager;
use crate::signal_broker::SignalBroker;
use crate::table::{TableActor, TableRecord};

/// "Are you there?" An actor answers as soon as it handles its next message.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Ping;

impl<R: TableRecord> Handler<Ping> for TableActor<R> {
    type Result = ();
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

impl Handler<Ping> for SignalBroker {
    type Result = ();
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

impl Handler<Ping> for Listener {
    type Result = ();
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

impl Handler<Ping> for Registry {
    type Result = ();
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

/// The actors whose answers the keep-alive depends on, by name.
pub type Watched = Vec<(&'static str, Recipient<Ping>)>;

/// Starts the keep-alives on the supervisor's context, if the service manager wants them.
pub fn start<A>(ctx: &mut Context<A>, watched: Watched)
where
    A: Actor<Context = Context<A>>,
{
    let Some(period) = service_manager::watchdog_period() else {
        return;
    };
    let every = (period / 3).max(Duration::from_millis(1));
    info!(period = ?period, "watchdog: keep-alive every {every:?} while every actor answers");
    // Whether the last round found an actor silent (the actor system runs on one thread).
    let was_stuck = Rc::new(Cell::new(false));
    ctx.run_interval(every, move |_, ctx| {
        let watched = watched.clone();
        let was_stuck = was_stuck.clone();
        let round = async move {
            let pings = watched.iter().map(|(name, actor)| {
                let answer = tokio::time::timeout(every, actor.send(Ping));
                async move { (*name, matches!(answer.await, Ok(Ok(())))) }
            });
            futures_util::future::join_all(pings).await
        };
        let check = move |answers: Vec<(&'static str, bool)>, _: &mut A, _: &mut Context<A>| {
            let silent: Vec<_> = answers
                .iter()
                .filter(|(_, ok)| !ok)
                .map(|(n, _)| *n)
                .collect();
            if silent.is_empty() {
                if was_stuck.replace(false) {
                    info!("watchdog: every actor answers again; keep-alives resume");
                }
                service_manager::watchdog();
            } else if !was_stuck.replace(true) {
                warn!(actors = ?silent, "watchdog: no answer; keep-alives withheld");
            }
        };
        ctx.spawn(actix::fut::wrap_future::<_, A>(round).map(check));
    });
}
