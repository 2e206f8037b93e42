//! Changing a table: `Apply` stages each operation against the table (and the request's earlier
//! operations, [`super::stage`]), makes room for them in shared memory, commits them all to the
//! journal at once, writes them to shared memory, and hands the resulting events to the
//! subscribers.
//!
//! When shared memory has no room for a whole request (a full file system), the longest run of
//! its operations that fits is applied first, which frees the lines its changes replaced, and
//! the rest follows in parts as large as fit. An operation that does not fit even alone is
//! refused like any failing operation: without `force` the request stops there; with it the
//! rest are tried.

use std::ops::Range;

use actix::prelude::*;
use rtm_proto::shm::{Planned, Record, ShmError, TableWriter};
use rtm_proto::wire::{ChangeOp, Event, Failure, PanicPoint};
use tracing::{error, info, warn};

use super::stage::{Effect, Staged, TableOp, WARM_AHEAD};
use super::{shm_refusal, TableActor, TableError, TableRecord};
use crate::counters::Counters;
use crate::journal::JournalError;
use crate::restart::{self, catch_panic};

/// Apply operations in order. Without `force`, stop at the first failure. Without
/// `overriding`, an operation that would change or remove an entry of another origin than rtm
/// (the kernel's) fails with [`Failure::Owned`].
#[derive(Message)]
#[rtype(result = "ApplyOutcome")]
pub struct Apply<R: Record + Send> {
    pub ops: Vec<TableOp<R>>,
    pub force: bool,
    pub overriding: bool,
}

impl<R: Record + Send> Apply<R> {
    pub fn new(ops: Vec<TableOp<R>>, force: bool, overriding: bool) -> Self {
        Apply {
            ops,
            force,
            overriding,
        }
    }
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

/// How one part of a request ended.
enum PartEnd {
    /// Every operation of the part was tried; the request goes on unless one failed without
    /// `force`.
    Through { stopped: bool },
    /// Shared memory had room for the first `fitted` operations' effects only: they are
    /// applied, and the request goes on from `next`, the first that did not fit.
    Fitted { fitted: usize, next: usize },
    /// Shared memory had no room for the first operation's effect, with everything before it
    /// applied: it is refused; the request goes on (with `force`) from `next`.
    NoRoom { next: usize },
    /// The actor must restart; the request ends here.
    Crashed(String),
}

impl<R: TableRecord> TableActor<R> {
    /// Applies the operations in order: each is validated against the table (as the earlier
    /// ones leave it), then all of them are made durable together (one journal commit), then
    /// written to shared memory and announced. A change is thus visible nowhere before it is
    /// durable, and a refused change touches nothing.
    ///
    /// Each op is guarded on its own: if one panics, the ones before it stay applied *and
    /// announced*, the reply says exactly that, and the failure is returned so that the caller
    /// stops the actor for a restart. If the journal cannot take the batch (a full state
    /// disk), none of it is applied, the request ends with that failure, and the actor goes
    /// on: no restart.
    fn apply(&mut self, msg: Apply<R>) -> (ApplyOutcome, Option<String>) {
        let mut out = ApplyOutcome::default();
        if self.journal_broken {
            // A failed sync left the journal refusing commits: rewrite it from the table
            // first (this fails again while the disk is full, and the commit says so).
            self.compact_journal();
        }
        let n = msg.ops.len();
        let (mut from, mut window) = (0, n);
        while from < n {
            let to = n.min(from + window);
            match self.apply_part(&msg, from..to, &mut out) {
                PartEnd::Through { stopped: true } => break,
                PartEnd::Through { stopped: false } => {
                    from = to;
                    window = window.saturating_mul(2);
                }
                PartEnd::Fitted { fitted, next } => {
                    // Space is short: go on in parts about as large as what fitted.
                    from = next;
                    window = fitted;
                }
                PartEnd::NoRoom { .. } if !msg.force => break,
                PartEnd::NoRoom { next } => {
                    from = next;
                    window = 1;
                }
                PartEnd::Crashed(why) => return (out, Some(why)),
            }
        }
        (out, None)
    }

