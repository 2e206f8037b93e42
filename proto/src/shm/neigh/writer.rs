//! The single writer of a neighbour file: it keeps the entries and their MAC index consistent.

use std::collections::HashMap;
use std::path::Path;

use super::layout::{
    entry_home, entry_key, entry_key_of, home, key_of, key_word, mac_of, mac_word, slots_for,
    EMPTY, ENTRIES, LIVE, MACS, MIN_SLOTS,
};
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
use crate::types::{IfName, MacAddr, NeighKey, Neighbour, Origin};

pub struct NeighWriter {
    t: TableFile,
    live: usize,
    /// TOMBSTONE slots among the entries and among the MAC slots.
    tombstones: [usize; 2],
    /// Entries by origin number.
    origins: [usize; 2],
    /// The MAC slot naming each entry slot (`NO_SLOT` for none), so that a removal or a MAC
    /// change finds it without walking the run of that MAC's slots. The writer's own; never
    /// in the file, and made anew with every generation.
    mac_slot_of: Vec<u32>,
    /// For a MAC, the slot where the search for a free MAC slot for it starts (see
    /// [`NeighWriter::free_mac`]), so that an add does not walk the run of that MAC's slots.
    /// The writer's own, as above.
    run_hint: HashMap<u64, u32>,
    /// MAC slots the writer's own walks have read, over every generation it wrote.
    #[cfg(test)]
    mac_probes: std::cell::Cell<u64>,
}

/// No MAC slot names this entry slot.
const NO_SLOT: u32 = u32::MAX;

impl NeighWriter {
    fn header(&self) -> &Header {
        self.t.header()
    }

    fn slots(&self) -> &[Quad] {
        self.t.table(ENTRIES)
    }

    fn macs(&self) -> &[Quad] {
        self.t.table(MACS)
    }

    /// The entry slot of `key`.
    fn find(&self, key: &NeighKey) -> Option<usize> {
        let ip = u32::from(key.ip);
        let want = key_word(entry_key(ip, self.t.dev_index(&key.dev)?), LIVE);
        let slots = self.slots();
        find(slots, entry_home(ip, slots.len()), |q| {
            q[1].load(Relaxed) == want
        })
    }

    /// The MAC slot of `mac` pointing at entry slot `i`: the one `mac_slot_of` names, or, if
    /// that is not it (never, unless the writer's own bookkeeping is wrong), the one a walk
    /// from the MAC's home finds.
    fn find_mac(&self, mac: u64, i: usize) -> Option<usize> {
        let want = key_word(mac, LIVE);
        let macs = self.macs();
        let hit = |q: &Quad| q[1].load(Relaxed) == want && q[2].load(Relaxed) == i as u64;
        self.count_probes(1);
        let j = self.mac_slot_of[i] as usize;
        if macs.get(j).is_some_and(hit) {
            return Some(j);
        }
        debug_assert!(false, "entry slot {i} has no MAC slot at {j}");
        find(macs, home(mac, macs.len()), hit)
    }

    #[cfg(test)]
    fn count_probes(&self, n: usize) {
        self.mac_probes.set(self.mac_probes.get() + n as u64);
    }

    #[cfg(not(test))]
    fn count_probes(&self, _: usize) {}

    /// The MAC and origin number entry slot `i` holds.
    fn mac_at(&self, i: usize) -> (u64, u8) {
        mac_of(self.slots()[i][2].load(Relaxed)).expect("the writer's own words")
    }

    fn entry_at(&self, i: usize) -> Option<Versioned<Neighbour>> {
        let q = &self.slots()[i];
        let (k, state) = key_of(q[1].load(Relaxed));
        if state != LIVE {
            return None;
        }
        let (ip, dev) = entry_key_of(k);
        let (mac, origin) = mac_of(q[2].load(Relaxed))?;
        Some(Versioned {
            entry: Neighbour {
                ip: ip.into(),
                dev: self.t.dev_name(dev)??,
                mac: MacAddr::from_u64(mac),
                origin: Origin::from_u8(origin)?,
            },
            seq: q[3].load(Relaxed) & SEQ_MASK,
        })
    }

