//! `rtmctl` — administer and inspect a running `rtmd` (docs/cli.md).
//!
//! - `grammar`: the `OBJECT COMMAND [ARGS]` words (and batch lines) → a [`Command`];
//! - `batch`: `rtmctl batch FILE|-`, many lines per frame;
//! - `watch`: `rtmctl watch`, live events until interrupted;
//! - this file: one request per command, its answer printed.
//!
//! Exit codes: 0 done; 1 bad usage or input (nothing sent); 2 the daemon refused;
//! 3 the daemon cannot be reached.

#![forbid(unsafe_code)]

mod batch;
#[path = "../../cli/mod.rs"]
mod cli;
mod grammar;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rtm::wire::{Caps, Reply, Request};
use rtm::{paths, Client, ClientError, Entry};

use cli::render;
use grammar::{Command, UsageError};

/// Administer and inspect the rtm daemon.
#[derive(Parser, Debug)]
#[command(
    version,
    override_usage = "rtmctl [--socket PATH] [-j|--json] OBJECT COMMAND [ARGS]",
    after_help = "Commands:\n  route add|change|replace PREFIX [via GW] [dev IFNAME] [metric N]\n  route del PREFIX | route show [PREFIX] | route get ADDRESS | route flush\n  arp add|change|replace MAC IP [dev IFNAME]\n  arp del MAC | arp show [MAC] | arp get MAC | arp flush\n  flush | clients | watch | status | batch FILE|- [--force] | dashboard-url"
)]
struct Args {
    /// Socket path [env: RTM_SOCKET]
    #[arg(long, env = "RTM_SOCKET")]
    socket: Option<PathBuf>,
    /// Print JSON
    #[arg(short = 'j', long)]
    json: bool,
    /// OBJECT COMMAND and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    words: Vec<String>,
}

/// How a command failed, and so which exit code it ends with.
pub enum Fail {
    Usage(String),
    Client(ClientError),
    /// Already reported; exit with this code.
    Code(u8),
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        Fail::Client(e)
    }
}

impl From<UsageError> for Fail {
    fn from(e: UsageError) -> Self {
        Fail::Usage(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Args = match cli::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let result = grammar::parse(&args.words)
        .map_err(Fail::from)
        .and_then(|cmd| {
            let rt = cli::runtime().map_err(|e| Fail::Client(ClientError::Io(e)))?;
            rt.block_on(run(cmd, paths::socket_path(args.socket), args.json))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(msg)) => {
            cli::warn(format_args!("rtmctl: {msg}"));
            ExitCode::from(1)
        }
        Err(Fail::Client(e)) => {
            cli::warn(format_args!("rtmctl: {e}"));
            ExitCode::from(cli::exit_code(&e))
        }
        Err(Fail::Code(c)) => ExitCode::from(c),
    }
}

/// One-shot output: a closed stdout leaves nothing more to do, so its error is not kept.
pub fn print(s: &str) {
    let _ = cli::print(s);
}

async fn run(cmd: Command, socket: PathBuf, json: bool) -> Result<(), Fail> {
    // Read a batch before connecting: a bad file is a usage error even with no daemon.
    let batch = match &cmd {
        Command::Batch { file, .. } => Some(batch::read(file)?),
        _ => None,
    };
    let name = if matches!(cmd, Command::Watch) {
        "rtmctl-watch"
    } else {
        "rtmctl"
    };
    let mut client = Client::connect(&socket, name, Caps::default()).await?;
    match cmd {
        Command::Change(op) => {
            client.apply(op).await?;
        }
        Command::RouteShow(key) => print(&render::routes(&client.show_routes(key).await?, json)),
        Command::ArpShow(key) => print(&render::arps(&client.show_arps(key).await?, json)),
        Command::RouteGet(addr) => match client.request(Request::RouteGet(addr)).await? {
            Reply::Route(r) => print(&render::entry(&Entry::Route(r), json)),
            other => return Err(unexpected(other)),
        },
        Command::ArpGet(mac) => match client.request(Request::ArpGet(mac)).await? {
            Reply::Arp(a) => print(&render::entry(&Entry::Arp(a), json)),
            other => return Err(unexpected(other)),
        },
        Command::Clients => match client.request(Request::Clients).await? {
            Reply::Clients(list) => print(&render::clients(&list, json)),
            other => return Err(unexpected(other)),
        },
        Command::Status => match client.request(Request::Status).await? {
            Reply::Status(st) => print(&render::status(&st, json)),
            other => return Err(unexpected(other)),
        },
        Command::DashboardUrl => match client.request(Request::DashboardUrl).await? {
            Reply::DashboardUrl(d) => print(&render::dashboard_url(&d, json)),
            other => return Err(unexpected(other)),
        },
        Command::Watch => watch::run(client, json).await?,
        Command::Batch { force, .. } => {
            batch::run(&mut client, batch.unwrap_or_default(), force).await?
        }
        #[cfg(feature = "fault-injection")]
        Command::Debug(action) => match client.request(Request::Debug(action)).await? {
            Reply::Done { .. } => {}
            other => return Err(unexpected(other)),
        },
    }
    Ok(())
}

fn unexpected(r: Reply) -> Fail {
    Fail::Client(ClientError::Protocol(format!("unexpected reply {r:?}")))
}
