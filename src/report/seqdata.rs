//! What a time-sequence graph shows of one direction of a TCP connection: its data
//! segments (relative sequence range, time, whether the range was sent before), and the
//! other side's acknowledgments with the window edge they advertise.

use super::Names;
use super::services::port_name;
use super::tcpconn::{Captured, Conn, Conns};

/// A direction with fewer data segments gets no graph.
pub(super) const MIN_DATA_SEGS: usize = 8;
/// Data segments drawn at most; the graph stops at the last one drawn and says so.
pub(super) const MAX_DRAWN: usize = 2000;
/// Relative numbers beyond this lie before the base (wrapped): left out.
const BEFORE_BASE: u64 = 1 << 31;

/// One data segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DataSeg {
    /// Seconds since the connection's first segment.
    pub(super) t: f64,
    /// Relative sequence numbers of its first byte and of the byte after its last.
    pub(super) start: u64,
    pub(super) end: u64,
    /// Part of its range was sent before.
    pub(super) retrans: bool,
}

/// One acknowledgment from the other side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct AckPt {
    /// Seconds since the connection's first segment.
    pub(super) t: f64,
    /// Relative acknowledgment number (the next byte expected).
    pub(super) ack: u64,
    /// Right edge of the advertised window: ack plus the (scaled) window.
    pub(super) edge: u64,
    /// Same ack and window as the one before while data is outstanding.
    pub(super) dup: bool,
}

/// One direction of a connection, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SeqSeries {
    /// `bsdi.1036 > svr4.discard`.
    pub(super) sender: String,
    /// The receiver's host name, for the legend.
    pub(super) receiver: String,
    /// Data segments, in capture order (at most [`MAX_DRAWN`]).
    pub(super) data: Vec<DataSeg>,
    /// The receiver's ACKs up to the last data segment drawn (or to the end).
    pub(super) acks: Vec<AckPt>,
    /// Data segments in the capture (drawn or not).
    pub(super) total_data: usize,
    /// The window shift applied to the receiver's windows.
    pub(super) shift: u8,
    /// Where the time axis ends.
    pub(super) t_end: f64,
}

impl SeqSeries {
    /// Indexes of the retransmitted segments.
    pub(super) fn retransmissions(&self) -> Vec<usize> {
        (0..self.data.len())
            .filter(|&i| self.data[i].retrans)
            .collect()
    }
}

/// A graph's worth of each direction of each connection of a capture that carries at least
/// [`MIN_DATA_SEGS`] data segments.
pub(super) fn bulk_series(caps: &[Captured], conns: &Conns, names: &Names) -> Vec<SeqSeries> {
    let mut out = Vec::new();
    for conn in &conns.list {
        let Some(&(first, _)) = conn.segs.first() else {
            continue;
        };
        // A router capturing on two interfaces sees each segment twice: keep one.
        let iface = caps[first].iface;
        for d in 0..2 {
            let n = conn
                .segs
                .iter()
                .filter(|&&(i, dir)| dir == d && caps[i].iface == iface && data_len(&caps[i]) > 0)
                .count();
            if n >= MIN_DATA_SEGS {
                out.push(series_of(caps, conn, d, names));
            }
        }
    }
    out
}

fn data_len(c: &Captured) -> usize {
    c.packet.tcp.map_or(0, |t| t.payload_len)
}

