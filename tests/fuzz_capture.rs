//! Hostile capture input, property-based: pcap and pcapng files (random bytes, and files
//! written by tcplab's own writers then damaged) given to the reader, and frames (random
//! bytes, and ARP, ICMP, UDP, TCP with options, fragments, VLAN tags, IPv6 with ICMPv6,
//! damaged) given to the decoder and its tcpdump-style line. Nothing panics or stalls; the
//! reader refuses in one line and never holds more than a small multiple of the bytes it was
//! given; the printer writes one short line.
//!
//! Each target runs `fuzz_common::CASES` cases; failures are recorded under
//! `proptest-regressions/` and replayed first on later runs.

mod fuzz_common;

use fuzz_common::{Watchdog, run, runner};
use proptest::prelude::*;
use tcplab::capture::decode::{self, Packet};
use tcplab::capture::pcap::{self, InterfaceStats, PcapWriter, PcapngWriter, TsResolution};

// ------------------------------------------------------------------------ byte mutations

/// One change to a byte string.
#[derive(Debug, Clone)]
enum ByteChange {
    /// Set a byte.
    Set(usize, u8),
    /// Flip one bit.
    Flip(usize, u8),
    /// Write a 32-bit value (a length, a block type, a count) at a 4-aligned offset, in
    /// either byte order.
    Word(usize, u32, bool),
    /// Write a 16-bit value at an even offset (an option's code or length).
    Half(usize, u16),
    /// Cut the bytes short.
    Truncate(usize),
    /// Remove a range.
    Delete(usize, usize),
    /// Repeat a range right after itself.
    Repeat(usize, usize),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
}

/// 32-bit values that lengths, counts and types in capture files have at their edges.
const WORDS: &[u32] = &[
    0,
    1,
    3,
    4,
    8,
    11,
    12,
    13,
    16,
    20,
    28,
    32,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff0,
    0xffff_fffc,
    0xffff_ffff,
    0x0a0d_0d0a,
    0x1a2b_3c4d,
    0xa1b2_c3d4,
    0xa1b2_3c4d,
    6,
    5,
    2,
    65535,
    262_144,
];

fn byte_change() -> impl Strategy<Value = ByteChange> {
    let word = prop_oneof![3 => proptest::sample::select(WORDS), 1 => any::<u32>()];
    let half = prop_oneof![
        3 => proptest::sample::select(&[0u16, 1, 2, 3, 4, 9, 14, 0x7fff, 0xffff][..]),
        1 => any::<u16>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteChange::Set(i, b)),
        2 => (any::<usize>(), 0..8u8).prop_map(|(i, b)| ByteChange::Flip(i, b)),
        4 => (any::<usize>(), word, any::<bool>()).prop_map(|(i, w, be)| ByteChange::Word(i, w, be)),
        2 => (any::<usize>(), half).prop_map(|(i, h)| ByteChange::Half(i, h)),
        1 => any::<usize>().prop_map(ByteChange::Truncate),
        1 => (any::<usize>(), 1..40usize).prop_map(|(i, n)| ByteChange::Delete(i, n)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(i, n)| ByteChange::Repeat(i, n)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| ByteChange::Insert(i, b)),
    ]
}

/// `bytes` with `c` applied (unchanged when there is nothing to change).
fn change(mut bytes: Vec<u8>, c: &ByteChange) -> Vec<u8> {
    let n = bytes.len();
    let at = |i: usize| if n == 0 { 0 } else { i % n };
    match c {
        ByteChange::Set(i, b) if n > 0 => bytes[at(*i)] = *b,
        ByteChange::Flip(i, bit) if n > 0 => bytes[at(*i)] ^= 1 << bit,
        ByteChange::Word(i, w, big) if n >= 4 => {
            let k = at(*i) / 4 * 4;
            let v = if *big {
                w.to_be_bytes()
            } else {
                w.to_le_bytes()
            };
            let end = (k + 4).min(n);
            bytes[k..end].copy_from_slice(&v[..end - k]);
        }
        ByteChange::Half(i, h) if n >= 2 => {
            let k = (at(*i) / 2 * 2).min(n - 2);
            bytes[k..k + 2].copy_from_slice(&h.to_le_bytes());
        }
        ByteChange::Truncate(i) => bytes.truncate(i % (n + 1)),
        ByteChange::Delete(i, len) if n > 0 => {
            let k = at(*i);
            bytes.drain(k..(k + len).min(n));
        }
        ByteChange::Repeat(i, len) if n > 0 => {
            let k = at(*i);
            let piece = bytes[k..(k + len).min(n)].to_vec();
            bytes.splice(k..k, piece);
        }
        ByteChange::Insert(i, more) => {
            let k = i % (n + 1);
            bytes.splice(k..k, more.iter().copied());
        }
        _ => {}
    }
    bytes
}

