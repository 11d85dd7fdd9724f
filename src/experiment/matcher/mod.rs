//! Matching captured packets: a [`PacketMatch`] names the fields that must hold (protocol,
//! addresses, MACs, ARP, ICMP and what an ICMP error quotes, IGMP, IP header fields and
//! options, TCP flags, numbers and options, ports, payload), each number as a value, a range or
//! a relation to a packet matched earlier in the same sequence ([`expr`]); [`sequence`] finds
//! sequences (with backtracking) and counts.

pub mod expr;
mod fields;
pub mod sequence;

pub use expr::{AddrMatch, Bound, NumMatch, Seen};
pub use sequence::{count_matching, find_sequence};

use serde::Deserialize;
use std::fmt;
use std::net::Ipv4Addr;

/// What a packet must look like. Every field given must hold; absent fields match anything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketMatch {
    /// Name the matched packet, for later elements' relations (`"syn.seq + 1"`).
    #[serde(default)]
    pub bind: Option<String>,
    /// Only a packet seen on this interface of the capture.
    #[serde(default)]
    pub interface: Option<String>,
    /// Seconds since the previous element's packet.
    #[serde(default)]
    pub gap: Option<NumMatch>,
    /// `arp`, `ip`, `icmp`, `tcp`, `udp` or `igmp`.
    #[serde(default)]
    pub proto: Option<String>,
    /// ARP operation: `request` or `reply`.
    #[serde(default)]
    pub arp: Option<String>,
    /// IPv4 source.
    #[serde(default)]
    pub src: Option<AddrMatch>,
    /// IPv4 destination.
    #[serde(default)]
    pub dst: Option<AddrMatch>,
    /// ARP sender address.
    #[serde(default)]
    pub sender_ip: Option<Ipv4Addr>,
    /// ARP target address.
    #[serde(default)]
    pub target_ip: Option<Ipv4Addr>,
    /// ARP sender MAC (`aa:bb:...`).
    #[serde(default)]
    pub sender_mac: Option<String>,
    /// ARP target MAC.
    #[serde(default)]
    pub target_mac: Option<String>,
    /// Ethernet source MAC.
    #[serde(default)]
    pub eth_src: Option<String>,
    /// Ethernet destination MAC, or `broadcast`.
    #[serde(default)]
    pub eth_dst: Option<String>,
    /// The 802.1Q VLAN id the frame is tagged with (on a trunk).
    #[serde(default)]
    pub vlan: Option<u16>,
    /// An ICMP message by name (see [`ICMP_NAMES`]).
    #[serde(default)]
    pub icmp: Option<String>,
    /// ICMP type number.
    #[serde(default)]
    pub icmp_type: Option<u8>,
    /// ICMP code.
    #[serde(default)]
    pub icmp_code: Option<u8>,
    /// ICMP echo (or timestamp) sequence number.
    #[serde(default)]
    pub icmp_seq: Option<NumMatch>,
    /// ICMP echo (or timestamp) identifier.
    #[serde(default)]
    pub icmp_id: Option<NumMatch>,
    /// The gateway of an ICMP redirect.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// The next-hop MTU of a "fragmentation needed".
    #[serde(default)]
    pub next_hop_mtu: Option<NumMatch>,
    /// Source of the datagram an ICMP error quotes.
    #[serde(default)]
    pub quote_src: Option<Ipv4Addr>,
    /// Destination of the datagram an ICMP error quotes.
    #[serde(default)]
    pub quote_dst: Option<Ipv4Addr>,
    /// Protocol of the quoted datagram: `udp`, `tcp`, `icmp` or a number.
    #[serde(default)]
    pub quote_proto: Option<String>,
    /// Source port of the quoted datagram.
    #[serde(default)]
    pub quote_sport: Option<u16>,
    /// Destination port of the quoted datagram.
    #[serde(default)]
    pub quote_dport: Option<u16>,
    /// IP identification of the quoted datagram.
    #[serde(default)]
    pub quote_id: Option<NumMatch>,
    /// IGMP message: `query`, `report` or `leave`.
    #[serde(default)]
    pub igmp: Option<String>,
    /// IGMP type number.
    #[serde(default)]
    pub igmp_type: Option<NumMatch>,
    /// The group of an IGMP message.
    #[serde(default)]
    pub igmp_group: Option<Ipv4Addr>,
    /// IP time to live.
    #[serde(default)]
    pub ttl: Option<NumMatch>,
    /// IP identification.
    #[serde(default)]
    pub ip_id: Option<NumMatch>,
    /// IP total length.
    #[serde(default)]
    pub ip_len: Option<NumMatch>,
    /// IP type of service byte.
    #[serde(default)]
    pub tos: Option<NumMatch>,
    /// An IP option present: `rr`, `lsrr`, `ssrr` or `ts`.
    #[serde(default)]
    pub ip_options: Option<String>,
    /// Addresses the record-route option must hold.
    #[serde(default)]
    pub rr_includes: Option<Vec<Ipv4Addr>>,
    /// How many addresses the record-route option holds.
    #[serde(default)]
    pub rr_count: Option<NumMatch>,
    /// An IP fragment (MF set or offset > 0).
    #[serde(default)]
    pub fragment: Option<bool>,
    /// IP "more fragments" flag.
    #[serde(default)]
    pub more_fragments: Option<bool>,
    /// IP fragment offset in bytes.
    #[serde(default)]
    pub frag_offset: Option<NumMatch>,
    /// IP "don't fragment" flag.
    #[serde(default)]
    pub dont_fragment: Option<bool>,
    /// TCP flags exactly, among S A F R P (e.g. `S`, `SA`, `FA`, `RA`); P is ignored unless given.
    #[serde(default)]
    pub flags: Option<String>,
    /// TCP flags that must be set (others may be too).
    #[serde(default)]
    pub flags_include: Option<String>,
    /// TCP sequence number.
    #[serde(default)]
    pub seq: Option<NumMatch>,
    /// TCP acknowledgment number.
    #[serde(default)]
    pub ack: Option<NumMatch>,
    /// TCP window field (not scaled).
    #[serde(default)]
    pub window: Option<NumMatch>,
    /// TCP MSS option.
    #[serde(default)]
    pub mss: Option<NumMatch>,
    /// TCP window-scale option.
    #[serde(default)]
    pub wscale: Option<NumMatch>,
    /// TCP SACK-permitted option present (or absent).
    #[serde(default)]
    pub sack_ok: Option<bool>,
    /// TCP timestamps option present (or absent).
    #[serde(default)]
    pub timestamps: Option<bool>,
    /// TSval of the TCP timestamps option.
    #[serde(default)]
    pub tsval: Option<NumMatch>,
    /// TSecr of the TCP timestamps option.
    #[serde(default)]
    pub tsecr: Option<NumMatch>,
    /// TCP/UDP source port.
    #[serde(default)]
    pub sport: Option<NumMatch>,
    /// TCP/UDP destination port.
    #[serde(default)]
    pub dport: Option<NumMatch>,
    /// TCP/UDP payload bytes.
    #[serde(default)]
    pub len: Option<NumMatch>,
    /// At least this many bytes of TCP/UDP payload.
    #[serde(default)]
    pub min_payload: Option<usize>,
}

