//! How [`Route`] and [`ArpEntry`] are encoded into 6 record words: an ARP entry's hash slot
//! holds these words; a route's next-hop slot holds them with the key word zeroed, and its hash
//! slot only the key word and the next-hop slot's index.
//!
//! Both encodings are strict: every bit that has no meaning must be zero, and `decode` refuses
//! anything that `encode` could not have produced, so garbage is never turned into an entry.
//!
//! Route (key [`Prefix`]):
//! ```text
//! word 0  key word: addr << 8 | len            (bits 63..40 zero, len <= 32, host bits zero)
//! word 1  via: bit 32 = present, bits 31..0 = address   (other bits zero; address zero if absent)
//! word 2  metric in bits 31..0                  (other bits zero)
//! word 3  zero (reserved)
//! word 4,5  dev: 16 bytes, little-endian across the two words:
//!           byte 0 = name length (0 = no device, else 1..=15), bytes 1..=len = name, rest zero
//! ```
//!
//! ArpEntry (key [`MacAddr`]):
//! ```text
//! word 0  key word: MacAddr::to_u64 (bits 63..48 zero)
//! word 1  ip in bits 31..0 (other bits zero)
//! word 2,3  zero (reserved)
//! word 4,5  dev, as for routes
//! ```

use std::net::Ipv4Addr;

use super::layout::{RouteSlot, Slot, TableKind, PAYLOAD_WORDS};
use super::Record;
use crate::types::{mask, ArpEntry, IfName, MacAddr, Prefix, Route, IFNAME_MAX};

