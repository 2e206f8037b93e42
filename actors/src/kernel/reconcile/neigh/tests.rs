use super::*;

fn links(l: &[(u32, &str)]) -> HashMap<u32, Link> {
    l.iter()
        .map(|&(index, name)| (index, link(index, name, true)))
        .collect()
}

fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        index,
        name: name.into(),
        up,
        carrier: up,
    }
}

fn kn(ip: &str, ifindex: u32, mac: &str) -> KernelNeighbour {
    KernelNeighbour {
        ip: ip.parse().unwrap(),
        ifindex,
        mac: mac.parse().unwrap(),
    }
}

fn put(ip: &str, dev: &str, mac: &str) -> NeighChange {
    NeighChange::Put(Neighbour {
        ip: ip.parse().unwrap(),
        dev: dev.parse().unwrap(),
        mac: mac.parse().unwrap(),
        origin: Origin::Kernel,
    })
}

fn del(ip: &str, dev: &str) -> NeighChange {
    NeighChange::Del(NeighKey {
        ip: ip.parse().unwrap(),
        dev: dev.parse().unwrap(),
    })
}

const M1: &str = "02:00:00:00:00:01";
const M2: &str = "02:00:00:00:00:02";
const M3: &str = "02:00:00:00:00:03";

/// Changes in a stable order for comparison (deletions still before puts).
fn sorted(mut c: Vec<NeighChange>) -> Vec<NeighChange> {
    c.sort_by_key(|c| (matches!(c, NeighChange::Put(_)), c.key()));
    c
}

#[test]
fn reconcile_marks_and_sweeps() {
    let l = links(&[(2, "eth0"), (3, "eth1")]);
    let mut n = Neighbours::default();
    let first = n.reconcile(
        vec![
            kn("10.0.0.1", 2, M1),
            kn("10.0.0.2", 2, M2),
            kn("10.0.0.3", 3, M3),
        ],
        &l,
    );
    assert_eq!(
        sorted(first),
        [
            put("10.0.0.1", "eth0", M1),
            put("10.0.0.2", "eth0", M2),
            put("10.0.0.3", "eth1", M3)
        ]
    );
    assert_eq!(n.held(), 3);

    // The same dump again: nothing.
    let again = n.reconcile(
        vec![
            kn("10.0.0.3", 3, M3),
            kn("10.0.0.1", 2, M1),
            kn("10.0.0.2", 2, M2),
        ],
        &l,
    );
    assert_eq!(again, []);

    // One gone, one changed, one new, one unchanged.
    let next = n.reconcile(
        vec![
            kn("10.0.0.1", 2, M1),
            kn("10.0.0.2", 2, M3),
            kn("10.0.0.4", 3, M1),
        ],
        &l,
    );
    assert_eq!(
        next,
        [
            del("10.0.0.3", "eth1"),
            put("10.0.0.2", "eth0", M3),
            put("10.0.0.4", "eth1", M1)
        ]
    );
    assert_eq!(n.held(), 3);
    assert!(n.installed().all(|x| x.origin == Origin::Kernel));
}

/// After a restart, what rtm kept is adopted; the dump then deletes what the kernel lost,
/// also under a link that no longer exists.
#[test]
fn adopted_neighbours_are_swept_by_the_dump() {
    let l = links(&[(2, "eth0")]);
    let mut n = Neighbours::default();
    let kept = |c: NeighChange| match c {
        NeighChange::Put(x) => x,
        NeighChange::Del(_) => unreachable!(),
    };
    n.adopt(
        vec![
            kept(put("10.0.0.1", "eth0", M1)),
            kept(put("10.0.0.2", "eth0", M2)),
            kept(put("10.0.0.9", "gone0", M2)),
        ],
        &l,
    );
    let c = n.reconcile(vec![kn("10.0.0.1", 2, M1)], &l);
    assert_eq!(
        sorted(c),
        [del("10.0.0.2", "eth0"), del("10.0.0.9", "gone0")]
    );
    assert_eq!(n.held(), 1);
}

/// One IP on several links that are all gone: each is deleted, none hides another.
#[test]
fn orphans_with_one_address_are_each_deleted() {
    let l = links(&[(2, "eth0")]);
    let mut n = Neighbours::default();
    let orphan = |dev: &str| Neighbour {
        ip: "169.254.1.1".parse().unwrap(),
        dev: dev.parse().unwrap(),
        mac: M1.parse().unwrap(),
        origin: Origin::Kernel,
    };
    n.adopt(vec![orphan("cali1"), orphan("cali2"), orphan("cali3")], &l);
    let c = n.reconcile(Vec::new(), &l);
    assert_eq!(
        sorted(c),
        [
            del("169.254.1.1", "cali1"),
            del("169.254.1.1", "cali2"),
            del("169.254.1.1", "cali3")
        ]
    );
}

