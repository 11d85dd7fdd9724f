//! Packet lines the way Stevens' *TCP/IP Illustrated, Vol. 1* prints them (the book's
//! cleaned-up tcpdump output): host names instead of addresses, service names for
//! well-known ports, TCP as `bsdi.1024 > svr4.discard: S 1415531521:1415531521(0) win 4096
//! <mss 1024>` with sequence and acknowledgment numbers relative to each side's ISN after
//! the SYNs, `udp N`, `icmp: ...`, `arp who-has svr4 tell bsdi`, and fragments as
//! `(frag id:size@offset+)`.

use super::Names;
use super::services::port_name;
use super::tcpconn::{Captured, Conn, Conns};
use crate::capture::Packet;
use crate::capture::decode::{ArpOp, MacAddr, Tcp, TcpFlags, TcpOption};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// How much a line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detail {
    /// Everything: the packet table's lines.
    Full,
    /// For an arrow of a figure: without the timestamps option after the SYNs (the book's
    /// hosts sent none, and on every segment it would double the label's length), the
    /// options held together by no-break spaces.
    Figure,
}

/// The book-style line of each packet of a capture (`conns` sorted from the same packets).
pub(super) fn book_lines(
    caps: &[Captured],
    conns: &Conns,
    names: &Names,
    detail: Detail,
) -> Vec<String> {
    caps.iter()
        .enumerate()
        .map(|(i, c)| {
            let conn = conns
                .of_packet
                .get(i)
                .copied()
                .flatten()
                .map(|(k, d)| (&conns.list[k], d));
            book_line(c.packet, conn, names, detail)
        })
        .collect()
}

/// One packet's line; `conn` is its TCP connection and direction, when it has one.
pub(super) fn book_line(
    p: &Packet,
    conn: Option<(&Conn, usize)>,
    names: &Names,
    detail: Detail,
) -> String {
    if let Some(a) = p.arp {
        return match a.op {
            ArpOp::Request => format!(
                "arp who-has {} tell {}",
                names.host(a.target_ip),
                names.host(a.sender_ip)
            ),
            ArpOp::Reply => format!(
                "arp reply {} is-at {}",
                names.host(a.sender_ip),
                short_mac(&a.sender_mac)
            ),
            ArpOp::Other(_) => name_addresses(&p.to_string(), names),
        };
    }
    let Some(ip) = p.ipv4 else {
        return p.to_string().trim().to_string();
    };
    let (src, dst) = (names.host(ip.src), names.host(ip.dst));
    let mut s = match (p.tcp, p.udp) {
        (Some(t), _) => tcp_line(&t, (&src, &dst), conn, detail),
        (None, Some(u)) => format!(
            "{src}.{} > {dst}.{}: udp {}",
            port_name(u.src_port),
            port_name(u.dst_port),
            u.payload_len
        ),
        _ if !ip.is_first_fragment() => format!("{src} > {dst}:"),
        _ if p.icmp.is_some() => format!("{src} > {dst}: icmp: {}", icmp_words(p, names)),
        _ => {
            let raw = p.to_string();
            let raw = raw.strip_prefix("IP ").unwrap_or(&raw);
            let raw = raw.split_once(": ").map_or(raw, |(_, rest)| rest);
            format!("{src} > {dst}: {}", name_addresses(raw, names))
        }
    };
    if ip.is_fragment() {
        let more = if ip.more_fragments { "+" } else { "" };
        let _ = write!(
            s,
            " (frag {}:{}@{}{more})",
            ip.id, ip.payload_len, ip.frag_offset
        );
    }
    if ip.ttl <= 1 {
        let _ = write!(s, " [ttl {}]", ip.ttl);
    }
    s
}

