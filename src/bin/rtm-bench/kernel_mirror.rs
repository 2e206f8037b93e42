//! `--kernel-mirror`: rtmd following the kernel (`rtmd --kernel import`) inside a fresh network
//! namespace, measured against `ip monitor route` in the same namespace and the same run.
//!
//! 1. **Burst.** One `ip -batch` adds the routes; `--clients` follower processes (outside the
//!    namespace: the socket and the table files are paths) count the notifications they handled,
//!    one `ip monitor route` counts its lines. Figures: how long after `ip` finished each had
//!    everything, and what is missing.
//! 2. **ENOBUFS.** The same burst into a second rtmd whose netlink receive buffer is tiny
//!    (`--kernel-rcvbuf`), so the kernel drops events and the mirror must dump again: the time
//!    until rtm's table equals the kernel's, and the prefixes that differ at the end (must be 0).
//! 3. **Latency.** Single `/32` probes through one `ip -batch -` that reads standard input, paced
//!    at `--latency-rate`; every probe has the metric [`LAT_BY_ADDR`] and the same gateway (one
//!    next hop, as most real changes bring none) and its id in the low 16 bits of its address
//!    (`198.19.0.0/16`), so the followers record when they read it from shared memory and the
//!    monitor's line names it too. Both latencies start at the same instant, just before the line is written
//!    to `ip`.
//! 4. **Next-hop objects.** A third rtmd; the routes added through one next-hop group
//!    (`ip nexthop add id 10 group 1/2`, then `route add P nhid 10`), then one `ip nexthop
//!    replace` of a member, which sends the mirror no event per route: how long after `ip`
//!    finished every follower had the update of every route.
//! 5. **Neighbours.** A fourth rtmd; one `ip -batch` adds [`NEIGHBOURS`] permanent neighbours
//!    (one MAC per 8 addresses, as behind routers), watched by `ip monitor neigh`: how long after
//!    `ip` finished rtm's neighbour file held them all, and the monitor had printed them all.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rtm::shm::{RouteReader, TableReader};
use rtm::Route;

use crate::child::KillOnDrop;
use crate::client_role::LAT_BY_ADDR;
use crate::clients::ClientProc;
use crate::daemon::Daemon;
use crate::deadline::Deadline;
use crate::kernel::NetNs;
use crate::report::{phase, Report};
use crate::table::{DEV, LOCAL_ADDR};
use crate::util::{now_ns, quantile, run_ok};

/// Netlink receive buffer of the ENOBUFS run's rtmd (the kernel doubles it).
const TINY_RCVBUF: &str = "16384";
/// How long after `ip` finished a run waits for the mirror before it counts what is missing.
const SETTLE: Duration = Duration::from_secs(30);