/// What rtm lost (a flush, a table restart) is put back by the next re-dump: adopting what
/// rtm holds replaces what the mirror remembered.
#[test]
fn a_redump_puts_back_what_rtm_lost() {
    let l = links(&[(2, "eth0")]);
    let mut n = Neighbours::default();
    let dump = || vec![kn("10.0.0.1", 2, M1), kn("10.0.0.2", 2, M2)];
    assert_eq!(n.reconcile(dump(), &l).len(), 2);
    n.adopt(Vec::new(), &l);
    assert_eq!(
        sorted(n.reconcile(dump(), &l)),
        [put("10.0.0.1", "eth0", M1), put("10.0.0.2", "eth0", M2)]
    );
    n.adopt(
        vec![Neighbour {
            ip: "10.0.0.1".parse().unwrap(),
            dev: "eth0".parse().unwrap(),
            mac: M1.parse().unwrap(),
            origin: Origin::Kernel,
        }],
        &l,
    );
    assert_eq!(
        sorted(n.reconcile(dump(), &l)),
        [put("10.0.0.2", "eth0", M2)]
    );
}

#[test]
fn state_flips_change_nothing() {
    let l = links(&[(2, "eth0")]);
    let mut n = Neighbours::default();
    let e = NeighEvent::Put(kn("10.0.0.1", 2, M1));
    assert_eq!(n.event(e, &l), [put("10.0.0.1", "eth0", M1)]);
    // REACHABLE → STALE → PROBE → REACHABLE: the same MAC each time.
    for _ in 0..3 {
        assert_eq!(n.event(e, &l), []);
    }
    // A new MAC is an update.
    let moved = NeighEvent::Put(kn("10.0.0.1", 2, M2));
    assert_eq!(n.event(moved, &l), [put("10.0.0.1", "eth0", M2)]);
}

/// FAILED arrives as a `Del`; an entry re-typed so it is no neighbour any more as a skip
/// that ends it; a proxy entry at the same key ends nothing.
#[test]
fn failed_and_ending_skips_delete_the_key_and_proxies_do_not() {
    let l = links(&[(2, "eth0")]);
    let ip: Ipv4Addr = "10.0.0.1".parse().unwrap();
    let mut n = Neighbours::default();
    n.event(NeighEvent::Put(kn("10.0.0.1", 2, M1)), &l);
    assert_eq!(
        n.event(NeighEvent::Skipped(NeighSkip::Proxy, ip, 2), &l),
        []
    );
    assert_eq!(n.held(), 1);
    assert_eq!(
        n.event(NeighEvent::Del { ip, ifindex: 2 }, &l),
        [del("10.0.0.1", "eth0")]
    );
    // Deleting what is not there is nothing.
    assert_eq!(n.event(NeighEvent::Del { ip, ifindex: 2 }, &l), []);

    n.event(NeighEvent::Put(kn("10.0.0.1", 2, M1)), &l);
    assert_eq!(
        n.event(NeighEvent::Skipped(NeighSkip::ZeroMac, ip, 2), &l),
        [del("10.0.0.1", "eth0")]
    );
    assert_eq!(n.held(), 0);
    assert_eq!(n.kernel_neighbours(), 0);
}

#[test]
fn one_mac_for_several_addresses_is_kept_for_each() {
    let l = links(&[(2, "eth0")]);
    let mut n = Neighbours::default();
    let c = n.reconcile(
        vec![
            kn("10.0.0.1", 2, M1),
            kn("10.0.0.2", 2, M1),
            kn("10.0.0.3", 2, M1),
        ],
        &l,
    );
    assert_eq!(c.len(), 3);
    // One of them going leaves the others.
    let ip = "10.0.0.2".parse().unwrap();
    assert_eq!(
        n.event(NeighEvent::Del { ip, ifindex: 2 }, &l),
        [del("10.0.0.2", "eth0")]
    );
    assert_eq!(n.held(), 2);
}

#[test]
fn one_address_on_two_links_is_two_neighbours() {
    let l = links(&[(2, "eth0"), (3, "eth1")]);
    let mut n = Neighbours::default();
    n.event(NeighEvent::Put(kn("10.0.0.1", 2, M1)), &l);
    assert_eq!(
        n.event(NeighEvent::Put(kn("10.0.0.1", 3, M2)), &l),
        [put("10.0.0.1", "eth1", M2)]
    );
    assert_eq!(n.held(), 2);
    let ip = "10.0.0.1".parse().unwrap();
    assert_eq!(
        n.event(NeighEvent::Del { ip, ifindex: 3 }, &l),
        [del("10.0.0.1", "eth1")]
    );
    assert_eq!(
        n.installed().cloned().collect::<Vec<_>>(),
        [match put("10.0.0.1", "eth0", M1) {
            NeighChange::Put(x) => x,
            NeighChange::Del(_) => unreachable!(),
        }]
    );
}

