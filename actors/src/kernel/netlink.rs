//! The rtnetlink side of the kernel mirror: the event socket (route and link groups), the
//! dumps, and the translation of kernel messages into what the mirror keeps.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteType,
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
pub fn messages(buf: &[u8]) -> (Vec<(u16, NetlinkPayload<RouteNetlinkMessage>)>, usize) {
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
            Ok(m) => out.push((m.header.flags, m.payload)),
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
    let links = dump_of(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .await?
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => link(&l),
            _ => None,
        })
        .collect();
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

/// One dump; `None` if the kernel marked it interrupted.
async fn dump_once(req: RouteNetlinkMessage) -> io::Result<Option<Vec<RouteNetlinkMessage>>> {
    let mut s = TokioSocket::new(NETLINK_ROUTE)?;
    s.socket_mut().bind_auto()?;
    s.socket_ref().connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(req));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    s.send(&buf).await?;
    let (mut out, mut interrupted) = (Vec::new(), false);
    loop {
        let (data, _) = s.recv_from_full().await?;
        let (msgs, bad) = messages(&data);
        if bad > 0 {
            return Err(io::Error::other("undecodable message in a kernel dump"));
        }
        for (flags, payload) in msgs {
            interrupted |= flags & NLM_F_DUMP_INTR != 0;
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
