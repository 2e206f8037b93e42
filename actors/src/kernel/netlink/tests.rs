use super::write::message_for;
use super::*;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::RouteScope;

fn gw(a: &str) -> RouteAttribute {
    RouteAttribute::Gateway(RouteAddress::Inet(a.parse().unwrap()))
}

fn nh(via: Option<&str>, oif: u32, hops: u8, flags: RouteNextHopFlags) -> RouteNextHop {
    let mut h = RouteNextHop::default();
    h.interface_index = oif;
    h.hops = hops;
    h.flags = flags;
    h.attributes.extend(via.map(gw));
    h
}

/// `ip route add DST metric M nexthop … nexthop …` as the kernel announces it, through
/// the bytes of a netlink message.
fn announced(dst: &str, metric: u32, extra: Vec<RouteAttribute>, flags: u16) -> Change {
    let p: Prefix = dst.parse().unwrap();
    let mut m = message_for(p, 254, 4, RouteScope::Universe);
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Priority(metric));
    m.attributes.extend(extra);
    let buf = encode(RouteNetlinkMessage::NewRoute(m), flags, 7);
    let (mut msgs, bad) = messages(&buf);
    assert_eq!((msgs.len(), bad), (1, 0));
    let (h, payload) = msgs.pop().unwrap();
    let NetlinkPayload::InnerMessage(m) = payload else {
        panic!("{payload:?}")
    };
    change(m, 254, h.flags)
}

fn names(i: u32) -> Option<String> {
    match i {
        2 => Some("va".into()),
        3 => Some("vb".into()),
        _ => None,
    }
}

/// Each rtnexthop becomes a hop: its gateway, its link by name, weight = rtnh_hops + 1,
/// in the kernel's order.
#[test]
fn multipath_maps_each_path() {
    let c = announced(
        "10.50.0.0/24",
        5,
        vec![RouteAttribute::MultiPath(vec![
            nh(Some("192.0.2.2"), 2, 0, RouteNextHopFlags::empty()),
            nh(Some("198.51.100.2"), 3, 2, RouteNextHopFlags::empty()),
            nh(None, 3, 255, RouteNextHopFlags::empty()),
        ])],
        0,
    );
    let Change::RouteAdded(k, _) = c else {
        panic!("{c:?}")
    };
    assert_eq!((k.via, k.oif, k.priority), (None, None, 5));
    let weights: Vec<u16> = k.nexthops.iter().map(|h| h.weight).collect();
    assert_eq!(weights, [1, 3, 256]);
    let r = k.to_route(names, true, Origin::Kernel).unwrap().unwrap();
    assert_eq!(
        r.to_string(),
        "10.50.0.0/24 metric 5 nexthop via 192.0.2.2 dev va weight 1 \
         nexthop via 198.51.100.2 dev vb weight 3 nexthop dev vb weight 256 origin kernel"
    );
    assert!(r.validate().is_ok());
}

/// Dead paths are left out of what the kernel forwards with; one path left is an
/// ordinary route; none left is no route. As written (the export), they stay.
#[test]
fn dead_paths_are_left_out() {
    let dead = RouteNextHopFlags::Dead | RouteNextHopFlags::Linkdown;
    let c = announced(
        "10.50.0.0/24",
        0,
        vec![RouteAttribute::MultiPath(vec![
            nh(Some("192.0.2.2"), 2, 0, dead),
            nh(Some("198.51.100.2"), 3, 2, RouteNextHopFlags::Linkdown),
        ])],
        0,
    );
    let Change::RouteAdded(mut k, _) = c else {
        panic!("{c:?}")
    };
    assert!(k.nexthops[0].dead && !k.nexthops[1].dead, "{k:?}");
    let live = k.to_route(names, true, Origin::Kernel).unwrap().unwrap();
    assert_eq!(
        live.to_string(),
        "10.50.0.0/24 via 198.51.100.2 dev vb origin kernel"
    );
    let written = k.to_route(names, false, Origin::Rtm).unwrap().unwrap();
    assert_eq!(written.nexthops.len(), 2);
    k.nexthops[1].dead = true;
    assert!(!k.alive());
    assert_eq!(k.to_route(names, true, Origin::Kernel), Ok(None));
}

