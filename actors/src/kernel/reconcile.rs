//! What the mirror knows of the kernel, and what it has put into rtm's route table.
//!
//! The kernel keys a route by (table, prefix, tos, priority), and may hold several routes at
//! one key, in an order of its own: `ip route append` puts one after those there (the kernel
//! goes on forwarding with the first), `ip route add`/`prepend` before them (the kernel
//! forwards with the new one), `ip route replace` in place of the first, and `ip route del`
//! takes one (its notification names which). rtm keys a route by prefix. The mirror keeps, per
//! prefix and per (priority, tos), the kernel's routes without a tos (the kernel looks past a
//! tos route for every other packet) in the kernel's order: the carried ones (a route through a
//! next-hop object by the object's id, whose content the mirror follows), and a placeholder for
//! each route rtm does not carry (`encap`, `blackhole`, …), and
//! applies every add, append, prepend, replace and delete as the kernel does. It puts into rtm
//! the route the kernel forwards with: the first one at the lowest key. If that one is not
//! carried (or rtm cannot name one of its links), rtm holds nothing for the prefix: the kernel
//! does not look past it, and rtm never holds a route the kernel does not forward with. Every
//! change is computed as a difference between what rtm should hold (from the kernel's routes)
//! and what the mirror has put there (`installed`), so an event, a link going down and a whole
//! re-dump (mark and sweep after ENOBUFS) all end the same way: rtm's kernel routes equal the
//! kernel's.
//!
//! A multipath route is put into rtm with the paths the kernel forwards over: those it marks
//! dead (`RTNH_F_DEAD`, their link is down) are left out. The kernel sends no route event when
//! a link goes down, comes up or goes away, so the mirror does what the kernel does then
//! (`fib_sync_down_dev`, `fib_sync_up`): a link set down kills its paths, and a route whose
//! every path is dead is gone (the kernel flushes it, and then goes on to the next route at
//! the prefix); a link set up again revives the dead paths over it of the routes still there;
//! a link deleted takes every route with a path over it, whole. Placeholders go the same way,
//! by the links their notification named. The carrier (`linkdown` without `dead`) changes
//! nothing: the kernel still forwards over such a path unless `ignore_routes_with_linkdown` is
//! set.

pub mod neigh;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rtm_proto::types::Prefix;
use rtm_proto::{Origin, Route};
use tracing::{debug, warn};

use super::netlink::nexthop::{NextHopObject, ObjectKind};
use super::netlink::{hops, Change, KernelHop, KernelRoute, Link, Parsed, Placed, Skip, Uncarried};
use crate::table::TableOp;

/// The kernel's key for a route of one prefix, in the mirror's order: (priority, tos).
type Key = (u32, u8);

/// What rtm makes of one kernel route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    Carried,
    /// Not carried, why, and what tells it from another route at its key.
    Uncarried {
        why: Skip,
        kind: u8,
    },
}

/// One kernel route at its place in the kernel's list: its paths (for a placeholder, those
/// its notification named) and whether rtm carries it.
#[derive(Debug, Clone)]
struct Entry {
    route: KernelRoute,
    held: Held,
}

impl Entry {
    fn carried(route: KernelRoute) -> Entry {
        Entry {
            route,
            held: Held::Carried,
        }
    }

    fn uncarried(u: Uncarried) -> Entry {
        Entry {
            route: KernelRoute {
                dst: u.dst,
                tos: u.tos,
                priority: u.priority,
                via: u.via,
                oif: u.oif,
                nexthops: u.nexthops,
                protocol: u.protocol,
                nhid: u.nhid,
            },
            held: Held::Uncarried {
                why: u.why,
                kind: u.kind,
            },
        }
    }

    fn key(&self) -> Key {
        (self.route.priority, self.route.tos)
    }

