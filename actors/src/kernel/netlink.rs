//! The rtnetlink side of the kernel mirror: the event socket (route, link and next-hop
//! groups), the dumps, and the translation of kernel messages into what the mirror keeps.

mod dump;
pub mod neigh;
pub mod nexthop;
mod write;

pub use dump::{dump, dump_links, dump_neighbours, dump_nexthops, Dump};
pub use write::{KernelWrite, Request, Requester, WriteHop};

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_APPEND, NLM_F_REPLACE,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteNextHopFlags,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, SocketAddr, TokioSocket};
use rtm_proto::types::{Hop, IfName, Prefix, MAX_NEXTHOPS};
use rtm_proto::{Origin, Route};

use nexthop::{NextHopMessage, NextHopObject};

/// The multicast groups the mirror follows (`RTNLGRP_LINK`, `RTNLGRP_IPV4_ROUTE`).
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_ROUTE: u32 = 7;

/// How often a dump the kernel marked as interrupted (`NLM_F_DUMP_INTR`: the table changed
/// while it was read) is tried again before the mirror gives up and restarts.
const DUMP_TRIES: usize = 10;

/// One kernel route the mirror can carry: unicast, with one next hop (`via`/`oif`), several
/// (`nexthops`, from `RTA_MULTIPATH`), or those of a next-hop object (`nhid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: Prefix,
    pub tos: u8,
    /// The kernel's `priority` (`ip route … metric N`); rtm's `metric`.
    pub priority: u32,
    pub via: Option<Ipv4Addr>,
    /// The output link's index.
    pub oif: Option<u32>,
    /// The paths of a multipath route, in the kernel's order; empty for a route with one
    /// next hop (then `via` and `oif` say it).
    pub nexthops: Vec<KernelHop>,
    /// Who put it there (`ip route … proto N`): 2 kernel, 3 boot, 4 static, …
    pub protocol: u8,
    /// `RTA_NH_ID`: the route forwards over next-hop object N, whose content the mirror
    /// follows itself; `via`, `oif` and `nexthops` are then empty (the copies of the object's
    /// next hops the kernel adds to the message, `nexthop_compat_mode`, are not kept: they
    /// go stale when the object changes).
    pub nhid: Option<u32>,
}

/// One path of a multipath route (an `rtnexthop` of `RTA_MULTIPATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelHop {
    /// `RTA_GATEWAY` inside the `rtnexthop`.
    pub via: Option<Ipv4Addr>,
    /// `rtnh_ifindex` (0: none given).
    pub oif: u32,
    /// `rtnh_hops + 1`: 1..=256, as `ip route` shows it.
    pub weight: u16,
    /// `RTNH_F_DEAD`: the kernel does not forward over this path (its link is down).
    pub dead: bool,
}

/// Why a route of the mirrored table is not mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// `local`, `broadcast`, `blackhole`, … (no next hop to forward to).
    NotUnicast,
    /// A cached clone, not a route of the table.
    Cloned,
    /// A route for packets of one TOS only (`ip route … tos N`).
    Tos,
    /// More paths than rtm's route holds.
    TooManyPaths,
    /// `RTA_VIA`: a gateway of another address family (`via inet6 …`).
    ForeignGateway,
    /// `RTA_ENCAP`: a lightweight-tunnel encapsulation (`encap mpls …`) rtm cannot carry.
    Encap,
}

