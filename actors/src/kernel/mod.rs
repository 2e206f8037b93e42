//! The kernel mirror (`rtmd --kernel import`): an actor that keeps rtm's route table equal to
//! the kernel's IPv4 unicast routes of one table, and rtm's neighbour table equal to the
//! kernel's IPv4 neighbours ([`neighbours`], a task of its own beside the routes'), over
//! rtnetlink.
//!
//! - [`netlink`]: the event sockets, the dumps, and what each kernel message means;
//! - [`reconcile`]: the key models (kernel: table, prefix, tos, priority; rtm: prefix; and
//!   neighbours by IP and link) and the differences they turn into table operations.
//!
//! At start (and after every restart) the actor opens the event socket first, then dumps the
//! links and the table's routes and reconciles, so no change between the two is missed. It then
//! follows the events. When the kernel drops events because the socket's buffer overflowed
//! (ENOBUFS) it dumps again and reconciles (mark and sweep). Its changes go to the route table
//! actor as an `Apply`, the message `rtmctl route …` requests become, so clients hear of them as
//! of any other change. A netlink failure stops this actor alone; its supervisor restarts it
//! (after [`RESTART_PAUSE`]) and the tables go on untouched.

pub mod config;
pub mod export;
pub mod neighbours;
pub mod netlink;
pub mod reconcile;

pub use config::{ExportConfig, KernelConfig};

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::FutureExt;
use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket};
use rtm_proto::wire::PanicPoint;
use rtm_proto::{Origin, Route};
use tracing::{debug, info, warn};

use crate::counters::{Counters, Health, KernelCounters};
use crate::faults::Faults;
use crate::restart::{failed, guarded, guarded_future, ActorKind, RestartLog, Restartable};
use crate::table::neigh::NeighTable;
use crate::table::route::RouteTable;
use crate::table::{Apply, Show, TableOp};
use netlink::{Change, Skip};
use reconcile::Mirror;

/// How long a restarted mirror waits before it talks to the kernel again, so that a kernel
/// link that keeps failing does not spend the daemon's restart budget at once.
pub const RESTART_PAUSE: Duration = Duration::from_secs(3);
/// Most event datagrams read before their changes go to the route table in one `Apply`.
const EVENTS_PER_APPLY: usize = 1024;
/// Most queued events thrown away before a re-dump (far more than any receive buffer holds).
const DRAIN_MAX: usize = 1 << 22;

/// The kernel mirror actor.
pub struct KernelMirror {
    config: KernelConfig,
    route: Addr<RouteTable>,
    /// The neighbour table, followed by a task of its own ([`neighbours`]).
    neigh: Addr<NeighTable>,
    health: Arc<Health>,
    restarted: bool,
    faults: Faults,
}

impl KernelMirror {
    pub fn new(
        config: KernelConfig,
        route: Addr<RouteTable>,
        neigh: Addr<NeighTable>,
        health: Arc<Health>,
    ) -> Self {
        KernelMirror {
            config,
            route,
            neigh,
            health,
            restarted: false,
            faults: Faults::default(),
        }
    }
}

impl Actor for KernelMirror {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (config, route) = (self.config.clone(), self.route.clone());
        let health = self.health.clone();
        run_task(
            ctx,
            self.restarted,
            "kernel link",
            follow(config.clone(), route, health.clone()),
        );
        // Beside it, on a socket of its own: a failure of either restarts both.
        let neigh = self.neigh.clone();
        run_task(
            ctx,
            self.restarted,
            "kernel neighbour link",
            neighbours::follow(config, neigh, health),
        );
    }
}

/// Runs a kernel actor's task on its context: after [`RESTART_PAUSE`] if the actor was
/// restarted; an error of the task (`what: …`) fails the actor for its supervisor, a panic too.
fn run_task<A>(
    ctx: &mut Context<A>,
    restarted: bool,
    what: &'static str,
    task: impl std::future::Future<Output = io::Result<()>> + 'static,
) where
    A: Restartable + Actor<Context = Context<A>>,
{
    let pause = restarted.then_some(RESTART_PAUSE);
    let fut = async move {
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
        task.await
    };
    ctx.spawn(guarded_future(fut).map(move |r, act, ctx| {
        // A panic was recorded and the actor stopped by the guard already.
        if let Ok(Err(e)) = r {
            failed(act, ctx, &format!("{what}: {e}"));
        }
    }));
}

