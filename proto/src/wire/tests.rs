//! Tests of the wire forms.

use super::*;

#[test]
fn round_trip_and_trailing_garbage() {
    let msg = ClientMsg::Request {
        id: 7,
        req: Request::Apply(Op::RouteDel("10.0.0.0/8".parse().unwrap())),
    };
    let bytes = encode(&msg).unwrap();
    assert_eq!(decode::<ClientMsg>(&bytes).unwrap(), msg);
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode::<ClientMsg>(&longer).is_err());
    assert!(decode::<ClientMsg>(&[0xff, 0xff, 0xff]).is_err());
}

#[test]
fn hello_is_variant_zero() {
    // Any daemon version must be able to read a Hello: it must stay the first variant.
    let hello = ClientMsg::Hello(Hello {
        version: 1,
        name: "x".into(),
        caps: Caps::default(),
    });
    assert_eq!(encode(&hello).unwrap()[0], 0);
}

/// From version 6 on a route travels with its origin; before, in the form that version
/// decodes, and the refusal of an owned entry in words an old client knows.
#[test]
fn routes_carry_their_origin_from_version_6() {
    let mut r = Route {
        dst: "10.0.0.0/8".parse().unwrap(),
        via: Some(Ipv4Addr::new(192, 0, 2, 1)),
        dev: None,
        metric: 3,
        nexthops: Vec::new(),
        origin: Origin::Kernel,
    };
    let list = Reply::Routes {
        routes: vec![r.clone()],
        more: false,
    };
    let at = |v: u16, reply: Reply| -> Reply {
        let msg = ServerMsg::Reply {
            id: 1,
            result: reply.for_version(v),
        };
        match decode::<ServerMsg>(&encode(&msg).unwrap()).unwrap() {
            ServerMsg::Reply { result, .. } => result.unwrap().normalized(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(at(6, list.clone()), list);
    assert_eq!(at(6, Reply::Route(r.clone())), Reply::Route(r.clone()));
    // A version 5 client decodes the old variants, without the origin.
    assert!(matches!(
        list.clone().for_version(5),
        Ok(Reply::Routes { .. })
    ));
    r.origin = Origin::Rtm;
    assert_eq!(at(5, Reply::Route(r.clone())), Reply::Route(r));

    let owned = Failure::Owned {
        table: Table::Route,
        key: Some("10.0.0.0/8".into()),
        count: 1,
        origin: Origin::Kernel,
    };
    let text = owned.to_string();
    assert!(
        text.contains("10.0.0.0/8") && text.contains("--override-kernel"),
        "{text}"
    );
    assert_eq!(owned.clone().for_version(5), Failure::Invalid(text));
    assert_eq!(owned.clone().for_version(6), owned);
}

/// A multipath route travels whole from version 7 on, in its own operation variants; a
/// route with one next hop keeps the encoding every version reads; an older client asking
/// for a multipath route is told why it cannot have it.
#[test]
fn multipath_routes_travel_from_version_7() {
    let hop = |a: u8, w: u16| crate::types::Hop {
        via: Some(Ipv4Addr::new(192, 0, 2, a)),
        dev: None,
        weight: w,
    };
    let dst: Prefix = "10.1.0.0/16".parse().unwrap();
    let multi = Route::multipath(dst, 5, vec![hop(1, 1), hop(2, 3)]);
    let single = Route::new(dst, Some(Ipv4Addr::new(192, 0, 2, 1)), None, 5);
    let req = |op: Op| ClientMsg::Request {
        id: 1,
        req: Request::Apply(op),
    };
    for op in [
        Op::RouteAdd(multi.clone()),
        Op::RouteChange(multi.clone()),
        Op::RouteReplace(multi.clone()),
    ] {
        assert_eq!(Request::Apply(op.clone()).since(), 7);
        let msg = req(op);
        assert_eq!(decode::<ClientMsg>(&encode(&msg).unwrap()).unwrap(), msg);
    }
    // One next hop: the bytes an older daemon decodes (variant 0, then the four fields).
    assert_eq!(Request::Apply(Op::RouteAdd(single.clone())).since(), 1);
    let op = encode(&Op::RouteAdd(single.clone())).unwrap();
    let legacy = encode(&(0u8, crate::types::route_v1::AsV1(&single))).unwrap();
    assert_eq!(op, legacy);

    let list = Reply::Routes {
        routes: vec![single.clone(), multi.clone()],
        more: false,
    };
    let back = |reply: Reply| match decode::<ServerMsg>(
        &encode(&ServerMsg::Reply {
            id: 1,
            result: Ok(reply),
        })
        .unwrap(),
    )
    .unwrap()
    {
        ServerMsg::Reply { result, .. } => result.unwrap().normalized(),
        other => panic!("{other:?}"),
    };
    assert_eq!(back(list.clone().for_version(7).unwrap()), list);
    let why = list.clone().for_version(6).unwrap_err().to_string();
    assert!(
        why.contains("10.1.0.0/16") && why.contains("2 nexthops") && why.contains("upgrade"),
        "{why}"
    );
    let only_single = Reply::Routes {
        routes: vec![single],
        more: false,
    };
    assert_eq!(
        back(only_single.clone().for_version(6).unwrap()),
        only_single
    );
}

/// The neighbour table is told only to clients that ask for it, at version 8: `All` stays the
/// route and ARP tables (a flush of `All` leaves the kernel's neighbours alone), and each new
/// request says the version it needs.
#[test]
fn neighbours_only_from_version_8() {
    assert_eq!(
        Tables::All.iter().collect::<Vec<_>>(),
        [Table::Route, Table::Arp]
    );
    assert_eq!(
        Tables::Every.iter().collect::<Vec<_>>(),
        [Table::Route, Table::Arp, Table::Neigh]
    );
    assert_eq!(Tables::Neigh.iter().collect::<Vec<_>>(), [Table::Neigh]);
    for (req, since) in [
        (
            Request::Subscribe {
                tables: Tables::All,
            },
            1,
        ),
        (
            Request::Subscribe {
                tables: Tables::Neigh,
            },
            8,
        ),
        (
            Request::Subscribe {
                tables: Tables::Every,
            },
            8,
        ),
        (Request::NeighShow(None), 8),
        (Request::Apply(Op::Flush(Tables::All)), 1),
        (Request::Apply(Op::Flush(Tables::Every)), 8),
        (
            Request::Debug(DebugAction::Stall {
                target: DebugTarget::Neigh,
                ms: 1,
            }),
            8,
        ),
    ] {
        assert_eq!(req.since(), since, "{req:?}");
    }
    let key = Key::Neigh(crate::types::NeighKey {
        ip: "192.0.2.7".parse().unwrap(),
        dev: "eth0".parse().unwrap(),
    });
    assert_eq!(key.table(), Table::Neigh);
    assert_eq!(key.to_string(), "192.0.2.7 dev eth0");
    let ev = ServerMsg::Events(vec![Event::Change {
        table: Table::Neigh,
        op: ChangeOp::Create,
        key,
        seq: 3,
    }]);
    let bytes = encode(&ev).unwrap();
    assert_eq!(decode::<ServerMsg>(&bytes).unwrap(), ev);
}
