//! TCP connections in a capture: which segments belong together, each side's initial
//! sequence number (ISN) and window scale, so that the book-style lines can print sequence
//! numbers relative to the ISN and the time-sequence graph can place each segment.

use crate::capture::Packet;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// One packet of a capture as the report sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Captured<'a> {
    /// Interface it was captured on.
    pub(super) iface: &'a str,
    /// Seconds since the capture's first packet.
    pub(super) time: f64,
    /// The decoded packet.
    pub(super) packet: &'a Packet,
}

/// One end of a connection: address and port.
pub(super) type End = (Ipv4Addr, u16);

/// A TCP connection: its two ends (`ends[0]` sent the first segment seen), each direction's
/// ISN and window scale as its SYN announced them, and its segments.
#[derive(Debug, Clone)]
pub(super) struct Conn {
    /// `ends[d]` is the sender of direction `d`.
    pub(super) ends: [End; 2],
    /// The ISN of each direction, when its SYN was captured.
    pub(super) isn: [Option<u32>; 2],
    /// The window scale shift each direction's SYN announced.
    pub(super) wscale: [Option<u8>; 2],
    /// Indexes (into the capture) of the connection's segments, with their direction.
    pub(super) segs: Vec<(usize, usize)>,
}

impl Conn {
    /// The shift to apply to the window field of direction `d`'s segments (those that are
    /// not SYNs): the one `d` announced, when both SYNs carried the option (RFC 7323).
    pub(super) fn window_shift(&self, d: usize) -> u8 {
        match self.wscale {
            [Some(_), Some(_)] => self.wscale[d].unwrap_or(0).min(14),
            _ => 0,
        }
    }
}

/// The TCP connections of a capture, and for each packet its connection and direction.
#[derive(Debug, Default)]
pub(super) struct Conns {
    /// The connections in the order their first segment was captured.
    pub(super) list: Vec<Conn>,
    /// For each packet of the capture: (connection index, direction) when it is TCP over IPv4.
    pub(super) of_packet: Vec<Option<(usize, usize)>>,
}

impl Conns {
    /// Sort the TCP segments of `caps` into connections. A SYN (without ACK) whose sequence
    /// number is not the ISN already known for its direction starts a new connection on the
    /// same ports.
    pub(super) fn new(caps: &[Captured]) -> Self {
        let mut out = Conns::default();
        let mut by_ends: HashMap<(End, End), usize> = HashMap::new();
        for (i, c) in caps.iter().enumerate() {
            let (Some(ip), Some(t)) = (c.packet.ipv4, c.packet.tcp) else {
                out.of_packet.push(None);
                continue;
            };
            let (src, dst) = ((ip.src, t.src_port), (ip.dst, t.dst_port));
            let key = if src <= dst { (src, dst) } else { (dst, src) };
            let known = by_ends.get(&key).copied().filter(|&k| {
                let conn = &out.list[k];
                let d = usize::from(conn.ends[0] != src);
                !t.flags.is_syn() || conn.isn[d] == Some(t.seq)
            });
            let k = known.unwrap_or_else(|| {
                out.list.push(Conn {
                    ends: [src, dst],
                    isn: [None, None],
                    wscale: [None, None],
                    segs: Vec::new(),
                });
                by_ends.insert(key, out.list.len() - 1);
                out.list.len() - 1
            });
            let conn = &mut out.list[k];
            let d = usize::from(conn.ends[0] != src);
            if t.flags.contains(crate::capture::decode::TcpFlags::SYN) && conn.isn[d].is_none() {
                conn.isn[d] = Some(t.seq);
                conn.wscale[d] = t.options.window_scale();
            }
            conn.segs.push((i, d));
            out.of_packet.push(Some((k, d)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_frames::{BSDI, SVR4, captured, decode_all, tcp};

    #[test]
    fn segments_are_sorted_into_connections_with_their_isns() {
        let frames = [
            tcp((BSDI, 1024), (SVR4, 9), "S")
                .seq(1000)
                .mss(1024)
                .frame(),
            tcp((SVR4, 9), (BSDI, 1024), "S.")
                .seq(5000)
                .ack(1001)
                .frame(),
            tcp((BSDI, 1024), (SVR4, 9), ".")
                .seq(1001)
                .ack(5001)
                .frame(),
            tcp((BSDI, 1025), (SVR4, 9), "S").seq(77).frame(),
            // A new connection on the same ports: another ISN.
            tcp((BSDI, 1024), (SVR4, 9), "S").seq(9000).frame(),
            // A retransmitted SYN stays in its connection.
            tcp((BSDI, 1024), (SVR4, 9), "S").seq(9000).frame(),
        ];
        let packets = decode_all(&frames);
        let caps = captured(&packets, 0.1);
        let conns = Conns::new(&caps);
        assert_eq!(conns.list.len(), 3);
        assert_eq!(conns.list[0].isn, [Some(1000), Some(5000)]);
        assert_eq!(conns.list[0].segs, vec![(0, 0), (1, 1), (2, 0)]);
        assert_eq!(conns.list[1].isn, [Some(77), None]);
        assert_eq!(conns.list[2].segs, vec![(4, 0), (5, 0)]);
        assert_eq!(
            conns.of_packet,
            vec![
                Some((0, 0)),
                Some((0, 1)),
                Some((0, 0)),
                Some((1, 0)),
                Some((2, 0)),
                Some((2, 0))
            ]
        );
    }

    #[test]
    fn the_window_is_scaled_only_when_both_syns_carry_the_option() {
        let mut c = Conn {
            ends: [(BSDI.into(), 1), (SVR4.into(), 2)],
            isn: [Some(1), Some(2)],
            wscale: [Some(7), None],
            segs: Vec::new(),
        };
        assert_eq!(c.window_shift(0), 0);
        c.wscale[1] = Some(2);
        assert_eq!((c.window_shift(0), c.window_shift(1)), (7, 2));
        c.wscale[0] = Some(200);
        assert_eq!(c.window_shift(0), 14);
    }
}
