//! A full shared-memory file system refuses a change instead of killing rtmd: every page of a
//! table file is reserved before it is reachable, so a change that needs room the file system
//! does not have is refused whole (`no space in DIR for the … table`, rtmctl exit 2) before it
//! reaches the journal, shared memory or any subscriber; rtmd keeps serving. A file system too
//! small for the starting files is a start-up error (exit 1).
//!
//! Each test mounts a small tmpfs in a mount namespace of its own (held by a `sleep`, so that a
//! restarted rtmd finds the same file system) and runs rtmd in it with `--shm-dir` on the
//! tmpfs; rtmctl talks to it over its socket from outside, and what must read the files runs
//! inside the namespace through `nsenter`. This needs root and util-linux; without them a test
//! says why and passes.
//!
//! Sizes (tmpfs sizes are whole 4 KiB pages): an empty route file is 319,616 bytes (79 pages
//! and a bit) with its headroom, an empty ARP file 2 pages; on a file system without room for
//! the headroom, rtmd starts with tighter files.
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::tmpfs::{hold, unsupported};
use common::*;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// Room for both empty table files and a few dozen routes.
const JUST_ENOUGH: &str = "400k";
/// Room for the empty files and some growth of either table.
const SOME_ROOM: &str = "512k";
/// Room for a table restored from a full [`SOME_ROOM`] tmpfs.
const ROOMY: &str = "4m";
/// Too small for an empty route file.
const NO_ROUTE_FILE: &str = "256k";
/// Room for an empty route file (312 KiB with its headroom) but not for the ARP file next to it.
const NO_ARP_FILE: &str = "320k";

/// Flags that take the capacities out of the way: only the file system limits the tables.
const UNCAPPED: [&str; 4] = ["--route-capacity", "100000", "--arp-capacity", "100000"];

/// Returns from the test, saying why, if it cannot run here.
macro_rules! skip_unless_supported {
    () => {
        if let Some(why) = unsupported() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// An instance whose shm dir is a tmpfs of a given size in a mount namespace of its own.
struct OnTmpfs {
    /// Dropped first: its rtmd is killed before the namespace's holder.
    inst: Instance,
    /// The namespace's first process; the tmpfs lives as long as it does.
    holder: KillOnDrop,
}

impl Deref for OnTmpfs {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.inst
    }
}

impl DerefMut for OnTmpfs {
    fn deref_mut(&mut self) -> &mut Instance {
        &mut self.inst
    }
}

impl OnTmpfs {
    /// Mounts a tmpfs of `size` at the instance's shm dir, in a new mount namespace.
    fn mount(size: &str) -> OnTmpfs {
        let inst = Instance::unstarted();
        let holder = hold(inst.dir.path(), &inst.shm_dir, size);
        OnTmpfs { inst, holder }
    }

    /// Replaces the tmpfs (rtmd stopped) by a fresh one of `size` at the same place.
    fn remount(&mut self, size: &str) {
        assert!(self.inst.daemon.is_none(), "rtmd still runs");
        let _ = std::fs::remove_file(self.dir.path().join("mounted"));
        self.holder = hold(
            self.inst.dir.path(),
            &self.inst.dir.path().join("shm"),
            size,
        );
    }

    /// `program args...` run inside the tmpfs's mount namespace (`nsenter` executes it in its
    /// own place: the child is the program itself).
    fn inside(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.holder.id().to_string())
            .arg("--mount")
            .arg("--")
            .arg(program);
        cmd
    }

    /// rtmd's command line on this instance, inside the namespace.
    fn rtmd_cmd(&self, extra: &[&str]) -> Command {
        let daemon = self.inst.daemon_cmd(extra);
        let mut cmd = self.inside(daemon.get_program());
        cmd.args(daemon.get_args()).env("RUST_LOG", "info");
        cmd
    }

    /// Starts rtmd (logging to the instance's log) and waits until it answers.
    fn start(&mut self, extra: &[&str]) {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = self.rtmd_cmd(extra);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(logf);
        self.inst.daemon = Some(cmd.spawn().expect("spawn rtmd"));
        let end = Instant::now() + DEADLINE;
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(st) = self.inst.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("rtmd exited early ({st}): {}", self.log_text());
            }
            assert!(
                Instant::now() < end,
                "rtmd did not come up: {}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
        // The process we signal and wait for is rtmd itself, not a wrapper.
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.daemon_pid())).unwrap();
        assert_eq!(
            exe,
            std::fs::canonicalize(RTMD).unwrap(),
            "the daemon's pid"
        );
    }

    /// Stops rtmd cleanly (SIGTERM) and asserts that it exits 0.
    fn stop(&mut self) {
        assert!(
            self.daemon_alive(),
            "rtmd is not running: {}",
            self.log_text()
        );
        self.signal_daemon(Signal::SIGTERM);
        let st = self.wait_daemon();
        assert!(st.success(), "rtmd stopped with {st}: {}", self.log_text());
    }

    /// The names in the shm dir, as rtmd sees it.
    fn shm_files(&self) -> Vec<String> {
        let mut cmd = self.inside("ls");
        cmd.arg("-A").arg(&self.shm_dir);
        let o = run(cmd, None, DEADLINE);
        assert_eq!(code(&o), 0, "ls in the namespace: {}", stderr(&o));
        stdout(&o).lines().map(str::to_string).collect()
    }

    /// A table as shared memory holds it (`rtm-client dump`, inside the namespace).
    fn dumped(&self, table: Table) -> BTreeMap<String, Value> {
        let mut cmd = self.inside(RTM_CLIENT);
        cmd.arg("--socket")
            .arg(&self.socket)
            .args(["--json", "dump", "--table", table.name()]);
        let o = run(cmd, None, DEADLINE);
        assert_eq!(code(&o), 0, "rtm-client dump: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).expect("dump prints JSON");
        keyed(v[table.dump_field()].clone(), table.key())
    }
}

