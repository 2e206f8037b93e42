//! The table types every rtm process agrees on: [`Prefix`], [`MacAddr`], [`IfName`],
//! [`Route`], [`ArpEntry`], [`Neighbour`] and [`Origin`].
//!
//! Parsing is strict and canonical (docs/cli.md, "Entries and values"): a prefix with host bits
//! set is rejected with an error naming the canonical form, MAC addresses are accepted in the
//! three usual spellings and always shown lower-case with colons. Every error names the value
//! that was wrong.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value was rejected. Each variant carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid prefix \"{}\": expected a.b.c.d/len with len 0..=32", shown(.0))]
    Prefix(String),
    #[error(
        "invalid prefix \"{}\": host bits are set (did you mean {canonical}?)",
        shown(given)
    )]
    HostBits { given: String, canonical: String },
    #[error("invalid IPv4 address \"{}\"", shown(.0))]
    Addr(String),
    #[error(
        "invalid MAC address \"{}\": expected aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff",
        shown(.0)
    )]
    Mac(String),
    #[error("invalid interface name \"{}\": {}", shown(.0), .1)]
    IfName(String, &'static str),
    #[error("invalid metric \"{}\": expected an integer 0..=4294967295 without leading zeros", shown(.0))]
    Metric(String),
    #[error("route {0} needs a gateway (via) or a device (dev)")]
    NoNextHop(Prefix),
    #[error("{what} {ip} is {why}; it cannot be a next hop")]
    NotUnicast {
        what: &'static str,
        ip: Ipv4Addr,
        why: &'static str,
    },
    #[error("MAC {mac} is {kind} address; a neighbour has a unicast MAC")]
    GroupMac { mac: MacAddr, kind: &'static str },
    #[error("invalid weight \"{}\": expected an integer 1..=256", shown(.0))]
    Weight(String),
    #[error("route {dst}: {why}")]
    Multipath { dst: Prefix, why: String },
}

/// `ip` can be a gateway or a neighbour (`what` names it in the error): not 0.0.0.0, not the
/// limited broadcast, not multicast.
pub fn unicast_next_hop(what: &'static str, ip: Ipv4Addr) -> Result<(), ParseError> {
    let why = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_broadcast() {
        "the broadcast address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else {
        return Ok(());
    };
    Err(ParseError::NotUnicast { what, ip, why })
}

/// Most characters of a bad value an error message repeats.
const SHOWN_CHARS: usize = 64;

/// A value as error messages show it: control characters, quotes and backslashes escaped (so
/// a message stays one line and cannot drive a terminal), and at most [`SHOWN_CHARS`]
/// characters, with the total length after a cut.
pub fn shown(s: &str) -> String {
    let n = s.chars().count();
    let head: String = s.chars().take(SHOWN_CHARS).collect();
    let mut out: String = head.escape_debug().collect();
    if n > SHOWN_CHARS {
        out += &format!("… ({} bytes)", s.len());
    }
    out
}

/// Parses a dotted-quad IPv4 address, naming the value on failure.
pub fn parse_addr(s: &str) -> Result<Ipv4Addr, ParseError> {
    // std's parser already refuses leading zeros, so "010.0.0.1" is not read as octal.
    s.parse().map_err(|_| ParseError::Addr(s.to_string()))
}

// ===== Prefix =====

/// An IPv4 prefix with its host bits zero, e.g. `10.1.0.0/16`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    // Field order gives the iproute2-like sort: by address, then shorter prefix first.
    addr: u32,
    len: u8,
}

/// The netmask of a prefix length as a host-order word.
#[inline]
pub const fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

impl Prefix {
    /// `0.0.0.0/0`, the default route's prefix.
    pub const DEFAULT: Prefix = Prefix { addr: 0, len: 0 };

    /// A prefix from an address and length; `None` when `len > 32` or host bits are set.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Prefix> {
        let a = u32::from(addr);
        (len <= 32 && a & !mask(len) == 0).then_some(Prefix { addr: a, len })
    }

    /// The prefix containing `addr` with the given length (host bits cleared).
    #[inline]
    pub fn truncating(addr: Ipv4Addr, len: u8) -> Prefix {
        let len = len.min(32);
        Prefix {
            addr: u32::from(addr) & mask(len),
            len,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    pub fn addr_u32(&self) -> u32 {
        self.addr
    }

    /// The prefix length, 0..=32.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` falls inside this prefix.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == self.addr
    }
}

