//! The link layer: Ethernet (with 802.1Q/802.1ad tags skipped) and ARP for
//! IPv4 over Ethernet.

use std::fmt;
use std::net::Ipv4Addr;

use super::{ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, Layer, Packet, be16, ip_at, mac_at};

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

/// Reads the Ethernet header and any VLAN tags into `p.ethernet`; `None`
/// (with `p.truncated` set) when they are cut short or too many.
pub(super) fn decode_ethernet(frame: &[u8], p: &mut Packet) -> Option<Ethernet> {
    let (Some(dst), Some(src), Some(mut ethertype)) =
        (mac_at(frame, 0), mac_at(frame, 6), be16(frame, 12))
    else {
        p.truncated = Some(Layer::Ethernet);
        return None;
    };
    let mut off = 14;
    let mut vlan = None;
    let mut tags = 0;
    while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        let (Some(tci), Some(inner)) = (be16(frame, off), be16(frame, off + 2)) else {
            p.truncated = Some(Layer::Ethernet);
            return None;
        };
        vlan.get_or_insert(tci & 0x0fff);
        ethertype = inner;
        off += 4;
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            p.truncated = Some(Layer::Ethernet);
            return None;
        }
    }
    let eth = Ethernet {
        dst,
        src,
        ethertype,
        vlan,
        header_len: off,
    };
    p.ethernet = Some(eth);
    Some(eth)
}

/// Reads an ARP packet (IPv4 over Ethernet only) into `p.arp`.
pub(super) fn decode_arp(b: &[u8], p: &mut Packet) {
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

/// The line of an ARP frame; `rest` is the frame's length after the Ethernet header.
pub(super) fn fmt_arp(p: &Packet, rest: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(a) = p.arp else {
        return if p.truncated == Some(Layer::Arp) {
            f.write_str(" [|arp]")
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
