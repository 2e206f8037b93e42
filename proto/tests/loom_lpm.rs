//! Model-checks the DIR-24-8 + next-hop reader protocol (layout.rs: "LPM (route tables):
//! DIR-24-8", "Next hops", "Writer rules", "Reader rules") with loom: in the scenarios below, a
//! lookup racing with the single writer never accepts an answer that was not its address's
//! longest match at some moment, even when the writer reuses a next-hop slot or tbl8 group at
//! once.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p rtm-proto --test loom_lpm --release --target-dir
//! target/loom`
//!
//! # What runs
//!
//! The writer is the real `lpm::Lpm` (`insert`, `repoint`, `remove`, and its tbl8 group
//! recycler) on small loom-atomic tables: two tbl24 words (every address in the model is in
//! `0.0.0.0/23`) and, where a scenario needs one, a single tbl8 group of 256 entries. Next-hop
//! slots are written with the real `seqlock::write_words`, with 3 words instead of a slot's 7
//! (as in `loom_seqlock.rs`: the loop is the same, fewer words keep loom fast). The reader makes
//! `ShmReader::lookup`'s attempts (reader.rs `finish_attempt`) with the real functions:
//! `lpm::read_entry`, `seqlock::try_read_words` on the next-hop slot the entry names, then the
//! final `lpm::still` re-check of the entry words.
//!
//! Each scenario does what the quarantine (`recycle.rs`) normally delays: a next-hop slot or a
//! group the writer has just let go of is refilled at once with something else. That is the
//! case where a reader still holding an old entry word must be stopped by the re-check:
//!
//! - a /24 is switched to another next-hop slot and its old slot refilled for another route;
//! - a /24 is deleted (its entry falls back to the covering /23) and its slot refilled;
//! - a /25 splits a /24 into a fresh group;
//! - a /25 inside a group is switched to another slot and its old slot refilled;
//! - a /25 is deleted, its group folds back into the tbl24 word and is reused at once (the only
//!   group) for a /25 in another /24.
//!
//! # What is checked
//!
//! Each scenario lists, for each address the reader looks up, the correct answer (prefix
//! length and next hop, or none) before the writer's first change and after each change. Every
//! answer the reader accepts must be one of those up to the last change that had begun when
//! the attempt ended. Weak memory lets a reader that has not synchronized with the writer see
//! an older table, so this does not ask for the newest answer; it rules out answers the table
//! never gave, such as one route's prefix length with a next hop a refilled slot holds for
//! another route. An accepted next hop must be untorn. After the writer is joined every address
//! must read at once as in the final table.
//!
//! The negative controls (`#[should_panic]`) run the same scenarios with one part of the
//! protocol missing and expect loom to find a wrong answer, which shows the scenarios reach the
//! interleavings that part is there for:
//!
//! - the reader without the final `still()` re-check (three scenarios), or re-checking only the
//!   tbl24 word and not the group entry;
//! - the reader's `read_entry` without its acquire fences;
//! - the writer refilling a reused group without its `fence(Release)`, or a next-hop slot with
//!   a seqlock write missing its release fence;
//! - the writer out of the order of the writer rules: refilling a slot that an entry still
//!   names, or storing an entry before the slot it names is written.
//!
//! The controls use the real code wherever the broken step is not inside it; where it is (a
//! fence), they use a copy of the few lines concerned.
//!
//! # What it does not show
//!
//! - The ABA gap documented in layout.rs: in no scenario does a word return to a value it held
//!   earlier while the reader runs, so a re-check passing on a recycled word is not modelled
//!   (the protocol does not exclude that; the grace period makes it unlikely).
//! - Private next-hop slots rewritten in place, `Lpm::clear`, prefixes spanning many tbl24
//!   words, more than one group, more than one reader, and new file generations.
//! - `ShmReader::lookup_batch` (the same loads and fences per address, issued for many
//!   addresses at once) and its next-hop memo (`try_read_slot_since` with a known sequence
//!   word); retries past [`ATTEMPTS`] and the hash-probe fallback; decoding a next hop (here a
//!   next hop is three equal non-zero words, all zero for a slot never written).
//! - Interleavings that need more thread switches than the preemption bound of the test, or a
//!   switch at a point loom's exploration does not see (see [`Tables::point`]).
//! - That each of `read_entry`'s two acquire fences is needed on its own: with either one left
//!   out, no scenario finds a wrong answer (`still` re-loads the group entry after them, and the
//!   seqlock read's first fence follows them too).
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use rtm_proto::shm::layout::{
    entry_depth, entry_index, entry_is_group, group_entry, route_entry, GROUP_ENTRIES,
};
use rtm_proto::shm::lpm::{read_entry, still, Lpm};
use rtm_proto::shm::seqlock::{try_read_words, write_words};

