//! docs/guarantees.md §6: a panic in any supervised actor (route, arp, broker, listener) is caught
//! and the actor restarted with its table intact while updates keep flowing; a failing session ends
//! only itself; too many failures stop the daemon with exit code 70. Uses the `fault-injection`
//! hooks (`rtmctl debug panic ...`).
#![forbid(unsafe_code)]
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// Route keys a writer cycles through: 10.a.b.0/24 for the index a.b (its neighbours use the same
/// index); a key comes round again only long after the writer deleted it.
const KEY_SPACE: usize = 65_536;
/// Routes and neighbours a writer keeps at most: once there, it deletes its oldest entries as
/// fast as it adds new ones, so it can run for as long as a test needs while both tables stay
/// well under their capacities.
const ROUTES_KEPT: usize = 600;
const ARPS_KEPT: usize = 150;

/// Keeps changing both tables, one `rtmctl batch` after another, and remembers what was
/// acknowledged: every batch must succeed, whatever fails elsewhere in the daemon.
struct Writer {
    socket: PathBuf,
    n: usize,
    routes: BTreeMap<String, Value>,
    arps: BTreeMap<String, Value>,
    route_order: VecDeque<String>,
    arp_order: VecDeque<String>,
}

impl Writer {
    fn new(inst: &Instance) -> Writer {
        Writer {
            socket: inst.socket.clone(),
            n: 0,
            routes: BTreeMap::new(),
            arps: BTreeMap::new(),
            route_order: VecDeque::new(),
            arp_order: VecDeque::new(),
        }
    }

    /// One batch: 40 route adds and 10 neighbour adds, then deletes of the oldest entries: at
    /// least 10 routes and 3 neighbours, more to stay within [`ROUTES_KEPT`] and [`ARPS_KEPT`].
    fn step(&mut self) {
        let mut text = String::new();
        let mut routes = self.routes.clone();
        let mut arps = self.arps.clone();
        let mut route_order = self.route_order.clone();
        let mut arp_order = self.arp_order.clone();
        for _ in 0..40 {
            let i = self.n % KEY_SPACE;
            self.n += 1;
            let dst = format!("10.{}.{}.0/24", i >> 8, i & 0xff);
            let mut line = format!("route add {dst}");
            let mut e = json!({ "dst": dst, "metric": (i % 4) * 10 });
            if i % 2 == 0 {
                let via = format!("192.168.{}.{}", i % 200, 1 + i % 250);
                line += &format!(" via {via}");
                e["via"] = via.into();
            }
            if i % 2 == 1 || i % 3 == 0 {
                let dev = format!("eth{}", i % 5);
                line += &format!(" dev {dev}");
                e["dev"] = dev.into();
            }
            if i % 4 != 0 {
                line += &format!(" metric {}", (i % 4) * 10);
            }
            text += &line;
            text.push('\n');
            routes.insert(dst.clone(), e);
            route_order.push_back(dst);
            if i % 4 == 3 {
                let mac = format!("02:00:00:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff);
                let ip = format!("172.16.{}.{}", (i >> 8) & 0xff, i & 0xff);
                let mut e = json!({ "mac": mac, "ip": ip });
                let mut line = format!("arp add {mac} {ip}");
                if i % 8 == 3 {
                    line += " dev eth1";
                    e["dev"] = "eth1".into();
                }
                text += &line;
                text.push('\n');
                arps.insert(mac.clone(), e);
                arp_order.push_back(mac);
            }
        }
        for _ in 0..route_order.len().saturating_sub(ROUTES_KEPT).max(10) {
            let dst = route_order.pop_front().unwrap();
            routes.remove(&dst);
            text += &format!("route del {dst}\n");
        }
        for _ in 0..arp_order.len().saturating_sub(ARPS_KEPT).max(3) {
            let mac = arp_order.pop_front().unwrap();
            arps.remove(&mac);
            text += &format!("arp del {mac}\n");
        }
        let mut cmd = Command::new(RTMCTL);
        cmd.arg("--socket").arg(&self.socket).args(["batch", "-"]);
        let o = run(cmd, Some(text.as_bytes()), DEADLINE);
        assert_eq!(code(&o), 0, "batch {} failed: {}", self.n / 40, stderr(&o));
        self.routes = routes;
        self.arps = arps;
        self.route_order = route_order;
        self.arp_order = arp_order;
    }
}

/// A [`Writer`] on its own thread, with a pause switch; it writes until it is told to stop, so
/// that a test waits for what it needs (a number of batches after some event) however fast the
/// machine is.
struct Background {
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    batches: Arc<AtomicUsize>,
    handle: thread::JoinHandle<Writer>,
}

impl Background {
    fn spawn(mut w: Writer) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let batches = Arc::new(AtomicUsize::new(0));
        let (s, p, pd, b) = (stop.clone(), pause.clone(), paused.clone(), batches.clone());
        let handle = thread::spawn(move || {
            while !s.load(SeqCst) {
                if p.load(SeqCst) {
                    pd.store(true, SeqCst);
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
                pd.store(false, SeqCst);
                w.step();
                b.fetch_add(1, SeqCst);
            }
            w
        });
        Background {
            stop,
            pause,
            paused,
            batches,
            handle,
        }
    }

