//! One function per layer a [`PacketMatch`] may name: each holds when the match names nothing
//! of that layer, or when the packet has the layer and every named field holds.

use super::expr::{Bound, NumMatch, Seen, field_value};
use super::{PacketMatch, flag_bits};
use crate::capture::decode::{ArpOp, Icmp, IpOptions, MacAddr, Packet, TcpFlags};

/// A number field: absent from the match, or the packet has it and it holds.
fn num(m: &Option<NumMatch>, field: &str, s: &Seen, b: &Bound) -> bool {
    m.as_ref()
        .is_none_or(|m| field_value(s, field).is_some_and(|v| m.holds(field, v, b)))
}

fn same_mac(mac: &MacAddr, s: &str) -> bool {
    if s == "broadcast" {
        return *mac == MacAddr::BROADCAST;
    }
    mac.to_string().eq_ignore_ascii_case(s.trim())
}

/// `proto`: the packet has that layer.
pub(super) fn proto(m: &PacketMatch, p: &Packet) -> bool {
    match m.proto.as_deref() {
        None => true,
        Some("arp") => p.arp.is_some(),
        Some("ip") => p.ipv4.is_some(),
        Some("icmp") => p.icmp.is_some(),
        Some("tcp") => p.tcp.is_some(),
        Some("udp") => p.udp.is_some(),
        Some("igmp") => p.igmp.is_some(),
        Some(_) => false,
    }
}

/// `arp`, `sender_ip`, `target_ip`, `sender_mac`, `target_mac`.
pub(super) fn arp(m: &PacketMatch, p: &Packet) -> bool {
    let named = m.arp.is_some()
        || m.sender_ip.is_some()
        || m.target_ip.is_some()
        || m.sender_mac.is_some()
        || m.target_mac.is_some();
    if !named {
        return true;
    }
    let Some(a) = &p.arp else { return false };
    let op_ok = match m.arp.as_deref() {
        None => true,
        Some("request") => a.op == ArpOp::Request,
        Some("reply") => a.op == ArpOp::Reply,
        Some(_) => false,
    };
    op_ok
        && m.sender_ip.is_none_or(|x| x == a.sender_ip)
        && m.target_ip.is_none_or(|x| x == a.target_ip)
        && m.sender_mac
            .as_deref()
            .is_none_or(|x| same_mac(&a.sender_mac, x))
        && m.target_mac
            .as_deref()
            .is_none_or(|x| same_mac(&a.target_mac, x))
}

/// `eth_src`, `eth_dst`, `vlan`.
pub(super) fn ethernet(m: &PacketMatch, p: &Packet) -> bool {
    let e = p.ethernet.as_ref();
    m.vlan.is_none_or(|v| e.is_some_and(|e| e.vlan == Some(v)))
        && m.eth_src
            .as_deref()
            .is_none_or(|x| e.is_some_and(|e| same_mac(&e.src, x)))
        && m.eth_dst
            .as_deref()
            .is_none_or(|x| e.is_some_and(|e| same_mac(&e.dst, x)))
}

/// The IP header: addresses, TTL, ID, length, TOS, options and fragment fields.
pub(super) fn ip(m: &PacketMatch, s: &Seen, b: &Bound) -> bool {
    let named = m.src.is_some()
        || m.dst.is_some()
        || m.ttl.is_some()
        || m.ip_id.is_some()
        || m.ip_len.is_some()
        || m.tos.is_some()
        || m.ip_options.is_some()
        || m.rr_includes.is_some()
        || m.rr_count.is_some()
        || m.fragment.is_some()
        || m.more_fragments.is_some()
        || m.frag_offset.is_some()
        || m.dont_fragment.is_some();
    if !named {
        return true;
    }
    let Some(ip) = &s.packet.ipv4 else {
        return false;
    };
    let option_ok = match m.ip_options.as_deref() {
        None => true,
        Some(o) => {
            let bit = match o {
                "rr" => IpOptions::RR,
                "lsrr" => IpOptions::LSRR,
                "ssrr" => IpOptions::SSRR,
                _ => IpOptions::TS,
            };
            ip.options.present & bit != 0
        }
    };
    let rr = ip.options.recorded_route();
    option_ok
        && m.rr_includes
            .as_ref()
            .is_none_or(|want| want.iter().all(|a| rr.contains(a)))
        && m.src.as_ref().is_none_or(|x| x.holds(ip.src, b))
        && m.dst.as_ref().is_none_or(|x| x.holds(ip.dst, b))
        && num(&m.ttl, "ttl", s, b)
        && num(&m.ip_id, "ip_id", s, b)
        && num(&m.ip_len, "ip_len", s, b)
        && num(&m.tos, "tos", s, b)
        && num(&m.rr_count, "rr_count", s, b)
        && num(&m.frag_offset, "frag_offset", s, b)
        && m.fragment.is_none_or(|f| f == ip.is_fragment())
        && m.more_fragments.is_none_or(|f| f == ip.more_fragments)
        && m.dont_fragment.is_none_or(|f| f == ip.dont_fragment)
}

fn icmp_kind(i: &Icmp, kind: &str) -> bool {
    let (t, c) = (i.icmp_type, i.code);
    match kind {
        "echo-request" => t == Icmp::ECHO_REQUEST,
        "echo-reply" => t == Icmp::ECHO_REPLY,
        "time-exceeded" => t == Icmp::TIME_EXCEEDED,
        "unreachable" => t == Icmp::DEST_UNREACHABLE,
        "net-unreachable" => t == Icmp::DEST_UNREACHABLE && c == 0,
        "host-unreachable" => t == Icmp::DEST_UNREACHABLE && c == 1,
        "port-unreachable" => t == Icmp::DEST_UNREACHABLE && c == Icmp::CODE_PORT_UNREACHABLE,
        "frag-needed" => t == Icmp::DEST_UNREACHABLE && c == Icmp::CODE_FRAG_NEEDED,
        "redirect" => t == Icmp::REDIRECT,
        "source-quench" => t == Icmp::SOURCE_QUENCH,
        "parameter-problem" => t == 12,
        "timestamp-request" => t == 13,
        "timestamp-reply" => t == 14,
        "mask-request" => t == 17,
        "mask-reply" => t == 18,
        _ => false,
    }
}

