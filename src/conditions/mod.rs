//! Link conditions: what makes a lab link behave like the book's lines instead of a gigabit
//! veth. A slow serial line (SLIP at 1200 or 9600 bit/s, TCP/IP Illustrated Vol. 1, 7.2),
//! delay, jitter, loss, duplication, reordering, corruption, a queue limit, and "drop the next
//! data segment" for retransmission experiments.
//!
//! - [`spec`]: the conditions, their units (tc's), parsing, display and merging a change.
//! - [`filter`]: which IPv4 frames a drop rule applies to (`tcp port 5001 data`).
//! - [`shaper`]: the emulator's decisions for each frame, in virtual time, without I/O.
//! - [`rng`]: the seeded generator behind the random decisions.
//!
//! Invariants: nothing here does I/O or reads a clock; every input (text, frame, time) is
//! handled without a panic; the shaper never delivers a frame before it was offered.

pub mod datapath;
pub mod filter;
pub mod rng;
pub mod shaper;
pub mod spec;

pub use filter::{PacketFilter, Protocol};
pub use shaper::{Scheduled, Shaper, ShaperStats};
pub use spec::{
    Conditions, ConditionsUpdate, DropRule, Framing, Percent, Rate, format_time, parse_framing,
    parse_percent, parse_queue, parse_rate, parse_time,
};

/// Real Ethernet/IPv4 frames for the tests of this module, with correct checksums.
#[cfg(test)]
pub(crate) mod test_frames {
    /// The Internet checksum (RFC 1071) of `data`.
    pub fn checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for chunk in data.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    const SRC: [u8; 4] = [140, 252, 13, 33];
    const DST: [u8; 4] = [140, 252, 13, 34];

    /// An Ethernet frame carrying an IPv4 packet of `protocol` with this transport message.
    pub fn ipv4(protocol: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, protocol, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&SRC);
        ip.extend_from_slice(&DST);
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    /// A ping (ICMP echo request) whose IP datagram is `ip_len` bytes (84 for ping's default).
    pub fn ping(ip_len: usize) -> Vec<u8> {
        let mut icmp = vec![8, 0, 0, 0, 0, 1, 0, 1];
        icmp.extend((0..ip_len - 28).map(|i| i as u8));
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        ipv4(1, &icmp)
    }

    /// A TCP segment with these ports, flags (0x02 SYN, 0x10 ACK, 0x18 PSH|ACK) and payload,
    /// with a correct checksum over the pseudo-header.
    pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut seg = Vec::new();
        seg.extend_from_slice(&sport.to_be_bytes());
        seg.extend_from_slice(&dport.to_be_bytes());
        seg.extend_from_slice(&1000u32.to_be_bytes());
        seg.extend_from_slice(&2000u32.to_be_bytes());
        seg.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        seg.extend_from_slice(payload);
        let c = checksum(&pseudo(6, &seg));
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        ipv4(6, &seg)
    }

    /// A UDP datagram with these ports and payload.
    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&sport.to_be_bytes());
        d.extend_from_slice(&dport.to_be_bytes());
        d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(payload);
        let c = checksum(&pseudo(17, &d));
        d[6..8].copy_from_slice(&c.to_be_bytes());
        ipv4(17, &d)
    }

    /// An ARP request frame.
    pub fn arp() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&DST);
        f
    }

    fn pseudo(protocol: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&SRC);
        p.extend_from_slice(&DST);
        p.extend_from_slice(&[0, protocol]);
        p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        p.extend_from_slice(l4);
        p
    }

    /// Whether the transport checksum of an IPv4 frame (ICMP, TCP or UDP) still verifies.
    pub fn transport_checksum_ok(frame: &[u8]) -> bool {
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let l4 = &ip[ihl..total];
        match ip[9] {
            1 => checksum(l4) == 0,
            p => checksum(&pseudo(p, l4)) == 0,
        }
    }
}
