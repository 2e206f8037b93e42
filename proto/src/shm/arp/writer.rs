//! The single writer of an ARP file (the daemon's ARP table actor).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::layout::{
    data_word, home, key_of, key_word, slots_for, EMPTY, LIVE, MAX_DEVS, REGION_DEV,
    REGION_DEV_CAP, REGION_SLOTS, REGION_SLOT_COUNT, TOMBSTONE,
};
use crate::shm::file::{self, NewFile};
use crate::shm::header::{Header, FAMILY_INET, HEADER_SIZE, LAYOUT_VERSION, MAGIC, STATE_ACTIVE};
use crate::shm::mapping::{prefetch, Mapping};
use crate::shm::record::{Access, Planned, ShmError, TableKind, TableWriter, Versioned, SEQ_MASK};
use crate::shm::seqlock::write_words;
use crate::shm::sync::{Line, Ordering::Relaxed, Ordering::Release, Quad};
use crate::types::{ArpEntry, IfName, MacAddr};

/// Device names a new file has room for, at least.
const MIN_DEVS: usize = 64;

/// Where an ARP file's regions are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Regions {
    pub dev: usize,
    pub dev_cap: usize,
    pub slots: usize,
    pub slot_count: usize,
}

impl Regions {
    fn new(dev_cap: usize, slot_count: usize) -> Regions {
        let dev = HEADER_SIZE;
        Regions {
            dev,
            dev_cap,
            slots: (dev + dev_cap * 16).next_multiple_of(64),
            slot_count,
        }
    }

    pub fn of(region: &[u64; 8]) -> Option<Regions> {
        let r = Regions::new(
            usize::try_from(region[REGION_DEV_CAP]).ok()?,
            usize::try_from(region[REGION_SLOT_COUNT]).ok()?,
        );
        let ok = region[REGION_DEV] as usize == r.dev
            && region[REGION_SLOTS] as usize == r.slots
            && r.dev_cap % 4 == 0
            && r.dev_cap <= MAX_DEVS
            && r.slot_count.is_power_of_two()
            && r.slot_count <= super::layout::MAX_SLOTS;
        ok.then_some(r)
    }

    pub fn file_len(&self) -> usize {
        (self.slots + self.slot_count * 32).next_multiple_of(HEADER_SIZE)
    }
}

/// The device table and the slots of a mapping.
pub(super) fn regions_of<'a>(map: &'a Mapping, r: &Regions) -> Option<(&'a [Line], &'a [Quad])> {
    Some((
        map.lines(r.dev, r.dev_cap / 4)?,
        map.quads(r.slots, r.slot_count)?,
    ))
}

/// Device name `i`'s two words.
pub(super) fn dev_words(devs: &[Line], i: u16) -> Option<[u64; 2]> {
    let l = devs.get(usize::from(i) / 4)?;
    let j = (usize::from(i) % 4) * 2;
    Some([l[j].load(Relaxed), l[j + 1].load(Relaxed)])
}

pub struct ArpWriter {
    path: PathBuf,
    access: Access,
    limit: usize,
    generation: u64,
    _file: File,
    map: Mapping,
    dev_ino: (u64, u64),
    reg: Regions,
    devs: HashMap<IfName, u16>,
    live: usize,
    tombstones: usize,
}

fn write_slot(q: &Quad, words: &[u64; 3]) {
    let (seq, rest) = q.split_first().expect("a slot has 4 words");
    write_words(seq, rest.try_into().expect("3 words"), words);
}

impl ArpWriter {
    fn header(&self) -> &Header {
        self.map.header()
    }

    fn slots(&self) -> &[Quad] {
        regions_of(&self.map, &self.reg)
            .expect("regions are in the file")
            .1
    }

    fn dev_lines(&self) -> &[Line] {
        regions_of(&self.map, &self.reg)
            .expect("regions are in the file")
            .0
    }

    /// The slot holding `mac` (probe order from its home; stops at EMPTY).
    fn find(&self, mac: u64) -> Option<usize> {
        let slots = self.slots();
        let n = slots.len();
        let mut i = home(mac, n);
        for _ in 0..n {
            let (m, state) = key_of(slots[i][1].load(Relaxed));
            match state {
                EMPTY => return None,
                LIVE if m == mac => return Some(i),
                _ => {}
            }
            i = (i + 1) & (n - 1);
        }
        None
    }

    /// The first slot a new `mac` may take: the first TOMBSTONE or EMPTY on its probe path.
    fn free_slot(&self, mac: u64) -> Option<usize> {
        let slots = self.slots();
        let n = slots.len();
        let mut i = home(mac, n);
        for _ in 0..n {
            let (_, state) = key_of(slots[i][1].load(Relaxed));
            if state != LIVE {
                return Some(i);
            }
            i = (i + 1) & (n - 1);
        }
        None
    }

