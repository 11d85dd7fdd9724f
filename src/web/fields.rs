//! A packet opened layer by layer (Ethernet, ARP, IPv4, IPv6, ICMP, IGMP, UDP, TCP), as the
//! step mode shows it, and the fields that changed between two hops of one datagram.

use crate::capture::Packet;
use serde::Serialize;

/// One layer's fields, in header order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LayerView {
    /// The layer's name: Ethernet, ARP, IPv4, ...
    pub name: &'static str,
    /// (field, value) pairs.
    pub fields: Vec<(&'static str, String)>,
}

impl LayerView {
    fn new(name: &'static str) -> LayerView {
        LayerView {
            name,
            fields: Vec::new(),
        }
    }

    fn add(&mut self, field: &'static str, value: impl ToString) {
        self.fields.push((field, value.to_string()));
    }
}

/// The IPv4 header checksum of `frame` (the bytes of the Ethernet frame `p` was decoded from).
fn ip_checksum(p: &Packet, frame: &[u8]) -> Option<u16> {
    let off = p.ethernet?.header_len + 10;
    Some(u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]))
}

/// The header checksum of an IPv4 header without options, computed from its decoded fields
/// (the live view keeps no bytes; the stack always fills this checksum in, so it is the one
/// on the wire).
fn ipv4_checksum(ip: &crate::capture::decode::Ipv4) -> u16 {
    let frag = (u16::from(ip.dont_fragment) << 14)
        | (u16::from(ip.more_fragments) << 13)
        | (ip.frag_offset / 8);
    let words = [
        0x4500 | u16::from(ip.tos),
        ip.total_len,
        ip.id,
        frag,
        (u16::from(ip.ttl) << 8) | u16::from(ip.proto),
        0,
    ];
    let mut sum: u32 = words.iter().map(|&w| u32::from(w)).sum();
    for a in [ip.src.octets(), ip.dst.octets()] {
        sum += u32::from(u16::from_be_bytes([a[0], a[1]]));
        sum += u32::from(u16::from_be_bytes([a[2], a[3]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The layers of `p`; the IPv4 checksum is read from `frame` when given.
pub fn layers(p: &Packet, frame: Option<&[u8]>) -> Vec<LayerView> {
    let mut out = Vec::new();
    if let Some(e) = p.ethernet {
        let mut l = LayerView::new("Ethernet");
        l.add("src", e.src);
        l.add("dst", e.dst);
        l.add("type", format!("0x{:04x}", e.ethertype));
        if let Some(v) = e.vlan {
            l.add("vlan", v);
        }
        out.push(l);
    }
    if let Some(a) = p.arp {
        let mut l = LayerView::new("ARP");
        l.add("op", format!("{:?}", a.op).to_lowercase());
        l.add("sender MAC", a.sender_mac);
        l.add("sender IP", a.sender_ip);
        l.add("target MAC", a.target_mac);
        l.add("target IP", a.target_ip);
        out.push(l);
    }
    if let Some(ip) = p.ipv4 {
        let mut l = LayerView::new("IPv4");
        l.add("src", ip.src);
        l.add("dst", ip.dst);
        l.add("TTL", ip.ttl);
        l.add("protocol", ip.proto);
        l.add("id", ip.id);
        l.add("total length", ip.total_len);
        l.add("header length", ip.header_len);
        l.add("TOS", format!("0x{:02x}", ip.tos));
        let flags = match (ip.dont_fragment, ip.more_fragments) {
            (true, true) => "DF MF",
            (true, false) => "DF",
            (false, true) => "MF",
            (false, false) => "-",
        };
        l.add("flags", flags);
        l.add("fragment offset", ip.frag_offset);
        match frame.and_then(|f| ip_checksum(p, f)) {
            Some(c) => l.add("checksum", format!("0x{c:04x}")),
            None if ip.header_len == 20 => {
                l.add(
                    "checksum",
                    format!("0x{:04x} (recomputed)", ipv4_checksum(&ip)),
                );
            }
            None => {}
        }
        out.push(l);
    }
    if let Some(ip) = p.ipv6 {
        let mut l = LayerView::new("IPv6");
        l.add("src", ip.src);
        l.add("dst", ip.dst);
        l.add("hop limit", ip.hop_limit);
        l.add("next header", ip.next_header);
        l.add("payload length", ip.payload_len);
        out.push(l);
    }
    transport_layers(p, &mut out);
    out
}

fn transport_layers(p: &Packet, out: &mut Vec<LayerView>) {
    if let Some(i) = p.icmp {
        let mut l = LayerView::new("ICMP");
        l.add("type", i.icmp_type);
        l.add("code", i.code);
        if let Some(e) = i.echo {
            l.add("id", e.id);
            l.add("seq", e.seq);
        }
        if let Some(g) = i.gateway {
            l.add("gateway", g);
        }
        if let Some(m) = i.next_hop_mtu {
            l.add("next-hop MTU", m);
        }
        if let Some(q) = i.quote {
            l.add("quoted", format!("{} > {} proto {}", q.src, q.dst, q.proto));
        }
        out.push(l);
    }
    if let Some(i) = p.icmp6 {
        let mut l = LayerView::new("ICMPv6");
        l.add("type", i.icmp_type);
        l.add("code", i.code);
        out.push(l);
    }
    if let Some(g) = p.igmp {
        let mut l = LayerView::new("IGMP");
        l.add("type", format!("0x{:02x}", g.igmp_type));
        out.push(l);
    }
    if let Some(u) = p.udp {
        let mut l = LayerView::new("UDP");
        l.add("src port", u.src_port);
        l.add("dst port", u.dst_port);
        l.add("length", u.len);
        out.push(l);
    }
    if let Some(t) = p.tcp {
        let mut l = LayerView::new("TCP");
        l.add("src port", t.src_port);
        l.add("dst port", t.dst_port);
        l.add("seq", t.seq);
        l.add("ack", t.ack);
        l.add("flags", t.flags);
        l.add("window", t.window);
        l.add("header length", t.header_len);
        l.add("payload", t.payload_len);
        out.push(l);
    }
}

/// The fields (as `Layer.field`) whose values differ between two views of a packet.
pub fn changed(a: &[LayerView], b: &[LayerView]) -> Vec<String> {
    let mut out = Vec::new();
    for la in a {
        let Some(lb) = b.iter().find(|l| l.name == la.name) else {
            continue;
        };
        for (f, va) in &la.fields {
            if let Some((_, vb)) = lb.fields.iter().find(|(g, _)| g == f)
                && va != vb
            {
                out.push(format!("{}.{f}", la.name));
            }
        }
    }
    out
}

/// What stays the same across the hops of one IPv4 datagram: addresses, protocol, id.
pub fn datagram_key(p: &Packet) -> Option<String> {
    let ip = p.ipv4?;
    Some(format!("{}>{} {} {}", ip.src, ip.dst, ip.proto, ip.id))
}
