//! `Clients`: the registered subscribers, as the registry knows them. A session at version 4
//! or later gets them in pages of at most [`wire::CLIENTS_CHUNK`] (`ClientsPage`), streamed at
//! the client's pace like a `show`; an older session gets one `Clients` reply.

use rtm_proto::wire::{self, Failure, Reply};

use super::{registry_unavailable, Answer};
use crate::registry::ListClients;
use crate::session::Services;

pub async fn list(svc: &Services, version: u16) -> Answer {
    let all = match svc.registry.send(ListClients).await {
        Ok(all) => all,
        Err(e) => return vec![Err::<Reply, Failure>(registry_unavailable(e))],
    };
    if version < 4 {
        return vec![Ok(Reply::Clients(all))];
    }
    if all.is_empty() {
        return vec![Ok(Reply::ClientsPage {
            clients: Vec::new(),
            more: false,
        })];
    }
    let n = all.len().div_ceil(wire::CLIENTS_CHUNK);
    let mut it = all.into_iter();
    (0..n)
        .map(|i| {
            Ok(Reply::ClientsPage {
                clients: it.by_ref().take(wire::CLIENTS_CHUNK).collect(),
                more: i + 1 < n,
            })
        })
        .collect()
}