/// A path over a link rtm cannot name makes the route one rtm does not hold, with the
/// reason.
#[test]
fn unnamed_link_is_a_reason() {
    let c = announced(
        "10.50.0.0/24",
        0,
        vec![RouteAttribute::MultiPath(vec![
            nh(Some("192.0.2.2"), 2, 0, RouteNextHopFlags::empty()),
            nh(Some("198.51.100.2"), 9, 0, RouteNextHopFlags::empty()),
        ])],
        0,
    );
    let Change::RouteAdded(k, _) = c else {
        panic!("{c:?}")
    };
    let e = k.to_route(names, true, Origin::Kernel).unwrap_err();
    assert!(e.contains("path 2") && e.contains("index 9"), "{e}");
}

/// Too many paths and an IPv6 gateway are skipped with their reason, and with where the
/// kernel put them. An `nhid` route is carried by its object's id alone: the copies of the
/// object's next hops in the message (`nexthop_compat_mode`) are dropped, even those rtm
/// could not carry (the object decides).
#[test]
fn uncarried_routes_say_why() {
    let many: Vec<RouteNextHop> = (0..=MAX_NEXTHOPS as u32)
        .map(|i| nh(None, 2 + i % 2, 0, RouteNextHopFlags::empty()))
        .collect();
    let c = announced("10.50.0.0/24", 0, vec![RouteAttribute::MultiPath(many)], 0);
    assert!(
        matches!(&c, Change::UncarriedAdded(u, Placed::First) if u.why == Skip::TooManyPaths),
        "{c:?}"
    );
    let c = announced(
        "10.50.0.0/24",
        3,
        vec![RouteAttribute::NhId(5), RouteAttribute::Oif(2)],
        NLM_F_CREATE | NLM_F_APPEND,
    );
    assert!(
        matches!(&c, Change::RouteAdded(k, Placed::Last)
            if k.priority == 3 && k.nhid == Some(5) && k.oif.is_none() && k.via.is_none()),
        "{c:?}"
    );
    let mut six = nh(None, 2, 0, RouteNextHopFlags::empty());
    six.attributes.push(RouteAttribute::Via(
        netlink_packet_route::route::RouteVia::Inet6("fe80::1".parse().unwrap()),
    ));
    let c = announced(
        "10.50.0.0/24",
        0,
        vec![RouteAttribute::MultiPath(vec![six.clone(), six.clone()])],
        0,
    );
    assert!(
        matches!(&c, Change::UncarriedAdded(u, _) if u.why == Skip::ForeignGateway),
        "{c:?}"
    );
    let c = announced(
        "10.50.0.0/24",
        0,
        vec![
            RouteAttribute::NhId(6),
            RouteAttribute::MultiPath(vec![six.clone(), six]),
        ],
        0,
    );
    assert!(
        matches!(&c, Change::RouteAdded(k, _) if k.nhid == Some(6) && k.nexthops.is_empty()),
        "{c:?}"
    );
    // Exactly 256 paths are carried.
    let most: Vec<RouteNextHop> = (0..MAX_NEXTHOPS as u32)
        .map(|i| nh(None, 2 + i % 2, 0, RouteNextHopFlags::empty()))
        .collect();
    let c = announced("10.50.0.0/24", 0, vec![RouteAttribute::MultiPath(most)], 0);
    assert!(
        matches!(&c, Change::RouteAdded(k, _) if k.nexthops.len() == MAX_NEXTHOPS),
        "{c:?}"
    );
}

