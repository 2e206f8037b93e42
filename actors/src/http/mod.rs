//! The dashboard and the Prometheus endpoint: actix-web servers inside rtmd's actor system.
//!
//! Both are opt-in. `--http-listen ADDR:PORT` serves the dashboard: pages, the live event
//! stream, the change API and `/metrics`, all behind a token that `rtmctl dashboard-url` gets
//! minted over the Unix socket, bound to the caller's uid. `--http-socket PATH` serves the same
//! on a Unix socket, where the peer's credentials take the token's place. `--metrics-listen ADDR:PORT` serves
//! `/metrics` alone, loopback only and without authentication, counts only.
//!
//! - this file: the settings, binding (at start-up, so a bad address stops rtmd) and starting
//!   the servers (without actix-web's own signal handling: rtmd's signal broker stays in charge);
//! - [`tokens`]: minting, checking and expiring tokens;
//! - [`auth`]: who a request is (token from the cookie or a header) and what it may do;
//! - [`routes`]: the URL map, security headers and the change API;
//! - [`pages`]: the server-rendered pages; [`sse`]: the live event stream;
//! - [`metrics`]: the Prometheus text format;
//! - `assets/`: the page script and style sheet, compiled into the binary.
//!
//! Every change made here is a [`Request`](rtm_proto::wire::Request) answered by the same code
//! as one from `rtmctl` ([`crate::session::cmd::answer`]), after the same access rule
//! ([`crate::session::may_change`]), and is logged with the uid of the token.

pub mod auth;
pub mod metrics;
pub mod pages;
pub mod route_file;
pub mod routes;
pub mod sse;
pub mod tokens;

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use tracing::{error, info};

use crate::config::settings::Settings;
use crate::config::{parse_duration, ConfigError};
use crate::daemon::StartError;
use crate::session::Services;
use tokens::TokenStore;

/// How long a dashboard token lives unless `--dashboard-token-ttl` says otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// The listeners' settings, resolved and checked.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    pub listen: Option<SocketAddr>,
    /// A Unix socket for the dashboard (`--http-socket`): the peer's uid decides, no token.
    pub socket: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    pub token_ttl: Duration,
}

impl HttpConfig {
    /// Checks the addresses: the dashboard only on loopback unless `--http-allow-remote`, the
    /// unauthenticated metrics endpoint only on loopback.
    pub fn resolve(s: &Settings) -> Result<HttpConfig, ConfigError> {
        let addr = |key: &'static str, v: &Option<String>| -> Result<_, ConfigError> {
            v.as_deref()
                .map(|a| {
                    a.parse::<SocketAddr>().map_err(|_| ConfigError::Value {
                        key,
                        value: a.to_string(),
                        why: "expected ADDR:PORT, such as 127.0.0.1:8470".into(),
                    })
                })
                .transpose()
        };
        let listen = addr("http-listen", &s.http_listen)?;
        if let Some(a) = listen {
            if !a.ip().is_loopback() && !s.http_allow_remote.unwrap_or(false) {
                return Err(ConfigError::Value {
                    key: "http-listen",
                    value: a.to_string(),
                    why: "not a loopback address; give --http-allow-remote to serve the \
                          dashboard beyond this host"
                        .into(),
                });
            }
        }
        let metrics_listen = addr("metrics-listen", &s.metrics_listen)?;
        if let Some(a) = metrics_listen {
            if !a.ip().is_loopback() {
                return Err(ConfigError::Value {
                    key: "metrics-listen",
                    value: a.to_string(),
                    why: "the unauthenticated metrics endpoint listens on loopback only \
                          (the dashboard's /metrics takes a token)"
                        .into(),
                });
            }
        }
        let token_ttl = match &s.dashboard_token_ttl {
            Some(t) => parse_duration("dashboard-token-ttl", t)?,
            None => DEFAULT_TOKEN_TTL,
        };
        if token_ttl.is_zero() {
            return Err(ConfigError::Value {
                key: "dashboard-token-ttl",
                value: s.dashboard_token_ttl.clone().unwrap_or_default(),
                why: "must be longer than zero".into(),
            });
        }
        Ok(HttpConfig {
            listen,
            socket: s
                .http_socket
                .clone()
                .map(|p| std::path::absolute(&p).unwrap_or(p)),
            metrics_listen,
            token_ttl,
        })
    }
}

/// The dashboard's shared state: where it listens and the tokens it accepts.
#[derive(Debug)]
pub struct Dashboard {
    /// `http://ADDR:PORT`, as bound.
    pub base_url: String,
    pub tokens: TokenStore,
}

/// The listeners bound at start-up, before the actors run.
#[derive(Default)]
pub struct Bound {
    pub dashboard: Option<(TcpListener, Arc<Dashboard>)>,
    pub socket: Option<(UnixListener, PathBuf)>,
    pub metrics: Option<TcpListener>,
}

impl Bound {
    /// The dashboard's state, for the sessions that mint tokens.
    pub fn dashboard(&self) -> Option<Arc<Dashboard>> {
        self.dashboard.as_ref().map(|(_, d)| d.clone())
    }

