//! The link emulator's decisions, without I/O and without a clock: a frame is offered at a
//! time, and the shaper answers when it (and a copy, if duplicated) is to be delivered, or that
//! it is dropped. The caller owns the clock (times are offsets from any origin it picks) and
//! the packet path; tests drive it with virtual time.
//!
//! Order of the steps for each frame (netem's, with a serial line instead of netem's rate):
//! 1. `loss`: dropped with that probability.
//! 2. `drop_next`: if the frame matches the rule's filter and the rule's count is not used up,
//!    it is dropped and the count goes down by one. A [`Shaper::set`] with the same rule keeps
//!    the count where it is; a different rule, or [`Shaper::rearm_drop_next`], starts it again.
//! 3. `duplicate`: an exact copy of the frame is sent too, right behind it.
//! 4. `corrupt`: one random bit of the IP payload is flipped, in the first copy only. The
//!    Ethernet header and the IP header (with its options) are never touched, so the frame
//!    is still delivered and routed, and the receiver's TCP, UDP or ICMP checksum rejects it
//!    (a UDP datagram sent without a checksum is accepted corrupted). Frames with no IP
//!    payload (ARP, an empty datagram) are left as they are.
//! 5. `rate`: a serial line. The line is busy until the previous frame has left; a frame
//!    starts at the later of its arrival and that time, and takes its own size divided by
//!    the rate (counted as [`Framing`] says). An isolated frame is held for its full
//!    serialization time, unlike with a token bucket.
//! 6. `queue`: with a rate, at most that many frames may be on the line (the one being sent
//!    included); without a rate, at most that many may be in the delay. A frame arriving at a
//!    full queue is dropped (tail drop).
//! 7. `delay` and `jitter`: the frame is delivered after the delay plus a uniform random
//!    amount in [-jitter, +jitter], never less than zero. Jitter never reorders: a frame is
//!    never delivered before the frame offered before it (netem only promises this on a
//!    rate-limited line; here it always holds, and `reorder` is the one way to reorder).
//! 8. `reorder`: that share of frames skips the delay and jitter (it still waits for the
//!    line), overtaking frames in the delay. Without a delay there is nothing to overtake and
//!    nothing is reordered.
//!
//! Random decisions come from a generator seeded by the caller: the same seed, conditions and
//! frames give the same result.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::filter::Ipv4View;
use super::rng::Rng;
use super::spec::{Conditions, DropRule};

/// A frame to deliver at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// When to deliver it (an offset from the caller's origin, never before the offer).
    pub at: Duration,
    /// The frame, possibly corrupted.
    pub frame: Vec<u8>,
}

/// What the shaper has done since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShaperStats {
    /// Frames offered.
    pub offered: u64,
    /// Frames scheduled for delivery, duplicates included.
    pub sent: u64,
    /// Frames dropped by `loss`.
    pub dropped_loss: u64,
    /// Frames dropped by `drop_next`.
    pub dropped_drop_next: u64,
    /// Frames (or duplicates) dropped at a full queue.
    pub dropped_queue: u64,
    /// Frames duplicated.
    pub duplicated: u64,
    /// Frames corrupted.
    pub corrupted: u64,
    /// Frames sent without the delay.
    pub reordered: u64,
}

/// One direction of a link: its conditions and the state of its line.
#[derive(Debug, Clone)]
pub struct Shaper {
    conditions: Conditions,
    rng: Rng,
    /// Frames of `drop_next` still to drop.
    drop_left: u32,
    /// When the line is free again.
    busy_until: Duration,
    /// The latest delivery time given so far (jitter never goes before it).
    last_at: Duration,
    /// When each frame counted by `queue` stops counting: its end of serialization with a
    /// rate, its delivery without (earliest first).
    backlog: BinaryHeap<Reverse<Duration>>,
    stats: ShaperStats,
}

impl Shaper {
    /// A shaper with these conditions, an idle line, and decisions drawn from `seed`.
    pub fn new(c: &Conditions, seed: u64) -> Self {
        Shaper {
            conditions: c.normalized(),
            rng: Rng::new(seed),
            drop_left: c.drop_next.as_ref().map_or(0, |d| d.count),
            busy_until: Duration::ZERO,
            last_at: Duration::ZERO,
            backlog: BinaryHeap::new(),
            stats: ShaperStats::default(),
        }
    }

