//! Route tables in shared memory: longest-prefix match and exact match from a file whose size
//! follows the table ([`layout`] has the bytes; `docs/shared-memory.md` the reasons).
//!
//! - [`layout`]: the regions and the encoding of every word;
//! - [`view`]: the reads every process makes, and the epoch protocol that makes them safe;
//! - [`chunk`]: a /18's address ranges — searching them (readers), encoding and repainting
//!   them (the writer);
//! - [`reader`]: [`RouteReader`], the clients' side, and [`lookups`], its handle for many
//!   single lookups;
//! - [`writer`]: [`RouteWriter`], the daemon's side, with `heap` (free lines), `nexthops`
//!   (shared next-hop records) and `build` (a whole file at once).

#[cfg(not(loom))]
mod build;
pub mod chunk;
#[cfg(not(loom))]
mod heap;
pub mod layout;
#[cfg(not(loom))]
pub mod lookups;
#[cfg(not(loom))]
mod nexthops;
#[cfg(not(loom))]
pub mod reader;
#[cfg(not(loom))]
mod values;
pub mod view;
#[cfg(not(loom))]
pub mod writer;

#[cfg(not(loom))]
pub use lookups::Lookups;
#[cfg(not(loom))]
pub use reader::{NextHopRef, RouteReader, BATCH_GROUP};
pub use view::{Group, NextHop};
#[cfg(not(loom))]
pub use writer::RouteWriter;

impl crate::shm::record::Record for crate::types::Route {
    type Key = crate::types::Prefix;
    const KIND: crate::shm::record::TableKind = crate::shm::record::TableKind::Route;
    #[cfg(not(loom))]
    type Writer = RouteWriter;
    #[cfg(not(loom))]
    type Reader = RouteReader;

    fn key(&self) -> crate::types::Prefix {
        self.dst
    }

    fn origin(&self) -> crate::types::Origin {
        self.origin
    }

    fn set_origin(&mut self, origin: crate::types::Origin) {
        self.origin = origin;
    }
}
