//! `rtm-client` — a ready rtm client (SPEC §4).
//!
//! Without a command it registers, prints the tables as `sync` lines and one `sync-done` per
//! table, then every live event, reading each entry from shared memory. The one-shot commands
//! `dump`, `lookup` and `arp` read shared memory directly and work while the daemon is down.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use rtm::output::{self, Entry, Line};
use rtm::shm::{ArpReader, Record, RouteReader, ShmReader};
use rtm::types::parse_addr;
use rtm::wire::{Caps, Table, Tables};
use rtm::{cli, paths, ArpEntry, Client, ClientError, MacAddr, Mirror, Route};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// A ready rtm client: mirrors the tables from shared memory and prints every event.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Socket path [env: RTM_SOCKET]
    #[arg(long, env = "RTM_SOCKET", global = true)]
    socket: Option<PathBuf>,
    /// This client's name, shown by `rtmctl clients`
    #[arg(long, default_value = "rtm-client")]
    name: String,
    /// One JSON object per line
    #[arg(long, global = true)]
    json: bool,
    /// Which table(s) to follow or dump
    #[arg(long, value_enum, default_value_t = Which::All, global = true)]
    table: Which,
    /// When the daemon goes away without saying bye, retry with backoff and resync
    #[arg(long)]
    reconnect: bool,
    /// Shared-memory directory for the one-shot commands when the daemon is down [default: /dev/shm]
    #[arg(long, global = true)]
    shm_dir: Option<PathBuf>,
    /// Instance name for the one-shot commands when the daemon is down [default: rtm]
    #[arg(long, global = true)]
    instance: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print the tables straight from shared memory
    Dump,
    /// Longest-prefix match for ADDRESS from shared memory
    Lookup { address: String },
    /// The ARP entry for MAC from shared memory
    Arp { mac: String },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Which {
    Route,
    Arp,
    All,
}

impl From<Which> for Tables {
    fn from(w: Which) -> Tables {
        match w {
            Which::Route => Tables::Route,
            Which::Arp => Tables::Arp,
            Which::All => Tables::All,
        }
    }
}

fn main() -> ExitCode {
    let args: Args = match rtm::cli::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rt = match rtm::cli::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            cli::warn(format_args!("rtm-client: cannot start: {e}"));
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async {
        match args.cmd {
            Some(ref cmd) => one_shot(&args, cmd).await,
            None => follow(&args).await,
        }
    });
    ExitCode::from(code)
}

/// One-shot output: a closed stdout leaves nothing more to do, so its error is not kept.
fn print(s: &str) {
    let _ = cli::print(s);
}

/// Prints the lines; an error means stdout is gone (the reader of a pipe exited).
fn emit(lines: &mut Vec<Line>, json: bool) -> std::io::Result<()> {
    let text: String = lines.drain(..).map(|l| l.render(json) + "\n").collect();
    if text.is_empty() {
        return Ok(());
    }
    cli::print(&text)
}

// ===== one-shot readers =====

/// The shm paths: explicit flags first, then what a running daemon says, then the defaults.
async fn shm_paths(args: &Args) -> (PathBuf, PathBuf) {
    if args.shm_dir.is_none() && args.instance.is_none() {
        let socket = paths::socket_path(args.socket.clone());
        let ask = Client::connect(&socket, "rtm-client-oneshot", Caps::default());
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(1), ask).await {
            let w = c.welcome();
            return (PathBuf::from(&w.route_shm), PathBuf::from(&w.arp_shm));
        }
    }
    let dir = args
        .shm_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(paths::DEFAULT_SHM_DIR));
    let inst = args.instance.as_deref().unwrap_or(paths::DEFAULT_INSTANCE);
    (
        paths::shm_path(&dir, inst, Table::Route),
        paths::shm_path(&dir, inst, Table::Arp),
    )
}

