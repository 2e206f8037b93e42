//! The seqlock that guards a record rewritten in place: an ARP slot, a next-hop record
//! (docs/shared-memory.md, "Reading a record"; model-checked in `tests/loom_seqlock.rs`).
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

use super::sync::{fence, AtomicU64, Ordering};

/// Writes `words` into `dst` under the sequence word `seq`. Only the single writer of the table
/// may call this.
pub fn write_words<const N: usize>(seq: &AtomicU64, dst: &[AtomicU64; N], words: &[u64; N]) {
    // We are the only writer, so our own last store is what we read.
    let s = seq.load(Ordering::Relaxed);
    // An odd word here can only come from a crashed writer of the same file; writers never
    // reuse such files, but stay on the even/odd convention regardless.
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
    /// The record was being written (odd sequence word) or changed during the read.
    Busy,
}

/// One read attempt: the words if they were read torn-free.
#[inline]
pub fn try_read_words<const N: usize>(
    seq: &AtomicU64,
    src: &[AtomicU64; N],
) -> Result<[u64; N], ReadError> {
    let s1 = seq.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    if s1 & 1 == 1 {
        return Err(ReadError::Busy);
    }
    let mut out = [0u64; N];
    for (o, w) in out.iter_mut().zip(src) {
        *o = w.load(Ordering::Relaxed);
    }
    fence(Ordering::Acquire);
    if seq.load(Ordering::Relaxed) == s1 {
        Ok(out)
    } else {
        Err(ReadError::Busy)
    }
}

/// Attempts spent spinning before a reader starts yielding its CPU to a (possibly descheduled)
/// writer.
#[cfg(not(loom))]
pub const SPIN_ATTEMPTS: u32 = 128;

/// How long a reader retries one record between checks of whether its writer is still there.
#[cfg(not(loom))]
pub const READ_PATIENCE: std::time::Duration = std::time::Duration::from_millis(2);

/// How long a reader waits for a live writer to finish a record before it gives up and answers
/// "busy": a writer descheduled for this long in the middle of one record was stopped
/// (SIGSTOP, a debugger), and a data plane must not stall behind it.
#[cfg(not(loom))]
pub const BUSY_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// What a patient read of a record came to.
#[cfg(not(loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patient<const N: usize> {
    /// Read torn-free.
    Read([u64; N]),
    /// The record stayed in the middle of a write and its writer is gone (it died mid-write):
    /// callers skip it; the next writer repairs it.
    Abandoned,
    /// The record stayed in the middle of a write for [`BUSY_AFTER`] while its writer lives.
    Busy,
}

/// Reads a record, waiting for the writer to finish it while `writer_alive()` says the writer
/// is there (asked after spinning, then every [`READ_PATIENCE`]), for at most [`BUSY_AFTER`].
#[cfg(not(loom))]
pub fn read_patient<const N: usize>(
    seq: &AtomicU64,
    src: &[AtomicU64; N],
    writer_alive: impl Fn() -> bool,
) -> Patient<N> {
    for _ in 0..SPIN_ATTEMPTS {
        if let Ok(w) = try_read_words(seq, src) {
            return Patient::Read(w);
        }
        std::hint::spin_loop();
    }
    let start = std::time::Instant::now();
    let mut since = start;
    loop {
        std::thread::yield_now();
        if let Ok(w) = try_read_words(seq, src) {
            return Patient::Read(w);
        }
        if since.elapsed() > READ_PATIENCE {
            if !writer_alive() {
                // One last look: the writer may have finished the record just before it went.
                return match try_read_words(seq, src) {
                    Ok(w) => Patient::Read(w),
                    Err(_) => Patient::Abandoned,
                };
            }
            if start.elapsed() > BUSY_AFTER {
                return Patient::Busy;
            }
            since = std::time::Instant::now();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn record() -> (AtomicU64, [AtomicU64; 3]) {
        (AtomicU64::new(0), Default::default())
    }

    #[test]
    fn write_then_read() {
        let (seq, words) = record();
        assert_eq!(try_read_words(&seq, &words), Ok([0; 3]));
        write_words(&seq, &words, &[1, 2, 3]);
        assert_eq!(seq.load(Ordering::Relaxed), 2);
        assert_eq!(
            read_patient(&seq, &words, || false),
            Patient::Read([1, 2, 3])
        );
    }

    #[test]
    fn an_odd_record_is_given_up_on_once_the_writer_is_gone() {
        let (seq, words) = record();
        seq.store(5, Ordering::Relaxed);
        assert_eq!(try_read_words(&seq, &words), Err(ReadError::Busy));
        assert_eq!(read_patient(&seq, &words, || false), Patient::Abandoned);
        // A writer repairs it.
        write_words(&seq, &words, &[9; 3]);
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 0);
        assert_eq!(read_patient(&seq, &words, || false), Patient::Read([9; 3]));
    }

    /// A stopped writer (alive, but not finishing) makes the reader answer busy, not wait.
    #[test]
    fn a_stopped_writer_makes_the_read_busy() {
        let (seq, words) = record();
        seq.store(3, Ordering::Relaxed);
        assert_eq!(read_patient(&seq, &words, || true), Patient::Busy);
    }

    /// A writer descheduled in the middle of a record for longer than the patience is waited
    /// for while it is alive: the reader gets the finished record. (The writer finishes when
    /// the reader first asks whether it lives: no timing involved.)
    #[test]
    fn a_live_writer_is_waited_for() {
        let (seq, words) = record();
        write_words(&seq, &words, &[1; 3]);
        seq.store(3, Ordering::Relaxed);
        let got = read_patient(&seq, &words, || {
            words[0].store(7, Ordering::Relaxed);
            seq.store(4, Ordering::Release);
            true
        });
        assert_eq!(got, Patient::Read([7, 1, 1]));
    }
}
