//! Frames for the IPv6, ICMPv6 and IGMP tests, with the lines tcpdump printed
//! for them (see the module above).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::super::*;

pub(super) const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x35];
pub(super) const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x33];
/// Hop-by-hop options of an MLD message: router alert 0, then PadN.
pub(super) const RTALERT: [u8; 6] = [5, 2, 0, 0, 1, 0];

pub(super) fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [MAC_B, MAC_A].concat();
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub(super) fn a6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

pub(super) fn a4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

/// An IPv6 frame; `plen` overrides the payload length field.
pub(super) fn ip6_plen(nh: u8, src: &str, dst: &str, payload: &[u8], plen: Option<u16>) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&plen.unwrap_or(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[nh, 255]);
    h.extend_from_slice(&a6(src));
    h.extend_from_slice(&a6(dst));
    h.extend_from_slice(payload);
    h
}

pub(super) fn ip6(nh: u8, src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    ip6_plen(nh, src, dst, payload, None)
}

pub(super) fn eth6(nh: u8, src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    eth(ETHERTYPE_IPV6, &ip6(nh, src, dst, payload))
}

pub(super) fn ip4(proto: u8, src: &str, dst: &str, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let hl = 20 + opts.len();
    let mut h = vec![0x40 | (hl / 4) as u8, 0];
    h.extend_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0, 0, 1, proto, 0, 0]);
    h.extend_from_slice(&a4(src));
    h.extend_from_slice(&a4(dst));
    h.extend_from_slice(opts);
    h.extend_from_slice(payload);
    h
}

pub(super) fn eth4(proto: u8, src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    eth(ETHERTYPE_IPV4, &ip4(proto, src, dst, &[], payload))
}

pub(super) fn icmp6(t: u8, code: u8, body: &[u8]) -> Vec<u8> {
    [&[t, code, 0, 0][..], body].concat()
}

/// An extension header of options (hop-by-hop or destination) before `nh`.
pub(super) fn opts_hdr(nh: u8, opts: &[u8]) -> Vec<u8> {
    assert_eq!((opts.len() + 2) % 8, 0);
    [&[nh, ((opts.len() + 2) / 8 - 1) as u8][..], opts].concat()
}

pub(super) fn udp(sport: u16, dport: u16, data: usize) -> Vec<u8> {
    let mut u = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
    u.extend_from_slice(&((8 + data) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend(std::iter::repeat_n(0x55, data));
    u
}

pub(super) fn tcp_syn(sport: u16, dport: u16, seq: u32, data: usize) -> Vec<u8> {
    let mut t = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0x01, 0xf4, 0, 0, 0, 0]);
    t.extend(std::iter::repeat_n(0x41, data));
    t
}

pub(super) fn echo(t: u8, id: u16, seq: u16) -> Vec<u8> {
    icmp6(t, 0, &[id.to_be_bytes(), seq.to_be_bytes()].concat())
}

/// An error message quoting a UDP datagram from fd00::1 to fd00::99.
pub(super) fn icmp6_error(t: u8, code: u8, word: u32) -> Vec<u8> {
    let quoted = ip6(17, "fd00::1", "fd00::99", &udp(3, 33434, 4));
    eth6(
        58,
        "fd00::2",
        "fd00::1",
        &icmp6(t, code, &[&word.to_be_bytes()[..], &quoted].concat()),
    )
}

pub(super) fn mld(t: u8, dst: &str, body: &[u8]) -> Vec<u8> {
    eth6(
        0,
        "fe80::1",
        dst,
        &[opts_hdr(58, &RTALERT), icmp6(t, 0, body)].concat(),
    )
}

pub(super) fn igmp(dst: &str, msg: &[u8]) -> Vec<u8> {
    eth4(2, "10.0.0.1", dst, msg)
}

