//! `rtmctl` — administer and inspect a running `rtmd` (docs/cli.md).
//!
//! - `commands`: the table of objects and commands that the parser, the help, the completions
//!   and the man page read;
//! - `grammar`: the `OBJECT COMMAND [ARGS]` words (and batch lines) → a [`Command`];
//!   `select`: the selectors of `show` and `flush`;
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
mod commands;
mod grammar;
mod select;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use clap::{CommandFactory, FromArgMatches, Parser};
use rtm::wire::{Caps, Op, Reply, Request};
use rtm::{paths, Client, ClientError, Entry};

use cli::render;
use grammar::{Command, UsageError};

const ABOUT: &str = "Administer and inspect the rtm daemon: routes, ARP entries, clients, status";

/// Administer and inspect the rtm daemon: routes, ARP entries, clients, status.
#[derive(Parser, Debug)]
#[command(
    name = "rtmctl",
    about = ABOUT,
    version,
    disable_help_flag = true,
    override_usage = "rtmctl [--socket PATH] [-j|--json] [-p|--pretty] [--override-kernel] OBJECT COMMAND [ARGS]"
)]
struct Args {
    #[command(flatten)]
    globals: Globals,
    /// OBJECT COMMAND and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    words: Vec<String>,
}

// The options before OBJECT (no doc comment: it would become the about line).
#[derive(clap::Args, Debug)]
struct Globals {
    /// Socket path [env: RTM_SOCKET; default: /run/rtm/rtm.sock if it exists, else
    /// $XDG_RUNTIME_DIR/rtm/rtm.sock or /tmp/rtm-$UID/rtm.sock]
    #[arg(long, env = "RTM_SOCKET", hide_env = true)]
    socket: Option<PathBuf>,
    /// Print JSON
    #[arg(short = 'j', long)]
    json: bool,
    /// Print JSON, indented (implies -j)
    #[arg(short = 'p', long)]
    pretty: bool,
    /// Change entries the kernel owns too (routes mirrored with `rtmd --kernel import`,
    /// which the kernel would put back); without it they are refused
    #[arg(long)]
    override_kernel: bool,
    /// Print help: also after any object or command, or as `rtmctl help OBJECT [COMMAND]`
    #[arg(short = 'h', long)]
    help: bool,
    /// Print the man page (roff) on standard output
    #[arg(long, hide = true)]
    print_man_page: bool,
}

/// The whole command line, for help, completions and the man page (from `commands`' table).
fn full_command() -> clap::Command {
    let top = clap::Command::new("rtmctl")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .override_usage("rtmctl [--socket PATH] [-j|--json] [-p|--pretty] [--override-kernel] OBJECT COMMAND [ARGS]")
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .after_help("Exit codes: 0 done; 1 bad usage or input (nothing sent); 2 the daemon refused; 3 the daemon cannot be reached.");
    commands::command(<Globals as clap::Args>::augment_args(top))
}

/// The words a help request is about, if the command line asks for help: `help [OBJECT
/// [COMMAND]]`, `-h`/`--help` anywhere, or `OBJECT [COMMAND] help`.
fn help_request(words: &[String]) -> Option<Vec<String>> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w.first() == Some(&"help") {
        return Some(words[1..].to_vec());
    }
    if let Some(i) = w.iter().position(|x| *x == "-h" || *x == "--help") {
        return Some(words[..i].to_vec());
    }
    let known = |path: &[&str]| match path {
        [o] => commands::object(o).is_some_and(|o| !o.verbs.is_empty()),
        [o, v] => commands::object(o).is_some_and(|o| commands::verb(o, v).is_some()),
        _ => false,
    };
    match w.split_last() {
        Some((&"help", path)) if known(path) => Some(words[..path.len()].to_vec()),
        _ => None,
    }
}

