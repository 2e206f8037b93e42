//! The overall `--timeout`: every wait of a run is capped by it, so no child outlives it.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

pub struct Deadline(pub Instant);

impl Deadline {
    pub fn left(&self) -> Result<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow!("overall --timeout passed"))
    }

    /// `d`, capped by the overall deadline.
    pub fn cap(&self, d: Duration) -> Result<Duration> {
        Ok(d.min(self.left()?))
    }
}
