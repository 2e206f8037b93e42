//! `Clients`: the registered subscribers, as the registry knows them.

use rtm_proto::wire::{Failure, Reply};

use super::registry_unavailable;
use crate::registry::ListClients;
use crate::session::Services;

pub async fn list(svc: &Services) -> Result<Reply, Failure> {
    svc.registry
        .send(ListClients)
        .await
        .map(Reply::Clients)
        .map_err(registry_unavailable)
}
