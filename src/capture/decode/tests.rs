//! Tests of the decoder: each layer's fields and line against tcpdump's, and
//! no panic on cut or garbled frames.

use super::*;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x35];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x33];

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa);
    a
}

/// An IPv4 datagram's bytes (no checksum), for tests that build frames by hand.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    ttl: u8,
    flags_off: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(total as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags_off.to_be_bytes());
    h.push(ttl);
    h.push(proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

fn icmp_echo(t: u8, id: u16, seq: u16, data_len: usize) -> Vec<u8> {
    let mut m = vec![t, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend(std::iter::repeat_n(0xab, data_len));
    m
}

fn udp(sport: u16, dport: u16, data_len: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data_len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend(std::iter::repeat_n(0x55, data_len));
    u
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    opts: &[u8],
    data_len: usize,
) -> Vec<u8> {
    let hlen = 20 + opts.len();
    assert_eq!(hlen % 4, 0);
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(((hlen / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&win.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend(std::iter::repeat_n(0x41, data_len));
    t
}

const BSDI: [u8; 4] = [140, 252, 13, 35];
const SUN: [u8; 4] = [140, 252, 13, 33];
const AIX: [u8; 4] = [140, 252, 1, 92];

fn all_frames() -> Vec<Vec<u8>> {
    let syn_opts = [
        2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let mut quoted = ipv4(BSDI, AIX, IPPROTO_UDP, 77, 1, 0, &udp(40000, 33434, 12));
    quoted.truncate(28);
    let mut unreach = vec![3, 3, 0, 0, 0, 0, 0, 0];
    unreach.extend_from_slice(&quoted);
    vec![
        eth(
            [0xff; 6],
            MAC_A,
            ETHERTYPE_ARP,
            &arp(1, MAC_A, BSDI, [0; 6], SUN),
        ),
        eth(
            MAC_A,
            MAC_B,
            ETHERTYPE_ARP,
            &arp(2, MAC_B, SUN, MAC_A, BSDI),
        ),
        eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 1, 1, 64, 0x4000, &icmp_echo(8, 5, 1, 56)),
        ),
        eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(AIX, BSDI, 1, 1, 64, 0, &unreach),
        ),
        eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(
                BSDI,
                AIX,
                6,
                1,
                64,
                0x4000,
                &tcp(1234, 80, 123, 0, 0x02, 64240, &syn_opts, 0),
            ),
        ),
        eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 17, 1, 64, 0, &udp(1234, 53, 20)),
        ),
        eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(
                BSDI,
                AIX,
                17,
                26304,
                64,
                0x2000,
                &udp(1112, 7, 1472)[..1480],
            ),
        ),
        eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(BSDI, AIX, 17, 26304, 64, 185, &[0u8; 552]),
        ),
    ]
}

#[test]
fn arp_request_and_reply() {
    let req = eth(
        [0xff; 6],
        MAC_A,
        ETHERTYPE_ARP,
        &arp(1, MAC_A, BSDI, [0; 6], SUN),
    );
    let p = decode(&req);
    assert!(p.is_arp_request());
    let a = p.arp.unwrap();
    assert_eq!(a.sender_ip, Ipv4Addr::from(BSDI));
    assert_eq!(a.target_ip, Ipv4Addr::from(SUN));
    assert!(p.ethernet.unwrap().dst.is_broadcast());
    assert_eq!(
        p.to_string(),
        "ARP, Request who-has 140.252.13.33 tell 140.252.13.35, length 28"
    );

    let rep = eth(
        MAC_A,
        MAC_B,
        ETHERTYPE_ARP,
        &arp(2, MAC_B, SUN, MAC_A, BSDI),
    );
    let p = decode(&rep);
    assert!(p.is_arp_reply());
    assert_eq!(
        p.to_string(),
        "ARP, Reply 140.252.13.33 is-at 02:00:00:00:00:33, length 28"
    );

    // Padded to the 60-byte Ethernet minimum: tcpdump reports 46.
    let mut padded = rep.clone();
    padded.resize(60, 0);
    assert!(decode(&padded).to_string().ends_with("length 46"));
}