/// The ICMP messages `icmp` may name.
pub const ICMP_NAMES: &[&str] = &[
    "echo-request",
    "echo-reply",
    "time-exceeded",
    "unreachable",
    "net-unreachable",
    "host-unreachable",
    "port-unreachable",
    "frag-needed",
    "redirect",
    "source-quench",
    "timestamp-request",
    "timestamp-reply",
    "mask-request",
    "mask-reply",
    "parameter-problem",
];

pub(crate) fn flag_bits(s: &str) -> Option<u8> {
    use crate::capture::decode::TcpFlags;
    let mut b = 0u8;
    for c in s.chars() {
        b |= match c.to_ascii_uppercase() {
            'S' => TcpFlags::SYN.0,
            'A' => TcpFlags::ACK.0,
            'F' => TcpFlags::FIN.0,
            'R' => TcpFlags::RST.0,
            'P' => TcpFlags::PSH.0,
            'U' => TcpFlags::URG.0,
            '.' => TcpFlags::ACK.0,
            _ => return None,
        };
    }
    Some(b)
}

fn is_mac(m: &str) -> bool {
    m.split(':').count() == 6
        && m.split(':')
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

impl PacketMatch {
    /// Check the values of the fields that take names, so that a typo is an input error rather
    /// than a check that can never pass.
    pub fn validate(&self) -> Result<(), String> {
        let one_of = |field: &str, v: &Option<String>, allowed: &[&str]| match v {
            Some(x) if !allowed.contains(&x.as_str()) => Err(format!(
                "{field} = \"{x}\" is not one of {}",
                allowed.join(", ")
            )),
            _ => Ok(()),
        };
        one_of(
            "proto",
            &self.proto,
            &["arp", "ip", "icmp", "tcp", "udp", "igmp"],
        )?;
        one_of("arp", &self.arp, &["request", "reply"])?;
        one_of("icmp", &self.icmp, ICMP_NAMES)?;
        one_of("igmp", &self.igmp, &["query", "report", "leave"])?;
        one_of(
            "ip_options",
            &self.ip_options,
            &["rr", "lsrr", "ssrr", "ts"],
        )?;
        if let Some(q) = &self.quote_proto
            && !["udp", "tcp", "icmp"].contains(&q.as_str())
            && q.parse::<u8>().is_err()
        {
            return Err(format!(
                "quote_proto = \"{q}\" is not udp, tcp, icmp or a protocol number"
            ));
        }
        for (field, v) in [
            ("flags", &self.flags),
            ("flags_include", &self.flags_include),
        ] {
            if let Some(f) = v
                && (f.is_empty() || flag_bits(f).is_none() || f.contains(['U', 'u']))
            {
                return Err(format!(
                    "{field} = \"{f}\": use the letters S A F R P (e.g. \"SA\")"
                ));
            }
        }
        for (field, v) in [
            ("sender_mac", &self.sender_mac),
            ("target_mac", &self.target_mac),
            ("eth_src", &self.eth_src),
            ("eth_dst", &self.eth_dst),
        ] {
            if let Some(m) = v {
                let template = m.starts_with('{') && m.ends_with('}');
                let broadcast = m == "broadcast";
                if !is_mac(m) && !template && !broadcast {
                    return Err(format!(
                        "{field} = \"{m}\" is not a MAC address like 02:42:ac:11:00:02"
                    ));
                }
            }
        }
        if let Some(b) = &self.bind
            && (b == "prev"
                || b.is_empty()
                || !b.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(format!(
                "bind = \"{b}\": name the packet with letters, digits and '_' (not `prev`)"
            ));
        }
        Ok(())
    }

    /// The packet names its relations refer to (each must be bound by an earlier element).
    pub fn references(&self) -> Vec<&str> {
        let nums = [
            &self.gap,
            &self.icmp_seq,
            &self.icmp_id,
            &self.next_hop_mtu,
            &self.quote_id,
            &self.igmp_type,
            &self.ttl,
            &self.ip_id,
            &self.ip_len,
            &self.tos,
            &self.rr_count,
            &self.frag_offset,
            &self.seq,
            &self.ack,
            &self.window,
            &self.mss,
            &self.wscale,
            &self.tsval,
            &self.tsecr,
            &self.sport,
            &self.dport,
            &self.len,
        ];
        let mut out: Vec<&str> = nums
            .iter()
            .filter_map(|n| n.as_ref().and_then(NumMatch::refers_to))
            .collect();
        out.extend(
            [&self.src, &self.dst]
                .iter()
                .filter_map(|a| a.as_ref().and_then(AddrMatch::refers_to)),
        );
        out
    }

    /// Whether `p` matches on its own (no relations to other packets hold).
    pub fn matches(&self, p: &crate::capture::decode::Packet) -> bool {
        let seen = Seen {
            iface: "",
            ts: 0,
            packet: p,
        };
        self.matches_seen(&seen, &Bound::default())
    }

    /// Whether `s` matches, given the packets named so far in its sequence: every layer the
    /// match names holds.
    pub fn matches_seen(&self, s: &Seen, b: &Bound) -> bool {
        let p = s.packet;
        self.interface.as_deref().is_none_or(|i| i == s.iface)
            && self.gap_holds(s, b)
            && fields::proto(self, p)
            && fields::arp(self, p)
            && fields::ethernet(self, p)
            && fields::ip(self, s, b)
            && fields::icmp(self, s, b)
            && fields::igmp(self, s, b)
            && fields::tcp(self, s, b)
            && fields::ports_and_payload(self, s, b)
    }

    fn gap_holds(&self, s: &Seen, b: &Bound) -> bool {
        let Some(g) = &self.gap else { return true };
        let Some(prev) = b.get("prev") else {
            return false;
        };
        let gap = (s.ts as f64 - prev.ts as f64) / 1e9;
        g.holds("gap", gap, b)
    }
}

impl fmt::Display for PacketMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        macro_rules! fields {
            ($($name:ident),*) => {
                $(if let Some(v) = &self.$name {
                    parts.push(format!("{}={}", stringify!($name), v));
                })*
            };
        }
        fields!(
            bind,
            interface,
            gap,
            proto,
            arp,
            src,
            dst,
            sender_ip,
            target_ip,
            sender_mac,
            target_mac,
            eth_src,
            eth_dst,
            vlan,
            icmp,
            icmp_type,
            icmp_code,
            icmp_seq,
            icmp_id,
            gateway,
            next_hop_mtu,
            quote_src,
            quote_dst,
            quote_proto,
            quote_sport,
            quote_dport,
            quote_id,
            igmp,
            igmp_type,
            igmp_group,
            ttl,
            ip_id,
            ip_len,
            tos,
            ip_options,
            rr_count,
            fragment,
            more_fragments,
            frag_offset,
            dont_fragment,
            flags,
            flags_include,
            seq,
            ack,
            window,
            mss,
            wscale,
            sack_ok,
            timestamps,
            tsval,
            tsecr,
            sport,
            dport,
            len,
            min_payload
        );
        if let Some(r) = &self.rr_includes {
            let list: Vec<String> = r.iter().map(ToString::to_string).collect();
            parts.push(format!("rr_includes=[{}]", list.join(",")));
        }
        write!(
            f,
            "{}",
            if parts.is_empty() {
                "any packet".to_string()
            } else {
                parts.join(" ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::decode::decode;

    fn frame_tcp(flags: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12] = 0x08;
        f[13] = 0x00;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        let tot = (20 + 20 + payload) as u16;
        ip[2..4].copy_from_slice(&tot.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[140, 252, 13, 35]);
        ip[16..20].copy_from_slice(&[140, 252, 13, 34]);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&1234u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&7777u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        f
    }

    #[test]
    fn tcp_flags_match_exactly_or_inclusively() {
        let syn = decode(&frame_tcp(0x02, 0));
        let synack = decode(&frame_tcp(0x12, 0));
        let data = decode(&frame_tcp(0x18, 5));
        let m = |s: &str| PacketMatch {
            flags: Some(s.into()),
            ..Default::default()
        };
        assert!(m("S").matches(&syn));
        assert!(!m("S").matches(&synack), "exact: SYN-ACK is not a bare SYN");
        assert!(m("SA").matches(&synack));
        assert!(m("A").matches(&data), "PSH ignored unless asked for");
        assert!(!m("AP").matches(&synack));
        let inc = PacketMatch {
            flags_include: Some("S".into()),
            ..Default::default()
        };
        assert!(inc.matches(&synack) && inc.matches(&syn) && !inc.matches(&data));
        let pay = PacketMatch {
            min_payload: Some(1),
            dport: Some(NumMatch::exactly(7777.0)),
            src: Some("140.252.13.35".parse().unwrap()),
            ..Default::default()
        };
        assert!(pay.matches(&data) && !pay.matches(&syn));
        let wrong = PacketMatch {
            dst: Some("140.252.13.33".parse().unwrap()),
            ..Default::default()
        };
        assert!(!wrong.matches(&syn));
    }

    fn frame_arp(op: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        let a = &mut f[14..];
        a[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 0]);
        a[6..8].copy_from_slice(&op.to_be_bytes());
        a[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        a[14..18].copy_from_slice(&[140, 252, 1, 11]);
        a[24..28].copy_from_slice(&[140, 252, 1, 29]);
        f
    }

    #[test]
    fn each_layer_named_must_be_there_and_hold() {
        let request = decode(&frame_arp(1));
        let reply = decode(&frame_arp(2));
        let syn = decode(&frame_tcp(0x02, 0));
        let m = |f: fn(&mut PacketMatch)| {
            let mut m = PacketMatch::default();
            f(&mut m);
            m
        };
        let arp_request = m(|m| {
            m.arp = Some("request".into());
            m.target_ip = Some("140.252.1.29".parse().unwrap());
            m.sender_mac = Some("02:00:00:00:00:01".into());
        });
        assert!(arp_request.matches(&request));
        assert!(!arp_request.matches(&reply), "a reply is not a request");
        assert!(!arp_request.matches(&syn), "no ARP layer");
        let eth = m(|m| m.eth_src = Some("02:00:00:00:00:01".into()));
        assert!(eth.matches(&request));
        let other_eth = m(|m| m.eth_src = Some("02:00:00:00:00:02".into()));
        assert!(!other_eth.matches(&request));
        assert!(m(|m| m.proto = Some("arp".into())).matches(&reply));
        assert!(!m(|m| m.proto = Some("udp".into())).matches(&syn));
        assert!(m(|m| m.proto = Some("tcp".into())).matches(&syn));
        assert!(!m(|m| m.icmp_type = Some(8)).matches(&syn), "no ICMP layer");
        assert!(
            !m(|m| m.sport = Some(NumMatch::exactly(1234.0))).matches(&request),
            "no ports"
        );
        assert!(m(|m| m.sport = Some(NumMatch::exactly(1234.0))).matches(&syn));
        assert!(!m(|m| m.fragment = Some(true)).matches(&syn));
        assert!(m(|m| m.frag_offset = "0".parse().ok()).matches(&syn));
        assert!(!m(|m| m.frag_offset = ">0".parse().ok()).matches(&syn));
        assert!(!m(|m| m.src = Some("140.252.1.11".parse().unwrap())).matches(&request));
        assert!(
            PacketMatch::default().matches(&request),
            "nothing named: anything"
        );
    }

    #[test]
    fn typos_are_input_errors() {
        let bad = |m: PacketMatch| m.validate().expect_err("must be refused");
        assert!(
            bad(PacketMatch {
                proto: Some("TCP".into()),
                ..Default::default()
            })
            .contains("proto")
        );
        assert!(
            bad(PacketMatch {
                flags: Some("SYN".into()),
                ..Default::default()
            })
            .contains("flags")
        );
        assert!(
            bad(PacketMatch {
                icmp: Some("echo".into()),
                ..Default::default()
            })
            .contains("icmp")
        );
        assert!(
            bad(PacketMatch {
                sender_mac: Some("netb".into()),
                ..Default::default()
            })
            .contains("MAC")
        );
        assert!(
            PacketMatch {
                flags: Some("SA".into()),
                sender_mac: Some("{netb.eth1.mac}".into()),
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn sequences_are_ordered() {
        let (syn, synack) = (decode(&frame_tcp(0x02, 0)), decode(&frame_tcp(0x12, 0)));
        let seq = vec![
            PacketMatch {
                flags: Some("S".into()),
                ..Default::default()
            },
            PacketMatch {
                flags: Some("SA".into()),
                ..Default::default()
            },
        ];
        let seen = |p| Seen {
            iface: "eth0",
            ts: 0,
            packet: p,
        };
        assert_eq!(
            find_sequence(&seq, &[seen(&syn), seen(&synack)]),
            Ok(vec![0, 1])
        );
        assert_eq!(
            find_sequence(&seq, &[seen(&synack), seen(&syn)]),
            Err((1, 2))
        );
    }
}
