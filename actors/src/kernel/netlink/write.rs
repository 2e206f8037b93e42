//! Route writes into the kernel (`rtmd --kernel export`): the requests and a socket that has
//! each acknowledged.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{AsyncSocketExt, TokioSocket};
use rtm_proto::types::Prefix;

use super::{encode, messages, request_socket};

/// A route as rtm writes it into the kernel (`ip route replace DST via VIA dev OIF metric
/// PRIORITY table T proto P`, or `… nexthop via A dev X weight W nexthop …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelWrite {
    pub dst: Prefix,
    pub via: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub priority: u32,
    /// A multipath route's paths (then `via` and `oif` are `None`), in rtm's order.
    pub nexthops: Vec<WriteHop>,
}

/// One path of a multipath route rtm writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteHop {
    pub via: Option<Ipv4Addr>,
    /// The link's index; `None` lets the kernel find it from the gateway.
    pub oif: Option<u32>,
    /// 1..=256; the kernel's `rtnh_hops` is one less.
    pub weight: u16,
}

/// What a route request asks of the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Add the route; refused if the kernel has one with the same (prefix, priority).
    Add(KernelWrite),
    /// Add the route or replace the one with the same (prefix, priority).
    Replace(KernelWrite),
    /// Delete the route of rtm's protocol with this prefix and priority.
    Del(Prefix, u32),
}

/// A route message of rtm's protocol for `dst` in `table`, with `scope`.
pub(super) fn message_for(dst: Prefix, table: u32, proto: u8, scope: RouteScope) -> RouteMessage {
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
    // As `ip route`: a route with a gateway, or several paths, has scope universe; one
    // straight onto a link, scope link.
    let scope = if w.via.is_some() || !w.nexthops.is_empty() {
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
    if !w.nexthops.is_empty() {
        let hops = w
            .nexthops
            .iter()
            .map(|h| {
                let mut nh = RouteNextHop::default();
                // Weights are 1..=256 (validated by rtm); the kernel stores weight - 1.
                nh.hops = u8::try_from(h.weight.saturating_sub(1)).unwrap_or(u8::MAX);
                nh.interface_index = h.oif.unwrap_or(0);
                if let Some(via) = h.via {
                    nh.attributes
                        .push(RouteAttribute::Gateway(RouteAddress::Inet(via)));
                }
                nh
            })
            .collect();
        m.attributes.push(RouteAttribute::MultiPath(hops));
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
    pub(super) fn message(&self, table: u32, proto: u8) -> (RouteNetlinkMessage, u16) {
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
