//! Decoding of captured Ethernet frames into the layers a TCP/IP lesson looks
//! at (Ethernet, ARP, IPv4, ICMP, UDP, TCP), and a `tcpdump -n -S` style
//! one-line rendering through [`Display`](fmt::Display).
//!
//! Decoding never panics: whatever bytes come in, [`decode`] returns a
//! [`Packet`] whose layers are filled as far as the bytes allow, and
//! [`Packet::truncated`] names the first layer that was cut short.

use std::fmt;
use std::net::Ipv4Addr;

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

/// Most VLAN tags skipped before giving up on a frame.
const MAX_VLAN_TAGS: usize = 4;

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (what an ARP request carries as the unknown target).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True for a group (multicast or broadcast) address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// True for 00:00:00:00:00:00.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

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

/// The Ethernet header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ethernet {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// EtherType of the payload, after any VLAN tags (or the 802.3 length when <= 1500).
    pub ethertype: u16,
    /// VLAN id of the outermost 802.1Q/802.1ad tag, if the frame had one.
    pub vlan: Option<u16>,
    /// Length of the header including VLAN tags (14, 18, 22...).
    pub header_len: usize,
}

/// An ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOp {
    /// Operation 1, "who-has".
    Request,
    /// Operation 2, "is-at".
    Reply,
    /// Any other operation (RARP and friends).
    Other(u16),
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arp {
    /// Request, reply or other.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (all zeros in a request).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
    /// Bytes after the Ethernet header, padding included (tcpdump's "length").
    pub len: usize,
}

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

/// The identifier and sequence number of an ICMP query (echo, timestamp...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpEcho {
    /// Identifier (ping uses it to tell its own replies apart).
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
}

/// What an ICMP error quotes of the datagram that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpQuote {
    /// Source of the offending datagram.
    pub src: Ipv4Addr,
    /// Destination of the offending datagram.
    pub dst: Ipv4Addr,
    /// Its protocol.
    pub proto: u8,
    /// Its identification field.
    pub id: u16,
    /// Its source port, for a quoted TCP or UDP header.
    pub src_port: Option<u16>,
    /// Its destination port, for a quoted TCP or UDP header.
    pub dst_port: Option<u16>,
}

/// An ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// Type (0 echo reply, 3 unreachable, 8 echo request, 11 time exceeded, ...).
    pub icmp_type: u8,
    /// Code within the type.
    pub code: u8,
    /// Message length from the IP header (tcpdump's "length").
    pub len: usize,
    /// Id and sequence of an echo, timestamp or address mask query or reply.
    pub echo: Option<IcmpEcho>,
    /// The quoted header of an error message (unreachable, time exceeded, ...).
    pub quote: Option<IcmpQuote>,
    /// The gateway of a redirect.
    pub gateway: Option<Ipv4Addr>,
    /// The next-hop MTU of a "fragmentation needed" unreachable (0 when not set).
    pub next_hop_mtu: Option<u16>,
    /// The mask of an address mask reply.
    pub address_mask: Option<Ipv4Addr>,
}

impl Icmp {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Router advertisement.
    pub const ROUTER_ADVERTISEMENT: u8 = 9;
    /// Router solicitation.
    pub const ROUTER_SOLICITATION: u8 = 10;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Address mask request.
    pub const ADDRESS_MASK_REQUEST: u8 = 17;
    /// Address mask reply.
    pub const ADDRESS_MASK_REPLY: u8 = 18;

    /// Code of a port unreachable.
    pub const CODE_PORT_UNREACHABLE: u8 = 3;
    /// Code of a "fragmentation needed and DF set" unreachable.
    pub const CODE_FRAG_NEEDED: u8 = 4;

    /// True for an echo request (what ping sends).
    pub fn is_echo_request(&self) -> bool {
        self.icmp_type == Self::ECHO_REQUEST
    }

    /// True for an echo reply.
    pub fn is_echo_reply(&self) -> bool {
        self.icmp_type == Self::ECHO_REPLY
    }

    /// True for an error message, one that quotes an offending datagram.
    pub fn is_error(&self) -> bool {
        is_icmp_error(self.icmp_type)
    }

    /// True for a port unreachable (what traceroute's last hop answers).
    pub fn is_port_unreachable(&self) -> bool {
        self.icmp_type == Self::DEST_UNREACHABLE && self.code == Self::CODE_PORT_UNREACHABLE
    }

