//! The file side of a hashed table: its regions, the writer's file (header, slots, device
//! names) and a reader's checked view of it. The ARP and neighbour writers and readers are
//! built on these and add only their slots' meaning.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{
    key_of, EMPTY, LIVE, MAX_DEVS, MAX_SLOTS, REGION_DEV, REGION_DEV_CAP, REGION_SECOND,
    REGION_SLOTS, REGION_SLOT_COUNT, TOMBSTONE,
};
use crate::shm::file::{self, NewFile};
use crate::shm::header::{
    Header, HeaderInfo, FAMILY_INET, HEADER_SIZE, LAYOUT_VERSION, MAGIC, STATE_ACTIVE,
    STATE_RETIRED,
};
use crate::shm::mapping::{Mapping, Region};
use crate::shm::owner::Owners;
use crate::shm::record::{Access, Record, ShmError, TableKind, Versioned, SEQ_MASK};
use crate::shm::seqlock::{read_patient, try_read_words, write_words, Patient};
use crate::shm::sync::{
    fence, AtomicU64, Line, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, Quad,
};
use crate::types::{IfName, IFNAME_MAX};

/// Device names a new file has room for, at least.
pub(crate) const MIN_DEVS: usize = 64;

/// Where a hashed file's regions are: `tables` tables of `slot_count` slots each, one after
/// the other, after the device names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Regions {
    pub dev: usize,
    pub dev_cap: usize,
    pub slots: usize,
    pub slot_count: usize,
    pub tables: usize,
}

impl Regions {
    pub fn new(dev_cap: usize, slot_count: usize, tables: usize) -> Regions {
        let dev = HEADER_SIZE;
        Regions {
            dev,
            dev_cap,
            slots: (dev + dev_cap * 16).next_multiple_of(64),
            slot_count,
            tables,
        }
    }

    /// The regions the header's words name, if they are consistent.
    pub fn of(region: &[u64; 8], tables: usize) -> Option<Regions> {
        let r = Regions::new(
            usize::try_from(region[REGION_DEV_CAP]).ok()?,
            usize::try_from(region[REGION_SLOT_COUNT]).ok()?,
            tables,
        );
        let ok = region[REGION_DEV] as usize == r.dev
            && region[REGION_SLOTS] as usize == r.slots
            && (tables < 2 || region[REGION_SECOND] as usize == r.table(1))
            && r.dev_cap % 4 == 0
            && r.dev_cap <= MAX_DEVS
            && r.slot_count.is_power_of_two()
            && r.slot_count <= MAX_SLOTS;
        ok.then_some(r)
    }

    /// Where table `k` starts.
    pub fn table(&self, k: usize) -> usize {
        self.slots + k * self.slot_count * 32
    }

    pub fn file_len(&self) -> usize {
        self.table(self.tables).next_multiple_of(HEADER_SIZE)
    }
}

/// Device name `i`'s two words.
pub(crate) fn dev_words(devs: &[Line], i: u16) -> Option<[u64; 2]> {
    let l = devs.get(usize::from(i) / 4)?;
    let j = (usize::from(i) % 4) * 2;
    Some([l[j].load(Relaxed), l[j + 1].load(Relaxed)])
}

/// The device names written in full so far, from name 1 up to the first that is not.
///
/// The writer stores a name's first word, then its second (`Release`), before any slot names
/// it; each word goes from zero to its final value once. So the second word is loaded first
/// (`Acquire`): if it holds its final value, the first word does too. A name of at most seven
/// bytes lies wholly in its first word (its second is zero); a longer one ends with a non-zero
/// byte in the second word (names hold no NUL), so a second word still zero shows a name whose
/// writing is under way, and the scan stops there: later names are read from the file when a
/// slot names them, after its seqlock read has made them visible.
pub(crate) fn written_names(devs: &[Line]) -> Vec<IfName> {
    let mut names = Vec::new();
    for i in 1..devs.len() * 4 {
        let (l, j) = (&devs[i / 4], (i % 4) * 2);
        let w1 = l[j + 1].load(Acquire);
        let w0 = l[j].load(Relaxed);
        let len = usize::from(w0 as u8);
        let last = (u128::from(w1) << 64 | u128::from(w0)) >> (8 * len.min(IFNAME_MAX));
        if len == 0 || (len > 7 && last as u8 == 0) {
            break;
        }
        match crate::shm::dev::decode([w0, w1]) {
            Some(Some(name)) => names.push(name),
            _ => break,
        }
    }
    names
}

