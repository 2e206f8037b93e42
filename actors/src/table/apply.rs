//! Changing a table: `Apply` stages each operation against the table (and the request's earlier
//! operations), commits them all to the journal at once, writes them to shared memory, and hands
//! the resulting events to the subscribers.

use std::collections::HashMap;

use actix::prelude::*;
use rtm_proto::shm::{Planned, Record, TableWriter, Versioned};
use rtm_proto::wire::{ChangeOp, Event, Failure, PanicPoint};
use tracing::{error, warn};

use super::{shm_refusal, TableActor, TableError, TableRecord};
use crate::counters::Counters;
use crate::journal::JournalError;
use crate::restart::{self, catch_panic};

/// Operations whose memory [`TableActor::warm`] loads together before staging them.
const WARM_AHEAD: usize = 16;

/// One mutation of a table.
#[derive(Debug, Clone)]
pub enum TableOp<R: Record> {
    /// Create; fails if the key exists.
    Add(R),
    /// Update; fails if the key is absent.
    Change(R),
    /// Create or update.
    Replace(R),
    /// Delete; fails if the key is absent.
    Del(R::Key),
    /// Empty the table.
    Flush,
}

impl<R: Record> TableOp<R> {
    /// The key the operation writes (none for a flush).
    fn key(&self) -> Option<R::Key> {
        match self {
            TableOp::Add(r) | TableOp::Change(r) | TableOp::Replace(r) => Some(r.key()),
            TableOp::Del(key) => Some(*key),
            TableOp::Flush => None,
        }
    }
}

/// What one staged operation does, in the order of the request.
pub(super) enum Effect<R: Record> {
    /// The entry as written; `bool`: the key existed before.
    Put(R, u64, bool),
    Del(R::Key, u64),
    Flush(u64),
}

impl<R: Record> Effect<R> {
    /// The key the effect writes (none for a flush).
    fn key(&self) -> Option<R::Key> {
        match self {
            Effect::Put(rec, ..) => Some(rec.key()),
            Effect::Del(key, _) => Some(*key),
            Effect::Flush(_) => None,
        }
    }
}

/// What the operations staged so far in one request did to the table, which shared memory does
/// not show yet: validation of the next operation looks here first.
struct Staged<R: Record> {
    /// Keys the staged operations created (true) or deleted (false).
    keys: HashMap<R::Key, bool, foldhash::fast::RandomState>,
    /// A staged flush emptied the table: keys not in `keys` are absent.
    flushed: bool,
    /// Live entries after the staged operations.
    live: usize,
}

/// `entries` with `effects` applied on top, in order (unique keys, order unspecified).
pub(super) fn with_effects<R: Record>(
    entries: Vec<Versioned<R>>,
    effects: impl IntoIterator<Item = impl std::borrow::Borrow<Effect<R>>>,
) -> Vec<Versioned<R>> {
    let mut effects = effects.into_iter().peekable();
    if effects.peek().is_none() {
        return entries;
    }
    let mut map: HashMap<R::Key, Versioned<R>> =
        entries.into_iter().map(|v| (v.entry.key(), v)).collect();
    for e in effects {
        match *e.borrow() {
            Effect::Put(ref rec, seq, _) => {
                map.insert(
                    rec.key(),
                    Versioned {
                        entry: rec.clone(),
                        seq,
                    },
                );
            }
            Effect::Del(key, _) => {
                map.remove(&key);
            }
            Effect::Flush(_) => map.clear(),
        }
    }
    map.into_values().collect()
}

/// Apply operations in order. Without `force`, stop at the first failure.
#[derive(Message)]
#[rtype(result = "ApplyOutcome")]
pub struct Apply<R: Record + Send> {
    pub ops: Vec<TableOp<R>>,
    pub force: bool,
}

#[derive(Debug, Default)]
pub struct ApplyOutcome {
    pub applied: u32,
    /// (index in `ops`, why)
    pub failures: Vec<(u32, Failure)>,
    /// Sequence number of the last applied change (0 if none).
    pub last_seq: u64,
    /// Whether the table was flushed.
    pub flushed: bool,
}

impl<R: TableRecord> Handler<Apply<R>> for TableActor<R> {
    type Result = MessageResult<Apply<R>>;

    fn handle(&mut self, msg: Apply<R>, ctx: &mut Context<Self>) -> Self::Result {
        let (outcome, crashed) = self.apply(msg);
        if let Some(why) = crashed {
            restart::failed(self, ctx, &why);
        }
        MessageResult(outcome)
    }
}