    fn entry_at(&self, i: usize) -> Option<Versioned<ArpEntry>> {
        let q = &self.slots()[i];
        let (mac, state) = key_of(q[1].load(Relaxed));
        if state != LIVE {
            return None;
        }
        let d = q[2].load(Relaxed);
        let dev = match (d >> 32) as u16 {
            0 => None,
            k => crate::shm::dev::decode(dev_words(self.dev_lines(), k)?)?,
        };
        Some(Versioned {
            entry: ArpEntry {
                mac: MacAddr::from_u64(mac),
                ip: (d as u32).into(),
                dev,
            },
            seq: q[3].load(Relaxed) & SEQ_MASK,
        })
    }

    /// The index of `dev`'s name, written into the table if new; `None` if the table is full.
    fn intern(&mut self, dev: Option<&IfName>) -> Option<u16> {
        let Some(d) = dev else { return Some(0) };
        if let Some(&i) = self.devs.get(d) {
            return Some(i);
        }
        let i = self.devs.len() + 1;
        if i >= self.reg.dev_cap {
            return None;
        }
        let w = crate::shm::dev::encode(Some(d));
        let l = &self.dev_lines()[i / 4];
        let j = (i % 4) * 2;
        l[j].store(w[0], Relaxed);
        l[j + 1].store(w[1], Release);
        self.devs.insert(*d, i as u16);
        Some(i as u16)
    }

    /// Publishes a new generation holding `entries`, with room for `hold` entries (roomy if
    /// the file system allows, else tight) and `dev_cap` device names, and switches to it.
    fn rebuild(
        &mut self,
        entries: Vec<Versioned<ArpEntry>>,
        hold: usize,
        dev_cap: usize,
    ) -> Result<(), ShmError> {
        let table_seq = self.header().table_seq.load(Relaxed);
        let next = build(
            &self.path,
            self.access,
            self.limit,
            self.generation.wrapping_add(1),
            entries,
            hold,
            dev_cap,
            table_seq,
            Some(self.header()),
        )?;
        *self = next;
        Ok(())
    }

    fn sync_counts(&self) {
        self.header().live.store(self.live as u64, Relaxed);
    }
}

/// Writes a new file holding `entries` and publishes it at `path`, with room for `hold` entries
/// (at least the entries): roomy, or, if the file system has no room for that, the fewest
/// slots that hold them below the load at which the table grows.
#[allow(clippy::too_many_arguments)]
fn build(
    path: &Path,
    access: Access,
    limit: usize,
    generation: u64,
    entries: Vec<Versioned<ArpEntry>>,
    hold: usize,
    dev_cap: usize,
    table_seq: u64,
    old: Option<&Header>,
) -> Result<ArpWriter, ShmError> {
    let mut names: Vec<IfName> = entries.iter().filter_map(|v| v.entry.dev).collect();
    names.sort_unstable();
    names.dedup();
    // A power of two: readers take only capacities that fill whole lines of names.
    let dev_cap = dev_cap
        .max((names.len() + 1) * 2)
        .next_power_of_two()
        .clamp(MIN_DEVS, MAX_DEVS);
    let hold = hold.max(entries.len());
    let roomy = slots_for(hold);
    let tight = (hold * 4)
        .div_ceil(3)
        .next_power_of_two()
        .max(super::layout::MIN_SLOTS);
    let sized = |slots| {
        let spec = (limit, generation, slots, dev_cap, table_seq);
        build_sized(path, access, &entries, spec, old)
    };
    match sized(roomy) {
        Err(ShmError::NoSpace { .. }) if tight < roomy => sized(tight),
        r => r,
    }
}

