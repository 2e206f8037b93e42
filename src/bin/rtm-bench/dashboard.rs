//! `--dashboard`: the web dashboard of an rtmd with the full table loaded and `--clients`
//! followers subscribed. Pages and searches are plain HTTP/1.1 GETs over loopback with the
//! token `rtmctl dashboard-url` would get; the event stream is read raw from its socket.
//! BENCHMARKS.md says what each figure counts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rtm::wire::{Op, Reply, Request};
use serde_json::Value;

use crate::bench::Bench;
use crate::clients::ClientProc;
use crate::pump::{batches, Writer};
use crate::report::phase;
use crate::table;
use crate::util::{self, now_ns, quantile};

/// Rows on one page of the dashboard's tables (rtmd's `PAGE_ROWS`).
const PAGE_ROWS: usize = 100;
/// How long one HTTP answer may take before the run fails.
const HTTP_WAIT: Duration = Duration::from_secs(30);
/// How often an open overview page polls `/api/status` (`assets/app.js`).
const PAGE_POLL: Duration = Duration::from_secs(2);

/// The dashboard listener and the token every request carries.
struct Http {
    addr: SocketAddr,
    token: String,
}

impl Http {
    /// Mints a token over the Unix socket, as `rtmctl dashboard-url` does.
    fn from_daemon(w: &mut Writer) -> Result<Http> {
        let d = match w.request(Request::DashboardUrl)? {
            Reply::DashboardUrl(d) => d,
            other => bail!("dashboard-url: unexpected reply {other:?}"),
        };
        let rest = d
            .url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("dashboard URL {:?} is not http://", d.url))?;
        let (host, token) = rest
            .split_once("/?token=")
            .ok_or_else(|| anyhow!("no token in the dashboard URL {:?}", d.url))?;
        Ok(Http {
            addr: host
                .parse()
                .with_context(|| format!("address in {:?}", d.url))?,
            token: token.to_string(),
        })
    }

    fn connect(&self, path: &str) -> Result<TcpStream> {
        let mut s = TcpStream::connect(self.addr)
            .with_context(|| format!("connect to the dashboard at {}", self.addr))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(HTTP_WAIT))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Rtm-Token: {}\r\nConnection: close\r\n\r\n",
            self.addr, self.token
        )?;
        Ok(s)
    }

    /// One GET, read to the end: the status and the whole answer.
    fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut s = self.connect(path)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .with_context(|| format!("GET {path}"))?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        Ok((status_of(&text, path)?, text))
    }

    /// A GET that must answer 200 with `want` in it; how long it took, in ms.
    fn timed(&self, path: &str, want: &str) -> Result<f64> {
        let t = Instant::now();
        let (status, text) = self.get(path)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if status != 200 || !text.contains(want) {
            bail!(
                "GET {path}: {status}, no {want:?} in:\n{}",
                text.chars().take(2000).collect::<String>()
            );
        }
        Ok(ms)
    }

    /// `/events/stream`, its answer's head read (200 checked).
    fn stream(&self) -> Result<BufReader<TcpStream>> {
        let mut r = BufReader::new(self.connect("/events/stream")?);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                bail!("event stream closed in its head: {head}");
            }
            head += &line;
            if line == "\r\n" {
                break;
            }
        }
        if status_of(&head, "/events/stream")? != 200 {
            bail!("event stream refused: {head}");
        }
        Ok(r)
    }
}

fn status_of(text: &str, path: &str) -> Result<u16> {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("GET {path}: no HTTP status in {:?}", text.get(..200)))
}

/// What an event stream's reader hands over: a changed key, or a resync, and when it arrived.
enum Seen {
    /// The feed is subscribed to a table: its changes arrive from here on.
    Start,
    Change(String, u64),
    Resync,
}

