//! `/events/stream`: the live change stream as Server-Sent Events.
//!
//! Each open stream is one [`EventFeed`] actor subscribed to both tables like a session. It
//! hands events to the HTTP response through a queue bounded in frames and in bytes: a browser
//! that stops reading fills it, the feed then drops events and, once there is room again, sends
//! `resync` (the page reloads its view from the tables), so a slow browser costs rtmd at most
//! [`FEED_BYTES`] of queued events and never slows the table actors.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use rtm_proto::wire::{Event, Table};
use tokio::sync::mpsc;

use super::{auth, AppState};
use crate::counters::Counters;
use crate::session::{next_session_id, Services};
use crate::table::{Notify, Subscribe, Unsubscribe};

/// Frames (one per table batch) queued for one browser before it is resynced.
pub const FEED_QUEUE: usize = 256;
/// Bytes of frames queued for one browser before it is resynced.
pub const FEED_BYTES: usize = 1 << 20;
/// A comment line this often shows a dead connection and keeps proxies from timing out.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One browser's subscription to the tables.
pub struct EventFeed {
    id: u64,
    svc: Services,
    tx: mpsc::Sender<Bytes>,
    /// Bytes queued and not yet taken by the response.
    queued: Arc<AtomicUsize>,
    /// Events were dropped: the response owes the browser a `resync` once the queue is empty.
    behind: Arc<AtomicBool>,
}

/// One event as the page reads it (`data:` JSON).
fn event_json(ev: &Event) -> serde_json::Value {
    use serde_json::json;
    match *ev {
        Event::Start { table, seq } => json!({"kind": "start", "table": table.name(), "seq": seq}),
        Event::Change {
            table,
            op,
            key,
            seq,
        } => json!({"kind": "change", "table": table.name(), "op": op.name(),
                    "key": key.to_string(), "seq": seq}),
        Event::Flush { table, seq } => json!({"kind": "flush", "table": table.name(), "seq": seq}),
        Event::Resync { table, seq } => {
            json!({"kind": "resync", "table": table.name(), "seq": seq})
        }
        Event::Bye => json!({"kind": "bye"}),
    }
}

/// A batch of events as one SSE frame.
pub fn frame(events: &[Event]) -> Bytes {
    let list: Vec<_> = events.iter().map(event_json).collect();
    Bytes::from(format!(
        "event: changes\ndata: {}\n\n",
        serde_json::Value::Array(list)
    ))
}

impl EventFeed {
    /// Drops from now on until the response has sent `resync`. A comment line wakes the
    /// response in case it emptied the queue just before (a full queue wakes it anyway).
    fn fall_behind(&mut self) {
        self.behind.store(true, Relaxed);
        let wake = Bytes::from_static(b":\n\n");
        let n = wake.len();
        self.queued.fetch_add(n, Relaxed);
        if self.tx.try_send(wake).is_err() {
            self.queued.fetch_sub(n, Relaxed);
        }
    }

    /// Queues a frame carrying `events` notifications (0 for a keepalive), or drops it while
    /// the browser is behind: the response then sends `resync` once it has emptied the queue.
    fn offer(&mut self, b: Bytes, events: u64, ctx: &mut Context<Self>) {
        if self.tx.is_closed() {
            return ctx.stop();
        }
        if self.behind.load(Relaxed) {
            return;
        }
        let len = b.len();
        if self.queued.load(Relaxed) + len > FEED_BYTES {
            return self.fall_behind();
        }
        // Counted before the response can take it, so the count never goes below zero.
        self.queued.fetch_add(len, Relaxed);
        match self.tx.try_send(b) {
            Ok(()) => Counters::bump_by(&self.svc.health.counters.events_sent, events),
            Err(e) => {
                self.queued.fetch_sub(len, Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => self.fall_behind(),
                    mpsc::error::TrySendError::Closed(_) => ctx.stop(),
                }
            }
        }
    }
}

impl Actor for EventFeed {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Every table rtmd keeps (`table` refuses the neighbours' where there is none).
        for t in Table::ALL {
            let sub = Subscribe {
                session: self.id,
                to: ctx.address().recipient(),
            };
            if let Ok(to) = self.svc.table::<Subscribe>(t) {
                to.do_send(sub);
            }
        }
        ctx.run_interval(KEEPALIVE, |act, ctx| {
            act.offer(Bytes::from_static(b": keepalive\n\n"), 0, ctx)
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        for t in Table::ALL {
            if let Ok(to) = self.svc.table::<Unsubscribe>(t) {
                to.do_send(Unsubscribe { session: self.id });
            }
        }
        Running::Stop
    }
}

impl Handler<Notify> for EventFeed {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        if self.svc.health.shutting_down.load(Relaxed) {
            return ctx.stop();
        }
        self.offer(frame(&msg.0), msg.0.len() as u64, ctx);
    }
}

/// Opens a live stream for a reader.
pub async fn stream(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = auth::reader(&req, &st.dash) {
        return r.into();
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(FEED_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let behind = Arc::new(AtomicBool::new(false));
    EventFeed {
        id: next_session_id(),
        svc: st.svc.clone(),
        tx,
        queued: queued.clone(),
        behind: behind.clone(),
    }
    .start();
    let health = st.svc.health.clone();
    let body = futures_util::stream::poll_fn(move |cx| {
        use std::task::Poll;
        match rx.poll_recv(cx) {
            Poll::Ready(Some(b)) => {
                queued.fetch_sub(b.len(), Relaxed);
                Poll::Ready(Some(Ok::<_, actix_web::Error>(b)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            // Everything queued before the drop is out: now the resync, then what follows.
            Poll::Pending if behind.swap(false, Relaxed) => {
                Counters::bump(&health.counters.resyncs);
                Poll::Ready(Some(Ok(Bytes::from_static(b"event: resync\ndata: {}\n\n"))))
            }
            Poll::Pending => Poll::Pending,
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
