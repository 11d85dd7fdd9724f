//! The network layer: IPv4 headers and fragments.

use std::fmt;
use std::net::Ipv4Addr;

use super::{
    IPPROTO_TCP, IPPROTO_UDP, Layer, Packet, be16, decode_ip_payload, fmt_ip_payload, ip_at,
};

/// An IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Protocol of the payload (1 ICMP, 6 TCP, 17 UDP, ...).
    pub proto: u8,
    /// Identification field.
    pub id: u16,
    /// Type of service / DSCP+ECN byte.
    pub tos: u8,
    /// The DF (don't fragment) flag.
    pub dont_fragment: bool,
    /// The MF (more fragments) flag.
    pub more_fragments: bool,
    /// Fragment offset in bytes (the header field times 8).
    pub frag_offset: u16,
    /// Total length field (0 for some GSO super-packets, see `payload_len`).
    pub total_len: u16,
    /// Header length in bytes (20 without options).
    pub header_len: u8,
    /// Payload length in bytes, from the header (not from what was captured).
    pub payload_len: usize,
    /// The options of the header (record route, source routes, timestamp).
    pub options: IpOptions,
}

/// What the options of an IPv4 header carry (the ones the book's experiments use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpOptions {
    /// Options present, as [`IpOptions::RR`], [`IpOptions::LSRR`]... bits.
    pub present: u8,
    /// The addresses a record-route option holds so far (at most 9).
    rr: [Ipv4Addr; 9],
    rr_len: u8,
}

impl Default for IpOptions {
    fn default() -> Self {
        IpOptions {
            present: 0,
            rr: [Ipv4Addr::UNSPECIFIED; 9],
            rr_len: 0,
        }
    }
}

impl IpOptions {
    /// Record route (7).
    pub const RR: u8 = 1;
    /// Loose source and record route (131).
    pub const LSRR: u8 = 2;
    /// Strict source and record route (137).
    pub const SSRR: u8 = 4;
    /// Timestamp (68).
    pub const TS: u8 = 8;

    /// Read the options bytes of a header (after its first 20 bytes).
    pub fn parse(b: &[u8]) -> IpOptions {
        let mut o = IpOptions::default();
        let mut i = 0;
        while i < b.len() {
            let kind = b[i];
            match kind {
                0 => break,
                1 => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = b.get(i + 1) else { break };
            let len = usize::from(len);
            if len < 2 || i + len > b.len() {
                break;
            }
            let body = &b[i..i + len];
            match kind {
                7 => {
                    o.present |= Self::RR;
                    // body: type, length, pointer (1-based, to the next free slot), addresses.
                    let ptr = usize::from(*body.get(2).unwrap_or(&4));
                    let filled = ptr.saturating_sub(4) / 4;
                    for k in 0..filled.min(9) {
                        if let Some(a) = body.get(3 + 4 * k..7 + 4 * k) {
                            o.rr[usize::from(o.rr_len)] = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                            o.rr_len += 1;
                        }
                    }
                }
                131 => o.present |= Self::LSRR,
                137 => o.present |= Self::SSRR,
                68 => o.present |= Self::TS,
                _ => {}
            }
            i += len;
        }
        o
    }

    /// The addresses recorded by a record-route option.
    pub fn recorded_route(&self) -> &[Ipv4Addr] {
        &self.rr[..usize::from(self.rr_len)]
    }
}

impl Ipv4 {
    /// True when this datagram is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// True when the payload starts with the transport header (offset 0).
    pub fn is_first_fragment(&self) -> bool {
        self.frag_offset == 0
    }
}

/// Reads an IPv4 header into `p.ipv4` and, for a first fragment, hands the
/// payload to the next layer.
pub(super) fn decode_ipv4(b: &[u8], p: &mut Packet) {
    let Some(&vihl) = b.first() else {
        p.truncated = Some(Layer::Ipv4);
        return;
    };
    let hlen = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || hlen < 20 {
        p.truncated = Some(Layer::Ipv4);
        return;
    }
    let (Some(hdr), Some(total_len), Some(id), Some(frag), Some(src), Some(dst)) = (
        b.get(..20),
        be16(b, 2),
        be16(b, 4),
        be16(b, 6),
        ip_at(b, 12),
        ip_at(b, 16),
    ) else {
        p.truncated = Some(Layer::Ipv4);
        return;
    };
    // A GSO super-packet may carry 0 (BIG TCP): then trust the captured length.
    let payload_len = if total_len == 0 {
        b.len().saturating_sub(hlen)
    } else {
        usize::from(total_len).saturating_sub(hlen)
    };
    let ip = Ipv4 {
        src,
        dst,
        ttl: hdr[8],
        proto: hdr[9],
        id,
        tos: hdr[1],
        dont_fragment: frag & 0x4000 != 0,
        more_fragments: frag & 0x2000 != 0,
        frag_offset: (frag & 0x1fff).wrapping_mul(8),
        total_len,
        header_len: hlen as u8,
        payload_len,
        options: IpOptions::parse(b.get(20..hlen).unwrap_or(&[])),
    };
    p.ipv4 = Some(ip);
    if b.len() < hlen || (usize::from(total_len) < hlen && total_len != 0) {
        p.truncated = Some(Layer::Ipv4);
        return;
    }
    if !ip.is_first_fragment() {
        return;
    }
    // Drop Ethernet padding past the datagram's end.
    let end = (hlen + payload_len).min(b.len());
    let payload = &b[hlen..end];
    decode_ip_payload(ip.proto, payload, payload_len, p);
}

/// The line of an IPv4 datagram: addresses (and ports), the layer above,
/// where it was cut short, and the fragment it is.
pub(super) fn fmt_ipv4(p: &Packet, ip: &Ipv4, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let cut = p.truncated == Some(Layer::Ipv4);
    let transport = matches!(ip.proto, IPPROTO_TCP | IPPROTO_UDP);
    f.write_str("IP ")?;
    if cut || !ip.is_first_fragment() || !transport {
        write!(f, "{} > {}:", ip.src, ip.dst)?;
    }
    if cut {
        let eth_len = p.ethernet.map_or(14, |e| e.header_len);
        let captured = p.frame_len.saturating_sub(eth_len);
        if captured < usize::from(ip.header_len) {
            write!(
                f,
                "  [remaining caplen({captured}) < header length({})]",
                ip.header_len
            )?;
        }
        return f.write_str(" [|ip]");
    }
    if !ip.is_first_fragment() {
        write!(f, " ip-proto-{}", ip.proto)?;
    } else {
        if !transport {
            f.write_str(" ")?;
        }
        fmt_ip_payload(p, ip.proto, ip.payload_len, true, f)?;
    }
    if ip.is_fragment() {
        write!(
            f,
            " (frag {}:{}@{}{})",
            ip.id,
            ip.payload_len,
            ip.frag_offset,
            if ip.more_fragments { "+" } else { "" }
        )?;
    }
    Ok(())
}
