//! Writing a whole route file: where its regions go, how much room each starts with, and the
//! file itself, written complete before it is published.

use std::path::Path;

use super::super::build::Image;
use super::super::layout::{
    MAX_HEAP_LINES, MAX_NEXTHOPS, REGION_BLK, REGION_BLK_MAX, REGION_LPM, REGION_LPM_MAX,
    REGION_NH, REGION_NH_CAP, REGION_TIER1, REGION_VALUES, TIER1_WORDS, VALUE_SLOTS,
};
use super::super::nexthops::RecKey;
use super::super::view::encode_group;
use super::room::{MIN_HEADROOM, SLACK};
use crate::shm::file::{self, NewFile};
use crate::shm::header::{
    Header, FAMILY_INET, HEADER_SIZE, INCOMPAT_GROUPS, LAYOUT_VERSION, MAGIC, STATE_ACTIVE,
};
use crate::shm::mapping::Mapping;
use crate::shm::record::{Access, ShmError, TableKind};
use crate::shm::seqlock::write_words;
use crate::shm::sync::{AtomicU32, Line, Ordering::Relaxed};

/// Next-hop records a new file has room for, at least (when there is room).
const MIN_NEXTHOPS: usize = 256;
/// Value-table entries a new file has room for, at least (when there is room).
const MIN_VALUES: usize = 1024;

/// Where a route file's regions are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Regions {
    pub tier1: usize,
    pub values: usize,
    pub values_cap: usize,
    pub nh: usize,
    pub nh_cap: usize,
    pub lpm: usize,
    pub lpm_max: usize,
    pub blk: usize,
    pub blk_max: usize,
    pub map_len: usize,
}

impl Regions {
    /// The regions for `values_cap` value-table entries (a multiple of 16), `nh_cap` next-hop
    /// records and at most `lpm_max` and `blk_max` heap lines.
    pub fn new(values_cap: usize, nh_cap: usize, lpm_max: usize, blk_max: usize) -> Regions {
        let tier1 = HEADER_SIZE;
        let values = tier1 + TIER1_WORDS * 4;
        let nh = values + values_cap * 4;
        let lpm = nh + nh_cap * 64;
        let blk = lpm + lpm_max * 64;
        Regions {
            tier1,
            values,
            values_cap,
            nh,
            nh_cap,
            lpm,
            lpm_max,
            blk,
            blk_max,
            map_len: (blk + blk_max * 64).next_multiple_of(HEADER_SIZE),
        }
    }

    /// The regions a header describes, if they are consistent.
    pub fn of(region: &[u64; 8], map_len: u64) -> Option<Regions> {
        let get = |i: usize| usize::try_from(region[i]).ok();
        let (nh_cap, lpm_max, blk_max) = (
            get(REGION_NH_CAP)?,
            get(REGION_LPM_MAX)?,
            get(REGION_BLK_MAX)?,
        );
        let values_bytes = get(REGION_NH)?.checked_sub(get(REGION_VALUES)?)?;
        let values_cap = values_bytes / 4;
        if nh_cap > MAX_NEXTHOPS
            || lpm_max > MAX_HEAP_LINES
            || blk_max > MAX_HEAP_LINES
            || values_cap > VALUE_SLOTS
            || values_bytes % 64 != 0
        {
            return None;
        }
        let r = Regions::new(values_cap, nh_cap, lpm_max, blk_max);
        let ok = get(REGION_TIER1)? == r.tier1
            && get(REGION_VALUES)? == r.values
            && get(REGION_LPM)? == r.lpm
            && get(REGION_BLK)? == r.blk
            && usize::try_from(map_len).ok()? == r.map_len;
        ok.then_some(r)
    }
}

/// How much room beyond its contents a new file is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Room {
    /// Room to grow for a while without a new generation.
    Roomy,
    /// What it holds and a little more: for a file system too full for the roomy size (a table
    /// restored on the tmpfs it had filled).
    Tight,
}

