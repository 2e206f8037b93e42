//! # rtm-proto — the contract between rtm processes
//!
//! Everything that crosses a process boundary is defined here and nowhere else:
//!
//! - [`types`]: the table entries ([`Route`], [`ArpEntry`]) and their keys ([`Prefix`],
//!   [`MacAddr`]), with strict parsing and iproute2-style display.
//! - [`wire`]: the messages `rtmd` and its clients exchange over the Unix socket —
//!   length-delimited frames with postcard bodies, a versioned Hello/Welcome handshake,
//!   requests, replies and change notifications.
//! - [`shm`]: the shared-memory files `rtmd` writes and clients map read-only — a versioned
//!   header, fixed-capacity slots guarded by per-slot seqlocks, exact match by key and
//!   longest-prefix match for routes.
//! - [`paths`]: where an instance lives — the socket and shared-memory paths every rtm
//!   program resolves the same way.

pub mod paths;
pub mod shm;
pub mod types;
pub mod wire;

pub use types::{
    ArpEntry, Hop, IfName, MacAddr, NeighKey, Neighbour, Origin, ParseError, Prefix, Route,
};
