//! Frames built from bytes for the report's tests: Ethernet with ARP, IPv4 with TCP, UDP
//! and ICMP, fragments; the lab's names for their addresses; and captures of them.

use super::Names;
use super::tcpconn::Captured;
use crate::capture::Packet;
use crate::capture::decode::MacAddr;

/// bsdi on the bottom Ethernet.
pub(super) const BSDI: [u8; 4] = [140, 252, 13, 35];
/// bsdi's end of the SLIP line.
pub(super) const BSDI_SLIP: [u8; 4] = [140, 252, 13, 66];
/// svr4.
pub(super) const SVR4: [u8; 4] = [140, 252, 13, 34];
/// sun.
pub(super) const SUN: [u8; 4] = [140, 252, 13, 33];
/// slip.
pub(super) const SLIP: [u8; 4] = [140, 252, 13, 65];
/// An address no lab host has.
pub(super) const OUTSIDE: [u8; 4] = [192, 0, 2, 7];

/// The MAC address the tests give `ip`: `02:00:00:00:<3rd>:<4th>` (so 0:0:c0:c2:9b:26-like
/// lines come out with leading zeros dropped).
pub(super) fn mac_of(ip: [u8; 4]) -> [u8; 6] {
    [0x02, 0, 0, 0, ip[2], ip[3]]
}

/// The names of the test hosts.
pub(super) fn lab_names() -> Names {
    let hosts = [
        ("bsdi", BSDI),
        ("bsdi", BSDI_SLIP),
        ("svr4", SVR4),
        ("sun", SUN),
        ("slip", SLIP),
    ];
    Names::from_pairs(
        hosts
            .iter()
            .map(|(n, ip)| (MacAddr(mac_of(*ip)).to_string(), n.to_string())),
        hosts.iter().map(|(n, ip)| ((*ip).into(), n.to_string())),
    )
}

/// An Ethernet frame.
pub(super) fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP request (`op` 1) or reply (2) from `sender` about `target`, in its frame.
pub(super) fn arp_frame(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&mac_of(sender));
    a.extend_from_slice(&sender);
    a.extend_from_slice(&if op == 2 { mac_of(target) } else { [0; 6] });
    a.extend_from_slice(&target);
    let dst = if op == 1 { [0xff; 6] } else { mac_of(target) };
    eth(dst, mac_of(sender), 0x0806, &a)
}

/// An IPv4 datagram from `src` to `dst` in its frame: protocol, id, TTL, flags and
/// fragment offset field, payload.
pub(super) fn ip_frame(
    (src, dst): ([u8; 4], [u8; 4]),
    proto: u8,
    (id, ttl, flags_off): (u16, u8, u16),
    payload: &[u8],
) -> Vec<u8> {
    eth(
        mac_of(dst),
        mac_of(src),
        0x0800,
        &ip_bytes((src, dst), proto, (id, ttl, flags_off), payload),
    )
}

/// An IPv4 datagram's bytes (no checksum).
pub(super) fn ip_bytes(
    (src, dst): ([u8; 4], [u8; 4]),
    proto: u8,
    (id, ttl, flags_off): (u16, u8, u16),
    payload: &[u8],
) -> Vec<u8> {
    crate::capture::decode::tests::ipv4(src, dst, proto, id, ttl, flags_off, payload)
}

/// A UDP header and `len` bytes of data.
pub(super) fn udp_bytes(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend(std::iter::repeat_n(0x55, len));
    u
}

/// A UDP datagram in its frame.
pub(super) fn udp_frame(from: ([u8; 4], u16), to: ([u8; 4], u16), len: usize) -> Vec<u8> {
    ip_frame(
        (from.0, to.0),
        17,
        (1, 64, 0),
        &udp_bytes(from.1, to.1, len),
    )
}

/// An ICMP message in its frame: type, code, the four bytes after the checksum, the rest.
pub(super) fn icmp_frame(
    (src, dst): ([u8; 4], [u8; 4]),
    (icmp_type, code): (u8, u8),
    word: [u8; 4],
    rest: &[u8],
) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&word);
    m.extend_from_slice(rest);
    ip_frame((src, dst), 1, (2, 64, 0), &m)
}

/// A TCP segment under construction, see [`tcp`].
pub(super) struct Seg {
    from: ([u8; 4], u16),
    to: ([u8; 4], u16),
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    opts: Vec<u8>,
    len: usize,
}

