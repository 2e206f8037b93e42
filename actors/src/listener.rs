//! The listener: accepts connections on the daemon's socket and starts a [`Session`] for each,
//! with the peer's identity taken from the kernel.

use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use nix::sys::socket::{getsockopt, sockopt::PeerPidfd};
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::net::UnixStream;
use tracing::{debug, error, info, warn};

use crate::session::{Peer, Services, Session};

type Accepted = std::io::Result<UnixStream>;

pub struct Listener {
    socket: Arc<StdUnixListener>,
    svc: Services,
}

impl Listener {
    pub fn new(socket: Arc<StdUnixListener>, svc: Services) -> Self {
        Listener { socket, svc }
    }
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
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

impl Supervised for Listener {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        info!("listener restarting");
    }
}

impl StreamHandler<Accepted> for Listener {
    fn handle(&mut self, accepted: Accepted, _ctx: &mut Context<Self>) {
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                return;
            }
        };
        if self.svc.health.shutting_down.load(Relaxed) {
            return;
        }
        match peer_of(&stream) {
            Ok(peer) => {
                debug!(pid = peer.pid, uid = peer.uid, "connection");
                Session::start(stream, peer, self.svc.clone());
            }
            Err(e) => warn!("cannot read the peer's credentials, closing: {e}"),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

/// The peer's pid/uid/gid from `SO_PEERCRED` and a pidfd from `SO_PEERPIDFD` (kernel ≥ 6.5).
/// On older kernels the pidfd comes from `pidfd_open(pid)` right after accept; that fallback
/// can race with the peer exiting and its PID being reused, which the socket option cannot.
fn peer_of(stream: &UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let pid = cred.pid().unwrap_or(0);
    let pidfd = match getsockopt(stream, PeerPidfd) {
        Ok(fd) => Some(fd),
        Err(e) => {
            debug!("SO_PEERPIDFD unavailable ({e}); falling back to pidfd_open");
            Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        }
    };
    Ok(Peer {
        pid,
        uid: cred.uid(),
        gid: cred.gid(),
        pidfd: pidfd.map(Arc::new),
    })
}