impl Skip {
    pub fn why(self) -> &'static str {
        match self {
            Skip::NotUnicast => {
                "not unicast (local, broadcast, multicast, blackhole, unreachable, prohibit, …)"
            }
            Skip::Cloned => "a cached clone",
            Skip::Tos => {
                "a tos route, which the kernel uses only for packets with that tos (rtm mirrors what the others take)"
            }
            Skip::TooManyPaths => "more than 256 paths (rtm's limit)",
            Skip::ForeignGateway => "a gateway of another address family (via inet6)",
            Skip::Encap => "an encapsulation (encap), which rtm's route cannot carry",
        }
    }

    /// Whether an operator should hear of it: a route of a kind rtm never mirrors (no next
    /// hop, a clone) is not worth a warning; one that looks like a forwarding route is.
    pub fn worth_a_warning(self) -> bool {
        !matches!(self, Skip::NotUnicast | Skip::Cloned)
    }

    /// Whether the route is left out of the mirror's lists altogether: it never decides what
    /// a packet without a tos takes (a clone is no route of the table; a tos route the kernel
    /// skips for every other tos), so it is no placeholder either.
    pub fn invisible(self) -> bool {
        matches!(self, Skip::Cloned | Skip::Tos)
    }
}

/// A route of the mirrored table that rtm does not carry, and why. The mirror keeps it in its
/// place among the kernel's routes (the kernel may forward with it, and then rtm holds nothing
/// for its prefix), with the links it goes over, so that a link going down takes it as the
/// kernel does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncarried {
    pub dst: Prefix,
    pub tos: u8,
    pub priority: u32,
    pub protocol: u8,
    pub why: Skip,
    /// The route type (`rtm_type`): a `blackhole` and an `unreachable` route are two.
    pub kind: u8,
    /// `RTA_NH_ID` (`ip route add blackhole P nhid N` is taken): the route goes with its
    /// object, and its paths are the object's (not kept, as for a carried route).
    pub nhid: Option<u32>,
    pub via: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub nexthops: Vec<KernelHop>,
}

/// Where the kernel put an added route among those it has at the same (table, prefix, tos,
/// priority), from the flags of its `RTM_NEWROUTE` notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Before them (`ip route add`, `prepend`: `NLM_F_CREATE`, with `NLM_F_EXCL` if there
    /// were none): the kernel forwards with it.
    First,
    /// After them (`ip route append`: `NLM_F_CREATE | NLM_F_APPEND`): the kernel goes on
    /// forwarding with the first.
    Last,
    /// In place of the first (`ip route replace`: `NLM_F_REPLACE`).
    Replacing,
    /// Not moved: the kernel telling again of a route through a next-hop object just
    /// replaced (`nexthop_compat_mode`): right after that object's `RTM_NEWNEXTHOP`, with
    /// the replace request's port and sequence number.
    Refreshed,
}

impl Placed {
    pub fn from_flags(flags: u16) -> Placed {
        if flags & NLM_F_REPLACE != 0 {
            Placed::Replacing
        } else if flags & NLM_F_APPEND != 0 {
            Placed::Last
        } else {
            Placed::First
        }
    }
}

/// A link as the mirror needs it: its name (rtm's `dev`), whether it is up, and whether it
/// has a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// `IFF_RUNNING` or `IFF_LOWER_UP`: the kernel flushes the next-hop objects over a link
    /// that loses both.
    pub carrier: bool,
}

/// What one kernel message means to the mirror.
#[derive(Debug)]
pub enum Change {
    RouteAdded(KernelRoute, Placed),
    /// One route (`RTM_DELROUTE` says which: its attributes are the deleted route's).
    RouteRemoved(KernelRoute),
    /// A route of the mirrored table rtm does not carry was added, where the kernel put it.
    UncarriedAdded(Uncarried, Placed),
    UncarriedRemoved(Uncarried),
    Link(Link),
    LinkRemoved(u32),
    /// A next-hop object made or replaced (`ip nexthop add|replace`).
    NextHop(NextHopObject),
    /// A next-hop object deleted (`ip nexthop del`).
    NextHopRemoved(u32),
    /// Not for the mirror (another table or family, a skipped route type, …).
    Ignored,
}

