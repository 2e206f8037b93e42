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

pub struct Registry {
    clients: BTreeMap<u64, Registration>,
    limits: Arc<Limits>,
}

impl Registry {
    pub fn new(limits: Arc<Limits>) -> Self {
        Registry {
            clients: BTreeMap::new(),
            limits,
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Handler<Register> for Registry {
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: Register, _ctx: &mut Context<Self>) -> Self::Result {
        let max = self.limits.load().max_clients;
        if self.clients.len() >= max as usize {
            return Err(Failure::TooManyClients { max });
        }
        let r = msg.0;
        info!(id = r.id, pid = r.pid, uid = r.uid, name = %r.name, "client registered");
        self.clients.insert(r.id, r);
        Ok(())
    }
}

impl Handler<Deregister> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Deregister, _ctx: &mut Context<Self>) {
        if let Some(r) = self.clients.remove(&msg.id) {
            info!(id = r.id, pid = r.pid, name = %r.name, "client deregistered");
        }
    }
}

impl Handler<ListClients> for Registry {
    type Result = MessageResult<ListClients>;

    fn handle(&mut self, _: ListClients, _ctx: &mut Context<Self>) -> Self::Result {
        // A session that died without deregistering (it cannot: Drop deregisters too) would
        // show here as disconnected; drop it rather than list a ghost.
        self.clients.retain(|_, r| r.session.connected());
        MessageResult(
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
                .collect(),
        )
    }
}

impl Handler<SignalTargets> for Registry {
    type Result = MessageResult<SignalTargets>;

    fn handle(&mut self, _: SignalTargets, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.clients
                .values()
                .filter(|r| r.sigusr1)
                .filter_map(|r| r.pidfd.clone().map(|fd| (r.id, fd)))
                .collect(),
        )
    }
}

impl Handler<SayBye> for Registry {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, _: SayBye, _ctx: &mut Context<Self>) -> Self::Result {
        // Answer only once every session has queued its bye and started closing, so that the
        // supervisor's wait for closing writers covers all of them.
        let sends: Vec<_> = self
            .clients
            .values()
            .map(|r| r.session.send(ShutdownSession))
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(sends)
                .await
                .into_iter()
                .filter(Result::is_ok)
                .count()
        })
    }
}
