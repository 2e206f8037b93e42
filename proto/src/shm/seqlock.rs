//! The per-slot seqlock (docs/shared-memory.md, "Reading a slot"; model-checked in
//! `tests/loom_seqlock.rs`).
//!
//! There is exactly one writer per table (the process that owns the mapping read-write); readers
//! are other processes with a read-only mapping, so they may only do `Relaxed` loads and fences.
//!
//! - writer: `seq = s+1 (Relaxed); fence(Release); payload stores (Relaxed); seq = s+2 (Release)`
//! - reader: `s1 = seq (Relaxed); fence(Acquire); if s1 odd: retry; payload loads (Relaxed);
//!   fence(Acquire); s2 = seq (Relaxed); accept iff s1 == s2`
//!
//! If the payload loads saw any store of a write that began after `s1` was read, the second
//! acquire fence makes that write's `seq = s+1` store visible to the `s2` load, so `s1 != s2`.

use super::layout::SlotN;
use super::sync::{fence, AtomicU64, Ordering};

/// Writes all slot words under the seqlock. Only the single writer of the table may call this.
pub fn write_slot<const N: usize>(slot: &SlotN<N>, words: &[u64; N]) {
    write_words(&slot.seq, &slot.words, words);
}

/// [`write_slot`] that also runs `inside` while the slot is odd, after the release fence and
/// before the words are stored: a reader that reads the slot torn-free before and after
/// something else (the writer's other stores made by `inside`) knows those stores did not
/// happen in between.
pub fn write_slot_around<const N: usize>(slot: &SlotN<N>, words: &[u64; N], inside: impl FnOnce()) {
    write_words_around(&slot.seq, &slot.words, words, inside);
}

/// The writer side for any number of words guarded by `seq` ([`write_slot`] is this with the
/// slot's words; the loom model checks it with 3 words to stay small).
pub fn write_words<const N: usize>(seq: &AtomicU64, dst: &[AtomicU64; N], words: &[u64; N]) {
    write_words_around(seq, dst, words, || {});
}

/// [`write_words`] running `inside` while the sequence word is odd (see [`write_slot_around`]).
pub fn write_words_around<const N: usize>(
    seq: &AtomicU64,
    dst: &[AtomicU64; N],
    words: &[u64; N],
    inside: impl FnOnce(),
) {
    // We are the only writer, so our own last store is what we read.
    let s = seq.load(Ordering::Relaxed);
    // An odd word here can only come from a crashed writer of the same file; writers never reuse
    // such files, but stay on the even/odd convention regardless.
    let s = s & !1;
    seq.store(s.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    inside();
    for (w, v) in dst.iter().zip(words) {
        w.store(*v, Ordering::Relaxed);
    }
    seq.store(s.wrapping_add(2), Ordering::Release);
}

/// Why a single read attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The slot was being written (odd sequence word) or changed during the read.
    Busy,
}

/// One read attempt: the slot words if they were read torn-free.
#[inline]
pub fn try_read_slot<const N: usize>(slot: &SlotN<N>) -> Result<[u64; N], ReadError> {
    try_read_words(&slot.seq, &slot.words)
}

/// [`try_read_slot`], also answering the (even) sequence word the words were read at.
#[inline]
pub fn try_read_slot_at<const N: usize>(slot: &SlotN<N>) -> Result<(u64, [u64; N]), ReadError> {
    let s1 = begin_read(&slot.seq)?;
    read_words_from(&slot.seq, &slot.words, s1).map(|w| (s1, w))
}

/// Whether the slot's sequence word is still `s1`, with an acquire fence before the load: true
/// means no write of the slot began since it was read at `s1`, whatever else was loaded since.
#[inline]
pub fn unchanged<const N: usize>(slot: &SlotN<N>, s1: u64) -> bool {
    fence(Ordering::Acquire);
    slot.seq.load(Ordering::Relaxed) == s1
}

/// The reader side for any number of words guarded by `seq` (see [`write_words`]).
#[inline]
pub fn try_read_words<const N: usize>(
    seq: &AtomicU64,
    src: &[AtomicU64; N],
) -> Result<[u64; N], ReadError> {
    read_words_from(seq, src, begin_read(seq)?)
}

/// The reader's first step: the sequence word (then an acquire fence); `Busy` if it is odd.
#[inline]
fn begin_read(seq: &AtomicU64) -> Result<u64, ReadError> {
    let s1 = seq.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    if s1 & 1 == 1 {
        return Err(ReadError::Busy);
    }
    Ok(s1)
}

/// The rest of a read begun at the even sequence word `s1`: the words, an acquire fence, and
/// the check that the sequence word has not moved.
#[inline]
fn read_words_from<const N: usize>(
    seq: &AtomicU64,
    src: &[AtomicU64; N],
    s1: u64,
) -> Result<[u64; N], ReadError> {
    let mut out = [0u64; N];
    for (o, w) in out.iter_mut().zip(src) {
        *o = w.load(Ordering::Relaxed);
    }
    fence(Ordering::Acquire);
    let s2 = seq.load(Ordering::Relaxed);
    if s1 == s2 {
        Ok(out)
    } else {
        Err(ReadError::Busy)
    }
}

/// A read attempt of a slot whose contents the reader may already know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since<const N: usize> {
    /// The sequence word is still the even `known` one: the contents are those read at it.
    Unchanged,
    /// Read torn-free at this (even) sequence word.
    Read(u64, [u64; N]),
}

