//! The writer: one `rtm` client that loads the table in batch frames, pipelined, and paces
//! itself so that no follower falls further behind than the daemon's queue allows.

use std::collections::VecDeque;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use rtm::wire::{Caps, Op, Reply, Request};
use rtm::{Client, ClientError};
use tokio::runtime::Runtime;

use crate::clients::ClientProc;
use crate::daemon::CLIENT_QUEUE;
use crate::deadline::Deadline;

/// Ops per batch frame (the library's recommended chunk).
pub const BATCH: usize = rtm::wire::BATCH_CHUNK;
/// Batches in flight before the writer waits for a reply.
const DEPTH: usize = 4;
/// Most notifications the slowest client may be behind before the writer waits: half the
/// daemon's per-client queue, so no client is ever pushed into a resync.
const WINDOW: u64 = CLIENT_QUEUE / 2;

/// How long one call may wait for rtmd's answer.
const CALL: Duration = Duration::from_secs(30);

fn block<T>(
    rt: &Runtime,
    d: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T> {
    rt.block_on(async { tokio::time::timeout(d, f).await })
        .map_err(|_| anyhow!("rtmd did not answer within {d:?}"))?
        .map_err(Into::into)
}

/// The writer's connection, with the runtime its calls block on.
pub struct Writer {
    rt: Runtime,
    client: Client,
}

impl Writer {
    pub fn connect(socket: &Path) -> Result<Writer> {
        let rt = crate::cli::runtime()?;
        let client = block(
            &rt,
            CALL,
            Client::connect(socket, "rtm-bench-writer", Caps::default()),
        )?;
        Ok(Writer { rt, client })
    }

    /// One batch frame, answered; fails unless every op was applied.
    pub fn batch(&mut self, ops: Vec<Op>) -> Result<()> {
        let len = ops.len();
        match block(&self.rt, CALL, self.client.batch(ops, false))? {
            (applied, failures) if failures.is_empty() && applied as usize == len => Ok(()),
            other => bail!("batch not fully applied: {other:?}"),
        }
    }

    /// One request, answered.
    pub fn request(&mut self, req: Request) -> Result<Reply> {
        block(&self.rt, CALL, self.client.request(req))
    }

    /// One op, answered.
    pub fn apply(&mut self, op: Op) -> Result<u64> {
        block(&self.rt, CALL, self.client.apply(op))
    }

    /// Sends `batches` (pipelined, `DEPTH` frames in flight) and returns the seconds until
    /// every follower has handled every notification (or, without followers, until the last
    /// reply). The slowest follower is never more than `WINDOW` notifications behind the
    /// writer.
    pub fn pump(
        &mut self,
        batches: Vec<Vec<Op>>,
        followers: &[ClientProc],
        dl: &Deadline,
    ) -> Result<f64> {
        let (rt, w) = (&self.rt, &mut self.client);
        let base: Vec<u64> = followers.iter().map(|c| c.progress()).collect();
        let behind_min = |fs: &[ClientProc]| -> u64 {
            fs.iter()
                .zip(&base)
                .map(|(c, b)| c.progress() - b)
                .min()
                .unwrap_or(u64::MAX)
        };
        let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
        let t0 = Instant::now();
        let mut inflight: VecDeque<(u32, usize)> = VecDeque::new();
        let mut sent = 0u64;
        let recv_one = |w: &mut Client, inflight: &mut VecDeque<(u32, usize)>| -> Result<()> {
            let (id, result) = block(rt, CALL, w.recv_reply())?;
            let (want, len) = inflight.pop_front().expect("a batch in flight");
            if id != want {
                bail!("reply {id} for batch {want}");
            }
            match result.map_err(ClientError::Refused)? {
                Reply::Batch { applied, failures }
                    if failures.is_empty() && applied as usize == len =>
                {
                    Ok(())
                }
                other => bail!("batch not fully applied: {other:?}"),
            }
        };
        for b in batches {
            let len = b.len() as u64;
            while inflight.len() >= DEPTH {
                recv_one(w, &mut inflight)?;
            }
            if !followers.is_empty() {
                while sent + len > behind_min(followers).saturating_add(WINDOW) {
                    dl.left()?;
                    thread::sleep(Duration::from_micros(50));
                }
            }
            let id = block(
                rt,
                CALL,
                w.send(Request::Batch {
                    ops: b,
                    force: false,
                }),
            )?;
            inflight.push_back((id, len as usize));
            sent += len;
        }
        while !inflight.is_empty() {
            recv_one(w, &mut inflight)?;
        }
        let end = Instant::now() + dl.cap(Duration::from_secs(120))?;
        while !followers.is_empty() && behind_min(followers) < total {
            if Instant::now() > end {
                let got: Vec<u64> = followers
                    .iter()
                    .zip(&base)
                    .map(|(c, b)| c.progress() - b)
                    .collect();
                bail!("clients did not receive all {total} notifications: {got:?}");
            }
            thread::sleep(Duration::from_micros(50));
        }
        Ok(t0.elapsed().as_secs_f64())
    }
}

/// `ops` in frames of `BATCH`.
pub fn batches(ops: impl Iterator<Item = Op>) -> Vec<Vec<Op>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(BATCH);
    for op in ops {
        cur.push(op);
        if cur.len() == BATCH {
            out.push(std::mem::replace(&mut cur, Vec::with_capacity(BATCH)));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
