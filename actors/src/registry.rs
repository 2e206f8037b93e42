//! The registry of subscribed clients: who is registered, since when, with which pidfd.
//!
//! Only subscribers register (one-shot request connections never do), so `--max-clients`
//! counts exactly what `rtmctl clients` lists. A session deregisters itself when it stops,
//! whether the client said goodbye or vanished.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use actix::prelude::*;
use rtm_proto::wire::{ClientInfo, Failure};
use tracing::info;

use crate::config::Limits;
use crate::counters::Health;
use crate::faults::Faults;
use crate::restart::{guarded, ActorKind, RestartLog, Restartable};
use crate::session::outbox::SessionStats;

/// A client as it registered; `stats` are live figures kept by its session.
pub struct Registration {
    pub id: u64,
    pub pid: i32,
    pub uid: u32,
    pub name: String,
    pub connected_at_ms: u64,
    pub sigusr1: bool,
    /// Taken from the socket at accept time; `None` if the kernel could not give one.
    pub pidfd: Option<Arc<OwnedFd>>,
    pub stats: Arc<SessionStats>,
    /// The client's session, told to say goodbye at a clean stop.
    pub session: Recipient<ShutdownSession>,
}

#[derive(Message)]
#[rtype(result = "Result<(), Failure>")]
pub struct Register(pub Registration);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Deregister {
    pub id: u64,
}

#[derive(Message)]
#[rtype(result = "Vec<ClientInfo>")]
pub struct ListClients;

/// The pidfds of registered clients that announced a SIGUSR1 handler.
#[derive(Message)]
#[rtype(result = "Vec<(u64, Arc<OwnedFd>)>")]
pub struct SignalTargets;

/// Clean stop: tell every registered client goodbye.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SayBye;

/// What [`SayBye`] sends each registered client's session: send `Bye`, flush, close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownSession;

/// Supervised like the other long-lived actors: a panic in a handler is caught, counted as a
/// `registry` restart and the actor restarted with the same address and its registrations.
pub struct Registry {
    clients: BTreeMap<u64, Registration>,
    limits: Arc<Limits>,
    health: Arc<Health>,
    faults: Faults,
}

impl Registry {
    pub fn new(limits: Arc<Limits>, health: Arc<Health>) -> Self {
        Registry {
            clients: BTreeMap::new(),
            limits,
            health,
            faults: Faults::default(),
        }
    }

    /// The answer a caller gets when the registry failed while handling its message.
    fn crashed() -> Failure {
        Failure::Internal("the registry failed and is being restarted; retry".into())
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Restartable for Registry {
    const KIND: ActorKind = ActorKind::Registry;

    fn restarts(&self) -> &RestartLog {
        &self.health.restarts
    }
}

impl Supervised for Registry {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.faults.trip(rtm_proto::wire::PanicPoint::Restart);
            // Sessions that went away while it was down may have missed their Deregister.
            act.clients.retain(|_, r| r.session.connected());
            info!(clients = act.clients.len(), "registry restarting");
        });
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::faults::Inject> for Registry {
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: crate::faults::Inject, ctx: &mut Context<Self>) -> Self::Result {
        crate::faults::inject(self, msg.0, ctx, false, |act| &mut act.faults)
    }
}

impl Handler<Register> for Registry {
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: Register, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, |act, _| {
            let max = act.limits.load().max_clients;
            if act.clients.len() >= max as usize {
                return Err(Failure::TooManyClients { max });
            }
            let r = msg.0;
            info!(id = r.id, pid = r.pid, uid = r.uid, name = %r.name, "client registered");
            act.clients.insert(r.id, r);
            Ok(())
        })
        .unwrap_or_else(|| Err(Self::crashed()))
    }
}

impl Handler<Deregister> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Deregister, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            if let Some(r) = act.clients.remove(&msg.id) {
                info!(id = r.id, pid = r.pid, name = %r.name, "client deregistered");
            }
        });
    }
}

impl Handler<ListClients> for Registry {
    type Result = MessageResult<ListClients>;

    fn handle(&mut self, _: ListClients, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(guarded(self, ctx, |act, _| act.list()).unwrap_or_default())
    }
}

impl Registry {
    fn list(&mut self) -> Vec<ClientInfo> {
        // A session that died without deregistering (it cannot: Drop deregisters too) would
        // show here as disconnected; drop it rather than list a ghost.
        self.clients.retain(|_, r| r.session.connected());
        self.clients
            .values()
            .map(|r| ClientInfo {
                id: r.id,
                pid: r.pid,
                uid: r.uid,
                name: r.name.clone(),
                connected_at_ms: r.connected_at_ms,
                queued: r.stats.queued.load(Relaxed),
                sent: r.stats.sent.load(Relaxed),
                resyncs: r.stats.resyncs.load(Relaxed),
                sigusr1: r.sigusr1,
            })
            .collect()
    }
}

impl Handler<SignalTargets> for Registry {
    type Result = MessageResult<SignalTargets>;

    fn handle(&mut self, _: SignalTargets, ctx: &mut Context<Self>) -> Self::Result {
        let targets = guarded(self, ctx, |act, _| {
            act.clients
                .values()
                .filter(|r| r.sigusr1)
                .filter_map(|r| r.pidfd.clone().map(|fd| (r.id, fd)))
                .collect()
        });
        MessageResult(targets.unwrap_or_default())
    }
}

impl Handler<SayBye> for Registry {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: SayBye, ctx: &mut Context<Self>) -> Self::Result {
        // Answer only once every session has queued its bye and started closing, so that the
        // supervisor's wait for closing writers covers all of them.
        let sends: Vec<_> = guarded(self, ctx, |act, _| {
            act.clients
                .values()
                .map(|r| r.session.send(ShutdownSession))
                .collect()
        })
        .unwrap_or_default();
        Box::pin(async move {
            futures_util::future::join_all(sends)
                .await
                .into_iter()
                .filter(Result::is_ok)
                .count()
        })
    }
}
