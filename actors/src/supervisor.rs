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
use crate::session::Services;
use crate::signal_broker::{OsSignals, Reload, Shutdown, SignalBroker};
use crate::table::arp::ArpTable;
use crate::table::route::RouteTable;
use crate::table::Retire;

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
        let (rt, at) = (boot.route, boot.arp);
        let route = actix::Supervisor::start(move |_| rt);
        let arp = actix::Supervisor::start(move |_| at);
        let registry = Registry::new(self.limits.clone()).start();
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
        };
        let socket = Arc::new(boot.socket);
        let s = svc.clone();
        let _listener = actix::Supervisor::start(move |_| Listener::new(socket, s));
        #[cfg(feature = "fault-injection")]
        let _ = svc.listener.set(_listener.recipient());
        crate::http::serve(boot.http, svc.clone());
        self.services = Some(svc);
        info!(
            socket = %boot.config.socket.display(),
            route_shm = %boot.config.route_shm_path().display(),
            arp_shm = %boot.config.arp_shm_path().display(),
            "rtmd ready"
        );
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
        info!("stopping: saying bye to clients");
        svc.health.shutting_down.store(true, Relaxed);
        let cleanup = self.cleanup.clone();
        let keep_shm = self.config.as_ref().is_some_and(|c| c.keep_shm);
        let fut = async move {
            let n = svc.registry.send(SayBye).await.unwrap_or(0);
            // Wait (bounded) until every session's writer has flushed its last frames.
            let deadline = Instant::now() + BYE_GRACE;
            while svc.health.closing_writers.load(Relaxed) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = svc.route.send(Retire { keep_shm }).await;
            let _ = svc.arp.send(Retire { keep_shm }).await;
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
        let Some(config) = &self.config else { return };
        match config.reload_limits() {
            Ok(Some(v)) => {
                self.limits.store(v);
                info!(?v, "config reloaded");
            }
            Ok(None) => info!("SIGHUP: no config file to reload"),
            Err(e) => error!("config reload failed, keeping the current settings: {e}"),
        }
    }
}
