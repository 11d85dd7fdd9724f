//! Tests of the capture files: round trips through both writers and the
//! reader, files of other writers (other byte order, resolutions, blocks),
//! and damaged files.

use super::classic::PCAP_MAGIC_MICRO;
use super::ng::{
    OPT_IF_NAME, OPT_IF_TSRESOL, PCAPNG_BOM, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_SHB, PCAPNG_SPB,
    end_options, push_option, write_block,
};
use super::*;

fn frames() -> Vec<(u64, Vec<u8>)> {
    vec![
        (1_700_000_000_123_456_789, vec![0xaa; 60]),
        (1_700_000_000_223_456_000, (0..=255u8).collect()),
        (1_700_000_001_000_000_001, vec![1, 2, 3]), // odd length: pcapng padding
    ]
}

#[test]
fn pcap_micro_round_trip() {
    let mut w = PcapWriter::new(Vec::new(), 0, TsResolution::Micro).unwrap();
    for (ts, d) in frames() {
        w.write_packet(ts, d.len() as u32, &d).unwrap();
    }
    let bytes = w.into_inner();
    assert_eq!(detect_format(&bytes), Some(Format::Pcap));
    let recs = read_from(&bytes[..], "eth1").unwrap();
    assert_eq!(recs.len(), 3);
    for (r, (ts, d)) in recs.iter().zip(frames()) {
        assert_eq!(r.ts, ts / 1000 * 1000, "microsecond resolution");
        assert_eq!(r.data, d);
        assert_eq!(r.orig_len as usize, d.len());
        assert_eq!(r.interface, "eth1");
    }
}

#[test]
fn pcap_nano_round_trip_and_snaplen() {
    let mut w = PcapWriter::new(Vec::new(), 100, TsResolution::Nano).unwrap();
    for (ts, d) in frames() {
        w.write_packet(ts, d.len() as u32, &d).unwrap();
    }
    let recs = read_from(&w.into_inner()[..], "").unwrap();
    for (r, (ts, d)) in recs.iter().zip(frames()) {
        assert_eq!(r.ts, ts);
        assert_eq!(r.data, &d[..d.len().min(100)]);
        assert_eq!(r.orig_len as usize, d.len());
        assert_eq!(r.interface, "");
    }
}

/// Accepts at most 5 bytes per call, vectored or not.
struct Dribble(Vec<u8>);
impl Write for Dribble {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(5);
        self.0.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn short_writes_are_completed() {
    let mut w = PcapngWriter::new(Dribble(Vec::new()), "x").unwrap();
    let id = w.add_interface("a", 0).unwrap();
    w.write_packet(id, 5, 3, &[1, 2, 3]).unwrap();
    let recs = read_from(&w.into_inner().0[..], "").unwrap();
    assert_eq!(recs[0].data, vec![1, 2, 3]);
    let mut w = PcapWriter::new(Dribble(Vec::new()), 0, TsResolution::Nano).unwrap();
    w.write_packet(5, 3, &[1, 2, 3]).unwrap();
    assert_eq!(read_from(&w.into_inner().0[..], "").unwrap()[0].ts, 5);
}

#[test]
fn pcap_big_endian_is_read() {
    let mut b = Vec::new();
    b.extend_from_slice(&PCAP_MAGIC_MICRO.to_be_bytes());
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&4u16.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    for v in [10u32, 20, 4, 4] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&[9, 8, 7, 6]);
    let recs = read_from(&b[..], "x").unwrap();
    assert_eq!(recs[0].ts, 10_000_020_000);
    assert_eq!(recs[0].data, vec![9, 8, 7, 6]);
}

fn ng_two_interfaces() -> Vec<u8> {
    let mut w = PcapngWriter::new(Vec::new(), "tcplab test").unwrap();
    let a = w.add_interface("eth1", 0).unwrap();
    let b = w.add_interface("bsdiside", 64).unwrap();
    for (i, (ts, d)) in frames().into_iter().enumerate() {
        let id = if i % 2 == 0 { a } else { b };
        w.write_packet(id, ts, d.len() as u32, &d).unwrap();
    }
    for id in [a, b] {
        let stats = InterfaceStats {
            ts: 1_700_000_002_000_000_000,
            start: Some(1_700_000_000_000_000_000),
            received: Some(10),
            dropped: Some(1),
            delivered: Some(9),
        };
        w.write_statistics(id, &stats).unwrap();
    }
    assert!(w.write_packet(7, 0, 1, &[0]).is_err());
    w.into_inner()
}

#[test]
fn pcapng_round_trip_two_interfaces() {
    let bytes = ng_two_interfaces();
    assert_eq!(detect_format(&bytes), Some(Format::Pcapng));
    let recs = read_from(&bytes[..], "ignored").unwrap();
    assert_eq!(recs.len(), 3);
    let names: Vec<&str> = recs.iter().map(|r| r.interface.as_str()).collect();
    assert_eq!(names, ["eth1", "bsdiside", "eth1"]);
    for (r, (ts, d)) in recs.iter().zip(frames()) {
        assert_eq!(r.ts, ts, "nanosecond resolution");
        let cap = if r.interface == "bsdiside" {
            64
        } else {
            usize::MAX
        };
        assert_eq!(r.data, &d[..d.len().min(cap)]);
        assert_eq!(r.orig_len as usize, d.len());
    }
}

