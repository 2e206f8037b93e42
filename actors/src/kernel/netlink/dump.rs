//! Dumps: the links, the next-hop objects, one table's routes and the IPv4 neighbours, as the
//! kernel lists them.

use std::io;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::AsyncSocketExt;

use super::neigh::{self, NeighDump};
use super::nexthop::{self, NextHopMessage, NextHopObject};
use super::{
    encode, frames, link, parse_route, request_socket, KernelRoute, Link, Parsed, Uncarried,
    DUMP_TRIES,
};

/// What a dump of the links, the next-hop objects and one table's routes found.
#[derive(Debug, Default)]
pub struct Dump {
    pub links: Vec<Link>,
    /// Every next-hop object (`ip nexthop`).
    pub nexthops: Vec<NextHopObject>,
    /// The routes of the table the mirror carries, in the kernel's order (at the same prefix,
    /// tos and priority, the one it forwards with first).
    pub routes: Vec<KernelRoute>,
    /// The table's routes it does not carry, each with its place in the dump: how many of
    /// `routes` came before it.
    pub uncarried: Vec<(usize, Uncarried)>,
}

impl Dump {
    /// Every route of the table, carried or not, in the kernel's order.
    pub fn in_order(routes: Vec<KernelRoute>, uncarried: Vec<(usize, Uncarried)>) -> Vec<Parsed> {
        let mut out = Vec::with_capacity(routes.len() + uncarried.len());
        let mut rest = uncarried.into_iter().peekable();
        for (n, r) in routes.into_iter().enumerate() {
            while let Some((_, u)) = rest.next_if(|(before, _)| *before <= n) {
                out.push(Parsed::Uncarried(u));
            }
            out.push(Parsed::Route(r));
        }
        out.extend(rest.map(|(_, u)| Parsed::Uncarried(u)));
        out
    }
}

/// Every link, then every next-hop object, then every route of `table`: a route's object is
/// known before the route.
pub async fn dump(table: u32) -> io::Result<Dump> {
    let links = dump_links().await?;
    let nexthops = dump_nexthops().await?;
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::Inet;
    let mut out = Dump {
        links,
        nexthops,
        ..Dump::default()
    };
    for m in dump_of(RouteNetlinkMessage::GetRoute(req)).await? {
        if let RouteNetlinkMessage::NewRoute(r) = m {
            match parse_route(&r, table) {
                Parsed::Route(r) => out.routes.push(r),
                Parsed::Uncarried(u) => out.uncarried.push((out.routes.len(), u)),
                Parsed::Other => {}
            }
        }
    }
    Ok(out)
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

/// Every next-hop object; none from a kernel that has no next-hop objects.
pub async fn dump_nexthops() -> io::Result<Vec<NextHopObject>> {
    let frames = match dump_frames(nexthop::dump_request).await {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EOPNOTSUPP | nix::libc::EINVAL | nix::libc::EAFNOSUPPORT)
            ) =>
        {
            tracing::debug!("no next-hop objects in this kernel: {e}");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    Ok(frames
        .iter()
        .filter_map(|f| {
            let b = NetlinkBuffer::new(&f[..]);
            nexthop::parse(b.message_type(), b.payload())
        })
        .filter_map(|m| match m {
            NextHopMessage::New(o) => Some(o),
            NextHopMessage::Deleted(_) => None,
        })
        .collect())
}

/// Every IPv4 neighbour entry, sorted into those the mirror carries and those it skips.
pub async fn dump_neighbours() -> io::Result<NeighDump> {
    Ok(NeighDump::of(dump_of(neigh::dump_request()).await?))
}

/// Runs one dump request to its end, again if the kernel says it was interrupted.
async fn dump_of(req: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    let frames = dump_frames(|seq| encode(req.clone(), NLM_F_REQUEST | NLM_F_DUMP, seq)).await?;
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&f) {
            Ok(NetlinkMessage {
                payload: NetlinkPayload::InnerMessage(m),
                ..
            }) => out.push(m),
            Ok(_) => {}
            Err(_) => return Err(io::Error::other("undecodable message in a kernel dump")),
        }
    }
    Ok(out)
}

/// Runs the dump request `req(seq)` to its end, again if the kernel says it was interrupted;
/// returns the messages of the dump, each a whole netlink frame.
async fn dump_frames(req: impl Fn(u32) -> Vec<u8>) -> io::Result<Vec<Vec<u8>>> {
    for _ in 0..DUMP_TRIES {
        if let Some(v) = dump_once(&req(1)).await? {
            return Ok(v);
        }
    }
    Err(io::Error::other(format!(
        "the kernel interrupted the dump {DUMP_TRIES} times in a row"
    )))
}

/// One dump; `None` if the kernel marked it interrupted.
async fn dump_once(req: &[u8]) -> io::Result<Option<Vec<Vec<u8>>>> {
    let s = request_socket()?;
    s.send(req).await?;
    let (mut out, mut interrupted) = (Vec::new(), false);
    loop {
        let (data, _) = s.recv_from_full().await?;
        let (frames, bad) = frames(&data);
        if bad > 0 {
            return Err(io::Error::other("undecodable message in a kernel dump"));
        }
        for f in frames {
            let b = NetlinkBuffer::new(f);
            interrupted |= b.flags() & NLM_F_DUMP_INTR != 0;
            match b.message_type() {
                // A dump that failed part way says so here (`netlink_dump_done`): a negative
                // errno where a whole one has 0.
                NLMSG_DONE => match b.payload().get(..4) {
                    Some(c) if i32::from_ne_bytes([c[0], c[1], c[2], c[3]]) < 0 => {
                        let code = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => return Ok((!interrupted).then_some(out)),
                },
                NLMSG_ERROR => {
                    // `struct nlmsgerr`: the error code (negative), then the request.
                    let code = b
                        .payload()
                        .get(..4)
                        .map_or(0, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                    return Err(match code {
                        0 => io::Error::other("dump refused"),
                        c => io::Error::from_raw_os_error(-c),
                    });
                }
                _ => out.push(f.to_vec()),
            }
        }
    }
}
