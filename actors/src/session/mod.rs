//! One `Session` actor per client connection.
//!
//! The session reads frames from its socket, checks the handshake, turns each request into
//! messages for the table actors, the registry or the signal broker, and queues the answers and
//! the table notifications in its [`outbox`]. It handles one request at a time (in arrival
//! order), which keeps a pipelined client's operations in order across tables; requests read
//! ahead wait in a queue of at most `max-inflight`, and reading pauses while it is full
//! ([`reading`]). Notifications never wait for requests. Anything malformed, and any panic in
//! the session's own code, ends this session only.
//!
//! - this file: the actor — handshake, request queue, access check, lifecycle;
//! - [`cmd`]: one file per request kind, each turning a request into its answer;
//! - [`reading`]: read-ahead limit and the pause for unread replies;
//! - [`outbox`]: the bounded queue of replies and notifications and its socket writer.

pub mod cmd;
pub mod outbox;
pub mod reading;

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use actix::prelude::*;
use rtm_proto::wire::{
    self, ClientMsg, Failure, Hello, Reply, Request, ServerMsg, Table, Tables, Welcome,
};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use crate::config::Limits;
use crate::connections::Slot;
use crate::counters::{Counters, Health};
use crate::registry::{Registry, ShutdownSession};
use crate::restart::catch_panic;
use crate::signal_broker::SignalBroker;
use crate::table::arp::ArpTable;
use crate::table::neigh::NeighTable;
use crate::table::route::RouteTable;
use crate::table::Notify;
use cmd::{Answer, LocalBoxFuture};
use outbox::{OutboxHandle, SessionStats};
use reading::{paced, Frame, Inflight};

/// The actors and shared state every session talks to.
#[derive(Clone)]
pub struct Services {
    pub route: Addr<RouteTable>,
    pub arp: Addr<ArpTable>,
    /// The kernel's neighbours (written by the kernel mirror only), with `--kernel import`.
    pub neigh: Option<Addr<NeighTable>>,
    pub registry: Addr<Registry>,
    pub broker: Addr<SignalBroker>,
    pub health: Arc<Health>,
    pub limits: Arc<Limits>,
    /// Shared, not copied: `Services` is cloned for every request.
    pub route_shm: Arc<str>,
    pub arp_shm: Arc<str>,
    /// The daemon's own uid: allowed to mutate, like root.
    pub daemon_uid: u32,
    /// Members of this group (primary or supplementary) may mutate too (`--admin-group`).
    pub admin_gid: Option<u32>,
    /// The dashboard, if `--http-listen` is given: sessions mint its tokens.
    pub dashboard: Option<Arc<crate::http::Dashboard>>,
    /// The listener, for fault injection (set once it has started).
    #[cfg(feature = "fault-injection")]
    pub listener: Arc<std::sync::OnceLock<Recipient<crate::faults::Inject>>>,
    /// The kernel import and export, for fault injection (set if they run).
    #[cfg(feature = "fault-injection")]
    pub kernel_import: Arc<std::sync::OnceLock<Recipient<crate::faults::Inject>>>,
    #[cfg(feature = "fault-injection")]
    pub kernel_export: Arc<std::sync::OnceLock<Recipient<crate::faults::Inject>>>,
}

impl Services {
    /// The actor of table `t`, for a message every table handles (subscriptions); refused for
    /// the neighbour table of a daemon that does not mirror the kernel.
    pub fn table<M>(&self, t: Table) -> Result<Recipient<M>, Failure>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        RouteTable: Handler<M>,
        ArpTable: Handler<M>,
        NeighTable: Handler<M>,
    {
        Ok(match t {
            Table::Route => self.route.clone().recipient(),
            Table::Arp => self.arp.clone().recipient(),
            Table::Neigh => self.neighbours()?.clone().recipient(),
        })
    }

    /// The neighbour table's actor, or why there is none.
    pub fn neighbours(&self) -> Result<&Addr<NeighTable>, Failure> {
        self.neigh.as_ref().ok_or_else(|| {
            Failure::Unsupported(
                "this rtmd has no neighbour table: it mirrors the kernel's neighbours only \
                 with --kernel import"
                    .into(),
            )
        })
    }
}