/// Why a route of the mirrored table is not mirrored, or `None` if it is.
pub fn skipped(msg: &RouteMessage) -> Option<Skip> {
    // Whatever its type: the kernel skips it for packets of any other tos.
    if msg.header.tos != 0 {
        return Some(Skip::Tos);
    }
    if msg.header.kind != RouteType::Unicast {
        return Some(Skip::NotUnicast);
    }
    if msg.header.flags.contains(RouteFlags::Cloned) {
        return Some(Skip::Cloned);
    }

    // What the paths of an `nhid` route are is the object's business (the mirror follows it);
    // the copies the kernel adds to the message say nothing more.
    if msg
        .attributes
        .iter()
        .any(|a| matches!(a, RouteAttribute::NhId(_)))
    {
        return None;
    }
    for a in &msg.attributes {
        if let RouteAttribute::MultiPath(hops) = a {
            if hops.len() > MAX_NEXTHOPS {
                return Some(Skip::TooManyPaths);
            }
            for h in hops {
                if let Some(s) = hop_attributes_skip(&h.attributes) {
                    return Some(s);
                }
            }
        }
    }
    hop_attributes_skip(&msg.attributes)
}

/// Why a path with these attributes (a route's own, or an `rtnexthop`'s) cannot be carried.
fn hop_attributes_skip(attrs: &[RouteAttribute]) -> Option<Skip> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Via(_) => Some(Skip::ForeignGateway),
        RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => Some(Skip::Encap),
        _ => None,
    })
}

/// What a route message of the kernel is to a mirror of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Route(KernelRoute),
    /// Of the mirrored table, but not carried.
    Uncarried(Uncarried),
    /// Not of the mirrored table (or not IPv4, or without a destination rtm can hold).
    Other,
}

impl Parsed {
    /// Who put the route there; `None` for `Other`.
    pub fn protocol(&self) -> Option<u8> {
        match self {
            Parsed::Route(r) => Some(r.protocol),
            Parsed::Uncarried(u) => Some(u.protocol),
            Parsed::Other => None,
        }
    }
}

impl From<KernelRoute> for Parsed {
    fn from(r: KernelRoute) -> Parsed {
        Parsed::Route(r)
    }
}

/// What `msg` is to a mirror of `table`.
pub fn parse_route(msg: &RouteMessage, table: u32) -> Parsed {
    if msg.header.address_family != AddressFamily::Inet {
        return Parsed::Other;
    }
    let mut in_table = u32::from(msg.header.table);
    let (mut dst, mut via, mut oif, mut priority) = (Ipv4Addr::UNSPECIFIED, None, None, 0);
    let (mut nexthops, mut nhid) = (Vec::new(), None);
    for a in &msg.attributes {
        match a {
            RouteAttribute::NhId(i) => nhid = Some(*i),
            RouteAttribute::Table(t) => in_table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => via = Some(*a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::MultiPath(hops) => {
                nexthops = hops.iter().map(hop).collect();
            }
            _ => {}
        }
    }
    if in_table != table {
        return Parsed::Other;
    }
    let Some(dst) = Prefix::new(dst, msg.header.destination_prefix_length) else {
        return Parsed::Other;
    };
    let (tos, protocol) = (msg.header.tos, msg.header.protocol.into());
    // The copies of an object's next hops in the message (`nexthop_compat_mode`) go stale
    // when the object changes: a route through an object is known by the object alone.
    if nhid.is_some() {
        (via, oif) = (None, None);
        nexthops.clear();
    }
    if let Some(why) = skipped(msg) {
        return Parsed::Uncarried(Uncarried {
            dst,
            tos,
            priority,
            protocol,
            why,
            kind: msg.header.kind.into(),
            nhid,
            via,
            oif,
            nexthops,
        });
    }
    Parsed::Route(KernelRoute {
        dst,
        tos,
        priority,
        via,
        oif,
        nexthops,
        protocol,
        nhid,
    })
}

/// One `rtnexthop`: its gateway, link, weight (`rtnh_hops + 1`) and whether it is dead.
fn hop(h: &RouteNextHop) -> KernelHop {
    KernelHop {
        via: h.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
            _ => None,
        }),
        oif: h.interface_index,
        weight: u16::from(h.hops) + 1,
        dead: h.flags.contains(RouteNextHopFlags::Dead),
    }
}

