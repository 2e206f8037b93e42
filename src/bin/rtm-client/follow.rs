//! The registered client: subscribe, print the tables as a sync, then every event with the
//! entry read from shared memory; SIGUSR1 re-reads the tables, SIGUSR2 prints the mirror,
//! SIGINT/SIGTERM deregister. With `--reconnect` a lost daemon is retried with backoff.

use std::path::Path;
use std::time::Duration;

use rtm::wire::{Caps, Tables};
use rtm::{paths, Client, ClientError, Mirror, Update};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::cli::{self, render::Line};
use crate::{emit, Args};

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

/// Follows the tables until stopped; returns the exit code.
pub async fn run(args: &Args) -> u8 {
    let mut sig = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            cli::warn(format_args!(
                "rtm-client: cannot install signal handlers: {e}"
            ));
            return 1;
        }
    };
    let socket = paths::client_socket_path(args.socket.clone());
    let mut delays = reconnect_delays();
    loop {
        let mut backoff = delays.next().unwrap_or(RECONNECT_MAX);
        match session(args, &socket, &mut sig).await {
            Ok(Ended::Done) => return 0,
            Ok(Ended::Lost(why)) if !args.reconnect => {
                cli::warn(format_args!("rtm-client: {why}"));
                return 3;
            }
            Err(e) if !args.reconnect => {
                cli::warn(format_args!("rtm-client: {e}"));
                return cli::exit_code(&e);
            }
            Ok(Ended::Lost(why)) => {
                cli::warn(format_args!("rtm-client: {why}; reconnecting"));
                delays = reconnect_delays();
                backoff = delays.next().unwrap_or(RECONNECT_MAX);
            }
            Err(e) => cli::warn(format_args!("rtm-client: {e}; retrying in {backoff:?}")),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = sig.term.recv() => { said_bye(args.json); return 0; }
            _ = sig.int.recv() => { said_bye(args.json); return 0; }
        }
    }
}

/// The longest wait between two reconnection attempts (before jitter).
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Waits between reconnection attempts: from 50 ms, doubling up to 2 s, each stretched by a
/// random part of itself (up to double), so that the clients of a restarted daemon do not all
/// come back at the same instant.
fn reconnect_delays() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(RECONNECT_MAX)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
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
    let mut updates = Vec::new();
    let setup = async {
        let mut client = Client::connect(socket, &args.name, Caps { sigusr1: true }).await?;
        let mirror = Mirror::open(client.welcome(), client.shm_owners(), tables, true)
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
                    mirror.on_event(ev, &mut updates);
                    let bye = updates.contains(&Update::Bye);
                    lines.extend(updates.drain(..).map(Line::from));
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
                dump(&mirror, &mut lines);
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

/// SIGUSR2: the whole mirror as `mirror` lines, then `mirror-done`.
fn dump(mirror: &Mirror, lines: &mut Vec<Line>) {
    lines.extend(
        mirror
            .entries()
            .map(|(table, key, entry)| Line::Mirror { table, key, entry }),
    );
    let (routes, arps) = mirror.counts();
    lines.push(Line::MirrorDone {
        routes,
        arps,
        neighs: mirror.neigh_count(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubling from 50 ms to 2 s, each delay stretched by up to itself; two clients' delays
    /// differ.
    #[test]
    fn reconnect_delays_grow_with_jitter() {
        let a: Vec<Duration> = reconnect_delays().take(10).collect();
        for (i, d) in a.iter().enumerate() {
            let base = (Duration::from_millis(50) * 2u32.pow(i as u32)).min(RECONNECT_MAX);
            assert!(
                *d >= base && *d < base * 2,
                "delay {i}: {d:?} (base {base:?})"
            );
        }
        let b: Vec<Duration> = reconnect_delays().take(10).collect();
        assert_ne!(a, b, "no jitter");
    }
}
