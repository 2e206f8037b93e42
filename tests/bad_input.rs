//! docs/guarantees.md §10: garbage, absurd frames and silent connections close only their own
//! session.
#![forbid(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;

/// Reads until EOF (the daemon closed us) within the deadline; panics otherwise.
fn assert_closed(mut s: UnixStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(_) => {}
        }
        assert!(
            Instant::now() < end,
            "{what}: the daemon kept the connection open"
        );
    }
}

#[test]
fn garbage_absurd_frames_and_silence_close_only_that_session() {
    // Short enough to wait for, long enough that every other connection of this test (rtmctl,
    // rtm-client) says hello in time on a busy machine.
    let inst = Instance::start_with(&["--handshake-timeout", "2s"]);
    let mut good = inst.client("good", &[]);

    // Garbage that frames as a message but does not decode.
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.write_all(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0xff])
        .unwrap();
    assert_closed(s, "garbage");

    // A length far over the frame limit.
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).unwrap();
    assert_closed(s, "absurd length");

    // Random bytes, no framing at all.
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&noise);
    assert_closed(s, "noise");

    // A connection that never says hello is closed by the handshake deadline.
    let s = UnixStream::connect(&inst.socket).unwrap();
    assert_closed(s, "silent");

    // A half-written frame followed by a hang-up.
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.write_all(&[0, 0, 0, 100, 1, 2]).unwrap();
    drop(s);

    // The daemon and the registered client are unaffected.
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    let v = good.next();
    assert_eq!(v["key"], "10.1.0.0/16");
    let st = inst.ctl_json(&["status"]);
    assert!(st["counters"]["bad_frames"].as_u64().unwrap() >= 3, "{st}");
    assert!(
        st["counters"]["handshake_timeouts"].as_u64().unwrap() >= 1,
        "{st}"
    );
    assert_eq!(inst.client_names(), ["good"]);
}

/// The daemon's resident memory in KiB.
fn rss_kib(pid: nix::unistd::Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A client that sends requests and never reads the replies stalls itself, not the daemon's
/// memory: the session stops reading once its unwritten replies pass a bound. Its
/// notifications stay bounded too: they still reach its queue and collapse into a resync.
#[test]
fn unread_replies_do_not_grow_the_daemon() {
    use rtm::wire::{self, Caps, ClientMsg, Hello, Request, Tables};

    let inst = Instance::start_with(&["--client-queue", "64"]);
    let text: String = varied_routes(6000)
        .iter()
        .map(|(l, _)| l.clone() + "\n")
        .collect();
    assert_eq!(code(&inst.batch(&text, false)), 0);
    let mut good = inst.client("good", &["--table", "arp"]);
    let before = rss_kib(inst.daemon_pid());

    let frame = |m: &ClientMsg| {
        let body = wire::encode(m).unwrap();
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        f
    };
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let hello = ClientMsg::Hello(Hello {
        version: wire::PROTOCOL_VERSION,
        name: "greedy".into(),
        caps: Caps::default(),
    });
    s.write_all(&frame(&hello)).unwrap();
    let subscribe = ClientMsg::Request {
        id: 0,
        req: Request::Subscribe {
            tables: Tables::Route,
        },
    };
    s.write_all(&frame(&subscribe)).unwrap();
    inst.eventually("greedy registered", || {
        inst.client_names().contains(&"greedy".to_string())
    });
    // Each show answers ~230 KB; 1500 unread answers would be ~340 MB.
    let show = |id| {
        frame(&ClientMsg::Request {
            id,
            req: Request::RouteShow(None),
        })
    };
    let mut written = 0;
    for id in 1..=1500 {
        if s.write_all(&show(id)).is_err() {
            break; // the daemon stopped reading us: back-pressure reached the client
        }
        written += 1;
    }
    assert!(
        written < 1500,
        "the daemon kept reading requests whose replies nobody read"
    );
    // Changes while it is paused: its notifications must collapse, not pile up.
    let text: String = (0..300)
        .map(|i| format!("route replace 10.{}.{}.0/24 dev eth1\n", i >> 8, i & 0xff))
        .collect();
    assert_eq!(code(&inst.batch(&text, false)), 0);
    inst.eventually("greedy resynced", || {
        let clients = inst.ctl_json(&["clients"]);
        let greedy = clients
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "greedy")
            .cloned()
            .unwrap();
        greedy["resyncs"].as_u64().unwrap() >= 1 && greedy["queued"].as_u64().unwrap() <= 64
    });
    let after = rss_kib(inst.daemon_pid());
    assert!(
        after < before + 64 * 1024,
        "daemon grew from {before} KiB to {after} KiB"
    );
    // Everyone else is served as usual.
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.168.1.10"]);
    assert_eq!(good.next()["key"], "00:11:22:33:44:55");
    drop(s);
}