/// `base` changed by one to four byte changes.
fn damaged(base: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (base, proptest::collection::vec(byte_change(), 1..=4))
        .prop_map(|(b, cs)| cs.iter().fold(b, change))
}

// --------------------------------------------------------------------- capture files

/// A frame of 0 to 200 bytes.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

/// A classic pcap file written by [`PcapWriter`]: either resolution, a snap length that
/// may cut frames.
fn pcap_file() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop_oneof![Just(0u32), 1..300u32],
        proptest::collection::vec((any::<u64>(), frame_bytes()), 0..5),
    )
        .prop_map(|(nano, snaplen, frames)| {
            let res = if nano {
                TsResolution::Nano
            } else {
                TsResolution::Micro
            };
            let mut w = PcapWriter::new(Vec::new(), snaplen, res).unwrap();
            for (ts, f) in &frames {
                w.write_packet(*ts, f.len() as u32, f).unwrap();
            }
            w.into_inner()
        })
}

/// A pcapng file written by [`PcapngWriter`]: named interfaces, packets on them,
/// statistics.
fn pcapng_file() -> impl Strategy<Value = Vec<u8>> {
    let iface = ("[a-z0-9]{0,15}", prop_oneof![Just(0u32), 1..300u32]);
    (
        "[ -~]{0,20}",
        proptest::collection::vec(iface, 1..4),
        proptest::collection::vec((any::<usize>(), any::<u64>(), frame_bytes()), 0..5),
        proptest::option::of((any::<usize>(), any::<u64>(), any::<Option<u64>>())),
    )
        .prop_map(|(app, ifaces, packets, stats)| {
            let mut w = PcapngWriter::new(Vec::new(), &app).unwrap();
            for (name, snaplen) in &ifaces {
                w.add_interface(name, *snaplen).unwrap();
            }
            let n = ifaces.len();
            for (i, ts, f) in &packets {
                w.write_packet((i % n) as u32, *ts, f.len() as u32, f)
                    .unwrap();
            }
            if let Some((i, ts, count)) = stats {
                let s = InterfaceStats {
                    ts,
                    start: Some(ts / 2),
                    received: count,
                    dropped: count.map(|c| c / 3),
                    delivered: count,
                };
                w.write_statistics((i % n) as u32, &s).unwrap();
            }
            w.into_inner()
        })
}

/// Random bytes, after a capture file's magic number most of the time.
fn random_capture() -> impl Strategy<Value = Vec<u8>> {
    let magic = proptest::sample::select(vec![
        vec![],
        vec![0xd4, 0xc3, 0xb2, 0xa1],
        vec![0xa1, 0xb2, 0xc3, 0xd4],
        vec![0x4d, 0x3c, 0xb2, 0xa1],
        vec![0x0a, 0x0d, 0x0d, 0x0a],
        vec![
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ],
        vec![
            0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x1c, 0x1a, 0x2b, 0x3c, 0x4d,
        ],
    ]);
    (magic, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(mut m, rest)| {
        m.extend(rest);
        m
    })
}

/// Read `bytes` as a capture: a refusal is one line; what is read is no more than the
/// bytes given (the data) and a small multiple of them (the records).
fn read_capture(dog: &Watchdog, bytes: &[u8]) -> Result<(), TestCaseError> {
    let read = dog.time(bytes, || pcap::read_from(bytes, "eth1"))?;
    match read {
        Ok(records) => {
            let data: usize = records.iter().map(|r| r.data.len()).sum();
            let names: usize = records.iter().map(|r| r.interface.len()).sum();
            prop_assert!(
                data <= bytes.len(),
                "{data} bytes of data from {}",
                bytes.len()
            );
            prop_assert!(
                records.len() * 12 <= bytes.len(),
                "{} records from {} bytes",
                records.len(),
                bytes.len()
            );
            prop_assert!(
                names <= 16 * bytes.len(),
                "{names} bytes of interface names from {} bytes",
                bytes.len()
            );
        }
        Err(e) => {
            let line = e.to_string();
            prop_assert!(!line.chars().any(char::is_control), "{line:?}");
            prop_assert!(!line.is_empty());
        }
    }
    Ok(())
}