/// The TCP line: ends, flags, `start:end(len)`, `ack`, `win`, `urg`, options. Numbers are
/// absolute on a SYN, relative to the ISN of their side afterwards (absolute when that ISN
/// was not captured).
fn tcp_line(
    t: &Tcp,
    (src, dst): (&str, &str),
    conn: Option<(&Conn, usize)>,
    detail: Detail,
) -> String {
    let mut s = format!(
        "{src}.{} > {dst}.{}: {}",
        port_name(t.src_port),
        port_name(t.dst_port),
        book_flags(t.flags)
    );
    let syn = t.flags.contains(TcpFlags::SYN);
    let base = |d: usize| {
        conn.filter(|_| !syn)
            .and_then(|(c, dir)| c.isn[if d == 0 { dir } else { 1 - dir }])
            .unwrap_or(0)
    };
    let (seq_base, ack_base) = (base(0), base(1));
    let len = t.payload_len;
    if len > 0 || t.flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0) != 0 {
        let start = t.seq.wrapping_sub(seq_base);
        let end = start.wrapping_add(len as u32);
        let _ = write!(s, " {start}:{end}({len})");
    }
    if t.flags.is_ack() {
        let _ = write!(s, " ack {}", t.ack.wrapping_sub(ack_base));
    }
    let _ = write!(s, " win {}", t.window);
    if t.flags.contains(TcpFlags::URG) {
        let _ = write!(s, " urg {}", t.urgent);
    }
    let opts: Vec<String> = t
        .options
        .iter()
        .filter(|o| syn || detail == Detail::Full || !matches!(o, TcpOption::Timestamp(..)))
        .filter_map(|o| book_option(o, ack_base))
        .collect();
    if !opts.is_empty() {
        let mut o = opts.join(",");
        if detail == Detail::Figure {
            // One word for the wrapping of a label: its lines break before `<`, not inside.
            o = o.replace(' ', "\u{a0}");
        }
        let _ = write!(s, " <{o}>");
    }
    s
}

/// The book's flags: `S`, `F`, `R`, `P` as set (in that order), `.` when none of them is;
/// then `E` and `W` for the ECN flags.
fn book_flags(f: TcpFlags) -> String {
    let mut s: String = [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
    ]
    .iter()
    .filter(|(b, _)| f.contains(*b))
    .map(|&(_, c)| c)
    .collect();
    if s.is_empty() {
        s.push('.');
    }
    for (b, c) in [(TcpFlags::ECE, 'E'), (TcpFlags::CWR, 'W')] {
        if f.contains(b) {
            s.push(c);
        }
    }
    s
}

/// An option as tcpdump of the book's time wrote it; none for padding (`nop`, `eol`). SACK
/// blocks are relative to `ack_base`, like the acknowledgment number.
fn book_option(o: TcpOption, ack_base: u32) -> Option<String> {
    Some(match o {
        TcpOption::Eol | TcpOption::Nop => return None,
        TcpOption::Mss(v) => format!("mss {v}"),
        TcpOption::WindowScale(v) => format!("wscale {v}"),
        TcpOption::SackPermitted => "sackOK".into(),
        TcpOption::Sack(blocks, n) => {
            let mut s = format!("sack {n}");
            for (l, r) in blocks.iter().take(usize::from(n)) {
                let _ = write!(
                    s,
                    " {{{}:{}}}",
                    l.wrapping_sub(ack_base),
                    r.wrapping_sub(ack_base)
                );
            }
            s
        }
        TcpOption::Timestamp(v, e) => format!("timestamp {v} {e}"),
        TcpOption::Other(k) => format!("opt-{k}"),
    })
}

/// What follows `icmp: `: the decoder's words for the message, with host names, without
/// the length and the echo's id and sequence number (the book prints `echo request`).
fn icmp_words(p: &Packet, names: &Names) -> String {
    let raw = p.to_string();
    let words = raw.split_once("ICMP ").map_or(raw.as_str(), |(_, w)| w);
    let words = match words.rfind(", length ") {
        Some(i) => &words[..i],
        None => words,
    };
    let words = match words.find(", id ") {
        Some(i) if words.starts_with("echo ") => &words[..i],
        _ => words,
    };
    name_addresses(words, names)
}

