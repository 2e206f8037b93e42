//! The measured phases of a run, in the order they run against one daemon: inserts into an
//! empty table (and the memory the full table takes), ARP inserts and the lookups, late joins
//! of the full table, updates delivered to one client (and `status` round trips during route
//! writes), then to K clients, latency probes (and the machine's floor for them), and a flush. Each phase adds its figures to the report;
//! BENCHMARKS.md says what each counts.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rtm::wire::{Op, Tables};
use serde_json::Value;

use crate::bench::Bench;
use crate::client_role::LAT_FLAG;
use crate::clients::{clients_cpu_s, lost, ClientProc};
use crate::latency::{self, Floor};
use crate::lookups;
use crate::pump::{batches, Writer};
use crate::report::phase;
use crate::util::{self, now_ns, quantile};

/// Every phase, in order.
pub fn measure(b: &mut Bench) -> Result<()> {
    let mut w = Writer::connect(&b.daemon.socket)?;
    inserts(b, &mut w)?;
    memory(b)?;
    arp_inserts(b, &mut w)?;
    lookups::compare(b)?;
    late_join(b)?;
    updates_to_one(b, &mut w)?;
    status_during_route_writes(b, &mut w)?;
    let mut many = updates_to_many(b, &mut w)?;
    let probes = latency_probes(b, &mut w, &mut many)?;
    let floor = latency_floor(b, probes.samples)?;
    let flush = flush(b, &mut w, &mut many)?;
    fan_out_report(b, many, probes, &floor, &flush)
}

/// `rtmctl status` round trips, one after another from a connection of their own, while the
/// writer replaces every route: how long a busy route table holds up everything else.
fn status_during_route_writes(b: &mut Bench, w: &mut Writer) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    phase("status round trips while the route table works");
    let stop = Arc::new(AtomicBool::new(false));
    let socket = b.daemon.socket.clone();
    let prober = {
        let stop = stop.clone();
        thread::spawn(move || -> Result<Vec<f64>> {
            let rt = crate::cli::runtime()?;
            rt.block_on(async move {
                let mut c =
                    rtm::Client::connect(&socket, "rtm-bench-status", Default::default()).await?;
                let mut rtts = Vec::new();
                while !stop.load(Relaxed) {
                    let t = Instant::now();
                    c.request(rtm::wire::Request::Status).await?;
                    rtts.push(t.elapsed().as_secs_f64() * 1e6);
                }
                Ok(rtts)
            })
        })
    };
    // Metric 3: between the update phases' 1 and 2, so each phase changes every route.
    let ops = batches(b.routes.iter().map(|r| {
        let mut r = r.clone();
        r.metric = 3;
        Op::RouteReplace(r)
    }));
    let pumped = w.pump(ops, &[], b.dl);
    stop.store(true, Relaxed);
    let mut rtts = match prober.join() {
        Ok(r) => r?,
        Err(_) => bail!("the status prober panicked"),
    };
    pumped?;
    rtts.sort_by(f64::total_cmp);
    let rep = &mut *b.rep;
    rep.add(
        "status_rtt_p50_us_during_route_writes",
        quantile(&rtts, 0.5),
        "us",
    );
    rep.add(
        "status_rtt_p99_us_during_route_writes",
        quantile(&rtts, 0.99),
        "us",
    );
    Ok(())
}

/// Phase 1: inserts, no subscriber.
fn inserts(b: &mut Bench, w: &mut Writer) -> Result<()> {
    let n = b.routes.len();
    phase("inserts, 0 clients");
    let empty = util::allocated_bytes(&b.daemon.shm("route"))?
        + util::allocated_bytes(&b.daemon.shm("arp"))?;
    b.rep
        .add("shm_empty_allocated_bytes", empty as f64, "bytes");
    let ops = batches(b.routes.iter().cloned().map(Op::RouteAdd));
    let perf = b.perf("inserts")?;
    let cpu0 = b.daemon.cpu_s();
    let secs = w.pump(ops, &[], b.dl)?;
    let cpu = b.daemon.cpu_s() - cpu0;
    perf.stop();
    b.rep
        .add("inserts_per_s_clients_0", n as f64 / secs, "ops/s");
    b.rep
        .add("daemon_cpu_us_per_insert", cpu * 1e6 / n as f64, "us");
    Ok(())
}

