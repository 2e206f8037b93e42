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
use rustix::process::{pidfd_send_signal, Signal};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info, warn};

use crate::health::{catch_panic, ActorKind, Counters, Health};

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
enum OsSignal {
    Term,
    Int,
    Hup,
}

pub struct SignalBroker {
    shutdown: Recipient<Shutdown>,
    reload: Recipient<Reload>,
    health: Arc<Health>,
}

impl SignalBroker {
    pub fn new(
        shutdown: Recipient<Shutdown>,
        reload: Recipient<Reload>,
        health: Arc<Health>,
    ) -> Self {
        SignalBroker {
            shutdown,
            reload,
            health,
        }
    }
}

impl Actor for SignalBroker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for (kind, which) in [
            (SignalKind::terminate(), OsSignal::Term),
            (SignalKind::interrupt(), OsSignal::Int),
            (SignalKind::hangup(), OsSignal::Hup),
        ] {
            match signal(kind) {
                Ok(s) => {
                    let stream = futures_util::stream::unfold(s, |mut s| async move {
                        s.recv().await.map(|()| ((), s))
                    });
                    ctx.add_stream(stream.map(move |()| which));
                }
                Err(e) => error!("cannot install the {which:?} handler: {e}"),
            }
        }
    }
}

impl Supervised for SignalBroker {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        info!("signal broker restarting");
    }
}

impl StreamHandler<OsSignal> for SignalBroker {
    fn handle(&mut self, sig: OsSignal, _ctx: &mut Context<Self>) {
        info!("received {sig:?}");
        match sig {
            OsSignal::Term | OsSignal::Int => self.shutdown.do_send(Shutdown),
            OsSignal::Hup => self.reload.do_send(Reload),
        }
    }

    // A signal stream never ends; keep the broker alive if one somehow does.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<SignalClients> for SignalBroker {
    type Result = usize;

    fn handle(&mut self, msg: SignalClients, ctx: &mut Context<Self>) -> usize {
        let health = self.health.clone();
        let r = catch_panic(|| {
            let mut sent = 0;
            for (id, fd) in &msg.0 {
                match pidfd_send_signal(&**fd, Signal::USR1) {
                    Ok(()) => {
                        sent += 1;
                        Counters::bump(&health.counters.signals_sent);
                    }
                    // The client exited; its session is going away too.
                    Err(rustix::io::Errno::SRCH) => debug!(id, "client gone before SIGUSR1"),
                    Err(e) => warn!(id, "SIGUSR1 to client failed: {e}"),
                }
            }
            sent
        });
        r.unwrap_or_else(|why| {
            error!("signal broker failed: {why}; restarting it");
            self.health.record_restart(ActorKind::Broker, &why);
            ctx.stop();
            0
        })
    }
}