#[test]
fn a_renamed_link_moves_its_neighbours() {
    let mut l = links(&[(2, "eth0"), (3, "eth1")]);
    let mut n = Neighbours::default();
    n.reconcile(vec![kn("10.0.0.1", 2, M1), kn("10.0.0.2", 3, M2)], &l);
    let renamed = link(2, "wan0", true);
    l.insert(2, renamed.clone());
    assert_eq!(
        n.link(&renamed),
        [del("10.0.0.1", "eth0"), put("10.0.0.1", "wan0", M1)]
    );
    // Heard again (any link event): nothing.
    assert_eq!(n.link(&renamed), []);
    // Its later events go by the new name.
    let ip = "10.0.0.1".parse().unwrap();
    assert_eq!(
        n.event(NeighEvent::Del { ip, ifindex: 2 }, &l),
        [del("10.0.0.1", "wan0")]
    );
    // The other link's neighbour is untouched.
    assert_eq!(n.held(), 1);
}

/// Two links swapping names (in one batch of events, applied one after the other, as the
/// mirror hears them): each step's deletions come before its puts.
#[test]
fn links_swapping_names() {
    let mut n = Neighbours::default();
    n.reconcile(
        vec![kn("10.0.0.1", 2, M1), kn("10.0.0.1", 3, M2)],
        &links(&[(2, "a"), (3, "b")]),
    );
    let c = n.reconcile(
        vec![kn("10.0.0.1", 2, M1), kn("10.0.0.1", 3, M2)],
        &links(&[(2, "b"), (3, "a")]),
    );
    assert_eq!(
        c,
        [
            del("10.0.0.1", "a"),
            del("10.0.0.1", "b"),
            put("10.0.0.1", "b", M1),
            put("10.0.0.1", "a", M2)
        ]
    );
}

#[test]
fn a_link_down_or_deleted_takes_its_neighbours() {
    let l = links(&[(2, "eth0"), (3, "eth1")]);
    let mut n = Neighbours::default();
    n.reconcile(
        vec![
            kn("10.0.0.1", 2, M1),
            kn("10.0.0.2", 2, M2),
            kn("10.0.0.3", 3, M3),
        ],
        &l,
    );
    // Down: its neighbours go, as the kernel deletes them (PERMANENT ones too).
    let down = n.link(&link(2, "eth0", false));
    assert_eq!(down, [del("10.0.0.1", "eth0"), del("10.0.0.2", "eth0")]);
    // The kernel's RTM_DELNEIGH for them, right after: nothing more.
    for ip in ["10.0.0.1", "10.0.0.2"] {
        let ip = ip.parse().unwrap();
        assert_eq!(n.event(NeighEvent::Del { ip, ifindex: 2 }, &l), []);
    }
    // Up again: nothing comes back by itself.
    assert_eq!(n.link(&link(2, "eth0", true)), []);

    // Deleted: its neighbours go.
    assert_eq!(n.link_removed(3), [del("10.0.0.3", "eth1")]);
    assert_eq!(n.held(), 0);
    assert_eq!(n.kernel_neighbours(), 0);
}

/// A neighbour on a link the mirror cannot name yet is not put into rtm until the link is
/// heard of.
#[test]
fn a_neighbour_waits_for_its_link_to_be_named() {
    let mut n = Neighbours::default();
    assert_eq!(
        n.event(NeighEvent::Put(kn("10.0.0.1", 7, M1)), &links(&[])),
        []
    );
    assert_eq!(n.kernel_neighbours(), 1);
    assert_eq!(
        n.link(&link(7, "eth7", true)),
        [put("10.0.0.1", "eth7", M1)]
    );
    // A name rtm's dev cannot hold: held no more.
    assert_eq!(
        n.link(&link(7, "a name far too long", true)),
        [del("10.0.0.1", "eth7")]
    );
    assert_eq!(n.kernel_neighbours(), 1);
}

#[test]
fn skips_are_summed_up_per_reason() {
    let ip = |s: &str| -> Ipv4Addr { s.parse().unwrap() };
    let s = skipped_summary(&[
        (NeighSkip::NoMac, ip("10.0.0.1"), 2),
        (NeighSkip::ZeroMac, ip("10.0.0.2"), 2),
        (NeighSkip::NoMac, ip("10.0.0.3"), 3),
    ]);
    assert_eq!(
        s,
        [
            (NeighSkip::NoMac, 2, ip("10.0.0.1"), 2),
            (NeighSkip::ZeroMac, 1, ip("10.0.0.2"), 2)
        ]
    );
}
