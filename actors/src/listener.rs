//! The listener: accepts connections on the daemon's socket and starts a [`Session`] for each,
//! with the peer's identity taken from the kernel.

use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use nix::sys::socket::{getsockopt, sockopt::PeerPidfd};
use rtm_proto::wire::{self, PanicPoint, ServerMsg};
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::net::UnixStream;
use tracing::{debug, error, info, warn};

use crate::connections::{Connections, Refusal};
use crate::counters::Counters;
use crate::faults::Faults;
use crate::restart::{guarded, ActorKind, RestartLog, Restartable};
use crate::session::{Peer, Services, Session};

type Accepted = std::io::Result<UnixStream>;

pub struct Listener {
    socket: Arc<StdUnixListener>,
    svc: Services,
    faults: Faults,
}

impl Listener {
    pub fn new(socket: Arc<StdUnixListener>, svc: Services) -> Self {
        Listener {
            socket,
            svc,
            faults: Faults::default(),
        }
    }

    fn accept(&mut self, accepted: Accepted) {
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                return;
            }
        };
        // A panic armed here drops this one connection (its client sees EOF).
        self.faults.trip(PanicPoint::Stream);
        if self.svc.health.shutting_down.load(Relaxed) {
            return;
        }
        let max = self.svc.limits.load().max_connections;
        let slot = match Connections::admit(&self.svc.health, max) {
            Ok(slot) => slot,
            Err(why) => {
                Counters::bump(&self.svc.health.counters.connections_refused);
                return refuse(stream, why);
            }
        };
        match peer_of(&stream) {
            Ok(peer) => {
                debug!(pid = peer.pid, uid = peer.uid, "connection");
                Session::start(stream, peer, self.svc.clone(), slot);
            }
            Err(e) => warn!("cannot read the peer's credentials, closing: {e}"),
        }
    }

    fn listen(&mut self, ctx: &mut Context<Self>) {
        // The bound socket outlives any restart of this actor: each start accepts on a clone.
        let listener = self.socket.try_clone().and_then(|l| {
            l.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(l)
        });
        match listener {
            Ok(l) => {
                let accepts = futures_util::stream::unfold(l, |l| async move {
                    let r = l.accept().await.map(|(s, _)| s);
                    if r.is_err() {
                        // Out of descriptors or memory: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Some((r, l))
                });
                ctx.add_stream(accepts);
            }
            Err(e) => {
                error!("cannot listen: {e}");
                ctx.stop();
            }
        }
    }
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.listen(ctx));
    }
}

impl Restartable for Listener {
    const KIND: ActorKind = ActorKind::Listener;

    fn restarts(&self) -> &RestartLog {
        &self.svc.health.restarts
    }
}

impl Supervised for Listener {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            act.faults.trip(PanicPoint::Restart);
            info!("listener restarting");
        });
    }
}

impl StreamHandler<Accepted> for Listener {
    fn handle(&mut self, accepted: Accepted, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| act.accept(accepted));
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::faults::Inject> for Listener {
    type Result = Result<(), rtm_proto::wire::Failure>;

    fn handle(&mut self, msg: crate::faults::Inject, ctx: &mut Context<Self>) -> Self::Result {
        crate::faults::inject(self, msg.0, ctx, true, |act| &mut act.faults)
    }
}

/// Tells a connection over the limit why it is closed: the refusal is the first frame it reads
/// (a fresh socket's buffer always has room for it), then the socket closes.
fn refuse(stream: UnixStream, why: Refusal) {
    debug!("connection refused: {}", why.failure());
    let msg = ServerMsg::Refused(why.failure());
    if let Ok(body) = wire::encode(&msg) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let _ = stream.try_write(&frame);
    }
}

/// The peer's pid/uid/gid from `SO_PEERCRED` and a pidfd from `SO_PEERPIDFD` (kernel ≥ 6.5).
/// On older kernels the pidfd comes from `pidfd_open(pid)` right after accept; that fallback
/// can race with the peer exiting and its PID being reused, which the socket option cannot.
/// The supplementary groups come from `/proc/PID/status`, and count only if the pidfd shows
/// the same process still alive after they were read (so they cannot be a reused PID's).
pub(crate) fn peer_of(stream: &UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let pid = cred.pid().unwrap_or(0);
    let pidfd = match getsockopt(stream, PeerPidfd) {
        _ if crate::faults::without_pidfds() => None,
        Ok(fd) => Some(fd),
        Err(e) => {
            debug!("SO_PEERPIDFD unavailable ({e}); falling back to pidfd_open");
            Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        }
    };
    let groups = match &pidfd {
        Some(fd) => supplementary_groups(pid, fd),
        None => Vec::new(),
    };
    Ok(Peer {
        pid,
        uid: cred.uid(),
        gid: cred.gid(),
        groups,
        pidfd: pidfd.map(Arc::new),
    })
}

/// The `Groups:` of a live process, or nothing if it exited meanwhile.
fn supplementary_groups(pid: i32, pidfd: &std::os::fd::OwnedFd) -> Vec<u32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    // A pidfd polls readable once its process has exited.
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => {}
        _ => return Vec::new(),
    }
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