/// Words of a next-hop slot in the model.
const HOP_WORDS: usize = 3;

/// A next-hop slot: a sequence word and the words it guards.
struct Hop {
    seq: AtomicU64,
    words: [AtomicU64; HOP_WORDS],
}

/// The shared tables of one model execution.
struct Tables {
    t24: Vec<AtomicU32>,
    t8: Vec<AtomicU32>,
    hops: Vec<Hop>,
    /// Stored to by both threads and never loaded: see [`Tables::point`].
    probe: AtomicU32,
}

impl Tables {
    /// Two tbl24 words (every address in the model is in `0.0.0.0/23`), `groups` tbl8 groups
    /// and `hops` next-hop slots, all empty.
    fn new(groups: usize, hops: usize) -> Tables {
        Tables {
            t24: (0..2).map(|_| AtomicU32::new(0)).collect(),
            t8: (0..groups * GROUP_ENTRIES)
                .map(|_| AtomicU32::new(0))
                .collect(),
            hops: (0..hops)
                .map(|_| Hop {
                    seq: AtomicU64::new(0),
                    words: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            probe: AtomicU32::new(0),
        }
    }

    /// A point where loom tries switching threads. Loom's DPOR compares a store only with the
    /// last access to the same atomic: when the storing thread loaded it just before (as `Lpm`
    /// does with entry words and `write_words` with the sequence word), the other thread's
    /// earlier load is not seen as racing, and loom never runs the writer's store before it
    /// (loom issues #166 and #392). Without help, the writer never ran between the reader's
    /// entry load and its next-hop read. Both threads store to `probe` between their steps
    /// (`Relaxed`, and nothing loads it, so it orders nothing); loom sees those stores race and
    /// tries a switch at each. Inside the real functions it still switches only where it sees a
    /// race by itself.
    fn point(&self) {
        self.probe.store(0, Ordering::Relaxed);
    }

    /// The writer fills next-hop slot `i` with the next hop `v` (non-zero).
    fn fill_hop(&self, i: usize, v: u64) {
        write_words(&self.hops[i].seq, &self.hops[i].words, &[v; HOP_WORDS]);
        self.point();
    }
}

/// A reader's answer: `None` for "no route", else (prefix length, next hop).
type Answer = Option<(u8, u64)>;

/// Step 1 of the reader rules: the tbl24 word and the entry word for `addr`.
type ReadEntry = fn(&[AtomicU32], &[AtomicU32], u32) -> Option<(u32, u32)>;

/// Step 4 of the reader rules: whether the entry words `w` and `e` read for `addr` are still in
/// place.
type Recheck = fn(&[AtomicU32], &[AtomicU32], u32, u32, u32) -> bool;

/// The reader's steps: the real ones, or with one of them broken for a negative control.
#[derive(Clone, Copy)]
struct Reader {
    read: ReadEntry,
    recheck: Recheck,
    /// A torn next hop counts as a retry instead of a wrong answer. (The real reader may decode
    /// a mix of two next hops as a third, so a tear is a wrong answer; a control sets this to
    /// look for the wrong answers loom would otherwise find only after a tear.)
    tears_retry: bool,
}

/// The real reader.
const REAL: Reader = Reader {
    read: read_entry,
    recheck: still,
    tears_retry: false,
};

/// Read attempts per address, stopping at the first accepted one (a lookup retries until one
/// is).
const ATTEMPTS: usize = 2;

/// One read attempt for `addr`, as `ShmReader::lookup` makes it: `None` where the real reader
/// would retry.
fn attempt(t: &Tables, addr: u32, r: Reader) -> Option<Answer> {
    // Step 1.
    t.point();
    let (w, e) = (r.read)(&t.t24, &t.t8, addr)?;
    t.point();
    // Step 2: "no route", re-checked if it came from a group.
    if e == 0 {
        return (w == e || still(&t.t24, &t.t8, addr, w, e)).then_some(None);
    }
    // Step 3: the next-hop slot, under its seqlock.
    let hop = t.hops.get(entry_index(e))?;
    let words = try_read_words(&hop.seq, &hop.words).ok()?;
    t.point();
    if words.iter().any(|&x| x != words[0]) {
        assert!(
            r.tears_retry,
            "wrong answer: torn next hop {words:?} accepted"
        );
        return None;
    }
    if words[0] == 0 {
        // A slot never written (EMPTY): the real reader retries.
        return None;
    }
    // Step 4.
    if !(r.recheck)(&t.t24, &t.t8, addr, w, e) {
        return None;
    }
    Some(Some((entry_depth(e), words[0])))
}

/// Negative control: [`read_entry`] without its two acquire fences (with either one left, no
/// scenario finds a wrong answer).
fn read_entry_without_fences(t24: &[AtomicU32], t8: &[AtomicU32], addr: u32) -> Option<(u32, u32)> {
    let w = t24.get((addr >> 8) as usize)?.load(Ordering::Relaxed);
    // fence(Ordering::Acquire) removed
    if !entry_is_group(w) {
        return Some((w, w));
    }
    let e = t8
        .get(entry_index(w) * GROUP_ENTRIES + (addr & 0xff) as usize)?
        .load(Ordering::Relaxed);
    // fence(Ordering::Acquire) removed
    Some((w, e))
}

/// Negative control: step 4 left out.
fn no_recheck(_: &[AtomicU32], _: &[AtomicU32], _: u32, _: u32, _: u32) -> bool {
    true
}

/// Negative control: step 4 re-checks the tbl24 word only, not the group entry.
fn recheck_tbl24_only(t24: &[AtomicU32], _: &[AtomicU32], addr: u32, w: u32, _: u32) -> bool {
    t24[(addr >> 8) as usize].load(Ordering::Relaxed) == w
}

/// One change by the writer.
type Change = fn(&Tables, &mut Lpm);

/// A writer's story and what a reader must answer along it.
struct Scenario {
    /// tbl8 groups in the file (0 or 1); the `Lpm` recycles them.
    groups: usize,
    /// Next-hop slots in the file.
    hops: usize,
    /// The table before the reader starts (happens before it).
    setup: Change,
    /// The changes the writer makes while the reader runs, in order.
    changes: &'static [Change],
    /// The addresses the reader looks up, one after the other, each with its correct answer
    /// before the first change (`[0]`) and after each change.
    reads: &'static [(u32, &'static [Answer])],
}

