//! The rings of several interfaces read as one stream in timestamp order.
//!
//! The kernel hands a ring's packets over a block at a time, so the oldest
//! packet handed over so far is not always the oldest one captured: another
//! interface may hold older packets in a block it has not handed over yet. A
//! packet is therefore held back while that can be the case, for at most
//! [`MERGE_WINDOW_NS`] (longer than a block's timeout), unless its ring is
//! filling up.

use std::io;
use std::time::Duration;

use super::now_ns;
use super::ring::{BLOCK_TIMEOUT_MS, Frame, Ring};

/// Longest a packet waits for possibly older packets of another interface
/// (whose kernel-side block already holds packets) before it is written;
/// longer than a block's timeout.
pub(super) const MERGE_WINDOW_NS: u64 = (BLOCK_TIMEOUT_MS as u64 + 50) * 1_000_000;

/// What [`Merge::next`] found.
#[derive(Debug, Clone, Copy)]
pub(super) enum Next {
    /// No ring has a packet handed over.
    Idle,
    /// The oldest packet may not be the oldest captured: wait until this
    /// time (ns since the epoch) at the latest.
    HoldUntil(u64),
    /// The oldest packet, due to be written.
    Ready(Due),
}

/// A packet due to be written: ring `ring`'s current frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Due {
    /// Index of the ring (the interface's number in the file).
    pub(super) ring: usize,
    /// The frame.
    pub(super) frame: Frame,
}

/// Packets, dropped packets and written packets of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RingCounts {
    /// Packets the kernel saw.
    pub(super) seen: u64,
    /// Packets the kernel dropped for lack of room in the ring.
    pub(super) dropped: u64,
    /// Packets written out.
    pub(super) written: u64,
}

/// Several rings, read oldest packet first.
pub(super) struct Merge {
    rings: Vec<Ring>,
}

impl Merge {
    /// Merges `rings`; their order is the interfaces' order in the file.
    pub(super) fn new(rings: Vec<Ring>) -> Merge {
        Merge { rings }
    }

    /// The interfaces, in file order.
    pub(super) fn names(&self) -> Vec<String> {
        self.rings.iter().map(|r| r.name.clone()).collect()
    }

    /// How many interfaces.
    pub(super) fn len(&self) -> usize {
        self.rings.len()
    }

    /// Packets written out so far, all interfaces together.
    pub(super) fn written(&self) -> u64 {
        self.rings.iter().map(|r| r.written).sum()
    }

    /// The interface of ring `i`.
    pub(super) fn name(&self, i: usize) -> &str {
        &self.rings[i].name
    }

    /// The next packet to write, oldest first across interfaces. With `force`
    /// (the capture is ending) nothing is held back. A loopback interface's
    /// outgoing copies are passed over: each packet shows there once.
    pub(super) fn next(&mut self, force: bool) -> Next {
        loop {
            let mut best: Option<(usize, Frame)> = None;
            let mut pending_elsewhere = false;
            for (i, r) in self.rings.iter_mut().enumerate() {
                match r.peek() {
                    Some(f) => {
                        if best.is_none_or(|(_, b)| f.ts < b.ts) {
                            best = Some((i, f));
                        }
                    }
                    None => pending_elsewhere |= r.open_block_pending(),
                }
            }
            let Some((i, frame)) = best else {
                return Next::Idle;
            };
            // Another interface holds packets in a block the kernel has not
            // handed over yet, possibly older ones: wait for that block (it
            // times out within BLOCK_TIMEOUT_MS), unless this ring is filling
            // up or the wait has gone on too long.
            let hold_until = frame.ts.saturating_add(MERGE_WINDOW_NS);
            if pending_elsewhere
                && !force
                && hold_until > now_ns()
                && !self.rings[i].under_pressure()
            {
                return Next::HoldUntil(hold_until);
            }
            let ring = &mut self.rings[i];
            if ring.loopback && frame.is_outgoing() {
                ring.advance();
                continue;
            }
            return Next::Ready(Due { ring: i, frame });
        }
    }

    /// The bytes of a due packet as they were on the wire and their length
    /// there (see [`Ring::frame_bytes`]; `scratch` holds a rebuilt frame).
    pub(super) fn bytes<'a>(&'a self, due: &Due, scratch: &'a mut Vec<u8>) -> (&'a [u8], u32) {
        self.rings[due.ring].frame_bytes(&due.frame, scratch)
    }

    /// Passes over a due packet without writing it.
    pub(super) fn skip(&mut self, due: &Due) {
        self.rings[due.ring].advance();
    }

    /// Moves past a due packet that was written.
    pub(super) fn taken(&mut self, due: &Due) {
        let ring = &mut self.rings[due.ring];
        ring.advance();
        ring.written += 1;
    }

    /// Waits up to `timeout` for a ring to be handed a block. While a packet
    /// is held (`holding`), rings that already have packets would report
    /// ready at once: only the others are waited on. Clears socket errors
    /// (a link going down) so that the capture carries on.
    pub(super) fn wait(&mut self, timeout: Duration, holding: bool) -> io::Result<()> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.rings.len());
        for r in self.rings.iter_mut() {
            let wanted = !holding || r.peek().is_none();
            fds.push(libc::pollfd {
                // A negative fd is skipped by poll(2).
                fd: if wanted { r.poll_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: fds is a valid array of fds.len() pollfd structures.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for (r, p) in self.rings.iter().zip(&fds) {
            if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                r.clear_error();
            }
        }
        Ok(())
    }

    /// The first interface that was deleted, if any.
    pub(super) fn gone(&self) -> Option<&str> {
        self.rings
            .iter()
            .find(|r| r.is_gone())
            .map(|r| r.name.as_str())
    }

    /// Each interface's counts (the kernel's are since the last call).
    pub(super) fn counts(&self) -> Vec<RingCounts> {
        self.rings
            .iter()
            .map(|r| {
                let (seen, dropped) = r.statistics().unwrap_or((0, 0));
                RingCounts {
                    seen,
                    dropped,
                    written: r.written,
                }
            })
            .collect()
    }
}
