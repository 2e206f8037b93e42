//! The kernel's next-hop objects (`ip nexthop`, `RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP`): what a
//! route with `nhid N` forwards over. netlink-packet-route has no type for these messages, so
//! they are read here from their bytes (`struct nhmsg` and its `NHA_*` attributes,
//! `include/uapi/linux/nexthop.h`).

use std::net::Ipv4Addr;

use netlink_packet_core::{NetlinkBuffer, NlasIterator, NLM_F_DUMP, NLM_F_REQUEST};

/// Message types (`include/uapi/linux/rtnetlink.h`).
pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;
/// The multicast group of next-hop changes.
pub const RTNLGRP_NEXTHOP: u32 = 32;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_ENCAP_TYPE: u16 = 7;
const NHA_ENCAP: u16 = 8;
const NHA_FDB: u16 = 11;
/// `nh_flags`: the kernel does not forward over it.
const RTNH_F_DEAD: u32 = 1;
/// `struct nhmsg`: family, scope, protocol, reserved, then 32 bits of flags.
const NHMSG_LEN: usize = 8;
/// One `struct nexthop_grp`: id (32 bits), weight − 1 (low 8 bits, then, since Linux 6.12,
/// high 8 bits in what was reserved, 0 before), 16 bits reserved.
const GRP_ENTRY_LEN: usize = 8;
/// The largest weight rtm's route carries.
const MAX_WEIGHT: u32 = rtm_proto::types::MAX_WEIGHT as u32;

/// A next-hop object as the mirror needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHopObject {
    pub id: u32,
    pub kind: ObjectKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// One next hop: an IPv4 gateway or none, over a link.
    Single {
        via: Option<Ipv4Addr>,
        oif: u32,
        /// `RTNH_F_DEAD`.
        dead: bool,
    },
    /// A group of other (single) objects, each with its weight (1..=256), in the kernel's
    /// order.
    Group(Vec<(u32, u16)>),
    /// `blackhole`: the kernel drops what a route through it matches.
    Blackhole,
    /// Something rtm's route cannot carry, and why (an IPv6 gateway, an encapsulation, a
    /// bridge FDB next hop, a group weight above rtm's); over link `oif` (0: none), which
    /// takes it when it goes down like any other.
    Uncarried { why: &'static str, oif: u32 },
}

impl NextHopObject {
    /// Whether the object goes over link `index` (a group does through its members only).
    pub fn uses_link(&self, index: u32) -> bool {
        match self.kind {
            ObjectKind::Single { oif, .. } | ObjectKind::Uncarried { oif, .. } => {
                oif != 0 && oif == index
            }
            ObjectKind::Group(_) | ObjectKind::Blackhole => false,
        }
    }
}

/// What one `RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP` message (its netlink payload) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHopMessage {
    New(NextHopObject),
    Deleted(u32),
}

