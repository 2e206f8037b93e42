//! The processes under test: rtmd (restartable on the same state), optionally inside a mount
//! namespace with small tmpfs mounts for its shared-memory and state directories, and the
//! commands run against it. Every child runs under a deadline and is killed by its own handle.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::child::{self, KillOnDrop};

pub const INSTANCE: &str = "torture";
/// Size of the tmpfs behind the shared-memory directory and the state directory.
pub const TMPFS_SIZE: &str = "64m";

/// A mount namespace of our own, held by a `sleep` (killed by its handle when dropped), in
/// which tmpfs mounts back the shm and (unless given) the state directory.
pub struct Namespace {
    holder: KillOnDrop,
}

impl Namespace {
    /// Why the tmpfs faults cannot run here, if they cannot.
    pub fn unsupported() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("not root: cannot mount a tmpfs in a mount namespace".into());
        }
        for tool in ["unshare", "nsenter"] {
            let ok = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Some(format!("`{tool}` (util-linux) is missing"));
            }
        }
        None
    }

    /// Mounts a tmpfs at each of `mounts` in a new mount namespace.
    pub fn hold(dir: &Path, mounts: &[&Path]) -> Result<Namespace> {
        let marker = dir.join("ns-ready");
        let mut script = String::new();
        for i in 0..mounts.len() {
            script.push_str(&format!(
                "mount -t tmpfs -o size={TMPFS_SIZE},mode=0755 tmpfs \"${}\" && ",
                i + 2
            ));
        }
        script.push_str(": > \"$1\" && exec sleep 100000");
        let err = dir.join("ns.err");
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(&marker)
        .args(mounts)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err)?);
        let mut holder = KillOnDrop(cmd.spawn().context("spawn unshare")?);
        let end = Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            if let Some(st) = holder.0.try_wait()? {
                bail!(
                    "cannot mount a tmpfs in a mount namespace ({st}): {}",
                    std::fs::read_to_string(&err).unwrap_or_default().trim()
                );
            }
            if Instant::now() > end {
                bail!("the tmpfs mounts were not made within 10 s");
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(Namespace { holder })
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }
}

pub struct Lab {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub shm_dir: PathBuf,
    pub state_dir: PathBuf,
    pub ns: Option<Namespace>,
    pub rtmd_bin: PathBuf,
    pub rtmctl_bin: PathBuf,
    pub client_bin: PathBuf,
    pub rtmd: Option<KillOnDrop>,
    pub starts: u32,
}

impl Lab {
    /// A command for `prog`, run inside the namespace if there is one (`nsenter` execs it, so
    /// the child's pid is the program's).
    pub fn command(&self, prog: &Path) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg("-t")
                    .arg(ns.pid().to_string())
                    .arg("-m")
                    .arg("--")
                    .arg(prog);
                c
            }
            None => Command::new(prog),
        }
    }

    /// `path` (inside the namespace) as this process reaches it.
    pub fn outside(&self, path: &Path) -> PathBuf {
        match &self.ns {
            Some(ns) => PathBuf::from(format!("/proc/{}/root", ns.pid()))
                .join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }

    pub fn route_file(&self) -> PathBuf {
        self.outside(&self.shm_dir.join(format!("{INSTANCE}.route")))
    }

    pub fn rtmctl(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        deadline: Duration,
    ) -> std::io::Result<Output> {
        let mut c = self.command(&self.rtmctl_bin);
        c.arg("--socket").arg(&self.socket).args(args);
        child::run(c, stdin, deadline)
    }

    /// Starts rtmd on the lab's socket, shm and state directories and waits until
    /// `rtmctl status` answers.
    pub fn start_rtmd(&mut self) -> Result<()> {
        self.starts += 1;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("rtmd.log"))?;
        let mut c = self.command(&self.rtmd_bin);
        c.arg("--socket")
            .arg(&self.socket)
            .arg("--shm-dir")
            .arg(&self.shm_dir)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(["--instance", INSTANCE])
            .args(["--route-capacity", "4096", "--arp-capacity", "1024"])
            .args(["--client-queue", "64", "--max-clients", "64"])
            .args(["--max-connections", "128", "--handshake-timeout", "1s"])
            .args(["--max-restarts", "100", "--restart-window", "10s"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.rtmd = Some(KillOnDrop(c.spawn().context("spawn rtmd")?));
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.rtmd_exited() {
                bail!(
                    "rtmd exited at start ({st}); see {}",
                    self.dir.join("rtmd.log").display()
                );
            }
            if UnixStream::connect(&self.socket).is_ok() {
                if let Ok(o) = self.rtmctl(&["status"], None, Duration::from_secs(5)) {
                    if o.status.success() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > end {
                bail!("rtmd did not answer `rtmctl status` within 30 s of its start");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn rtmd_pid(&self) -> Option<u32> {
        self.rtmd.as_ref().map(|c| c.id())
    }

    /// The exit status if rtmd has exited by itself.
    pub fn rtmd_exited(&mut self) -> Option<ExitStatus> {
        self.rtmd
            .as_mut()
            .and_then(|c| c.0.try_wait().ok().flatten())
    }

    /// SIGKILL rtmd (by its handle) and reap it.
    pub fn kill_rtmd(&mut self) {
        if let Some(mut c) = self.rtmd.take() {
            let _ = c.0.kill();
            let _ = c.0.wait();
        }
    }

    /// SIGTERM, then killed by its handle after 10 s.
    pub fn stop_rtmd(&mut self) -> Option<ExitStatus> {
        let c = self.rtmd.take()?;
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        c.finish(Duration::from_secs(10))
    }

    /// Fills the file system of `dir` (inside the namespace) with a file `.fill`.
    pub fn fill(&self, dir: &Path) -> Result<()> {
        let mut c = self.command(Path::new("sh"));
        c.arg("-c")
            .arg("dd if=/dev/zero of=\"$1/.fill\" bs=64k 2>/dev/null; exit 0")
            .arg("sh")
            .arg(dir);
        child::run(c, None, Duration::from_secs(30))?;
        Ok(())
    }

    pub fn unfill(&self, dir: &Path) -> Result<()> {
        let mut c = self.command(Path::new("rm"));
        c.arg("-f").arg(dir.join(".fill"));
        child::run(c, None, Duration::from_secs(10))?;
        Ok(())
    }
}

/// Resident set size (KiB) and open file descriptors of `pid`, from /proc.
pub fn rss_fds(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}
