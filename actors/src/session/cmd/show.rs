//! `RouteShow`, `ArpShow`, `NeighShow`: a whole table in key order (or one entry), in frames
//! of at most [`wire::SHOW_CHUNK`] entries.

use rtm_proto::wire::{self, Reply, Table};
use std::net::Ipv4Addr;

use rtm_proto::{ArpEntry, MacAddr, Neighbour, Prefix, Route};

use super::{unavailable, Answer};
use crate::session::Services;
use crate::table::Show;

pub async fn routes(svc: Services, key: Option<Prefix>) -> Answer {
    match svc.route.send(Show::<Route>::of(key)).await {
        Ok(Ok(all)) => chunks(all, |routes, more| Reply::Routes { routes, more }),
        Ok(Err(f)) => vec![Err(f)],
        Err(e) => vec![Err(unavailable(Table::Route, e))],
    }
}

pub async fn arps(svc: Services, key: Option<MacAddr>) -> Answer {
    match svc.arp.send(Show::<ArpEntry>::of(key)).await {
        Ok(Ok(all)) => chunks(all, |entries, more| Reply::Arps { entries, more }),
        Ok(Err(f)) => vec![Err(f)],
        Err(e) => vec![Err(unavailable(Table::Arp, e))],
    }
}

/// The kernel's neighbours, all of them or those with one IP (on every device).
pub async fn neighbours(svc: Services, ip: Option<Ipv4Addr>) -> Answer {
    let neigh = match svc.neighbours() {
        Ok(n) => n,
        Err(f) => return vec![Err(f)],
    };
    match neigh.send(Show::<Neighbour>::of(None)).await {
        Ok(Ok(mut all)) => {
            all.retain(|n| ip.is_none_or(|ip| n.ip == ip));
            chunks(all, |entries, more| Reply::Neighs { entries, more })
        }
        Ok(Err(f)) => vec![Err(f)],
        Err(e) => vec![Err(unavailable(Table::Neigh, e))],
    }
}

/// Splits a `show` answer into frames of at most [`wire::SHOW_CHUNK`] entries.
fn chunks<T>(all: Vec<T>, make: impl Fn(Vec<T>, bool) -> Reply) -> Answer {
    if all.is_empty() {
        return vec![Ok(make(Vec::new(), false))];
    }
    let n = all.len().div_ceil(wire::SHOW_CHUNK);
    let mut it = all.into_iter();
    (0..n)
        .map(|i| {
            Ok(make(
                it.by_ref().take(wire::SHOW_CHUNK).collect(),
                i + 1 < n,
            ))
        })
        .collect()
}