/// [`build`] with (limit, generation, slot count, device capacity, table sequence number).
fn build_sized(
    path: &Path,
    access: Access,
    entries: &[Versioned<ArpEntry>],
    (limit, generation, slot_count, dev_cap, table_seq): (usize, u64, usize, usize, u64),
    old: Option<&Header>,
) -> Result<ArpWriter, ShmError> {
    let reg = Regions::new(dev_cap, slot_count);
    let len = reg.file_len();
    let new: NewFile = file::create_new(path, access)?;
    file::allocate(&new.file, path, TableKind::Arp, 0, len as u64)?;
    let map = Mapping::read_write(&new.file, len, len).map_err(|e| ShmError::io(&new.tmp, e))?;
    let h = map.header();
    h.magic.store(MAGIC, Relaxed);
    h.layout_version.store(LAYOUT_VERSION, Relaxed);
    h.kind.store(TableKind::Arp as u32, Relaxed);
    h.header_size.store(HEADER_SIZE as u32, Relaxed);
    h.family.store(FAMILY_INET, Relaxed);
    h.writer_pid.store(
        rustix::process::getpid().as_raw_nonzero().get() as u32,
        Relaxed,
    );
    h.generation.store(generation, Relaxed);
    h.state.store(STATE_ACTIVE, Relaxed);
    h.table_seq.store(table_seq, Relaxed);
    h.file_len.store(len as u64, Relaxed);
    h.map_len.store(len as u64, Relaxed);
    h.limit.store(limit as u64, Relaxed);
    h.region[REGION_DEV].store(reg.dev as u64, Relaxed);
    h.region[REGION_DEV_CAP].store(reg.dev_cap as u64, Relaxed);
    h.region[REGION_SLOTS].store(reg.slots as u64, Relaxed);
    h.region[REGION_SLOT_COUNT].store(reg.slot_count as u64, Relaxed);
    let dev_ino = new.dev_ino;
    let file = new
        .file
        .try_clone()
        .map_err(|e| ShmError::io(&new.tmp, e))?;
    let mut w = ArpWriter {
        path: path.to_path_buf(),
        access,
        limit,
        generation,
        _file: file,
        map,
        dev_ino,
        reg,
        devs: HashMap::new(),
        live: 0,
        tombstones: 0,
    };
    // The whole table is in the file before the file is at the path: a reader never sees a
    // generation half filled.
    for v in entries {
        w.put(&v.entry, v.seq)?;
    }
    file::publish(new, path, old)?;
    Ok(w)
}

impl ArpWriter {
    /// Writes `rec` into its slot (the table has room: checked by the caller).
    fn put(&mut self, rec: &ArpEntry, seq: u64) -> Result<(), ShmError> {
        let mac = rec.mac.to_u64();
        let dev = self.intern(rec.dev.as_ref()).ok_or(ShmError::Full {
            capacity: self.limit,
        })?;
        let words = [
            key_word(mac, LIVE),
            data_word(rec.ip.into(), dev),
            seq & SEQ_MASK,
        ];
        if let Some(i) = self.find(mac) {
            write_slot(&self.slots()[i], &words);
            return Ok(());
        }
        let i = self.free_slot(mac).ok_or(ShmError::Full {
            capacity: self.limit,
        })?;
        if key_of(self.slots()[i][1].load(Relaxed)).1 == TOMBSTONE {
            self.tombstones -= 1;
        }
        write_slot(&self.slots()[i], &words);
        self.live += 1;
        self.sync_counts();
        Ok(())
    }
}

impl TableWriter<ArpEntry> for ArpWriter {
    fn create(
        path: &Path,
        limit: usize,
        access: impl Into<Access>,
        entries: Vec<Versioned<ArpEntry>>,
        table_seq: u64,
    ) -> Result<Self, ShmError> {
        let access = access.into();
        let mut by_key: HashMap<MacAddr, Versioned<ArpEntry>> = HashMap::new();
        for v in entries {
            by_key.insert(v.entry.mac, v);
        }
        if by_key.len() > limit {
            return Err(ShmError::Full { capacity: limit });
        }
        let old = file::open_current(path, TableKind::Arp);
        let generation = old.as_ref().map_or(1, |(_, m)| {
            m.header().generation.load(Relaxed).wrapping_add(1)
        });
        build(
            path,
            access,
            limit,
            generation,
            by_key.into_values().collect(),
            0,
            0,
            table_seq,
            old.as_ref().map(|(_, m)| m.header()),
        )
    }

