//! A full state disk refuses a change instead of poisoning the table: when the journal cannot
//! take a request, the request is refused with an error that says why (`cannot make the change
//! durable: … No space left on device`, rtmctl exit 2), nothing of it is applied (not in the
//! replies, shared memory or any subscriber's events), no actor restarts, and writes succeed
//! again as soon as there is room, with sequence numbers that go on without a gap. And a
//! restart whose republish fails for want of shm space keeps the committed changes it could
//! not write, for the next change to write.
//!
//! Each test mounts a small tmpfs in a mount namespace of its own (held by a `sleep`) as rtmd's
//! `--state-dir` (or its `--shm-dir`); rtmd and whatever fills or empties the file system run inside it through
//! `nsenter`, rtmctl and the subscriber talk to rtmd over its socket from outside. This needs
//! root and util-linux; without them the test says why and passes.
#![forbid(unsafe_code)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::tmpfs::{hold, unsupported};
use common::*;
use nix::sys::signal::Signal;

/// An instance whose state dir is a tmpfs in a mount namespace of its own.
struct StateOnTmpfs {
    /// Dropped first: its rtmd is killed before the namespace's holder.
    inst: Instance,
    holder: KillOnDrop,
    state: PathBuf,
}

impl StateOnTmpfs {
    /// The state dir on a tmpfs of `size`.
    fn mount(size: &str) -> StateOnTmpfs {
        StateOnTmpfs::mount_at("state", size)
    }

    /// The state dir, with `which` (`state` or `shm`) on a tmpfs of `size`.
    fn mount_at(which: &str, size: &str) -> StateOnTmpfs {
        let inst = Instance::unstarted();
        let state = inst.dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let holder = hold(inst.dir.path(), &inst.dir.path().join(which), size);
        StateOnTmpfs {
            inst,
            holder,
            state,
        }
    }

    /// `program` run inside the namespace.
    fn inside(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.holder.id().to_string())
            .arg("--mount")
            .arg("--")
            .arg(program);
        cmd
    }

    /// A shell command inside the namespace, with `$1` the state dir and `$2` the shm dir;
    /// must succeed.
    fn sh(&self, script: &str) {
        let mut cmd = self.inside("sh");
        cmd.args(["-c", script, "sh"])
            .arg(&self.state)
            .arg(&self.inst.shm_dir);
        let o = run(cmd, None, DEADLINE);
        assert_eq!(code(&o), 0, "{script}: {}", stderr(&o));
    }

    /// Starts rtmd inside the namespace with `--state-dir`; waits until it answers.
    fn start(&mut self) {
        self.start_with(&[]);
    }

    fn start_with(&mut self, extra: &[&str]) {
        let mut flags = extra.to_vec();
        flags.push("--state-dir");
        let daemon = self.inst.daemon_cmd(&flags);
        let mut cmd = self.inside(daemon.get_program());
        cmd.args(daemon.get_args())
            .arg(&self.state)
            .env("RUST_LOG", "info");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.inst.log)
            .unwrap();
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(logf);
        self.inst.daemon = Some(cmd.spawn().expect("spawn rtmd"));
        let end = Instant::now() + DEADLINE;
        while std::os::unix::net::UnixStream::connect(&self.inst.socket).is_err() {
            if let Some(st) = self.inst.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("rtmd exited early ({st}): {}", self.inst.log_text());
            }
            assert!(Instant::now() < end, "rtmd did not come up");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Route batch lines `route add 10.{base + i}.…/24 dev eth0`, `n` of them.
fn routes(base: usize, n: usize) -> String {
    (base..base + n)
        .map(|i| format!("route add 10.{}.{}.0/24 dev eth0\n", i >> 8, i & 0xff))
        .collect()
}