/// Which table a test fills.
#[derive(Clone, Copy, Debug)]
enum Table {
    Route,
    Arp,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Route => "route",
            Table::Arp => "arp",
        }
    }

    /// The field that keys an entry in `show` and `dump`.
    fn key(self) -> &'static str {
        match self {
            Table::Route => "dst",
            Table::Arp => "mac",
        }
    }

    fn dump_field(self) -> &'static str {
        match self {
            Table::Route => "routes",
            Table::Arp => "arps",
        }
    }

    /// `count` distinct adds, as batch lines and as `rtmctl -j show` prints the entries.
    fn adds(self, count: usize) -> Vec<(String, Value)> {
        match self {
            Table::Route => varied_routes(count),
            Table::Arp => (0..count)
                .map(|i| {
                    let mac = format!(
                        "02:00:00:{:02x}:{:02x}:{:02x}",
                        (i >> 16) & 0xff,
                        (i >> 8) & 0xff,
                        i & 0xff
                    );
                    let ip = format!(
                        "10.{}.{}.{}",
                        (i >> 16) & 0xff,
                        (i >> 8) & 0xff,
                        1 + i % 250
                    );
                    let dev = format!("eth{}", i % 5);
                    let line = format!("arp add {mac} {ip} dev {dev}");
                    (line, json!({ "mac": mac, "ip": ip, "dev": dev }))
                })
                .collect(),
        }
    }

    /// The batch line that deletes `entry`.
    fn del(self, entry: &Value) -> String {
        format!(
            "{} del {}",
            self.name(),
            entry[self.key()].as_str().unwrap()
        )
    }

    /// The batch line that adds `entry` (as `show` prints it).
    fn add_line_of(self, entry: &Value) -> String {
        match self {
            Table::Route => {
                let mut l = format!("route add {}", entry["dst"].as_str().unwrap());
                if let Some(via) = entry.get("via").and_then(Value::as_str) {
                    l += &format!(" via {via}");
                }
                if let Some(dev) = entry.get("dev").and_then(Value::as_str) {
                    l += &format!(" dev {dev}");
                }
                l + &format!(" metric {}", entry["metric"])
            }
            Table::Arp => format!(
                "arp add {} {} dev {}",
                entry["mac"].as_str().unwrap(),
                entry["ip"].as_str().unwrap(),
                entry["dev"].as_str().unwrap()
            ),
        }
    }

    /// The table as rtmd shows it.
    fn shown(self, inst: &Instance) -> BTreeMap<String, Value> {
        match self {
            Table::Route => inst.routes(),
            Table::Arp => inst.arps(),
        }
    }

    /// Its entry count in `rtmctl -j status`.
    fn counted(self, inst: &Instance) -> u64 {
        let field = match self {
            Table::Route => "routes",
            Table::Arp => "arps",
        };
        inst.status()[field].as_u64().expect("status count")
    }

    /// What the refusal says.
    fn no_space(self, inst: &Instance) -> String {
        format!(
            "no space in {} for the {} table",
            inst.shm_dir.display(),
            self.name()
        )
    }
}

