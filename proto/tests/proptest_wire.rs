//! Property tests of the socket protocol (`rtm_proto::wire`): any bytes given to the decoder
//! (directly or through the framing codec) are refused or accepted without a panic, and every
//! message type survives encode → decode, alone and framed in a stream cut at any points.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bytes::BytesMut;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use rtm_proto::wire::{
    self, BatchFailure, Caps, ChangeOp, ClientInfo, ClientMsg, DebugAction, DebugTarget, Event,
    Failure, Hello, Key, Op, PanicPoint, Reply, Request, Restarts, ServerMsg, Status, Table,
    Tables, Welcome,
};
use rtm_proto::{ArpEntry, IfName, MacAddr, NeighKey, Neighbour, Origin, Prefix, Route};
use tokio_util::codec::Decoder;

// ===== strategies =====

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn prefix() -> impl Strategy<Value = Prefix> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Prefix::truncating(Ipv4Addr::from(a), l))
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn ifname() -> impl Strategy<Value = IfName> {
    prop_oneof!["[a-z][a-z0-9]{0,5}", "[a-zA-Z0-9_.:@-]{1,15}", "\\PC{1,5}",]
        .prop_filter_map("valid interface name", |s| s.parse().ok())
}

fn route() -> impl Strategy<Value = Route> {
    (
        prefix(),
        option::of(addr()),
        option::of(ifname()),
        any::<u32>(),
    )
        .prop_map(|(dst, via, dev, metric)| Route {
            dst,
            via,
            dev,
            metric,
            nexthops: Vec::new(),
            origin: Default::default(),
        })
}

fn arp() -> impl Strategy<Value = ArpEntry> {
    (mac(), addr(), option::of(ifname())).prop_map(|(mac, ip, dev)| ArpEntry { mac, ip, dev })
}

fn neighbour() -> impl Strategy<Value = Neighbour> {
    (addr(), ifname(), mac(), any::<bool>()).prop_map(|(ip, dev, mac, kernel)| Neighbour {
        ip,
        dev,
        mac,
        origin: if kernel { Origin::Kernel } else { Origin::Rtm },
    })
}

fn table() -> impl Strategy<Value = Table> {
    prop_oneof![Just(Table::Route), Just(Table::Arp), Just(Table::Neigh)]
}

fn tables() -> impl Strategy<Value = Tables> {
    prop_oneof![
        Just(Tables::Route),
        Just(Tables::Arp),
        Just(Tables::All),
        Just(Tables::Neigh),
        Just(Tables::Every)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        route().prop_map(Op::RouteAdd),
        route().prop_map(Op::RouteChange),
        route().prop_map(Op::RouteReplace),
        prefix().prop_map(Op::RouteDel),
        arp().prop_map(Op::ArpAdd),
        arp().prop_map(Op::ArpChange),
        arp().prop_map(Op::ArpReplace),
        mac().prop_map(Op::ArpDel),
        tables().prop_map(Op::Flush),
    ]
}

fn debug_target() -> impl Strategy<Value = DebugTarget> {
    prop_oneof![
        Just(DebugTarget::Route),
        Just(DebugTarget::Arp),
        Just(DebugTarget::Broker),
        Just(DebugTarget::Listener),
        Just(DebugTarget::Session),
        Just(DebugTarget::Neigh),
    ]
}

fn panic_point() -> impl Strategy<Value = PanicPoint> {
    prop_oneof![
        Just(PanicPoint::Handler),
        Just(PanicPoint::Async),
        Just(PanicPoint::Interval),
        Just(PanicPoint::Stream),
        Just(PanicPoint::Restart),
        Just(PanicPoint::Publish),
    ]
}

