//! Read-only access to a route file (clients, data planes): longest-prefix match — the whole
//! route, or only its next-hop index — one address or a batch, exact match, and the table in
//! key order. Every read is lock-free and made under the epoch protocol (layout: "Change and
//! reclamation"): it never waits for the writer and never returns memory the writer reused.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use super::layout::{
    entry_fields, value_depth, value_nh, PAGE_SLOTS, SLOTS, TIER1_WORDS, VALUE_VALID,
};
use super::view::{consistent, Garbage, NextHop, Unstable, View};
use super::writer::Regions;
use crate::shm::file;
use crate::shm::header::{HeaderInfo, STATE_RETIRED};
use crate::shm::mapping::{prefetch, Mapping};
use crate::shm::record::{ShmError, TableKind, TableReader, Versioned, SEQ_MASK};
use crate::shm::sync::{fence, Ordering::Acquire, Ordering::Relaxed};
use crate::types::{Prefix, Route};

/// Addresses [`RouteReader::lookup_batch`] works on together, stage by stage, so that their
/// memory misses overlap.
pub const BATCH_GROUP: usize = 32;

/// What a next-hop-index lookup answers: the matching prefix and the index of its next-hop
/// record ([`RouteReader::nexthop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopRef {
    pub dst: Prefix,
    pub nexthop: u32,
}

pub struct RouteReader {
    path: PathBuf,
    file: File,
    map: Mapping,
    info: HeaderInfo,
    reg: Regions,
    dev_ino: (u64, u64),
    /// Heap lines this reader knows the file backs (grows when it finds the heap grew).
    known: AtomicUsize,
}

impl RouteReader {
    fn view(&self) -> View<'_> {
        let h = self.map.header();
        View {
            epoch: &h.epoch,
            top_lpm: &h.top_lpm,
            top_blk: &h.top_blk,
            tier1: self.map.u32s(self.reg.tier1, TIER1_WORDS).unwrap_or(&[]),
            nh: self.map.lines(self.reg.nh, self.reg.nh_cap).unwrap_or(&[]),
            heap: self
                .map
                .lines(self.reg.heap, self.known.load(StdOrdering::Relaxed))
                .unwrap_or(&[]),
        }
    }

    /// Learns how far the heap reaches now (the header, checked against the file's length);
    /// whether it reaches further than this reader knew.
    fn learn_heap(&self) -> bool {
        let h = self.map.header();
        let lines = h.heap_lines.load(Relaxed) as usize;
        fence(Acquire);
        let size = file::file_size(&self.file) as usize;
        let backed = (self.reg.heap + lines * 64).min(size).min(self.map.len());
        self.map.set_valid(backed);
        let known = backed.saturating_sub(self.reg.heap) / 64;
        known > self.known.fetch_max(known, StdOrdering::Relaxed)
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
        let a = u32::from(addr);
        self.read(|v| {
            let val = v.value(a)?;
            if val == 0 {
                return Ok(None);
            }
            let hop = v.nexthop(value_nh(val))?;
            Ok(Some(hop.route(Prefix::truncating(addr, value_depth(val)))))
        })
    }

    /// The matching prefix and its next-hop index only (data planes that keep their own copy
    /// of the next-hop records, which [`RouteReader::nexthop`] reads).
    #[inline]
    pub fn lookup_nh(&self, addr: Ipv4Addr) -> Result<Option<NextHopRef>, ShmError> {
        let a = u32::from(addr);
        let val = self.read(|v| v.value(a))?;
        Ok((val & VALUE_VALID != 0).then(|| NextHopRef {
            dst: Prefix::truncating(addr, value_depth(val)),
            nexthop: value_nh(val),
        }))
    }

    /// Next-hop record `i`.
    pub fn nexthop(&self, i: u32) -> Result<NextHop, ShmError> {
        self.read(|v| v.nexthop(i))
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
        for (a, o) in addrs.chunks(BATCH_GROUP).zip(out.chunks_mut(BATCH_GROUP)) {
            self.read(|v| {
                values(v, a, &mut vals)?;
                for ((addr, val), slot) in a.iter().zip(&vals).zip(o.iter_mut()) {
                    *slot = if *val == 0 {
                        None
                    } else {
                        let hop = v.nexthop(value_nh(*val))?;
                        Some(hop.route(Prefix::truncating(*addr, value_depth(*val))))
                    };
                }
                Ok(())
            })?;
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
            self.read(|v| values(v, a, &mut vals))?;
            for ((addr, val), slot) in a.iter().zip(&vals).zip(o.iter_mut()) {
                *slot = (val & VALUE_VALID != 0).then(|| NextHopRef {
                    dst: Prefix::truncating(*addr, value_depth(*val)),
                    nexthop: value_nh(*val),
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
                let (addr, len, _, nh) = entry_fields(a);
                let hop = v.nexthop(nh)?;
                if len > 32 {
                    return Err(Garbage);
                }
                out.push(Versioned {
                    entry: hop.route(Prefix::truncating(addr.into(), len)),
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

/// The values of a group of addresses, stage by stage: the page words, then the chunk roots,
/// then the searches, then tier 1 for those tier 2 leaves empty.
#[inline(always)]
fn values(v: &View<'_>, addrs: &[Ipv4Addr], vals: &mut [u32; BATCH_GROUP]) -> Result<(), Garbage> {
    for a in addrs {
        let a = u32::from(*a);
        let page = v
            .top_lpm
            .get((a >> 24) as usize)
            .map_or(0, |w| w.load(Relaxed));
        if page != 0 {
            let k = ((a >> 14) as usize) % PAGE_SLOTS;
            if let Some(l) = v.heap.get(page as usize + k / 16) {
                prefetch(l);
            }
        }
    }
    fence(Acquire);
    for (a, val) in addrs.iter().zip(vals.iter_mut()) {
        *val = v.value(u32::from(*a))?;
    }
    Ok(())
}

impl TableReader<Route> for RouteReader {
    fn open(path: &Path) -> Result<Self, ShmError> {
        let o = file::open_read_only(path, TableKind::Route)?;
        let reg = Regions::of(&o.info.region, o.info.map_len)
            .ok_or_else(|| ShmError::bad(path, "inconsistent regions"))?;
        let r = RouteReader {
            path: path.to_path_buf(),
            file: o.file,
            map: o.map,
            info: o.info,
            reg,
            dev_ino: o.dev_ino,
            known: AtomicUsize::new(0),
        };
        r.learn_heap();
        if r.map.valid() < r.reg.heap {
            return Err(ShmError::bad(path, "shorter than its regions"));
        }
        Ok(r)
    }

    fn get(&self, key: &Prefix) -> Option<Versioned<Route>> {
        self.read(|v| {
            let Some((nh, _, b)) = v.find(key.addr_u32(), key.len())? else {
                return Ok(None);
            };
            Ok(Some(Versioned {
                entry: v.nexthop(nh)?.route(*key),
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
        match RouteReader::open(&self.path) {
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
            .heap
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