/// The message of type `kind` with this payload; `None` if it is not a next-hop message or
/// cannot be read.
pub fn parse(kind: u16, payload: &[u8]) -> Option<NextHopMessage> {
    let header = payload.get(..NHMSG_LEN)?;
    let family = header[0];
    let flags = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
    let (mut id, mut oif, mut via, mut group) = (None, 0, None, None);
    let (mut blackhole, mut uncarried) = (false, None);
    for nla in NlasIterator::new(&payload[NHMSG_LEN..]) {
        let nla = nla.ok()?;
        let v = nla.value();
        match nla.kind() {
            NHA_ID => id = Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)),
            NHA_OIF => oif = u32::from_ne_bytes(v.get(..4)?.try_into().ok()?),
            NHA_GATEWAY => match v.len() {
                4 => via = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
                _ => uncarried = Some("a gateway of another address family (via inet6)"),
            },
            NHA_GROUP => {
                group = Some(
                    v.chunks_exact(GRP_ENTRY_LEN)
                        .map(|e| {
                            let id = u32::from_ne_bytes([e[0], e[1], e[2], e[3]]);
                            (id, (u32::from(e[5]) << 8 | u32::from(e[4])) + 1)
                        })
                        .collect::<Vec<_>>(),
                )
            }
            NHA_BLACKHOLE => blackhole = true,
            NHA_ENCAP | NHA_ENCAP_TYPE => uncarried = Some("an encapsulation (encap)"),
            NHA_FDB => uncarried = Some("a bridge FDB next hop (fdb)"),
            _ => {}
        }
    }
    let id = id?;
    match kind {
        RTM_DELNEXTHOP => return Some(NextHopMessage::Deleted(id)),
        RTM_NEWNEXTHOP => {}
        _ => return None,
    }
    // AF_INET6 objects carry IPv6 gateways (an IPv4 route may use one: `via inet6`).
    const AF_INET6: u8 = 10;
    let kind = if let Some(members) = group {
        if members.iter().any(|&(_, w)| w > MAX_WEIGHT) {
            ObjectKind::Uncarried {
                why: "a group with a weight above 256 (rtm's limit)",
                oif: 0,
            }
        } else {
            // At most MAX_WEIGHT: fits.
            ObjectKind::Group(members.into_iter().map(|(m, w)| (m, w as u16)).collect())
        }
    } else if blackhole {
        ObjectKind::Blackhole
    } else if let Some(why) = uncarried {
        ObjectKind::Uncarried { why, oif }
    } else if family == AF_INET6 {
        ObjectKind::Uncarried {
            why: "a gateway of another address family (via inet6)",
            oif,
        }
    } else {
        ObjectKind::Single {
            via,
            oif,
            dead: flags & RTNH_F_DEAD != 0,
        }
    };
    Some(NextHopMessage::New(NextHopObject { id, kind }))
}

/// Whether a frame of this netlink message type is a next-hop message.
pub fn is_nexthop_type(kind: u16) -> bool {
    matches!(kind, RTM_NEWNEXTHOP | RTM_DELNEXTHOP)
}

