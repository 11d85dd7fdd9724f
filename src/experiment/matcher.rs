//! Matching captured packets: a [`PacketMatch`] names the fields that must hold (protocol,
//! addresses, ARP operation, ICMP type and code, TCP flags, ports, IP fragment fields).

use crate::capture::decode::{ArpOp, Icmp, Packet, TcpFlags};
use serde::Deserialize;
use std::fmt;
use std::net::Ipv4Addr;

/// What a packet must look like. Every field given must hold; absent fields match anything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketMatch {
    /// `arp`, `ip`, `icmp`, `tcp` or `udp`.
    #[serde(default)]
    pub proto: Option<String>,
    /// ARP operation: `request` or `reply`.
    #[serde(default)]
    pub arp: Option<String>,
    /// IPv4 source.
    #[serde(default)]
    pub src: Option<Ipv4Addr>,
    /// IPv4 destination.
    #[serde(default)]
    pub dst: Option<Ipv4Addr>,
    /// ARP sender address.
    #[serde(default)]
    pub sender_ip: Option<Ipv4Addr>,
    /// ARP target address.
    #[serde(default)]
    pub target_ip: Option<Ipv4Addr>,
    /// ARP sender MAC (`aa:bb:...`).
    #[serde(default)]
    pub sender_mac: Option<String>,
    /// Ethernet source MAC.
    #[serde(default)]
    pub eth_src: Option<String>,
    /// `echo-request`, `echo-reply`, `time-exceeded`, `unreachable`, `port-unreachable`.
    #[serde(default)]
    pub icmp: Option<String>,
    /// ICMP type number.
    #[serde(default)]
    pub icmp_type: Option<u8>,
    /// ICMP code.
    #[serde(default)]
    pub icmp_code: Option<u8>,
    /// ICMP echo sequence number.
    #[serde(default)]
    pub icmp_seq: Option<u16>,
    /// TCP flags exactly, among S A F R P (e.g. `S`, `SA`, `FA`, `RA`); P is ignored unless given.
    #[serde(default)]
    pub flags: Option<String>,
    /// TCP flags that must be set (others may be too).
    #[serde(default)]
    pub flags_include: Option<String>,
    /// TCP/UDP source port.
    #[serde(default)]
    pub sport: Option<u16>,
    /// TCP/UDP destination port.
    #[serde(default)]
    pub dport: Option<u16>,
    /// At least this many bytes of TCP/UDP payload.
    #[serde(default)]
    pub min_payload: Option<usize>,
    /// An IP fragment (MF set or offset > 0).
    #[serde(default)]
    pub fragment: Option<bool>,
    /// IP "more fragments" flag.
    #[serde(default)]
    pub more_fragments: Option<bool>,
    /// IP fragment offset in bytes: a number, or `>0`.
    #[serde(default)]
    pub frag_offset: Option<String>,
    /// IP "don't fragment" flag.
    #[serde(default)]
    pub dont_fragment: Option<bool>,
}

