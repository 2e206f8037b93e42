//! The table actor: sole owner and writer of one table.
//!
//! A `TableActor<R>` holds the shared-memory writer of its table, the table's sequence counter,
//! the journal (with `--state-dir`) and the sessions subscribed to it. The table file the actor
//! writes is the authoritative copy: only this actor writes it, clients map it read-only, and
//! the daemon keeps no second copy in its heap (a million routes would cost ~120 MB more).
//! Every mutation runs in this order: validate against the table (plus the request's own
//! earlier operations), make durable (one journal commit), write shared memory, then notify
//! subscribers — so a change is durable before it is visible and in shared memory before anyone
//! hears of it, and a refused change touches nothing.
//!
//! [`crate::route_table`] and [`crate::arp_table`] instantiate it for routes and neighbours.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rtm_proto::shm::{Record, ShmWriter, Versioned};
use rtm_proto::wire::{ChangeOp, Event, Failure, Key, PanicPoint, Table};
use tracing::{error, info, warn};

use crate::faults::Faults;
use crate::health::{catch_panic, ActorKind, Counters, Health};
use crate::journal::{Journal, JournalError, Recovered};
use crate::supervision::{self, guarded, Restartable};

/// What one staged operation does, in the order of the request.
enum Effect<R: Record> {
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
fn with_effects<R: Record>(
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

/// Operations whose memory [`TableActor::warm`] loads together before staging them.
const WARM_AHEAD: usize = 16;

/// How often a table does its housekeeping.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// What a table needs beyond its shared-memory record format.
pub trait TableRecord:
    Record + Send + Unpin + serde::Serialize + serde::de::DeserializeOwned + 'static
where
    Self::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    const TABLE: Table;
    const ACTOR: ActorKind;
    fn wire_key(key: Self::Key) -> Key;
    /// Checks what the wire format cannot express.
    fn validate(&self) -> Result<(), Failure> {
        Ok(())
    }
}

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

/// Notifications for a subscriber, shared by all subscribers of one batch.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Notify(pub Arc<[Event]>);

/// Apply operations in order. Without `force`, stop at the first failure.
#[derive(Message)]
#[rtype(result = "ApplyOutcome")]
pub struct Apply<R: Record + Send>
where
    R::Key: Send,
{
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

/// Entries in key order, all of them or the one with `key`.
pub struct Show<R: Record + Send + 'static>
where
    R::Key: Send,
{
    pub key: Option<R::Key>,
}

impl<R: Record + Send + 'static> Message for Show<R>
where
    R::Key: Send,
{
    type Result = Result<Vec<R>, Failure>;
}

/// Subscribe `to` to this table. The subscriber first receives `Event::Start` with the current
/// sequence number, then every later change.
#[derive(Message)]
#[rtype(result = "Result<(), Failure>")]
pub struct Subscribe {
    pub session: u64,
    pub to: Recipient<Notify>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub session: u64,
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

/// Clean stop: remove the shared-memory file (or keep it, for a warm restart).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire {
    pub keep_shm: bool,
}

pub struct TableActor<R: TableRecord>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    /// The table: the authoritative copy (None once retired at a clean stop).
    shm: Option<ShmWriter<R>>,
    /// Committed (durable) effects not yet written to shared memory. Empty between requests
    /// unless writing failed or panicked; then the restart writes them before republishing.
    unpublished: VecDeque<Effect<R>>,
    capacity: usize,
    seq: u64,
    subscribers: HashMap<u64, Recipient<Notify>>,
    health: Arc<Health>,
    faults: Faults,
    /// The durable copy (`--state-dir`), if any.
    journal: Option<Journal<R>>,
    /// A journal commit failed: the journal refuses commits until it is compacted again.
    journal_broken: bool,
}

// ===== impl TableActor =====

impl<R: TableRecord> TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    pub fn new(shm: ShmWriter<R>, health: Arc<Health>) -> Self {
        TableActor {
            capacity: shm.capacity(),
            shm: Some(shm),
            unpublished: VecDeque::new(),
            seq: 0,
            subscribers: HashMap::new(),
            health,
            faults: Faults::default(),
            journal: None,
            journal_broken: false,
        }
    }

