//! Tests of the table types.

use super::*;

/// `from_stored` (the shared-memory decoder's check of shape) gives back every name parsing
/// accepts, and refuses every buffer of the wrong shape.
#[test]
fn if_name_from_stored_checks_the_shape() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(7);
    // Bytes that matter: controls, space, '/', '.', printable ASCII, DEL, UTF-8 pieces.
    let pool: Vec<u8> = [
        0u8, 1, 9, 0x0b, 0x1f, b' ', b'/', b'.', b'a', b'Z', b'0', b'-', 0x7e,
    ]
    .into_iter()
    .chain([0x7f, 0x80, 0x85, 0xa0, 0xc2, 0xc3, 0xe2, 0x80, 0xa9, 0xff])
    .collect();
    let mut cases: Vec<(u8, [u8; IFNAME_MAX])> = vec![
        (1, *b".\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
        (2, *b"..\0\0\0\0\0\0\0\0\0\0\0\0\0"),
        (3, *b"...\0\0\0\0\0\0\0\0\0\0\0\0"),
        (15, *b"a23456789012345"),
        (0, [0; IFNAME_MAX]),
        (16, *b"a23456789012345"),
        (4, *b"eth0\0\0\0\0\0\0\0\0\0\0x"),
    ];
    // U+0085 (NEL, whitespace and control) and U+00A0 (no-break space, whitespace) in UTF-8.
    cases.push((3, *b"a\xc2\x85\0\0\0\0\0\0\0\0\0\0\0\0"));
    cases.push((3, *b"a\xc2\xa0\0\0\0\0\0\0\0\0\0\0\0\0"));
    cases.push((3, *b"\xc3\xa9a\0\0\0\0\0\0\0\0\0\0\0\0"));
    for _ in 0..200_000 {
        let len = rng.random_range(0..=16u8);
        let mut buf = [0u8; IFNAME_MAX];
        for b in buf.iter_mut().take(usize::from(len)) {
            *b = if rng.random_range(0..4) == 0 {
                pool[rng.random_range(0..pool.len())]
            } else {
                rng.random_range(0x21..0x7f)
            };
        }
        if rng.random_range(0..50) == 0 {
            buf[rng.random_range(0..IFNAME_MAX)] = rng.random();
        }
        cases.push((len, buf));
    }
    let mut accepted = 0;
    for (len, buf) in cases {
        let n = usize::from(len);
        let shaped = (1..=IFNAME_MAX).contains(&n) && buf[n..].iter().all(|&b| b == 0);
        let parsed = shaped
            .then(|| std::str::from_utf8(&buf[..n]).ok()?.parse::<IfName>().ok())
            .flatten();
        let got = IfName::from_stored(len, buf);
        assert_eq!(got.is_some(), shaped, "len {len} bytes {buf:?}");
        if let Some(p) = parsed {
            assert_eq!(got, Some(p), "len {len} bytes {buf:?}");
            accepted += 1;
        }
    }
    assert!(accepted > 1000);
}

#[test]
fn prefix_parsing() {
    assert_eq!(
        "10.1.0.0/16".parse::<Prefix>().unwrap().to_string(),
        "10.1.0.0/16"
    );
    assert_eq!(
        "10.0.0.1".parse::<Prefix>().unwrap().to_string(),
        "10.0.0.1/32"
    );
    assert_eq!("0.0.0.0/0".parse::<Prefix>().unwrap().len(), 0);
    let e = "10.0.0.1/8".parse::<Prefix>().unwrap_err().to_string();
    assert!(e.contains("10.0.0.1/8") && e.contains("10.0.0.0/8"), "{e}");
    for bad in [
        "10.0.0.0/33",
        "10.0.0/8",
        "x/8",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "0.0.0.0/00",
        "",
    ] {
        let e = bad.parse::<Prefix>().unwrap_err().to_string();
        assert!(e.contains(&format!("\"{bad}\"")), "{bad}: {e}");
    }
}

#[test]
fn mac_spellings_are_one_key() {
    let a: MacAddr = "aa:bb:cc:dd:ee:0f".parse().unwrap();
    let b: MacAddr = "AA-BB-CC-DD-EE-0F".parse().unwrap();
    let c: MacAddr = "aabb.ccdd.ee0f".parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(c.to_string(), "aa:bb:cc:dd:ee:0f");
    assert_eq!(MacAddr::from_u64(a.to_u64()), a);
    for bad in [
        "aa:bb:cc:dd:ee",
        "aa:bb-cc:dd:ee:ff",
        "gg:bb:cc:dd:ee:ff",
        "aabbccddeeff",
    ] {
        assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
    }
}

