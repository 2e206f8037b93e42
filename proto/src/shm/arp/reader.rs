//! Read-only access to an ARP file (clients, data planes): exact match by MAC, and the table.

use std::net::Ipv4Addr;
use std::path::Path;

use super::layout::{home, key_of, key_word, EMPTY, LIVE};
use crate::shm::hashed::mac_word;
use crate::shm::hashed::table::{view_methods, TableView};
use crate::shm::mapping::prefetch;
use crate::shm::owner::Owners;
use crate::shm::record::{ShmError, TableKind, TableReader, Versioned, SEQ_MASK};
use crate::shm::sync::{Ordering::Relaxed, Quad};
use crate::types::{ArpEntry, MacAddr};

pub struct ArpReader {
    t: TableView,
}

/// What a slot read came to.
enum Slot {
    Empty,
    Other,
    Live(Versioned<ArpEntry>),
}

impl ArpReader {
    #[inline(always)]
    fn slots(&self) -> &[Quad] {
        self.t.slots()
    }

    /// The entry slot words `w` (read torn-free) hold for `mac`, or `None` if they hold
    /// something else (another key, no key, or words rtm's writer would not write).
    #[inline(always)]
    fn entry_of(&self, w: [u64; 3], mac: u64) -> Option<Versioned<ArpEntry>> {
        // A live slot's key word is the MAC with the state LIVE and zeros between them.
        let data = w[1];
        if w[0] != key_word(mac, LIVE) || data >> 48 != 0 {
            return None;
        }
        Some(Versioned {
            entry: ArpEntry {
                mac: MacAddr::from_u64(mac),
                ip: Ipv4Addr::from(data as u32),
                dev: self.t.dev((data >> 32) as u16)?,
            },
            seq: w[2] & SEQ_MASK,
        })
    }

    #[inline(always)]
    fn slot_words(&self, q: &Quad) -> Result<Option<[u64; 3]>, ShmError> {
        self.t.slot_words(q)
    }

    /// Reads slot `q`, whatever key it holds (the listing of the table).
    fn read_slot(&self, q: &Quad) -> Result<Slot, ShmError> {
        let Some(w) = self.slot_words(q)? else {
            return Ok(Slot::Other);
        };
        let (m, state) = key_of(w[0]);
        if state == EMPTY {
            return Ok(Slot::Empty);
        }
        Ok(self.entry_of(w, m).map_or(Slot::Other, Slot::Live))
    }

    /// The entry of `mac`; `Busy` if the writer is stopped in the middle of a slot on its way.
    ///
    /// Always inlined: called, its answer (a large `Result`) comes back through memory, which
    /// cost more than the lookup itself in the profiles; the slow paths stay out of line.
    #[inline(always)]
    pub fn lookup(&self, mac: &MacAddr) -> Result<Option<Versioned<ArpEntry>>, ShmError> {
        let k = mac_word(mac);
        let slots = self.slots();
        // The slot count is a power of two (checked when the file was opened).
        let Some(mask) = slots.len().checked_sub(1) else {
            return Ok(None);
        };
        let mut i = home(k, slots.len()) & mask;
        for _ in 0..slots.len() {
            if let Some(w) = self.slot_words(&slots[i])? {
                if let Some(v) = self.entry_of(w, k) {
                    return Ok(Some(v));
                }
                if key_of(w[0]).1 == EMPTY {
                    return Ok(None);
                }
            }
            i = (i + 1) & mask;
        }
        Ok(None)
    }
}

impl TableReader<ArpEntry> for ArpReader {
    fn open_owned(path: &Path, owners: Owners) -> Result<Self, ShmError> {
        let t = TableView::open(path, TableKind::Arp, owners, 1)?;
        Ok(ArpReader { t })
    }

    #[inline(always)]
    fn get(&self, key: &MacAddr) -> Option<Versioned<ArpEntry>> {
        self.lookup(key).ok().flatten()
    }

    fn entries(&self) -> Vec<Versioned<ArpEntry>> {
        let mut out: Vec<_> = self
            .slots()
            .iter()
            .filter(|q| q[0].load(Relaxed) != 0)
            .filter_map(|q| match self.read_slot(q) {
                Ok(Slot::Live(v)) => Some(v),
                _ => None,
            })
            .collect();
        out.sort_unstable_by_key(|v| v.entry.mac);
        out
    }

    view_methods!();

    fn prefetch(&self, key: &MacAddr) {
        let slots = self.slots();
        if !slots.is_empty() {
            prefetch(&slots[home(mac_word(key), slots.len())]);
        }
    }
}

impl std::fmt::Debug for ArpReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.t.debug("ArpReader", f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::tests::{arps_at, dir};
    use crate::shm::TableWriter;

    fn entry(n: u64, dev: Option<&str>) -> ArpEntry {
        ArpEntry {
            mac: MacAddr::from_u64(0x0200_0000_0000 + n),
            ip: Ipv4Addr::from(0x0a00_0000 + n as u32),
            dev: dev.map(|d| d.parse().unwrap()),
        }
    }

    /// A reader keeps the names the file held when it was opened; names added later (short
    /// and long) are read from the file, and a reader opened after them has them all.
    #[test]
    fn names_added_after_open_are_read_from_the_file() {
        let d = dir();
        let path = d.path().join("arp");
        let mut w = arps_at(&path, 100);
        w.upsert(&entry(0, Some("eth0")), 1).unwrap();
        let early = ArpReader::open(&path).unwrap();
        assert_eq!(early.t.names, vec!["eth0".parse().unwrap()]);
        let devs = [
            None,
            Some("eth0"),
            Some("a-fifteen-bytes"),
            Some("br0"),
            Some("vlan1234"),
        ];
        let es: Vec<_> = (1..=10).map(|n| entry(n, devs[n as usize % 5])).collect();
        for (n, e) in es.iter().enumerate() {
            w.upsert(e, n as u64 + 2).unwrap();
        }
        let late = ArpReader::open(&path).unwrap();
        assert_eq!(early.generation(), late.generation(), "no new file");
        assert_eq!(late.t.names.len(), 4);
        for e in &es {
            assert_eq!(early.get(&e.mac).map(|v| v.entry), Some(e.clone()), "{e:?}");
            assert_eq!(late.get(&e.mac).map(|v| v.entry), Some(e.clone()), "{e:?}");
        }
        assert_eq!(early.entries(), late.entries());
    }
}