/// `count` routes that each open a /18 of their own (1024 per /8, from 10.0.0.0/8 on), so
/// that every add needs new lines of its own in the route file.
fn spread_routes(count: usize) -> Vec<(String, Value)> {
    assert!(count <= 100 * 1024);
    (0..count)
        .map(|i| {
            let dst = format!(
                "{}.{}.{}.0/24",
                10 + (i >> 10),
                i & 0xff,
                ((i >> 8) & 3) * 64
            );
            let via = format!("192.168.{}.{}", i % 200, 1 + i % 250);
            let dev = format!("eth{}", i % 5);
            let line = format!("route add {dst} via {via} dev {dev}");
            (
                line,
                json!({ "dst": dst, "via": via, "dev": dev, "metric": 0 }),
            )
        })
        .collect()
}

/// Lines as one batch text.
fn text<'a>(lines: impl IntoIterator<Item = &'a String>) -> String {
    lines.into_iter().map(|l| format!("{l}\n")).collect()
}

/// What [`fill`] did.
struct Filled {
    /// Every entry rtmd acknowledged, by key.
    acked: BTreeMap<String, Value>,
    /// The lines of the refused batch that rtmd did not apply.
    refused: Vec<(String, Value)>,
    /// Batches acknowledged whole.
    batches: usize,
    /// The refused `rtmctl batch`.
    out: Output,
}

/// Sends `adds` in batches of `per` lines (one `rtmctl batch` each) until one is refused for
/// want of space; checks the refusal (exit 2, one line that names the line, "no space" and the
/// directory) and returns what was acknowledged.
fn fill(inst: &Instance, table: Table, adds: &[(String, Value)], per: usize) -> Filled {
    let mut acked = BTreeMap::new();
    for (batches, chunk) in adds.chunks(per).enumerate() {
        let out = inst.batch(&text(chunk.iter().map(|(l, _)| l)), false);
        match code(&out) {
            0 => {
                for (_, e) in chunk {
                    acked.insert(e[table.key()].as_str().unwrap().to_string(), e.clone());
                }
                continue;
            }
            2 => {}
            c => panic!(
                "batch {batches} exited {c}: {}{}",
                stderr(&out),
                inst.log_text()
            ),
        }
        let err = stderr(&out);
        let line: usize = err
            .trim_end()
            .strip_prefix("rtmctl: line ")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the refusal does not name a line: {err:?}"));
        assert!(
            (1..=chunk.len()).contains(&line),
            "batch {batches} of {}: the refusal names line {line}",
            chunk.len()
        );
        assert!(
            err.trim_end().ends_with(&table.no_space(inst)),
            "batch {batches}: refused with {err:?}, not for want of space in {}",
            inst.shm_dir.display()
        );
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        // Every line before the one named stays applied; that one and the rest are not.
        for (_, e) in &chunk[..line - 1] {
            acked.insert(e[table.key()].as_str().unwrap().to_string(), e.clone());
        }
        return Filled {
            acked,
            refused: chunk[line - 1..].to_vec(),
            batches,
            out,
        };
    }
    panic!(
        "{} {} adds in batches of {per} all fit: the tmpfs never filled",
        adds.len(),
        table.name()
    );
}

/// The table, as rtmd shows it, its count and shared memory, holds exactly `want`.
fn assert_holds(t: &OnTmpfs, table: Table, want: &BTreeMap<String, Value>, when: &str) {
    let shown = table.shown(t);
    assert_eq!(
        shown.len(),
        want.len(),
        "{when}: {} entries shown, {} acknowledged",
        shown.len(),
        want.len()
    );
    assert!(
        shown == *want,
        "{when}: the {} table differs from what was acknowledged",
        table.name()
    );
    assert_eq!(table.counted(t), want.len() as u64, "{when}: status count");
    assert!(
        t.dumped(table) == *want,
        "{when}: shared memory differs from what was acknowledged"
    );
}