    /// Whether `other` is the same kernel route: the same paths (dead or not: the mirror
    /// marks them itself) or next-hop object, protocol and kind.
    fn same(&self, other: &Entry) -> bool {
        let (a, b) = (&self.route, &other.route);
        self.held == other.held
            && (a.via, a.oif, a.protocol, a.nhid) == (b.via, b.oif, b.protocol, b.nhid)
            && a.nexthops.len() == b.nexthops.len()
            && a.nexthops
                .iter()
                .zip(&b.nexthops)
                .all(|(x, y)| (x.via, x.oif, x.weight) == (y.via, y.oif, y.weight))
    }
}

/// Why the route the kernel forwards with for a prefix is not in rtm: at which key, and why.
type Unmapped = (Key, String);

/// Per next-hop object id, the prefixes with routes through it, and how many at each.
type Through = HashMap<u32, HashMap<Prefix, u32>>;

/// Counts `e` into (`add`) or out of the index of routes through objects.
fn count(through: &mut Through, e: &Entry, add: bool) {
    let Some(id) = e.route.nhid else {
        return;
    };
    if add {
        *through
            .entry(id)
            .or_default()
            .entry(e.route.dst)
            .or_default() += 1;
    } else if let Some(m) = through.get_mut(&id) {
        if let Some(c) = m.get_mut(&e.route.dst) {
            *c -= 1;
            if *c == 0 {
                m.remove(&e.route.dst);
            }
        }
        if m.is_empty() {
            through.remove(&id);
        }
    }
}

/// What next-hop objects resolved to, by id: the paths rtm names (empty: every one dead),
/// `None` for a blackhole, or why rtm cannot carry it.
type Resolved = HashMap<u32, Result<Option<Vec<rtm_proto::types::Hop>>, String>>;

#[derive(Debug, Default)]
pub struct Mirror {
    /// The kernel's routes of the table, per prefix, by (priority, tos), each list in the
    /// kernel's order (the first is the one it forwards with).
    routes: HashMap<Prefix, BTreeMap<Key, Vec<Entry>>>,
    links: HashMap<u32, Link>,
    /// The kernel's next-hop objects, by id: what an `nhid` route forwards over.
    objects: HashMap<u32, NextHopObject>,
    /// The routes through each object: per prefix, how many (an index of `routes`, so that an
    /// object's change or deletion finds its routes without a pass over the table).
    through: Through,
    /// The objects made or replaced by the latest run of next-hop events: the kernel's
    /// copies of the routes through them (`Placed::Refreshed`) come right after.
    recent: HashSet<u32>,
    /// What the mirror has put into rtm's table, per prefix.
    installed: HashMap<Prefix, Route>,
    /// Prefixes whose route rtm cannot hold (a link it cannot name), as last warned of: the
    /// warning is not repeated for every event of the prefix, only when it changes.
    unmapped: HashMap<Prefix, Unmapped>,
}

impl Mirror {
    /// Routes the kernel has in the mirrored table that rtm carries (all priorities).
    pub fn kernel_routes(&self) -> usize {
        self.entries().filter(|e| e.held == Held::Carried).count()
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.routes.values().flat_map(BTreeMap::values).flatten()
    }

    /// Prefixes the mirror has put into rtm.
    pub fn installed(&self) -> usize {
        self.installed.len()
    }

    /// Next-hop objects the kernel has.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// The kernel's whole set of next-hop objects (a dump), before the routes of the same
    /// dump are [resynced](Self::resync).
    pub fn objects(&mut self, objects: Vec<NextHopObject>) {
        self.objects = objects.into_iter().map(|o| (o.id, o)).collect();
    }

