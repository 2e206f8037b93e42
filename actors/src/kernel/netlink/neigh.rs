//! The kernel's IPv4 neighbours (`ip neigh`, the ARP table) as the mirror reads them: the
//! group to join for their events (`RTNLGRP_NEIGH`), the dump request, and what one
//! `RTM_NEWNEIGH` / `RTM_DELNEIGH` means to a mirror that keeps (IP, device) → MAC.
//!
//! The kernel keys a neighbour by (address, link index) and holds it in one of the NUD states.
//! What a data plane may forward to is an entry with a MAC the kernel itself would send to:
//! the states of `NUD_VALID` (`PERMANENT`, `NOARP`, `REACHABLE`, `STALE`, `DELAY`, `PROBE`;
//! in `STALE`, `DELAY` and `PROBE` the kernel still sends to the MAC while it checks it).
//! `INCOMPLETE`, `FAILED` and `NONE` have no MAC (the kernel sends no `NDA_LLADDR` for them):
//! an entry turning `FAILED` is, to the mirror, the end of its neighbour.
//!
//! What the kernel was seen to send (Linux 6.18, veth pairs in a network namespace of their
//! own, `ip monitor neigh link`):
//!
//! - `ip neigh add|replace` sends one `RTM_NEWNEIGH`; a replace with another `lladdr` sends the
//!   new MAC.
//! - Timer transitions are told only in part: `REACHABLE` → `STALE` is sent, `STALE` →
//!   `DELAY` is not, `DELAY` → `PROBE` is, and `PROBE` → `FAILED` is sent without `NDA_LLADDR`.
//!   A new entry being resolved (`INCOMPLETE`) is not sent at all; its `FAILED` is.
//! - `ip link set X down` sends the link's `RTM_NEWLINK` (not up), then one `RTM_DELNEIGH` per
//!   neighbour on X, `PERMANENT` ones included (`neigh_ifdown`).
//! - A link losing its carrier (a veth whose peer went down) sends an `RTM_DELNEIGH` for each
//!   of its neighbours except the `PERMANENT` ones, which stay (`neigh_carrier_down`).
//! - `ip link del X` sends `RTM_NEWLINK` (down), an `RTM_DELNEIGH` per neighbour, then
//!   `RTM_DELLINK`.
//! - `ip neigh add|del proxy …` sends no event at all (proxy entries are parsed and skipped
//!   anyway, should a kernel send them).
//! - `ip link set X name Y` works with X up (a veth), keeps its neighbours and sends only the
//!   link's `RTM_NEWLINK` with the new name: no neighbour event says they are now on Y.
//!
//! The mirror ([`crate::kernel::reconcile::neigh`]) therefore follows renames from the link
//! events, and also drops a link's neighbours itself when the link goes down or away, as the
//! kernel does, so that it is right even if those `RTM_DELNEIGH` were lost (they are, on
//! `ENOBUFS`, until the re-dump).
//!
//! Sizes, for the event socket's receive buffer: an IPv4 `RTM_NEWNEIGH` is 76 bytes of
//! netlink (header 16, `ndmsg` 12, `NDA_DST` 8, `NDA_LLADDR` 12, `NDA_CACHEINFO` 20,
//! `NDA_PROBES` 8), one datagram each, but the socket is charged 832 bytes for each (measured
//! on Linux 6.18: a socket in the group that did not read held 512 events in the default
//! 208 KiB buffer, 10,082 in 4 MiB forced, then `ENOBUFS`). `ip link set X down` over 20,000
//! neighbours sends 20,000 `RTM_DELNEIGH` at once and overflowed the 4 MiB buffer after
//! 10,079 (5,000 fitted): such an overflow costs a re-dump, as one of route events does.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{DecodeError, NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{AsyncSocket, TokioSocket};
use rtm_proto::types::{unicast_next_hop, MacAddr};

/// The multicast group of neighbour events (`RTNLGRP_NEIGH`): IPv4 and IPv6 neighbours, and
/// the bridges' forwarding entries (`AF_BRIDGE`), which the mirror passes over.
pub const RTNLGRP_NEIGH: u32 = 3;

pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;

/// The NUD states with a MAC the kernel sends to (`NUD_VALID`): `PERMANENT`, `NOARP`,
/// `REACHABLE`, `PROBE`, `STALE`, `DELAY`.
const NUD_VALID: u16 = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;

/// Whether a netlink message type is a neighbour event.
pub fn is_neigh_type(t: u16) -> bool {
    matches!(t, RTM_NEWNEIGH | RTM_DELNEIGH)
}

/// Joins the event socket `s` to the neighbour group: from then on its datagrams carry
/// `RTM_NEWNEIGH` / `RTM_DELNEIGH` too ([`event`] reads them).
pub fn join(s: &TokioSocket) -> io::Result<()> {
    s.socket_ref().add_membership(RTNLGRP_NEIGH)
}