    /// Stages, reserves, commits and publishes `msg.ops[part]`, adding to `out`.
    fn apply_part(
        &mut self,
        msg: &Apply<R>,
        part: Range<usize>,
        out: &mut ApplyOutcome,
    ) -> PartEnd {
        let (ops, force) = (&msg.ops[..], msg.force);
        let failures_before = out.failures.len();
        let mut effects = Vec::with_capacity(part.len());
        // The index in `ops` of each effect.
        let mut index = Vec::with_capacity(part.len());
        let mut staged = Staged {
            keys: Default::default(),
            flushed: false,
            live: self.shm.as_ref().map_or(0, |shm| shm.len()),
        };
        let seq_before = self.seq;
        let mut crashed = None;
        let mut stopped = false;
        for i in part.clone() {
            if (i - part.start) % WARM_AHEAD == 0 {
                self.warm(&ops[i..part.end.min(i + WARM_AHEAD)]);
            }
            match catch_panic(|| self.stage_one(&ops[i], &mut staged, msg.overriding)) {
                Ok(Ok(effect)) => {
                    effects.push(effect);
                    index.push(i);
                }
                Ok(Err(f)) => {
                    out.failures.push((i as u32, f));
                    if !force {
                        stopped = true;
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
        let mut end = PartEnd::Through { stopped };
        if effects.is_empty() {
            return crashed.map_or(end, PartEnd::Crashed);
        }
        // Shared memory makes room for all of it first: a table file that cannot grow (a full
        // shm file system) refuses here, before anything is durable or visible.
        if let Err(e) = self.reserve(&effects) {
            let fitted = self.fitting(&effects);
            // What was staged from the first operation that does not fit on is staged again
            // in the next part (or not at all): its verdicts go.
            let next = index[fitted];
            let before: Vec<_> = out
                .failures
                .drain(failures_before..)
                .filter(|&(i, _)| (i as usize) < next)
                .collect();
            out.failures.extend(before);
            self.seq = seq_before + fitted as u64;
            crashed = None;
            if fitted == 0 {
                // Not even the first one fits, with everything before it applied: refused.
                warn!(table = %R::TABLE, "change refused: {e}");
                out.failures.push((next as u32, shm_refusal(R::TABLE, e)));
                return PartEnd::NoRoom { next: next + 1 };
            }
            // The ones that fit go in now; the lines they free make room for the rest.
            effects.truncate(fitted);
            end = PartEnd::Fitted { fitted, next };
        }
        if let Err(why) = self.commit(&effects) {
            error!(table = %R::TABLE, "journal commit failed, {} changes not applied: {why}", effects.len());
            // Nothing was written anywhere: the sequence numbers go back, except those the
            // journal may still hold (a failed sync), which are never handed out again.
            let floor = self.journal.as_ref().map_or(0, |j| j.seq_floor());
            self.seq = seq_before.max(floor);
            // The whole part is refused and the request ends here; the table and the actor
            // stay as they were, and the next request commits as soon as the disk has room
            // (after recompacting a poisoned journal first).
            let f = Failure::Internal(format!("cannot make the change durable: {why}"));
            out.failures.truncate(failures_before);
            out.failures.push((index[0] as u32, f));
            return crashed.map_or(PartEnd::Through { stopped: true }, PartEnd::Crashed);
        }
        out.applied += effects.len() as u32;
        out.flushed |= effects.iter().any(|e| matches!(e, Effect::Flush(_)));
        self.unpublished.extend(effects);
        // A panic here leaves the rest of the (durable) request in `unpublished` for the
        // restart; the reply still says what was applied.
        let published = match catch_panic(|| self.publish_effects()) {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        out.last_seq = self.seq;
        self.note_size();
        match published {
            Ok(events) => {
                Counters::bump_by(&self.health.counters.changes, events.len() as u64);
                log_events(&events);
                self.publish(events.into());
            }
            Err(why) => {
                // Durable, but shared memory is behind: the restart writes what is left,
                // republishes and resyncs every subscriber.
                crashed.get_or_insert(format!("shared memory write failed: {why}"));
            }
        }
        crashed.map_or(end, PartEnd::Crashed)
    }

    /// How many of `effects`, from the first, shared memory has room for (fewer than all of
    /// them): found by halving, and left reserved.
    fn fitting(&mut self, effects: &[Effect<R>]) -> usize {
        let (mut fits, mut fails) = (0, effects.len());
        while fails - fits > 1 {
            let mid = fits + (fails - fits) / 2;
            if self.reserve(&effects[..mid]).is_ok() {
                fits = mid;
            } else {
                fails = mid;
            }
        }
        if fits > 0 && self.reserve(&effects[..fits]).is_err() {
            // Room went away between two tries (it does not: only this actor writes).
            return 0;
        }
        fits
    }

    /// Makes room in shared memory for the staged effects.
    fn reserve(&mut self, effects: &[Effect<R>]) -> Result<(), ShmError> {
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
        let counts = &self.health.journal;
        staged
            .and_then(|()| journal.commit())
            .inspect(|()| Counters::bump(&counts.commits))
            .inspect_err(|_| {
                Counters::bump(&counts.commit_failures);
                journal.discard();
                self.journal_broken = journal.is_poisoned();
            })
    }

    /// Writes the committed effects in `unpublished` to shared memory, in order, turning each
    /// into its event. They leave `unpublished` only once all are written, so after a failure
    /// (returned, or a panic) the restart writes them again over what shared memory holds.
    fn publish_effects(&mut self) -> Result<Vec<Event>, TableError> {
        let table = R::TABLE;
        let mut events = Vec::with_capacity(self.unpublished.len());
        let shm = self.shm.as_mut().ok_or(TableError::Retired(table))?;
        for (i, e) in self.unpublished.iter().enumerate() {
            // The staging pass loaded this memory too, but a large request has evicted it
            // since: load the next operations' slots and LPM words together again.
            if i % WARM_AHEAD == 0 {
                for key in self
                    .unpublished
                    .iter()
                    .skip(i)
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
                    shm.remove(&key, seq)?;
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
            if i == 0 && self.unpublished.len() > 1 {
                self.faults.trip(PanicPoint::Publish);
            }
        }
        // Only now: the writer may hold a batch's changes until its last one arrives, so until
        // then none of them is sure to be in shared memory.
        self.unpublished.clear();
        shm.set_table_seq(self.seq);
        Ok(events)
    }
}

/// One info line per flush, one debug line per change.
fn log_events(events: &[Event]) {
    let each_change = tracing::enabled!(tracing::Level::DEBUG);
    for e in events {
        match e {
            Event::Flush { table, seq } => info!(table = table.name(), seq, "table flushed"),
            Event::Change {
                table,
                op,
                key,
                seq,
            } if each_change => {
                tracing::debug!(table = table.name(), seq, op = op.name(), %key, "change")
            }
            _ => {}
        }
    }
}
