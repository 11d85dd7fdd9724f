//! IPv6: the fixed header and the extension headers a lab meets (hop-by-hop
//! options with the router alert of MLD, destination options, routing,
//! fragment), walked in order to the upper-layer protocol.

use std::fmt;
use std::net::Ipv6Addr;

use super::{
    IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_NONE, IPPROTO_ROUTING, Layer,
    Packet, be16, be32, decode_ip_payload, fmt_ip_payload, ip6_at,
};

/// Most extension headers kept in an [`Ipv6`]; a longer chain is cut there.
const MAX_EXT_HEADERS: usize = 6;
/// Most addresses of a routing header kept (the rest are not printed).
const MAX_ROUTING_ADDRS: usize = 4;
/// What tcpdump says of a hop-by-hop header in a datagram of payload length 0.
const NO_JUMBO: &str = "[No valid Jumbo Payload Hop-by-Hop option found]";
/// Option type of the router alert (hop-by-hop, RFC 2711).
const OPT_ROUTER_ALERT: u8 = 5;

/// A routing extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Routing {
    /// Routing type (0 deprecated source route, 2 mobile IPv6, 4 segment routing...).
    pub routing_type: u8,
    /// Segments left.
    pub segments_left: u8,
    /// The header's length field (8-byte units after the first 8).
    pub len: u8,
    /// Bytes of the header in the frame (less than its size when cut short).
    pub captured: usize,
    /// The first addresses of a type 0 or 2 header, as far as captured.
    pub addresses: [Ipv6Addr; MAX_ROUTING_ADDRS],
    /// How many of `addresses` are filled.
    pub address_count: u8,
}

/// A fragment extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Fragment {
    /// Offset of the fragment's data in the original datagram, in bytes.
    pub offset: u16,
    /// The M (more fragments) flag.
    pub more_fragments: bool,
    /// Identification (0 when cut short before it).
    pub id: u32,
    /// Fragment data length from the IPv6 payload length (tcpdump's `frag (off|len)`).
    pub len: u32,
}

/// One extension header of an IPv6 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6Ext {
    /// Hop-by-hop options; `router_alert` is the value of a router alert
    /// option (0 for MLD), if the header has one.
    HopByHop {
        /// Value of the router alert option.
        router_alert: Option<u16>,
    },
    /// Destination options.
    DestOptions,
    /// Routing header.
    Routing(Ipv6Routing),
    /// Fragment header.
    Fragment(Ipv6Fragment),
}

/// An IPv6 header and the extension headers after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6 {
    /// Version field (6 unless the packet is garbled).
    pub version: u8,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label.
    pub flow_label: u32,
    /// Hop limit.
    pub hop_limit: u8,
    /// Next header field of the fixed header.
    pub next_header: u8,
    /// Payload length field (extension headers included).
    pub payload_len: u16,
    exts: [Option<Ipv6Ext>; MAX_EXT_HEADERS],
    /// The protocol after the extension headers (ICMPv6 58, TCP 6, UDP 17...);
    /// `None` when the chain is cut short, ends in a later fragment or is garbled.
    pub upper_proto: Option<u8>,
    /// Length of the upper-layer data, from the payload length.
    pub upper_len: usize,
    /// Where the chain was found invalid, in tcpdump's words.
    invalid: Option<&'static str>,
    /// True when the line ends after the fragment header (a later fragment,
    /// or nothing captured after the header).
    ends_at_fragment: bool,
}

impl Ipv6 {
    /// The extension headers, in order.
    pub fn extensions(&self) -> impl Iterator<Item = &Ipv6Ext> {
        self.exts.iter().map_while(Option::as_ref)
    }

    /// The fragment header, if the datagram is a fragment.
    pub fn fragment(&self) -> Option<Ipv6Fragment> {
        self.extensions().find_map(|e| match e {
            Ipv6Ext::Fragment(f) => Some(*f),
            _ => None,
        })
    }

    /// The router alert value of a hop-by-hop header (MLD messages carry 0).
    pub fn router_alert(&self) -> Option<u16> {
        self.extensions().find_map(|e| match e {
            Ipv6Ext::HopByHop { router_alert } => *router_alert,
            _ => None,
        })
    }

    fn push(&mut self, e: Ipv6Ext) -> bool {
        match self.exts.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(e);
                true
            }
            None => false,
        }
    }
}

