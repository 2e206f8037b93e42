//! The only module with `unsafe`: mapping table files and viewing the mapped bytes as a
//! [`Header`], a slice of hash slots and, for route tables, the LPM arrays (`tbl24`, `tbl8`) as
//! slices of `AtomicU32` plus the next-hop slots; and [`prefetch`], a cache hint.
//!
//! Invariants every view relies on:
//! - the mapping is page aligned (mmap guarantees it; checked anyway) and at least as long as the
//!   header plus `slot_count` slots and the LPM arrays (checked in [`Mapping::read_only`] /
//!   [`Mapping::with_geometry`]);
//! - the mapped bytes are only ever accessed through the atomics in `Header`, `SlotN` and the
//!   `AtomicU32` entry words, never as
//!   `&[u8]` (we never deref the memmap2 objects), so other processes writing the file concurrently
//!   is not a data race in the Rust sense;
//! - a read-only mapping is only loaded from (readers use `Relaxed` loads and fences; no code path
//!   of `ShmReader` stores). A stray store would fault, not corrupt.
//!
//! What cannot be checked: another process shrinking the file while it is mapped makes accesses
//! past the new end raise SIGBUS. rtm writers never shrink a published file; they replace it.

use std::fs::File;
use std::io;
use std::mem::size_of;

use memmap2::{Mmap, MmapMut};

use super::layout::{
    Geometry, HashSlot, Header, LpmRegions, Slot, GROUP_ENTRIES, HEADER_SIZE, TBL24_ENTRIES,
};
use super::sync::AtomicU32;

/// Maps a whole file read-only (`PROT_READ`, `MAP_SHARED`).
pub(crate) fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: memmap2 marks mapping unsafe because the file may change underneath the mapping
    // while safe code holds `&[u8]` to it. We never create `&[u8]`/`&mut [u8]` over the mapping:
    // it is only accessed through atomics via `Mapping::header`/`Mapping::slots`, for which
    // concurrent modification by other processes is expected and well-defined.
    unsafe { Mmap::map(file) }
}

/// Maps a whole file read-write (`PROT_READ | PROT_WRITE`, `MAP_SHARED`).
pub(crate) fn map_read_write(file: &File) -> io::Result<MmapMut> {
    // SAFETY: as in `map_read_only`: the mapping is only accessed through atomics, never as a
    // byte slice, so concurrent access by readers in other processes is not a data race.
    unsafe { MmapMut::map_mut(file) }
}

enum Backing {
    ReadOnly(Mmap),
    ReadWrite(MmapMut),
}

/// A mapped table file with its validated geometry.
pub(crate) struct Mapping {
    backing: Backing,
    slot_count: usize,
    /// Size of one hash slot (0 until `with_geometry`).
    slot_size: usize,
    /// The LPM regions as checked by `with_geometry`; all zero without LPM arrays.
    lpm: LpmRegions,
}

impl Mapping {
    /// A read-only mapping; only the header is viewable until [`Mapping::with_slots`].
    pub(crate) fn read_only(map: Mmap) -> Result<Mapping, String> {
        Mapping::checked(Backing::ReadOnly(map))
    }

    /// A read-write mapping; only the header is viewable until [`Mapping::with_slots`].
    pub(crate) fn read_write(map: MmapMut) -> Result<Mapping, String> {
        Mapping::checked(Backing::ReadWrite(map))
    }

    fn checked(backing: Backing) -> Result<Mapping, String> {
        let m = Mapping {
            backing,
            slot_count: 0,
            slot_size: 0,
            lpm: LpmRegions::default(),
        };
        if m.len() < HEADER_SIZE {
            return Err(format!(
                "file is {} bytes, shorter than the {HEADER_SIZE}-byte header",
                m.len()
            ));
        }
        if m.base() as usize % HEADER_SIZE != 0 {
            return Err("mapping is not page aligned".to_string());
        }
        Ok(m)
    }

    /// Makes the slots (and LPM arrays) of `geo` viewable; the mapping must be exactly as long
    /// as `geo` says.
    pub(crate) fn with_geometry(mut self, geo: &Geometry) -> Result<Mapping, String> {
        let n = geo.slot_count;
        match geo.file_len() {
            Some(want) if want == self.len() => {
                if let Some(l) = geo.lpm {
                    // Geometry::new guarantees these; re-check what the views rely on.
                    if l.tbl24 % HEADER_SIZE != 0
                        || l.tbl24 < HEADER_SIZE + n * geo.slot_size
                        || l.tbl8 != l.tbl24 + TBL24_ENTRIES * 4
                        || l.nexthops != l.tbl8 + l.groups * GROUP_ENTRIES * 4
                        || l.nexthops + l.nexthop_count * size_of::<Slot>() != want
                    {
                        return Err("inconsistent LPM geometry".to_string());
                    }
                    self.lpm = l;
                }
                if geo.slot_size == 0 || HEADER_SIZE % geo.slot_size != 0 {
                    return Err(format!("bad slot size {}", geo.slot_size));
                }
                self.slot_count = n;
                self.slot_size = geo.slot_size;
                Ok(self)
            }
            Some(want) => Err(format!(
                "file is {} bytes but {n} slots{} need {want}",
                self.len(),
                if geo.lpm.is_some() {
                    " and the LPM arrays"
                } else {
                    ""
                }
            )),
            None => Err(format!("slot count {n} overflows")),
        }
    }

