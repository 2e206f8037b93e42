//! A minimal data-plane agent on the rtm library alone: it registers, keeps a mirror of the
//! route table and answers a longest-prefix match from shared memory after every update.
//!
//! `rtm-client-only SOCKET ADDRESS`

#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;

use rtm::shm::{RouteReader, TableReader};
use rtm::wire::{Caps, Tables};
use rtm::{Client, Mirror, Update};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let socket = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| rtm::paths::socket_path(None));
    let addr: Ipv4Addr = args.next().as_deref().unwrap_or("10.0.0.1").parse()?;

    let mut client = Client::connect(&socket, "client-only", Caps::default()).await?;
    let mut mirror = Mirror::open(client.welcome(), client.shm_owners(), Tables::Route, true)?;
    let lpm = RouteReader::open(client.welcome().route_shm.as_ref())?;
    client.subscribe(Tables::Route).await?;
    let mut updates = Vec::new();
    while let Some(event) = client.next_event().await? {
        mirror.on_event(event, &mut updates);
        for u in updates.drain(..) {
            if u == Update::Bye {
                return Ok(());
            }
        }
        let (routes, _) = mirror.counts();
        match lpm.lookup(addr)? {
            Some(route) => println!("{routes} routes; {addr} via {route}"),
            None => println!("{routes} routes; no route to {addr}"),
        }
    }
    Ok(())
}
