//! The kernel export (`rtmd --kernel export`): an actor that writes rtm's own routes into one
//! kernel routing table with a route protocol of rtm's own (`--kernel-proto`), so that the
//! kernel forwards with them and `ip route show proto N` lists them.
//!
//! It subscribes to the route table like any client and reads each changed route from shared
//! memory. Changes only mark their prefix dirty; a worker task makes the kernel's route of
//! each dirty prefix match rtm's, so a burst of changes to one prefix costs one request and the
//! backlog is bounded by the table's size (past [`MAX_DIRTY`] prefixes it reconciles the whole
//! table instead). At start, after a restart, a flush or a resync it reconciles the whole
//! table: it dumps the kernel's routes of its protocol, adopts them, and adds, replaces or
//! deletes until they are rtm's (a stale route left by a crashed rtmd goes). Only routes of
//! origin rtm are written: those the import put into rtm (origin kernel) are the kernel's
//! already. At a clean stop it removes what it wrote, unless `--kernel-keep`.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rtm_proto::shm::{Owners, RouteReader, TableReader};
use rtm_proto::types::{IfName, Prefix};
use rtm_proto::wire::{Event, Key, PanicPoint};
use rtm_proto::{Origin, Route};
use tokio::sync::{oneshot, Notify as Wake};
use tracing::{info, warn};

use super::netlink::{self, KernelWrite, Request, Requester, WriteHop};
use super::{ExportConfig, KernelConfig};
use crate::counters::{Counters, Health};
use crate::faults::Faults;
use crate::restart::{guarded, ActorKind, RestartLog, Restartable};
use crate::table::route::RouteTable;
use crate::table::subscribers::{Notify, Subscribe};

/// Dirty prefixes past which the exporter reconciles the whole table instead.
const MAX_DIRTY: usize = 1 << 16;
/// How long a clean stop waits for the exported routes to be removed.
pub const WITHDRAW_GRACE: Duration = Duration::from_secs(10);

/// What the worker has still to do.
#[derive(Default)]
struct Pending {
    dirty: BTreeSet<Prefix>,
    /// Reconcile the whole table (start, resync, flush, too many dirty prefixes).
    full: bool,
    /// A clean stop: remove the exported routes, then report here.
    withdraw: Option<oneshot::Sender<()>>,
}

/// The kernel export actor.
pub struct KernelExport {
    config: KernelConfig,
    export: ExportConfig,
    route: Addr<RouteTable>,
    route_shm: PathBuf,
    health: Arc<Health>,
    pending: Rc<RefCell<Pending>>,
    wake: Rc<Wake>,
    restarted: bool,
    faults: Faults,
    /// Its subscriber id, kept across restarts so that a restart's subscription replaces the
    /// last one rather than adding a second.
    session: u64,
}

impl KernelExport {
    pub fn new(
        config: KernelConfig,
        route: Addr<RouteTable>,
        route_shm: PathBuf,
        health: Arc<Health>,
    ) -> Option<Self> {
        Some(KernelExport {
            export: config.export?,
            config,
            route,
            route_shm,
            health,
            pending: Rc::default(),
            wake: Rc::default(),
            restarted: false,
            faults: Faults::default(),
            session: crate::session::next_session_id(),
        })
    }
}

impl KernelExport {
    pub fn proto(&self) -> u8 {
        self.export.proto
    }
}

impl Actor for KernelExport {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A fresh start (or restart) reconciles everything; the subscription's Start asks
        // for that too.
        self.pending = Rc::new(RefCell::new(Pending {
            full: true,
            ..Pending::default()
        }));
        self.wake = Rc::default();
        let sub = Subscribe {
            session: self.session,
            to: ctx.address().recipient(),
        };
        let route = self.route.clone();
        let w = Worker {
            table: self.config.table,
            export: self.export,
            route_shm: self.route_shm.clone(),
            pending: self.pending.clone(),
            wake: self.wake.clone(),
            links: HashMap::new(),
            exported: HashMap::new(),
            reader: None,
            health: self.health.clone(),
        };
        let task = async move {
            route
                .send(sub)
                .await
                .map_err(|e| io::Error::other(format!("route table unreachable: {e}")))?
                .map_err(|e| io::Error::other(format!("cannot subscribe: {e}")))?;
            w.run().await
        };
        super::run_task(ctx, self.restarted, "kernel export", task);
    }
}

