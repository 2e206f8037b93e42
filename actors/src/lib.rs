//! # rtm-actors — the inside of `rtmd`
//!
//! An actix actor system under one [`Supervisor`](supervisor::Supervisor):
//!
//! - [`listener`]: accepts connections and starts one [`session`] per client, with the peer's
//!   pid/uid and a pidfd taken from the socket.
//! - [`session`]: reads frames, runs the handshake, turns requests into messages for the tables,
//!   the registry and the broker, and queues replies and notifications in its bounded
//!   [`outbox`], which a writer task drains to the socket.
//! - [`route_table`] / [`arp_table`]: each owns one table ([`table`] is their common core):
//!   the shared-memory writer (whose file is the authoritative copy), the sequence counter, the
//!   journal, the subscribers.
//! - [`registry`]: the registered subscribers, for `rtmctl clients`, `--max-clients` and flushes.
//! - [`signal_broker`]: SIGTERM/SIGINT/SIGHUP in, SIGUSR1 out through pidfds.
//! - [`supervision`]: the guards that turn a panic anywhere in a supervised actor into a
//!   restart (and the restart budget); [`faults`]: the test hooks behind `fault-injection`.
//! - [`journal`]: each table's snapshot + journal under `--state-dir`.
//!
//! A route added with `rtmctl route add` travels: socket → `Session` → `RouteTable` (validated
//! against the table file, sequence number assigned, made durable in the [`journal`]
//! if there is one, then written to shared memory) → `Notify` to every subscribed
//! `Session` → its outbox → the client's socket; the client then reads the entry from its
//! read-only mapping of the shared-memory file.

pub mod arp_table;
pub mod config;
pub mod daemon;
pub mod faults;
pub mod health;
pub mod journal;
pub mod listener;
pub mod outbox;
pub mod registry;
pub mod route_table;
pub mod session;
pub mod signal_broker;
pub mod supervision;
pub mod supervisor;
pub mod table;

pub use config::Config;
pub use daemon::{run, StartError};
