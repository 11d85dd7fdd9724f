//! Capture files: writers for classic pcap and for pcapng, and a reader for both.
//!
//! The writers write to any [`std::io::Write`] and can flush after every
//! packet (for a live pipe into `wireshark -k -i -`). Files are written in the
//! machine's byte order, as libpcap does; the reader takes either order.

use std::io::{self, IoSlice, Read, Write};
use std::path::Path;

/// LINKTYPE_ETHERNET, the only link type tcplab writes.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// The snap length written when the caller gives 0 (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

const PCAP_MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_ISB: u32 = 5;
const PCAPNG_EPB: u32 = 6;

const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPT_ISB_STARTTIME: u16 = 2;
const OPT_ISB_ENDTIME: u16 = 3;
const OPT_ISB_IFRECV: u16 = 4;
const OPT_ISB_IFDROP: u16 = 5;
const OPT_ISB_USRDELIV: u16 = 8;

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

/// Writer of a classic pcap file (link type Ethernet).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    resolution: TsResolution,
    snaplen: u32,
    flush_each_packet: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header; `snaplen` 0 means [`DEFAULT_SNAPLEN`].
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

/// Statistics of one interface, written as a pcapng Interface Statistics Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceStats {
    /// When the statistics were taken (ns since the epoch).
    pub ts: u64,
    /// When the capture started (ns since the epoch).
    pub start: Option<u64>,
    /// Packets the capture saw, dropped ones included.
    pub received: Option<u64>,
    /// Packets dropped for lack of buffer space.
    pub dropped: Option<u64>,
    /// Packets written to the file.
    pub delivered: Option<u64>,
}

/// Writer of a pcapng file: one section, interfaces added one by one.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    snaplens: Vec<u32>,
    flush_each_packet: bool,
}

fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_ne_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + pad4(value.len()), 0);
}

fn end_options(buf: &mut Vec<u8>) {
    push_option(buf, OPT_ENDOFOPT, &[]);
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&block_type.to_ne_bytes())?;
    out.write_all(&total.to_ne_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_ne_bytes())
}