    fn batches(&self) -> usize {
        self.batches.load(SeqCst)
    }

    fn finish(self) -> Writer {
        self.stop.store(true, SeqCst);
        match self.handle.join() {
            Ok(w) => w,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Trigger {
    /// `rtmctl debug panic ...` with these words.
    Debug(&'static str),
    /// Arm `debug panic broker in stream`, then SIGHUP the daemon.
    BrokerSignal,
    /// Arm `debug panic listener in stream`, then connect once (dropped) and again (served).
    ListenerAccept,
    /// Nothing more: the panic armed with `arm` goes off in the writer's next batch.
    NextWrite,
}

/// Panics `actor` while a writer changes both tables, then checks that everything survived:
/// the daemon, the acknowledged tables, an existing client (which re-reads a restarted table),
/// a late joiner, flush signalling (the broker) and the clean stop. `arm` (debug words, e.g.
/// `panic route in restart`; empty for none) is a panic armed before `trigger`; `restarts` is
/// how many restarts of `actor` that makes.
fn survive(actor: &str, arm: &str, trigger: Trigger, restarts: u64) {
    let mut inst = Instance::start();
    let mut w = Writer::new(&inst);
    w.step();
    let mut client = inst.client("a", &[]);
    let mut seen = EventModel::from_seen(&client);
    assert_eq!(seen.routes, w.routes, "initial sync");
    let bg = Background::spawn(w);
    inst.eventually("some batches applied", || bg.batches() >= 3);
    // The client is receiving live changes.
    seen.follow(&mut client, |v| v["op"] == "create");

    let table_actor = actor == "route" || actor == "arp";
    if !arm.is_empty() {
        let o = inst.debug(arm);
        assert_eq!(code(&o), 0, "debug {arm}: {}", stderr(&o));
    }
    let t0 = Instant::now();
    match trigger {
        Trigger::Debug(words) => {
            let o = inst.debug(words);
            // A panic inside the debug request's own handler may lose its reply (see
            // `a_panic_in_a_handler_is_acknowledged`); every other point must answer 0.
            if !words.ends_with(actor) && !words.ends_with("in handler") {
                assert_eq!(code(&o), 0, "debug {words}: {}", stderr(&o));
            }
        }
        Trigger::BrokerSignal => {
            let o = inst.debug("panic broker in stream");
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            inst.signal_daemon(Signal::SIGHUP);
            // The broker passed the signal on before it failed.
            inst.eventually("SIGHUP handled", || {
                inst.log_text().contains("SIGHUP: no config file to reload")
            });
        }
        Trigger::ListenerAccept => {
            // Hold the writer so that the probe below is the connection the listener drops.
            bg.pause.store(true, SeqCst);
            inst.eventually("writer paused", || bg.paused.load(SeqCst));
            let o = inst.debug("panic listener in stream");
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            let o = inst.ctl(&["route", "show"]);
            assert_eq!(
                code(&o),
                3,
                "the next connection is dropped: {}",
                stderr(&o)
            );
            // ...and the ones after it are served.
            let o = inst.ctl(&["route", "show"]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            bg.pause.store(false, SeqCst);
        }
        Trigger::NextWrite => {}
    }
    if table_actor {
        // The client is told to re-read the restarted table, and prints it again.
        seen.follow(&mut client, |v| v["op"] == "resync" && v["table"] == actor);
        seen.follow(&mut client, |v| {
            v["op"] == "sync-done" && v["table"] == actor
        });
        eprintln!(
            "{actor} {trigger:?}: panic request to the client's sync-done after resync: {:?}",
            t0.elapsed()
        );
    }
    inst.eventually("the restart is counted", || {
        inst.status()["restarts"][actor].as_u64() == Some(restarts)
    });
    let status = inst.status();
    for other in ["route", "arp", "broker", "listener"] {
        if other != actor {
            assert_eq!(status["restarts"][other], 0, "{status}");
        }
    }
    let last = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        last.starts_with(&format!("{actor}: ")) && last.contains("injected panic"),
        "{status}"
    );

    // Updates keep flowing after the restart.
    let at = bg.batches();
    inst.eventually("more batches applied", || bg.batches() >= at + 5);
    let w = bg.finish();
    assert!(inst.daemon_alive(), "rtmd died: {}", inst.log_text());
    assert_eq!(inst.routes(), w.routes, "route table after the panic");
    assert_eq!(inst.arps(), w.arps, "arp table after the panic");

    // The existing client saw every later change: its replay equals the tables.
    inst.ctl_line("route add 99.0.0.0/8 dev marker");
    seen.follow(&mut client, |v| v["key"] == "99.0.0.0/8");
    inst.ctl_line("arp add 02:ff:ff:ff:ff:ff 10.255.255.255");
    seen.follow(&mut client, |v| v["key"] == "02:ff:ff:ff:ff:ff");
    let (routes, arps) = (inst.routes(), inst.arps());
    assert_eq!(seen.routes, routes, "client's route events");
    assert_eq!(seen.arps, arps, "client's arp events");
    if table_actor {
        assert!(
            !seen.resyncs.is_empty() && seen.resyncs.iter().all(|t| t == actor),
            "resyncs: {:?}",
            seen.resyncs
        );
    } else {
        assert!(seen.resyncs.is_empty(), "resyncs: {:?}", seen.resyncs);
    }
    // ...and so does its own mirror.
    client.signal(Signal::SIGUSR2);
    let mirror = client.collect_until(|v| v["op"] == "mirror-done");
    let done = mirror.last().unwrap();
    assert_eq!(done["routes"], routes.len() as u64);
    assert_eq!(done["arps"], arps.len() as u64);
    for m in &mirror[..mirror.len() - 1] {
        let want = if m["table"] == "route" {
            &routes
        } else {
            &arps
        };
        assert_eq!(
            Some(&m["entry"]),
            want.get(m["key"].as_str().unwrap()),
            "{m}"
        );
    }

    // A late joiner gets the full tables.
    let late = inst.client("late", &[]);
    let joined = EventModel::from_seen(&late);
    assert_eq!(joined.routes, routes);
    assert_eq!(joined.arps, arps);

    // Flush signalling (through the broker) works.
    inst.ctl_ok(&["flush"]);
    let mut flushes = 0;
    let mut signalled = false;
    while flushes < 2 || !signalled {
        let v = client.next();
        match v["op"].as_str().unwrap() {
            "flush" => flushes += 1,
            "signal" => signalled = true,
            _ => panic!("unexpected {v}"),
        }
    }

    // The clean stop works (the broker handles SIGTERM).
    inst.signal_daemon(Signal::SIGTERM);
    assert_eq!(client.next()["op"], "bye");
    let st = inst.wait_daemon();
    assert!(st.success(), "rtmd: {st}: {}", inst.log_text());
}

/// One `#[test]` per row of [`survive`]'s arguments, named by the row (a row's doc comment is
/// its test's).
macro_rules! survival_tests {
    ($(
        $(#[$doc:meta])*
        $name:ident: $actor:literal, $arm:literal, $trigger:expr, $restarts:literal;
    )*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                use Trigger::*;
                survive($actor, $arm, $trigger, $restarts);
            }
        )*
    };
}

survival_tests! {
    // test: actor, panic armed first, what sets a panic off, restarts counted;

    route_panic_in_handler: "route", "", Debug("panic route"), 1;
    route_panic_in_async_handler: "route", "", Debug("panic route in async"), 1;
    route_panic_in_interval: "route", "", Debug("panic route in interval"), 1;
    /// The first restart fails in its `restarting` hook; the second one repairs and resyncs.
    route_panic_again_while_restarting:
        "route", "panic route in restart", Debug("panic route in async"), 2;
    /// A table that fails in the middle of writing a request to shared memory (the request is
    /// durable and acknowledged) writes the rest when it restarts: the tables equal what was
    /// acknowledged, the client resyncs to them.
    route_panic_in_the_middle_of_a_shm_write: "route", "panic route in publish", NextWrite, 1;

    arp_panic_in_handler: "arp", "", Debug("panic arp"), 1;
    arp_panic_in_async_handler: "arp", "", Debug("panic arp in async"), 1;
    arp_panic_in_interval: "arp", "", Debug("panic arp in interval"), 1;
    arp_panic_again_while_restarting: "arp", "panic arp in restart", Debug("panic arp"), 2;
    arp_panic_in_the_middle_of_a_shm_write: "arp", "panic arp in publish", NextWrite, 1;

    broker_panic_in_handler: "broker", "", Debug("panic broker"), 1;
    broker_panic_in_async_handler: "broker", "", Debug("panic broker in async"), 1;
    broker_panic_in_signal_stream: "broker", "", BrokerSignal, 1;

    listener_panic_in_handler: "listener", "", Debug("panic listener"), 1;
    listener_panic_in_accept_stream_drops_one_connection: "listener", "", ListenerAccept, 1;
    listener_panic_again_while_restarting:
        "listener", "panic listener in restart", Debug("panic listener in async"), 2;
}

#[test]
fn only_table_actors_have_a_publish_point() {
    let inst = Instance::start();
    for actor in ["broker", "listener"] {
        let o = inst.debug(&format!("panic {actor} in publish"));
        assert_ne!(code(&o), 0, "{actor}");
        assert!(
            stderr(&o).contains("writes no shared memory"),
            "{actor}: {}",
            stderr(&o)
        );
    }
    assert_eq!(inst.status()["restarts"]["route"], 0);
}

/// `rtmctl debug panic TARGET` (in its handler) is a successful request: the panic happened as
/// asked and the actor was restarted, so rtmctl should exit 0 like for every other point.
#[test]
fn a_panic_in_a_handler_is_acknowledged() {
    let inst = Instance::start();
    for (i, actor) in ["route", "arp", "broker", "listener"]
        .into_iter()
        .enumerate()
    {
        let o = inst.debug(&format!("panic {actor}"));
        inst.eventually("the restart is counted", || {
            inst.status()["restarts"][actor].as_u64() == Some(1)
        });
        assert_eq!(
            code(&o),
            0,
            "debug panic {actor} (restart #{}): {}",
            i + 1,
            stderr(&o)
        );
    }
}

/// Beyond the restart budget the daemon stops with exit code 70 (so that systemd restarts it),
/// and the shared memory it leaves stays readable.
#[test]
fn restart_budget_spent_stops_rtmd_with_code_70() {
    let mut inst = Instance::start_with(&["--max-restarts", "2", "--restart-window", "30s"]);
    inst.ctl_line("route add 10.1.0.0/16 via 192.168.1.1 dev eth0");
    inst.ctl_line("arp add 00:11:22:33:44:55 192.168.1.10");
    let mut client = inst.client("c", &[]);
    for (n, words) in [(1, "panic route in async"), (2, "panic arp in async")] {
        let o = inst.debug(words);
        assert_eq!(code(&o), 0, "{words}: {}", stderr(&o));
        inst.eventually("restart counted", || {
            let r = &inst.status()["restarts"];
            r["route"].as_u64().unwrap() + r["arp"].as_u64().unwrap() == n
        });
        assert!(inst.daemon_alive(), "rtmd died after {n} restarts");
    }
    // Within budget the daemon keeps serving.
    inst.ctl_line("route add 10.2.0.0/16 dev eth1");
    // The third failure spends the budget.
    let _ = inst.debug("panic broker in async");
    let st = inst.wait_daemon();
    assert_eq!(st.code(), Some(70), "{st}: {}", inst.log_text());
    assert!(
        inst.log_text().contains("restart budget spent"),
        "{}",
        inst.log_text()
    );
    // The client notices (no bye: this is not a clean stop) and exits non-zero.
    let (st, err) = client.wait();
    assert!(!st.success(), "client: {st} {err}");
    // Data planes keep reading what was acknowledged.
    let mut cmd = Command::new(RTM_CLIENT);
    cmd.arg("--socket")
        .arg(&inst.socket)
        .args(["dump", "--shm-dir"])
        .arg(&inst.shm_dir)
        .args(["--instance", "t"]);
    let o = run(cmd, None, DEADLINE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "10.1.0.0/16 via 192.168.1.1 dev eth0\n10.2.0.0/16 dev eth1\n\
         192.168.1.10 lladdr 00:11:22:33:44:55\n"
    );
}

/// Restarts older than the window no longer count against the budget.
#[test]
fn restart_budget_forgets_old_restarts() {
    let mut inst = Instance::start_with(&["--max-restarts", "1", "--restart-window", "1s"]);
    for n in 1..=3u64 {
        let o = inst.debug("panic route in async");
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        inst.eventually("restart counted", || {
            inst.status()["restarts"]["route"].as_u64() == Some(n)
        });
        assert!(inst.daemon_alive(), "rtmd died after restart {n}");
        // Let the window pass (the budget is about time, there is no condition to wait on).
        thread::sleep(Duration::from_millis(1200));
    }
    // Two failures within the window are one too many. The second is the restart of the first
    // failing in its turn: two requests could arrive a window apart on a busy machine.
    let o = inst.debug("panic route in restart");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let _ = inst.debug("panic route in async");
    assert_eq!(inst.wait_daemon().code(), Some(70), "{}", inst.log_text());
}

/// A session that fails ends only itself.
#[test]
fn a_failing_session_ends_only_itself() {
    let inst = Instance::start();
    inst.ctl_line("route add 10.1.0.0/16 dev eth0");
    let mut a = inst.client("a", &[]);
    let mut b = inst.client("b", &["--table", "route"]);
    let mut watch = inst.watch();
    inst.eventually("3 registered", || inst.client_names().len() == 3);

    let o = inst.debug("panic session");
    // The failing session is the request's own: its connection closes without a reply.
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("closed the connection"),
        "{}",
        stderr(&o)
    );

    let status = inst.status();
    assert_eq!(status["counters"]["session_failures"], 1, "{status}");
    assert_eq!(
        status["restarts"],
        json!({"route": 0, "arp": 0, "broker": 0, "listener": 0, "registry": 0})
    );
    assert_eq!(status["last_failure"], Value::Null, "{status}");
    let mut names = inst.client_names();
    names.sort();
    assert_eq!(names, ["a", "b", "rtmctl-watch"]);

    inst.ctl_line("route add 10.2.0.0/16 dev eth1");
    for c in [&mut a, &mut b, &mut watch] {
        let v = c.next();
        assert_eq!(v["op"], "create", "{v}");
        assert_eq!(v["seq"], 2, "{v}");
        assert_eq!(v["key"], "10.2.0.0/16", "{v}");
    }
    // Many failing sessions later, still only them.
    for _ in 0..5 {
        assert_eq!(code(&inst.debug("panic session")), 3);
    }
    assert_eq!(
        inst.status()["counters"]["session_failures"],
        6,
        "every failure counted"
    );
    assert_eq!(inst.client_names().len(), 3);
}

/// A restarted table actor sets up its housekeeping tick again (it went with the old context):
/// a panic armed for the next tick trips after every restart.
#[test]
fn housekeeping_ticks_again_after_each_restart() {
    let mut inst = Instance::start();
    inst.ctl_line("route add 10.1.0.0/16 dev eth0");
    for n in 1..=3u64 {
        let o = inst.debug("panic arp in interval");
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        inst.eventually("the tick tripped", || {
            inst.status()["restarts"]["arp"].as_u64() == Some(n)
        });
    }
    assert!(inst.daemon_alive());
    assert_eq!(inst.ctl_ok(&["route", "show"]), "10.1.0.0/16 dev eth0\n");
}