#[test]
fn random_bytes_as_a_capture_file_are_refused_in_one_line() {
    let dog = Watchdog::new("random capture files");
    run(
        runner("proptest-regressions/fuzz_capture/random_capture.txt"),
        random_capture(),
        |bytes| read_capture(&dog, &bytes),
    );
}

#[test]
fn damaged_pcap_and_pcapng_files_are_read_or_refused_in_one_line() {
    let dog = Watchdog::new("damaged capture files");
    run(
        runner("proptest-regressions/fuzz_capture/damaged_capture.txt"),
        damaged(prop_oneof![pcap_file(), pcapng_file()]),
        |bytes| read_capture(&dog, &bytes),
    );
}

#[test]
fn files_of_the_writers_read_back_whole() {
    let dog = Watchdog::new("written capture files");
    run(
        runner("proptest-regressions/fuzz_capture/written_capture.txt"),
        prop_oneof![pcap_file(), pcapng_file()],
        |bytes| {
            let read = dog.time(&bytes, || pcap::read_from(&bytes[..], ""))?;
            prop_assert!(read.is_ok(), "{:?}", read.err());
            Ok(())
        },
    );
}

// -------------------------------------------------------------------------- frames

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x35];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x33];
const BSDI: [u8; 4] = [140, 252, 13, 35];
const SUN: [u8; 4] = [140, 252, 13, 33];

