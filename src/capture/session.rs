//! A capture from start to end: the sockets opened inside the namespace
//! ([`Capture::open`]), then the loop that writes the packets out in time
//! order and hands each to the caller ([`Capture::run`]).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::clock::Clock;
use super::decode::{Packet, decode};
use super::error::{CaptureError, ns_display};
use super::merge::{Merge, Next};
use super::netns::{choose_interfaces, in_netns, interfaces_here};
use super::pcap::Format;
use super::ring::Ring;
use super::writer::{Output, Written};
use super::{CaptureSpec, MAX_SNAPLEN, Sink, Summary, now_ns};

/// How often to check that the interfaces still exist.
const GONE_CHECK: Duration = Duration::from_millis(250);

/// A capture whose sockets are open and already collecting packets (into
/// the kernel ring) but not yet written anywhere: [`Capture::open`], then
/// [`Capture::run`]. Splitting the two lets a caller start the traffic only
/// once the capture is sure to see it.
pub struct Capture {
    ns: String,
    merge: Merge,
    snaplen: u32,
    count: Option<u64>,
    duration: Option<Duration>,
    /// Room to rebuild a frame whose VLAN tag the kernel took out.
    frame_buf: Vec<u8>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("ns", &self.ns)
            .field("interfaces", &self.interfaces())
            .field("snaplen", &self.snaplen)
            .finish_non_exhaustive()
    }
}

/// How [`Capture::write_due`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// Nothing more is due now; `hold_until` (ns since the epoch) is set when
    /// a packet is held back for older ones that may still come.
    Idle { hold_until: Option<u64> },
    /// The packet count is reached.
    CountReached,
    /// The reader of standard output went away.
    PipeClosed,
}

impl Capture {
    /// Enters the namespace on a helper thread and opens one packet socket
    /// per interface of `spec` there; packets are collected from now on.
    pub fn open(spec: &CaptureSpec) -> Result<Capture, CaptureError> {
        let netns = spec.netns.as_deref();
        let ns = ns_display(netns);
        let snaplen = if spec.snaplen == 0 {
            MAX_SNAPLEN
        } else {
            spec.snaplen.min(MAX_SNAPLEN)
        };
        let rings = in_netns(netns, || {
            let all = interfaces_here(&ns)?;
            choose_interfaces(&all, &spec.interfaces, &ns)?
                .iter()
                .map(|(idx, name)| Ring::open(name, *idx, snaplen, &ns))
                .collect::<Result<Vec<Ring>, CaptureError>>()
        })?;
        Ok(Capture {
            ns,
            merge: Merge::new(rings),
            snaplen,
            count: spec.count,
            duration: spec.duration,
            frame_buf: Vec::new(),
        })
    }

    /// The interfaces being captured, in file order.
    pub fn interfaces(&self) -> Vec<String> {
        self.merge.names()
    }

    /// The format [`Capture::run`] will write: pcap for one interface, pcapng for several.
    pub fn format(&self) -> Format {
        if self.merge.len() == 1 {
            Format::Pcap
        } else {
            Format::Pcapng
        }
    }

    /// The snap length in force.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Captures until the count or duration is reached or `stop` becomes
    /// true, writing to `sink` and calling `on_packet(interface, packet,
    /// timestamp_ns)` for each packet, in timestamp order across interfaces.
    /// Returns once the file is complete and flushed.
    pub fn run(
        mut self,
        sink: Sink,
        stop: &AtomicBool,
        on_packet: &mut dyn FnMut(&str, &Packet, u64),
    ) -> Result<Summary, CaptureError> {
        let format = self.format();
        let names = self.interfaces();
        let mut out = Output::open(sink, format, &names, self.snaplen)?;
        let mut clock = Clock::start(self.duration);
        let mut failure = None;
        let mut last_check = Instant::now();
        let pipe_closed = loop {
            let now = Instant::now();
            clock.notice_end(stop, now);
            let force = clock.grace_over(now);
            let hold_until = match self.write_due(&mut out, &clock, force, on_packet)? {
                Drained::Idle { hold_until } => hold_until,
                Drained::CountReached => break false,
                Drained::PipeClosed => break true,
            };
            if force {
                break false;
            }
            self.wait(&clock, hold_until)?;
            if last_check.elapsed() >= GONE_CHECK {
                last_check = Instant::now();
                if let Some(e) = self.gone_error() {
                    failure = Some(e);
                    // Write what was already handed over, then stop.
                    clock.end_at_once();
                }
            }
        };

        let end_ns = now_ns();
        let counts = self.merge.counts();
        if !pipe_closed {
            out.finish(&counts, clock.start_ns, end_ns)?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Summary {
            packets: self.merge.written(),
            dropped: counts.iter().map(|c| c.dropped).sum(),
            interfaces: names,
            format,
        })
    }

    /// Writes every packet that is due, oldest first across interfaces,
    /// calling `on_packet` for each; with `force`, every packet handed over.
    fn write_due(
        &mut self,
        out: &mut Output,
        clock: &Clock,
        force: bool,
        on_packet: &mut dyn FnMut(&str, &Packet, u64),
    ) -> Result<Drained, CaptureError> {
        loop {
            if self.count.is_some_and(|c| self.merge.written() >= c) {
                return Ok(Drained::CountReached);
            }
            let due = match self.merge.next(force) {
                Next::Idle => return Ok(Drained::Idle { hold_until: None }),
                Next::HoldUntil(t) => {
                    return Ok(Drained::Idle {
                        hold_until: Some(t),
                    });
                }
                Next::Ready(due) => due,
            };
            let ts = due.frame.ts;
            if clock.cutoff().is_some_and(|cutoff| ts > cutoff) {
                self.merge.skip(&due);
                continue;
            }
            let (data, orig_len) = self.merge.bytes(&due, &mut self.frame_buf);
            on_packet(self.merge.name(due.ring), &decode(data), ts);
            if out.write_packet(due.ring as u32, ts, orig_len, data)? == Written::PipeClosed {
                return Ok(Drained::PipeClosed);
            }
            self.merge.taken(&due);
        }
    }

    /// Waits for packets, as long as `clock` allows.
    fn wait(&mut self, clock: &Clock, hold_until: Option<u64>) -> Result<(), CaptureError> {
        let timeout = clock.wait_time(hold_until);
        self.merge
            .wait(timeout, hold_until.is_some())
            .map_err(|source| CaptureError::Io {
                iface: self.merge.names().join(", "),
                ns: self.ns.clone(),
                source,
            })
    }

    /// The error to end with when an interface was deleted.
    fn gone_error(&self) -> Option<CaptureError> {
        self.merge.gone().map(|iface| CaptureError::InterfaceGone {
            iface: iface.to_string(),
            ns: self.ns.clone(),
        })
    }
}