fn debug_action() -> impl Strategy<Value = DebugAction> {
    prop_oneof![
        (debug_target(), panic_point())
            .prop_map(|(target, point)| DebugAction::Panic { target, point }),
        (debug_target(), any::<u32>()).prop_map(|(target, ms)| DebugAction::Stall { target, ms }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        op().prop_map(Request::Apply),
        (vec(op(), 0..8), any::<bool>()).prop_map(|(ops, force)| Request::Batch { ops, force }),
        option::of(prefix()).prop_map(Request::RouteShow),
        addr().prop_map(Request::RouteGet),
        option::of(mac()).prop_map(Request::ArpShow),
        mac().prop_map(Request::ArpGet),
        Just(Request::Clients),
        Just(Request::Status),
        tables().prop_map(|tables| Request::Subscribe { tables }),
        Just(Request::Deregister),
        debug_action().prop_map(Request::Debug),
        option::of(addr()).prop_map(Request::NeighShow),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    (any::<u16>(), any::<String>(), any::<bool>()).prop_map(|(version, name, sigusr1)| Hello {
        version,
        name,
        caps: Caps { sigusr1 },
    })
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        hello().prop_map(ClientMsg::Hello),
        (any::<u32>(), request()).prop_map(|(id, req)| ClientMsg::Request { id, req }),
    ]
}

fn failure() -> impl Strategy<Value = Failure> {
    let s = || any::<String>();
    prop_oneof![
        (table(), s()).prop_map(|(table, key)| Failure::Exists { table, key }),
        (table(), s()).prop_map(|(table, key)| Failure::NotFound { table, key }),
        (table(), any::<u64>(), s()).prop_map(|(table, capacity, key)| Failure::Full {
            table,
            capacity,
            key
        }),
        any::<u32>().prop_map(|uid| Failure::PermissionDenied { uid }),
        s().prop_map(Failure::Invalid),
        any::<u32>().prop_map(|max| Failure::TooManyClients { max }),
        (any::<u16>(), any::<u16>(), any::<u16>())
            .prop_map(|(client, min, max)| Failure::Version { client, min, max }),
        s().prop_map(Failure::Unsupported),
        Just(Failure::ShuttingDown),
        s().prop_map(Failure::Internal),
        (s(), any::<u64>()).prop_map(|(what, limit)| Failure::Limit { what, limit }),
    ]
}

fn client_info() -> impl Strategy<Value = ClientInfo> {
    (
        any::<u64>(),
        any::<i32>(),
        any::<u32>(),
        any::<String>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(id, pid, uid, name, connected_at_ms, queued, sent, resyncs, sigusr1)| ClientInfo {
                id,
                pid,
                uid,
                name,
                connected_at_ms,
                queued,
                sent,
                resyncs,
                sigusr1,
            },
        )
}

fn status() -> impl Strategy<Value = Status> {
    (
        any::<String>(),
        any::<[u64; 6]>(),
        any::<[u64; 4]>(),
        btree_map(".{0,12}", any::<u64>(), 0..5),
        option::of(any::<String>()),
    )
        .prop_map(|(version, n, r, counters, last_failure)| Status {
            version,
            uptime_s: n[0],
            routes: n[1],
            arps: n[2],
            route_capacity: n[3],
            arp_capacity: n[4],
            clients: n[5],
            restarts: Restarts {
                route: r[0],
                arp: r[1],
                broker: r[2],
                listener: r[3],
            },
            counters: counters.into_iter().collect::<BTreeMap<_, _>>(),
            last_failure,
        })
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        any::<u64>().prop_map(|seq| Reply::Done { seq }),
        (vec(route(), 0..6), any::<bool>())
            .prop_map(|(routes, more)| Reply::Routes { routes, more }),
        route().prop_map(Reply::Route),
        (vec(arp(), 0..6), any::<bool>()).prop_map(|(entries, more)| Reply::Arps { entries, more }),
        arp().prop_map(Reply::Arp),
        (
            any::<u32>(),
            vec(
                (any::<u32>(), failure())
                    .prop_map(|(index, failure)| BatchFailure { index, failure }),
                0..3
            )
        )
            .prop_map(|(applied, failures)| Reply::Batch { applied, failures }),
        vec(client_info(), 0..3).prop_map(Reply::Clients),
        (vec(client_info(), 0..3), any::<bool>())
            .prop_map(|(clients, more)| Reply::ClientsPage { clients, more }),
        status().prop_map(Reply::Status),
        Just(Reply::Subscribed),
        Just(Reply::Deregistered),
        (vec(neighbour(), 0..6), any::<bool>())
            .prop_map(|(entries, more)| Reply::Neighs { entries, more }),
    ]
}