/// Preemption bound of the scenarios with the real code. With 4 the whole file takes about
/// 11 s on a 2-core machine (release build, tests in parallel).
const BOUND: usize = 4;

/// Preemption bound of the negative controls: enough to find their wrong answers.
const CONTROL_BOUND: usize = 1;

fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    // Building and folding a 256-entry group is a few hundred atomic operations, each a branch
    // point for loom (the default cap is 1000 per execution).
    b.max_branches = 10_000;
    b
}

/// Model-checks `s` with the writer making `changes` (the scenario's own, or a broken copy)
/// and reader `r`.
fn check(s: &'static Scenario, changes: &'static [Change], r: Reader, preemptions: usize) {
    for (_, states) in s.reads {
        assert_eq!(states.len(), s.changes.len() + 1);
    }
    builder(preemptions).check(move || {
        let t = Arc::new(Tables::new(s.groups, s.hops));
        let mut lpm = Lpm::new(s.groups);
        (s.setup)(&t, &mut lpm);
        // How many changes have begun: the writer's progress in the order loom runs the threads.
        // A plain std atomic is invisible to loom (its threads take turns on one OS thread), so
        // this bookkeeping adds no synchronization to the model.
        let begun = std::sync::Arc::new(AtomicUsize::new(0));
        let writer = {
            let (t, begun) = (t.clone(), begun.clone());
            thread::spawn(move || {
                for (i, change) in changes.iter().enumerate() {
                    t.point();
                    begun.store(i + 1, StdOrdering::Relaxed);
                    change(&t, &mut lpm);
                }
            })
        };
        for &(addr, states) in s.reads {
            for _ in 0..ATTEMPTS {
                let Some(answer) = attempt(&t, addr, r) else {
                    continue;
                };
                let last = begun.load(StdOrdering::Relaxed);
                assert!(
                    states[..=last].contains(&answer),
                    "wrong answer {answer:?} for {addr:#x}: with {last} change(s) begun, it was \
                     one of {:?}",
                    &states[..=last]
                );
                break;
            }
        }
        writer.join().unwrap();
        for &(addr, states) in s.reads {
            assert_eq!(
                attempt(&t, addr, REAL),
                Some(*states.last().unwrap()),
                "{addr:#x} after the writer finished"
            );
        }
    });
}