/// `s` with each word that is an IPv4 address (possibly followed by `:` or `,`) replaced by
/// its host's name.
fn name_addresses(s: &str, names: &Names) -> String {
    s.split(' ')
        .map(|w| {
            let core = w.trim_end_matches([':', ',']);
            match core.parse::<Ipv4Addr>() {
                Ok(a) => format!("{}{}", names.host(a), &w[core.len()..]),
                Err(_) => w.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A MAC address the way the book prints it: hex bytes without leading zeros
/// (`0:0:c0:c2:9b:26`).
fn short_mac(m: &MacAddr) -> String {
    m.0.iter()
        .map(|b| format!("{b:x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_frames::*;

    /// The book lines of `frames`, captured 10 ms apart.
    fn lines_of(frames: &[Vec<u8>]) -> Vec<String> {
        let packets = decode_all(frames);
        let caps = captured(&packets, 0.01);
        book_lines(&caps, &Conns::new(&caps), &lab_names(), Detail::Full)
    }

    #[test]
    fn a_connection_is_written_like_figure_18_1_then_relative() {
        let (b, s) = ((BSDI, 1024), (SVR4, 9));
        let (isn_b, isn_s) = (1_415_531_521, 1_823_083_521);
        let lines = lines_of(&[
            tcp(b, s, "S").seq(isn_b).mss(1024).frame(),
            tcp(s, b, "S.").seq(isn_s).ack(isn_b + 1).mss(1024).frame(),
            tcp(b, s, ".").seq(isn_b + 1).ack(isn_s + 1).frame(),
            tcp(b, s, "P.")
                .seq(isn_b + 1)
                .ack(isn_s + 1)
                .data(1024)
                .frame(),
            tcp(s, b, ".")
                .seq(isn_s + 1)
                .ack(isn_b + 1025)
                .win(3072)
                .frame(),
            tcp(b, s, "F.").seq(isn_b + 1025).ack(isn_s + 1).frame(),
            tcp(s, b, "R").seq(isn_s + 1).frame(),
        ]);
        let want = [
            "bsdi.1024 > svr4.discard: S 1415531521:1415531521(0) win 4096 <mss 1024>",
            "svr4.discard > bsdi.1024: S 1823083521:1823083521(0) ack 1415531522 win 4096 \
             <mss 1024>",
            "bsdi.1024 > svr4.discard: . ack 1 win 4096",
            "bsdi.1024 > svr4.discard: P 1:1025(1024) ack 1 win 4096",
            "svr4.discard > bsdi.1024: . ack 1025 win 3072",
            "bsdi.1024 > svr4.discard: F 1025:1025(0) ack 1 win 4096",
            "svr4.discard > bsdi.1024: R 1:1(0) win 4096",
        ];
        assert_eq!(lines, want);
    }

    #[test]
    fn options_are_named_without_padding_and_numbers_stay_absolute_without_a_syn() {
        let opts = [
            1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0, // nop nop timestamp
            4, 2, 1, 3, 3, 7, // sackOK nop wscale 7
        ];
        let lines = lines_of(&[
            tcp((SUN, 33000), (OUTSIDE, 80), "S")
                .seq(7)
                .mss(1460)
                .opts(&opts)
                .frame(),
            // Another connection whose SYN was not captured: absolute numbers.
            tcp((SLIP, 2000), (BSDI_SLIP, 23), "P.")
                .seq(500)
                .ack(900)
                .data(3)
                .frame(),
        ]);
        assert_eq!(
            lines[0],
            "sun.33000 > 192.0.2.7.http: S 7:7(0) win 4096 \
             <mss 1460,timestamp 5 0,sackOK,wscale 7>"
        );
        assert_eq!(
            lines[1],
            "slip.2000 > bsdi.telnet: P 500:503(3) ack 900 win 4096"
        );
    }

    #[test]
    fn arp_udp_icmp_and_fragments_are_written_like_the_book() {
        let mut quoted = ip_bytes((BSDI, SVR4), 17, (9, 64, 0), &udp_bytes(2924, 8888, 20));
        quoted.truncate(28);
        let mut big = ip_bytes(
            (BSDI, SVR4),
            17,
            (26304, 64, 0x2000),
            &udp_bytes(1112, 9, 1472),
        );
        big.truncate(20 + 1480);
        big[2..4].copy_from_slice(&1500u16.to_be_bytes());
        let lines = lines_of(&[
            arp_frame(1, BSDI, SVR4),
            arp_frame(2, SVR4, BSDI),
            udp_frame((BSDI, 2924), (SVR4, 8888), 20),
            icmp_frame((SVR4, BSDI), (3, 3), [0; 4], &quoted),
            icmp_frame((SVR4, SLIP), (8, 0), [0, 1, 0, 2], &[0; 56]),
            icmp_frame((BSDI, SVR4), (11, 0), [0; 4], &quoted),
            icmp_frame((BSDI, SVR4), (5, 1), [140, 252, 13, 33], &quoted),
            icmp_frame((BSDI, SVR4), (3, 4), [0, 0, 1, 40], &quoted),
            eth(mac_of(SVR4), mac_of(BSDI), 0x0800, &big),
            ip_frame((BSDI, SVR4), 17, (26304, 64, 185), &[0x55]),
            ip_frame((SVR4, SLIP), 17, (5, 1, 0), &udp_bytes(40000, 33435, 12)),
        ]);
        let want = [
            "arp who-has svr4 tell bsdi",
            "arp reply svr4 is-at 2:0:0:0:d:22",
            "bsdi.2924 > svr4.8888: udp 20",
            "svr4 > bsdi: icmp: svr4 udp port 8888 unreachable",
            "svr4 > slip: icmp: echo request",
            "bsdi > svr4: icmp: time exceeded in-transit",
            "bsdi > svr4: icmp: redirect svr4 to host sun",
            "bsdi > svr4: icmp: svr4 unreachable - need to frag (mtu 296)",
            "bsdi.1112 > svr4.discard: udp 1472 (frag 26304:1480@0+)",
            "bsdi > svr4: (frag 26304:1@1480)",
            "svr4.40000 > slip.33435: udp 12 [ttl 1]",
        ];
        assert_eq!(lines, want);
    }

    #[test]
    fn figures_leave_the_timestamps_out_after_the_syns() {
        let ts = [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 9];
        let frames = [
            tcp((BSDI, 1024), (SVR4, 9), "S").seq(1).opts(&ts).frame(),
            tcp((BSDI, 1024), (SVR4, 9), ".")
                .seq(2)
                .ack(7)
                .opts(&ts)
                .frame(),
        ];
        let packets = decode_all(&frames);
        let caps = captured(&packets, 0.01);
        let conns = Conns::new(&caps);
        let full = book_lines(&caps, &conns, &lab_names(), Detail::Full);
        let fig = book_lines(&caps, &conns, &lab_names(), Detail::Figure);
        assert_eq!(full[0], fig[0].replace('\u{a0}', " "));
        assert!(fig[0].ends_with("<timestamp\u{a0}5\u{a0}9>"), "{}", fig[0]);
        assert_eq!(
            full[1],
            "bsdi.1024 > svr4.discard: . ack 7 win 4096 <timestamp 5 9>"
        );
        assert_eq!(fig[1], "bsdi.1024 > svr4.discard: . ack 7 win 4096");
    }

    #[test]
    fn flags_are_the_books_letters() {
        assert_eq!(book_flags(TcpFlags::SYN | TcpFlags::ACK), "S");
        assert_eq!(
            book_flags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK),
            "FP"
        );
        assert_eq!(book_flags(TcpFlags::ACK), ".");
        assert_eq!(book_flags(TcpFlags(0)), ".");
        assert_eq!(book_flags(TcpFlags::RST | TcpFlags::ACK), "R");
        assert_eq!(
            book_flags(TcpFlags::ACK | TcpFlags::ECE | TcpFlags::CWR),
            ".EW"
        );
    }
}
