//! Read-only access to a route file (clients, data planes): longest-prefix match — the whole
//! route, or only its next-hop index — one address or a batch, exact match, and the table in
//! key order. Every read is lock-free and made under the epoch protocol (layout: "Change and
//! reclamation"): it never waits for the writer and never returns memory the writer reused.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use super::layout::{
    entry_fields, flags_origin, slot_of, value_depth, value_nh, value_origin, PAGE_SLOTS, SLOTS,
    TIER1_WORDS, VALUE_VALID,
};
use super::lookups::Lookups;
use super::view::{consistent, Garbage, Group, Lpm, NextHop, Record, Unstable, View};
use super::writer::Regions;
use crate::shm::file;
use crate::shm::header::{HeaderInfo, STATE_RETIRED};
use crate::shm::mapping::{prefetch, views3, Mapping, Region};
use crate::shm::owner::Owners;
use crate::shm::record::{ShmError, TableKind, TableReader, Versioned, SEQ_MASK};
use crate::shm::sync::{fence, AtomicU32, Line, Ordering::Acquire, Ordering::Relaxed};
use crate::types::{Origin, Prefix, Route};

pub use super::view::BATCH_GROUP;

/// The next-hop records named by the values of a group of addresses ([`BATCH_GROUP`]):
/// `hops[i]` is the next hop of address `i`'s route if it has one next hop; bit `i` of
/// `multipath` is set if its route is multipath (its record heads a group, read whole after).
/// Not an array of [`Record`]: a next hop decoded into a `Record` was built in a stack
/// temporary with narrow stores and copied out with wider loads overlapping them, which the
/// CPU cannot forward from the stores; each record read waited for them (batched lookups
/// about a third slower).
struct GroupHops {
    hops: [Option<NextHop>; BATCH_GROUP],
    multipath: u32,
}

const _: () = assert!(
    BATCH_GROUP <= 32,
    "GroupHops::multipath has a bit per address"
);

/// What a next-hop-index lookup answers: the matching prefix, the index of its next-hop
/// record ([`RouteReader::nexthop`]) and who put the route into the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopRef {
    pub dst: Prefix,
    pub nexthop: u32,
    pub origin: Origin,
}

pub struct RouteReader {
    path: PathBuf,
    /// Whose files this reader maps (kept for reopening the path).
    owners: Owners,
    file: File,
    map: Mapping,
    /// The regions of `map`, checked once.
    tier1: Region<AtomicU32>,
    values: Region<AtomicU32>,
    nh: Region<Line>,
    lpm: Region<Line>,
    blk: Region<Line>,
    info: HeaderInfo,
    reg: Regions,
    dev_ino: (u64, u64),
    /// Lines of each heap this reader knows the file backs (grow when it finds a heap grew).
    lpm_known: AtomicUsize,
    blk_known: AtomicUsize,
}