/// pcapng's 64-bit timestamp in two 32-bit halves, high first.
fn ts_halves(ts: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..4].copy_from_slice(&((ts >> 32) as u32).to_ne_bytes());
    b[4..8].copy_from_slice(&(ts as u32).to_ne_bytes());
    b
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block, naming `application` (shb_userappl).
    pub fn new(mut out: W, application: &str) -> io::Result<Self> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&PCAPNG_BOM.to_ne_bytes());
        body.extend_from_slice(&1u16.to_ne_bytes());
        body.extend_from_slice(&0u16.to_ne_bytes());
        body.extend_from_slice(&(-1i64).to_ne_bytes());
        if !application.is_empty() {
            push_option(&mut body, OPT_SHB_USERAPPL, application.as_bytes());
            end_options(&mut body);
        }
        write_block(&mut out, PCAPNG_SHB, &body)?;
        Ok(PcapngWriter {
            out,
            snaplens: Vec::new(),
            flush_each_packet: false,
        })
    }

    /// Writes an Interface Description Block (Ethernet, nanosecond timestamps,
    /// `if_name` = `name`) and returns the interface's id for [`Self::write_packet`].
    pub fn add_interface(&mut self, name: &str, snaplen: u32) -> io::Result<u32> {
        let snaplen = effective_snaplen(snaplen);
        let mut body = Vec::with_capacity(32 + name.len());
        body.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        body.extend_from_slice(&0u16.to_ne_bytes());
        body.extend_from_slice(&snaplen.to_ne_bytes());
        if !name.is_empty() {
            push_option(&mut body, OPT_IF_NAME, name.as_bytes());
        }
        push_option(&mut body, OPT_IF_TSRESOL, &[9]);
        end_options(&mut body);
        write_block(&mut self.out, PCAPNG_IDB, &body)?;
        self.snaplens.push(snaplen);
        Ok((self.snaplens.len() - 1) as u32)
    }

    fn snaplen_of(&self, interface: u32) -> io::Result<u32> {
        self.snaplens
            .get(interface as usize)
            .copied()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("pcapng interface {interface} was never added"),
                )
            })
    }

    /// Flush the underlying writer after each packet (for a live pipe).
    pub fn set_flush_each_packet(&mut self, on: bool) {
        self.flush_each_packet = on;
    }

    /// Appends an Enhanced Packet Block for `interface` (an id from
    /// [`Self::add_interface`]); `ts_ns` is nanoseconds since the Unix epoch.
    pub fn write_packet(
        &mut self,
        interface: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let caplen = caplen_of(data, self.snaplen_of(interface)?);
        let pad = pad4(caplen);
        let total = (32 + caplen + pad) as u32;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&PCAPNG_EPB.to_ne_bytes());
        h[4..8].copy_from_slice(&total.to_ne_bytes());
        h[8..12].copy_from_slice(&interface.to_ne_bytes());
        h[12..20].copy_from_slice(&ts_halves(ts_ns));
        h[20..24].copy_from_slice(&(caplen as u32).to_ne_bytes());
        h[24..28].copy_from_slice(&orig_len.max(caplen as u32).to_ne_bytes());
        let trailer = total.to_ne_bytes();
        write_all_vectored(
            &mut self.out,
            &mut [
                IoSlice::new(&h),
                IoSlice::new(&data[..caplen]),
                IoSlice::new(&[0u8; 3][..pad]),
                IoSlice::new(&trailer),
            ],
        )?;
        if self.flush_each_packet {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Appends an Interface Statistics Block (received and dropped counts
    /// show in Wireshark's capture file properties).
    pub fn write_statistics(&mut self, interface: u32, stats: &InterfaceStats) -> io::Result<()> {
        self.snaplen_of(interface)?;
        let mut body = Vec::with_capacity(96);
        body.extend_from_slice(&interface.to_ne_bytes());
        body.extend_from_slice(&ts_halves(stats.ts));
        if let Some(s) = stats.start {
            push_option(&mut body, OPT_ISB_STARTTIME, &ts_halves(s));
            push_option(&mut body, OPT_ISB_ENDTIME, &ts_halves(stats.ts));
        }
        let counters = [
            (OPT_ISB_IFRECV, stats.received),
            (OPT_ISB_IFDROP, stats.dropped),
            (OPT_ISB_USRDELIV, stats.delivered),
        ];
        for (code, value) in counters {
            if let Some(v) = value {
                push_option(&mut body, code, &v.to_ne_bytes());
            }
        }
        end_options(&mut body);
        write_block(&mut self.out, PCAPNG_ISB, &body)
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

fn parse_pcap(b: &[u8], interface: &str) -> Result<Vec<Record>, String> {
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

/// One pcapng interface as described by its IDB.
struct NgInterface {
    name: String,
    snaplen: u32,
    /// (is power of two, exponent)
    tsresol: (bool, u8),
    tsoffset_s: i64,
}

impl NgInterface {
    fn ts_ns(&self, units: u64) -> u64 {
        let (pow2, exp) = self.tsresol;
        let units = u128::from(units);
        let ns = if pow2 {
            if exp >= 127 {
                0
            } else {
                (units * 1_000_000_000) >> exp
            }
        } else if exp <= 9 {
            units * 10u128.pow(u32::from(9 - exp))
        } else if exp <= 38 {
            units / 10u128.pow(u32::from(exp - 9))
        } else {
            0
        };
        let ns = ns as i128 + i128::from(self.tsoffset_s) * 1_000_000_000;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// Iterates pcapng options: (code, value).
fn options(e: Endian, mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let code = e.u16(b, 0)?;
        let len = usize::from(e.u16(b, 2)?);
        if code == OPT_ENDOFOPT {
            return None;
        }
        let value = b.get(4..4 + len)?;
        b = b.get(4 + len + pad4(len)..).unwrap_or(&[]);
        Some((code, value))
    })
}

fn parse_pcapng(b: &[u8]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let mut interfaces: Vec<NgInterface> = Vec::new();
    let mut e = Endian { big: false };
    let mut off = 0usize;
    while off < b.len() {
        let Some(btype) = e.u32(b, off) else {
            return Err(format!("block header cut short at byte {off}"));
        };
        if btype == PCAPNG_SHB {
            let bom = b
                .get(off + 8..off + 12)
                .ok_or_else(|| format!("section header cut short at byte {off}"))?;
            e = match bom {
                [0x1a, 0x2b, 0x3c, 0x4d] => Endian { big: true },
                [0x4d, 0x3c, 0x2b, 0x1a] => Endian { big: false },
                _ => return Err(format!("bad byte-order magic at byte {}", off + 8)),
            };
            interfaces.clear();
        }
        let Some(total) = e.u32(b, off + 4).map(|t| t as usize) else {
            return Err(format!("block header cut short at byte {off}"));
        };
        if total < 12 || total % 4 != 0 {
            return Err(format!("bad block length {total} at byte {off}"));
        }
        let block = off
            .checked_add(total)
            .and_then(|end| b.get(off..end))
            .ok_or_else(|| format!("block cut short at byte {off} ({total} bytes announced)"))?;
        if e.u32(block, total - 4) != Some(total as u32) {
            return Err(format!(
                "block at byte {off}: trailing length does not match"
            ));
        }
        let body = &block[8..total - 4];
        match btype {
            PCAPNG_IDB => {
                let snaplen = e
                    .u32(body, 4)
                    .ok_or_else(|| format!("interface block cut short at byte {off}"))?;
                let mut ifc = NgInterface {
                    name: String::new(),
                    snaplen,
                    tsresol: (false, 6),
                    tsoffset_s: 0,
                };
                for (code, v) in options(e, body.get(8..).unwrap_or(&[])) {
                    match code {
                        OPT_IF_NAME => {
                            ifc.name = String::from_utf8_lossy(v)
                                .trim_end_matches('\0')
                                .to_string()
                        }
                        OPT_IF_TSRESOL if !v.is_empty() => {
                            ifc.tsresol = (v[0] & 0x80 != 0, v[0] & 0x7f)
                        }
                        OPT_IF_TSOFFSET => {
                            if let Some(s) = e.u64(v, 0) {
                                ifc.tsoffset_s = s as i64;
                            }
                        }
                        _ => {}
                    }
                }
                interfaces.push(ifc);
            }
            PCAPNG_EPB | PCAPNG_PB => {
                let (iface, hi, lo, caplen, orig) = if btype == PCAPNG_EPB {
                    (
                        e.u32(body, 0),
                        e.u32(body, 4),
                        e.u32(body, 8),
                        e.u32(body, 12),
                        e.u32(body, 16),
                    )
                } else {
                    (
                        e.u16(body, 0).map(u32::from),
                        e.u32(body, 4),
                        e.u32(body, 8),
                        e.u32(body, 12),
                        e.u32(body, 16),
                    )
                };
                let (Some(iface), Some(hi), Some(lo), Some(caplen), Some(orig)) =
                    (iface, hi, lo, caplen, orig)
                else {
                    return Err(format!("packet block cut short at byte {off}"));
                };
                let ifc = interfaces
                    .get(iface as usize)
                    .ok_or_else(|| format!("packet block at byte {off} names interface {iface}, which was never described"))?;
                let data = body.get(20..20 + caplen as usize).ok_or_else(|| {
                    format!("packet block at byte {off}: {caplen} bytes announced, fewer present")
                })?;
                out.push(Record {
                    ts: ifc.ts_ns((u64::from(hi) << 32) | u64::from(lo)),
                    interface: ifc.name.clone(),
                    orig_len: orig,
                    data: data.to_vec(),
                });
            }
            PCAPNG_SPB => {
                let ifc = interfaces.first().ok_or_else(|| {
                    format!("simple packet block at byte {off} before any interface")
                })?;
                let orig = e
                    .u32(body, 0)
                    .ok_or_else(|| format!("packet block cut short at byte {off}"))?;
                let avail = body.len().saturating_sub(4);
                let mut caplen = (orig as usize).min(avail);
                if ifc.snaplen != 0 {
                    caplen = caplen.min(ifc.snaplen as usize);
                }
                out.push(Record {
                    ts: 0,
                    interface: ifc.name.clone(),
                    orig_len: orig,
                    data: body[4..4 + caplen].to_vec(),
                });
            }
            _ => {}
        }
        off += total;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<(u64, Vec<u8>)> {
        vec![
            (1_700_000_000_123_456_789, vec![0xaa; 60]),
            (1_700_000_000_223_456_000, (0..=255u8).collect()),
            (1_700_000_001_000_000_001, vec![1, 2, 3]), // odd length: pcapng padding
        ]
    }

    #[test]
    fn pcap_micro_round_trip() {
        let mut w = PcapWriter::new(Vec::new(), 0, TsResolution::Micro).unwrap();
        for (ts, d) in frames() {
            w.write_packet(ts, d.len() as u32, &d).unwrap();
        }
        let bytes = w.into_inner();
        assert_eq!(detect_format(&bytes), Some(Format::Pcap));
        let recs = read_from(&bytes[..], "eth1").unwrap();
        assert_eq!(recs.len(), 3);
        for (r, (ts, d)) in recs.iter().zip(frames()) {
            assert_eq!(r.ts, ts / 1000 * 1000, "microsecond resolution");
            assert_eq!(r.data, d);
            assert_eq!(r.orig_len as usize, d.len());
            assert_eq!(r.interface, "eth1");
        }
    }

    #[test]
    fn pcap_nano_round_trip_and_snaplen() {
        let mut w = PcapWriter::new(Vec::new(), 100, TsResolution::Nano).unwrap();
        for (ts, d) in frames() {
            w.write_packet(ts, d.len() as u32, &d).unwrap();
        }
        let recs = read_from(&w.into_inner()[..], "").unwrap();
        for (r, (ts, d)) in recs.iter().zip(frames()) {
            assert_eq!(r.ts, ts);
            assert_eq!(r.data, &d[..d.len().min(100)]);
            assert_eq!(r.orig_len as usize, d.len());
            assert_eq!(r.interface, "");
        }
    }

    /// Accepts at most 5 bytes per call, vectored or not.
    struct Dribble(Vec<u8>);
    impl Write for Dribble {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(5);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn short_writes_are_completed() {
        let mut w = PcapngWriter::new(Dribble(Vec::new()), "x").unwrap();
        let id = w.add_interface("a", 0).unwrap();
        w.write_packet(id, 5, 3, &[1, 2, 3]).unwrap();
        let recs = read_from(&w.into_inner().0[..], "").unwrap();
        assert_eq!(recs[0].data, vec![1, 2, 3]);
        let mut w = PcapWriter::new(Dribble(Vec::new()), 0, TsResolution::Nano).unwrap();
        w.write_packet(5, 3, &[1, 2, 3]).unwrap();
        assert_eq!(read_from(&w.into_inner().0[..], "").unwrap()[0].ts, 5);
    }

    #[test]
    fn pcap_big_endian_is_read() {
        let mut b = Vec::new();
        b.extend_from_slice(&PCAP_MAGIC_MICRO.to_be_bytes());
        b.extend_from_slice(&2u16.to_be_bytes());
        b.extend_from_slice(&4u16.to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        for v in [10u32, 20, 4, 4] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[9, 8, 7, 6]);
        let recs = read_from(&b[..], "x").unwrap();
        assert_eq!(recs[0].ts, 10_000_020_000);
        assert_eq!(recs[0].data, vec![9, 8, 7, 6]);
    }

    fn ng_two_interfaces() -> Vec<u8> {
        let mut w = PcapngWriter::new(Vec::new(), "tcplab test").unwrap();
        let a = w.add_interface("eth1", 0).unwrap();
        let b = w.add_interface("bsdiside", 64).unwrap();
        for (i, (ts, d)) in frames().into_iter().enumerate() {
            let id = if i % 2 == 0 { a } else { b };
            w.write_packet(id, ts, d.len() as u32, &d).unwrap();
        }
        for id in [a, b] {
            let stats = InterfaceStats {
                ts: 1_700_000_002_000_000_000,
                start: Some(1_700_000_000_000_000_000),
                received: Some(10),
                dropped: Some(1),
                delivered: Some(9),
            };
            w.write_statistics(id, &stats).unwrap();
        }
        assert!(w.write_packet(7, 0, 1, &[0]).is_err());
        w.into_inner()
    }

    #[test]
    fn pcapng_round_trip_two_interfaces() {
        let bytes = ng_two_interfaces();
        assert_eq!(detect_format(&bytes), Some(Format::Pcapng));
        let recs = read_from(&bytes[..], "ignored").unwrap();
        assert_eq!(recs.len(), 3);
        let names: Vec<&str> = recs.iter().map(|r| r.interface.as_str()).collect();
        assert_eq!(names, ["eth1", "bsdiside", "eth1"]);
        for (r, (ts, d)) in recs.iter().zip(frames()) {
            assert_eq!(r.ts, ts, "nanosecond resolution");
            let cap = if r.interface == "bsdiside" {
                64
            } else {
                usize::MAX
            };
            assert_eq!(r.data, &d[..d.len().min(cap)]);
            assert_eq!(r.orig_len as usize, d.len());
        }
    }

    #[test]
    fn pcapng_other_resolutions_and_simple_blocks() {
        // Big-endian section, microsecond default resolution, then a second
        // section with a power-of-two resolution and a simple packet block.
        let mut b = Vec::new();
        let be_block = |b: &mut Vec<u8>, t: u32, body: &[u8]| {
            let total = (12 + body.len()) as u32;
            b.extend_from_slice(&t.to_be_bytes());
            b.extend_from_slice(&total.to_be_bytes());
            b.extend_from_slice(body);
            b.extend_from_slice(&total.to_be_bytes());
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&PCAPNG_BOM.to_be_bytes());
        shb.extend_from_slice(&[0, 1, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_be_bytes());
        be_block(&mut b, PCAPNG_SHB, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&[0, 1, 0, 0]);
        idb.extend_from_slice(&0u32.to_be_bytes());
        be_block(&mut b, PCAPNG_IDB, &idb);
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_be_bytes());
        epb.extend_from_slice(&0u32.to_be_bytes());
        epb.extend_from_slice(&1_500_000u32.to_be_bytes());
        epb.extend_from_slice(&2u32.to_be_bytes());
        epb.extend_from_slice(&2u32.to_be_bytes());
        epb.extend_from_slice(&[7, 7, 0, 0]);
        be_block(&mut b, PCAPNG_EPB, &epb);
        be_block(&mut b, 0x0000_0bad, &[1, 2, 3, 4]); // unknown: skipped

        let mut out = PcapngWriter::new(Vec::new(), "").unwrap().into_inner();
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[0, 0]);
        idb.extend_from_slice(&0u32.to_le_bytes());
        push_option(&mut idb, OPT_IF_NAME, b"sl0");
        push_option(&mut idb, OPT_IF_TSRESOL, &[0x80 | 10]);
        end_options(&mut idb);
        write_block(&mut out, PCAPNG_IDB, &idb).unwrap();
        let mut spb = Vec::new();
        spb.extend_from_slice(&3u32.to_le_bytes());
        spb.extend_from_slice(&[5, 5, 5, 0]);
        write_block(&mut out, PCAPNG_SPB, &spb).unwrap();
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&2048u32.to_le_bytes()); // 2 s at 2^-10
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&0u32.to_le_bytes());
        write_block(&mut out, PCAPNG_EPB, &epb).unwrap();
        b.extend_from_slice(&out);

        let recs = read_from(&b[..], "").unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(
            (recs[0].ts, recs[0].data.as_slice()),
            (1_500_000_000, &[7u8, 7][..])
        );
        assert_eq!(recs[1].interface, "sl0");
        assert_eq!(recs[1].data, vec![5, 5, 5]);
        assert_eq!(recs[2].ts, 2_000_000_000);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        assert!(read_from(&[][..], "").is_err());
        assert!(read_from(&b"hello world, not a capture"[..], "").is_err());
        let mut w = PcapWriter::new(Vec::new(), 0, TsResolution::Micro).unwrap();
        w.write_packet(1, 60, &[0; 60]).unwrap();
        let pcap = w.into_inner();
        let ng = ng_two_interfaces();
        for file in [&pcap, &ng] {
            // Every truncation either reads (at a record boundary) or errors.
            for n in 0..file.len() {
                let _ = read_from(&file[..n], "");
            }
            // Random corruption.
            let mut s: u32 = 12345;
            for _ in 0..2000 {
                let mut f = file.clone();
                for _ in 0..3 {
                    s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let at = (s as usize >> 8) % f.len();
                    f[at] = (s >> 3) as u8;
                }
                let _ = read_from(&f[..], "");
            }
        }
        let err = read_from(&pcap[..pcap.len() - 1], "").unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
    }

    #[test]
    fn read_file_reports_the_path() {
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let guard =
            Dir(std::env::temp_dir().join(format!("tcplab-captest-pcap-{}", std::process::id())));
        let dir = guard.0.clone();
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.pcap");
        std::fs::write(&p, b"junk").unwrap();
        let err = read_file(&p).unwrap_err();
        assert!(err.to_string().contains("bad.pcap"), "{err}");
        let good = dir.join("good.pcapng");
        std::fs::write(&good, ng_two_interfaces()).unwrap();
        assert_eq!(read_file(&good).unwrap().len(), 3);
        // tshark, when installed, must read what we write without complaint.
        if std::process::Command::new("tshark")
            .arg("-v")
            .output()
            .is_ok()
        {
            let mut w = PcapWriter::new(Vec::new(), 0, TsResolution::Nano).unwrap();
            w.write_packet(1_700_000_000_000_000_001, 60, &[0; 60])
                .unwrap();
            let pcap = dir.join("good.pcap");
            std::fs::write(&pcap, w.into_inner()).unwrap();
            for f in [&good, &pcap] {
                let out = std::process::Command::new("tshark")
                    .arg("-r")
                    .arg(f)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "tshark -r {}: {}",
                    f.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                let err = String::from_utf8_lossy(&out.stderr);
                let complaints = err.lines().filter(|l| !l.contains("could be dangerous"));
                assert_eq!(complaints.count(), 0, "{err}");
            }
        }
    }
}
