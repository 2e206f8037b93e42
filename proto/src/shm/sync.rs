//! The atomics the shared-memory code uses: `std`'s normally, loom's under `--cfg loom` so the
//! read protocols can be model-checked unchanged; and the record shapes built from them.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A 64-byte cache line of eight words: the unit of the route heap and of next-hop records.
pub type Line = [AtomicU64; 8];
/// A 32-byte ARP slot of four words.
#[cfg(not(loom))]
pub type Quad = [AtomicU64; 4];

/// A cache hint (see `mapping::prefetch`); nothing under loom.
#[cfg(not(loom))]
pub(crate) use super::mapping::prefetch;

/// A cache hint (see `mapping::prefetch`); nothing under loom.
#[cfg(loom)]
#[inline(always)]
pub(crate) fn prefetch<T>(_: &T) {}

/// Sixteen sorted u16 lanes at most a key (see `mapping::lanes_le`).
#[cfg(not(loom))]
pub(crate) use super::mapping::lanes_le;

/// Sixteen sorted u16 lanes at most a key (see `mapping::lanes_le`), computed lane by lane.
#[cfg(loom)]
pub(crate) fn lanes_le(w: [u64; 4], key: u32) -> u32 {
    w.iter()
        .flat_map(|x| (0..4).map(move |i| (x >> (16 * i)) as u16))
        .take_while(|&s| u32::from(s) <= key)
        .count() as u32
}