fn ethernet(ethertype: u16, vlan: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let mut f = [MAC_A, MAC_B].concat();
    if let Some(tag) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tag.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp(op: u16) -> Vec<u8> {
    [
        &[0, 1, 8, 0, 6, 4][..],
        &op.to_be_bytes(),
        &MAC_A,
        &BSDI,
        &[0; 6],
        &SUN,
    ]
    .concat()
}

/// An IPv4 header with `options` (a multiple of 4 bytes), then `payload`.
fn ipv4(proto: u8, flags_offset: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let hlen = 20 + options.len();
    let total = (hlen + payload.len()) as u16;
    let mut h = vec![0x40 | (hlen / 4) as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&flags_offset.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&BSDI);
    h.extend_from_slice(&SUN);
    h.extend_from_slice(options);
    h.extend_from_slice(payload);
    h
}

fn udp(len: usize) -> Vec<u8> {
    let mut u = vec![0x9c, 0x40, 0x82, 0x9a];
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.resize(8 + len, 0x55);
    u
}

fn tcp(flags: u8, options: &[u8], len: usize) -> Vec<u8> {
    let hlen = 20 + options.len();
    let mut t = vec![0x04, 0x05, 0x00, 0x17, 0, 0, 0, 1, 0, 0, 0, 2];
    t.push(((hlen / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&[0x10, 0, 0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.resize(hlen + len, 0x41);
    t
}

/// An IPv6 header (link-local source, `dst`) with next header `next`, then `payload`.
fn ipv6(next: u8, dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 255]);
    h.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// IPv6 frames: a router solicitation, an echo request, an MLDv2 report behind a hop-by-hop
/// header, UDP and TCP.
fn ipv6_frames() -> Vec<Vec<u8>> {
    let all_routers = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let mld_routers = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16];
    let peer = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let solicitation = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 0x35];
    let echo = [&[128, 0, 0, 0, 0, 7, 0, 1][..], &[0xab; 56]].concat();
    let report = [143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
    let report = [&report[..], &mld_routers].concat();
    let hop_by_hop = [&[58, 0, 5, 2, 0, 0, 1, 0][..], &report].concat();
    vec![
        ethernet(0x86dd, None, &ipv6(58, all_routers, &solicitation)),
        ethernet(0x86dd, None, &ipv6(58, peer, &echo)),
        ethernet(0x86dd, None, &ipv6(0, mld_routers, &hop_by_hop)),
        ethernet(0x86dd, None, &ipv6(17, peer, &udp(20))),
        ethernet(
            0x86dd,
            Some(3),
            &ipv6(6, peer, &tcp(0x02, &[2, 4, 5, 0xa0], 0)),
        ),
    ]
}

/// Valid frames of every kind the decoder knows.
fn valid_frames() -> Vec<Vec<u8>> {
    let syn_options = [
        2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    let sack = [
        1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 20, 0, 0, 0, 30,
    ];
    let record_route = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut quote = ipv4(17, 0, &[], &udp(12));
    quote.truncate(28);
    let unreachable = [&[3, 3, 0, 0, 0, 0, 0, 0][..], &quote].concat();
    let time_exceeded = [&[11, 0, 0, 0, 0, 0, 0, 0][..], &quote].concat();
    let echo = [&[8, 0, 0, 0, 0, 5, 0, 1][..], &[0xab; 56]].concat();
    let reply = [&[0, 0, 0, 0, 0, 5, 0, 1][..], &[0xab; 56]].concat();
    vec![
        ethernet(0x0806, None, &arp(1)),
        ethernet(0x0806, None, &arp(2)),
        ethernet(0x0806, Some(5), &arp(1)),
        ethernet(0x0800, None, &ipv4(1, 0x4000, &[], &echo)),
        ethernet(0x0800, None, &ipv4(1, 0, &record_route, &reply)),
        ethernet(0x0800, None, &ipv4(1, 0, &[], &unreachable)),
        ethernet(0x0800, None, &ipv4(1, 0, &[], &time_exceeded)),
        ethernet(0x0800, None, &ipv4(17, 0, &[], &udp(20))),
        ethernet(0x0800, Some(7), &ipv4(17, 0x2000, &[], &udp(1472))),
        ethernet(0x0800, None, &ipv4(17, 185, &[], &[0x55; 100])),
        ethernet(
            0x0800,
            None,
            &ipv4(6, 0x4000, &[], &tcp(0x02, &syn_options, 0)),
        ),
        ethernet(0x0800, None, &ipv4(6, 0x4000, &[], &tcp(0x10, &sack, 0))),
        ethernet(0x0800, None, &ipv4(6, 0x4000, &[], &tcp(0x18, &[], 100))),
        ethernet(0x0800, None, &ipv4(6, 0, &[], &tcp(0x14, &[], 0))),
        ethernet(0x86dd, None, &[0x60; 60]),
        ethernet(0x0042, None, &[0; 46]),
    ]
    .into_iter()
    .chain(ipv6_frames())
    .collect()
}

/// Decode `frame` and print its line: one short line, within the case limit.
fn print_frame(dog: &Watchdog, frame: &[u8]) -> Result<(), TestCaseError> {
    let (p, line) = dog.time(frame, || {
        let p: Packet = decode::decode(frame);
        (p, p.to_string())
    })?;
    prop_assert!(!line.chars().any(char::is_control), "{line:?}");
    prop_assert!(line.len() <= 1000, "a line of {} bytes: {line}", line.len());
    prop_assert_eq!(p.frame_len, frame.len());
    // The questions the experiments' checks ask of a packet.
    let _ = (
        p.ports(),
        p.is_tcp_syn(),
        p.is_echo_request(),
        p.is_echo_reply(),
    );
    let _ = (p.is_arp_request(), p.is_arp_reply());
    if let Some(t) = p.tcp {
        let _ = (
            t.options.mss(),
            t.options.window_scale(),
            t.options.timestamp(),
        );
        prop_assert!(t.options.iter().count() <= 40);
    }
    Ok(())
}

#[test]
fn random_bytes_as_a_frame_print_one_line() {
    let dog = Watchdog::new("random frames");
    run(
        runner("proptest-regressions/fuzz_capture/random_frame.txt"),
        proptest::collection::vec(any::<u8>(), 0..120),
        |frame| print_frame(&dog, &frame),
    );
}

#[test]
fn damaged_frames_print_one_line() {
    let dog = Watchdog::new("damaged frames");
    run(
        runner("proptest-regressions/fuzz_capture/damaged_frame.txt"),
        damaged(proptest::sample::select(valid_frames())),
        |frame| print_frame(&dog, &frame),
    );
}