/// Writes slot `q`'s words 1..=3 under its seqlock.
pub(crate) fn write_slot(q: &Quad, words: &[u64; 3]) {
    let (seq, rest) = q.split_first().expect("a slot has 4 words");
    write_words(seq, rest.try_into().expect("3 words"), words);
}

/// The writer's search: the first LIVE slot on the probe path from `start` that `hit` accepts;
/// stops at EMPTY.
pub(crate) fn find(
    slots: &[Quad],
    start: usize,
    mut hit: impl FnMut(&Quad) -> bool,
) -> Option<usize> {
    let n = slots.len();
    let mut i = start;
    for _ in 0..n {
        let q = &slots[i];
        match key_of(q[1].load(Relaxed)).1 {
            EMPTY => return None,
            LIVE if hit(q) => return Some(i),
            _ => {}
        }
        i = (i + 1) & (n - 1);
    }
    None
}

/// The first slot a new key may take on the probe path from `start`: the first TOMBSTONE or
/// EMPTY; and whether it is a TOMBSTONE.
pub(crate) fn free_slot(slots: &[Quad], start: usize) -> Option<(usize, bool)> {
    let n = slots.len();
    let mut i = start;
    for _ in 0..n {
        let state = key_of(slots[i][1].load(Relaxed)).1;
        if state != LIVE {
            return Some((i, state == TOMBSTONE));
        }
        i = (i + 1) & (n - 1);
    }
    None
}

/// Empties LIVE slot `i` (its key word keeps `key` for the record); `true` if it became a
/// TOMBSTONE. A slot whose successor is EMPTY ends every probe path through it: it can be
/// EMPTY too, which keeps probes short.
pub(crate) fn vacate(slots: &[Quad], i: usize, key: u64, seq: u64) -> bool {
    let n = slots.len();
    let next_empty = key_of(slots[(i + 1) & (n - 1)][1].load(Relaxed)).1 == EMPTY;
    let state = if next_empty { EMPTY } else { TOMBSTONE };
    write_slot(&slots[i], &[super::key_word(key, state), 0, seq & SEQ_MASK]);
    state == TOMBSTONE
}

/// Empties every slot.
pub(crate) fn clear_slots(slots: &[Quad], seq: u64) {
    for q in slots {
        if q[1].load(Relaxed) != 0 {
            write_slot(q, &[0, 0, seq & SEQ_MASK]);
        }
    }
}

/// What a new file is made with: (limit, generation, slot count, device capacity, table
/// sequence number).
pub(crate) type Spec = (usize, u64, usize, usize, u64);

/// The device-name capacity of a new file holding `names` names and asked for `want`: a power
/// of two (readers take only capacities that fill whole lines of names).
pub(crate) fn dev_cap_for(names: usize, want: usize) -> usize {
    want.max((names + 1) * 2)
        .next_power_of_two()
        .clamp(MIN_DEVS, MAX_DEVS)
}

/// `entries` with later duplicates of a key winning; `Full` if more keys than `limit`.
pub(crate) fn latest_by_key<R: Record>(
    entries: Vec<Versioned<R>>,
    limit: usize,
) -> Result<Vec<Versioned<R>>, ShmError> {
    let mut by_key: HashMap<R::Key, Versioned<R>> = HashMap::new();
    for v in entries {
        by_key.insert(v.entry.key(), v);
    }
    if by_key.len() > limit {
        return Err(ShmError::Full { capacity: limit });
    }
    Ok(by_key.into_values().collect())
}

/// The writer's file: its mapping, header and regions, and the device names it has written.
pub(crate) struct TableFile {
    pub path: PathBuf,
    pub access: Access,
    pub limit: usize,
    pub generation: u64,
    file: File,
    pub map: Mapping,
    dev_ino: (u64, u64),
    pub reg: Regions,
    devs: HashMap<IfName, u16>,
}

impl TableFile {
    /// What a writer's `Debug` shows: its kind, path, generation, entries and slots.
    pub fn debug(
        &self,
        kind: &str,
        live: usize,
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        f.debug_struct(kind)
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("len", &live)
            .field("slots", &self.reg.slot_count)
            .finish()
    }