/// The request that dumps every next-hop object (all families: groups and blackholes are
/// `AF_UNSPEC`).
pub fn dump_request(seq: u32) -> Vec<u8> {
    let len = 16 + NHMSG_LEN;
    let mut buf = vec![0u8; len];
    let mut b = NetlinkBuffer::new(&mut buf[..]);
    b.set_length(len as u32);
    b.set_message_type(RTM_GETNEXTHOP);
    b.set_flags(NLM_F_REQUEST | NLM_F_DUMP);
    b.set_sequence_number(seq);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One attribute: length, type, value, padded to 4 bytes.
    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        v.extend(kind.to_ne_bytes());
        v.extend(value);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    fn payload(family: u8, flags: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![family, 0, 4, 0];
        v.extend(flags.to_ne_bytes());
        for a in attrs {
            v.extend(a);
        }
        v
    }

    fn id(i: u32) -> Vec<u8> {
        nla(NHA_ID, &i.to_ne_bytes())
    }

    /// `ip nexthop add id 1 via 192.0.2.2 dev <5>` and its deletion.
    #[test]
    fn a_single_next_hop() {
        let p = payload(
            2,
            0,
            &[
                id(1),
                nla(NHA_GATEWAY, &[192, 0, 2, 2]),
                nla(NHA_OIF, &5u32.to_ne_bytes()),
            ],
        );
        let want = NextHopObject {
            id: 1,
            kind: ObjectKind::Single {
                via: Some(Ipv4Addr::new(192, 0, 2, 2)),
                oif: 5,
                dead: false,
            },
        };
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &p),
            Some(NextHopMessage::New(want.clone()))
        );
        assert!(want.uses_link(5) && !want.uses_link(4));
        assert_eq!(parse(RTM_DELNEXTHOP, &p), Some(NextHopMessage::Deleted(1)));
        let dead = payload(2, RTNH_F_DEAD, &[id(2), nla(NHA_OIF, &5u32.to_ne_bytes())]);
        assert_eq!(
            parse(RTM_NEWNEXTHOP, &dead),
            Some(NextHopMessage::New(NextHopObject {
                id: 2,
                kind: ObjectKind::Single {
                    via: None,
                    oif: 5,
                    dead: true
                }
            }))
        );
    }

    /// `ip nexthop add id 10 group 1/2,3`: members with weight − 1 in the kernel's bytes.
    #[test]
    fn a_group() {
        let group = |members: &[(u32, u8, u8)]| {
            let mut g = Vec::new();
            for &(m, low, high) in members {
                g.extend(m.to_ne_bytes());
                g.extend([low, high, 0, 0]);
            }
            let p = payload(0, 0, &[id(10), nla(NHA_GROUP, &g)]);
            match parse(RTM_NEWNEXTHOP, &p) {
                Some(NextHopMessage::New(o)) => o.kind,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            group(&[(1, 0, 0), (2, 2, 0)]),
            ObjectKind::Group(vec![(1, 1), (2, 3)])
        );
        // Linux 6.12 on: weights to 65,536, the high byte where the reserved one was.
        assert_eq!(
            group(&[(1, 255, 0), (2, 7, 0)]),
            ObjectKind::Group(vec![(1, 256), (2, 8)])
        );
        assert!(matches!(
            group(&[(1, 43, 1), (2, 0, 0)]),
            ObjectKind::Uncarried { why, oif: 0 } if why.contains("weight")
        ));
    }

    /// Blackholes, IPv6 gateways, encapsulations and FDB next hops are told apart; a message
    /// without an id, or cut short, is not read.
    #[test]
    fn what_rtm_cannot_carry() {
        let kind = |p: &[u8]| match parse(RTM_NEWNEXTHOP, p) {
            Some(NextHopMessage::New(o)) => Some(o.kind),
            _ => None,
        };
        assert_eq!(
            kind(&payload(0, 0, &[id(3), nla(NHA_BLACKHOLE, &[])])),
            Some(ObjectKind::Blackhole)
        );
        let oif = nla(NHA_OIF, &4u32.to_ne_bytes());
        let v6 = payload(10, 0, &[id(4), nla(NHA_GATEWAY, &[0xfe; 16]), oif.clone()]);
        let o = NextHopObject {
            id: 4,
            kind: kind(&v6).unwrap(),
        };
        assert!(matches!(o.kind, ObjectKind::Uncarried { why, oif: 4 } if why.contains("inet6")));
        assert!(o.uses_link(4), "its link takes it");
        let encap = payload(2, 0, &[id(5), nla(NHA_ENCAP_TYPE, &1u16.to_ne_bytes())]);
        assert!(
            matches!(kind(&encap), Some(ObjectKind::Uncarried { why, .. }) if why.contains("encap"))
        );
        let fdb = payload(2, 0, &[id(6), nla(NHA_FDB, &[])]);
        assert!(
            matches!(kind(&fdb), Some(ObjectKind::Uncarried { why, .. }) if why.contains("fdb"))
        );
        assert_eq!(kind(&payload(2, 0, &[nla(NHA_OIF, &[1, 0, 0, 0])])), None);
        assert_eq!(kind(&[2, 0, 4]), None);
        let mut cut = payload(2, 0, &[id(7)]);
        cut.extend([200, 0, 5, 0]);
        assert_eq!(kind(&cut), None);
    }

    /// The dump request is a whole netlink message the kernel can read.
    #[test]
    fn the_dump_request() {
        let r = dump_request(9);
        let b = NetlinkBuffer::new_checked(&r[..]).expect("a netlink message");
        assert_eq!(
            (b.message_type(), b.flags(), b.sequence_number()),
            (RTM_GETNEXTHOP, NLM_F_REQUEST | NLM_F_DUMP, 9)
        );
        assert_eq!(b.payload(), &[0; NHMSG_LEN]);
    }
}