/// A TCP segment from `from` to `to` with `flags` written as letters (`S`, `F`, `R`, `P`,
/// `.` for ACK), window 4096, no options, no data until set.
pub(super) fn tcp(from: ([u8; 4], u16), to: ([u8; 4], u16), flags: &str) -> Seg {
    let bit = |c| match c {
        'F' => 0x01,
        'S' => 0x02,
        'R' => 0x04,
        'P' => 0x08,
        '.' => 0x10,
        _ => 0,
    };
    Seg {
        from,
        to,
        flags: flags.chars().map(bit).fold(0, |a, b| a | b),
        seq: 0,
        ack: 0,
        win: 4096,
        opts: Vec::new(),
        len: 0,
    }
}

impl Seg {
    /// Set the sequence number.
    pub(super) fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }
    /// Set the acknowledgment number.
    pub(super) fn ack(mut self, ack: u32) -> Self {
        self.ack = ack;
        self
    }
    /// Set the window field.
    pub(super) fn win(mut self, win: u16) -> Self {
        self.win = win;
        self
    }
    /// Add an MSS option.
    pub(super) fn mss(mut self, mss: u16) -> Self {
        self.opts.extend_from_slice(&[2, 4]);
        self.opts.extend_from_slice(&mss.to_be_bytes());
        self
    }
    /// Add raw option bytes (padded to a multiple of 4 when the frame is built).
    pub(super) fn opts(mut self, raw: &[u8]) -> Self {
        self.opts.extend_from_slice(raw);
        self
    }
    /// Carry `len` bytes of data.
    pub(super) fn data(mut self, len: usize) -> Self {
        self.len = len;
        self
    }
    /// The segment in its frame.
    pub(super) fn frame(&self) -> Vec<u8> {
        let mut opts = self.opts.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let hlen = 20 + opts.len();
        let mut t = Vec::new();
        t.extend_from_slice(&self.from.1.to_be_bytes());
        t.extend_from_slice(&self.to.1.to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        t.push(((hlen / 4) as u8) << 4);
        t.push(self.flags);
        t.extend_from_slice(&self.win.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(&opts);
        t.extend(std::iter::repeat_n(0x41, self.len));
        ip_frame((self.from.0, self.to.0), 6, (3, 64, 0x4000), &t)
    }
}

/// Each frame decoded.
pub(super) fn decode_all(frames: &[Vec<u8>]) -> Vec<Packet> {
    frames.iter().map(|f| crate::capture::decode(f)).collect()
}

/// `packets` as captured on `eth0`, `dt` seconds apart.
pub(super) fn captured(packets: &[Packet], dt: f64) -> Vec<Captured<'_>> {
    packets
        .iter()
        .enumerate()
        .map(|(i, p)| Captured {
            iface: "eth0",
            time: i as f64 * dt,
            packet: p,
        })
        .collect()
}

/// A bulk transfer bsdi → svr4 with a lost segment retransmitted after three
/// duplicate ACKs, window scaling on both SYNs.
pub(super) fn bulk_frames(segments: usize) -> Vec<Vec<u8>> {
    let (b, s) = ((BSDI, 1036), (SVR4, 9));
    let (ib, is) = (1000u32, 5000u32);
    let ws = [1, 3, 3, 2];
    let mut f = vec![
        tcp(b, s, "S").seq(ib).mss(1024).opts(&ws).frame(),
        tcp(s, b, "S.")
            .seq(is)
            .ack(ib + 1)
            .mss(1024)
            .opts(&ws)
            .frame(),
        tcp(b, s, ".").seq(ib + 1).ack(is + 1).frame(),
    ];
    for k in 0..segments as u32 {
        f.push(
            tcp(b, s, ".")
                .seq(ib + 1 + k * 1024)
                .ack(is + 1)
                .data(1024)
                .frame(),
        );
        // svr4 acks every segment but the fourth, which is lost: dup ACKs follow.
        let acked = if (3..6).contains(&k) { 3 } else { k + 1 };
        f.push(
            tcp(s, b, ".")
                .seq(is + 1)
                .ack(ib + 1 + acked * 1024)
                .win(1000)
                .frame(),
        );
        if k == 5 {
            f.push(
                tcp(b, s, ".")
                    .seq(ib + 1 + 3 * 1024)
                    .ack(is + 1)
                    .data(1024)
                    .frame(),
            );
        }
    }
    f
}
