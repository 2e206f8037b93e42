//! The single writer of a route file (the daemon's route table actor).
//!
//! Every change is copy-on-write: the chunk and the entry block of the slot it touches are
//! written whole into free heap lines and published by one store of the word that names them
//! (layout: "Change and reclamation"). The file is the writer's index too: it finds a route, and
//! the route that covers a deleted one, by reading its own file as a reader does; what it keeps
//! in its heap is only the bookkeeping of free lines, of shared next-hop records and of the
//! value table.
//!
//! - `file`: the regions and a whole new file, written before it is published;
//! - `batch`: a batch of changes, planned and reserved together, written together;
//! - `room`: the epoch, reservations, growing the heaps;
//! - `paint`: slot words, chunks and tier 1, entry blocks.

mod batch;
mod file;
mod paint;
mod room;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use batch::Batch;
pub(crate) use file::Regions;
use file::{heap_max_for, write_file, Room, Spec, Written};
use room::{Reserved, Which};

use super::build::{build, Image, TooManyValues};
use super::heap::Heap;
use super::layout::{
    flags_origin, slot_of, value_depth, value_nh, value_origin, MAX_NEXTHOPS, PAGE_SLOTS, SLOTS,
    TIER1_WORDS, VALUE_SLOTS,
};
use super::nexthops::NextHops;
use super::values::Values;
use super::view::View;
use crate::shm::file as shm_file;
use crate::shm::header::{Header, INCOMPAT_GROUPS};
use crate::shm::mapping::{prefetch, Mapping};
use crate::shm::record::{Access, Planned, ShmError, TableKind, TableWriter, Versioned, SEQ_MASK};
use crate::shm::sync::{Line, Ordering::Relaxed, Ordering::Release};
use crate::types::{Origin, Prefix, Route};

pub struct RouteWriter {
    path: PathBuf,
    access: Access,
    limit: usize,
    generation: u64,
    /// Our file, open for its liveness lock.
    file: File,
    map: Mapping,
    dev_ino: (u64, u64),
    reg: Regions,
    lpm: Heap,
    blk: Heap,
    /// Lines of each heap reserved for the batch being written.
    reserved: [Reserved; 2],
    /// The batch reserved and not yet written whole.
    batch: Option<Batch>,
    values: Values,
    nhs: NextHops,
    /// Whether the file may hold next-hop groups (its header's `incompat` bit).
    groups: bool,
    live: usize,
    /// Routes per prefix length, so a delete probes only the lengths in use for what covers it.
    len_counts: [u32; 33],
    /// Routes per origin (index: [`Origin::as_u8`]).
    origins: [usize; Origin::ALL.len()],
    last_epoch: Instant,
}

/// Sorts routes by prefix and keeps the last of each prefix.
fn unique(mut entries: Vec<Versioned<Route>>) -> Vec<Versioned<Route>> {
    // A table read back from its file (a restart, a republish) is in key order already.
    if entries.windows(2).all(|w| w[0].entry.dst < w[1].entry.dst) {
        return entries;
    }
    // Stable: equal keys stay in their order, so the last one given is kept.
    entries.sort_by_key(|v| v.entry.dst);
    let mut out: Vec<Versioned<Route>> = Vec::with_capacity(entries.len());
    for v in entries {
        match out.last_mut() {
            Some(last) if last.entry.dst == v.entry.dst => *last = v,
            _ => out.push(v),
        }
    }
    out
}

/// What a batch needs that the file may not have room for.
#[derive(Debug, Default)]
struct Needs {
    /// New next-hop records of one next hop.
    singles: usize,
    /// The records each new group takes.
    runs: Vec<u32>,
    /// New value-table entries.
    values: usize,
    /// Whether the batch has a group.
    groups: bool,
}

fn too_many_values() -> ShmError {
    ShmError::Layout {
        what: "distinct (prefix length, next hop) pairs among the routes of /17-/32".into(),
        limit: VALUE_SLOTS as u64 - 1,
    }
}

fn built(routes: &[Versioned<Route>]) -> Result<Image, ShmError> {
    build(routes).map_err(|TooManyValues| too_many_values())
}

impl RouteWriter {
    fn header(&self) -> &Header {
        self.map.header()
    }

