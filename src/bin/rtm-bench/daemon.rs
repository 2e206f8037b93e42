//! The `rtmd` under test: started on the scratch directory's socket and shm directory, sized
//! for the run, stopped with SIGTERM at the end (killed by its handle if it does not stop).

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::child::KillOnDrop;
use crate::deadline::Deadline;
use crate::util;

/// Per-subscriber queue given to rtmd (its default).
pub const CLIENT_QUEUE: u64 = 65_536;

const INSTANCE: &str = "bench";

pub struct Daemon {
    child: KillOnDrop,
    pub socket: PathBuf,
    shm_dir: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// `extra`: further rtmd arguments (the dashboard run adds its listener).
    pub fn start(
        rtmd: &Path,
        dir: &Path,
        routes: usize,
        arps: usize,
        extra: &[&str],
        dl: &Deadline,
    ) -> Result<Self> {
        let mut args: Vec<String> = vec!["--max-clients".into(), "1024".into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        Daemon::start_with(rtmd, dir, routes, arps, dl, &args)
    }

    /// As [`Daemon::start`], with `extra` flags.
    pub fn start_with(
        rtmd: &Path,
        dir: &Path,
        routes: usize,
        arps: usize,
        dl: &Deadline,
        extra: &[String],
    ) -> Result<Self> {
        Daemon::start_in(rtmd, dir, routes, arps, dl, extra, None)
    }

    /// As [`Daemon::start_with`], inside the network namespace `netns` (a `/proc/PID/ns/net`
    /// path) if given: `nsenter` execs rtmd in place, so the child's pid is rtmd's.
    pub fn start_in(
        rtmd: &Path,
        dir: &Path,
        routes: usize,
        arps: usize,
        dl: &Deadline,
        extra: &[String],
        netns: Option<&Path>,
    ) -> Result<Self> {
        let socket = dir.join("rtm.sock");
        let shm_dir = dir.join("shm");
        std::fs::create_dir(&shm_dir)?;
        let log = dir.join("rtmd.log");
        let logf = File::create(&log)?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg(rtmd);
                c
            }
            None => Command::new(rtmd),
        };
        cmd.arg("--socket")
            .arg(&socket)
            .arg("--shm-dir")
            .arg(&shm_dir)
            .args(["--instance", INSTANCE])
            .args(["--route-capacity", &routes.max(1024).to_string()])
            .args(["--arp-capacity", &arps.max(1024).to_string()])
            .args(["--client-queue", &CLIENT_QUEUE.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        let child = KillOnDrop(
            cmd.spawn()
                .with_context(|| format!("spawn {}", rtmd.display()))?,
        );
        let mut d = Daemon {
            child,
            socket,
            shm_dir,
            log,
        };
        let end = Instant::now() + dl.cap(Duration::from_secs(30))?;
        while UnixStream::connect(&d.socket).is_err() {
            if let Some(st) = d.child.0.try_wait()? {
                bail!("rtmd exited early ({st}): {}", d.log_text());
            }
            if Instant::now() > end {
                bail!("rtmd did not come up: {}", d.log_text());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(d)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's warnings and errors so far.
    pub fn warnings(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(str::to_string)
            .collect()
    }

    /// The shared-memory file of `table` (`route` or `arp`).
    pub fn shm(&self, table: &str) -> PathBuf {
        self.shm_dir.join(format!("{INSTANCE}.{table}"))
    }

    /// Daemon CPU time so far (user + system), in seconds.
    pub fn cpu_s(&self) -> f64 {
        util::proc_cpu_s(self.pid())
    }

    /// SIGTERM, then wait (bounded); killed by its handle if it does not stop.
    pub fn stop(self) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        match self.child.finish(Duration::from_secs(10)) {
            Some(st) if st.success() => Ok(()),
            Some(st) => bail!("rtmd exited with {st}"),
            None => bail!("rtmd did not stop within 10 s after SIGTERM (killed)"),
        }
    }
}
