//! pcapng files: a section of named interfaces, enhanced packet blocks with
//! nanosecond timestamps, and interface statistics.

use std::io::{self, IoSlice, Write};

use super::{Endian, LINKTYPE_ETHERNET, Record, caplen_of, effective_snaplen, write_all_vectored};

/// Section Header Block.
pub(super) const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
/// The byte-order magic of a section header.
pub(super) const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
/// Interface Description Block.
pub(super) const PCAPNG_IDB: u32 = 1;
/// Packet Block (obsolete, still read).
const PCAPNG_PB: u32 = 2;
/// Simple Packet Block.
pub(super) const PCAPNG_SPB: u32 = 3;
/// Interface Statistics Block.
const PCAPNG_ISB: u32 = 5;
/// Enhanced Packet Block.
pub(super) const PCAPNG_EPB: u32 = 6;

const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
pub(super) const OPT_IF_NAME: u16 = 2;
pub(super) const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPT_ISB_STARTTIME: u16 = 2;
const OPT_ISB_ENDTIME: u16 = 3;
const OPT_ISB_IFRECV: u16 = 4;
const OPT_ISB_IFDROP: u16 = 5;
const OPT_ISB_USRDELIV: u16 = 8;

/// The longest interface name read from a file, in bytes: every packet holds a copy, so a
/// file's 64 KiB name on thousands of 16-byte packets would take gigabytes. Real names are
/// at most 15 bytes on Linux and about 50 on Windows.
pub(super) const MAX_IF_NAME_BYTES: usize = 256;

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

pub(super) fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_ne_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + pad4(value.len()), 0);
}

pub(super) fn end_options(buf: &mut Vec<u8>) {
    push_option(buf, OPT_ENDOFOPT, &[]);
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

pub(super) fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
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

/// An `if_name` option's value as a name: UTF-8 (invalid bytes replaced), without its
/// trailing NULs, at most [`MAX_IF_NAME_BYTES`] bytes (cut at a character boundary).
fn interface_name(v: &[u8]) -> String {
    let mut name = String::from_utf8_lossy(v)
        .trim_end_matches('\0')
        .to_string();
    let mut end = name.len().min(MAX_IF_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
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

/// Reads every packet of a pcapng stream (all its sections).
pub(super) fn parse_pcapng(b: &[u8]) -> Result<Vec<Record>, String> {
    let mut r = NgReader {
        e: Endian { big: false },
        interfaces: Vec::new(),
        out: Vec::new(),
    };
    let mut off = 0usize;
    while off < b.len() {
        let (btype, block) = r.block_at(b, off)?;
        let body = &block[8..block.len() - 4];
        match btype {
            PCAPNG_IDB => r.interface_block(body, off)?,
            PCAPNG_EPB | PCAPNG_PB => r.packet_block(btype, body, off)?,
            PCAPNG_SPB => r.simple_packet_block(body, off)?,
            _ => {}
        }
        off += block.len();
    }
    Ok(r.out)
}

/// Where a pcapng read is: the current section's byte order and interfaces,
/// and the packets read so far.
struct NgReader {
    e: Endian,
    interfaces: Vec<NgInterface>,
    out: Vec<Record>,
}

impl NgReader {
    /// The type and bytes of the block at `off`, its lengths checked. A
    /// section header sets the byte order and starts a new interface list.
    fn block_at<'a>(&mut self, b: &'a [u8], off: usize) -> Result<(u32, &'a [u8]), String> {
        let Some(btype) = self.e.u32(b, off) else {
            return Err(format!("block header cut short at byte {off}"));
        };
        if btype == PCAPNG_SHB {
            let bom = b
                .get(off + 8..off + 12)
                .ok_or_else(|| format!("section header cut short at byte {off}"))?;
            self.e = match bom {
                [0x1a, 0x2b, 0x3c, 0x4d] => Endian { big: true },
                [0x4d, 0x3c, 0x2b, 0x1a] => Endian { big: false },
                _ => return Err(format!("bad byte-order magic at byte {}", off + 8)),
            };
            self.interfaces.clear();
        }
        let Some(total) = self.e.u32(b, off + 4).map(|t| t as usize) else {
            return Err(format!("block header cut short at byte {off}"));
        };
        if total < 12 || total % 4 != 0 {
            return Err(format!("bad block length {total} at byte {off}"));
        }
        let block = off
            .checked_add(total)
            .and_then(|end| b.get(off..end))
            .ok_or_else(|| format!("block cut short at byte {off} ({total} bytes announced)"))?;
        if self.e.u32(block, total - 4) != Some(total as u32) {
            return Err(format!(
                "block at byte {off}: trailing length does not match"
            ));
        }
        Ok((btype, block))
    }

    /// An Interface Description Block: name, snap length, timestamp units.
    fn interface_block(&mut self, body: &[u8], off: usize) -> Result<(), String> {
        let e = self.e;
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
                OPT_IF_NAME => ifc.name = interface_name(v),
                OPT_IF_TSRESOL if !v.is_empty() => ifc.tsresol = (v[0] & 0x80 != 0, v[0] & 0x7f),
                OPT_IF_TSOFFSET => {
                    if let Some(s) = e.u64(v, 0) {
                        ifc.tsoffset_s = s as i64;
                    }
                }
                _ => {}
            }
        }
        self.interfaces.push(ifc);
        Ok(())
    }

    /// An Enhanced Packet Block, or an obsolete Packet Block (16-bit interface id).
    fn packet_block(&mut self, btype: u32, body: &[u8], off: usize) -> Result<(), String> {
        let e = self.e;
        let iface = if btype == PCAPNG_EPB {
            e.u32(body, 0)
        } else {
            e.u16(body, 0).map(u32::from)
        };
        let (Some(iface), Some(hi), Some(lo), Some(caplen), Some(orig)) = (
            iface,
            e.u32(body, 4),
            e.u32(body, 8),
            e.u32(body, 12),
            e.u32(body, 16),
        ) else {
            return Err(format!("packet block cut short at byte {off}"));
        };
        let ifc = self.interfaces.get(iface as usize).ok_or_else(|| {
            format!("packet block at byte {off} names interface {iface}, which was never described")
        })?;
        let data = body.get(20..20 + caplen as usize).ok_or_else(|| {
            format!("packet block at byte {off}: {caplen} bytes announced, fewer present")
        })?;
        self.out.push(Record {
            ts: ifc.ts_ns((u64::from(hi) << 32) | u64::from(lo)),
            interface: ifc.name.clone(),
            orig_len: orig,
            data: data.to_vec(),
        });
        Ok(())
    }

    /// A Simple Packet Block: first interface, no timestamp.
    fn simple_packet_block(&mut self, body: &[u8], off: usize) -> Result<(), String> {
        let ifc = self
            .interfaces
            .first()
            .ok_or_else(|| format!("simple packet block at byte {off} before any interface"))?;
        let orig = self
            .e
            .u32(body, 0)
            .ok_or_else(|| format!("packet block cut short at byte {off}"))?;
        let avail = body.len().saturating_sub(4);
        let mut caplen = (orig as usize).min(avail);
        if ifc.snaplen != 0 {
            caplen = caplen.min(ifc.snaplen as usize);
        }
        self.out.push(Record {
            ts: 0,
            interface: ifc.name.clone(),
            orig_len: orig,
            data: body[4..4 + caplen].to_vec(),
        });
        Ok(())
    }
}
