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
//!    the rate (counted as [`Framing`](super::spec::Framing) says). An isolated frame is held for its full
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
    /// When each frame still waiting stops counting for `queue`: its end of serialization with
    /// a rate, its delivery without (earliest first; pruned at each offer).
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
        // Tracked without a queue limit too, so that a limit set later counts what is waiting.
        let leaves = if self.conditions.rate.is_some() {
            line_done
        } else {
            at
        };
        self.backlog.push(Reverse(leaves));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::spec::ConditionsUpdate;
    use crate::conditions::test_frames::{arp, ping, tcp, transport_checksum_ok, udp};
    use proptest::prelude::*;

    fn conditions(pairs: &[(&str, &str)]) -> Conditions {
        let mut u = ConditionsUpdate::default();
        for (name, value) in pairs {
            u.set(name, value).unwrap();
        }
        let mut c = Conditions::default();
        c.merge(&u);
        c
    }

    fn shaper(pairs: &[(&str, &str)]) -> Shaper {
        Shaper::new(&conditions(pairs), 42)
    }

    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    fn one(s: &mut Shaper, now: Duration, frame: Vec<u8>) -> Scheduled {
        let mut out = s.offer(now, frame);
        assert_eq!(out.len(), 1, "expected exactly one delivery");
        out.pop().unwrap()
    }

    fn assert_near(got: Duration, want_ms: f64, tolerance_ms: f64) {
        let got_ms = got.as_secs_f64() * 1000.0;
        assert!(
            (got_ms - want_ms).abs() <= tolerance_ms,
            "{got_ms} ms, expected {want_ms} ms +- {tolerance_ms}"
        );
    }

    /// Asserts `count` successes of `n` trials at `p` lie within the two-sided 99.9% interval
    /// of the binomial distribution (normal approximation: 3.29 standard deviations).
    fn assert_binomial(count: u64, n: u64, p: f64) {
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (count as f64 - mean).abs() <= 3.29 * sd,
            "{count} of {n}, expected {mean} +- {}",
            3.29 * sd
        );
    }

    #[test]
    fn a_ping_on_a_1200_bit_slip_line_takes_717_ms_and_the_next_waits_behind_it() {
        let mut s = shaper(&[("rate", "1200bit"), ("framing", "slip")]);
        let first = one(&mut s, Duration::ZERO, ping(84));
        // 86 bytes x 10 bits / 1200 bit/s (TCP/IP Illustrated Vol. 1, 7.2).
        assert_near(first.at, 716.667, 0.01);
        let second = one(&mut s, Duration::ZERO, ping(84));
        assert_near(second.at, 2.0 * 716.667, 0.01);
        // An echo and its reply: the book's 1.43 s round trip.
        assert_near(first.at * 2, 1433.3, 0.1);
    }

    #[test]
    fn a_ping_on_a_9600_bit_slip_line_takes_89_58_ms() {
        let mut s = shaper(&[("rate", "9600"), ("framing", "slip")]);
        assert_near(one(&mut s, ms(5.0), ping(84)).at, 5.0 + 89.583, 0.01);
    }

    #[test]
    fn ethernet_framing_counts_the_whole_frame_at_8_bits_a_byte() {
        let mut s = shaper(&[("rate", "9600bit")]);
        // 98 bytes x 8 bits / 9600 bit/s.
        assert_near(one(&mut s, Duration::ZERO, ping(84)).at, 81.667, 0.01);
    }

    #[test]
    fn a_serial_line_holds_even_an_isolated_frame_for_its_whole_time() {
        let mut s = shaper(&[("rate", "1mbit")]);
        let frame = vec![0u8; 1514];
        one(&mut s, Duration::ZERO, frame.clone());
        // Long idle: a token bucket would be full and let it through at once.
        let later = one(&mut s, Duration::from_secs(100), frame);
        assert_near(later.at, 100_000.0 + 12.112, 0.001);
    }

    #[test]
    fn a_1_mbit_line_sustains_1_mbit_over_ten_seconds() {
        let mut s = shaper(&[("rate", "1mbit")]);
        let frame = vec![0u8; 1514];
        let mut delivered_bits = 0u64;
        let mut last: Option<Duration> = None;
        // Offered at 1.2 Mbit/s: one 1514-byte frame every 10 ms.
        for k in 0..1000u64 {
            let sched = one(&mut s, Duration::from_millis(10 * k), frame.clone());
            if let Some(prev) = last {
                assert_near(sched.at - prev, 12.112, 0.000_01);
            }
            last = Some(sched.at);
            if sched.at <= Duration::from_secs(10) {
                delivered_bits += 1514 * 8;
            }
        }
        let rate = delivered_bits as f64 / 10.0;
        assert!((rate - 1e6).abs() / 1e6 < 0.005, "{rate} bit/s");
    }

    #[test]
    fn delay_alone_delays_exactly() {
        let mut s = shaper(&[("delay", "100ms")]);
        for k in 0..10u64 {
            let now = Duration::from_micros(1234 * k);
            assert_eq!(
                one(&mut s, now, ping(84)).at,
                now + Duration::from_millis(100)
            );
        }
    }

    #[test]
    fn jitter_stays_within_its_bounds_varies_and_keeps_order() {
        let mut s = shaper(&[("delay", "100ms"), ("jitter", "10ms")]);
        let mut last = Duration::ZERO;
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for k in 0..2000u64 {
            // Every 1 ms: closer than the jitter, so order has to be kept on purpose.
            let now = Duration::from_millis(k);
            let at = one(&mut s, now, ping(84)).at;
            assert!(
                at >= now + ms(90.0) && at <= now + ms(110.0),
                "{at:?} at {now:?}"
            );
            assert!(at >= last, "reordered: {at:?} before {last:?}");
            last = at;
        }
        for k in 0..2000u64 {
            // Every second: far apart, so the spread is the jitter's own.
            let now = Duration::from_secs(10 + k);
            let d = (one(&mut s, now, ping(84)).at - now).as_secs_f64() * 1000.0;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!((90.0..90.5).contains(&lo), "smallest delay {lo} ms");
        assert!(hi > 109.5 && hi <= 110.0, "largest delay {hi} ms");
    }

    #[test]
    fn jitter_larger_than_the_delay_never_delivers_before_the_offer() {
        let mut s = shaper(&[("delay", "5ms"), ("jitter", "10ms")]);
        for k in 0..1000u64 {
            let now = Duration::from_secs(k);
            assert!(one(&mut s, now, ping(84)).at >= now);
        }
    }

    #[test]
    fn loss_of_20_percent_lies_in_the_binomial_interval() {
        for seed in [1, 2, 3] {
            let mut s = Shaper::new(&conditions(&[("loss", "20%")]), seed);
            let n = 100_000;
            let mut sent = 0u64;
            for _ in 0..n {
                sent += s.offer(Duration::ZERO, ping(84)).len() as u64;
            }
            let st = s.stats();
            assert_eq!(st.offered, n);
            assert_eq!(st.sent, sent);
            assert_eq!(st.dropped_loss + st.sent, n);
            assert_binomial(st.dropped_loss, n, 0.2);
        }
    }

    #[test]
    fn drop_next_tcp_data_drops_the_first_data_segment_only() {
        let mut s = shaper(&[("drop-next", "1 tcp data")]);
        let t0 = Duration::ZERO;
        let flow = [
            ("syn", tcp(1025, 5001, 0x02, b""), true),
            ("syn/ack", tcp(5001, 1025, 0x12, b""), true),
            ("ack", tcp(1025, 5001, 0x10, b""), true),
            ("udp", udp(1026, 53, b"query"), true),
            ("data 1", tcp(1025, 5001, 0x18, b"first"), false),
            ("data 2", tcp(1025, 5001, 0x18, b"second"), true),
            ("ack of data", tcp(5001, 1025, 0x10, b""), true),
        ];
        for (what, frame, passes) in flow {
            let out = s.offer(t0, frame.clone());
            assert_eq!(!out.is_empty(), passes, "{what}");
            if passes {
                assert_eq!(out[0].frame, frame, "{what} unchanged");
            }
        }
        assert_eq!(s.stats().dropped_drop_next, 1);
        assert_eq!(s.drop_next_left(), 0);
        // The same rule again (a change of another condition) does not re-arm it...
        s.set(&conditions(&[
            ("drop-next", "1 tcp data"),
            ("delay", "1ms"),
        ]));
        assert_eq!(s.drop_next_left(), 0);
        assert_eq!(s.offer(t0, tcp(1025, 5001, 0x18, b"third")).len(), 1);
        // ...rearming or a different rule does.
        s.rearm_drop_next();
        assert_eq!(s.drop_next_left(), 1);
        s.set(&conditions(&[("drop-next", "2 tcp port 5001 data")]));
        assert_eq!(s.drop_next_left(), 2);
        assert!(s.offer(t0, tcp(1025, 5001, 0x18, b"x")).is_empty());
        assert!(s.offer(t0, tcp(1025, 5001, 0x18, b"y")).is_empty());
        assert_eq!(s.offer(t0, tcp(1025, 5001, 0x18, b"z")).len(), 1);
        assert_eq!(s.stats().dropped_drop_next, 3);
    }

    #[test]
    fn duplicates_are_exact_copies_behind_the_original_at_their_rate() {
        let mut s = shaper(&[("duplicate", "10%"), ("rate", "10mbit")]);
        let n = 50_000;
        let mut copies = 0u64;
        for k in 0..n {
            let frame = ping(84);
            let out = s.offer(Duration::from_millis(k), frame.clone());
            if out.len() == 2 {
                copies += 1;
                assert_eq!(out[1].frame, frame);
                assert!(
                    out[1].at > out[0].at,
                    "the copy is serialized after the original"
                );
            }
        }
        assert_eq!(s.stats().duplicated, copies);
        assert_eq!(s.stats().sent, n + copies);
        assert_binomial(copies, n, 0.1);
    }

    #[test]
    fn corruption_flips_one_payload_bit_that_the_checksum_catches() {
        let mut s = shaper(&[("corrupt", "10%")]);
        let n = 30_000;
        let frames = [
            ping(84),
            tcp(1025, 5001, 0x18, b"payload"),
            udp(1, 2, b"data"),
        ];
        let mut corrupted = 0u64;
        for k in 0..n {
            let frame = frames[k as usize % frames.len()].clone();
            assert!(transport_checksum_ok(&frame));
            let got = one(&mut s, Duration::ZERO, frame.clone()).frame;
            let diff: Vec<usize> = (0..frame.len()).filter(|&i| got[i] != frame[i]).collect();
            match diff.as_slice() {
                [] => assert!(transport_checksum_ok(&got)),
                [i] => {
                    corrupted += 1;
                    assert!(*i >= 14 + 20, "byte {i} is in the Ethernet or IP header");
                    assert_eq!((got[*i] ^ frame[*i]).count_ones(), 1);
                    assert!(!transport_checksum_ok(&got), "the checksum must reject it");
                }
                more => panic!("bytes {more:?} changed"),
            }
        }
        assert_eq!(s.stats().corrupted, corrupted);
        assert_binomial(corrupted, n, 0.1);
    }

    #[test]
    fn corruption_spares_headers_options_padding_and_frames_without_payload() {
        let mut s = shaper(&[("corrupt", "100%")]);
        // IP header with 4 bytes of options (IHL 6): the options are spared too.
        let mut opts = ping(84);
        opts.splice(34..34, [1u8, 1, 1, 0]);
        opts[14] = 0x46;
        opts[16..18].copy_from_slice(&88u16.to_be_bytes());
        let mut padded = ping(28);
        padded.resize(60, 0xee);
        for _ in 0..2000 {
            let got = one(&mut s, Duration::ZERO, opts.clone()).frame;
            assert_eq!(got[..38], opts[..38]);
            assert_ne!(got, opts);
            let got = one(&mut s, Duration::ZERO, padded.clone()).frame;
            assert_eq!(got[..34], padded[..34]);
            assert_eq!(got[42..], padded[42..], "padding is not the payload");
        }
        let before = s.stats().corrupted;
        assert_eq!(one(&mut s, Duration::ZERO, arp()).frame, arp());
        let empty_ip = crate::conditions::test_frames::ipv4(1, b"");
        assert_eq!(
            one(&mut s, Duration::ZERO, empty_ip.clone()).frame,
            empty_ip
        );
        assert_eq!(
            s.stats().corrupted,
            before,
            "nothing to corrupt is not counted"
        );
    }

    #[test]
    fn a_full_line_queue_drops_at_the_tail() {
        let mut s = shaper(&[("rate", "1200bit"), ("framing", "slip"), ("queue", "2")]);
        let sent: Vec<usize> = (0..5)
            .map(|_| s.offer(Duration::ZERO, ping(84)).len())
            .collect();
        assert_eq!(sent, [1, 1, 0, 0, 0]);
        assert_eq!(s.stats().dropped_queue, 3);
        // Once the first has left the line there is room for one more, behind the second.
        assert!(s.offer(ms(716.0), ping(84)).is_empty());
        let third = one(&mut s, ms(717.0), ping(84));
        assert_near(third.at, 3.0 * 716.667, 0.01);
    }

    #[test]
    fn without_a_rate_the_queue_limits_frames_in_the_delay() {
        let mut s = shaper(&[("delay", "100ms"), ("queue", "3")]);
        let sent: usize = (0..5)
            .map(|_| s.offer(Duration::ZERO, ping(84)).len())
            .sum();
        assert_eq!(sent, 3);
        assert_eq!(s.stats().dropped_queue, 2);
        assert!(s.offer(ms(99.0), ping(84)).is_empty());
        assert_eq!(one(&mut s, ms(100.0), ping(84)).at, ms(200.0));
    }

    #[test]
    fn a_queue_limit_set_live_counts_the_frames_already_waiting() {
        let mut s = shaper(&[("delay", "100ms")]);
        for _ in 0..3 {
            one(&mut s, Duration::ZERO, ping(84));
        }
        s.set(&conditions(&[("delay", "100ms"), ("queue", "3")]));
        assert!(s.offer(ms(50.0), ping(84)).is_empty());
        assert_eq!(one(&mut s, ms(100.0), ping(84)).at, ms(200.0));
    }

    #[test]
    fn set_changes_the_rate_live_and_keeps_the_line_busy() {
        let mut s = shaper(&[("rate", "1200bit"), ("framing", "slip")]);
        let first = one(&mut s, Duration::ZERO, ping(84));
        s.set(&conditions(&[("rate", "9600bit"), ("framing", "slip")]));
        let second = one(&mut s, Duration::ZERO, ping(84));
        assert_near(first.at, 716.667, 0.01);
        assert_near(second.at, 716.667 + 89.583, 0.01);
        assert_eq!(s.conditions().rate.unwrap().bits_per_sec, 9600);
        s.set(&Conditions::default());
        let third = one(&mut s, ms(1000.0), ping(84));
        assert_eq!(third.at, ms(1000.0), "no conditions: at once");
    }

    #[test]
    fn reordered_frames_skip_the_delay_and_overtake() {
        let mut s = shaper(&[("delay", "100ms"), ("reorder", "25%")]);
        let n = 20_000;
        let mut fast = 0u64;
        for k in 0..n {
            let now = Duration::from_millis(k);
            let at = one(&mut s, now, ping(84)).at;
            if at == now {
                fast += 1;
            } else {
                assert_eq!(at, now + ms(100.0));
            }
        }
        assert_eq!(s.stats().reordered, fast);
        assert_binomial(fast, n, 0.25);
        // Without a delay there is nothing to overtake.
        let mut s = shaper(&[("reorder", "50%")]);
        for _ in 0..100 {
            one(&mut s, Duration::ZERO, ping(84));
        }
        assert_eq!(s.stats().reordered, 0);
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let c = conditions(&[
            ("loss", "10%"),
            ("delay", "50ms"),
            ("jitter", "20ms"),
            ("duplicate", "5%"),
            ("corrupt", "5%"),
            ("reorder", "5%"),
        ]);
        let run = |seed| {
            let mut s = Shaper::new(&c, seed);
            (0..500u64)
                .flat_map(|k| s.offer(Duration::from_millis(k), ping(84)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    fn any_percent() -> impl Strategy<Value = Option<crate::conditions::spec::Percent>> {
        prop::option::of(
            prop_oneof![Just(0.0), Just(100.0), 0.0..=100.0f64]
                .prop_map(|p| crate::conditions::spec::Percent::new(p).unwrap()),
        )
    }

    fn any_duration() -> impl Strategy<Value = Option<Duration>> {
        prop::option::of(prop_oneof![
            (0..200_000_000u64).prop_map(Duration::from_nanos),
            any::<u64>().prop_map(Duration::from_nanos),
            Just(Duration::MAX),
        ])
    }

    fn any_conditions() -> impl Strategy<Value = Conditions> {
        let rate = prop::option::of(prop_oneof![Just(0u64), 1..100_000_000u64, any::<u64>()])
            .prop_map(|r| r.map(|bits_per_sec| crate::conditions::spec::Rate { bits_per_sec }));
        let framing = prop_oneof![
            Just(crate::conditions::spec::Framing::Ethernet),
            Just(crate::conditions::spec::Framing::Slip)
        ];
        let drop_next = prop::option::of(
            (
                0..4u32,
                prop_oneof![Just("any"), Just("tcp data"), Just("udp port 53")],
            )
                .prop_map(|(count, f)| DropRule {
                    count,
                    filter: crate::conditions::spec::PacketFilter::parse(f).unwrap(),
                }),
        );
        (
            (rate, framing, any_duration(), any_duration()),
            (any_percent(), drop_next, any_percent(), any_percent()),
            (any_percent(), prop::option::of(0..6u32)),
        )
            .prop_map(
                |(
                    (rate, framing, delay, jitter),
                    (loss, drop_next, duplicate, reorder),
                    (corrupt, queue),
                )| {
                    Conditions {
                        rate,
                        framing,
                        delay,
                        jitter,
                        loss,
                        drop_next,
                        duplicate,
                        reorder,
                        corrupt,
                        queue,
                    }
                },
            )
    }

    fn any_frame() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..120),
            (28..200usize).prop_map(ping),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(|p| tcp(1025, 5001, 0x18, &p)),
            // A real header followed by garbage of any length.
            (prop::collection::vec(any::<u8>(), 0..60), 0..80usize).prop_map(|(tail, cut)| {
                let mut f = udp(1, 53, b"abcdefgh");
                f.truncate(cut.min(f.len()));
                f.extend(tail);
                f
            }),
        ]
    }

    proptest! {
        #[test]
        fn never_before_now_and_never_a_panic(
            c in any_conditions(),
            c2 in any_conditions(),
            seed in any::<u64>(),
            offers in prop::collection::vec((any_frame(), 0..2_000_000u64, any::<bool>()), 1..40),
        ) {
            let mut s = Shaper::new(&c, seed);
            let mut now = Duration::ZERO;
            for (i, (frame, step, jump_back)) in offers.into_iter().enumerate() {
                if i == 10 {
                    s.set(&c2);
                }
                // Mostly forward in time; now and then an arbitrary (even earlier) time.
                now = if jump_back { Duration::from_nanos(step) } else { now + Duration::from_nanos(step) };
                let len = frame.len();
                for sched in s.offer(now, frame) {
                    prop_assert!(sched.at >= now, "{:?} before {:?}", sched.at, now);
                    prop_assert_eq!(sched.frame.len(), len);
                }
            }
            let st = s.stats();
            prop_assert_eq!(
                st.sent + st.dropped_queue,
                st.offered - st.dropped_loss - st.dropped_drop_next + st.duplicated
            );
        }
    }
}
