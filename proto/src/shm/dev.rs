//! A device name in two words: 16 bytes, little-endian across the words, byte 0 the name's
//! length (0 = no device, else 1..=15), then the name, zero padded. Decoding is strict: bytes
//! a writer would not write make the words invalid, so garbage never becomes a name.

use crate::types::{IfName, IFNAME_MAX};

pub fn encode(dev: Option<&IfName>) -> [u64; 2] {
    let mut b = [0u8; 16];
    if let Some(d) = dev {
        let name = d.as_bytes();
        // IfName guarantees 1..=15 bytes; clamp anyway so a bad value can't panic here.
        let n = name.len().min(IFNAME_MAX);
        b[0] = n as u8;
        b[1..=n].copy_from_slice(&name[..n]);
    }
    [
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
    ]
}

/// `Some(None)` for no device, `Some(Some(name))` for a name of valid shape, `None` if the
/// words cannot be a name. The characters are not checked again: only rtm's writer writes the
/// records this is read from, and it checked each name when it came in; a torn or reused
/// record never gets this far (seqlock, epoch).
#[inline(always)]
pub fn decode(w: [u64; 2]) -> Option<Option<IfName>> {
    if w == [0, 0] {
        return Some(None);
    }
    let b = ((u128::from(w[1]) << 64) | u128::from(w[0])).to_le_bytes();
    let (len, name) = b.split_first().expect("16 bytes");
    // Length 0 with a non-zero byte after it is refused here too.
    IfName::from_stored(*len, name.try_into().expect("15 bytes")).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for name in ["e", "eth0", "a-fifteen-bytes"] {
            let d: IfName = name.parse().unwrap();
            assert_eq!(decode(encode(Some(&d))), Some(Some(d)));
        }
        assert_eq!(decode(encode(None)), Some(None));
        assert_eq!(decode([0x100, 0]), None, "length 0 with a name byte");
        assert_eq!(decode([16, 0]), None, "length 16");
    }
}