/// The route in `msg` if it belongs to `table` and is one the mirror carries.
pub fn route(msg: &RouteMessage, table: u32) -> Option<KernelRoute> {
    match parse_route(msg, table) {
        Parsed::Route(r) => Some(r),
        Parsed::Uncarried(_) | Parsed::Other => None,
    }
}

impl KernelRoute {
    /// The route as rtm spells it, with `origin`: each link index named by `name`. With
    /// `live_only` the paths the kernel marks dead are left out (what it forwards with), and a
    /// route left with none is `Ok(None)`. `Err` says why rtm cannot hold it.
    pub fn to_route(
        &self,
        name: impl Fn(u32) -> Option<String>,
        live_only: bool,
        origin: Origin,
    ) -> Result<Option<Route>, String> {
        let mut r = if self.nexthops.is_empty() {
            Route::new(
                self.dst,
                self.via,
                self.oif.map(|i| dev(&name, i)).transpose()?,
                self.priority,
            )
        } else {
            let hops = hops(&self.nexthops, &name, live_only)?;
            if hops.is_empty() {
                return Ok(None);
            }
            Route::multipath(self.dst, self.priority, hops)
        };
        r.origin = origin;
        r.validate().map_err(|e| e.to_string())?;
        Ok(Some(r))
    }

    /// Whether the kernel forwards with it at all: not a multipath route all of whose paths
    /// are dead.
    pub fn alive(&self) -> bool {
        self.nexthops.is_empty() || self.nexthops.iter().any(|h| !h.dead)
    }

    /// Whether any of its paths goes out of link `index`.
    pub fn uses_link(&self, index: u32) -> bool {
        self.oif == Some(index) || self.nexthops.iter().any(|h| h.oif == index)
    }
}

/// Kernel paths as rtm spells them (those the kernel marks dead left out with `live_only`);
/// `Err` says why rtm cannot name one.
pub fn hops(
    paths: &[KernelHop],
    name: impl Fn(u32) -> Option<String>,
    live_only: bool,
) -> Result<Vec<Hop>, String> {
    let mut hops = Vec::with_capacity(paths.len());
    for (n, h) in paths.iter().enumerate() {
        if live_only && h.dead {
            continue;
        }
        let d = match h.oif {
            0 => None,
            i => Some(dev(&name, i).map_err(|e| format!("path {}: {e}", n + 1))?),
        };
        hops.push(Hop {
            via: h.via,
            dev: d,
            weight: h.weight,
        });
    }
    Ok(hops)
}

/// Link `i` as rtm's `dev`, by `name`; `Err` says why it cannot be.
fn dev(name: impl Fn(u32) -> Option<String>, i: u32) -> Result<IfName, String> {
    let n = name(i).ok_or_else(|| format!("no link with index {i} is known"))?;
    n.parse()
        .map_err(|e| format!("link {n:?} (index {i}) cannot be rtm's dev: {e}"))
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
        carrier: msg
            .header
            .flags
            .intersects(LinkFlags::Running | LinkFlags::LowerUp),
    })
}

/// What an event message means for a mirror of `table`; `flags` are its netlink header's,
/// which say where the kernel put an added route ([`Placed`]).
pub fn change(msg: RouteNetlinkMessage, table: u32, flags: u16) -> Change {
    match msg {
        RouteNetlinkMessage::NewRoute(m) => match parse_route(&m, table) {
            Parsed::Route(r) => Change::RouteAdded(r, Placed::from_flags(flags)),
            Parsed::Uncarried(u) => Change::UncarriedAdded(u, Placed::from_flags(flags)),
            Parsed::Other => Change::Ignored,
        },
        RouteNetlinkMessage::DelRoute(m) => match parse_route(&m, table) {
            Parsed::Route(r) => Change::RouteRemoved(r),
            Parsed::Uncarried(u) => Change::UncarriedRemoved(u),
            Parsed::Other => Change::Ignored,
        },
        RouteNetlinkMessage::NewLink(m) => link(&m).map_or(Change::Ignored, Change::Link),
        RouteNetlinkMessage::DelLink(m) => Change::LinkRemoved(m.header.index),
        _ => Change::Ignored,
    }
}