#[test]
fn icmp_echo_request_and_reply() {
    let f = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 1, 9, 64, 0x4000, &icmp_echo(8, 5, 1, 56)),
    );
    let p = decode(&f);
    let ip = p.ipv4.unwrap();
    assert!(ip.dont_fragment && !ip.is_fragment());
    assert_eq!((ip.ttl, ip.proto, ip.id, ip.total_len), (64, 1, 9, 84));
    assert!(p.is_echo_request());
    assert_eq!(p.icmp.unwrap().echo, Some(IcmpEcho { id: 5, seq: 1 }));
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35 > 140.252.1.92: ICMP echo request, id 5, seq 1, length 64"
    );
    let f = eth(
        MAC_A,
        MAC_B,
        ETHERTYPE_IPV4,
        &ipv4(AIX, BSDI, 1, 9, 64, 0, &icmp_echo(0, 5, 1, 56)),
    );
    assert_eq!(
        decode(&f).to_string(),
        "IP 140.252.1.92 > 140.252.13.35: ICMP echo reply, id 5, seq 1, length 64"
    );
}

#[test]
fn icmp_errors() {
    let mut quoted = ipv4(BSDI, AIX, IPPROTO_UDP, 77, 1, 0, &udp(40000, 33434, 12));
    quoted.truncate(28);
    let mut te = vec![11, 0, 0, 0, 0, 0, 0, 0];
    te.extend_from_slice(&quoted);
    let p = decode(&eth(
        MAC_A,
        MAC_B,
        ETHERTYPE_IPV4,
        &ipv4(SUN, BSDI, 1, 1, 255, 0, &te),
    ));
    let icmp = p.icmp.unwrap();
    assert!(icmp.is_ttl_exceeded() && icmp.is_error());
    assert_eq!(icmp.quote.unwrap().dst_port, Some(33434));
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.33 > 140.252.13.35: ICMP time exceeded in-transit, length 36"
    );

    let mut pu = vec![3, 3, 0, 0, 0, 0, 0, 0];
    pu.extend_from_slice(&quoted);
    let p = decode(&eth(
        MAC_A,
        MAC_B,
        ETHERTYPE_IPV4,
        &ipv4(AIX, BSDI, 1, 1, 255, 0, &pu),
    ));
    assert!(p.icmp.unwrap().is_port_unreachable());
    assert_eq!(
        p.to_string(),
        "IP 140.252.1.92 > 140.252.13.35: ICMP 140.252.1.92 udp port 33434 unreachable, length 36"
    );

    let mut nf = vec![3, 4, 0, 0, 0, 0, 1, 40];
    nf.extend_from_slice(&quoted);
    let p = decode(&eth(
        MAC_A,
        MAC_B,
        ETHERTYPE_IPV4,
        &ipv4(SUN, BSDI, 1, 1, 255, 0, &nf),
    ));
    assert_eq!(p.icmp.unwrap().next_hop_mtu, Some(296));
    assert!(
        p.to_string()
            .contains("ICMP 140.252.1.92 unreachable - need to frag (mtu 296)")
    );

    let mut rd = vec![5, 1, 0, 0, 140, 252, 13, 33];
    rd.extend_from_slice(&quoted);
    let p = decode(&eth(
        MAC_A,
        MAC_B,
        ETHERTYPE_IPV4,
        &ipv4(SUN, BSDI, 1, 1, 255, 0, &rd),
    ));
    assert!(
        p.to_string()
            .contains("ICMP redirect 140.252.1.92 to host 140.252.13.33")
    );
}