    /// True for a time exceeded in transit (TTL reached 0: what traceroute's hops answer).
    pub fn is_ttl_exceeded(&self) -> bool {
        self.icmp_type == Self::TIME_EXCEEDED && self.code == 0
    }
}

fn is_icmp_error(t: u8) -> bool {
    matches!(
        t,
        Icmp::DEST_UNREACHABLE
            | Icmp::SOURCE_QUENCH
            | Icmp::REDIRECT
            | Icmp::TIME_EXCEEDED
            | Icmp::PARAMETER_PROBLEM
    )
}

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
    let (Some(dst), Some(src), Some(mut ethertype)) =
        (mac_at(frame, 0), mac_at(frame, 6), be16(frame, 12))
    else {
        p.truncated = Some(Layer::Ethernet);
        return p;
    };
    let mut off = 14;
    let mut vlan = None;
    let mut tags = 0;
    while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        let (Some(tci), Some(inner)) = (be16(frame, off), be16(frame, off + 2)) else {
            p.truncated = Some(Layer::Ethernet);
            return p;
        };
        vlan.get_or_insert(tci & 0x0fff);
        ethertype = inner;
        off += 4;
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            p.truncated = Some(Layer::Ethernet);
            return p;
        }
    }
    p.ethernet = Some(Ethernet {
        dst,
        src,
        ethertype,
        vlan,
        header_len: off,
    });
    let payload = &frame[off..];
    match ethertype {
        ETHERTYPE_ARP => decode_arp(payload, &mut p),
        ETHERTYPE_IPV4 => decode_ipv4(payload, &mut p),
        _ => {}
    }
    p
}

fn decode_arp(b: &[u8], p: &mut Packet) {
    let (Some(htype), Some(ptype), Some(&hlen), Some(&plen), Some(op)) =
        (be16(b, 0), be16(b, 2), b.get(4), b.get(5), be16(b, 6))
    else {
        p.truncated = Some(Layer::Arp);
        return;
    };
    if htype != 1 || ptype != ETHERTYPE_IPV4 || hlen != 6 || plen != 4 {
        // Not IPv4 over Ethernet: left undecoded.
        return;
    }
    let (Some(sha), Some(spa), Some(tha), Some(tpa)) =
        (mac_at(b, 8), ip_at(b, 14), mac_at(b, 18), ip_at(b, 24))
    else {
        p.truncated = Some(Layer::Arp);
        return;
    };
    p.arp = Some(Arp {
        op: match op {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            o => ArpOp::Other(o),
        },
        sender_mac: sha,
        sender_ip: spa,
        target_mac: tha,
        target_ip: tpa,
        len: b.len(),
    });
}

fn decode_ipv4(b: &[u8], p: &mut Packet) {
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
        b.get(..hlen),
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
        b.len() - hlen
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
    };
    p.ipv4 = Some(ip);
    if usize::from(total_len) < hlen && total_len != 0 {
        p.truncated = Some(Layer::Ipv4);
        return;
    }
    if !ip.is_first_fragment() {
        return;
    }
    // Drop Ethernet padding past the datagram's end.
    let end = (hlen + payload_len).min(b.len());
    let payload = &b[hlen..end];
    match ip.proto {
        IPPROTO_ICMP => decode_icmp(payload, payload_len, p),
        IPPROTO_UDP => decode_udp(payload, p),
        IPPROTO_TCP => decode_tcp(payload, payload_len, p),
        _ => {}
    }
}

