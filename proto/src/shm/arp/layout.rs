//! The words of an ARP file (see the module above); the hash, the key word and the slot states
//! are those of every hashed file (`shm::hashed`).

/// The header's region words of an ARP file (those of every hashed file).
pub use crate::shm::hashed::{REGION_DEV, REGION_DEV_CAP, REGION_SLOTS, REGION_SLOT_COUNT};

pub use crate::shm::hashed::{
    hash, home, key_of, key_word, slots_for, EMPTY, LIVE, MAX_DEVS, MAX_SLOTS, MIN_SLOTS, TOMBSTONE,
};

/// Slot word 2.
#[inline]
pub const fn data_word(ip: u32, dev: u16) -> u64 {
    ip as u64 | ((dev as u64) << 32)
}