    /// The dashboard socket's path, removed at a clean stop.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.socket.as_ref().map(|(_, p)| p.clone())
    }
}

fn bind_one(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    let io = |source| StartError::Io {
        what,
        path: PathBuf::from(addr.to_string()),
        source,
    };
    let l = TcpListener::bind(addr).map_err(io)?;
    l.set_nonblocking(true).map_err(io)?;
    Ok(l)
}

/// Binds the dashboard's Unix socket with the mode and group of rtmd's socket, replacing a
/// stale one but never a live one.
fn bind_socket(path: &Path, mode: u32, gid: Option<u32>) -> Result<UnixListener, StartError> {
    let io = |what| {
        move |source| StartError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() || UnixStream::connect(path).is_ok() {
            return Err(io("the dashboard socket is in use or not a socket")(
                std::io::ErrorKind::AddrInUse.into(),
            ));
        }
        std::fs::remove_file(path).map_err(io("cannot remove stale dashboard socket"))?;
    }
    let l = UnixListener::bind(path).map_err(io("cannot bind the dashboard socket"))?;
    if let Some(gid) = gid {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| io("cannot set the dashboard socket's group")(e.into()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("cannot set the dashboard socket's mode"))?;
    l.set_nonblocking(true)
        .map_err(io("cannot bind the dashboard socket"))?;
    Ok(l)
}

/// Binds the configured listeners; an address in use or not ours stops the start.
pub fn bind(full: &crate::config::Config) -> Result<Bound, StartError> {
    let config = &full.http;
    let dashboard = match config.listen {
        Some(addr) => {
            let l = bind_one("cannot listen for the dashboard on", addr)?;
            let local = l.local_addr().unwrap_or(addr);
            let d = Dashboard {
                base_url: format!("http://{local}"),
                tokens: TokenStore::new(config.token_ttl),
            };
            Some((l, Arc::new(d)))
        }
        None => None,
    };
    let metrics = match config.metrics_listen {
        Some(addr) => Some(bind_one("cannot listen for metrics on", addr)?),
        None => None,
    };
    let socket = match &config.socket {
        Some(p) => Some((
            bind_socket(p, full.socket_mode, full.socket_gid)?,
            p.clone(),
        )),
        None => None,
    };
    Ok(Bound {
        dashboard,
        socket,
        metrics,
    })
}

/// What every request handler of the dashboard shares.
#[derive(Clone)]
pub struct AppState {
    pub svc: Services,
    pub dash: Arc<Dashboard>,
    /// The route table's file, read directly for the routes page.
    pub routes: Arc<route_file::RouteFile>,
}

/// Starts the servers on the current actor system. One worker each: the work is in the
/// table actors, a handler only waits for them.
pub fn serve(bound: Bound, svc: Services) {
    // The socket shares the TCP listener's tokens (none needed there) or has its own store.
    let socket_dash = bound.dashboard().unwrap_or_else(|| {
        Arc::new(Dashboard {
            base_url: String::new(),
            tokens: TokenStore::new(DEFAULT_TOKEN_TTL),
        })
    });
    let routes = Arc::new(route_file::RouteFile::new(&svc.route_shm));
    if let Some((listener, path)) = bound.socket {
        let state = AppState {
            svc: svc.clone(),
            dash: socket_dash,
            routes: routes.clone(),
        };
        let s2 = svc.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .configure(routes::dashboard)
        })
        .on_connect(move |conn, ext| auth::on_socket_connect(&s2, conn, ext))
        .disable_signals()
        .workers(1)
        .listen_uds(listener);
        match server {
            Ok(s) => {
                actix_rt::spawn(s.run());
                info!(path = %path.display(), "dashboard listening on a Unix socket");
            }
            Err(e) => error!("cannot start the dashboard on {}: {e}", path.display()),
        }
    }
    if let Some((listener, dash)) = bound.dashboard {
        let addr = listener.local_addr().ok();
        let state = AppState {
            svc: svc.clone(),
            dash,
            routes,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .configure(routes::dashboard)
        })
        .disable_signals()
        .workers(1)
        .listen(listener)
        .map(|s| s.run());
        run(
            server,
            addr,
            "the dashboard",
            "; `rtmctl dashboard-url` gives a link",
        );
    }
    if let Some(listener) = bound.metrics {
        let addr = listener.local_addr().ok();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(svc.clone()))
                .configure(routes::metrics_only)
        })
        .disable_signals()
        .workers(1)
        .listen(listener)
        .map(|s| s.run());
        run(server, addr, "metrics", "");
    }
}

/// Runs a bound server on rtmd's actor system and logs `WHAT listening addr=…` (tests and
/// docs/dashboard.md rely on the words), or says why it cannot.
fn run(
    server: std::io::Result<actix_web::dev::Server>,
    addr: Option<std::net::SocketAddr>,
    what: &str,
    hint: &str,
) {
    match server {
        Ok(s) => {
            actix_rt::spawn(s);
            info!(addr = ?addr, "{what} listening{hint}");
        }
        Err(e) => error!("cannot start the {what} listener: {e}"),
    }
}
