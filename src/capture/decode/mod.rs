//! Decoding of captured Ethernet frames into the layers a TCP/IP lesson looks
//! at (Ethernet, ARP, IPv4, ICMP, UDP, TCP), and a `tcpdump -n -S` style
//! one-line rendering through [`Display`](fmt::Display).
//!
//! Decoding never panics: whatever bytes come in, [`decode`] returns a
//! [`Packet`] whose layers are filled as far as the bytes allow, and
//! [`Packet::truncated`] names the first layer that was cut short.
//!
//! One file per layer, each with its header types, its decoder and its part of
//! the line: `link` (Ethernet, ARP), `ip` (IPv4, fragments), `icmp`,
//! `transport` (UDP, TCP and its options). This file holds the [`Packet`] they
//! fill and the two places that hand a payload to the next layer:
//! `decode_ethertype` (by EtherType) and `decode_ip_payload` (by IP protocol
//! number), with their counterparts in the line (`Display for Packet` and
//! `fmt_ip_payload`). A new protocol is a new file plus an arm in each.

mod icmp;
mod ip;
mod link;
mod transport;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv4Addr;

pub use icmp::{Icmp, IcmpEcho, IcmpQuote};
pub use ip::Ipv4;
pub use link::{Arp, ArpOp, Ethernet, MacAddr};
pub use transport::{Tcp, TcpFlags, TcpOption, TcpOptionIter, TcpOptions, Udp};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ) service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// The layer a frame was cut short in (by the snap length or by a bad sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The Ethernet header (or a VLAN tag) is incomplete.
    Ethernet,
    /// The ARP packet is incomplete.
    Arp,
    /// The IPv4 header is incomplete or invalid.
    Ipv4,
    /// The ICMP header is incomplete.
    Icmp,
    /// The UDP header is incomplete.
    Udp,
    /// The TCP header is incomplete or invalid.
    Tcp,
}

impl Layer {
    fn tcpdump_name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ether",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ip",
            Layer::Icmp => "icmp",
            Layer::Udp => "udp",
            Layer::Tcp => "tcp",
        }
    }
}

/// A decoded frame: each layer that was present and complete enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Packet {
    /// Captured length of the frame.
    pub frame_len: usize,
    /// The Ethernet header, absent when the frame is shorter than 14 bytes.
    pub ethernet: Option<Ethernet>,
    /// The ARP packet, for an ARP frame (IPv4 over Ethernet only).
    pub arp: Option<Arp>,
    /// The IPv4 header, for an IPv4 frame.
    pub ipv4: Option<Ipv4>,
    /// The ICMP message (first fragment only).
    pub icmp: Option<Icmp>,
    /// The UDP header (first fragment only).
    pub udp: Option<Udp>,
    /// The TCP header (first fragment only).
    pub tcp: Option<Tcp>,
    /// The first layer that was cut short, if any.
    pub truncated: Option<Layer>,
}

impl Packet {
    /// True for an ARP request.
    pub fn is_arp_request(&self) -> bool {
        matches!(
            self.arp,
            Some(Arp {
                op: ArpOp::Request,
                ..
            })
        )
    }

    /// True for an ARP reply.
    pub fn is_arp_reply(&self) -> bool {
        matches!(
            self.arp,
            Some(Arp {
                op: ArpOp::Reply,
                ..
            })
        )
    }

    /// True for an ICMP echo request.
    pub fn is_echo_request(&self) -> bool {
        self.icmp.is_some_and(|i| i.is_echo_request())
    }

    /// True for an ICMP echo reply.
    pub fn is_echo_reply(&self) -> bool {
        self.icmp.is_some_and(|i| i.is_echo_reply())
    }

    /// True for a TCP connection request (SYN without ACK).
    pub fn is_tcp_syn(&self) -> bool {
        self.tcp.is_some_and(|t| t.flags.is_syn())
    }

    /// Source and destination ports of a TCP or UDP packet.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match (self.tcp, self.udp) {
            (Some(t), _) => Some((t.src_port, t.dst_port)),
            (None, Some(u)) => Some((u.src_port, u.dst_port)),
            _ => None,
        }
    }
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn ip_at(b: &[u8], off: usize) -> Option<Ipv4Addr> {
    be32(b, off).map(Ipv4Addr::from)
}

fn mac_at(b: &[u8], off: usize) -> Option<MacAddr> {
    let s = b.get(off..off.checked_add(6)?)?;
    let mut m = [0u8; 6];
    m.copy_from_slice(s);
    Some(MacAddr(m))
}

/// Decodes an Ethernet frame (802.1Q/802.1ad tags are skipped).
///
/// Never panics: a short or garbled frame gives a packet with the layers that
/// could be read and [`Packet::truncated`] set.
pub fn decode(frame: &[u8]) -> Packet {
    let mut p = Packet {
        frame_len: frame.len(),
        ..Packet::default()
    };
    if let Some(eth) = link::decode_ethernet(frame, &mut p) {
        decode_ethertype(eth.ethertype, &frame[eth.header_len..], &mut p);
    }
    p
}

/// Hands the payload of an Ethernet frame to the decoder of its EtherType.
fn decode_ethertype(ethertype: u16, payload: &[u8], p: &mut Packet) {
    match ethertype {
        ETHERTYPE_ARP => link::decode_arp(payload, p),
        ETHERTYPE_IPV4 => ip::decode_ipv4(payload, p),
        _ => {}
    }
}

/// Hands the payload of an IP datagram (its first fragment, Ethernet padding
/// cut off) to the decoder of its protocol; `len` is the payload length the IP
/// header announces.
fn decode_ip_payload(proto: u8, payload: &[u8], len: usize, p: &mut Packet) {
    match proto {
        IPPROTO_ICMP => icmp::decode_icmp(payload, len, p),
        IPPROTO_UDP => transport::decode_udp(payload, p),
        IPPROTO_TCP => transport::decode_tcp(payload, len, p),
        _ => {}
    }
}

impl fmt::Display for Packet {
    /// One line in the style of `tcpdump -n -S` (absolute sequence numbers,
    /// no link-level header).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(eth) = self.ethernet else {
            return f.write_str("[|ether]");
        };
        if self.truncated == Some(Layer::Ethernet) {
            return f.write_str("[|ether]");
        }
        let rest = self.frame_len.saturating_sub(eth.header_len);
        if let Some(v) = eth.vlan {
            write!(f, "vlan {v}, ")?;
        }
        match eth.ethertype {
            ETHERTYPE_ARP => link::fmt_arp(self, rest, f),
            ETHERTYPE_IPV4 => match self.ipv4 {
                Some(ip) => ip::fmt_ipv4(self, &ip, f),
                None => f.write_str("IP [|ip]"),
            },
            ETHERTYPE_IPV6 => write!(f, "IP6, length {rest}"),
            t if t <= 1500 => write!(f, "802.3, length {rest}"),
            t => write!(f, "ethertype Unknown (0x{t:04x}), length {rest}"),
        }
    }
}

/// Writes the part of the line for the layer above IP (TCP, UDP or ICMP);
/// false when the packet has none of them.
fn fmt_ip_payload(p: &Packet, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
    if let Some(t) = p.tcp {
        transport::fmt_tcp(&t, f)?;
    } else if let Some(u) = p.udp {
        transport::fmt_udp(&u, f)?;
    } else if let Some(i) = p.icmp {
        icmp::fmt_icmp(&i, f)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}
