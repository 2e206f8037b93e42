use super::super::netlink::nexthop::{NextHopObject, ObjectKind};
use super::super::netlink::KernelHop;
use super::*;

fn kr(dst: &str, priority: u32, oif: u32) -> KernelRoute {
    KernelRoute {
        dst: dst.parse().unwrap(),
        tos: 0,
        priority,
        via: None,
        oif: Some(oif),
        nexthops: Vec::new(),
        protocol: 3,
        nhid: None,
    }
}

fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        index,
        name: name.into(),
        up,
        carrier: up,
    }
}

fn puts(ops: &[TableOp<Route>]) -> Vec<String> {
    ops.iter()
        .map(|o| match o {
            TableOp::Replace(r) => format!("put {r}"),
            TableOp::Del(p) => format!("del {p}"),
            _ => "other".into(),
        })
        .collect()
}

/// The lowest priority is mirrored; deleting it promotes the next one.
#[test]
fn lowest_priority_then_promotion() {
    let mut m = Mirror::default();
    let ops = m.resync(
        vec![link(2, "v0", true)],
        vec![kr("10.0.0.0/24", 20, 2), kr("10.0.0.0/24", 10, 2)],
    );
    assert_eq!(
        puts(&ops),
        ["put 10.0.0.0/24 dev v0 metric 10 origin kernel"]
    );
    let ops = m.apply(vec![Change::RouteRemoved(kr("10.0.0.0/24", 10, 2))]);
    assert_eq!(
        puts(&ops),
        ["put 10.0.0.0/24 dev v0 metric 20 origin kernel"]
    );
    let ops = m.apply(vec![Change::RouteRemoved(kr("10.0.0.0/24", 20, 2))]);
    assert_eq!(puts(&ops), ["del 10.0.0.0/24"]);
    assert_eq!(m.installed(), 0);
}

/// A link going down takes its routes with it, the other link's stay.
#[test]
fn link_down_and_removed() {
    let mut m = Mirror::default();
    m.resync(
        vec![link(2, "v0", true), link(3, "v1", true)],
        vec![
            kr("10.0.0.0/24", 0, 2),
            kr("10.1.0.0/24", 0, 3),
            kr("10.1.0.0/24", 5, 2),
        ],
    );
    let ops = m.apply(vec![Change::Link(link(2, "v0", false))]);
    assert_eq!(puts(&ops), ["del 10.0.0.0/24"]);
    let ops = m.apply(vec![Change::LinkRemoved(3)]);
    assert_eq!(puts(&ops), ["del 10.1.0.0/24"]);
}

/// A re-dump sweeps what the kernel no longer has and adds what was missed.
#[test]
fn resync_is_mark_and_sweep() {
    let mut m = Mirror::default();
    m.resync(vec![link(2, "v0", true)], vec![kr("10.0.0.0/24", 0, 2)]);
    let ops = m.resync(vec![link(2, "v0", true)], vec![kr("10.2.0.0/24", 0, 2)]);
    assert_eq!(
        puts(&ops),
        ["del 10.0.0.0/24", "put 10.2.0.0/24 dev v0 origin kernel"]
    );
    let ops = m.resync(vec![link(2, "v0", true)], vec![kr("10.2.0.0/24", 0, 2)]);
    assert!(ops.is_empty());
}