fn change_op() -> impl Strategy<Value = ChangeOp> {
    prop_oneof![
        Just(ChangeOp::Create),
        Just(ChangeOp::Update),
        Just(ChangeOp::Delete)
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        prefix().prop_map(Key::Route),
        mac().prop_map(Key::Arp),
        (addr(), ifname()).prop_map(|(ip, dev)| Key::Neigh(NeighKey { ip, dev })),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (table(), any::<u64>()).prop_map(|(table, seq)| Event::Start { table, seq }),
        (table(), change_op(), key(), any::<u64>()).prop_map(|(table, op, key, seq)| {
            Event::Change {
                table,
                op,
                key,
                seq,
            }
        }),
        (table(), any::<u64>()).prop_map(|(table, seq)| Event::Flush { table, seq }),
        (table(), any::<u64>()).prop_map(|(table, seq)| Event::Resync { table, seq }),
        Just(Event::Bye),
    ]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        any::<u16>(),
        any::<String>(),
        any::<u64>(),
        any::<String>(),
        any::<String>(),
    )
        .prop_map(|(version, daemon, session, route_shm, arp_shm)| Welcome {
            version,
            daemon,
            session,
            route_shm,
            arp_shm,
        })
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    prop_oneof![
        welcome().prop_map(ServerMsg::Welcome),
        failure().prop_map(ServerMsg::Refused),
        (
            any::<u32>(),
            prop_oneof![reply().prop_map(Ok), failure().prop_map(Err)]
        )
            .prop_map(|(id, result)| ServerMsg::Reply { id, result }),
        vec(event(), 0..8).prop_map(ServerMsg::Events),
    ]
}

/// Bytes a decoder might see: pure noise, or a valid encoding damaged in a few places (which
/// gets past the first tags and into the message bodies).
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let damaged = |enc: Vec<u8>, flips: Vec<(usize, u8)>, cut: Option<usize>| {
        let mut b = enc;
        if !b.is_empty() {
            for (i, x) in flips {
                let n = b.len();
                b[i % n] ^= x;
            }
        }
        if let Some(c) = cut {
            b.truncate(c);
        }
        b
    };
    prop_oneof![
        vec(any::<u8>(), 0..256),
        (
            client_msg(),
            vec((any::<usize>(), any::<u8>()), 1..4),
            option::of(0usize..64)
        )
            .prop_map(move |(m, f, c)| damaged(wire::encode(&m).unwrap().to_vec(), f, c)),
        (
            server_msg(),
            vec((any::<usize>(), any::<u8>()), 1..4),
            option::of(0usize..64)
        )
            .prop_map(move |(m, f, c)| damaged(wire::encode(&m).unwrap().to_vec(), f, c)),
    ]
}

