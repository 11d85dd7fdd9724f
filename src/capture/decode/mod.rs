//! Decoding of captured Ethernet frames into the layers a TCP/IP lesson looks
//! at (Ethernet, ARP, IPv4, ICMP, IGMP, IPv6 and its extension headers,
//! ICMPv6, UDP, TCP), and a `tcpdump -n -S` style one-line rendering through
//! [`Display`](fmt::Display) (the words of tcpdump 4.99).
//!
//! Decoding never panics: whatever bytes come in, [`decode`] returns a
//! [`Packet`] whose layers are filled as far as the bytes allow, and
//! [`Packet::truncated`] names the first layer that was cut short.
//!
//! A frame cut short (by the snap length) prints as tcpdump prints it: the
//! fields captured, then a marker such as ` [|icmp6]`. The decoder sees only
//! the captured bytes, so a datagram shorter on the wire than its header
//! says is taken for one cut by the snap length too.
//!
//! One file per layer, each with its header types, its decoder and its part of
//! the line: `link` (Ethernet, ARP), `ip` (IPv4, fragments), `ip6` (IPv6 and
//! its extension headers), `icmp`, `icmp6`, `igmp`, `transport` (UDP, TCP and
//! its options). This file holds the [`Packet`] they fill and the two places
//! that hand a payload to the next layer: `decode_ethertype` (by EtherType)
//! and `decode_ip_payload` (by IP protocol number), with their counterparts in
//! the line (`Display for Packet` and `fmt_ip_payload`). A new protocol is a
//! new file plus an arm in each.

mod icmp;
mod icmp6;
mod igmp;
mod ip;
mod ip6;
mod link;
mod transport;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_ip6;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub use icmp::{Icmp, IcmpEcho, IcmpQuote};
pub use icmp6::{Icmp6, Icmp6Quote};
pub use igmp::Igmp;
pub use ip::{IpOptions, Ipv4};
pub use ip6::{Ipv6, Ipv6Ext, Ipv6Fragment, Ipv6Routing};
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

/// IPv6 next header of hop-by-hop options.
pub const IPPROTO_HOPOPTS: u8 = 0;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of IGMP.
pub const IPPROTO_IGMP: u8 = 2;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 next header of a routing header.
pub const IPPROTO_ROUTING: u8 = 43;
/// IPv6 next header of a fragment header.
pub const IPPROTO_FRAGMENT: u8 = 44;
/// IP protocol number of an authentication header.
pub const IPPROTO_AH: u8 = 51;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// IPv6 next header "no next header".
pub const IPPROTO_NONE: u8 = 59;
/// IPv6 next header of destination options.
pub const IPPROTO_DSTOPTS: u8 = 60;

/// The layer a frame was cut short in (by the snap length or by a bad sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The Ethernet header (or a VLAN tag) is incomplete.
    Ethernet,
    /// The ARP packet is incomplete.
    Arp,
    /// The IPv4 header is incomplete or invalid.
    Ipv4,
    /// The IPv6 header (or its chain of extension headers) is incomplete.
    Ipv6,
    /// An IPv6 hop-by-hop options header is incomplete.
    HopByHop,
    /// An IPv6 destination options header is incomplete.
    DestOptions,
    /// An IPv6 routing header is incomplete.
    Routing,
    /// An IPv6 fragment header is incomplete.
    Fragment,
    /// The ICMP header is incomplete.
    Icmp,
    /// The ICMPv6 message is incomplete.
    Icmp6,
    /// The IGMP message is incomplete.
    Igmp,
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
            Layer::Ipv6 => "ip6",
            Layer::HopByHop => "hbhopt",
            Layer::DestOptions => "dstopt",
            Layer::Routing => "rt6",
            Layer::Fragment => "frag6",
            Layer::Icmp => "icmp",
            Layer::Icmp6 => "icmp6",
            Layer::Igmp => "igmp",
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
    /// The IPv6 header and its extension headers, for an IPv6 frame.
    pub ipv6: Option<Ipv6>,
    /// The ICMP message (first fragment only).
    pub icmp: Option<Icmp>,
    /// The ICMPv6 message (first fragment only).
    pub icmp6: Option<Icmp6>,
    /// The IGMP message.
    pub igmp: Option<Igmp>,
    /// The UDP header (first fragment only).
    pub udp: Option<Udp>,
    /// The TCP header (first fragment only).
    pub tcp: Option<Tcp>,
    /// Source and destination ports of a TCP or UDP header cut short after them.
    pub cut_ports: Option<(u16, u16)>,
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

fn ip6_at(b: &[u8], off: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(off..off.checked_add(16)?)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
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
        ETHERTYPE_IPV6 => ip6::decode_ipv6(payload, p),
        _ => {}
    }
}

