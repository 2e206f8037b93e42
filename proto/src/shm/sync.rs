//! The atomics the shared-memory code uses: `std`'s normally, loom's under `--cfg loom` so the
//! seqlock in [`super::seqlock`] can be model-checked unchanged.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
