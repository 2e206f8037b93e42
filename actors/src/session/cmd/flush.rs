//! A flush: empty the tables, then ring every client that handles SIGUSR1.

use rtm_proto::wire::{Failure, Table, Tables};
use rtm_proto::{ArpEntry, Neighbour, Route};

use super::{registry_unavailable, unavailable};
use crate::counters::Counters;
use crate::registry;
use crate::session::Services;
use crate::signal_broker::SignalClients;
use crate::table::{Apply, TableOp};

/// Empties the tables, then — once all of them are empty in shared memory — signals every
/// client that handles SIGUSR1. Returns the first flushed table's sequence number. If a table
/// cannot be flushed, the clients are still signalled for the ones that were. Without
/// `overriding`, a table holding entries of another origin (the kernel's) is not flushed.
pub async fn flush(svc: &Services, tables: Tables, overriding: bool) -> Result<u64, Failure> {
    // A table that does not exist refuses the whole flush, before any table is emptied.
    if tables.contains(Table::Neigh) {
        svc.neighbours()?;
    }
    let mut first_seq = None;
    let mut failure = None;
    for t in tables.iter() {
        let outcome = match t {
            Table::Route => svc
                .route
                .send(Apply::<Route>::new(vec![TableOp::Flush], false, overriding))
                .await
                .map_err(|e| unavailable(t, e)),
            Table::Arp => svc
                .arp
                .send(Apply::<ArpEntry>::new(
                    vec![TableOp::Flush],
                    false,
                    overriding,
                ))
                .await
                .map_err(|e| unavailable(t, e)),
            Table::Neigh => match svc.neighbours() {
                Ok(n) => n
                    .send(Apply::<Neighbour>::new(
                        vec![TableOp::Flush],
                        false,
                        overriding,
                    ))
                    .await
                    .map_err(|e| unavailable(t, e)),
                Err(f) => Err(f),
            },
        };
        match outcome.map(|o| (o.last_seq, o.failures.into_iter().next())) {
            Ok((seq, None)) => {
                first_seq.get_or_insert(seq);
            }
            Ok((_, Some((_, f)))) | Err(f) => {
                failure = Some(f);
                break;
            }
        }
    }
    if first_seq.is_some() {
        Counters::bump(&svc.health.counters.flushes);
        signal_flush(svc).await?;
    }
    match (failure, first_seq) {
        (Some(f), _) => Err(f),
        (None, seq) => Ok(seq.unwrap_or_default()),
    }
}

/// SIGUSR1 to every registered client that announced a handler.
async fn signal_flush(svc: &Services) -> Result<(), Failure> {
    let targets = svc
        .registry
        .send(registry::SignalTargets)
        .await
        .map_err(registry_unavailable)?;
    if !targets.is_empty() {
        svc.broker
            .send(SignalClients(targets))
            .await
            .map_err(|e| Failure::Internal(format!("signal broker unavailable: {e}")))?;
    }
    Ok(())
}