fn open_fail(path: &Path, e: impl std::fmt::Display) -> u8 {
    cli::warn(format_args!(
        "rtm-client: cannot read shared memory {}: {e}",
        path.display()
    ));
    3
}

async fn one_shot(args: &Args, cmd: &Cmd) -> u8 {
    // Validate input before touching anything.
    let target = match cmd {
        Cmd::Dump => None,
        Cmd::Lookup { address } => match parse_addr(address) {
            Ok(a) => Some(Ok(a)),
            Err(e) => {
                cli::warn(format_args!("rtm-client: {e}"));
                return 1;
            }
        },
        Cmd::Arp { mac } => match mac.parse::<MacAddr>() {
            Ok(m) => Some(Err(m)),
            Err(e) => {
                cli::warn(format_args!("rtm-client: {e}"));
                return 1;
            }
        },
    };
    let (route_path, arp_path) = shm_paths(args).await;
    match target {
        Some(Ok(addr)) => match RouteReader::open(&route_path) {
            Ok(r) => match r.lookup(addr) {
                Some(v) => print(&output::entry(&Entry::Route(v), args.json)),
                None => {
                    cli::warn(format_args!("rtm-client: no route to {addr}"));
                    return 2;
                }
            },
            Err(e) => return open_fail(&route_path, e),
        },
        Some(Err(mac)) => match ArpReader::open(&arp_path) {
            Ok(r) => match r.get(&mac) {
                Some(v) => print(&output::entry(&Entry::Arp(v.entry), args.json)),
                None => {
                    cli::warn(format_args!("rtm-client: no ARP entry for {mac}"));
                    return 2;
                }
            },
            Err(e) => return open_fail(&arp_path, e),
        },
        None => return dump(args, &route_path, &arp_path),
    }
    0
}

/// Every entry of a table file, sorted by key.
fn sorted_entries<R: Record>(path: &Path) -> Result<Vec<R>, u8> {
    let reader = ShmReader::<R>::open(path).map_err(|e| open_fail(path, e))?;
    // `entries` comes in key order.
    Ok(reader.entries().into_iter().map(|v| v.entry).collect())
}

fn dump(args: &Args, route_path: &Path, arp_path: &Path) -> u8 {
    let tables: Tables = args.table.into();
    let read = || -> Result<_, u8> {
        let routes = tables
            .contains(Table::Route)
            .then(|| sorted_entries::<Route>(route_path))
            .transpose()?;
        let arps = tables
            .contains(Table::Arp)
            .then(|| sorted_entries::<ArpEntry>(arp_path))
            .transpose()?;
        Ok((routes, arps))
    };
    let (routes, arps) = match read() {
        Ok(t) => t,
        Err(code) => return code,
    };
    if args.json {
        let mut obj = serde_json::Map::new();
        if let Some(r) = &routes {
            let v: Vec<rtm::json::RouteJson> = r.iter().map(Into::into).collect();
            obj.insert(
                "routes".into(),
                serde_json::to_value(v).expect("serializes"),
            );
        }
        if let Some(a) = &arps {
            let v: Vec<rtm::json::ArpJson> = a.iter().map(Into::into).collect();
            obj.insert("arps".into(), serde_json::to_value(v).expect("serializes"));
        }
        print(&(serde_json::Value::Object(obj).to_string() + "\n"));
    } else {
        if let Some(r) = &routes {
            print(&output::routes(r, false));
        }
        if let Some(a) = &arps {
            print(&output::arps(a, false));
        }
    }
    0
}

// ===== the registered client =====