/// Memory at the full table.
fn memory(b: &mut Bench) -> Result<()> {
    let (daemon, n, rep) = (b.daemon, b.routes.len(), &mut *b.rep);
    let rss_anon = util::proc_status_bytes(daemon.pid(), "RssAnon")?;
    let route_shm = util::allocated_bytes(&daemon.shm("route"))?;
    let arp_shm = util::allocated_bytes(&daemon.shm("arp"))?;
    rep.add("daemon_rss_anon_bytes", rss_anon as f64, "bytes");
    rep.add("shm_route_allocated_bytes", route_shm as f64, "bytes");
    rep.add(
        "shm_route_file_bytes",
        util::file_len(&daemon.shm("route"))? as f64,
        "bytes",
    );
    rep.add("shm_arp_allocated_bytes", arp_shm as f64, "bytes");
    // The shm directory's file system, full table in: with `--scratch-dir` on a small tmpfs,
    // whether (and with how much room) the table fits there.
    let (size, used) = util::fs_usage(&daemon.shm("route"))?;
    rep.add("shm_fs_size_bytes", size as f64, "bytes");
    rep.add("shm_fs_used_bytes", used as f64, "bytes");
    rep.add(
        "bytes_per_route",
        (rss_anon + route_shm + arp_shm) as f64 / n as f64,
        "bytes",
    );
    Ok(())
}

/// Phase 2: ARP entries (then the lookups from shared memory, see `lookups`).
fn arp_inserts(b: &mut Bench, w: &mut Writer) -> Result<()> {
    phase("ARP inserts");
    let t0 = Instant::now();
    w.pump(batches(b.arps.iter().cloned().map(Op::ArpAdd)), &[], b.dl)?;
    b.rep.add(
        "arp_inserts_per_s_clients_0",
        b.arps.len() as f64 / t0.elapsed().as_secs_f64(),
        "ops/s",
    );
    Ok(())
}

/// Phase 3: late join of the full table.
fn late_join(b: &mut Bench) -> Result<()> {
    let n = b.routes.len();
    phase("late join");
    let mut usable = Vec::new();
    let mut synced = Vec::new();
    for i in 0..b.sizes.late_join_runs {
        let mut c = b.client("late-join", &format!("late-{i}"))?;
        let r = c.expect("r ", b.dl.cap(Duration::from_secs(120))?)?;
        let v: Value = serde_json::from_str(&r)?;
        let count = v["count"].as_u64().unwrap_or(0);
        if count != n as u64 {
            bail!("late joiner synced {count} routes, expected {n}");
        }
        usable.push(v["start_ns"].as_f64().unwrap_or(f64::NAN) / 1e6);
        synced.push(v["synced_ns"].as_f64().unwrap_or(f64::NAN) / 1e6);
        let _ = c.child.finish(Duration::from_secs(5));
    }
    usable.sort_by(f64::total_cmp);
    synced.sort_by(f64::total_cmp);
    b.rep.add("late_join_ms", quantile(&synced, 0.5), "ms");
    b.rep
        .add("late_join_usable_ms", quantile(&usable, 0.5), "ms");
    Ok(())
}

/// Phase 4: updates delivered to one client.
fn updates_to_one(b: &mut Bench, w: &mut Writer) -> Result<()> {
    let n = b.routes.len();
    phase("updates, 1 client");
    let mut one = vec![b.client("follow", "one")?];
    one[0].expect("ready", b.dl.cap(Duration::from_secs(30))?)?;
    let ops = batches(b.routes.iter().map(|r| {
        let mut r = r.clone();
        r.metric = 1;
        Op::RouteReplace(r)
    }));
    let perf = b.perf("clients_1")?;
    let cpu0 = b.daemon.cpu_s();
    let ccpu0 = clients_cpu_s(&one);
    let secs = w.pump(ops, &one, b.dl)?;
    let cpu = b.daemon.cpu_s() - cpu0;
    let ccpu = clients_cpu_s(&one) - ccpu0;
    perf.stop();
    let r = one
        .pop()
        .expect("one")
        .finish(b.dl.cap(Duration::from_secs(30))?)?;
    let rep = &mut *b.rep;
    rep.add("updates_per_s_clients_1", n as f64 / secs, "ops/s");
    rep.add(
        "daemon_cpu_us_per_update_clients_1",
        cpu * 1e6 / n as f64,
        "us",
    );
    rep.add(
        "clients_cpu_us_per_update_clients_1",
        ccpu * 1e6 / n as f64,
        "us",
    );
    rep.add(
        "notifications_lost_clients_1",
        lost(&r, n as u64) as f64,
        "events",
    );
    Ok(())
}