    /// The writer's view of its file.
    fn view(&self) -> View<'_> {
        let h = self.header();
        let m = &self.map;
        View {
            epoch: &h.epoch,
            top_lpm: &h.top_lpm,
            top_blk: &h.top_blk,
            tier1: m
                .u32s(self.reg.tier1, TIER1_WORDS)
                .expect("tier 1 is in the file"),
            values: m
                .u32s(self.reg.values, self.reg.values_cap)
                .expect("values are in the file"),
            nh: m
                .lines(self.reg.nh, self.reg.nh_cap)
                .expect("next hops are in the file"),
            lpm: m
                .lines(self.reg.lpm, self.lpm.cap as usize)
                .expect("LPM heap in the file"),
            blk: m
                .lines(self.reg.blk, self.blk.cap as usize)
                .expect("block heap in the file"),
        }
    }

    fn heap(&self, which: Which) -> &Heap {
        match which {
            Which::Lpm => &self.lpm,
            Which::Blk => &self.blk,
        }
    }

    fn heap_mut(&mut self, which: Which) -> &mut Heap {
        match which {
            Which::Lpm => &mut self.lpm,
            Which::Blk => &mut self.blk,
        }
    }

    fn reserved_mut(&mut self, which: Which) -> &mut Reserved {
        &mut self.reserved[which as usize]
    }

    fn lines_of(&self, which: Which) -> &[Line] {
        let (off, cap) = match which {
            Which::Lpm => (self.reg.lpm, self.lpm.cap),
            Which::Blk => (self.reg.blk, self.blk.cap),
        };
        self.map
            .lines(off, cap as usize)
            .expect("the heap is in the file")
    }

    /// Publishes a freshly written file at `path`, retiring `old`, and builds the writer of it.
    #[allow(clippy::too_many_arguments)]
    fn adopt(
        path: &Path,
        access: Access,
        limit: usize,
        generation: u64,
        w: Written,
        old: Option<&Header>,
        img: &Image,
    ) -> Result<RouteWriter, ShmError> {
        let Written {
            new,
            map,
            reg,
            lpm_cap,
            blk_cap,
        } = w;
        let dev_ino = new.dev_ino;
        let file = shm_file::publish(new, path, old)?;
        let mut nhs = NextHops::new(reg.nh_cap as u32);
        for r in &img.nexthops {
            nhs.adopt(r.at, r.key.clone(), r.refs);
        }
        let groups = map.header().incompat.load(Relaxed) & INCOMPAT_GROUPS != 0;
        let mut values = Values::new(reg.values_cap);
        for (i, &(v, refs)) in img.values.iter().enumerate() {
            values.adopt(i as u16 + 1, v, refs);
        }
        Ok(RouteWriter {
            path: path.to_path_buf(),
            access,
            limit,
            generation,
            file,
            dev_ino,
            lpm: Heap::new(img.lpm.len() as u32, lpm_cap, reg.lpm_max as u32),
            blk: Heap::new(img.blk.len() as u32, blk_cap, reg.blk_max as u32),
            reserved: Default::default(),
            batch: None,
            map,
            reg,
            values,
            nhs,
            groups,
            live: img.live,
            len_counts: img.len_counts,
            origins: img.origins,
            last_epoch: Instant::now(),
        })
    }

    /// Publishes a new generation holding `routes` (sorted, unique) with room for at least
    /// `values_cap` values, `nh_cap` next-hop records and the heap maxima, able to hold
    /// next-hop groups if `groups` or if it has some, and switches to it.
    fn rebuild(
        &mut self,
        routes: &[Versioned<Route>],
        values_cap: usize,
        nh_cap: usize,
        lpm_max: usize,
        blk_max: usize,
        groups: bool,
    ) -> Result<(), ShmError> {
        let img = built(routes)?;
        let spec = Spec {
            access: self.access,
            values_cap,
            nh_cap,
            lpm_max: lpm_max.max(heap_max_for(self.limit, img.lpm.len())),
            blk_max: blk_max.max(heap_max_for(self.limit, img.blk.len())),
            generation: self.generation.wrapping_add(1),
            table_seq: self.header().table_seq.load(Relaxed),
            limit: self.limit,
            groups,
        };
        let w = write_file(&self.path, &img, &spec)?;
        let next = RouteWriter::adopt(
            &self.path,
            self.access,
            self.limit,
            spec.generation,
            w,
            Some(self.header()),
            &img,
        )?;
        *self = next;
        Ok(())
    }

    /// Every route, in key order.
    fn all_routes(&self) -> Vec<Versioned<Route>> {
        let v = self.view();
        let mut out = Vec::with_capacity(self.live);
        for slot in 0..SLOTS {
            if slot % PAGE_SLOTS == 0 && v.top_blk[slot / PAGE_SLOTS].load(Relaxed) == 0 {
                continue;
            }
            let Ok((n, first)) = v.block(slot) else {
                continue;
            };
            for i in 0..n {
                if let Ok((a, b)) = v.entry(first, i) {
                    out.extend(self.route_of(a, b));
                }
            }
        }
        out
    }

    /// Makes sure `need` fits: more next-hop records and groups, more value-table entries, and
    /// groups at all. If not, a new generation with larger regions, or one whose header lets
    /// it hold groups.
    fn make_table_room(&mut self, need: Needs) -> Result<(), ShmError> {
        let new_values = need.values;
        let fit = |w: &RouteWriter| {
            (
                w.nhs.fits(need.singles, &need.runs),
                new_values <= w.values.room(),
            )
        };
        let groups = self.groups || need.groups;
        if fit(self) == (true, true) && groups == self.groups {
            return Ok(());
        }
        if self.nhs.has_pending() || self.values.has_pending() {
            self.advance_epoch();
        }
        let (hops_fit, values_fit) = fit(self);
        if hops_fit && values_fit && groups == self.groups {
            return Ok(());
        }
        let nh_cap = if hops_fit {
            self.reg.nh_cap
        } else {
            let runs: usize = need.runs.iter().map(|&n| n as usize).sum();
            let want = self.nhs.len() + need.singles + runs;
            if want > MAX_NEXTHOPS - 1 {
                return Err(ShmError::Layout {
                    what: "next-hop records (distinct next hops, and multipath groups' records)"
                        .into(),
                    limit: MAX_NEXTHOPS as u64 - 1,
                });
            }
            // Free records may be there, but scattered: freed singles serve no group, and a
            // freed group's run serves only a group as long. A new generation packs the
            // records in use, at no smaller a capacity.
            Room::Roomy.nexthops(want).max(self.reg.nh_cap)
        };
        let values_cap = if values_fit {
            self.reg.values_cap
        } else {
            Room::Roomy.values(self.values.len() + new_values)
        };
        if values_cap <= self.reg.values_cap && !values_fit {
            return Err(too_many_values());
        }
        self.unreserve();
        let routes = self.all_routes();
        self.rebuild(
            &routes,
            values_cap,
            nh_cap,
            self.reg.lpm_max,
            self.reg.blk_max,
            groups,
        )
    }

    /// Publishes the new header count.
    fn sync_live(&self) {
        self.header().live.store(self.live as u64, Relaxed);
    }

    /// Next-hop records in use (tests and figures).
    pub fn nexthops_in_use(&self) -> usize {
        self.nhs.len()
    }

    /// Heap lines in use (handed out, not freed, not merely reserved), LPM and blocks (tests
    /// and figures).
    pub fn heap_in_use(&self) -> (u64, u64) {
        (
            self.lpm.in_use - self.reserved[Which::Lpm as usize].lines(),
            self.blk.in_use - self.reserved[Which::Blk as usize].lines(),
        )
    }

    /// Lines reserved for the batch being written and not used yet (tests).
    pub fn reserved_lines(&self) -> u64 {
        self.reserved.iter().map(Reserved::lines).sum()
    }

    /// The route `addr` matches (longest-prefix match on the writer's own file).
    pub fn lookup(&self, addr: std::net::Ipv4Addr) -> Option<Route> {
        let v = self.view();
        let val = v.value(u32::from(addr)).ok()?;
        if val == 0 {
            return None;
        }
        v.route(
            value_nh(val),
            Prefix::truncating(addr, value_depth(val)),
            value_origin(val),
        )
        .ok()
    }
}