impl Supervised for KernelMirror {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.restarted = true;
        guarded(self, ctx, |act, _| act.faults.trip(PanicPoint::Restart));
        info!("kernel mirror restarting: it dumps the kernel's routes again and reconciles");
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::faults::Inject> for KernelMirror {
    type Result = Result<(), rtm_proto::wire::Failure>;

    fn handle(&mut self, msg: crate::faults::Inject, ctx: &mut Context<Self>) -> Self::Result {
        crate::faults::inject(self, msg.0, ctx, false, |act| &mut act.faults)
    }
}

impl Restartable for KernelMirror {
    const KIND: ActorKind = ActorKind::Kernel;

    fn restarts(&self) -> &RestartLog {
        &self.health.restarts
    }
}

/// Dumps and reconciles, then follows the kernel's events; returns only on a netlink error.
/// What the mirror knows lives only in this task: each dump starts from the kernel's routes
/// and links it lists and from the kernel routes rtm's table holds, so a restart loses nothing.
async fn follow(
    config: KernelConfig,
    route: Addr<RouteTable>,
    health: Arc<Health>,
) -> io::Result<()> {
    let counters = &health.kernel;
    let mut mirror = Mirror::default();
    // Subscribed before the dump: a change made while the dump runs is heard afterwards.
    let events = netlink::event_socket(config.rcvbuf)?;
    // With export on too, rtm's own routes come back as kernel events: left alone.
    let own = config.own_proto();
    let mut replaced: netlink::LastObjectReplace = None;
    loop {
        let netlink::Dump {
            links,
            nexthops,
            routes,
            uncarried,
        } = netlink::dump(config.table).await?;
        let mut routes = netlink::Dump::in_order(routes, uncarried);
        routes.retain(|r| r.protocol() != own);
        let mut warned = log_uncarried(routes.iter().filter_map(|r| match r {
            netlink::Parsed::Uncarried(u) => Some(u),
            _ => None,
        }));
        // Read after the dump: a kernel route rtm holds that the dump lacks is swept.
        let in_rtm = route
            .send(Show::<Route> {
                key: None,
                origin: Some(Origin::Kernel),
            })
            .await
            .map_err(|e| io::Error::other(format!("route table unreachable: {e}")))?
            .map_err(|f| io::Error::other(format!("route table: {f}")))?;
        mirror.adopt(in_rtm);
        mirror.objects(nexthops);
        let ops = mirror.resync(links, routes);
        let changed = ops.len();
        submit(&route, &mut mirror, ops, counters).await?;
        Counters::bump(&counters.dumps);
        info!(
            table = config.table,
            kernel_routes = mirror.kernel_routes(),
            nexthop_objects = mirror.object_count(),
            mirrored = mirror.installed(),
            changed,
            "kernel routes dumped and reconciled"
        );
        loop {
            let mut changes = Vec::new();
            let overflow = read_batch(&events, "route", |buf| {
                let (heard, bad) = netlink::events(buf, config.table, own, &mut replaced);
                changes.extend(heard);
                bad
            })
            .await?;
            for c in &changes {
                if let Change::UncarriedAdded(u, _) | Change::UncarriedRemoved(u) = c {
                    log_uncarried_event(u, &mut warned);
                }
            }
            let ops = mirror.apply(changes);
            submit(&route, &mut mirror, ops, counters).await?;
            if overflow {
                Counters::bump(&counters.overflows);
                warn!("the kernel dropped route events (ENOBUFS); dumping again to reconcile");
                drain(&events)?;
                break;
            }
        }
    }
}

/// Reads the datagrams queued on `events` (waiting for the first, then up to
/// [`EVENTS_PER_APPLY`] already there, so that they go to the table in one `Apply`), handing
/// each to `each`, which returns how many of its messages it could not read. Returns whether
/// the mirror must dump again: the kernel dropped events (`ENOBUFS`) or one did not decode.
pub(crate) async fn read_batch(
    events: &TokioSocket,
    what: &str,
    mut each: impl FnMut(&[u8]) -> usize,
) -> io::Result<bool> {
    let first = events.recv_from_full().await;
    let mut datagrams = vec![first];
    while datagrams.len() < EVENTS_PER_APPLY && datagrams.last().is_some_and(Result::is_ok) {
        match events.recv_from_full().now_or_never() {
            Some(r) => datagrams.push(r),
            None => break,
        }
    }
    let mut overflow = false;
    for d in datagrams {
        match d {
            Ok((buf, _)) => {
                let bad = each(&buf);
                if bad > 0 {
                    warn!(bad, "undecodable kernel {what} event; re-dumping");
                    overflow = true;
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => overflow = true,
            Err(e) => return Err(e),
        }
    }
    Ok(overflow)
}

/// Logs what a dump found that the mirror does not carry: per reason worth a warning, one line
/// with the count and a first example (a table with many such routes, say an FRR using
/// next-hop objects, gets a few lines per dump, not one per route). Returns those reasons, so
/// that the events after the dump warn only of others.
fn log_uncarried<'a>(uncarried: impl Iterator<Item = &'a netlink::Uncarried>) -> HashSet<Skip> {
    let mut by_why: BTreeMap<&'static str, (usize, &netlink::Uncarried)> = BTreeMap::new();
    for u in uncarried {
        if u.why.worth_a_warning() {
            by_why.entry(u.why.why()).or_insert((0, u)).0 += 1;
        } else {
            debug!(prefix = %u.dst, metric = u.priority, "kernel route not mirrored: {}", u.why.why());
        }
    }
    for (why, (count, first)) in &by_why {
        warn!(
            count,
            first = %first.dst,
            "kernel routes not mirrored: {why}"
        );
    }
    by_why.values().map(|(_, u)| u.why).collect()
}

/// Logs a route event the mirror does not carry: at warning the first time for its reason
/// since the last dump (whose summary counted those already there), then at debug.
fn log_uncarried_event(u: &netlink::Uncarried, warned: &mut HashSet<Skip>) {
    if u.why.worth_a_warning() && warned.insert(u.why) {
        warn!(
            prefix = %u.dst,
            metric = u.priority,
            "kernel route not mirrored: {}; more like it are logged at debug until the next dump",
            u.why.why()
        );
    } else {
        debug!(prefix = %u.dst, metric = u.priority, "kernel route not mirrored: {}", u.why.why());
    }
}

/// Throws away every event already queued: the dump that follows covers them. The kernel
/// reports an overflow only once until the queue has been emptied, so a re-dump on a socket
/// still holding stale events could miss later drops unheard.
pub(crate) fn drain(events: &TokioSocket) -> io::Result<()> {
    for _ in 0..DRAIN_MAX {
        // Straight on the non-blocking socket, not through the runtime's readiness (which
        // may not know of what arrived since it was last polled): only a read that finds
        // the queue empty ends the kernel's congestion, and until then it drops every event
        // without a word.
        match events.socket_ref().recv_from_full() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than {DRAIN_MAX} kernel events queued while draining"
    )))
}

/// Sends the mirror's operations to the route table as one `Apply` (each applied on its own:
/// a refused one does not hold back the others).
async fn submit(
    route: &Addr<RouteTable>,
    mirror: &mut Mirror,
    ops: Vec<TableOp<Route>>,
    counters: &KernelCounters,
) -> io::Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let kept = ops.clone();
    let outcome = route
        .send(Apply::new(ops, true, true))
        .await
        .map_err(|e| io::Error::other(format!("route table unreachable: {e}")))?;
    let mut refused = 0;
    let failed = outcome.failures.len() as u64;
    for (i, why) in outcome.failures {
        let op = &kept[i as usize];
        // A kernel route rtm cannot take (full table, …) or one already gone from rtm.
        if !matches!(op, TableOp::Del(_)) {
            warn!(?op, "kernel route not mirrored: {why}");
            refused += 1;
        }
        mirror.refused(op);
    }
    Counters::bump_by(&counters.refused, refused);
    Counters::bump_by(&counters.changes, kept.len() as u64 - failed);
    Ok(())
}
