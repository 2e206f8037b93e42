//! `--compare-kernel`: the same routes into the Linux FIB with `ip -batch`, in a fresh network
//! namespace, with 0, 1 and 8 `ip monitor route` listeners.
//!
//! The namespace is anonymous: a holder process (`unshare --net sleep`) owns it, started with
//! PR_SET_PDEATHSIG so it dies with rtm-bench whatever happens, and every `ip` runs inside it
//! through `nsenter --net=/proc/HOLDER/ns/net`. When the holder is killed (by its handle, on
//! drop) the namespace, its veth pair and its routes go with it. The host's routes are never
//! touched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rtm::Route;

use crate::child::KillOnDrop;
use crate::deadline::Deadline;
use crate::report::Report;
use crate::table::{DEV, LOCAL_ADDR};
use crate::util::{count_lines, proc_cpu_s, reaped_children_cpu_s, run_ok};

/// A network namespace that lives as long as this value (and never longer than rtm-bench):
/// dropping it kills the holder by its handle, and the namespace goes with its last process.
pub struct NetNs {
    _holder: KillOnDrop,
    ns: PathBuf,
}

impl NetNs {
    pub fn new() -> Result<NetNs> {
        // setpriv sets PR_SET_PDEATHSIG, which survives the execs of unshare and sleep: the
        // holder dies with rtm-bench.
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--pdeathsig",
            "KILL",
            "unshare",
            "--net",
            "--",
            "sleep",
            "3600",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let holder = KillOnDrop(
            cmd.spawn()
                .context("spawn setpriv --pdeathsig KILL unshare --net")?,
        );
        let ns = PathBuf::from(format!("/proc/{}/ns/net", holder.id()));
        // Wait until the holder has entered its own namespace.
        let own = std::fs::read_link("/proc/self/ns/net")?;
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(l) = std::fs::read_link(&ns) {
                if l != own {
                    break;
                }
            }
            if Instant::now() > end {
                bail!("unshare --net did not create a namespace");
            }
            thread::sleep(Duration::from_millis(2));
        }
        let netns = NetNs {
            _holder: holder,
            ns,
        };
        // A veth pair inside the namespace (this kernel has no dummy module), both ends up,
        // 198.18.0.1/24 on veth0: every generated route goes via 198.18.0.2..9 dev veth0.
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "add", DEV, "type", "veth", "peer", "name", "veth1"],
            vec!["addr", "add", &format!("{LOCAL_ADDR}/24"), "dev", DEV],
            vec!["link", "set", DEV, "up"],
            vec!["link", "set", "veth1", "up"],
        ] {
            run_ok(netns.ip(&args), Duration::from_secs(10))?;
        }
        Ok(netns)
    }

    /// The namespace, for `nsenter --net=`.
    pub fn path(&self) -> &Path {
        &self.ns
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.ns.display()))
            .arg("ip")
            .args(args);
        cmd
    }
}

pub fn compare(routes: &[Route], dir: &Path, dl: &Deadline, rep: &mut Report) -> Result<()> {
    let batch = dir.join("kernel-routes.batch");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&batch)?);
        for r in routes {
            let via = r.via.expect("generated routes have a gateway");
            writeln!(f, "route add {} via {via} dev {DEV}", r.dst)?;
        }
        f.flush()?;
    }
    let del = dir.join("kernel-routes-del.batch");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&del)?);
        for r in routes {
            writeln!(f, "route del {}", r.dst)?;
        }
        f.flush()?;
    }
    let n = routes.len() as u64;
    for listeners in [0usize, 1, 8] {
        let ns = NetNs::new()?;
        let mut mons = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..listeners {
            let mut c = ns.ip(&["monitor", "route"]);
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            let mut child = KillOnDrop(c.spawn().context("spawn ip monitor")?);
            counts.push(count_lines(child.0.stdout.take().expect("piped")));
            mons.push(child);
        }
        // Let the listeners join the multicast group before the inserts start.
        thread::sleep(Duration::from_millis(300));
        let mons_cpu0: f64 = mons.iter().map(|m| proc_cpu_s(m.id())).sum();
        let cpu0 = reaped_children_cpu_s();
        let t0 = Instant::now();
        let mut cmd = ns.ip(&["-batch"]);
        cmd.arg(&batch);
        run_ok(cmd, dl.cap(Duration::from_secs(900))?)?;
        let secs = t0.elapsed().as_secs_f64();
        // `nsenter` execs `ip` in place, so the reaped child's CPU is that of `ip -batch`
        // (user time plus the kernel's work in its syscalls).
        let cpu = reaped_children_cpu_s() - cpu0;
        rep.add(
            format!("kernel_inserts_per_s_listeners_{listeners}"),
            n as f64 / secs,
            "ops/s",
        );
        rep.add(
            format!("kernel_ip_cpu_us_per_insert_listeners_{listeners}"),
            cpu * 1e6 / n as f64,
            "us",
        );
        if listeners > 0 {
            // Wait until the listeners have printed everything they are going to get: all of
            // it, or nothing new for 1 s.
            let mut last = u64::MAX;
            let mut quiet_since = Instant::now();
            let end = Instant::now() + dl.cap(Duration::from_secs(120))?;
            loop {
                let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
                if total >= n * listeners as u64 || Instant::now() > end {
                    break;
                }
                if total != last {
                    last = total;
                    quiet_since = Instant::now();
                } else if quiet_since.elapsed() > Duration::from_secs(1) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let mons_cpu: f64 = mons.iter().map(|m| proc_cpu_s(m.id())).sum::<f64>() - mons_cpu0;
            rep.add(
                format!("kernel_listeners_cpu_us_per_insert_listeners_{listeners}"),
                mons_cpu * 1e6 / n as f64,
                "us",
            );
            let got: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            let received: u64 = got.iter().map(|&g| g.min(n)).sum();
            let expected = n * listeners as u64;
            rep.add(
                format!("kernel_listener_events_received_listeners_{listeners}"),
                received as f64,
                "events",
            );
            rep.add(
                format!("kernel_listener_events_lost_listeners_{listeners}"),
                (expected - received) as f64,
                "events",
            );
            rep.add(
                format!("kernel_listener_loss_pct_listeners_{listeners}"),
                100.0 * (expected - received) as f64 / expected as f64,
                "%",
            );
        } else {
            // Deletes of the same routes (no listeners), one `ip -batch` as for the inserts.
            let t0 = Instant::now();
            let mut cmd = ns.ip(&["-batch"]);
            cmd.arg(&del);
            run_ok(cmd, dl.cap(Duration::from_secs(900))?)?;
            rep.add(
                "kernel_deletes_per_s_listeners_0",
                n as f64 / t0.elapsed().as_secs_f64(),
                "ops/s",
            );
        }
        drop(mons);
        drop(ns);
        // The kernel tears a namespace down in a background worker; give it a moment so
        // it does not compete with the next run.
        thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}
