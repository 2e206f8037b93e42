//! The kernel mirror's neighbour side (`rtmd --kernel import`): keeps rtm's neighbour table
//! equal to the kernel's IPv4 neighbours that have a MAC, keyed as the kernel keys them (IP,
//! device).
//!
//! It runs beside the route side in the same actor, on a netlink socket of its own (links and
//! neighbours), so that a burst of neighbour events never makes the routes dump again, nor the
//! other way round. Like the route side it subscribes first, then dumps the links and the
//! neighbours and reconciles (mark and sweep), then follows the events; on `ENOBUFS` it drains
//! the socket, dumps again and reconciles. Its changes go to the neighbour table actor as one
//! `Apply` per batch of datagrams.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use actix::prelude::*;
use rtm_proto::{Neighbour, Origin};
use tracing::{info, warn};

use super::config::KernelConfig;
use super::netlink::neigh::{side_events, NeighSide};
use super::netlink::{self, Link};
use super::reconcile::neigh::{skipped_summary, NeighChange, Neighbours};
use super::{drain, read_batch};
use crate::counters::{Counters, Health, KernelCounters};
use crate::table::neigh::NeighTable;
use crate::table::{Apply, Show, TableOp};

/// Dumps and reconciles, then follows the kernel's link and neighbour events; returns only on
/// a netlink error or a table gone.
pub async fn follow(
    config: KernelConfig,
    table: Addr<NeighTable>,
    health: Arc<Health>,
) -> io::Result<()> {
    let counters = &health.kernel;
    let mut state = Neighbours::default();
    // Subscribed before the dump: a change made while the dump runs is heard afterwards.
    let events = netlink::neighbour_socket(config.rcvbuf)?;
    loop {
        let mut links: HashMap<u32, Link> = netlink::dump_links()
            .await?
            .into_iter()
            .map(|l| (l.index, l))
            .collect();
        let dump = netlink::dump_neighbours().await?;
        for (why, n, ip, index) in skipped_summary(&dump.skipped) {
            tracing::debug!(
                count = n,
                first = %ip,
                link = index,
                "kernel neighbours not mirrored: {}",
                why.why()
            );
        }
        // Read after the dump: a kernel neighbour rtm holds that the dump lacks is swept.
        let in_rtm = table
            .send(Show::<Neighbour> {
                key: None,
                origin: Some(Origin::Kernel),
            })
            .await
            .map_err(|e| io::Error::other(format!("neighbour table unreachable: {e}")))?
            .map_err(|f| io::Error::other(format!("neighbour table: {f}")))?;
        state.adopt(in_rtm, &links);
        let changes = state.reconcile(dump.neighbours, &links);
        let changed = changes.len();
        submit(&table, &mut state, changes, counters).await?;
        Counters::bump(&counters.neigh_dumps);
        info!(
            kernel_neighbours = state.kernel_neighbours(),
            mirrored = state.held(),
            changed,
            "kernel neighbours dumped and reconciled"
        );
        loop {
            let mut changes = Vec::new();
            let overflow = read_batch(&events, "neighbour", |buf| {
                let (heard, bad) = side_events(buf);
                for h in heard {
                    changes.extend(match h {
                        NeighSide::Neigh(ev) => state.event(ev, &links),
                        NeighSide::Link(l) => {
                            let c = state.link(&l);
                            links.insert(l.index, l);
                            c
                        }
                        NeighSide::LinkRemoved(i) => {
                            links.remove(&i);
                            state.link_removed(i)
                        }
                    });
                }
                bad
            })
            .await?;
            submit(&table, &mut state, changes, counters).await?;
            if overflow {
                Counters::bump(&counters.neigh_overflows);
                warn!("the kernel dropped neighbour events (ENOBUFS); dumping again to reconcile");
                drain(&events)?;
                break;
            }
        }
    }
}

/// Sends the changes to the neighbour table as one `Apply` (each applied on its own).
async fn submit(
    table: &Addr<NeighTable>,
    state: &mut Neighbours,
    changes: Vec<NeighChange>,
    counters: &KernelCounters,
) -> io::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ops: Vec<TableOp<Neighbour>> = changes
        .into_iter()
        .map(|c| match c {
            NeighChange::Put(n) => TableOp::Replace(n),
            NeighChange::Del(k) => TableOp::Del(k),
        })
        .collect();
    let n = ops.len() as u64;
    let keys: Vec<_> = ops
        .iter()
        .map(|o| (o.key(), matches!(o, TableOp::Del(_))))
        .collect();
    let outcome = table
        .send(Apply::new(ops, true, true))
        .await
        .map_err(|e| io::Error::other(format!("neighbour table unreachable: {e}")))?;
    let mut refused = 0;
    for (i, why) in &outcome.failures {
        // A delete of a key already gone is no loss; a put refused is (a full table, …):
        // the first of a batch is logged, with the count after it.
        if let Some((Some(key), false)) = keys.get(*i as usize) {
            if refused == 0 {
                warn!(%key, "kernel neighbour not mirrored: {why}");
            }
            state.refused(key);
            refused += 1;
        }
    }
    if refused > 1 {
        warn!(refused, "kernel neighbours not mirrored in this batch");
    }
    Counters::bump_by(&counters.neigh_refused, refused);
    Counters::bump_by(&counters.neigh_changes, n - outcome.failures.len() as u64);
    Ok(())
}
