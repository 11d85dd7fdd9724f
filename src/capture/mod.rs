//! Native packet capture inside a lab node's network namespace.
//!
//! One `AF_PACKET` socket per interface, each opened from a short-lived
//! thread that entered the namespace (the caller's thread never changes
//! namespace; a socket stays tied to the namespace it was opened in), bound to
//! the interface with `ETH_P_ALL`, so that incoming and outgoing packets are
//! each seen once. Packets are read from a `TPACKET_V3` ring shared with the
//! kernel (kernel timestamps in nanoseconds, drop counts from
//! `PACKET_STATISTICS`), merged across interfaces in timestamp order, written
//! as pcap (one interface) or pcapng (several, one interface block each), and
//! handed decoded to a callback that typically prints the tcpdump-style line.
//!
//! Capturing, ordering, writing and printing are separate pieces:
//! - `ring`: the kernel side, one socket and `TPACKET_V3` ring per interface;
//! - `netns`: the helper thread that opens them inside the namespace;
//! - `merge`: the rings read as one stream in timestamp order;
//! - `writer`: the pcap or pcapng file being written;
//! - `clock`: when the capture ends and how long it waits meanwhile;
//! - `session`: [`Capture`], which opens the rings and runs the loop that
//!   takes packets from `merge` to `writer` and to the caller's callback (the
//!   printing, which is up to the caller);
//! - [`decode`](mod@decode) and [`pcap`]: the decoder and the file formats, used by
//!   other parts of tcplab as well.
//!
//! ```no_run
//! # use std::sync::atomic::AtomicBool;
//! # use tcplab::capture::{run, CaptureSpec, Sink};
//! let spec = CaptureSpec {
//!     netns: Some("/run/netns/tcplab-tcpip-bsdi".into()),
//!     count: Some(10),
//!     ..CaptureSpec::default()
//! };
//! let stop = AtomicBool::new(false);
//! let summary = run(&spec, Sink::File("bsdi.pcapng".into()), &stop, &mut |iface, pkt, _ts| {
//!     eprintln!("{iface} {pkt}");
//! })?;
//! eprintln!("{} packets captured, {} dropped", summary.packets, summary.dropped);
//! # Ok::<(), tcplab::capture::CaptureError>(())
//! ```

mod clock;
pub mod decode;
mod error;
mod merge;
mod netns;
pub mod pcap;
mod ring;
mod session;
mod writer;

#[cfg(test)]
mod tests;

pub use decode::{Packet, decode};
pub use error::CaptureError;
pub use netns::list_interfaces;
pub use pcap::{Format, Record, read_file};
pub use session::Capture;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest snap length accepted; 0 also means this.
pub const MAX_SNAPLEN: u32 = pcap::DEFAULT_SNAPLEN;

/// What to capture, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// The network namespace (e.g. `/run/netns/tcplab-tcpip-bsdi`); `None`
    /// captures in the caller's current namespace.
    pub netns: Option<PathBuf>,
    /// Interfaces to capture on; empty means all of the namespace's
    /// interfaces except `lo`.
    pub interfaces: Vec<String>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Bytes kept of each packet; 0 means [`MAX_SNAPLEN`] (tcpdump's default).
    pub snaplen: u32,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        CaptureSpec {
            netns: None,
            interfaces: Vec::new(),
            count: None,
            duration: None,
            snaplen: MAX_SNAPLEN,
        }
    }
}

/// Where the capture file goes.
pub enum Sink {
    /// A file, created or truncated.
    File(PathBuf),
    /// Standard output, flushed after every packet (for `-w - | wireshark -k -i -`).
    Stdout,
    /// Any writer (buffered here, flushed at the end).
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::File(p) => f.debug_tuple("File").field(p).finish(),
            Sink::Stdout => f.write_str("Stdout"),
            Sink::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

impl Sink {
    fn describe(&self) -> String {
        match self {
            Sink::File(p) => p.display().to_string(),
            Sink::Stdout => "standard output".into(),
            Sink::Writer(_) => "the output writer".into(),
        }
    }
}

/// What a finished capture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Packets written to the file (and passed to the callback).
    pub packets: u64,
    /// Packets the kernel dropped because the capture did not keep up.
    pub dropped: u64,
    /// The interfaces captured on, in file order.
    pub interfaces: Vec<String>,
    /// The file format written.
    pub format: Format,
}

/// The wall clock in nanoseconds since the Unix epoch (the kernel's timestamps' clock).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Captures in `spec.netns` on `spec.interfaces` (all but `lo` when empty)
/// until `spec.count` packets, `spec.duration`, or `stop` becoming true,
/// writing pcap (one interface) or pcapng (several) to `sink` and calling
/// `on_packet(interface, packet, timestamp_ns)` for each packet.
///
/// The sockets are opened from a dedicated thread that entered the namespace;
/// the caller's thread never changes namespace. Same as
/// `Capture::open(spec)?.run(sink, stop, on_packet)`.
pub fn run(
    spec: &CaptureSpec,
    sink: Sink,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(&str, &Packet, u64),
) -> Result<Summary, CaptureError> {
    Capture::open(spec)?.run(sink, stop, on_packet)
}
