//! Capture files: writers for classic pcap and for pcapng, and a reader for both.
//!
//! The writers write to any [`std::io::Write`] and can flush after every
//! packet (for a live pipe into `wireshark -k -i -`). Files are written in the
//! machine's byte order, as libpcap does; the reader takes either order.
//!
//! `classic` holds the pcap writer and reader, `ng` the pcapng ones; this file
//! the format detection and the reading entry points shared by both.

mod classic;
mod ng;

#[cfg(test)]
mod tests;

use std::io::{self, IoSlice, Read, Write};
use std::path::Path;

pub use classic::PcapWriter;
pub use ng::{InterfaceStats, PcapngWriter};

use classic::{PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO, parse_pcap};
use ng::{PCAPNG_SHB, parse_pcapng};

/// LINKTYPE_ETHERNET, the only link type tcplab writes.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// The snap length written when the caller gives 0 (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// A capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Classic libpcap format: one interface, no interface name.
    Pcap,
    /// pcapng: several interfaces, each with its name.
    Pcapng,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        })
    }
}

/// Timestamp resolution of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsResolution {
    /// Microseconds (magic a1b2c3d4), readable by every tool.
    Micro,
    /// Nanoseconds (magic a1b23c4d).
    Nano,
}

/// `write_all` over several slices: one `writev` where the writer allows it,
/// so a large packet goes straight from the capture ring to the file.
fn write_all_vectored<W: Write + ?Sized>(
    w: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn effective_snaplen(snaplen: u32) -> u32 {
    if snaplen == 0 {
        DEFAULT_SNAPLEN
    } else {
        snaplen
    }
}

fn caplen_of(data: &[u8], snaplen: u32) -> usize {
    data.len().min(snaplen as usize)
}

/// One packet read back from a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp in nanoseconds since the Unix epoch.
    pub ts: u64,
    /// Interface name: pcapng's `if_name` (empty when unnamed); for classic
    /// pcap the name the caller gave (see [`read_file_as`]) or empty.
    pub interface: String,
    /// Length of the packet on the wire (`data` may be shorter: snap length).
    pub orig_len: u32,
    /// The captured bytes (an Ethernet frame).
    pub data: Vec<u8>,
}

/// Reads every packet of a pcap or pcapng file; classic pcap records get an
/// empty interface name.
pub fn read_file(path: impl AsRef<Path>) -> io::Result<Vec<Record>> {
    read_file_as(path, "")
}

/// Reads every packet of a pcap or pcapng file, naming classic pcap records'
/// interface `pcap_interface` (pcapng records keep their `if_name`).
pub fn read_file_as(path: impl AsRef<Path>, pcap_interface: &str) -> io::Result<Vec<Record>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)?;
    parse(&bytes, pcap_interface).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Reads every packet of a pcap or pcapng stream (see [`read_file_as`]).
pub fn read_from(mut r: impl Read, pcap_interface: &str) -> io::Result<Vec<Record>> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    parse(&bytes, pcap_interface).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The format of a capture file from its first bytes.
pub fn detect_format(head: &[u8]) -> Option<Format> {
    let m = u32::from_le_bytes(head.get(..4)?.try_into().ok()?);
    match m {
        PCAP_MAGIC_MICRO | PCAP_MAGIC_NANO => Some(Format::Pcap),
        _ if m.swap_bytes() == PCAP_MAGIC_MICRO || m.swap_bytes() == PCAP_MAGIC_NANO => {
            Some(Format::Pcap)
        }
        PCAPNG_SHB => Some(Format::Pcapng),
        _ => None,
    }
}

/// Byte-order-aware reads from a slice; every read is bounds-checked.
#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8], off: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }

    fn u32(self, b: &[u8], off: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    fn u64(self, b: &[u8], off: usize) -> Option<u64> {
        let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    }
}

fn parse(b: &[u8], pcap_interface: &str) -> Result<Vec<Record>, String> {
    match detect_format(b) {
        Some(Format::Pcap) => parse_pcap(b, pcap_interface),
        Some(Format::Pcapng) => parse_pcapng(b),
        None if b.is_empty() => Err("empty file, not a capture".into()),
        None => Err("not a pcap or pcapng file (unknown magic number)".into()),
    }
}
