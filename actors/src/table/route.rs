//! The routing table actor: [`TableActor`] over [`Route`], plus longest-prefix match.

use std::net::Ipv4Addr;

use actix::prelude::*;
use rtm_proto::types::Prefix;
use rtm_proto::wire::{Failure, Key, Table};
use rtm_proto::Route;

use super::{TableActor, TableRecord};
use crate::restart::{guarded, ActorKind};

pub type RouteTable = TableActor<Route>;

impl TableRecord for Route {
    const TABLE: Table = Table::Route;
    const ACTOR: ActorKind = ActorKind::Route;

    fn wire_key(key: Prefix) -> Key {
        Key::Route(key)
    }

    fn validate(&self) -> Result<(), Failure> {
        Route::validate(self).map_err(|e| Failure::Invalid(e.to_string()))
    }
}

/// Longest-prefix match for an address, answered from the table.
#[derive(Message)]
#[rtype(result = "Result<Option<Route>, Failure>")]
pub struct Lookup(pub Ipv4Addr);

impl Handler<Lookup> for RouteTable {
    type Result = Result<Option<Route>, Failure>;

    fn handle(&mut self, msg: Lookup, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, |act, _| act.lookup(msg.0)).ok_or_else(RouteTable::crashed)
    }
}

impl RouteTable {
    /// The route `addr` matches, from the table's own file.
    fn lookup(&self, addr: Ipv4Addr) -> Option<Route> {
        self.shm()?.lookup(addr)
    }
}
