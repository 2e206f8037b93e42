//! The socket protocol between `rtmd` and its clients.
//!
//! ## Framing
//! Every message is one frame: a 4-byte big-endian length followed by a postcard body
//! ([`codec`]). The daemon refuses frames over its configured maximum and closes only that
//! session; garbage that does not decode does the same.
//!
//! ## Exchange
//! 1. The client sends [`ClientMsg::Hello`] (protocol version, its name, what it can handle).
//!    The daemon answers [`ServerMsg::Welcome`] with the negotiated version and the paths of the
//!    shared-memory files, or [`ServerMsg::Refused`]. `Hello` stays the first variant in every
//!    protocol version so that any daemon can read it: postcard cannot skip unknown variants.
//! 2. Then the client sends [`ClientMsg::Request`]s, each with an id; each gets exactly one
//!    [`ServerMsg::Reply`] with that id, except `show` requests, whose answer may come in several
//!    chunks (`more: true` on all but the last), and `Clients` at version 4, answered in pages
//!    the same way.
//! 3. After [`Request::Subscribe`], the daemon also sends [`ServerMsg::Events`]: per table a
//!    [`Event::Start`] carrying the sequence number the subscription starts after, then every
//!    change with a higher sequence number, in order. A notification names the change (op, table,
//!    key, seq); the entry itself is read from shared memory.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use bytes::Bytes;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

use crate::types::{route_v1, ArpEntry, MacAddr, NeighKey, Neighbour, Origin, Prefix, Route};

/// The fault-injection requests.
mod debug;
/// How routes travel in replies.
mod forms;

pub use debug::{DebugAction, DebugTarget, PanicPoint};

/// The protocol version this build speaks. Version 2 added [`Failure::NoSpace`]; a version 1
/// client is told of it as [`Failure::Internal`] ([`Failure::for_version`]). Version 3 added
/// [`Request::DashboardUrl`] and its reply, and [`DebugTarget::Registry`]; a client sends them
/// only on a session that runs at version 3 ([`Request::since`]). Version 4 answers `Clients` in
/// pages ([`Reply::ClientsPage`]). Version 5 added [`DebugTarget::Kernel`] and
/// [`DebugTarget::KernelExport`]. Version 6 carries each route's [`Origin`] in replies
/// ([`Reply::for_version`]), and adds [`Request::ApplyOverriding`],
/// [`Request::BatchOverriding`] and [`Failure::Owned`]. Version 7 carries multipath routes
/// ([`crate::types::Route::nexthops`]): in operations (their own variants on the wire, so that
/// a route with one next hop still travels as every version reads it) and in replies
/// ([`Reply::RoutesV7`], [`Reply::RouteV7`]). Version 8 adds the kernel's neighbours
/// ([`Table::Neigh`], keyed by (IP, device)): [`Tables::Neigh`], [`Tables::Every`],
/// [`Request::NeighShow`], [`Reply::Neighs`] and [`Key::Neigh`]; a session at an older version
/// is never told of that table.
pub const PROTOCOL_VERSION: u16 = 8;
/// The oldest protocol version this build still accepts.
pub const MIN_PROTOCOL_VERSION: u16 = 1;
/// Default bound on a frame the daemon accepts from a client.
pub const DEFAULT_MAX_REQUEST_FRAME: usize = 1 << 20;
/// Bound on a frame a client accepts from the daemon (show chunks, event batches).
pub const MAX_SERVER_FRAME: usize = 16 << 20;
/// Entries per `show` chunk: keeps each reply frame far below [`MAX_SERVER_FRAME`].
/// Longest client name (`Hello::name`) in bytes; a longer one is refused at the handshake.
pub const MAX_CLIENT_NAME: usize = 255;
pub const SHOW_CHUNK: usize = 8192;
/// Subscribers per [`Reply::ClientsPage`]: with names of at most [`MAX_CLIENT_NAME`] bytes a
/// page stays far below [`MAX_SERVER_FRAME`].
pub const CLIENTS_CHUNK: usize = 256;
/// Operations per batch frame a client should send (the daemon enforces its frame size).
pub const BATCH_CHUNK: usize = 4096;

