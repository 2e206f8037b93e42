//! Model-checks the exact-match read of a route with loom (layout.rs: "Hash slots", "Writer
//! rules"): a route's 32-byte hash slot names a next-hop slot; a reader reads the hash slot,
//! then the next-hop slot, then checks that the hash slot's sequence word has not moved
//! (`seqlock::unchanged`). It must never accept a next hop with the change sequence of another
//! change of the route, nor a next hop the route never had.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p rtm-proto --test loom_exact_match --release
//! --target-dir target/loom`
//!
//! # What runs
//!
//! Real slots (`SlotN` with 3 words, like a route hash slot) and the real seqlock functions:
//! `write_slot`, `write_slot_around`, `try_read_slot_at`, `try_read_slot`, `unchanged`. A hash
//! slot holds (key, next-hop index, change sequence); a next-hop slot holds its next hop in all
//! three words, so a torn one shows. Two writer scenarios, each starting from change 1 with next
//! hop 1 in slot 0:
//!
//! - *private* (a /16 or shorter): change 2 rewrites slot 0 in place with next hop 2, inside the
//!   write of the hash slot (`write_slot_around`), as `Table::replace` does;
//! - *shared* (longer than /16): change 2 fills slot 1 with next hop 2, points the hash slot at
//!   it, lets slot 0 go, and slot 0 is refilled at once with another route's next hop (99): the
//!   reuse the quarantine normally delays.
//!
//! A reader makes up to two attempts and accepts (change 1, next hop 1) or (change 2, next hop
//! 2) only. After the writer is joined, a read must give change 2 at once.
//!
//! The negative controls (`#[should_panic]`) show the scenarios reach the interleavings each
//! part of the protocol is there for: the reader without the final `unchanged` check, and the
//! private rewrite done before or after the hash slot's write instead of inside it.
//!
//! As in `loom_lpm.rs`, both threads store to a probe word nobody loads between their steps, so
//! that loom tries a thread switch there (it does not see a store by a thread that loaded the
//! same word just before as racing with another thread's earlier load).
//!
//! # What it does not show
//!
//! Probing past other slots, tombstones and deletes, a writer that dies mid-write (the waiting
//! and skipping of `ShmReader::get` are in `proto/src/shm/tests.rs`), decoding, and interleavings
//! beyond the preemption bound.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use rtm_proto::shm::layout::SlotN;
use rtm_proto::shm::seqlock::{
    try_read_slot, try_read_slot_at, unchanged, write_slot, write_slot_around,
};

/// The key word of the route in the model.
const KEY: u64 = 7;
/// Next hop of another route that refills a slot the route let go.
const OTHER: u64 = 99;

type Slot3 = SlotN<3>;

struct Tables {
    hash: Slot3,
    hops: [Slot3; 2],
    /// Stored to by both threads and never loaded: a point where loom tries a switch.
    probe: AtomicU32,
}

impl Tables {
    /// Change 1: next hop 1 in slot 0, named by the hash slot.
    fn new() -> Tables {
        let t = Tables {
            hash: Slot3::new(),
            hops: [Slot3::new(), Slot3::new()],
            probe: AtomicU32::new(0),
        };
        write_slot(&t.hops[0], &[1; 3]);
        write_slot(&t.hash, &[KEY, 0, 1]);
        t
    }

    fn point(&self) {
        self.probe.store(0, Ordering::Relaxed);
    }
}

type Writer = fn(&Tables);

/// Change 2 of a private next hop, as `Table::replace` makes it.
fn private_inside(t: &Tables) {
    write_slot_around(&t.hash, &[KEY, 0, 2], || {
        t.point();
        write_slot(&t.hops[0], &[2; 3]);
        t.point();
    });
    t.point();
}

/// Change 2 of a shared next hop, then slot 0 reused at once.
fn shared_then_reuse(t: &Tables) {
    write_slot(&t.hops[1], &[2; 3]);
    t.point();
    write_slot(&t.hash, &[KEY, 1, 2]);
    t.point();
    write_slot(&t.hops[0], &[OTHER; 3]);
    t.point();
}

/// One read attempt: `None` where the real reader would try again.
fn attempt(t: &Tables, recheck: bool) -> Option<(u64, u64)> {
    t.point();
    let (s1, h) = try_read_slot_at(&t.hash).ok()?;
    assert_eq!(h[0], KEY, "hash slot words {h:?}");
    t.point();
    let hop = try_read_slot(t.hops.get(h[1] as usize)?).ok()?;
    t.point();
    assert!(hop.iter().all(|&x| x == hop[0]), "torn next hop {hop:?}");
    if recheck && !unchanged(&t.hash, s1) {
        return None;
    }
    Some((h[2], hop[0]))
}

fn check(write: Writer, recheck: bool, preemptions: usize) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b.check(move || {
        let t = Arc::new(Tables::new());
        let writer = {
            let t = t.clone();
            thread::spawn(move || write(&t))
        };
        for _ in 0..2 {
            if let Some(got) = attempt(&t, recheck) {
                assert!(
                    got == (1, 1) || got == (2, 2),
                    "wrong answer: change {} with next hop {}",
                    got.0,
                    got.1
                );
                break;
            }
        }
        writer.join().unwrap();
        assert_eq!(attempt(&t, recheck), Some((2, 2)), "stale after the writer");
    });
}

const BOUND: usize = 3;

#[test]
fn private_next_hop_rewritten_inside_the_hash_slot_write() {
    check(private_inside, true, BOUND);
}

#[test]
fn shared_next_hop_switched_and_old_slot_reused_at_once() {
    check(shared_then_reuse, true, BOUND);
}

#[test]
#[should_panic(expected = "wrong answer: change 1 with next hop 2")]
fn negative_control_private_without_recheck() {
    check(private_inside, false, BOUND);
}

#[test]
#[should_panic(expected = "wrong answer: change 1 with next hop 99")]
fn negative_control_shared_reuse_without_recheck() {
    check(shared_then_reuse, false, BOUND);
}

/// The private next hop written first, then the hash slot: a reader can pair the old change
/// with the new next hop.
#[test]
#[should_panic(expected = "wrong answer: change 1 with next hop 2")]
fn negative_control_private_rewritten_before_the_hash_slot() {
    check(
        |t| {
            write_slot(&t.hops[0], &[2; 3]);
            t.point();
            write_slot(&t.hash, &[KEY, 0, 2]);
            t.point();
        },
        true,
        BOUND,
    );
}

/// The hash slot written first, then the private next hop: a reader can pair the new change
/// with the old next hop.
#[test]
#[should_panic(expected = "wrong answer: change 2 with next hop 1")]
fn negative_control_private_rewritten_after_the_hash_slot() {
    check(
        |t| {
            write_slot(&t.hash, &[KEY, 0, 2]);
            t.point();
            write_slot(&t.hops[0], &[2; 3]);
            t.point();
        },
        true,
        BOUND,
    );
}
