//! # rtm — the client library
//!
//! `rtmd` owns an IPv4 routing table and an ARP table, publishes both into shared-memory files
//! that clients map read-only, and notifies every registered client of each change over a Unix
//! socket. This crate is what clients build on:
//!
//! - [`Client`] ([`client`]): connect, request (CRUD, show, get, flush, clients, status),
//!   subscribe and read the event stream.
//! - [`shm`]: read the tables straight from shared memory — exact match by MAC, longest-prefix
//!   match by address — without asking the daemon. A reader keeps answering from its mapping;
//!   when the daemon publishes a new generation (after a restart or a compaction) the old
//!   mapping is marked retired, so a long-lived reader calls
//!   [`ShmReader::refresh`](shm::ShmReader::refresh) now and then (on each notification, on
//!   SIGUSR1, or on a timer), as [`Mirror`] does on every event.
//! - [`Mirror`] ([`mirror`]): keep a copy of the tables in step with the notifications; each
//!   event comes out as typed [`Update`]s.
//! - [`paths`]: where an instance's socket and shared-memory files are by default.
//!
//! A program that needs only this library depends on it with `default-features = false`, which
//! leaves out the binaries and everything they need (the daemon's actor system, the command
//! lines' parsers).
//!
//! The way of a route: `rtmctl route add` → socket frame → `rtmd`'s session actor → route-table
//! actor (shared memory written, sequence number assigned) → a notification to each subscribed
//! session → the client's socket → the client reads the entry from its mapping. `proto/` holds
//! the contract between the processes, `actors/` the daemon; `docs/` describes both.

#![forbid(unsafe_code)]

pub mod client;
pub mod mirror;

pub use client::{Client, ClientError};
pub use mirror::{Entry, Mirror, Update};
pub use rtm_proto::{
    paths, shm, types, wire, ArpEntry, Hop, IfName, MacAddr, NeighKey, Neighbour, Origin,
    ParseError, Prefix, Route,
};
