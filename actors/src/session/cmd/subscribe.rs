//! `Subscribe` and `Deregister`: a session becomes a registered client — listed by `rtmctl
//! clients`, told of every change of its tables — and stops being one.

use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use rtm_proto::wire::{self, Failure, Hello, Reply, Table, Tables};
use tracing::warn;

use super::{registry_unavailable, unavailable};
use crate::registry::{self, Registration};
use crate::session::Session;
use crate::table::{Notify, Subscribe, Unsubscribe};

impl Session {
    /// Registers the client, then subscribes it to each table; each table's `Start` event comes
    /// before any of its changes. A failure half way leaves no registration behind.
    pub(in crate::session) fn subscribe(
        &mut self,
        id: u32,
        tables: Tables,
        ctx: &mut Context<Self>,
    ) {
        if self.subscribed.is_some() {
            self.answer_now(
                id,
                vec![Err(Failure::Invalid("already subscribed".to_string()))],
            );
            return;
        }
        // Every table asked for must exist before any subscription is made.
        if let Some(Err(f)) = tables
            .contains(Table::Neigh)
            .then(|| self.svc.neighbours().map(drop))
        {
            self.answer_now(id, vec![Err(f)]);
            return;
        }
        let hello = self.hello.clone().unwrap_or_else(|| Hello {
            version: wire::PROTOCOL_VERSION,
            name: String::new(),
            caps: Default::default(),
        });
        if hello.caps.sigusr1 && self.peer.pidfd.is_none() {
            // Signalling by PID could hit a recycled one: such a client would never get its
            // SIGUSR1 after a flush. Say so rather than register it and stay silent.
            warn!(
                session = self.id,
                pid = self.peer.pid,
                "a client announcing a SIGUSR1 handler has no pidfd; refusing its registration"
            );
            let why = format!(
                "this client announced a SIGUSR1 handler, but the kernel gave no pidfd for it                  (pid {}; needs Linux 5.3 or later and a client in rtmd's PID namespace), so it                  could never be signalled; register without the SIGUSR1 capability",
                self.peer.pid
            );
            self.answer_now(id, vec![Err(Failure::Unsupported(why))]);
            return;
        }
        let registration = Registration {
            id: self.id,
            pid: self.peer.pid,
            uid: self.peer.uid,
            name: hello.name,
            connected_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            sigusr1: hello.caps.sigusr1,
            pidfd: self.peer.pidfd.clone(),
            stats: self.stats.clone(),
            session: ctx.address().recipient(),
        };
        let svc = self.svc.clone();
        let me: Recipient<Notify> = ctx.address().recipient();
        let session = self.id;
        let fut = async move {
            svc.registry
                .send(registry::Register(registration))
                .await
                .map_err(registry_unavailable)??;
            for t in tables.iter() {
                let sub = Subscribe {
                    session,
                    to: me.clone(),
                };
                svc.table::<Subscribe>(t)?
                    .send(sub)
                    .await
                    .map_err(|e| unavailable(t, e))??;
            }
            Ok(())
        };
        self.busy = true;
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            match r {
                Ok(()) => {
                    act.subscribed = Some(tables);
                    act.reply(id, vec![Ok(Reply::Subscribed)]);
                }
                Err(f) => {
                    // Undo the subscriptions made before the one that failed.
                    act.subscribed = Some(tables);
                    act.leave();
                    act.reply(id, vec![Err(f)]);
                }
            }
            act.finished_request(ctx);
        }));
    }

    /// The client leaves: acknowledged at once, and nothing read after it is answered.
    pub(in crate::session) fn deregister(&mut self, id: u32, ctx: &mut Context<Self>) {
        self.leave();
        self.answer_now(id, vec![Ok(Reply::Deregistered)]);
        self.pending.clear();
        self.closing = true;
        self.out.close();
        ctx.stop();
    }

    /// Leaves the registry and every table; safe to call more than once.
    pub(in crate::session) fn leave(&mut self) {
        if let Some(tables) = self.subscribed.take() {
            for t in tables.iter() {
                if let Ok(to) = self.svc.table::<Unsubscribe>(t) {
                    to.do_send(Unsubscribe { session: self.id });
                }
            }
        }
        // Also when not (yet) registered: a registration may have succeeded while the
        // subscription failed half way. Deregistering an unknown id does nothing.
        self.svc
            .registry
            .do_send(registry::Deregister { id: self.id });
    }
}
