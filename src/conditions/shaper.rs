//! STAND-IN of the shaper (the real one is written on another branch with the same API): delay
//! and rate only, each frame queued behind the previous one for size/rate.

use super::spec::{Conditions, Framing};
use std::time::Duration;

/// A frame and when it leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// when, on the caller's clock
    pub at: Duration,
    /// the frame
    pub frame: Vec<u8>,
}

/// Decides when each frame leaves, in virtual time.
#[derive(Debug, Clone)]
pub struct Shaper {
    conditions: Conditions,
    line_free: Duration,
}

impl Shaper {
    /// A shaper for `c` (`seed` feeds the random choices of the real one).
    pub fn new(c: &Conditions, _seed: u64) -> Self {
        Shaper {
            conditions: c.clone(),
            line_free: Duration::ZERO,
        }
    }

    /// New conditions, keeping the line's state.
    pub fn set(&mut self, c: &Conditions) {
        self.conditions = c.clone();
    }

    /// Offer a frame at `now`: when it leaves.
    pub fn offer(&mut self, now: Duration, frame: Vec<u8>) -> Vec<Scheduled> {
        let mut at = now;
        if let Some(rate) = self.conditions.rate.filter(|r| r.bits_per_sec > 0) {
            let bits = match self.conditions.framing {
                Framing::Ethernet => frame.len() as u64 * 8,
                Framing::Slip => (frame.len().saturating_sub(14) as u64 + 2) * 10,
            };
            let start = at.max(self.line_free);
            let took = Duration::from_nanos(bits * 1_000_000_000 / rate.bits_per_sec);
            self.line_free = start + took;
            at = self.line_free;
        }
        at += self.conditions.delay.unwrap_or_default();
        vec![Scheduled { at, frame }]
    }
}
