//! `RouteGet` (longest-prefix match for an address) and `ArpGet` (the entry of a MAC).

use std::net::Ipv4Addr;

use rtm_proto::wire::{Failure, Reply, Table};
use rtm_proto::{ArpEntry, MacAddr};

use super::unavailable;
use crate::session::Services;
use crate::table::route::Lookup;
use crate::table::Show;

pub async fn route(svc: &Services, addr: Ipv4Addr) -> Result<Reply, Failure> {
    match svc.route.send(Lookup(addr)).await {
        Ok(Ok(Some(r))) => Ok(Reply::Route(r)),
        Ok(Ok(None)) => Err(Failure::NotFound {
            table: Table::Route,
            key: format!("matching {addr}"),
        }),
        Ok(Err(f)) => Err(f),
        Err(e) => Err(unavailable(Table::Route, e)),
    }
}

pub async fn arp(svc: &Services, mac: MacAddr) -> Result<Reply, Failure> {
    match svc.arp.send(Show::<ArpEntry>::of(Some(mac))).await {
        Ok(Ok(mut v)) if !v.is_empty() => Ok(Reply::Arp(v.remove(0))),
        Ok(Err(f)) => Err(f),
        Ok(Ok(_)) => Err(Failure::NotFound {
            table: Table::Arp,
            key: mac.to_string(),
        }),
        Err(e) => Err(unavailable(Table::Arp, e)),
    }
}
