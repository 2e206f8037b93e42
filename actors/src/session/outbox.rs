//! A session's outgoing queue and the task that writes it to the socket.
//!
//! actix's own framed writer has no real back-pressure, so each session bounds its
//! queue itself: notifications beyond `client_queue` collapse, per table, into one `Resync`
//! whose sequence number keeps advancing until it is written; replies are all kept, but a
//! session whose unwritten replies pass [`REPLY_BACKLOG_HIGH`] stops reading requests, and
//! stops queueing the frames of the answer it is sending ([`stream_answer`]), until the
//! client has taken them down to [`REPLY_BACKLOG_LOW`]. A slow client therefore costs a bounded amount of
//! memory and never slows the table writers. The writer task drains everything queued at once
//! into one buffer, many frames per `write` call.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rtm_proto::wire::{self, Event, ServerMsg, Table};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::Notify;
use tracing::debug;

use crate::config::Limits;

/// Per-session figures, read by the registry for `rtmctl clients`.
#[derive(Debug, Default)]
pub struct SessionStats {
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    pub resyncs: AtomicU64,
}

enum Item {
    /// An encoded reply body.
    Reply(Bytes),
    Event(Event),
    /// A table's batch of notifications, shared with every other subscriber (never copied
    /// per session), with its frames encoded once for all of them.
    Batch(Arc<[Event]>, SharedFrames),
    /// A pending resync; its sequence number is read from `Outbox::resync_seq` when written.
    Resync(Table),
}

/// Most events per `Events` frame; keeps frames far below the client's frame limit.
const EVENTS_PER_FRAME: usize = 4096;
/// Batches with fewer events are copied into the queue (and coalesce with their neighbours
/// into one frame); larger ones are queued shared, as [`Item::Batch`].
const SHARE_MIN: usize = 8;
/// A drained queue keeps at most this many slots of capacity.
const IDLE_QUEUE_SLOTS: usize = 8;

/// The encoded `Events` frames (length prefix included) of one published batch, made by the
/// first session that writes the batch and reused by every other.
pub type SharedFrames = Arc<std::sync::OnceLock<Bytes>>;

/// Encodes `events` as `Events` frames of at most [`EVENTS_PER_FRAME`] events each.
fn encode_frames(events: &[Event]) -> Bytes {
    let mut buf = BytesMut::new();
    for chunk in events.chunks(EVENTS_PER_FRAME) {
        let body = wire::encode(&ServerMsg::Events(chunk.to_vec())).expect("events always encode");
        put_frame(&mut buf, &body);
    }
    buf.freeze()
}

fn event_seq(ev: &Event) -> u64 {
    match *ev {
        Event::Start { seq, .. }
        | Event::Change { seq, .. }
        | Event::Flush { seq, .. }
        | Event::Resync { seq, .. } => seq,
        Event::Bye => 0,
    }
}
/// Most bytes gathered for one write.
const WRITE_CHUNK: usize = 256 * 1024;
/// How long a closing session may take to hand its last frames to a client.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Unwritten reply bytes past which a session stops reading requests...
pub const REPLY_BACKLOG_HIGH: usize = 4 << 20;
/// ...until the client has read them down to this.
pub const REPLY_BACKLOG_LOW: usize = 1 << 20;
/// How long a client may leave its replies unread before the session gives up on it.
pub const REPLY_STALL: Duration = Duration::from_secs(30);

pub struct Outbox {
    /// The session's id (as `rtmctl clients` shows it), for the log.
    session: u64,
    items: VecDeque<Item>,
    events: usize,
    reply_bytes: usize,
    /// `client_queue` is read at every push, so a reload applies to running sessions too.
    limits: Arc<Limits>,
    resync_seq: [Option<u64>; 3],
    closing: bool,
    /// The socket failed: nothing more can be written, so nothing more is kept.
    dead: bool,
    stats: Arc<SessionStats>,
    health: Arc<crate::counters::Health>,
    /// When the oldest notification not yet handed to the socket was published; taken, and
    /// recorded in the delay histogram, by the write that empties the queue.
    oldest: Option<Instant>,
}