    /// Changes the conditions live: frames already scheduled keep their times, the line stays
    /// busy as long as it was, the queue keeps its frames, and the next frames get the new
    /// conditions.
    pub fn set(&mut self, c: &Conditions) {
        let c = c.normalized();
        if c.drop_next != self.conditions.drop_next {
            self.drop_left = c.drop_next.as_ref().map_or(0, |d| d.count);
        }
        self.conditions = c;
    }

    /// Starts the `drop_next` count again from the rule's count.
    pub fn rearm_drop_next(&mut self) {
        self.drop_left = self.conditions.drop_next.as_ref().map_or(0, |d| d.count);
    }

    /// The conditions in force (zero values removed).
    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// Frames `drop_next` will still drop.
    pub fn drop_next_left(&self) -> u32 {
        self.drop_left
    }

    /// The counters.
    pub fn stats(&self) -> ShaperStats {
        self.stats
    }

    /// Offers a frame at `now`: the deliveries it gives (none when dropped, two when
    /// duplicated), each at `now` or later, in the order given.
    pub fn offer(&mut self, now: Duration, frame: Vec<u8>) -> Vec<Scheduled> {
        self.stats.offered += 1;
        if let Some(p) = self.conditions.loss
            && self.rng.chance(p.value())
        {
            self.stats.dropped_loss += 1;
            return Vec::new();
        }
        if self.take_drop_next(&frame) {
            self.stats.dropped_drop_next += 1;
            return Vec::new();
        }
        let copy = match self.conditions.duplicate {
            Some(p) if self.rng.chance(p.value()) => {
                self.stats.duplicated += 1;
                Some(frame.clone())
            }
            _ => None,
        };
        let mut first = frame;
        if let Some(p) = self.conditions.corrupt
            && self.rng.chance(p.value())
            && corrupt_payload(&mut first, &mut self.rng)
        {
            self.stats.corrupted += 1;
        }
        let mut out = Vec::with_capacity(2);
        for f in std::iter::once(first).chain(copy) {
            if let Some(s) = self.schedule(now, f) {
                out.push(s);
            }
        }
        out
    }

    fn take_drop_next(&mut self, frame: &[u8]) -> bool {
        match &self.conditions.drop_next {
            Some(DropRule { filter, .. }) if self.drop_left > 0 && filter.matches(frame) => {
                self.drop_left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Steps 5 to 8 for one frame (or copy).
    fn schedule(&mut self, now: Duration, frame: Vec<u8>) -> Option<Scheduled> {
        while let Some(Reverse(t)) = self.backlog.peek() {
            if *t > now {
                break;
            }
            self.backlog.pop();
        }
        if let Some(limit) = self.conditions.queue
            && self.backlog.len() >= limit as usize
        {
            self.stats.dropped_queue += 1;
            return None;
        }
        let line_done = match self.conditions.rate {
            Some(rate) => {
                let start = now.max(self.busy_until);
                let done = start.saturating_add(rate.line_time(self.conditions.framing, &frame));
                self.busy_until = done;
                done
            }
            None => now,
        };
        let delay = self.conditions.delay.unwrap_or(Duration::ZERO);
        let reordered = !delay.is_zero()
            && self
                .conditions
                .reorder
                .is_some_and(|p| self.rng.chance(p.value()));
        let at = if reordered {
            self.stats.reordered += 1;
            line_done
        } else {
            let delay = self.jittered(delay);
            line_done.saturating_add(delay).max(self.last_at)
        };
        self.last_at = self.last_at.max(at);
        if self.conditions.queue.is_some() {
            let leaves = if self.conditions.rate.is_some() {
                line_done
            } else {
                at
            };
            self.backlog.push(Reverse(leaves));
        }
        self.stats.sent += 1;
        Some(Scheduled { at, frame })
    }

    /// The delay plus a uniform amount in [-jitter, +jitter], at least zero.
    fn jittered(&mut self, delay: Duration) -> Duration {
        let Some(jitter) = self.conditions.jitter else {
            return delay;
        };
        let j = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
        let d = i128::try_from(delay.as_nanos()).unwrap_or(i128::MAX);
        let ns = (d + self.rng.symmetric(j)).max(0);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// Flips one random bit of the frame's IP payload (after the Ethernet and IP headers, before
/// any Ethernet padding). False when the frame has no IP payload.
fn corrupt_payload(frame: &mut [u8], rng: &mut Rng) -> bool {
    let Some(ip) = Ipv4View::of_frame(frame) else {
        return false;
    };
    let start = 14 + ip.header_len;
    let len = ip.payload.len();
    if len == 0 {
        return false;
    }
    let bit = rng.below(len as u64 * 8);
    frame[start + (bit / 8) as usize] ^= 1 << (bit % 8);
    true
}
