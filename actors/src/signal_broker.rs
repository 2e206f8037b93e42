//! The signal broker: POSIX signals in and out of the daemon.
//!
//! In: SIGTERM and SIGINT ask the supervisor for a clean stop, SIGHUP for a config reload.
//! Out: SIGUSR1 to clients after a flush, always through the pidfd taken from the client's
//! socket when it connected — a client's claimed PID is never used, and a pidfd of a process
//! that has exited answers ESRCH instead of hitting whoever got the PID next.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::StreamExt;
use rustix::process::{pidfd_send_signal, Signal as PosixSignal};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{debug, error, info, warn};

use rtm_proto::wire::PanicPoint;

use crate::counters::{Counters, Health};
use crate::faults::Faults;
use crate::restart::{guarded, ActorKind, RestartLog, Restartable};

/// Asks the supervisor to stop the daemon cleanly.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Asks the supervisor to re-read the config file.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Reload;

/// Send SIGUSR1 to these clients; answers how many were signalled.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SignalClients(pub Vec<(u64, Arc<OwnedFd>)>);

#[derive(Clone, Copy, Debug)]
pub enum OsSignal {
    Term,
    Int,
    Hup,
}

/// The daemon's signal handlers, installed before anything else: from then on a signal is
/// neither fatal (the default action of SIGTERM/SIGHUP) nor lost, even if it arrives before the
/// broker runs. Must be called inside the actor system's runtime.
pub struct OsSignals(Vec<(Signal, OsSignal)>);

impl OsSignals {
    pub fn install() -> std::io::Result<OsSignals> {
        [
            (SignalKind::terminate(), OsSignal::Term),
            (SignalKind::interrupt(), OsSignal::Int),
            (SignalKind::hangup(), OsSignal::Hup),
        ]
        .into_iter()
        .map(|(kind, which)| Ok((signal(kind)?, which)))
        .collect::<std::io::Result<Vec<_>>>()
        .map(OsSignals)
    }
}

pub struct SignalBroker {
    shutdown: Recipient<Shutdown>,
    reload: Recipient<Reload>,
    health: Arc<Health>,
    /// Taken by the first start; a restarted broker installs fresh streams.
    early: Option<OsSignals>,
    faults: Faults,
}

impl SignalBroker {
    pub fn new(
        shutdown: Recipient<Shutdown>,
        reload: Recipient<Reload>,
        health: Arc<Health>,
        early: OsSignals,
    ) -> Self {
        SignalBroker {
            shutdown,
            reload,
            health,
            early: Some(early),
            faults: Faults::default(),
        }
    }

    fn listen(&mut self, ctx: &mut Context<Self>) {
        let signals = match self.early.take().map(Ok).unwrap_or_else(OsSignals::install) {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                return;
            }
        };
        for (s, which) in signals.0 {
            let stream =
                futures_util::stream::unfold(
                    s,
                    |mut s| async move { s.recv().await.map(|()| ((), s)) },
                );
            ctx.add_stream(stream.map(move |()| which));
        }
    }

    fn on_signal(&mut self, sig: OsSignal) {
        // Pass it on before anything that could fail (even logging).
        match sig {
            OsSignal::Term | OsSignal::Int => self.shutdown.do_send(Shutdown),
            OsSignal::Hup => self.reload.do_send(Reload),
        }
        info!("received {sig:?}");
        // An armed panic fails the broker after it passed the signal on.
        self.faults.trip(PanicPoint::Stream);
    }
}

impl Actor for SignalBroker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.listen(ctx));
    }
}

impl Restartable for SignalBroker {
    const KIND: ActorKind = ActorKind::Broker;

    fn restarts(&self) -> &RestartLog {
        &self.health.restarts
    }
}

impl Supervised for SignalBroker {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.faults.trip(PanicPoint::Restart);
            info!("signal broker restarting");
        });
    }
}

impl StreamHandler<OsSignal> for SignalBroker {
    fn handle(&mut self, sig: OsSignal, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| act.on_signal(sig));
    }

    // A signal stream never ends; keep the broker alive if one somehow does.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<SignalClients> for SignalBroker {
    type Result = usize;

    fn handle(&mut self, msg: SignalClients, ctx: &mut Context<Self>) -> usize {
        guarded(self, ctx, |act, _| {
            let mut sent = 0;
            for (id, fd) in &msg.0 {
                match pidfd_send_signal(&**fd, PosixSignal::USR1) {
                    Ok(()) => {
                        sent += 1;
                        Counters::bump(&act.health.counters.signals_sent);
                    }
                    // The client exited; its session is going away too.
                    Err(rustix::io::Errno::SRCH) => debug!(id, "client gone before SIGUSR1"),
                    Err(e) => warn!(id, "SIGUSR1 to client failed: {e}"),
                }
            }
            sent
        })
        .unwrap_or(0)
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::faults::Inject> for SignalBroker {
    type Result = Result<(), rtm_proto::wire::Failure>;

    fn handle(&mut self, msg: crate::faults::Inject, ctx: &mut Context<Self>) -> Self::Result {
        crate::faults::inject(self, msg.0, ctx, true, |act| &mut act.faults)
    }
}