/// Who is on the other end, from the kernel (`SO_PEERCRED`, `SO_PEERPIDFD`).
#[derive(Debug, Clone)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups of the peer process when it connected (from `/proc`, confirmed
    /// through its pidfd); empty if they could not be read.
    pub groups: Vec<u32>,
    pub pidfd: Option<Arc<OwnedFd>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a table subscriber (sessions and the dashboard's event streams share them).
pub fn next_session_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Whether a peer may change the tables: root, rtmd's own uid, or a member of `--admin-group`.
/// Decided only by what the kernel says about the peer, never by what it claims.
pub fn may_change(svc: &Services, peer: &Peer) -> bool {
    peer.uid == 0
        || peer.uid == svc.daemon_uid
        || svc
            .admin_gid
            .is_some_and(|g| peer.gid == g || peer.groups.contains(&g))
}

pub struct Session {
    id: u64,
    peer: Peer,
    svc: Services,
    out: OutboxHandle,
    stats: Arc<SessionStats>,
    hello: Option<Hello>,
    subscribed: Option<Tables>,
    /// Requests waiting for their turn, in arrival order.
    pending: VecDeque<(u32, Request)>,
    /// A request is being answered.
    busy: bool,
    inflight: Arc<Inflight>,
    /// The client finished sending (EOF) or sent something malformed: answer what was read
    /// before it, then close.
    closing: bool,
    /// This connection's place under `--max-connections`, freed with the session.
    slot: Slot,
}

// ===== impl Session =====

impl Session {
    /// Starts a session actor for an accepted connection.
    pub fn start(
        stream: tokio::net::UnixStream,
        peer: Peer,
        svc: Services,
        slot: Slot,
    ) -> Addr<Session> {
        Session::create(move |ctx| {
            let limits = svc.limits.load();
            let (read, write) = stream.into_split();
            let stats = Arc::new(SessionStats::default());
            let id = next_session_id();
            let out = OutboxHandle::spawn(
                write,
                id,
                svc.limits.clone(),
                stats.clone(),
                svc.health.clone(),
            );
            let frames = FramedRead::new(read, wire::codec(limits.max_frame));
            let inflight = Arc::new(Inflight::default());
            ctx.add_stream(paced(
                frames,
                out.clone(),
                inflight.clone(),
                svc.limits.clone(),
            ));
            Counters::bump(&svc.health.counters.sessions_opened);
            Session {
                id,
                peer,
                svc,
                out,
                stats,
                hello: None,
                subscribed: None,
                pending: VecDeque::new(),
                busy: false,
                inflight,
                closing: false,
                slot,
            }
        })
    }

    fn send(&self, msg: &ServerMsg) {
        match wire::encode(msg) {
            Ok(body) => self.out.with(|o| o.push_reply(body)),
            Err(e) => warn!(session = self.id, "cannot encode a reply: {e}"),
        }
    }

    fn reply(&self, id: u32, answer: Answer) {
        let version = self.version();
        for result in answer {
            self.send(&reply_msg(&self.svc, version, id, result));
        }
    }

    /// The protocol version this session speaks.
    fn version(&self) -> u16 {
        self.hello
            .as_ref()
            .map_or(wire::PROTOCOL_VERSION, |h| h.version)
    }

    /// See [`may_change`].
    fn may_mutate(&self) -> bool {
        may_change(&self.svc, &self.peer)
    }

    /// Queues a request read from the socket and starts it if none is running.
    fn enqueue(&mut self, id: u32, req: Request, ctx: &mut Context<Self>) {
        self.inflight.add();
        self.pending.push_back((id, req));
        self.pump(ctx);
    }

    /// Starts the next queued request unless one is running.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while !self.busy {
            let Some((id, req)) = self.pending.pop_front() else {
                return;
            };
            self.on_request(id, req, ctx);
        }
    }

    /// The running request (if any) is answered: start the next one.
    fn finished_request(&mut self, ctx: &mut Context<Self>) {
        self.busy = false;
        self.inflight.finish();
        self.pump(ctx);
        self.close_when_answered(ctx);
    }

    /// Closes the session once every request read so far is answered.
    fn close_after_pending(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        self.close_when_answered(ctx);
    }

    fn close_when_answered(&mut self, ctx: &mut Context<Self>) {
        if self.closing && !self.busy && self.pending.is_empty() {
            ctx.stop();
        }
    }

    /// Runs `fut` as the session's current request and streams its answer into the outbox
    /// ([`outbox::stream_answer`]): a large answer waits for the client to read, frame by
    /// frame, and the next request starts only once this one is queued whole.
    fn run(&mut self, id: u32, fut: LocalBoxFuture<Answer>, ctx: &mut Context<Self>) {
        self.busy = true;
        let (out, svc, version) = (self.out.clone(), self.svc.clone(), self.version());
        let streamed = async move {
            let answer = fut.await;
            let frames = answer
                .into_iter()
                .map(|result| reply_msg(&svc, version, id, result));
            outbox::stream_answer(&out, frames).await;
        };
        ctx.spawn(streamed.into_actor(self).map(move |(), act, ctx| {
            act.finished_request(ctx);
        }));
    }

    /// Answers at once.
    fn answer_now(&mut self, id: u32, answer: Answer) {
        self.reply(id, answer);
        self.inflight.finish();
    }

    fn on_hello(&mut self, hello: Hello, ctx: &mut Context<Self>) {
        if !(wire::MIN_PROTOCOL_VERSION..=wire::PROTOCOL_VERSION).contains(&hello.version) {
            self.send(&ServerMsg::Refused(Failure::Version {
                client: hello.version,
                min: wire::MIN_PROTOCOL_VERSION,
                max: wire::PROTOCOL_VERSION,
            }));
            self.out.close();
            ctx.stop();
            return;
        }
        if hello.name.len() > wire::MAX_CLIENT_NAME {
            // Never kept, listed or logged whole.
            warn!(
                session = self.id,
                pid = self.peer.pid,
                bytes = hello.name.len(),
                "client name too long; refusing the connection"
            );
            self.send(&ServerMsg::Refused(Failure::Limit {
                what: format!("client name of {} bytes", hello.name.len()),
                limit: wire::MAX_CLIENT_NAME as u64,
            }));
            self.out.close();
            ctx.stop();
            return;
        }
        debug!(session = self.id, name = %hello.name, pid = self.peer.pid, "hello");
        if !hello.caps.sigusr1 && self.peer.pidfd.take().is_some() {
            // Only a client with a SIGUSR1 handler is ever signalled through its pidfd; any
            // other connection holds its socket alone.
            self.slot.released_pidfd();
        }
        self.send(&ServerMsg::Welcome(Welcome {
            version: hello.version.min(wire::PROTOCOL_VERSION),
            daemon: env!("CARGO_PKG_VERSION").to_string(),
            session: self.id,
            route_shm: self.svc.route_shm.to_string(),
            arp_shm: self.svc.arp_shm.to_string(),
        }));
        self.hello = Some(hello);
    }

    /// Checks what the request may do and starts it: most requests are a future over the
    /// other actors ([`cmd::answer`]); subscribing, leaving and a debug request aimed at this
    /// session change the session itself.
    fn on_request(&mut self, id: u32, req: Request, ctx: &mut Context<Self>) {
        Counters::bump(&self.svc.health.counters.requests);
        if req.is_mutation() && !self.may_mutate() {
            Counters::bump(&self.svc.health.counters.denied);
            warn!(
                session = self.id,
                uid = self.peer.uid,
                pid = self.peer.pid,
                request = req.name(),
                "mutation denied"
            );
            self.answer_now(
                id,
                vec![Err(Failure::PermissionDenied { uid: self.peer.uid })],
            );
            return;
        }
        if let Err(f) = cmd::change::within_limits(&self.svc, &req) {
            self.answer_now(id, vec![Err(f)]);
            return;
        }
        // A client never sends what its session's version lacks (the library refuses it
        // first); one that does would be answered in forms it cannot read.
        if req.since() > self.version() {
            let why = format!(
                "{} needs protocol version {}; this session runs at version {}",
                req.name(),
                req.since(),
                self.version()
            );
            self.answer_now(id, vec![Err(Failure::Unsupported(why))]);
            return;
        }
        match req {
            Request::Subscribe { tables } => self.subscribe(id, tables, ctx),
            Request::Deregister => self.deregister(id, ctx),
            Request::DashboardUrl => {
                let r = cmd::dashboard::url(&self.svc, &self.peer);
                self.answer_now(id, vec![r]);
            }
            Request::Debug(action) if cmd::debug::targets_session(&action) => {
                let r = self.debug_here(action);
                self.answer_now(id, vec![r]);
            }
            Request::Clients => {
                let (svc, version) = (self.svc.clone(), self.version());
                let fut = Box::pin(async move { cmd::clients::list(&svc, version).await });
                self.run(id, fut, ctx);
            }
            req => {
                let fut = cmd::answer(self.svc.clone(), req);
                self.run(id, fut, ctx);
            }
        }
    }

    /// A panic in this session's own code: it ends this session, and nothing else.
    fn failed(&mut self, why: &str, ctx: &mut Context<Self>) {
        Counters::bump(&self.svc.health.counters.session_failures);
        tracing::error!(
            session = self.id,
            pid = self.peer.pid,
            "session failed: {why}; closing it"
        );
        self.out.close();
        ctx.stop();
    }

    fn on_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        let msg = match frame
            .map_err(|e| e.to_string())
            .and_then(|b| wire::decode::<ClientMsg>(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(why) => {
                Counters::bump(&self.svc.health.counters.bad_frames);
                warn!(
                    session = self.id,
                    pid = self.peer.pid,
                    "closing session: {why}"
                );
                self.close_after_pending(ctx);
                return;
            }
        };
        match (msg, self.hello.is_some()) {
            (ClientMsg::Hello(h), false) => self.on_hello(h, ctx),
            (ClientMsg::Request { id, req }, true) => self.enqueue(id, req, ctx),
            (_, said_hello) => {
                Counters::bump(&self.svc.health.counters.bad_frames);
                warn!(
                    session = self.id,
                    said_hello, "closing session: message out of protocol order"
                );
                self.close_after_pending(ctx);
            }
        }
    }
}