/// One IPv4 neighbour the mirror carries: an address on a link (by index; the mirror names the
/// link from the links it knows) and the MAC the kernel sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelNeighbour {
    pub ip: Ipv4Addr,
    pub ifindex: u32,
    pub mac: MacAddr,
}

/// Why a neighbour entry of the kernel is not mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NeighSkip {
    /// Not IPv4 (an IPv6 neighbour, a bridge's forwarding entry).
    NotInet,
    /// No `NDA_DST` the mirror can read.
    NoAddress,
    /// A proxy-ARP entry (`ip neigh add proxy A dev X`, `NTF_PROXY`): the kernel answers ARP
    /// for A on X itself; it is no neighbour to send to, and lives in a table of its own
    /// beside the neighbour at the same key, if any.
    Proxy,
    /// No MAC: `INCOMPLETE` (being resolved), `FAILED` (no answer), `NONE`, or no
    /// `NDA_LLADDR` at all.
    NoMac,
    /// A link-layer address that is not 6 bytes (a tunnel's, InfiniBand's): not a MAC.
    NotEthernet,
    /// The all-zero MAC: the entries the kernel keeps on links without a hardware address
    /// (loopback), or a static entry made so; no station answers to it.
    ZeroMac,
    /// An address no neighbour can have: 0.0.0.0, the limited broadcast, multicast (the
    /// kernel makes `NOARP` entries for them with a computed group MAC).
    NotUnicastIp,
    /// An entry the kernel typed other than unicast (`ndm_type`, from the address's route
    /// type): one of its own addresses (`local`), a subnet's broadcast address
    /// (`broadcast`, with `ff:ff:ff:ff:ff:ff`), … . A data plane forwarding there as to a
    /// neighbour would unicast what the kernel delivers locally or broadcasts.
    NotUnicastType,
}

impl NeighSkip {
    pub fn why(self) -> &'static str {
        match self {
            NeighSkip::NotInet => "not IPv4",
            NeighSkip::NoAddress => "no IPv4 address (NDA_DST)",
            NeighSkip::Proxy => "a proxy-ARP entry (ip neigh add proxy), no neighbour",
            NeighSkip::NoMac => "no MAC (INCOMPLETE, FAILED or NONE)",
            NeighSkip::NotEthernet => "a link-layer address that is not a 6-byte MAC (a tunnel's)",
            NeighSkip::ZeroMac => "the all-zero MAC (a loopback entry)",
            NeighSkip::NotUnicastIp => {
                "an address that cannot be a neighbour (0.0.0.0, broadcast, multicast)"
            }
            NeighSkip::NotUnicastType => {
                "an entry the kernel types local, broadcast or multicast, not unicast"
            }
        }
    }

    /// Whether an `RTM_NEWNEIGH` skipped so still speaks of the neighbour entry at its
    /// (address, link): that entry now has nothing to forward to, so a mirrored neighbour at
    /// that key is gone. A proxy entry lives beside the neighbour at its key and says nothing
    /// of it; an address that cannot be a neighbour was never mirrored.
    pub fn ends_entry(self) -> bool {
        matches!(
            self,
            NeighSkip::NoMac
                | NeighSkip::NotEthernet
                | NeighSkip::ZeroMac
                | NeighSkip::NotUnicastType
        )
    }
}

/// The neighbour `msg` describes, or why it is not mirrored.
pub fn parse(msg: &NeighbourMessage) -> Result<KernelNeighbour, NeighSkip> {
    if msg.header.family != AddressFamily::Inet {
        return Err(NeighSkip::NotInet);
    }
    if msg.header.flags.contains(NeighbourFlags::Proxy) {
        return Err(NeighSkip::Proxy);
    }
    let ip = address(msg).ok_or(NeighSkip::NoAddress)?;
    if unicast_next_hop("neighbour", ip).is_err() {
        return Err(NeighSkip::NotUnicastIp);
    }
    if msg.header.kind != RouteType::Unicast {
        return Err(NeighSkip::NotUnicastType);
    }
    if u16::from(msg.header.state) & NUD_VALID == 0 {
        return Err(NeighSkip::NoMac);
    }
    let lladdr = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) => Some(b),
            _ => None,
        })
        .ok_or(NeighSkip::NoMac)?;
    let mac: [u8; 6] = lladdr
        .as_slice()
        .try_into()
        .map_err(|_| NeighSkip::NotEthernet)?;
    if mac == [0; 6] {
        return Err(NeighSkip::ZeroMac);
    }
    Ok(KernelNeighbour {
        ip,
        ifindex: msg.header.ifindex,
        mac: MacAddr(mac),
    })
}

