//! Test harness: real `rtmd`, `rtmctl` and `rtm-client` processes, each instance in its own
//! temporary directory (socket + shm), every child under a deadline and killed by its handle.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

pub const RTMD: &str = env!("CARGO_BIN_EXE_rtmd");
pub const RTMCTL: &str = env!("CARGO_BIN_EXE_rtmctl");
pub const RTM_CLIENT: &str = env!("CARGO_BIN_EXE_rtm-client");

/// Default deadline for one CLI call or one expected line.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Waiting for a child, running a command and guarding a child, each under a deadline: the
/// same code `rtm-bench` uses.
#[path = "../../src/cli/child.rs"]
mod child;

// Not every test binary uses both.
#[allow(unused_imports)]
pub use child::{wait_deadline, KillOnDrop};

/// Runs a command to completion with a deadline, capturing its output; panics if it cannot be
/// spawned or does not finish in time.
pub fn run(cmd: Command, stdin: Option<&[u8]>, deadline: Duration) -> Output {
    child::run(cmd, stdin, deadline).unwrap_or_else(|e| panic!("{e}"))
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One daemon instance in a temporary directory.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub shm_dir: PathBuf,
    pub daemon: Option<Child>,
    pub log: PathBuf,
}

impl Instance {
    /// Starts `rtmd` with small tables and waits until it answers.
    pub fn start() -> Instance {
        Instance::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Instance {
        let mut inst = Instance::unstarted();
        inst.spawn_daemon(extra);
        inst
    }

    /// The paths of an instance whose daemon is not started yet.
    pub fn unstarted() -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("rtm.sock");
        let shm_dir = dir.path().join("shm");
        std::fs::create_dir(&shm_dir).unwrap();
        let log = dir.path().join("rtmd.log");
        Instance {
            dir,
            socket,
            shm_dir,
            daemon: None,
            log,
        }
    }

    /// Spawns `rtmd` on this instance's paths and waits until the socket answers.
    pub fn spawn_daemon(&mut self, extra: &[&str]) {
        let cmd = self.daemon_cmd(extra);
        self.spawn_daemon_cmd(cmd);
    }