impl RouteReader {
    #[inline(always)]
    fn view(&self) -> View<'_> {
        let h = self.map.header();
        let m = &self.map;
        View {
            epoch: &h.epoch,
            top_lpm: &h.top_lpm,
            top_blk: &h.top_blk,
            tier1: self.tier1.view(m, TIER1_WORDS),
            values: self.values.view(m, self.reg.values_cap),
            nh: self.nh.view(m, self.reg.nh_cap),
            lpm: self.lpm.view(m, self.lpm_known.load(StdOrdering::Relaxed)),
            blk: self.blk.view(m, self.blk_known.load(StdOrdering::Relaxed)),
        }
    }

    /// The parts of the file a longest-prefix match reads (cheaper to make than a whole view):
    /// the epoch, the LPM regions and the next-hop records.
    #[inline(always)]
    pub(super) fn lpm_parts(&self) -> (&crate::shm::sync::AtomicU64, Lpm<'_>, &[Line]) {
        let h = self.map.header();
        let (tier1, values, lines) = views3(
            &self.map,
            (&self.tier1, &self.values, &self.lpm),
            (
                TIER1_WORDS,
                self.reg.values_cap,
                self.lpm_known.load(StdOrdering::Relaxed),
            ),
        );
        let lpm = Lpm {
            top: &h.top_lpm,
            tier1,
            values,
            lines,
        };
        (&h.epoch, lpm, self.nh.view(&self.map, self.reg.nh_cap))
    }

    /// A handle for many single lookups from one thread (see [`Lookups`]).
    pub fn lookups(&self) -> Lookups<'_> {
        Lookups::new(self)
    }

    /// The value `addr` matches, read consistently whatever it takes (a lookup's slow path).
    pub(super) fn value_read(&self, addr: u32) -> Result<u32, ShmError> {
        self.read(|v| v.value(addr))
    }

    /// The values of up to [`BATCH_GROUP`] addresses (and, with `hops`, the next-hop records
    /// they name), read consistently.
    #[inline]
    fn read_group(
        &self,
        addrs: &[Ipv4Addr],
        out: &mut [u32; BATCH_GROUP],
        mut hops: Option<&mut GroupHops>,
    ) -> Result<(), ShmError> {
        let mut a = [0u32; BATCH_GROUP];
        for (x, y) in a.iter_mut().zip(addrs) {
            *x = u32::from(*y);
        }
        let a = &a[..addrs.len().min(BATCH_GROUP)];
        let read = |v: &View<'_>,
                    out: &mut [u32; BATCH_GROUP],
                    hops: &mut Option<&mut GroupHops>| {
            v.lpm().values(a, out)?;
            if let Some(g) = hops {
                g.multipath = 0;
                for (k, (val, h)) in out.iter().zip(g.hops.iter_mut()).take(a.len()).enumerate() {
                    *h = None;
                    if *val != 0 && !v.hop_into(value_nh(*val), h)? {
                        g.multipath |= 1 << k;
                    }
                }
            }
            Ok(())
        };
        let v = self.view();
        let e1 = v.epoch.load(Relaxed);
        fence(Acquire);
        let r = read(&v, out, &mut hops);
        fence(Acquire);
        if r.is_ok() && v.epoch.load(Relaxed) == e1 {
            return Ok(());
        }
        self.read(|v| read(v, out, &mut hops))
    }

    /// Learns how far the heaps reach now (the header, checked against the file's length);
    /// whether one reaches further than this reader knew.
    fn learn_heap(&self) -> bool {
        let h = self.map.header();
        let lpm_lines = h.lpm_lines.load(Relaxed) as usize;
        let blk_lines = h.heap_lines.load(Relaxed) as usize;
        fence(Acquire);
        let size = file::file_size(&self.file) as usize;
        self.map.set_valid(size.min(self.map.len()));
        let valid = self.map.valid();
        let r = &self.reg;
        let lpm = lpm_lines
            .min(r.lpm_max)
            .min(valid.saturating_sub(r.lpm) / 64);
        let blk = blk_lines
            .min(r.blk_max)
            .min(valid.saturating_sub(r.blk) / 64);
        let grew_lpm = lpm > self.lpm_known.fetch_max(lpm, StdOrdering::Relaxed);
        let grew_blk = blk > self.blk_known.fetch_max(blk, StdOrdering::Relaxed);
        grew_lpm || grew_blk
    }

    /// Runs `read` consistently (see `view::consistent`), learning a grown heap on the way.
    #[inline(always)]
    fn read<T>(
        &self,
        mut read: impl FnMut(&View<'_>) -> Result<T, Garbage>,
    ) -> Result<T, ShmError> {
        for _ in 0..8 {
            let v = self.view();
            match consistent(v.epoch, || read(&v)) {
                Ok(t) => return Ok(t),
                Err(Unstable::Grown) if self.learn_heap() => continue,
                // Garbage with the epoch unchanged and no growth: a next-hop record in the
                // middle of its rewrite; try again.
                Err(Unstable::Grown) => std::thread::yield_now(),
                Err(Unstable::Busy) => break,
            }
        }
        Err(ShmError::Busy {
            path: self.path.clone(),
        })
    }

    /// The route the kernel would forward `addr` with: the longest prefix containing it.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Result<Option<Route>, ShmError> {
        self.lookups().route(addr)
    }

    /// [`RouteReader::lookup`], read consistently whatever it takes (a lookup's slow path).
    pub(super) fn route_read(&self, addr: Ipv4Addr) -> Result<Option<Route>, ShmError> {
        let a = u32::from(addr);
        self.read(|v| {
            let val = v.value(a)?;
            if val == 0 {
                return Ok(None);
            }
            let dst = Prefix::truncating(addr, value_depth(val));
            Ok(Some(v.route(value_nh(val), dst, value_origin(val))?))
        })
    }

    /// The path a flow of hash `hash` to `addr` takes, read at once: the longest prefix
    /// containing `addr` with its record index and origin, and the next hop — the route's own,
    /// or for a multipath route the path [`RouteReader::nexthop_for`] picks.
    pub fn lookup_path(
        &self,
        addr: Ipv4Addr,
        hash: u32,
    ) -> Result<Option<(NextHopRef, NextHop)>, ShmError> {
        let a = u32::from(addr);
        self.read(|v| {
            let val = v.value(a)?;
            if val == 0 {
                return Ok(None);
            }
            let r = NextHopRef {
                dst: Prefix::truncating(addr, value_depth(val)),
                nexthop: value_nh(val),
                origin: value_origin(val),
            };
            Ok(Some((r, v.nexthop_for(r.nexthop, hash)?)))
        })
    }

    /// The matching prefix and its next-hop index only (data planes that keep their own copy
    /// of the next-hop records, which [`RouteReader::nexthop`] reads).
    #[inline]
    pub fn lookup_nh(&self, addr: Ipv4Addr) -> Result<Option<NextHopRef>, ShmError> {
        self.lookups().nexthop_of(addr)
    }

    /// Next-hop record `i` as one next hop: a next hop's record, or for a group (a multipath
    /// route's) only the path a flow hash of 0 takes. A data plane that keeps its own copy of
    /// the records must tell groups apart ([`RouteReader::group`]) and spread flows over their
    /// paths ([`RouteReader::nexthop_for`]); sending every flow down this one leaves the others
    /// idle.
    pub fn nexthop(&self, i: u32) -> Result<NextHop, ShmError> {
        self.nexthop_for(i, 0)
    }

    /// The next hop through record `i` that a flow with hash `hash` takes: the record's own
    /// next hop, or for a group, the member whose share of the 32-bit hash space holds `hash`
    /// (shares in proportion to the weights, members in order; the group's metric). The same
    /// hash always picks the same member while the group is unchanged.
    pub fn nexthop_for(&self, i: u32, hash: u32) -> Result<NextHop, ShmError> {
        self.read(|v| v.nexthop_for(i, hash))
    }

    /// The next-hop group whose head is record `i` (a multipath route's next hops with their
    /// weights, and its metric); `None` if record `i` is one next hop's.
    pub fn group(&self, i: u32) -> Result<Option<Group>, ShmError> {
        let dst = Prefix::truncating(Ipv4Addr::UNSPECIFIED, 0);
        self.read(|v| match v.record(i)? {
            Record::Hop(_) => Ok(None),
            Record::Group { .. } => {
                let r = v.route(i, dst, Origin::Rtm)?;
                Ok(Some(Group {
                    metric: r.metric,
                    hops: r.nexthops,
                }))
            }
        })
    }

    /// [`RouteReader::lookup`] of many addresses: `out[i]` answers `addrs[i]`. The addresses
    /// are looked up [`BATCH_GROUP`] at a time, each step of the walk for the whole group
    /// before the next, so that the memory misses of a group overlap.
    pub fn lookup_batch(
        &self,
        addrs: &[Ipv4Addr],
        out: &mut [Option<Route>],
    ) -> Result<(), ShmError> {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: one answer per address"
        );
        let mut vals = [0u32; BATCH_GROUP];
        let mut hops = GroupHops {
            hops: [None; BATCH_GROUP],
            multipath: 0,
        };
        for (a, o) in addrs.chunks(BATCH_GROUP).zip(out.chunks_mut(BATCH_GROUP)) {
            // The values and the next hops they name, read in one epoch window: a record
            // freed and reused between the two reads would pair a prefix with another's hop.
            self.read_group(a, &mut vals, Some(&mut hops))?;
            let zipped = a.iter().zip(&vals).zip(&hops.hops).zip(o.iter_mut());
            for (k, (((addr, val), hop), slot)) in zipped.enumerate() {
                *slot = if hops.multipath & (1 << k) != 0 {
                    // A multipath route: read whole on its own.
                    self.route_read(*addr)?
                } else {
                    hop.map(|h| {
                        h.route(
                            Prefix::truncating(*addr, value_depth(*val)),
                            value_origin(*val),
                        )
                    })
                };
            }
        }
        Ok(())
    }

    /// [`RouteReader::lookup_nh`] of many addresses.
    pub fn lookup_nh_batch(
        &self,
        addrs: &[Ipv4Addr],
        out: &mut [Option<NextHopRef>],
    ) -> Result<(), ShmError> {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_nh_batch: one answer per address"
        );
        let mut vals = [0u32; BATCH_GROUP];
        for (a, o) in addrs.chunks(BATCH_GROUP).zip(out.chunks_mut(BATCH_GROUP)) {
            self.read_group(a, &mut vals, None)?;
            for ((addr, val), slot) in a.iter().zip(&vals).zip(o.iter_mut()) {
                *slot = (val & VALUE_VALID != 0).then(|| NextHopRef {
                    dst: Prefix::truncating(*addr, value_depth(*val)),
                    nexthop: value_nh(*val),
                    origin: value_origin(*val),
                });
            }
        }
        Ok(())
    }

    /// Every route of `slot`'s block, read consistently.
    fn slot_routes(&self, slot: usize, out: &mut Vec<Versioned<Route>>) {
        let start = out.len();
        let r = self.read(|v| {
            out.truncate(start);
            let (n, first) = v.block(slot)?;
            for i in 0..n {
                let (a, b) = v.entry(first, i)?;
                let (addr, len, flags, nh) = entry_fields(a);
                if len > 32 {
                    return Err(Garbage);
                }
                let origin = flags_origin(flags).ok_or(Garbage)?;
                out.push(Versioned {
                    entry: v.route(nh, Prefix::truncating(addr.into(), len), origin)?,
                    seq: b & SEQ_MASK,
                });
            }
            Ok(())
        });
        if r.is_err() {
            out.truncate(start);
        }
    }
}