fn decode_icmp(b: &[u8], len: usize, p: &mut Packet) {
    let (Some(&icmp_type), Some(&code)) = (b.first(), b.get(1)) else {
        p.truncated = Some(Layer::Icmp);
        return;
    };
    let mut icmp = Icmp {
        icmp_type,
        code,
        len,
        echo: None,
        quote: None,
        gateway: None,
        next_hop_mtu: None,
        address_mask: None,
    };
    match icmp_type {
        Icmp::ECHO_REQUEST
        | Icmp::ECHO_REPLY
        | Icmp::TIMESTAMP
        | Icmp::TIMESTAMP_REPLY
        | Icmp::ADDRESS_MASK_REQUEST
        | Icmp::ADDRESS_MASK_REPLY => match (be16(b, 4), be16(b, 6)) {
            (Some(id), Some(seq)) => {
                icmp.echo = Some(IcmpEcho { id, seq });
                if icmp_type == Icmp::ADDRESS_MASK_REPLY {
                    icmp.address_mask = ip_at(b, 8);
                }
            }
            _ => p.truncated = Some(Layer::Icmp),
        },
        t if is_icmp_error(t) => {
            if t == Icmp::REDIRECT {
                icmp.gateway = ip_at(b, 4);
            }
            if t == Icmp::DEST_UNREACHABLE && code == Icmp::CODE_FRAG_NEEDED {
                icmp.next_hop_mtu = be16(b, 6);
            }
            icmp.quote = decode_quote(b.get(8..).unwrap_or(&[]));
            if icmp.quote.is_none() {
                p.truncated = Some(Layer::Icmp);
            }
        }
        _ => {
            if b.len() < 4 {
                p.truncated = Some(Layer::Icmp);
            }
        }
    }
    p.icmp = Some(icmp);
}

fn decode_quote(b: &[u8]) -> Option<IcmpQuote> {
    let vihl = *b.first()?;
    let hlen = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || hlen < 20 || b.len() < hlen {
        return None;
    }
    let proto = b[9];
    let frag = be16(b, 6)?;
    let ports = (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && frag & 0x1fff == 0;
    Some(IcmpQuote {
        src: ip_at(b, 12)?,
        dst: ip_at(b, 16)?,
        proto,
        id: be16(b, 4)?,
        src_port: if ports { be16(b, hlen) } else { None },
        dst_port: if ports { be16(b, hlen + 2) } else { None },
    })
}

fn decode_udp(b: &[u8], p: &mut Packet) {
    let (Some(src_port), Some(dst_port), Some(len)) = (be16(b, 0), be16(b, 2), be16(b, 4)) else {
        p.truncated = Some(Layer::Udp);
        return;
    };
    if b.len() < 8 {
        p.truncated = Some(Layer::Udp);
        return;
    }
    p.udp = Some(Udp {
        src_port,
        dst_port,
        len,
        payload_len: usize::from(len).saturating_sub(8),
    });
}

fn decode_tcp(b: &[u8], seg_len: usize, p: &mut Packet) {
    let (Some(src_port), Some(dst_port), Some(seq), Some(ack), Some(&off), Some(&flags)) = (
        be16(b, 0),
        be16(b, 2),
        be32(b, 4),
        be32(b, 8),
        b.get(12),
        b.get(13),
    ) else {
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
            ETHERTYPE_ARP => fmt_arp(self, rest, f),
            ETHERTYPE_IPV4 => match self.ipv4 {
                Some(ip) => fmt_ipv4(self, &ip, f),
                None => f.write_str("IP [|ip]"),
            },
            ETHERTYPE_IPV6 => write!(f, "IP6, length {rest}"),
            t if t <= 1500 => write!(f, "802.3, length {rest}"),
            t => write!(f, "ethertype Unknown (0x{t:04x}), length {rest}"),
        }
    }
}

fn fmt_arp(p: &Packet, rest: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(a) = p.arp else {
        return if p.truncated == Some(Layer::Arp) {
            f.write_str("ARP, [|arp]")
        } else {
            write!(f, "ARP, unsupported hardware or protocol, length {rest}")
        };
    };
    match a.op {
        ArpOp::Request => {
            write!(f, "ARP, Request who-has {}", a.target_ip)?;
            if !a.target_mac.is_zero() {
                write!(f, " ({})", a.target_mac)?;
            }
            write!(f, " tell {}, length {}", a.sender_ip, a.len)
        }
        ArpOp::Reply => write!(
            f,
            "ARP, Reply {} is-at {}, length {}",
            a.sender_ip, a.sender_mac, a.len
        ),
        ArpOp::Other(op) => write!(
            f,
            "ARP, Unknown (op {op}) {} > {}, length {}",
            a.sender_ip, a.target_ip, a.len
        ),
    }
}

