//! ICMPv6: errors (unreachable, packet too big, time exceeded, parameter
//! problem) with the header they quote, echo, neighbor discovery (router and
//! neighbor solicitation and advertisement, redirect) and multicast listener
//! discovery (MLDv1 and MLDv2 queries and reports).

use std::fmt;
use std::net::Ipv6Addr;

use super::{
    IPPROTO_AH, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_TCP,
    IPPROTO_UDP, IcmpEcho, Packet, be16, be32, ip6_at,
};

/// What an ICMPv6 error quotes of the datagram that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp6Quote {
    /// Source of the offending datagram.
    pub src: Ipv6Addr,
    /// Destination of the offending datagram.
    pub dst: Ipv6Addr,
    /// Its upper-layer protocol, after any extension headers, when found.
    pub proto: Option<u8>,
    /// Its destination port, for a quoted TCP or UDP header.
    pub dst_port: Option<u16>,
}

/// An ICMPv6 message. Fields are `None` when the message has no such field
/// or was cut short before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp6 {
    /// Type (1 unreachable, 2 packet too big, 128 echo request, 135 neighbor solicitation...).
    pub icmp_type: u8,
    /// Code within the type (0 when cut short before it).
    pub code: u8,
    /// Message length from the IPv6 header (tcpdump's "length").
    pub len: usize,
    /// Bytes of the message in the frame (less than `len` when cut short).
    pub captured: usize,
    /// Id and sequence of an echo request or reply.
    pub echo: Option<IcmpEcho>,
    /// The MTU of a packet too big.
    pub mtu: Option<u32>,
    /// The pointer of a parameter problem.
    pub pointer: Option<u32>,
    /// The target of a neighbor solicitation, advertisement or redirect.
    pub target: Option<Ipv6Addr>,
    /// The destination of a redirect.
    pub redirect_dst: Option<Ipv6Addr>,
    /// The multicast address of an MLD query, report or done.
    pub group: Option<Ipv6Addr>,
    /// The maximum response delay of an MLD message (milliseconds, as coded).
    pub max_resp_delay: Option<u16>,
    /// The number of sources of an MLDv2 query.
    pub sources: Option<u16>,
    /// The number of group records of an MLDv2 report.
    pub records: Option<u16>,
    /// The identifier of a home agent discovery request or mobile prefix solicitation.
    pub ident: Option<u16>,
    /// The header an error message quotes.
    pub quote: Option<Icmp6Quote>,
}

impl Icmp6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Multicast listener query (MLDv1 or MLDv2).
    pub const MLD_QUERY: u8 = 130;
    /// Multicast listener report (MLDv1).
    pub const MLD_REPORT: u8 = 131;
    /// Multicast listener done (MLDv1).
    pub const MLD_DONE: u8 = 132;
    /// Router solicitation.
    pub const ROUTER_SOLICITATION: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERTISEMENT: u8 = 134;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICITATION: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
    /// Multicast listener report v2.
    pub const MLD2_REPORT: u8 = 143;

    /// True for an echo request (what ping -6 sends).
    pub fn is_echo_request(&self) -> bool {
        self.icmp_type == Self::ECHO_REQUEST
    }

    /// True for an echo reply.
    pub fn is_echo_reply(&self) -> bool {
        self.icmp_type == Self::ECHO_REPLY
    }

    /// True for an error message (types below 128).
    pub fn is_error(&self) -> bool {
        self.icmp_type < 128
    }

    /// True for a neighbor discovery message (router and neighbor
    /// solicitation and advertisement, redirect).
    pub fn is_neighbor_discovery(&self) -> bool {
        (Self::ROUTER_SOLICITATION..=Self::REDIRECT).contains(&self.icmp_type)
    }

    /// True for a multicast listener discovery message (MLDv1 or MLDv2).
    pub fn is_mld(&self) -> bool {
        matches!(
            self.icmp_type,
            Self::MLD_QUERY | Self::MLD_REPORT | Self::MLD_DONE | Self::MLD2_REPORT
        )
    }
}

