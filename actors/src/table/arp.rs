//! The ARP table actor: [`TableActor`] over [`ArpEntry`], keyed by MAC address.

use rtm_proto::types::MacAddr;
use rtm_proto::wire::{Failure, Key, Table};
use rtm_proto::ArpEntry;

use super::{TableActor, TableRecord};
use crate::restart::ActorKind;

pub type ArpTable = TableActor<ArpEntry>;

impl TableRecord for ArpEntry {
    const TABLE: Table = Table::Arp;
    const ACTOR: ActorKind = ActorKind::Arp;

    fn wire_key(key: MacAddr) -> Key {
        Key::Arp(key)
    }

    fn validate(&self) -> Result<(), Failure> {
        ArpEntry::validate(self).map_err(|e| Failure::Invalid(e.to_string()))
    }
}
