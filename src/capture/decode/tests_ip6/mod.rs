//! Tests of IPv6, its extension headers, ICMPv6 and IGMP against tcpdump.
//!
//! Every expected line below is what `tcpdump -n -S -r` (tcpdump 4.99.3,
//! libpcap 1.10.3) printed for the same bytes written to a pcap file: the
//! frames of `testdata/lab_ipv6.txt` were captured on a veth in a namespace
//! pair, the others are built here and were run through tcpdump the same way
//! (cut frames with the original length in the record, as a snap length
//! leaves them). `tcpdump_agrees_today` runs tcpdump again when it is installed.

mod frames;

use std::net::Ipv4Addr;

use super::*;
use frames::*;

#[test]
fn captured_lab_frames_print_as_tcpdump_printed_them() {
    let frames = lab_frames();
    assert!(frames.len() >= 25, "{} frames in the fixture", frames.len());
    for (line, bytes) in frames {
        assert_eq!(decode(&bytes).to_string(), line);
    }
}

#[test]
fn crafted_frames_print_as_tcpdump_prints_them() {
    for (frame, line) in crafted() {
        assert_eq!(decode(&frame).to_string(), line, "{frame:02x?}");
    }
}

#[test]
fn cut_frames_end_with_tcpdumps_marker() {
    for (frame, n, line) in cut() {
        let p = decode(&frame[..n]);
        assert_eq!(p.to_string(), line, "cut at {n}: {frame:02x?}");
        assert!(p.truncated.is_some(), "cut at {n}: {line}");
    }
}

#[test]
fn ipv6_icmp6_and_igmp_fields() {
    let p = decode(&mld(143, "ff02::16", &[0, 0, 0, 0]));
    let ip = p.ipv6.unwrap();
    assert_eq!(ip.router_alert(), Some(0));
    assert_eq!(ip.upper_proto, Some(IPPROTO_ICMPV6));
    assert_eq!((ip.hop_limit, ip.payload_len, ip.upper_len), (255, 16, 8));
    assert!(matches!(
        ip.extensions().next(),
        Some(Ipv6Ext::HopByHop { .. })
    ));
    let m = p.icmp6.unwrap();
    assert!(m.is_mld() && !m.is_error());
    assert_eq!(m.records, Some(0));

    let ns = [&[0u8; 4][..], &a6("fe80::1")].concat();
    let m = decode(&eth6(58, "::", "ff02::1:ff00:1", &icmp6(135, 0, &ns)))
        .icmp6
        .unwrap();
    assert!(m.is_neighbor_discovery());
    assert_eq!(m.target, Some("fe80::1".parse().unwrap()));

    let p = decode(&eth6(58, "fd00::1", "fd00::2", &echo(129, 5, 6)));
    assert!(p.icmp6.unwrap().is_echo_reply());
    assert_eq!(p.icmp6.unwrap().echo, Some(IcmpEcho { id: 5, seq: 6 }));
    assert!(!p.is_echo_reply(), "is_echo_reply is about ICMP for IPv4");

    let m = decode(&icmp6_error(1, 4, 0)).icmp6.unwrap();
    let q = m.quote.unwrap();
    assert_eq!((q.proto, q.dst_port), (Some(IPPROTO_UDP), Some(33434)));
    assert_eq!(
        decode(&icmp6_error(2, 0, 1280)).icmp6.unwrap().mtu,
        Some(1280)
    );

    let p = decode(&eth6(17, "fd00::1", "fd00::2", &udp(3000, 4000, 4)));
    assert_eq!(p.ports(), Some((3000, 4000)));
    let frag = [&[17, 0, 0x05, 0xc9, 0, 0, 0, 42][..], &[0x55; 8]].concat();
    let f = decode(&eth6(44, "fd00::1", "fd00::2", &frag)).ipv6.unwrap();
    let fr = f.fragment().unwrap();
    assert_eq!((fr.offset, fr.more_fragments, fr.id), (1480, true, 42));
    assert_eq!(f.upper_proto, None);

    let g = decode(&igmp("224.0.0.2", &[0x17, 0, 0, 0, 239, 1, 2, 3]))
        .igmp
        .unwrap();
    assert_eq!(
        (g.igmp_type, g.group),
        (Igmp::LEAVE, Some(Ipv4Addr::new(239, 1, 2, 3)))
    );
    assert!(!g.is_report());
}

#[test]
fn every_cut_of_every_frame_decodes() {
    let all = crafted()
        .into_iter()
        .map(|(f, _)| f)
        .chain(lab_frames().into_iter().map(|(_, f)| f));
    for f in all {
        for n in 0..=f.len() {
            let p = decode(&f[..n]);
            assert!(!p.to_string().is_empty());
            assert_eq!(p.frame_len, n);
        }
    }
}

#[test]
fn garbled_ipv6_never_panics() {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let frames: Vec<Vec<u8>> = crafted().into_iter().map(|(f, _)| f).collect();
    for _ in 0..20_000 {
        let mut f = frames[(rnd() as usize) % frames.len()].clone();
        for _ in 0..(rnd() % 6) {
            // Past the Ethernet header, where the IP layers are.
            let at = 14 + (rnd() as usize) % (f.len() - 14);
            f[at] = rnd() as u8;
        }
        let cut = (rnd() as usize) % (f.len() + 1);
        let _ = decode(&f[..cut]).to_string();
    }
}

/// Runs tcpdump on the frames (each also cut at every length, the original
/// length kept in the record) and returns its first line for each.
fn tcpdump_lines(frames: &[(Vec<u8>, usize)]) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.pcap");
    let file = std::fs::File::create(&path).unwrap();
    let mut w =
        crate::capture::pcap::PcapWriter::new(file, 0, crate::capture::pcap::TsResolution::Micro)
            .unwrap();
    for (i, (f, n)) in frames.iter().enumerate() {
        let ts = (i as u64 + 1) * 1_000_000_000;
        w.write_packet(ts, f.len() as u32, &f[..*n]).unwrap();
    }
    w.flush().unwrap();
    let out = std::process::Command::new("tcpdump")
        .args(["-#", "-n", "-S", "-t", "-r"])
        .arg(&path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Lines start with the packet number; hex dumps follow on indented lines.
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (num, rest) = l.split_once("  ")?;
            num.parse::<usize>().ok().map(|_| rest.to_string())
        })
        .collect();
    Some(lines)
}

#[test]
fn tcpdump_agrees_today() {
    if std::process::Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: tcpdump is not installed");
        return;
    }
    let mut frames = Vec::new();
    for (f, _) in crafted() {
        for n in 1..=f.len() {
            frames.push((f.clone(), n));
        }
    }
    let lines = tcpdump_lines(&frames).expect("tcpdump runs");
    assert_eq!(lines.len(), frames.len(), "one line per frame");
    let mut wrong = Vec::new();
    for ((f, n), theirs) in frames.iter().zip(&lines) {
        let ours = decode(&f[..*n]).to_string();
        if &ours != theirs {
            wrong.push(format!(
                "cut at {n} of {}:\n  tcpdump {theirs:?}\n  tcplab  {ours:?}",
                f.len()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} lines differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