/// Starts rtmd on a tmpfs of `size`, fills `table` until a batch of `per` adds is refused, and
/// checks what the refusal leaves: exactly the acknowledged entries (in rtmd, its status and
/// shared memory), a log line, no leftover file, no event for a refused line, and an rtmd
/// that still deletes and adds what fits.
fn refused_when_full(table: Table, size: &str, per: usize, count: usize) -> (OnTmpfs, Filled) {
    let mut t = OnTmpfs::mount(size);
    t.start(&UNCAPPED);
    // Inside the namespace: the watcher maps the table files.
    let mut watch = {
        let mut cmd = t.inside(RTMCTL);
        cmd.arg("--socket").arg(&t.socket).args(["-j", "watch"]);
        ClientProc::spawn(cmd)
    };
    t.eventually("watch registered", || t.client_names().len() == 1);

    let filled = fill(&t, table, &table.adds(count), per);
    eprintln!(
        "{size} tmpfs: {} {} entries acknowledged in {} batches of {per}, then {}",
        filled.acked.len(),
        table.name(),
        filled.batches,
        stderr(&filled.out).trim()
    );
    assert!(
        !filled.acked.is_empty(),
        "not one batch fitted: {}",
        t.log_text()
    );
    assert!(t.daemon_alive(), "rtmd died: {}", t.log_text());
    assert_holds(&t, table, &filled.acked, "after the refusal");
    let log = t.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refused") && l.contains(&table.no_space(&t))),
        "no log line about the refusal: {log}"
    );
    // Whatever was being made for the refused batch is gone again.
    assert_eq!(t.shm_files(), ["t.arp", "t.lock", "t.route"], "shm dir");

    // A delete goes through; a subscriber heard of every acknowledged add, and of nothing
    // refused, before it.
    let (first_key, first) = filled.acked.iter().next().unwrap();
    t.ctl_line(&table.del(first));
    let events = watch.collect_until(|v| v["op"] == "delete");
    assert_eq!(events.last().unwrap()["key"], first_key.as_str());
    let mut heard = Vec::new();
    for v in &events[..events.len() - 1] {
        assert_eq!(v["op"], "create", "{v}");
        heard.push(v["key"].as_str().unwrap().to_string());
    }
    heard.sort();
    assert!(
        heard.iter().eq(filled.acked.keys()),
        "the subscriber heard of {} creates, {} were acknowledged",
        heard.len(),
        filled.acked.len()
    );
    // An add that fits where the delete made room.
    t.ctl_line(&table.add_line_of(first));
    assert_holds(&t, table, &filled.acked, "after a delete and an add");
    (t, filled)
}

/// A route table that fills the smallest tmpfs rtmd starts on: the batch that does not fit is
/// refused whole and nothing else changes.
#[test]
fn route_adds_are_refused_on_a_full_tmpfs_and_rtmd_keeps_serving() {
    skip_unless_supported!();
    let (mut t, _) = refused_when_full(Table::Route, JUST_ENOUGH, 10, 2_000);
    t.stop();
    // A clean stop removes the files (and makes the room free again).
    assert_eq!(
        t.shm_files(),
        Vec::<String>::new(),
        "shm dir after the stop"
    );
}

/// The same for ARP entries, whose file grows by publishing a new generation next to the old
/// one: the generation that does not fit is refused and leaves nothing behind.
#[test]
fn arp_adds_are_refused_on_a_full_tmpfs_and_rtmd_keeps_serving() {
    skip_unless_supported!();
    let (mut t, filled) = refused_when_full(Table::Arp, SOME_ROOM, 100, 50_000);
    // Room made by deletes is room for the batch that was refused.
    let dels: Vec<String> = filled
        .acked
        .values()
        .take(500)
        .map(|e| Table::Arp.del(e))
        .collect();
    let o = t.batch(&text(&dels), false);
    assert_eq!(code(&o), 0, "500 deletes on a full tmpfs: {}", stderr(&o));
    let o = t.batch(&text(filled.refused.iter().map(|(l, _)| l)), false);
    assert_eq!(
        code(&o),
        0,
        "the refused batch after 500 deletes: {}",
        stderr(&o)
    );
    let mut want = filled.acked.clone();
    for e in filled.acked.values().take(500) {
        want.remove(e["mac"].as_str().unwrap());
    }
    for (_, e) in &filled.refused {
        want.insert(e["mac"].as_str().unwrap().to_string(), e.clone());
    }
    assert_holds(
        &t,
        Table::Arp,
        &want,
        "after the deletes and the refused batch",
    );
    t.stop();
    assert_eq!(
        t.shm_files(),
        Vec::<String>::new(),
        "shm dir after the stop"
    );
}