/// The notification flags the kernel sends (seen in a network namespace): `add` on a
/// new key EXCL|CREATE, `prepend` CREATE, `append` CREATE|APPEND, `replace` REPLACE.
#[test]
fn flags_say_where_the_kernel_put_it() {
    for (flags, placed) in [
        (NLM_F_EXCL | NLM_F_CREATE, Placed::First),
        (NLM_F_CREATE, Placed::First),
        (NLM_F_CREATE | NLM_F_APPEND, Placed::Last),
        (NLM_F_REPLACE, Placed::Replacing),
    ] {
        let c = announced("10.50.0.0/24", 0, vec![RouteAttribute::Oif(2)], flags);
        assert!(
            matches!(&c, Change::RouteAdded(_, p) if *p == placed),
            "{flags:#x}: {c:?}"
        );
    }
}

/// A dump's uncarried routes go back to their places among the carried ones.
#[test]
fn dump_in_order() {
    let r = |m: u32| KernelRoute {
        dst: "10.9.0.0/24".parse().unwrap(),
        tos: 0,
        priority: m,
        via: None,
        oif: Some(2),
        nexthops: Vec::new(),
        protocol: 3,
        nhid: None,
    };
    let u = |m: u32| Uncarried {
        dst: "10.9.0.0/24".parse().unwrap(),
        tos: 0,
        priority: m,
        protocol: 3,
        why: Skip::Encap,
        kind: 1,
        nhid: None,
        via: None,
        oif: None,
        nexthops: Vec::new(),
    };
    let all = Dump::in_order(vec![r(1), r(3)], vec![(0, u(0)), (1, u(2)), (2, u(4))]);
    let metrics: Vec<(bool, u32)> = all
        .iter()
        .map(|p| match p {
            Parsed::Route(r) => (true, r.priority),
            Parsed::Uncarried(u) => (false, u.priority),
            Parsed::Other => panic!(),
        })
        .collect();
    assert_eq!(
        metrics,
        [(false, 0), (true, 1), (false, 2), (true, 3), (false, 4)]
    );
}

/// What the export writes for a multipath route reads back as the same route (so a
/// reconcile adopts it unchanged), with rtnh_hops = weight - 1.
#[test]
fn written_multipath_reads_back() {
    let w = KernelWrite {
        dst: "10.60.0.0/24".parse().unwrap(),
        via: None,
        oif: None,
        priority: 9,
        nexthops: vec![
            WriteHop {
                via: Some("192.0.2.2".parse().unwrap()),
                oif: Some(2),
                weight: 1,
            },
            WriteHop {
                via: Some("198.51.100.2".parse().unwrap()),
                oif: None,
                weight: 256,
            },
        ],
    };
    let (msg, _) = Request::Replace(w).message(254, 200);
    let RouteNetlinkMessage::NewRoute(m) = &msg else {
        panic!("{msg:?}")
    };
    assert_eq!(m.header.scope, RouteScope::Universe);
    let hops: Vec<u8> = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::MultiPath(h) => Some(h.iter().map(|h| h.hops).collect()),
            _ => None,
        })
        .unwrap();
    assert_eq!(hops, [0, 255]);
    let buf = encode(msg, 0, 1);
    let (mut msgs, _) = messages(&buf);
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) = msgs.pop().unwrap().1
    else {
        panic!()
    };
    let k = route(&m, 254).expect("carried");
    assert_eq!(k.protocol, 200);
    let r = k.to_route(names, false, Origin::Rtm).unwrap().unwrap();
    assert_eq!(
        r.to_string(),
        "10.60.0.0/24 metric 9 nexthop via 192.0.2.2 dev va weight 1 \
         nexthop via 198.51.100.2 weight 256"
    );
}

/// A netlink frame of type `kind` with this payload, flags, sequence number and port.
fn frame(kind: u16, payload: &[u8], flags: u16, seq: u32, port: u32) -> Vec<u8> {
    let mut f = ((16 + payload.len()) as u32).to_ne_bytes().to_vec();
    f.extend(kind.to_ne_bytes());
    f.extend(flags.to_ne_bytes());
    f.extend(seq.to_ne_bytes());
    f.extend(port.to_ne_bytes());
    f.extend(payload);
    f
}

