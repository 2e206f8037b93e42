//! `rtmd` — the rtm daemon. Runs in the foreground, logs to stderr (`RUST_LOG`, default info).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rtm::paths;
use rtm_actors::config::{self, Config, ConfigError, FileConfig};
use rtm_actors::journal::FsyncPolicy;
use rtm_actors::restart::RestartBudget;

/// The rtm daemon: owns the routing and ARP tables, publishes them in shared memory and
/// notifies every registered client of each change.
#[derive(Parser, Debug)]
#[command(version, about, args_override_self = true)]
struct Args {
    /// Socket path [env: RTM_SOCKET; default: /run/rtm/rtm.sock for root,
    /// $XDG_RUNTIME_DIR/rtm/rtm.sock, or /tmp/rtm-$UID/rtm.sock]
    #[arg(long, env = "RTM_SOCKET")]
    socket: Option<PathBuf>,
    /// Directory of the shared-memory files [default: /dev/shm]
    #[arg(long)]
    shm_dir: Option<PathBuf>,
    /// Instance name: the files are DIR/NAME.route and DIR/NAME.arp [default: rtm]
    #[arg(long)]
    instance: Option<String>,
    /// Most routes the table holds [default: 1048576]
    #[arg(long)]
    route_capacity: Option<usize>,
    /// Most ARP entries the table holds [default: 262144]
    #[arg(long)]
    arp_capacity: Option<usize>,
    /// Most registered subscribers at once [default: 1024]
    #[arg(long)]
    max_clients: Option<u32>,
    /// Notifications queued per subscriber before it gets a resync [default: 65536]
    #[arg(long)]
    client_queue: Option<usize>,
    /// Close connections that have not said hello within this time [default: 10s]
    #[arg(long)]
    handshake_timeout: Option<String>,
    /// Largest request frame in bytes [default: 1048576]
    #[arg(long)]
    max_frame: Option<usize>,
    /// Requests a client may have read ahead of their answers; reading pauses beyond [default: 64]
    #[arg(long)]
    max_inflight: Option<usize>,
    /// Most operations in one batch request [default: 16384]
    #[arg(long)]
    max_batch: Option<usize>,
    /// Socket file mode, octal; 0666 lets every local user read and subscribe [default: 0660]
    #[arg(long)]
    socket_mode: Option<String>,
    /// Group (name or gid) of the socket file, so its members can connect
    #[arg(long)]
    socket_group: Option<String>,
    /// Members of this group (name or gid) may change the tables, besides root and rtmd's user
    #[arg(long)]
    admin_group: Option<String>,
    /// Shared-memory file mode, octal, 0644 or tighter [default: 0644]
    #[arg(long)]
    shm_mode: Option<String>,
    /// Group (name or gid) of the shared-memory files (with --shm-mode 0640: only they read)
    #[arg(long)]
    shm_group: Option<String>,
    /// Keep the tables in DIR (snapshot + journal): every acknowledged change survives a crash
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// With --state-dir: fsync the journal before each reply (always) or leave it to the
    /// kernel (never: survives an rtmd crash, not a power loss) [default: always]
    #[arg(long, value_name = "always|never")]
    fsync: Option<String>,
    /// Leave the shared-memory files in place at a clean stop (for a warm restart)
    #[arg(long)]
    keep_shm: bool,
    /// Actor restarts allowed within --restart-window before rtmd exits with code 70 [default: 5]
    #[arg(long)]
    max_restarts: Option<u32>,
    /// The window of --max-restarts [default: 10s]
    #[arg(long)]
    restart_window: Option<String>,
    /// TOML config file (keys as the long flags); SIGHUP re-reads its limits
    #[arg(long)]
    config: Option<PathBuf>,
}