/// Hands the payload of an IP datagram (its first fragment, Ethernet padding
/// cut off, after any IPv6 extension headers) to the decoder of its protocol;
/// `len` is the payload length the IP header announces. ICMP and IGMP are
/// decoded over IPv4 only, ICMPv6 over IPv6 only, as tcpdump does.
fn decode_ip_payload(proto: u8, payload: &[u8], len: usize, p: &mut Packet) {
    let v6 = p.ipv6.is_some();
    match proto {
        IPPROTO_ICMP if !v6 => icmp::decode_icmp(payload, len, p),
        IPPROTO_IGMP if !v6 => igmp::decode_igmp(payload, len, p),
        IPPROTO_ICMPV6 if v6 => icmp6::decode_icmp6(payload, len, p),
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
            return f.write_str(" [|ether]");
        };
        if self.truncated == Some(Layer::Ethernet) {
            return f.write_str(" [|ether]");
        }
        let rest = self.frame_len.saturating_sub(eth.header_len);
        if let Some(v) = eth.vlan {
            write!(f, "vlan {v}, ")?;
        }
        match eth.ethertype {
            ETHERTYPE_ARP => link::fmt_arp(self, rest, f),
            ETHERTYPE_IPV4 => match self.ipv4 {
                Some(ip) => ip::fmt_ipv4(self, &ip, f),
                None if rest == 0 => f.write_str(" [|ip]"),
                None => f.write_str("IP  [|ip]"),
            },
            ETHERTYPE_IPV6 => match self.ipv6 {
                Some(ip) => ip6::fmt_ipv6(self, &ip, f),
                None => f.write_str(" [|ip6]"),
            },
            t if t <= 1500 => write!(f, "802.3, length {rest}"),
            t => write!(f, "ethertype Unknown (0x{t:04x}), length {rest}"),
        }
    }
}

/// Writes the part of the line for the layer above IP: `proto` is its
/// protocol, `len` its length from the IP header, `direct` true when it
/// follows the IP header (TCP and UDP then print the addresses with the
/// ports, after extension headers the ports alone). The addresses of other
/// protocols are written by the caller.
fn fmt_ip_payload(
    p: &Packet,
    proto: u8,
    len: usize,
    direct: bool,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let v6 = p.ipv6.is_some();
    match proto {
        IPPROTO_TCP | IPPROTO_UDP => fmt_transport(p, proto, direct, f),
        IPPROTO_ICMP if !v6 => match p.icmp {
            Some(i) => {
                icmp::fmt_icmp(&i, f)?;
                fmt_cut(p, Layer::Icmp, f)
            }
            None => fmt_cut(p, Layer::Icmp, f),
        },
        IPPROTO_ICMPV6 if v6 => match p.icmp6 {
            Some(m) => icmp6::fmt_icmp6(&m, f),
            None => fmt_cut(p, Layer::Icmp6, f),
        },
        IPPROTO_IGMP if !v6 => match p.igmp {
            Some(m) => igmp::fmt_igmp(&m, f),
            None => fmt_cut(p, Layer::Igmp, f),
        },
        IPPROTO_ICMP => f.write_str("[ICMP requires IPv4] (invalid)"),
        IPPROTO_IGMP => f.write_str("[IGMP requires IPv4] (invalid)"),
        IPPROTO_ICMPV6 => f.write_str("[ICMPv6 requires IPv6] (invalid)"),
        n => write!(f, " ip-proto-{n} {len}"),
    }
}

/// The marker of `layer` when the packet was cut short in it.
fn fmt_cut(p: &Packet, layer: Layer, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if p.truncated == Some(layer) {
        write!(f, " [|{}]", layer.tcpdump_name())?;
    }
    Ok(())
}

/// Source and destination of a TCP or UDP line: with the ports when they
/// were captured, and the addresses when the header follows the IP header.
fn fmt_transport(p: &Packet, proto: u8, direct: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ports = p.ports().or(p.cut_ports);
    let (src, dst) = match (p.ipv4, p.ipv6) {
        (Some(ip), _) => (ip.src.to_string(), ip.dst.to_string()),
        (None, Some(ip)) => (ip.src.to_string(), ip.dst.to_string()),
        (None, None) => return Ok(()),
    };
    match (ports, direct) {
        (Some((sp, dp)), true) => write!(f, "{src}.{sp} > {dst}.{dp}: ")?,
        (Some((sp, dp)), false) => write!(f, "{sp} > {dp}: ")?,
        // Cut before the ports: tcpdump's TCP printer still names the hosts.
        (None, _) if proto == IPPROTO_TCP => write!(f, "{src} > {dst}:")?,
        (None, true) => write!(f, "{src} > {dst}: ")?,
        (None, false) => {}
    }
    if let Some(t) = p.tcp {
        transport::fmt_tcp(&t, f)?;
    } else if let Some(u) = p.udp {
        transport::fmt_udp(&u, f)?;
    }
    let layer = if proto == IPPROTO_TCP {
        Layer::Tcp
    } else {
        Layer::Udp
    };
    fmt_cut(p, layer, f)
}
