//! The daemon's settings: where the instance lives, table capacities and limits.
//!
//! Every setting has a built-in default, so `rtmd` runs without a config file. A TOML file
//! (`rtmd --config FILE`) may set any of them; flags override the file. SIGHUP re-reads the
//! file and applies the reloadable limits ([`LimitValues`]); flags still win over the file.
//! `max-clients` applies to the next registration, `client-queue` at once to every session,
//! `handshake-timeout` and `max-frame` to new connections.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_ROUTE_CAPACITY: usize = 1 << 20;
pub const DEFAULT_ARP_CAPACITY: usize = 1 << 18;
pub const DEFAULT_CLIENT_QUEUE: usize = 65_536;
pub const DEFAULT_MAX_CLIENTS: u32 = 1024;
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_INFLIGHT: usize = 64;
pub const DEFAULT_MAX_BATCH: usize = 16_384;

/// Settings fixed for the daemon's lifetime.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    pub shm_dir: PathBuf,
    pub instance: String,
    pub route_capacity: usize,
    pub arp_capacity: usize,
    /// Mode of the socket file.
    pub socket_mode: u32,
    /// Mode of the shared-memory files (0644 or tighter).
    pub shm_mode: u32,
    /// Group of the socket file (`--socket-group`).
    pub socket_gid: Option<u32>,
    /// Group of the shared-memory files (`--shm-group`).
    pub shm_gid: Option<u32>,
    /// Members may change the tables (`--admin-group`).
    pub admin_gid: Option<u32>,
    /// Snapshot + journal directory (`--state-dir`); none: the tables live in memory only.
    pub state_dir: Option<PathBuf>,
    /// Whether each acknowledged change is fsynced (`--fsync always|never`).
    pub fsync: crate::journal::FsyncPolicy,
    /// Leave the shared-memory files in place at a clean stop (`--keep-shm`).
    pub keep_shm: bool,
    /// Restarts allowed within a window before the daemon exits non-zero.
    pub restart_budget: crate::restart::RestartBudget,
    /// The config file SIGHUP re-reads, if any.
    pub config_file: Option<PathBuf>,
    /// The limits given as flags: they keep precedence over the file across reloads.
    pub limit_flags: FileConfig,
    pub limits: LimitValues,
}

impl Config {
    /// The built-in defaults for an instance on `socket` with its tables in `shm_dir`. Callers
    /// that embed the daemon set what they need with struct update syntax, so new settings
    /// never break them.
    pub fn with_defaults(socket: PathBuf, shm_dir: PathBuf) -> Config {
        Config {
            socket,
            shm_dir,
            instance: "rtm".into(),
            route_capacity: DEFAULT_ROUTE_CAPACITY,
            arp_capacity: DEFAULT_ARP_CAPACITY,
            socket_mode: 0o660,
            shm_mode: 0o644,
            socket_gid: None,
            shm_gid: None,
            admin_gid: None,
            state_dir: None,
            fsync: crate::journal::FsyncPolicy::Always,
            keep_shm: false,
            restart_budget: crate::restart::RestartBudget::default(),
            config_file: None,
            limit_flags: FileConfig::default(),
            limits: LimitValues::default(),
        }
    }

    pub fn route_shm_path(&self) -> PathBuf {
        self.shm_dir.join(format!("{}.route", self.instance))
    }

    pub fn arp_shm_path(&self) -> PathBuf {
        self.shm_dir.join(format!("{}.arp", self.instance))
    }

    /// The lock that keeps two daemons off the same shared-memory instance.
    pub fn shm_lock_path(&self) -> PathBuf {
        self.shm_dir.join(format!("{}.lock", self.instance))
    }

    /// The lock that keeps two daemons off the same socket.
    pub fn socket_lock_path(&self) -> PathBuf {
        let mut p = self.socket.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }
}

/// Resolves a group given by name or number.
pub fn parse_group(key: &'static str, s: &str) -> Result<u32, ConfigError> {
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(ConfigError::Value {
            key,
            value: s.to_string(),
            why: "no such group".into(),
        }),
        Err(e) => Err(ConfigError::Value {
            key,
            value: s.to_string(),
            why: format!("cannot look the group up: {e}"),
        }),
    }
}

/// The reloadable limits, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitValues {
    /// Registered subscribers allowed at once (one-shot requests are never refused by it).
    pub max_clients: u32,
    /// Notifications queued per subscriber before they collapse into one `resync`.
    pub client_queue: usize,
    /// A connection that has not said Hello by then is closed.
    pub handshake_timeout: Duration,
    /// Largest frame accepted from a client.
    pub max_frame: usize,
    /// Requests a session reads ahead of their answers; reading pauses beyond it.
    pub max_inflight: usize,
    /// Operations allowed in one batch request.
    pub max_batch: usize,
}

