//! The supervisor: starts every long-lived actor, restarts the ones that fail, and runs the
//! daemon's clean stop and config reload.
//!
//! The table actors, the signal broker and the listener run under `actix::Supervisor`: when one
//! stops (each turns a panic in its handlers into a stop), it is restarted with the same
//! address and mailbox and its state intact, and repairs what it publishes (`restarting`).

use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::{error, info, warn};

use crate::config::{Config, Limits};
use crate::counters::Health;
use crate::listener::Listener;
use crate::registry::{Registry, SayBye};
use crate::service_manager;
use crate::session::Services;
use crate::signal_broker::{OsSignals, Reload, Shutdown, SignalBroker};
use crate::table::arp::ArpTable;
use crate::table::neigh::NeighTable;
use crate::table::route::RouteTable;
use crate::table::Retire;
use crate::watchdog;

/// How long a clean stop waits for sessions to hand `bye` to their clients.
const BYE_GRACE: Duration = Duration::from_secs(2);

/// What the daemon set up before the actors start: the bound socket and the tables (with their
/// shared memory and journals, restored from the state directory if there is one).
pub struct Boot {
    pub config: Config,
    pub health: Arc<Health>,
    pub socket: StdUnixListener,
    pub route: RouteTable,
    pub arp: ArpTable,
    /// The kernel's neighbours, with `--kernel import` only.
    pub neigh: Option<NeighTable>,
    /// Files removed at a clean stop besides the shm files (socket, lock files).
    pub cleanup: Vec<PathBuf>,
    /// Installed before the socket was bound.
    pub signals: OsSignals,
    /// The dashboard and metrics listeners, bound (`--http-listen`, `--metrics-listen`).
    pub http: crate::http::Bound,
}

pub struct Supervisor {
    boot: Option<Boot>,
    config: Option<Config>,
    health: Arc<Health>,
    limits: Arc<Limits>,
    services: Option<Services>,
    cleanup: Vec<PathBuf>,
    stopping: bool,
    /// The threads the table actors run on (stopped with the system).
    table_threads: Vec<Arbiter>,
    /// The kernel export (`--kernel export`), told to withdraw its routes at a clean stop.
    export: Option<Addr<crate::kernel::export::KernelExport>>,
}