/// One reply of an answer as a frame: counted if it is a failure, and with what an older
/// client cannot decode (failures, routes' origins) told in a form it can.
fn reply_msg(svc: &Services, version: u16, id: u32, result: Result<Reply, Failure>) -> ServerMsg {
    if result.is_err() {
        Counters::bump(&svc.health.counters.failed_requests);
    }
    let result = match result {
        Err(f) => Err(f.for_version(version)),
        Ok(Reply::Batch { applied, failures }) => Ok(Reply::Batch {
            applied,
            failures: failures
                .into_iter()
                .map(|b| wire::BatchFailure {
                    index: b.index,
                    failure: b.failure.for_version(version),
                })
                .collect(),
        }),
        Ok(reply) => reply.for_version(version),
    };
    ServerMsg::Reply { id, result }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let deadline = self.svc.limits.load().handshake_timeout;
        ctx.run_later(deadline, |act, ctx| {
            if act.hello.is_none() {
                Counters::bump(&act.svc.health.counters.handshake_timeouts);
                info!(
                    session = act.id,
                    pid = act.peer.pid,
                    "no hello before the deadline; closing"
                );
                ctx.stop();
            }
        });
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        self.leave();
        self.out.close();
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        Counters::bump(&self.svc.health.counters.sessions_closed);
        debug!(session = self.id, "session closed");
    }
}

/// A session that dies without stopping (a panic in one of its handlers) still leaves the
/// registry and the tables, and lets its writer finish, so its client sees the socket close.
impl Drop for Session {
    fn drop(&mut self) {
        self.leave();
        self.out.close();
    }
}

impl StreamHandler<Frame> for Session {
    fn handle(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        if let Err(why) = catch_panic(|| self.on_frame(frame, ctx)) {
            self.failed(&why, ctx);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The client half-closed: it still gets the answers to what it sent.
        self.close_after_pending(ctx);
    }
}

impl Handler<Notify> for Session {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        let r = catch_panic(|| self.out.with(|o| o.push_batch(&msg.0, &msg.1, msg.2)));
        if let Err(why) = r {
            self.failed(&why, ctx);
        }
    }
}

impl Handler<ShutdownSession> for Session {
    type Result = ();

    fn handle(&mut self, _: ShutdownSession, ctx: &mut Context<Self>) {
        let _ = catch_panic(|| self.out.with(|o| o.push_event(wire::Event::Bye)));
        self.leave();
        ctx.stop();
    }
}
