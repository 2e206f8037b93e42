//! Fault injection (`rtmctl debug …`): which actor a test makes fail, and how.

use serde::{Deserialize, Serialize};

/// Fault injection: make a daemon actor fail on purpose (`rtmctl debug ...`). Daemons built
/// without the `fault-injection` feature refuse every one of these with `Unsupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebugAction {
    /// Panic inside `target`, at `point`.
    Panic {
        target: DebugTarget,
        point: PanicPoint,
    },
    /// Block `target`'s thread for `ms` milliseconds inside a handler (a stuck actor).
    Stall { target: DebugTarget, ms: u32 },
}

impl DebugAction {
    /// The actor it hits.
    pub fn target(&self) -> DebugTarget {
        match self {
            DebugAction::Panic { target, .. } | DebugAction::Stall { target, .. } => *target,
        }
    }
}

/// The actor a debug action hits. `Session` is the session that sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebugTarget {
    Route,
    Arp,
    Broker,
    Listener,
    Session,
    /// Since version 3.
    Registry,
    /// The kernel import (`rtmd --kernel import`). Since version 5.
    Kernel,
    /// The kernel export (`rtmd --kernel export`). Since version 5.
    KernelExport,
    /// The kernel neighbour table. Since version 8.
    Neigh,
}

impl DebugTarget {
    pub fn name(self) -> &'static str {
        match self {
            DebugTarget::Route => "route",
            DebugTarget::Arp => "arp",
            DebugTarget::Broker => "broker",
            DebugTarget::Listener => "listener",
            DebugTarget::Session => "session",
            DebugTarget::Registry => "registry",
            DebugTarget::Kernel => "kernel",
            DebugTarget::KernelExport => "kernel-export",
            DebugTarget::Neigh => "neigh",
        }
    }

    /// The first protocol version that has this target.
    pub fn since(self) -> u16 {
        match self {
            DebugTarget::Registry => 3,
            DebugTarget::Kernel | DebugTarget::KernelExport => 5,
            DebugTarget::Neigh => 8,
            _ => 1,
        }
    }
}

/// Where inside the actor the panic happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PanicPoint {
    /// In a message handler, now.
    Handler,
    /// In the future returned by an async handler.
    Async,
    /// In the actor's next interval tick.
    Interval,
    /// In the actor's stream handler, on its next item (listener: next accepted connection).
    Stream,
    /// In the next `restarting` hook (combine with another panic to trigger it).
    Restart,
    /// Table actors only: in the middle of the next write to shared memory of a request with
    /// more than one change, after its first change is written (the request is already
    /// durable).
    Publish,
}

impl PanicPoint {
    pub fn name(self) -> &'static str {
        match self {
            PanicPoint::Handler => "handler",
            PanicPoint::Async => "async",
            PanicPoint::Interval => "interval",
            PanicPoint::Stream => "stream",
            PanicPoint::Restart => "restart",
            PanicPoint::Publish => "publish",
        }
    }
}
