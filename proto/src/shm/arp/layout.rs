//! The words of an ARP file (see the module above).

/// The header's region words of an ARP file.
pub const REGION_DEV: usize = 0;
pub const REGION_DEV_CAP: usize = 1;
pub const REGION_SLOTS: usize = 2;
pub const REGION_SLOT_COUNT: usize = 3;

/// Slot state: never used since the file was made or the table cleared; readers stop.
pub const EMPTY: u64 = 0;
/// Slot state: holds an entry.
pub const LIVE: u64 = 1;
/// Slot state: held an entry that was removed; readers keep probing.
pub const TOMBSTONE: u64 = 2;

/// Fewest slots a file has.
pub const MIN_SLOTS: usize = 64;
/// Most slots a file has.
pub const MAX_SLOTS: usize = 1 << 30;
/// Most device names (indices are 16 bits; name 0 is "none").
pub const MAX_DEVS: usize = 1 << 16;

/// The fixed hash of a MAC word: the splitmix64 finalizer. Every process must use exactly this.
#[inline]
pub const fn hash(mac: u64) -> u64 {
    let mut z = mac;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The home slot of a MAC in a table of `n` slots: the high 64 bits of `hash(mac) * n`, which
/// for `n` a power of two (every table) are the top log2(n) bits of the hash.
#[inline]
pub const fn home(mac: u64, n: usize) -> usize {
    if n.is_power_of_two() {
        (hash(mac) >> 1 >> (63 - n.trailing_zeros())) as usize
    } else {
        ((hash(mac) as u128 * n as u128) >> 64) as usize
    }
}

/// Slot word 1.
#[inline]
pub const fn key_word(mac: u64, state: u64) -> u64 {
    (mac & 0xffff_ffff_ffff) | (state << 62)
}

/// Slot word 2.
#[inline]
pub const fn data_word(ip: u32, dev: u16) -> u64 {
    ip as u64 | ((dev as u64) << 32)
}

/// A slot word 1's (MAC, state).
#[inline]
pub const fn key_of(w: u64) -> (u64, u64) {
    (w & 0xffff_ffff_ffff, w >> 62)
}

/// Slots for `n` entries: at most half full, a power of two.
pub fn slots_for(n: usize) -> usize {
    (n.saturating_mul(2))
        .next_power_of_two()
        .clamp(MIN_SLOTS, MAX_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shift for a power of two is the high word of the product, as the layout says.
    #[test]
    fn home_is_the_high_word_of_the_product() {
        for n in [1usize, 2, 64, 1 << 17, 1 << 30, 3, 100] {
            for mac in [
                0u64,
                1,
                0xffff_ffff_ffff,
                0x0242_ac11_0002,
                0x1234_5678_9abc,
            ] {
                let want = ((hash(mac) as u128 * n as u128) >> 64) as usize;
                assert_eq!(home(mac, n), want, "n {n} mac {mac:#x}");
            }
        }
    }
}