/// Key order of routes: (address, prefix length), as entries are kept in their blocks.
fn key(p: &Prefix) -> (u32, u8) {
    (p.addr_u32(), p.len())
}

/// The last address inside `p`.
fn last_addr(p: &Prefix) -> u32 {
    p.addr_u32() | (u32::MAX.checked_shr(u32::from(p.len())).unwrap_or(0))
}

/// Ordered reads of part of the table, for paging through a large one: cursors, offsets and
/// counts. Whole slots and pages of slots are counted from their block words without reading
/// their entries. Each slot is read consistently; a read spanning slots sees each slot as it
/// was when it was read (as [`TableReader::entries`] does).
impl RouteReader {
    /// Up to `limit` routes in key order, the first the least not before `from` in key order
    /// (`from` itself if present): a cursor over the table.
    pub fn entries_from(&self, from: &Prefix, limit: usize) -> Vec<Versioned<Route>> {
        self.range(key(from), u32::MAX, 0, limit)
    }

    /// Routes inside `within` (their prefix is `within` or longer and starts in it), in key
    /// order: the `skip`th on, at most `limit`.
    pub fn entries_within(
        &self,
        within: &Prefix,
        skip: usize,
        limit: usize,
    ) -> Vec<Versioned<Route>> {
        self.range(key(within), last_addr(within), skip, limit)
    }