    fn base(&self) -> *const u8 {
        match &self.backing {
            Backing::ReadOnly(m) => m.as_ptr(),
            Backing::ReadWrite(m) => m.as_ptr(),
        }
    }

    fn len(&self) -> usize {
        match &self.backing {
            Backing::ReadOnly(m) => m.len(),
            Backing::ReadWrite(m) => m.len(),
        }
    }

    /// Whether stores through this mapping are allowed.
    pub(crate) fn is_writable(&self) -> bool {
        matches!(self.backing, Backing::ReadWrite(_))
    }

    /// The header at offset 0.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `checked` verified the mapping is at least HEADER_SIZE (= size_of::<Header>())
        // bytes and page aligned (>= align_of::<Header>()). Header is repr(C) and made only of
        // atomics, for which every bit pattern is valid and shared mutation is allowed. The
        // reference borrows `self`, which owns the mapping, so it cannot outlive it.
        unsafe { &*(self.base() as *const Header) }
    }

    /// The `slot_count` hash slots after the header, as slots of type `S`.
    ///
    /// # Panics
    /// If `S` is not the file's slot size (the caller picked the wrong table kind's slots).
    pub(crate) fn slots<S: HashSlot>(&self) -> &[S] {
        let n = self.slot_count;
        assert!(
            n == 0 || size_of::<S>() == self.slot_size,
            "{}-byte slots asked of a file of {}-byte slots",
            size_of::<S>(),
            self.slot_size
        );
        // SAFETY: `with_geometry` verified the mapping holds HEADER_SIZE + slot_count *
        // slot_size bytes (slot_count is 0 before that, giving an empty slice), and the assert
        // above that `S` is exactly slot_size bytes. `S` is a `SlotN` (HashSlot is sealed):
        // repr(C) of atomics, so any bit pattern is valid and shared mutation is allowed; its
        // alignment (32) divides HEADER_SIZE and the page-aligned base. The slice borrows
        // `self`, which owns the mapping.
        unsafe { std::slice::from_raw_parts(self.base().add(HEADER_SIZE) as *const S, n) }
    }

    /// tbl24 (2^24 entry words) of a route table; empty for other tables.
    pub(crate) fn tbl24(&self) -> &[AtomicU32] {
        let off = self.lpm.tbl24;
        let len = if off == 0 { 0 } else { TBL24_ENTRIES };
        // SAFETY: `with_geometry` set `lpm` only after checking that the mapping holds
        // TBL24_ENTRIES * 4 bytes at the page-aligned offset `off` (so 4-byte aligned) before
        // the tbl8 region; with `off == 0` the slice is empty and the pointer is only the
        // (aligned, non-null) base. AtomicU32 accepts every bit pattern and shared mutation, and
        // the slice borrows `self`, which owns the mapping.
        unsafe { std::slice::from_raw_parts(self.base().add(off) as *const AtomicU32, len) }
    }

    /// The tbl8 groups of a route table (256 entry words each); empty for other tables.
    pub(crate) fn tbl8(&self) -> &[AtomicU32] {
        let (off, len) = (self.lpm.tbl8, self.lpm.groups * GROUP_ENTRIES);
        // SAFETY: `with_geometry` checked that `len` entry words at offset `off` (page aligned,
        // so 4-byte aligned) end exactly where the next-hop slots begin, inside the mapping;
        // `len == 0` (with `off == 0`) gives an empty slice at the aligned base. Same atomics
        // argument as `tbl24`.
        unsafe { std::slice::from_raw_parts(self.base().add(off) as *const AtomicU32, len) }
    }

    /// The next-hop slots of a route table; empty for other tables.
    pub(crate) fn nexthops(&self) -> &[Slot] {
        let (off, len) = (self.lpm.nexthops, self.lpm.nexthop_count);
        // SAFETY: `with_geometry` checked that `len` slots at offset `off` end exactly at the end
        // of the mapping; `off` is the tbl8 offset (page aligned) plus a multiple of 1024, so
        // 64-byte aligned (Slot requires 32). `len == 0` (with `off == 0`) gives an empty slice at
        // the aligned base. Slot is repr(C) of atomics (any bit pattern valid, shared mutation
        // allowed), and the slice borrows `self`, which owns the mapping.
        unsafe { std::slice::from_raw_parts(self.base().add(off) as *const Slot, len) }
    }
}

/// Starts loading the cache line holding `*r` into the caches without waiting for it (a
/// prefetch): the writer issues those of many coming changes together so that their misses
/// overlap, and unlike a load a prefetch does not hold up the instructions after it.
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
