//! # rtm-actors — the inside of `rtmd`
//!
//! An actix actor system under one [`Supervisor`](supervisor::Supervisor). Each table actor
//! runs on a thread (arbiter) of its own, so its blocking file work (a journal `fdatasync`, a
//! compaction, a republish) stalls neither the other table nor the sessions, the registry and
//! the signal broker, which share the system's thread:
//!
//! - [`daemon`]: start-up — claim the socket and the shared-memory instance, open the tables
//!   (restoring them from the [`journal`] with `--state-dir`), then run the actors until a
//!   clean stop.
//! - [`supervisor`]: starts every long-lived actor, runs the clean stop and the config reload;
//!   [`restart`]: the panic guards that turn a failure anywhere in a supervised actor into a
//!   restart, and the restart budget.
//! - [`listener`]: accepts connections and starts one [`session`] per client, with the peer's
//!   pid/uid and a pidfd taken from the socket; [`connections`]: how many it admits, sized to
//!   the open-file limit.
//! - [`session`]: reads frames, runs the handshake, answers each request (one file per request
//!   kind in `session/cmd/`), and queues replies and notifications in its bounded outbox.
//! - [`table`]: one actor per table ([`table::route`], [`table::arp`]): the shared-memory writer
//!   (whose file is the authoritative copy), the sequence counter, the journal, the
//!   subscribers.
//! - [`registry`]: the registered subscribers, for `rtmctl clients`, `--max-clients` and flushes.
//! - [`http`]: the dashboard (`--http-listen`) and the Prometheus endpoint
//!   (`--metrics-listen`), an actix-web server in the same actor system whose every change goes
//!   through the same request code as a session's.
//! - [`signal_broker`]: SIGTERM/SIGINT/SIGHUP in, SIGUSR1 out through pidfds.
//! - [`config`]: the settings, from built-in defaults, a config file and flags;
//!   [`counters`]: the figures `rtmctl status` shows; [`faults`]: the test hooks behind
//!   `fault-injection`.
//! - [`service_manager`]: systemd's readiness, reload and stop notifications; [`watchdog`]: the
//!   keep-alive the supervisor sends only while every actor answers.
//!
//! A route added with `rtmctl route add` travels: socket → `Session` (`session/cmd/change.rs`)
//! → `RouteTable` (`table/apply.rs`: validated against the table file, sequence number
//! assigned, made durable in the journal if there is one, then written to shared memory) →
//! `Notify` to every subscribed `Session` → its outbox → the client's socket; the client then
//! reads the entry from its read-only mapping of the shared-memory file.

#![forbid(unsafe_code)]

pub mod config;
pub mod connections;
pub mod counters;
pub mod daemon;
pub mod faults;
pub mod http;
pub mod journal;
pub mod kernel;
pub mod listener;
pub mod registry;
pub mod restart;
pub mod service_manager;
pub mod session;
pub mod signal_broker;
pub mod socket_file;
pub mod supervisor;
pub mod table;
pub mod watchdog;

pub use config::Config;
pub use daemon::{run, StartError};
