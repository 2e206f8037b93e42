//! Reading a table through its actor: `Show` (all entries in key order, or one, optionally
//! only those of one origin) and `Size`. Clients that only read use shared memory instead;
//! these serve `rtmctl show`, `status` and the kernel mirror.

use actix::prelude::*;
use rtm_proto::shm::TableWriter;
use rtm_proto::wire::Failure;
use rtm_proto::Origin;

use super::{TableActor, TableRecord};
use crate::restart::guarded;

/// Entries in key order, all of them or the one with `key`; with `origin`, only those that
/// origin put there (the kernel mirror reconciles its dumps against the kernel's).
pub struct Show<R: TableRecord> {
    pub key: Option<R::Key>,
    pub origin: Option<Origin>,
}

impl<R: TableRecord> Show<R> {
    /// All entries (`None`) or the one with `key`, whatever their origin.
    pub fn of(key: Option<R::Key>) -> Self {
        Show { key, origin: None }
    }
}

impl<R: TableRecord> Message for Show<R> {
    type Result = Result<Vec<R>, Failure>;
}

impl<R: TableRecord> Handler<Show<R>> for TableActor<R> {
    type Result = MessageResult<Show<R>>;

    fn handle(&mut self, msg: Show<R>, ctx: &mut Context<Self>) -> Self::Result {
        let out = guarded(self, ctx, |act, _| {
            let Some(shm) = act.shm.as_ref() else {
                return Err(Failure::ShuttingDown);
            };
            // The file counts its entries per origin: none of that origin, nothing to read.
            if msg.origin.is_some_and(|o| shm.len_of(o) == 0) {
                return Ok(Vec::new());
            }
            let wanted = |e: &R| msg.origin.is_none_or(|o| e.origin() == o);
            Ok(match msg.key {
                Some(k) => shm
                    .get(&k)
                    .map(|v| v.entry)
                    .filter(wanted)
                    .into_iter()
                    .collect(),
                // Shared memory gives them in key order.
                None => shm
                    .entries()
                    .into_iter()
                    .map(|v| v.entry)
                    .filter(wanted)
                    .collect(),
            })
        });
        MessageResult(out.unwrap_or_else(|| Err(Self::crashed())))
    }
}

/// Size and capacity.
#[derive(Message)]
#[rtype(result = "Result<TableSize, Failure>")]
pub struct Size;

#[derive(Debug, Clone, Copy)]
pub struct TableSize {
    pub len: u64,
    pub capacity: u64,
}

impl<R: TableRecord> Handler<Size> for TableActor<R> {
    type Result = Result<TableSize, Failure>;

    fn handle(&mut self, _: Size, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, |act, _| TableSize {
            len: act.shm.as_ref().map_or(0, |shm| shm.len()) as u64,
            capacity: act.capacity as u64,
        })
        .ok_or_else(Self::crashed)
    }
}

impl<R: TableRecord> TableActor<R> {
    /// The entry with `key` (None also once the table is retired).
    pub fn get(&self, key: &R::Key) -> Option<R> {
        self.shm.as_ref()?.get(key).map(|v| v.entry)
    }

    /// The table's shared-memory writer (None once retired).
    pub(super) fn shm(&self) -> Option<&rtm_proto::shm::ShmWriter<R>> {
        self.shm.as_ref()
    }
}
