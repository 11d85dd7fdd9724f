//! The userspace datapath's frame loop: frames the node sends arrive on the TAP, the
//! [`Shaper`] says when each leaves, a min-heap holds them until then, and at each frame's time
//! it is written out of the real interface. A timerfd armed at the earliest departure wakes the
//! loop (timer slack 1 ns), an eventfd wakes it for commands.

use super::Stats;
use super::tap::{MAX_FRAME, Tap, Timer, Wake, WireSender, interface_exists, monotonic_now};
use crate::conditions::shaper::Shaper;
use crate::conditions::spec::Conditions;
use crate::error::{Context, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Frames read from the TAP before the due ones are sent again.
const READ_BATCH: usize = 64;
/// Bytes the heap may hold; frames beyond are dropped (a queue limit of last resort).
const MAX_PENDING_BYTES: usize = 64 << 20;
/// How often the loop checks that its interface still exists.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);
/// Width of a lateness histogram bucket, and their number (the last one holds the rest).
const LATE_BUCKET_NS: u64 = 5_000;
const LATE_BUCKETS: usize = 2_000;

/// What the owner of the loop asks of it.
pub(crate) enum Command {
    /// new conditions, the line's state kept
    Set(Box<Conditions>),
    /// end the loop
    Stop,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// it was told to stop
    Stopped,
    /// its interface disappeared
    InterfaceGone,
}

/// A frame waiting for its time; ordered by time, then by arrival.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: Duration,
    seq: u64,
    frame: Vec<u8>,
}

/// The descriptors the loop works with.
pub(crate) struct LoopIo {
    /// where the node's frames arrive
    pub tap: Tap,
    /// where they leave
    pub wire: WireSender,
    /// index of the real interface
    pub ifindex: u32,
    /// wakes the loop for commands
    pub wake: Arc<Wake>,
}

/// The line: the shaper and the frames it scheduled, with the counters.
pub(crate) struct Line {
    shaper: Shaper,
    heap: BinaryHeap<Reverse<Pending>>,
    pending_bytes: usize,
    seq: u64,
    stats: Stats,
    late: Vec<u64>,
    shared: Arc<Mutex<Stats>>,
}

impl Line {
    /// A line doing `c`, publishing its counters, under the datapath name `datapath`, to
    /// `shared`.
    pub(crate) fn new(
        c: &Conditions,
        seed: u64,
        datapath: &str,
        shared: Arc<Mutex<Stats>>,
    ) -> Line {
        Line {
            shaper: Shaper::new(c, seed),
            heap: BinaryHeap::new(),
            pending_bytes: 0,
            seq: 0,
            stats: Stats {
                datapath: datapath.into(),
                ..Stats::default()
            },
            late: vec![0; LATE_BUCKETS],
            shared,
        }
    }

    /// A frame sent by the node at `now`.
    fn offer(&mut self, now: Duration, frame: Vec<u8>) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        let scheduled = self.shaper.offer(now, frame);
        if scheduled.is_empty() {
            self.stats.dropped += 1;
        }
        for s in scheduled {
            if self.pending_bytes + s.frame.len() > MAX_PENDING_BYTES {
                self.stats.dropped += 1;
                continue;
            }
            self.pending_bytes += s.frame.len();
            self.seq += 1;
            self.heap.push(Reverse(Pending {
                at: s.at,
                seq: self.seq,
                frame: s.frame,
            }));
        }
    }

    /// When the next frame is due.
    fn next_at(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse(p)| p.at)
    }

    /// Send every frame due at `now`; false if the interface is gone.
    fn send_due(&mut self, wire: &WireSender, ifindex: u32) -> bool {
        loop {
            let now = monotonic_now();
            match self.heap.peek() {
                Some(Reverse(p)) if p.at <= now => {}
                _ => return true,
            }
            let Some(Reverse(p)) = self.heap.pop() else {
                return true;
            };
            self.pending_bytes -= p.frame.len();
            self.record_lateness(now.saturating_sub(p.at));
            match wire.send(&p.frame) {
                Ok(()) => {
                    self.stats.frames_out += 1;
                    self.stats.bytes_out += p.frame.len() as u64;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENXIO | libc::ENODEV)) => {
                    if !interface_exists(ifindex) {
                        return false;
                    }
                    self.stats.send_errors += 1;
                }
                Err(_) => self.stats.send_errors += 1,
            }
        }
    }

    fn record_lateness(&mut self, late: Duration) {
        let ns = late.as_nanos() as u64;
        let bucket = ((ns / LATE_BUCKET_NS) as usize).min(LATE_BUCKETS - 1);
        self.late[bucket] += 1;
        self.stats.late_max_us = self.stats.late_max_us.max(ns / 1000);
    }

    /// The 99th percentile of lateness, to the upper edge of its bucket.
    fn late_p99_us(&self) -> u64 {
        let total: u64 = self.late.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = total - total / 100;
        let mut seen = 0;
        for (i, n) in self.late.iter().enumerate() {
            seen += n;
            if seen >= want {
                return ((i as u64 + 1) * LATE_BUCKET_NS / 1000).min(self.stats.late_max_us);
            }
        }
        self.stats.late_max_us
    }

    /// Copy the counters where the owner reads them.
    fn publish(&mut self) {
        self.stats.queued = self.heap.len() as u64;
        self.stats.late_p99_us = self.late_p99_us();
        if let Ok(mut s) = self.shared.lock() {
            *s = self.stats.clone();
        }
    }
}