/// Reads an IPv6 header into `p.ipv6`, walks its extension headers and hands
/// the upper-layer data to the next layer.
pub(super) fn decode_ipv6(b: &[u8], p: &mut Packet) {
    let (Some(vtf), Some(plen), Some(&nh), Some(&hlim), Some(src), Some(dst)) = (
        be32(b, 0),
        be16(b, 4),
        b.get(6),
        b.get(7),
        ip6_at(b, 8),
        ip6_at(b, 24),
    ) else {
        p.truncated = Some(Layer::Ipv6);
        return;
    };
    let mut ip = Ipv6 {
        version: (vtf >> 28) as u8,
        src,
        dst,
        traffic_class: ((vtf >> 20) & 0xff) as u8,
        flow_label: vtf & 0x000f_ffff,
        hop_limit: hlim,
        next_header: nh,
        payload_len: plen,
        exts: [None; MAX_EXT_HEADERS],
        upper_proto: None,
        upper_len: 0,
        invalid: None,
        ends_at_fragment: false,
    };
    if ip.version != 6 {
        p.ipv6 = Some(ip);
        return;
    }
    // Ethernet padding past the datagram's end is not part of it. A payload
    // length of 0 (a jumbogram's) leaves what was captured, as tcpdump does.
    let end = if plen == 0 {
        b.len()
    } else {
        (40 + usize::from(plen)).min(b.len())
    };
    let payload = &b[40..end];
    let (off, layer) = walk_extensions(&mut ip, payload);
    p.ipv6 = Some(ip);
    if let Some(layer) = layer {
        p.truncated = Some(layer);
        return;
    }
    if let Some(proto) = ip.upper_proto {
        decode_ip_payload(proto, &payload[off..], ip.upper_len, p);
    }
}

/// Walks the extension headers at the start of `payload`, recording them in
/// `ip`; returns the offset of the upper-layer data and the header cut short, if any.
fn walk_extensions(ip: &mut Ipv6, payload: &[u8]) -> (usize, Option<Layer>) {
    let plen = usize::from(ip.payload_len);
    let mut nh = ip.next_header;
    let mut off = 0usize;
    loop {
        let rest = &payload[off..];
        let ext = match nh {
            IPPROTO_HOPOPTS | IPPROTO_DSTOPTS => {
                let layer = if nh == IPPROTO_HOPOPTS {
                    Layer::HopByHop
                } else {
                    Layer::DestOptions
                };
                if plen == 0 && nh == IPPROTO_HOPOPTS && rest.len() >= 2 {
                    ip.invalid = Some(NO_JUMBO);
                }
                let Some(len) = rest.get(1).map(|&l| (usize::from(l) + 1) * 8) else {
                    return (off, Some(layer));
                };
                let Some(hdr) = rest.get(..len) else {
                    return (off, Some(layer));
                };
                if nh == IPPROTO_HOPOPTS {
                    Ipv6Ext::HopByHop {
                        router_alert: router_alert(&hdr[2..]),
                    }
                } else {
                    Ipv6Ext::DestOptions
                }
            }
            IPPROTO_ROUTING => {
                if rest.is_empty() {
                    return (off, Some(Layer::Ipv6));
                }
                let r = decode_routing(rest);
                let complete = rest.len() >= (usize::from(r.len) + 1) * 8;
                if !ip.push(Ipv6Ext::Routing(r)) {
                    return (off, Some(Layer::Ipv6));
                }
                if !complete || rest.len() < 4 {
                    return (off, Some(Layer::Routing));
                }
                if routing_invalid(&r).is_some() {
                    ip.invalid = routing_invalid(&r);
                    return (off, None);
                }
                nh = rest[0];
                off += (usize::from(r.len) + 1) * 8;
                continue;
            }
            IPPROTO_FRAGMENT => {
                let Some(offlg) = be16(rest, 2) else {
                    return (off, Some(Layer::Fragment));
                };
                let frag = Ipv6Fragment {
                    offset: offlg & 0xfff8,
                    more_fragments: offlg & 1 != 0,
                    id: be32(rest, 4).unwrap_or(0),
                    len: (plen as u32).wrapping_sub(off as u32 + 8),
                };
                if !ip.push(Ipv6Ext::Fragment(frag)) {
                    return (off, Some(Layer::Ipv6));
                }
                // A later fragment, or one cut at its header's end, ends the line.
                if frag.offset != 0 || rest.len() <= 8 {
                    ip.ends_at_fragment = true;
                    let cut = (rest.len() < 8).then_some(Layer::Fragment);
                    return (off, cut);
                }
                nh = rest[0];
                off += 8;
                continue;
            }
            _ => {
                ip.upper_proto = Some(nh);
                ip.upper_len = if plen == 0 {
                    0
                } else {
                    plen.saturating_sub(off)
                };
                return (off, None);
            }
        };
        if !ip.push(ext) {
            return (off, Some(Layer::Ipv6));
        }
        if plen == 0 {
            // No jumbo payload option is decoded: an extension header in a
            // datagram announcing no payload is what tcpdump calls invalid.
            ip.invalid = Some(if matches!(ext, Ipv6Ext::HopByHop { .. }) {
                NO_JUMBO
            } else {
                ""
            });
            return (off, None);
        }
        nh = rest[0];
        off += (usize::from(rest[1]) + 1) * 8;
    }
}

/// The value of a router alert option among hop-by-hop options.
fn router_alert(mut opts: &[u8]) -> Option<u16> {
    while let Some((&t, rest)) = opts.split_first() {
        if t == 0 {
            opts = rest;
            continue;
        }
        let len = usize::from(*rest.first()?);
        let body = rest.get(1..1 + len)?;
        if t == OPT_ROUTER_ALERT && len == 2 {
            return Some(u16::from_be_bytes([body[0], body[1]]));
        }
        opts = &rest[1 + len..];
    }
    None
}

