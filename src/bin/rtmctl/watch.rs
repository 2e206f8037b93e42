//! `rtmctl watch`: a registered subscriber that keeps no copy of the tables and prints live
//! events only, until the daemon says bye or the command is interrupted.

use std::time::Duration;

use rtm::wire::Tables;
use rtm::{Client, ClientError, Mirror, Update};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{self, render::Line};
use crate::Fail;

/// Prints live events until the daemon says bye or we are interrupted.
pub async fn run(mut client: Client, json: bool) -> Result<(), Fail> {
    let mut term = signal(SignalKind::terminate()).map_err(ClientError::Io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ClientError::Io)?;
    // Every table the daemon keeps: the kernel's neighbours too where it mirrors them.
    let w = client.welcome();
    let neighbours = w.version >= 8 && rtm::paths::neigh_shm_of(w.route_shm.as_ref()).exists();
    let tables = if neighbours {
        Tables::Every
    } else {
        Tables::All
    };
    let mut mirror = Mirror::open(client.welcome(), client.shm_owners(), tables, false)
        .map_err(|e| ClientError::Protocol(format!("cannot map shared memory: {e}")))?;
    client.subscribe(tables).await?;
    let mut updates = Vec::new();
    loop {
        tokio::select! {
            ev = client.next_event() => match ev? {
                Some(ev) => {
                    mirror.on_event(ev, &mut updates);
                    let bye = updates.contains(&Update::Bye);
                    let text: String = updates
                        .drain(..)
                        .map(|u| Line::from(u).render(json) + "\n")
                        .collect();
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
