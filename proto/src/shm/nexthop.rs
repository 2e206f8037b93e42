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
use super::sync::Ordering::Relaxed;
use super::Record;

/// A next hop: a route's record words with the key word zeroed (via, dev, metric).
pub(crate) type Hop = [u64; PAYLOAD_WORDS];

/// The next hop of a record.
pub(crate) fn hop_of<R: Record>(rec: &R) -> Hop {
    hop_of_words(rec.encode())
}

/// The next hop of a record's words (as `Record::encode` gives them).
fn hop_of_words(mut w: [u64; PAYLOAD_WORDS]) -> Hop {
    w[0] = 0;
    w
}

/// Routes of this prefix length or shorter get a next-hop slot of their own.
pub(crate) const PRIVATE_MAX_LEN: u8 = 16;

/// The next hop in a next-hop slot of the writer's own mapping: its words as they are (only the
/// writer writes them). The key word of a next-hop slot is always zero.
pub(crate) fn own_hop(s: &Slot) -> Hop {
    std::array::from_fn(|k| s.words[k].load(Relaxed))
}

/// The writer's bookkeeping for the next-hop slots of one file. Which slot a route uses is
/// written in the route's hash slot; this keeps what the file does not: the slot of each
/// shared next hop, and how many routes use each slot.
#[derive(Debug)]
pub(crate) struct NextHops {
    slots: Recycler,
    /// Each shared next hop in use, and its slot.
    shared: HashMap<Hop, u32, RandomState>,
    /// Routes using each slot; 0 for a slot that is free or quarantined. Only the slots handed
    /// out so far are ever touched, so the pages of the rest are never allocated.
    users: Vec<u32>,
    /// Slots with users.
    in_use: usize,
}

impl NextHops {
    pub(crate) fn new(count: usize) -> NextHops {
        NextHops {
            slots: Recycler::new(count),
            shared: HashMap::default(),
            users: vec![0; count],
            in_use: 0,
        }
    }

    /// Slots in use (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.in_use
    }

    /// A fresh slot holding `hop` (LIVE, under the slot's seqlock), before anything points at
    /// it.
    ///
    /// Never runs out while each live route uses one slot: the file has more next-hop slots
    /// than the table's capacity, and when no fresh slot is left the oldest quarantined one is
    /// taken even inside its grace period.
    fn fill(&mut self, slots: &[Slot], hop: &Hop) -> usize {
        let Some((i, _)) = self.slots.alloc() else {
            panic!("next-hop slots exhausted: {} in use", self.in_use);
        };
        // The hash slots and entry words that named this slot before it was let go were all
        // changed first; the seqlock's release fence orders those stores before the new
        // contents, so a reader that sees the new contents also sees the changed words when it
        // re-checks them.
        write_hop(&slots[i], hop);
        self.in_use += 1;
        i
    }

    /// A route of prefix length `len` is to use `hop`: returns the slot its hash slot and LPM
    /// entries are to name, written before it is returned (a fresh one for a route of
    /// [`PRIVATE_MAX_LEN`] or shorter, else the shared one for `hop`).
    pub(crate) fn acquire(&mut self, slots: &[Slot], len: u8, hop: &Hop) -> usize {
        let i = if len <= PRIVATE_MAX_LEN {
            self.fill(slots, hop)
        } else if let Some(&i) = self.shared.get(hop) {
            i as usize
        } else {
            let i = self.fill(slots, hop);
            self.shared.insert(*hop, i as u32);
            i
        };
        self.users[i] += 1;
        i
    }

    /// A route of prefix length `len` lets go of slot `i`; a slot no route uses any more goes
    /// into quarantine. Call after neither the route's hash slot nor any entry word names the
    /// slot for that route any more.
    pub(crate) fn release(&mut self, slots: &[Slot], i: usize, len: u8) {
        let Some(users) = self.users.get_mut(i).filter(|u| **u > 0) else {
            debug_assert!(false, "released next-hop slot {i}, which is not in use");
            return;
        };
        *users -= 1;
        if *users == 0 {
            if len > PRIVATE_MAX_LEN {
                self.shared.remove(&own_hop(&slots[i]));
            }
            self.in_use -= 1;
            self.slots.free(i);
        }
    }

    /// No route uses any slot any more (the table was cleared): quarantines them all, in
    /// O(slots handed out so far).
    pub(crate) fn clear(&mut self) {
        self.shared.clear();
        let issued = self.slots.issued();
        for (i, users) in self.users[..issued].iter_mut().enumerate() {
            if *users > 0 {
                *users = 0;
                self.slots.free(i);
            }
        }
        self.in_use = 0;
    }
}

/// Writes `hop` into a next-hop slot (LIVE, key word 0) under its seqlock. A private slot is
/// rewritten with this in place, inside the write of its route's hash slot.
pub(crate) fn write_hop(slot: &Slot, hop: &Hop) {
    let mut w = [0u64; SLOT_WORDS];
    w[..PAYLOAD_WORDS].copy_from_slice(hop);
    w[META_WORD] = meta(SLOT_LIVE, 0);
    write_slot(slot, &w);
}
