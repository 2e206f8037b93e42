//! The single writer of an ARP file (the daemon's ARP table actor).

use std::path::Path;

use super::layout::{data_word, home, key_of, key_word, slots_for, LIVE};
use crate::shm::file;
use crate::shm::hashed::table::{
    clear_slots, dev_cap_for, file_methods, find, free_slot, latest_by_key, vacate, write_slot,
    TableFile,
};
use crate::shm::hashed::tight_slots_for;
use crate::shm::header::Header;
use crate::shm::mapping::prefetch;
use crate::shm::record::{Access, Planned, ShmError, TableKind, TableWriter, Versioned, SEQ_MASK};
use crate::shm::sync::{Ordering::Relaxed, Quad};
use crate::types::{ArpEntry, IfName, MacAddr};

pub struct ArpWriter {
    t: TableFile,
    live: usize,
    tombstones: usize,
}

impl ArpWriter {
    fn header(&self) -> &Header {
        self.t.header()
    }

    fn slots(&self) -> &[Quad] {
        self.t.table(0)
    }

    /// The slot holding `mac` (probe order from its home; stops at EMPTY).
    fn find(&self, mac: u64) -> Option<usize> {
        let slots = self.slots();
        let want = key_word(mac, LIVE);
        find(slots, home(mac, slots.len()), |q| {
            q[1].load(Relaxed) == want
        })
    }

    fn entry_at(&self, i: usize) -> Option<Versioned<ArpEntry>> {
        let q = &self.slots()[i];
        let (mac, state) = key_of(q[1].load(Relaxed));
        if state != LIVE {
            return None;
        }
        let d = q[2].load(Relaxed);
        Some(Versioned {
            entry: ArpEntry {
                mac: MacAddr::from_u64(mac),
                ip: (d as u32).into(),
                dev: self.t.dev_name((d >> 32) as u16)?,
            },
            seq: q[3].load(Relaxed) & SEQ_MASK,
        })
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
            &self.t.path,
            self.t.access,
            self.t.limit,
            self.t.generation.wrapping_add(1),
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
        self.t.set_live(self.live);
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
    let dev_cap = dev_cap_for(names.len(), dev_cap);
    let hold = hold.max(entries.len());
    let (roomy, tight) = (slots_for(hold), tight_slots_for(hold));
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
    spec: (usize, u64, usize, usize, u64),
    old: Option<&Header>,
) -> Result<ArpWriter, ShmError> {
    let (t, new) = TableFile::create(path, access, TableKind::Arp, spec, 1)?;
    let mut w = ArpWriter {
        t,
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
        let full = ShmError::Full {
            capacity: self.t.limit,
        };
        let Some(dev) = self.t.intern(rec.dev.as_ref()) else {
            return Err(full);
        };
        let words = [
            key_word(mac, LIVE),
            data_word(rec.ip.into(), dev),
            seq & SEQ_MASK,
        ];
        if let Some(i) = self.find(mac) {
            write_slot(&self.slots()[i], &words);
            return Ok(());
        }
        let slots = self.slots();
        let Some((i, tombstone)) = free_slot(slots, home(mac, slots.len())) else {
            return Err(full);
        };
        write_slot(&slots[i], &words);
        self.tombstones -= usize::from(tombstone);
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
        let entries = latest_by_key(entries, limit)?;
        let old = file::open_current(path, TableKind::Arp);
        let generation = old.as_ref().map_or(1, |(_, m)| {
            m.header().generation.load(Relaxed).wrapping_add(1)
        });
        build(
            path,
            access.into(),
            limit,
            generation,
            entries,
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
                    if !self.t.has_dev(&d) && !new_devs.contains(&d) {
                        new_devs.push(d);
                    }
                }
            }
        }
        let n = self.t.reg.slot_count;
        let crowded = (self.live + self.tombstones + new_keys) * 4 > n * 3;
        let sparse = n > super::layout::MIN_SLOTS * 4 && self.live * 16 < n && new_keys == 0;
        if crowded || sparse || self.t.devs_full(new_devs.len()) {
            let entries = self.entries();
            let devs = (self.t.dev_count() + new_devs.len() + 1) * 2;
            self.rebuild(entries, self.live + new_keys, devs)?;
        }
        Ok(())
    }

    fn upsert(&mut self, rec: &ArpEntry, seq: u64) -> Result<(), ShmError> {
        if self.find(rec.mac.to_u64()).is_none() {
            if self.live >= self.t.limit {
                return Err(ShmError::Full {
                    capacity: self.t.limit,
                });
            }
            if (self.live + self.tombstones + 1) * 4 > self.t.reg.slot_count * 3 {
                self.reserve(std::iter::once(Planned::Put(rec)))?;
            }
        }
        if rec.dev.is_some_and(|d| !self.t.has_dev(&d)) && self.t.devs_full(1) {
            self.reserve(std::iter::once(Planned::Put(rec)))?;
        }
        self.put(rec, seq)
    }

    fn remove(&mut self, key: &MacAddr, seq: u64) -> Result<bool, ShmError> {
        let mac = key.to_u64();
        let Some(i) = self.find(mac) else {
            return Ok(false);
        };
        self.tombstones += usize::from(vacate(self.slots(), i, mac, seq));
        self.live -= 1;
        self.sync_counts();
        Ok(true)
    }

    fn clear(&mut self, seq: u64) {
        clear_slots(self.slots(), seq);
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
        let entries = latest_by_key(entries, self.t.limit)?;
        self.rebuild(entries, 0, 0)
    }

    fn len(&self) -> usize {
        self.live
    }

    file_methods!();
}

impl std::fmt::Debug for ArpWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.t.debug("ArpWriter", self.live, f)
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
        self.t.release_liveness_lock();
    }
}