#[test]
fn tcp_syn_with_options() {
    let opts = [
        2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let f = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(
            BSDI,
            AIX,
            6,
            1,
            64,
            0x4000,
            &tcp(1234, 80, 123, 0, 0x02, 64240, &opts, 0),
        ),
    );
    let p = decode(&f);
    let t = p.tcp.unwrap();
    assert!(p.is_tcp_syn() && t.flags.is_syn() && !t.flags.is_syn_ack());
    assert_eq!(t.options.mss(), Some(1460));
    assert_eq!(t.options.window_scale(), Some(7));
    assert!(t.options.sack_permitted());
    assert_eq!(t.options.timestamp(), Some((1, 0)));
    assert_eq!(p.ports(), Some((1234, 80)));
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35.1234 > 140.252.1.92.80: Flags [S], seq 123, win 64240, \
         options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0"
    );
}

#[test]
fn tcp_flag_lines() {
    let line = |flags: u8, len: usize| {
        decode(&eth(
            MAC_B,
            MAC_A,
            ETHERTYPE_IPV4,
            &ipv4(
                BSDI,
                AIX,
                6,
                1,
                64,
                0,
                &tcp(80, 1234, 1000, 124, flags, 502, &[], len),
            ),
        ))
        .to_string()
    };
    assert_eq!(
        line(0x12, 0),
        "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [S.], seq 1000, ack 124, win 502, length 0"
    );
    assert_eq!(
        line(0x10, 0),
        "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [.], ack 124, win 502, length 0"
    );
    assert_eq!(
        line(0x18, 5),
        "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [P.], seq 1000:1005, ack 124, win 502, length 5"
    );
    assert_eq!(
        line(0x11, 0),
        "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [F.], seq 1000, ack 124, win 502, length 0"
    );
    assert_eq!(
        line(0x04, 0),
        "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [R], seq 1000, win 502, length 0"
    );
    assert_eq!(
        line(0x00, 0),
        "IP 140.252.13.35.80 > 140.252.1.92.1234: Flags [none], win 502, length 0"
    );
    assert_eq!(TcpFlags(0xff).to_string(), "FSRP.UEW");
    assert!((TcpFlags::SYN | TcpFlags::ACK).is_syn_ack());
}

#[test]
fn udp_line() {
    let p = decode(&eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 17, 1, 64, 0, &udp(1234, 53, 20)),
    ));
    assert_eq!(p.udp.unwrap().payload_len, 20);
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35.1234 > 140.252.1.92.53: UDP, length 20"
    );
}

#[test]
fn fragments() {
    // The book's 1473-byte UDP datagram, fragmented at MTU 1500.
    let full = udp(1112, 7, 1473);
    let first = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 17, 26304, 64, 0x2000, &full[..1480]),
    );
    let p = decode(&first);
    let ip = p.ipv4.unwrap();
    assert!(ip.is_fragment() && ip.is_first_fragment() && ip.more_fragments);
    assert_eq!(p.udp.unwrap().dst_port, 7);
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35.1112 > 140.252.1.92.7: UDP, length 1473 (frag 26304:1480@0+)"
    );
    let second = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 17, 26304, 64, 185, &full[1480..]),
    );
    let p = decode(&second);
    let ip = p.ipv4.unwrap();
    assert!(ip.is_fragment() && !ip.is_first_fragment() && !ip.more_fragments);
    assert_eq!(ip.frag_offset, 1480);
    assert!(p.udp.is_none());
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35 > 140.252.1.92: ip-proto-17 (frag 26304:1@1480)"
    );
    // A middle fragment keeps the '+'.
    let mid = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 17, 26304, 64, 0x2000 | 185, &[0; 1480]),
    );
    assert!(
        decode(&mid)
            .to_string()
            .ends_with("(frag 26304:1480@1480+)")
    );
}

#[test]
fn vlan_tag_is_skipped() {
    let inner = ipv4(BSDI, AIX, 1, 1, 64, 0, &icmp_echo(8, 5, 1, 56));
    let mut tagged = vec![0x00, 0x0a]; // VLAN 10
    tagged.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    tagged.extend_from_slice(&inner);
    let p = decode(&eth(MAC_B, MAC_A, ETHERTYPE_VLAN, &tagged));
    assert_eq!(p.ethernet.unwrap().vlan, Some(10));
    assert_eq!(p.ethernet.unwrap().ethertype, ETHERTYPE_IPV4);
    assert!(p.is_echo_request());
    assert!(
        p.to_string()
            .starts_with("vlan 10, IP 140.252.13.35 > 140.252.1.92: ICMP echo request")
    );
}