fn fmt_ipv4(p: &Packet, ip: &Ipv4, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match (p.tcp, p.udp) {
        (Some(t), _) => write!(
            f,
            "IP {}.{} > {}.{}: ",
            ip.src, t.src_port, ip.dst, t.dst_port
        )?,
        (None, Some(u)) => write!(
            f,
            "IP {}.{} > {}.{}: ",
            ip.src, u.src_port, ip.dst, u.dst_port
        )?,
        _ => write!(f, "IP {} > {}: ", ip.src, ip.dst)?,
    }
    if !ip.is_first_fragment() {
        write!(f, "ip-proto-{}", ip.proto)?;
    } else if let Some(t) = p.tcp {
        fmt_tcp(&t, f)?;
    } else if let Some(u) = p.udp {
        write!(f, "UDP, length {}", u.payload_len)?;
    } else if let Some(i) = p.icmp {
        fmt_icmp(&i, f)?;
    } else if p.truncated.is_none() {
        write!(f, "ip-proto-{} {}", ip.proto, ip.payload_len)?;
    }
    if let Some(layer) = p.truncated {
        if layer == Layer::Ipv4 {
            write!(f, "[|ip]")?;
        } else {
            if p.icmp.is_none() && p.tcp.is_none() {
                write!(f, "{}", layer.tcpdump_name())?;
            }
            write!(f, " [|{}]", layer.tcpdump_name())?;
        }
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

fn fmt_tcp(t: &Tcp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

fn fmt_icmp(i: &Icmp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("ICMP ")?;
    let q = i.quote;
    let qdst = q.map(|q| q.dst.to_string()).unwrap_or_else(|| "?".into());
    match (i.icmp_type, i.code) {
        (Icmp::ECHO_REQUEST | Icmp::ECHO_REPLY, _) => {
            let what = if i.is_echo_request() {
                "request"
            } else {
                "reply"
            };
            write!(f, "echo {what}")?;
            if let Some(e) = i.echo {
                write!(f, ", id {}, seq {}", e.id, e.seq)?;
            }
        }
        (Icmp::DEST_UNREACHABLE, code) => match code {
            0 => write!(f, "net {qdst} unreachable")?,
            1 => write!(f, "host {qdst} unreachable")?,
            2 => write!(
                f,
                "{qdst} protocol {} unreachable",
                q.map_or(0, |q| q.proto)
            )?,
            3 => match q {
                Some(q) if q.dst_port.is_some() => {
                    let proto = if q.proto == IPPROTO_TCP { "tcp" } else { "udp" };
                    write!(
                        f,
                        "{} {proto} port {} unreachable",
                        q.dst,
                        q.dst_port.unwrap_or(0)
                    )?
                }
                Some(q) => write!(f, "{} protocol {} port unreachable", q.dst, q.proto)?,
                None => write!(f, "{qdst} port unreachable")?,
            },
            4 => match i.next_hop_mtu {
                Some(mtu) if mtu != 0 => {
                    write!(f, "{qdst} unreachable - need to frag (mtu {mtu})")?
                }
                _ => write!(f, "{qdst} unreachable - need to frag")?,
            },
            5 => write!(f, "{qdst} unreachable - source route failed")?,
            6 => write!(f, "{qdst} unreachable - net unknown")?,
            7 => write!(f, "{qdst} unreachable - host unknown")?,
            8 => write!(f, "{qdst} unreachable - source host isolated")?,
            9 => write!(f, "net {qdst} unreachable - admin prohibited")?,
            10 => write!(f, "host {qdst} unreachable - admin prohibited")?,
            11 => write!(f, "net {qdst} unreachable - tos prohibited")?,
            12 => write!(f, "host {qdst} unreachable - tos prohibited")?,
            13 => write!(f, "host {qdst} unreachable - admin prohibited filter")?,
            14 => write!(f, "host {qdst} unreachable - host precedence violation")?,
            15 => write!(f, "host {qdst} unreachable - precedence cutoff")?,
            c => write!(f, "{qdst} unreachable - #{c}")?,
        },
        (Icmp::SOURCE_QUENCH, _) => f.write_str("source quench")?,
        (Icmp::REDIRECT, code) => {
            let gw = i
                .gateway
                .map(|g| g.to_string())
                .unwrap_or_else(|| "?".into());
            match code {
                0 => write!(f, "redirect {qdst} to net {gw}")?,
                1 => write!(f, "redirect {qdst} to host {gw}")?,
                2 => write!(f, "redirect-tos {qdst} to net {gw}")?,
                3 => write!(f, "redirect-tos {qdst} to host {gw}")?,
                c => write!(f, "redirect-#{c} {qdst} to {gw}")?,
            }
        }
        (Icmp::ROUTER_ADVERTISEMENT, _) => f.write_str("router advertisement")?,
        (Icmp::ROUTER_SOLICITATION, _) => f.write_str("router solicitation")?,
        (Icmp::TIME_EXCEEDED, 0) => f.write_str("time exceeded in-transit")?,
        (Icmp::TIME_EXCEEDED, 1) => f.write_str("ip reassembly time exceeded")?,
        (Icmp::TIME_EXCEEDED, c) => write!(f, "time exceeded-#{c}")?,
        (Icmp::PARAMETER_PROBLEM, _) => f.write_str("parameter problem")?,
        (Icmp::TIMESTAMP | Icmp::TIMESTAMP_REPLY, _) => {
            let what = if i.icmp_type == Icmp::TIMESTAMP {
                "query"
            } else {
                "reply"
            };
            write!(f, "time stamp {what}")?;
            if let Some(e) = i.echo {
                write!(f, " id {} seq {}", e.id, e.seq)?;
            }
        }
        (Icmp::ADDRESS_MASK_REQUEST, _) => f.write_str("address mask request")?,
        (Icmp::ADDRESS_MASK_REPLY, _) => match i.address_mask {
            Some(m) => write!(f, "address mask is 0x{:08x}", u32::from(m))?,
            None => f.write_str("address mask reply")?,
        },
        (t, _) => write!(f, "type-#{t}")?,
    }
    write!(f, ", length {}", i.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x35];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x33];

    fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4];
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&sha);
        a.extend_from_slice(&spa);
        a.extend_from_slice(&tha);
        a.extend_from_slice(&tpa);
        a
    }

    #[allow(clippy::too_many_arguments)]
    fn ipv4(
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        id: u16,
        ttl: u8,
        flags_off: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&(total as u16).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(&flags_off.to_be_bytes());
        h.push(ttl);
        h.push(proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(payload);
        h
    }

    fn icmp_echo(t: u8, id: u16, seq: u16, data_len: usize) -> Vec<u8> {
        let mut m = vec![t, 0, 0, 0];
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend(std::iter::repeat_n(0xab, data_len));
        m
    }

    fn udp(sport: u16, dport: u16, data_len: usize) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + data_len) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend(std::iter::repeat_n(0x55, data_len));
        u
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        opts: &[u8],
        data_len: usize,
    ) -> Vec<u8> {
        let hlen = 20 + opts.len();
        assert_eq!(hlen % 4, 0);
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.push(((hlen / 4) as u8) << 4);
        t.push(flags);
        t.extend_from_slice(&win.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(opts);
        t.extend(std::iter::repeat_n(0x41, data_len));
        t
    }

    const BSDI: [u8; 4] = [140, 252, 13, 35];
    const SUN: [u8; 4] = [140, 252, 13, 33];
    const AIX: [u8; 4] = [140, 252, 1, 92];

    fn all_frames() -> Vec<Vec<u8>> {
        let syn_opts = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let mut quoted = ipv4(BSDI, AIX, IPPROTO_UDP, 77, 1, 0, &udp(40000, 33434, 12));
        quoted.truncate(28);
        let mut unreach = vec![3, 3, 0, 0, 0, 0, 0, 0];
        unreach.extend_from_slice(&quoted);
        vec![
            eth(
                [0xff; 6],
                MAC_A,
                ETHERTYPE_ARP,
                &arp(1, MAC_A, BSDI, [0; 6], SUN),
            ),
            eth(
                MAC_A,
                MAC_B,
                ETHERTYPE_ARP,
                &arp(2, MAC_B, SUN, MAC_A, BSDI),
            ),
            eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(BSDI, AIX, 1, 1, 64, 0x4000, &icmp_echo(8, 5, 1, 56)),
            ),
            eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(AIX, BSDI, 1, 1, 64, 0, &unreach),
            ),
            eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(
                    BSDI,
                    AIX,
                    6,
                    1,
                    64,
                    0x4000,
                    &tcp(1234, 80, 123, 0, 0x02, 64240, &syn_opts, 0),
                ),
            ),
            eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(BSDI, AIX, 17, 1, 64, 0, &udp(1234, 53, 20)),
            ),
            eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(
                    BSDI,
                    AIX,
                    17,
                    26304,
                    64,
                    0x2000,
                    &udp(1112, 7, 1472)[..1480],
                ),
            ),
            eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(BSDI, AIX, 17, 26304, 64, 185, &[0u8; 552]),
            ),
        ]
    }

    #[test]
    fn arp_request_and_reply() {
        let req = eth(
            [0xff; 6],
            MAC_A,
            ETHERTYPE_ARP,
            &arp(1, MAC_A, BSDI, [0; 6], SUN),
        );
        let p = decode(&req);
        assert!(p.is_arp_request());
        let a = p.arp.unwrap();
        assert_eq!(a.sender_ip, Ipv4Addr::from(BSDI));
        assert_eq!(a.target_ip, Ipv4Addr::from(SUN));
        assert!(p.ethernet.unwrap().dst.is_broadcast());
        assert_eq!(
            p.to_string(),
            "ARP, Request who-has 140.252.13.33 tell 140.252.13.35, length 28"
        );

        let rep = eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_ARP,
            &arp(2, MAC_B, SUN, MAC_A, BSDI),
        );
        let p = decode(&rep);
        assert!(p.is_arp_reply());
        assert_eq!(
            p.to_string(),
            "ARP, Reply 140.252.13.33 is-at 02:00:00:00:00:33, length 28"
        );

        // Padded to the 60-byte Ethernet minimum: tcpdump reports 46.
        let mut padded = rep.clone();
        padded.resize(60, 0);
        assert!(decode(&padded).to_string().ends_with("length 46"));
    }

    #[test]
    fn icmp_echo_request_and_reply() {
        let f = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 1, 9, 64, 0x4000, &icmp_echo(8, 5, 1, 56)),
        );
        let p = decode(&f);
        let ip = p.ipv4.unwrap();
        assert!(ip.dont_fragment && !ip.is_fragment());
        assert_eq!((ip.ttl, ip.proto, ip.id, ip.total_len), (64, 1, 9, 84));
        assert!(p.is_echo_request());
        assert_eq!(p.icmp.unwrap().echo, Some(IcmpEcho { id: 5, seq: 1 }));
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.35 > 140.252.1.92: ICMP echo request, id 5, seq 1, length 64"
        );
        let f = eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_IPV4,
            &ipv4(AIX, BSDI, 1, 9, 64, 0, &icmp_echo(0, 5, 1, 56)),
        );
        assert_eq!(
            decode(&f).to_string(),
            "IP 140.252.1.92 > 140.252.13.35: ICMP echo reply, id 5, seq 1, length 64"
        );
    }

    #[test]
    fn icmp_errors() {
        let mut quoted = ipv4(BSDI, AIX, IPPROTO_UDP, 77, 1, 0, &udp(40000, 33434, 12));
        quoted.truncate(28);
        let mut te = vec![11, 0, 0, 0, 0, 0, 0, 0];
        te.extend_from_slice(&quoted);
        let p = decode(&eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_IPV4,
            &ipv4(SUN, BSDI, 1, 1, 255, 0, &te),
        ));
        let icmp = p.icmp.unwrap();
        assert!(icmp.is_ttl_exceeded() && icmp.is_error());
        assert_eq!(icmp.quote.unwrap().dst_port, Some(33434));
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.33 > 140.252.13.35: ICMP time exceeded in-transit, length 36"
        );

        let mut pu = vec![3, 3, 0, 0, 0, 0, 0, 0];
        pu.extend_from_slice(&quoted);
        let p = decode(&eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_IPV4,
            &ipv4(AIX, BSDI, 1, 1, 255, 0, &pu),
        ));
        assert!(p.icmp.unwrap().is_port_unreachable());
        assert_eq!(
            p.to_string(),
            "IP 140.252.1.92 > 140.252.13.35: ICMP 140.252.1.92 udp port 33434 unreachable, length 36"
        );

        let mut nf = vec![3, 4, 0, 0, 0, 0, 1, 40];
        nf.extend_from_slice(&quoted);
        let p = decode(&eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_IPV4,
            &ipv4(SUN, BSDI, 1, 1, 255, 0, &nf),
        ));
        assert_eq!(p.icmp.unwrap().next_hop_mtu, Some(296));
        assert!(
            p.to_string()
                .contains("ICMP 140.252.1.92 unreachable - need to frag (mtu 296)")
        );

        let mut rd = vec![5, 1, 0, 0, 140, 252, 13, 33];
        rd.extend_from_slice(&quoted);
        let p = decode(&eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_IPV4,
            &ipv4(SUN, BSDI, 1, 1, 255, 0, &rd),
        ));
        assert!(
            p.to_string()
                .contains("ICMP redirect 140.252.1.92 to host 140.252.13.33")
        );
    }

    #[test]
    fn tcp_syn_with_options() {
        let opts = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let f = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(
                BSDI,
                AIX,
                6,
                1,
                64,
                0x4000,
                &tcp(1234, 80, 123, 0, 0x02, 64240, &opts, 0),
            ),
        );
        let p = decode(&f);
        let t = p.tcp.unwrap();
        assert!(p.is_tcp_syn() && t.flags.is_syn() && !t.flags.is_syn_ack());
        assert_eq!(t.options.mss(), Some(1460));
        assert_eq!(t.options.window_scale(), Some(7));
        assert!(t.options.sack_permitted());
        assert_eq!(t.options.timestamp(), Some((1, 0)));
        assert_eq!(p.ports(), Some((1234, 80)));
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.35.1234 > 140.252.1.92.80: Flags [S], seq 123, win 64240, \
             options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0"
        );
    }

    #[test]
    fn tcp_flag_lines() {
        let line = |flags: u8, len: usize| {
            decode(&eth(
                MAC_B,
                MAC_A,
                ETHERTYPE_IPV4,
                &ipv4(
                    BSDI,
                    AIX,
                    6,
                    1,
                    64,
                    0,
                    &tcp(80, 1234, 1000, 124, flags, 502, &[], len),
                ),
            ))
            .to_string()
        };
        assert_eq!(
            line(0x12, 0),
            "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [S.], seq 1000, ack 124, win 502, length 0"
        );
        assert_eq!(
            line(0x10, 0),
            "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [.], ack 124, win 502, length 0"
        );
        assert_eq!(
            line(0x18, 5),
            "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [P.], seq 1000:1005, ack 124, win 502, length 5"
        );
        assert_eq!(
            line(0x11, 0),
            "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [F.], seq 1000, ack 124, win 502, length 0"
        );
        assert_eq!(
            line(0x04, 0),
            "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [R], seq 1000, win 502, length 0"
        );
        assert_eq!(
            line(0x00, 0),
            "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [none], win 502, length 0"
        );
        assert_eq!(TcpFlags(0xff).to_string(), "FSRP.UEW");
        assert!((TcpFlags::SYN | TcpFlags::ACK).is_syn_ack());
    }

    #[test]
    fn udp_line() {
        let p = decode(&eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 17, 1, 64, 0, &udp(1234, 53, 20)),
        ));
        assert_eq!(p.udp.unwrap().payload_len, 20);
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.35.1234 > 140.252.1.92.53: UDP, length 20"
        );
    }

    #[test]
    fn fragments() {
        // The book's 1473-byte UDP datagram, fragmented at MTU 1500.
        let full = udp(1112, 7, 1473);
        let first = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 17, 26304, 64, 0x2000, &full[..1480]),
        );
        let p = decode(&first);
        let ip = p.ipv4.unwrap();
        assert!(ip.is_fragment() && ip.is_first_fragment() && ip.more_fragments);
        assert_eq!(p.udp.unwrap().dst_port, 7);
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.35.1112 > 140.252.1.92.7: UDP, length 1473 (frag 26304:1480@0+)"
        );
        let second = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 17, 26304, 64, 185, &full[1480..]),
        );
        let p = decode(&second);
        let ip = p.ipv4.unwrap();
        assert!(ip.is_fragment() && !ip.is_first_fragment() && !ip.more_fragments);
        assert_eq!(ip.frag_offset, 1480);
        assert!(p.udp.is_none());
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.35 > 140.252.1.92: ip-proto-17 (frag 26304:1@1480)"
        );
        // A middle fragment keeps the '+'.
        let mid = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 17, 26304, 64, 0x2000 | 185, &[0; 1480]),
        );
        assert!(
            decode(&mid)
                .to_string()
                .ends_with("(frag 26304:1480@1480+)")
        );
    }

    #[test]
    fn vlan_tag_is_skipped() {
        let inner = ipv4(BSDI, AIX, 1, 1, 64, 0, &icmp_echo(8, 5, 1, 56));
        let mut tagged = vec![0x00, 0x0a]; // VLAN 10
        tagged.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        tagged.extend_from_slice(&inner);
        let p = decode(&eth(MAC_B, MAC_A, ETHERTYPE_VLAN, &tagged));
        assert_eq!(p.ethernet.unwrap().vlan, Some(10));
        assert_eq!(p.ethernet.unwrap().ethertype, ETHERTYPE_IPV4);
        assert!(p.is_echo_request());
        assert!(
            p.to_string()
                .starts_with("vlan 10, IP 140.252.13.35 > 140.252.1.92: ICMP echo request")
        );
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut f = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 6, 1, 64, 0, &tcp(1, 2, 3, 4, 0x10, 5, &[], 0)),
        );
        f.resize(60, 0xee);
        let p = decode(&f);
        assert_eq!(p.tcp.unwrap().payload_len, 0);
        assert!(p.truncated.is_none());
    }

    #[test]
    fn other_ethertypes_and_protocols() {
        assert_eq!(
            decode(&eth(MAC_B, MAC_A, ETHERTYPE_IPV6, &[0; 40])).to_string(),
            "IP6, length 40"
        );
        assert_eq!(
            decode(&eth(MAC_B, MAC_A, 0x88cc, &[0; 10])).to_string(),
            "ethertype Unknown (0x88cc), length 10"
        );
        let p = decode(&eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 89, 1, 1, 0, &[0; 40]),
        ));
        assert_eq!(
            p.to_string(),
            "IP 140.252.13.35 > 140.252.1.92: ip-proto-89 40"
        );
    }

    #[test]
    fn truncated_frames_are_marked() {
        assert_eq!(decode(&[]).to_string(), "[|ether]");
        assert_eq!(decode(&[0; 13]).truncated, Some(Layer::Ethernet));
        let full = eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 6, 1, 64, 0, &tcp(1234, 80, 1, 0, 2, 100, &[], 0)),
        );
        let p = decode(&full[..14 + 20 + 10]);
        assert_eq!(p.truncated, Some(Layer::Tcp));
        assert!(p.ipv4.is_some() && p.tcp.is_none());
        assert_eq!(p.to_string(), "IP 140.252.13.35 > 140.252.1.92: tcp [|tcp]");
        let p = decode(&full[..14 + 10]);
        assert_eq!(p.truncated, Some(Layer::Ipv4));
        assert_eq!(p.to_string(), "IP [|ip]");
        let arp_f = eth(
            [0xff; 6],
            MAC_A,
            ETHERTYPE_ARP,
            &arp(1, MAC_A, BSDI, [0; 6], SUN),
        );
        assert_eq!(decode(&arp_f[..30]).to_string(), "ARP, [|arp]");
    }

    #[test]
    fn every_truncation_of_every_frame_decodes() {
        for f in all_frames() {
            for n in 0..=f.len() {
                let p = decode(&f[..n]);
                let _ = p.to_string();
                assert_eq!(p.frame_len, n);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        // xorshift: deterministic garbage, plus valid frames with random bytes flipped.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let frames = all_frames();
        for i in 0..20_000 {
            let mut f = if i % 2 == 0 {
                let len = (rnd() % 200) as usize;
                (0..len).map(|_| rnd() as u8).collect::<Vec<u8>>()
            } else {
                frames[(rnd() as usize) % frames.len()].clone()
            };
            if f.is_empty() {
                continue;
            }
            // Steer the garbage towards the interesting paths.
            if i % 4 == 0 && f.len() > 14 {
                let et = [ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN][(rnd() % 3) as usize];
                f[12..14].copy_from_slice(&et.to_be_bytes());
            }
            for _ in 0..(rnd() % 8) {
                let at = (rnd() as usize) % f.len();
                f[at] = rnd() as u8;
            }
            let cut = (rnd() as usize) % (f.len() + 1);
            let p = decode(&f[..cut]);
            let _ = p.to_string();
            let _ = format!("{p:?}");
        }
    }
}