    /// What a route through next-hop object `id` forwards over: the object's next hop, or a
    /// group's members with their weights, in the kernel's order. `Ok(None)`: the object
    /// drops what it matches (a blackhole), so rtm holds nothing; `Err`: why rtm cannot carry
    /// it.
    fn object_paths(&self, id: u32) -> Result<Option<Vec<KernelHop>>, String> {
        let single = |id: u32| -> Result<Option<KernelHop>, String> {
            match self.objects.get(&id).map(|o| &o.kind) {
                None => Err(format!("its next-hop object {id} is not known")),
                Some(ObjectKind::Single { via, oif, dead }) => Ok(Some(KernelHop {
                    via: *via,
                    oif: *oif,
                    weight: 1,
                    dead: *dead,
                })),
                Some(ObjectKind::Blackhole) => Ok(None),
                Some(ObjectKind::Uncarried { why, .. }) => {
                    Err(format!("its next-hop object {id} is {why}"))
                }
                Some(ObjectKind::Group(_)) => {
                    Err(format!("next-hop object {id} is a group in a group"))
                }
            }
        };
        let mut paths = Vec::new();
        match self.objects.get(&id).map(|o| &o.kind) {
            Some(ObjectKind::Group(members)) => {
                if members.len() > rtm_proto::types::MAX_NEXTHOPS {
                    return Err(format!(
                        "its next-hop group {id} has {} members, more than rtm's 256",
                        members.len()
                    ));
                }
                for &(m, weight) in members {
                    let Some(h) = single(m)? else {
                        return Ok(None);
                    };
                    paths.push(KernelHop { weight, ..h });
                }
            }
            _ => {
                let Some(h) = single(id)? else {
                    return Ok(None);
                };
                // One next hop: a multipath route of one path, unless it is dead.
                paths.push(h);
            }
        }
        Ok(Some(paths))
    }

    /// What rtm's table holds of the kernel's, before a dump is reconciled against it: the
    /// routes of kernel origin there now (those an rtmd before a restart mirrored, less those
    /// an operator overrode since) are what the mirror has put there, so the dump's sweep
    /// removes those the kernel no longer has.
    pub fn adopt(&mut self, in_rtm: Vec<Route>) {
        self.installed = in_rtm.into_iter().map(|r| (r.dst, r)).collect();
    }

    /// The route rtm should hold for `dst`: the one the kernel forwards with (the first at
    /// the lowest key), with the paths it forwards over, if rtm can hold it. `Err` says why
    /// rtm holds nothing although the kernel forwards with a route it carries.
    /// `objects` keeps what each next-hop object resolved to, for the next route through it.
    fn wanted(&self, dst: Prefix, objects: &mut Resolved) -> Result<Option<Route>, Unmapped> {
        let name = |i: u32| self.links.get(&i).map(|l| l.name.clone());
        let Some(keys) = self.routes.get(&dst) else {
            return Ok(None);
        };
        for e in keys.values().flatten() {
            if e.held != Held::Carried {
                // The kernel forwards with (or rejects by) a route rtm does not carry.
                return Ok(None);
            }
            if let Some(id) = e.route.nhid {
                // What the object resolves to depends on the object alone: once per object
                // however many routes go through it (an FRR table has few objects under
                // many routes).
                let hops = objects.entry(id).or_insert_with(|| {
                    Ok(match self.object_paths(id)? {
                        Some(paths) => Some(hops(&paths, name, true)?),
                        None => None,
                    })
                });
                match hops {
                    Ok(Some(h)) if h.is_empty() => continue,
                    Ok(Some(h)) => {
                        let mut r = Route::multipath(dst, e.route.priority, h.clone());
                        r.origin = Origin::Kernel;
                        r.validate().map_err(|why| (e.key(), why.to_string()))?;
                        return Ok(Some(r));
                    }
                    // A blackhole object: the kernel drops, rtm holds nothing.
                    Ok(None) => return Ok(None),
                    Err(why) => return Err((e.key(), why.clone())),
                }
            }
            match e.route.to_route(name, true, Origin::Kernel) {
                Ok(Some(r)) => return Ok(Some(r)),
                // Every path dead: the kernel goes on to the next route.
                Ok(None) => continue,
                Err(why) => return Err((e.key(), why)),
            }
        }
        Ok(None)
    }