/// Prints the help of the deepest object/command named in `path`.
fn print_help(path: &[String]) -> ExitCode {
    let mut cmd = full_command();
    cmd.build();
    let mut at = &mut cmd;
    for word in path {
        // Aliases resolve to their command.
        let name = match at.find_subcommand(word) {
            Some(sub) => sub.get_name().to_string(),
            None => break,
        };
        at = at.find_subcommand_mut(&name).expect("found above");
    }
    print(&at.render_help().to_string());
    ExitCode::SUCCESS
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

/// Output as JSON with `-p`: reformatted, indented.
static PRETTY: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let matches = match Args::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mut args = Args::from_arg_matches(&matches).expect("matches come from Args");
    // Also after the command (`rtmctl route del P --override-kernel`), where the refusal's
    // message leads a user to add it.
    let before = args.words.len();
    args.words.retain(|w| w != "--override-kernel");
    let g = Globals {
        override_kernel: args.globals.override_kernel || args.words.len() < before,
        ..args.globals
    };
    if g.print_man_page {
        return match cli::man::print(full_command(), "1", &commands::grammar_lines()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    if g.help {
        return print_help(&args.words);
    }
    if args.words.is_empty() {
        cli::warn(format_args!(
            "rtmctl: missing command; expected: {} (rtmctl help)",
            commands::object_list()
        ));
        return ExitCode::from(1);
    }
    if let Some(path) = help_request(&args.words) {
        return print_help(&path);
    }
    PRETTY.store(g.pretty, Relaxed);
    let json = g.json || g.pretty;
    let result = grammar::parse(&args.words)
        .map_err(Fail::from)
        .and_then(|cmd| {
            if let Command::Completions(shell) = cmd {
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut full_command(), "rtmctl", &mut out);
                print(&String::from_utf8_lossy(&out));
                return Ok(());
            }
            let rt = cli::runtime().map_err(|e| Fail::Client(ClientError::Io(e)))?;
            let socket = paths::client_socket_path(g.socket);
            rt.block_on(run(cmd, socket, json, g.override_kernel))
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

/// One-shot output: a closed stdout leaves nothing more to do, so its error is not kept. With
/// `-p`, JSON is indented.
pub fn print(s: &str) {
    if PRETTY.load(Relaxed) {
        if let Some(pretty) = indented(s) {
            let _ = cli::print(&pretty);
            return;
        }
    }
    let _ = cli::print(s);
}

/// The JSON document (or one document per line) in `s`, indented, keys in the order printed;
/// `None` if it is not JSON.
pub fn indented(s: &str) -> Option<String> {
    let mut out = String::new();
    for line in s.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde::de::IgnoredAny>(line).ok()?;
        indent_json(line, &mut out);
        out.push('\n');
    }
    Some(out)
}

/// Re-indents compact, valid JSON by two spaces, as `serde_json::to_string_pretty` would.
fn indent_json(json: &str, out: &mut String) {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
}

async fn run(cmd: Command, socket: PathBuf, json: bool, overriding: bool) -> Result<(), Fail> {
    // Read a batch before connecting: a bad file is a usage error even with no daemon.
    let batch = match &cmd {
        Command::Batch { file, .. } if file != "-" => Some(batch::read(file)?),
        _ => None,
    };
    let name = if matches!(cmd, Command::Watch) {
        "rtmctl-watch"
    } else {
        "rtmctl"
    };
    let mut client = Client::connect(&socket, name, Caps::default()).await?;
    client.override_kernel(overriding);
    match cmd {
        Command::Change(op) => {
            client.apply(op).await?;
        }
        Command::RouteShow(sel) => {
            let routes = match sel.only_exact() {
                Some(p) => client.show_routes(Some(p)).await?,
                None => {
                    let mut all = client.show_routes(None).await?;
                    all.retain(|r| sel.picks(r));
                    all
                }
            };
            print(&render::routes(&routes, json))
        }
        Command::RouteFlushSome(sel) => {
            let all = client.show_routes(None).await?;
            let ops = all
                .iter()
                .filter(|r| sel.picks(r))
                .map(|r| Op::RouteDel(r.dst))
                .collect();
            delete_all(&mut client, ops).await?
        }
        Command::ArpShow(sel) => {
            let arps = match sel.only_mac() {
                Some(m) => client.show_arps(Some(m)).await?,
                None => {
                    let mut all = client.show_arps(None).await?;
                    all.retain(|a| sel.picks(a));
                    all
                }
            };
            print(&render::arps(&arps, json))
        }
        Command::ArpFlushSome(sel) => {
            let all = client.show_arps(None).await?;
            let ops = all
                .iter()
                .filter(|a| sel.picks(a))
                .map(|a| Op::ArpDel(a.mac))
                .collect();
            delete_all(&mut client, ops).await?
        }
        Command::NeighDel(ip, dev) => {
            let all = client.show_arps(None).await?;
            let with_ip: Vec<_> = all
                .iter()
                .filter(|a| a.ip == ip && dev.as_ref().is_none_or(|d| a.dev.as_ref() == Some(d)))
                .collect();
            let on = dev.as_ref().map(|d| format!(" on {d}")).unwrap_or_default();
            match with_ip[..] {
                [] => {
                    cli::warn(format_args!("rtmctl: no neighbour has IP {ip}{on}"));
                    return Err(Fail::Code(2));
                }
                [one] => {
                    client.apply(Op::ArpDel(one.mac)).await?;
                }
                ref several => {
                    let macs: Vec<String> = several.iter().map(|a| a.to_string()).collect();
                    return Err(Fail::Usage(format!(
                        "{} neighbours have IP {ip}{on}: {}; delete one by its MAC (neigh del MAC)",
                        several.len(),
                        macs.join("; ")
                    )));
                }
            }
        }
        Command::ArpGet(mac) => match client.request(Request::ArpGet(mac)).await? {
            Reply::Arp(a) => print(&render::entry(&Entry::Arp(a), json)),
            other => return Err(unexpected(other)),
        },
        Command::RouteGet(addr) => match client.request(Request::RouteGet(addr)).await? {
            Reply::Route(r) => print(&render::entry(&Entry::Route(r), json)),
            other => return Err(unexpected(other)),
        },
        Command::KernelNeighShow(ip) => print(&render::neighbours(
            &client.show_neighbours(ip).await?,
            json,
        )),
        Command::Clients => print(&render::clients(&client.clients().await?, json)),
        Command::Status => match client.request(Request::Status).await? {
            Reply::Status(st) => print(&render::status(&st, json)),
            other => return Err(unexpected(other)),
        },
        Command::DashboardUrl => match client.request(Request::DashboardUrl).await? {
            Reply::DashboardUrl(d) => print(&render::dashboard_url(&d, json)),
            other => return Err(unexpected(other)),
        },
        Command::Watch => watch::run(client, json).await?,
        Command::Batch { force, .. } => match batch {
            Some(batch) => batch::run(&mut client, batch, force).await?,
            None => batch::run_stream(&mut client, force).await?,
        },
        Command::Completions(_) => unreachable!("answered before connecting"),
        #[cfg(feature = "fault-injection")]
        Command::Debug(action) => match client.request(Request::Debug(action)).await? {
            Reply::Done { .. } => {}
            other => return Err(unexpected(other)),
        },
    }
    Ok(())
}

/// A selective flush: the deletes of what the selectors picked, as ordinary deletes (each
/// with its event), in batches; entries another client deleted meanwhile are not an error.
async fn delete_all(client: &mut Client, ops: Vec<Op>) -> Result<(), Fail> {
    for chunk in ops.chunks(rtm::wire::BATCH_CHUNK) {
        let (_, failures) = client.batch(chunk.to_vec(), true).await?;
        let real: Vec<_> = failures
            .iter()
            .filter(|f| !matches!(f.failure, rtm::wire::Failure::NotFound { .. }))
            .collect();
        if let Some(f) = real.first() {
            cli::warn(format_args!("rtmctl: {}", f.failure));
            return Err(Fail::Code(2));
        }
    }
    Ok(())
}

fn unexpected(r: Reply) -> Fail {
    Fail::Client(ClientError::Protocol(format!("unexpected reply {r:?}")))
}
