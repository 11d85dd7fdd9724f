//! ICMP (for IPv4): queries (echo, timestamp, address mask) and errors with
//! the header they quote.

use std::fmt;
use std::net::Ipv4Addr;

use super::{IPPROTO_TCP, IPPROTO_UDP, Layer, Packet, be16, ip_at};

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

/// True for the types that quote an offending datagram.
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

/// Reads an ICMP message of `len` bytes (from the IP header) into `p.icmp`.
pub(super) fn decode_icmp(b: &[u8], len: usize, p: &mut Packet) {
    // tcpdump prints nothing of a message cut inside its first 8 bytes.
    let (Some(&icmp_type), Some(&code), true) = (b.first(), b.get(1), b.len() >= 8) else {
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

/// The IP header (and ports) an ICMP error quotes.
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

/// The ICMP part of the line, in tcpdump's words.
pub(super) fn fmt_icmp(i: &Icmp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("ICMP ")?;
    let qdst = i
        .quote
        .map(|q| q.dst.to_string())
        .unwrap_or_else(|| "?".into());
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
        (Icmp::DEST_UNREACHABLE, _) => fmt_unreachable(i, &qdst, f)?,
        (Icmp::SOURCE_QUENCH, _) => f.write_str("source quench")?,
        (Icmp::REDIRECT, _) => fmt_redirect(i, &qdst, f)?,
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

/// A destination unreachable, by code; `qdst` is the quoted destination.
fn fmt_unreachable(i: &Icmp, qdst: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let q = i.quote;
    match i.code {
        0 => write!(f, "net {qdst} unreachable"),
        1 => write!(f, "host {qdst} unreachable"),
        2 => write!(
            f,
            "{qdst} protocol {} unreachable",
            q.map_or(0, |q| q.proto)
        ),
        3 => match q {
            Some(q) if q.dst_port.is_some() => {
                let proto = if q.proto == IPPROTO_TCP { "tcp" } else { "udp" };
                write!(
                    f,
                    "{} {proto} port {} unreachable",
                    q.dst,
                    q.dst_port.unwrap_or(0)
                )
            }
            Some(q) => write!(f, "{} protocol {} port unreachable", q.dst, q.proto),
            None => write!(f, "{qdst} port unreachable"),
        },
        4 => match i.next_hop_mtu {
            Some(mtu) if mtu != 0 => write!(f, "{qdst} unreachable - need to frag (mtu {mtu})"),
            _ => write!(f, "{qdst} unreachable - need to frag"),
        },
        5 => write!(f, "{qdst} unreachable - source route failed"),
        6 => write!(f, "{qdst} unreachable - net unknown"),
        7 => write!(f, "{qdst} unreachable - host unknown"),
        8 => write!(f, "{qdst} unreachable - source host isolated"),
        9 => write!(f, "net {qdst} unreachable - admin prohibited"),
        10 => write!(f, "host {qdst} unreachable - admin prohibited"),
        11 => write!(f, "net {qdst} unreachable - tos prohibited"),
        12 => write!(f, "host {qdst} unreachable - tos prohibited"),
        13 => write!(f, "host {qdst} unreachable - admin prohibited filter"),
        14 => write!(f, "host {qdst} unreachable - host precedence violation"),
        15 => write!(f, "host {qdst} unreachable - precedence cutoff"),
        c => write!(f, "{qdst} unreachable - #{c}"),
    }
}

/// A redirect, by code; `qdst` is the quoted destination.
fn fmt_redirect(i: &Icmp, qdst: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let gw = i
        .gateway
        .map(|g| g.to_string())
        .unwrap_or_else(|| "?".into());
    match i.code {
        0 => write!(f, "redirect {qdst} to net {gw}"),
        1 => write!(f, "redirect {qdst} to host {gw}"),
        2 => write!(f, "redirect-tos {qdst} to net {gw}"),
        3 => write!(f, "redirect-tos {qdst} to host {gw}"),
        c => write!(f, "redirect-#{c} {qdst} to {gw}"),
    }
}
