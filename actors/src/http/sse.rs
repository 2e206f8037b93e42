//! `/events/stream`: the live change stream as Server-Sent Events.
//!
//! Each open stream is one [`EventFeed`] actor subscribed to both tables like a session. It
//! hands events to the HTTP response through a bounded channel: a browser that stops reading
//! fills it, the feed then drops events and, once there is room again, sends `resync` (the page
//! reloads its view from the tables), so a slow browser costs rtmd at most [`FEED_QUEUE`]
//! frames and never slows the table actors.

use std::sync::atomic::Ordering::Relaxed;
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
/// A comment line this often shows a dead connection and keeps proxies from timing out.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One browser's subscription to the tables.
pub struct EventFeed {
    id: u64,
    svc: Services,
    tx: mpsc::Sender<Bytes>,
    /// Events were dropped: a `resync` is owed once the queue has room.
    behind: bool,
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
    fn offer(&mut self, b: Bytes, ctx: &mut Context<Self>) {
        if self.behind {
            let resync = Bytes::from_static(b"event: resync\ndata: {}\n\n");
            match self.tx.try_send(resync) {
                Ok(()) => {
                    self.behind = false;
                    Counters::bump(&self.svc.health.counters.resyncs);
                }
                Err(mpsc::error::TrySendError::Full(_)) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return ctx.stop(),
            }
        }
        match self.tx.try_send(b) {
            Ok(()) => Counters::bump(&self.svc.health.counters.events_sent),
            Err(mpsc::error::TrySendError::Full(_)) => self.behind = true,
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }
}

impl Actor for EventFeed {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for t in [Table::Route, Table::Arp] {
            let sub = Subscribe {
                session: self.id,
                to: ctx.address().recipient(),
            };
            match t {
                Table::Route => self.svc.route.do_send(sub),
                Table::Arp => self.svc.arp.do_send(sub),
            }
        }
        ctx.run_interval(KEEPALIVE, |act, ctx| {
            act.offer(Bytes::from_static(b": keepalive\n\n"), ctx)
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.svc.route.do_send(Unsubscribe { session: self.id });
        self.svc.arp.do_send(Unsubscribe { session: self.id });
        Running::Stop
    }
}

impl Handler<Notify> for EventFeed {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        if self.svc.health.shutting_down.load(Relaxed) {
            return ctx.stop();
        }
        self.offer(frame(&msg.0), ctx);
    }
}

/// Opens a live stream for a reader.
pub async fn stream(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = auth::reader(&req, &st.dash) {
        return r.into();
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(FEED_QUEUE);
    EventFeed {
        id: next_session_id(),
        svc: st.svc.clone(),
        tx,
        behind: false,
    }
    .start();
    let body = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, actix_web::Error>))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