// ===== helpers =====

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Runs `stream` through the daemon's codec in reads of the given sizes (cycled), then EOF.
/// Returns the frames and whether the stream ended in an error.
fn run_codec(stream: &[u8], reads: &[usize], max: usize) -> (Vec<Vec<u8>>, bool) {
    let mut codec = wire::codec(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut sizes = reads.iter().cycle();
    while pos < stream.len() {
        let n = (*sizes.next().unwrap()).clamp(1, stream.len() - pos);
        buf.extend_from_slice(&stream[pos..pos + n]);
        pos += n;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f.to_vec()),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => frames.push(f.to_vec()),
            Ok(None) => return (frames, false),
            Err(_) => return (frames, true),
        }
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

// ===== properties =====

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_decode_without_panic(bytes in hostile_bytes()) {
        // Refusing is fine; panicking is not. What decodes must re-encode to itself.
        if let Ok(m) = wire::decode::<ClientMsg>(&bytes) {
            let again = wire::encode(&m).unwrap();
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(wire::decode::<ClientMsg>(&again).unwrap(), m);
        }
        if let Ok(m) = wire::decode::<ServerMsg>(&bytes) {
            let again = wire::encode(&m).unwrap();
            prop_assert_eq!(wire::decode::<ServerMsg>(&again).unwrap(), m);
        }
    }

    #[test]
    fn any_bytes_through_the_codec_without_panic(
        bytes in hostile_bytes(),
        prefix_len in any::<bool>(),
        reads in vec(1usize..40, 1..5),
        max in prop_oneof![Just(wire::DEFAULT_MAX_REQUEST_FRAME), 0usize..64],
    ) {
        // With a plausible length in front, the bytes also reach the message decoder.
        let stream = if prefix_len { framed(&bytes) } else { bytes };
        let (frames, _) = run_codec(&stream, &reads, max);
        let (whole, _) = run_codec(&stream, &[stream.len().max(1)], max);
        prop_assert_eq!(&frames, &whole, "the read sizes changed the framing");
        for f in &frames {
            prop_assert!(f.len() <= max);
            let _ = wire::decode::<ClientMsg>(f);
            let _ = wire::decode::<ServerMsg>(f);
        }
    }

    #[test]
    fn client_messages_round_trip(m in client_msg()) {
        let bytes = wire::encode(&m).unwrap();
        prop_assert_eq!(wire::decode::<ClientMsg>(&bytes).unwrap(), m.clone());
        // A frame holds exactly one message: trailing bytes and every strict prefix are refused.
        let mut longer = bytes.to_vec();
        longer.push(0);
        prop_assert!(wire::decode::<ClientMsg>(&longer).is_err());
        for cut in 0..bytes.len() {
            prop_assert!(wire::decode::<ClientMsg>(&bytes[..cut]).is_err(), "prefix {}", cut);
        }
    }

    #[test]
    fn server_messages_round_trip(m in server_msg()) {
        let bytes = wire::encode(&m).unwrap();
        prop_assert_eq!(wire::decode::<ServerMsg>(&bytes).unwrap(), m.clone());
        let mut longer = bytes.to_vec();
        longer.push(0);
        prop_assert!(wire::decode::<ServerMsg>(&longer).is_err());
        for cut in 0..bytes.len() {
            prop_assert!(wire::decode::<ServerMsg>(&bytes[..cut]).is_err(), "prefix {}", cut);
        }
    }

    #[test]
    fn framed_streams_survive_any_read_sizes(
        msgs in vec(client_msg(), 0..6),
        reads in vec(1usize..50, 1..6),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend(framed(&wire::encode(m).unwrap()));
        }
        let (frames, failed) = run_codec(&stream, &reads, wire::DEFAULT_MAX_REQUEST_FRAME);
        prop_assert!(!failed);
        let back: Vec<ClientMsg> = frames
            .iter()
            .map(|f| wire::decode::<ClientMsg>(f).unwrap())
            .collect();
        prop_assert_eq!(back, msgs);
    }

    #[test]
    fn server_streams_survive_any_read_sizes(
        msgs in vec(server_msg(), 0..4),
        reads in vec(1usize..50, 1..6),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend(framed(&wire::encode(m).unwrap()));
        }
        let (frames, failed) = run_codec(&stream, &reads, wire::MAX_SERVER_FRAME);
        prop_assert!(!failed);
        let back: Vec<ServerMsg> = frames
            .iter()
            .map(|f| wire::decode::<ServerMsg>(f).unwrap())
            .collect();
        prop_assert_eq!(back, msgs);
    }

    #[test]
    fn a_frame_over_the_limit_is_refused(len in 65u32..=u32::MAX, junk in vec(any::<u8>(), 0..8)) {
        let mut stream = len.to_be_bytes().to_vec();
        stream.extend(junk);
        let (frames, failed) = run_codec(&stream, &[stream.len()], 64);
        prop_assert!(frames.is_empty() && failed);
    }

    /// The compact wire form of a prefix, (addr, len), is checked like its text form.
    #[test]
    fn wire_prefixes_are_validated(a in any::<u32>(), len in any::<u8>()) {
        let bytes = postcard::to_allocvec(&(a, len)).unwrap();
        let decoded = wire::decode::<Prefix>(&bytes).ok();
        let valid = len <= 32 && (len == 32 || a & (u32::MAX >> len) == 0);
        prop_assert_eq!(decoded.is_some(), valid);
        if let Some(p) = decoded {
            prop_assert_eq!((p.addr_u32(), p.len()), (a, len));
        }
    }

    /// An interface name on the wire is accepted exactly when its text form is.
    #[test]
    fn wire_ifnames_are_validated(s in prop_oneof!["\\PC{0,20}", ".{0,20}", "[a-z/. ]{0,17}"]) {
        let bytes = postcard::to_allocvec(&s).unwrap();
        let decoded = wire::decode::<IfName>(&bytes).ok();
        prop_assert_eq!(decoded, s.parse::<IfName>().ok());
    }

    #[test]
    fn routes_and_arps_round_trip_in_json(r in route(), a in arp()) {
        // The human-readable form (JSON) goes through the text parsers.
        let back: Route = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        prop_assert_eq!(back, r);
        let back: ArpEntry = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        prop_assert_eq!(back, a);
    }
}