// Next-hop slots in the scenarios.
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

// ----- a /24 switched to another next-hop slot; the old slot is refilled at once -----

/// `0.0.0.0/24` via next hop 1 (slot A).
fn one_24(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(A, 1);
    assert!(lpm.insert(&t.t24, &t.t8, 0x000, 24, A));
}

/// The /24's next hop becomes 2: the new slot B is written, then the entry switched to it.
fn repoint_24_to_b(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(B, 2);
    lpm.repoint(&t.t24, &t.t8, 0x000, 24, A, B);
}

/// Slot A, let go, is refilled at once with next hop 3 for the new route `0.0.1.0/24`.
fn reuse_a_for_other_24(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(A, 3);
    assert!(lpm.insert(&t.t24, &t.t8, 0x100, 24, A));
}

/// [`reuse_a_for_other_24`] with the refill's seqlock write missing its release fence.
fn reuse_a_without_release_fence(t: &Tables, lpm: &mut Lpm) {
    let hop = &t.hops[A];
    let s = hop.seq.load(Ordering::Relaxed);
    hop.seq.store(s + 1, Ordering::Relaxed);
    // fence(Ordering::Release) removed
    for w in &hop.words {
        w.store(3, Ordering::Relaxed);
    }
    hop.seq.store(s + 2, Ordering::Release);
    t.point();
    assert!(lpm.insert(&t.t24, &t.t8, 0x100, 24, A));
}

/// Writer order broken: slot A is refilled while the /24 still names it.
fn refill_a_then_repoint(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(A, 3);
    t.fill_hop(B, 2);
    lpm.repoint(&t.t24, &t.t8, 0x000, 24, A, B);
}

/// Writer order broken: the new route's entry is stored before its next-hop slot is refilled.
fn insert_other_24_then_refill_a(t: &Tables, lpm: &mut Lpm) {
    assert!(lpm.insert(&t.t24, &t.t8, 0x100, 24, A));
    t.point();
    t.fill_hop(A, 3);
}

static REPOINT: Scenario = Scenario {
    groups: 0,
    hops: 2,
    setup: one_24,
    changes: &[repoint_24_to_b, reuse_a_for_other_24],
    reads: &[
        (0x005, &[Some((24, 1)), Some((24, 2)), Some((24, 2))]),
        (0x105, &[None, None, Some((24, 3))]),
    ],
};

#[test]
fn repoint_then_reuse_of_the_old_next_hop_slot() {
    check(&REPOINT, REPOINT.changes, REAL, BOUND);
}

#[test]
#[should_panic(expected = "wrong answer Some((24, 3)) for 0x5")]
fn negative_control_repoint_without_final_recheck() {
    let r = Reader {
        recheck: no_recheck,
        ..REAL
    };
    check(&REPOINT, REPOINT.changes, r, CONTROL_BOUND);
}

/// Loom meets a torn next hop first (the seqlock's own failure, as in `loom_seqlock.rs`).
#[test]
#[should_panic(expected = "wrong answer: torn next hop")]
fn negative_control_next_hop_refill_without_release_fence() {
    let changes = &[repoint_24_to_b, reuse_a_without_release_fence];
    check(&REPOINT, changes, REAL, CONTROL_BOUND);
}

/// The same writer, with tears counted as retries: loom then finds an untorn refill accepted
/// with the stale entry word, because the same fence also orders the switch of the entries
/// before the refill (writer rules).
#[test]
#[should_panic(expected = "wrong answer Some((24, 3)) for 0x5")]
fn negative_control_next_hop_refill_without_release_fence_beyond_tears() {
    let changes = &[repoint_24_to_b, reuse_a_without_release_fence];
    let r = Reader {
        tears_retry: true,
        ..REAL
    };
    check(&REPOINT, changes, r, CONTROL_BOUND);
}

#[test]
#[should_panic(expected = "wrong answer Some((24, 3)) for 0x5")]
fn negative_control_old_slot_refilled_before_the_switch() {
    check(
        &REPOINT,
        &[refill_a_then_repoint, reuse_a_for_other_24],
        REAL,
        CONTROL_BOUND,
    );
}

