//! ARP tables in shared memory, layout version 5: an open-addressing hash table keyed by MAC
//! address, whose slots are rewritten in place under a seqlock each, sized to what it holds
//! (a new generation when it must grow or may shrink).
//!
//! ```text
//! offset                 size                    contents
//! 0                      4096                    header (`shm::header`)
//! region[DEV] = 4096     16 × region[DEV_CAP]    device names; name 0 is "no device"
//! region[SLOTS]          32 × region[SLOT_COUNT] slots (the count is a power of two)
//! ```
//!
//! A device name is 16 bytes (as in a next-hop record: length, then the name, zero padded). A
//! name is written before any slot names it and never changes while the file lives.
//!
//! A slot, 32 bytes:
//!
//! ```text
//! word 0   seqlock sequence word
//! word 1   bits 47..0 MAC address (first octet in bits 47..40); bits 63..62 state: EMPTY 0,
//!          LIVE 1, TOMBSTONE 2; bits 61..48 zero
//! word 2   bits 31..0 IPv4 address; bits 47..32 device name index; bits 63..48 zero
//! word 3   bits 61..0 sequence number of the change that last wrote the slot
//! ```
//!
//! The home slot of a MAC is the high 64 bits of `hash(mac) * slot_count`, `hash` the
//! splitmix64 finalizer of the MAC word; then linear probing, wrapping around. A reader stops at
//! an EMPTY slot and skips TOMBSTONE slots and other keys. An all-zero slot is EMPTY.

pub mod layout;
#[cfg(not(loom))]
pub mod reader;
#[cfg(not(loom))]
pub mod writer;

#[cfg(not(loom))]
pub use reader::ArpReader;
#[cfg(not(loom))]
pub use writer::ArpWriter;

impl crate::shm::record::Record for crate::types::ArpEntry {
    type Key = crate::types::MacAddr;
    const KIND: crate::shm::record::TableKind = crate::shm::record::TableKind::Arp;
    #[cfg(not(loom))]
    type Writer = ArpWriter;
    #[cfg(not(loom))]
    type Reader = ArpReader;

    fn key(&self) -> crate::types::MacAddr {
        self.mac
    }
}