/// `ip monitor route` in the namespace: its lines counted, and the arrival of each probe's line.
struct Monitor {
    _child: KillOnDrop,
    lines: Arc<AtomicU64>,
    /// (probe id, CLOCK_MONOTONIC ns) of each probe route the monitor printed.
    probes: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl Monitor {
    fn start(ns: &NetNs) -> Result<Monitor> {
        Monitor::of(ns, "route")
    }

    /// `ip monitor OBJECT` (`route`, `neigh`).
    fn of(ns: &NetNs, object: &str) -> Result<Monitor> {
        let mut c = ns.ip(&["monitor", object]);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = KillOnDrop(c.spawn().context("spawn ip monitor")?);
        let out = child.0.stdout.take().expect("piped");
        let lines = Arc::new(AtomicU64::new(0));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let (l, p) = (lines.clone(), probes.clone());
        thread::spawn(move || {
            for line in BufReader::with_capacity(1 << 16, out).lines() {
                let Ok(line) = line else { break };
                let t = now_ns();
                l.fetch_add(1, Relaxed);
                if metric_of(&line) == Some(LAT_BY_ADDR) && !line.starts_with("Deleted") {
                    if let Some(id) = probe_of(&line) {
                        p.lock().unwrap().push((u64::from(id), t));
                    }
                }
            }
        });
        Ok(Monitor {
            _child: child,
            lines,
            probes,
        })
    }
}

/// The probe id of an `ip monitor` line about a probe: the low 16 bits of its address.
fn probe_of(line: &str) -> Option<u32> {
    let dst: Ipv4Addr = line.split_whitespace().next()?.parse().ok()?;
    Some(u32::from(dst) & 0xffff)
}

/// The `metric N` of an `ip monitor` line.
fn metric_of(line: &str) -> Option<u32> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "metric" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Waits until `done()` or `SETTLE` passes; when it became true, if it did.
fn until(dl: &Deadline, mut done: impl FnMut() -> bool) -> Result<Option<Instant>> {
    let end = Instant::now() + dl.cap(SETTLE)?;
    loop {
        if done() {
            return Ok(Some(Instant::now()));
        }
        if Instant::now() > end {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// How many times `what` appears in the log of the rtmd whose directory is `dir`.
fn log_count(dir: &Path, what: &str) -> f64 {
    let log = std::fs::read_to_string(dir.join("rtmd.log")).unwrap_or_default();
    log.matches(what).count() as f64
}

/// The prefixes in rtm's route file.
fn rtm_prefixes(daemon: &Daemon) -> Result<BTreeSet<String>> {
    let r = RouteReader::open(&daemon.shm("route"))?;
    Ok(r.entries()
        .into_iter()
        .map(|v| v.entry.dst.to_string())
        .collect())
}

/// The prefixes of the kernel's main table in `ns` (the generated routes and the veth's
/// connected subnet, which the mirror follows too).
fn kernel_prefixes(ns: &NetNs, dl: &Deadline) -> Result<BTreeSet<String>> {
    let o = run_ok(
        ns.ip(&["-4", "route", "show", "table", "main"]),
        dl.cap(Duration::from_secs(60))?,
    )?;
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|p| match p {
            "default" => "0.0.0.0/0".to_string(),
            p if p.contains('/') => p.to_string(),
            p => format!("{p}/32"),
        })
        .collect())
}

/// rtmd with `--kernel import` inside `ns`; `extra` adds flags.
fn start_rtmd(
    rtmd: &Path,
    dir: &Path,
    capacity: usize,
    ns: &NetNs,
    extra: &[&str],
    dl: &Deadline,
) -> Result<Daemon> {
    std::fs::create_dir_all(dir)?;
    let args: Vec<String> = ["--kernel", "import", "--max-clients", "1024"]
        .into_iter()
        .chain(extra.iter().copied())
        .map(String::from)
        .collect();
    Daemon::start_in(rtmd, dir, capacity, 1024, dl, &args, Some(ns.path()))
}

pub struct Run<'a> {
    pub rtmd: &'a Path,
    pub dir: &'a Path,
    pub routes: &'a [Route],
    pub clients: usize,
    pub samples: usize,
    pub rate: u32,
    pub dl: &'a Deadline,
}

pub fn measure(run: &Run, rep: &mut Report) -> Result<()> {
    let batch = run.dir.join("kernel-mirror.batch");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&batch)?);
        for r in run.routes {
            let via = r.via.expect("generated routes have a gateway");
            writeln!(f, "route add {} via {via} dev {DEV}", r.dst)?;
        }
        f.flush()?;
    }
    burst(run, &batch, rep)?;
    enobufs(run, &batch, rep)?;
    objects(run, rep)?;
    neighbours(run, rep)
}

/// Neighbours phase 5 adds (at most as many as routes).
const NEIGHBOURS: usize = 20_000;