/// The framing codec both sides use.
pub fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max_frame)
        .new_codec()
}

/// Why a frame body could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct WireError(#[from] postcard::Error);

/// Serializes a message body (without the length prefix).
pub fn encode<T: Serialize>(msg: &T) -> Result<Bytes, WireError> {
    Ok(Bytes::from(postcard::to_allocvec(msg)?))
}

/// Deserializes a message body. Trailing bytes are an error: a frame holds one message.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if rest.is_empty() {
        Ok(msg)
    } else {
        Err(WireError(postcard::Error::DeserializeBadEncoding))
    }
}

// ===== client -> daemon =====

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    Hello(Hello),
    Request { id: u32, req: Request },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    /// The client's own name, shown by `rtmctl clients`.
    pub name: String,
    pub caps: Caps,
}

/// What a client can handle. New capabilities are appended as fields (old readers ignore
/// trailing data they never read only when it is a new frame, so keep this in Hello's tail).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// The client installed a SIGUSR1 handler before registering: it may be signalled.
    pub sigusr1: bool,
}

/// Which table(s) a request or subscription is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Table {
    Route,
    Arp,
    /// The kernel's neighbours (`rtmd --kernel import`). Since version 8.
    Neigh,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Route => "route",
            Table::Arp => "arp",
            Table::Neigh => "neigh",
        }
    }

    /// Every table, in the order their sequence numbers are reported.
    pub const ALL: [Table; 3] = [Table::Route, Table::Arp, Table::Neigh];
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of tables.
///
/// `All` is the route and ARP tables, as it was before the neighbour table came: a flush of
/// `All` (`rtmctl flush`) leaves the kernel's neighbours alone, and a client that asks for `All`
/// is not told of a table it may not know. `Every` adds the neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tables {
    Route,
    Arp,
    All,
    /// The kernel's neighbours alone. Since version 8.
    Neigh,
    /// Routes, ARP entries and the kernel's neighbours. Since version 8.
    Every,
}

impl Tables {
    pub fn contains(self, t: Table) -> bool {
        matches!(
            (self, t),
            (Tables::Every, _)
                | (Tables::All, Table::Route | Table::Arp)
                | (Tables::Route, Table::Route)
                | (Tables::Arp, Table::Arp)
                | (Tables::Neigh, Table::Neigh)
        )
    }

