//! Every setting `rtmd` takes, once: as a command-line flag (`--max-clients 10`) and as a key
//! of the TOML config file (`max-clients = 10`). Each is optional here; [`super::Config::resolve`]
//! fills in the defaults and checks the values.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// Declares [`Settings`] and [`Settings::over`] from one list, so a new key cannot be
/// forgotten in the merge of flags over file.
macro_rules! settings {
    ($( $(#[$meta:meta])* $name:ident : $ty:ty, )*) => {
        /// The settings given as flags or in the config file; `None` where not given. The doc
        /// of each field is its `--help` text.
        #[derive(Debug, Default, Clone, PartialEq, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Settings {
            $( $(#[$meta])* pub $name: Option<$ty>, )*
        }

        impl Settings {
            /// These settings where they say something, `base` elsewhere (flags over file).
            pub fn over(&self, base: &Settings) -> Settings {
                Settings { $( $name: self.$name.clone().or_else(|| base.$name.clone()), )* }
            }

            /// Every key as the config file spells it, with its value here if set (as TOML).
            pub fn entries(&self) -> Vec<(String, Option<String>)> {
                vec![ $( (
                    stringify!($name).replace('_', "-"),
                    self.$name.as_ref().map(|v| format!("{v:?}")),
                ), )* ]
            }

            /// Copies `key`'s value from `other` (no effect for an unknown key).
            pub fn take_key(&mut self, key: &str, other: &Settings) {
                $( if key == stringify!($name).replace('_', "-") {
                    self.$name = other.$name.clone();
                } )*
            }
        }
    };
}

settings! {
    /// Socket path [env: RTM_SOCKET; default: /run/rtm/rtm.sock for root,
    /// $XDG_RUNTIME_DIR/rtm/rtm.sock, or /tmp/rtm-$UID/rtm.sock]
    #[arg(long, env = "RTM_SOCKET", hide_env = true)]
    socket: PathBuf,
    /// Directory of the shared-memory files [default: /dev/shm]
    #[arg(long)]
    shm_dir: PathBuf,
    /// Instance name: the files are DIR/NAME.route and DIR/NAME.arp [default: rtm]
    #[arg(long)]
    instance: String,
    /// Most routes the table holds [default: 1048576]
    #[arg(long)]
    route_capacity: usize,
    /// Most ARP entries the table holds [default: 262144]
    #[arg(long)]
    arp_capacity: usize,
    /// Most registered subscribers at once [default: 1024]
    #[arg(long)]
    max_clients: u32,
    /// Most open connections at once, subscribers and one-shot requests alike; more are refused
    /// with a reason [default: 4096]
    #[arg(long)]
    max_connections: u32,
    /// Notifications queued per subscriber before it gets a resync [default: 65536]
    #[arg(long)]
    client_queue: usize,
    /// Close connections that have not said hello within this time [default: 10s]
    #[arg(long)]
    handshake_timeout: String,
    /// Largest request frame in bytes [default: 1048576]
    #[arg(long)]
    max_frame: usize,
    /// Requests a client may have read ahead of their answers; reading pauses beyond [default: 64]
    #[arg(long)]
    max_inflight: usize,
    /// Most operations in one batch request [default: 16384]
    #[arg(long)]
    max_batch: usize,
    /// Socket file mode, octal; 0666 lets every local user read and subscribe [default: 0660]
    #[arg(long)]
    socket_mode: String,
    /// Group (name or gid) of the socket file, so its members can connect
    #[arg(long)]
    socket_group: String,
    /// Members of this group (name or gid) may change the tables, besides root and rtmd's user
    #[arg(long)]
    admin_group: String,
    /// Shared-memory file mode, octal, 0644 or tighter [default: 0644]
    #[arg(long)]
    shm_mode: String,
    /// Group (name or gid) of the shared-memory files (with --shm-mode 0640: only they read)
    #[arg(long)]
    shm_group: String,
    /// Keep the tables in DIR (snapshot + journal): every acknowledged change survives a crash
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// With --state-dir: fsync the journal before each reply (always) or leave it to the
    /// kernel (never: survives an rtmd crash, not a power loss) [default: always]
    #[arg(long, value_name = "always|never")]
    fsync: String,
    /// Leave the shared-memory files in place at a clean stop, for a warm restart (needs
    /// --state-dir); --keep-shm=false turns off what the config file turned on
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    keep_shm: bool,
    /// Actor restarts allowed within --restart-window before rtmd exits with code 70 [default: 5]
    #[arg(long)]
    max_restarts: u32,
    /// The window of --max-restarts [default: 10s]
    #[arg(long)]
    restart_window: String,
    /// Serve the dashboard on ADDR:PORT (loopback only unless --http-allow-remote); open it with
    /// the URL `rtmctl dashboard-url` prints
    #[arg(long, value_name = "ADDR:PORT")]
    http_listen: String,
    /// Let --http-listen take a non-loopback address (plain HTTP: put TLS in front of it)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    http_allow_remote: bool,
    /// Serve the dashboard on a Unix socket too (same mode and group as --socket); there the
    /// peer's uid decides access exactly as for rtmctl, without a token
    #[arg(long, value_name = "PATH")]
    http_socket: PathBuf,
    /// How long a dashboard token stays valid [default: 8h]
    #[arg(long)]
    dashboard_token_ttl: String,
    /// Serve Prometheus metrics (counts only, no authentication) on a loopback ADDR:PORT
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: String,
    /// Follow the kernel's IPv4 routes ("import"), write rtm's own routes into the kernel
    /// ("export"), or both ("import,export"), over rtnetlink; see docs/kernel.md [default: off]
    #[arg(long, value_name = "import|export|import,export")]
    kernel: String,
    /// The kernel routing table followed and written [default: 254, main]
    #[arg(long, value_name = "N")]
    kernel_table: u32,
    /// With --kernel export: the route protocol (`ip route … proto N`) of the routes rtm
    /// writes; rtm owns every route of that number in the table [default: 200]
    #[arg(long, value_name = "N")]
    kernel_proto: u8,
    /// With --kernel export: leave the exported routes in the kernel at a clean stop
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    kernel_keep: bool,
    /// Receive buffer of the kernel-event socket in bytes; small values make the kernel drop
    /// events (ENOBUFS) and rtmd re-dump, which tests use [default: 4194304]
    #[arg(long, hide = true)]
    kernel_rcvbuf: usize,
}

impl Settings {
    /// Reads a config file; an error names the file, line, column and key.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        super::check::load(path).map(|(settings, _)| settings)
    }
}