fn flag_bits(s: &str) -> Option<u8> {
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

fn icmp_kind(i: &Icmp, kind: &str) -> bool {
    match kind {
        "echo-request" => i.icmp_type == Icmp::ECHO_REQUEST,
        "echo-reply" => i.icmp_type == Icmp::ECHO_REPLY,
        "time-exceeded" => i.icmp_type == Icmp::TIME_EXCEEDED,
        "unreachable" => i.icmp_type == Icmp::DEST_UNREACHABLE,
        "port-unreachable" => {
            i.icmp_type == Icmp::DEST_UNREACHABLE && i.code == Icmp::CODE_PORT_UNREACHABLE
        }
        "frag-needed" => i.icmp_type == Icmp::DEST_UNREACHABLE && i.code == Icmp::CODE_FRAG_NEEDED,
        _ => false,
    }
}

fn same_mac(mac: &crate::capture::decode::MacAddr, s: &str) -> bool {
    mac.to_string().eq_ignore_ascii_case(s.trim())
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
        one_of("proto", &self.proto, &["arp", "ip", "icmp", "tcp", "udp"])?;
        one_of("arp", &self.arp, &["request", "reply"])?;
        one_of(
            "icmp",
            &self.icmp,
            &[
                "echo-request",
                "echo-reply",
                "time-exceeded",
                "unreachable",
                "port-unreachable",
                "frag-needed",
            ],
        )?;
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
        if let Some(off) = &self.frag_offset
            && off.trim() != ">0"
            && off.trim().parse::<u16>().is_err()
        {
            return Err(format!(
                "frag_offset = \"{off}\": give a number of bytes or \">0\""
            ));
        }
        for (field, v) in [("sender_mac", &self.sender_mac), ("eth_src", &self.eth_src)] {
            if let Some(m) = v {
                let ok = m.split(':').count() == 6
                    && m.split(':')
                        .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok());
                let template = m.starts_with('{') && m.ends_with('}');
                if !ok && !template {
                    return Err(format!(
                        "{field} = \"{m}\" is not a MAC address like 02:42:ac:11:00:02"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `p` matches: every layer the match names holds.
    pub fn matches(&self, p: &Packet) -> bool {
        self.proto_matches(p)
            && self.arp_matches(p)
            && self.eth_matches(p)
            && self.ip_matches(p)
            && self.icmp_matches(p)
            && self.tcp_flags_match(p)
            && self.ports_match(p)
            && self.payload_matches(p)
    }

    /// `proto`: the packet has that layer.
    fn proto_matches(&self, p: &Packet) -> bool {
        match self.proto.as_deref() {
            None => true,
            Some("arp") => p.arp.is_some(),
            Some("ip") => p.ipv4.is_some(),
            Some("icmp") => p.icmp.is_some(),
            Some("tcp") => p.tcp.is_some(),
            Some("udp") => p.udp.is_some(),
            Some(_) => false,
        }
    }

    /// `arp`, `sender_ip`, `target_ip`, `sender_mac`: an ARP packet with those.
    fn arp_matches(&self, p: &Packet) -> bool {
        let named = self.arp.is_some()
            || self.sender_ip.is_some()
            || self.target_ip.is_some()
            || self.sender_mac.is_some();
        if !named {
            return true;
        }
        let Some(a) = &p.arp else { return false };
        let op_ok = match self.arp.as_deref() {
            None => true,
            Some("request") => a.op == ArpOp::Request,
            Some("reply") => a.op == ArpOp::Reply,
            Some(_) => false,
        };
        op_ok
            && self.sender_ip.is_none_or(|x| x == a.sender_ip)
            && self.target_ip.is_none_or(|x| x == a.target_ip)
            && self
                .sender_mac
                .as_deref()
                .is_none_or(|m| same_mac(&a.sender_mac, m))
    }

    /// `eth_src`: the Ethernet source.
    fn eth_matches(&self, p: &Packet) -> bool {
        self.eth_src
            .as_deref()
            .is_none_or(|m| p.ethernet.as_ref().is_some_and(|e| same_mac(&e.src, m)))
    }

    /// `src`, `dst` and the fragment fields: an IPv4 packet with those.
    fn ip_matches(&self, p: &Packet) -> bool {
        let named = self.src.is_some()
            || self.dst.is_some()
            || self.fragment.is_some()
            || self.more_fragments.is_some()
            || self.frag_offset.is_some()
            || self.dont_fragment.is_some();
        if !named {
            return true;
        }
        let Some(ip) = &p.ipv4 else { return false };
        let offset_ok = match self.frag_offset.as_deref().map(str::trim) {
            None => true,
            Some(">0") => ip.frag_offset > 0,
            Some(off) => off.parse::<u16>().ok() == Some(ip.frag_offset),
        };
        offset_ok
            && self.src.is_none_or(|x| x == ip.src)
            && self.dst.is_none_or(|x| x == ip.dst)
            && self.fragment.is_none_or(|f| f == ip.is_fragment())
            && self.more_fragments.is_none_or(|f| f == ip.more_fragments)
            && self.dont_fragment.is_none_or(|f| f == ip.dont_fragment)
    }

    /// `icmp`, `icmp_type`, `icmp_code`, `icmp_seq`: an ICMP message with those.
    fn icmp_matches(&self, p: &Packet) -> bool {
        let named = self.icmp.is_some()
            || self.icmp_type.is_some()
            || self.icmp_code.is_some()
            || self.icmp_seq.is_some();
        if !named {
            return true;
        }
        let Some(i) = &p.icmp else { return false };
        self.icmp.as_deref().is_none_or(|k| icmp_kind(i, k))
            && self.icmp_type.is_none_or(|t| t == i.icmp_type)
            && self.icmp_code.is_none_or(|c| c == i.code)
            && self
                .icmp_seq
                .is_none_or(|s| i.echo.is_some_and(|e| e.seq == s))
    }

    /// `flags` (exactly those of S A F R, and P when given) and `flags_include` (at least
    /// those): a TCP segment with them.
    fn tcp_flags_match(&self, p: &Packet) -> bool {
        if self.flags.is_none() && self.flags_include.is_none() {
            return true;
        }
        let Some(t) = &p.tcp else { return false };
        let exact_ok = match self.flags.as_deref().map(flag_bits) {
            None => true,
            Some(None) => false,
            Some(Some(want)) => {
                let psh = if want & TcpFlags::PSH.0 != 0 {
                    TcpFlags::PSH.0
                } else {
                    0
                };
                let mask = TcpFlags::SYN.0 | TcpFlags::ACK.0 | TcpFlags::FIN.0 | TcpFlags::RST.0;
                t.flags.0 & (mask | psh) == want
            }
        };
        let include_ok = match self.flags_include.as_deref().map(flag_bits) {
            None => true,
            Some(None) => false,
            Some(Some(want)) => t.flags.0 & want == want,
        };
        exact_ok && include_ok
    }

    /// `sport`, `dport`: a TCP or UDP packet with those ports.
    fn ports_match(&self, p: &Packet) -> bool {
        if self.sport.is_none() && self.dport.is_none() {
            return true;
        }
        let Some((s, d)) = p.ports() else {
            return false;
        };
        self.sport.is_none_or(|x| x == s) && self.dport.is_none_or(|x| x == d)
    }

    /// `min_payload`: at least that many bytes of TCP or UDP payload.
    fn payload_matches(&self, p: &Packet) -> bool {
        let Some(min) = self.min_payload else {
            return true;
        };
        let len = p
            .tcp
            .as_ref()
            .map(|t| t.payload_len)
            .or(p.udp.as_ref().map(|u| u.payload_len))
            .unwrap_or(0);
        len >= min
    }
}

impl fmt::Display for PacketMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        macro_rules! field {
            ($name:literal, $v:expr) => {
                if let Some(v) = &$v {
                    parts.push(format!("{}={}", $name, v));
                }
            };
        }
        field!("proto", self.proto);
        field!("arp", self.arp);
        field!("src", self.src);
        field!("dst", self.dst);
        field!("sender_ip", self.sender_ip);
        field!("target_ip", self.target_ip);
        field!("sender_mac", self.sender_mac);
        field!("eth_src", self.eth_src);
        field!("icmp", self.icmp);
        field!("icmp_type", self.icmp_type);
        field!("icmp_code", self.icmp_code);
        field!("icmp_seq", self.icmp_seq);
        field!("flags", self.flags);
        field!("flags_include", self.flags_include);
        field!("sport", self.sport);
        field!("dport", self.dport);
        field!("min_payload", self.min_payload);
        field!("fragment", self.fragment);
        field!("more_fragments", self.more_fragments);
        field!("frag_offset", self.frag_offset);
        field!("dont_fragment", self.dont_fragment);
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

/// Find `seq` in order among `packets` (others may come between). Ok(indexes of the matches),
/// or Err((how many matched, index after which the next was looked for)).
pub fn find_sequence(
    seq: &[PacketMatch],
    packets: &[&Packet],
) -> Result<Vec<usize>, (usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    for (k, m) in seq.iter().enumerate() {
        match packets[from..].iter().position(|p| m.matches(p)) {
            Some(i) => {
                found.push(from + i);
                from += i + 1;
            }
            None => return Err((k, from)),
        }
    }
    Ok(found)
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
            dport: Some(7777),
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
        assert!(!m(|m| m.sport = Some(1234)).matches(&request), "no ports");
        assert!(m(|m| m.sport = Some(1234)).matches(&syn));
        assert!(!m(|m| m.fragment = Some(true)).matches(&syn));
        assert!(m(|m| m.frag_offset = Some("0".into())).matches(&syn));
        assert!(!m(|m| m.frag_offset = Some(">0".into())).matches(&syn));
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
                frag_offset: Some("big".into()),
                ..Default::default()
            })
            .contains("frag_offset")
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
        assert_eq!(find_sequence(&seq, &[&syn, &synack]), Ok(vec![0, 1]));
        assert_eq!(find_sequence(&seq, &[&synack, &syn]), Err((1, 2)));
    }
}
