//! The rtnetlink side of the kernel mirror: the event socket (route and link groups), the
//! dumps, and the translation of kernel messages into what the mirror keeps.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use rtm_proto::types::Prefix;

/// The multicast groups the mirror follows (`RTNLGRP_LINK`, `RTNLGRP_IPV4_ROUTE`).
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_ROUTE: u32 = 7;

/// How often a dump the kernel marked as interrupted (`NLM_F_DUMP_INTR`: the table changed
/// while it was read) is tried again before the mirror gives up and restarts.
const DUMP_TRIES: usize = 10;

/// One kernel route the mirror can carry: unicast, one next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: Prefix,
    pub tos: u8,
    /// The kernel's `priority` (`ip route … metric N`); rtm's `metric`.
    pub priority: u32,
    pub via: Option<Ipv4Addr>,
    /// The output link's index.
    pub oif: Option<u32>,
    /// Who put it there (`ip route … proto N`): 2 kernel, 3 boot, 4 static, …
    pub protocol: u8,
}

/// A link as the mirror needs it: its name (rtm's `dev`) and whether it is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
}

/// What one kernel message means to the mirror.
#[derive(Debug)]
pub enum Change {
    RouteAdded(KernelRoute),
    RouteRemoved(KernelRoute),
    Link(Link),
    LinkRemoved(u32),
    /// Not for the mirror (another table or family, a skipped route type, …).
    Ignored,
}

/// Why a route of the mirrored table is not mirrored, or `None` if it is.
pub fn skipped(msg: &RouteMessage) -> Option<&'static str> {
    if msg.header.kind != RouteType::Unicast {
        return Some(
            "not unicast (local, broadcast, multicast, blackhole, unreachable, prohibit, …)",
        );
    }
    if msg.header.flags.contains(RouteFlags::Cloned) {
        return Some("a cached clone");
    }
    for a in &msg.attributes {
        match a {
            RouteAttribute::MultiPath(_) => return Some("multipath"),
            RouteAttribute::NhId(_) => return Some("next-hop object (nhid)"),
            _ => {}
        }
    }
    None
}

/// The route in `msg` if it belongs to `table` and is one the mirror carries.
pub fn route(msg: &RouteMessage, table: u32) -> Option<KernelRoute> {
    if msg.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut in_table = u32::from(msg.header.table);
    let (mut dst, mut via, mut oif, mut priority) = (Ipv4Addr::UNSPECIFIED, None, None, 0);
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => in_table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => via = Some(*a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => priority = *p,
            _ => {}
        }
    }
    if in_table != table || skipped(msg).is_some() {
        return None;
    }
    let dst = Prefix::new(dst, msg.header.destination_prefix_length)?;
    Some(KernelRoute {
        dst,
        tos: msg.header.tos,
        priority,
        via,
        oif,
        protocol: msg.header.protocol.into(),
    })
}

pub fn link(msg: &LinkMessage) -> Option<Link> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    Some(Link {
        index: msg.header.index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up),
    })
}

/// What an event message means for a mirror of `table`.
pub fn change(msg: RouteNetlinkMessage, table: u32) -> Change {
    match msg {
        RouteNetlinkMessage::NewRoute(m) => {
            route(&m, table).map_or(Change::Ignored, Change::RouteAdded)
        }
        RouteNetlinkMessage::DelRoute(m) => {
            route(&m, table).map_or(Change::Ignored, Change::RouteRemoved)
        }
        RouteNetlinkMessage::NewLink(m) => link(&m).map_or(Change::Ignored, Change::Link),
        RouteNetlinkMessage::DelLink(m) => Change::LinkRemoved(m.header.index),
        _ => Change::Ignored,
    }
}

/// The messages in one datagram; undecodable ones are counted, not fatal.
pub fn messages(
    buf: &[u8],
) -> (
    Vec<(NetlinkHeader, NetlinkPayload<RouteNetlinkMessage>)>,
    usize,
) {
    let (mut out, mut bad, mut off) = (Vec::new(), 0, 0);
    while off < buf.len() {
        // The header's first word is the message length.
        let Some(len) = buf
            .get(off..off + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            bad += 1;
            break;
        };
        if len < 16 || off + len > buf.len() {
            bad += 1;
            break;
        }
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len]) {
            Ok(m) => out.push((m.header, m.payload)),
            Err(_) => bad += 1,
        }
        // Messages are aligned to 4 bytes.
        off += (len + 3) & !3;
    }
    (out, bad)
}

