//! A small filter on the IPv4 frames of a link, for "drop the next N frames that match":
//! `any`, `tcp`, `udp` or `icmp`, optionally `port N` (source or destination, as tcpdump's
//! `port`) and `data` (TCP segments that carry payload, so a SYN or a bare ACK does not match).
//!
//! Text form, words in any order, each at most once: `tcp`, `udp port 53`, `tcp port 5001 data`,
//! `port 80` (TCP or UDP), `data` (the same as `tcp data`). Frames that are not IPv4 (ARP) never
//! match; a fragment after the first matches only a filter without port and data, since it has
//! no transport header.

use std::fmt;

use crate::error::{Error, Result};

/// The protocol a [`PacketFilter`] asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Every IPv4 packet (with `port`: TCP or UDP).
    #[default]
    Any,
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// ICMP (IP protocol 1).
    Icmp,
}

impl Protocol {
    fn word(self) -> &'static str {
        match self {
            Protocol::Any => "any",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// Which frames a rule applies to. Built by [`PacketFilter::parse`]; serialized as its text form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PacketFilter {
    /// The IP protocol.
    pub protocol: Protocol,
    /// A TCP or UDP port, matching the source or the destination port.
    pub port: Option<u16>,
    /// Only TCP segments with payload.
    pub data: bool,
}

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

fn filter_error(text: &str, why: &str) -> Error {
    Error::Usage(format!(
        "filter '{text}' {why}: write any, tcp, udp or icmp, then optionally port N and (tcp) data, \
         like 'tcp port 5001 data'"
    ))
}

impl PacketFilter {
    /// Parses the text form (see the module documentation); words are case-insensitive.
    pub fn parse(text: &str) -> Result<PacketFilter> {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Err(filter_error(text, "is empty"));
        }
        let mut protocol: Option<Protocol> = None;
        let mut port: Option<u16> = None;
        let mut data = false;
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            let proto = match w {
                "any" => Some(Protocol::Any),
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                "icmp" => Some(Protocol::Icmp),
                _ => None,
            };
            if let Some(p) = proto {
                if protocol.is_some() {
                    return Err(filter_error(text, "names more than one protocol"));
                }
                protocol = Some(p);
            } else if w == "port" {
                if port.is_some() {
                    return Err(filter_error(text, "names port twice"));
                }
                let Some(n) = words.get(i + 1) else {
                    return Err(filter_error(text, "has port without a number"));
                };
                port = Some(n.parse::<u16>().map_err(|_| {
                    filter_error(text, &format!("has port '{n}', not a number in 0..=65535"))
                })?);
                i += 1;
            } else if w == "data" {
                if data {
                    return Err(filter_error(text, "names data twice"));
                }
                data = true;
            } else {
                return Err(filter_error(text, &format!("has an unknown word '{w}'")));
            }
            i += 1;
        }
        let protocol = match (protocol, data) {
            (None, true) => Protocol::Tcp,
            (Some(p), _) => p,
            (None, false) => Protocol::Any,
        };
        if data && protocol != Protocol::Tcp {
            return Err(filter_error(text, "has data, which applies to tcp only"));
        }
        if port.is_some() && protocol == Protocol::Icmp {
            return Err(filter_error(text, "has a port, which icmp does not have"));
        }
        Ok(PacketFilter {
            protocol,
            port,
            data,
        })
    }

    /// Whether the Ethernet frame `frame` (destination, source, ethertype, then the packet) is
    /// an IPv4 packet this filter selects. Truncated or malformed frames do not match.
    pub fn matches(&self, frame: &[u8]) -> bool {
        let Some(ip) = Ipv4View::of_frame(frame) else {
            return false;
        };
        let proto_ok = match self.protocol {
            Protocol::Any if self.port.is_some() => {
                ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP
            }
            Protocol::Any => true,
            Protocol::Tcp => ip.protocol == IPPROTO_TCP,
            Protocol::Udp => ip.protocol == IPPROTO_UDP,
            Protocol::Icmp => ip.protocol == IPPROTO_ICMP,
        };
        if !proto_ok {
            return false;
        }
        if self.port.is_none() && !self.data {
            return true;
        }
        if ip.fragment_offset != 0 {
            return false;
        }
        let l4 = ip.payload;
        if let Some(port) = self.port {
            if l4.len() < 4 {
                return false;
            }
            let sport = u16::from_be_bytes([l4[0], l4[1]]);
            let dport = u16::from_be_bytes([l4[2], l4[3]]);
            if sport != port && dport != port {
                return false;
            }
        }
        if self.data {
            if l4.len() < 20 {
                return false;
            }
            let header = usize::from(l4[12] >> 4) * 4;
            return header >= 20 && l4.len() > header;
        }
        true
    }
}

