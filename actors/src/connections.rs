//! How many connections rtmd holds at once, and the file descriptors they may take.
//!
//! Every connection costs a descriptor for its socket, and one more for a pidfd of the peer
//! until its hello, kept after it only by a client that announces a SIGUSR1 handler (the pidfd
//! is what rtmd signals through); rtmd needs
//! descriptors of its own at any time: a journal compaction opens temporary files, a table
//! republish creates a new shared-memory file. So at start rtmd raises its soft
//! `RLIMIT_NOFILE` to the hard limit ([`raise_fd_limit`]), keeps [`FD_RESERVE`] descriptors
//! for its own files, and admits a connection only while `--max-connections` are not open and
//! the sockets and pidfds held, plus the two a new connection may take, stay within
//! `limit - reserve` ([`Connections::admit`]); a connection beyond that is told why
//! ([`Refusal::failure`]) and closed. One-shot requests and registered subscribers count alike;
//! `--max-clients` limits the subscribers among them.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use rtm_proto::wire::Failure;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tracing::{info, warn};

use crate::counters::Health;

/// Descriptors kept for rtmd's own files (journal, snapshots, table files, their temporary
/// copies, the state and shm directories, the listener, the runtime's own).
pub const FD_RESERVE: usize = 64;
/// Descriptors one connection may hold: its socket and a pidfd of its peer.
pub const FDS_PER_CONNECTION: usize = 2;
/// Descriptors a connection holds once it dropped its pidfd.
pub const FDS_PER_SUBSCRIBER: usize = 1;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force.
pub fn raise_fd_limit() -> usize {
    let lim = getrlimit(Resource::Nofile);
    let soft = lim.current.unwrap_or(u64::MAX);
    let hard = lim.maximum;
    if hard.is_none_or(|h| h > soft) {
        let new = Rlimit {
            current: hard,
            maximum: hard,
        };
        match setrlimit(Resource::Nofile, new) {
            Ok(()) => {
                info!(from = soft, to = ?hard, "raised the open-file limit to the hard limit");
                return clamp(hard.unwrap_or(u64::MAX));
            }
            Err(e) => warn!(soft, ?hard, "cannot raise the open-file limit: {e}"),
        }
    }
    clamp(soft)
}

fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The connections open now, and how many the open-file limit allows.
#[derive(Debug)]
pub struct Connections {
    live: AtomicUsize,
    /// Descriptors held by the open connections (sockets and pidfds).
    fds: AtomicUsize,
    /// The open-file limit in force (`usize::MAX` until [`Connections::size_to`]).
    nofile: AtomicUsize,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            live: AtomicUsize::new(0),
            fds: AtomicUsize::new(0),
            nofile: AtomicUsize::new(usize::MAX),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` are open.
    Configured { max: usize },
    /// The open-file limit allows no more while keeping the reserve; `max` is the descriptors
    /// connections may hold.
    FdLimit { nofile: usize, max: usize },
}

impl Refusal {
    /// What the refused client is told.
    pub fn failure(self) -> Failure {
        match self {
            Refusal::Configured { max } => Failure::Limit {
                what: "open connections to rtmd (--max-connections)".into(),
                limit: max as u64,
            },
            Refusal::FdLimit { nofile, max } => Failure::Limit {
                what: format!(
                    "descriptors for connections that rtmd's open-file limit ({nofile}) allows \
                     with {FD_RESERVE} kept for its files (a connection holds \
                     {FDS_PER_SUBSCRIBER}, {FDS_PER_CONNECTION} until its hello or with a \
                     SIGUSR1 handler)"
                ),
                limit: max as u64,
            },
        }
    }
}

impl Connections {
    /// Sizes admission to the open-file limit `nofile`; warns if it cannot hold
    /// `max_connections` connections.
    pub fn size_to(&self, nofile: usize, max_connections: u32) {
        self.nofile.store(nofile, Relaxed);
        let cap = self.fd_room() / FDS_PER_SUBSCRIBER;
        if cap < max_connections as usize {
            warn!(
                nofile,
                max_connections,
                allowed = cap,
                "the open-file limit is too low for --max-connections; raise LimitNOFILE \
                 (each connection takes {FDS_PER_SUBSCRIBER}, {FDS_PER_CONNECTION} with a pidfd; \
                 {FD_RESERVE} are kept for files)"
            );
        }
    }

    /// Descriptors connections may hold under the open-file limit.
    fn fd_room(&self) -> usize {
        self.nofile.load(Relaxed).saturating_sub(FD_RESERVE)
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Admits one more connection if `max_connections` and the open-file limit allow it; the
    /// returned slot counts it until dropped.
    pub fn admit(health: &Arc<Health>, max_connections: u32) -> Result<Slot, Refusal> {
        let c = &health.connections;
        let (max, room) = (max_connections as usize, c.fd_room());
        if c.live
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_err()
        {
            return Err(Refusal::Configured { max });
        }
        let fds = c.fds.fetch_update(Relaxed, Relaxed, |n| {
            (n + FDS_PER_CONNECTION <= room).then_some(n + FDS_PER_CONNECTION)
        });
        if fds.is_err() {
            c.live.fetch_sub(1, Relaxed);
            return Err(Refusal::FdLimit {
                nofile: c.nofile.load(Relaxed),
                max: room,
            });
        }
        Ok(Slot {
            health: health.clone(),
            fds: FDS_PER_CONNECTION,
        })
    }
}

/// One admitted connection; dropping it frees its place and its descriptors.
#[derive(Debug)]
pub struct Slot {
    health: Arc<Health>,
    /// Descriptors counted for this connection.
    fds: usize,
}

impl Slot {
    /// The connection closed its pidfd: it holds its socket only.
    pub fn released_pidfd(&mut self) {
        if self.fds > FDS_PER_SUBSCRIBER {
            let freed = self.fds - FDS_PER_SUBSCRIBER;
            self.fds = FDS_PER_SUBSCRIBER;
            self.health.connections.fds.fetch_sub(freed, Relaxed);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let c = &self.health.connections;
        c.live.fetch_sub(1, Relaxed);
        c.fds.fetch_sub(self.fds, Relaxed);
    }
}
