//! Model-checks the record seqlock (`shm::seqlock`) with loom: a reader never accepts a torn
//! record.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p rtm-proto --test loom_seqlock --release --target-dir
//! target/loom`
//!
//! The writer fills every word of a record with the same counter value, so a read is torn iff
//! the words it returns differ. The records are the two shapes the files rewrite in place, split
//! into sequence word and payload as their readers and writers split them: an ARP slot (a
//! 4-word `Quad`: sequence word and 3 words; two updates racing two reads) and a next-hop record
//! (an 8-word line: sequence word and 7 words; one update racing one read, with a tighter bound:
//! 7 relaxed loads make the state space large, and the loop is the same).
//!
//! The writer runs on the model's own thread and the reader on a thread it spawns: loom 0.7's
//! exploration misses orderings where a thread loads a word just before storing it (as
//! `write_words` does with the sequence word) and another thread loaded that word earlier
//! (tokio-rs/loom#166, #392). With the writer first, those orderings are reached from the
//! reader's side; the real protocol's tests check that the racing reads did see every write, and
//! a write in progress, in each of their reads.
//!
//! The negative controls run copies of the protocol with one fence removed and expect loom to
//! find a torn read (`#[should_panic]`): they show the model is strong enough to catch a missing
//! fence.
#![forbid(unsafe_code)]
#![cfg(loom)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use loom::sync::atomic::{fence, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use rtm_proto::shm::seqlock::{try_read_words, write_words};

/// Payload words of an ARP slot.
const N: usize = 3;

/// An ARP slot: the sequence word, then the payload.
type Quad = [AtomicU64; 4];
/// A next-hop record: the sequence word, then the payload.
type Line = [AtomicU64; 8];

type WriteFn = fn(&Quad, &[u64; N]);
type ReadFn = fn(&Quad) -> Option<[u64; N]>;

fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b
}

/// Splits a record as the readers and writers do: sequence word, payload.
fn split<const W: usize, const P: usize>(r: &[AtomicU64; W]) -> (&AtomicU64, &[AtomicU64; P]) {
    let (seq, rest) = r.split_first().expect("a record has a sequence word");
    (seq, rest.try_into().expect("payload words"))
}

/// What the racing reads of an exploration came to: for each read (first, second), the value of
/// the accepted read (all its words are equal), `None` for a read refused.
type Outcomes = std::sync::Arc<Mutex<BTreeSet<(usize, Option<u64>)>>>;

/// Writer: two updates (all words 1, then all words 2). Reader: two read attempts racing with
/// it; every accepted read must be uniform. After the writer is done a read must succeed and
/// see the last write.
fn model(write: WriteFn, read: ReadFn, outcomes: Outcomes) -> impl Fn() + Sync + Send + 'static {
    move || {
        let q: Arc<Quad> = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
        let reader = {
            let q = q.clone();
            thread::spawn(move || [read(&q), read(&q)])
        };
        write(&q, &[1; N]);
        write(&q, &[2; N]);
        for (i, words) in reader.join().unwrap().into_iter().enumerate() {
            if let Some(words) = words {
                assert!(
                    words.iter().all(|&x| x == words[0]),
                    "torn read accepted: {words:?}"
                );
            }
            outcomes.lock().unwrap().insert((i, words.map(|w| w[0])));
        }
        assert_eq!(
            read(&q),
            Some([2; N]),
            "stale read after the writer finished"
        );
    }
}

fn real_write(q: &Quad, v: &[u64; N]) {
    let (seq, words) = split(q);
    write_words(seq, words, v);
}

fn real_read(q: &Quad) -> Option<[u64; N]> {
    let (seq, words) = split(q);
    try_read_words(seq, words).ok()
}

#[test]
fn arp_slot_never_accepts_a_torn_read() {
    let outcomes = Outcomes::default();
    builder(3).check(model(real_write, real_read, outcomes.clone()));
    let seen = outcomes.lock().unwrap().clone();
    let every: BTreeSet<_> = (0..2)
        .flat_map(|i| [None, Some(0), Some(1), Some(2)].map(|o| (i, o)))
        .collect();
    assert_eq!(
        seen, every,
        "the racing reads did not each meet every write"
    );
}

/// The same functions on a next-hop record's shape (one update, one read).
#[test]
fn next_hop_record_never_accepts_a_torn_read() {
    let outcomes = Outcomes::default();
    let record = outcomes.clone();
    builder(2).check(move || {
        let line: Arc<Line> = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
        let reader = {
            let line = line.clone();
            thread::spawn(move || {
                let (seq, words) = split::<8, 7>(&line);
                try_read_words(seq, words).ok()
            })
        };
        let (seq, words) = split::<8, 7>(&line);
        write_words(seq, words, &[1; 7]);
        let read = reader.join().unwrap();
        if let Some(w) = read {
            assert!(w == [0; 7] || w == [1; 7], "torn read accepted: {w:?}");
        }
        record.lock().unwrap().insert((0, read.map(|w| w[0])));
        assert_eq!(try_read_words(seq, words), Ok([1; 7]));
    });
    let seen = outcomes.lock().unwrap().clone();
    assert_eq!(
        seen,
        BTreeSet::from([(0, None), (0, Some(0)), (0, Some(1))]),
        "the racing read did not meet every write"
    );
}

// ----- negative controls: copies of the protocol with one fence removed -----

fn write_without_release_fence(q: &Quad, v: &[u64; N]) {
    let (seq, words) = split::<4, N>(q);
    let s = seq.load(Ordering::Relaxed) & !1;
    seq.store(s + 1, Ordering::Relaxed);
    // fence(Ordering::Release) removed
    for (a, x) in words.iter().zip(v) {
        a.store(*x, Ordering::Relaxed);
    }
    seq.store(s + 2, Ordering::Release);
}

fn read_without_second_fence(q: &Quad) -> Option<[u64; N]> {
    let (seq, words) = split::<4, N>(q);
    let s1 = seq.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    if s1 & 1 == 1 {
        return None;
    }
    let out: [u64; N] = std::array::from_fn(|i| words[i].load(Ordering::Relaxed));
    // fence(Ordering::Acquire) removed
    let s2 = seq.load(Ordering::Relaxed);
    (s1 == s2).then_some(out)
}

fn read_without_first_fence(q: &Quad) -> Option<[u64; N]> {
    let (seq, words) = split::<4, N>(q);
    let s1 = seq.load(Ordering::Relaxed);
    // fence(Ordering::Acquire) removed
    if s1 & 1 == 1 {
        return None;
    }
    let out: [u64; N] = std::array::from_fn(|i| words[i].load(Ordering::Relaxed));
    fence(Ordering::Acquire);
    let s2 = seq.load(Ordering::Relaxed);
    (s1 == s2).then_some(out)
}

#[test]
#[should_panic(expected = "torn read accepted")]
fn negative_control_writer_without_release_fence() {
    builder(3).check(model(
        write_without_release_fence,
        real_read,
        Outcomes::default(),
    ));
}

#[test]
#[should_panic(expected = "torn read accepted")]
fn negative_control_reader_without_second_acquire_fence() {
    builder(3).check(model(
        real_write,
        read_without_second_fence,
        Outcomes::default(),
    ));
}

#[test]
#[should_panic(expected = "torn read accepted")]
fn negative_control_reader_without_first_acquire_fence() {
    builder(3).check(model(
        real_write,
        read_without_first_fence,
        Outcomes::default(),
    ));
}