    /// Makes a new, unpublished file of `kind` with `tables` tables (all slots EMPTY, its
    /// header complete); the caller fills it and then publishes it with [`file::publish`].
    pub fn create(
        path: &Path,
        access: Access,
        kind: TableKind,
        (limit, generation, slot_count, dev_cap, table_seq): Spec,
        tables: usize,
    ) -> Result<(TableFile, NewFile), ShmError> {
        let reg = Regions::new(dev_cap, slot_count, tables);
        let len = reg.file_len();
        let new: NewFile = file::create_new(path, access)?;
        file::allocate(&new.file, path, kind, 0, len as u64)?;
        let map =
            Mapping::read_write(&new.file, len, len).map_err(|e| ShmError::io(&new.tmp, e))?;
        let h = map.header();
        h.magic.store(MAGIC, Relaxed);
        h.layout_version.store(LAYOUT_VERSION, Relaxed);
        h.kind.store(kind as u32, Relaxed);
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
        if tables > 1 {
            h.region[REGION_SECOND].store(reg.table(1) as u64, Relaxed);
        }
        let file = new
            .file
            .try_clone()
            .map_err(|e| ShmError::io(&new.tmp, e))?;
        let t = TableFile {
            path: path.to_path_buf(),
            access,
            limit,
            generation,
            file,
            map,
            dev_ino: new.dev_ino,
            reg,
            devs: HashMap::new(),
        };
        Ok((t, new))
    }

    pub fn header(&self) -> &Header {
        self.map.header()
    }

    /// Table `k`'s slots.
    pub fn table(&self, k: usize) -> &[Quad] {
        self.map
            .quads(self.reg.table(k), self.reg.slot_count)
            .expect("regions are in the file")
    }

    fn dev_lines(&self) -> &[Line] {
        self.map
            .lines(self.reg.dev, self.reg.dev_cap / 4)
            .expect("regions are in the file")
    }

    /// Device name `i` (0: none); `None` if the words are not a name.
    pub fn dev_name(&self, i: u16) -> Option<Option<IfName>> {
        match i {
            0 => Some(None),
            k => crate::shm::dev::decode(dev_words(self.dev_lines(), k)?),
        }
    }

    pub fn has_dev(&self, d: &IfName) -> bool {
        self.devs.contains_key(d)
    }

    /// The index of `d`'s name, if the file has it.
    pub fn dev_index(&self, d: &IfName) -> Option<u16> {
        self.devs.get(d).copied()
    }

    /// Device names written.
    pub fn dev_count(&self) -> usize {
        self.devs.len()
    }

    /// Whether `more` new names would fill the name region.
    pub fn devs_full(&self, more: usize) -> bool {
        self.devs.len() + 1 + more >= self.reg.dev_cap
    }

    /// The index of `dev`'s name, written into the file if new; `None` if the region is full.
    pub fn intern(&mut self, dev: Option<&IfName>) -> Option<u16> {
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

    /// Publishes the count of entries in the header.
    pub fn set_live(&self, live: usize) {
        self.header().live.store(live as u64, Relaxed);
    }

    pub fn set_table_seq(&self, seq: u64) {
        self.header().table_seq.store(seq, Release);
    }

    pub fn allocated_bytes(&self) -> u64 {
        self.header().file_len.load(Relaxed)
    }

    /// Unmaps the file and unlinks it if the path still holds it.
    pub fn remove_file(self) -> std::io::Result<()> {
        let TableFile {
            path,
            dev_ino,
            map,
            file,
            ..
        } = self;
        drop(map);
        drop(file);
        file::remove_if_ours(&path, dev_ino)
    }

    /// Releases the liveness lock as the writer's death would (tests).
    #[cfg(test)]
    pub fn release_liveness_lock(&self) {
        rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock).expect("unlock");
    }
}

