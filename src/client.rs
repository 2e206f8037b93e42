//! The connection to `rtmd`: handshake, requests, and the event stream of a subscriber.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtm::ClientError> {
//! use rtm::wire::{Caps, Event, Tables};
//! let mut client = rtm::Client::connect("/run/rtm/rtm.sock".as_ref(), "fib-agent", Caps::default()).await?;
//! let routes = client.show_routes(None).await?;
//! println!("{} routes", routes.len());
//! client.subscribe(Tables::All).await?;
//! while let Some(ev) = client.next_event().await? {
//!     if let Event::Bye = ev { break }
//!     println!("{ev:?}");
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtm_proto::shm::Owners;
use rtm_proto::wire::{
    self, BatchFailure, Caps, ClientMsg, Event, Failure, Hello, Op, Reply, Request, ServerMsg,
    Tables, Welcome,
};
use rtm_proto::{ArpEntry, MacAddr, Neighbour, Prefix, Route};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// What can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach rtmd at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("connection to rtmd failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("rtmd closed the connection")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(#[from] Failure),
    #[error("rtmd did not answer within {0:?}")]
    Timeout(Duration),
}

/// How long a connect and handshake may take before the daemon counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Client {
    framed: Framed<UnixStream, LengthDelimitedCodec>,
    welcome: Welcome,
    /// The daemon's uid as the kernel reports it for the socket (`SO_PEERCRED`).
    daemon_uid: Option<u32>,
    next_id: u32,
    /// Events received and decoded but not yet returned by `next_event`.
    events: VecDeque<Event>,
    /// How many of the first `events` [`Client::warm_ahead`] has already shown its caller.
    warmed: usize,
    /// [`Client::apply`] and [`Client::batch`] may change entries of another origin.
    overriding: bool,
}

impl Client {
    /// Connects and says hello. `caps.sigusr1` must only be set once a SIGUSR1 handler is
    /// installed: the daemon will signal this process after flushes.
    ///
    /// It offers [`wire::PROTOCOL_VERSION`]; a daemon that speaks only older versions refuses
    /// it naming the newest it speaks, and the client connects again at that one (requests
    /// newer than the session's version are then refused locally, see [`Client::send`]).
    pub async fn connect(socket: &Path, name: &str, caps: Caps) -> Result<Client, ClientError> {
        match Client::connect_at(socket, name, caps, wire::PROTOCOL_VERSION).await {
            Err(ClientError::Refused(Failure::Version { min, max, .. }))
                if (wire::MIN_PROTOCOL_VERSION..wire::PROTOCOL_VERSION).contains(&max)
                    && min <= max =>
            {
                Client::connect_at(socket, name, caps, max).await
            }
            r => r,
        }
    }

