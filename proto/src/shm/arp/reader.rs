//! Read-only access to an ARP file (clients, data planes): exact match by MAC, and the table.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::layout::{home, key_of, key_word, EMPTY, LIVE};
use super::writer::{dev_words, regions_of, Regions};
use crate::shm::file;
use crate::shm::header::{HeaderInfo, STATE_RETIRED};
use crate::shm::mapping::{prefetch, Mapping, Region};
use crate::shm::owner::Owners;
use crate::shm::record::{ShmError, TableKind, TableReader, Versioned, SEQ_MASK};
use crate::shm::seqlock::{read_patient, try_read_words, Patient};
use crate::shm::sync::{fence, AtomicU64, Line, Ordering::Acquire, Ordering::Relaxed, Quad};
use crate::types::{ArpEntry, IfName, MacAddr, IFNAME_MAX};

pub struct ArpReader {
    path: PathBuf,
    /// Whose files this reader maps (kept for reopening the path).
    owners: Owners,
    file: File,
    map: Mapping,
    info: HeaderInfo,
    reg: Regions,
    /// The slots and the device names, checked once when the file was opened: a lookup
    /// makes its views from these without checking offsets again.
    slots: Region<Quad>,
    devs: Region<Line>,
    /// The device names the file held when it was opened, decoded once: name `i` is
    /// `names[i - 1]`. A name never changes while its file lives, so a slot naming one of
    /// these needs no read of the device-name region; names added later are read from it.
    names: Vec<IfName>,
    dev_ino: (u64, u64),
}

/// What a slot read came to.
enum Slot {
    Empty,
    Other,
    Live(Versioned<ArpEntry>),
}

/// A MAC address as the low 48 bits of a word (as [`MacAddr::to_u64`], in one load).
#[inline(always)]
fn mac_word(mac: &MacAddr) -> u64 {
    let [a, b, c, d, e, f] = mac.0;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
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
fn written_names(devs: &[Line]) -> Vec<IfName> {
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

impl ArpReader {
    #[inline(always)]
    fn slots(&self) -> &[Quad] {
        self.slots.view(&self.map, self.reg.slot_count)
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
        let dev = match (data >> 32) as u16 {
            0 => None,
            i => match self.names.get(usize::from(i) - 1) {
                Some(&name) => Some(name),
                None => self.dev_name(i)?,
            },
        };
        Some(Versioned {
            entry: ArpEntry {
                mac: MacAddr::from_u64(mac),
                ip: Ipv4Addr::from(data as u32),
                dev,
            },
            seq: w[2] & SEQ_MASK,
        })
    }

    /// Device name `i` read from the file (one added since the file was opened); `None` if
    /// the words cannot be a name.
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
    fn slot_words(&self, q: &Quad) -> Result<Option<[u64; 3]>, ShmError> {
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
        let o = file::open_read_only(path, TableKind::Arp, owners)?;
        let reg = Regions::of(&o.info.region)
            .ok_or_else(|| ShmError::bad(path, "inconsistent regions"))?;
        if reg.file_len() as u64 > o.info.map_len || regions_of(&o.map, &reg).is_none() {
            return Err(ShmError::bad(path, "shorter than its regions"));
        }
        // Inside the backed part of the mapping (checked just above), so views never come
        // out empty.
        let short = || ShmError::bad(path, "shorter than its regions");
        let slots = Region::new(&o.map, reg.slots, reg.slot_count).ok_or_else(short)?;
        let devs = Region::new(&o.map, reg.dev, reg.dev_cap / 4).ok_or_else(short)?;
        let names = written_names(devs.view(&o.map, reg.dev_cap / 4));
        Ok(ArpReader {
            path: path.to_path_buf(),
            owners,
            file: o.file,
            map: o.map,
            info: o.info,
            reg,
            slots,
            devs,
            names,
            dev_ino: o.dev_ino,
        })
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
        match ArpReader::open_owned(&self.path, self.owners) {
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

    fn path(&self) -> &Path {
        &self.path
    }

    fn prefetch(&self, key: &MacAddr) {
        let slots = self.slots();
        if !slots.is_empty() {
            prefetch(&slots[home(mac_word(key), slots.len())]);
        }
    }
}

impl std::fmt::Debug for ArpReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArpReader")
            .field("path", &self.path)
            .field("generation", &self.info.generation)
            .finish()
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
        assert_eq!(early.names, vec!["eth0".parse().unwrap()]);
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
        assert_eq!(late.names.len(), 4);
        for e in &es {
            assert_eq!(early.get(&e.mac).map(|v| v.entry), Some(e.clone()), "{e:?}");
            assert_eq!(late.get(&e.mac).map(|v| v.entry), Some(e.clone()), "{e:?}");
        }
        assert_eq!(early.entries(), late.entries());
    }

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