#[test]
fn a_full_state_disk_refuses_the_request_and_writes_resume_once_there_is_room() {
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut t = StateOnTmpfs::mount("512k");
    t.start();
    let inst = &t.inst;
    let o = inst.batch_file(&routes(0, 20));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut sub = inst.client("sub", &["--table", "route"]);
    let mut model = EventModel::from_seen(&sub);
    let before = inst.routes();
    assert_eq!(before.len(), 20);

    // Fill the file system to the last block.
    t.sh(r#"dd if=/dev/zero of="$1/fill" bs=4096 2>/dev/null; test -s "$1/fill""#);

    // A 600-line batch is one request whose journal frame (about 9 KB) needs more than the
    // free tail of the journal's last page.
    let o = inst.batch_file(&routes(1000, 600));
    assert_eq!(code(&o), 2, "refused by the daemon: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("line 1:")
            && err.contains("cannot make the change durable")
            && err.contains("No space left on device"),
        "{err}"
    );
    // Nothing of it is anywhere, and the actor was not restarted.
    assert_eq!(inst.routes(), before, "the refused batch left nothing");
    let status = inst.status();
    assert_eq!(status["restarts"]["route"], 0, "{status}");
    assert_eq!(status["routes"], 20, "{status}");
    // Counted where an operator looks: one commit so far (the first batch), one failed.
    assert_eq!(status["counters"]["journal_commits"], 1, "{status}");
    assert_eq!(status["counters"]["journal_commit_failures"], 1, "{status}");

    // Room again: the same batch and a single add go through, no restart.
    t.sh(r#"rm "$1/fill""#);
    let o = inst.batch_file(&routes(1000, 600));
    assert_eq!(code(&o), 0, "after freeing space: {}", stderr(&o));
    inst.ctl_line("route add 192.0.2.0/24 dev eth1");
    let now = inst.routes();
    assert_eq!(now.len(), 621);
    let status = inst.status();
    assert_eq!(status["restarts"]["route"], 0, "{status}");
    assert_eq!(status["counters"]["journal_commits"], 3, "{status}");
    assert_eq!(status["counters"]["journal_commit_failures"], 1, "{status}");

    // The subscriber saw exactly the applied changes, in sequence, without a gap.
    model.follow(&mut sub, |v| v["key"] == "192.0.2.0/24");
    assert_eq!(model.gaps, 0, "seq gaps: {:?}", sub.seen);
    assert!(model.resyncs.is_empty(), "{:?}", model.resyncs);
    assert_eq!(model.routes.len(), 621);
    assert_eq!(model.last_seq[0], 621, "one seq per applied change");

    // The journal on disk holds the same: a restart brings back every acknowledged change.
    t.inst.signal_daemon(Signal::SIGTERM);
    let st = t.inst.wait_daemon();
    assert!(
        st.success(),
        "rtmd stopped with {st}: {}",
        t.inst.log_text()
    );
    t.start();
    assert_eq!(t.inst.routes(), now, "after a restart");
    t.inst.ctl_line("route add 192.0.3.0/24 dev eth1");
}

/// A restart whose republish fails (the shm file system is full) keeps the committed changes it
/// could not write: the next change writes them first, and none is lost. Driven by a panic
/// armed in the middle of a shared-memory write (fault-injection builds) with the tmpfs of the
/// shm dir too full for a new generation.
#[cfg(feature = "fault-injection")]
#[test]
fn a_failed_republish_keeps_the_changes_it_could_not_write() {
    if let Some(why) = unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut t = StateOnTmpfs::mount_at("shm", "2m");
    t.start_with(&["--route-capacity", "100000"]);
    let inst = &t.inst;
    assert_eq!(code(&inst.batch(&routes(0, 50), false)), 0);
    // Leave 64 KiB free: room for two more routes, not for a new generation of the file.
    t.sh(r#"dd if=/dev/zero of="$2/fill" bs=4096 2>/dev/null;
           dd if=/dev/zero of="$2/slack" bs=4096 count=16 2>/dev/null; true;
           rm -f "$2/slack""#);
    let o = inst.debug("panic route in publish");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Both are durable (acknowledged); the first is written, then the panic; the restart
    // cannot republish.
    let o = inst.batch(&routes(500, 2), false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    inst.eventually("the route actor restarted", || {
        inst.status()["restarts"]["route"] == 1
    });
    inst.eventually("the repair tried to republish", || {
        let log = inst.log_text();
        log.contains("cannot republish shared memory") || log.contains("shared memory republished")
    });
    assert!(
        inst.log_text().contains("cannot republish shared memory"),
        "{}",
        inst.log_text()
    );
    // Room again: the next change writes the two committed ones first.
    t.sh(r#"rm "$2/fill""#);
    t.inst.ctl_line("route add 192.0.2.0/24 dev eth1");
    let shown = t.inst.routes();
    for key in ["10.1.244.0/24", "10.1.245.0/24", "192.0.2.0/24"] {
        assert!(shown.contains_key(key), "{key} missing: {:?}", shown.keys());
    }
    assert_eq!(shown.len(), 53);
}
