//! One `Session` actor per client connection.
//!
//! The session reads frames from its socket, checks the handshake, turns each request into
//! messages for the table actors, the registry or the signal broker, and queues the answers and
//! the table notifications in its [`Outbox`](crate::outbox). It handles one request at a time
//! (in arrival order), which keeps a pipelined client's operations in order across tables;
//! requests read ahead wait in a queue of at most `max-inflight`, and reading pauses while it
//! is full. Notifications never wait for requests. Anything malformed, and any panic in the
//! session's own code, ends this session only.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::BytesMut;
use rtm_proto::wire::{
    self, BatchFailure, ClientMsg, Failure, Hello, Op, Reply, Request, ServerMsg, Status, Table,
    Tables, Welcome,
};
use rtm_proto::{ArpEntry, Route};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use crate::arp_table::ArpTable;
use crate::config::Limits;
use crate::health::{catch_panic, Counters, Health};
use crate::outbox::{OutboxHandle, SessionStats, REPLY_BACKLOG_HIGH, REPLY_BACKLOG_LOW};
use crate::registry::{self, Registration, Registry};
use crate::route_table::{Lookup, RouteTable};
use crate::signal_broker::{SignalBroker, SignalClients};
use crate::table::{Apply, ApplyOutcome, Notify, Show, Size, Subscribe, TableOp, Unsubscribe};
use futures_util::{Stream, StreamExt};
use std::time::Duration;