/// The socket that hears route and link changes, with its receive buffer set to `rcvbuf`
/// bytes (the kernel doubles it and caps it at `net.core.rmem_max`).
pub fn event_socket(rcvbuf: usize) -> io::Result<TokioSocket> {
    let mut s = TokioSocket::new(NETLINK_ROUTE)?;
    s.socket_mut().bind_auto()?;
    s.socket_ref().set_rx_buf_sz(rcvbuf)?;
    s.socket_ref().add_membership(RTNLGRP_LINK)?;
    s.socket_ref().add_membership(RTNLGRP_IPV4_ROUTE)?;
    Ok(s)
}

/// Every link, then every route of `table` the mirror carries.
pub async fn dump(table: u32) -> io::Result<(Vec<Link>, Vec<KernelRoute>)> {
    let links = dump_links().await?;
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::Inet;
    let routes = dump_of(RouteNetlinkMessage::GetRoute(req))
        .await?
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => route(&r, table),
            _ => None,
        })
        .collect();
    Ok((links, routes))
}

/// Every link.
pub async fn dump_links() -> io::Result<Vec<Link>> {
    Ok(
        dump_of(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .await?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => link(&l),
                _ => None,
            })
            .collect(),
    )
}

/// Runs one dump request to its end, again if the kernel says it was interrupted.
async fn dump_of(req: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    for _ in 0..DUMP_TRIES {
        if let Some(v) = dump_once(req.clone()).await? {
            return Ok(v);
        }
    }
    Err(io::Error::other(format!(
        "the kernel interrupted the dump {DUMP_TRIES} times in a row"
    )))
}

/// A socket for requests to the kernel (a dump, route changes), bound to an address of its own.
fn request_socket() -> io::Result<TokioSocket> {
    let mut s = TokioSocket::new(NETLINK_ROUTE)?;
    s.socket_mut().bind_auto()?;
    s.socket_ref().connect(&SocketAddr::new(0, 0))?;
    Ok(s)
}

/// `msg` as one netlink message with these flags and sequence number.
fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// One dump; `None` if the kernel marked it interrupted.
async fn dump_once(req: RouteNetlinkMessage) -> io::Result<Option<Vec<RouteNetlinkMessage>>> {
    let s = request_socket()?;
    s.send(&encode(req, NLM_F_REQUEST | NLM_F_DUMP, 1)).await?;
    let (mut out, mut interrupted) = (Vec::new(), false);
    loop {
        let (data, _) = s.recv_from_full().await?;
        let (msgs, bad) = messages(&data);
        if bad > 0 {
            return Err(io::Error::other("undecodable message in a kernel dump"));
        }
        for (header, payload) in msgs {
            interrupted |= header.flags & NLM_F_DUMP_INTR != 0;
            match payload {
                NetlinkPayload::Done(_) => return Ok((!interrupted).then_some(out)),
                NetlinkPayload::Error(e) => {
                    return Err(e.code.map_or_else(
                        || io::Error::other("dump refused"),
                        |c| io::Error::from_raw_os_error(-c.get()),
                    ))
                }
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
        }
    }
}

impl Change {
    /// This change, or `Ignored` if it is about a route of protocol `own` (rtm's own exported
    /// routes, which the import leaves alone).
    pub fn unless_proto(self, own: Option<u8>) -> Change {
        match &self {
            Change::RouteAdded(r) | Change::RouteRemoved(r) if Some(r.protocol) == own => {
                Change::Ignored
            }
            _ => self,
        }
    }
}

/// A route as rtm writes it into the kernel (`ip route replace DST via VIA dev OIF metric
/// PRIORITY table T proto P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelWrite {
    pub dst: Prefix,
    pub via: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub priority: u32,
}

/// What a route request asks of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Add the route; refused if the kernel has one with the same (prefix, priority).
    Add(KernelWrite),
    /// Add the route or replace the one with the same (prefix, priority).
    Replace(KernelWrite),
    /// Delete the route of rtm's protocol with this prefix and priority.
    Del(Prefix, u32),
}

