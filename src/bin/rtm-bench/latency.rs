//! Latency probes, and the machine's floor for them.
//!
//! rtm's probes (`notify_latency_*`) are single route replaces, paced, each crossing three
//! processes: the writer, `rtmd`, then every client, which reads the entry from shared memory.
//! The floor (`notify_floor_*`) sends the same number of probes at the same pace through the same
//! number of process hops — the writer, one relay process, K receiver processes — with nothing
//! in between but blocking Unix-socket reads and writes of a 4-byte probe id: no framing, no
//! actors, no shared memory. What is left is the cost of waking sleeping processes on this
//! machine, which no daemon can go below with clients that sleep until they are told.
//!
//! The relay and the receivers are this executable again (`--as-client floor-relay|
//! floor-receiver`, hidden), talking to the parent like the other client roles: `ready`, then
//! `r {json}` with the samples when the relay closes their sockets. They exit when their stdin
//! closes or says `stop`, so they never outlive the parent.
//!
//! The relay writes a probe to the K receivers first and then answers the writer, so
//! `reply_floor_*` includes the K fan-out writes. Before the measured probes a few unrecorded
//! ones warm the fresh processes up, as rtm's clients are warm from the update phases.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::client_role::say;
use crate::clients::ClientProc;
use crate::deadline::Deadline;
use crate::util::now_ns;

/// First byte a connection sends the relay: who it is.
const WRITER: u8 = b'W';
const RECEIVER: u8 = b'R';
/// Probe-id bit of the unrecorded warm-up probes.
const WARM_UP: u32 = 0x8000_0000;
/// Warm-up probes, sent at the measured pace.
const WARM_UPS: usize = 64;

/// Sends `count` probes at `rate` per second; `probe(i)` sends probe `i` and waits for its
/// reply. Returns when each probe was sent (CLOCK_MONOTONIC, ns) and each round trip (µs).
pub fn paced(
    count: usize,
    rate: u32,
    mut probe: impl FnMut(usize) -> Result<()>,
) -> Result<(Vec<u64>, Vec<f64>)> {
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut sent_at = Vec::with_capacity(count);
    let mut rtt = Vec::with_capacity(count);
    let mut next = Instant::now();
    for i in 0..count {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += gap;
        let t = now_ns();
        sent_at.push(t);
        probe(i)?;
        rtt.push((now_ns() - t) as f64 / 1e3);
    }
    Ok((sent_at, rtt))
}

/// The latencies (µs) in a client's report: its `samples` are `[probe id, seen at]` pairs.
/// Returns how many of the `sent_at.len()` probes the report lacks.
pub fn collect(report: &Value, sent_at: &[u64], out: &mut Vec<f64>) -> u64 {
    let got = report["samples"]
        .as_array()
        .map_or(&[][..], |a| a.as_slice());
    for s in got {
        let (Some(id), Some(t)) = (s[0].as_u64(), s[1].as_u64()) else {
            continue;
        };
        if let Some(&t0) = usize::try_from(id).ok().and_then(|i| sent_at.get(i)) {
            out.push((t as f64 - t0 as f64) / 1e3);
        }
    }
    (sent_at.len() as u64).saturating_sub(got.len() as u64)
}

/// The floor's samples.
pub struct Floor {
    /// Probe sent → a receiver read it, µs, over all receivers, sorted.
    pub notify: Vec<f64>,
    /// Probe sent → the relay's reply read, µs, sorted.
    pub reply: Vec<f64>,
}

/// Runs the floor: a relay listening on `socket`, `k` receivers, `count` probes at `rate`.
pub fn floor(
    socket: &Path,
    k: usize,
    count: usize,
    rate: u32,
    log: &Path,
    dl: &Deadline,
) -> Result<Floor> {
    let mut relay = ClientProc::spawn("floor-relay", socket, "floor-relay", log)?;
    relay.expect("ready", dl.cap(Duration::from_secs(30))?)?;
    let mut receivers = Vec::with_capacity(k);
    for i in 0..k {
        receivers.push(ClientProc::spawn(
            "floor-receiver",
            socket,
            &format!("floor-{i}"),
            log,
        )?);
    }
    for r in &mut receivers {
        r.expect("ready", dl.cap(Duration::from_secs(30))?)?;
    }

    let mut w = UnixStream::connect(socket).context("connect to the floor relay")?;
    w.set_read_timeout(Some(dl.cap(Duration::from_secs(30))?))?;
    w.write_all(&[WRITER])?;
    let mut probe = |id: u32| -> Result<()> {
        let id = id.to_le_bytes();
        w.write_all(&id)?;
        let mut back = [0u8; 4];
        w.read_exact(&mut back)
            .context("no reply from the floor relay (it or a receiver may have exited)")?;
        if back != id {
            bail!("floor relay answered probe {back:?} for {id:?}");
        }
        Ok(())
    };
    paced(WARM_UPS, rate, |i| probe(WARM_UP | u32::try_from(i)?))?;
    let (sent_at, mut reply) = paced(count, rate, |i| probe(u32::try_from(i)?))?;
    // EOF ends the relay, which closes the receivers' sockets: they report and exit.
    drop(w);

    let mut notify = Vec::with_capacity(count * k);
    for r in receivers {
        let v = r.report(dl.cap(Duration::from_secs(30))?)?;
        let missing = collect(&v, &sent_at, &mut notify);
        if missing > 0 {
            bail!("a floor receiver missed {missing} probes");
        }
    }
    relay.report(dl.cap(Duration::from_secs(10))?)?;
    notify.sort_by(f64::total_cmp);
    reply.sort_by(f64::total_cmp);
    Ok(Floor { notify, reply })
}

/// The hidden roles.
pub fn role(mode: &str, socket: &Path) -> Result<()> {
    // The parent's stdin: `stop` or EOF (the parent is gone) ends this process at once, even
    // while it waits in accept or read.
    thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "stop" => break,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        std::process::exit(0);
    });
    match mode {
        "floor-relay" => relay(socket),
        "floor-receiver" => receiver(socket),
        other => Err(anyhow!("unknown floor role {other:?}")),
    }
}

fn relay(path: &Path) -> Result<()> {
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    say("ready");
    let mut receivers = Vec::new();
    let mut writer = loop {
        let (mut s, _) = listener.accept()?;
        let mut who = [0u8];
        s.read_exact(&mut who)?;
        match who[0] {
            RECEIVER => {
                s.write_all(&[1])?;
                receivers.push(s);
            }
            WRITER => break s,
            other => bail!("unknown role byte {other}"),
        }
    };
    let mut id = [0u8; 4];
    loop {
        match writer.read_exact(&mut id) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        for r in &mut receivers {
            r.write_all(&id)?;
        }
        writer.write_all(&id)?;
    }
    say("r {}");
    Ok(())
}

fn receiver(path: &Path) -> Result<()> {
    let mut s = UnixStream::connect(path).with_context(|| format!("connect {}", path.display()))?;
    s.write_all(&[RECEIVER])?;
    let mut ack = [0u8];
    s.read_exact(&mut ack)?;
    say("ready");
    let mut samples = Vec::new();
    let mut id = [0u8; 4];
    loop {
        match s.read_exact(&mut id) {
            Ok(()) => {
                let t = now_ns();
                let id = u32::from_le_bytes(id);
                if id & WARM_UP == 0 {
                    samples.push((id, t));
                }
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
    }
    say(&format!("r {}", json!({ "samples": samples })));
    Ok(())
}