impl Supervised for KernelExport {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.restarted = true;
        guarded(self, ctx, |act, _| act.faults.trip(PanicPoint::Restart));
        info!("kernel export restarting: it dumps its routes again and reconciles");
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::faults::Inject> for KernelExport {
    type Result = Result<(), rtm_proto::wire::Failure>;

    fn handle(&mut self, msg: crate::faults::Inject, ctx: &mut Context<Self>) -> Self::Result {
        crate::faults::inject(self, msg.0, ctx, false, |act| &mut act.faults)
    }
}

impl Restartable for KernelExport {
    const KIND: ActorKind = ActorKind::Kernel;

    fn restarts(&self) -> &RestartLog {
        &self.health.restarts
    }
}

impl Handler<Notify> for KernelExport {
    type Result = ();

    fn handle(&mut self, msg: Notify, _: &mut Context<Self>) {
        let mut p = self.pending.borrow_mut();
        for ev in msg.0.iter() {
            match ev {
                Event::Change {
                    key: Key::Route(k), ..
                } if !p.full => {
                    p.dirty.insert(*k);
                    if p.dirty.len() > MAX_DIRTY {
                        p.full = true;
                        p.dirty = BTreeSet::new();
                    }
                }
                Event::Change { .. } | Event::Bye => {}
                Event::Start { .. } | Event::Flush { .. } | Event::Resync { .. } => {
                    p.full = true;
                    p.dirty = BTreeSet::new();
                }
            }
        }
        self.wake.notify_one();
    }
}

/// A clean stop: remove the exported routes (answered once they are gone, or at once with
/// `--kernel-keep`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Withdraw;

impl Handler<Withdraw> for KernelExport {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Withdraw, _: &mut Context<Self>) -> Self::Result {
        if self.export.keep {
            info!("kernel export: leaving the exported routes in the kernel (kernel-keep)");
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().withdraw = Some(tx);
        self.wake.notify_one();
        Box::pin(async move {
            if tokio::time::timeout(WITHDRAW_GRACE, rx).await.is_err() {
                warn!("kernel export: the exported routes were not all removed in time");
            }
        })
    }
}

/// The task that talks to the kernel.
struct Worker {
    table: u32,
    export: ExportConfig,
    route_shm: PathBuf,
    pending: Rc<RefCell<Pending>>,
    wake: Rc<Wake>,
    /// Link name → index.
    links: HashMap<String, u32>,
    /// What rtm has in the kernel, per prefix, as rtm spells it.
    exported: HashMap<Prefix, Route>,
    reader: Option<RouteReader>,
    health: Arc<Health>,
}

/// One prefix's requests and what the exported record becomes on their outcome.
struct Plan {
    dst: Prefix,
    del: Option<usize>,
    put: Option<(usize, Route)>,
}

impl Worker {
    async fn run(mut self) -> io::Result<()> {
        let mut req = Requester::open(self.table, self.export.proto)?;
        loop {
            let (full, dirty, withdraw) = {
                let mut p = self.pending.borrow_mut();
                (
                    std::mem::take(&mut p.full),
                    std::mem::take(&mut p.dirty),
                    p.withdraw.take(),
                )
            };
            if let Some(done) = withdraw {
                self.withdraw(&mut req).await?;
                let _ = done.send(());
                // Stopping: nothing more goes into the kernel.
                return std::future::pending().await;
            }
            if full {
                self.reconcile(&mut req).await?;
            } else if !dirty.is_empty() {
                self.sync(&mut req, dirty).await?;
            } else {
                self.wake.notified().await;
            }
        }
    }

