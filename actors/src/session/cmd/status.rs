//! `Status`: version, uptime, table sizes and capacities, clients, restarts and counters.

use rtm_proto::wire::{self, Failure, Reply, Status, Table};

use std::sync::atomic::Ordering::Relaxed;

use super::registry_unavailable;
use crate::registry::ListClients;
use crate::restart::ActorKind;
use crate::session::Services;

/// Answered from what the actors keep in [`Health`](crate::counters::Health): a table busy with
/// file work on its own thread does not hold it up.
pub async fn status(svc: &Services) -> Result<Reply, Failure> {
    let size = |t: Table| {
        let s = &svc.health.table_sizes[t as usize];
        (s.len.load(Relaxed), s.capacity.load(Relaxed))
    };
    let (routes, route_capacity) = size(Table::Route);
    let (arps, arp_capacity) = size(Table::Arp);
    let clients = svc
        .registry
        .send(ListClients)
        .await
        .map_err(registry_unavailable)?
        .len() as u64;
    Ok(Reply::Status(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: svc.health.started.elapsed().as_secs(),
        routes,
        arps,
        route_capacity,
        arp_capacity,
        clients,
        restarts: svc.health.restarts.counts(),
        counters: {
            let mut c = svc.health.counters.snapshot();
            let n = svc.health.restarts.count(ActorKind::Registry);
            c.insert(wire::REGISTRY_RESTARTS.to_string(), n);
            if svc.neigh.is_some() {
                let n = svc.health.restarts.count(ActorKind::Neigh);
                c.insert(wire::NEIGH_RESTARTS.to_string(), n);
                let (neighs, neigh_capacity) = size(Table::Neigh);
                c.insert(wire::NEIGHS.to_string(), neighs);
                c.insert(wire::NEIGH_CAPACITY.to_string(), neigh_capacity);
            }
            if svc.health.kernel.on() {
                let n = svc.health.restarts.count(ActorKind::Kernel);
                c.insert(wire::KERNEL_RESTARTS.to_string(), n);
            }
            for (k, n) in svc.health.journal.snapshot().into_iter().flatten() {
                c.insert(k.to_string(), n);
            }
            for (k, n) in svc.health.kernel.snapshot() {
                c.insert(k.to_string(), n);
            }
            c
        },
        last_failure: svc.health.restarts.last_failure(),
    }))
}