    /// The MAC slot a new slot of `mac` may take, and whether it is a TOMBSTONE: the first
    /// TOMBSTONE or EMPTY slot from the MAC's hint, or from its home if it has none.
    ///
    /// The hint `p` of a MAC is a slot that is not EMPTY and whose key bits hold that MAC (a
    /// TOMBSTONE keeps them), with no EMPTY slot from the MAC's home to `p`. A slot found
    /// past `p` is then on the MAC's probe path: every reader walking from the home reaches
    /// it. That stays so while `p` is not EMPTY, for a slot becomes EMPTY only when the slot
    /// after it is EMPTY (`vacate`), so the first of home..=p to become EMPTY would be `p`;
    /// `add_mac` and `remove_mac` drop or move a hint before its slot holds another MAC or
    /// becomes EMPTY. TOMBSTONEs before the hint are not reused; they count toward growth as
    /// every TOMBSTONE does.
    fn free_mac(&self, mac: u64) -> Option<(usize, bool)> {
        let macs = self.macs();
        let n = macs.len();
        let start = self
            .run_hint
            .get(&mac)
            .map_or_else(|| home(mac, n), |&p| p as usize);
        let free = free_slot(macs, start);
        if let Some((j, _)) = free {
            self.count_probes((j.wrapping_sub(start) & (n - 1)) + 1);
        }
        free
    }

    /// Adds a MAC slot for `mac` pointing at entry slot `i`, in `free`, what `free_mac` found
    /// for `mac` with no MAC slot changed since.
    fn add_mac(&mut self, mac: u64, i: usize, seq: u64, free: (usize, bool)) {
        let (j, tombstone) = free;
        // A TOMBSTONE may be the hint of the MAC it held; it holds another now.
        let held = key_of(self.macs()[j][1].load(Relaxed)).0;
        if self.run_hint.get(&held) == Some(&(j as u32)) {
            self.run_hint.remove(&held);
        }
        write_slot(
            &self.macs()[j],
            &[key_word(mac, LIVE), i as u64, seq & SEQ_MASK],
        );
        self.tombstones[MACS] -= usize::from(tombstone);
        self.mac_slot_of[i] = j as u32;
        self.run_hint.insert(mac, j as u32);
    }

    /// Empties the MAC slot of `mac` pointing at entry slot `i`.
    fn remove_mac(&mut self, mac: u64, i: usize, seq: u64) {
        let Some(j) = self.find_mac(mac, i) else {
            return;
        };
        self.mac_slot_of[i] = NO_SLOT;
        let tombstone = vacate(self.macs(), j, mac, seq);
        self.tombstones[MACS] += usize::from(tombstone);
        if !tombstone && self.run_hint.get(&mac) == Some(&(j as u32)) {
            // The hint is EMPTY now. The slot before it, unless the hint was the home, is on
            // the MAC's path with no EMPTY slot before it: the hint if it still holds the MAC.
            let n = self.macs().len();
            let before = j.wrapping_sub(1) & (n - 1);
            match key_of(self.macs()[before][1].load(Relaxed)) {
                (k, state) if j != home(mac, n) && k == mac && state != EMPTY => {
                    self.run_hint.insert(mac, before as u32);
                }
                _ => {
                    self.run_hint.remove(&mac);
                }
            }
        }
    }

    /// Publishes a new generation holding `entries`, with room for `hold` entries (roomy if
    /// the file system allows, else tight) and `dev_cap` device names, and switches to it.
    fn rebuild(
        &mut self,
        entries: Vec<Versioned<Neighbour>>,
        hold: usize,
        dev_cap: usize,
    ) -> Result<(), ShmError> {
        #[cfg(test)]
        let probes = self.mac_probes.get();
        let table_seq = self.header().table_seq.load(Relaxed);
        let spec = (
            self.t.limit,
            self.t.generation.wrapping_add(1),
            hold,
            dev_cap,
            table_seq,
        );
        *self = build(
            &self.t.path,
            self.t.access,
            spec,
            entries,
            Some(self.header()),
        )?;
        #[cfg(test)]
        self.mac_probes.set(self.mac_probes.get() + probes);
        Ok(())
    }

    fn sync_counts(&self) {
        self.t.set_live(self.live);
    }

