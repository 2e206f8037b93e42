//! Who hears of a table's changes: sessions subscribe and unsubscribe, and every applied batch
//! goes out to each of them as one shared `Notify`.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use rtm_proto::wire::{Event, Failure};

use super::{TableActor, TableRecord};
use crate::restart::guarded;
use crate::session::outbox::SharedFrames;

/// Notifications for a subscriber, shared by all subscribers of one batch, with the batch's
/// encoded frames, made once by whichever session writes it first, and the moment the batch
/// was published (for the notification delay histogram).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Notify(pub Arc<[Event]>, pub SharedFrames, pub Instant);

impl Notify {
    pub fn new(events: Arc<[Event]>) -> Self {
        Notify(events, SharedFrames::default(), Instant::now())
    }
}

/// Subscribe `to` to this table. The subscriber first receives `Event::Start` with the current
/// sequence number, then every later change.
#[derive(Message)]
#[rtype(result = "Result<(), Failure>")]
pub struct Subscribe {
    pub session: u64,
    pub to: Recipient<Notify>,
}

impl<R: TableRecord> Handler<Subscribe> for TableActor<R> {
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, |act, _| {
            // Start goes through the same mailbox as the changes that follow it, so the
            // subscriber sees it first and nothing between.
            msg.to.do_send(Notify::new(Arc::from([Event::Start {
                table: R::TABLE,
                seq: act.seq,
            }])));
            act.subscribers.insert(msg.session, msg.to);
        })
        .ok_or_else(Self::crashed)
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub session: u64,
}

impl<R: TableRecord> Handler<Unsubscribe> for TableActor<R> {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| act.subscribers.remove(&msg.session));
    }
}

impl<R: TableRecord> TableActor<R> {
    /// Sends one batch of events to every live subscriber, forgetting the gone ones.
    pub(super) fn publish(&mut self, events: Arc<[Event]>) {
        let msg = Notify::new(events);
        self.subscribers.retain(|_, to| {
            if !to.connected() {
                return false;
            }
            to.do_send(msg.clone());
            true
        });
    }
}
