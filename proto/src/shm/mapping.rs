//! The only module with `unsafe`: mapping table files and viewing ranges of the mapped bytes as
//! the [`Header`] and as slices of atomics; and [`prefetch`], a cache hint.
//!
//! Invariants every view relies on:
//! - the mapping is page aligned (mmap guarantees it; checked anyway) and `len` bytes long;
//! - a view never reaches past `valid`, the part of the mapping the file is known to back:
//!   the owner raises `valid` only after making sure the file is that long (the writer after
//!   `fallocate`, a reader after `fstat`), and rtm writers never shrink a published file, so the
//!   pages under a view stay backed (touching a mapped page past the end of the file would raise
//!   SIGBUS);
//! - the mapped bytes are only ever accessed through atomics, never as `&[u8]` (we never deref
//!   the memmap2 objects), so other processes writing the file concurrently is not a data race
//!   in the Rust sense;
//! - a read-only mapping is only loaded from; a stray store would fault, not corrupt.

use std::fs::File;
use std::io;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::header::{Header, HEADER_SIZE};
use super::sync::{AtomicU32, Line, Quad};

enum Backing {
    ReadOnly(Mmap),
    ReadWrite(MmapMut),
}

/// A mapped table file.
pub(crate) struct Mapping {
    backing: Backing,
    /// Bytes of the mapping the file is known to back; only grows.
    valid: AtomicUsize,
}

impl Mapping {
    /// Maps `len` bytes of `file` read-only (`PROT_READ`, `MAP_SHARED`); `len` may exceed the
    /// file's length (the writer grows the file inside the mapping). `backed` is how long the
    /// caller found the file to be (`fstat`); it must hold at least the header.
    pub(crate) fn read_only(file: &File, len: usize, backed: usize) -> io::Result<Mapping> {
        // SAFETY: memmap2 marks mapping unsafe because the file may change underneath the
        // mapping while safe code holds `&[u8]` to it. We never create `&[u8]`/`&mut [u8]` over
        // the mapping: it is only accessed through atomics via the views below, for which
        // concurrent modification by other processes is expected and well-defined. Pages past
        // the end of the file are never viewed (see `valid`).
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Mapping::checked(Backing::ReadOnly(map), backed)
    }

    /// Maps `len` bytes of `file` read-write (`PROT_READ | PROT_WRITE`, `MAP_SHARED`); `backed`
    /// bytes of it are allocated in the file.
    pub(crate) fn read_write(file: &File, len: usize, backed: usize) -> io::Result<Mapping> {
        // SAFETY: as in `read_only`: only atomics ever touch the mapping, never a byte slice,
        // so readers in other processes accessing it concurrently is not a data race.
        let map = unsafe { MmapOptions::new().len(len).map_mut(file)? };
        Mapping::checked(Backing::ReadWrite(map), backed)
    }

    fn checked(backing: Backing, backed: usize) -> io::Result<Mapping> {
        let m = Mapping {
            backing,
            valid: AtomicUsize::new(0),
        };
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        if m.len() < HEADER_SIZE || backed < HEADER_SIZE {
            return Err(bad("file or mapping shorter than the header"));
        }
        m.set_valid(backed);
        if m.base() as usize % HEADER_SIZE != 0 {
            return Err(bad("mapping is not page aligned"));
        }
        Ok(m)
    }

    #[inline(always)]
    fn base(&self) -> *const u8 {
        match &self.backing {
            Backing::ReadOnly(m) => m.as_ptr(),
            Backing::ReadWrite(m) => m.as_ptr(),
        }
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        match &self.backing {
            Backing::ReadOnly(m) => m.len(),
            Backing::ReadWrite(m) => m.len(),
        }
    }

    /// Bytes the views may reach.
    #[inline(always)]
    pub(crate) fn valid(&self) -> usize {
        self.valid.load(Ordering::Relaxed)
    }

    /// Declares the first `bytes` of the mapping backed by the file. The caller must have made
    /// sure the file is at least that long (and rtm writers never shrink a published file).
    /// Never lowers the bound; clamps it to the mapping.
    pub(crate) fn set_valid(&self, bytes: usize) {
        self.valid
            .fetch_max(bytes.min(self.len()), Ordering::Relaxed);
    }

