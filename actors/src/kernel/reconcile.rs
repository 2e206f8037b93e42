//! What the mirror knows of the kernel, and what it has put into rtm's route table.
//!
//! The kernel keys a route by (table, prefix, tos, priority); rtm by prefix. The mirror keeps
//! every carried kernel route of its table per prefix, ordered by (priority, tos), and puts
//! into rtm the first one it can name (every output link known): the one the kernel forwards
//! with. When that one goes, the next one is promoted. Every change is computed as a difference
//! between what rtm should hold (from the kernel's routes) and what the mirror has put there
//! (`installed`), so an event, a link going down and a whole re-dump (mark and sweep after
//! ENOBUFS) all end the same way: rtm's kernel routes equal the kernel's.
//!
//! A multipath route is put into rtm with the paths the kernel forwards over: those it marks
//! dead (`RTNH_F_DEAD`, their link is down) are left out. The kernel sends no route event when
//! a link goes down, comes up or goes away, so the mirror does what the kernel does then
//! (`fib_sync_down_dev`, `fib_sync_up`): a link set down kills its paths, and a route whose
//! every path is dead is gone (the kernel flushes it); a link set up again revives the dead
//! paths over it of the routes still there; a link deleted takes every route with a path over
//! it, whole. The carrier (`linkdown` without `dead`) changes nothing: the kernel still
//! forwards over such a path unless `ignore_routes_with_linkdown` is set.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rtm_proto::types::Prefix;
use rtm_proto::{Origin, Route};
use tracing::warn;

use super::netlink::{Change, KernelRoute, Link};
use crate::table::TableOp;

#[derive(Debug, Default)]
pub struct Mirror {
    /// The kernel's carried routes, per prefix, by (priority, tos).
    routes: HashMap<Prefix, BTreeMap<(u32, u8), KernelRoute>>,
    links: HashMap<u32, Link>,
    /// What the mirror has put into rtm's table, per prefix.
    installed: HashMap<Prefix, Route>,
}

impl Mirror {
    /// Routes the kernel has in the mirrored table that rtm carries (all priorities).
    pub fn kernel_routes(&self) -> usize {
        self.routes.values().map(BTreeMap::len).sum()
    }

    /// Prefixes the mirror has put into rtm.
    pub fn installed(&self) -> usize {
        self.installed.len()
    }

    /// What rtm's table holds of the kernel's, before a dump is reconciled against it: the
    /// routes of kernel origin there now (those an rtmd before a restart mirrored, less those
    /// an operator overrode since) are what the mirror has put there, so the dump's sweep
    /// removes those the kernel no longer has.
    pub fn adopt(&mut self, in_rtm: Vec<Route>) {
        self.installed = in_rtm.into_iter().map(|r| (r.dst, r)).collect();
    }

    /// The route rtm should hold for `dst`: the lowest (priority, tos) one rtm can hold, with
    /// the paths the kernel forwards over.
    fn wanted(&self, dst: Prefix) -> Option<Route> {
        let name = |i: u32| self.links.get(&i).map(|l| l.name.clone());
        self.routes
            .get(&dst)?
            .values()
            .find_map(|k| match k.to_route(name, true, Origin::Kernel) {
                Ok(r) => r,
                Err(why) => {
                    warn!(
                        prefix = %dst,
                        metric = k.priority,
                        "kernel route not mirrored: {why}"
                    );
                    None
                }
            })
    }

    /// The operations that bring rtm's table to what the mirror wants for `touched`; records
    /// them as installed.
    fn ops(&mut self, touched: impl IntoIterator<Item = Prefix>) -> Vec<TableOp<Route>> {
        let mut ops = Vec::new();
        for dst in touched.into_iter().collect::<BTreeSet<_>>() {
            let want = self.wanted(dst);
            if want.as_ref() == self.installed.get(&dst) {
                continue;
            }
            match want {
                Some(r) => {
                    self.installed.insert(dst, r.clone());
                    ops.push(TableOp::Replace(r));
                }
                None => {
                    self.installed.remove(&dst);
                    ops.push(TableOp::Del(dst));
                }
            }
        }
        ops
    }

    /// A refused operation: the mirror forgets it put anything there, so the next re-dump or
    /// event for that prefix tries again.
    pub fn refused(&mut self, op: &TableOp<Route>) {
        match op {
            TableOp::Replace(r) | TableOp::Add(r) | TableOp::Change(r) => {
                self.installed.remove(&r.dst);
            }
            TableOp::Del(_) | TableOp::Flush => {}
        }
    }

    /// The kernel's whole state (a dump): mark every prefix the mirror has installed or the
    /// kernel has, and sweep what is no longer wanted.
    pub fn resync(&mut self, links: Vec<Link>, routes: Vec<KernelRoute>) -> Vec<TableOp<Route>> {
        self.links = links.into_iter().map(|l| (l.index, l)).collect();
        self.routes.clear();
        for mut r in routes {
            // A path over a link that is down is dead, whatever the dump said a moment before.
            let down = |i: u32| self.links.get(&i).is_some_and(|l| !l.up);
            if r.oif.is_some_and(down) {
                continue;
            }
            for h in &mut r.nexthops {
                h.dead |= down(h.oif);
            }
            if !r.alive() {
                continue;
            }
            self.routes
                .entry(r.dst)
                .or_default()
                .insert((r.priority, r.tos), r);
        }
        let marked: Vec<Prefix> = self
            .installed
            .keys()
            .chain(self.routes.keys())
            .copied()
            .collect();
        self.ops(marked)
    }