fn slot(t: Table) -> usize {
    match t {
        Table::Route => 0,
        Table::Arp => 1,
        Table::Neigh => 2,
    }
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues a reply body.
    pub fn push_reply(&mut self, body: Bytes) {
        if self.dead {
            return;
        }
        self.reply_bytes += body.len();
        self.items.push_back(Item::Reply(body));
    }

    /// Queues a notification, collapsing this table's backlog into a resync when over the bound.
    pub fn push_event(&mut self, ev: Event) {
        if self.dead {
            return;
        }
        let Some(table) = ev.table() else {
            // Bye: never dropped, never collapsed.
            self.items.push_back(Item::Event(ev));
            self.events += 1;
            return;
        };
        if self.admit(table, 1, event_seq(&ev)) {
            self.items.push_back(Item::Event(ev));
            self.events += 1;
        }
        self.stats.queued.store(self.events as u64, Relaxed);
    }

    /// Queues a published batch (all of one table): small ones event by event, larger ones
    /// as one shared item, so that a session's queue holds a pointer per batch rather than a
    /// copy of every event.
    pub fn push_batch(&mut self, events: &Arc<[Event]>, frames: &SharedFrames, at: Instant) {
        if self.dead {
            return;
        }
        self.oldest.get_or_insert(at);
        let table = events.first().and_then(Event::table);
        let (Some(table), true) = (table, events.len() >= SHARE_MIN) else {
            for ev in events.iter() {
                self.push_event(*ev);
            }
            return;
        };
        let last = events.last().map_or(0, event_seq);
        if self.admit(table, events.len(), last) {
            self.items
                .push_back(Item::Batch(events.clone(), frames.clone()));
            self.events += events.len();
        }
        self.stats.queued.store(self.events as u64, Relaxed);
    }

    /// Whether `n` more notifications of `table`, the last with sequence number `seq`, fit
    /// under `client_queue`. If not (or if the table is already collapsed), the table's queued
    /// notifications collapse into one resync at `seq`, and they are not queued.
    fn admit(&mut self, table: Table, n: usize, seq: u64) -> bool {
        let s = slot(table);
        if let Some(pending) = &mut self.resync_seq[s] {
            // Already collapsed: the resync covers these changes too.
            *pending = seq;
            return false;
        }
        if self.events + n <= self.limits.client_queue().max(1) {
            return true;
        }
        let mut dropped = 0;
        self.items.retain(|it| match it {
            Item::Event(e) if e.table() == Some(table) => {
                dropped += 1;
                false
            }
            Item::Batch(evs, _) if evs.first().and_then(Event::table) == Some(table) => {
                dropped += evs.len();
                false
            }
            _ => true,
        });
        self.events -= dropped;
        self.items.push_back(Item::Resync(table));
        self.resync_seq[s] = Some(seq);
        tracing::info!(
            id = self.session,
            table = table.name(),
            dropped,
            seq,
            "client fell behind: its queued notifications collapse into a resync"
        );
        self.stats.resyncs.fetch_add(1, Relaxed);
        crate::counters::Counters::bump(&self.health.counters.resyncs);
        false
    }

    /// Encodes queued items into `buf` as frames, up to about [`WRITE_CHUNK`] bytes.
    fn drain_into(&mut self, buf: &mut BytesMut) {
        let mut batch: Vec<Event> = Vec::new();
        let mut sent = 0u64;
        while buf.len() + batch.len() * 16 < WRITE_CHUNK {
            let Some(item) = self.items.pop_front() else {
                break;
            };
            let ev = match item {
                Item::Reply(body) => {
                    self.reply_bytes -= body.len();
                    flush_events(&mut batch, buf);
                    put_frame(buf, &body);
                    continue;
                }
                Item::Event(ev) => {
                    self.events -= 1;
                    ev
                }
                Item::Batch(evs, frames) => {
                    self.events -= evs.len();
                    sent += evs.len() as u64;
                    flush_events(&mut batch, buf);
                    buf.extend_from_slice(frames.get_or_init(|| encode_frames(&evs)));
                    continue;
                }
                Item::Resync(t) => Event::Resync {
                    table: t,
                    seq: self.resync_seq[slot(t)].take().unwrap_or_default(),
                },
            };
            // `sent` counts notifications; the subscription's Start marker is not one.
            if !matches!(ev, Event::Start { .. }) {
                sent += 1;
            }
            batch.push(ev);
            if batch.len() == EVENTS_PER_FRAME {
                flush_events(&mut batch, buf);
            }
        }
        flush_events(&mut batch, buf);
        if self.items.is_empty() && self.items.capacity() > IDLE_QUEUE_SLOTS {
            // An idle subscriber keeps no memory from its last backlog.
            self.items.shrink_to(IDLE_QUEUE_SLOTS);
        }
        self.stats.queued.store(self.events as u64, Relaxed);
        self.stats.sent.fetch_add(sent, Relaxed);
        crate::counters::Counters::bump_by(&self.health.counters.events_sent, sent);
    }
}

fn put_frame(buf: &mut BytesMut, body: &[u8]) {
    buf.reserve(4 + body.len());
    buf.put_u32(body.len() as u32);
    buf.put_slice(body);
}

fn flush_events(batch: &mut Vec<Event>, buf: &mut BytesMut) {
    if batch.is_empty() {
        return;
    }
    let msg = ServerMsg::Events(std::mem::take(batch));
    let body = wire::encode(&msg).expect("events always encode");
    put_frame(buf, &body);
}