/// After a restart of rtmd the kernel routes rtm kept (from its state directory) are
/// adopted: the first dump sweeps those the kernel lost meanwhile and keeps the others.
#[test]
fn adopted_routes_are_swept_by_the_first_dump() {
    let kept = |dst: &str| Route {
        dst: dst.parse().unwrap(),
        via: None,
        dev: Some("v0".parse().unwrap()),
        metric: 0,
        nexthops: Vec::new(),
        origin: Origin::Kernel,
    };
    let mut m = Mirror::default();
    m.adopt(vec![kept("10.0.0.0/24"), kept("10.9.0.0/24")]);
    let ops = m.resync(vec![link(2, "v0", true)], vec![kr("10.0.0.0/24", 0, 2)]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
    assert_eq!(m.installed(), 1);
}

fn mp(dst: &str, priority: u32, paths: &[(&str, u32, u16)]) -> KernelRoute {
    KernelRoute {
        dst: dst.parse().unwrap(),
        tos: 0,
        priority,
        via: None,
        oif: None,
        nexthops: paths
            .iter()
            .map(|(via, oif, weight)| KernelHop {
                via: Some(via.parse().unwrap()),
                oif: *oif,
                weight: *weight,
                dead: false,
            })
            .collect(),
        protocol: 3,
        nhid: None,
    }
}

const AB: [(&str, u32, u16); 2] = [("192.0.2.2", 2, 1), ("198.51.100.2", 3, 3)];
const BOTH: &str =
    "put 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 1 nexthop via 198.51.100.2 dev vb weight 3 origin kernel";

fn two_links() -> Vec<Link> {
    vec![link(2, "va", true), link(3, "vb", true)]
}

/// A multipath route is mirrored with its paths; a replace with other weights updates it.
#[test]
fn multipath_mirrored_and_replaced() {
    let mut m = Mirror::default();
    let ops = m.resync(two_links(), vec![mp("10.50.0.0/24", 0, &AB)]);
    assert_eq!(puts(&ops), [BOTH]);
    let ops = m.apply(vec![Change::RouteAdded(
        mp(
            "10.50.0.0/24",
            0,
            &[("192.0.2.2", 2, 2), ("198.51.100.2", 3, 5)],
        ),
        Placed::Replacing,
    )]);
    assert_eq!(
        puts(&ops),
        ["put 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 2 nexthop via 198.51.100.2 dev vb weight 5 origin kernel"]
    );
    let ops = m.apply(vec![Change::RouteRemoved(mp(
        "10.50.0.0/24",
        0,
        &[("192.0.2.2", 2, 2), ("198.51.100.2", 3, 5)],
    ))]);
    assert_eq!(puts(&ops), ["del 10.50.0.0/24"]);
}

/// A link going down kills its paths (one left: an ordinary route), coming up revives
/// them; with every path dead the route is gone and does not come back.
#[test]
fn link_down_kills_paths_and_up_revives_them() {
    let mut m = Mirror::default();
    m.resync(two_links(), vec![mp("10.50.0.0/24", 0, &AB)]);
    let ops = m.apply(vec![Change::Link(link(2, "va", false))]);
    assert_eq!(
        puts(&ops),
        ["put 10.50.0.0/24 via 198.51.100.2 dev vb origin kernel"]
    );
    let ops = m.apply(vec![Change::Link(link(2, "va", true))]);
    assert_eq!(puts(&ops), [BOTH]);
    // Up again and again (a carrier or MTU change) changes nothing.
    assert!(m.apply(vec![Change::Link(link(2, "va", true))]).is_empty());
    let ops = m.apply(vec![
        Change::Link(link(2, "va", false)),
        Change::Link(link(3, "vb", false)),
    ]);
    assert_eq!(puts(&ops), ["del 10.50.0.0/24"]);
    assert!(m
        .apply(vec![
            Change::Link(link(2, "va", true)),
            Change::Link(link(3, "vb", true))
        ])
        .is_empty());
    assert_eq!(m.kernel_routes(), 0);
}

/// A link deleted takes every route with a path over it, whole.
#[test]
fn link_removed_takes_the_whole_route() {
    let mut m = Mirror::default();
    m.resync(
        two_links(),
        vec![mp("10.50.0.0/24", 0, &AB), kr("10.51.0.0/24", 0, 2)],
    );
    let ops = m.apply(vec![Change::LinkRemoved(3)]);
    assert_eq!(puts(&ops), ["del 10.50.0.0/24"]);
}

/// A dump's dead paths (and those over a link it lists down) are left out.
#[test]
fn dumped_dead_paths_are_left_out() {
    let mut r = mp("10.50.0.0/24", 0, &AB);
    r.nexthops[1].dead = true;
    let mut m = Mirror::default();
    let ops = m.resync(two_links(), vec![r]);
    assert_eq!(
        puts(&ops),
        ["put 10.50.0.0/24 via 192.0.2.2 dev va origin kernel"]
    );
    let mut m = Mirror::default();
    let ops = m.resync(
        vec![link(2, "va", false), link(3, "vb", true)],
        vec![mp("10.50.0.0/24", 0, &AB)],
    );
    assert_eq!(
        puts(&ops),
        ["put 10.50.0.0/24 via 198.51.100.2 dev vb origin kernel"]
    );
    // The link coming up revives the path the dump had dead.
    let ops = m.apply(vec![Change::Link(link(2, "va", true))]);
    assert_eq!(puts(&ops), [BOTH]);
}

/// A path over a link the mirror does not know: the kernel forwards with that route, so
/// rtm holds nothing for the prefix (not the next metric); the warning is given once, not
/// at every event of the prefix; the link becoming known (its event, or a dump) maps it.
#[test]
fn unnamed_path_holds_nothing() {
    let mut m = Mirror::default();
    let ops = m.resync(
        two_links(),
        vec![
            mp(
                "10.50.0.0/24",
                0,
                &[("192.0.2.2", 2, 1), ("192.0.2.3", 9, 1)],
            ),
            kr("10.50.0.0/24", 10, 3),
        ],
    );
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    assert_eq!(m.unmapped.len(), 1);
    let ops = m.apply(vec![Change::RouteAdded(
        kr("10.50.0.0/24", 20, 3),
        Placed::First,
    )]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    let all = "put 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 1 nexthop via 192.0.2.3 dev vc weight 1 origin kernel";
    let ops = m.apply(vec![Change::Link(link(9, "vc", true))]);
    assert_eq!(puts(&ops), [all]);
    assert!(m.unmapped.is_empty());
    let mut m = Mirror::default();
    m.resync(
        two_links(),
        vec![
            mp(
                "10.50.0.0/24",
                0,
                &[("192.0.2.2", 2, 1), ("192.0.2.3", 9, 1)],
            ),
            kr("10.50.0.0/24", 10, 3),
        ],
    );
    let ops = m.resync(
        vec![
            link(2, "va", true),
            link(3, "vb", true),
            link(9, "vc", true),
        ],
        vec![
            mp(
                "10.50.0.0/24",
                0,
                &[("192.0.2.2", 2, 1), ("192.0.2.3", 9, 1)],
            ),
            kr("10.50.0.0/24", 10, 3),
        ],
    );
    assert_eq!(puts(&ops), [all]);
    assert!(m.unmapped.is_empty());
}

/// A route rtm does not carry (`encap …`), over link `oif`.
fn encap(dst: &str, priority: u32, oif: u32) -> Uncarried {
    Uncarried {
        dst: dst.parse().unwrap(),
        tos: 0,
        priority,
        protocol: 3,
        why: Skip::Encap,
        kind: 1,
        nhid: None,
        via: None,
        oif: Some(oif),
        nexthops: Vec::new(),
    }
}

fn via(dst: &str, priority: u32, gw: &str, oif: u32) -> KernelRoute {
    KernelRoute {
        via: Some(gw.parse().unwrap()),
        ..kr(dst, priority, oif)
    }
}

const P: &str = "10.9.0.0/24";

/// A: `P via 192.0.2.2 dev va metric 5`, the route the tests below start from.
fn with_a() -> Mirror {
    let mut m = Mirror::default();
    let ops = m.resync(two_links(), vec![via(P, 5, "192.0.2.2", 2)]);
    assert_eq!(puts(&ops), [put_a()]);
    m
}

fn put_a() -> String {
    "put 10.9.0.0/24 via 192.0.2.2 dev va metric 5 origin kernel".into()
}

fn put_b() -> String {
    "put 10.9.0.0/24 via 198.51.100.2 dev vb metric 5 origin kernel".into()
}

fn b() -> KernelRoute {
    via(P, 5, "198.51.100.2", 3)
}

/// An appended route goes after the first: the kernel goes on forwarding with the first,
/// and so does rtm; it is promoted when the first is deleted.
#[test]
fn append_keeps_the_first() {
    let mut m = with_a();
    let ops = m.apply(vec![Change::RouteAdded(b(), Placed::Last)]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    assert_eq!(m.kernel_routes(), 2);
    let ops = m.apply(vec![Change::RouteRemoved(via(P, 5, "192.0.2.2", 2))]);
    assert_eq!(puts(&ops), [put_b()]);
    let ops = m.apply(vec![Change::RouteRemoved(b())]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
    assert_eq!(m.kernel_routes(), 0);
}

/// A carried route prepended (or added) goes before the first: rtm takes it; deleting
/// the second (the old first) changes nothing, deleting it brings nothing back.
#[test]
fn prepend_carried_takes_over() {
    let mut m = with_a();
    let ops = m.apply(vec![Change::RouteAdded(b(), Placed::First)]);
    assert_eq!(puts(&ops), [put_b()]);
    let ops = m.apply(vec![Change::RouteRemoved(via(P, 5, "192.0.2.2", 2))]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    let ops = m.apply(vec![Change::RouteRemoved(b())]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
}

/// An uncarried route (an encap) prepended: the kernel forwards with it, rtm holds nothing
/// for the prefix (not the next metric either); the carried one is kept behind it and
/// comes back when the encap route is deleted.
#[test]
fn prepend_uncarried_holds_nothing_then_gives_back() {
    let mut m = with_a();
    m.apply(vec![Change::RouteAdded(
        via(P, 9, "198.51.100.9", 3),
        Placed::First,
    )]);
    let ops = m.apply(vec![Change::UncarriedAdded(encap(P, 5, 3), Placed::First)]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
    assert_eq!(m.kernel_routes(), 2);
    let ops = m.apply(vec![Change::UncarriedRemoved(encap(P, 5, 3))]);
    assert_eq!(puts(&ops), [put_a()]);
    // Appended, it changes nothing.
    let ops = m.apply(vec![Change::UncarriedAdded(encap(P, 5, 3), Placed::Last)]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    // The first deleted: the kernel forwards with the encap route behind it.
    let ops = m.apply(vec![Change::RouteRemoved(via(P, 5, "192.0.2.2", 2))]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
    // Its link going down takes it (the kernel flushes it without an event): metric 9
    // is next, but it is over that link too; the link back up brings nothing.
    let ops = m.apply(vec![Change::Link(link(3, "vb", false))]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    assert_eq!(m.kernel_routes(), 0);
}

/// An uncarried route at the lowest key found by a dump: rtm holds nothing for its
/// prefix; its link going down (the kernel flushes it) promotes what is left.
#[test]
fn dumped_uncarried_first_holds_nothing() {
    let mut m = Mirror::default();
    let ops = m.resync(
        two_links(),
        vec![
            Parsed::Uncarried(encap(P, 5, 3)),
            via(P, 5, "192.0.2.2", 2).into(),
            via(P, 9, "192.0.2.9", 2).into(),
        ],
    );
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    let ops = m.apply(vec![Change::Link(link(3, "vb", false))]);
    assert_eq!(puts(&ops), [put_a()]);
}

/// A replace takes the place of the first route at its key, the others stay behind it.
#[test]
fn replace_takes_the_first_place() {
    let mut m = with_a();
    m.apply(vec![Change::RouteAdded(b(), Placed::Last)]);
    let c = via(P, 5, "192.0.2.4", 2);
    let ops = m.apply(vec![Change::RouteAdded(c.clone(), Placed::Replacing)]);
    assert_eq!(
        puts(&ops),
        ["put 10.9.0.0/24 via 192.0.2.4 dev va metric 5 origin kernel"]
    );
    assert_eq!(m.kernel_routes(), 2);
    // A is gone: deleting it (had the mirror kept it) changes nothing.
    assert!(m
        .apply(vec![Change::RouteRemoved(via(P, 5, "192.0.2.2", 2))])
        .is_empty());
    let ops = m.apply(vec![Change::RouteRemoved(c)]);
    assert_eq!(puts(&ops), [put_b()]);
    // Replaced by an uncarried route: rtm holds nothing, and its deletion leaves none.
    let ops = m.apply(vec![Change::UncarriedAdded(
        encap(P, 5, 2),
        Placed::Replacing,
    )]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
    assert!(m
        .apply(vec![Change::UncarriedRemoved(encap(P, 5, 2))])
        .is_empty());
    assert_eq!(m.kernel_routes(), 0);
}

/// Deleting the second route at a key leaves the first in rtm; deleting the first
/// promotes the second. An event heard twice (already in the dump) changes nothing.
#[test]
fn delete_first_or_second_and_events_heard_twice() {
    let mut m = Mirror::default();
    m.resync(two_links(), vec![via(P, 5, "192.0.2.2", 2), b()]);
    let ops = m.apply(vec![Change::RouteRemoved(b())]);
    assert!(ops.is_empty(), "{:?}", puts(&ops));
    assert!(m.apply(vec![Change::RouteRemoved(b())]).is_empty());
    assert_eq!(m.kernel_routes(), 1);

    let mut m = Mirror::default();
    m.resync(two_links(), vec![via(P, 5, "192.0.2.2", 2), b()]);
    // The append the dump already showed: not a second copy.
    assert!(m
        .apply(vec![Change::RouteAdded(b(), Placed::Last)])
        .is_empty());
    assert_eq!(m.kernel_routes(), 2);
    let ops = m.apply(vec![Change::RouteRemoved(via(P, 5, "192.0.2.2", 2))]);
    assert_eq!(puts(&ops), [put_b()]);
    let ops = m.apply(vec![Change::RouteRemoved(b())]);
    assert_eq!(puts(&ops), ["del 10.9.0.0/24"]);
}

mod objects;