impl FromStr for Prefix {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => {
                let len: u8 = l
                    .parse()
                    .ok()
                    .filter(|&n| {
                        n <= 32 && !l.starts_with('+') && (l == "0" || !l.starts_with('0'))
                    })
                    .ok_or_else(|| ParseError::Prefix(s.to_string()))?;
                (a, len)
            }
            // A bare address is a host route, as in iproute2.
            None => (s, 32),
        };
        let addr: Ipv4Addr = a.parse().map_err(|_| ParseError::Prefix(s.to_string()))?;
        Prefix::new(addr, len).ok_or_else(|| ParseError::HostBits {
            given: s.to_string(),
            canonical: Prefix::truncating(addr, len).to_string(),
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// Compact on the wire (postcard), a string in human-readable formats (JSON).
impl Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            (self.addr, self.len).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(D::Error::custom)
        } else {
            let (addr, len) = <(u32, u8)>::deserialize(d)?;
            Prefix::new(Ipv4Addr::from(addr), len)
                .ok_or_else(|| D::Error::custom("prefix with host bits set or len > 32"))
        }
    }
}

// ===== MacAddr =====

/// A 48-bit Ethernet address, shown as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The address as the low 48 bits of a word (first octet most significant).
    pub fn to_u64(self) -> u64 {
        self.0.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64)
    }

    /// Inverse of [`MacAddr::to_u64`]; the top 16 bits are ignored.
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Mac(s.to_string());
        // Each spelling is a fixed pattern of hex groups and one separator.
        let (sep, group) = match s.len() {
            17 if s.as_bytes()[2] == b':' => (':', 2),
            17 if s.as_bytes()[2] == b'-' => ('-', 2),
            14 => ('.', 4),
            _ => return Err(bad()),
        };
        let mut hex = String::with_capacity(12);
        for part in s.split(sep) {
            if part.len() != group || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            hex.push_str(part);
        }
        if hex.len() != 12 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(D::Error::custom)
        } else {
            Ok(MacAddr(<[u8; 6]>::deserialize(d)?))
        }
    }
}

// ===== IfName =====

/// A Linux interface name: 1–15 bytes, no `/`, whitespace or control characters.
///
/// Stored inline (no allocation), so routes are cheap to copy out of shared memory and small in
/// the daemon's tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfName {
    len: u8,
    buf: [u8; IFNAME_MAX],
}

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

impl IfName {
    pub fn as_str(&self) -> &str {
        // Only ever built from a `&str` (`from_str`), so the bytes are UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// A name read back from where rtm's own writer put it (a shared-memory record, under its
    /// seqlock): only its shape is checked — length and zero padding — not each character,
    /// which the writer checked when the name came in.
    #[inline]
    pub(crate) fn from_stored(len: u8, buf: [u8; IFNAME_MAX]) -> Option<IfName> {
        let n = usize::from(len);
        if n == 0 || n > IFNAME_MAX {
            return None;
        }
        let padding = u128::from_le_bytes({
            let mut b = [0u8; 16];
            b[..IFNAME_MAX].copy_from_slice(&buf);
            b
        }) >> (8 * n);
        (padding == 0).then_some(IfName { len, buf })
    }
}

impl PartialOrd for IfName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered like the names as strings.
impl Ord for IfName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl FromStr for IfName {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let why = if s.is_empty() {
            Some("empty")
        } else if s.len() > IFNAME_MAX {
            Some("longer than 15 bytes")
        } else if s.contains('/') {
            Some("contains '/'")
        } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("contains whitespace or a control character")
        } else if s == "." || s == ".." {
            Some("reserved name")
        } else {
            None
        };
        match why {
            Some(w) => Err(ParseError::IfName(s.to_string(), w)),
            None => {
                let mut buf = [0u8; IFNAME_MAX];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                Ok(IfName {
                    len: s.len() as u8,
                    buf,
                })
            }
        }
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for IfName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IfName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IfName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an interface name")
            }
            fn visit_str<E: Error>(self, s: &str) -> Result<IfName, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

// ===== Origin =====

/// Who put an entry into its table. A client never chooses it: the daemon sets it from the
/// writer (`rtmctl`, a batch and the dashboard write `Rtm`, the kernel mirror writes `Kernel`).
/// `rtmctl` changes an entry of another origin only when told to (`--override-kernel`): its
/// owner would put it back.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Origin {
    /// Written through rtm itself.
    #[default]
    Rtm,
    /// Mirrored from the Linux kernel's table (`rtmd --kernel import`).
    Kernel,
}

