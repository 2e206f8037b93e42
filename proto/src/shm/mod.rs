//! Shared-memory tables: `rtmd` publishes its route, ARP and neighbour tables as files that clients map
//! read-only and read directly, without asking the daemon. `docs/shared-memory.md` describes
//! the files for programs in any language; the byte layouts are in [`header`], [`route::layout`],
//! [`arp`] and [`neigh`].
//!
//! - [`route`]: longest-prefix match in chunks sized to the table, exact match and key order in
//!   per-/18 entry blocks; copy-on-write with a reclamation epoch, so readers never wait.
//! - [`arp`]: an open-addressing hash table by MAC, each slot under its own [`seqlock`].
//! - [`neigh`]: the kernel's neighbours keyed by (IP, device), homed by IP, with a second
//!   table indexing them by MAC; slots as in [`arp`], whose tables both are [`hashed`].
//! - [`record`]: what both kinds share — the [`Record`] trait, the writer and reader
//!   interfaces, errors; [`header`]: the first page of every file.
//! - `file`: creating, growing, publishing and opening files; `mapping`: the only `unsafe`
//!   (views of the mapped bytes as atomics).

mod dev;
#[cfg(not(loom))]
mod file;
pub mod hashed;
pub mod header;
#[cfg(not(loom))]
mod mapping;
pub mod owner;
// Some error constructors serve only the file code, which loom builds leave out.
#[cfg_attr(loom, allow(dead_code))]
pub mod record;
pub mod seqlock;
mod sync;

pub mod arp;
pub mod neigh;
pub mod route;

pub use record::{Access, Record, ShmError, TableKind, Versioned, SEQ_MASK};
#[cfg(not(loom))]
pub use record::{Planned, TableReader, TableWriter};

#[cfg(not(loom))]
pub use arp::{ArpReader, ArpWriter};
#[cfg(not(loom))]
pub use neigh::{NeighReader, NeighWriter};
pub use owner::Owners;
pub use route::{Group, NextHop};
#[cfg(not(loom))]
pub use route::{Lookups, NextHopRef, RouteReader, RouteWriter, BATCH_GROUP};

/// The writer of `R`'s table files.
#[cfg(not(loom))]
pub type ShmWriter<R> = <R as Record>::Writer;
/// A reader of `R`'s table files.
#[cfg(not(loom))]
pub type ShmReader<R> = <R as Record>::Reader;

#[cfg(all(test, not(loom)))]
mod tests;