    /// A table restored from its journal: the recovered entries are published to shared
    /// memory, and every later change goes through the journal first.
    pub fn durable(
        mut shm: ShmWriter<R>,
        health: Arc<Health>,
        journal: Journal<R>,
        recovered: Recovered<R>,
    ) -> Result<Self, rtm_proto::shm::ShmError> {
        for v in recovered.entries.values() {
            shm.upsert(&v.entry, v.seq)?;
        }
        shm.set_table_seq(recovered.seq);
        let mut t = TableActor::new(shm, health);
        t.seq = recovered.seq;
        t.journal = Some(journal);
        Ok(t)
    }

    /// The answer a caller gets when this actor failed while handling its message.
    pub fn crashed() -> Failure {
        Failure::Internal(format!(
            "the {} table actor failed and is being restarted; retry",
            R::TABLE
        ))
    }

    /// Periodic work (and a point where tests can inject a panic): compacts a grown journal.
    fn housekeeping(&mut self) {
        self.faults.trip(PanicPoint::Interval);
        if self.journal.as_ref().is_some_and(|j| j.needs_compaction()) {
            self.compact_journal();
        }
    }

    /// Rewrites the snapshot from the authoritative copy and starts an empty journal.
    fn compact_journal(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let Some(shm) = self.shm.as_ref() else {
            return;
        };
        // Committed changes still on their way to shared memory must be in the snapshot.
        let entries = with_effects(shm.entries(), self.unpublished.iter());
        match journal.compact(entries.iter(), self.seq) {
            Ok(()) => {
                self.journal_broken = false;
                info!(table = %R::TABLE, entries = entries.len(), "journal compacted");
            }
            Err(e) => error!(table = %R::TABLE, "journal compaction failed: {e}"),
        }
    }

    fn key_text(key: R::Key) -> String {
        key.to_string()
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
                        key: Self::key_text(key),
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
                    key: Self::key_text(key),
                })
            }
            (Some(true), false) => {
                return Err(Failure::NotFound {
                    table,
                    key: Self::key_text(key),
                })
            }
            _ => {}
        }
        if !existed {
            if st.live >= self.capacity {
                return Err(Failure::Full {
                    table,
                    capacity: self.capacity as u64,
                    key: Self::key_text(key),
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

    /// Makes the staged effects durable (one journal commit for all of them).
    fn commit(&mut self, effects: &[Effect<R>]) -> Result<(), String> {
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        let staged: Result<(), JournalError> = effects.iter().try_for_each(|e| match *e {
            Effect::Put(ref rec, seq, _) => journal.stage_put(seq, rec),
            Effect::Del(key, seq) => journal.stage_del(seq, &key),
            Effect::Flush(seq) => journal.stage_flush(seq),
        });
        match staged.and_then(|()| journal.commit()) {
            Ok(()) => Ok(()),
            Err(e) => {
                journal.discard();
                self.journal_broken = true;
                Err(e.to_string())
            }
        }
    }

    /// Writes the committed effects in `unpublished` to shared memory, in order, turning each
    /// into its event. An effect leaves `unpublished` only once it is written, so after a
    /// failure (returned, or a panic) the restart writes the rest.
    fn publish_effects(&mut self) -> Result<Vec<Event>, String> {
        let table = R::TABLE;
        let mut events = Vec::with_capacity(self.unpublished.len());
        let shm = self
            .shm
            .as_mut()
            .ok_or_else(|| format!("{table} table is retired"))?;
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
                    shm.upsert(rec, seq).map_err(|e| e.to_string())?;
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
        match catch_panic(|| self.publish_effects()).unwrap_or_else(Err) {
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

    /// Sends one batch of events to every live subscriber, forgetting the gone ones.
    fn publish(&mut self, events: Arc<[Event]>) {
        self.subscribers.retain(|_, to| {
            if !to.connected() {
                return false;
            }
            to.do_send(Notify(events.clone()));
            true
        });
    }

    /// Rewrites shared memory under a new generation from its own slots plus the committed
    /// effects that were not written yet, so that whatever the failure left half-done (an LPM
    /// word, a request's tail) is whole again.
    fn repair(&mut self) {
        let seq = self.seq;
        match self.shm.as_mut() {
            Some(shm) => {
                match shm.republish(with_effects(shm.entries(), self.unpublished.drain(..))) {
                    Ok(()) => {
                        shm.set_table_seq(seq);
                        info!(table = %R::TABLE, generation = shm.generation(), "shared memory republished");
                    }
                    Err(e) => error!(table = %R::TABLE, "cannot republish shared memory: {e}"),
                }
            }
            None => warn!(table = %R::TABLE, "restarted after retirement; nothing to repair"),
        }
    }
}

impl<R: TableRecord> Actor for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Runs again after every restart: the old interval went with the stopped context.
        ctx.run_interval(HOUSEKEEPING, |act, ctx| {
            guarded(act, ctx, |act, _| act.housekeeping());
        });
    }
}

impl<R: TableRecord> Restartable for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    const KIND: ActorKind = R::ACTOR;

    fn health(&self) -> &Health {
        &self.health
    }
}

impl<R: TableRecord> Supervised for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // A panic here stops the actor again (another restart, counted against the budget).
        guarded(self, ctx, |act, _| {
            act.faults.trip(PanicPoint::Restart);
            if act.journal_broken {
                act.compact_journal();
            }
            act.repair();
            // A reader may have seen what the failure left in shared memory: have every
            // subscriber re-read the repaired table.
            let resync = Event::Resync {
                table: R::TABLE,
                seq: act.seq,
            };
            act.publish(Arc::from([resync]));
        });
    }
}