/// Phase 5: a burst of neighbours, the mirror's shared memory against `ip monitor neigh`.
fn neighbours(run: &Run, rep: &mut Report) -> Result<()> {
    let n = NEIGHBOURS.min(run.routes.len());
    let ns = NetNs::new()?;
    let dir = run.dir.join("mirror-neigh");
    let daemon = start_rtmd(
        run.rtmd,
        &dir,
        1024,
        &ns,
        &["--arp-capacity", &(n + 1024).to_string()],
        run.dl,
    )?;
    let batch = dir.join("neigh.batch");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&batch)?);
        for i in 0..n as u32 {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 1)) + i);
            let m = (i / 8).to_be_bytes();
            writeln!(
                f,
                "neigh add {ip} lladdr 02:00:{:02x}:{:02x}:{:02x}:{:02x} dev {DEV} nud permanent",
                m[0], m[1], m[2], m[3]
            )?;
        }
        f.flush()?;
    }
    let mon = Monitor::of(&ns, "neigh")?;
    thread::sleep(Duration::from_millis(300));
    phase(&format!(
        "kernel mirror: ip -batch of {n} neighbours, 1 ip monitor neigh"
    ));
    let mut reader = rtm::shm::NeighReader::open(&daemon.shm("neigh"))?;
    let t0 = Instant::now();
    let mut cmd = ns.ip(&["-batch"]);
    cmd.arg(&batch);
    run_ok(cmd, run.dl.cap(Duration::from_secs(600))?)?;
    let ip_done = Instant::now();
    let (mut rtm_done, mut mon_done) = (None, None);
    let end = Instant::now() + run.dl.cap(SETTLE)?;
    while (rtm_done.is_none() || mon_done.is_none()) && Instant::now() < end {
        // A larger table is a new generation of the file: follow it.
        let _ = reader.refresh();
        if rtm_done.is_none() && reader.len() >= n {
            rtm_done = Some(Instant::now());
        }
        if mon_done.is_none() && mon.lines.load(Relaxed) >= n as u64 {
            mon_done = Some(Instant::now());
        }
        thread::sleep(Duration::from_micros(200));
    }
    rep.add(
        "kernel_mirror_neigh_ip_ms",
        ip_done.duration_since(t0).as_secs_f64() * 1e3,
        "ms",
    );
    let after = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(ip_done));
    for (name, t) in [
        ("kernel_mirror_neigh_shm_after_ip_ms", after(rtm_done)),
        ("kernel_mirror_neigh_monitor_after_ip_ms", after(mon_done)),
    ] {
        match t {
            Some(d) => rep.add(name, d.as_secs_f64() * 1e3, "ms"),
            None => rep.skip(name, "not everything arrived within 30 s of ip finishing"),
        }
    }
    rep.add(
        "kernel_mirror_neigh_missing",
        n.saturating_sub(reader.len()) as f64,
        "neighbours",
    );
    rep.add(
        "kernel_mirror_neigh_redumps",
        log_count(&dir, "dropped neighbour events"),
        "dumps",
    );
    daemon.stop()?;
    Ok(())
}

