//! The mirror with the kernel's next-hop objects: routes through them (`nhid`), objects
//! replaced, deleted and flushed with their link, the kernel's copies, and a randomized check
//! of the mirror's consistency.

use super::*;

/// A route through next-hop object `id` (`ip route add DST nhid ID metric PRIORITY`).
fn through(dst: &str, priority: u32, id: u32) -> KernelRoute {
    KernelRoute {
        oif: None,
        nhid: Some(id),
        ..kr(dst, priority, 0)
    }
}

fn single(id: u32, via: &str, oif: u32) -> NextHopObject {
    NextHopObject {
        id,
        kind: ObjectKind::Single {
            via: Some(via.parse().unwrap()),
            oif,
            dead: false,
        },
    }
}

fn group(id: u32, members: &[(u32, u16)]) -> NextHopObject {
    NextHopObject {
        id,
        kind: ObjectKind::Group(members.to_vec()),
    }
}

/// Objects 1 (192.0.2.2 over va), 2 (198.51.100.2 over vb) and 10 (group 1/2,3); routes
/// 10.50.0.0/24 through 10 and 10.9.0.0/24 through 1, both mirrored with the objects' next
/// hops.
fn with_objects() -> Mirror {
    let mut m = Mirror::default();
    m.objects(vec![
        single(1, "192.0.2.2", 2),
        single(2, "198.51.100.2", 3),
        group(10, &[(1, 1), (2, 3)]),
    ]);
    let ops = m.resync(
        two_links(),
        vec![through("10.50.0.0/24", 0, 10), through(P, 5, 1)],
    );
    assert_eq!(puts(&ops), [put_a(), BOTH.to_string()]);
    m
}

