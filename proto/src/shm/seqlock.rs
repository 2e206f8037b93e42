//! The per-slot seqlock (the recipe in FACTS.md, model-checked in `tests/loom_seqlock.rs`).
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

use super::layout::{Slot, SLOT_WORDS};
use super::sync::{fence, AtomicU64, Ordering};

/// Writes all slot words under the seqlock. Only the single writer of the table may call this.
pub fn write_slot(slot: &Slot, words: &[u64; SLOT_WORDS]) {
    write_words(&slot.seq, &slot.words, words);
}

/// The writer side for any number of words guarded by `seq` ([`write_slot`] is this with the
/// slot's 7 words; the loom model checks it with fewer words to stay small).
pub fn write_words<const N: usize>(seq: &AtomicU64, dst: &[AtomicU64; N], words: &[u64; N]) {
    // We are the only writer, so our own last store is what we read.
    let s = seq.load(Ordering::Relaxed);
    // An odd word here can only come from a crashed writer of the same file; writers never reuse
    // such files, but stay on the even/odd convention regardless.
    let s = s & !1;
    seq.store(s.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
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
pub fn try_read_slot(slot: &Slot) -> Result<[u64; SLOT_WORDS], ReadError> {
    try_read_words(&slot.seq, &slot.words)
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
pub enum Since {
    /// The sequence word is still the even `known` one: the contents are those read at it.
    Unchanged,
    /// Read torn-free at this (even) sequence word.
    Read(u64, [u64; SLOT_WORDS]),
}

/// [`try_read_slot`] for a reader that remembers the contents it read at sequence word `known`:
/// if the word is still `known`, nothing else is loaded. Sound because the writer moves the word
/// on (by 2) with every write and never back, so an equal even word means no write since.
#[inline]
pub fn try_read_slot_since(slot: &Slot, known: Option<u64>) -> Result<Since, ReadError> {
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
pub fn read_slot(slot: &Slot, writer_alive: impl Fn() -> bool) -> Option<[u64; SLOT_WORDS]> {
    for _ in 0..SPIN_ATTEMPTS {
        match try_read_slot(slot) {
            Ok(w) => return Some(w),
            Err(ReadError::Busy) => std::hint::spin_loop(),
        }
    }
    let mut since = std::time::Instant::now();
    loop {
        std::thread::yield_now();
        if let Ok(w) = try_read_slot(slot) {
            return Some(w);
        }
        if since.elapsed() > READ_PATIENCE {
            if !writer_alive() {
                // One last look: the writer may have finished the slot just before it went.
                return try_read_slot(slot).ok();
            }
            since = std::time::Instant::now();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
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