    /// How many routes are inside `within` ([`RouteReader::entries_within`]'s whole range);
    /// reads entries only in the slots at the range's two ends.
    pub fn count_within(&self, within: &Prefix) -> usize {
        let (lo, hi) = (key(within), last_addr(within));
        let (s0, s1) = (slot_of(lo.0), slot_of(hi));
        let mut buf = Vec::new();
        let mut in_slot = |slot: usize| {
            buf.clear();
            self.slot_routes(slot, &mut buf);
            buf.iter()
                .filter(|r| key(&r.entry.dst) >= lo && r.entry.dst.addr_u32() <= hi)
                .count()
        };
        if s0 == s1 {
            return in_slot(s0);
        }
        in_slot(s0) + self.count_slots(s0 + 1, s1) + in_slot(s1)
    }

    /// How many routes start in the slots before `slot` (addresses below `slot << 14`), from
    /// block words alone.
    pub fn count_before_slot(&self, slot: usize) -> usize {
        self.count_slots(0, slot.min(SLOTS))
    }

    /// The routes of slots `a..b`, from block words (a whole page at a time when it can).
    fn count_slots(&self, a: usize, b: usize) -> usize {
        let mut n = 0;
        let mut slot = a;
        while slot < b {
            let page = slot / PAGE_SLOTS;
            let end = ((page + 1) * PAGE_SLOTS).min(b);
            n += self.count_page(slot, end);
            slot = end;
        }
        n
    }