/// Deleting routes is how an operator makes room on a full tmpfs: a batch of deletes must go
/// through there.
#[test]
fn a_batch_of_route_deletes_goes_through_on_a_full_tmpfs() {
    skip_unless_supported!();
    let mut t = OnTmpfs::mount(JUST_ENOUGH);
    t.start(&UNCAPPED);
    let filled = fill(&t, Table::Route, &Table::Route.adds(2_000), 10);
    let half = filled.acked.len() / 2;
    let dels: Vec<String> = filled
        .acked
        .values()
        .take(half)
        .map(|e| Table::Route.del(e))
        .collect();
    let o = t.batch(&text(&dels), false);
    assert_eq!(
        code(&o),
        0,
        "deleting {half} of {} routes in one batch on a full tmpfs: {}{}",
        filled.acked.len(),
        stderr(&o),
        t.log_text()
    );
    t.stop();
}

/// One route delete goes through on a full tmpfs, however it filled: here with routes that
/// each open a /18 of their own.
#[test]
fn a_route_delete_goes_through_on_a_full_tmpfs() {
    skip_unless_supported!();
    let mut t = OnTmpfs::mount(SOME_ROOM);
    t.start(&UNCAPPED);
    let filled = fill(&t, Table::Route, &spread_routes(20_000), 10);
    let (_, first) = filled.acked.iter().next().unwrap();
    let del = Table::Route.del(first);
    let o = t.ctl(&del.split_whitespace().collect::<Vec<_>>());
    assert_eq!(
        code(&o),
        0,
        "`{del}` after {} routes filled a {SOME_ROOM} tmpfs: {}{}",
        filled.acked.len(),
        stderr(&o),
        t.log_text()
    );
    t.stop();
}

/// The room that deleted routes leave lets the batch that was refused in: here every route is
/// deleted (one at a time, each its own request) before the refused batch comes again.
#[test]
fn route_deletes_on_a_full_tmpfs_make_room_for_the_refused_batch() {
    skip_unless_supported!();
    let mut t = OnTmpfs::mount(JUST_ENOUGH);
    t.start(&UNCAPPED);
    let filled = fill(&t, Table::Route, &spread_routes(20_000), 10);
    for e in filled.acked.values() {
        t.ctl_line(&Table::Route.del(e));
    }
    assert_holds(
        &t,
        Table::Route,
        &BTreeMap::new(),
        "after deleting every route",
    );
    let o = t.batch(&text(filled.refused.iter().map(|(l, _)| l)), false);
    assert_eq!(
        code(&o),
        0,
        "the refused batch of {} into the empty table, after deleting {} routes: {}{}",
        filled.refused.len(),
        filled.acked.len(),
        stderr(&o),
        t.log_text()
    );
    t.stop();
}

/// With `--force`, every line of a batch is either applied or reported: a request refused for
/// want of space reports each of its lines.
#[test]
fn a_forced_batch_refused_for_space_reports_every_line_it_did_not_apply() {
    skip_unless_supported!();
    let mut t = OnTmpfs::mount(JUST_ENOUGH);
    t.start(&UNCAPPED);
    let filled = fill(&t, Table::Route, &Table::Route.adds(2_000), 10);
    let o = t.batch(&text(filled.refused.iter().map(|(l, _)| l)), true);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let shown = t.routes();
    let err = stderr(&o);
    for (n, (line, e)) in filled.refused.iter().enumerate() {
        let applied = shown.contains_key(e["dst"].as_str().unwrap());
        let reported = err.contains(&format!("line {}: ", n + 1));
        assert!(
            applied || reported,
            "line {} ({line}) was neither applied nor reported; rtmctl said: {err}",
            n + 1
        );
    }
    t.stop();
}

