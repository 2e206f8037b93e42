//! The daemon's settings: where the instance lives, table capacities, access, durability and
//! limits.
//!
//! Every setting has a built-in default, so `rtmd` runs without a config file. A TOML file
//! (`rtmd --config FILE`) may set any of them and flags override the file: both are a
//! [`Settings`], merged with [`Settings::over`], and [`Config::resolve`] is the one place that
//! applies the defaults and checks every value, whoever starts the daemon. SIGHUP re-reads the
//! file and applies the reloadable [`limits`] (flags still win over the file; [`reload`]);
//! [`check`] places every error found in a file at its line, column and key.

pub mod check;
pub mod limits;
pub mod reload;
pub mod settings;

use std::path::PathBuf;
use std::time::Duration;

use rtm_proto::paths;

use crate::journal::FsyncPolicy;
use crate::restart::RestartBudget;
pub use limits::{LimitValues, Limits};
pub use settings::Settings;

pub const DEFAULT_ROUTE_CAPACITY: usize = 1 << 20;
pub const DEFAULT_ARP_CAPACITY: usize = 1 << 18;

/// Settings fixed for the daemon's lifetime, resolved and checked.
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
    pub fsync: FsyncPolicy,
    /// Leave the shared-memory files in place at a clean stop (`--keep-shm`).
    pub keep_shm: bool,
    /// Restarts allowed within a window before the daemon exits non-zero.
    pub restart_budget: RestartBudget,
    /// The config file SIGHUP re-reads, if any.
    pub config_file: Option<PathBuf>,
    /// The settings given as flags: they keep precedence over the file across reloads.
    pub flags: Settings,
    /// The config file's settings in force (a reload updates only the reloadable ones).
    pub file: Settings,
    pub limits: LimitValues,
    /// The dashboard and metrics listeners (`--http-listen`, `--metrics-listen`).
    pub http: crate::http::HttpConfig,
    /// Mirror of the kernel's routes (`--kernel import`), if on.
    pub kernel: Option<crate::kernel::KernelConfig>,
}

impl Config {
    /// The configuration from `flags` over the config file (if any) over the defaults, with
    /// every value checked.
    pub fn from_flags(
        flags: Settings,
        config_file: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let (file, text) = match &config_file {
            Some(p) => {
                let (s, text) = check::load(p)?;
                (s, Some(text))
            }
            None => (Settings::default(), None),
        };
        let placed = config_file.as_deref().zip(text.as_deref());
        let mut config =
            Config::resolve(&flags.over(&file)).map_err(|e| check::in_file(e, placed, &flags))?;
        config.config_file = config_file;
        config.flags = flags;
        config.file = file;
        Ok(config)
    }