    /// The routes of slots `a..b`, all in one page of slots, read consistently.
    fn count_page(&self, a: usize, b: usize) -> usize {
        if self.view().top_blk[a / PAGE_SLOTS].load(Relaxed) == 0 {
            return 0;
        }
        self.read(|v| {
            let mut n = 0;
            for slot in a..b {
                n += v.block(slot)?.0;
            }
            Ok(n)
        })
        .unwrap_or(0)
    }

    /// Routes with key `lo` or after and address `hi` or before, in key order: the `skip`th
    /// on, at most `limit`. Pages and slots wholly skipped are counted, not read.
    fn range(
        &self,
        lo: (u32, u8),
        hi: u32,
        mut skip: usize,
        limit: usize,
    ) -> Vec<Versioned<Route>> {
        let mut out = Vec::with_capacity(limit.min(4096));
        if limit == 0 || lo.0 > hi {
            return out;
        }
        let (s0, s1) = (slot_of(lo.0), slot_of(hi));
        let mut buf = Vec::new();
        let mut slot = s0;
        while slot <= s1 {
            let page = slot / PAGE_SLOTS;
            let page_end = (page + 1) * PAGE_SLOTS;
            if self.view().top_blk[page].load(Relaxed) == 0 {
                slot = page_end;
                continue;
            }
            // Slots strictly between the ends hold only routes in range: skip them by count.
            if skip > 0 && slot > s0 {
                if page_end <= s1 && slot % PAGE_SLOTS == 0 {
                    let n = self.count_page(slot, page_end);
                    if n <= skip {
                        skip -= n;
                        slot = page_end;
                        continue;
                    }
                }
                if slot < s1 {
                    let n = self.count_page(slot, slot + 1);
                    if n <= skip {
                        skip -= n;
                        slot += 1;
                        continue;
                    }
                }
            }
            buf.clear();
            self.slot_routes(slot, &mut buf);
            for r in buf.drain(..) {
                let k = key(&r.entry.dst);
                if k < lo || k.0 > hi {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(r);
                if out.len() == limit {
                    return out;
                }
            }
            slot += 1;
        }
        out
    }
}

impl TableReader<Route> for RouteReader {
    fn open_owned(path: &Path, owners: Owners) -> Result<Self, ShmError> {
        let o = file::open_read_only(path, TableKind::Route, owners)?;
        let reg = Regions::of(&o.info.region, o.info.map_len)
            .ok_or_else(|| ShmError::bad(path, "inconsistent regions"))?;
        let outside = || ShmError::bad(path, "regions outside the file");
        let words = |off, cap| Region::<AtomicU32>::new(&o.map, off, cap).ok_or_else(outside);
        let lines = |off, cap| Region::<Line>::new(&o.map, off, cap).ok_or_else(outside);
        let (tier1, values) = (
            words(reg.tier1, TIER1_WORDS)?,
            words(reg.values, reg.values_cap)?,
        );
        let (nh, lpm, blk) = (
            lines(reg.nh, reg.nh_cap)?,
            lines(reg.lpm, reg.lpm_max)?,
            lines(reg.blk, reg.blk_max)?,
        );
        let r = RouteReader {
            path: path.to_path_buf(),
            owners,
            file: o.file,
            tier1,
            values,
            nh,
            lpm,
            blk,
            map: o.map,
            info: o.info,
            reg,
            dev_ino: o.dev_ino,
            lpm_known: AtomicUsize::new(0),
            blk_known: AtomicUsize::new(0),
        };
        r.learn_heap();
        if r.map.valid() < r.reg.blk {
            return Err(ShmError::bad(path, "shorter than its regions"));
        }
        Ok(r)
    }