#[test]
fn ifname_rules() {
    assert!("eth0".parse::<IfName>().is_ok());
    assert!("a23456789012345".parse::<IfName>().is_ok());
    for bad in ["", "a234567890123456", "a/b", "a b", "."] {
        assert!(bad.parse::<IfName>().is_err(), "{bad}");
    }
}

#[test]
fn route_display() {
    let r = Route {
        dst: "10.1.0.0/16".parse().unwrap(),
        via: Some("192.168.1.1".parse().unwrap()),
        dev: Some("eth0".parse().unwrap()),
        metric: 10,
        nexthops: Vec::new(),
        origin: Default::default(),
    };
    assert_eq!(
        r.to_string(),
        "10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10"
    );
    let bytes = postcard::to_allocvec(&r).unwrap();
    assert_eq!(postcard::from_bytes::<Route>(&bytes).unwrap(), r);
}

/// A multipath route is valid with 2..=256 distinct paths of weights 1..=256 and nothing
/// beside them; every refusal names the route and what is wrong with it.
#[test]
fn multipath_route_rules() {
    let dst: Prefix = "10.2.0.0/16".parse().unwrap();
    let hop = |via: &str, dev: Option<&str>, weight: u16| Hop {
        via: Some(via.parse().unwrap()),
        dev: dev.map(|d| d.parse().unwrap()),
        weight,
    };
    let r = Route::multipath(
        dst,
        10,
        vec![hop("192.0.2.1", Some("eth0"), 1), hop("192.0.2.2", None, 3)],
    );
    r.validate().unwrap();
    assert_eq!(
        r.to_string(),
        "10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 weight 1 \
         nexthop via 192.0.2.2 weight 3"
    );
    // One hop is an ordinary route, as the kernel makes it.
    let one = Route::multipath(dst, 0, vec![hop("192.0.2.1", None, 5)]);
    assert!(!one.is_multipath());
    assert_eq!(one.to_string(), "10.2.0.0/16 via 192.0.2.1");

    let refused = |r: Route, needles: &[&str]| {
        let e = r.validate().unwrap_err().to_string();
        for n in needles {
            assert!(e.contains(n), "{n}: {e}");
        }
    };
    // The same path twice is taken, as the kernel takes it.
    Route::multipath(
        dst,
        0,
        vec![
            hop("192.0.2.1", Some("eth0"), 1),
            hop("192.0.2.2", None, 1),
            hop("192.0.2.1", Some("eth0"), 2),
        ],
    )
    .validate()
    .unwrap();
    // The same gateway on two devices is two paths.
    Route::multipath(
        dst,
        0,
        vec![
            hop("192.0.2.1", Some("eth0"), 1),
            hop("192.0.2.1", Some("eth1"), 1),
        ],
    )
    .validate()
    .unwrap();
    for w in [0, 257] {
        refused(
            Route::multipath(
                dst,
                0,
                vec![hop("192.0.2.1", None, 1), hop("192.0.2.2", None, w)],
            ),
            &[&format!("\"{w}\""), "1..=256"],
        );
    }
    let many: Vec<Hop> = (0..=MAX_NEXTHOPS)
        .map(|i| Hop {
            via: Some(std::net::Ipv4Addr::from(0x0a00_0001 + i as u32)),
            dev: None,
            weight: 1,
        })
        .collect();
    refused(
        Route::multipath(dst, 0, many[..MAX_NEXTHOPS + 1].to_vec()),
        &["257 nexthops", "at most 256"],
    );
    Route::multipath(dst, 0, many[..MAX_NEXTHOPS].to_vec())
        .validate()
        .unwrap();
    let mut beside = r.clone();
    beside.via = Some("192.0.2.9".parse().unwrap());
    refused(beside, &["10.2.0.0/16", "nexthops only"]);
    refused(
        Route::multipath(
            dst,
            0,
            vec![
                hop("192.0.2.1", None, 1),
                Hop {
                    via: None,
                    dev: None,
                    weight: 1,
                },
            ],
        ),
        &["10.2.0.0/16", "via", "dev"],
    );
    assert_eq!(parse_weight("256"), Ok(256));
    for bad in ["0", "257", "300", "01", "+1", "-1", "x", ""] {
        assert_eq!(
            parse_weight(bad),
            Err(ParseError::Weight(bad.into())),
            "{bad}"
        );
    }
}
