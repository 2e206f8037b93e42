//! The kernel mirror (`rtmd --kernel import`): an actor that keeps rtm's route table equal to
//! the kernel's IPv4 unicast routes of one table, over rtnetlink.
//!
//! - [`netlink`]: the event socket, the dumps, and what each kernel message means;
//! - [`reconcile`]: the key model (kernel: table, prefix, tos, priority; rtm: prefix) and the
//!   differences it turns into table operations.
//!
//! At start (and after every restart) the actor opens the event socket first, then dumps the
//! links and the table's routes and reconciles, so no change between the two is missed. It then
//! follows the events. When the kernel drops events because the socket's buffer overflowed
//! (ENOBUFS) it dumps again and reconciles (mark and sweep). Its changes go to the route table
//! actor as an `Apply`, the message `rtmctl route …` requests become, so clients hear of them as
//! of any other change. A netlink failure stops this actor alone; its supervisor restarts it
//! (after [`RESTART_PAUSE`]) and the tables go on untouched.

pub mod netlink;
pub mod reconcile;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::FutureExt;
use netlink_packet_core::NetlinkPayload;
use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket};
use rtm_proto::Route;
use tracing::{info, warn};

use crate::config::{ConfigError, Settings};
use crate::counters::Health;
use crate::restart::{failed, guarded_future, ActorKind, RestartLog, Restartable};
use crate::table::route::RouteTable;
use crate::table::{Apply, TableOp};
use reconcile::Mirror;

/// The kernel's main routing table.
pub const MAIN_TABLE: u32 = 254;
/// Receive buffer asked for the event socket unless `--kernel-rcvbuf` says otherwise.
pub const DEFAULT_RCVBUF: usize = 4 << 20;
/// How long a restarted mirror waits before it talks to the kernel again, so that a kernel
/// link that keeps failing does not spend the daemon's restart budget at once.
pub const RESTART_PAUSE: Duration = Duration::from_secs(3);
/// Most event datagrams read before their changes go to the route table in one `Apply`.
const EVENTS_PER_APPLY: usize = 1024;
/// Most queued events thrown away before a re-dump (far more than any receive buffer holds).
const DRAIN_MAX: usize = 1 << 22;

/// `--kernel import`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The kernel routing table mirrored (`--kernel-table`).
    pub table: u32,
    /// Receive buffer of the event socket (`--kernel-rcvbuf`).
    pub rcvbuf: usize,
}

impl KernelConfig {
    /// `None` unless `--kernel import`; the other kernel settings need it.
    pub fn resolve(s: &Settings) -> Result<Option<KernelConfig>, ConfigError> {
        match s.kernel.as_deref() {
            Some("import") => {}
            Some("off") | None => {
                for (key, set) in [
                    ("kernel-table", s.kernel_table.is_some()),
                    ("kernel-rcvbuf", s.kernel_rcvbuf.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::Value {
                            key,
                            value: match key {
                                "kernel-table" => format!("{:?}", s.kernel_table),
                                _ => format!("{:?}", s.kernel_rcvbuf),
                            }
                            .trim_start_matches("Some(")
                            .trim_end_matches(')')
                            .to_string(),
                            why: "needs kernel = \"import\"".into(),
                        });
                    }
                }
                return Ok(None);
            }
            Some(other) => {
                return Err(ConfigError::Value {
                    key: "kernel",
                    value: other.to_string(),
                    why: "expected \"import\" or \"off\"".into(),
                })
            }
        }
        let table = s.kernel_table.unwrap_or(MAIN_TABLE);
        if table == 0 {
            return Err(ConfigError::Value {
                key: "kernel-table",
                value: "0".into(),
                why: "table 0 is not a routing table (1..=4294967295; main is 254)".into(),
            });
        }
        let rcvbuf = s.kernel_rcvbuf.unwrap_or(DEFAULT_RCVBUF);
        if rcvbuf == 0 {
            return Err(ConfigError::Value {
                key: "kernel-rcvbuf",
                value: "0".into(),
                why: "must be at least 1".into(),
            });
        }
        Ok(Some(KernelConfig { table, rcvbuf }))
    }
}

/// The kernel mirror actor.
pub struct KernelMirror {
    config: KernelConfig,
    route: Addr<RouteTable>,
    health: Arc<Health>,
    /// Kept across restarts: what the mirror has put into rtm is what the next dump is
    /// reconciled against.
    mirror: Arc<Mutex<Mirror>>,
    restarted: bool,
}