    /// The kernel's routes of rtm's protocol, adopted as exported; then every prefix of
    /// either side synced.
    async fn reconcile(&mut self, req: &mut Requester) -> io::Result<()> {
        let netlink::Dump { links, routes, .. } = netlink::dump(self.table).await?;
        self.links = links.into_iter().map(|l| (l.name, l.index)).collect();
        let names: HashMap<u32, &String> = self.links.iter().map(|(n, i)| (*i, n)).collect();
        self.exported.clear();
        let mut extra = Vec::new();
        for k in routes
            .into_iter()
            .filter(|k| k.protocol == self.export.proto)
        {
            // As written, dead paths too: rtm wrote them, the kernel keeps them.
            let r = match k.to_route(|i| names.get(&i).map(|n| n.to_string()), false, Origin::Rtm) {
                Ok(Some(r)) => r,
                // One rtm cannot spell (a link it cannot name): unequal to any route of rtm's,
                // so the sync below replaces or deletes it.
                Ok(None) | Err(_) => Route::new(k.dst, None, None, k.priority),
            };
            match self.exported.entry(k.dst) {
                // A second route of ours for one prefix (another metric): one goes.
                Entry::Occupied(_) => extra.push(Request::Del(k.dst, k.priority)),
                Entry::Vacant(v) => {
                    v.insert(r);
                }
            }
        }
        if !extra.is_empty() {
            self.send(req, &extra).await?;
        }
        let reader = self.reader()?;
        let mut keys: BTreeSet<Prefix> =
            reader.entries().into_iter().map(|v| v.entry.dst).collect();
        keys.extend(self.exported.keys().copied());
        let adopted = self.exported.len();
        self.sync(req, keys).await?;
        Counters::bump(&self.health.kernel.export_reconciles);
        info!(
            table = self.table,
            proto = self.export.proto,
            adopted,
            exported = self.exported.len(),
            "kernel export reconciled"
        );
        Ok(())
    }

    /// Runs `reqs` on `req` and counts what the kernel took and refused.
    async fn send(&self, req: &mut Requester, reqs: &[Request]) -> io::Result<Vec<io::Result<()>>> {
        let out = req.run(reqs).await?;
        let k = &self.health.kernel;
        for r in &out {
            match r {
                Ok(()) => Counters::bump(&k.export_writes),
                // A route already gone is what a removal wanted.
                Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {}
                Err(_) => Counters::bump(&k.export_failures),
            }
        }
        Ok(out)
    }

    fn reader(&mut self) -> io::Result<&RouteReader> {
        let stale = match &mut self.reader {
            Some(r) if r.is_retired() => r.refresh().map(|_| false).unwrap_or(true),
            Some(_) => false,
            None => true,
        };
        if stale {
            let own = rustix::process::geteuid().as_raw();
            let r = RouteReader::open_owned(&self.route_shm, Owners::Daemon(own))
                .map_err(|e| io::Error::other(format!("cannot read the route table: {e}")))?;
            self.reader = Some(r);
        }
        Ok(self.reader.as_ref().expect("just opened"))
    }

    /// rtm's route for `dst` if the export writes it: one of origin rtm (a route the import
    /// put there is the kernel's already).
    fn wanted(&mut self, dst: &Prefix) -> io::Result<Option<Route>> {
        let r = self.reader()?.get(dst).map(|v| v.entry);
        Ok(r.filter(|r| r.origin == Origin::Rtm))
    }