/// The series of direction `d` of `conn`.
fn series_of(caps: &[Captured], conn: &Conn, d: usize, names: &Names) -> SeqSeries {
    let iface = caps[conn.segs[0].0].iface;
    let segs: Vec<(&Captured, usize)> = conn
        .segs
        .iter()
        .map(|&(i, dir)| (&caps[i], dir))
        .filter(|(c, _)| c.iface == iface)
        .collect();
    let first_seq = segs
        .iter()
        .filter(|(_, dir)| *dir == d)
        .find_map(|(c, _)| c.packet.tcp.map(|t| t.seq.wrapping_sub(1)));
    let base = conn.isn[d].or(first_seq).unwrap_or(0);
    let rel = |x: u32| u64::from(x.wrapping_sub(base));
    let t0 = segs.first().map_or(0.0, |(c, _)| c.time);
    let shift = conn.window_shift(1 - d);
    let (mut data, mut acks, mut total) = (Vec::new(), Vec::new(), 0);
    let mut snd_max = 0u64;
    let mut t_cut = f64::INFINITY;
    for &(c, dir) in &segs {
        let Some(t) = c.packet.tcp else { continue };
        let time = c.time - t0;
        if time > t_cut {
            break;
        }
        if dir == d && t.payload_len > 0 {
            let start = rel(t.seq);
            if start >= BEFORE_BASE {
                continue;
            }
            total += 1;
            if data.len() == MAX_DRAWN {
                t_cut = time;
                continue;
            }
            let end = start + t.payload_len as u64;
            data.push(DataSeg {
                t: time,
                start,
                end,
                retrans: start < snd_max,
            });
            snd_max = snd_max.max(end);
        } else if dir != d && t.flags.is_ack() {
            let ack = rel(t.ack);
            if ack >= BEFORE_BASE || acks.len() >= 2 * MAX_DRAWN {
                continue;
            }
            let syn = t.flags.contains(crate::capture::decode::TcpFlags::SYN);
            let win = u64::from(t.window) << if syn { 0 } else { shift };
            let edge = ack + win;
            let pure = t.payload_len == 0 && t.flags.0 & 0x07 == 0;
            let dup = pure
                && ack < snd_max
                && acks
                    .last()
                    .is_some_and(|p: &AckPt| p.ack == ack && p.edge == edge);
            acks.push(AckPt {
                t: time,
                ack,
                edge,
                dup,
            });
        }
    }
    if t_cut.is_finite() {
        total += segs
            .iter()
            .filter(|(c, dir)| c.time - t0 > t_cut && *dir == d && data_len(c) > 0)
            .count();
    }
    let t_last = segs.last().map_or(0.0, |(c, _)| c.time - t0);
    let end_name = |e: (std::net::Ipv4Addr, u16)| format!("{}.{}", names.host(e.0), port_name(e.1));
    SeqSeries {
        sender: format!(
            "{} > {}",
            end_name(conn.ends[d]),
            end_name(conn.ends[1 - d])
        ),
        receiver: names.host(conn.ends[1 - d].0),
        data,
        acks,
        total_data: total,
        shift,
        t_end: if t_cut.is_finite() { t_cut } else { t_last },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_frames::*;

    #[test]
    fn a_bulk_transfer_gives_one_series_with_its_retransmission() {
        let packets = decode_all(&bulk_frames(12));
        let caps = captured(&packets, 0.001);
        let series = bulk_series(&caps, &Conns::new(&caps), &lab_names());
        assert_eq!(series.len(), 1, "only bsdi sends data");
        let s = &series[0];
        assert_eq!(s.sender, "bsdi.1036 > svr4.discard");
        assert_eq!(s.receiver, "svr4");
        assert_eq!(s.total_data, 13);
        assert_eq!(s.data.len(), 13);
        assert_eq!((s.data[0].start, s.data[0].end), (1, 1025));
        let re = s.retransmissions();
        assert_eq!(re.len(), 1);
        assert_eq!((s.data[re[0]].start, s.data[re[0]].end), (3073, 4097));
        assert_eq!(s.shift, 2);
        // The SYN's window is not scaled; later ones are (1000 << 2).
        assert_eq!(s.acks[0].edge, 1 + 4096);
        assert_eq!(s.acks[1].edge - s.acks[1].ack, 4000);
        assert_eq!(s.acks.iter().filter(|a| a.dup).count(), 3);
    }

    #[test]
    fn two_data_segments_give_no_series_and_the_drawn_segments_are_capped() {
        let packets = decode_all(&bulk_frames(2));
        let caps = captured(&packets, 0.001);
        assert!(bulk_series(&caps, &Conns::new(&caps), &lab_names()).is_empty());
        let packets = decode_all(&bulk_frames(MAX_DRAWN + 10));
        let caps = captured(&packets, 0.001);
        let series = bulk_series(&caps, &Conns::new(&caps), &lab_names());
        assert_eq!(series[0].data.len(), MAX_DRAWN);
        assert_eq!(series[0].total_data, MAX_DRAWN + 11);
        let last = series[0].data[MAX_DRAWN - 1].t;
        assert!(series[0].acks.iter().all(|a| a.t <= series[0].t_end));
        assert!(series[0].t_end > last);
    }
}