/// A replaced object changes every route through it, and through the groups it is in, and
/// nothing else; the kernel's notification of those routes (`nexthop_compat_mode`) changes
/// nothing more.
#[test]
fn nhid_routes_follow_their_objects() {
    let mut m = with_objects();
    let ops = m.apply(vec![Change::NextHop(single(2, "198.51.100.3", 3))]);
    assert_eq!(
        puts(&ops),
        ["put 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 1 nexthop via 198.51.100.3 dev vb weight 3 origin kernel"]
    );
    let ops = m.apply(vec![Change::RouteAdded(
        through("10.50.0.0/24", 0, 10),
        Placed::Refreshed,
    )]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    check_through(&m);
    assert_eq!(m.kernel_routes(), 2);
    // The group made of one member: an ordinary route.
    let ops = m.apply(vec![Change::NextHop(group(10, &[(2, 1)]))]);
    assert_eq!(
        puts(&ops),
        ["put 10.50.0.0/24 via 198.51.100.3 dev vb origin kernel"]
    );
    // A route moved to another object, and deleted by its object's id.
    let ops = m.apply(vec![Change::RouteAdded(
        through(P, 5, 2),
        Placed::Replacing,
    )]);
    assert_eq!(
        puts(&ops),
        ["put 10.9.0.0/24 via 198.51.100.3 dev vb metric 5 origin kernel"]
    );
    let ops = m.apply(vec![Change::RouteRemoved(through(P, 5, 2))]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
}

/// A link set down takes the objects over it, the kernel says nothing: their routes go, a
/// group loses the member; a link losing its carrier does the same, and the group left
/// empty goes with its routes. What is behind them at their prefix is promoted.
#[test]
fn objects_go_with_their_link() {
    let mut m = with_objects();
    m.apply(vec![Change::RouteAdded(
        via(P, 9, "198.51.100.9", 3),
        Placed::First,
    )]);
    let ops = m.apply(vec![Change::Link(link(2, "va", false))]);
    assert_eq!(
        puts(&ops),
        [
            "put 10.9.0.0/24 via 198.51.100.9 dev vb metric 9 origin kernel",
            "put 10.50.0.0/24 via 198.51.100.2 dev vb origin kernel",
        ]
    );
    assert_eq!(m.object_count(), 2);
    // Up again: the objects stay gone, as in the kernel.
    assert!(m.apply(vec![Change::Link(link(2, "va", true))]).is_empty());
    let mut no_carrier = link(3, "vb", true);
    no_carrier.carrier = false;
    let ops = m.apply(vec![Change::Link(no_carrier)]);
    assert_eq!(puts(&ops), ["del 10.50.0.0/24"]);
    assert_eq!(m.object_count(), 0);
    assert_eq!(m.kernel_routes(), 1, "the route over vb itself stays");
}

/// An object deleted takes its routes; a blackhole object, or one the mirror does not know,
/// leaves rtm without a route for the prefix (not the next one either); an object rtm
/// cannot carry is warned of once.
#[test]
fn deleted_blackhole_and_unknown_objects() {
    let mut m = with_objects();
    let ops = m.apply(vec![Change::NextHopRemoved(1)]);
    assert_eq!(
        puts(&ops),
        [
            "del 10.9.0.0/24",
            "put 10.50.0.0/24 via 198.51.100.2 dev vb origin kernel",
        ]
    );
    assert_eq!(m.kernel_routes(), 1);
    let blackhole = NextHopObject {
        id: 7,
        kind: ObjectKind::Blackhole,
    };
    m.apply(vec![Change::RouteAdded(
        via(P, 9, "198.51.100.9", 3),
        Placed::First,
    )]);
    let ops = m.apply(vec![
        Change::NextHop(blackhole),
        Change::RouteAdded(through(P, 5, 7), Placed::First),
    ]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
    assert!(m.unmapped.is_empty());
    let ops = m.apply(vec![Change::RouteAdded(
        through(P, 5, 8),
        Placed::Replacing,
    )]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    assert!(m.unmapped[&P.parse().unwrap()]
        .1
        .contains("object 8 is not known"));
    let v6 = NextHopObject {
        id: 8,
        kind: ObjectKind::Uncarried {
            why: "a gateway of another address family (via inet6)",
            oif: 2,
        },
    };
    let ops = m.apply(vec![Change::NextHop(v6)]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    assert!(m.unmapped[&P.parse().unwrap()].1.contains("inet6"));
    // Its link down takes it, as any object over the link: the route behind it is
    // mirrored again.
    let ops = m.apply(vec![Change::Link(link(2, "va", false))]);
    assert_eq!(
        puts(&ops),
        ["put 10.9.0.0/24 via 198.51.100.9 dev vb metric 9 origin kernel"]
    );
    assert_eq!(m.object_count(), 3, "2, the blackhole 7 and group 10 stay");
    check_through(&m);
}

/// The index of routes through objects is what a pass over the routes finds.
fn check_through(m: &Mirror) {
    let mut want: Through = HashMap::new();
    for e in m.entries() {
        count(&mut want, e, true);
    }
    assert_eq!(m.through, want);
}

/// A real `ip route replace` with a route through an object takes the first place, even
/// when the same route is further down; a copy of the kernel's for a replaced object
/// (`Refreshed`) moves nothing, and one of a route the mirror no longer has brings nothing
/// back.
#[test]
fn replace_with_an_nhid_route_and_refreshed_copies() {
    let mut m = with_objects();
    m.apply(vec![Change::RouteAdded(
        via(P, 5, "198.51.100.9", 3),
        Placed::First,
    )]);
    m.apply(vec![Change::RouteAdded(through(P, 5, 2), Placed::Last)]);
    // [via 198.51.100.9, nhid 1 (from with_objects), nhid 2]
    let ops = m.apply(vec![
        Change::NextHop(single(2, "198.51.100.2", 3)),
        Change::RouteAdded(through(P, 5, 2), Placed::Refreshed),
    ]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    let ops = m.apply(vec![Change::RouteAdded(
        through(P, 5, 2),
        Placed::Replacing,
    )]);
    assert_eq!(puts(&ops), [put_b()]);
    check_through(&m);
    let ops = m.apply(vec![Change::RouteRemoved(through(P, 5, 2))]);
    assert_eq!(puts(&ops), [put_a()], "nhid 1 is next");
    let ops = m.apply(vec![
        Change::NextHop(single(2, "198.51.100.2", 3)),
        Change::RouteAdded(through(P, 5, 2), Placed::Refreshed),
    ]);
    assert!(
        ops.is_empty(),
        "the stale copy brings nothing: {:?}",
        puts(&ops)
    );
    assert_eq!(m.kernel_routes(), 2);
    check_through(&m);
    // Object 1 deleted: its route goes, found by the index.
    let ops = m.apply(vec![Change::NextHopRemoved(1)]);
    assert_eq!(
        puts(&ops),
        [
            "del 10.9.0.0/24",
            "put 10.50.0.0/24 via 198.51.100.2 dev vb origin kernel"
        ]
    );
    check_through(&m);
}

/// `ip route add blackhole P nhid N` (the kernel takes it): a placeholder that goes with its
/// object, without a word from the kernel.
fn blackhole_through(priority: u32, id: u32) -> Uncarried {
    Uncarried {
        why: Skip::NotUnicast,
        kind: 6,
        nhid: Some(id),
        oif: None,
        ..encap(P, priority, 0)
    }
}

/// A blackhole route through object 2 in front of `P via … metric 10`: rtm holds nothing;
/// object 2 deleted, the kernel flushes the blackhole and forwards with metric 10.
#[test]
fn a_placeholder_through_an_object_goes_with_it() {
    let mut m = Mirror::default();
    m.objects(vec![single(2, "192.0.2.3", 2)]);
    let ops = m.resync(
        two_links(),
        vec![
            Parsed::Uncarried(blackhole_through(3, 2)),
            Parsed::Route(via(P, 10, "192.0.2.8", 2)),
        ],
    );
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    check_through(&m);
    let ops = m.apply(vec![Change::NextHopRemoved(2)]);
    assert_eq!(
        puts(&ops),
        ["put 10.9.0.0/24 via 192.0.2.8 dev va metric 10 origin kernel"]
    );
    check_through(&m);
}

/// The kernel's copy of a blackhole route through an object just replaced, behind the route
/// it forwards with, moves nothing; a `Refreshed` route through an object not just replaced
/// is a replace; one the mirror does not have leaves no empty list behind.
#[test]
fn copies_only_for_objects_just_replaced() {
    let mut m = Mirror::default();
    m.objects(vec![single(3, "192.0.2.7", 2), single(4, "192.0.2.6", 2)]);
    let ops = m.resync(
        two_links(),
        vec![
            Parsed::Route(via(P, 5, "192.0.2.2", 2)),
            Parsed::Uncarried(blackhole_through(5, 3)),
        ],
    );
    assert_eq!(puts(&ops), [put_a()]);
    let ops = m.apply(vec![
        Change::NextHop(single(3, "192.0.2.4", 2)),
        Change::UncarriedAdded(blackhole_through(5, 3), Placed::Refreshed),
    ]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    // Right after object 3's replace, a replace through object 4 that looks like a copy.
    let ops = m.apply(vec![
        Change::NextHop(single(3, "192.0.2.5", 2)),
        Change::RouteAdded(through(P, 5, 4), Placed::Refreshed),
    ]);
    assert_eq!(
        puts(&ops),
        ["put 10.9.0.0/24 via 192.0.2.6 dev va metric 5 origin kernel"]
    );
    let ops = m.apply(vec![
        Change::NextHop(single(4, "192.0.2.9", 2)),
        Change::RouteAdded(through("10.77.0.0/24", 1, 4), Placed::Refreshed),
    ]);
    assert_eq!(
        puts(&ops),
        ["put 10.9.0.0/24 via 192.0.2.9 dev va metric 5 origin kernel"]
    );
    assert!(!m.routes.contains_key(&"10.77.0.0/24".parse().unwrap()));
    check_through(&m);
}

/// Random sequences of every kind of change: after each, the index of routes through
/// objects is what a pass over the routes finds, rtm holds what the mirror wants for every
/// prefix it knows, and no empty list is left behind.
#[test]
fn random_changes_keep_the_mirror_consistent() {
    let mut state: u64 = 0x5eed_2026_1206;
    let mut rnd = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let prefixes = ["10.1.0.0/24", "10.2.0.0/24", P];
    for run in 0..300 {
        let mut m = Mirror::default();
        let mut log = Vec::new();
        for step in 0..60 {
            let object = |rnd: &mut dyn FnMut(u64) -> u64| {
                let id = 1 + rnd(5) as u32;
                match rnd(4) {
                    0 | 1 => single(id, "192.0.2.2", 2 + rnd(2) as u32),
                    2 => {
                        let members: Vec<(u32, u16)> = (0..1 + rnd(3))
                            .map(|_| (1 + rnd(5) as u32, 1 + rnd(3) as u16))
                            .collect();
                        group(id, &members)
                    }
                    _ => NextHopObject {
                        id,
                        kind: ObjectKind::Blackhole,
                    },
                }
            };
            let route = |rnd: &mut dyn FnMut(u64) -> u64| {
                let (dst, prio) = (prefixes[rnd(3) as usize], rnd(2) as u32);
                match rnd(4) {
                    0 => via(dst, prio, "192.0.2.9", 2 + rnd(2) as u32),
                    1 => mp(dst, prio, &AB),
                    _ => through(dst, prio, 1 + rnd(5) as u32),
                }
            };
            let placed = |k: u64| {
                [
                    Placed::First,
                    Placed::Last,
                    Placed::Replacing,
                    Placed::Refreshed,
                ][k as usize]
            };
            let placeholder = |rnd: &mut dyn FnMut(u64) -> u64| {
                let (dst, prio) = (prefixes[rnd(3) as usize], rnd(2) as u32);
                if rnd(2) == 0 {
                    encap(dst, prio, 2)
                } else {
                    Uncarried {
                        dst: dst.parse().unwrap(),
                        ..blackhole_through(prio, 1 + rnd(5) as u32)
                    }
                }
            };
            let c = match rnd(12) {
                0..=2 => Change::RouteAdded(route(&mut rnd), placed(rnd(4))),
                3 | 4 => Change::RouteRemoved(route(&mut rnd)),
                5 => Change::UncarriedAdded(placeholder(&mut rnd), placed(rnd(4))),
                6 => Change::UncarriedRemoved(placeholder(&mut rnd)),
                7 => Change::NextHop(object(&mut rnd)),
                8 => Change::NextHopRemoved(1 + rnd(5) as u32),
                9 => {
                    let mut l = link(
                        2 + rnd(2) as u32,
                        ["va", "vb"][rnd(2) as usize],
                        rnd(3) != 0,
                    );
                    l.carrier = rnd(3) != 0;
                    Change::Link(l)
                }
                10 => Change::LinkRemoved(2 + rnd(2) as u32),
                _ => {
                    let objects: Vec<_> = (0..rnd(4)).map(|_| object(&mut rnd)).collect();
                    let routes: Vec<_> = (0..rnd(5)).map(|_| route(&mut rnd)).collect();
                    log.push(format!("resync {objects:?} {routes:?}"));
                    m.objects(objects);
                    m.resync(two_links(), routes);
                    consistent(&m, &log, run, step);
                    continue;
                }
            };
            log.push(format!("{c:?}"));
            m.apply(vec![c]);
            consistent(&m, &log, run, step);
        }
    }

    fn consistent(m: &Mirror, log: &[String], run: usize, step: usize) {
        let mut want: Through = HashMap::new();
        for e in m.entries() {
            count(&mut want, e, true);
        }
        let at = || format!("run {run} step {step}:\n{}", log.join("\n"));
        assert_eq!(m.through, want, "the index, {}", at());
        let mut objects = Resolved::new();
        for (p, keys) in &m.routes {
            let w = m.wanted(*p, &mut objects).ok().flatten();
            assert_eq!(w.as_ref(), m.installed.get(p), "{p}, {}", at());
            assert!(
                keys.values().all(|l| !l.is_empty()),
                "an empty list at {p}, {}",
                at()
            );
        }
    }
}
