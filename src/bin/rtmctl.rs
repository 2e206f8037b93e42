//! `rtmctl` — administer and inspect a running `rtmd` (SPEC §3).
//!
//! Exit codes: 0 done; 1 bad usage or input (nothing sent); 2 the daemon refused;
//! 3 the daemon cannot be reached.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rtm::command::{self, Command, UsageError};
use rtm::output::{self, Entry, Line};
use rtm::wire::{Caps, Op, Reply, Request, Tables};
use rtm::{cli, paths, Client, ClientError, Mirror};
use tokio::signal::unix::{signal, SignalKind};

/// Administer and inspect the rtm daemon.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    override_usage = "rtmctl [--socket PATH] [-j|--json] OBJECT COMMAND [ARGS]",
    after_help = "Commands:\n  route add|change|replace PREFIX [via GW] [dev IFNAME] [metric N]\n  route del PREFIX | route show [PREFIX] | route get ADDRESS | route flush\n  arp add|change|replace MAC IP [dev IFNAME]\n  arp del MAC | arp show [MAC] | arp get MAC | arp flush\n  flush | clients | watch | status | batch FILE|- [--force]"
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

enum Fail {
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
    let args: Args = match rtm::cli::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let result = command::parse(&args.words)
        .map_err(Fail::from)
        .and_then(|cmd| {
            let rt = rtm::cli::runtime().map_err(|e| Fail::Client(ClientError::Io(e)))?;
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
            ExitCode::from(e.exit_code() as u8)
        }
        Err(Fail::Code(c)) => ExitCode::from(c),
    }
}

/// One-shot output: a closed stdout leaves nothing more to do, so its error is not kept.
fn print(s: &str) {
    let _ = cli::print(s);
}

async fn run(cmd: Command, socket: PathBuf, json: bool) -> Result<(), Fail> {
    // Read a batch before connecting: a bad file is a usage error even with no daemon.
    let batch = match &cmd {
        Command::Batch { file, .. } => Some(read_batch(file)?),
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
        Command::RouteShow(key) => print(&output::routes(&client.show_routes(key).await?, json)),
        Command::ArpShow(key) => print(&output::arps(&client.show_arps(key).await?, json)),
        Command::RouteGet(addr) => match client.request(Request::RouteGet(addr)).await? {
            Reply::Route(r) => print(&output::entry(&Entry::Route(r), json)),
            other => return Err(unexpected(other)),
        },
        Command::ArpGet(mac) => match client.request(Request::ArpGet(mac)).await? {
            Reply::Arp(a) => print(&output::entry(&Entry::Arp(a), json)),
            other => return Err(unexpected(other)),
        },
        Command::Clients => match client.request(Request::Clients).await? {
            Reply::Clients(list) => print(&output::clients(&list, json)),
            other => return Err(unexpected(other)),
        },
        Command::Status => match client.request(Request::Status).await? {
            Reply::Status(st) => print(&output::status(&st, json)),
            other => return Err(unexpected(other)),
        },
        Command::Watch => watch(client, json).await?,
        Command::Batch { force, .. } => {
            run_batch(&mut client, batch.unwrap_or_default(), force).await?
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

/// A batch file: every change with its line number, and the first line that did not parse
/// (with `--force`: all of them).
#[derive(Default)]
struct Batch {
    ops: Vec<(usize, Op)>,
    bad: Vec<(usize, String)>,
}

fn read_batch(file: &str) -> Result<Batch, Fail> {
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| Fail::Usage(format!("cannot read batch file \"{file}\": {e}")))?;
    let mut batch = Batch::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "not valid UTF-8".to_string())
            .and_then(|l| command::parse_batch_line(l).map_err(|e| e.to_string()));
        match parsed {
            Ok(Some(op)) => batch.ops.push((n, op)),
            Ok(None) => {}
            Err(e) => batch.bad.push((n, e)),
        }
    }
    Ok(batch)
}

/// Sends the batch in frames of many changes each. Without `force` everything before the first
/// bad line is applied and the run stops there; with `force` every good line is applied and
/// every bad one reported, in line order.
async fn run_batch(client: &mut Client, batch: Batch, force: bool) -> Result<(), Fail> {
    let first_bad = batch.bad.first().map(|(n, _)| *n);
    let ops: Vec<(usize, Op)> = batch
        .ops
        .into_iter()
        .filter(|(n, _)| force || first_bad.is_none_or(|b| *n < b))
        .collect();
    let mut errors: Vec<(usize, String)> = Vec::new();
    for chunk in ops.chunks(rtm::wire::BATCH_CHUNK) {
        let lines: Vec<usize> = chunk.iter().map(|(n, _)| *n).collect();
        let (_, failures) = client
            .batch(chunk.iter().map(|(_, op)| op.clone()).collect(), force)
            .await?;
        errors.extend(
            failures
                .iter()
                .map(|f| (lines[f.index as usize], f.failure.to_string())),
        );
        if !errors.is_empty() && !force {
            break;
        }
    }
    let refused = !errors.is_empty();
    if force || !refused {
        // Without --force only the first bad line is reached, and only if nothing before it
        // was refused.
        let reached = if force { batch.bad.len() } else { 1 };
        errors.extend(batch.bad.into_iter().take(reached));
    }
    errors.sort_by_key(|(n, _)| *n);
    for (n, e) in &errors {
        cli::warn(format_args!("rtmctl: line {n}: {e}"));
    }
    match (refused, first_bad) {
        (true, _) => Err(Fail::Code(2)),
        (false, Some(_)) => Err(Fail::Code(1)),
        (false, None) => Ok(()),
    }
}

/// Prints live events until the daemon says bye or we are interrupted.
async fn watch(mut client: Client, json: bool) -> Result<(), Fail> {
    let mut term = signal(SignalKind::terminate()).map_err(ClientError::Io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ClientError::Io)?;
    let mut mirror = Mirror::open(client.welcome(), Tables::All, false)
        .map_err(|e| ClientError::Protocol(format!("cannot map shared memory: {e}")))?;
    client.subscribe(Tables::All).await?;
    let mut lines = Vec::new();
    loop {
        tokio::select! {
            ev = client.next_event() => match ev? {
                Some(ev) => {
                    mirror.on_event(ev, &mut lines);
                    let bye = lines.iter().any(|l| matches!(l, Line::Bye));
                    let text: String = lines.drain(..).map(|l| l.render(json) + "\n").collect();
                    let printed = cli::print(&text);
                    if bye {
                        return Ok(());
                    }
                    // Nobody reads the events any more (`rtmctl watch | head -1`): deregister.
                    if printed.is_err() {
                        break;
                    }
                }
                None => {
                    cli::warn(format_args!("rtmctl: rtmd closed the connection without saying bye"));
                    return Err(Fail::Code(3));
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = client.deregister(Duration::from_secs(2)).await;
    Ok(())
}
