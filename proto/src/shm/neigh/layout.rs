//! The words of a neighbour file (see the module above); the hash, the key word and the slot
//! states are those of every hashed file (`shm::hashed`).

pub use crate::shm::hashed::{
    hash, home, key_of, key_word, slots_for, EMPTY, LIVE, MAX_DEVS, MAX_SLOTS, MIN_SLOTS,
    REGION_DEV, REGION_DEV_CAP, REGION_SLOTS, REGION_SLOT_COUNT, TOMBSTONE,
};

/// The header's region word of the MAC slots.
pub const REGION_MACS: usize = crate::shm::hashed::REGION_SECOND;

/// The table of a neighbour file holding the entries.
pub const ENTRIES: usize = 0;
/// The table of a neighbour file indexing the entries by MAC.
pub const MACS: usize = 1;

/// An entry's key (the low 48 bits of its slot word 1): the address and the device index.
#[inline]
pub const fn entry_key(ip: u32, dev: u16) -> u64 {
    ip as u64 | ((dev as u64) << 32)
}

/// An entry key's (address, device index).
#[inline]
pub const fn entry_key_of(k: u64) -> (u32, u16) {
    (k as u32, (k >> 32) as u16)
}

/// The home slot of an entry with address `ip`, whatever its device.
#[inline]
pub const fn entry_home(ip: u32, n: usize) -> usize {
    home(ip as u64, n)
}

/// Entry slot word 2: the MAC and the origin's number.
#[inline]
pub const fn mac_word(mac: u64, origin: u8) -> u64 {
    (mac & 0xffff_ffff_ffff) | ((origin as u64 & 3) << 48)
}

/// An entry slot word 2's (MAC, origin number), if its unused bits are zero.
#[inline]
pub const fn mac_of(w: u64) -> Option<(u64, u8)> {
    if w >> 50 != 0 {
        return None;
    }
    Some((w & 0xffff_ffff_ffff, (w >> 48) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let k = entry_key(0xc0a8_010a, 7);
        assert_eq!(entry_key_of(k), (0xc0a8_010a, 7));
        assert_eq!(key_of(key_word(k, LIVE)), (k, LIVE));
        let w = mac_word(0x0211_2233_4455, 1);
        assert_eq!(mac_of(w), Some((0x0211_2233_4455, 1)));
        assert_eq!(mac_of(w | 1 << 50), None);
    }

    /// Every device's entry for an address starts its probe at the same slot.
    #[test]
    fn the_home_ignores_the_device() {
        let ip = 0x0a00_0001;
        assert_eq!(entry_home(ip, 1024), home(entry_key(ip, 0), 1024));
        assert_eq!(entry_home(ip, 1024), home(u64::from(ip), 1024));
    }
}