/// Reads a routing header as far as it was captured.
fn decode_routing(b: &[u8]) -> Ipv6Routing {
    let mut r = Ipv6Routing {
        routing_type: b.get(2).copied().unwrap_or(0),
        segments_left: b.get(3).copied().unwrap_or(0),
        len: b.get(1).copied().unwrap_or(0),
        captured: b
            .len()
            .min((usize::from(b.get(1).copied().unwrap_or(0)) + 1) * 8),
        addresses: [Ipv6Addr::UNSPECIFIED; MAX_ROUTING_ADDRS],
        address_count: 0,
    };
    if matches!(r.routing_type, 0 | 2) && r.len.is_multiple_of(2) && b.len() >= 8 {
        let n = usize::from(r.len / 2).min(MAX_ROUTING_ADDRS);
        for i in 0..n {
            let Some(a) = ip6_at(b, 8 + 16 * i) else {
                break;
            };
            r.addresses[i] = a;
            r.address_count += 1;
        }
    }
    r
}

/// Why tcpdump stops at a routing header: an unknown type or an odd length.
fn routing_invalid(r: &Ipv6Routing) -> Option<&'static str> {
    match r.routing_type {
        0 | 2 if r.len % 2 == 1 => Some("odd"),
        0 | 2 => None,
        _ => Some("unknown"),
    }
}

/// The line of an IPv6 datagram.
pub(super) fn fmt_ipv6(p: &Packet, ip: &Ipv6, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("IP6 ")?;
    if ip.version != 6 {
        return write!(f, "version error: {} != 6", ip.version);
    }
    let direct = ip.exts[0].is_none();
    let transport = matches!(ip.next_header, super::IPPROTO_TCP | super::IPPROTO_UDP);
    if !(direct && transport) {
        write!(f, "{} > {}: ", ip.src, ip.dst)?;
    }
    for e in ip.extensions() {
        match e {
            Ipv6Ext::HopByHop { .. } => f.write_str("HBH ")?,
            Ipv6Ext::DestOptions => f.write_str("DSTOPT ")?,
            Ipv6Ext::Fragment(fr) => {
                write!(f, "frag ({}|{})", fr.offset, fr.len)?;
                if fr.offset != 0 {
                    return Ok(());
                }
                f.write_str(" ")?;
                if ip.ends_at_fragment {
                    return Ok(());
                }
            }
            Ipv6Ext::Routing(r) => {
                if fmt_routing(r, f)? {
                    return Ok(());
                }
            }
        }
    }
    if let Some(l @ (Layer::HopByHop | Layer::DestOptions | Layer::Fragment)) = p.truncated {
        write!(f, " [|{}]", l.tcpdump_name())?;
        if ip.invalid == Some(NO_JUMBO) {
            write!(f, "{NO_JUMBO} (invalid)")?;
        }
        return Ok(());
    }
    if let Some(why) = ip.invalid {
        if why == "odd" || why == "unknown" {
            return Ok(());
        }
        if why.is_empty() {
            return f.write_str(" [|ip6]");
        }
        return write!(f, "{why} (invalid)");
    }
    if p.truncated == Some(Layer::Ipv6) {
        return f.write_str(" [|ip6]");
    }
    let Some(proto) = ip.upper_proto else {
        return Ok(());
    };
    if proto == IPPROTO_NONE {
        return f.write_str("no next header");
    }
    fmt_ip_payload(p, proto, ip.upper_len, direct, f)
}

/// A routing header in tcpdump's words; true when the line ends with it.
fn fmt_routing(r: &Ipv6Routing, f: &mut fmt::Formatter<'_>) -> Result<bool, fmt::Error> {
    f.write_str("RT6")?;
    let cut = |f: &mut fmt::Formatter<'_>| f.write_str(" [|rt6]").map(|_| true);
    if r.captured < 2 {
        return cut(f);
    }
    write!(f, " (len={}", r.len)?;
    if r.captured < 3 {
        return cut(f);
    }
    write!(f, ", type={}", r.routing_type)?;
    if r.routing_type == 0 {
        f.write_str(" [Deprecated]")?;
    }
    if r.captured < 4 {
        return cut(f);
    }
    write!(f, ", segleft={}", r.segments_left)?;
    match routing_invalid(r) {
        Some("odd") => return write!(f, " (invalid length {}) (invalid)", r.len).map(|_| true),
        Some(_) => return f.write_str(" (unknown type) (invalid)").map(|_| true),
        None => {}
    }
    if r.captured < 8 {
        return cut(f);
    }
    for (i, a) in r.addresses[..usize::from(r.address_count)]
        .iter()
        .enumerate()
    {
        write!(f, ", [{i}]{a}")?;
    }
    if usize::from(r.address_count) < usize::from(r.len / 2).min(MAX_ROUTING_ADDRS) {
        return cut(f);
    }
    f.write_str(") ")?;
    Ok(false)
}
