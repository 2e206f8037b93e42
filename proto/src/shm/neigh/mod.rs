//! The kernel's neighbours in shared memory, layout version 5: keyed as the kernel keys them,
//! by (IPv4 address, device), in an open-addressing hash table whose entries are homed by their
//! address alone, so every device's entry for an address lies on one probe path; and a second
//! table of the same size, a multimap from MAC address to the entries that have it. Slots are
//! rewritten in place under a seqlock each, as in the ARP file ([`crate::shm::hashed`]); the
//! file is sized to what it holds (a new generation when it must grow or may shrink).
//!
//! ```text
//! offset                 size                    contents
//! 0                      4096                    header (`shm::header`)
//! region[DEV] = 4096     16 × region[DEV_CAP]    device names; name 0 is "no device"
//! region[SLOTS]          32 × region[SLOT_COUNT] entry slots (the count is a power of two)
//! region[MACS]           32 × region[SLOT_COUNT] MAC slots, right after the entry slots
//! ```
//!
//! Device names are as in the ARP file: 16 bytes each, written before any slot names one and
//! never changed while the file lives.
//!
//! An entry slot, 32 bytes:
//!
//! ```text
//! word 0   seqlock sequence word
//! word 1   bits 31..0 IPv4 address; bits 47..32 device name index; bits 63..62 state: EMPTY
//!          0, LIVE 1, TOMBSTONE 2; bits 61..48 zero
//! word 2   bits 47..0 MAC address (first octet in bits 47..40); bits 49..48 origin (0 rtm,
//!          1 kernel); bits 63..50 zero
//! word 3   bits 61..0 sequence number of the change that last wrote the slot
//! ```
//!
//! A MAC slot, 32 bytes:
//!
//! ```text
//! word 0   seqlock sequence word
//! word 1   bits 47..0 MAC address; bits 63..62 state as above; bits 61..48 zero
//! word 2   bits 31..0 index of the entry slot holding a neighbour with that MAC; bits 63..32
//!          zero
//! word 3   bits 61..0 sequence number of the change that last wrote the slot
//! ```
//!
//! The home of an entry is the high 64 bits of `hash(ip) * slot_count`, `ip` the address as
//! a word (the device takes no part); the home of a MAC slot is that of `hash(mac)`. `hash` is
//! the splitmix64 finalizer, as in the ARP file. Then linear probing, wrapping around; a reader
//! stops at an EMPTY slot and skips TOMBSTONE slots and other keys. An all-zero slot is EMPTY.
//!
//! A MAC has one MAC slot per entry that has it. The writer writes an entry before its MAC
//! slot and empties the MAC slot before the entry, but a reader may still meet a MAC slot
//! whose entry has since changed: it reads the entry under the entry's seqlock and takes it
//! only if it is LIVE with the MAC it asked for.
//!
//! All MAC slots of one MAC share a home, so k entries with one MAC make a run of k MAC slots,
//! which `by_mac` of any MAC homed in it reads through. The writer does not: it keeps its own
//! indices, outside the file, of each entry's MAC slot and of where each MAC's run may be
//! extended ([`NeighWriter`]).

pub mod layout;
#[cfg(not(loom))]
pub mod reader;
#[cfg(not(loom))]
pub mod writer;

#[cfg(not(loom))]
pub use reader::NeighReader;
#[cfg(not(loom))]
pub use writer::NeighWriter;

use crate::types::{NeighKey, Neighbour, Origin};

impl crate::shm::record::Record for Neighbour {
    type Key = NeighKey;
    const KIND: crate::shm::record::TableKind = crate::shm::record::TableKind::Neigh;
    #[cfg(not(loom))]
    type Writer = NeighWriter;
    #[cfg(not(loom))]
    type Reader = NeighReader;

    fn key(&self) -> NeighKey {
        Neighbour::key(self)
    }

    fn origin(&self) -> Origin {
        self.origin
    }

    fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
    }
}