    /// Events, in the order the kernel sent them.
    pub fn apply(&mut self, changes: Vec<Change>) -> Vec<TableOp<Route>> {
        let mut touched = Vec::new();
        for c in changes {
            match c {
                Change::RouteAdded(r) => {
                    touched.push(r.dst);
                    self.routes
                        .entry(r.dst)
                        .or_default()
                        .insert((r.priority, r.tos), r);
                }
                Change::RouteRemoved(r) => {
                    touched.push(r.dst);
                    self.forget(r.dst, (r.priority, r.tos));
                }
                Change::Uncarried { route, replaces } => {
                    // The kernel's route at this key is now one rtm does not carry: the one
                    // it replaced (if carried) is no longer what the kernel forwards with.
                    if replaces {
                        touched.push(route.dst);
                        self.forget(route.dst, (route.priority, route.tos));
                    }
                }
                Change::Link(l) => {
                    let old = self.links.insert(l.index, l.clone());
                    let renamed = old.is_some_and(|o| o.name != l.name);
                    if !l.up {
                        // The kernel kills a downed link's paths without RTM_DELROUTE.
                        touched.extend(self.link_down(l.index));
                    } else {
                        // And revives them when it comes up (the routes still there).
                        touched.extend(self.link_up(l.index));
                        if renamed {
                            touched.extend(self.link_routes(l.index));
                        }
                    }
                }
                Change::LinkRemoved(i) => {
                    self.links.remove(&i);
                    touched.extend(self.link_removed(i));
                }
                Change::Ignored => {}
            }
        }
        self.ops(touched)
    }

    /// Forgets the kernel's route at `key` of `dst`.
    fn forget(&mut self, dst: Prefix, key: (u32, u8)) {
        if let Some(m) = self.routes.get_mut(&dst) {
            m.remove(&key);
            if m.is_empty() {
                self.routes.remove(&dst);
            }
        }
    }

    /// The prefixes with a route that has a path over link `index`.
    fn link_routes(&self, index: u32) -> Vec<Prefix> {
        self.routes
            .iter()
            .filter(|(_, m)| m.values().any(|r| r.uses_link(index)))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Link `index` went down: its single-path routes go, its paths of multipath routes die,
    /// and a multipath route left with no live path goes. Returns the prefixes touched.
    fn link_down(&mut self, index: u32) -> Vec<Prefix> {
        self.retain_link_routes(index, |r| {
            if r.nexthops.is_empty() {
                return false;
            }
            for h in &mut r.nexthops {
                h.dead |= h.oif == index;
            }
            r.alive()
        })
    }

    /// Link `index` came up: the dead paths over it live again. Returns the prefixes touched.
    fn link_up(&mut self, index: u32) -> Vec<Prefix> {
        let mut touched = Vec::new();
        for (p, m) in &mut self.routes {
            let mut revived = false;
            for h in m.values_mut().flat_map(|r| r.nexthops.iter_mut()) {
                if h.oif == index && h.dead {
                    h.dead = false;
                    revived = true;
                }
            }
            if revived {
                touched.push(*p);
            }
        }
        touched
    }

    /// Link `index` is gone: every route with a path over it goes, whole (as the kernel does
    /// when a link is unregistered). Returns the prefixes touched.
    fn link_removed(&mut self, index: u32) -> Vec<Prefix> {
        self.retain_link_routes(index, |_| false)
    }

    /// Passes each route with a path over link `index` to `keep` (which may change it) and
    /// forgets those it refuses; returns their prefixes.
    fn retain_link_routes(
        &mut self,
        index: u32,
        mut keep: impl FnMut(&mut KernelRoute) -> bool,
    ) -> Vec<Prefix> {
        let touched = self.link_routes(index);
        for p in &touched {
            if let Some(m) = self.routes.get_mut(p) {
                m.retain(|_, r| !r.uses_link(index) || keep(r));
                if m.is_empty() {
                    self.routes.remove(p);
                }
            }
        }
        touched
    }
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{KernelHop, Skip, Uncarried};
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
        }
    }

    fn link(index: u32, name: &str, up: bool) -> Link {
        Link {
            index,
            name: name.into(),
            up,
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
        let ops = m.apply(vec![Change::RouteAdded(mp(
            "10.50.0.0/24",
            0,
            &[("192.0.2.2", 2, 2), ("198.51.100.2", 3, 5)],
        ))]);
        assert_eq!(
            puts(&ops),
            ["put 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 2 nexthop via 198.51.100.2 dev vb weight 5 origin kernel"]
        );
        let ops = m.apply(vec![Change::RouteRemoved(mp("10.50.0.0/24", 0, &AB))]);
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

    /// A path over a link the mirror does not know: that route is not mirrored, the next
    /// metric is.
    #[test]
    fn unnamed_path_skips_to_the_next_route() {
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
        assert_eq!(
            puts(&ops),
            ["put 10.50.0.0/24 dev vb metric 10 origin kernel"]
        );
    }

    /// An uncarried route (nhid) replacing the mirrored one takes it out of rtm and the next
    /// metric is promoted; one appended beside it changes nothing.
    #[test]
    fn uncarried_replacement_forgets_the_key() {
        let mut m = Mirror::default();
        m.resync(
            two_links(),
            vec![mp("10.50.0.0/24", 0, &AB), kr("10.50.0.0/24", 10, 3)],
        );
        let u = Uncarried {
            dst: "10.50.0.0/24".parse().unwrap(),
            tos: 0,
            priority: 0,
            protocol: 3,
            why: Skip::NhId,
        };
        let ops = m.apply(vec![Change::Uncarried {
            route: u.clone(),
            replaces: false,
        }]);
        assert!(ops.is_empty());
        let ops = m.apply(vec![Change::Uncarried {
            route: u,
            replaces: true,
        }]);
        assert_eq!(
            puts(&ops),
            ["put 10.50.0.0/24 dev vb metric 10 origin kernel"]
        );
    }
}