/// Reads an ICMPv6 message of `len` bytes (from the IPv6 header) into `p.icmp6`.
pub(super) fn decode_icmp6(b: &[u8], len: usize, p: &mut Packet) {
    if b.len() < len {
        p.truncated = Some(super::Layer::Icmp6);
    }
    let b = &b[..b.len().min(len)];
    let Some(&icmp_type) = b.first().or((len == 0).then_some(&0)) else {
        p.truncated = Some(super::Layer::Icmp6);
        return;
    };
    let mut m = Icmp6 {
        icmp_type,
        code: b.get(1).copied().unwrap_or(0),
        len,
        captured: b.len().min(len),
        echo: None,
        mtu: None,
        pointer: None,
        target: None,
        redirect_dst: None,
        group: None,
        max_resp_delay: None,
        sources: None,
        records: None,
        ident: None,
        quote: None,
    };
    match icmp_type {
        Icmp6::ECHO_REQUEST | Icmp6::ECHO_REPLY => {
            m.echo = be16(b, 4)
                .zip(be16(b, 6))
                .map(|(id, seq)| IcmpEcho { id, seq });
        }
        Icmp6::PACKET_TOO_BIG => m.mtu = be32(b, 4),
        Icmp6::PARAMETER_PROBLEM => m.pointer = be32(b, 4),
        Icmp6::NEIGHBOR_SOLICITATION | Icmp6::NEIGHBOR_ADVERTISEMENT => m.target = ip6_at(b, 8),
        Icmp6::REDIRECT => {
            m.target = ip6_at(b, 8);
            m.redirect_dst = ip6_at(b, 24);
        }
        Icmp6::MLD_QUERY | Icmp6::MLD_REPORT | Icmp6::MLD_DONE => {
            m.max_resp_delay = be16(b, 4);
            m.group = ip6_at(b, 8);
            m.sources = be16(b, 26);
        }
        Icmp6::MLD2_REPORT => m.records = be16(b, 6),
        144 | 146 => m.ident = be16(b, 4),
        _ => {}
    }
    if m.is_error() {
        m.quote = decode_quote(b.get(8..).unwrap_or(&[]));
    }
    p.icmp6 = Some(m);
}

/// The IPv6 header (and destination port) an error quotes.
fn decode_quote(b: &[u8]) -> Option<Icmp6Quote> {
    let (src, dst) = (ip6_at(b, 8)?, ip6_at(b, 24)?);
    let (proto, dst_port) = quoted_upper_layer(b);
    Some(Icmp6Quote {
        src,
        dst,
        proto,
        dst_port,
    })
}

/// Walks the quoted datagram's extension headers to its TCP or UDP header:
/// the protocol found and the destination port, when captured.
fn quoted_upper_layer(b: &[u8]) -> (Option<u8>, Option<u16>) {
    let Some(&first) = b.get(6) else {
        return (None, None);
    };
    let (mut nh, mut off) = (first, 40usize);
    // Each step moves forward by at least 8 bytes, so this ends.
    while off < b.len() {
        match nh {
            IPPROTO_TCP | IPPROTO_UDP => return (Some(nh), be16(b, off + 2)),
            IPPROTO_HOPOPTS | IPPROTO_DSTOPTS | IPPROTO_ROUTING => {
                let (Some(&n), Some(&l)) = (b.get(off), b.get(off + 1)) else {
                    return (None, None);
                };
                nh = n;
                off += (usize::from(l) + 1) * 8;
            }
            IPPROTO_FRAGMENT => {
                let (Some(&n), Some(offlg)) = (b.get(off), be16(b, off + 2)) else {
                    return (None, None);
                };
                if offlg & 0xfff8 != 0 {
                    return (None, None);
                }
                nh = n;
                off += 8;
            }
            IPPROTO_AH => {
                let (Some(&n), Some(&l)) = (b.get(off), b.get(off + 1)) else {
                    return (None, None);
                };
                nh = n;
                off += (usize::from(l) + 2) * 4;
            }
            other => return (Some(other), None),
        }
    }
    (None, None)
}

/// tcpdump's name of an ICMPv6 type.
fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        138 => "router renumbering",
        139 => "node information query",
        140 => "node information reply",
        141 => "inverse neighbor solicitation",
        142 => "inverse neighbor advertisement",
        143 => "multicast listener report v2",
        144 => "ha discovery request",
        145 => "ha discovery reply",
        146 => "mobile router solicitation",
        147 => "mobile router advertisement",
        155 => "RPL",
        200 => "mtrace response",
        201 => "mtrace message",
        _ => return None,
    })
}

/// The marker tcpdump ends a cut ICMPv6 message with.
const CUT: &str = " [|icmp6]";