/// Phase 4: routes through one next-hop group, and one member of the group replaced.
fn objects(run: &Run, rep: &mut Report) -> Result<()> {
    let n = run.routes.len() as u64;
    let k = run.clients;
    let ns = NetNs::new()?;
    let gw = |i: u32| Ipv4Addr::from(u32::from(LOCAL_ADDR) + i);
    let nexthop = |args: String| -> Result<()> {
        let mut c = ns.ip(&["nexthop"]);
        c.args(args.split_whitespace());
        run_ok(c, run.dl.cap(Duration::from_secs(60))?).map(drop)
    };
    if nexthop(format!("add id 1 via {} dev {DEV}", gw(1))).is_err() {
        rep.skip(
            "kernel_mirror_nhid_replace_clients_after_ip_ms",
            "this kernel has no next-hop objects",
        );
        return Ok(());
    }
    nexthop(format!("add id 2 via {} dev {DEV}", gw(2)))?;
    nexthop("add id 10 group 1/2".into())?;
    let batch = run.dir.join("kernel-mirror-nhid.batch");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&batch)?);
        for r in run.routes {
            writeln!(f, "route add {} nhid 10", r.dst)?;
        }
        f.flush()?;
    }
    let dir = run.dir.join("mirror-nhid");
    let daemon = start_rtmd(run.rtmd, &dir, run.routes.len() + 1024, &ns, &[], run.dl)?;
    let clog = dir.join("clients.log");
    let mut followers = Vec::with_capacity(k);
    for i in 0..k {
        let mut f = ClientProc::spawn("follow", &daemon.socket, &format!("knhid-{i}"), &clog)?;
        f.expect("ready", run.dl.cap(Duration::from_secs(30))?)?;
        followers.push(f);
    }
    phase(&format!(
        "kernel mirror: {n} routes through one next-hop group, one member replaced, {k} followers"
    ));
    let mut cmd = ns.ip(&["-batch"]);
    cmd.arg(&batch);
    run_ok(cmd, run.dl.cap(Duration::from_secs(900))?)?;
    if until(run.dl, || followers.iter().all(|f| f.progress() >= n))?.is_none() {
        bail!("the followers did not get the {n} nhid routes within {SETTLE:?}");
    }
    let t0 = Instant::now();
    nexthop(format!("replace id 2 via {} dev {DEV}", gw(3)))?;
    let ip_done = Instant::now();
    let told = until(run.dl, || followers.iter().all(|f| f.progress() >= 2 * n))?;
    rep.add(
        "kernel_mirror_nhid_replace_ip_ms",
        (ip_done - t0).as_secs_f64() * 1e3,
        "ms",
    );
    let name = format!("kernel_mirror_nhid_replace_clients_{k}_after_ip_ms");
    match told {
        Some(t) => rep.add(
            &name,
            t.saturating_duration_since(ip_done).as_secs_f64() * 1e3,
            "ms",
        ),
        None => rep.skip(
            &name,
            "not every follower had every update 30 s after ip finished",
        ),
    }
    // Every route in shared memory goes over the new member.
    let ours: std::collections::HashSet<_> = run.routes.iter().map(|r| r.dst).collect();
    let r = RouteReader::open(&daemon.shm("route"))?;
    let moved = r
        .entries()
        .into_iter()
        .filter(|v| ours.contains(&v.entry.dst))
        .filter(|v| v.entry.nexthops.iter().any(|h| h.via == Some(gw(3))))
        .count();
    let stale = run.routes.len().saturating_sub(moved);
    rep.add("kernel_mirror_nhid_stale_routes", stale as f64, "routes");
    // A follower whose queue (`--client-queue`) one change of the whole group overflowed is
    // told to re-read the table instead (a resync): counted, as its updates never come.
    let mut resyncs = 0;
    for f in followers {
        let r = f.finish(run.dl.cap(Duration::from_secs(30))?)?;
        resyncs += r["resyncs"].as_u64().unwrap_or(0);
    }
    rep.add(
        "kernel_mirror_nhid_follower_resyncs",
        resyncs as f64,
        "resyncs",
    );
    daemon.stop()?;
    Ok(())
}