struct Signals {
    usr1: Signal,
    usr2: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers; SIGUSR1's must exist before we tell the daemon we handle it.
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// How one connection ended.
enum Ended {
    /// The daemon said bye, or we were asked to stop: exit 0.
    Done,
    /// The connection broke: reconnect or fail.
    Lost(String),
}

async fn follow(args: &Args) -> u8 {
    let mut sig = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            cli::warn(format_args!(
                "rtm-client: cannot install signal handlers: {e}"
            ));
            return 1;
        }
    };
    let socket = paths::socket_path(args.socket.clone());
    let mut backoff = Duration::from_millis(50);
    loop {
        match session(args, &socket, &mut sig).await {
            Ok(Ended::Done) => return 0,
            Ok(Ended::Lost(why)) if !args.reconnect => {
                cli::warn(format_args!("rtm-client: {why}"));
                return 3;
            }
            Err(e) if !args.reconnect => {
                cli::warn(format_args!("rtm-client: {e}"));
                return e.exit_code() as u8;
            }
            Ok(Ended::Lost(why)) => {
                cli::warn(format_args!("rtm-client: {why}; reconnecting"));
                backoff = Duration::from_millis(50);
            }
            Err(e) => cli::warn(format_args!("rtm-client: {e}; retrying in {backoff:?}")),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = sig.term.recv() => { said_bye(args.json); return 0; }
            _ = sig.int.recv() => { said_bye(args.json); return 0; }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Stopped by SIGTERM/SIGINT while not registered: nothing to deregister, just say bye.
fn said_bye(json: bool) -> Ended {
    let _ = emit(&mut vec![Line::Bye], json);
    Ended::Done
}

/// Events whose shared-memory slots are loaded together before they are handled.
const WARM_AHEAD: usize = 16;

/// One registration: connect, subscribe, print events until the end.
async fn session(args: &Args, socket: &Path, sig: &mut Signals) -> Result<Ended, ClientError> {
    let json = args.json;
    let tables: Tables = args.table.into();
    let mut lines = Vec::new();
    let setup = async {
        let mut client = Client::connect(socket, &args.name, Caps { sigusr1: true }).await?;
        let mirror = Mirror::open(client.welcome(), tables, true)
            .map_err(|e| ClientError::Protocol(format!("cannot map shared memory: {e}")))?;
        client.subscribe(tables).await?;
        Ok::<_, ClientError>((client, mirror))
    };
    // Stay stoppable while the daemon is slow to answer.
    let (mut client, mut mirror) = tokio::select! {
        r = setup => r?,
        _ = sig.term.recv() => return Ok(said_bye(json)),
        _ = sig.int.recv() => return Ok(said_bye(json)),
    };
    loop {
        client.warm_ahead(WARM_AHEAD, |ev| mirror.warm(ev));
        let printed = tokio::select! {
            ev = client.next_event() => match ev {
                Ok(Some(ev)) => {
                    mirror.on_event(ev, &mut lines);
                    let bye = lines.iter().any(|l| matches!(l, Line::Bye));
                    let printed = emit(&mut lines, json);
                    if bye {
                        return Ok(Ended::Done);
                    }
                    printed
                }
                Ok(None) => return Ok(Ended::Lost("rtmd closed the connection without saying bye".into())),
                Err(e) => return Ok(Ended::Lost(e.to_string())),
            },
            _ = sig.usr1.recv() => {
                // A doorbell, not data: the flush is already in shared memory.
                mirror.reload_all();
                lines.push(Line::Signal("SIGUSR1"));
                emit(&mut lines, json)
            }
            _ = sig.usr2.recv() => {
                mirror.dump(&mut lines);
                emit(&mut lines, json)
            }
            _ = sig.term.recv() => break,
            _ = sig.int.recv() => break,
        };
        // Nobody reads what this client prints any more (`rtm-client | head -1`): leave at
        // once rather than hold a registration the daemon keeps sending to.
        if printed.is_err() {
            break;
        }
    }
    mirror.clear();
    if let Err(e) = client.deregister(Duration::from_secs(2)).await {
        cli::warn(format_args!(
            "rtm-client: deregistration not acknowledged: {e}"
        ));
    }
    lines.push(Line::Bye);
    let _ = emit(&mut lines, json);
    Ok(Ended::Done)
}
