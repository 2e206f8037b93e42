//! The limits that a config reload (SIGHUP) changes while the daemon runs. `max-clients`
//! applies to the next registration, `max-connections` to the next connection, `client-queue` at once to every session,
//! `handshake-timeout` and `max-frame` to new connections, `max-inflight` and `max-batch` to
//! the next request.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use super::{check_positive, parse_duration, ConfigError, Settings};

pub const DEFAULT_CLIENT_QUEUE: usize = 65_536;
pub const DEFAULT_MAX_CLIENTS: u32 = 1024;
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_INFLIGHT: usize = 64;
pub const DEFAULT_MAX_BATCH: usize = 16_384;

/// The reloadable limits, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitValues {
    /// Registered subscribers allowed at once (one-shot requests are never refused by it).
    pub max_clients: u32,
    /// Open connections allowed at once (subscribers and one-shot requests).
    pub max_connections: u32,
    /// Notifications queued per subscriber before they collapse into one `resync`.
    pub client_queue: usize,
    /// A connection that has not said Hello by then is closed.
    pub handshake_timeout: Duration,
    /// Largest frame accepted from a client.
    pub max_frame: usize,
    /// Requests a session reads ahead of their answers; reading pauses beyond it.
    pub max_inflight: usize,
    /// Operations allowed in one batch request.
    pub max_batch: usize,
}

impl Default for LimitValues {
    fn default() -> Self {
        LimitValues {
            max_clients: DEFAULT_MAX_CLIENTS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            client_queue: DEFAULT_CLIENT_QUEUE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_frame: rtm_proto::wire::DEFAULT_MAX_REQUEST_FRAME,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

impl LimitValues {
    /// The defaults with what `s` sets on top, checked.
    pub fn from_settings(s: &Settings) -> Result<LimitValues, ConfigError> {
        let mut v = LimitValues::default();
        if let Some(n) = s.max_clients {
            v.max_clients = n;
        }
        if let Some(n) = s.max_connections {
            v.max_connections = n;
        }
        if let Some(n) = s.client_queue {
            v.client_queue = check_positive("client-queue", n)?;
        }
        if let Some(t) = &s.handshake_timeout {
            v.handshake_timeout = parse_duration("handshake-timeout", t)?;
        }
        if let Some(n) = s.max_frame {
            v.max_frame = check_positive("max-frame", n)?;
        }
        if let Some(n) = s.max_inflight {
            v.max_inflight = check_positive("max-inflight", n)?;
        }
        if let Some(n) = s.max_batch {
            v.max_batch = check_positive("max-batch", n)?;
        }
        Ok(v)
    }
}

/// The limits in force, shared by every actor; SIGHUP stores new values.
#[derive(Debug)]
pub struct Limits {
    max_clients: AtomicU32,
    max_connections: AtomicU32,
    client_queue: AtomicUsize,
    handshake_ms: AtomicU64,
    max_frame: AtomicUsize,
    max_inflight: AtomicUsize,
    max_batch: AtomicUsize,
}

impl Limits {
    pub fn new(v: LimitValues) -> Limits {
        let l = Limits {
            max_clients: AtomicU32::new(0),
            max_connections: AtomicU32::new(0),
            client_queue: AtomicUsize::new(0),
            handshake_ms: AtomicU64::new(0),
            max_frame: AtomicUsize::new(0),
            max_inflight: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
        };
        l.store(v);
        l
    }

    pub fn store(&self, v: LimitValues) {
        self.max_clients.store(v.max_clients, Relaxed);
        self.max_connections.store(v.max_connections, Relaxed);
        self.client_queue.store(v.client_queue, Relaxed);
        self.handshake_ms
            .store(v.handshake_timeout.as_millis() as u64, Relaxed);
        self.max_frame.store(v.max_frame, Relaxed);
        self.max_inflight.store(v.max_inflight, Relaxed);
        self.max_batch.store(v.max_batch, Relaxed);
    }

    pub fn client_queue(&self) -> usize {
        self.client_queue.load(Relaxed)
    }

    pub fn load(&self) -> LimitValues {
        LimitValues {
            max_clients: self.max_clients.load(Relaxed),
            max_connections: self.max_connections.load(Relaxed),
            client_queue: self.client_queue.load(Relaxed),
            handshake_timeout: Duration::from_millis(self.handshake_ms.load(Relaxed)),
            max_frame: self.max_frame.load(Relaxed),
            max_inflight: self.max_inflight.load(Relaxed),
            max_batch: self.max_batch.load(Relaxed),
        }
    }
}