/// Phase 5: updates delivered to K clients, which stay for the latency and flush phases.
fn updates_to_many(b: &mut Bench, w: &mut Writer) -> Result<Vec<ClientProc>> {
    let (n, k) = (b.routes.len(), b.args.clients);
    phase(&format!("updates, {k} clients"));
    let mut many = Vec::with_capacity(k);
    for i in 0..k {
        many.push(b.client("follow", &format!("fan-{i}"))?);
    }
    for c in &mut many {
        c.expect("ready", b.dl.cap(Duration::from_secs(60))?)?;
    }
    let ops = batches(b.routes.iter().map(|r| {
        let mut r = r.clone();
        r.metric = 2;
        Op::RouteReplace(r)
    }));
    let perf = b.perf("clients_8")?;
    let cpu0 = b.daemon.cpu_s();
    let ccpu0 = clients_cpu_s(&many);
    let secs = w.pump(ops, &many, b.dl)?;
    let cpu = b.daemon.cpu_s() - cpu0;
    let ccpu = clients_cpu_s(&many) - ccpu0;
    perf.stop();
    // What churn does to the file: every route has now been rewritten twice.
    let after = util::allocated_bytes(&b.daemon.shm("route"))?;
    let rep = &mut *b.rep;
    rep.add(
        "shm_route_allocated_after_updates_bytes",
        after as f64,
        "bytes",
    );
    rep.add(
        format!("updates_per_s_clients_{k}"),
        n as f64 / secs,
        "ops/s",
    );
    rep.add(
        format!("daemon_cpu_us_per_update_clients_{k}"),
        cpu * 1e6 / n as f64,
        "us",
    );
    rep.add(
        format!("clients_cpu_us_per_update_clients_{k}"),
        ccpu * 1e6 / n as f64,
        "us",
    );
    Ok(many)
}

/// What the latency probes leave for the figures taken once the clients report.
struct Probes {
    /// Probes sent: `--latency-samples`, at most one per route.
    samples: usize,
    /// When each probe was sent (CLOCK_MONOTONIC, ns).
    sent_at: Vec<u64>,
    /// Each probe's round trip to rtmd's reply, µs.
    rtt: Vec<f64>,
}

