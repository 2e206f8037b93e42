//! The kernel neighbour table actor: [`TableActor`] over [`Neighbour`], keyed as the kernel
//! keys them, by (IP, device). Only the kernel mirror writes it (`rtmd --kernel import`); it
//! keeps no journal, since the mirror dumps the kernel's neighbours again at every start.

use rtm_proto::wire::{Failure, Key, Table};
use rtm_proto::{NeighKey, Neighbour};

use super::{TableActor, TableRecord};
use crate::restart::ActorKind;

pub type NeighTable = TableActor<Neighbour>;

impl TableRecord for Neighbour {
    const TABLE: Table = Table::Neigh;
    const ACTOR: ActorKind = ActorKind::Neigh;

    fn wire_key(key: NeighKey) -> Key {
        Key::Neigh(key)
    }

    fn validate(&self) -> Result<(), Failure> {
        Neighbour::validate(self).map_err(|e| Failure::Invalid(e.to_string()))
    }
}