#[test]
fn ethernet_padding_is_ignored() {
    let mut f = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 6, 1, 64, 0, &tcp(1, 2, 3, 4, 0x10, 5, &[], 0)),
    );
    f.resize(60, 0xee);
    let p = decode(&f);
    assert_eq!(p.tcp.unwrap().payload_len, 0);
    assert!(p.truncated.is_none());
}

#[test]
fn other_ethertypes_and_protocols() {
    // tcpdump 4.99.3 on the same bytes: the version field of all zeros is wrong.
    assert_eq!(
        decode(&eth(MAC_B, MAC_A, ETHERTYPE_IPV6, &[0; 40])).to_string(),
        "IP6 version error: 0 != 6"
    );
    assert_eq!(
        decode(&eth(MAC_B, MAC_A, 0x88cc, &[0; 10])).to_string(),
        "ethertype Unknown (0x88cc), length 10"
    );
    let p = decode(&eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 253, 1, 1, 0, &[0; 40]),
    ));
    // tcpdump 4.99.3 writes two spaces before an unknown protocol.
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35 > 140.252.1.92:  ip-proto-253 40"
    );
}

#[test]
fn truncated_frames_are_marked() {
    assert_eq!(decode(&[]).to_string(), " [|ether]");
    assert_eq!(decode(&[0; 13]).truncated, Some(Layer::Ethernet));
    let full = eth(
        MAC_B,
        MAC_A,
        ETHERTYPE_IPV4,
        &ipv4(BSDI, AIX, 6, 1, 64, 0, &tcp(1234, 80, 1, 0, 2, 100, &[], 0)),
    );
    let p = decode(&full[..14 + 20 + 10]);
    assert_eq!(p.truncated, Some(Layer::Tcp));
    assert!(p.ipv4.is_some() && p.tcp.is_none());
    // tcpdump 4.99.3 on the same cut: the ports were captured.
    assert_eq!(
        p.to_string(),
        "IP 140.252.13.35.1234 > 140.252.1.92.80:  [|tcp]"
    );
    let p = decode(&full[..14 + 10]);
    assert_eq!(p.truncated, Some(Layer::Ipv4));
    assert_eq!(p.to_string(), "IP  [|ip]");
    let arp_f = eth(
        [0xff; 6],
        MAC_A,
        ETHERTYPE_ARP,
        &arp(1, MAC_A, BSDI, [0; 6], SUN),
    );
    // tcpdump 4.99.3 prints nothing but the marker for a cut ARP packet.
    assert_eq!(decode(&arp_f[..30]).to_string(), " [|arp]");
}

#[test]
fn every_truncation_of_every_frame_decodes() {
    for f in all_frames() {
        for n in 0..=f.len() {
            let p = decode(&f[..n]);
            let _ = p.to_string();
            assert_eq!(p.frame_len, n);
        }
    }
}

#[test]
fn garbage_never_panics() {
    // xorshift: deterministic garbage, plus valid frames with random bytes flipped.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let frames = all_frames();
    for i in 0..20_000 {
        let mut f = if i % 2 == 0 {
            let len = (rnd() % 200) as usize;
            (0..len).map(|_| rnd() as u8).collect::<Vec<u8>>()
        } else {
            frames[(rnd() as usize) % frames.len()].clone()
        };
        if f.is_empty() {
            continue;
        }
        // Steer the garbage towards the interesting paths.
        if i % 4 == 0 && f.len() > 14 {
            let et = [ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN][(rnd() % 3) as usize];
            f[12..14].copy_from_slice(&et.to_be_bytes());
        }
        for _ in 0..(rnd() % 8) {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        let cut = (rnd() as usize) % (f.len() + 1);
        let p = decode(&f[..cut]);
        let _ = p.to_string();
        let _ = format!("{p:?}");
    }
}