/// `RTM_NEWNEXTHOP` of `id 3 dev <2>` (nhmsg, then NHA_ID and NHA_OIF).
fn object_3(flags: u16, seq: u32, port: u32) -> Vec<u8> {
    let mut nh = vec![2u8, 0, 4, 0, 0, 0, 0, 0];
    for (kind, v) in [(1u16, 3u32), (5, 2)] {
        nh.extend(8u16.to_ne_bytes());
        nh.extend(kind.to_ne_bytes());
        nh.extend(v.to_ne_bytes());
    }
    frame(104, &nh, flags, seq, port)
}

/// `RTM_NEWROUTE` of `10.50.0.0/24 nhid 3` (with the compat copy of its next hop).
fn route_through_3(flags: u16, seq: u32, port: u32) -> Vec<u8> {
    let p: Prefix = "10.50.0.0/24".parse().unwrap();
    let mut m = message_for(p, 254, 4, RouteScope::Universe);
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::NhId(3));
    m.attributes.push(RouteAttribute::Oif(2));
    let mut f = encode(RouteNetlinkMessage::NewRoute(m), flags, seq);
    f[12..16].copy_from_slice(&port.to_ne_bytes());
    f
}

/// One event datagram with a route and a next-hop object is read in order, each for what it
/// is; a route with a tos is left out (the kernel uses it only for that tos) and never a
/// placeholder; messages of the groups the mirror has no use for (a resilient group's
/// buckets) are passed over, not counted as undecodable.
#[test]
fn one_datagram_of_routes_and_objects() {
    let p: Prefix = "10.50.0.0/24".parse().unwrap();
    let mut m = message_for(p, 254, 4, RouteScope::Universe);
    m.header.kind = RouteType::Unicast;
    m.header.tos = 0x10;
    m.attributes.push(RouteAttribute::Oif(2));
    let mut buf = encode(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE, 7);
    buf.extend(object_3(NLM_F_CREATE, 8, 0));
    // RTM_NEWNEXTHOPBUCKET.
    buf.extend(frame(116, &[0u8; 12], 0, 9, 0));
    let mut replaced = None;
    let (changes, bad) = events(&buf, 254, None, &mut replaced);
    assert_eq!(bad, 0);
    assert!(
        matches!(&changes[..], [Change::UncarriedAdded(u, _), Change::NextHop(o)]
            if u.why == Skip::Tos && u.why.invisible() && o.id == 3 && o.uses_link(2)),
        "{changes:?}"
    );
    assert_eq!(replaced, None, "a new object, not a replace");
    // The route-netlink reader leaves the object out, without calling it undecodable.
    let (msgs, bad) = messages(&buf);
    assert_eq!((msgs.len(), bad), (1, 0));
    // A datagram cut inside a message says so.
    let (_, bad) = events(&buf[..buf.len() - 4], 254, None, &mut replaced);
    assert_eq!(bad, 1);
}

/// The route events the kernel adds to `ip nexthop replace` (`nexthop_compat_mode`) carry
/// that request's port and sequence number, also in a later datagram: they move nothing. A
/// real `ip route replace` of a route through the object is a replace.
#[test]
fn compat_copies_of_a_replaced_object_move_nothing() {
    let mut replaced = None;
    let (changes, _) = events(
        &object_3(NLM_F_CREATE | NLM_F_REPLACE, 40, 77),
        254,
        None,
        &mut replaced,
    );
    assert!(matches!(&changes[..], [Change::NextHop(_)]), "{changes:?}");
    assert_eq!(replaced, Some((77, 40)));
    let mut buf = route_through_3(NLM_F_REPLACE, 40, 77);
    buf.extend(route_through_3(NLM_F_REPLACE, 3, 91));
    let (changes, bad) = events(&buf, 254, None, &mut replaced);
    assert_eq!(bad, 0);
    assert!(
        matches!(&changes[..], [
            Change::RouteAdded(a, Placed::Refreshed),
            Change::RouteAdded(b, Placed::Replacing),
        ] if a.nhid == Some(3) && b.nhid == Some(3)),
        "{changes:?}"
    );
}
