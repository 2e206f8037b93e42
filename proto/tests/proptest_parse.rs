//! The text parsers of `rtm_proto::types` against small reference parsers written here from
//! docs/cli.md ("Entries and values"), on valid generated strings and on arbitrary ones: the
//! same accept/reject decision, the same value, and errors that name the offending text (and,
//! for host bits, the canonical prefix).
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;

use proptest::prelude::*;
use rtm_proto::types::{parse_addr, shown, ParseError};
use rtm_proto::{IfName, MacAddr, Prefix};

// ===== reference parsers =====

/// Addresses: the standard library's dotted quad (no leading zeros, no octal, no shorthand).
fn ref_addr(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

fn ref_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        !0u32 << (32 - len)
    }
}

/// Whether an error message names the bad value (as [`shown`] spells it: escaped, cut after 64
/// characters) and stays one line without control characters.
fn names(e: &ParseError, s: &str) -> bool {
    let msg = e.to_string();
    msg.contains(&format!("\"{}\"", shown(s))) && !msg.chars().any(char::is_control)
}

/// Prefixes: `ADDR` (a /32) or `ADDR/LEN`, LEN plain decimal 0..=32 without sign or leading
/// zeros, host bits zero. Errors as `rtm_proto` spells them.
fn ref_prefix(s: &str) -> Result<(Ipv4Addr, u8), ParseError> {
    let Some(slash) = s.find('/') else {
        return ref_addr(s)
            .map(|a| (a, 32))
            .ok_or_else(|| ParseError::Prefix(s.to_string()));
    };
    let (a, l) = (&s[..slash], &s[slash + 1..]);
    let malformed = || ParseError::Prefix(s.to_string());
    let digits_ok = !l.is_empty()
        && l.len() <= 2
        && l.bytes().all(|b| b.is_ascii_digit())
        && (l == "0" || !l.starts_with('0'));
    if !digits_ok {
        return Err(malformed());
    }
    let len: u8 = l.parse().unwrap();
    if len > 32 {
        return Err(malformed());
    }
    let addr = ref_addr(a).ok_or_else(malformed)?;
    let bits = u32::from(addr);
    if bits & !ref_mask(len) != 0 {
        return Err(ParseError::HostBits {
            given: s.to_string(),
            canonical: format!("{}/{len}", Ipv4Addr::from(bits & ref_mask(len))),
        });
    }
    Ok((addr, len))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// MACs: `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` (one separator throughout) or
/// `aabb.ccdd.eeff`, hex digits in either case.
fn ref_mac(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    let (digit_positions, seps): (Vec<usize>, Vec<(usize, u8)>) = match b.len() {
        17 => {
            let sep = b[2];
            if sep != b':' && sep != b'-' {
                return None;
            }
            (
                (0..17).filter(|i| i % 3 != 2).collect(),
                (0..17).filter(|i| i % 3 == 2).map(|i| (i, sep)).collect(),
            )
        }
        14 => (
            (0..14).filter(|i| i % 5 != 4).collect(),
            vec![(4, b'.'), (9, b'.')],
        ),
        _ => return None,
    };
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let nibbles: Vec<u8> = digit_positions
        .iter()
        .map(|&i| hex(b[i]))
        .collect::<Option<_>>()?;
    let mut out = [0u8; 6];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibbles[2 * i] << 4 | nibbles[2 * i + 1];
    }
    Some(out)
}

/// Interface names: 1–15 bytes, no `/`, whitespace or control characters, not `.` or `..`.
fn ref_ifname(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && !s
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
        && s != "."
        && s != ".."
}

// ===== strategies =====

/// Strings that look like addresses and prefixes, most of them almost right.
fn prefixish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}",
        "[0-9]{1,4}(\\.[0-9]{0,4}){0,5}(/[+-]?[0-9]{0,4}){0,2}",
        "[0-9./+ a-fx:-]{0,20}",
        "\\PC{0,20}",
        ".{0,20}",
    ]
}

fn macish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}",
        "[0-9a-fA-F]{4}(\\.[0-9a-fA-F]{4}){2}",
        "[0-9a-gA-G:.\\-]{12,18}",
        "[0-9a-f]{1,3}(:[0-9a-f]{1,3}){4,6}",
        "\\PC{0,18}",
        ".{0,18}",
    ]
}

#[derive(Debug, Clone, Copy)]
enum Spelling {
    Colon,
    Dash,
    Dot,
}

fn spell(m: [u8; 6], how: Spelling, upper: bool) -> String {
    let s = match how {
        Spelling::Colon | Spelling::Dash => {
            let sep = if matches!(how, Spelling::Colon) {
                ":"
            } else {
                "-"
            };
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(sep)
        }
        Spelling::Dot => m
            .chunks(2)
            .map(|c| format!("{:02x}{:02x}", c[0], c[1]))
            .collect::<Vec<_>>()
            .join("."),
    };
    if upper {
        s.to_uppercase()
    } else {
        s
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        ..ProptestConfig::default()
    }
}

// ===== properties =====

