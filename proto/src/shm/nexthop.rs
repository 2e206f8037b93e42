//! The writer's next-hop slots of a route table file (layout in [`super::layout`], "Next hops").
//! LPM entry words name a next-hop slot, so a lookup reads one small, cache-resident slot
//! instead of the matching route's own hash slot.
//!
//! Routes longer than [`PRIVATE_MAX_LEN`] share one LIVE slot per distinct next hop, counted
//! here: a table of a million routes through a few dozen next hops keeps them in a few cache
//! lines. Changing such a route's next hop rewrites its LPM entries, at most 2^(24 - 17) = 128
//! tbl24 words (plus the groups among them). Routes of [`PRIVATE_MAX_LEN`] or shorter cover up
//! to 2^24 words each, so they get a slot of their own instead, rewritten in place (under its
//! seqlock) when their next hop changes; they are few (about 1.5 % of an Internet table).

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::layout::{meta, Slot, META_WORD, PAYLOAD_WORDS, SLOT_LIVE, SLOT_WORDS};
use super::recycle::Recycler;
use super::seqlock::write_slot;
use super::Record;

/// A next hop: a route's record words with the key word zeroed (via, dev, metric).
pub(crate) type Hop = [u64; PAYLOAD_WORDS];

/// The next hop of a record.
pub(crate) fn hop_of<R: Record>(rec: &R) -> Hop {
    hop_of_words(rec.encode())
}

/// The next hop of a record's words (as `Record::encode` gives them).
pub(crate) fn hop_of_words(mut w: [u64; PAYLOAD_WORDS]) -> Hop {
    w[0] = 0;
    w
}

/// Routes of this prefix length or shorter get a next-hop slot of their own.
pub(crate) const PRIVATE_MAX_LEN: u8 = 16;

/// The writer's bookkeeping for the next-hop slots of one file.
#[derive(Debug)]
pub(crate) struct NextHops {
    slots: Recycler,
    /// Each shared next hop in use: its slot and how many routes use it.
    shared: HashMap<Hop, (u32, u32), RandomState>,
    /// The slot of each route of [`PRIVATE_MAX_LEN`] or shorter, by key word.
    private: HashMap<u64, u32, RandomState>,
}

impl NextHops {
    pub(crate) fn new(count: usize) -> NextHops {
        NextHops {
            slots: Recycler::new(count),
            shared: HashMap::default(),
            private: HashMap::default(),
        }
    }

    /// Slots in use (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shared.len() + self.private.len()
    }

    /// The slot of the live route with key word `kw`, prefix length `len` and next hop `hop`.
    pub(crate) fn index(&self, kw: u64, len: u8, hop: &Hop) -> Option<usize> {
        if len <= PRIVATE_MAX_LEN {
            self.private.get(&kw).map(|&i| i as usize)
        } else {
            self.shared.get(hop).map(|&(i, _)| i as usize)
        }
    }

    /// A fresh slot holding `hop` (LIVE, under the slot's seqlock), before anything points at
    /// it.
    ///
    /// Never runs out while each live route uses one slot: the file has more next-hop slots
    /// than the table's capacity, and when no fresh slot is left the oldest quarantined one is
    /// taken even inside its grace period.
    fn fill(&mut self, slots: &[Slot], hop: &Hop) -> usize {
        let Some((i, _)) = self.slots.alloc() else {
            panic!(
                "next-hop slots exhausted: {} in use",
                self.shared.len() + self.private.len()
            );
        };
        // The entry words that named this slot before it was let go were all changed first;
        // the seqlock's release fence orders those stores before the new contents, so a reader
        // that sees the new contents also sees the changed word when it re-checks.
        write_hop(&slots[i], hop);
        i
    }

    /// A new route (key word `kw`, prefix length `len`) uses `hop`: returns the slot its LPM
    /// entries are to name, written before it is returned.
    pub(crate) fn acquire(&mut self, slots: &[Slot], kw: u64, len: u8, hop: &Hop) -> usize {
        if len <= PRIVATE_MAX_LEN {
            let i = self.fill(slots, hop);
            self.private.insert(kw, i as u32);
            return i;
        }
        if let Some((i, refs)) = self.shared.get_mut(hop) {
            *refs += 1;
            return *i as usize;
        }
        let i = self.fill(slots, hop);
        self.shared.insert(*hop, (i as u32, 1));
        i
    }

    /// A route lets go of `hop` (it was deleted); a slot no route uses any more goes into
    /// quarantine. Call after no entry word names the slot for that route any more.
    pub(crate) fn release(&mut self, kw: u64, len: u8, hop: &Hop) {
        if len <= PRIVATE_MAX_LEN {
            match self.private.remove(&kw) {
                Some(i) => self.slots.free(i as usize),
                None => debug_assert!(false, "released a private next hop that is not in use"),
            }
            return;
        }
        let Some((i, refs)) = self.shared.get_mut(hop) else {
            debug_assert!(false, "released a next hop that is not in use");
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            let i = *i;
            self.shared.remove(hop);
            self.slots.free(i as usize);
        }
    }

    /// A live route's next hop changes from `old` to `new`. A route with a slot of its own gets
    /// it rewritten in place (`None`: its entries stay). Otherwise returns `(from, to)`: the
    /// caller switches the route's entries from slot `from` to slot `to` (already written),
    /// then calls [`NextHops::release`] for `old`.
    pub(crate) fn change(
        &mut self,
        slots: &[Slot],
        kw: u64,
        len: u8,
        old: &Hop,
        new: &Hop,
    ) -> Option<(usize, usize)> {
        if len <= PRIVATE_MAX_LEN {
            let i = *self.private.get(&kw).expect("a live route has its slot") as usize;
            write_hop(&slots[i], new);
            return None;
        }
        let from = self
            .index(kw, len, old)
            .expect("a live route's next hop has a slot");
        Some((from, self.acquire(slots, kw, len, new)))
    }

    /// No route uses any slot any more (the table was cleared): quarantines them all.
    pub(crate) fn clear(&mut self) {
        let mut freed: Vec<u32> = self.shared.drain().map(|(_, (i, _))| i).collect();
        freed.extend(self.private.drain().map(|(_, i)| i));
        freed.sort_unstable();
        for i in freed {
            self.slots.free(i as usize);
        }
    }
}

/// Writes `hop` into a next-hop slot (LIVE, key word 0) under its seqlock.
fn write_hop(slot: &Slot, hop: &Hop) {
    let mut w = [0u64; SLOT_WORDS];
    w[..PAYLOAD_WORDS].copy_from_slice(hop);
    w[META_WORD] = meta(SLOT_LIVE, 0);
    write_slot(slot, &w);
}