impl Origin {
    /// Every origin, in the order of their numbers.
    pub const ALL: [Origin; 2] = [Origin::Rtm, Origin::Kernel];

    pub fn name(self) -> &'static str {
        match self {
            Origin::Rtm => "rtm",
            Origin::Kernel => "kernel",
        }
    }

    /// The number shared memory and the journal store.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(v: u8) -> Option<Origin> {
        Origin::ALL.get(v as usize).copied()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ===== Route =====

/// Most next hops of one multipath route.
pub const MAX_NEXTHOPS: usize = 256;
/// The largest weight of a multipath route's next hop (the kernel's, too).
pub const MAX_WEIGHT: u16 = 256;

/// One next hop of a multipath route (`nexthop via A dev X weight W`): a gateway, a device or
/// both, and its share of the traffic relative to the others (1..=[`MAX_WEIGHT`], default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hop {
    pub via: Option<Ipv4Addr>,
    pub dev: Option<IfName>,
    pub weight: u16,
}

impl Hop {
    /// Checks a hop of the route to `dst`.
    pub fn validate(&self, dst: Prefix) -> Result<(), ParseError> {
        if self.via.is_none() && self.dev.is_none() {
            return Err(ParseError::Multipath {
                dst,
                why: "every nexthop needs a gateway (via) or a device (dev)".into(),
            });
        }
        if let Some(via) = self.via {
            unicast_next_hop("gateway", via)?;
        }
        if !(1..=MAX_WEIGHT).contains(&self.weight) {
            return Err(ParseError::Weight(self.weight.to_string()));
        }
        Ok(())
    }

    /// The hop's path without its weight: `nexthop via 192.0.2.1 dev eth0`.
    pub fn path(&self) -> String {
        let mut s = String::from("nexthop");
        if let Some(v) = self.via {
            s += &format!(" via {v}");
        }
        if let Some(d) = &self.dev {
            s += &format!(" dev {d}");
        }
        s
    }
}

/// `nexthop via 192.0.2.1 dev eth0 weight 1`, as iproute2 writes it (weight always shown).
impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weight {}", self.path(), self.weight)
    }
}

/// Parses a weight: 1..=[`MAX_WEIGHT`].
pub fn parse_weight(s: &str) -> Result<u16, ParseError> {
    match s.parse::<u16>() {
        Ok(w) if (1..=MAX_WEIGHT).contains(&w) && !s.starts_with(['0', '+']) => Ok(w),
        _ => Err(ParseError::Weight(s.to_string())),
    }
}

/// One route: the key `dst` and its next hop — `via` and/or `dev` — or, for a multipath
/// route, its next hops in `nexthops` (then `via` and `dev` are `None`).
///
/// `origin` is not part of the route's serde form: on the wire a client's route carries none
/// (the daemon sets it) and replies carry it beside the route where the protocol version has it
/// ([`crate::wire::Reply::RouteList`]); the journal stores it beside each entry. `nexthops` is
/// part of it from protocol version 7 and journal format 3 on; older forms have
/// [`route_v1`] (which cannot carry a multipath route).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    pub dst: Prefix,
    pub via: Option<Ipv4Addr>,
    pub dev: Option<IfName>,
    pub metric: u32,
    /// The next hops of a multipath route (2..=[`MAX_NEXTHOPS`], in the order given); empty
    /// for a route with one next hop.
    pub nexthops: Vec<Hop>,
    #[serde(skip)]
    pub origin: Origin,
}

impl Route {
    /// A route with one next hop, of origin rtm.
    pub fn new(dst: Prefix, via: Option<Ipv4Addr>, dev: Option<IfName>, metric: u32) -> Route {
        Route {
            dst,
            via,
            dev,
            metric,
            nexthops: Vec::new(),
            origin: Origin::Rtm,
        }
    }

    /// A multipath route: its next hops in `hops`. One hop makes an ordinary route (its weight
    /// means nothing alone), as the kernel does.
    pub fn multipath(dst: Prefix, metric: u32, mut hops: Vec<Hop>) -> Route {
        let mut r = Route::new(dst, None, None, metric);
        if hops.len() == 1 {
            let h = hops.pop().expect("one hop");
            r.via = h.via;
            r.dev = h.dev;
        } else {
            r.nexthops = hops;
        }
        r
    }

    /// Whether the route has several next hops.
    pub fn is_multipath(&self) -> bool {
        !self.nexthops.is_empty()
    }