    /// Spawns `cmd` (from [`Instance::daemon_cmd`]) and waits until the socket answers.
    pub fn spawn_daemon_cmd(&mut self, mut cmd: Command) {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        cmd.stdout(Stdio::null()).stderr(logf);
        self.daemon = Some(cmd.spawn().expect("spawn rtmd"));
        let end = Instant::now() + DEADLINE;
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("rtmd exited early ({st}): {}", self.log_text());
            }
            assert!(
                Instant::now() < end,
                "rtmd did not come up: {}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The daemon command line for this instance.
    pub fn daemon_cmd(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(RTMD);
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--shm-dir")
            .arg(&self.shm_dir)
            .args([
                "--instance",
                "t",
                "--route-capacity",
                "8192",
                "--arp-capacity",
                "1024",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            // Not the service manager this test may run under (tests set their own).
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        cmd
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn daemon_pid(&self) -> Pid {
        Pid::from_raw(self.daemon.as_ref().expect("daemon").id() as i32)
    }

    pub fn route_shm(&self) -> PathBuf {
        self.shm_dir.join("t.route")
    }

    pub fn arp_shm(&self) -> PathBuf {
        self.shm_dir.join("t.arp")
    }

    /// `rtmctl` with this instance's socket.
    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(RTMCTL);
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        run(self.ctl_cmd(args), None, DEADLINE)
    }

    /// A one-shot `rtm-client` (`dump`, `lookup`, `arp`) against this instance, with `stdin`.
    pub fn client_oneshot(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(RTM_CLIENT);
        cmd.arg("--socket").arg(&self.socket).args(args);
        run(cmd, stdin, DEADLINE)
    }

    /// `rtmctl` that must succeed; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert_eq!(code(&o), 0, "rtmctl {args:?}: {}", stderr(&o));
        stdout(&o)
    }

    /// `rtmctl` with the arguments of one command line, which must succeed; returns stdout.
    pub fn ctl_line(&self, line: &str) -> String {
        self.ctl_ok(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// `rtmctl -j ...` parsed.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ctl_ok(&a)).expect("rtmctl -j prints JSON")
    }

    /// `rtmctl batch -` fed with `text`.
    pub fn batch(&self, text: &str, force: bool) -> Output {
        let mut args = vec!["batch", "-"];
        if force {
            args.push("--force");
        }
        run(self.ctl_cmd(&args), Some(text.as_bytes()), DEADLINE)
    }

    /// `rtmctl batch FILE` of `text`: read whole, so it goes out as one request per
    /// `BATCH_CHUNK` lines however the machine schedules (standard input goes out as it
    /// arrives, which a loaded machine may split).
    pub fn batch_file(&self, text: &str) -> Output {
        let f = tempfile::NamedTempFile::new_in(self.dir.path()).expect("batch file");
        std::fs::write(f.path(), text).expect("write batch file");
        let path = f.path().to_str().expect("utf-8 path").to_string();
        run(self.ctl_cmd(&["batch", &path]), None, DEADLINE)
    }

    /// Starts a registered `rtm-client --json` and waits until its tables are synced.
    pub fn client(&self, name: &str, extra: &[&str]) -> ClientProc {
        let mut c = self.client_unsynced(name, extra);
        let tables = if extra.contains(&"every") {
            3
        } else if ["route", "arp", "neigh"].iter().any(|t| extra.contains(t)) {
            1
        } else {
            2
        };
        for _ in 0..tables {
            c.expect(|v| v["op"] == "sync-done");
        }
        c
    }

    /// Starts `rtm-client --json` without waiting for anything.
    pub fn client_unsynced(&self, name: &str, extra: &[&str]) -> ClientProc {
        let mut cmd = Command::new(RTM_CLIENT);
        cmd.arg("--socket")
            .arg(&self.socket)
            .args(["--json", "--name", name])
            .args(extra);
        ClientProc::spawn(cmd)
    }

    /// `rtmctl -j watch`.
    pub fn watch(&self) -> ClientProc {
        ClientProc::spawn(self.ctl_cmd(&["-j", "watch"]))
    }

    /// Names of the registered clients.
    pub fn client_names(&self) -> Vec<String> {
        self.ctl_json(&["clients"])
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Polls `cond` until it holds (bounded).
    pub fn eventually(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + DEADLINE;
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for: {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal_daemon(&self, sig: Signal) {
        kill(self.daemon_pid(), sig).expect("signal rtmd");
    }

    /// Waits for the daemon to exit; returns its status.
    pub fn wait_daemon(&mut self) -> ExitStatus {
        let mut d = self.daemon.take().expect("daemon");
        wait_deadline(&mut d, DEADLINE).expect("rtmd did not exit")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// A long-running client process whose stdout lines arrive on a channel.
pub struct ClientProc {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    err: Option<thread::JoinHandle<String>>,
}

impl ClientProc {
    pub fn spawn(mut cmd: Command) -> ClientProc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn client");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        ClientProc {
            child,
            lines: rx,
            seen: Vec::new(),
            err: Some(err),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The next output line as JSON, or `None` at EOF / deadline.
    pub fn next_within(&mut self, d: Duration) -> Option<Value> {
        match self.lines.recv_timeout(d) {
            Ok(l) => {
                self.seen.push(l.clone());
                Some(
                    serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")),
                )
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    pub fn next(&mut self) -> Value {
        self.next_within(DEADLINE)
            .unwrap_or_else(|| panic!("no line within {DEADLINE:?}; seen so far: {:#?}", self.seen))
    }

    /// Reads lines until one matches; returns it.
    pub fn expect(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let v = self.next();
            if pred(&v) {
                return v;
            }
        }
    }

    /// Collects lines until (and including) the first that matches.
    pub fn collect_until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.next();
            let done = pred(&v);
            out.push(v);
            if done {
                return out;
            }
        }
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal client");
    }

    /// Waits for exit (bounded); returns the exit status and stderr.
    pub fn wait(&mut self) -> (ExitStatus, String) {
        let st = wait_deadline(&mut self.child, DEADLINE).expect("client did not exit");
        let err = self
            .err
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (st, err)
    }
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` distinct routes with varied fields, as batch lines and as `rtmctl -j route show`
/// prints them. Prefixes are 10.a.b.0/len with len 24..=32, so none collide.
pub fn varied_routes(count: usize) -> Vec<(String, Value)> {
    assert!(count <= 65_536);
    (0..count)
        .map(|i| {
            let len = [24u8, 25, 26, 28, 30, 32][i % 6];
            let dst = format!("10.{}.{}.0/{len}", i >> 8, i & 0xff);
            let metric = (i % 7) as u32 * 10;
            let mut line = format!("route add {dst}");
            let mut json = serde_json::json!({ "dst": dst, "metric": metric });
            if i % 3 != 0 {
                let via = format!("192.168.{}.{}", i % 200, 1 + i % 250);
                line += &format!(" via {via}");
                json["via"] = via.into();
            }
            if i % 3 != 1 {
                let dev = format!("eth{}", i % 5);
                line += &format!(" dev {dev}");
                json["dev"] = dev.into();
            }
            if metric != 0 {
                line += &format!(" metric {metric}");
            }
            (line, json)
        })
        .collect()
}

/// Whether anything (even a dangling symlink) is at `p`.
pub fn path_exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

// ===== Helpers for the fault and slow-client tests =====

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `RssAnon`, ...).
pub fn proc_status_kib(pid: Pid, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Open descriptors of a process.
pub fn fd_count(pid: Pid) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc fd")
        .count()
}

impl Instance {
    /// `rtmctl debug WORDS...` (fault-injection builds).
    pub fn debug(&self, words: &str) -> Output {
        let mut args = vec!["debug"];
        args.extend(words.split_whitespace());
        self.ctl(&args)
    }

    /// `rtmctl -j status`.
    pub fn status(&self) -> Value {
        self.ctl_json(&["status"])
    }

    /// Whether the daemon process is still running.
    pub fn daemon_alive(&mut self) -> bool {
        self.daemon
            .as_mut()
            .is_some_and(|d| d.try_wait().expect("try_wait").is_none())
    }

    /// `rtmctl -j route show` as a map from `dst` to entry.
    pub fn routes(&self) -> std::collections::BTreeMap<String, Value> {
        keyed(self.ctl_json(&["route", "show"]), "dst")
    }

    /// `rtmctl -j arp show` as a map from `mac` to entry.
    pub fn arps(&self) -> std::collections::BTreeMap<String, Value> {
        keyed(self.ctl_json(&["arp", "show"]), "mac")
    }
}

/// A JSON array of entries as a map from the `key` field.
pub fn keyed(v: Value, key: &str) -> std::collections::BTreeMap<String, Value> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| (e[key].as_str().expect("key").to_string(), e.clone()))
        .collect()
}

/// What a client printed, replayed: both tables as the client showed them, plus checks on the
/// order of what it printed.
#[derive(Debug, Default)]
pub struct EventModel {
    pub routes: std::collections::BTreeMap<String, Value>,
    pub arps: std::collections::BTreeMap<String, Value>,
    /// Last sequence number per table (from `sync-done`, changes and flushes).
    pub last_seq: [u64; 2],
    /// Changes whose seq was not the previous one + 1 (legitimate only right after a resync).
    pub gaps: u64,
    /// Tables named by `resync` lines, in order.
    pub resyncs: Vec<String>,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub signals: u64,
    pub flushes: u64,
    pub sync_dones: u64,
}

impl EventModel {
    fn slot(table: &str) -> usize {
        match table {
            "route" => 0,
            "arp" => 1,
            t => panic!("unknown table {t}"),
        }
    }

    fn table(&mut self, table: &str) -> &mut std::collections::BTreeMap<String, Value> {
        match table {
            "route" => &mut self.routes,
            _ => &mut self.arps,
        }
    }

    /// Applies one printed line; panics on a change out of sequence order.
    pub fn feed(&mut self, v: &Value) {
        let op = v["op"].as_str().unwrap_or_else(|| panic!("no op: {v}"));
        let table = v["table"].as_str().unwrap_or("");
        match op {
            "sync" => {
                let key = v["key"].as_str().unwrap().to_string();
                self.table(table).insert(key, v["entry"].clone());
            }
            "sync-done" => {
                self.sync_dones += 1;
                let n = v["count"].as_u64().unwrap() as usize;
                assert_eq!(self.table(table).len(), n, "sync-done count: {v}");
                self.last_seq[Self::slot(table)] = v["seq"].as_u64().unwrap_or(0);
            }
            "resync" => {
                self.resyncs.push(table.to_string());
                self.table(table).clear();
            }
            "create" | "update" | "delete" => {
                let seq = v["seq"].as_u64().unwrap();
                let last = &mut self.last_seq[Self::slot(table)];
                assert!(seq > *last, "out of order: {v} after seq {last}");
                if seq != *last + 1 {
                    self.gaps += 1;
                }
                *last = seq;
                let key = v["key"].as_str().unwrap().to_string();
                match op {
                    "create" => self.creates += 1,
                    "update" => self.updates += 1,
                    _ => self.deletes += 1,
                }
                match (op, v.get("entry")) {
                    ("delete", _) | (_, None) => {
                        self.table(table).remove(&key);
                    }
                    (_, Some(e)) => {
                        self.table(table).insert(key, e.clone());
                    }
                }
            }
            "flush" => {
                self.flushes += 1;
                let seq = v["seq"].as_u64().unwrap();
                let last = &mut self.last_seq[Self::slot(table)];
                assert!(seq > *last, "out of order: {v} after seq {last}");
                *last = seq;
                self.table(table).clear();
            }
            "signal" => self.signals += 1,
            _ => {}
        }
    }

    /// Replays every line a client printed so far (e.g. its sync, read by [`Instance::client`]).
    pub fn from_seen(c: &ClientProc) -> EventModel {
        let mut m = EventModel::default();
        for l in &c.seen {
            m.feed(&serde_json::from_str(l).unwrap());
        }
        m
    }

    /// Reads `c`'s lines into the model until `pred` holds for one; returns that line.
    pub fn follow(&mut self, c: &mut ClientProc, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let v = c.next();
            self.feed(&v);
            if pred(&v) {
                return v;
            }
        }
    }
}

/// A change no test makes otherwise, per table.
const MARKERS: [(&str, &str, &str); 2] = [
    ("route", "route add 99.0.0.0/8 dev marker", "99.0.0.0/8"),
    (
        "arp",
        "arp add 02:ff:ff:ff:ff:ff 10.255.255.255",
        "02:ff:ff:ff:ff:ff",
    ),
];

impl Instance {
    /// Makes a marker change in each of `tables` and asserts that the markers are the next lines
    /// every one of `clients` prints, in either order: a client printed nothing else before them
    /// (within a table, events come in order). Unlike waiting a while for silence, this does not
    /// depend on how fast the machine is.
    pub fn expect_markers_next(&self, tables: &[&str], clients: &mut [&mut ClientProc]) {
        let mut want = Vec::new();
        for (table, line, key) in MARKERS {
            if tables.contains(&table) {
                self.ctl_line(line);
                want.push(key);
            }
        }
        want.sort();
        for c in clients.iter_mut() {
            let mut got: Vec<String> = (0..want.len())
                .map(|_| {
                    let v = c.next();
                    assert_eq!(v["op"], "create", "instead of a marker: {v}");
                    v["key"].as_str().unwrap().to_string()
                })
                .collect();
            got.sort();
            assert_eq!(got, want, "the markers");
        }
    }
}
pub mod http;
pub mod netns;
pub mod raw;
pub mod tmpfs;
