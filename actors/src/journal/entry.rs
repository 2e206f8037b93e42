//! What a journal needs of a table's entry type beyond [`Record`]: its serde form now, and the
//! one formats 1 and 2 stored.

use rtm_proto::shm::Record;
use rtm_proto::types::route_v1::RouteV1;
use rtm_proto::{ArpEntry, Route};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An entry type a journal can store. Format 3 on, a `Put` holds the entry's own serde form;
/// formats 1 and 2 held [`Legacy`](Self::Legacy), which is decoded and converted with
/// [`from_legacy`](Self::from_legacy). Keys kept their form in every format.
pub trait JournalEntry: Record + Serialize + DeserializeOwned {
    /// The entry's serde form in journal formats 1 and 2.
    type Legacy: DeserializeOwned;

    /// The entry a record of format 1 or 2 held. Its origin is set by the caller (from the
    /// record, or [`Origin::Rtm`](rtm_proto::Origin::Rtm) for format 1).
    fn from_legacy(old: Self::Legacy) -> Self;
}

/// A route gained `nexthops` in format 3; formats 1 and 2 held the four fields before it
/// ([`RouteV1`]), so what they hold is a route with one next hop.
impl JournalEntry for Route {
    type Legacy = RouteV1;

    fn from_legacy(old: RouteV1) -> Route {
        old.0
    }
}

/// The neighbour table keeps no journal (the kernel mirror dumps it again at every start);
/// the table actor's bound asks for the form all the same, which has only ever been this one.
impl JournalEntry for rtm_proto::Neighbour {
    type Legacy = rtm_proto::Neighbour;

    fn from_legacy(old: rtm_proto::Neighbour) -> rtm_proto::Neighbour {
        old
    }
}

/// An ARP entry's serde form is the same in every format.
impl JournalEntry for ArpEntry {
    type Legacy = ArpEntry;

    fn from_legacy(old: ArpEntry) -> ArpEntry {
        old
    }
}
