//! The transport layer: UDP, and TCP with its flags and options.

use std::fmt;

use super::{Layer, Packet, be16, be32};

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length field (header plus data).
    pub len: u16,
    /// Data length, from the length field (tcpdump's "length").
    pub payload_len: usize,
}

/// The flags of a TCP segment, a bit set using the header's bit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE (ECN echo).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR (congestion window reduced).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True when every flag of `other` is set here.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True for a connection request: SYN without ACK.
    pub fn is_syn(self) -> bool {
        self.contains(Self::SYN) && !self.contains(Self::ACK)
    }

    /// True for the second segment of the handshake: SYN and ACK.
    pub fn is_syn_ack(self) -> bool {
        self.contains(Self::SYN | Self::ACK)
    }

    /// True when FIN is set.
    pub fn is_fin(self) -> bool {
        self.contains(Self::FIN)
    }

    /// True when RST is set.
    pub fn is_rst(self) -> bool {
        self.contains(Self::RST)
    }

    /// True when ACK is set.
    pub fn is_ack(self) -> bool {
        self.contains(Self::ACK)
    }

    /// True when PSH is set.
    pub fn is_psh(self) -> bool {
        self.contains(Self::PSH)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump's letters, in tcpdump's order: F S R P . U E W, or "none".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        const LETTERS: [(u8, char); 8] = [
            (0x01, 'F'),
            (0x02, 'S'),
            (0x04, 'R'),
            (0x08, 'P'),
            (0x10, '.'),
            (0x20, 'U'),
            (0x40, 'E'),
            (0x80, 'W'),
        ];
        for (bit, letter) in LETTERS {
            if self.0 & bit != 0 {
                fmt::Write::write_char(f, letter)?;
            }
        }
        Ok(())
    }
}

/// One TCP option, as met in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption {
    /// End of option list.
    Eol,
    /// No operation (padding).
    Nop,
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift count.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// Selective acknowledgment blocks (left, right), at most 4.
    Sack([(u32, u32); 4], u8),
    /// Timestamps (value, echo reply).
    Timestamp(u32, u32),
    /// Any other kind, or a malformed option.
    Other(u8),
}

/// The options area of a TCP header (up to 40 bytes, as captured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    raw: [u8; 40],
    raw_len: u8,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            raw: [0; 40],
            raw_len: 0,
        }
    }
}

impl TcpOptions {
    fn from_bytes(b: &[u8]) -> Self {
        let mut o = TcpOptions::default();
        let n = b.len().min(40);
        o.raw[..n].copy_from_slice(&b[..n]);
        o.raw_len = n as u8;
        o
    }

    /// The raw option bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw[..usize::from(self.raw_len)]
    }

    /// True when the header has no options.
    pub fn is_empty(&self) -> bool {
        self.raw_len == 0
    }

    /// The options in header order; a malformed option ends the list as `Other`.
    pub fn iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter {
            rest: self.as_bytes(),
        }
    }

    /// The MSS option's value.
    pub fn mss(&self) -> Option<u16> {
        self.iter().find_map(|o| match o {
            TcpOption::Mss(v) => Some(v),
            _ => None,
        })
    }

    /// The window scale option's shift count.
    pub fn window_scale(&self) -> Option<u8> {
        self.iter().find_map(|o| match o {
            TcpOption::WindowScale(v) => Some(v),
            _ => None,
        })
    }

    /// True when SACK is permitted.
    pub fn sack_permitted(&self) -> bool {
        self.iter().any(|o| o == TcpOption::SackPermitted)
    }

    /// The timestamps option (value, echo reply).
    pub fn timestamp(&self) -> Option<(u32, u32)> {
        self.iter().find_map(|o| match o {
            TcpOption::Timestamp(v, e) => Some((v, e)),
            _ => None,
        })
    }
}

/// Iterator over [`TcpOptions`].
#[derive(Debug, Clone)]
pub struct TcpOptionIter<'a> {
    rest: &'a [u8],
}

impl Iterator for TcpOptionIter<'_> {
    type Item = TcpOption;

    fn next(&mut self) -> Option<TcpOption> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            0 => {
                self.rest = &[];
                return Some(TcpOption::Eol);
            }
            1 => {
                self.rest = after;
                return Some(TcpOption::Nop);
            }
            _ => {}
        }
        let len = usize::from(*after.first().unwrap_or(&0));
        if len < 2 || len > self.rest.len() {
            self.rest = &[];
            return Some(TcpOption::Other(kind));
        }
        let body = &self.rest[2..len];
        self.rest = &self.rest[len..];
        Some(match (kind, body.len()) {
            (2, 2) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
            (3, 1) => TcpOption::WindowScale(body[0]),
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n % 8 == 0 && n <= 32 => {
                let mut blocks = [(0u32, 0u32); 4];
                for (i, c) in body.chunks_exact(8).enumerate() {
                    blocks[i] = (
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    );
                }
                TcpOption::Sack(blocks, (n / 8) as u8)
            }
            (8, 8) => TcpOption::Timestamp(
                u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            ),
            _ => TcpOption::Other(kind),
        })
    }
}