impl<R: TableRecord> TableActor<R> {
    /// Applies the operations in order: each is validated against the table (as the earlier
    /// ones leave it), then all of them are made durable together (one journal commit), then
    /// written to shared memory and announced. A change is thus visible nowhere before it is
    /// durable, and a refused change touches nothing.
    ///
    /// Each op is guarded on its own: if one panics, the ones before it stay applied *and
    /// announced*, the reply says exactly that, and the failure is returned so that the caller
    /// stops the actor for a restart. If the journal cannot take the batch, none of it is
    /// applied.
    fn apply(&mut self, msg: Apply<R>) -> (ApplyOutcome, Option<String>) {
        let mut out = ApplyOutcome::default();
        let mut effects = Vec::with_capacity(msg.ops.len());
        let mut staged = Staged {
            keys: HashMap::with_capacity_and_hasher(msg.ops.len(), Default::default()),
            flushed: false,
            live: self.shm.as_ref().map_or(0, |shm| shm.len()),
        };
        let seq_before = self.seq;
        let mut crashed = None;
        for (i, op) in msg.ops.iter().enumerate() {
            if i % WARM_AHEAD == 0 {
                self.warm(&msg.ops[i..msg.ops.len().min(i + WARM_AHEAD)]);
            }
            match catch_panic(|| self.stage_one(op, &mut staged)) {
                Ok(Ok(effect)) => {
                    if let Effect::Flush(_) = effect {
                        out.flushed = true;
                    }
                    effects.push(effect);
                }
                Ok(Err(f)) => {
                    out.failures.push((i as u32, f));
                    if !msg.force {
                        break;
                    }
                }
                Err(why) => {
                    let f = Failure::Internal(format!("{} table actor failed: {why}", R::TABLE));
                    out.failures.push((i as u32, f));
                    crashed = Some(why);
                    break;
                }
            }
        }
        if effects.is_empty() {
            return (out, crashed);
        }
        // Shared memory makes room for all of it first: a table file that cannot grow (a full
        // shm file system) refuses the request here, before anything is durable or visible.
        if let Err(e) = self.reserve(&effects) {
            warn!(table = %R::TABLE, "{} changes refused: {e}", effects.len());
            self.seq = seq_before;
            out.flushed = false;
            out.failures.clear();
            out.failures.push((0, shm_refusal(R::TABLE, e)));
            return (out, crashed);
        }
        if let Err(why) = self.commit(&effects) {
            error!(table = %R::TABLE, "journal commit failed, {} changes not applied: {why}", effects.len());
            // Nothing was written anywhere: only the sequence numbers go back.
            self.seq = seq_before;
            out.flushed = false;
            // The journal refuses further commits until the actor recompacts it on restart.
            let f = Failure::Internal(format!("cannot make the change durable: {why}"));
            out.failures.clear();
            out.failures.push((0, f));
            return (out, Some(format!("journal commit failed: {why}")));
        }
        out.applied = effects.len() as u32;
        self.unpublished.extend(effects);
        // A panic here leaves the rest of the (durable) request in `unpublished` for the
        // restart; the reply still says what was applied.
        let published = match catch_panic(|| self.publish_effects()) {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        match published {
            Ok(events) => {
                out.last_seq = self.seq;
                Counters::bump_by(&self.health.counters.changes, events.len() as u64);
                self.publish(events.into());
            }
            Err(why) => {
                // Durable, but shared memory is behind: the restart writes what is left,
                // republishes and resyncs every subscriber.
                out.last_seq = self.seq;
                crashed.get_or_insert(format!("shared memory write failed: {why}"));
            }
        }
        (out, crashed)
    }

    /// Validates one operation against the table as the request's earlier operations left it,
    /// and notes what it does. Nothing is written.
    fn stage_one(&mut self, op: &TableOp<R>, st: &mut Staged<R>) -> Result<Effect<R>, Failure> {
        let table = R::TABLE;
        let seq = self.seq + 1;
        let shm = self.shm.as_ref().ok_or(Failure::ShuttingDown)?;
        let exists = |key: &R::Key| match st.keys.get(key) {
            Some(&present) => present,
            None => !st.flushed && shm.contains(key),
        };
        let (rec, must_exist) = match *op {
            TableOp::Flush => {
                st.keys.clear();
                st.flushed = true;
                st.live = 0;
                self.seq = seq;
                return Ok(Effect::Flush(seq));
            }
            TableOp::Del(key) => {
                if !exists(&key) {
                    return Err(Failure::NotFound {
                        table,
                        key: key.to_string(),
                    });
                }
                st.keys.insert(key, false);
                st.live -= 1;
                self.seq = seq;
                return Ok(Effect::Del(key, seq));
            }
            TableOp::Add(ref r) => (r, Some(false)),
            TableOp::Change(ref r) => (r, Some(true)),
            TableOp::Replace(ref r) => (r, None),
        };
        rec.validate()?;
        let key = rec.key();
        let existed = exists(&key);
        match (must_exist, existed) {
            (Some(false), true) => {
                return Err(Failure::Exists {
                    table,
                    key: key.to_string(),
                })
            }
            (Some(true), false) => {
                return Err(Failure::NotFound {
                    table,
                    key: key.to_string(),
                })
            }
            _ => {}
        }
        if !existed {
            if st.live >= self.capacity {
                return Err(Failure::Full {
                    table,
                    capacity: self.capacity as u64,
                    key: key.to_string(),
                });
            }
            st.live += 1;
        }
        st.keys.insert(key, true);
        self.seq = seq;
        Ok(Effect::Put(rec.clone(), seq, existed))
    }

    /// Prefetches what the next operations will touch in shared memory (each key's home slot,
    /// and for routes the LPM word) back to back, before they are staged one by one. In a table
    /// of a million entries each of those is a cache and TLB miss; issued together, the misses
    /// of a group overlap instead of following one another.
    fn warm(&self, ops: &[TableOp<R>]) {
        let Some(shm) = &self.shm else { return };
        for key in ops.iter().filter_map(TableOp::key) {
            shm.prefetch(&key);
        }
    }

    /// Makes room in shared memory for the staged effects.
    fn reserve(&mut self, effects: &[Effect<R>]) -> Result<(), rtm_proto::shm::ShmError> {
        let Some(shm) = self.shm.as_mut() else {
            return Ok(());
        };
        shm.reserve(effects.iter().map(|e| match e {
            Effect::Put(rec, ..) => Planned::Put(rec),
            Effect::Del(key, _) => Planned::Del(key),
            Effect::Flush(_) => Planned::Flush,
        }))
    }

    /// Makes the staged effects durable (one journal commit for all of them).
    fn commit(&mut self, effects: &[Effect<R>]) -> Result<(), JournalError> {
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let staged: Result<(), JournalError> = effects.iter().try_for_each(|e| match *e {
            Effect::Put(ref rec, seq, _) => journal.stage_put(seq, rec),
            Effect::Del(key, seq) => journal.stage_del(seq, &key),
            Effect::Flush(seq) => journal.stage_flush(seq),
        });
        staged.and_then(|()| journal.commit()).inspect_err(|_| {
            journal.discard();
            self.journal_broken = true;
        })
    }

    /// Writes the committed effects in `unpublished` to shared memory, in order, turning each
    /// into its event. An effect leaves `unpublished` only once it is written, so after a
    /// failure (returned, or a panic) the restart writes the rest.
    fn publish_effects(&mut self) -> Result<Vec<Event>, TableError> {
        let table = R::TABLE;
        let mut events = Vec::with_capacity(self.unpublished.len());
        let shm = self.shm.as_mut().ok_or(TableError::Retired(table))?;
        while let Some(e) = self.unpublished.front() {
            // The staging pass loaded this memory too, but a large request has evicted it
            // since: load the next operations' slots and LPM words together again.
            if events.len() % WARM_AHEAD == 0 {
                for key in self
                    .unpublished
                    .iter()
                    .take(WARM_AHEAD)
                    .filter_map(Effect::key)
                {
                    shm.prefetch(&key);
                }
            }
            events.push(match *e {
                Effect::Flush(seq) => {
                    shm.clear(seq);
                    Event::Flush { table, seq }
                }
                Effect::Del(key, seq) => {
                    shm.remove(&key, seq);
                    Event::Change {
                        table,
                        op: ChangeOp::Delete,
                        key: R::wire_key(key),
                        seq,
                    }
                }
                Effect::Put(ref rec, seq, existed) => {
                    shm.upsert(rec, seq)?;
                    Event::Change {
                        table,
                        op: if existed {
                            ChangeOp::Update
                        } else {
                            ChangeOp::Create
                        },
                        key: R::wire_key(rec.key()),
                        seq,
                    }
                }
            });
            self.unpublished.pop_front();
            if events.len() == 1 && !self.unpublished.is_empty() {
                self.faults.trip(PanicPoint::Publish);
            }
        }
        shm.set_table_seq(self.seq);
        Ok(events)
    }
}