    /// Writes `rec` (the table has room for a new key: checked by the caller). Nothing is
    /// written if it fails.
    fn put(&mut self, rec: &Neighbour, seq: u64) -> Result<(), ShmError> {
        let full = ShmError::Full {
            capacity: self.t.limit,
        };
        let Some(dev) = self.t.intern(Some(&rec.dev)) else {
            return Err(full);
        };
        let (ip, mac, origin) = (u32::from(rec.ip), rec.mac.to_u64(), rec.origin.as_u8());
        let words = [
            key_word(entry_key(ip, dev), LIVE),
            mac_word(mac, origin),
            seq & SEQ_MASK,
        ];
        if let Some(i) = self.find(&rec.key()) {
            let (old_mac, old_origin) = self.mac_at(i);
            // Readers check the entry under its seqlock: a MAC slot that still names it
            // after its MAC changed is skipped, one not yet added is a change not yet seen.
            if old_mac != mac {
                if self.free_mac(mac).is_none() {
                    return Err(full);
                }
                write_slot(&self.slots()[i], &words);
                self.remove_mac(old_mac, i, seq);
                // Emptying the old slot may have ended the path to the slot found above.
                let free = self.free_mac(mac).expect("room was checked");
                self.add_mac(mac, i, seq, free);
            } else {
                write_slot(&self.slots()[i], &words);
            }
            self.origins[usize::from(old_origin)] -= 1;
            self.origins[usize::from(origin)] += 1;
            return Ok(());
        }
        let slots = self.slots();
        let (Some((i, tombstone)), Some(free)) = (
            free_slot(slots, entry_home(ip, slots.len())),
            self.free_mac(mac),
        ) else {
            return Err(full);
        };
        write_slot(&slots[i], &words);
        self.tombstones[ENTRIES] -= usize::from(tombstone);
        self.add_mac(mac, i, seq, free);
        self.live += 1;
        self.origins[usize::from(origin)] += 1;
        self.sync_counts();
        Ok(())
    }
}

/// Writes a new file holding `entries` and publishes it at `path`, with room for `hold`
/// entries (at least the entries): roomy, or, if the file system has no room for that, the
/// fewest slots that hold them below the load at which the table grows. `spec` is (limit,
/// generation, hold, device capacity, table sequence number).
fn build(
    path: &Path,
    access: Access,
    (limit, generation, hold, dev_cap, table_seq): (usize, u64, usize, usize, u64),
    entries: Vec<Versioned<Neighbour>>,
    old: Option<&Header>,
) -> Result<NeighWriter, ShmError> {
    let mut names: Vec<IfName> = entries.iter().map(|v| v.entry.dev).collect();
    names.sort_unstable();
    names.dedup();
    let dev_cap = dev_cap_for(names.len(), dev_cap);
    let hold = hold.max(entries.len());
    let (roomy, tight) = (slots_for(hold), tight_slots_for(hold));
    let sized = |slots| {
        let spec = (limit, generation, slots, dev_cap, table_seq);
        let (t, new) = TableFile::create(path, access, TableKind::Neigh, spec, 2)?;
        let count = t.reg.slot_count;
        let mut w = NeighWriter {
            t,
            live: 0,
            tombstones: [0; 2],
            origins: [0; 2],
            mac_slot_of: vec![NO_SLOT; count],
            run_hint: HashMap::new(),
            #[cfg(test)]
            mac_probes: Default::default(),
        };
        // The whole table is in the file before the file is at the path: a reader never sees
        // a generation half filled.
        for v in &entries {
            w.put(&v.entry, v.seq)?;
        }
        file::publish(new, path, old)?;
        Ok(w)
    };
    match sized(roomy) {
        Err(ShmError::NoSpace { .. }) if tight < roomy => sized(tight),
        r => r,
    }
}

impl TableWriter<Neighbour> for NeighWriter {
    fn create(
        path: &Path,
        limit: usize,
        access: impl Into<Access>,
        entries: Vec<Versioned<Neighbour>>,
        table_seq: u64,
    ) -> Result<Self, ShmError> {
        let entries = latest_by_key(entries, limit)?;
        let old = file::open_current(path, TableKind::Neigh);
        let generation = old.as_ref().map_or(1, |(_, m)| {
            m.header().generation.load(Relaxed).wrapping_add(1)
        });
        let spec = (limit, generation, 0, 0, table_seq);
        build(
            path,
            access.into(),
            spec,
            entries,
            old.as_ref().map(|(_, m)| m.header()),
        )
    }

