//! When a capture ends: on a stop request, at the end of its duration, or at
//! once when an interface disappears; and how long it waits for packets
//! meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::now_ns;
use super::ring::BLOCK_TIMEOUT_MS;

/// After a stop or the end of the duration, how long to wait for the last
/// blocks to be handed over.
const GRACE: Duration = Duration::from_millis(2 * BLOCK_TIMEOUT_MS as u64 + 50);
/// Upper bound on one wait, so that a stop request is seen quickly.
const POLL_MS: u64 = 50;

/// A capture that is ending.
#[derive(Debug, Clone, Copy)]
struct Stopping {
    /// Packets stamped later than this (ns since the epoch) are not written.
    cutoff_ns: u64,
    /// Past this, the capture ends even if blocks are still outstanding.
    grace_end: Instant,
}

/// When the capture started, and when and how it is to end.
#[derive(Debug)]
pub(super) struct Clock {
    start: Instant,
    /// The start, in ns since the epoch.
    pub(super) start_ns: u64,
    duration: Option<Duration>,
    stopping: Option<Stopping>,
}

impl Clock {
    /// A capture starting now, for `duration` if given.
    pub(super) fn start(duration: Option<Duration>) -> Clock {
        Clock {
            start: Instant::now(),
            start_ns: now_ns(),
            duration,
            stopping: None,
        }
    }

    /// Notices a stop request or the end of the duration: packets stamped
    /// after that moment are not written, and the last blocks get [`GRACE`]
    /// to come in.
    pub(super) fn notice_end(&mut self, stop: &AtomicBool, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        if stop.load(Ordering::Relaxed) {
            self.stopping = Some(Stopping {
                cutoff_ns: now_ns(),
                grace_end: now + GRACE,
            });
        } else if let Some(d) = self.duration.filter(|d| now >= self.start + *d) {
            self.stopping = Some(Stopping {
                cutoff_ns: self.start_ns + d.as_nanos() as u64,
                grace_end: now + GRACE,
            });
        }
    }

    /// Ends the capture once what was already handed over is written.
    pub(super) fn end_at_once(&mut self) {
        self.stopping = Some(Stopping {
            cutoff_ns: u64::MAX,
            grace_end: Instant::now(),
        });
    }

    /// True once the capture is ending and its grace time is over: write
    /// what is there without waiting, then end.
    pub(super) fn grace_over(&self, now: Instant) -> bool {
        self.stopping.is_some_and(|s| now >= s.grace_end)
    }

    /// Packets stamped later than this are not written (the capture is ending).
    pub(super) fn cutoff(&self) -> Option<u64> {
        self.stopping.map(|s| s.cutoff_ns)
    }

    /// How long to wait for packets now: at most [`POLL_MS`], not past the
    /// end of the grace time or of the duration, nor past `hold_until` (ns
    /// since the epoch) when a packet is held back; at least 1 ms.
    pub(super) fn wait_time(&self, hold_until: Option<u64>) -> Duration {
        let now = Instant::now();
        let mut wait = Duration::from_millis(POLL_MS);
        if let Some(s) = self.stopping {
            wait = wait.min(s.grace_end.saturating_duration_since(now));
        } else if let Some(d) = self.duration {
            wait = wait.min((self.start + d).saturating_duration_since(now));
        }
        if let Some(h) = hold_until {
            wait = wait.min(Duration::from_nanos(h.saturating_sub(now_ns())));
        }
        wait.max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_request_cuts_off_later_packets_after_a_grace_time() {
        let mut c = Clock::start(None);
        let stop = AtomicBool::new(false);
        let now = Instant::now();
        c.notice_end(&stop, now);
        assert_eq!(c.cutoff(), None);
        assert!(c.wait_time(None) <= Duration::from_millis(POLL_MS));
        stop.store(true, Ordering::Relaxed);
        c.notice_end(&stop, now);
        let cutoff = c.cutoff().expect("stopping");
        assert!(cutoff >= c.start_ns && cutoff <= now_ns());
        assert!(!c.grace_over(now));
        assert!(c.grace_over(now + GRACE));
        // A packet held until the past: wait the minimum.
        assert_eq!(c.wait_time(Some(0)), Duration::from_millis(1));
    }

    #[test]
    fn the_duration_sets_the_cutoff_and_a_gone_interface_ends_at_once() {
        let mut c = Clock::start(Some(Duration::from_secs(3)));
        let never = AtomicBool::new(false);
        c.notice_end(&never, c.start);
        assert_eq!(c.cutoff(), None);
        c.notice_end(&never, c.start + Duration::from_secs(3));
        assert_eq!(c.cutoff(), Some(c.start_ns + 3_000_000_000));
        c.end_at_once();
        assert_eq!(c.cutoff(), Some(u64::MAX));
        assert!(c.grace_over(Instant::now()));
    }
}