/// Phases 1 and 3 on one namespace and one rtmd.
fn burst(run: &Run, batch: &Path, rep: &mut Report) -> Result<()> {
    let n = run.routes.len() as u64;
    let k = run.clients;
    let ns = NetNs::new()?;
    let dir = run.dir.join("mirror");
    let capacity = run.routes.len() + run.samples + 1024;
    let daemon = start_rtmd(run.rtmd, &dir, capacity, &ns, &[], run.dl)?;
    let clog = dir.join("clients.log");
    let mut followers = Vec::with_capacity(k);
    for i in 0..k {
        followers.push(ClientProc::spawn(
            "follow",
            &daemon.socket,
            &format!("kmirror-{i}"),
            &clog,
        )?);
    }
    for f in &mut followers {
        f.expect("ready", run.dl.cap(Duration::from_secs(30))?)?;
    }
    let mon = Monitor::start(&ns)?;
    // Let the monitor join its multicast group before the burst starts.
    thread::sleep(Duration::from_millis(300));

    phase(&format!(
        "kernel mirror: ip -batch of {n} routes, {k} followers, 1 ip monitor"
    ));
    let t0 = Instant::now();
    let mut cmd = ns.ip(&["-batch"]);
    cmd.arg(batch);
    run_ok(cmd, run.dl.cap(Duration::from_secs(900))?)?;
    let ip_done = Instant::now();
    // When the followers, and the monitor, each had everything (watched in one loop, so
    // neither time waits on the other).
    let (mut clients_done, mut mon_done) = (None, None);
    let end = Instant::now() + run.dl.cap(SETTLE)?;
    while (clients_done.is_none() || mon_done.is_none()) && Instant::now() < end {
        if clients_done.is_none() && followers.iter().all(|f| f.progress() >= n) {
            clients_done = Some(Instant::now());
        }
        if mon_done.is_none() && mon.lines.load(Relaxed) >= n {
            mon_done = Some(Instant::now());
        }
        thread::sleep(Duration::from_micros(200));
    }
    let after = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(ip_done));
    rep.add("kernel_mirror_burst_routes", n as f64, "routes");
    rep.add(
        "kernel_mirror_burst_ip_ms",
        (ip_done - t0).as_secs_f64() * 1e3,
        "ms",
    );
    match after(clients_done) {
        Some(d) => rep.add(
            format!("kernel_mirror_burst_clients_{k}_after_ip_ms"),
            d.as_secs_f64() * 1e3,
            "ms",
        ),
        None => rep.skip(
            &format!("kernel_mirror_burst_clients_{k}_after_ip_ms"),
            "not every follower had every route 30 s after ip finished",
        ),
    }
    match after(mon_done) {
        Some(d) => rep.add(
            "kernel_mirror_burst_ip_monitor_after_ip_ms",
            d.as_secs_f64() * 1e3,
            "ms",
        ),
        None => rep.skip(
            "kernel_mirror_burst_ip_monitor_after_ip_ms",
            "ip monitor had not printed every route 30 s after ip finished",
        ),
    }
    let lost: u64 = followers
        .iter()
        .map(|f| n.saturating_sub(f.progress()))
        .sum();
    // Whether rtm's table holds what the kernel's does: tells a route rtmd never mirrored from
    // one it mirrored but did not tell a follower of.
    let rtm = rtm_prefixes(&daemon)?;
    let kernel = kernel_prefixes(&ns, run.dl)?;
    rep.add(
        "kernel_mirror_burst_differing_prefixes",
        rtm.symmetric_difference(&kernel).count() as f64,
        "prefixes",
    );
    if lost > 0 {
        let progress: Vec<u64> = followers.iter().map(|f| f.progress()).collect();
        eprintln!("rtm-bench: followers short of {n} routes; their counts: {progress:?}");
        for p in kernel.difference(&rtm).take(10) {
            eprintln!("rtm-bench: in the kernel, not in rtm: {p}");
        }
        for line in daemon.warnings().iter().take(20) {
            eprintln!("rtm-bench: rtmd: {line}");
        }
    }
    rep.add(
        format!("kernel_mirror_burst_lost_clients_{k}"),
        lost as f64,
        "events",
    );
    rep.add(
        "kernel_mirror_burst_ip_monitor_lost",
        n.saturating_sub(mon.lines.load(Relaxed)) as f64,
        "events",
    );

    // Latency: probes through one `ip -batch -` reading standard input.
    for f in &mut followers {
        f.command("quiet")?;
        f.expect("quiet", run.dl.cap(Duration::from_secs(30))?)?;
    }
    phase(&format!(
        "kernel mirror: {} probes at {} per s",
        run.samples, run.rate
    ));
    let mut ip = ns.ip(&["-batch", "-"]);
    ip.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut ip = KillOnDrop(ip.spawn().context("spawn ip -batch -")?);
    let mut stdin = ip.0.stdin.take().expect("piped");
    let gateway = Ipv4Addr::from(u32::from(LOCAL_ADDR) + 1);
    let (sent_at, _) = crate::latency::paced(run.samples, run.rate, |i| {
        // 198.19.0.0/16 is inside the benchmarking block no generated route uses.
        let line = format!(
            "route add 198.19.{}.{}/32 via {gateway} dev {DEV} metric {LAT_BY_ADDR}\n",
            (i >> 8) & 0xff,
            i & 0xff,
        );
        stdin.write_all(line.as_bytes())?;
        stdin.flush()?;
        Ok(())
    })?;
    drop(stdin);
    // Quiet followers report progress when asked.
    let want = n + run.samples as u64;
    let end = Instant::now() + run.dl.cap(SETTLE)?;
    while Instant::now() < end
        && (followers.iter().any(|f| f.progress() < want)
            || mon.probes.lock().unwrap().len() < run.samples)
    {
        for f in &mut followers {
            f.command("progress")?;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = ip.finish(Duration::from_secs(10));
    let mut rtm_lat = Vec::new();
    let mut missing = 0;
    for f in followers {
        let r = f.finish(run.dl.cap(Duration::from_secs(30))?)?;
        missing += crate::latency::collect(&r, &sent_at, &mut rtm_lat);
    }
    let mut mon_lat: Vec<f64> = mon
        .probes
        .lock()
        .unwrap()
        .iter()
        .filter_map(|&(id, t)| {
            let t0 = *sent_at.get(id as usize)?;
            Some((t as f64 - t0 as f64) / 1e3)
        })
        .collect();
    rtm_lat.sort_by(f64::total_cmp);
    mon_lat.sort_by(f64::total_cmp);
    for (name, v) in [
        ("kernel_mirror_latency_p50_us", quantile(&rtm_lat, 0.5)),
        ("kernel_mirror_latency_p99_us", quantile(&rtm_lat, 0.99)),
        ("kernel_ip_monitor_latency_p50_us", quantile(&mon_lat, 0.5)),
        ("kernel_ip_monitor_latency_p99_us", quantile(&mon_lat, 0.99)),
    ] {
        rep.add(name, v, "us");
    }
    rep.add(
        "kernel_mirror_latency_p99_vs_ip_monitor",
        quantile(&rtm_lat, 0.99) / quantile(&mon_lat, 0.99),
        "x",
    );
    rep.add("kernel_mirror_latency_missing", missing as f64, "samples");
    daemon.stop()?;
    Ok(())
}

/// Phase 2: the burst into an rtmd whose netlink buffer overflows.
fn enobufs(run: &Run, batch: &Path, rep: &mut Report) -> Result<()> {
    let n = run.routes.len();
    let ns = NetNs::new()?;
    let dir = run.dir.join("mirror-enobufs");
    let daemon = start_rtmd(
        run.rtmd,
        &dir,
        n + 1024,
        &ns,
        &["--kernel-rcvbuf", TINY_RCVBUF],
        run.dl,
    )?;
    phase(&format!(
        "kernel mirror: ip -batch of {n} routes into a {TINY_RCVBUF}-byte netlink buffer"
    ));
    let mut cmd = ns.ip(&["-batch"]);
    cmd.arg(batch);
    run_ok(cmd, run.dl.cap(Duration::from_secs(900))?)?;
    let ip_done = Instant::now();
    let kernel = kernel_prefixes(&ns, run.dl)?;
    if kernel.len() < n {
        bail!(
            "the kernel holds {} routes, fewer than the {n} added",
            kernel.len()
        );
    }
    let equal = until(run.dl, || {
        rtm_prefixes(&daemon).is_ok_and(|p| p.len() == kernel.len() && p == kernel)
    })?;
    let rtm = rtm_prefixes(&daemon)?;
    let differ = rtm.symmetric_difference(&kernel).count();
    match equal {
        Some(t) => rep.add(
            "kernel_mirror_enobufs_equal_after_ip_ms",
            t.saturating_duration_since(ip_done).as_secs_f64() * 1e3,
            "ms",
        ),
        None => rep.skip(
            "kernel_mirror_enobufs_equal_after_ip_ms",
            "rtm's table still differed from the kernel's 30 s after ip finished",
        ),
    }
    rep.add(
        "kernel_mirror_enobufs_differing_prefixes",
        differ as f64,
        "prefixes",
    );
    rep.add(
        "kernel_mirror_enobufs_redumps",
        log_count(&dir, "dumping again"),
        "dumps",
    );
    daemon.stop()?;
    Ok(())
}