fn build(args: Args) -> Result<Config, ConfigError> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    // Flags override the file, which overrides the built-in defaults.
    let limit_flags = FileConfig {
        max_clients: args.max_clients,
        client_queue: args.client_queue,
        handshake_timeout: args.handshake_timeout.clone(),
        max_frame: args.max_frame,
        max_inflight: args.max_inflight,
        max_batch: args.max_batch,
        ..FileConfig::default()
    };
    let limits = config::effective_limits(&file, &limit_flags)?;
    let socket_mode = args.socket_mode.or(file.socket_mode);
    let shm_mode = args.shm_mode.or(file.shm_mode);
    let shm_mode = match shm_mode {
        Some(m) => config::parse_mode("shm-mode", &m)?,
        None => 0o644,
    };
    if shm_mode & 0o022 != 0 {
        return Err(ConfigError::Value {
            key: "shm-mode",
            value: format!("{shm_mode:04o}"),
            why: "shared memory must not be writable by group or others (0644 or tighter)".into(),
        });
    }
    let capacity = |key: &'static str, v: Option<usize>, d: usize| match v.unwrap_or(d) {
        0 => Err(ConfigError::Value {
            key,
            value: "0".into(),
            why: "must be at least 1".into(),
        }),
        n => Ok(n),
    };
    let instance = args
        .instance
        .or(file.instance)
        .unwrap_or_else(|| paths::DEFAULT_INSTANCE.to_string());
    if instance.is_empty() || instance.contains('/') || instance.starts_with('.') {
        return Err(ConfigError::Value {
            key: "instance",
            value: instance,
            why: "must be a plain file name".into(),
        });
    }
    let group = |key, v: Option<String>| v.map(|g| config::parse_group(key, &g)).transpose();
    let mut budget = RestartBudget::default();
    if let Some(n) = args.max_restarts.or(file.max_restarts) {
        budget.max = n;
    }
    if let Some(w) = args.restart_window.or(file.restart_window) {
        budget.window = config::parse_duration("restart-window", &w)?;
    }
    let state_dir = args.state_dir.or(file.state_dir);
    let keep_shm = args.keep_shm || file.keep_shm.unwrap_or(false);
    if keep_shm && state_dir.is_none() {
        return Err(ConfigError::Value {
            key: "keep-shm",
            value: "true".into(),
            why: "needs --state-dir (without it a restarted rtmd starts empty anyway)".into(),
        });
    }
    // Clients get these paths from the daemon and may run in another directory.
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    Ok(Config {
        socket: absolute(paths::socket_path(args.socket.or(file.socket))),
        shm_dir: absolute(
            args.shm_dir
                .or(file.shm_dir)
                .unwrap_or_else(|| PathBuf::from(paths::DEFAULT_SHM_DIR)),
        ),
        instance,
        route_capacity: capacity(
            "route-capacity",
            args.route_capacity.or(file.route_capacity),
            config::DEFAULT_ROUTE_CAPACITY,
        )?,
        arp_capacity: capacity(
            "arp-capacity",
            args.arp_capacity.or(file.arp_capacity),
            config::DEFAULT_ARP_CAPACITY,
        )?,
        socket_mode: match socket_mode {
            Some(m) => config::parse_mode("socket-mode", &m)?,
            None => 0o660,
        },
        shm_mode,
        socket_gid: group("socket-group", args.socket_group.or(file.socket_group))?,
        shm_gid: group("shm-group", args.shm_group.or(file.shm_group))?,
        admin_gid: group("admin-group", args.admin_group.or(file.admin_group))?,
        fsync: match args.fsync.or(file.fsync) {
            Some(f) => f.parse().map_err(|why| ConfigError::Value {
                key: "fsync",
                value: f.clone(),
                why,
            })?,
            None => FsyncPolicy::Always,
        },
        state_dir: state_dir.map(absolute),
        keep_shm,
        restart_budget: budget,
        config_file: args.config,
        limit_flags,
        limits,
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in a log file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log write that fails (stderr closed) must not panic in whatever actor logged.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match build(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rtmd: {e}");
            return ExitCode::from(1);
        }
    };
    match rtm_actors::run(config) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("rtmd: {e}");
            ExitCode::from(1)
        }
    }
}