    /// Makes the kernel's route of each prefix in `keys` match rtm's.
    async fn sync(&mut self, req: &mut Requester, keys: BTreeSet<Prefix>) -> io::Result<()> {
        let mut reqs = Vec::new();
        let mut plans = Vec::new();
        let mut links_fresh = false;
        for dst in keys {
            let want = self.wanted(&dst)?;
            let have = self.exported.get(&dst).cloned();
            if want == have {
                continue;
            }
            let mut plan = Plan {
                dst,
                del: None,
                put: None,
            };
            let same_metric = matches!((&want, &have), (Some(w), Some(h)) if w.metric == h.metric);
            if let (Some(h), false) = (&have, same_metric) {
                plan.del = Some(reqs.len());
                reqs.push(Request::Del(dst, h.metric));
            }
            if let Some(w) = want {
                let kw = match self.write_of(&w, &mut links_fresh).await? {
                    Ok(kw) => kw,
                    Err(dev) => {
                        warn!(route = %w, "not written into the kernel: it has no link named {dev}");
                        Counters::bump(&self.health.kernel.export_failures);
                        if plan.del.is_none() && have.is_some() {
                            plan.del = Some(reqs.len());
                            reqs.push(Request::Del(dst, w.metric));
                        }
                        plans.push(plan);
                        continue;
                    }
                };
                plan.put = Some((reqs.len(), w));
                reqs.push(if same_metric {
                    Request::Replace(kw)
                } else {
                    Request::Add(kw)
                });
            }
            plans.push(plan);
        }
        if reqs.is_empty() {
            return Ok(());
        }
        let out = self.send(req, &reqs).await?;
        for p in plans {
            let put_ok = match p.put {
                Some((i, r)) => match &out[i] {
                    Ok(()) => {
                        self.exported.insert(p.dst, r);
                        true
                    }
                    Err(e) => {
                        warn!(route = %r, "not written into the kernel: {}", refusal(e));
                        false
                    }
                },
                None => false,
            };
            if put_ok {
                continue;
            }
            if let Some(i) = p.del {
                // Gone (ESRCH: it was gone already) or not: said once, forgotten either way
                // unless the kernel refused otherwise.
                match &out[i] {
                    Ok(()) => {
                        self.exported.remove(&p.dst);
                    }
                    Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => {
                        self.exported.remove(&p.dst);
                    }
                    Err(e) => {
                        warn!(prefix = %p.dst, "exported route not removed from the kernel: {e}")
                    }
                }
            }
        }
        Ok(())
    }

    /// The index of the link named `dev`; the links are dumped again (once per round, said
    /// by `fresh`) if it is not known.
    async fn oif(&mut self, dev: &IfName, fresh: &mut bool) -> io::Result<Option<u32>> {
        if !self.links.contains_key(dev.as_str()) && !*fresh {
            let links = netlink::dump_links().await?;
            self.links = links.into_iter().map(|l| (l.name, l.index)).collect();
            *fresh = true;
        }
        Ok(self.links.get(dev.as_str()).copied())
    }

    /// What rtm's route `w` is written into the kernel as, or the name of a link of it the
    /// kernel does not have.
    async fn write_of(
        &mut self,
        w: &Route,
        fresh: &mut bool,
    ) -> io::Result<Result<KernelWrite, IfName>> {
        let mut oif = None;
        if let Some(dev) = &w.dev {
            match self.oif(dev, fresh).await? {
                Some(i) => oif = Some(i),
                None => return Ok(Err(*dev)),
            }
        }
        let mut nexthops = Vec::with_capacity(w.nexthops.len());
        for h in &w.nexthops {
            let oif = match &h.dev {
                None => None,
                Some(dev) => match self.oif(dev, fresh).await? {
                    Some(i) => Some(i),
                    None => return Ok(Err(*dev)),
                },
            };
            nexthops.push(WriteHop {
                via: h.via,
                oif,
                weight: h.weight,
            });
        }
        Ok(Ok(KernelWrite {
            dst: w.dst,
            via: w.via,
            oif,
            priority: w.metric,
            nexthops,
        }))
    }

    /// Removes every exported route (a clean stop).
    async fn withdraw(&mut self, req: &mut Requester) -> io::Result<()> {
        let reqs: Vec<Request> = self
            .exported
            .values()
            .map(|r| Request::Del(r.dst, r.metric))
            .collect();
        let out = self.send(req, &reqs).await?;
        let kept = out
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_err_and(|e| e.raw_os_error() != Some(nix::libc::ESRCH))
            })
            .count();
        info!(
            removed = reqs.len() - kept,
            kept, "kernel export: removed the exported routes"
        );
        self.exported.clear();
        Ok(())
    }
}

/// The kernel's refusal in words an operator can act on.
fn refusal(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::EEXIST) => {
            "the kernel has a route with this prefix and metric that rtm did not write".into()
        }
        Some(nix::libc::ENETUNREACH) => format!("{e} (the gateway is not on a connected network)"),
        _ => e.to_string(),
    }
}
