//! Read-only access to a neighbour file (clients, data planes): exact match by (IP, device),
//! every device's entry for an IP, every entry with a MAC, and the table.

use std::net::Ipv4Addr;
use std::path::Path;

use super::layout::{entry_home, entry_key_of, home, key_of, key_word, mac_of, EMPTY, LIVE};
use crate::shm::hashed::mac_word;
use crate::shm::hashed::table::{view_methods, TableView};
use crate::shm::mapping::prefetch;
use crate::shm::owner::Owners;
use crate::shm::record::{ShmError, TableKind, TableReader, Versioned, SEQ_MASK};
use crate::shm::sync::{Ordering::Relaxed, Quad};
use crate::types::{IfName, MacAddr, NeighKey, Neighbour, Origin};

pub struct NeighReader {
    t: TableView,
}

impl NeighReader {
    #[inline(always)]
    fn slots(&self) -> &[Quad] {
        self.t.slots()
    }

    /// The neighbour entry slot words `w` (read torn-free) hold, or `None` if they hold none
    /// (an empty or removed slot, or words rtm's writer would not write).
    fn entry_of(&self, w: [u64; 3]) -> Option<Versioned<Neighbour>> {
        let (k, state) = key_of(w[0]);
        // A live slot's key word is the key with the state LIVE and zeros between them.
        if w[0] != key_word(k, LIVE) || state != LIVE {
            return None;
        }
        let (ip, dev) = entry_key_of(k);
        let (mac, origin) = mac_of(w[1])?;
        Some(Versioned {
            entry: Neighbour {
                ip: Ipv4Addr::from(ip),
                dev: self.t.dev(dev)??,
                mac: MacAddr::from_u64(mac),
                origin: Origin::from_u8(origin)?,
            },
            seq: w[2] & SEQ_MASK,
        })
    }

    /// Calls `f` with each entry on the probe path of `ip` that has that address, until `f`
    /// says stop (`false`) or the path ends; `Busy` if the writer is stopped in the middle of
    /// a slot on the way.
    fn each_of_ip(
        &self,
        ip: Ipv4Addr,
        mut f: impl FnMut(Versioned<Neighbour>) -> bool,
    ) -> Result<(), ShmError> {
        let slots = self.slots();
        let Some(mask) = slots.len().checked_sub(1) else {
            return Ok(());
        };
        let mut i = entry_home(u32::from(ip), slots.len()) & mask;
        for _ in 0..slots.len() {
            if let Some(w) = self.t.slot_words(&slots[i])? {
                if key_of(w[0]).1 == EMPTY {
                    return Ok(());
                }
                if let Some(v) = self.entry_of(w).filter(|v| v.entry.ip == ip) {
                    if !f(v) {
                        return Ok(());
                    }
                }
            }
            i = (i + 1) & mask;
        }
        Ok(())
    }

    /// The entry of `ip` on `dev`; `Busy` if the writer is stopped in the middle of a slot on
    /// its way.
    pub fn lookup(
        &self,
        ip: Ipv4Addr,
        dev: &IfName,
    ) -> Result<Option<Versioned<Neighbour>>, ShmError> {
        let mut found = None;
        self.each_of_ip(ip, |v| {
            if v.entry.dev != *dev {
                return true;
            }
            found = Some(v);
            false
        })?;
        Ok(found)
    }

    /// Every device's entry for `ip`, in key order (by device).
    pub fn by_ip(&self, ip: Ipv4Addr) -> Result<Vec<Versioned<Neighbour>>, ShmError> {
        let mut out = Vec::new();
        self.each_of_ip(ip, |v| {
            out.push(v);
            true
        })?;
        out.sort_unstable_by_key(|v| v.entry.key());
        out.dedup_by_key(|v| v.entry.key());
        Ok(out)
    }

    /// Every entry with `mac`, in key order. Each is read under its own seqlock and taken only
    /// if it still has `mac`: an entry that changed while the index was read is left out, never
    /// reported with a MAC it does not have.
    pub fn by_mac(&self, mac: &MacAddr) -> Result<Vec<Versioned<Neighbour>>, ShmError> {
        let (slots, macs) = (self.slots(), self.t.second());
        let k = mac_word(mac);
        let mut out = Vec::new();
        let Some(mask) = macs.len().checked_sub(1) else {
            return Ok(out);
        };
        let want = key_word(k, LIVE);
        let mut i = home(k, macs.len()) & mask;
        for _ in 0..macs.len() {
            if let Some(w) = self.t.slot_words(&macs[i])? {
                if key_of(w[0]).1 == EMPTY {
                    break;
                }
                let entry = usize::try_from(w[1]).ok().and_then(|j| slots.get(j));
                if let (true, Some(q)) = (w[0] == want, entry) {
                    if let Some(v) = self.t.slot_words(q)?.and_then(|e| self.entry_of(e)) {
                        if v.entry.mac == *mac {
                            out.push(v);
                        }
                    }
                }
            }
            i = (i + 1) & mask;
        }
        // An entry moved to another MAC slot while the index was read may show twice.
        out.sort_unstable_by_key(|v| v.entry.key());
        out.dedup_by_key(|v| v.entry.key());
        Ok(out)
    }
}

impl TableReader<Neighbour> for NeighReader {
    fn open_owned(path: &Path, owners: Owners) -> Result<Self, ShmError> {
        let t = TableView::open(path, TableKind::Neigh, owners, 2)?;
        Ok(NeighReader { t })
    }

    fn get(&self, key: &NeighKey) -> Option<Versioned<Neighbour>> {
        self.lookup(key.ip, &key.dev).ok().flatten()
    }

    fn entries(&self) -> Vec<Versioned<Neighbour>> {
        let mut out: Vec<_> = self
            .slots()
            .iter()
            .filter(|q| q[0].load(Relaxed) != 0)
            .filter_map(|q| self.t.slot_words(q).ok().flatten())
            .filter_map(|w| self.entry_of(w))
            .collect();
        out.sort_unstable_by_key(|v| v.entry.key());
        out
    }

    view_methods!();

    fn prefetch(&self, key: &NeighKey) {
        let slots = self.slots();
        if !slots.is_empty() {
            prefetch(&slots[entry_home(u32::from(key.ip), slots.len())]);
        }
    }
}

impl std::fmt::Debug for NeighReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.t.debug("NeighReader", f)
    }
}