impl TableWriter<Route> for RouteWriter {
    fn create(
        path: &Path,
        limit: usize,
        access: impl Into<Access>,
        entries: Vec<Versioned<Route>>,
        table_seq: u64,
    ) -> Result<Self, ShmError> {
        let access = access.into();
        let routes = unique(entries);
        if routes.len() > limit {
            return Err(ShmError::Full { capacity: limit });
        }
        let img = built(&routes)?;
        drop(routes);
        let old = shm_file::open_current(path, TableKind::Route);
        let generation = old.as_ref().map_or(1, |(_, m)| {
            m.header().generation.load(Relaxed).wrapping_add(1)
        });
        let spec = Spec {
            access,
            values_cap: 0,
            nh_cap: 0,
            lpm_max: heap_max_for(limit, img.lpm.len()),
            blk_max: heap_max_for(limit, img.blk.len()),
            generation,
            table_seq,
            limit,
            groups: false,
        };
        let w = write_file(path, &img, &spec)?;
        RouteWriter::adopt(
            path,
            access,
            limit,
            generation,
            w,
            old.as_ref().map(|(_, m)| m.header()),
            &img,
        )
    }

    fn reserve<'a>(
        &mut self,
        ops: impl Iterator<Item = Planned<'a, Route>>,
    ) -> Result<(), ShmError> {
        self.reserve_batch(ops)
    }

    fn upsert(&mut self, rec: &Route, seq: u64) -> Result<(), ShmError> {
        if self.hand_over(rec.dst, Some(rec), seq)?.is_some() {
            return Ok(());
        }
        // A change made without a reservation: a batch of its own.
        self.drop_batch();
        let existing = self.view().find(rec.dst.addr_u32(), rec.dst.len());
        if !matches!(existing, Ok(Some(_))) && self.live >= self.limit {
            return Err(ShmError::Full {
                capacity: self.limit,
            });
        }
        self.reserve_batch(std::iter::once(Planned::Put(rec)))?;
        self.hand_over(rec.dst, Some(rec), seq)?
            .map(|_| ())
            .ok_or_else(|| self.no_space())
    }

    fn remove(&mut self, key: &Prefix, seq: u64) -> Result<bool, ShmError> {
        if let Some(existed) = self.hand_over(*key, None, seq)? {
            return Ok(existed);
        }
        self.drop_batch();
        self.reserve_batch(std::iter::once(Planned::Del(key)))?;
        self.hand_over(*key, None, seq)?
            .ok_or_else(|| self.no_space())
    }

    fn clear(&mut self, _seq: u64) {
        let in_batch = match self.flush_step() {
            batch::FlushStep::Erased => return,
            batch::FlushStep::Next => true,
            batch::FlushStep::NotReserved => {
                self.drop_batch();
                false
            }
        };
        let h = self.header();
        for w in h.top_lpm.iter().chain(&h.top_blk) {
            w.store(0, Release);
        }
        for w in self.view().tier1 {
            w.store(0, Release);
        }
        // Nothing is reachable any more: after the epoch, every line, record and value is free.
        self.advance_epoch();
        self.reserved = Default::default();
        self.lpm.reset();
        self.blk.reset();
        self.nhs.reset();
        self.values.reset();
        self.live = 0;
        self.len_counts = [0; 33];
        self.origins = [0; Origin::ALL.len()];
        self.sync_live();
        if in_batch {
            // Room for the rest was made when the batch was reserved; if planning it fails
            // anyway, its changes come one by one, each reserving for itself.
            let _ = self.after_flush();
        }
    }

    fn contains(&self, key: &Prefix) -> bool {
        matches!(self.view().find(key.addr_u32(), key.len()), Ok(Some(_)))
    }

    fn get(&self, key: &Prefix) -> Option<Versioned<Route>> {
        let (nh, flags, b) = self.view().find(key.addr_u32(), key.len()).ok()??;
        Some(Versioned {
            entry: self.view().route(nh, *key, flags_origin(flags)?).ok()?,
            seq: b & SEQ_MASK,
        })
    }

    fn entries(&self) -> Vec<Versioned<Route>> {
        self.all_routes()
    }

    fn prefetch(&self, key: &Prefix) {
        let s = slot_of(key.addr_u32());
        let v = self.view();
        for (top, heap) in [(v.top_lpm, v.lpm), (v.top_blk, v.blk)] {
            let page = top[s / PAGE_SLOTS].load(Relaxed) as usize;
            if let Some(l) = heap.get(page + (s % PAGE_SLOTS) / 16).filter(|_| page != 0) {
                prefetch(l);
            }
        }
    }

    fn republish(&mut self, entries: Vec<Versioned<Route>>) -> Result<(), ShmError> {
        let routes = unique(entries);
        if routes.len() > self.limit {
            return Err(ShmError::Full {
                capacity: self.limit,
            });
        }
        self.drop_batch();
        self.rebuild(&routes, 0, 0, 0, 0, false)
    }

    fn set_table_seq(&self, seq: u64) {
        self.header().table_seq.store(seq, Release);
    }

    fn len(&self) -> usize {
        self.live
    }

    fn len_of(&self, origin: Origin) -> usize {
        self.origins[origin.as_u8() as usize]
    }

    fn capacity(&self) -> usize {
        self.limit
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn allocated_bytes(&self) -> u64 {
        let reg = &self.reg;
        (reg.lpm + self.lpm.cap as usize * 64 + self.blk.cap as usize * 64) as u64
    }

    fn remove_file(self) -> std::io::Result<()> {
        let RouteWriter {
            path,
            dev_ino,
            map,
            file,
            ..
        } = self;
        drop(map);
        drop(file);
        shm_file::remove_if_ours(&path, dev_ino)
    }
}

impl std::fmt::Debug for RouteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteWriter")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("len", &self.live)
            .field("limit", &self.limit)
            .field("lpm_lines", &self.lpm.cap)
            .field("blk_lines", &self.blk.cap)
            .finish()
    }
}