    /// The configuration `s` asks for, defaults filled in, every value checked. Paths become
    /// absolute: clients get them from the daemon and may run in another directory.
    pub fn resolve(s: &Settings) -> Result<Config, ConfigError> {
        let shm_mode = match &s.shm_mode {
            Some(m) => parse_mode("shm-mode", m)?,
            None => 0o644,
        };
        if shm_mode & 0o022 != 0 {
            return Err(ConfigError::Value {
                key: "shm-mode",
                value: format!("{shm_mode:04o}"),
                why: "shared memory must not be writable by group or others (0644 or tighter)"
                    .into(),
            });
        }
        let instance = s
            .instance
            .clone()
            .unwrap_or_else(|| paths::DEFAULT_INSTANCE.to_string());
        if instance.is_empty() || instance.contains('/') || instance.starts_with('.') {
            return Err(ConfigError::Value {
                key: "instance",
                value: instance,
                why: "must be a plain file name".into(),
            });
        }
        let mut restart_budget = RestartBudget::default();
        if let Some(n) = s.max_restarts {
            restart_budget.max = n;
        }
        if let Some(w) = &s.restart_window {
            restart_budget.window = parse_duration("restart-window", w)?;
        }
        let keep_shm = s.keep_shm.unwrap_or(false);
        if keep_shm && s.state_dir.is_none() {
            return Err(ConfigError::Value {
                key: "keep-shm",
                value: "true".into(),
                why: "needs --state-dir (without it a restarted rtmd starts empty anyway)".into(),
            });
        }
        let group = |key, v: &Option<String>| v.as_deref().map(|g| parse_group(key, g)).transpose();
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        Ok(Config {
            socket: absolute(paths::socket_path(s.socket.clone())),
            shm_dir: absolute(
                s.shm_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(paths::DEFAULT_SHM_DIR)),
            ),
            instance,
            route_capacity: capacity("route-capacity", s.route_capacity, DEFAULT_ROUTE_CAPACITY)?,
            arp_capacity: capacity("arp-capacity", s.arp_capacity, DEFAULT_ARP_CAPACITY)?,
            socket_mode: match &s.socket_mode {
                Some(m) => parse_mode("socket-mode", m)?,
                None => 0o660,
            },
            shm_mode,
            socket_gid: group("socket-group", &s.socket_group)?,
            shm_gid: group("shm-group", &s.shm_group)?,
            admin_gid: group("admin-group", &s.admin_group)?,
            state_dir: s.state_dir.clone().map(absolute),
            fsync: match &s.fsync {
                Some(f) => f.parse().map_err(|why| ConfigError::Value {
                    key: "fsync",
                    value: f.clone(),
                    why,
                })?,
                None => FsyncPolicy::Always,
            },
            keep_shm,
            restart_budget,
            config_file: None,
            flags: s.clone(),
            file: Settings::default(),
            limits: LimitValues::from_settings(s)?,
            http: crate::http::HttpConfig::resolve(s)?,
            kernel: crate::kernel::KernelConfig::resolve(s)?,
        })
    }

    pub fn route_shm_path(&self) -> PathBuf {
        self.shm_dir.join(format!("{}.route", self.instance))
    }

    pub fn arp_shm_path(&self) -> PathBuf {
        self.shm_dir.join(format!("{}.arp", self.instance))
    }

    /// The kernel's neighbours (`NAME.neigh`): the route file's path with its own extension,
    /// which is how clients find it too ([`rtm_proto::paths::neigh_shm_of`]).
    pub fn neigh_shm_path(&self) -> PathBuf {
        self.shm_dir.join(format!("{}.neigh", self.instance))
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    #[error("{key} = \"{value}\": {why}")]
    Value {
        key: &'static str,
        value: String,
        why: String,
    },
}

fn capacity(key: &'static str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    check_positive(key, v.unwrap_or(default))
}

pub(crate) fn check_positive(key: &'static str, n: usize) -> Result<usize, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Value {
            key,
            value: n.to_string(),
            why: "must be at least 1".into(),
        });
    }
    Ok(n)
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
        let f: Settings = toml::from_str("max-clients = 3\nhandshake-timeout = \"2s\"").unwrap();
        let v = LimitValues::from_settings(&f).unwrap();
        assert_eq!(v.max_clients, 3);
        assert_eq!(v.handshake_timeout, Duration::from_secs(2));
        assert!(toml::from_str::<Settings>("max-client = 3").is_err());
        let bad: Settings = toml::from_str("client-queue = 0").unwrap();
        let e = LimitValues::from_settings(&bad).unwrap_err().to_string();
        assert!(e.contains("client-queue") && e.contains('0'), "{e}");
        assert_eq!(parse_mode("m", "0640").unwrap(), 0o640);
        assert!(parse_mode("m", "999").is_err());
    }

    /// A flag can turn off a boolean the file turned on, and flags win over the file.
    #[test]
    fn flags_over_file() {
        let file: Settings =
            toml::from_str("keep-shm = true\nstate-dir = \"/tmp/s\"\nmax-clients = 3").unwrap();
        let flags = Settings {
            keep_shm: Some(false),
            max_clients: Some(9),
            ..Settings::default()
        };
        let c = Config::resolve(&flags.over(&file)).unwrap();
        assert!(!c.keep_shm);
        assert_eq!(c.limits.max_clients, 9);
        assert!(Config::resolve(&file).unwrap().keep_shm);
    }

    /// Every caller gets the same checks: keep-shm without a state dir, a bad instance name,
    /// writable shared memory.
    #[test]
    fn one_validation_path() {
        for bad in [
            "keep-shm = true",
            "instance = \"../x\"",
            "shm-mode = \"0666\"",
            "route-capacity = 0",
        ] {
            let s: Settings = toml::from_str(bad).unwrap();
            assert!(Config::resolve(&s).is_err(), "{bad} was accepted");
        }
    }
}
