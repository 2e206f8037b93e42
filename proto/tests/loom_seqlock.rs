//! Model-checks the slot seqlock with loom: a reader must never accept a torn payload.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p rtm-proto --test loom_seqlock --release`
//!
//! The writer fills all words with the same counter value, so a read is torn iff the words it
//! returns differ. The production functions are generic over the number of words; the model
//! runs them with 3 words (the loop is the same for 7, and 7 relaxed loads make the state space
//! too large to explore in seconds) and once on a real 7-word `Slot` with a tighter bound.
//!
//! The negative controls run copies of the protocol with one fence removed and expect loom to
//! find a bad read (`#[should_panic]`): they show the model is strong enough to catch a missing
//! fence.
#![cfg(loom)]

use loom::sync::atomic::{fence, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use rtm_proto::shm::layout::{Slot, SLOT_WORDS};
use rtm_proto::shm::seqlock::{try_read_slot, try_read_words, write_slot, write_words};

const N: usize = 3;

struct Words {
    seq: AtomicU64,
    words: [AtomicU64; N],
}

type WriteFn = fn(&Words, &[u64; N]);
type ReadFn = fn(&Words) -> Option<[u64; N]>;

fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b
}

/// Writer: two updates (all words 1, then all words 2). Reader: two read attempts racing with
/// it; every accepted read must be uniform. After the writer is joined a read must succeed and
/// see the last write.
fn model(write: WriteFn, read: ReadFn) -> impl Fn() + Sync + Send + 'static {
    move || {
        let w = Arc::new(Words {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        });
        let writer = {
            let w = w.clone();
            thread::spawn(move || {
                write(&w, &[1; N]);
                write(&w, &[2; N]);
            })
        };
        for _ in 0..2 {
            if let Some(words) = read(&w) {
                assert!(
                    words.iter().all(|&x| x == words[0]),
                    "torn read accepted: {words:?}"
                );
            }
        }
        writer.join().unwrap();
        assert_eq!(
            read(&w),
            Some([2; N]),
            "stale read after the writer finished"
        );
    }
}

fn real_write(w: &Words, v: &[u64; N]) {
    write_words(&w.seq, &w.words, v);
}

fn real_read(w: &Words) -> Option<[u64; N]> {
    try_read_words(&w.seq, &w.words).ok()
}

#[test]
fn seqlock_never_accepts_a_torn_read() {
    builder(3).check(model(real_write, real_read));
}

/// The exact slot functions the shm code uses, on a real 7-word slot (one update, one read).
#[test]
fn real_slot_never_accepts_a_torn_read() {
    builder(2).check(|| {
        let slot = Arc::new(Slot::new());
        let writer = {
            let slot = slot.clone();
            thread::spawn(move || write_slot(&slot, &[1; SLOT_WORDS]))
        };
        if let Ok(words) = try_read_slot(&slot) {
            assert!(
                words == [0; SLOT_WORDS] || words == [1; SLOT_WORDS],
                "{words:?}"
            );
        }
        writer.join().unwrap();
        assert_eq!(try_read_slot(&slot), Ok([1; SLOT_WORDS]));
    });
}

// ----- negative controls: copies of the protocol with one fence removed -----

fn write_without_release_fence(w: &Words, v: &[u64; N]) {
    let s = w.seq.load(Ordering::Relaxed);
    w.seq.store(s + 1, Ordering::Relaxed);
    // fence(Ordering::Release) removed
    for (a, x) in w.words.iter().zip(v) {
        a.store(*x, Ordering::Relaxed);
    }
    w.seq.store(s + 2, Ordering::Release);
}

fn read_without_second_fence(w: &Words) -> Option<[u64; N]> {
    let s1 = w.seq.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    if s1 & 1 == 1 {
        return None;
    }
    let out: [u64; N] = std::array::from_fn(|i| w.words[i].load(Ordering::Relaxed));
    // fence(Ordering::Acquire) removed
    let s2 = w.seq.load(Ordering::Relaxed);
    (s1 == s2).then_some(out)
}

fn read_without_first_fence(w: &Words) -> Option<[u64; N]> {
    let s1 = w.seq.load(Ordering::Relaxed);
    // fence(Ordering::Acquire) removed
    if s1 & 1 == 1 {
        return None;
    }
    let out: [u64; N] = std::array::from_fn(|i| w.words[i].load(Ordering::Relaxed));
    fence(Ordering::Acquire);
    let s2 = w.seq.load(Ordering::Relaxed);
    (s1 == s2).then_some(out)
}

#[test]
#[should_panic(expected = "torn read accepted")]
fn negative_control_writer_without_release_fence() {
    builder(3).check(model(write_without_release_fence, real_read));
}

#[test]
#[should_panic(expected = "torn read accepted")]
fn negative_control_reader_without_second_acquire_fence() {
    builder(3).check(model(real_write, read_without_second_fence));
}

#[test]
#[should_panic(expected = "torn read accepted")]
fn negative_control_reader_without_first_acquire_fence() {
    builder(3).check(model(real_write, read_without_first_fence));
}