/// A reader's view of a hashed file, checked once when it was opened.
pub(crate) struct TableView {
    pub path: PathBuf,
    /// Whose files this reader maps (kept for reopening the path).
    owners: Owners,
    kind: TableKind,
    file: File,
    pub map: Mapping,
    pub info: HeaderInfo,
    pub reg: Regions,
    /// The tables and the device names, checked when the file was opened: a lookup makes its
    /// views from these without checking offsets again.
    slots: Region<Quad>,
    second: Option<Region<Quad>>,
    devs: Region<Line>,
    /// The device names the file held when it was opened, decoded once: name `i` is
    /// `names[i - 1]`. A name never changes while its file lives, so a slot naming one of
    /// these needs no read of the device-name region; names added later are read from it.
    pub names: Vec<IfName>,
    dev_ino: (u64, u64),
}

impl TableView {
    /// What a reader's `Debug` shows: its kind, path and generation.
    pub fn debug(&self, kind: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(kind)
            .field("path", &self.path)
            .field("generation", &self.info.generation)
            .finish()
    }

    /// Opens and checks the file of `kind` with `tables` tables at `path`.
    pub fn open(
        path: &Path,
        kind: TableKind,
        owners: Owners,
        tables: usize,
    ) -> Result<TableView, ShmError> {
        let o = file::open_read_only(path, kind, owners)?;
        let reg = Regions::of(&o.info.region, tables)
            .ok_or_else(|| ShmError::bad(path, "inconsistent regions"))?;
        let short = || ShmError::bad(path, "shorter than its regions");
        let in_file = o.map.lines(reg.dev, reg.dev_cap / 4).is_some()
            && (0..tables).all(|k| o.map.quads(reg.table(k), reg.slot_count).is_some());
        if reg.file_len() as u64 > o.info.map_len || !in_file {
            return Err(short());
        }
        // Inside the backed part of the mapping (checked just above), so views never come
        // out empty.
        let slots = Region::new(&o.map, reg.slots, reg.slot_count).ok_or_else(short)?;
        let second = match tables {
            1 => None,
            _ => Some(Region::new(&o.map, reg.table(1), reg.slot_count).ok_or_else(short)?),
        };
        let devs = Region::new(&o.map, reg.dev, reg.dev_cap / 4).ok_or_else(short)?;
        let names = written_names(devs.view(&o.map, reg.dev_cap / 4));
        Ok(TableView {
            path: path.to_path_buf(),
            owners,
            kind,
            file: o.file,
            map: o.map,
            info: o.info,
            reg,
            slots,
            second,
            devs,
            names,
            dev_ino: o.dev_ino,
        })
    }

    /// The first table's slots.
    #[inline(always)]
    pub fn slots(&self) -> &[Quad] {
        self.slots.view(&self.map, self.reg.slot_count)
    }

    /// The second table's slots (none if the file has one table).
    #[inline(always)]
    pub fn second(&self) -> &[Quad] {
        match &self.second {
            Some(r) => r.view(&self.map, self.reg.slot_count),
            None => &[],
        }
    }

    /// Device name `i` (0: none), from the names read at open or else from the file; `None`
    /// if the words cannot be a name.
    #[inline(always)]
    pub fn dev(&self, i: u16) -> Option<Option<IfName>> {
        match i {
            0 => Some(None),
            i => match self.names.get(usize::from(i) - 1) {
                Some(&name) => Some(Some(name)),
                None => self.dev_name(i),
            },
        }
    }

    /// Device name `i` read from the file (one added since the file was opened).
    #[cold]
    #[inline(never)]
    fn dev_name(&self, i: u16) -> Option<Option<IfName>> {
        let devs = self.devs.view(&self.map, self.reg.dev_cap / 4);
        crate::shm::dev::decode(dev_words(devs, i)?)
    }

    /// Slot `q`'s three words, read torn-free: at once if no write is under way (the fast
    /// path), else waiting for the writer ([`read_patient`]); `None` if its writer died in the
    /// middle of it.
    #[inline(always)]
    pub fn slot_words(&self, q: &Quad) -> Result<Option<[u64; 3]>, ShmError> {
        let [seq, rest @ ..] = q;
        match try_read_words(seq, rest) {
            Ok(w) => Ok(Some(w)),
            Err(_) => self.slot_words_patient(seq, rest),
        }
    }

