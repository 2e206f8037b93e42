//! `Status`: version, uptime, table sizes and capacities, clients, restarts and counters.

use rtm_proto::wire::{self, Failure, Reply, Status, Table};

use super::{registry_unavailable, unavailable};
use crate::registry::ListClients;
use crate::restart::ActorKind;
use crate::session::Services;
use crate::table::Size;

pub async fn status(svc: &Services) -> Result<Reply, Failure> {
    let routes = svc
        .route
        .send(Size)
        .await
        .map_err(|e| unavailable(Table::Route, e))??;
    let arps = svc
        .arp
        .send(Size)
        .await
        .map_err(|e| unavailable(Table::Arp, e))??;
    let clients = svc
        .registry
        .send(ListClients)
        .await
        .map_err(registry_unavailable)?
        .len() as u64;
    Ok(Reply::Status(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: svc.health.started.elapsed().as_secs(),
        routes: routes.len,
        arps: arps.len,
        route_capacity: routes.capacity,
        arp_capacity: arps.capacity,
        clients,
        restarts: svc.health.restarts.counts(),
        counters: {
            let mut c = svc.health.counters.snapshot();
            let n = svc.health.restarts.count(ActorKind::Registry);
            c.insert(wire::REGISTRY_RESTARTS.to_string(), n);
            c
        },
        last_failure: svc.health.restarts.last_failure(),
    }))
}
