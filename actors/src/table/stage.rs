//! Staging a request's operations: each is validated against the table as the request's
//! earlier operations leave it, and turned into the effect it will have. Nothing is written.

use std::collections::HashMap;

use rtm_proto::shm::{Record, TableWriter, Versioned};
use rtm_proto::wire::Failure;
use rtm_proto::Origin;

use super::{TableActor, TableRecord};

/// Operations whose memory [`TableActor::warm`] loads together before staging them.
pub(super) const WARM_AHEAD: usize = 16;

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
    pub fn key(&self) -> Option<R::Key> {
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
    pub(super) fn key(&self) -> Option<R::Key> {
        match self {
            Effect::Put(rec, ..) => Some(rec.key()),
            Effect::Del(key, _) => Some(*key),
            Effect::Flush(_) => None,
        }
    }
}

/// What the operations staged so far in one request did to the table, which shared memory does
/// not show yet: validation of the next operation looks here first.
pub(super) struct Staged<R: Record> {
    /// Keys the staged operations wrote: the origin of the entry they left (`None`: deleted).
    pub keys: HashMap<R::Key, Option<Origin>, foldhash::fast::RandomState>,
    /// A staged flush emptied the table: keys not in `keys` are absent.
    pub flushed: bool,
    /// Live entries after the staged operations.
    pub live: usize,
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

impl<R: TableRecord> TableActor<R> {
    /// Validates one operation against the table as the request's earlier operations left it,
    /// and notes what it does. Nothing is written. Without `overriding`, an operation that
    /// would change or remove an entry of another origin than rtm is refused.
    pub(super) fn stage_one(
        &mut self,
        op: &TableOp<R>,
        st: &mut Staged<R>,
        overriding: bool,
    ) -> Result<Effect<R>, Failure> {
        let table = R::TABLE;
        let seq = self.seq + 1;
        let shm = self.shm.as_ref().ok_or(Failure::ShuttingDown)?;
        let foreign = self.foreign();
        // The origin of the key's entry, if there is one. While every entry is rtm's, a
        // presence check says it (no entry is read).
        let origin_of = |key: &R::Key| match st.keys.get(key) {
            Some(&origin) => origin,
            None if st.flushed => None,
            None if foreign.is_none() => shm.contains(key).then_some(Origin::Rtm),
            None => shm.get(key).map(|v| v.entry.origin()),
        };
        let owned = |key: &R::Key, origin: Option<Origin>| match origin {
            Some(origin) if origin != Origin::Rtm && !overriding => Err(Failure::Owned {
                table,
                key: Some(key.to_string()),
                count: 1,
                origin,
            }),
            _ => Ok(()),
        };
        let (rec, must_exist) = match *op {
            TableOp::Flush => {
                if let (Some((origin, count)), false) = (foreign, overriding || st.flushed) {
                    return Err(Failure::Owned {
                        table,
                        key: None,
                        count: count as u64,
                        origin,
                    });
                }
                st.keys.clear();
                st.flushed = true;
                st.live = 0;
                self.seq = seq;
                return Ok(Effect::Flush(seq));
            }
            TableOp::Del(key) => {
                let Some(origin) = origin_of(&key) else {
                    return Err(Failure::NotFound {
                        table,
                        key: key.to_string(),
                    });
                };
                owned(&key, Some(origin))?;
                st.keys.insert(key, None);
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
        let before = origin_of(&key);
        let existed = before.is_some();
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
        owned(&key, before)?;
        st.keys.insert(key, Some(rec.origin()));
        self.seq = seq;
        Ok(Effect::Put(rec.clone(), seq, existed))
    }

    /// Prefetches what the next operations will touch in shared memory (each key's home slot,
    /// and for routes the LPM word) back to back, before they are staged one by one. In a table
    /// of a million entries each of those is a cache and TLB miss; issued together, the misses
    /// of a group overlap instead of following one another.
    pub(super) fn warm(&self, ops: &[TableOp<R>]) {
        let Some(shm) = &self.shm else { return };
        for key in ops.iter().filter_map(TableOp::key) {
            shm.prefetch(&key);
        }
    }
}