/// Phase 6, latency: single paced ops, each a probe the clients recognise by its metric. From
/// here on the clients are quiet: they wake only for notifications, during the probes and
/// during the floor measured after them.
fn latency_probes(b: &mut Bench, w: &mut Writer, many: &mut [ClientProc]) -> Result<Probes> {
    let (n, routes) = (b.routes.len(), b.routes);
    phase(&format!(
        "latency, {} probes at {}/s",
        b.sizes.lat_samples, b.args.latency_rate
    ));
    let samples = b.sizes.lat_samples.min(n);
    for c in many.iter_mut() {
        c.command("quiet")?;
    }
    for c in many.iter_mut() {
        c.expect("quiet", b.dl.cap(Duration::from_secs(30))?)?;
    }
    let base: Vec<u64> = many.iter().map(|c| c.progress()).collect();
    let (sent_at, rtt) = latency::paced(samples, b.args.latency_rate, |i| {
        let mut r = routes[i].clone();
        r.metric = LAT_FLAG | i as u32;
        w.apply(Op::RouteReplace(r)).map(drop)
    })?;
    // Quiet clients report only when asked: ask those still behind every 5 ms (one may not
    // have handled the last probes yet when first asked).
    let end = Instant::now() + b.dl.cap(Duration::from_secs(30))?;
    let mut ask_at = Instant::now();
    loop {
        let mut behind = many
            .iter_mut()
            .zip(&base)
            .filter(|(c, start)| c.progress() - *start < samples as u64)
            .peekable();
        if behind.peek().is_none() {
            break;
        }
        if Instant::now() > end {
            bail!("clients did not see every latency probe");
        }
        if Instant::now() >= ask_at {
            for (c, _) in behind {
                c.command("progress")?;
            }
            ask_at += Duration::from_millis(5);
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(Probes {
        samples,
        sent_at,
        rtt,
    })
}

/// The machine's floor for the same probes: the same hops with no rtm code in them.
fn latency_floor(b: &Bench, samples: usize) -> Result<Floor> {
    phase(&format!(
        "latency floor, {samples} probes through a bare relay"
    ));
    latency::floor(
        &b.daemon.socket.with_file_name("floor.sock"),
        b.args.clients,
        samples,
        b.args.latency_rate,
        b.client_log,
        b.dl,
    )
}

/// When the flush was sent and how long its reply took.
struct Flush {
    sent_ns: u64,
    reply_ms: f64,
}

/// Phase 7, flush: request sent -> every client saw the flush with shm empty.
fn flush(b: &Bench, w: &mut Writer, many: &mut [ClientProc]) -> Result<Flush> {
    phase("flush");
    let sent_ns = now_ns();
    w.apply(Op::Flush(Tables::Route))?;
    let reply_ms = (now_ns() - sent_ns) as f64 / 1e6;
    for c in many.iter_mut() {
        c.expect("flushed", b.dl.cap(Duration::from_secs(30))?)?;
    }
    Ok(Flush { sent_ns, reply_ms })
}

/// Collects the K clients' final reports: what they lost, when they saw each probe and the
/// flush; with the probes' round trips and the floor, the figures of phases 5 to 7.
fn fan_out_report(
    b: &mut Bench,
    many: Vec<ClientProc>,
    probes: Probes,
    floor: &Floor,
    flush: &Flush,
) -> Result<()> {
    let (n, k) = (b.routes.len(), b.args.clients);
    let Probes {
        samples,
        sent_at,
        mut rtt,
    } = probes;
    let mut lost_k = 0u64;
    let mut lat = Vec::with_capacity(samples * k);
    let mut flush_seen = 0u64;
    let mut probes_missing = 0u64;
    for c in many {
        let r = c.finish(b.dl.cap(Duration::from_secs(30))?)?;
        lost_k += lost(&r, (n + samples) as u64);
        probes_missing += latency::collect(&r, &sent_at, &mut lat);
        if let Some(t) = r["flushes"].as_array().and_then(|a| a.first()?.as_u64()) {
            flush_seen = flush_seen.max(t);
        }
    }
    let rep = &mut *b.rep;
    rep.add(
        format!("notifications_lost_clients_{k}"),
        lost_k as f64,
        "events",
    );
    lat.sort_by(f64::total_cmp);
    rtt.sort_by(f64::total_cmp);
    rep.add("notify_latency_p50_us", quantile(&lat, 0.5), "us");
    rep.add("notify_latency_p99_us", quantile(&lat, 0.99), "us");
    rep.add("notify_latency_max_us", quantile(&lat, 1.0), "us");
    rep.add("notify_latency_samples", lat.len() as f64, "samples");
    rep.add(
        "notify_latency_probes_missing",
        probes_missing as f64,
        "samples",
    );
    rep.add("commit_reply_p50_us", quantile(&rtt, 0.5), "us");
    rep.add("commit_reply_p99_us", quantile(&rtt, 0.99), "us");
    for (what, v) in [("notify", &floor.notify), ("reply", &floor.reply)] {
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            rep.add(format!("{what}_floor_{name}_us"), quantile(v, q), "us");
        }
    }
    rep.add(
        "flush_ms",
        flush_seen.saturating_sub(flush.sent_ns) as f64 / 1e6,
        "ms",
    );
    rep.add("flush_reply_ms", flush.reply_ms, "ms");
    Ok(())
}