/// Queues an answer's frames one by one, each only once the unwritten replies are at most
/// [`REPLY_BACKLOG_HIGH`] (waiting for the client to read them down to
/// [`REPLY_BACKLOG_LOW`]): a `show` of a large table streams at the client's pace, and a session
/// holds at most about `REPLY_BACKLOG_HIGH` plus one frame of encoded replies, however many
/// requests its client pipelines. A client that leaves its replies unread for [`REPLY_STALL`]
/// gets no more of this answer (its reader gives up on it too and closes the session).
pub async fn stream_answer(out: &OutboxHandle, frames: impl IntoIterator<Item = ServerMsg>) {
    for msg in frames {
        if out.reply_backlog() > REPLY_BACKLOG_HIGH {
            let drained = out.clone().drained_to(REPLY_BACKLOG_LOW);
            if tokio::time::timeout(REPLY_STALL, drained).await.is_err() {
                debug!("client left its replies unread; dropping the rest of an answer");
                return;
            }
        }
        match wire::encode(&msg) {
            Ok(body) => out.with(|o| o.push_reply(body)),
            Err(e) => tracing::warn!("cannot encode a reply: {e}"),
        }
    }
}

/// The session's handle on its outbox; cloning shares it with the writer task.
#[derive(Clone)]
pub struct OutboxHandle {
    inner: Rc<RefCell<Outbox>>,
    /// Tells the writer there is something to write.
    wake: Rc<Notify>,
    /// Tells the session the writer has written something.
    drained: Rc<Notify>,
    /// Tells the writer the session is closing (its writes get a deadline from then on).
    closed: Rc<Notify>,
}

impl OutboxHandle {
    /// Creates the outbox and spawns its writer task on the current arbiter.
    pub fn spawn(
        sink: OwnedWriteHalf,
        session: u64,
        limits: Arc<Limits>,
        stats: Arc<SessionStats>,
        health: Arc<crate::counters::Health>,
    ) -> OutboxHandle {
        let h = OutboxHandle {
            inner: Rc::new(RefCell::new(Outbox {
                session,
                items: VecDeque::new(),
                events: 0,
                reply_bytes: 0,
                limits,
                resync_seq: [None; 3],
                closing: false,
                dead: false,
                stats,
                health,
                oldest: None,
            })),
            wake: Rc::new(Notify::new()),
            drained: Rc::new(Notify::new()),
            closed: Rc::new(Notify::new()),
        };
        actix_rt::spawn(h.clone().run(sink));
        h
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Outbox) -> T) -> T {
        let r = f(&mut self.inner.borrow_mut());
        self.wake.notify_one();
        r
    }

    /// Unwritten reply bytes (0 once the socket is dead: they will never be written).
    pub fn reply_backlog(&self) -> usize {
        let o = self.inner.borrow();
        if o.dead {
            0
        } else {
            o.reply_bytes
        }
    }

    /// Resolves once the reply backlog is at most `low` (or the socket is dead). Both the
    /// paced reader and a streaming answer may wait at once: every write wakes all waiters,
    /// each registered before it looks at the backlog, so no wake-up falls between the two.
    pub async fn drained_to(self, low: usize) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reply_backlog() <= low {
                return;
            }
            notified.await;
        }
    }

    /// Writes what is queued, then closes the write side. Idempotent.
    pub fn close(&self) {
        self.with(|o| {
            if !o.closing {
                o.closing = true;
                // A clean stop waits for closing writers to hand over their last frames
                // (a dead writer has nothing left to hand over).
                if !o.dead {
                    o.health.closing_writers.fetch_add(1, Relaxed);
                }
            }
        });
        self.closed.notify_one();
    }

    /// Resolves [`CLOSE_GRACE`] after the session started closing: a client that does not
    /// read cannot hold a closing session's writer (and a clean stop) forever.
    async fn close_deadline(&self) {
        while !self.inner.borrow().closing {
            self.closed.notified().await;
        }
        tokio::time::sleep(CLOSE_GRACE).await;
    }

    async fn run(self, sink: OwnedWriteHalf) {
        self.write_all(sink).await;
        let mut o = self.inner.borrow_mut();
        // From here on `close` must not count this writer again.
        o.dead = true;
        if o.closing {
            o.health.closing_writers.fetch_sub(1, Relaxed);
        }
    }

    async fn write_all(&self, mut sink: OwnedWriteHalf) {
        // Allocated per write and freed after it: an idle session holds no write buffer.
        let mut buf = BytesMut::new();
        loop {
            let gathered = {
                let mut o = self.inner.borrow_mut();
                if o.is_empty() {
                    if o.closing {
                        break;
                    }
                    false
                } else {
                    o.drain_into(&mut buf);
                    true
                }
            };
            if !gathered {
                self.wake.notified().await;
                continue;
            }
            let res = tokio::select! {
                r = sink.write_all(&buf) => r,
                () = self.close_deadline() => Err(std::io::ErrorKind::TimedOut.into()),
            };
            buf = BytesMut::new();
            self.drained.notify_waiters();
            if res.is_ok() {
                let mut o = self.inner.borrow_mut();
                if o.is_empty() {
                    if let Some(at) = o.oldest.take() {
                        o.health.notify_delay.record(at.elapsed());
                    }
                }
            }
            if let Err(e) = res {
                debug!("session write failed: {e}");
                // The read side sees the hang-up too and ends the session; drop what is queued.
                let mut o = self.inner.borrow_mut();
                o.items.clear();
                o.events = 0;
                o.reply_bytes = 0;
                o.dead = true;
                return;
            }
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.shutdown()).await;
    }
}