    fn get(&self, key: &Prefix) -> Option<Versioned<Route>> {
        self.read(|v| {
            let Some((nh, flags, b)) = v.find(key.addr_u32(), key.len())? else {
                return Ok(None);
            };
            let origin = flags_origin(flags).ok_or(Garbage)?;
            Ok(Some(Versioned {
                entry: v.route(nh, *key, origin)?,
                seq: b & SEQ_MASK,
            }))
        })
        .ok()
        .flatten()
    }

    fn entries(&self) -> Vec<Versioned<Route>> {
        let hint = self.len().min(1 << 26);
        let mut out = Vec::with_capacity(hint);
        let v = self.view();
        for page in 0..SLOTS / PAGE_SLOTS {
            if v.top_blk[page].load(Relaxed) == 0 {
                continue;
            }
            for slot in page * PAGE_SLOTS..(page + 1) * PAGE_SLOTS {
                self.slot_routes(slot, &mut out);
            }
        }
        out
    }

    fn len(&self) -> usize {
        self.map.header().live.load(Relaxed) as usize
    }

    fn capacity(&self) -> usize {
        self.info.limit as usize
    }

    fn table_seq(&self) -> u64 {
        let s = self.map.header().table_seq.load(Relaxed);
        fence(Acquire);
        s
    }

    fn generation(&self) -> u64 {
        self.info.generation
    }

    fn is_retired(&self) -> bool {
        let retired = self.map.header().state.load(Relaxed) == STATE_RETIRED;
        fence(Acquire);
        retired
    }