/// [`try_read_slot`] for a reader that remembers the contents it read at sequence word `known`:
/// if the word is still `known`, nothing else is loaded. Sound because the writer moves the word
/// on (by 2) with every write and never back, so an equal even word means no write since.
#[inline]
pub fn try_read_slot_since<const N: usize>(
    slot: &SlotN<N>,
    known: Option<u64>,
) -> Result<Since<N>, ReadError> {
    let s1 = begin_read(&slot.seq)?;
    if known == Some(s1) {
        return Ok(Since::Unchanged);
    }
    read_words_from(&slot.seq, &slot.words, s1).map(|w| Since::Read(s1, w))
}

/// Attempts spent spinning before a reader starts yielding its CPU to a (possibly descheduled)
/// writer.
#[cfg(not(loom))]
pub const SPIN_ATTEMPTS: u32 = 128;

/// How long a reader retries one slot between checks of whether its writer is still there.
/// A live writer finishes a slot in nanoseconds unless it is descheduled; a writer that died
/// mid-update leaves the slot odd forever (layout: "Writer liveness").
#[cfg(not(loom))]
pub const READ_PATIENCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Reads a slot, waiting for the writer to finish it while `writer_alive()` says the writer is
/// there (asked after spinning, then every [`READ_PATIENCE`]). `None` means the slot stayed
/// unreadable and its writer is gone (died mid-update); callers skip such a slot.
#[cfg(not(loom))]
pub fn read_slot<const N: usize>(
    slot: &SlotN<N>,
    writer_alive: impl Fn() -> bool,
) -> Option<[u64; N]> {
    read_slot_at(slot, writer_alive).map(|(_, w)| w)
}

/// [`read_slot`], also answering the (even) sequence word the words were read at.
#[cfg(not(loom))]
pub fn read_slot_at<const N: usize>(
    slot: &SlotN<N>,
    writer_alive: impl Fn() -> bool,
) -> Option<(u64, [u64; N])> {
    for _ in 0..SPIN_ATTEMPTS {
        match try_read_slot_at(slot) {
            Ok(r) => return Some(r),
            Err(ReadError::Busy) => std::hint::spin_loop(),
        }
    }
    let mut since = std::time::Instant::now();
    loop {
        std::thread::yield_now();
        if let Ok(r) = try_read_slot_at(slot) {
            return Some(r);
        }
        if since.elapsed() > READ_PATIENCE {
            if !writer_alive() {
                // One last look: the writer may have finished the slot just before it went.
                return try_read_slot_at(slot).ok();
            }
            since = std::time::Instant::now();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::layout::{Slot, SLOT_WORDS};
    use std::sync::atomic::Ordering;

    #[test]
    fn write_then_read() {
        let slot = Slot::new();
        assert_eq!(try_read_slot(&slot), Ok([0; SLOT_WORDS]));
        write_slot(&slot, &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(slot.seq.load(Ordering::Relaxed), 2);
        assert_eq!(read_slot(&slot, || false), Some([1, 2, 3, 4, 5, 6, 7]));
    }

    #[test]
    fn a_known_slot_is_not_read_again_until_it_changes() {
        let slot = Slot::new();
        write_slot(&slot, &[1; SLOT_WORDS]);
        let Ok(Since::Read(s, w)) = try_read_slot_since(&slot, None) else {
            panic!("a stable slot reads");
        };
        assert_eq!((s, w), (2, [1; SLOT_WORDS]));
        assert_eq!(try_read_slot_since(&slot, Some(s)), Ok(Since::Unchanged));
        write_slot(&slot, &[2; SLOT_WORDS]);
        assert_eq!(
            try_read_slot_since(&slot, Some(s)),
            Ok(Since::Read(4, [2; SLOT_WORDS]))
        );
        slot.seq.store(5, Ordering::Relaxed);
        assert_eq!(try_read_slot_since(&slot, Some(4)), Err(ReadError::Busy));
    }

    #[test]
    fn odd_slot_is_given_up_on_once_the_writer_is_gone() {
        let slot = Slot::new();
        slot.seq.store(5, Ordering::Relaxed);
        assert_eq!(try_read_slot(&slot), Err(ReadError::Busy));
        let t = std::time::Instant::now();
        assert_eq!(read_slot(&slot, || false), None);
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // A writer repairs it.
        write_slot(&slot, &[9; SLOT_WORDS]);
        assert_eq!(slot.seq.load(Ordering::Relaxed) & 1, 0);
        assert_eq!(read_slot(&slot, || false), Some([9; SLOT_WORDS]));
    }

    /// A writer descheduled in the middle of a slot for longer than the patience is waited for
    /// while it is alive: the reader gets the finished slot, not `None`.
    #[test]
    fn a_live_writer_is_waited_for() {
        use std::sync::atomic::AtomicBool;
        let slot = Slot::new();
        write_slot(&slot, &[1; SLOT_WORDS]);
        slot.seq.store(3, Ordering::Relaxed);
        let asked = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(READ_PATIENCE * 20);
                slot.words[0].store(7, Ordering::Relaxed);
                slot.seq.store(4, Ordering::Release);
            });
            let got = read_slot(&slot, || {
                asked.store(true, Ordering::Relaxed);
                true
            });
            assert_eq!(got.map(|w| w[0]), Some(7));
        });
        assert!(asked.load(Ordering::Relaxed), "liveness was never asked");
    }
}
