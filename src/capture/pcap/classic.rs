//! Classic libpcap files: one interface, microsecond or nanosecond timestamps.

use std::io::{self, IoSlice, Write};

use super::{
    Endian, LINKTYPE_ETHERNET, Record, TsResolution, caplen_of, effective_snaplen,
    write_all_vectored,
};

/// Magic number of a file with microsecond timestamps.
pub(super) const PCAP_MAGIC_MICRO: u32 = 0xa1b2_c3d4;
/// Magic number of a file with nanosecond timestamps.
pub(super) const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;

/// Writer of a classic pcap file (link type Ethernet).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    resolution: TsResolution,
    snaplen: u32,
    flush_each_packet: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header; `snaplen` 0 means [`DEFAULT_SNAPLEN`](super::DEFAULT_SNAPLEN).
    pub fn new(mut out: W, snaplen: u32, resolution: TsResolution) -> io::Result<Self> {
        let snaplen = effective_snaplen(snaplen);
        let magic = match resolution {
            TsResolution::Micro => PCAP_MAGIC_MICRO,
            TsResolution::Nano => PCAP_MAGIC_NANO,
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_ne_bytes());
        h[4..6].copy_from_slice(&2u16.to_ne_bytes());
        h[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone 0, sigfigs 0
        h[16..20].copy_from_slice(&snaplen.to_ne_bytes());
        h[20..24].copy_from_slice(&u32::from(LINKTYPE_ETHERNET).to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            resolution,
            snaplen,
            flush_each_packet: false,
        })
    }

    /// Flush the underlying writer after each packet (for a live pipe).
    pub fn set_flush_each_packet(&mut self, on: bool) {
        self.flush_each_packet = on;
    }

    /// Appends one packet; `ts_ns` is nanoseconds since the Unix epoch, `orig_len`
    /// the length on the wire. Data beyond the snap length is cut off.
    pub fn write_packet(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let caplen = caplen_of(data, self.snaplen);
        let secs = ts_ns / 1_000_000_000;
        let frac = match self.resolution {
            TsResolution::Micro => (ts_ns % 1_000_000_000) / 1000,
            TsResolution::Nano => ts_ns % 1_000_000_000,
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(secs as u32).to_ne_bytes());
        h[4..8].copy_from_slice(&(frac as u32).to_ne_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_ne_bytes());
        h[12..16].copy_from_slice(&orig_len.max(caplen as u32).to_ne_bytes());
        write_all_vectored(
            &mut self.out,
            &mut [IoSlice::new(&h), IoSlice::new(&data[..caplen])],
        )?;
        if self.flush_each_packet {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Reads every packet of a classic pcap stream, naming their interface `interface`.
pub(super) fn parse_pcap(b: &[u8], interface: &str) -> Result<Vec<Record>, String> {
    let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let e = Endian {
        big: le != PCAP_MAGIC_MICRO && le != PCAP_MAGIC_NANO,
    };
    let magic = e.u32(b, 0).unwrap_or(0);
    let nano = magic == PCAP_MAGIC_NANO;
    if b.len() < 24 {
        return Err("pcap file header cut short".into());
    }
    let mut out = Vec::new();
    let mut off = 24;
    while off < b.len() {
        let (Some(sec), Some(frac), Some(caplen), Some(orig)) = (
            e.u32(b, off),
            e.u32(b, off + 4),
            e.u32(b, off + 8),
            e.u32(b, off + 12),
        ) else {
            return Err(format!("packet header cut short at byte {off}"));
        };
        let start = off + 16;
        let data = start
            .checked_add(caplen as usize)
            .and_then(|end| b.get(start..end))
            .ok_or_else(|| {
                format!("packet data cut short at byte {start} ({caplen} bytes announced)")
            })?;
        let frac_ns = if nano {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        out.push(Record {
            ts: u64::from(sec) * 1_000_000_000 + frac_ns,
            interface: interface.to_string(),
            orig_len: orig,
            data: data.to_vec(),
        });
        off = start + caplen as usize;
    }
    Ok(out)
}
