//! What one user's connections may cost rtmd: replies stream at the reader's pace (a session
//! holds a bounded number of encoded reply bytes however many requests its client pipelines),
//! connections beyond `--max-connections` are refused with a reason, and the open-file limit is
//! raised at start and sizes how many connections rtmd admits.
#![forbid(unsafe_code)]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{frame, hello, read_msg, welcomed};
use common::*;
use rtm::wire::{self, ClientMsg, Reply, Request, ServerMsg};

const ROUTES: usize = 5_000;
const SHOWS: u32 = 600;

/// A user pipelining 600 `route show` of 5,000 routes (rtmd reading up to 1,024 requests
/// ahead): each answer is over 100 KB encoded, so answering them all before the client reads
/// would take over 60 MB more. rtmd's peak resident memory (`VmHWM`) may grow by far less,
/// and every answer still arrives whole.
#[test]
fn pipelined_shows_stream_with_bounded_memory() {
    let inst = Instance::start_with(&["--max-inflight", "1024"]);
    let text: String = varied_routes(ROUTES)
        .iter()
        .map(|(l, _)| l.clone() + "\n")
        .collect();
    let o = inst.batch(&text, false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // One whole show first, so its one-off cost is in the baseline.
    assert_eq!(inst.ctl_ok(&["route", "show"]).lines().count(), ROUTES);
    let pid = inst.daemon_pid();
    let base = proc_status_kib(pid, "VmHWM");

    let mut s = welcomed(&inst, "reader", wire::PROTOCOL_VERSION);
    let requests_before = inst.status()["counters"]["requests"].as_u64().unwrap();
    let mut pipelined = Vec::new();
    for id in 1..=SHOWS {
        pipelined.extend(frame(&ClientMsg::Request {
            id,
            req: Request::RouteShow(None),
        }));
    }
    s.write_all(&pipelined).unwrap();
    // Give rtmd every chance to answer all of them before anything is read: until it has
    // started all of them (what it did before replies streamed), or its memory already grew
    // past the bound, or a few seconds passed.
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        let started = inst.status()["counters"]["requests"].as_u64().unwrap() - requests_before;
        if started > u64::from(SHOWS) || proc_status_kib(pid, "VmRSS") > base + 200 * 1024 {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Now read every answer, whole.
    let (mut done, mut routes) = (0u32, 0usize);
    while done < SHOWS {
        match read_msg(&mut s) {
            ServerMsg::Reply {
                result: Ok(Reply::RoutesV7 { routes: r, more }),
                ..
            } => {
                routes += r.len();
                if !more {
                    done += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(routes, ROUTES * SHOWS as usize, "every answer is whole");
    let peak = proc_status_kib(pid, "VmHWM");
    assert!(
        peak < base + 40 * 1024,
        "rtmd's peak RSS grew from {base} KiB to {peak} KiB answering {SHOWS} pipelined shows"
    );
    eprintln!("VmHWM {base} KiB before, {peak} KiB after {SHOWS} pipelined shows");
}

/// Connection N+1 is refused with a message naming the limit; a freed place admits again.
#[test]
fn connections_beyond_max_connections_are_refused_with_a_reason() {
    let inst = Instance::start_with(&["--max-connections", "3", "--max-clients", "10"]);
    let held: Vec<UnixStream> = (0..3)
        .map(|i| welcomed(&inst, &format!("c{i}"), wire::PROTOCOL_VERSION))
        .collect();
    let o = inst.ctl(&["status"]);
    assert_eq!(code(&o), 2, "refused by the daemon: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--max-connections") && err.contains("limit 3"),
        "{err}"
    );
    // A raw client reads the refusal as its first frame.
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    match read_msg(&mut s) {
        ServerMsg::Refused(f) => assert!(f.to_string().contains("limit 3"), "{f}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(held);
    inst.eventually("a place is free again", || {
        code(&inst.ctl(&["status"])) == 0
    });
    let st = inst.status();
    assert!(
        st["counters"]["connections_refused"].as_u64().unwrap() >= 2,
        "{st}"
    );
}

/// The soft open-file limit is raised to the hard one at start, and the connections admitted
/// leave a reserve of descriptors for rtmd's own files: with a hard limit of 164, 164 - 64 = 100
/// descriptors are for connections; a connection takes two (socket and pidfd) until its hello
/// and keeps one after a hello without a SIGUSR1 handler, so 99 connections fit, and the 100th
/// is told that the open-file limit refuses it.
#[test]
fn the_open_file_limit_is_raised_and_sizes_the_connection_limit() {
    let mut inst = Instance::unstarted();
    let daemon = inst.daemon_cmd(&["--max-connections", "1000"]);
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=100:164")
        .arg("--")
        .arg(daemon.get_program())
        .args(daemon.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&inst.log).unwrap());
    inst.daemon = Some(cmd.spawn().expect("spawn prlimit rtmd"));
    inst.eventually("rtmd answers", || UnixStream::connect(&inst.socket).is_ok());
    // prlimit executes rtmd in its own place: the pid is rtmd's.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", inst.daemon_pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, ["164", "164"], "{line}");
    inst.eventually("the probe connection is gone", || {
        inst.status()["clients"].as_u64().is_some()
    });

    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..110 {
        let mut s = UnixStream::connect(&inst.socket).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(&hello(&format!("c{i}"), wire::PROTOCOL_VERSION))
            .unwrap();
        match read_msg(&mut s) {
            ServerMsg::Welcome(_) => held.push(s),
            ServerMsg::Refused(f) => {
                refused = Some(f.to_string());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let why = refused.expect("a connection beyond the open-file limit is refused");
    assert!(why.contains("open-file limit (164)"), "{why}");
    assert!(why.contains("limit 100"), "{why}");
    // The probes of `eventually` above may still hold a place for a moment.
    assert!((97..=99).contains(&held.len()), "admitted {}", held.len());
    // rtmd still answers (its own descriptors were kept) once a place is free.
    drop(held);
    inst.eventually("rtmd answers again", || code(&inst.ctl(&["status"])) == 0);
}