    fn refresh(&mut self) -> Result<bool, ShmError> {
        let retired = self.is_retired();
        let replaced =
            file::replaced(&self.path, self.dev_ino).map_err(|e| ShmError::io(&self.path, e))?;
        if !retired && !replaced {
            return Ok(false);
        }
        match RouteReader::open_owned(&self.path, self.owners) {
            Ok(r) => {
                *self = r;
                Ok(true)
            }
            // The path is gone and this file still stands: keep reading it.
            Err(ShmError::Io { source, .. })
                if !retired && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn prefetch(&self, key: &Prefix) {
        let v = self.view();
        let s = super::layout::slot_of(key.addr_u32());
        let page = v.top_blk[s / PAGE_SLOTS].load(Relaxed) as usize;
        if let Some(l) = v
            .blk
            .get(page + (s % PAGE_SLOTS) / 16)
            .filter(|_| page != 0)
        {
            prefetch(l);
        }
    }
}

impl std::fmt::Debug for RouteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteReader")
            .field("path", &self.path)
            .field("generation", &self.info.generation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use crate::shm::tests::{dir, p, route, routes_at};
    use crate::shm::{RouteReader, TableReader, TableWriter};
    use crate::types::{Prefix, Route};

    /// The routes of `all` inside `within`, the reference for the ranged reads.
    fn inside(all: &[Route], within: &Prefix) -> Vec<Route> {
        all.iter()
            .filter(|r| r.dst.len() >= within.len() && within.contains(r.dst.addr()))
            .cloned()
            .collect()
    }

    #[test]
    fn ranged_reads_agree_with_entries() {
        let d = dir();
        let path = d.path().join("routes");
        let mut w = routes_at(&path, 50_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        // Dense in 10/8 (many routes a slot, long blocks), sparse elsewhere, nested prefixes.
        for n in 0..20_000u32 {
            let (addr, len) = if n % 4 == 0 {
                (rng.random::<u32>(), rng.random_range(0..=32))
            } else {
                (
                    0x0a00_0000 | rng.random_range(0..1 << 20),
                    rng.random_range(20..=32),
                )
            };
            let dst = Prefix::truncating(addr.into(), len);
            w.upsert(&route(dst, n), u64::from(n) + 1).unwrap();
        }
        for x in [
            "10.0.0.0/8",
            "10.0.0.0/12",
            "10.1.0.0/16",
            "0.0.0.0/0",
            "10.0.0.0/20",
        ] {
            w.upsert(&route(p(x), 7), 30_000).unwrap();
        }
        let r = RouteReader::open(&path).unwrap();
        let all: Vec<Route> = r.entries().into_iter().map(|v| v.entry).collect();
        assert_eq!(all.len(), r.len());

        // A cursor from every kind of place: a present key, between keys, before and after all.
        for from in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.0.0.0/9",
            "10.3.7.0/24",
            "255.255.255.255/32",
        ]
        .into_iter()
        .map(p)
        .chain(all.iter().step_by(997).map(|r| r.dst))
        {
            let want: Vec<Route> = all
                .iter()
                .filter(|r| (r.dst.addr_u32(), r.dst.len()) >= (from.addr_u32(), from.len()))
                .take(250)
                .cloned()
                .collect();
            let got: Vec<Route> = r
                .entries_from(&from, 250)
                .into_iter()
                .map(|v| v.entry)
                .collect();
            assert_eq!(got, want, "from {from}");
        }

        // Offsets and counts inside prefixes wider and narrower than a slot.
        for within in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.0.0.0/12",
            "10.1.0.0/16",
            "10.0.0.0/20",
            "10.0.3.0/24",
            "11.0.0.0/8",
            "192.0.2.0/24",
        ] {
            let within = p(within);
            let want = inside(&all, &within);
            assert_eq!(r.count_within(&within), want.len(), "count {within}");
            for skip in [
                0,
                1,
                99,
                100,
                1_000,
                4_321,
                want.len().saturating_sub(5),
                want.len(),
            ] {
                let got: Vec<Route> = r
                    .entries_within(&within, skip, 100)
                    .into_iter()
                    .map(|v| v.entry)
                    .collect();
                let want: Vec<Route> = want.iter().skip(skip).take(100).cloned().collect();
                assert_eq!(got, want, "within {within} skip {skip}");
            }
        }

        // Counts before a slot from block words alone.
        for slot in [0, 1, 10 << 10, (10 << 10) + 37, 11 << 10, 1 << 18] {
            let want = all
                .iter()
                .filter(|r| (r.dst.addr_u32() >> 14) < slot as u32)
                .count();
            assert_eq!(r.count_before_slot(slot), want, "before slot {slot}");
        }
        assert_eq!(r.entries_within(&p("10.0.0.0/8"), 0, 0), vec![]);
    }
}