proptest! {
    #![proptest_config(config())]

    #[test]
    fn addresses_match_std(s in prefixish()) {
        match (parse_addr(&s), ref_addr(&s)) {
            (Ok(a), Some(b)) => prop_assert_eq!(a, b),
            (Err(e), None) => {
                prop_assert_eq!(&e, &ParseError::Addr(s.clone()));
                prop_assert!(names(&e, &s), "{}", e);
            }
            (got, want) => prop_assert!(false, "{:?}: rtm {:?}, reference {:?}", s, got, want),
        }
    }

    #[test]
    fn valid_prefixes_parse_and_print_canonically(a in any::<u32>(), len in 0u8..=32) {
        let net = Ipv4Addr::from(a & ref_mask(len));
        let text = format!("{net}/{len}");
        let p: Prefix = text.parse().unwrap();
        prop_assert_eq!((p.addr(), p.len()), (net, len));
        prop_assert_eq!(p.to_string(), text);
        // A bare address is a host route.
        let host: Prefix = Ipv4Addr::from(a).to_string().parse().unwrap();
        prop_assert_eq!((host.addr(), host.len()), (Ipv4Addr::from(a), 32));
    }

    #[test]
    fn host_bits_are_refused_naming_the_canonical_form(a in any::<u32>(), len in 0u8..32) {
        prop_assume!(a & !ref_mask(len) != 0);
        let text = format!("{}/{len}", Ipv4Addr::from(a));
        let e = text.parse::<Prefix>().unwrap_err();
        let canonical = format!("{}/{len}", Ipv4Addr::from(a & ref_mask(len)));
        prop_assert_eq!(&e, &ParseError::HostBits { given: text.clone(), canonical: canonical.clone() });
        let msg = e.to_string();
        prop_assert!(msg.contains(&text) && msg.contains(&canonical), "{}", msg);
    }

    #[test]
    fn prefixes_match_the_reference(s in prefixish()) {
        let got = s.parse::<Prefix>();
        match (&got, ref_prefix(&s)) {
            (Ok(p), Ok((addr, len))) => prop_assert_eq!((p.addr(), p.len()), (addr, len)),
            (Err(e), Err(want)) => {
                prop_assert_eq!(e, &want);
                prop_assert!(names(e, &s), "{}", e);
            }
            (got, want) => prop_assert!(false, "{:?}: rtm {:?}, reference {:?}", s, got, want),
        }
    }

    #[test]
    fn every_mac_spelling_is_one_key(m in any::<[u8; 6]>(), upper in any::<bool>()) {
        let canonical = spell(m, Spelling::Colon, false);
        for how in [Spelling::Colon, Spelling::Dash, Spelling::Dot] {
            let text = spell(m, how, upper);
            let parsed: MacAddr = text.parse().unwrap();
            prop_assert_eq!(parsed, MacAddr(m));
            prop_assert_eq!(parsed.to_string(), canonical.clone());
        }
    }

    #[test]
    fn macs_match_the_reference(s in macish()) {
        match (s.parse::<MacAddr>(), ref_mac(&s)) {
            (Ok(m), Some(want)) => prop_assert_eq!(m.0, want),
            (Err(e), None) => {
                prop_assert_eq!(&e, &ParseError::Mac(s.clone()));
                prop_assert!(names(&e, &s), "{}", e);
            }
            (got, want) => prop_assert!(false, "{:?}: rtm {:?}, reference {:?}", s, got, want),
        }
    }

    #[test]
    fn ifnames_match_the_reference(s in prop_oneof!["[a-z0-9./ ]{0,17}", "\\PC{0,17}", ".{0,17}"]) {
        match s.parse::<IfName>() {
            Ok(n) => {
                prop_assert!(ref_ifname(&s), "{:?} accepted", s);
                prop_assert_eq!(n.as_str(), s.as_str());
            }
            Err(e) => {
                prop_assert!(!ref_ifname(&s), "{:?} refused: {}", s, e);
                prop_assert!(names(&e, &s), "{}", e);
            }
        }
    }
}

/// Cases worth keeping whatever the generators pick.
#[test]
fn reference_edge_cases() {
    for s in [
        "0.0.0.0/0",
        "0.0.0.0/00",
        "10.0.0.0/08",
        "10.0.0.0/8/8",
        "10.0.0.0/+8",
        "10.0.0.0/-0",
        "10.0.0.0/ 8",
        "10.0.0.0 /8",
        "/8",
        "10.0.0.0/",
        "255.255.255.255",
        "255.255.255.255/32",
        "010.0.0.0/8",
        "10.0.0.1/31",
        "1.2.3.4/0",
        "",
    ] {
        let got = s.parse::<Prefix>().map(|p| (p.addr(), p.len()));
        assert_eq!(got, ref_prefix(s), "{s:?}");
    }
    for s in [
        "aa:bb:cc:dd:ee:ff",
        "AA-BB-CC-DD-EE-FF",
        "aabb.ccdd.eeff",
        "aA:bB:cC:dD:eE:fF",
        "aa:bb-cc:dd:ee:ff",
        "aa-bb-cc-dd-ee:ff",
        "aabb:ccdd:eeff",
        "aabbccddeeff",
        "aa:bb:cc:dd:ee:f",
        "+a:bb:cc:dd:ee:ff",
        "aabb.ccdd.eef+",
        "éa:bb:cc:dd:ee:f",
    ] {
        assert_eq!(s.parse::<MacAddr>().ok().map(|m| m.0), ref_mac(s), "{s:?}");
    }
}