/// Frames built here, each with the line tcpdump printed for it.
#[rustfmt::skip]
pub(super) fn crafted() -> Vec<(Vec<u8>, &'static str)> {
    let e = echo(128, 7, 9);
    let frag_udp = [&[17, 0, 0, 1, 0, 0, 0, 42][..], &udp(1, 2, 100)[..64]].concat();
    let rt0 = [&[58, 2, 0, 1, 0, 0, 0, 0][..], &a6("fd00::9"), &e].concat();
    let du4_tcp = ip6(6, "fd00::1", "fd00::99", &tcp_syn(3, 80, 1, 0));
    let ra = [
        &[64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1][..],
        &MAC_A,
        &[5, 1, 0, 0, 0, 0, 5, 0xdc],
    ]
    .concat();
    let ns = [&[0u8; 4][..], &a6("fe80::1")].concat();
    let na = [&[0xe0u8, 0, 0, 0][..], &a6("fe80::1"), &[2, 1], &MAC_A].concat();
    let redirect = [&[0u8; 4][..], &a6("fe80::5"), &a6("fd00::7")].concat();
    let mld2q = [&[0x27u8, 0x10, 0, 0][..], &a6("::"), &[2, 125, 0, 0]].concat();
    let mld2q_src = [
        &[0x03u8, 0xe8, 0, 0][..],
        &a6("ff05::1:3"),
        &[2, 125, 0, 1],
        &a6("fd00::5"),
    ]
    .concat();
    let mld2r = [&[0u8, 0, 0, 1, 4, 0, 0, 0][..], &a6("ff02::1:ff00:1")].concat();
    let v3r = [
        &[0x22u8, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0][..],
        &a4("239.1.2.3"),
    ]
    .concat();
    let v3q = [
        &[0x11u8, 10, 0, 0][..],
        &a4("239.1.2.3"),
        &[2, 125, 0, 1],
        &a4("10.0.0.9"),
    ]
    .concat();
    vec![
        (eth6(2, "fd00::1", "fd00::2", &[0x16, 0, 0, 0, 239, 1, 2, 3]), "IP6 fd00::1 > fd00::2: [IGMP requires IPv4] (invalid)"),
        (eth6(253, "fd00::1", "fd00::2", &[0x78; 8]), "IP6 fd00::1 > fd00::2:  ip-proto-253 8"),
        (eth4(253, "10.0.0.1", "10.0.0.2", &[0x78; 8]), "IP 10.0.0.1 > 10.0.0.2:  ip-proto-253 8"),
        (eth4(58, "10.0.0.1", "10.0.0.2", &e), "IP 10.0.0.1 > 10.0.0.2: [ICMPv6 requires IPv6] (invalid)"),
        (eth6(59, "fd00::1", "fd00::2", &[]), "IP6 fd00::1 > fd00::2: no next header"),
        (eth6(0, "fd00::1", "fd00::2", &[opts_hdr(17, &RTALERT), udp(3000, 4000, 5)].concat()), "IP6 fd00::1 > fd00::2: HBH 3000 > 4000: UDP, length 5"),
        (eth6(60, "fd00::1", "fd00::2", &[opts_hdr(58, &[1, 4, 0, 0, 0, 0]), e.clone()].concat()), "IP6 fd00::1 > fd00::2: DSTOPT ICMP6, echo request, id 7, seq 9, length 8"),
        (eth6(43, "fd00::1", "fd00::2", &rt0), "IP6 fd00::1 > fd00::2: RT6 (len=2, type=0 [Deprecated], segleft=1, [0]fd00::9) ICMP6, echo request, id 7, seq 9, length 8"),
        (eth6(43, "fd00::1", "fd00::2", &[&[58, 0, 7, 0, 0, 0, 0, 0][..], &e].concat()), "IP6 fd00::1 > fd00::2: RT6 (len=0, type=7, segleft=0 (unknown type) (invalid)"),
        (eth6(44, "fd00::1", "fd00::2", &frag_udp), "IP6 fd00::1 > fd00::2: frag (0|64) 1 > 2: UDP, length 100"),
        (eth6(44, "fd00::1", "fd00::2", &[&[17, 0, 0, 64, 0, 0, 0, 42][..], &[0x55; 44]].concat()), "IP6 fd00::1 > fd00::2: frag (64|44)"),
        (eth6(44, "fd00::1", "fd00::2", &[&[6, 0, 0, 1, 0, 0, 0, 42][..], &tcp_syn(1, 2, 100, 20)].concat()), "IP6 fd00::1 > fd00::2: frag (0|40) 1 > 2: Flags [S], seq 100:120, win 500, length 20"),
        (eth6(0, "fd00::1", "fd00::2", &[opts_hdr(44, &RTALERT), vec![58, 0, 0, 0, 0, 0, 0, 42], echo(128, 1, 2)] .concat()), "IP6 fd00::1 > fd00::2: HBH frag (0|8) ICMP6, echo request, id 1, seq 2, length 8"),
        (eth6(58, "fe80::1", "ff02::1", &icmp6(134, 0, &ra)), "IP6 fe80::1 > ff02::1: ICMP6, router advertisement, length 32"),
        (eth6(58, "::", "ff02::1:ff00:1", &icmp6(135, 0, &ns)), "IP6 :: > ff02::1:ff00:1: ICMP6, neighbor solicitation, who has fe80::1, length 24"),
        (eth6(58, "fe80::1", "fe80::2", &icmp6(136, 0, &na)), "IP6 fe80::1 > fe80::2: ICMP6, neighbor advertisement, tgt is fe80::1, length 32"),
        (eth6(58, "fe80::1", "fe80::2", &icmp6(137, 0, &redirect)), "IP6 fe80::1 > fe80::2: ICMP6, redirect, fd00::7 to fe80::5, length 40"),
        (icmp6_error(3, 0, 0), "IP6 fd00::2 > fd00::1: ICMP6, time exceeded in-transit for fd00::99, length 60"),
        (icmp6_error(3, 1, 0), "IP6 fd00::2 > fd00::1: ICMP6, time exceeded in-transit (reassembly), length 60"),
        (icmp6_error(3, 5, 0), "IP6 fd00::2 > fd00::1: ICMP6, time exceeded in-transit, unknown code (5), length 60"),
        (icmp6_error(4, 0, 40), "IP6 fd00::2 > fd00::1: ICMP6, parameter problem, erroneous - octet 40, length 60"),
        (icmp6_error(4, 1, 40), "IP6 fd00::2 > fd00::1: ICMP6, parameter problem, next header - octet 40, length 60"),
        (icmp6_error(4, 2, 40), "IP6 fd00::2 > fd00::1: ICMP6, parameter problem, option - octet 40, length 60"),
        (icmp6_error(4, 3, 40), "IP6 fd00::2 > fd00::1: ICMP6, parameter problem, incomplete header chain - octet 40, length 60"),
        (icmp6_error(4, 9, 40), "IP6 fd00::2 > fd00::1: ICMP6, parameter problem, code-#9, length 60"),
        (icmp6_error(1, 0, 0), "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable route fd00::99, length 60"),
        (icmp6_error(1, 1, 0), "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable,  unreachable prohibited fd00::99, length 60"),
        (icmp6_error(1, 2, 0), "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, beyond scope fd00::99, source address fd00::1, length 60"),
        (icmp6_error(1, 3, 0), "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable address fd00::99, length 60"),
        (icmp6_error(1, 4, 0), "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable port, fd00::99 udp port 33434, length 60"),
        (eth6(58, "fd00::2", "fd00::1", &icmp6(1, 4, &[&[0u8; 4][..], &du4_tcp].concat())), "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable port, fd00::99 tcp port 80, length 68"),
        (icmp6_error(2, 0, 1280), "IP6 fd00::2 > fd00::1: ICMP6, packet too big, mtu 1280, length 60"),
        (eth6(58, "fd00::2", "fd00::1", &icmp6(144, 0, &[0x12, 0x34, 0, 0])), "IP6 fd00::2 > fd00::1: ICMP6, ha discovery request, id 0x1234, length 8"),
        (eth6(58, "fd00::2", "fd00::1", &icmp6(141, 0, &[0; 4])), "IP6 fd00::2 > fd00::1: ICMP6, inverse neighbor solicitation, length 8"),
        (mld(130, "ff02::1", &mld2q), "IP6 fe80::1 > ff02::1: HBH ICMP6, multicast listener query v2 [gaddr ::], length 28"),
        (mld(130, "ff05::1:3", &mld2q_src), "IP6 fe80::1 > ff05::1:3: HBH ICMP6, multicast listener query v2 [gaddr ff05::1:3, 1 source(s)], length 44"),
        (mld(130, "ff05::1:3", &mld2q_src[..22]), "IP6 fe80::1 > ff05::1:3: HBH ICMP6, multicast listener query unknown-version (len 26) , length 26"),
        (mld(131, "ff05::2", &[&[0u8; 4][..], &a6("ff05::2")].concat()), "IP6 fe80::1 > ff05::2: HBH ICMP6, multicast listener reportmax resp delay: 0 addr: ff05::2, length 24"),
        (mld(143, "ff02::16", &mld2r), "IP6 fe80::1 > ff02::16: HBH ICMP6, multicast listener report v2, 1 group record(s), length 28"),
        (mld(143, "ff02::16", &[]), "IP6 fe80::1 > ff02::16: HBH ICMP6, multicast listener report v2 [invalid len 4], length 4"),
        (eth(ETHERTYPE_IPV6, &ip6_plen(58, "fd00::1", "fd00::2", &echo(128, 1, 2), Some(0))), "IP6 fd00::1 > fd00::2: ICMP6, length 0 (invalid)"),
        (eth(ETHERTYPE_IPV6, &ip6_plen(0, "fd00::1", "fd00::2", &[opts_hdr(58, &RTALERT), e.clone()].concat(), Some(0))), "IP6 fd00::1 > fd00::2: HBH [No valid Jumbo Payload Hop-by-Hop option found] (invalid)"),
        (eth(ETHERTYPE_IPV6, &[&[0x40][..], &ip6(58, "fd00::1", "fd00::2", &e)[1..]].concat()), "IP6 version error: 4 != 6"),
        (eth(ETHERTYPE_IPV6, &[ip6(58, "fd00::1", "fd00::2", &echo(128, 1, 2)), vec![0; 6]].concat()), "IP6 fd00::1 > fd00::2: ICMP6, echo request, id 1, seq 2, length 8"),
        (igmp("224.0.0.22", &v3r), "IP 10.0.0.1 > 224.0.0.22: igmp v3 report, 1 group record(s)"),
        (igmp("224.0.0.1", &[0x11, 100, 0, 0, 0, 0, 0, 0, 2, 125, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp query v3"),
        (igmp("239.1.2.3", &v3q), "IP 10.0.0.1 > 239.1.2.3: igmp query v3 [max resp time 1.0s] [gaddr 239.1.2.3, 1 source(s)]"),
        (igmp("224.0.0.1", &[0x11, 200, 0, 0, 0, 0, 0, 0, 2, 125, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp query v3 [max resp time 5m7s]"),
        (igmp("224.0.0.1", &[0x11, 0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp query v3 [max resp time 24.8s]"),
        (igmp("224.0.0.1", &[0x11, 100, 0, 0, 239, 1, 1, 1, 0, 0, 0, 3]), "IP 10.0.0.1 > 224.0.0.1: igmp query v3 [gaddr 239.1.1.1 [invalid number of sources]]"),
        (igmp("224.0.0.1", &[0x11, 100, 0, 0, 239, 1, 1, 1, 0, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp query v3 [invalid len 13]"),
        (igmp("239.1.2.3", &[0x12, 0, 0, 0, 239, 1, 2, 3]), "IP 10.0.0.1 > 239.1.2.3: igmp v1 report 239.1.2.3"),
        (igmp("224.0.0.1", &[0x12, 0, 0, 0, 239, 1, 1, 1, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp v1 report 239.1.1.1 [len 12]"),
        (igmp("224.0.0.1", &[0x11, 0, 0, 0, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp query v1"),
        (igmp("224.0.0.1", &[0x11, 50, 0, 0, 0, 0, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp query v2 [max resp time 50] [len 10]"),
        (igmp("224.0.0.22", &[0x22, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.22: igmp v3 report [invalid len 14]"),
        (igmp("224.0.0.1", &[0x99, 0, 0, 0, 0, 0, 0, 0]), "IP 10.0.0.1 > 224.0.0.1: igmp-153"),
    ]
}

/// Frames cut at `n` bytes (of the Ethernet frame), with tcpdump's line.
#[rustfmt::skip]
pub(super) fn cut() -> Vec<(Vec<u8>, usize, &'static str)> {
    let ns = eth6(
        58,
        "fe80::2",
        "ff02::1:ff00:1",
        &icmp6(135, 0, &[&[0u8; 4][..], &a6("fe80::1")].concat()),
    );
    let mld2r = mld(
        143,
        "ff02::16",
        &[&[0u8, 0, 0, 1, 4, 0, 0, 0][..], &a6("ff02::1:ff00:1")].concat(),
    );
    let du4 = icmp6_error(1, 4, 0);
    let u = eth6(17, "fd00::1", "fd00::2", &udp(3000, 4000, 4));
    let t = eth6(6, "fd00::1", "fd00::2", &tcp_syn(80, 1234, 1000, 0));
    let frag = eth6(
        44,
        "fd00::1",
        "fd00::2",
        &[&[17, 0, 0, 1, 0, 0, 0, 42][..], &udp(3000, 4000, 100)[..64]].concat(),
    );
    let rt0 = eth6(
        43,
        "fd00::1",
        "fd00::2",
        &[
            &[58, 2, 0, 1, 0, 0, 0, 0][..],
            &a6("fd00::9"),
            &echo(128, 7, 9),
        ]
        .concat(),
    );
    let mq = mld(
        130,
        "ff05::1:3",
        &[
            &[0x03u8, 0xe8, 0, 0][..],
            &a6("ff05::1:3"),
            &[2, 125, 0, 1],
            &a6("fd00::5"),
        ]
        .concat(),
    );
    let m1 = mld(131, "ff05::2", &[&[0u8; 4][..], &a6("ff05::2")].concat());
    let v3q = igmp(
        "239.1.2.3",
        &[
            &[0x11u8, 10, 0, 0][..],
            &a4("239.1.2.3"),
            &[2, 125, 0, 1],
            &a4("10.0.0.9"),
        ]
        .concat(),
    );
    let v3r = igmp(
        "224.0.0.22",
        &[
            &[0x22u8, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0][..],
            &a4("239.1.2.3"),
        ]
        .concat(),
    );
    let v2 = eth(
        ETHERTYPE_IPV4,
        &ip4(
            2,
            "10.0.0.1",
            "239.1.2.3",
            &[0x94, 4, 0, 0],
            &[0x16, 0, 0, 0, 239, 1, 2, 3],
        ),
    );
    let i4 = eth4(
        1,
        "10.0.0.1",
        "10.0.0.2",
        &[8, 0, 0, 0, 0, 1, 0, 2, 0x78, 0x78, 0x78, 0x78],
    );
    vec![
        (ns.clone(), 14, " [|ip6]"),
        (ns.clone(), 53, " [|ip6]"),
        (ns.clone(), 54, "IP6 fe80::2 > ff02::1:ff00:1:  [|icmp6]"),
        (ns.clone(), 55, "IP6 fe80::2 > ff02::1:ff00:1: ICMP6, neighbor solicitation [|icmp6]"),
        (ns.clone(), 77, "IP6 fe80::2 > ff02::1:ff00:1: ICMP6, neighbor solicitation [|icmp6]"),
        (mld2r.clone(), 54, "IP6 fe80::1 > ff02::16:  [|hbhopt]"),
        (mld2r.clone(), 61, "IP6 fe80::1 > ff02::16:  [|hbhopt]"),
        (mld2r.clone(), 62, "IP6 fe80::1 > ff02::16: HBH  [|icmp6]"),
        (mld2r.clone(), 63, "IP6 fe80::1 > ff02::16: HBH ICMP6, multicast listener report v2 [|icmp6]"),
        (mld2r.clone(), 70, "IP6 fe80::1 > ff02::16: HBH ICMP6, multicast listener report v2, 1 group record(s), length 28"),
        (du4.clone(), 56, "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable port [|icmp6]"),
        (du4.clone(), 105, "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable port [|icmp6]"),
        (du4.clone(), 106, "IP6 fd00::2 > fd00::1: ICMP6, destination unreachable, unreachable port, fd00::99 udp port 33434, length 60"),
        (u.clone(), 54, "IP6 fd00::1 > fd00::2:  [|udp]"),
        (u.clone(), 58, "IP6 fd00::1.3000 > fd00::2.4000:  [|udp]"),
        (t.clone(), 57, "IP6 fd00::1 > fd00::2: [|tcp]"),
        (t.clone(), 58, "IP6 fd00::1.80 > fd00::2.1234:  [|tcp]"),
        (frag.clone(), 54, "IP6 fd00::1 > fd00::2:  [|frag6]"),
        (frag.clone(), 58, "IP6 fd00::1 > fd00::2: frag (0|64) "),
        (frag.clone(), 63, "IP6 fd00::1 > fd00::2: frag (0|64)  [|udp]"),
        (frag.clone(), 66, "IP6 fd00::1 > fd00::2: frag (0|64) 3000 > 4000:  [|udp]"),
        (rt0.clone(), 54, "IP6 fd00::1 > fd00::2:  [|ip6]"),
        (rt0.clone(), 55, "IP6 fd00::1 > fd00::2: RT6 [|rt6]"),
        (rt0.clone(), 56, "IP6 fd00::1 > fd00::2: RT6 (len=2 [|rt6]"),
        (rt0.clone(), 57, "IP6 fd00::1 > fd00::2: RT6 (len=2, type=0 [Deprecated] [|rt6]"),
        (rt0.clone(), 77, "IP6 fd00::1 > fd00::2: RT6 (len=2, type=0 [Deprecated], segleft=1 [|rt6]"),
        (rt0.clone(), 78, "IP6 fd00::1 > fd00::2: RT6 (len=2, type=0 [Deprecated], segleft=1, [0]fd00::9)  [|icmp6]"),
        (mq.clone(), 64, "IP6 fe80::1 > ff05::1:3: HBH ICMP6, multicast listener query v2 [|icmp6]"),
        (mq.clone(), 86, "IP6 fe80::1 > ff05::1:3: HBH ICMP6, multicast listener query v2 [gaddr ff05::1:3 [|icmp6]"),
        (m1.clone(), 64, "IP6 fe80::1 > ff05::2: HBH ICMP6, multicast listener report, length 24"),
        (v3q.clone(), 35, "IP 10.0.0.1 > 239.1.2.3: igmp query v3 [|igmp]"),
        (v3q.clone(), 36, "IP 10.0.0.1 > 239.1.2.3: igmp query v3 [max resp time 1.0s] [|igmp]"),
        (v3q.clone(), 42, "IP 10.0.0.1 > 239.1.2.3: igmp query v3 [max resp time 1.0s] [gaddr 239.1.2.3 [|igmp]"),
        (v3r.clone(), 35, "IP 10.0.0.1 > 224.0.0.22: igmp v3 report [|igmp]"),
        (v2.clone(), 34, "IP 10.0.0.1 > 239.1.2.3:  [remaining caplen(20) < header length(24)] [|ip]"),
        (v2.clone(), 38, "IP 10.0.0.1 > 239.1.2.3:  [|igmp]"),
        (v2.clone(), 41, "IP 10.0.0.1 > 239.1.2.3:  [|igmp]"),
        (i4.clone(), 14, " [|ip]"),
        (i4.clone(), 15, "IP  [|ip]"),
        (i4.clone(), 41, "IP 10.0.0.1 > 10.0.0.2:  [|icmp]"),
        (i4.clone(), 5, " [|ether]"),
    ]
}

/// The frames of `testdata/lab_ipv6.txt`: tcpdump's line and the bytes.
pub(super) fn lab_frames() -> Vec<(String, Vec<u8>)> {
    let text = include_str!("../testdata/lab_ipv6.txt");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    lines
        .chunks(2)
        .map(|c| {
            let hex = c[1].as_bytes();
            let bytes = hex
                .chunks(2)
                .map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap())
                .collect();
            (c[0].to_string(), bytes)
        })
        .collect()
}