    /// Connects and says hello at protocol `version`.
    async fn connect_at(
        socket: &Path,
        name: &str,
        caps: Caps,
        version: u16,
    ) -> Result<Client, ClientError> {
        let handshake = async {
            paths_ok(socket)?;
            let stream =
                UnixStream::connect(socket)
                    .await
                    .map_err(|source| ClientError::Connect {
                        path: socket.to_path_buf(),
                        source,
                    })?;
            let daemon_uid = stream.peer_cred().ok().map(|c| c.uid());
            let mut framed = Framed::new(stream, wire::codec(wire::MAX_SERVER_FRAME));
            let hello = ClientMsg::Hello(Hello {
                version,
                name: name.to_string(),
                caps,
            });
            let sent = framed.send(encode(&hello)?).await;
            // A daemon over its connection limit writes its refusal and closes at once, so
            // the hello may find the socket closed: the refusal is still there to read.
            let reply = read_msg(&mut framed).await;
            if let Err(e) = sent {
                return match reply {
                    Ok(ServerMsg::Refused(f)) => Err(ClientError::Refused(f)),
                    _ => Err(e.into()),
                };
            }
            match reply? {
                ServerMsg::Welcome(welcome) => Ok(Client {
                    framed,
                    welcome,
                    daemon_uid,
                    next_id: 1,
                    events: VecDeque::new(),
                    warmed: 0,
                    overriding: false,
                }),
                ServerMsg::Refused(f) => Err(ClientError::Refused(f)),
                other => Err(ClientError::Protocol(format!(
                    "expected Welcome, got {other:?}"
                ))),
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| ClientError::Timeout(CONNECT_TIMEOUT))?
    }

    /// The daemon's answer to our hello: versions and shared-memory paths.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The uid the daemon runs as, as the kernel reports it for the socket (`SO_PEERCRED`);
    /// `None` if the kernel did not say.
    pub fn daemon_uid(&self) -> Option<u32> {
        self.daemon_uid
    }

    /// Whose shared-memory files this client maps: root's, its own, and the daemon's (the uid
    /// of its socket's peer). The files the welcome names are opened with this rule
    /// ([`Mirror::open`](crate::Mirror::open)), so a file someone else planted at those paths
    /// is refused.
    pub fn shm_owners(&self) -> Owners {
        self.daemon_uid.map_or(Owners::DirOwner, Owners::Daemon)
    }

    /// Sends a request without waiting for its reply; returns its id. A request newer than
    /// the session's protocol version is refused here with `Unsupported`: the daemon could not
    /// decode it.
    pub async fn send(&mut self, req: Request) -> Result<u32, ClientError> {
        if req.since() > self.welcome.version {
            return Err(ClientError::Refused(Failure::Unsupported(format!(
                "{} needs protocol version {}; this rtmd speaks {}",
                req.name(),
                req.since(),
                self.welcome.version
            ))));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.framed
            .send(encode(&ClientMsg::Request { id, req })?)
            .await?;
        Ok(id)
    }

    /// Waits for the next reply frame, keeping events for [`Client::next_event`].
    pub async fn recv_reply(&mut self) -> Result<(u32, Result<Reply, Failure>), ClientError> {
        loop {
            match read_msg(&mut self.framed).await? {
                ServerMsg::Reply { id, result } => return Ok((id, result.map(Reply::normalized))),
                ServerMsg::Events(evs) => self.events.extend(evs),
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected message {other:?}"
                    )))
                }
            }
        }
    }

    /// Sends a request and returns its (single) reply.
    pub async fn request(&mut self, req: Request) -> Result<Reply, ClientError> {
        let id = self.send(req).await?;
        let (got, result) = self.recv_reply().await?;
        if got != id {
            return Err(ClientError::Protocol(format!(
                "reply {got} for request {id}"
            )));
        }
        Ok(result?)
    }

    /// From now on, [`Client::apply`] and [`Client::batch`] may also change entries another
    /// origin owns (the kernel's routes, `rtmctl --override-kernel`); without this the daemon
    /// refuses such changes with [`Failure::Owned`]. Needs a daemon at protocol version 6.
    pub fn override_kernel(&mut self, on: bool) {
        self.overriding = on;
    }

    /// Applies one change; returns its sequence number.
    pub async fn apply(&mut self, op: Op) -> Result<u64, ClientError> {
        let req = if self.overriding {
            Request::ApplyOverriding(op)
        } else {
            Request::Apply(op)
        };
        match self.request(req).await? {
            Reply::Done { seq } => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    /// Applies changes in order in one frame; without `force` the daemon stops at the first
    /// failure. Returns how many were applied and the failures.
    pub async fn batch(
        &mut self,
        ops: Vec<Op>,
        force: bool,
    ) -> Result<(u32, Vec<BatchFailure>), ClientError> {
        let req = if self.overriding {
            Request::BatchOverriding { ops, force }
        } else {
            Request::Batch { ops, force }
        };
        match self.request(req).await? {
            Reply::Batch { applied, failures } => Ok((applied, failures)),
            other => Err(unexpected(other)),
        }
    }

    /// Every route (or the one with `key`), sorted by prefix.
    pub async fn show_routes(&mut self, key: Option<Prefix>) -> Result<Vec<Route>, ClientError> {
        self.show(Request::RouteShow(key), |r| match r {
            Reply::Routes { routes, more } => Some((routes, more)),
            _ => None,
        })
        .await
    }

    /// The kernel's neighbours, all or those with one IP (a daemon at protocol version 8 or
    /// later).
    pub async fn show_neighbours(
        &mut self,
        ip: Option<std::net::Ipv4Addr>,
    ) -> Result<Vec<Neighbour>, ClientError> {
        self.show(Request::NeighShow(ip), |r| match r {
            Reply::Neighs { entries, more } => Some((entries, more)),
            _ => None,
        })
        .await
    }

    /// Every ARP entry (or the one with `key`), sorted by MAC.
    pub async fn show_arps(&mut self, key: Option<MacAddr>) -> Result<Vec<ArpEntry>, ClientError> {
        self.show(Request::ArpShow(key), |r| match r {
            Reply::Arps { entries, more } => Some((entries, more)),
            _ => None,
        })
        .await
    }

    /// The registered subscribers. A session at version 4 gets them in pages (`ClientsPage`,
    /// `more` false on the last), an older one in one `Clients` reply; both end up here.
    pub async fn clients(&mut self) -> Result<Vec<wire::ClientInfo>, ClientError> {
        self.show(Request::Clients, |r| match r {
            Reply::ClientsPage { clients, more } => Some((clients, more)),
            Reply::Clients(all) => Some((all, false)),
            _ => None,
        })
        .await
    }

    /// Sends a `show` and gathers its chunks (`more` is false on the last).
    async fn show<T>(
        &mut self,
        req: Request,
        chunk: impl Fn(Reply) -> Option<(Vec<T>, bool)>,
    ) -> Result<Vec<T>, ClientError> {
        let what = format!("{req:?}");
        let id = self.send(req).await?;
        let mut all = Vec::new();
        loop {
            let (part, more) = chunk(self.reply_for(id).await?)
                .ok_or_else(|| ClientError::Protocol(format!("unexpected reply to {what}")))?;
            all.extend(part);
            if !more {
                return Ok(all);
            }
        }
    }

    async fn reply_for(&mut self, id: u32) -> Result<Reply, ClientError> {
        let (got, result) = self.recv_reply().await?;
        if got != id {
            return Err(ClientError::Protocol(format!(
                "reply {got} for request {id}"
            )));
        }
        Ok(result?)
    }

    /// Registers as a subscriber of `tables`. Events follow through [`Client::next_event`],
    /// starting with one [`Event::Start`] per table.
    pub async fn subscribe(&mut self, tables: Tables) -> Result<(), ClientError> {
        match self.request(Request::Subscribe { tables }).await? {
            Reply::Subscribed => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The next event; `Ok(None)` when the daemon closed the connection. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                self.warmed = self.warmed.saturating_sub(1);
                return Ok(Some(ev));
            }
            let Some(frame) = self.framed.next().await else {
                return Ok(None);
            };
            match decode(&frame?)? {
                ServerMsg::Events(evs) => self.events.extend(evs),
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected message {other:?}"
                    )))
                }
            }
        }
    }

    /// Shows `f` the next `ahead` events that have already arrived (the ones
    /// [`Client::next_event`] will return next without waiting), once all of the group it showed
    /// last have been returned. A client calls it before each event it handles to start loading
    /// what a whole group of events will make it read — e.g. [`crate::shm::ShmReader::prefetch`]
    /// of their keys — so that the memory misses of a group overlap instead of following one
    /// another. Never waits and never consumes an event.
    pub fn warm_ahead(&mut self, ahead: usize, mut f: impl FnMut(&Event)) {
        if self.warmed > 0 {
            return;
        }
        for ev in self.events.iter().take(ahead) {
            f(ev);
        }
        self.warmed = self.events.len().min(ahead);
    }

    /// Leaves cleanly and waits (up to `wait`) for the daemon's acknowledgement.
    pub async fn deregister(mut self, wait: Duration) -> Result<(), ClientError> {
        let id = self.send(Request::Deregister).await?;
        let ack = async {
            loop {
                let (got, result) = self.recv_reply().await?;
                if got == id {
                    result?;
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(wait, ack)
            .await
            .map_err(|_| ClientError::Timeout(wait))?
    }
}

fn unexpected(r: Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {r:?}"))
}

fn encode(msg: &ClientMsg) -> Result<bytes::Bytes, ClientError> {
    wire::encode(msg).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn decode(frame: &[u8]) -> Result<ServerMsg, ClientError> {
    wire::decode(frame).map_err(|e| ClientError::Protocol(e.to_string()))
}

async fn read_msg(
    framed: &mut Framed<UnixStream, LengthDelimitedCodec>,
) -> Result<ServerMsg, ClientError> {
    match framed.next().await {
        Some(frame) => decode(&frame?),
        None => Err(ClientError::Closed),
    }
}

/// Refuses a socket in a fallback directory that is not ours ([`crate::paths::check_socket_dir`]).
fn paths_ok(socket: &Path) -> Result<(), ClientError> {
    crate::paths::check_socket_dir(socket).map_err(|why| ClientError::Connect {
        path: socket.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A daemon that speaks only version 2: it refuses newer hellos the way rtmd does and
    /// welcomes a version 2 one. Answers the hello versions it saw.
    async fn old_daemon(listener: UnixListener) -> Vec<u16> {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut framed = Framed::new(stream, wire::codec(wire::MAX_SERVER_FRAME));
            let frame = framed.next().await.expect("a hello").expect("read");
            let ClientMsg::Hello(h) = wire::decode(&frame).expect("decode") else {
                panic!("expected a hello");
            };
            seen.push(h.version);
            let answer = if h.version > 2 {
                ServerMsg::Refused(Failure::Version {
                    client: h.version,
                    min: 1,
                    max: 2,
                })
            } else {
                ServerMsg::Welcome(Welcome {
                    version: h.version,
                    daemon: "0.0.0".into(),
                    session: 1,
                    route_shm: String::new(),
                    arp_shm: String::new(),
                })
            };
            framed
                .send(wire::encode(&answer).expect("encode"))
                .await
                .expect("send");
            if h.version <= 2 {
                // Keep the session open until the client goes.
                while framed.next().await.is_some() {}
            }
        }
        seen
    }

    #[test]
    fn an_older_daemon_gets_its_newest_version_and_no_request_it_cannot_decode() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.sock");
        rt.block_on(async {
            let listener = UnixListener::bind(&path).expect("bind");
            let daemon = tokio::spawn(old_daemon(listener));
            let mut c = Client::connect(&path, "t", Caps::default())
                .await
                .expect("connects at the daemon's version");
            assert_eq!(c.welcome().version, 2);
            match c.send(Request::DashboardUrl).await {
                Err(ClientError::Refused(Failure::Unsupported(why))) => {
                    assert!(why.contains("needs protocol version 3"), "{why}")
                }
                other => panic!("{other:?}"),
            }
            // The kernel actors' debug targets came with version 5.
            for target in [wire::DebugTarget::Kernel, wire::DebugTarget::KernelExport] {
                let req = Request::Debug(wire::DebugAction::Stall { target, ms: 1 });
                match c.send(req).await {
                    Err(ClientError::Refused(Failure::Unsupported(why))) => {
                        assert!(why.contains("needs protocol version 5"), "{why}")
                    }
                    other => panic!("{other:?}"),
                }
            }
            drop(c);
            assert_eq!(
                daemon.await.expect("daemon"),
                vec![wire::PROTOCOL_VERSION, 2]
            );
        });
    }
}