fn encode_dev(dev: Option<&IfName>) -> [u64; 2] {
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

/// `Some(None)` for no device, `Some(Some(name))` for a valid one, `None` if the words are invalid.
#[inline(always)]
fn decode_dev(w: [u64; 2]) -> Option<Option<IfName>> {
    if w == [0, 0] {
        return Some(None);
    }
    let b = ((u128::from(w[1]) << 64) | u128::from(w[0])).to_le_bytes();
    let (len, name) = b.split_first().expect("16 bytes");
    // Length 0 with a non-zero byte after it is refused here too.
    IfName::from_padded(*len, name.try_into().expect("15 bytes")).map(Some)
}

impl Record for Route {
    type Key = Prefix;
    const KIND: TableKind = TableKind::Route;
    type Slot = RouteSlot;

    fn key(&self) -> Prefix {
        self.dst
    }

    fn key_word(key: &Prefix) -> u64 {
        (u64::from(key.addr_u32()) << 8) | u64::from(key.len())
    }

    const LPM: bool = true;

    fn lpm_prefix(key: &Prefix) -> Option<(u32, u8)> {
        Some((key.addr_u32(), key.len()))
    }

    fn prefix_key_word(addr: u32, len: u8) -> Option<u64> {
        Some((u64::from(addr) << 8) | u64::from(len))
    }

    fn encode(&self) -> [u64; PAYLOAD_WORDS] {
        let via = self
            .via
            .map_or(0, |a| (1u64 << 32) | u64::from(u32::from(a)));
        let [d0, d1] = encode_dev(self.dev.as_ref());
        [
            Self::key_word(&self.dst),
            via,
            u64::from(self.metric),
            0,
            d0,
            d1,
        ]
    }

    #[inline]
    fn decode(w: &[u64; PAYLOAD_WORDS]) -> Option<Route> {
        if w[0] >> 40 != 0 || w[1] >> 33 != 0 || w[2] >> 32 != 0 || w[3] != 0 {
            return None;
        }
        let len = (w[0] & 0xff) as u8;
        let addr = (w[0] >> 8) as u32;
        if len > 32 || addr & !mask(len) != 0 {
            return None;
        }
        let dst = Prefix::new(Ipv4Addr::from(addr), len)?;
        let via = if w[1] >> 32 == 1 {
            Some(Ipv4Addr::from(w[1] as u32))
        } else if w[1] == 0 {
            None
        } else {
            return None;
        };
        let dev = decode_dev([w[4], w[5]])?;
        Some(Route {
            dst,
            via,
            dev,
            metric: w[2] as u32,
        })
    }
}

// Each record's hash slots are the size its files declare (`Mapping::slots` also checks this
// at run time).
#[cfg(not(loom))]
const _: () = {
    use std::mem::size_of;
    assert!(size_of::<<Route as Record>::Slot>() == TableKind::Route.slot_size());
    assert!(size_of::<<ArpEntry as Record>::Slot>() == TableKind::Arp.slot_size());
};

impl Record for ArpEntry {
    type Key = MacAddr;
    const KIND: TableKind = TableKind::Arp;
    type Slot = Slot;

    fn key(&self) -> MacAddr {
        self.mac
    }

    fn key_word(key: &MacAddr) -> u64 {
        key.to_u64()
    }

    fn encode(&self) -> [u64; PAYLOAD_WORDS] {
        let [d0, d1] = encode_dev(self.dev.as_ref());
        [
            Self::key_word(&self.mac),
            u64::from(u32::from(self.ip)),
            0,
            0,
            d0,
            d1,
        ]
    }

    fn decode(w: &[u64; PAYLOAD_WORDS]) -> Option<ArpEntry> {
        if w[0] >> 48 != 0 || w[1] >> 32 != 0 || w[2] != 0 || w[3] != 0 {
            return None;
        }
        Some(ArpEntry {
            mac: MacAddr::from_u64(w[0]),
            ip: Ipv4Addr::from(w[1] as u32),
            dev: decode_dev([w[4], w[5]])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str, via: Option<&str>, dev: Option<&str>, metric: u32) -> Route {
        Route {
            dst: s.parse().unwrap(),
            via: via.map(|v| v.parse().unwrap()),
            dev: dev.map(|d| d.parse().unwrap()),
            metric,
        }
    }

    #[test]
    fn route_round_trip() {
        for r in [
            route("0.0.0.0/0", Some("10.0.0.1"), None, 0),
            route(
                "255.255.255.255/32",
                None,
                Some("a23456789012345"),
                u32::MAX,
            ),
            route("10.1.0.0/16", Some("0.0.0.0"), Some("eth0"), 7),
            route("128.0.0.0/1", Some("255.255.255.255"), Some("x"), 1),
        ] {
            let w = r.encode();
            assert_eq!(w[0], Route::key_word(&r.dst));
            assert_eq!(Route::decode(&w), Some(r.clone()), "{r}");
        }
    }

    #[test]
    fn route_keys_are_unique() {
        let a: Prefix = "10.0.0.0/8".parse().unwrap();
        let b: Prefix = "10.0.0.0/16".parse().unwrap();
        let c: Prefix = "0.0.0.0/0".parse().unwrap();
        let d: Prefix = "0.0.0.0/1".parse().unwrap();
        let ws: Vec<u64> = [a, b, c, d].iter().map(Route::key_word).collect();
        for i in 0..ws.len() {
            for j in 0..i {
                assert_ne!(ws[i], ws[j]);
            }
        }
    }

    #[test]
    fn route_decode_rejects_garbage() {
        let good = route("10.1.0.0/16", Some("1.2.3.4"), Some("eth0"), 7).encode();
        let mut bad = Vec::new();
        let mut w = good;
        w[0] = (u64::from(u32::from(Ipv4Addr::new(10, 1, 0, 1))) << 8) | 16; // host bits
        bad.push(w);
        w = good;
        w[0] = 33; // len > 32
        bad.push(w);
        w = good;
        w[1] |= 1 << 40;
        bad.push(w);
        w = good;
        w[1] = 5; // address without the present bit
        bad.push(w);
        w = good;
        w[3] = 1;
        bad.push(w);
        w = good;
        w[4] = (w[4] & !0xff) | 16; // dev length > 15
        bad.push(w);
        w = good;
        w[5] |= 1 << 56; // byte after the name
        bad.push(w);
        w = good;
        w[4] = (w[4] & !0xff00) | (b'/' as u64) << 8; // invalid interface name
        bad.push(w);
        for (i, w) in bad.iter().enumerate() {
            assert_eq!(Route::decode(w), None, "case {i}");
        }
    }

    #[test]
    fn arp_round_trip_and_garbage() {
        let e = ArpEntry {
            mac: "aa:bb:cc:dd:ee:ff".parse().unwrap(),
            ip: "192.168.1.10".parse().unwrap(),
            dev: Some("veth0".parse().unwrap()),
        };
        let w = e.encode();
        assert_eq!(w[0], 0xaabb_ccdd_eeff);
        assert_eq!(ArpEntry::decode(&w), Some(e.clone()));
        let e2 = ArpEntry { dev: None, ..e };
        assert_eq!(ArpEntry::decode(&e2.encode()), Some(e2));
        let mut w2 = w;
        w2[0] |= 1 << 50;
        assert_eq!(ArpEntry::decode(&w2), None);
        let mut w3 = w;
        w3[2] = 1;
        assert_eq!(ArpEntry::decode(&w3), None);
    }
}