/// Reads an open stream line by line (the chunk-size lines of the transfer encoding are skipped
/// with every other line that is not an event) until it ends.
fn read_stream(mut r: BufReader<TcpStream>, tx: mpsc::Sender<Seen>) {
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let at = now_ns();
        if line.starts_with("event: resync") {
            if tx.send(Seen::Resync).is_err() {
                return;
            }
        } else if let Some(data) = line.strip_prefix("data: ") {
            let Ok(Value::Array(list)) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            for ev in list {
                if ev["kind"] == "start" && tx.send(Seen::Start).is_err() {
                    return;
                }
                if ev["kind"] == "change" {
                    let key = ev["key"].as_str().unwrap_or_default().to_string();
                    if tx.send(Seen::Change(key, at)).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The whole dashboard run.
pub fn measure(b: &mut Bench) -> Result<()> {
    let (n, k) = (b.routes.len(), b.args.clients);
    let mut w = Writer::connect(&b.daemon.socket)?;
    phase(&format!("dashboard: loading {n} routes"));
    w.pump(
        batches(b.routes.iter().cloned().map(Op::RouteAdd)),
        &[],
        b.dl,
    )?;
    phase(&format!("dashboard: {k} subscribed clients"));
    let mut many = Vec::with_capacity(k);
    for i in 0..k {
        many.push(b.client("follow", &format!("fan-{i}"))?);
    }
    for c in &mut many {
        c.expect("ready", b.dl.cap(Duration::from_secs(60))?)?;
    }
    let http = Http::from_daemon(&mut w)?;

    pages(b, &http)?;
    address_search(b, &http)?;
    stream_latency(b, &http, &mut w)?;
    idle_cpu(b, &http)?;
    stalled_reader(b, &http, &mut w, &many)?;

    for c in many {
        c.finish(b.dl.cap(Duration::from_secs(30))?)?;
    }
    Ok(())
}

/// Pages of the routes view spread over the whole table, each fetched several times.
fn pages(b: &mut Bench, http: &Http) -> Result<()> {
    let q = b.args.quick;
    let last = (b.routes.len() - 1) / PAGE_ROWS;
    let (spread, rounds) = if q { (10, 2) } else { (50, 4) };
    phase(&format!(
        "dashboard: {} routes pages ({spread} pages of {} × {rounds})",
        spread * rounds,
        last + 1
    ));
    let mut ms = Vec::new();
    for _ in 0..rounds {
        for i in 0..spread {
            let page = i * last / (spread - 1);
            ms.push(http.timed(&format!("/routes?q=&page={page}"), "<tbody><tr data-key=")?);
        }
    }
    ms.sort_by(f64::total_cmp);
    b.rep
        .add("dashboard_routes_page_p50_ms", quantile(&ms, 0.5), "ms");
    b.rep
        .add("dashboard_routes_page_p99_ms", quantile(&ms, 0.99), "ms");
    Ok(())
}

/// Searches by address: the longest-prefix match and its row.
fn address_search(b: &mut Bench, http: &Http) -> Result<()> {
    let samples = if b.args.quick { 50 } else { 500 };
    phase(&format!("dashboard: {samples} address searches"));
    let addrs = table::routed_addrs(b.routes, samples, b.args.seed);
    let mut ms = Vec::with_capacity(samples);
    for a in addrs {
        ms.push(http.timed(&format!("/routes?q={a}"), "Longest-prefix match")?);
    }
    ms.sort_by(f64::total_cmp);
    b.rep
        .add("dashboard_lpm_search_p50_ms", quantile(&ms, 0.5), "ms");
    b.rep
        .add("dashboard_lpm_search_p99_ms", quantile(&ms, 0.99), "ms");
    Ok(())
}

/// One change at a time committed over the Unix socket, each timed until its event arrives
/// on an open `/events/stream`.
fn stream_latency(b: &mut Bench, http: &Http, w: &mut Writer) -> Result<()> {
    let samples = (if b.args.quick { 50 } else { 500 }).min(b.routes.len());
    phase(&format!(
        "dashboard: {samples} changes, commit -> event stream"
    ));
    let r = http.stream()?;
    let sock = r.get_ref().try_clone()?;
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || read_stream(r, tx));
    let step = b.routes.len() / samples;
    let mut lat = Vec::with_capacity(samples);
    let run = (|| -> Result<()> {
        // Both tables' `start` first: changes before it would not reach this stream.
        let mut starts = 0;
        while starts < 2 {
            match rx.recv_timeout(b.dl.cap(Duration::from_secs(10))?) {
                Ok(Seen::Start) => starts += 1,
                Ok(_) => {}
                Err(_) => bail!("the event stream sent no start for both tables"),
            }
        }
        for i in 0..samples {
            let mut r = b.routes[i * step].clone();
            r.metric = 7;
            let key = r.dst.to_string();
            let sent = now_ns();
            w.apply(Op::RouteReplace(r))?;
            let end = Instant::now() + b.dl.cap(Duration::from_secs(10))?;
            loop {
                let left = end.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(Seen::Change(k, at)) if k == key => {
                        lat.push((at - sent) as f64 / 1e6);
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => bail!("the event of {key} did not arrive on the stream"),
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    })();
    let _ = sock.shutdown(Shutdown::Both);
    let _ = reader.join();
    run?;
    lat.sort_by(f64::total_cmp);
    b.rep
        .add("dashboard_stream_latency_p50_ms", quantile(&lat, 0.5), "ms");
    b.rep.add(
        "dashboard_stream_latency_p99_ms",
        quantile(&lat, 0.99),
        "ms",
    );
    Ok(())
}

/// rtmd's CPU while one dashboard is open and idle: its event stream open and read, and the
/// overview's status poll.
fn idle_cpu(b: &mut Bench, http: &Http) -> Result<()> {
    let secs = if b.args.quick { 2 } else { 10 };
    phase(&format!("dashboard: idle open page, {secs} s"));
    let r = http.stream()?;
    let sock = r.get_ref().try_clone()?;
    let (tx, _rx) = mpsc::channel();
    let reader = thread::spawn(move || read_stream(r, tx));
    let cpu0 = b.daemon.cpu_s();
    let t0 = Instant::now();
    let end = t0 + b.dl.cap(Duration::from_secs(secs))?;
    let polled = (|| -> Result<()> {
        while Instant::now() < end {
            http.timed("/api/status", "{")?;
            thread::sleep(PAGE_POLL.min(end.saturating_duration_since(Instant::now())));
        }
        Ok(())
    })();
    let cpu = b.daemon.cpu_s() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let _ = sock.shutdown(Shutdown::Both);
    let _ = reader.join();
    polled?;
    b.rep.add("dashboard_idle_cpu_pct", 100.0 * cpu / wall, "%");
    Ok(())
}

/// Changes pushed at a stalled stream (`--quick`: half): several times what the feed's queue
/// (1 MiB) and the socket buffers hold together.
fn stall_changes(b: &Bench) -> usize {
    if b.args.quick {
        1 << 17
    } else {
        1 << 18
    }
}

/// A stream opened and never read while [`stall_changes`] changes are made (the table rewritten
/// as often as that takes): rtmd's anonymous memory before, at its peak and after, and whether
/// the stream, read at last, carries a resync.
fn stalled_reader(b: &mut Bench, http: &Http, w: &mut Writer, many: &[ClientProc]) -> Result<()> {
    let n = stall_changes(b);
    phase(&format!(
        "dashboard: stalled event stream, {n} changes pushed"
    ));
    // The same changes with no stream open first: what they cost rtmd without it.
    let (ctl_peak, _) = push_changes(b, w, many, 8)?;
    let mut stalled = http.connect("/events/stream")?;
    // Let the feed subscribe before the changes start.
    thread::sleep(Duration::from_millis(200));
    let (peak, after) = push_changes(b, w, many, 10)?;
    // Now read it: what was queued, then the resync.
    // (keepalives every 15 s keep a read timeout from firing: the loop has its own end).
    let end = Instant::now() + b.dl.cap(Duration::from_secs(30))?;
    stalled.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut r = BufReader::new(&mut stalled);
    let (mut bytes, mut resync) = (0u64, false);
    let mut line = String::new();
    while Instant::now() < end {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(m) => bytes += m as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(e).context("read the stalled event stream"),
        }
        if line.starts_with("event: resync") {
            resync = true;
            break;
        }
    }
    let rep = &mut *b.rep;
    rep.add(
        "dashboard_unstalled_rss_growth_bytes",
        ctl_peak as f64,
        "bytes",
    );
    rep.add("dashboard_stalled_rss_growth_bytes", peak as f64, "bytes");
    rep.add(
        "dashboard_stalled_rss_growth_after_bytes",
        after as f64,
        "bytes",
    );
    rep.add("dashboard_stalled_stream_bytes_read", bytes as f64, "bytes");
    rep.add(
        "dashboard_stalled_resync",
        if resync { 1.0 } else { 0.0 },
        "resyncs",
    );
    if !resync {
        bail!("the stalled event stream carried no resync after {n} changes ({bytes} bytes read)");
    }
    Ok(())
}

/// Makes [`stall_changes`] changes (metrics `metric` and `metric + 1`, pass by pass over the
/// table) and returns how far rtmd's anonymous memory grew above where it started: at its peak
/// (sampled every 10 ms) and once they are done.
fn push_changes(b: &Bench, w: &mut Writer, many: &[ClientProc], metric: u32) -> Result<(u64, u64)> {
    let (n, len, pid) = (stall_changes(b), b.routes.len(), b.daemon.pid());
    let before = util::proc_status_bytes(pid, "RssAnon")?;
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Relaxed) {
                if let Ok(v) = util::proc_status_bytes(pid, "RssAnon") {
                    peak.fetch_max(v, Relaxed);
                }
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let pumped = w.pump(
        batches((0..n).map(|i| {
            let mut r = b.routes[i % len].clone();
            r.metric = metric + (i / len) as u32 % 2;
            Op::RouteReplace(r)
        })),
        many,
        b.dl,
    );
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Relaxed);
    let _ = sampler.join();
    pumped?;
    let after = util::proc_status_bytes(pid, "RssAnon")?;
    Ok((
        peak.load(Relaxed).saturating_sub(before),
        after.saturating_sub(before),
    ))
}