impl<R: TableRecord> Handler<Apply<R>> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = MessageResult<Apply<R>>;

    fn handle(&mut self, msg: Apply<R>, ctx: &mut Context<Self>) -> Self::Result {
        let (outcome, crashed) = self.apply(msg);
        if let Some(why) = crashed {
            supervision::failed(self, ctx, &why);
        }
        MessageResult(outcome)
    }
}

impl<R: TableRecord> Handler<Show<R>> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = MessageResult<Show<R>>;

    fn handle(&mut self, msg: Show<R>, ctx: &mut Context<Self>) -> Self::Result {
        let out = guarded(self, ctx, |act, _| {
            let Some(shm) = act.shm.as_ref() else {
                return Err(Failure::ShuttingDown);
            };
            Ok(match msg.key {
                Some(k) => shm.get(&k).map(|v| v.entry).into_iter().collect(),
                None => {
                    let mut all: Vec<R> = shm.entries().into_iter().map(|v| v.entry).collect();
                    all.sort_unstable_by_key(|r| r.key());
                    all
                }
            })
        });
        MessageResult(out.unwrap_or_else(|| Err(Self::crashed())))
    }
}

impl<R: TableRecord> Handler<Subscribe> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, |act, _| {
            // Start goes through the same mailbox as the changes that follow it, so the
            // subscriber sees it first and nothing between.
            msg.to.do_send(Notify(Arc::from([Event::Start {
                table: R::TABLE,
                seq: act.seq,
            }])));
            act.subscribers.insert(msg.session, msg.to);
        })
        .ok_or_else(Self::crashed)
    }
}

impl<R: TableRecord> Handler<Unsubscribe> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| act.subscribers.remove(&msg.session));
    }
}

impl<R: TableRecord> Handler<Size> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = Result<TableSize, Failure>;

    fn handle(&mut self, _: Size, ctx: &mut Context<Self>) -> Self::Result {
        guarded(self, ctx, |act, _| TableSize {
            len: act.shm.as_ref().map_or(0, |shm| shm.len()) as u64,
            capacity: act.capacity as u64,
        })
        .ok_or_else(Self::crashed)
    }
}

impl<R: TableRecord> Handler<Retire> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = ();

    fn handle(&mut self, msg: Retire, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, _| {
            if let Some(shm) = act.shm.take() {
                let path = shm.path().to_path_buf();
                if msg.keep_shm {
                    info!(table = %R::TABLE, path = %path.display(), "shared memory kept");
                } else if let Err(e) = shm.remove_file() {
                    warn!(table = %R::TABLE, path = %path.display(), "cannot remove shared memory: {e}");
                }
            }
        });
    }
}

impl<R: TableRecord> TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    /// The entry with `key` (None also once the table is retired).
    pub fn get(&self, key: &R::Key) -> Option<R> {
        self.shm.as_ref()?.get(key).map(|v| v.entry)
    }
}

#[cfg(feature = "fault-injection")]
impl<R: TableRecord> Handler<crate::faults::Inject> for TableActor<R>
where
    R::Key: Send + Unpin + serde::Serialize + serde::de::DeserializeOwned,
{
    type Result = Result<(), Failure>;

    fn handle(&mut self, msg: crate::faults::Inject, ctx: &mut Context<Self>) -> Self::Result {
        use rtm_proto::wire::DebugAction;
        if let DebugAction::Panic {
            point: PanicPoint::Publish,
            ..
        } = msg.0
        {
            self.faults.arm(PanicPoint::Publish);
            return Ok(());
        }
        crate::faults::inject(self, msg.0, ctx, false, |act| &mut act.faults)
    }
}