impl fmt::Display for TcpOption {
    /// tcpdump's spelling of an option.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcpOption::Eol => f.write_str("eol"),
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Mss(v) => write!(f, "mss {v}"),
            TcpOption::WindowScale(v) => write!(f, "wscale {v}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::Sack(blocks, n) => {
                write!(f, "sack {n}")?;
                for (l, r) in blocks.iter().take(usize::from(n)) {
                    write!(f, " {{{l}:{r}}}")?;
                }
                Ok(())
            }
            TcpOption::Timestamp(v, e) => write!(f, "TS val {v} ecr {e}"),
            TcpOption::Other(k) => write!(f, "opt-{k}"),
        }
    }
}

/// A TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number (absolute).
    pub seq: u32,
    /// Acknowledgment number (absolute; meaningful when ACK is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (not scaled).
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Header length in bytes (20 without options).
    pub header_len: u8,
    /// Data length, from the IP header (not from what was captured).
    pub payload_len: usize,
    /// The options.
    pub options: TcpOptions,
}

/// Reads a UDP header into `p.udp`.
pub(super) fn decode_udp(b: &[u8], p: &mut Packet) {
    let (Some(src_port), Some(dst_port)) = (be16(b, 0), be16(b, 2)) else {
        p.truncated = Some(Layer::Udp);
        return;
    };
    let (Some(len), true) = (be16(b, 4), b.len() >= 8) else {
        p.cut_ports = Some((src_port, dst_port));
        p.truncated = Some(Layer::Udp);
        return;
    };
    p.udp = Some(Udp {
        src_port,
        dst_port,
        len,
        payload_len: usize::from(len).saturating_sub(8),
    });
}

/// Reads a TCP header into `p.tcp`; `seg_len` is the segment length from the IP header.
pub(super) fn decode_tcp(b: &[u8], seg_len: usize, p: &mut Packet) {
    let (Some(src_port), Some(dst_port)) = (be16(b, 0), be16(b, 2)) else {
        p.truncated = Some(Layer::Tcp);
        return;
    };
    p.cut_ports = Some((src_port, dst_port));
    let (Some(seq), Some(ack), Some(&off), Some(&flags)) =
        (be32(b, 4), be32(b, 8), b.get(12), b.get(13))
    else {
        p.truncated = Some(Layer::Tcp);
        return;
    };
    let (Some(window), Some(urgent)) = (be16(b, 14), be16(b, 18)) else {
        p.truncated = Some(Layer::Tcp);
        return;
    };
    let hlen = usize::from(off >> 4) * 4;
    if hlen < 20 {
        p.truncated = Some(Layer::Tcp);
        return;
    }
    p.cut_ports = None;
    let opts = b.get(20..hlen.min(b.len())).unwrap_or(&[]);
    if b.len() < hlen {
        p.truncated = Some(Layer::Tcp);
    }
    p.tcp = Some(Tcp {
        src_port,
        dst_port,
        seq,
        ack,
        flags: TcpFlags(flags),
        window,
        urgent,
        header_len: hlen as u8,
        payload_len: seg_len.saturating_sub(hlen),
        options: TcpOptions::from_bytes(opts),
    });
}

/// The UDP part of the line.
pub(super) fn fmt_udp(u: &Udp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "UDP, length {}", u.payload_len)
}

/// The TCP part of the line: flags, sequence numbers, window, options, length.
pub(super) fn fmt_tcp(t: &Tcp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "Flags [{}]", t.flags)?;
    let len = t.payload_len;
    if len > 0 || t.flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0) != 0 {
        write!(f, ", seq {}", t.seq)?;
        if len > 0 {
            write!(f, ":{}", t.seq.wrapping_add(len as u32))?;
        }
    }
    if t.flags.is_ack() {
        write!(f, ", ack {}", t.ack)?;
    }
    write!(f, ", win {}", t.window)?;
    if t.flags.contains(TcpFlags::URG) {
        write!(f, ", urg {}", t.urgent)?;
    }
    if !t.options.is_empty() {
        f.write_str(", options [")?;
        for (i, o) in t.options.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{o}")?;
        }
        f.write_str("]")?;
    }
    write!(f, ", length {len}")
}