/// Wait until one of `fds` is readable or `timeout` passes.
fn wait(fds: &[i32], timeout: Duration) -> io::Result<()> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `polls` is a valid array of pollfd of the length given.
    let rc = unsafe {
        libc::poll(
            polls.as_mut_ptr(),
            polls.len() as libc::nfds_t,
            timeout.as_millis() as libc::c_int,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Read every frame waiting on the TAP (at most a batch); how many were read.
fn read_frames(io: &LoopIo, line: &mut Line, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < READ_BATCH {
        match io.tap.read(buf) {
            Ok(n) => {
                line.offer(monotonic_now(), buf[..n].to_vec());
                got += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading frames from the TAP device"),
        }
    }
    Ok(got)
}

/// Run the loop until told to stop (or the command channel closes) or the interface goes.
pub(crate) fn run(io: &LoopIo, line: &mut Line, commands: &Receiver<Command>) -> Result<Ended> {
    let timer = Timer::new().context("creating a timerfd")?;
    let mut buf = vec![0u8; MAX_FRAME];
    let mut last_check = monotonic_now();
    let fds = [io.tap.as_raw_fd(), timer.as_raw_fd(), io.wake.as_raw_fd()];
    loop {
        loop {
            match commands.try_recv() {
                Ok(Command::Set(c)) => line.shaper.set(&c),
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => {
                    line.publish();
                    return Ok(Ended::Stopped);
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let got = read_frames(io, line, &mut buf)?;
        if !line.send_due(&io.wire, io.ifindex) {
            line.publish();
            return Ok(Ended::InterfaceGone);
        }
        line.publish();
        let now = monotonic_now();
        if now.saturating_sub(last_check) >= LIVENESS_EVERY {
            last_check = now;
            if !interface_exists(io.ifindex) {
                return Ok(Ended::InterfaceGone);
            }
        }
        if got == READ_BATCH {
            continue;
        }
        timer.arm(line.next_at()).context("arming the timerfd")?;
        wait(&fds, LIVENESS_EVERY).context("waiting for frames")?;
        timer.drain();
        io.wake.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::spec::Rate;

    #[test]
    fn heap_gives_frames_in_time_then_arrival_order() {
        let shared = Arc::new(Mutex::new(Stats::default()));
        let c = Conditions {
            rate: Some(Rate { bits_per_sec: 8000 }),
            ..Default::default()
        };
        let mut line = Line::new(&c, 1, "userspace-bpf", shared.clone());
        let t0 = Duration::from_secs(10);
        line.offer(t0, vec![1; 100]);
        line.offer(t0, vec![2; 100]);
        // 100 bytes at 1000 bytes/s: 0.1 s each, queued behind one another
        assert_eq!(line.next_at(), Some(t0 + Duration::from_millis(100)));
        let Reverse(first) = line.heap.pop().unwrap();
        let Reverse(second) = line.heap.pop().unwrap();
        assert_eq!(first.frame[0], 1);
        assert_eq!(second.at, t0 + Duration::from_millis(200));
        line.publish();
        let s = shared.lock().unwrap().clone();
        assert_eq!((s.frames_in, s.bytes_in, s.frames_out), (2, 200, 0));
    }

    #[test]
    fn lateness_percentile_reads_the_histogram() {
        let mut line = Line::new(
            &Conditions::default(),
            1,
            "userspace-bpf",
            Arc::new(Mutex::new(Stats::default())),
        );
        assert_eq!(line.late_p99_us(), 0);
        line.record_lateness(Duration::from_micros(2));
        // never above the maximum, whatever the bucket's edge
        assert_eq!(line.late_p99_us(), 2);
        for _ in 0..99 {
            line.record_lateness(Duration::from_micros(3));
        }
        line.record_lateness(Duration::from_millis(2));
        assert_eq!(line.late_p99_us(), 5);
        assert_eq!(line.stats.late_max_us, 2000);
        line.record_lateness(Duration::from_millis(3));
        assert!(line.late_p99_us() >= 2000);
    }
}