impl Supervisor {
    pub fn new(boot: Boot) -> Self {
        let limits = Arc::new(Limits::new(boot.config.limits));
        Supervisor {
            config: Some(boot.config.clone()),
            cleanup: boot.cleanup.clone(),
            health: boot.health.clone(),
            boot: Some(boot),
            limits,
            services: None,
            stopping: false,
            table_threads: Vec::new(),
            export: None,
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(boot) = self.boot.take() else {
            return;
        };
        let health = self.health.clone();
        let (rt, at, nt) = (boot.route, boot.arp, boot.neigh);
        // Each table runs on a thread of its own: a journal sync, a compaction or a republish
        // of one table stalls neither the sessions nor the other table.
        let (route_thread, arp_thread) = (Arbiter::new(), Arbiter::new());
        let route = actix::Supervisor::start_in_arbiter(&route_thread.handle(), move |_| rt);
        let arp = actix::Supervisor::start_in_arbiter(&arp_thread.handle(), move |_| at);
        // The neighbours keep no journal and change less than routes: they share the ARP
        // table's thread.
        let neigh = nt.map(|nt| actix::Supervisor::start_in_arbiter(&arp_thread.handle(), |_| nt));
        self.table_threads = vec![route_thread, arp_thread];
        let (limits, h) = (self.limits.clone(), health.clone());
        let registry = actix::Supervisor::start(move |_| Registry::new(limits, h));
        let (shutdown, reload) = (
            ctx.address().recipient::<Shutdown>(),
            ctx.address().recipient::<Reload>(),
        );
        let h = health.clone();
        let signals = boot.signals;
        let broker =
            actix::Supervisor::start(move |_| SignalBroker::new(shutdown, reload, h, signals));
        let svc = Services {
            route,
            arp,
            neigh,
            registry,
            broker,
            health,
            limits: self.limits.clone(),
            route_shm: boot.config.route_shm_path().display().to_string().into(),
            arp_shm: boot.config.arp_shm_path().display().to_string().into(),
            daemon_uid: rustix::process::geteuid().as_raw(),
            admin_gid: boot.config.admin_gid,
            dashboard: boot.http.dashboard(),
            #[cfg(feature = "fault-injection")]
            listener: Default::default(),
            #[cfg(feature = "fault-injection")]
            kernel_import: Default::default(),
            #[cfg(feature = "fault-injection")]
            kernel_export: Default::default(),
        };
        let socket = Arc::new(boot.socket);
        let s = svc.clone();
        let listener = actix::Supervisor::start(move |_| Listener::new(socket, s));
        #[cfg(feature = "fault-injection")]
        let _ = svc.listener.set(listener.clone().recipient());
        let mut watched = vec![
            ("route", svc.route.clone().recipient()),
            ("arp", svc.arp.clone().recipient()),
            ("broker", svc.broker.clone().recipient()),
            ("listener", listener.recipient()),
            ("registry", svc.registry.clone().recipient()),
        ];
        if let Some(n) = &svc.neigh {
            watched.push(("neigh", n.clone().recipient()));
        }
        watchdog::start(ctx, watched);
        if let Some(k) = boot.config.kernel.clone() {
            svc.health.kernel.import.store(k.import, Relaxed);
            svc.health.kernel.export.store(k.export.is_some(), Relaxed);
            // The neighbour table exists exactly when the import is on (`daemon::run`).
            if let (true, Some(neigh)) = (k.import, svc.neigh.clone()) {
                let (k, route, h) = (k.clone(), svc.route.clone(), svc.health.clone());
                // On the route table's thread: each batch of kernel events goes to the table
                // without a wake-up of another thread, and the mirror waits for the table's
                // answer before it reads on anyway.
                let a = actix::Supervisor::start_in_arbiter(
                    &self.table_threads[0].handle(),
                    move |_| crate::kernel::KernelMirror::new(k, route, neigh, h),
                );
                #[cfg(feature = "fault-injection")]
                let _ = svc.kernel_import.set(a.recipient());
                #[cfg(not(feature = "fault-injection"))]
                drop(a);
                info!("kernel mirror on: importing the kernel's IPv4 routes and neighbours");
            }
            let (route, h) = (svc.route.clone(), svc.health.clone());
            let shm = boot.config.route_shm_path();
            if let Some(e) = crate::kernel::export::KernelExport::new(k, route, shm, h) {
                let proto = e.proto();
                let a = actix::Supervisor::start(move |_| e);
                #[cfg(feature = "fault-injection")]
                let _ = svc.kernel_export.set(a.clone().recipient());
                self.export = Some(a);
                info!(
                    proto,
                    "kernel export on: writing rtm's routes into the kernel"
                );
            }
        }
        crate::http::serve(boot.http, svc.clone());
        self.services = Some(svc);
        info!(
            socket = %boot.config.socket.display(),
            route_shm = %boot.config.route_shm_path().display(),
            arp_shm = %boot.config.arp_shm_path().display(),
            "rtmd ready"
        );
        service_manager::ready(&format!("serving {}", boot.config.socket.display()));
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        if std::mem::replace(&mut self.stopping, true) {
            return;
        }
        let Some(svc) = self.services.clone() else {
            System::current().stop_with_code(0);
            return;
        };
        service_manager::stopping();
        info!("stopping: saying bye to clients");
        svc.health.shutting_down.store(true, Relaxed);
        let cleanup = self.cleanup.clone();
        let keep_shm = self.config.as_ref().is_some_and(|c| c.keep_shm);
        let export = self.export.clone();
        let fut = async move {
            let n = svc.registry.send(SayBye).await.unwrap_or(0);
            // Wait (bounded) until every session's writer has flushed its last frames.
            let deadline = Instant::now() + BYE_GRACE;
            while svc.health.closing_writers.load(Relaxed) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if let Some(e) = export {
                let _ = e.send(crate::kernel::export::Withdraw).await;
            }
            let _ = svc.route.send(Retire { keep_shm }).await;
            let _ = svc.arp.send(Retire { keep_shm }).await;
            if let Some(n) = &svc.neigh {
                let _ = n.send(Retire { keep_shm }).await;
            }
            for p in &cleanup {
                if let Err(e) = std::fs::remove_file(p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        warn!(path = %p.display(), "cannot remove: {e}");
                    }
                }
            }
            info!(clients = n, "rtmd stopped cleanly");
            System::current().stop_with_code(0);
        };
        ctx.spawn(fut.into_actor(self));
    }
}

impl Handler<Reload> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Reload, _ctx: &mut Context<Self>) {
        let Some(config) = &mut self.config else {
            return;
        };
        service_manager::reloading();
        match config.reload() {
            Ok(Some(r)) => {
                self.limits.store(r.limits);
                let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(default)".into());
                for c in &r.applied {
                    info!(key = %c.key, old = %shown(&c.old), new = %shown(&c.new), "config: applied");
                }
                for c in &r.need_restart {
                    warn!(key = %c.key, old = %shown(&c.old), new = %shown(&c.new),
                        "config: changed, but takes effect only at the next start; not applied");
                }
                for c in &r.overridden {
                    warn!(key = %c.key, new = %shown(&c.new),
                        "config: changed in the file, but a command-line flag sets it; not applied");
                }
                info!(
                    applied = r.applied.len(),
                    need_restart = r.need_restart.len(),
                    "config reloaded"
                );
            }
            Ok(None) => info!("SIGHUP: no config file to reload"),
            Err(e) => error!("config reload failed, keeping the current settings: {e}"),
        }
        service_manager::ready("reloaded");
    }
}