/// The actors and shared state every session talks to.
#[derive(Clone)]
pub struct Services {
    pub route: Addr<RouteTable>,
    pub arp: Addr<ArpTable>,
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
    /// The listener, for fault injection (set once it has started).
    pub listener: Arc<std::sync::OnceLock<Addr<crate::listener::Listener>>>,
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

/// Requests read but not yet answered, shared with the read loop so it can pause.
#[derive(Debug, Default)]
pub struct Inflight {
    n: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Inflight {
    fn add(&self) {
        self.n.fetch_add(1, Relaxed);
    }

    fn finish(&self) {
        self.n.fetch_sub(1, Relaxed);
        self.done.notify_one();
    }

    /// Waits until fewer than `cap` requests are in flight.
    async fn below(&self, cap: usize) {
        loop {
            let wake = self.done.notified();
            if self.n.load(Relaxed) < cap {
                return;
            }
            wake.await;
        }
    }
}

/// Clean stop: send `Bye`, flush, close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownSession;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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
}

type Frame = Result<BytesMut, std::io::Error>;

/// The answer to one request: usually one reply, several for chunked `show`s.
type Answer = Vec<Result<Reply, Failure>>;

// ===== impl Session =====

impl Session {
    /// Starts a session actor for an accepted connection.
    pub fn start(stream: tokio::net::UnixStream, peer: Peer, svc: Services) -> Addr<Session> {
        Session::create(move |ctx| {
            let limits = svc.limits.load();
            let (read, write) = stream.into_split();
            let stats = Arc::new(SessionStats::default());
            let out =
                OutboxHandle::spawn(write, svc.limits.clone(), stats.clone(), svc.health.clone());
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
                id: NEXT_ID.fetch_add(1, Relaxed),
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
        for result in answer {
            if result.is_err() {
                Counters::bump(&self.svc.health.counters.failed_requests);
            }
            self.send(&ServerMsg::Reply { id, result });
        }
    }

    /// Decided only by what the kernel says about the peer, never by what it claims.
    fn may_mutate(&self) -> bool {
        self.peer.uid == 0
            || self.peer.uid == self.svc.daemon_uid
            || self
                .svc
                .admin_gid
                .is_some_and(|g| self.peer.gid == g || self.peer.groups.contains(&g))
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

    /// Runs `fut` as the session's current request and replies with its answer.
    fn run(&mut self, id: u32, fut: LocalBoxFuture<Answer>, ctx: &mut Context<Self>) {
        self.busy = true;
        ctx.spawn(fut.into_actor(self).map(move |answer, act, ctx| {
            act.reply(id, answer);
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
        debug!(session = self.id, name = %hello.name, pid = self.peer.pid, "hello");
        self.send(&ServerMsg::Welcome(Welcome {
            version: hello.version.min(wire::PROTOCOL_VERSION),
            daemon: env!("CARGO_PKG_VERSION").to_string(),
            session: self.id,
            route_shm: self.svc.route_shm.to_string(),
            arp_shm: self.svc.arp_shm.to_string(),
        }));
        self.hello = Some(hello);
    }

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
        if let Request::Batch { ops, .. } = &req {
            let max = self.svc.limits.load().max_batch;
            if ops.len() > max {
                self.answer_now(
                    id,
                    vec![Err(Failure::Limit {
                        what: format!("batch of {} operations in one request", ops.len()),
                        limit: max as u64,
                    })],
                );
                return;
            }
        }
        let svc = self.svc.clone();
        let fut: LocalBoxFuture<Answer> = match req {
            Request::Apply(op) => Box::pin(async move {
                let (_, failures, seq) = run_ops(&svc, vec![op], false).await;
                vec![match failures.into_iter().next() {
                    Some(f) => Err(f.failure),
                    None => Ok(Reply::Done { seq }),
                }]
            }),
            Request::Batch { ops, force } => Box::pin(async move {
                let (applied, failures, _) = run_ops(&svc, ops, force).await;
                vec![Ok(Reply::Batch { applied, failures })]
            }),
            Request::RouteShow(key) => Box::pin(async move {
                match svc.route.send(Show::<Route> { key }).await {
                    Ok(Ok(all)) => chunks(all, |routes, more| Reply::Routes { routes, more }),
                    Ok(Err(f)) => vec![Err(f)],
                    Err(e) => vec![Err(unavailable(Table::Route, e))],
                }
            }),
            Request::ArpShow(key) => Box::pin(async move {
                match svc.arp.send(Show::<ArpEntry> { key }).await {
                    Ok(Ok(all)) => chunks(all, |entries, more| Reply::Arps { entries, more }),
                    Ok(Err(f)) => vec![Err(f)],
                    Err(e) => vec![Err(unavailable(Table::Arp, e))],
                }
            }),
            Request::RouteGet(addr) => Box::pin(async move { vec![route_get(&svc, addr).await] }),
            Request::ArpGet(mac) => Box::pin(async move {
                vec![
                    match svc.arp.send(Show::<ArpEntry> { key: Some(mac) }).await {
                        Ok(Ok(mut v)) if !v.is_empty() => Ok(Reply::Arp(v.remove(0))),
                        Ok(Err(f)) => Err(f),
                        Ok(Ok(_)) => Err(Failure::NotFound {
                            table: Table::Arp,
                            key: mac.to_string(),
                        }),
                        Err(e) => Err(unavailable(Table::Arp, e)),
                    },
                ]
            }),
            Request::Clients => Box::pin(async move {
                vec![match svc.registry.send(registry::ListClients).await {
                    Ok(list) => Ok(Reply::Clients(list)),
                    Err(e) => Err(Failure::Internal(format!("registry unavailable: {e}"))),
                }]
            }),
            Request::Status => Box::pin(async move { vec![status(&svc).await] }),
            Request::Subscribe { tables } => {
                self.subscribe(id, tables, ctx);
                return;
            }
            Request::Deregister => {
                self.leave();
                self.answer_now(id, vec![Ok(Reply::Deregistered)]);
                // Nothing read after it is answered.
                self.pending.clear();
                self.closing = true;
                self.out.close();
                ctx.stop();
                return;
            }
            Request::Debug(action) => {
                if action_targets_session(&action) {
                    let r = self.debug_here(action);
                    self.answer_now(id, vec![r]);
                    return;
                }
                Box::pin(async move { vec![debug_action(&svc, action).await] })
            }
        };
        self.run(id, fut, ctx);
    }

    fn subscribe(&mut self, id: u32, tables: Tables, ctx: &mut Context<Self>) {
        if self.subscribed.is_some() {
            self.answer_now(
                id,
                vec![Err(Failure::Invalid("already subscribed".to_string()))],
            );
            return;
        }
        let hello = self.hello.clone().unwrap_or_else(|| Hello {
            version: wire::PROTOCOL_VERSION,
            name: String::new(),
            caps: Default::default(),
        });
        let registration = Registration {
            id: self.id,
            pid: self.peer.pid,
            uid: self.peer.uid,
            name: hello.name,
            connected_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            sigusr1: hello.caps.sigusr1,
            pidfd: self.peer.pidfd.clone(),
            stats: self.stats.clone(),
            session: ctx.address(),
        };
        let svc = self.svc.clone();
        let me: Recipient<Notify> = ctx.address().recipient();
        let session = self.id;
        let fut = async move {
            svc.registry
                .send(registry::Register(registration))
                .await
                .map_err(|e| Failure::Internal(format!("registry unavailable: {e}")))??;
            for t in tables.iter() {
                let sub = Subscribe {
                    session,
                    to: me.clone(),
                };
                let r = match t {
                    Table::Route => svc.route.send(sub).await,
                    Table::Arp => svc.arp.send(sub).await,
                };
                r.map_err(|e| unavailable(t, e))??;
            }
            Ok(())
        };
        self.busy = true;
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            match r {
                Ok(()) => {
                    act.subscribed = Some(tables);
                    act.reply(id, vec![Ok(Reply::Subscribed)]);
                }
                Err(f) => {
                    act.leave();
                    act.reply(id, vec![Err(f)]);
                }
            }
            act.finished_request(ctx);
        }));
    }

    /// A debug request aimed at this session itself.
    #[cfg(feature = "fault-injection")]
    fn debug_here(&mut self, action: wire::DebugAction) -> Result<Reply, Failure> {
        match action {
            wire::DebugAction::Stall { ms, .. } => {
                crate::faults::stall(ms);
                Ok(Reply::Done { seq: 0 })
            }
            wire::DebugAction::Panic { .. } => {
                panic!("injected panic in session {} (handler)", self.id)
            }
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn debug_here(&mut self, action: wire::DebugAction) -> Result<Reply, Failure> {
        Err(no_hooks(action))
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

    /// Leaves the registry and every table; safe to call more than once.
    fn leave(&mut self) {
        if let Some(tables) = self.subscribed.take() {
            for t in tables.iter() {
                let msg = Unsubscribe { session: self.id };
                match t {
                    Table::Route => self.svc.route.do_send(msg),
                    Table::Arp => self.svc.arp.do_send(msg),
                }
            }
        }
        // Also when not (yet) registered: a registration may have succeeded while the
        // subscription failed half way. Deregistering an unknown id does nothing.
        self.svc
            .registry
            .do_send(registry::Deregister { id: self.id });
    }
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

impl Session {
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

impl Handler<Notify> for Session {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        let r = catch_panic(|| {
            self.out.with(|o| {
                for ev in msg.0.iter() {
                    o.push_event(*ev);
                }
            })
        });
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

/// How long a client may leave its replies unread before the session gives up on it.
const REPLY_STALL: Duration = Duration::from_secs(30);

/// The request stream, paused while the client leaves too many replies unread.
///
/// A client that sends requests and never reads the answers would otherwise make its reply
/// queue grow without bound. Only reading stops: notifications keep flowing into the outbox,
/// where they stay bounded (they collapse into a resync). A client that stays stalled past
/// [`REPLY_STALL`] gets its session closed.
fn paced<S>(
    frames: S,
    out: OutboxHandle,
    inflight: Arc<Inflight>,
    limits: Arc<Limits>,
) -> impl Stream<Item = Frame>
where
    S: Stream<Item = Frame> + Unpin + 'static,
{
    let state = Some((frames, out, inflight, limits));
    futures_util::stream::unfold(state, |state| async move {
        let (mut frames, out, inflight, limits) = state?;
        // At most `max-inflight` requests read ahead of their answers.
        inflight.below(limits.load().max_inflight).await;
        if out.reply_backlog() > REPLY_BACKLOG_HIGH {
            let drained = out.clone().drained_to(REPLY_BACKLOG_LOW);
            if tokio::time::timeout(REPLY_STALL, drained).await.is_err() {
                let why = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("client left its replies unread for {REPLY_STALL:?}"),
                );
                return Some((Err(why), None));
            }
        }
        let frame = frames.next().await?;
        Some((frame, Some((frames, out, inflight, limits))))
    })
}

// ===== request bodies =====

type LocalBoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T>>>;

fn unavailable(t: Table, e: MailboxError) -> Failure {
    Failure::Internal(format!("{t} table unavailable: {e}"))
}

/// Splits a `show` answer into frames of at most [`wire::SHOW_CHUNK`] entries.
fn chunks<T>(all: Vec<T>, make: impl Fn(Vec<T>, bool) -> Reply) -> Answer {
    if all.is_empty() {
        return vec![Ok(make(Vec::new(), false))];
    }
    let n = all.len().div_ceil(wire::SHOW_CHUNK);
    let mut it = all.into_iter();
    (0..n)
        .map(|i| {
            Ok(make(
                it.by_ref().take(wire::SHOW_CHUNK).collect(),
                i + 1 < n,
            ))
        })
        .collect()
}

async fn route_get(svc: &Services, addr: Ipv4Addr) -> Result<Reply, Failure> {
    match svc.route.send(Lookup(addr)).await {
        Ok(Ok(Some(r))) => Ok(Reply::Route(r)),
        Ok(Ok(None)) => Err(Failure::NotFound {
            table: Table::Route,
            key: format!("matching {addr}"),
        }),
        Ok(Err(f)) => Err(f),
        Err(e) => Err(unavailable(Table::Route, e)),
    }
}

async fn status(svc: &Services) -> Result<Reply, Failure> {
    let routes = svc
        .route
        .send(Size)
        .await
        .map_err(|e| unavailable(Table::Route, e))??;
    let arps = svc
        .arp
        .send(Size)
        .await
        .map_err(|e| unavailable(Table::Arp, e))??;
    let clients = svc
        .registry
        .send(registry::ListClients)
        .await
        .map_err(|e| Failure::Internal(format!("registry unavailable: {e}")))?
        .len() as u64;
    Ok(Reply::Status(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: svc.health.started.elapsed().as_secs(),
        routes: routes.len,
        arps: arps.len,
        route_capacity: routes.capacity,
        arp_capacity: arps.capacity,
        clients,
        restarts: svc.health.restarts(),
        counters: svc.health.counters.snapshot(),
        last_failure: svc.health.last_failure(),
    }))
}

fn action_targets_session(action: &wire::DebugAction) -> bool {
    let (wire::DebugAction::Panic { target, .. } | wire::DebugAction::Stall { target, .. }) =
        action;
    *target == wire::DebugTarget::Session
}

/// The answer of a daemon built without the fault-injection hooks.
#[cfg_attr(feature = "fault-injection", allow(dead_code))]
fn no_hooks(action: wire::DebugAction) -> Failure {
    Failure::Unsupported(format!(
        "debug request {action:?}: this rtmd was built without the fault-injection feature"
    ))
}

/// Hands a debug request to the actor it targets.
#[cfg(feature = "fault-injection")]
async fn debug_action(svc: &Services, action: wire::DebugAction) -> Result<Reply, Failure> {
    use crate::faults::Inject;
    use wire::DebugTarget as T;
    let (wire::DebugAction::Panic { target, .. } | wire::DebugAction::Stall { target, .. }) =
        action;
    let lost = |e: MailboxError| Failure::Internal(format!("{} actor: {e}", target.name()));
    let r = match target {
        T::Route => svc.route.send(Inject(action)).await.map_err(lost)?,
        T::Arp => svc.arp.send(Inject(action)).await.map_err(lost)?,
        T::Broker => svc.broker.send(Inject(action)).await.map_err(lost)?,
        T::Listener => match svc.listener.get() {
            Some(l) => l.send(Inject(action)).await.map_err(lost)?,
            None => Err(Failure::Internal("the listener has not started".into())),
        },
        T::Session => unreachable!("handled by the session itself"),
    };
    r.map(|()| Reply::Done { seq: 0 })
}

#[cfg(not(feature = "fault-injection"))]
async fn debug_action(_svc: &Services, action: wire::DebugAction) -> Result<Reply, Failure> {
    Err(no_hooks(action))
}

/// A run of operations for one table, or a flush, with each op's index in the request.
enum Step {
    Route(Vec<(u32, TableOp<Route>)>),
    Arp(Vec<(u32, TableOp<ArpEntry>)>),
    Flush(u32, Tables),
}

/// Groups consecutive operations on the same table so each group is one message.
fn plan(ops: Vec<Op>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let i = i as u32;
        match op {
            Op::Flush(t) => steps.push(Step::Flush(i, t)),
            Op::RouteAdd(r) => push_route(&mut steps, i, TableOp::Add(r)),
            Op::RouteChange(r) => push_route(&mut steps, i, TableOp::Change(r)),
            Op::RouteReplace(r) => push_route(&mut steps, i, TableOp::Replace(r)),
            Op::RouteDel(p) => push_route(&mut steps, i, TableOp::Del(p)),
            Op::ArpAdd(a) => push_arp(&mut steps, i, TableOp::Add(a)),
            Op::ArpChange(a) => push_arp(&mut steps, i, TableOp::Change(a)),
            Op::ArpReplace(a) => push_arp(&mut steps, i, TableOp::Replace(a)),
            Op::ArpDel(m) => push_arp(&mut steps, i, TableOp::Del(m)),
        }
    }
    steps
}

fn push_route(steps: &mut Vec<Step>, i: u32, op: TableOp<Route>) {
    match steps.last_mut() {
        Some(Step::Route(v)) => v.push((i, op)),
        _ => steps.push(Step::Route(vec![(i, op)])),
    }
}

fn push_arp(steps: &mut Vec<Step>, i: u32, op: TableOp<ArpEntry>) {
    match steps.last_mut() {
        Some(Step::Arp(v)) => v.push((i, op)),
        _ => steps.push(Step::Arp(vec![(i, op)])),
    }
}

/// Maps a table's answer for a group back to the request's op indices.
fn absorb(
    indices: &[u32],
    outcome: Result<ApplyOutcome, Failure>,
    applied: &mut u32,
    failures: &mut Vec<BatchFailure>,
    last_seq: &mut u64,
) {
    match outcome {
        Ok(o) => {
            *applied += o.applied;
            if o.last_seq != 0 {
                *last_seq = o.last_seq;
            }
            failures.extend(o.failures.into_iter().map(|(k, failure)| BatchFailure {
                index: indices[k as usize],
                failure,
            }));
        }
        Err(failure) => failures.push(BatchFailure {
            index: indices[0],
            failure,
        }),
    }
}

/// Applies operations in order; without `force` stops at the first failure.
/// Returns (applied, failures, sequence number of the last applied change).
async fn run_ops(svc: &Services, ops: Vec<Op>, force: bool) -> (u32, Vec<BatchFailure>, u64) {
    let (mut applied, mut failures, mut last_seq) = (0u32, Vec::new(), 0u64);
    for step in plan(ops) {
        match step {
            Step::Route(group) => {
                let (idx, ops): (Vec<u32>, Vec<_>) = group.into_iter().unzip();
                let r = svc.route.send(Apply { ops, force }).await;
                let r = r.map_err(|e| unavailable(Table::Route, e));
                absorb(&idx, r, &mut applied, &mut failures, &mut last_seq);
            }
            Step::Arp(group) => {
                let (idx, ops): (Vec<u32>, Vec<_>) = group.into_iter().unzip();
                let r = svc.arp.send(Apply { ops, force }).await;
                let r = r.map_err(|e| unavailable(Table::Arp, e));
                absorb(&idx, r, &mut applied, &mut failures, &mut last_seq);
            }
            Step::Flush(i, tables) => match flush(svc, tables).await {
                Ok(seq) => {
                    applied += 1;
                    last_seq = seq;
                }
                Err(failure) => failures.push(BatchFailure { index: i, failure }),
            },
        }
        if !force && !failures.is_empty() {
            break;
        }
    }
    (applied, failures, last_seq)
}

/// Empties the tables, then — once all of them are empty in shared memory — signals every
/// client that handles SIGUSR1. Returns the first flushed table's sequence number. If a table
/// cannot be flushed, the clients are still signalled for the ones that were.
async fn flush(svc: &Services, tables: Tables) -> Result<u64, Failure> {
    let mut first_seq = None;
    let mut failure = None;
    for t in tables.iter() {
        let outcome = match t {
            Table::Route => svc
                .route
                .send(Apply::<Route> {
                    ops: vec![TableOp::Flush],
                    force: false,
                })
                .await
                .map_err(|e| unavailable(t, e)),
            Table::Arp => svc
                .arp
                .send(Apply::<ArpEntry> {
                    ops: vec![TableOp::Flush],
                    force: false,
                })
                .await
                .map_err(|e| unavailable(t, e)),
        };
        match outcome.map(|o| (o.last_seq, o.failures.into_iter().next())) {
            Ok((seq, None)) => {
                first_seq.get_or_insert(seq);
            }
            Ok((_, Some((_, f)))) | Err(f) => {
                failure = Some(f);
                break;
            }
        }
    }
    if first_seq.is_some() {
        Counters::bump(&svc.health.counters.flushes);
        signal_flush(svc).await?;
    }
    match (failure, first_seq) {
        (Some(f), _) => Err(f),
        (None, seq) => Ok(seq.unwrap_or_default()),
    }
}

/// SIGUSR1 to every registered client that announced a handler.
async fn signal_flush(svc: &Services) -> Result<(), Failure> {
    let targets = svc
        .registry
        .send(registry::SignalTargets)
        .await
        .map_err(|e| Failure::Internal(format!("registry unavailable: {e}")))?;
    if !targets.is_empty() {
        svc.broker
            .send(SignalClients(targets))
            .await
            .map_err(|e| Failure::Internal(format!("signal broker unavailable: {e}")))?;
    }
    Ok(())
}