#[test]
#[should_panic(expected = "wrong answer Some((24, 1)) for 0x105")]
fn negative_control_entry_stored_before_its_next_hop_slot_is_written() {
    let changes = &[repoint_24_to_b, insert_other_24_then_refill_a];
    check(&REPOINT, changes, REAL, CONTROL_BOUND);
}

// ----- a /24 deleted under its covering /23; its next-hop slot is refilled at once -----

/// `0.0.0.0/23` via 1 (slot A) and `0.0.0.0/24` via 2 (slot B).
fn covered_24(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(A, 1);
    assert!(lpm.insert(&t.t24, &t.t8, 0x000, 23, A));
    t.fill_hop(B, 2);
    assert!(lpm.insert(&t.t24, &t.t8, 0x000, 24, B));
}

/// The /24 is deleted: its entry falls back to the /23.
fn delete_24(t: &Tables, lpm: &mut Lpm) {
    lpm.remove(&t.t24, &t.t8, 0x000, 24, B, route_entry(A, 23));
}

/// Slot B, let go, is refilled at once with next hop 3 for the new route `0.0.1.0/24`.
fn reuse_b_for_other_24(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(B, 3);
    assert!(lpm.insert(&t.t24, &t.t8, 0x100, 24, B));
}

static DELETE: Scenario = Scenario {
    groups: 0,
    hops: 2,
    setup: covered_24,
    changes: &[delete_24, reuse_b_for_other_24],
    reads: &[
        (0x005, &[Some((24, 2)), Some((23, 1)), Some((23, 1))]),
        (0x105, &[Some((23, 1)), Some((23, 1)), Some((24, 3))]),
    ],
};

#[test]
fn delete_to_covering_prefix_then_reuse_of_its_next_hop_slot() {
    check(&DELETE, DELETE.changes, REAL, BOUND);
}

#[test]
#[should_panic(expected = "wrong answer Some((24, 3)) for 0x5")]
fn negative_control_delete_without_final_recheck() {
    let r = Reader {
        recheck: no_recheck,
        ..REAL
    };
    check(&DELETE, DELETE.changes, r, CONTROL_BOUND);
}

// ----- a /25 splits a /24: a fresh group is filled and linked -----

/// [`one_24`], plus next hop 2 in slot B for later.
fn one_24_and_spare_hop(t: &Tables, lpm: &mut Lpm) {
    one_24(t, lpm);
    t.fill_hop(B, 2);
}

/// `0.0.0.128/25` via 2 (slot B) is inserted: the group gets the /24's entry in its lower half
/// and the /25's in its upper half, then the tbl24 word is switched to it.
fn insert_25(t: &Tables, lpm: &mut Lpm) {
    assert!(lpm.insert(&t.t24, &t.t8, 0x080, 25, B));
}

static SPLIT: Scenario = Scenario {
    groups: 1,
    hops: 2,
    setup: one_24_and_spare_hop,
    changes: &[insert_25],
    reads: &[
        (0x005, &[Some((24, 1)), Some((24, 1))]),
        (0x0c8, &[Some((24, 1)), Some((25, 2))]),
    ],
};

#[test]
fn a_25_splits_a_24_into_a_fresh_group() {
    check(&SPLIT, SPLIT.changes, REAL, BOUND);
}

/// Without the fences a reader that sees the new tbl24 word may load the group entry from
/// before the group was filled (0, "no route"), and its re-check may load the same old value.
#[test]
#[should_panic(expected = "wrong answer None for")]
fn negative_control_fresh_group_read_without_acquire_fences() {
    let r = Reader {
        read: read_entry_without_fences,
        ..REAL
    };
    check(&SPLIT, SPLIT.changes, r, CONTROL_BOUND);
}

// ----- a /25 inside a group switched to another slot; the old slot is refilled at once -----

/// `0.0.0.0/24` via 1 (slot A) and `0.0.0.128/25` via 2 (slot B), which takes the group.
fn split_24(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(A, 1);
    assert!(lpm.insert(&t.t24, &t.t8, 0x000, 24, A));
    t.fill_hop(B, 2);
    assert!(lpm.insert(&t.t24, &t.t8, 0x080, 25, B));
}

/// The /25's next hop becomes 3: the new slot C is written, then the group entries switched
/// to it.
fn repoint_25_to_c(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(C, 3);
    lpm.repoint(&t.t24, &t.t8, 0x080, 25, B, C);
}