impl Room {
    /// Heap lines a file starts with for a heap holding `used` lines.
    fn heap(self, used: usize, max: usize) -> usize {
        let headroom = match self {
            Room::Roomy => (used / 4).max(MIN_HEADROOM as usize),
            Room::Tight => SLACK as usize,
        };
        (used + headroom).min(max.max(used))
    }

    /// Next-hop records for `n` distinct next hops.
    pub fn nexthops(self, n: usize) -> usize {
        match self {
            Room::Roomy => ((n + 1) * 2)
                .next_power_of_two()
                .clamp(MIN_NEXTHOPS, MAX_NEXTHOPS),
            Room::Tight => (n + 1 + 16).min(MAX_NEXTHOPS),
        }
    }

    /// Value-table entries for `n` distinct values (a multiple of 16, entry 0 included).
    pub fn values(self, n: usize) -> usize {
        match self {
            Room::Roomy => ((n + 1) * 2)
                .next_power_of_two()
                .clamp(MIN_VALUES, VALUE_SLOTS),
            Room::Tight => (n + 1 + 64).next_multiple_of(16).min(VALUE_SLOTS),
        }
    }
}

/// Lines a heap of a table allowed `limit` routes may come to need (its part of the readers'
/// mapping), given `used` lines now.
pub(super) fn heap_max_for(limit: usize, used: usize) -> usize {
    let by_limit = (limit / 2).saturating_add(1 << 15);
    by_limit.max(used * 2).min(MAX_HEAP_LINES)
}

/// What a new file is made for besides its contents.
pub(super) struct Spec {
    pub access: Access,
    /// Value-table entries and next-hop records it has room for (at least).
    pub values_cap: usize,
    pub nh_cap: usize,
    /// Lines of each heap readers map: the heaps grow in place up to them.
    pub lpm_max: usize,
    pub blk_max: usize,
    pub generation: u64,
    pub table_seq: u64,
    pub limit: usize,
    /// Whether the file may hold next-hop groups even if the image has none (its header says
    /// so, and readers that do not know groups refuse it).
    pub groups: bool,
}

/// A freshly written file, not yet at its path.
pub(super) struct Written {
    pub new: NewFile,
    pub map: Mapping,
    pub reg: Regions,
    pub lpm_cap: u32,
    pub blk_cap: u32,
}

/// Writes `img` into a new file next to `path`, roomy if the file system has the room, else
/// tight.
pub(super) fn write_file(path: &Path, img: &Image, spec: &Spec) -> Result<Written, ShmError> {
    match write_sized(path, img, spec, Room::Roomy) {
        Err(ShmError::NoSpace { .. }) => write_sized(path, img, spec, Room::Tight),
        r => r,
    }
}