/// The ICMPv6 part of the line, in the words of `tcpdump -n`.
pub(super) fn fmt_icmp6(m: &Icmp6, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if m.len == 0 {
        return f.write_str("ICMP6, length 0 (invalid)");
    }
    match type_name(m.icmp_type) {
        Some(name) => write!(f, "ICMP6, {name}")?,
        None => write!(f, "ICMP6, unknown icmp6 type ({})", m.icmp_type)?,
    }
    if m.captured < 2 {
        return f.write_str(CUT);
    }
    let done = match m.icmp_type {
        Icmp6::DEST_UNREACHABLE => fmt_unreachable(m, f)?,
        Icmp6::PACKET_TOO_BIG => or_cut(f, m.mtu.map(|v| format!(", mtu {v}")))?,
        Icmp6::TIME_EXCEEDED => match (m.code, m.quote) {
            (0, Some(q)) => write!(f, " for {}", q.dst).map(|_| false)?,
            (0, None) => f.write_str(CUT).map(|_| true)?,
            (1, _) => f.write_str(" (reassembly)").map(|_| false)?,
            (c, _) => write!(f, ", unknown code ({c})").map(|_| false)?,
        },
        Icmp6::PARAMETER_PROBLEM => fmt_param_problem(m, f)?,
        Icmp6::ECHO_REQUEST | Icmp6::ECHO_REPLY => {
            or_cut(f, m.echo.map(|e| format!(", id {}, seq {}", e.id, e.seq)))?
        }
        Icmp6::MLD_QUERY => fmt_mld_query(m, f)?,
        Icmp6::MLD_REPORT | Icmp6::MLD_DONE => {
            // tcpdump writes no space here, and nothing at all when cut short.
            if let (Some(d), Some(g), true) = (m.max_resp_delay, m.group, m.captured >= 24) {
                write!(f, "max resp delay: {d} addr: {g}")?;
            }
            false
        }
        Icmp6::NEIGHBOR_SOLICITATION => or_cut(f, m.target.map(|t| format!(", who has {t}")))?,
        Icmp6::NEIGHBOR_ADVERTISEMENT => or_cut(f, m.target.map(|t| format!(", tgt is {t}")))?,
        Icmp6::REDIRECT => match (m.redirect_dst, m.target) {
            (Some(d), Some(t)) => write!(f, ", {d} to {t}").map(|_| false)?,
            _ => f.write_str(CUT).map(|_| true)?,
        },
        Icmp6::MLD2_REPORT => {
            if m.len < 8 {
                write!(f, " [invalid len {}]", m.len)?;
                false
            } else {
                or_cut(f, m.records.map(|n| format!(", {n} group record(s)")))?
            }
        }
        144 | 146 => or_cut(f, m.ident.map(|v| format!(", id 0x{v:04x}")))?,
        133 | 134 | 141 | 142 | 145 | 147 => false,
        // Unknown types and the ones tcpdump decodes further print their
        // length (tcpdump adds a hex dump on the next lines).
        _ => false,
    };
    if done {
        return Ok(());
    }
    write!(f, ", length {}", m.len)
}

/// Writes `text` and returns false, or the cut marker and true when the
/// field it shows was not captured.
fn or_cut(f: &mut fmt::Formatter<'_>, text: Option<String>) -> Result<bool, fmt::Error> {
    match text {
        Some(t) => f.write_str(&t).map(|_| false),
        None => f.write_str(CUT).map(|_| true),
    }
}

/// A destination unreachable, by code; true when the line ends here.
fn fmt_unreachable(m: &Icmp6, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
    let what = match m.code {
        0 => "unreachable route",
        1 => " unreachable prohibited",
        2 => "beyond scope",
        3 => "unreachable address",
        4 => "unreachable port",
        c => {
            // tcpdump follows this with a hex dump of the message, and no length.
            write!(f, ", unknown unreach code ({c})")?;
            return Ok(true);
        }
    };
    write!(f, ", {what}")?;
    let Some(q) = m.quote else {
        return f.write_str(CUT).map(|_| true);
    };
    match m.code {
        2 => write!(f, " {}, source address {}", q.dst, q.src)?,
        4 => match (q.proto, q.dst_port) {
            (Some(IPPROTO_TCP), Some(port)) => write!(f, ", {} tcp port {port}", q.dst)?,
            (Some(IPPROTO_UDP), Some(port)) => write!(f, ", {} udp port {port}", q.dst)?,
            _ => return f.write_str(CUT).map(|_| true),
        },
        _ => write!(f, " {}", q.dst)?,
    }
    Ok(false)
}

/// A parameter problem, by code; true when the line ends here.
fn fmt_param_problem(m: &Icmp6, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
    let (Some(ptr), Some(_)) = (m.pointer, m.quote) else {
        return f.write_str(CUT).map(|_| true);
    };
    match m.code {
        0 => write!(f, ", erroneous - octet {ptr}")?,
        1 => write!(f, ", next header - octet {ptr}")?,
        2 => write!(f, ", option - octet {ptr}")?,
        3 => write!(f, ", incomplete header chain - octet {ptr}")?,
        c => write!(f, ", code-#{c}")?,
    }
    Ok(false)
}

/// A multicast listener query: MLDv1 (24 bytes) or MLDv2 (28 and more).
fn fmt_mld_query(m: &Icmp6, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
    if m.len == 24 {
        if let (Some(d), Some(g), true) = (m.max_resp_delay, m.group, m.captured >= 24) {
            write!(f, "max resp delay: {d} addr: {g}")?;
        }
        return Ok(false);
    }
    if m.len < 28 {
        write!(f, " unknown-version (len {}) ", m.len)?;
        return Ok(false);
    }
    f.write_str(" v2")?;
    let (Some(_), Some(g)) = (m.max_resp_delay, m.group) else {
        return f.write_str(CUT).map(|_| true);
    };
    write!(f, " [gaddr {g}")?;
    let Some(n) = m.sources else {
        return f.write_str(CUT).map(|_| true);
    };
    if n > 0 {
        if m.len < 28 + usize::from(n) * 16 {
            f.write_str(" [invalid number of sources]")?;
        } else {
            write!(f, ", {n} source(s)")?;
        }
    }
    f.write_str("]")?;
    Ok(false)
}