/// A route message of rtm's protocol for `dst` in `table`, with `scope`.
fn message_for(dst: Prefix, table: u32, proto: u8, scope: RouteScope) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.destination_prefix_length = dst.len();
    m.header.protocol = proto.into();
    m.header.scope = scope;
    set_table(&mut m, table);
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(dst.addr())));
    m
}

fn route_message(w: &KernelWrite, table: u32, proto: u8) -> RouteMessage {
    let scope = if w.via.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    let mut m = message_for(w.dst, table, proto, scope);
    m.header.kind = RouteType::Unicast;
    if let Some(via) = w.via {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(via)));
    }
    if let Some(oif) = w.oif {
        m.attributes.push(RouteAttribute::Oif(oif));
    }
    m.attributes.push(RouteAttribute::Priority(w.priority));
    m
}

/// Tables above 255 go in an attribute; the header's byte then says `RT_TABLE_UNSPEC`.
fn set_table(m: &mut RouteMessage, table: u32) {
    match u8::try_from(table) {
        Ok(t) => m.header.table = t,
        Err(_) => {
            m.header.table = 0;
            m.attributes.push(RouteAttribute::Table(table));
        }
    }
}

impl Request {
    fn message(&self, table: u32, proto: u8) -> (RouteNetlinkMessage, u16) {
        match self {
            Request::Add(w) => (
                RouteNetlinkMessage::NewRoute(route_message(w, table, proto)),
                NLM_F_CREATE | NLM_F_EXCL,
            ),
            Request::Replace(w) => (
                RouteNetlinkMessage::NewRoute(route_message(w, table, proto)),
                NLM_F_CREATE | NLM_F_REPLACE,
            ),
            Request::Del(dst, priority) => {
                let mut m = message_for(*dst, table, proto, RouteScope::NoWhere);
                m.attributes.push(RouteAttribute::Priority(*priority));
                (RouteNetlinkMessage::DelRoute(m), 0)
            }
        }
    }
}

/// Requests in flight at once on a [`Requester`]: their acknowledgements (and the errors,
/// which quote the request) stay far below the socket's receive buffer.
const IN_FLIGHT: usize = 128;

/// A netlink socket for route requests, each acknowledged by the kernel.
pub struct Requester {
    sock: TokioSocket,
    seq: u32,
    table: u32,
    proto: u8,
}

impl Requester {
    pub fn open(table: u32, proto: u8) -> io::Result<Requester> {
        Ok(Requester {
            sock: request_socket()?,
            seq: 0,
            table,
            proto,
        })
    }

    /// Sends every request (at most [`IN_FLIGHT`] unanswered at a time) and returns, for
    /// each, `Ok` or the kernel's refusal. An `Err` of the whole call is a socket failure.
    pub async fn run(&mut self, reqs: &[Request]) -> io::Result<Vec<io::Result<()>>> {
        let mut out: Vec<Option<io::Result<()>>> = (0..reqs.len()).map(|_| None).collect();
        for (w, window) in reqs.chunks(IN_FLIGHT).enumerate() {
            let base = self.seq;
            for (i, r) in window.iter().enumerate() {
                let (msg, flags) = r.message(self.table, self.proto);
                let seq = base.wrapping_add(i as u32);
                let buf = encode(msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
                self.sock.send(&buf).await?;
            }
            self.seq = base.wrapping_add(window.len() as u32);
            let mut left = window.len();
            while left > 0 {
                let (data, _) = self.sock.recv_from_full().await?;
                let (msgs, bad) = messages(&data);
                if bad > 0 {
                    return Err(io::Error::other("undecodable kernel acknowledgement"));
                }
                for (header, payload) in msgs {
                    let NetlinkPayload::Error(e) = payload else {
                        continue;
                    };
                    let i = header.sequence_number.wrapping_sub(base) as usize;
                    let Some(slot) = out.get_mut(w * IN_FLIGHT + i).filter(|_| i < window.len())
                    else {
                        continue;
                    };
                    if slot.is_none() {
                        left -= 1;
                    }
                    *slot = Some(match e.code {
                        None => Ok(()),
                        Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                    });
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("no answer"))))
            .collect())
    }
}