    fn reserve<'a>(
        &mut self,
        ops: impl Iterator<Item = Planned<'a, Neighbour>>,
    ) -> Result<(), ShmError> {
        let (mut new_keys, mut new_devs) = (0usize, Vec::new());
        for op in ops {
            if let Planned::Put(r) = op {
                if self.find(&r.key()).is_none() {
                    new_keys += 1;
                }
                if !self.t.has_dev(&r.dev) && !new_devs.contains(&r.dev) {
                    new_devs.push(r.dev);
                }
            }
        }
        let n = self.t.reg.slot_count;
        let worn = self.tombstones[ENTRIES].max(self.tombstones[MACS]);
        let crowded = (self.live + worn + new_keys) * 4 > n * 3;
        let sparse = n > MIN_SLOTS * 4 && self.live * 16 < n && new_keys == 0;
        if crowded || sparse || self.t.devs_full(new_devs.len()) {
            let entries = self.entries();
            let devs = (self.t.dev_count() + new_devs.len() + 1) * 2;
            self.rebuild(entries, self.live + new_keys, devs)?;
        }
        Ok(())
    }

    fn upsert(&mut self, rec: &Neighbour, seq: u64) -> Result<(), ShmError> {
        // A new key takes a slot in both tables; a new MAC for a key, a MAC slot (leaving
        // its old one a TOMBSTONE, perhaps).
        let takes = match self.find(&rec.key()) {
            None if self.live >= self.t.limit => {
                return Err(ShmError::Full {
                    capacity: self.t.limit,
                })
            }
            None => true,
            Some(i) => self.mac_at(i).0 != rec.mac.to_u64(),
        };
        let worn = self.tombstones[ENTRIES].max(self.tombstones[MACS]);
        if takes && (self.live + worn + 1) * 4 > self.t.reg.slot_count * 3 {
            self.reserve(std::iter::once(Planned::Put(rec)))?;
        }
        if !self.t.has_dev(&rec.dev) && self.t.devs_full(1) {
            self.reserve(std::iter::once(Planned::Put(rec)))?;
        }
        self.put(rec, seq)
    }

    fn remove(&mut self, key: &NeighKey, seq: u64) -> Result<bool, ShmError> {
        let Some(i) = self.find(key) else {
            return Ok(false);
        };
        let (mac, origin) = self.mac_at(i);
        // The MAC slot goes first: a reader never follows one to an entry that is gone
        // without finding the entry changed.
        self.remove_mac(mac, i, seq);
        let k = key_of(self.slots()[i][1].load(Relaxed)).0;
        self.tombstones[ENTRIES] += usize::from(vacate(self.slots(), i, k, seq));
        self.live -= 1;
        self.origins[usize::from(origin)] -= 1;
        self.sync_counts();
        Ok(true)
    }

    fn clear(&mut self, seq: u64) {
        clear_slots(self.macs(), seq);
        clear_slots(self.slots(), seq);
        self.live = 0;
        self.tombstones = [0; 2];
        self.origins = [0; 2];
        self.mac_slot_of.fill(NO_SLOT);
        self.run_hint.clear();
        self.sync_counts();
    }

    fn contains(&self, key: &NeighKey) -> bool {
        self.find(key).is_some()
    }

    fn get(&self, key: &NeighKey) -> Option<Versioned<Neighbour>> {
        self.entry_at(self.find(key)?)
    }

    fn entries(&self) -> Vec<Versioned<Neighbour>> {
        let mut out: Vec<_> = (0..self.slots().len())
            .filter_map(|i| self.entry_at(i))
            .collect();
        out.sort_unstable_by_key(|v| v.entry.key());
        out
    }

    fn prefetch(&self, key: &NeighKey) {
        let slots = self.slots();
        prefetch(&slots[entry_home(u32::from(key.ip), slots.len())]);
    }

    fn republish(&mut self, entries: Vec<Versioned<Neighbour>>) -> Result<(), ShmError> {
        let entries = latest_by_key(entries, self.t.limit)?;
        self.rebuild(entries, 0, 0)
    }

    fn len(&self) -> usize {
        self.live
    }

    fn len_of(&self, origin: Origin) -> usize {
        self.origins[usize::from(origin.as_u8())]
    }

    file_methods!();
}

impl std::fmt::Debug for NeighWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.t.debug("NeighWriter", self.live, f)
    }
}

#[cfg(test)]
impl NeighWriter {
    /// MAC slots the writer's own walks have read, over every generation it wrote (a rebuild's
    /// included).
    pub(crate) fn mac_probes(&self) -> u64 {
        self.mac_probes.get()
    }

    /// The sequence word of `key`'s entry slot (tests make a writer die in the middle of it).
    pub(crate) fn slot_seq_of(&self, key: &NeighKey) -> Option<&crate::shm::sync::AtomicU64> {
        self.find(key).map(|i| &self.slots()[i][0])
    }

    /// Releases the liveness lock as the writer's death would.
    pub(crate) fn release_liveness_lock(&self) {
        self.t.release_liveness_lock();
    }
}
