//! Read-only access to an ARP file (clients, data planes): exact match by MAC, and the table.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::layout::{home, key_of, EMPTY, LIVE};
use super::writer::{dev_words, regions_of, Regions};
use crate::shm::file;
use crate::shm::header::{HeaderInfo, STATE_RETIRED};
use crate::shm::mapping::{prefetch, Mapping};
use crate::shm::owner::Owners;
use crate::shm::record::{ShmError, TableKind, TableReader, Versioned, SEQ_MASK};
use crate::shm::seqlock::{read_patient, Patient};
use crate::shm::sync::{fence, Ordering::Acquire, Ordering::Relaxed, Quad};
use crate::types::{ArpEntry, MacAddr};

pub struct ArpReader {
    path: PathBuf,
    /// Whose files this reader maps (kept for reopening the path).
    owners: Owners,
    file: File,
    map: Mapping,
    info: HeaderInfo,
    reg: Regions,
    dev_ino: (u64, u64),
}

/// What a slot read came to.
enum Slot {
    Empty,
    Other,
    Live(Versioned<ArpEntry>),
}

impl ArpReader {
    fn slots(&self) -> &[Quad] {
        regions_of(&self.map, &self.reg).map_or(&[], |(_, s)| s)
    }

    /// Reads slot `q` for `mac` (any key if `None`).
    #[inline]
    fn read_slot(&self, q: &Quad, mac: Option<u64>) -> Result<Slot, ShmError> {
        let (seq, rest) = q.split_first().expect("a slot has 4 words");
        let rest: &[_; 3] = rest.try_into().expect("3 words");
        let w = match read_patient(seq, rest, || file::writer_alive(&self.file)) {
            Patient::Read(w) => w,
            // Its writer died in the middle of it: skipped (the next writer repairs it).
            Patient::Abandoned => return Ok(Slot::Other),
            Patient::Busy => {
                return Err(ShmError::Busy {
                    path: self.path.clone(),
                })
            }
        };
        let (m, state) = key_of(w[0]);
        if state == EMPTY {
            return Ok(Slot::Empty);
        }
        if state != LIVE || mac.is_some_and(|k| k != m) {
            return Ok(Slot::Other);
        }
        let devs = regions_of(&self.map, &self.reg).map_or(&[][..], |(d, _)| d);
        let dev = match (w[1] >> 32) as u16 {
            0 => None,
            i => match dev_words(devs, i).and_then(crate::shm::dev::decode) {
                Some(d) => d,
                None => return Ok(Slot::Other),
            },
        };
        if w[1] >> 48 != 0 {
            return Ok(Slot::Other);
        }
        Ok(Slot::Live(Versioned {
            entry: ArpEntry {
                mac: MacAddr::from_u64(m),
                ip: Ipv4Addr::from(w[1] as u32),
                dev,
            },
            seq: w[2] & SEQ_MASK,
        }))
    }

    /// The entry of `mac`; `Busy` if the writer is stopped in the middle of a slot on its way.
    #[inline]
    pub fn lookup(&self, mac: &MacAddr) -> Result<Option<Versioned<ArpEntry>>, ShmError> {
        let k = mac.to_u64();
        let slots = self.slots();
        let n = slots.len();
        if n == 0 {
            return Ok(None);
        }
        let mut i = home(k, n);
        for _ in 0..n {
            match self.read_slot(&slots[i], Some(k))? {
                Slot::Empty => return Ok(None),
                Slot::Live(v) => return Ok(Some(v)),
                Slot::Other => {}
            }
            i = (i + 1) & (n - 1);
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
        Ok(ArpReader {
            path: path.to_path_buf(),
            owners,
            file: o.file,
            map: o.map,
            info: o.info,
            reg,
            dev_ino: o.dev_ino,
        })
    }

    fn get(&self, key: &MacAddr) -> Option<Versioned<ArpEntry>> {
        self.lookup(key).ok().flatten()
    }

    fn entries(&self) -> Vec<Versioned<ArpEntry>> {
        let mut out: Vec<_> = self
            .slots()
            .iter()
            .filter(|q| q[0].load(Relaxed) != 0)
            .filter_map(|q| match self.read_slot(q, None) {
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
            prefetch(&slots[home(key.to_u64(), slots.len())]);
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
