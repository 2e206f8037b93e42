//! The table actor: sole owner and writer of one table.
//!
//! A `TableActor<R>` holds the shared-memory writer of its table, the table's sequence counter,
//! the journal (with `--state-dir`) and the sessions subscribed to it. The table file the actor
//! writes is the authoritative copy: only this actor writes it, clients map it read-only, and
//! the daemon keeps no second copy in its heap. Every mutation runs in this order: validate
//! against the table (plus the request's own earlier operations), make durable (one journal
//! commit), write shared memory, then notify subscribers — so a change is durable before it is
//! visible and in shared memory before anyone hears of it, and a refused change touches nothing.
//!
//! - this file: the actor, its restart (repair of shared memory) and clean stop;
//! - [`stage`]: validating a request's operations against the table;
//! - [`apply`]: changing the table (`Apply`: stage, reserve, commit, publish);
//! - [`read`]: `Show` and `Size`;
//! - [`subscribers`]: who hears of each change (`Subscribe`, `Unsubscribe`, `Notify`);
//! - [`route`] / [`arp`]: the two tables, and longest-prefix match for routes.

pub mod apply;
pub mod arp;
pub mod neigh;
pub mod read;
pub mod route;
pub mod stage;
pub mod subscribers;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rtm_proto::shm::{ShmError, ShmWriter, TableWriter};
use rtm_proto::wire::{Event, Failure, Key, PanicPoint, Table};
use rtm_proto::Origin;
use tracing::{error, info, warn};

use crate::counters::{Counters, Health};
use crate::faults::Faults;
use crate::journal::{Journal, JournalEntry, JournalError};
use crate::restart::{guarded, ActorKind, RestartLog, Restartable};

pub use apply::{Apply, ApplyOutcome};
pub use read::{Show, Size, TableSize};
pub use stage::TableOp;
pub use subscribers::{Notify, Subscribe, Unsubscribe};

use stage::{with_effects, Effect};

/// How often a table does its housekeeping.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// What a table needs beyond its shared-memory record format.
pub trait TableRecord: JournalEntry + Send + Unpin + 'static {
    const TABLE: Table;
    const ACTOR: ActorKind;
    fn wire_key(key: Self::Key) -> Key;
    /// Checks what the wire format cannot express.
    fn validate(&self) -> Result<(), Failure> {
        Ok(())
    }
}

/// The refusal a client gets when shared memory cannot take a change.
pub fn shm_refusal(table: Table, e: ShmError) -> Failure {
    match e {
        ShmError::NoSpace { dir, .. } => Failure::NoSpace {
            table,
            dir: dir.display().to_string(),
        },
        e => Failure::Internal(format!("{table} table: {e}")),
    }
}

/// Why a committed change could not be written where it belongs.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error("{0} table is retired")]
    Retired(Table),
}

pub struct TableActor<R: TableRecord> {
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
    /// A journal sync failed: the journal refuses commits until it is compacted again (tried
    /// before the next request and at a restart).
    journal_broken: bool,
}

// ===== impl TableActor =====

impl<R: TableRecord> TableActor<R> {
    pub fn new(shm: ShmWriter<R>, health: Arc<Health>) -> Self {
        let t = TableActor {
            capacity: shm.capacity(),
            shm: Some(shm),
            unpublished: VecDeque::new(),
            seq: 0,
            subscribers: HashMap::new(),
            health,
            faults: Faults::default(),
            journal: None,
            journal_broken: false,
        };
        t.note_size();
        t
    }

    /// The first origin other than rtm that owns entries of this table, and how many (the
    /// table file counts them as it writes them).
    pub(crate) fn foreign(&self) -> Option<(Origin, usize)> {
        let shm = self.shm.as_ref()?;
        Origin::ALL[1..]
            .iter()
            .map(|&o| (o, shm.len_of(o)))
            .find(|&(_, n)| n > 0)
    }

    /// Records the table's size where `status` reads it.
    pub(crate) fn note_size(&self) {
        let sizes = &self.health.table_sizes[R::TABLE as usize];
        let len = self.shm.as_ref().map_or(0, |shm| shm.len()) as u64;
        sizes.len.store(len, std::sync::atomic::Ordering::Relaxed);
        sizes
            .capacity
            .store(self.capacity as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// A table restored from its journal: `shm` already holds what the journal recovered, up
    /// to sequence number `seq`, and every later change goes through the journal first.
    pub fn durable(shm: ShmWriter<R>, health: Arc<Health>, journal: Journal<R>, seq: u64) -> Self {
        health
            .journal
            .on
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut t = TableActor::new(shm, health);
        t.seq = seq;
        t.journal = Some(journal);
        t
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
                Counters::bump(&self.health.journal.compactions);
                info!(table = %R::TABLE, entries = entries.len(), "journal compacted");
            }
            Err(e) => {
                Counters::bump(&self.health.journal.compaction_failures);
                error!(table = %R::TABLE, "journal compaction failed: {e}")
            }
        }
    }

    /// Rewrites shared memory under a new generation from its own slots plus the committed
    /// effects that were not written yet, so that whatever the failure left half-done (an LPM
    /// word, a request's tail) is whole again.
    fn repair(&mut self) {
        let seq = self.seq;
        crate::faults::stall_before_publish(R::TABLE.name());
        match self.shm.as_mut() {
            Some(shm) => {
                match shm.republish(with_effects(shm.entries(), self.unpublished.iter())) {
                    Ok(()) => {
                        self.unpublished.clear();
                        shm.set_table_seq(seq);
                        info!(table = %R::TABLE, generation = shm.generation(), "shared memory republished");
                    }
                    // The committed changes stay queued: the next change writes them first, and
                    // the next restart tries again.
                    Err(e) => error!(
                        table = %R::TABLE,
                        behind = self.unpublished.len(),
                        "cannot republish shared memory: {e}"
                    ),
                }
            }
            None => warn!(table = %R::TABLE, "restarted after retirement; nothing to repair"),
        }
        self.note_size();
    }
}

impl<R: TableRecord> Actor for TableActor<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Runs again after every restart: the old interval went with the stopped context.
        ctx.run_interval(HOUSEKEEPING, |act, ctx| {
            guarded(act, ctx, |act, _| act.housekeeping());
        });
    }
}

impl<R: TableRecord> Restartable for TableActor<R> {
    const KIND: ActorKind = R::ACTOR;

    fn restarts(&self) -> &RestartLog {
        &self.health.restarts
    }
}

impl<R: TableRecord> Supervised for TableActor<R> {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // A panic here stops the actor again (another restart, counted against the budget).
        guarded(self, ctx, |act, _| {
            act.faults.trip(PanicPoint::Restart);
            info!(table = %R::TABLE, "table actor restarting: repairing its shared memory");
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

impl<R: TableRecord> TableActor<R> {
    /// A start that failed after this table was opened: its file goes, since no daemon will
    /// write it (the journal, if any, stays).
    pub fn discard(mut self) {
        if let Some(shm) = self.shm.take() {
            let path = shm.path().to_path_buf();
            if let Err(e) = shm.remove_file() {
                warn!(table = %R::TABLE, path = %path.display(), "cannot remove shared memory: {e}");
            }
        }
    }
}

/// Clean stop: remove the shared-memory file (or keep it, for a warm restart).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire {
    pub keep_shm: bool,
}

impl<R: TableRecord> Handler<Retire> for TableActor<R> {
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

#[cfg(feature = "fault-injection")]
impl<R: TableRecord> Handler<crate::faults::Inject> for TableActor<R> {
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