    /// The operations that bring rtm's table to what the mirror wants for `touched`; records
    /// them as installed.
    fn ops(&mut self, touched: impl IntoIterator<Item = Prefix>) -> Vec<TableOp<Route>> {
        let mut ops = Vec::new();
        let mut objects = Resolved::new();
        for dst in touched.into_iter().collect::<BTreeSet<_>>() {
            let want = match self.wanted(dst, &mut objects) {
                Ok(w) => {
                    self.unmapped.remove(&dst);
                    w
                }
                Err(u) => {
                    let ((metric, tos), why) = &u;
                    if self.unmapped.get(&dst) == Some(&u) {
                        debug!(prefix = %dst, metric, tos, "kernel route not mirrored: {why}");
                    } else {
                        warn!(
                            prefix = %dst,
                            metric,
                            tos,
                            "kernel route not mirrored, nor any other of its prefix: {why}"
                        );
                        self.unmapped.insert(dst, u);
                    }
                    None
                }
            };
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

    /// The kernel's whole state (a dump, in the kernel's order): mark every prefix the mirror
    /// has installed or the kernel has, and sweep what is no longer wanted.
    pub fn resync<P: Into<Parsed>>(
        &mut self,
        links: Vec<Link>,
        routes: impl IntoIterator<Item = P>,
    ) -> Vec<TableOp<Route>> {
        self.links = links.into_iter().map(|l| (l.index, l)).collect();
        self.routes.clear();
        self.through.clear();
        for p in routes {
            let mut e = match p.into() {
                Parsed::Route(r) => Entry::carried(r),
                Parsed::Uncarried(u) if !u.why.invisible() => Entry::uncarried(u),
                Parsed::Uncarried(_) | Parsed::Other => continue,
            };
            // A path over a link that is down is dead, whatever the dump said a moment before.
            let down = |i: u32| self.links.get(&i).is_some_and(|l| !l.up);
            if e.route.oif.is_some_and(down) {
                continue;
            }
            for h in &mut e.route.nexthops {
                h.dead |= down(h.oif);
            }
            if !e.route.alive() {
                continue;
            }
            count(&mut self.through, &e, true);
            self.list(e.route.dst, e.key()).push(e);
        }
        let marked: Vec<Prefix> = self
            .installed
            .keys()
            .chain(self.routes.keys())
            .chain(self.unmapped.keys())
            .copied()
            .collect();
        self.ops(marked)
    }

    /// The kernel's list of routes at (`dst`, `key`), made if need be.
    fn list(&mut self, dst: Prefix, key: Key) -> &mut Vec<Entry> {
        self.routes.entry(dst).or_default().entry(key).or_default()
    }

    /// Events, in the order the kernel sent them.
    pub fn apply(&mut self, changes: Vec<Change>) -> Vec<TableOp<Route>> {
        let mut touched = Vec::new();
        // Objects made or replaced: their routes are looked for once, after the batch.
        let mut renewed = HashSet::new();
        for c in changes {
            // A run of next-hop events ends at the first other event but their copies.
            match &c {
                Change::NextHop(_)
                | Change::RouteAdded(_, Placed::Refreshed)
                | Change::UncarriedAdded(_, Placed::Refreshed) => {}
                _ => self.recent.clear(),
            }
            match c {
                Change::RouteAdded(r, placed) => {
                    touched.push(r.dst);
                    self.add(Entry::carried(r), placed);
                }
                Change::RouteRemoved(r) => {
                    touched.push(r.dst);
                    self.remove(&Entry::carried(r));
                }
                Change::UncarriedAdded(u, placed) => {
                    if !u.why.invisible() {
                        touched.push(u.dst);
                        self.add(Entry::uncarried(u), placed);
                    }
                }
                Change::UncarriedRemoved(u) => {
                    if !u.why.invisible() {
                        touched.push(u.dst);
                        self.remove(&Entry::uncarried(u));
                    }
                }
                Change::NextHop(o) => {
                    renewed.insert(o.id);
                    self.recent.insert(o.id);
                    self.objects.insert(o.id, o);
                }
                Change::NextHopRemoved(id) => touched.extend(self.remove_objects(vec![id])),
                Change::Link(l) => {
                    let old = self.links.insert(l.index, l.clone());
                    // The kernel flushes the next-hop objects over a link set down or losing
                    // its carrier, and tells nobody (`nexthop_flush_dev`); none can be made
                    // over a link without one.
                    if !l.up || !l.carrier {
                        touched.extend(self.flush_link_objects(l.index));
                    }
                    // Renamed, or new to the mirror (a route over it may have come first, in
                    // a dump that listed the links before it was made): its routes, and those
                    // through its objects, are named anew.
                    let named = old.is_none_or(|o| o.name != l.name);
                    if named {
                        let over = self.objects_over(l.index);
                        touched.extend(self.object_users(&over));
                    }
                    if !l.up {
                        // The kernel kills a downed link's paths without RTM_DELROUTE.
                        touched.extend(self.link_down(l.index));
                    } else {
                        // And revives them when it comes up (the routes still there).
                        touched.extend(self.link_up(l.index));
                        if named {
                            touched.extend(self.link_routes(l.index));
                        }
                    }
                }
                Change::LinkRemoved(i) => {
                    self.links.remove(&i);
                    touched.extend(self.flush_link_objects(i));
                    touched.extend(self.link_removed(i));
                }
                Change::Ignored => {}
            }
        }
        if !renewed.is_empty() {
            touched.extend(self.object_users(&renewed));
        }
        self.ops(touched)
    }

    /// The prefixes with a route through one of the objects `ids`, or through a group with one
    /// of them as a member.
    fn object_users(&self, ids: &HashSet<u32>) -> Vec<Prefix> {
        let groups: HashSet<u32> = self
            .objects
            .values()
            .filter(|o| matches!(&o.kind, ObjectKind::Group(m) if m.iter().any(|(x, _)| ids.contains(x))))
            .map(|o| o.id)
            .collect();
        ids.iter()
            .chain(&groups)
            .filter_map(|id| self.through.get(id))
            .flat_map(|m| m.keys().copied())
            .collect()
    }

    /// The next-hop objects over link `index`.
    fn objects_over(&self, index: u32) -> HashSet<u32> {
        self.objects
            .values()
            .filter(|o| o.uses_link(index))
            .map(|o| o.id)
            .collect()
    }

    /// The next-hop objects over link `index` are gone (flushed by the kernel).
    fn flush_link_objects(&mut self, index: u32) -> Vec<Prefix> {
        let over = self.objects_over(index);
        self.remove_objects(over.into_iter().collect())
    }

    /// Objects `ids` are gone, as the kernel takes them: each leaves the groups it was in, a
    /// group left empty goes too, and the routes through a gone object go with it (the kernel
    /// flushes them without a word). Returns the prefixes touched.
    fn remove_objects(&mut self, mut ids: Vec<u32>) -> Vec<Prefix> {
        let (mut gone, mut shrunk) = (HashSet::new(), HashSet::new());
        while let Some(id) = ids.pop() {
            if self.objects.remove(&id).is_none() {
                continue;
            }
            gone.insert(id);
            for o in self.objects.values_mut() {
                if let ObjectKind::Group(members) = &mut o.kind {
                    let before = members.len();
                    members.retain(|(m, _)| *m != id);
                    if members.is_empty() {
                        ids.push(o.id);
                    } else if members.len() != before {
                        shrunk.insert(o.id);
                    }
                }
            }
        }
        if gone.is_empty() {
            return Vec::new();
        }
        let touched = self.object_users(&gone.union(&shrunk).copied().collect());
        for p in &touched {
            if let Some(m) = self.routes.get_mut(p) {
                for list in m.values_mut() {
                    list.retain(|e| !e.route.nhid.is_some_and(|n| gone.contains(&n)));
                }
                for id in &gone {
                    self.through.remove(id);
                }
                m.retain(|_, list| !list.is_empty());
                if m.is_empty() {
                    self.routes.remove(p);
                }
            }
        }
        touched
    }

    /// A route the kernel added, where it put it. The kernel never holds the same route twice
    /// at a key (it refuses it, `EEXIST`): one the mirror has already is an event it heard
    /// twice (the dump that followed its subscription showed it already), and stays where
    /// it is.
    fn add(&mut self, e: Entry, mut placed: Placed) {
        // A copy must be of a route through an object just replaced (or a group with one as
        // a member); any other is a replace, whatever its request looked like.
        if placed == Placed::Refreshed {
            let recent = |n: u32| {
                self.recent.contains(&n)
                    || matches!(self.objects.get(&n).map(|o| &o.kind),
                        Some(ObjectKind::Group(m)) if m.iter().any(|(x, _)| self.recent.contains(x)))
            };
            if !e.route.nhid.is_some_and(recent) {
                placed = Placed::Replacing;
            }
        }
        if placed == Placed::Refreshed {
            // It stays where it is; one the mirror does not have (deleted since, the copy
            // being older than a re-dump) is not brought back.
            let list = self
                .routes
                .get_mut(&e.route.dst)
                .and_then(|m| m.get_mut(&e.key()));
            if let Some(x) = list.and_then(|l| l.iter_mut().find(|x| x.same(&e))) {
                *x = e;
            }
            return;
        }
        let through = &mut self.through;
        let list = self
            .routes
            .entry(e.route.dst)
            .or_default()
            .entry(e.key())
            .or_default();
        let had = list.iter().position(|x| x.same(&e));
        // (The same route is through the same object: swapping one for it counts nothing.)
        match placed {
            Placed::First | Placed::Last => match had {
                Some(i) => list[i] = e,
                None => {
                    count(through, &e, true);
                    if placed == Placed::First {
                        list.insert(0, e);
                    } else {
                        list.push(e);
                    }
                }
            },
            Placed::Refreshed => {}
            Placed::Replacing => {
                // In place of the first: if the mirror has this route further down (heard
                // twice, from the dump and now), that copy is stale.
                if let Some(i) = had.filter(|&i| i > 0) {
                    count(through, &list.remove(i), false);
                }
                count(through, &e, true);
                match list.first_mut() {
                    Some(first) => {
                        count(through, first, false);
                        *first = e;
                    }
                    None => list.push(e),
                }
            }
        }
    }

    /// A route the kernel deleted: the first of the mirror's that is the same (none if the
    /// mirror does not have it: heard twice).
    fn remove(&mut self, e: &Entry) {
        let (dst, key) = (e.route.dst, e.key());
        let Some(keys) = self.routes.get_mut(&dst) else {
            return;
        };
        if let Some(list) = keys.get_mut(&key) {
            if let Some(i) = list.iter().position(|x| x.same(e)) {
                count(&mut self.through, &list.remove(i), false);
            }
            if list.is_empty() {
                keys.remove(&key);
            }
        }
        if keys.is_empty() {
            self.routes.remove(&dst);
        }
    }

    /// The prefixes with a route that has a path over link `index`.
    fn link_routes(&self, index: u32) -> Vec<Prefix> {
        self.routes
            .iter()
            .filter(|(_, m)| m.values().flatten().any(|e| e.route.uses_link(index)))
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
            for h in m
                .values_mut()
                .flatten()
                .flat_map(|e| e.route.nexthops.iter_mut())
            {
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
                for list in m.values_mut() {
                    list.retain_mut(|e| {
                        let kept = !e.route.uses_link(index) || keep(&mut e.route);
                        if !kept {
                            count(&mut self.through, e, false);
                        }
                        kept
                    });
                }
                m.retain(|_, list| !list.is_empty());
                if m.is_empty() {
                    self.routes.remove(p);
                }
            }
        }
        touched
    }
}

#[cfg(test)]
mod tests;