/// The parts of an IPv4 packet inside an Ethernet frame that the conditions look at.
pub(crate) struct Ipv4View<'a> {
    /// The IP header length in bytes (20 without options).
    pub header_len: usize,
    /// The IP datagram's length by its header (without Ethernet padding).
    pub total_len: usize,
    /// The IP protocol number.
    pub protocol: u8,
    /// The fragment offset (0 for an unfragmented packet or a first fragment).
    pub fragment_offset: u16,
    /// The bytes after the IP header, up to the datagram's end.
    pub payload: &'a [u8],
}

impl<'a> Ipv4View<'a> {
    /// The IPv4 packet of an Ethernet frame, or None for another ethertype or a malformed header.
    pub fn of_frame(frame: &'a [u8]) -> Option<Ipv4View<'a>> {
        if frame.len() < ETH_HEADER + 20 {
            return None;
        }
        if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = &frame[ETH_HEADER..];
        if ip[0] >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(ip[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if header_len < 20 || total_len < header_len || ip.len() < header_len {
            return None;
        }
        let end = total_len.min(ip.len());
        Some(Ipv4View {
            header_len,
            total_len,
            protocol: ip[9],
            fragment_offset: u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff,
            payload: &ip[header_len..end],
        })
    }
}

impl fmt::Display for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        if self.protocol != Protocol::Any || self.port.is_none() {
            words.push(self.protocol.word().to_string());
        }
        if let Some(p) = self.port {
            words.push(format!("port {p}"));
        }
        if self.data {
            words.push("data".to_string());
        }
        f.write_str(&words.join(" "))
    }
}

impl std::str::FromStr for PacketFilter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PacketFilter::parse(s)
    }
}

impl TryFrom<String> for PacketFilter {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        PacketFilter::parse(&s)
    }
}

