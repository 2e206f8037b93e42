//! docs/operations.md: rtmd speaks systemd's notify protocol. A test binds the datagram socket
//! systemd would (`NOTIFY_SOCKET`) and reads what the real daemon sends: `READY=1` once clients
//! can connect, `RELOADING=1` … `READY=1` around SIGHUP, `STOPPING=1` at a clean stop, and with
//! `WATCHDOG_USEC` keep-alives that stop while an actor is stuck.
#![forbid(unsafe_code)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

/// A fake service manager: the notify socket and every datagram it received, timestamped.
struct Manager {
    path: std::path::PathBuf,
    got: Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Manager {
    fn bind(dir: &std::path::Path) -> Manager {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        Manager {
            path,
            got: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a datagram that contains `line` as one of its lines; returns it.
    fn expect(&mut self, line: &str) -> (Instant, String) {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let (at, msg) = self
                .got
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {line:?} from rtmd; got {:?}", self.seen));
            self.seen.push((at, msg.clone()));
            if msg.lines().any(|l| l == line) {
                return (at, msg);
            }
        }
    }

    /// Everything received so far.
    fn drain(&mut self) -> Vec<(Instant, String)> {
        let new: Vec<_> = self.got.try_iter().collect();
        self.seen.extend(new.iter().cloned());
        new
    }
}

fn spawn_notified(inst: &mut Instance, mgr: &Manager, env: &[(&str, &str)]) {
    let mut cmd = inst.daemon_cmd(&[]);
    cmd.env("NOTIFY_SOCKET", &mgr.path)
        .envs(env.iter().copied());
    let logf = std::fs::File::create(&inst.log).unwrap();
    cmd.stdout(Stdio::null()).stderr(logf);
    inst.daemon = Some(cmd.spawn().expect("spawn rtmd"));
}

/// READY=1 comes once a client can connect (no polling of the socket here); SIGHUP is
/// bracketed by RELOADING=1 (with MONOTONIC_USEC) and READY=1; SIGTERM sends STOPPING=1. No
/// keep-alives without WATCHDOG_USEC.
#[test]
fn ready_reload_and_stop_are_announced() {
    let mut inst = Instance::unstarted();
    let mut mgr = Manager::bind(inst.dir.path());
    let config = inst.dir.path().join("rtmd.toml");
    std::fs::write(&config, "max-clients = 5\n").unwrap();
    let mut cmd = inst.daemon_cmd(&["--config", config.to_str().unwrap()]);
    cmd.env("NOTIFY_SOCKET", &mgr.path)
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&inst.log).unwrap());
    inst.daemon = Some(cmd.spawn().expect("spawn rtmd"));

    let (_, ready) = mgr.expect("READY=1");
    assert!(ready.contains("STATUS=serving "), "{ready:?}");
    // Ready means ready: the very first request succeeds.
    inst.ctl_ok(&["status"]);

    inst.signal_daemon(Signal::SIGHUP);
    let (_, reloading) = mgr.expect("RELOADING=1");
    let mono = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"));
    assert!(mono.parse::<u64>().unwrap() > 0, "{reloading:?}");
    mgr.expect("READY=1");

    inst.signal_daemon(Signal::SIGTERM);
    mgr.expect("STOPPING=1");
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    mgr.drain();
    assert!(
        !mgr.seen.iter().any(|(_, m)| m.contains("WATCHDOG=1")),
        "keep-alives without WATCHDOG_USEC: {:?}",
        mgr.seen
    );
}

/// With WATCHDOG_USEC the supervisor sends WATCHDOG=1 several times per period while every
/// actor answers, none while the route actor is stalled (`rtmctl debug stall`), and resumes
/// after. A WATCHDOG_PID naming another process turns the keep-alives off.
#[cfg(feature = "fault-injection")]
#[test]
fn watchdog_stops_while_an_actor_is_stalled() {
    const PERIOD_MS: u64 = 1500;
    const STALL_MS: u64 = 4000;
    let mut inst = Instance::unstarted();
    let mut mgr = Manager::bind(inst.dir.path());
    spawn_notified(
        &mut inst,
        &mgr,
        &[("WATCHDOG_USEC", &(PERIOD_MS * 1000).to_string())],
    );
    mgr.expect("READY=1");
    // Healthy: keep-alives at least once per period.
    let mut last = mgr.expect("WATCHDOG=1").0;
    for _ in 0..3 {
        let at = mgr.expect("WATCHDOG=1").0;
        assert!(
            at - last < Duration::from_millis(PERIOD_MS),
            "keep-alives {:?} apart, period {PERIOD_MS} ms",
            at - last
        );
        last = at;
    }

    let stall_start = Instant::now();
    let o = inst.ctl(&["debug", "stall", "route", &STALL_MS.to_string()]);
    let stall_end = Instant::now();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stall_end - stall_start >= Duration::from_millis(STALL_MS));

    // Resumes once the actor answers again.
    let stalled_until = stall_start + Duration::from_millis(STALL_MS);
    while mgr.expect("WATCHDOG=1").0 < stalled_until {}
    let during: Vec<_> = mgr
        .seen
        .iter()
        .filter(|(at, m)| {
            m.contains("WATCHDOG=1")
                && *at > stall_start + Duration::from_millis(PERIOD_MS)
                && *at < stalled_until
        })
        .collect();
    assert!(
        during.is_empty(),
        "{} keep-alives while the route actor was stalled",
        during.len()
    );
    inst.ctl_ok(&["status"]);

    // WATCHDOG_PID of another process: the keep-alives are not this daemon's business.
    let mut other = Instance::unstarted();
    let mut mgr2 = Manager::bind(other.dir.path());
    spawn_notified(
        &mut other,
        &mgr2,
        &[("WATCHDOG_USEC", "300000"), ("WATCHDOG_PID", "1")],
    );
    mgr2.expect("READY=1");
    thread::sleep(Duration::from_millis(PERIOD_MS * 2));
    mgr2.drain();
    assert!(
        !mgr2.seen.iter().any(|(_, m)| m.contains("WATCHDOG=1")),
        "{:?}",
        mgr2.seen
    );
}

/// The unit's socket, `/run/rtm/rtm.sock`, is where every client looks first when it exists,
/// whoever runs it: here a daemon on that path in a private mount namespace (its own `/run`),
/// and `rtmctl` as root and as nobody, without `--socket` or `RTM_SOCKET`.
#[test]
fn clients_find_the_system_socket_whatever_their_uid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a private /run and switching users need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        r#"set -e
mount -t tmpfs -o mode=0755 rtm-test /run
"{rtmd}" --socket /run/rtm/rtm.sock --socket-mode 0666 --shm-dir "{dir}" --instance t \
    --route-capacity 64 --arp-capacity 16 2>"{dir}/rtmd.log" &
pid=$!
i=0
while [ ! -S /run/rtm/rtm.sock ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
unset RTM_SOCKET
"{ctl}" route add 10.0.0.0/8 dev eth0
echo "nobody: $(XDG_RUNTIME_DIR=/nonexistent setpriv --reuid 65534 --regid 65534 --clear-groups "{ctl}" route show)"
kill $pid
wait $pid
"#,
        rtmd = RTMD,
        ctl = RTMCTL,
        dir = dir.path().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--fork", "--kill-child", "sh", "-c", &script]);
    let o = run(cmd, None, DEADLINE);
    let log = std::fs::read_to_string(dir.path().join("rtmd.log")).unwrap_or_default();
    assert_eq!(code(&o), 0, "{}\n{log}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "nobody: 10.0.0.0/8 dev eth0\n",
        "{}",
        stderr(&o)
    );
}