/// Slot B, let go, is refilled at once with next hop 4 for the new route `0.0.1.0/24`.
fn reuse_b_with_4_for_other_24(t: &Tables, lpm: &mut Lpm) {
    t.fill_hop(B, 4);
    assert!(lpm.insert(&t.t24, &t.t8, 0x100, 24, B));
}

static GROUP_REPOINT: Scenario = Scenario {
    groups: 1,
    hops: 3,
    setup: split_24,
    changes: &[repoint_25_to_c, reuse_b_with_4_for_other_24],
    reads: &[
        (0x0c8, &[Some((25, 2)), Some((25, 3)), Some((25, 3))]),
        (0x005, &[Some((24, 1)), Some((24, 1)), Some((24, 1))]),
    ],
};

#[test]
fn repoint_inside_a_group_then_reuse_of_the_old_next_hop_slot() {
    check(&GROUP_REPOINT, GROUP_REPOINT.changes, REAL, BOUND);
}

/// The tbl24 word still points at the same group, so only the group entry's re-check sees the
/// switch.
#[test]
#[should_panic(expected = "wrong answer Some((25, 4)) for 0xc8")]
fn negative_control_group_repoint_with_tbl24_recheck_only() {
    let r = Reader {
        recheck: recheck_tbl24_only,
        ..REAL
    };
    check(&GROUP_REPOINT, GROUP_REPOINT.changes, r, CONTROL_BOUND);
}

// ----- a /25 deleted (its group folds away); the group is refilled at once for another /24 -----

/// [`split_24`], plus next hop 4 in slot D for later (written before the reader starts, so
/// reading it synchronizes with nothing the writer does afterwards).
fn split_24_and_spare_hop(t: &Tables, lpm: &mut Lpm) {
    split_24(t, lpm);
    t.fill_hop(D, 4);
}

/// The /25 is deleted: its group entries fall back to the /24, the group folds back into the
/// tbl24 word and is let go.
fn delete_25(t: &Tables, lpm: &mut Lpm) {
    lpm.remove(&t.t24, &t.t8, 0x080, 25, B, route_entry(A, 24));
}

/// `0.0.1.128/25` via 4 (slot D) is inserted: it needs a group and gets the one just let go
/// (the only one).
fn reuse_group_for_other_25(t: &Tables, lpm: &mut Lpm) {
    assert!(lpm.insert(&t.t24, &t.t8, 0x180, 25, D));
}

/// [`reuse_group_for_other_25`] as `Lpm::insert` would do it without the `fence(Release)`
/// before refilling a reused group.
fn reuse_group_without_release_fence(t: &Tables, _: &mut Lpm) {
    assert_eq!(t.t24[1].load(Ordering::Relaxed), 0);
    // fence(Ordering::Release) removed
    for (j, x) in t.t8[..GROUP_ENTRIES].iter().enumerate() {
        x.store(
            if j >= 128 { route_entry(D, 25) } else { 0 },
            Ordering::Relaxed,
        );
    }
    t.t24[1].store(group_entry(0), Ordering::Release);
}

static GROUP_REUSE: Scenario = Scenario {
    groups: 1,
    hops: 4,
    setup: split_24_and_spare_hop,
    changes: &[delete_25, reuse_group_for_other_25],
    reads: &[
        (0x0c8, &[Some((25, 2)), Some((24, 1)), Some((24, 1))]),
        (0x1c8, &[None, None, Some((25, 4))]),
        (0x105, &[None, None, None]),
    ],
};

#[test]
fn group_folded_then_reused_for_another_24() {
    check(&GROUP_REUSE, GROUP_REUSE.changes, REAL, BOUND);
}

#[test]
#[should_panic(expected = "wrong answer Some((25, 4)) for 0xc8")]
fn negative_control_group_reuse_without_final_recheck() {
    let r = Reader {
        recheck: no_recheck,
        ..REAL
    };
    check(&GROUP_REUSE, GROUP_REUSE.changes, r, CONTROL_BOUND);
}

#[test]
#[should_panic(expected = "wrong answer Some((25, 4)) for 0xc8")]
fn negative_control_group_reuse_without_writer_release_fence() {
    let changes = &[delete_25, reuse_group_without_release_fence];
    check(&GROUP_REUSE, changes, REAL, CONTROL_BOUND);
}