/// Refused changes never reach the journal: a daemon restarted on the same state directory
/// holds exactly what was acknowledged, in both tables (here on a larger tmpfs, so that only
/// the journal decides what comes back).
#[test]
fn refused_changes_are_not_in_the_journal() {
    skip_unless_supported!();
    let mut t = OnTmpfs::mount(SOME_ROOM);
    let state = t.dir.path().join("state").display().to_string();
    let flags = [&UNCAPPED[..], &["--state-dir", &state]].concat();
    t.start(&flags);
    let routes = fill(&t, Table::Route, &Table::Route.adds(20_000), 10);
    let arps = fill(&t, Table::Arp, &Table::Arp.adds(50_000), 100);
    eprintln!(
        "acknowledged {} routes and {} ARP entries; refused: {} / {}",
        routes.acked.len(),
        arps.acked.len(),
        stderr(&routes.out).trim(),
        stderr(&arps.out).trim()
    );
    assert_holds(&t, Table::Route, &routes.acked, "before the restart");
    assert_holds(&t, Table::Arp, &arps.acked, "before the restart");
    t.stop();

    // On a fresh tmpfs with room to spare: what comes back comes from the state directory
    // alone (whether the full tmpfs can hold it again is the question of the next tests).
    t.remount(ROOMY);
    t.start(&flags);
    assert_holds(&t, Table::Route, &routes.acked, "after the restart");
    assert_holds(&t, Table::Arp, &arps.acked, "after the restart");
    t.stop();
}

/// Fills `table` on a tmpfs of `size`, with a state directory, until a batch of `per` is
/// refused; then restarts rtmd on the same state directory and tmpfs: what was acknowledged
/// there must be restored there.
fn restored_on_the_tmpfs_it_filled(table: Table, size: &str, per: usize, count: usize) {
    let mut t = OnTmpfs::mount(size);
    let state = t.dir.path().join("state").display().to_string();
    let flags = [&UNCAPPED[..], &["--state-dir", &state]].concat();
    t.start(&flags);
    let filled = fill(&t, table, &table.adds(count), per);
    eprintln!(
        "{size} tmpfs: {} {} entries acknowledged, then {}",
        filled.acked.len(),
        table.name(),
        stderr(&filled.out).trim()
    );
    t.stop();
    assert_eq!(
        t.shm_files(),
        Vec::<String>::new(),
        "shm dir after the stop"
    );

    t.start(&flags);
    assert_holds(&t, table, &filled.acked, "after the restart");
    t.stop();
}

#[test]
fn a_route_table_that_filled_the_tmpfs_is_restored_on_it() {
    skip_unless_supported!();
    restored_on_the_tmpfs_it_filled(Table::Route, JUST_ENOUGH, 10, 2_000);
}

#[test]
fn an_arp_table_that_filled_the_tmpfs_is_restored_on_it() {
    skip_unless_supported!();
    restored_on_the_tmpfs_it_filled(Table::Arp, SOME_ROOM, 100, 50_000);
}

/// Runs rtmd on a tmpfs of `size` that cannot hold its starting files: it must exit 1 (not die
/// of a signal, not hang past the deadline) and bind no socket; returns what it said.
fn refused_start(size: &str) -> (OnTmpfs, String) {
    let t = OnTmpfs::mount(size);
    let o = run(t.rtmd_cmd(&[]), None, DEADLINE);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "rtmd on a {size} tmpfs: {} {err}",
        o.status
    );
    assert!(!path_exists(&t.socket), "a socket was left behind");
    (t, err)
}

#[test]
fn rtmd_does_not_start_on_a_tmpfs_too_small_for_the_route_file() {
    skip_unless_supported!();
    let (t, err) = refused_start(NO_ROUTE_FILE);
    assert!(
        err.contains(&format!("rtmd: {}", Table::Route.no_space(&t))),
        "{err}"
    );
}

#[test]
fn rtmd_does_not_start_on_a_tmpfs_too_small_for_the_arp_file() {
    skip_unless_supported!();
    let (t, err) = refused_start(NO_ARP_FILE);
    assert!(
        err.contains(&format!("rtmd: {}", Table::Arp.no_space(&t))),
        "{err}"
    );
}

/// A start refused for want of space leaves no table file in the shm dir: readers must not
/// find a table there that no daemon writes.
#[test]
fn a_start_refused_for_want_of_space_leaves_no_table_file() {
    skip_unless_supported!();
    for size in [NO_ROUTE_FILE, NO_ARP_FILE] {
        let (t, _) = refused_start(size);
        assert_eq!(
            t.shm_files(),
            Vec::<String>::new(),
            "shm dir after a start refused on a {size} tmpfs"
        );
    }
}
