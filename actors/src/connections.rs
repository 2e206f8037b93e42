//! How many connections rtmd holds at once, and the file descriptors they may take.
//!
//! Every connection costs descriptors (its socket and a pidfd of the peer), and rtmd needs
//! descriptors of its own at any time: a journal compaction opens temporary files, a table
//! republish creates a new shared-memory file. So at start rtmd raises its soft
//! `RLIMIT_NOFILE` to the hard limit ([`raise_fd_limit`]), keeps [`FD_RESERVE`] descriptors
//! for its own files, and admits at most `min(--max-connections, (limit - reserve) / 2)`
//! connections ([`Connections::admit`]); a connection beyond that is told why
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
    /// The open-file limit in force (`usize::MAX` until [`Connections::size_to`]).
    nofile: AtomicUsize,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            live: AtomicUsize::new(0),
            nofile: AtomicUsize::new(usize::MAX),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` are open.
    Configured { max: usize },
    /// The open-file limit allows no more while keeping the reserve.
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
                    "open connections that rtmd's open-file limit ({nofile}) allows with \
                     {FD_RESERVE} descriptors kept for its files"
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
        let cap = self.fd_cap();
        if cap < max_connections as usize {
            warn!(
                nofile,
                max_connections,
                allowed = cap,
                "the open-file limit is too low for --max-connections; raise LimitNOFILE \
                 (each connection takes {FDS_PER_CONNECTION}, {FD_RESERVE} are kept for files)"
            );
        }
    }

    /// Connections the open-file limit allows.
    fn fd_cap(&self) -> usize {
        self.nofile.load(Relaxed).saturating_sub(FD_RESERVE) / FDS_PER_CONNECTION
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Admits one more connection if `max_connections` and the open-file limit allow it; the
    /// returned slot counts it until dropped.
    pub fn admit(health: &Arc<Health>, max_connections: u32) -> Result<Slot, Refusal> {
        let c = &health.connections;
        let (max, fd_cap) = (max_connections as usize, c.fd_cap());
        let taken = c.live.fetch_update(Relaxed, Relaxed, |n| {
            (n < max && n < fd_cap).then_some(n + 1)
        });
        match taken {
            Ok(_) => Ok(Slot(health.clone())),
            Err(_) if max <= fd_cap => Err(Refusal::Configured { max }),
            Err(_) => Err(Refusal::FdLimit {
                nofile: c.nofile.load(Relaxed),
                max: fd_cap,
            }),
        }
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot(Arc<Health>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.live.fetch_sub(1, Relaxed);
    }
}