    /// Checks what the wire cannot express: a route needs `via` or `dev`, and a `via` that
    /// can be a next hop; a multipath route, 2..=[`MAX_NEXTHOPS`] valid hops and no `via` or
    /// `dev` of its own.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.is_multipath() {
            let why = if self.via.is_some() || self.dev.is_some() {
                "a multipath route gives its gateways and devices in its nexthops only".into()
            } else if self.nexthops.len() == 1 {
                "a route with one nexthop gives it as via/dev".into()
            } else if self.nexthops.len() > MAX_NEXTHOPS {
                format!(
                    "{} nexthops, at most {MAX_NEXTHOPS} allowed",
                    self.nexthops.len()
                )
            } else {
                // The same path may come twice: the kernel takes that too (and forwards
                // over it by the sum of its weights), and a mirror must carry it as it is.
                return self.nexthops.iter().try_for_each(|h| h.validate(self.dst));
            };
            return Err(ParseError::Multipath { dst: self.dst, why });
        }
        if self.via.is_none() && self.dev.is_none() {
            return Err(ParseError::NoNextHop(self.dst));
        }
        if let Some(via) = self.via {
            unicast_next_hop("gateway", via)?;
        }
        Ok(())
    }
}

/// iproute2 style: `10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10` (`metric 0` omitted), or
/// `10.2.0.0/16 metric 10 nexthop via 192.0.2.1 weight 1 nexthop via 192.0.2.2 weight 2` on one
/// line, then `origin kernel` for a route rtm did not write.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        for h in &self.nexthops {
            write!(f, " {h}")?;
        }
        if self.origin != Origin::Rtm {
            write!(f, " origin {}", self.origin)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Route({self})")
    }
}

/// A route's serde form before multipath routes (protocol versions 1–6, journal formats 1–2):
/// `dst`, `via`, `dev`, `metric`. Encoding a multipath route in it is an error naming the route.
pub mod route_v1 {
    use super::{IfName, Prefix, Route};
    use serde::{ser::Error, Deserialize, Deserializer, Serialize, Serializer};
    use std::net::Ipv4Addr;

    #[derive(Serialize)]
    struct Ref<'a> {
        dst: &'a Prefix,
        via: &'a Option<Ipv4Addr>,
        dev: &'a Option<IfName>,
        metric: u32,
    }

    #[derive(Deserialize)]
    struct Owned {
        dst: Prefix,
        via: Option<Ipv4Addr>,
        dev: Option<IfName>,
        metric: u32,
    }

    /// Why a route has no form in the older encodings.
    pub fn unencodable(r: &Route) -> String {
        format!(
            "route {} has {} nexthops, which protocol versions before 7 cannot carry",
            r.dst,
            r.nexthops.len()
        )
    }

    pub fn serialize<S: Serializer>(r: &Route, s: S) -> Result<S::Ok, S::Error> {
        if r.is_multipath() {
            return Err(S::Error::custom(unencodable(r)));
        }
        Ref {
            dst: &r.dst,
            via: &r.via,
            dev: &r.dev,
            metric: r.metric,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Route, D::Error> {
        let o = Owned::deserialize(d)?;
        Ok(Route::new(o.dst, o.via, o.dev, o.metric))
    }

    /// A route in this form, as a type of its own (for generic decoders).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RouteV1(#[serde(with = "self")] pub Route);

    /// A borrowed route that serializes in this form.
    pub struct AsV1<'a>(pub &'a Route);

    impl Serialize for AsV1<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, s)
        }
    }
}

// ===== ArpEntry =====

/// One neighbour: the key `mac`, its IPv4 address and optionally the device.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArpEntry {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub dev: Option<IfName>,
}

impl ArpEntry {
    /// Checks what the wire cannot express: an IP and a MAC a neighbour can have (unicast).
    pub fn validate(&self) -> Result<(), ParseError> {
        unicast_next_hop("neighbour", self.ip)?;
        if self.mac.0[0] & 1 == 1 {
            let kind = if self.mac.0 == [0xff; 6] {
                "the broadcast"
            } else {
                "a multicast"
            };
            return Err(ParseError::GroupMac {
                mac: self.mac,
                kind,
            });
        }
        Ok(())
    }
}

/// iproute2 style: `192.168.1.10 lladdr 00:11:22:33:44:55 dev eth0`.
impl fmt::Display for ArpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lladdr {}", self.ip, self.mac)?;
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ArpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArpEntry({self})")
    }
}

pub mod neigh;
pub use neigh::{NeighKey, Neighbour};

#[cfg(test)]
mod tests;