    /// The header at offset 0.
    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `checked` verified the mapping and the backed part of the file are at least
        // HEADER_SIZE (= size_of::<Header>()) bytes and the mapping page aligned
        // (>= align_of::<Header>()).
        // Header is repr(C) of atomics: every bit pattern is valid and shared mutation is
        // allowed. The reference borrows `self`, which owns the mapping.
        unsafe { &*(self.base() as *const Header) }
    }

    /// A maker of views of the mapping as it is backed now: a reader builds several views for
    /// one read from one load of `valid`.
    #[inline(always)]
    pub(crate) fn slicer(&self) -> Slicer<'_> {
        Slicer {
            base: self.base(),
            valid: self.valid(),
            _map: std::marker::PhantomData,
        }
    }

    /// `count` words of 32 bits at `offset`.
    #[inline]
    pub(crate) fn u32s(&self, offset: usize, count: usize) -> Option<&[AtomicU32]> {
        self.slicer().view(offset, count)
    }

    /// `count` 64-byte lines at `offset`.
    #[inline]
    pub(crate) fn lines(&self, offset: usize, count: usize) -> Option<&[Line]> {
        self.slicer().view(offset, count)
    }

    /// `count` 32-byte slots at `offset`.
    #[inline]
    pub(crate) fn quads(&self, offset: usize, count: usize) -> Option<&[Quad]> {
        self.slicer().view(offset, count)
    }
}

/// A range of a mapping checked once, for cheap views of its first `n` elements: the readers'
/// hot paths build their views from these instead of checking offsets per lookup.
pub(crate) struct Region<T> {
    ptr: *const T,
    /// Elements of the range inside the mapping.
    cap: usize,
    /// Elements the file backed when the region was made (views up to them need no check).
    backed: usize,
    /// The base of the mapping it lies in.
    base: *const u8,
}

// SAFETY: a Region is an address range in a mapping of atomics; sharing it between threads
// shares only that address (the views it makes are of `Sync` atomics).
unsafe impl<T: Sync> Send for Region<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Region<T> {}

impl<T> Region<T> {
    /// `cap` elements at `offset` of `map`, if they lie inside the mapping and are aligned.
    pub(crate) fn new(map: &Mapping, offset: usize, cap: usize) -> Option<Region<T>> {
        let end = cap.checked_mul(size_of::<T>())?.checked_add(offset)?;
        if end > map.len() || offset % align_of::<T>() != 0 {
            return None;
        }
        Some(Region {
            // `wrapping_add` keeps this safe; the offset is inside the mapping (checked above).
            ptr: map.base().wrapping_add(offset) as *const T,
            cap,
            backed: map.valid().saturating_sub(offset) / size_of::<T>().max(1),
            base: map.base(),
        })
    }

    /// The first `n` elements (at most `cap`), as a slice of `map`, the mapping the region was
    /// made in; an empty slice if the file does not back them.
    #[inline(always)]
    pub(crate) fn view<'a>(&self, map: &'a Mapping, n: usize) -> &'a [T] {
        assert!(
            std::ptr::eq(self.base, map.base()),
            "a region viewed outside its mapping"
        );
        let n = n.min(self.cap);
        if n > self.backed && self.offset() + n * size_of::<T>() > map.valid() {
            return &[];
        }
        // SAFETY: the region lies inside `map` (same base as the mapping it was checked in) and
        // is aligned; its first `n` elements lie within the part the file backs (`backed` when
        // it was made, or `map.valid()` now — the file never shrinks, `valid` only grows). T is
        // an atomic or an array of atomics. The slice borrows `map`, which owns the mapping.
        unsafe { std::slice::from_raw_parts(self.ptr, n) }
    }

    fn offset(&self) -> usize {
        self.ptr as usize - self.base as usize
    }

    /// [`Region::view`] without the check that `map` is the region's mapping, for callers that
    /// made that check once for several regions ([`views3`]).
    #[inline(always)]
    fn view_in<'a>(&self, map: &'a Mapping, n: usize) -> &'a [T] {
        let n = n.min(self.cap);
        if n > self.backed && self.offset() + n * size_of::<T>() > map.valid() {
            return &[];
        }
        // SAFETY: as in `view`; the caller checked that `map` is the region's mapping.
        unsafe { std::slice::from_raw_parts(self.ptr, n) }
    }
}

/// The first `n.0`, `n.1` and `n.2` elements of three regions of `map`, with one check that
/// they are all regions of `map` (the lookup path makes these three views for every lookup).
#[inline(always)]
pub(crate) fn views3<'a, A, B, C>(
    map: &'a Mapping,
    (a, b, c): (&Region<A>, &Region<B>, &Region<C>),
    n: (usize, usize, usize),
) -> (&'a [A], &'a [B], &'a [C]) {
    let base = map.base();
    assert!(
        std::ptr::eq(a.base, base) && std::ptr::eq(b.base, base) && std::ptr::eq(c.base, base),
        "a region viewed outside its mapping"
    );
    (
        a.view_in(map, n.0),
        b.view_in(map, n.1),
        c.view_in(map, n.2),
    )
}