    /// The tables in the set, routes first.
    pub fn iter(self) -> impl Iterator<Item = Table> {
        Table::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// The first protocol version that has this set.
    pub fn since(self) -> u16 {
        match self {
            Tables::Neigh | Tables::Every => 8,
            _ => 1,
        }
    }
}

/// One table mutation. Each is applied atomically and gets its own sequence number.
///
/// On the wire a route with one next hop travels in the form every protocol version reads; a
/// multipath route has variants of its own, since version 7 ([`OpWire`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "OpWire", into = "OpWire")]
pub enum Op {
    RouteAdd(Route),
    RouteChange(Route),
    RouteReplace(Route),
    RouteDel(Prefix),
    ArpAdd(ArpEntry),
    ArpChange(ArpEntry),
    ArpReplace(ArpEntry),
    ArpDel(MacAddr),
    Flush(Tables),
}

/// [`Op`] as it travels.
#[derive(Serialize, Deserialize)]
enum OpWire {
    RouteAdd(#[serde(with = "route_v1")] Route),
    RouteChange(#[serde(with = "route_v1")] Route),
    RouteReplace(#[serde(with = "route_v1")] Route),
    RouteDel(Prefix),
    ArpAdd(ArpEntry),
    ArpChange(ArpEntry),
    ArpReplace(ArpEntry),
    ArpDel(MacAddr),
    Flush(Tables),
    /// Since version 7.
    MultipathAdd(Route),
    MultipathChange(Route),
    MultipathReplace(Route),
}

impl From<Op> for OpWire {
    fn from(op: Op) -> OpWire {
        match op {
            Op::RouteAdd(r) if r.is_multipath() => OpWire::MultipathAdd(r),
            Op::RouteChange(r) if r.is_multipath() => OpWire::MultipathChange(r),
            Op::RouteReplace(r) if r.is_multipath() => OpWire::MultipathReplace(r),
            Op::RouteAdd(r) => OpWire::RouteAdd(r),
            Op::RouteChange(r) => OpWire::RouteChange(r),
            Op::RouteReplace(r) => OpWire::RouteReplace(r),
            Op::RouteDel(p) => OpWire::RouteDel(p),
            Op::ArpAdd(a) => OpWire::ArpAdd(a),
            Op::ArpChange(a) => OpWire::ArpChange(a),
            Op::ArpReplace(a) => OpWire::ArpReplace(a),
            Op::ArpDel(m) => OpWire::ArpDel(m),
            Op::Flush(t) => OpWire::Flush(t),
        }
    }
}

impl From<OpWire> for Op {
    fn from(op: OpWire) -> Op {
        match op {
            OpWire::RouteAdd(r) | OpWire::MultipathAdd(r) => Op::RouteAdd(r),
            OpWire::RouteChange(r) | OpWire::MultipathChange(r) => Op::RouteChange(r),
            OpWire::RouteReplace(r) | OpWire::MultipathReplace(r) => Op::RouteReplace(r),
            OpWire::RouteDel(p) => Op::RouteDel(p),
            OpWire::ArpAdd(a) => Op::ArpAdd(a),
            OpWire::ArpChange(a) => Op::ArpChange(a),
            OpWire::ArpReplace(a) => Op::ArpReplace(a),
            OpWire::ArpDel(m) => Op::ArpDel(m),
            OpWire::Flush(t) => Op::Flush(t),
        }
    }
}

impl Op {
    /// The first protocol version that can carry this operation.
    pub fn since(&self) -> u16 {
        match self {
            Op::RouteAdd(r) | Op::RouteChange(r) | Op::RouteReplace(r) if r.is_multipath() => 7,
            Op::Flush(t) => t.since(),
            _ => 1,
        }
    }

    /// The table this operation writes, `None` for flushes (which may span both).
    pub fn table(&self) -> Option<Table> {
        match self {
            Op::RouteAdd(_) | Op::RouteChange(_) | Op::RouteReplace(_) | Op::RouteDel(_) => {
                Some(Table::Route)
            }
            Op::ArpAdd(_) | Op::ArpChange(_) | Op::ArpReplace(_) | Op::ArpDel(_) => {
                Some(Table::Arp)
            }
            Op::Flush(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// One mutation.
    Apply(Op),
    /// Many mutations in order. Without `force` the daemon stops at the first failure.
    Batch {
        ops: Vec<Op>,
        force: bool,
    },
    RouteShow(Option<Prefix>),
    /// Longest-prefix match.
    RouteGet(Ipv4Addr),
    ArpShow(Option<MacAddr>),
    ArpGet(MacAddr),
    Clients,
    Status,
    /// Register as a subscriber and receive events for `tables`.
    Subscribe {
        tables: Tables,
    },
    /// Leave cleanly; the daemon answers, then closes the session.
    Deregister,
    /// Test hooks, only honoured by daemons built with the `fault-injection` feature.
    Debug(DebugAction),
    /// A dashboard URL with a fresh token bound to the caller's uid (`rtmctl dashboard-url`).
    /// Since version 3.
    DashboardUrl,
    /// `Apply`, which may also change entries of another origin than rtm (the kernel's
    /// routes): `rtmctl --override-kernel`. Without it such a change is refused with
    /// [`Failure::Owned`]. Since version 6.
    ApplyOverriding(Op),
    /// `Batch`, overriding like [`Request::ApplyOverriding`]. Since version 6.
    BatchOverriding {
        ops: Vec<Op>,
        force: bool,
    },
    /// The kernel's neighbours: all, or those with one IP (on every device). Answered like
    /// `RouteShow`, in chunks of [`Reply::Neighs`]. Since version 8.
    NeighShow(Option<Ipv4Addr>),
}

impl Request {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Apply(_) => "apply",
            Request::Batch { .. } => "batch",
            Request::RouteShow(_) => "route-show",
            Request::RouteGet(_) => "route-get",
            Request::ArpShow(_) => "arp-show",
            Request::ArpGet(_) => "arp-get",
            Request::Clients => "clients",
            Request::Status => "status",
            Request::Subscribe { .. } => "subscribe",
            Request::Deregister => "deregister",
            Request::Debug(_) => "debug",
            Request::DashboardUrl => "dashboard-url",
            Request::ApplyOverriding(_) => "apply-overriding",
            Request::BatchOverriding { .. } => "batch-overriding",
            Request::NeighShow(_) => "neigh-show",
        }
    }

    /// The first protocol version that has this request. A daemon that speaks an older one
    /// cannot decode it and would close the session, so a client does not send it there.
    pub fn since(&self) -> u16 {
        match self {
            Request::DashboardUrl => 3,
            Request::Debug(a) => a.target().since(),
            Request::Apply(op) => op.since(),
            Request::Batch { ops, .. } => ops.iter().map(Op::since).max().unwrap_or(1),
            Request::ApplyOverriding(op) => op.since().max(6),
            Request::BatchOverriding { ops, .. } => {
                ops.iter().map(Op::since).max().unwrap_or(1).max(6)
            }
            Request::Subscribe { tables } => tables.since(),
            Request::NeighShow(_) => 8,
            _ => 1,
        }
    }

    /// Whether this request changes state (subject to access control).
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            Request::Apply(_)
                | Request::Batch { .. }
                | Request::Debug(_)
                | Request::ApplyOverriding(_)
                | Request::BatchOverriding { .. }
        )
    }
}

// ===== daemon -> client =====

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    Welcome(Welcome),
    Refused(Failure),
    Reply {
        id: u32,
        result: Result<Reply, Failure>,
    },
    /// Notifications, coalesced: many per frame, in order.
    Events(Vec<Event>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u16,
    /// The daemon's package version.
    pub daemon: String,
    pub session: u64,
    pub route_shm: String,
    pub arp_shm: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A mutation was applied; `seq` is the sequence number it got (a flush of both tables
    /// reports the route table's).
    Done {
        seq: u64,
    },
    Routes {
        #[serde(with = "forms::routes_v1")]
        routes: Vec<Route>,
        more: bool,
    },
    Route(#[serde(with = "route_v1")] Route),
    Arps {
        entries: Vec<ArpEntry>,
        more: bool,
    },
    Arp(ArpEntry),
    /// `applied` operations succeeded. Without `force`, `failures` holds at most one entry and
    /// nothing after it was attempted.
    Batch {
        applied: u32,
        failures: Vec<BatchFailure>,
    },
    Clients(Vec<ClientInfo>),
    Status(Status),
    Subscribed,
    Deregistered,
    /// The dashboard's address with a token for the asking uid.
    DashboardUrl(DashboardUrl),
    /// One page of the answer to `Clients` on a session at version 4 or later: at most
    /// [`CLIENTS_CHUNK`] subscribers, `more: true` on all but the last page. Older sessions get
    /// one [`Reply::Clients`]. Since version 4.
    ClientsPage {
        clients: Vec<ClientInfo>,
        more: bool,
    },
    /// [`Reply::Routes`] with each route's origin, to a client at version 6 or later
    /// ([`Reply::for_version`]). Since version 6.
    RouteList {
        #[serde(with = "forms::routes_with_origin_v1")]
        routes: Vec<Route>,
        more: bool,
    },
    /// [`Reply::Route`] with the route's origin. Since version 6.
    RouteWithOrigin(#[serde(with = "forms::route_with_origin_v1")] Route),
    /// [`Reply::Routes`] with each route's origin and next hops, multipath routes included, to a
    /// client at version 7 or later. Since version 7.
    RoutesV7 {
        #[serde(with = "forms::routes_with_origin")]
        routes: Vec<Route>,
        more: bool,
    },
    /// [`Reply::Route`] with the route's origin and next hops. Since version 7.
    RouteV7(#[serde(with = "forms::route_with_origin")] Route),
    /// Kernel neighbours, in key order, `more: true` on all but the last chunk. Since
    /// version 8.
    Neighs {
        entries: Vec<Neighbour>,
        more: bool,
    },
}

impl Reply {
    /// The reply as it travels to a client at protocol `version`: from version 7 on, routes
    /// go whole, origin and multipath next hops included ([`Reply::RoutesV7`],
    /// [`Reply::RouteV7`]); at version 6 with their origin ([`Reply::RouteList`],
    /// [`Reply::RouteWithOrigin`]); before, without it. A multipath route has no form before
    /// version 7: the answer is then a failure that names it and says what to do.
    pub fn for_version(self, version: u16) -> Result<Reply, Failure> {
        let r = self.normalized();
        if version < 7 {
            let multipath = match &r {
                Reply::Routes { routes, .. } => routes.iter().find(|r| r.is_multipath()),
                Reply::Route(r) => Some(r).filter(|r| r.is_multipath()),
                _ => None,
            };
            if let Some(m) = multipath {
                return Err(Failure::Unsupported(format!(
                    "{}; upgrade this client",
                    route_v1::unencodable(m)
                )));
            }
        }
        Ok(match r {
            Reply::Routes { routes, more } if version >= 7 => Reply::RoutesV7 { routes, more },
            Reply::Route(r) if version >= 7 => Reply::RouteV7(r),
            Reply::Routes { routes, more } if version >= 6 => Reply::RouteList { routes, more },
            Reply::Route(r) if version >= 6 => Reply::RouteWithOrigin(r),
            r => r,
        })
    }

    /// The reply whatever form it came in: routes as [`Reply::Routes`] and [`Reply::Route`]
    /// (with their origin and next hops when the daemon sent them).
    pub fn normalized(self) -> Reply {
        match self {
            Reply::RouteList { routes, more } | Reply::RoutesV7 { routes, more } => {
                Reply::Routes { routes, more }
            }
            Reply::RouteWithOrigin(r) | Reply::RouteV7(r) => Reply::Route(r),
            r => r,
        }
    }
}

/// A dashboard token minted for the uid on the other end of the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardUrl {
    /// Open this in a browser; it carries the token.
    pub url: String,
    pub uid: u32,
    /// Whether the token may change the tables (the same rule as for `rtmctl`).
    pub may_change: bool,
    /// Seconds until the token expires.
    pub expires_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchFailure {
    /// Index of the failing operation in the request's `ops`.
    pub index: u32,
    pub failure: Failure,
}

/// Why the daemon refused a request. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    #[error("{table} entry {key} already exists")]
    Exists { table: Table, key: String },
    #[error("{table} entry {key} not found")]
    NotFound { table: Table, key: String },
    #[error("{table} table full (capacity {capacity}): {key} not added")]
    Full {
        table: Table,
        capacity: u64,
        key: String,
    },
    #[error("permission denied: uid {uid} may not change tables")]
    PermissionDenied { uid: u32 },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("too many clients: the daemon allows {max} registered subscribers")]
    TooManyClients { max: u32 },
    #[error("protocol version {client} not supported (daemon speaks {min}..={max})")]
    Version { client: u16, min: u16, max: u16 },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
    /// A configured limit refuses the request (batch ops per frame, requests in flight, ...).
    #[error("limit exceeded: {what} (limit {limit})")]
    Limit { what: String, limit: u64 },
    /// The file system of the shared-memory directory is full: nothing was changed.
    #[error("no space in {dir} for the {table} table")]
    NoSpace { table: Table, dir: String },
    /// The change would touch entries another origin owns (the kernel's routes, which the
    /// kernel mirror would put back), and the request was not an overriding one: `key` is the
    /// entry, or `None` for a flush, which would remove `count` of them. Since version 6.
    #[error("{}", owned_message(*.table, .key.as_deref(), *.count, *.origin))]
    Owned {
        table: Table,
        key: Option<String>,
        count: u64,
        origin: Origin,
    },
}

fn owned_message(table: Table, key: Option<&str>, count: u64, origin: Origin) -> String {
    match key {
        Some(key) => format!(
            "{table} {key} comes from the {origin}, which would put it back; \
             --override-kernel changes it anyway"
        ),
        None => format!(
            "the {table} table holds {count} entries from the {origin}, which would put them \
             back; --override-kernel flushes them anyway"
        ),
    }
}

impl Failure {
    /// The failure as a client speaking protocol `version` can decode it.
    pub fn for_version(self, version: u16) -> Failure {
        match self {
            f @ Failure::NoSpace { .. } if version < 2 => Failure::Internal(f.to_string()),
            f @ Failure::Owned { .. } if version < 6 => Failure::Invalid(f.to_string()),
            f => f,
        }
    }
}

/// What a change did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

impl ChangeOp {
    pub fn name(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }
}

/// A table key, as carried by notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    Route(Prefix),
    Arp(MacAddr),
    /// Since version 8.
    Neigh(NeighKey),
}

impl Key {
    pub fn table(self) -> Table {
        match self {
            Key::Route(_) => Table::Route,
            Key::Arp(_) => Table::Arp,
            Key::Neigh(_) => Table::Neigh,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Route(p) => p.fmt(f),
            Key::Arp(m) => m.fmt(f),
            Key::Neigh(k) => k.fmt(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The subscription to `table` starts: shared memory holds every change up to `seq`
    /// (possibly newer ones too), and every change after `seq` follows.
    Start { table: Table, seq: u64 },
    /// One change; read the entry from shared memory.
    Change {
        table: Table,
        op: ChangeOp,
        key: Key,
        seq: u64,
    },
    /// The table was emptied; `seq` is the flush's own sequence number.
    Flush { table: Table, seq: u64 },
    /// This client fell behind and notifications were dropped: re-read the table from shared
    /// memory, which holds every change up to `seq`; changes after `seq` follow.
    Resync { table: Table, seq: u64 },
    /// The daemon is stopping cleanly.
    Bye,
}

impl Event {
    pub fn table(&self) -> Option<Table> {
        match *self {
            Event::Start { table, .. }
            | Event::Change { table, .. }
            | Event::Flush { table, .. }
            | Event::Resync { table, .. } => Some(table),
            Event::Bye => None,
        }
    }
}

/// One registered subscriber, as `rtmctl clients` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub id: u64,
    pub pid: i32,
    pub uid: u32,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub connected_at_ms: u64,
    pub queued: u64,
    pub sent: u64,
    pub resyncs: u64,
    pub sigusr1: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_s: u64,
    pub routes: u64,
    pub arps: u64,
    pub route_capacity: u64,
    pub arp_capacity: u64,
    pub clients: u64,
    pub restarts: Restarts,
    pub counters: BTreeMap<String, u64>,
    /// The last actor failure the supervisor recovered from, as "actor: reason".
    pub last_failure: Option<String>,
}

/// The key under which `Status::counters` carries the registry actor's restarts (`Restarts`
/// predates its supervision, and a field added there would change the layout of `Status`);
/// clients show it as `restarts.registry`.
pub const REGISTRY_RESTARTS: &str = "registry_restarts";

/// Like [`REGISTRY_RESTARTS`], for the kernel mirror (`rtmd --kernel import`); present only
/// when the mirror runs. Clients show it as `restarts.kernel`.
pub const KERNEL_RESTARTS: &str = "kernel_restarts";

/// Like [`REGISTRY_RESTARTS`], for the kernel neighbour table; clients show it as
/// `restarts.neigh`. Since version 8.
pub const NEIGH_RESTARTS: &str = "neigh_restarts";

/// The kernel neighbour table's size and capacity travel in `Status::counters` under these
/// keys (`Status` predates the table); clients show them as `neighs` and `neigh_capacity`.
/// Since version 8.
pub const NEIGHS: &str = "neighs";
pub const NEIGH_CAPACITY: &str = "neigh_capacity";

/// How often the supervisor restarted each actor since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restarts {
    pub route: u64,
    pub arp: u64,
    pub broker: u64,
    pub listener: u64,
}

#[cfg(test)]
mod tests;