/// The netlink messages (header and payload) in one datagram, and how many could not be told
/// apart (a datagram cut short).
fn frames(buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let (mut out, mut off) = (Vec::new(), 0);
    while off < buf.len() {
        // The header's first word is the message length.
        let Some(len) = buf
            .get(off..off + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return (out, 1);
        };
        if len < 16 || off + len > buf.len() {
            return (out, 1);
        }
        out.push(&buf[off..off + len]);
        // Messages are aligned to 4 bytes.
        off += (len + 3) & !3;
    }
    (out, 0)
}

/// The message types the mirror reads with netlink-packet-route: netlink's own (error, done,
/// …), links and routes.
fn is_route_netlink_type(t: u16) -> bool {
    matches!(
        t,
        1..=4 | RTM_NEWLINK | RTM_DELLINK | RTM_NEWROUTE | RTM_DELROUTE
    )
}
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;

/// The route-netlink messages in one datagram (others, such as next-hop messages, which that
/// crate cannot read, are left out); undecodable ones are counted, not fatal.
pub fn messages(
    buf: &[u8],
) -> (
    Vec<(NetlinkHeader, NetlinkPayload<RouteNetlinkMessage>)>,
    usize,
) {
    let (frames, mut bad) = frames(buf);
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        if !is_route_netlink_type(NetlinkBuffer::new(f).message_type()) {
            continue;
        }
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(f) {
            Ok(m) => out.push((m.header, m.payload)),
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

/// The (port, sequence number) of an `ip nexthop replace` just heard: the route events the
/// kernel sends for it (`nexthop_compat_mode`) follow it at once with the same, and move
/// nothing. Forgotten at the first message of another request.
pub type LastObjectReplace = Option<(u32, u32)>;

/// What one event datagram means to a mirror of `table` that leaves the routes of protocol
/// `own` alone, in the kernel's order; and how many of its messages could not be read.
/// `replaced` carries the last object replace from one datagram to the next.
pub fn events(
    buf: &[u8],
    table: u32,
    own: Option<u8>,
    replaced: &mut LastObjectReplace,
) -> (Vec<Change>, usize) {
    let (frames, mut bad) = frames(buf);
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        let b = NetlinkBuffer::new(f);
        let request = (b.port_number(), b.sequence_number());
        if replaced.is_some_and(|r| r != request) {
            *replaced = None;
        }
        match b.message_type() {
            t if nexthop::is_nexthop_type(t) => match nexthop::parse(t, b.payload()) {
                Some(NextHopMessage::New(o)) => {
                    if b.flags() & NLM_F_REPLACE != 0 {
                        *replaced = Some(request);
                    }
                    out.push(Change::NextHop(o));
                }
                Some(NextHopMessage::Deleted(id)) => out.push(Change::NextHopRemoved(id)),
                None => bad += 1,
            },
            RTM_NEWLINK | RTM_DELLINK | RTM_NEWROUTE | RTM_DELROUTE => {
                match NetlinkMessage::<RouteNetlinkMessage>::deserialize(f) {
                    Ok(NetlinkMessage {
                        header,
                        payload: NetlinkPayload::InnerMessage(m),
                        ..
                    }) => {
                        let copy = *replaced == Some(request);
                        let c = match change(m, table, header.flags).unless_proto(own) {
                            Change::RouteAdded(r, Placed::Replacing)
                                if copy && r.nhid.is_some() =>
                            {
                                Change::RouteAdded(r, Placed::Refreshed)
                            }
                            Change::UncarriedAdded(u, Placed::Replacing)
                                if copy && u.nhid.is_some() =>
                            {
                                Change::UncarriedAdded(u, Placed::Refreshed)
                            }
                            c => c,
                        };
                        out.push(c);
                    }
                    Ok(_) => {}
                    Err(_) => bad += 1,
                }
            }
            // Others of the groups the socket is in, none for the mirror (the buckets of a
            // resilient group moving, `RTM_NEWNEXTHOPBUCKET`, …).
            _ => {}
        }
    }
    (out, bad)
}

/// The socket that hears route, link and next-hop object changes, with its receive buffer set
/// to `rcvbuf` bytes (the kernel doubles it and caps it at `net.core.rmem_max`).
pub fn event_socket(rcvbuf: usize) -> io::Result<TokioSocket> {
    let s = socket_sized(rcvbuf, "route")?;
    s.socket_ref().add_membership(RTNLGRP_LINK)?;
    s.socket_ref().add_membership(RTNLGRP_IPV4_ROUTE)?;
    // A kernel older than next-hop objects (5.3) has no such group, and no `nhid` routes.
    if let Err(e) = s.socket_ref().add_membership(nexthop::RTNLGRP_NEXTHOP) {
        tracing::debug!("no next-hop object events from this kernel: {e}");
    }
    Ok(s)
}

/// The socket of the neighbour side: link and neighbour changes, a buffer of its own, so that
/// a burst of one kind never makes the other dump again.
pub fn neighbour_socket(rcvbuf: usize) -> io::Result<TokioSocket> {
    let s = socket_sized(rcvbuf, "neighbour")?;
    s.socket_ref().add_membership(RTNLGRP_LINK)?;
    neigh::join(&s)?;
    Ok(s)
}

/// An event socket with a receive buffer of `rcvbuf` bytes, forced past `net.core.rmem_max`
/// where rtmd may; a warning names the `kind` of events if the kernel grants less.
fn socket_sized(rcvbuf: usize, kind: &str) -> io::Result<TokioSocket> {
    let mut s = TokioSocket::new(NETLINK_ROUTE)?;
    s.socket_mut().bind_auto()?;
    // With CAP_NET_ADMIN the size asked holds whatever `net.core.rmem_max` says (often
    // 208 KiB, where a burst of route events overflows at once); without, the kernel caps it.
    use nix::sys::socket::{setsockopt, sockopt::RcvBufForce};
    if setsockopt(s.socket_ref(), RcvBufForce, &rcvbuf).is_err() {
        s.socket_ref().set_rx_buf_sz(rcvbuf)?;
    }
    // The kernel doubles what it grants (for its own bookkeeping).
    let got = s.socket_ref().get_rx_buf_sz()? / 2;
    if got < rcvbuf {
        tracing::warn!(
            asked = rcvbuf,
            got,
            "the kernel event socket's receive buffer is capped by net.core.rmem_max; \
             bursts of {kind} events will overflow it sooner (each overflow costs a re-dump): \
             raise net.core.rmem_max, or give rtmd CAP_NET_ADMIN"
        );
    } else {
        tracing::debug!(bytes = got, "kernel {kind} event socket receive buffer");
    }
    Ok(s)
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

impl Change {
    /// This change, or `Ignored` if it is about a route of protocol `own` (rtm's own exported
    /// routes, which the import leaves alone).
    pub fn unless_proto(self, own: Option<u8>) -> Change {
        let proto = match &self {
            Change::RouteAdded(r, _) | Change::RouteRemoved(r) => r.protocol,
            Change::UncarriedAdded(u, _) | Change::UncarriedRemoved(u) => u.protocol,
            _ => return self,
        };
        if Some(proto) == own {
            Change::Ignored
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests;