impl KernelMirror {
    pub fn new(config: KernelConfig, route: Addr<RouteTable>, health: Arc<Health>) -> Self {
        KernelMirror {
            config,
            route,
            health,
            mirror: Arc::default(),
            restarted: false,
        }
    }
}

impl Actor for KernelMirror {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (config, route, mirror) =
            (self.config.clone(), self.route.clone(), self.mirror.clone());
        let pause = self.restarted.then_some(RESTART_PAUSE);
        let fut = async move {
            if let Some(p) = pause {
                tokio::time::sleep(p).await;
            }
            follow(config, route, mirror).await
        };
        ctx.spawn(guarded_future(fut).map(|r, act, ctx| {
            // A panic was recorded and the actor stopped by the guard already.
            if let Ok(Err(e)) = r {
                failed(act, ctx, &format!("kernel link: {e}"));
            }
        }));
    }
}

impl Supervised for KernelMirror {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarted = true;
        info!("kernel mirror restarting: it dumps the kernel's routes again and reconciles");
    }
}

impl Restartable for KernelMirror {
    const KIND: ActorKind = ActorKind::Kernel;

    fn restarts(&self) -> &RestartLog {
        &self.health.restarts
    }
}

fn lock(m: &Mutex<Mirror>) -> std::sync::MutexGuard<'_, Mirror> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Dumps and reconciles, then follows the kernel's events; returns only on a netlink error.
async fn follow(
    config: KernelConfig,
    route: Addr<RouteTable>,
    mirror: Arc<Mutex<Mirror>>,
) -> io::Result<()> {
    // Subscribed before the dump: a change made while the dump runs is heard afterwards.
    let events = netlink::event_socket(config.rcvbuf)?;
    loop {
        let (links, routes) = netlink::dump(config.table).await?;
        let ops = lock(&mirror).resync(links, routes);
        let changed = ops.len();
        submit(&route, &mirror, ops).await?;
        {
            let m = lock(&mirror);
            info!(
                table = config.table,
                kernel_routes = m.kernel_routes(),
                mirrored = m.installed(),
                changed,
                "kernel routes dumped and reconciled"
            );
        }
        loop {
            let first = events.recv_from_full().await;
            let mut datagrams = vec![first];
            // Whatever else is already queued goes into the same Apply.
            while datagrams.len() < EVENTS_PER_APPLY && datagrams.last().is_some_and(Result::is_ok)
            {
                match events.recv_from_full().now_or_never() {
                    Some(r) => datagrams.push(r),
                    None => break,
                }
            }
            let mut changes = Vec::new();
            let mut overflow = false;
            for d in datagrams {
                match d {
                    Ok((buf, _)) => {
                        let (msgs, bad) = netlink::messages(&buf);
                        if bad > 0 {
                            warn!(bad, "undecodable kernel event; re-dumping");
                            overflow = true;
                        }
                        changes.extend(msgs.into_iter().filter_map(|(_, p)| match p {
                            NetlinkPayload::InnerMessage(m) => {
                                Some(netlink::change(m, config.table))
                            }
                            _ => None,
                        }));
                    }
                    Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => overflow = true,
                    Err(e) => return Err(e),
                }
            }
            let ops = lock(&mirror).apply(changes);
            submit(&route, &mirror, ops).await?;
            if overflow {
                warn!("the kernel dropped route events (ENOBUFS); dumping again to reconcile");
                drain(&events)?;
                break;
            }
        }
    }
}

/// Throws away every event already queued: the dump that follows covers them. The kernel
/// reports an overflow only once until the queue has been emptied, so a re-dump on a socket
/// still holding stale events could miss later drops unheard.
fn drain(events: &TokioSocket) -> io::Result<()> {
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
    mirror: &Mutex<Mirror>,
    ops: Vec<TableOp<Route>>,
) -> io::Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let kept = ops.clone();
    let outcome = route
        .send(Apply { ops, force: true })
        .await
        .map_err(|e| io::Error::other(format!("route table unreachable: {e}")))?;
    let mut m = lock(mirror);
    for (i, why) in outcome.failures {
        let op = &kept[i as usize];
        // A kernel route rtm cannot take (full table, …) or one already gone from rtm.
        if !matches!(op, TableOp::Del(_)) {
            warn!(?op, "kernel route not mirrored: {why}");
        }
        m.refused(op);
    }
    Ok(())
}