/// Views of a mapping within the part the file backed when the slicer was made.
#[derive(Clone, Copy)]
pub(crate) struct Slicer<'a> {
    base: *const u8,
    valid: usize,
    _map: std::marker::PhantomData<&'a Mapping>,
}

impl<'a> Slicer<'a> {
    /// `count` values of type `T` at byte `offset`, if they lie inside `valid` and are aligned.
    #[inline(always)]
    pub(crate) fn view<T>(&self, offset: usize, count: usize) -> Option<&'a [T]> {
        let end = count.checked_mul(size_of::<T>())?.checked_add(offset)?;
        if end > self.valid || offset % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `base` and `valid` come from a live `Mapping` that outlives 'a (the slicer
        // borrows it): [offset, end) lies inside the mapping and inside the part the file backs
        // (`valid` only grows; see the module invariants), the base is page aligned and
        // `offset` is a multiple of T's alignment, so the pointer is aligned. Callers only
        // instantiate T with atomics or arrays of atomics (`AtomicU32`, `Line`, `Quad`), for
        // which every bit pattern is valid and shared mutation is allowed.
        Some(unsafe { std::slice::from_raw_parts(self.base.add(offset) as *const T, count) })
    }
}

/// How many of the sixteen u16 lanes of `w` (lane i = bits 16(i%4).. of word i/4) are at most
/// `key`, for lanes sorted ascending and all values below 2^15 (a chunk line's starts: the
/// lanes at most the key are the low ones). One compare of eight lanes at a time: what the
/// longest-prefix match does in every chunk line it reads.
#[inline(always)]
pub(crate) fn lanes_le(w: [u64; 4], key: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline, so every x86-64 build of rtm can run
    // `sse2_lanes_le`; it computes on its arguments only (no memory access).
    unsafe {
        sse2_lanes_le(w, key)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        w.iter()
            .flat_map(|x| (0..4).map(move |i| (x >> (16 * i)) as u16))
            .take_while(|&s| u32::from(s) <= key)
            .count() as u32
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn sse2_lanes_le(w: [u64; 4], key: u32) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpgt_epi16, _mm_movemask_epi8, _mm_packs_epi16, _mm_set1_epi16, _mm_set_epi64x,
    };
    let k = _mm_set1_epi16(key as i16);
    let lo = _mm_set_epi64x(w[1] as i64, w[0] as i64);
    let hi = _mm_set_epi64x(w[3] as i64, w[2] as i64);
    // Lanes above the key, as one byte each, in lane order; the count at most the key is the
    // position of the first one.
    let above = _mm_packs_epi16(_mm_cmpgt_epi16(lo, k), _mm_cmpgt_epi16(hi, k));
    (_mm_movemask_epi8(above) as u32 | 0x1_0000).trailing_zeros()
}

/// Starts loading the cache line holding `*r` into the caches without waiting for it (a
/// prefetch): issued for many coming reads together, their misses overlap, and unlike a load a
/// prefetch does not hold up the instructions after it.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: `_mm_prefetch` only needs SSE, which the cfg above says the whole build enables.
    // A prefetch is a hint with no architectural effect: it reads nothing into the program,
    // writes nothing, and never faults, whatever the address (here a live reference).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast(),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// The lanes at most `key`, one by one: what `lanes_le` must count for sorted lanes.
    fn one_by_one(w: [u64; 4], key: u32) -> u32 {
        (0..16)
            .map(|i| (w[i / 4] >> (16 * (i % 4))) as u16)
            .take_while(|&s| u32::from(s) <= key)
            .count() as u32
    }

    #[test]
    fn lanes_le_counts_sorted_lanes_like_one_by_one() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let mut lanes: Vec<u16> = (0..16).map(|_| rng.random_range(0..=0x4000)).collect();
            lanes.sort_unstable();
            lanes[0] = 0;
            let mut w = [0u64; 4];
            for (i, &l) in lanes.iter().enumerate() {
                w[i / 4] |= u64::from(l) << (16 * (i % 4));
            }
            let key = rng.random_range(0..0x4000);
            assert_eq!(
                super::lanes_le(w, key),
                one_by_one(w, key),
                "{lanes:?} {key}"
            );
        }
    }
}
