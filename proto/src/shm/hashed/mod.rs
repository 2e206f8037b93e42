//! What the ARP and neighbour files share: open-addressing hash tables of 32-byte slots, each
//! rewritten in place under its own seqlock and keyed by a 48-bit word, and a region of device
//! names the slots refer to by index.
//!
//! A slot's word 1 is its key word: the key in bits 47..0, the state in bits 63..62 (EMPTY,
//! LIVE, TOMBSTONE), zeros between. A key's home is the high 64 bits of `hash(h) * slot_count`
//! for the word `h` the table hashes (the key itself, or a part of it), then linear probing
//! that wraps around; a reader stops at an EMPTY slot and skips the others. An all-zero slot
//! is EMPTY.
//!
//! The layouts built on this are in [`crate::shm::arp`] and [`crate::shm::neigh`].

#[cfg(not(loom))]
pub(crate) mod table;

/// The header's region words every hashed file has: the device names and the first table.
pub const REGION_DEV: usize = 0;
pub const REGION_DEV_CAP: usize = 1;
pub const REGION_SLOTS: usize = 2;
pub const REGION_SLOT_COUNT: usize = 3;
/// The region word of a second table (as many slots as the first, right after it).
pub const REGION_SECOND: usize = 4;

/// Slot state: never used since the file was made or the table cleared; readers stop.
pub const EMPTY: u64 = 0;
/// Slot state: holds an entry.
pub const LIVE: u64 = 1;
/// Slot state: held an entry that was removed; readers keep probing.
pub const TOMBSTONE: u64 = 2;

/// Fewest slots a table has.
pub const MIN_SLOTS: usize = 64;
/// Most slots a table has.
pub const MAX_SLOTS: usize = 1 << 30;
/// Most device names (indices are 16 bits; name 0 is "none").
pub const MAX_DEVS: usize = 1 << 16;

/// The fixed hash of a word: the splitmix64 finalizer. Every process must use exactly this.
#[inline]
pub const fn hash(word: u64) -> u64 {
    let mut z = word;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The home slot of `word` in a table of `n` slots: the high 64 bits of `hash(word) * n`,
/// which for `n` a power of two (every table) are the top log2(n) bits of the hash.
#[inline]
pub const fn home(word: u64, n: usize) -> usize {
    if n.is_power_of_two() {
        (hash(word) >> 1 >> (63 - n.trailing_zeros())) as usize
    } else {
        ((hash(word) as u128 * n as u128) >> 64) as usize
    }
}

/// A key word: the 48-bit `key` with `state`.
#[inline]
pub const fn key_word(key: u64, state: u64) -> u64 {
    (key & 0xffff_ffff_ffff) | (state << 62)
}

/// A key word's (key, state).
#[inline]
pub const fn key_of(w: u64) -> (u64, u64) {
    (w & 0xffff_ffff_ffff, w >> 62)
}

/// A MAC address as the low 48 bits of a word (as [`crate::types::MacAddr::to_u64`], in one
/// load).
#[inline(always)]
pub fn mac_word(mac: &crate::types::MacAddr) -> u64 {
    let [a, b, c, d, e, f] = mac.0;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// Slots for `n` entries: at most half full, a power of two.
pub fn slots_for(n: usize) -> usize {
    (n.saturating_mul(2))
        .next_power_of_two()
        .clamp(MIN_SLOTS, MAX_SLOTS)
}

/// Slots for `n` entries when the file system has no room for [`slots_for`]: the fewest that
/// hold them below the load at which a table grows (three quarters).
pub fn tight_slots_for(n: usize) -> usize {
    (n * 4).div_ceil(3).next_power_of_two().max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shift for a power of two is the high word of the product, as the layout says.
    #[test]
    fn home_is_the_high_word_of_the_product() {
        for n in [1usize, 2, 64, 1 << 17, 1 << 30, 3, 100] {
            for key in [
                0u64,
                1,
                0xffff_ffff_ffff,
                0x0242_ac11_0002,
                0x1234_5678_9abc,
            ] {
                let want = ((hash(key) as u128 * n as u128) >> 64) as usize;
                assert_eq!(home(key, n), want, "n {n} key {key:#x}");
            }
        }
    }
}
