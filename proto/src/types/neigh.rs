//! The kernel's neighbours as rtm mirrors them: keyed as the kernel keys them, by (IPv4
//! address, device), each with its link-layer (MAC) address.
//!
//! rtm's ARP table is keyed by MAC and holds one IP per MAC; the kernel's neighbour table is
//! keyed by (IP, device), and one MAC often answers for several IPs (a router's secondary
//! addresses, proxy ARP, a load balancer). So the kernel's neighbours live in a table of their
//! own with the kernel's key, where none is lost, and shared memory answers both directions:
//! by IP (what a data plane forwarding to a next hop asks) and by MAC (every neighbour with
//! that address). See docs/kernel.md, "Neighbours".

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{unicast_next_hop, IfName, MacAddr, Origin, ParseError};

/// What identifies a neighbour: its IPv4 address on one device (the kernel's key in a
/// namespace). Ordered by address, then device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeighKey {
    pub ip: Ipv4Addr,
    pub dev: IfName,
}

/// `192.168.1.10 dev eth0`, as `ip neigh` names one.
impl fmt::Display for NeighKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.ip, self.dev)
    }
}

/// One neighbour: an IPv4 address on a device and the MAC it resolves to.
///
/// The kernel's state of the entry (REACHABLE, STALE, …) is not part of it: it changes every
/// few seconds without the MAC changing, and a reader forwards to the MAC in every state the
/// mirror keeps. Entries the kernel holds without a MAC (INCOMPLETE, FAILED) are not
/// neighbours here.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub dev: IfName,
    pub mac: MacAddr,
    /// Who put the entry into rtm (the kernel mirror writes `Kernel`).
    pub origin: Origin,
}

impl Neighbour {
    pub fn key(&self) -> NeighKey {
        NeighKey {
            ip: self.ip,
            dev: self.dev,
        }
    }

    /// Checks what the types cannot express: an address a neighbour can have (unicast). Any
    /// MAC is accepted, multicast ones included: the kernel holds such entries (a cluster
    /// answering for one IP with a group MAC) and the mirror keeps what the kernel has.
    pub fn validate(&self) -> Result<(), ParseError> {
        unicast_next_hop("neighbour", self.ip)
    }
}

/// iproute2 style: `192.168.1.10 dev eth0 lladdr 00:11:22:33:44:55`.
impl fmt::Display for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {} lladdr {}", self.ip, self.dev, self.mac)
    }
}

impl fmt::Debug for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Neighbour({self} origin {})", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(ip: &str, dev: &str, mac: &str) -> Neighbour {
        Neighbour {
            ip: ip.parse().unwrap(),
            dev: dev.parse().unwrap(),
            mac: mac.parse().unwrap(),
            origin: Origin::Kernel,
        }
    }

    #[test]
    fn shown_as_ip_neigh_shows_it() {
        let a = n("192.168.1.10", "eth0", "00:11:22:33:44:55");
        assert_eq!(
            a.to_string(),
            "192.168.1.10 dev eth0 lladdr 00:11:22:33:44:55"
        );
        assert_eq!(a.key().to_string(), "192.168.1.10 dev eth0");
    }

    /// One MAC with several addresses, and one address on several devices, are distinct keys.
    #[test]
    fn the_key_is_address_and_device() {
        let a = n("10.0.0.1", "eth0", "02:00:00:00:00:01");
        let b = n("10.0.0.2", "eth0", "02:00:00:00:00:01");
        let c = n("10.0.0.1", "eth1", "02:00:00:00:00:01");
        assert_ne!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        let mut keys = [c.key(), b.key(), a.key()];
        keys.sort();
        assert_eq!(keys, [a.key(), c.key(), b.key()]);
    }

    #[test]
    fn addresses_that_cannot_be_neighbours_are_refused_by_name() {
        for ip in ["0.0.0.0", "255.255.255.255", "224.0.0.1"] {
            let e = n(ip, "eth0", "02:00:00:00:00:01").validate().unwrap_err();
            assert!(e.to_string().contains(ip), "{e}");
        }
        n("10.0.0.1", "eth0", "01:00:5e:00:00:01")
            .validate()
            .unwrap();
    }

    #[test]
    fn postcard_round_trip() {
        let a = n("192.168.1.10", "veth-a", "00:11:22:33:44:55");
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Neighbour>(&bytes).unwrap(), a);
    }
}
