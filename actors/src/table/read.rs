//! Reading a table through its actor: `Show` (all entries in key order, or one), `OwnedBy`
//! (the entries of one origin) and `Size`. Clients that only read use shared memory instead;
//! these serve `rtmctl show`, `status` and the kernel mirror.

use actix::prelude::*;
use rtm_proto::shm::TableWriter;
use rtm_proto::wire::Failure;
use rtm_proto::Origin;

use super::{TableActor, TableRecord};
use crate::restart::guarded;

/// Entries in key order, all of them or the one with `key`.
pub struct Show<R: TableRecord> {
    pub key: Option<R::Key>,
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
            Ok(match msg.key {
                Some(k) => shm.get(&k).map(|v| v.entry).into_iter().collect(),
                // Shared memory gives them in key order.
                None => shm.entries().into_iter().map(|v| v.entry).collect(),
            })
        });
        MessageResult(out.unwrap_or_else(|| Err(Self::crashed())))
    }
}

/// The entries another origin than rtm put into the table (the kernel mirror's, which it
/// reconciles against the kernel's own after a restart of rtmd), in key order.
pub struct OwnedBy<R: TableRecord> {
    pub origin: Origin,
    _table: std::marker::PhantomData<R>,
}

impl<R: TableRecord> OwnedBy<R> {
    pub fn new(origin: Origin) -> Self {
        OwnedBy {
            origin,
            _table: std::marker::PhantomData,
        }
    }
}

impl<R: TableRecord> Message for OwnedBy<R> {
    type Result = Result<Vec<R>, Failure>;
}

impl<R: TableRecord> Handler<OwnedBy<R>> for TableActor<R> {
    type Result = MessageResult<OwnedBy<R>>;

    fn handle(&mut self, msg: OwnedBy<R>, ctx: &mut Context<Self>) -> Self::Result {
        let out = guarded(self, ctx, |act, _| {
            let Some(shm) = act.shm.as_ref() else {
                return Err(Failure::ShuttingDown);
            };
            if shm.len_of(msg.origin) == 0 {
                return Ok(Vec::new());
            }
            Ok(shm
                .entries()
                .into_iter()
                .map(|v| v.entry)
                .filter(|e| e.origin() == msg.origin)
                .collect())
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