impl Default for LimitValues {
    fn default() -> Self {
        LimitValues {
            max_clients: DEFAULT_MAX_CLIENTS,
            client_queue: DEFAULT_CLIENT_QUEUE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame: rtm_proto::wire::DEFAULT_MAX_REQUEST_FRAME,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

/// The limits in force, shared by every actor; SIGHUP stores new values.
#[derive(Debug)]
pub struct Limits {
    max_clients: AtomicU32,
    client_queue: AtomicUsize,
    handshake_ms: AtomicU64,
    max_frame: AtomicUsize,
    max_inflight: AtomicUsize,
    max_batch: AtomicUsize,
}

impl Limits {
    pub fn new(v: LimitValues) -> Limits {
        let l = Limits {
            max_clients: AtomicU32::new(0),
            client_queue: AtomicUsize::new(0),
            handshake_ms: AtomicU64::new(0),
            max_frame: AtomicUsize::new(0),
            max_inflight: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
        };
        l.store(v);
        l
    }

    pub fn store(&self, v: LimitValues) {
        self.max_clients.store(v.max_clients, Relaxed);
        self.client_queue.store(v.client_queue, Relaxed);
        self.handshake_ms
            .store(v.handshake_timeout.as_millis() as u64, Relaxed);
        self.max_frame.store(v.max_frame, Relaxed);
        self.max_inflight.store(v.max_inflight, Relaxed);
        self.max_batch.store(v.max_batch, Relaxed);
    }

    pub fn client_queue(&self) -> usize {
        self.client_queue.load(Relaxed)
    }

    pub fn load(&self) -> LimitValues {
        LimitValues {
            max_clients: self.max_clients.load(Relaxed),
            client_queue: self.client_queue.load(Relaxed),
            handshake_timeout: Duration::from_millis(self.handshake_ms.load(Relaxed)),
            max_frame: self.max_frame.load(Relaxed),
            max_inflight: self.max_inflight.load(Relaxed),
            max_batch: self.max_batch.load(Relaxed),
        }
    }
}

/// The config file's shape. Every key is optional; unknown keys are an error so that a typo
/// does not silently leave a default in force.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub socket: Option<PathBuf>,
    pub shm_dir: Option<PathBuf>,
    pub instance: Option<String>,
    pub route_capacity: Option<usize>,
    pub arp_capacity: Option<usize>,
    pub socket_mode: Option<String>,
    pub shm_mode: Option<String>,
    pub max_clients: Option<u32>,
    pub client_queue: Option<usize>,
    /// e.g. "10s", "500ms"
    pub handshake_timeout: Option<String>,
    pub max_frame: Option<usize>,
    pub max_inflight: Option<usize>,
    pub max_batch: Option<usize>,
    pub socket_group: Option<String>,
    pub admin_group: Option<String>,
    pub shm_group: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// "always" (default) or "never"
    pub fsync: Option<String>,
    /// Keep the shm files at a clean stop (warm restart); needs state-dir.
    pub keep_shm: Option<bool>,
    pub max_restarts: Option<u32>,
    /// e.g. "10s"
    pub restart_window: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key} = \"{value}\": {why}")]
    Value {
        key: &'static str,
        value: String,
        why: String,
    },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }

    /// The reloadable limits this file sets on top of `base`.
    pub fn limits(&self, base: LimitValues) -> Result<LimitValues, ConfigError> {
        let mut v = base;
        if let Some(n) = self.max_clients {
            v.max_clients = n;
        }
        if let Some(n) = self.client_queue {
            v.client_queue = check_positive("client-queue", n)?;
        }
        if let Some(t) = &self.handshake_timeout {
            v.handshake_timeout = parse_duration("handshake-timeout", t)?;
        }
        if let Some(n) = self.max_frame {
            v.max_frame = check_positive("max-frame", n)?;
        }
        if let Some(n) = self.max_inflight {
            v.max_inflight = check_positive("max-inflight", n)?;
        }
        if let Some(n) = self.max_batch {
            v.max_batch = check_positive("max-batch", n)?;
        }
        Ok(v)
    }
}

/// The limits in force: the file's over the defaults, the flags over the file.
pub fn effective_limits(file: &FileConfig, flags: &FileConfig) -> Result<LimitValues, ConfigError> {
    flags.limits(file.limits(LimitValues::default())?)
}

fn check_positive(key: &'static str, n: usize) -> Result<usize, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Value {
            key,
            value: n.to_string(),
            why: "must be at least 1".into(),
        });
    }
    Ok(n)
}

/// Parses a duration such as `10s` or `250ms`.
pub fn parse_duration(key: &'static str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s).map_err(|e| ConfigError::Value {
        key,
        value: s.to_string(),
        why: e.to_string(),
    })
}

/// Parses an octal file mode such as `0660`.
pub fn parse_mode(key: &'static str, s: &str) -> Result<u32, ConfigError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(ConfigError::Value {
            key,
            value: s.to_string(),
            why: "expected an octal mode such as 0660".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_limits_and_bad_values() {
        let f: FileConfig = toml::from_str("max-clients = 3\nhandshake-timeout = \"2s\"").unwrap();
        let v = f.limits(LimitValues::default()).unwrap();
        assert_eq!(v.max_clients, 3);
        assert_eq!(v.handshake_timeout, Duration::from_secs(2));
        assert!(toml::from_str::<FileConfig>("max-client = 3").is_err());
        let bad: FileConfig = toml::from_str("client-queue = 0").unwrap();
        let e = bad.limits(LimitValues::default()).unwrap_err().to_string();
        assert!(e.contains("client-queue") && e.contains('0'), "{e}");
        assert_eq!(parse_mode("m", "0640").unwrap(), 0o640);
        assert!(parse_mode("m", "999").is_err());
    }
}
