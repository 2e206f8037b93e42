//! `rtm-client` — a ready rtm client (docs/cli.md).
//!
//! Without a command it registers, prints the tables as `sync` lines and one `sync-done` per
//! table, then every live event, reading each entry from shared memory (`follow`). The one-shot
//! commands `dump`, `lookup` and `arp` read shared memory directly and work while the daemon is
//! down (`oneshot`).

#![forbid(unsafe_code)]

#[path = "../../cli/mod.rs"]
mod cli;
mod follow;
mod oneshot;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rtm::wire::Tables;

use cli::render::Line;

/// A ready rtm client: mirrors the tables from shared memory and prints every event.
#[derive(Parser, Debug)]
#[command(name = "rtm-client", version)]
pub struct Args {
    /// Socket path [env: RTM_SOCKET; default: /run/rtm/rtm.sock if it exists, else
    /// $XDG_RUNTIME_DIR/rtm/rtm.sock or /tmp/rtm-$UID/rtm.sock]
    #[arg(long, env = "RTM_SOCKET", hide_env = true, global = true)]
    pub socket: Option<PathBuf>,
    /// This client's name, shown by `rtmctl clients`
    #[arg(long, default_value = "rtm-client")]
    pub name: String,
    /// One JSON object per line
    #[arg(long, global = true)]
    pub json: bool,
    /// Which table(s) to follow or dump
    #[arg(long, value_enum, default_value_t = Which::All, global = true)]
    pub table: Which,
    /// When the daemon goes away without saying bye, retry with backoff and resync
    #[arg(long)]
    pub reconnect: bool,
    /// Shared-memory directory for the one-shot commands when the daemon is down [default: /dev/shm]
    #[arg(long, global = true)]
    pub shm_dir: Option<PathBuf>,
    /// Instance name for the one-shot commands when the daemon is down [default: rtm]
    #[arg(long, global = true)]
    pub instance: Option<String>,
    /// Print the man page (roff) on standard output
    #[arg(long, hide = true)]
    pub print_man_page: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// A 32-bit flow hash, decimal or `0x` hex.
fn parse_hash(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| {
        format!("invalid flow hash {s:?}: expected a 32-bit number, decimal or 0x hex")
    })
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Print the tables straight from shared memory
    Dump,
    /// Longest-prefix match for ADDRESS from shared memory; `-` reads one address per line
    /// from standard input and answers each on its own line
    Lookup {
        address: String,
        /// Answer with the one path a flow of this hash takes (decimal or 0x hex, 32 bits), as
        /// a data plane spreading flows over a multipath route's paths by their weights would
        #[arg(long, value_name = "HASH", value_parser = parse_hash)]
        flow_hash: Option<u32>,
    },
    /// The ARP entry for MAC from shared memory; `-` reads one MAC per line from standard input
    Arp { mac: String },
    /// The kernel's neighbours with IP (on every device, or on --dev), or with MAC, from shared
    /// memory
    Neigh {
        /// An IPv4 address or a MAC address
        key: String,
        /// Only the neighbour on this device
        #[arg(long, value_name = "IFNAME")]
        dev: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Which {
    Route,
    Arp,
    /// Routes and ARP entries
    All,
    /// The kernel's neighbours (rtmd --kernel import)
    Neigh,
    /// Routes, ARP entries and the kernel's neighbours
    Every,
}

impl From<Which> for Tables {
    fn from(w: Which) -> Tables {
        match w {
            Which::Route => Tables::Route,
            Which::Arp => Tables::Arp,
            Which::All => Tables::All,
            Which::Neigh => Tables::Neigh,
            Which::Every => Tables::Every,
        }
    }
}

fn main() -> ExitCode {
    let args: Args = match cli::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.print_man_page {
        use clap::CommandFactory;
        return match cli::man::print(Args::command(), "1", &[]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    let rt = match cli::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            cli::warn(format_args!("rtm-client: cannot start: {e}"));
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async {
        match args.cmd {
            Some(ref cmd) => oneshot::run(&args, cmd).await,
            None => follow::run(&args).await,
        }
    });
    ExitCode::from(code)
}

/// One-shot output: a closed stdout leaves nothing more to do, so its error is not kept.
pub fn print(s: &str) {
    let _ = cli::print(s);
}

/// Prints the lines; an error means stdout is gone (the reader of a pipe exited).
pub fn emit(lines: &mut Vec<Line>, json: bool) -> std::io::Result<()> {
    let text: String = lines.drain(..).map(|l| l.render(json) + "\n").collect();
    if text.is_empty() {
        return Ok(());
    }
    cli::print(&text)
}