impl From<PacketFilter> for String {
    fn from(f: PacketFilter) -> String {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::test_frames::{arp, ping, tcp, udp};

    fn f(text: &str) -> PacketFilter {
        PacketFilter::parse(text).unwrap()
    }

    fn err(text: &str) -> String {
        match PacketFilter::parse(text) {
            Err(Error::Usage(m)) => m,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn the_text_form_parses_into_its_parts() {
        assert_eq!(f("any"), PacketFilter::default());
        assert_eq!(f("tcp").protocol, Protocol::Tcp);
        assert_eq!(
            f("tcp port 5001 data"),
            PacketFilter {
                protocol: Protocol::Tcp,
                port: Some(5001),
                data: true
            }
        );
        assert_eq!(f("  DATA  port 80 TCP "), f("tcp port 80 data"));
        assert_eq!(f("data"), f("tcp data"));
        assert_eq!(f("udp port 53").port, Some(53));
        assert_eq!(f("port 80").protocol, Protocol::Any);
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for text in [
            "any",
            "tcp",
            "udp port 53",
            "icmp",
            "tcp port 5001 data",
            "port 80",
            "tcp data",
        ] {
            assert_eq!(f(text).to_string(), text);
            assert_eq!(f(&f(text).to_string()), f(text));
        }
        assert_eq!(f("data").to_string(), "tcp data");
        assert_eq!(f("any port 7").to_string(), "port 7");
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        assert!(err("").contains("filter '' is empty"), "{}", err(""));
        assert!(err("tcp udp").contains("more than one protocol"));
        assert!(err("port").contains("port without a number"));
        assert!(err("port x").contains("port 'x'"));
        assert!(err("port 70000").contains("port '70000'"));
        assert!(err("port -1").contains("port '-1'"));
        assert!(err("port 1 port 2").contains("port twice"));
        assert!(err("udp data").contains("tcp only"));
        assert!(err("icmp port 5").contains("icmp does not have"));
        assert!(err("tcp data data").contains("data twice"));
        assert!(err("tcp syn").contains("unknown word 'syn'"));
        for m in [err(""), err("tcp syn")] {
            assert!(!m.contains('\n') && !m.ends_with('.'), "{m}");
            assert!(m.contains("tcp port 5001 data"), "{m}");
        }
    }

    #[test]
    fn protocols_match_their_packets_only() {
        let syn = tcp(1025, 5001, 0x02, b"");
        let dns = udp(1026, 53, b"query");
        let echo = ping(84);
        assert!(f("any").matches(&syn) && f("any").matches(&dns) && f("any").matches(&echo));
        assert!(f("tcp").matches(&syn) && !f("tcp").matches(&dns) && !f("tcp").matches(&echo));
        assert!(!f("udp").matches(&syn) && f("udp").matches(&dns) && !f("udp").matches(&echo));
        assert!(!f("icmp").matches(&syn) && !f("icmp").matches(&dns) && f("icmp").matches(&echo));
        // Not IPv4: never.
        assert!(!f("any").matches(&arp()));
    }

    #[test]
    fn port_matches_the_source_or_the_destination() {
        assert!(f("tcp port 5001").matches(&tcp(1025, 5001, 0x10, b"")));
        assert!(f("tcp port 5001").matches(&tcp(5001, 1025, 0x10, b"")));
        assert!(!f("tcp port 5001").matches(&tcp(1025, 5002, 0x10, b"")));
        assert!(f("port 53").matches(&udp(1026, 53, b"")));
        assert!(f("port 53").matches(&tcp(53, 1026, 0x10, b"")));
        assert!(!f("port 53").matches(&ping(84)));
        assert!(!f("udp port 53").matches(&tcp(53, 1026, 0x10, b"")));
    }

    #[test]
    fn data_matches_segments_with_payload_only() {
        let data = f("tcp data");
        assert!(
            !data.matches(&tcp(1025, 5001, 0x02, b"")),
            "a SYN has no data"
        );
        assert!(!data.matches(&tcp(1025, 5001, 0x12, b"")), "nor a SYN/ACK");
        assert!(!data.matches(&tcp(1025, 5001, 0x10, b"")), "nor a bare ACK");
        assert!(data.matches(&tcp(1025, 5001, 0x18, b"hello")));
        assert!(!data.matches(&udp(1025, 5001, b"hello")));
        // Ethernet padding after a bare ACK is not payload.
        let mut padded = tcp(1025, 5001, 0x10, b"");
        padded.resize(60, 0);
        assert!(!data.matches(&padded));
    }

    #[test]
    fn later_fragments_and_broken_frames_match_only_what_needs_no_transport_header() {
        let mut frag = tcp(1025, 5001, 0x18, b"hello");
        frag[14 + 6] = 0x00;
        frag[14 + 7] = 0x10; // fragment offset 16 (x 8 bytes)
        assert!(f("tcp").matches(&frag));
        assert!(!f("tcp port 5001").matches(&frag));
        assert!(!f("tcp data").matches(&frag));
        let full = tcp(1025, 5001, 0x18, b"hello");
        for cut in 0..full.len() {
            // Truncated frames never panic; a frame cut inside the headers never matches.
            let m = f("tcp port 5001 data").matches(&full[..cut]);
            if cut < 14 + 20 + 20 {
                assert!(!m, "cut at {cut}");
            }
        }
        let mut bad_ihl = full.clone();
        bad_ihl[14] = 0x44;
        assert!(!f("any").matches(&bad_ihl));
        let mut v6 = full;
        v6[14] = 0x65;
        assert!(!f("any").matches(&v6));
    }

    #[test]
    fn serde_uses_the_text_form() {
        let json = serde_json::to_string(&f("tcp port 5001 data")).unwrap();
        assert_eq!(json, "\"tcp port 5001 data\"");
        let back: PacketFilter = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f("tcp port 5001 data"));
        assert!(serde_json::from_str::<PacketFilter>("\"udp data\"").is_err());
    }
}
