//! Structured fuzz inputs: `arbitrary`-derived shapes that map onto the protocol's messages.
//!
//! The protocol crate has no `Arbitrary` derives on purpose; these mirror types live here and
//! are mapped onto `ClientMsg` values. Keys come mostly from small pools so that one input
//! often hits the same key twice (exists / not found / change / delete paths), with a "wild"
//! escape to the whole key space.

use std::net::Ipv4Addr;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use rtm_proto::wire::{
    Caps, ClientMsg, DebugAction, DebugTarget, Hello, Op, PanicPoint, Request, Tables,
    PROTOCOL_VERSION,
};
use rtm_proto::{ArpEntry, Hop, IfName, MacAddr, Prefix, Route};

#[derive(Debug, Arbitrary)]
pub enum FPrefix {
    /// 10.p.0.0 with a length 8..=32 (truncated to a valid prefix).
    Pool {
        p: u8,
        len: u8,
    },
    Wild {
        addr: u32,
        len: u8,
    },
}

impl FPrefix {
    pub fn get(&self) -> Prefix {
        match *self {
            FPrefix::Pool { p, len } => {
                Prefix::truncating(Ipv4Addr::new(10, p % 8, 0, 0), 8 + len % 25)
            }
            FPrefix::Wild { addr, len } => Prefix::truncating(Ipv4Addr::from(addr), len % 33),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum FAddr {
    Pool(u8),
    Wild(u32),
}

impl FAddr {
    pub fn get(&self) -> Ipv4Addr {
        match *self {
            FAddr::Pool(p) => Ipv4Addr::new(10, p % 8, p / 8 % 4, p / 32),
            FAddr::Wild(a) => Ipv4Addr::from(a),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum FMac {
    Pool(u8),
    Wild([u8; 6]),
}

impl FMac {
    pub fn get(&self) -> MacAddr {
        match *self {
            FMac::Pool(p) => MacAddr([0x02, 0, 0, 0, 0, p % 8]),
            FMac::Wild(b) => MacAddr(b),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum FIfName {
    Pool(u8),
    /// Any text; falls back to a pool name when it is not a valid interface name.
    Text(String),
}

const IFNAMES: [&str; 4] = ["eth0", "eth1", "lo", "a23456789012345"];

impl FIfName {
    pub fn get(&self) -> IfName {
        let pool = |p: usize| IFNAMES[p % IFNAMES.len()].parse().unwrap();
        match self {
            FIfName::Pool(p) => pool(*p as usize),
            FIfName::Text(s) => s.parse().unwrap_or_else(|_| pool(s.len())),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub struct FHop {
    via: Option<FAddr>,
    dev: Option<FIfName>,
    weight: u16,
}

#[derive(Debug, Arbitrary)]
pub struct FRoute {
    dst: FPrefix,
    via: Option<FAddr>,
    dev: Option<FIfName>,
    metric: u32,
    /// Next hops of a multipath route: any number up to a few past the limit, any weight
    /// (0 and above 256 included), beside a via/dev or not.
    nexthops: Vec<FHop>,
}

impl FRoute {
    /// Routes without a next hop are kept: the daemon must refuse them, not trust the wire.
    pub fn get(&self) -> Route {
        Route {
            dst: self.dst.get(),
            via: self.via.as_ref().map(FAddr::get),
            dev: self.dev.as_ref().map(FIfName::get),
            metric: self.metric,
            nexthops: self
                .nexthops
                .iter()
                .take(rtm_proto::types::MAX_NEXTHOPS + 2)
                .map(|h| Hop {
                    via: h.via.as_ref().map(FAddr::get),
                    dev: h.dev.as_ref().map(FIfName::get),
                    weight: h.weight,
                })
                .collect(),
            origin: Default::default(),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub struct FArp {
    mac: FMac,
    ip: FAddr,
    dev: Option<FIfName>,
}

impl FArp {
    pub fn get(&self) -> ArpEntry {
        ArpEntry {
            mac: self.mac.get(),
            ip: self.ip.get(),
            dev: self.dev.as_ref().map(FIfName::get),
        }
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum FTables {
    Route,
    Arp,
    All,
}

impl FTables {
    pub fn get(self) -> Tables {
        match self {
            FTables::Route => Tables::Route,
            FTables::Arp => Tables::Arp,
            FTables::All => Tables::All,
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum FOp {
    RouteAdd(FRoute),
    RouteChange(FRoute),
    RouteReplace(FRoute),
    RouteDel(FPrefix),
    ArpAdd(FArp),
    ArpChange(FArp),
    ArpReplace(FArp),
    ArpDel(FMac),
    Flush(FTables),
}

impl FOp {
    pub fn get(&self) -> Op {
        match self {
            FOp::RouteAdd(r) => Op::RouteAdd(r.get()),
            FOp::RouteChange(r) => Op::RouteChange(r.get()),
            FOp::RouteReplace(r) => Op::RouteReplace(r.get()),
            FOp::RouteDel(p) => Op::RouteDel(p.get()),
            FOp::ArpAdd(a) => Op::ArpAdd(a.get()),
            FOp::ArpChange(a) => Op::ArpChange(a.get()),
            FOp::ArpReplace(a) => Op::ArpReplace(a.get()),
            FOp::ArpDel(m) => Op::ArpDel(m.get()),
            FOp::Flush(t) => Op::Flush(t.get()),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum FRequest {
    Apply(FOp),
    Batch {
        ops: Vec<FOp>,
        force: bool,
    },
    RouteShow(Option<FPrefix>),
    RouteGet(FAddr),
    ArpShow(Option<FMac>),
    ArpGet(FMac),
    Clients,
    Status,
    Subscribe(FTables),
    Deregister,
    /// Refused by daemons built without fault injection (the fuzz build has none).
    Debug {
        target: u8,
        point: u8,
        stall: bool,
    },
}

impl FRequest {
    pub fn get(&self) -> Request {
        match self {
            FRequest::Apply(op) => Request::Apply(op.get()),
            FRequest::Batch { ops, force } => Request::Batch {
                ops: ops.iter().map(FOp::get).collect(),
                force: *force,
            },
            FRequest::RouteShow(p) => Request::RouteShow(p.as_ref().map(FPrefix::get)),
            FRequest::RouteGet(a) => Request::RouteGet(a.get()),
            FRequest::ArpShow(m) => Request::ArpShow(m.as_ref().map(FMac::get)),
            FRequest::ArpGet(m) => Request::ArpGet(m.get()),
            FRequest::Clients => Request::Clients,
            FRequest::Status => Request::Status,
            FRequest::Subscribe(t) => Request::Subscribe { tables: t.get() },
            FRequest::Deregister => Request::Deregister,
            FRequest::Debug {
                target,
                point,
                stall,
            } => {
                let target = [
                    DebugTarget::Route,
                    DebugTarget::Arp,
                    DebugTarget::Broker,
                    DebugTarget::Listener,
                    DebugTarget::Session,
                ][*target as usize % 5];
                Request::Debug(if *stall {
                    DebugAction::Stall {
                        target,
                        ms: *point as u32,
                    }
                } else {
                    DebugAction::Panic {
                        target,
                        point: [
                            PanicPoint::Handler,
                            PanicPoint::Async,
                            PanicPoint::Interval,
                            PanicPoint::Stream,
                            PanicPoint::Restart,
                            PanicPoint::Publish,
                        ][*point as usize % 6],
                    }
                })
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
pub struct FHello {
    /// Mostly the current version; sometimes any.
    version: Option<u16>,
    name: String,
    sigusr1: bool,
}

impl FHello {
    pub fn get(&self) -> Hello {
        Hello {
            version: self.version.unwrap_or(PROTOCOL_VERSION),
            name: self.name.clone(),
            caps: Caps {
                sigusr1: self.sigusr1,
            },
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum FClientMsg {
    Hello(FHello),
    Request { id: u32, req: FRequest },
}

impl FClientMsg {
    pub fn get(&self) -> ClientMsg {
        match self {
            FClientMsg::Hello(h) => ClientMsg::Hello(h.get()),
            // u32::MAX is the harness's own sentinel id.
            FClientMsg::Request { id, req } => ClientMsg::Request {
                id: (*id).min(u32::MAX - 1),
                req: req.get(),
            },
        }
    }
}

/// How the connection opens.
#[derive(Debug, Arbitrary)]
pub enum FHandshake {
    /// A valid Hello: the rest of the input reaches the request path.
    Valid { name: String, sigusr1: bool },
    /// Any message first (a request before Hello, another version, ...).
    Msg(FClientMsg),
    /// Nothing sent by the harness: the frames below open the connection.
    None,
}

/// One unit written to the socket.
#[derive(Debug, Arbitrary)]
pub enum FFrame {
    /// A well-formed message, length-prefixed.
    Msg(FClientMsg),
    /// A well-formed message whose encoded body is then damaged: (position, xor) pairs,
    /// and optionally cut short or extended.
    Mutated {
        msg: FClientMsg,
        flips: Vec<(u16, u8)>,
        truncate: Option<u16>,
        append: Vec<u8>,
    },
    /// Arbitrary body bytes with a correct length prefix.
    Body(Vec<u8>),
    /// Arbitrary bytes with no framing at all (may leave a frame half-written).
    Raw(Vec<u8>),
}

/// A whole daemon fuzz input.
#[derive(Debug, Arbitrary)]
pub struct FSession {
    pub handshake: FHandshake,
    pub frames: Vec<FFrame>,
}

/// Prefixes `body` with its 4-byte big-endian length, as `wire::codec` expects.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn encode(msg: &ClientMsg) -> Vec<u8> {
    rtm_proto::wire::encode(msg)
        .expect("every ClientMsg encodes")
        .to_vec()
}

impl FSession {
    /// The bytes the harness writes, in order.
    pub fn wire_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.handshake {
            FHandshake::Valid { name, sigusr1 } => {
                out.extend(framed(&encode(&ClientMsg::Hello(Hello {
                    version: PROTOCOL_VERSION,
                    name: name.clone(),
                    caps: Caps { sigusr1: *sigusr1 },
                }))))
            }
            FHandshake::Msg(m) => out.extend(framed(&encode(&m.get()))),
            FHandshake::None => {}
        }
        for f in &self.frames {
            match f {
                FFrame::Msg(m) => out.extend(framed(&encode(&m.get()))),
                FFrame::Mutated {
                    msg,
                    flips,
                    truncate,
                    append,
                } => {
                    let mut body = encode(&msg.get());
                    if !body.is_empty() {
                        for &(pos, x) in flips {
                            let i = pos as usize % body.len();
                            body[i] ^= x;
                        }
                    }
                    if let Some(t) = truncate {
                        body.truncate(*t as usize);
                    }
                    body.extend_from_slice(append);
                    out.extend(framed(&body));
                }
                FFrame::Body(b) => out.extend(framed(b)),
                FFrame::Raw(b) => out.extend_from_slice(b),
            }
        }
        out
    }
}