/// ICMP: kind, type, code, echo fields, redirect gateway, next-hop MTU, the quoted datagram.
pub(super) fn icmp(m: &PacketMatch, s: &Seen, b: &Bound) -> bool {
    let named = m.icmp.is_some()
        || m.icmp_type.is_some()
        || m.icmp_code.is_some()
        || m.icmp_seq.is_some()
        || m.icmp_id.is_some()
        || m.gateway.is_some()
        || m.next_hop_mtu.is_some()
        || m.quote_src.is_some()
        || m.quote_dst.is_some()
        || m.quote_proto.is_some()
        || m.quote_sport.is_some()
        || m.quote_dport.is_some()
        || m.quote_id.is_some();
    if !named {
        return true;
    }
    let Some(i) = &s.packet.icmp else {
        return false;
    };
    let quote_named = m.quote_src.is_some()
        || m.quote_dst.is_some()
        || m.quote_proto.is_some()
        || m.quote_sport.is_some()
        || m.quote_dport.is_some()
        || m.quote_id.is_some();
    let quote_ok = !quote_named
        || i.quote.as_ref().is_some_and(|q| {
            let proto_ok = m.quote_proto.as_deref().is_none_or(|x| {
                let want = match x {
                    "icmp" => 1,
                    "tcp" => 6,
                    "udp" => 17,
                    n => n.parse().unwrap_or(0),
                };
                q.proto == want
            });
            proto_ok
                && m.quote_src.is_none_or(|x| x == q.src)
                && m.quote_dst.is_none_or(|x| x == q.dst)
                && m.quote_sport.is_none_or(|x| q.src_port == Some(x))
                && m.quote_dport.is_none_or(|x| q.dst_port == Some(x))
                && m.quote_id
                    .as_ref()
                    .is_none_or(|x| x.holds("quote_id", f64::from(q.id), b))
        });
    quote_ok
        && m.icmp.as_deref().is_none_or(|k| icmp_kind(i, k))
        && m.icmp_type.is_none_or(|t| t == i.icmp_type)
        && m.icmp_code.is_none_or(|c| c == i.code)
        && m.gateway.is_none_or(|g| i.gateway == Some(g))
        && num(&m.icmp_seq, "icmp_seq", s, b)
        && num(&m.icmp_id, "icmp_id", s, b)
        && num(&m.next_hop_mtu, "next_hop_mtu", s, b)
}

/// IGMP: message kind, type, group.
pub(super) fn igmp(m: &PacketMatch, s: &Seen, b: &Bound) -> bool {
    if m.igmp.is_none() && m.igmp_type.is_none() && m.igmp_group.is_none() {
        return true;
    }
    let Some(g) = &s.packet.igmp else {
        return false;
    };
    let kind_ok = match m.igmp.as_deref() {
        None => true,
        Some("query") => g.igmp_type == 0x11,
        Some("report") => matches!(g.igmp_type, 0x12 | 0x16 | 0x22),
        Some("leave") => g.igmp_type == 0x17,
        Some(_) => false,
    };
    kind_ok
        && num(&m.igmp_type, "igmp_type", s, b)
        && m.igmp_group.is_none_or(|x| g.group == Some(x))
}

/// TCP: flags (exact, with P only when given; or included), numbers and options.
pub(super) fn tcp(m: &PacketMatch, s: &Seen, b: &Bound) -> bool {
    let named = m.flags.is_some()
        || m.flags_include.is_some()
        || m.seq.is_some()
        || m.ack.is_some()
        || m.window.is_some()
        || m.mss.is_some()
        || m.wscale.is_some()
        || m.sack_ok.is_some()
        || m.timestamps.is_some()
        || m.tsval.is_some()
        || m.tsecr.is_some();
    if !named {
        return true;
    }
    let Some(t) = &s.packet.tcp else {
        return false;
    };
    let exact_ok = match m.flags.as_deref().map(flag_bits) {
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
    let include_ok = match m.flags_include.as_deref().map(flag_bits) {
        None => true,
        Some(None) => false,
        Some(Some(want)) => t.flags.0 & want == want,
    };
    exact_ok
        && include_ok
        && num(&m.seq, "seq", s, b)
        && num(&m.ack, "ack", s, b)
        && num(&m.window, "window", s, b)
        && num(&m.mss, "mss", s, b)
        && num(&m.wscale, "wscale", s, b)
        && num(&m.tsval, "tsval", s, b)
        && num(&m.tsecr, "tsecr", s, b)
        && m.sack_ok.is_none_or(|x| x == t.options.sack_permitted())
        && m.timestamps
            .is_none_or(|x| x == t.options.timestamp().is_some())
}

/// Ports (TCP or UDP), payload length and `min_payload`.
pub(super) fn ports_and_payload(m: &PacketMatch, s: &Seen, b: &Bound) -> bool {
    let min_ok = m
        .min_payload
        .is_none_or(|min| field_value(s, "len").is_some_and(|l| l >= min as f64));
    min_ok
        && num(&m.sport, "sport", s, b)
        && num(&m.dport, "dport", s, b)
        && num(&m.len, "len", s, b)
}