/// Writes `img` into a new file next to `path`: each region sized for what it holds plus `room`,
/// the storage reserved, and mapped for growth up to the spec's maximum.
fn write_sized(path: &Path, img: &Image, spec: &Spec, room: Room) -> Result<Written, ShmError> {
    let lpm_cap = room.heap(img.lpm.len(), spec.lpm_max);
    let blk_cap = room.heap(img.blk.len(), spec.blk_max);
    let reg = Regions::new(
        spec.values_cap.max(room.values(img.values.len())),
        spec.nh_cap.max(room.nexthops(img.nh_next as usize - 1)),
        spec.lpm_max.max(lpm_cap),
        spec.blk_max.max(blk_cap),
    );
    let new = file::create_new(path, spec.access)?;
    let to_lpm_end = reg.lpm + lpm_cap * 64;
    let file_len = reg.blk + blk_cap * 64;
    file::allocate(&new.file, path, TableKind::Route, 0, to_lpm_end as u64)?;
    file::allocate(
        &new.file,
        path,
        TableKind::Route,
        reg.blk as u64,
        (blk_cap * 64) as u64,
    )?;
    let map = Mapping::read_write(&new.file, reg.map_len, file_len)
        .map_err(|e| ShmError::io(&new.tmp, e))?;
    write_header(map.header(), &reg, spec, img, file_len, (lpm_cap, blk_cap));
    let bad = |what: &str| ShmError::bad(&new.tmp, format!("cannot view the {what}"));
    let tier1 = map
        .u32s(reg.tier1, TIER1_WORDS)
        .ok_or_else(|| bad("tier 1"))?;
    store32(tier1, &mut img.tier1.iter().copied());
    let values = map
        .u32s(reg.values, reg.values_cap)
        .ok_or_else(|| bad("values"))?;
    store32(&values[1..], &mut img.values.iter().map(|&(v, _)| v));
    let nh = map
        .lines(reg.nh, reg.nh_cap)
        .ok_or_else(|| bad("next hops"))?;
    for r in &img.nexthops {
        match &r.key {
            RecKey::Hop(hop) => write_record(&nh[r.at as usize], &hop.encode()),
            RecKey::Group(g) => {
                for (k, words) in encode_group(g.metric, &r.members).iter().enumerate() {
                    write_record(&nh[r.at as usize + k], words);
                }
            }
        }
    }
    for (off, cap, lines, what) in [
        (reg.lpm, lpm_cap, &img.lpm, "LPM heap"),
        (reg.blk, blk_cap, &img.blk, "block heap"),
    ] {
        let heap = map.lines(off, cap).ok_or_else(|| bad(what))?;
        for (line, words) in heap.iter().zip(lines) {
            for (w, &v) in line.iter().zip(words) {
                if v != 0 {
                    w.store(v, Relaxed);
                }
            }
        }
    }
    let h = map.header();
    store32(&h.top_lpm, &mut img.top_lpm.iter().copied());
    store32(&h.top_blk, &mut img.top_blk.iter().copied());
    Ok(Written {
        new,
        map,
        reg,
        lpm_cap: lpm_cap as u32,
        blk_cap: blk_cap as u32,
    })
}

fn write_header(
    h: &Header,
    reg: &Regions,
    spec: &Spec,
    img: &Image,
    file_len: usize,
    (lpm_cap, blk_cap): (usize, usize),
) {
    h.magic.store(MAGIC, Relaxed);
    h.layout_version.store(LAYOUT_VERSION, Relaxed);
    h.kind.store(TableKind::Route as u32, Relaxed);
    h.header_size.store(HEADER_SIZE as u32, Relaxed);
    h.family.store(FAMILY_INET, Relaxed);
    h.writer_pid.store(
        rustix::process::getpid().as_raw_nonzero().get() as u32,
        Relaxed,
    );
    h.generation.store(spec.generation, Relaxed);
    h.state.store(STATE_ACTIVE, Relaxed);
    h.table_seq.store(spec.table_seq, Relaxed);
    h.live.store(img.live as u64, Relaxed);
    h.file_len.store(file_len as u64, Relaxed);
    h.map_len.store(reg.map_len as u64, Relaxed);
    for (i, v) in [
        (REGION_TIER1, reg.tier1),
        (REGION_NH, reg.nh),
        (REGION_NH_CAP, reg.nh_cap),
        (REGION_BLK, reg.blk),
        (REGION_VALUES, reg.values),
        (REGION_LPM, reg.lpm),
        (REGION_LPM_MAX, reg.lpm_max),
        (REGION_BLK_MAX, reg.blk_max),
    ] {
        h.region[i].store(v as u64, Relaxed);
    }
    h.heap_lines.store(blk_cap as u64, Relaxed);
    h.lpm_lines.store(lpm_cap as u64, Relaxed);
    h.limit.store(spec.limit as u64, Relaxed);
    if spec.groups || img.nexthops.iter().any(|r| r.key.is_group()) {
        h.incompat.store(INCOMPAT_GROUPS, Relaxed);
    }
}

/// Stores the non-zero words of `src` into `dst` (a new file reads as zeros).
fn store32(dst: &[AtomicU32], src: &mut dyn Iterator<Item = u32>) {
    for (w, v) in dst.iter().zip(src) {
        if v != 0 {
            w.store(v, Relaxed);
        }
    }
}

/// Writes a next-hop record's words 1..=7 under its seqlock.
pub(super) fn write_record(line: &Line, words: &[u64; 7]) {
    let (seq, rest) = line.split_first().expect("a line has 8 words");
    write_words(seq, rest.try_into().expect("7 words"), words);
}