    /// [`Self::slot_words`] when the first attempt met a write: kept out of the lookup's code.
    #[cold]
    #[inline(never)]
    fn slot_words_patient(
        &self,
        seq: &AtomicU64,
        rest: &[AtomicU64; 3],
    ) -> Result<Option<[u64; 3]>, ShmError> {
        match read_patient(seq, rest, || file::writer_alive(&self.file)) {
            Patient::Read(w) => Ok(Some(w)),
            // Its writer died in the middle of it: skipped (the next writer repairs it).
            Patient::Abandoned => Ok(None),
            Patient::Busy => Err(ShmError::Busy {
                path: self.path.clone(),
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.map.header().live.load(Relaxed) as usize
    }

    pub fn capacity(&self) -> usize {
        self.info.limit as usize
    }

    pub fn table_seq(&self) -> u64 {
        let s = self.map.header().table_seq.load(Relaxed);
        fence(Acquire);
        s
    }

    pub fn generation(&self) -> u64 {
        self.info.generation
    }

    pub fn is_retired(&self) -> bool {
        let retired = self.map.header().state.load(Relaxed) == STATE_RETIRED;
        fence(Acquire);
        retired
    }

    /// Reopens the path if this file was retired or replaced; `Ok(true)` if it did.
    pub fn refresh(&mut self) -> Result<bool, ShmError> {
        let retired = self.is_retired();
        let replaced =
            file::replaced(&self.path, self.dev_ino).map_err(|e| ShmError::io(&self.path, e))?;
        if !retired && !replaced {
            return Ok(false);
        }
        let tables = if self.second.is_some() { 2 } else { 1 };
        match TableView::open(&self.path, self.kind, self.owners, tables) {
            Ok(r) => {
                *self = r;
                Ok(true)
            }
            Err(ShmError::Io { source, .. })
                if !retired && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// The [`crate::shm::TableReader`] methods a reader of a hashed file answers from its
/// [`TableView`] `self.t` alone.
macro_rules! view_methods {
    () => {
        fn len(&self) -> usize {
            self.t.len()
        }

        fn capacity(&self) -> usize {
            self.t.capacity()
        }

        fn table_seq(&self) -> u64 {
            self.t.table_seq()
        }

        fn generation(&self) -> u64 {
            self.t.generation()
        }

        fn is_retired(&self) -> bool {
            self.t.is_retired()
        }

        fn refresh(&mut self) -> Result<bool, ShmError> {
            self.t.refresh()
        }

        fn path(&self) -> &Path {
            &self.t.path
        }
    };
}

/// The [`crate::shm::TableWriter`] methods a writer of a hashed file answers from its
/// [`TableFile`] `self.t` alone.
macro_rules! file_methods {
    () => {
        fn set_table_seq(&self, seq: u64) {
            self.t.set_table_seq(seq);
        }

        fn capacity(&self) -> usize {
            self.t.limit
        }

        fn generation(&self) -> u64 {
            self.t.generation
        }

        fn path(&self) -> &Path {
            &self.t.path
        }

        fn allocated_bytes(&self) -> u64 {
            self.t.allocated_bytes()
        }

        fn remove_file(self) -> std::io::Result<()> {
            self.t.remove_file()
        }
    };
}

pub(crate) use {file_methods, view_methods};

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan at open stops at a long name whose second word is not there yet, and at words
    /// that cannot be a name.
    #[test]
    fn the_name_scan_stops_at_a_name_being_written() {
        let lines: Vec<Line> = (0..2).map(|_| Default::default()).collect();
        let put = |i: usize, w: [u64; 2]| {
            lines[i / 4][(i % 4) * 2].store(w[0], Relaxed);
            lines[i / 4][(i % 4) * 2 + 1].store(w[1], Relaxed);
        };
        let name = |s: &str| crate::shm::dev::encode(Some(&s.parse().unwrap()));
        put(1, name("eth0"));
        let long = name("enp0s31f6");
        put(2, [long[0], 0]);
        put(3, name("br0"));
        assert_eq!(written_names(&lines), vec!["eth0".parse().unwrap()]);
        put(2, long);
        let all: Vec<IfName> = ["eth0", "enp0s31f6", "br0"]
            .map(|s| s.parse().unwrap())
            .into();
        assert_eq!(written_names(&lines), all);
        put(5, [16, 0]);
        put(6, name("eth1"));
        assert_eq!(written_names(&lines), all, "a length of 16 ends the scan");
    }
}