    fn reserve<'a>(
        &mut self,
        ops: impl Iterator<Item = Planned<'a, ArpEntry>>,
    ) -> Result<(), ShmError> {
        let (mut new_keys, mut new_devs) = (0usize, Vec::new());
        for op in ops {
            if let Planned::Put(r) = op {
                if self.find(r.mac.to_u64()).is_none() {
                    new_keys += 1;
                }
                if let Some(d) = r.dev {
                    if !self.devs.contains_key(&d) && !new_devs.contains(&d) {
                        new_devs.push(d);
                    }
                }
            }
        }
        let n = self.reg.slot_count;
        let crowded = (self.live + self.tombstones + new_keys) * 4 > n * 3;
        let sparse = n > super::layout::MIN_SLOTS * 4 && self.live * 16 < n && new_keys == 0;
        let devs_full = self.devs.len() + 1 + new_devs.len() >= self.reg.dev_cap;
        if crowded || sparse || devs_full {
            let entries = self.entries();
            let devs = (self.devs.len() + new_devs.len() + 1) * 2;
            self.rebuild(entries, self.live + new_keys, devs)?;
        }
        Ok(())
    }

    fn upsert(&mut self, rec: &ArpEntry, seq: u64) -> Result<(), ShmError> {
        if self.find(rec.mac.to_u64()).is_none() {
            if self.live >= self.limit {
                return Err(ShmError::Full {
                    capacity: self.limit,
                });
            }
            if (self.live + self.tombstones + 1) * 4 > self.reg.slot_count * 3 {
                self.reserve(std::iter::once(Planned::Put(rec)))?;
            }
        }
        if rec.dev.is_some_and(|d| !self.devs.contains_key(&d))
            && self.devs.len() + 2 >= self.reg.dev_cap
        {
            self.reserve(std::iter::once(Planned::Put(rec)))?;
        }
        self.put(rec, seq)
    }

    fn remove(&mut self, key: &MacAddr, seq: u64) -> Result<bool, ShmError> {
        let mac = key.to_u64();
        let Some(i) = self.find(mac) else {
            return Ok(false);
        };
        let slots = self.slots();
        let n = slots.len();
        // A slot whose successor is EMPTY ends every probe path through it: it can be EMPTY
        // too, which keeps probes short.
        let next_empty = key_of(slots[(i + 1) & (n - 1)][1].load(Relaxed)).1 == EMPTY;
        let state = if next_empty { EMPTY } else { TOMBSTONE };
        write_slot(&slots[i], &[key_word(mac, state), 0, seq & SEQ_MASK]);
        if state == TOMBSTONE {
            self.tombstones += 1;
        }
        self.live -= 1;
        self.sync_counts();
        Ok(true)
    }

    fn clear(&mut self, seq: u64) {
        for q in self.slots() {
            if q[1].load(Relaxed) != 0 {
                write_slot(q, &[0, 0, seq & SEQ_MASK]);
            }
        }
        self.live = 0;
        self.tombstones = 0;
        self.sync_counts();
    }

    fn contains(&self, key: &MacAddr) -> bool {
        self.find(key.to_u64()).is_some()
    }

    fn get(&self, key: &MacAddr) -> Option<Versioned<ArpEntry>> {
        self.entry_at(self.find(key.to_u64())?)
    }

    fn entries(&self) -> Vec<Versioned<ArpEntry>> {
        let mut out: Vec<_> = (0..self.slots().len())
            .filter_map(|i| self.entry_at(i))
            .collect();
        out.sort_unstable_by_key(|v| v.entry.mac);
        out
    }

    fn prefetch(&self, key: &MacAddr) {
        let slots = self.slots();
        prefetch(&slots[home(key.to_u64(), slots.len())]);
    }

    fn republish(&mut self, entries: Vec<Versioned<ArpEntry>>) -> Result<(), ShmError> {
        let mut by_key: HashMap<MacAddr, Versioned<ArpEntry>> = HashMap::new();
        for v in entries {
            by_key.insert(v.entry.mac, v);
        }
        if by_key.len() > self.limit {
            return Err(ShmError::Full {
                capacity: self.limit,
            });
        }
        self.rebuild(by_key.into_values().collect(), 0, 0)
    }

    fn set_table_seq(&self, seq: u64) {
        self.header().table_seq.store(seq, Release);
    }

    fn len(&self) -> usize {
        self.live
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
        self.header().file_len.load(Relaxed)
    }

    fn remove_file(self) -> std::io::Result<()> {
        let ArpWriter {
            path,
            dev_ino,
            map,
            _file,
            ..
        } = self;
        drop(map);
        drop(_file);
        file::remove_if_ours(&path, dev_ino)
    }
}

impl std::fmt::Debug for ArpWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArpWriter")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("len", &self.live)
            .field("slots", &self.reg.slot_count)
            .finish()
    }
}

#[cfg(test)]
impl ArpWriter {
    /// The sequence word of `mac`'s slot (tests make a writer die in the middle of it).
    pub(crate) fn slot_seq_of(&self, mac: &MacAddr) -> Option<&crate::shm::sync::AtomicU64> {
        self.find(mac.to_u64()).map(|i| &self.slots()[i][0])
    }

    /// Releases the liveness lock as the writer's death would.
    pub(crate) fn release_liveness_lock(&self) {
        rustix::fs::flock(&self._file, rustix::fs::FlockOperation::Unlock).expect("unlock");
    }
}