/// The IPv4 address of an entry (`NDA_DST`).
fn address(msg: &NeighbourMessage) -> Option<Ipv4Addr> {
    msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

/// What one neighbour event means to the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighEvent {
    /// The neighbour at (ip, link) has this MAC now (new, or its state or MAC changed).
    Put(KernelNeighbour),
    /// The neighbour at (ip, link) is gone, or has no MAC any more (`RTM_DELNEIGH`; an
    /// `RTM_NEWNEIGH` to `FAILED`, `INCOMPLETE` or `NONE`).
    Del { ip: Ipv4Addr, ifindex: u32 },
    /// An IPv4 entry at (ip, link) the mirror does not carry, and why. If
    /// [`NeighSkip::ends_entry`], a neighbour mirrored at that key is gone.
    Skipped(NeighSkip, Ipv4Addr, u32),
}

/// What an `RTM_NEWNEIGH` (`new`) or `RTM_DELNEIGH` means to the mirror; `None` for entries
/// that are not IPv4 neighbours at all (IPv6, bridge entries), or without an address.
pub fn event_of(new: bool, msg: &NeighbourMessage) -> Option<NeighEvent> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let ip = address(msg)?;
    let ifindex = msg.header.ifindex;
    let parsed = parse(msg);
    Some(match (new, parsed) {
        (true, Ok(n)) => NeighEvent::Put(n),
        (true, Err(NeighSkip::NoMac)) => NeighEvent::Del { ip, ifindex },
        // A proxy entry going says nothing of a neighbour at its key.
        (_, Err(why @ NeighSkip::Proxy)) | (true, Err(why)) => {
            NeighEvent::Skipped(why, ip, ifindex)
        }
        (false, _) => NeighEvent::Del { ip, ifindex },
    })
}

/// What one netlink frame (header and payload, as the event socket's datagrams hold them) is,
/// if it is a neighbour event; `Ok(None)` for other messages and for neighbour events the
/// mirror has no use for (not IPv4). `Err` for a frame that cannot be read.
pub fn event(frame: &[u8]) -> Result<Option<NeighEvent>, DecodeError> {
    let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame)?;
    Ok(match m.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => event_of(true, &n),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) => event_of(false, &n),
        _ => None,
    })
}

/// What one datagram of the neighbour socket ([`super::neighbour_socket`]) says.
#[derive(Debug)]
pub enum NeighSide {
    /// A link appeared, changed (up, down, renamed) or was heard of in a dump.
    Link(super::Link),
    LinkRemoved(u32),
    Neigh(NeighEvent),
}

/// The link and neighbour events of one datagram, in the kernel's order, and how many of its
/// messages could not be read.
pub fn side_events(buf: &[u8]) -> (Vec<NeighSide>, usize) {
    let (frames, mut bad) = super::frames(buf);
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        match NetlinkBuffer::new(f).message_type() {
            t if is_neigh_type(t) => match event(f) {
                Ok(Some(e)) => out.push(NeighSide::Neigh(e)),
                Ok(None) => {}
                Err(_) => bad += 1,
            },
            super::RTM_NEWLINK | super::RTM_DELLINK => {
                match NetlinkMessage::<RouteNetlinkMessage>::deserialize(f) {
                    Ok(NetlinkMessage {
                        payload: NetlinkPayload::InnerMessage(m),
                        ..
                    }) => match m {
                        RouteNetlinkMessage::NewLink(l) => {
                            out.extend(super::link(&l).map(NeighSide::Link));
                        }
                        RouteNetlinkMessage::DelLink(l) => {
                            out.push(NeighSide::LinkRemoved(l.header.index));
                        }
                        _ => {}
                    },
                    Ok(_) => {}
                    Err(_) => bad += 1,
                }
            }
            _ => {}
        }
    }
    (out, bad)
}

/// The dump request for every IPv4 neighbour (the kernel lists the neighbour entries; proxy
/// entries only when asked with `NTF_PROXY`, which this does not).
pub fn dump_request() -> RouteNetlinkMessage {
    let mut req = NeighbourMessage::default();
    req.header.family = AddressFamily::Inet;
    RouteNetlinkMessage::GetNeighbour(req)
}

/// What a dump of the IPv4 neighbours found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NeighDump {
    pub neighbours: Vec<KernelNeighbour>,
    /// The entries not mirrored: why, address, link index (for the log).
    pub skipped: Vec<(NeighSkip, Ipv4Addr, u32)>,
}

impl NeighDump {
    /// Sorts a dump's messages into neighbours and skipped entries.
    pub fn of(messages: impl IntoIterator<Item = RouteNetlinkMessage>) -> NeighDump {
        let mut out = NeighDump::default();
        for m in messages {
            let RouteNetlinkMessage::NewNeighbour(n) = m else {
                continue;
            };
            match parse(&n) {
                Ok(k) => out.neighbours.push(k),
                Err(why) => {
                    if let Some(ip) = address(&n) {
                        out.skipped.push((why, ip, n.header.ifindex));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