#[test]
fn pcapng_other_resolutions_and_simple_blocks() {
    // Big-endian section, microsecond default resolution, then a second
    // section with a power-of-two resolution and a simple packet block.
    let mut b = Vec::new();
    let be_block = |b: &mut Vec<u8>, t: u32, body: &[u8]| {
        let total = (12 + body.len()) as u32;
        b.extend_from_slice(&t.to_be_bytes());
        b.extend_from_slice(&total.to_be_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&total.to_be_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&PCAPNG_BOM.to_be_bytes());
    shb.extend_from_slice(&[0, 1, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_be_bytes());
    be_block(&mut b, PCAPNG_SHB, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&[0, 1, 0, 0]);
    idb.extend_from_slice(&0u32.to_be_bytes());
    be_block(&mut b, PCAPNG_IDB, &idb);
    let mut epb = Vec::new();
    epb.extend_from_slice(&0u32.to_be_bytes());
    epb.extend_from_slice(&0u32.to_be_bytes());
    epb.extend_from_slice(&1_500_000u32.to_be_bytes());
    epb.extend_from_slice(&2u32.to_be_bytes());
    epb.extend_from_slice(&2u32.to_be_bytes());
    epb.extend_from_slice(&[7, 7, 0, 0]);
    be_block(&mut b, PCAPNG_EPB, &epb);
    be_block(&mut b, 0x0000_0bad, &[1, 2, 3, 4]); // unknown: skipped

    let mut out = PcapngWriter::new(Vec::new(), "").unwrap().into_inner();
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&0u32.to_le_bytes());
    push_option(&mut idb, OPT_IF_NAME, b"sl0");
    push_option(&mut idb, OPT_IF_TSRESOL, &[0x80 | 10]);
    end_options(&mut idb);
    write_block(&mut out, PCAPNG_IDB, &idb).unwrap();
    let mut spb = Vec::new();
    spb.extend_from_slice(&3u32.to_le_bytes());
    spb.extend_from_slice(&[5, 5, 5, 0]);
    write_block(&mut out, PCAPNG_SPB, &spb).unwrap();
    let mut epb = Vec::new();
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&2048u32.to_le_bytes()); // 2 s at 2^-10
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&0u32.to_le_bytes());
    write_block(&mut out, PCAPNG_EPB, &epb).unwrap();
    b.extend_from_slice(&out);

    let recs = read_from(&b[..], "").unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(
        (recs[0].ts, recs[0].data.as_slice()),
        (1_500_000_000, &[7u8, 7][..])
    );
    assert_eq!(recs[1].interface, "sl0");
    assert_eq!(recs[1].data, vec![5, 5, 5]);
    assert_eq!(recs[2].ts, 2_000_000_000);
}

#[test]
fn damaged_files_are_errors_not_panics() {
    assert!(read_from(&[][..], "").is_err());
    assert!(read_from(&b"hello world, not a capture"[..], "").is_err());
    let mut w = PcapWriter::new(Vec::new(), 0, TsResolution::Micro).unwrap();
    w.write_packet(1, 60, &[0; 60]).unwrap();
    let pcap = w.into_inner();
    let ng = ng_two_interfaces();
    for file in [&pcap, &ng] {
        // Every truncation either reads (at a record boundary) or errors.
        for n in 0..file.len() {
            let _ = read_from(&file[..n], "");
        }
        // Random corruption.
        let mut s: u32 = 12345;
        for _ in 0..2000 {
            let mut f = file.clone();
            for _ in 0..3 {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (s as usize >> 8) % f.len();
                f[at] = (s >> 3) as u8;
            }
            let _ = read_from(&f[..], "");
        }
    }
    let err = read_from(&pcap[..pcap.len() - 1], "").unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
}

#[test]
fn read_file_reports_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let p = dir.join("bad.pcap");
    std::fs::write(&p, b"junk").unwrap();
    let err = read_file(&p).unwrap_err();
    assert!(err.to_string().contains("bad.pcap"), "{err}");
    let good = dir.join("good.pcapng");
    std::fs::write(&good, ng_two_interfaces()).unwrap();
    assert_eq!(read_file(&good).unwrap().len(), 3);
    // tshark, when installed, must read what we write without complaint.
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("skipped: the tshark part of read_file_reports_the_path needs tshark");
        return;
    }
    let mut w = PcapWriter::new(Vec::new(), 0, TsResolution::Nano).unwrap();
    w.write_packet(1_700_000_000_000_000_001, 60, &[0; 60])
        .unwrap();
    let pcap = dir.join("good.pcap");
    std::fs::write(&pcap, w.into_inner()).unwrap();
    for f in [&good, &pcap] {
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tshark -r {}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let complaints = err.lines().filter(|l| !l.contains("could be dangerous"));
        assert_eq!(complaints.count(), 0, "{err}");
    }
}

#[test]
fn a_long_interface_name_is_cut_so_small_packets_cannot_multiply_it() {
    // One interface named with 60000 bytes, then 1000 simple packet blocks of 16 bytes: the
    // name is held once per packet, so it must be short whatever the file says.
    let mut b = PcapngWriter::new(Vec::new(), "").unwrap().into_inner();
    let mut idb = Vec::new();
    idb.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
    idb.extend_from_slice(&0u16.to_ne_bytes());
    idb.extend_from_slice(&0u32.to_ne_bytes());
    push_option(&mut idb, OPT_IF_NAME, "é".repeat(30_000).as_bytes());
    end_options(&mut idb);
    write_block(&mut b, PCAPNG_IDB, &idb).unwrap();
    for _ in 0..1000 {
        write_block(&mut b, PCAPNG_SPB, &0u32.to_ne_bytes()).unwrap();
    }
    let recs = read_from(&b[..], "").unwrap();
    assert_eq!(recs.len(), 1000);
    let name = &recs[0].interface;
    assert_eq!(
        name.len(),
        ng::MAX_IF_NAME_BYTES,
        "cut at a character boundary"
    );
    assert!(name.chars().all(|c| c == 'é'));
    let held: usize = recs.iter().map(|r| r.interface.len()).sum();
    assert!(
        held <= 16 * b.len(),
        "{held} bytes of names from {}",
        b.len()
    );
}
