//! Tests of the capture itself. Those that need root build two network
//! namespaces (tcplab-captest-*) joined by veths, send traffic only between
//! them, and delete them on the way out, panic or not; without root they say
//! "skipped: ..." and pass.

mod lab;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use lab::*;

#[test]
fn pcap_on_one_veth_ping_and_tcp() {
    if skip_unless_root(
        "pcap_on_one_veth_ping_and_tcp",
        &["tshark", "nc", "ping", "ss"],
    ) {
        return;
    }
    let lab = Lab::new(1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.pcap");
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        interfaces: vec!["vb1".into()],
        ..CaptureSpec::default()
    };
    let t0 = now_ns();
    let finish = start(&spec, Sink::File(file.clone()));
    lab.ping("198.51.100.2", 3, 56);
    lab.tcp_exchange("198.51.100.2", 5001);
    let (summary, lines) = finish();
    let t1 = now_ns();
    let summary = summary.unwrap();
    assert_eq!(summary.format, Format::Pcap);
    assert_eq!(summary.interfaces, ["vb1"]);
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.packets as usize, lines.len());

    // Decoded lines, as tcpdump would print them.
    for (iface, _, ts) in &lines {
        assert_eq!(iface, "vb1");
        assert!(
            *ts + 1_000_000_000 > t0 && *ts < t1 + 1_000_000_000,
            "kernel timestamp off the wall clock"
        );
    }
    assert!(
        lines.windows(2).all(|w| w[0].2 <= w[1].2),
        "timestamps out of order"
    );
    let text: Vec<&str> = lines.iter().map(|(_, l, _)| l.as_str()).collect();
    let text = text.join("\n");
    assert!(
        text.contains("ARP, Request who-has 198.51.100.2 tell 198.51.100.1, length 28"),
        "{text}"
    );
    assert!(text.contains("ARP, Reply 198.51.100.2 is-at "), "{text}");
    // Each packet once: ping -c 3 gives exactly 3 requests and 3 replies.
    assert_eq!(
        count_matching(
            &lines,
            "IP 198.51.100.1 > 198.51.100.2: ICMP echo request, id "
        ),
        3,
        "{text}"
    );
    assert_eq!(
        count_matching(
            &lines,
            "IP 198.51.100.2 > 198.51.100.1: ICMP echo reply, id "
        ),
        3,
        "{text}"
    );
    assert!(text.contains("seq 3, length 64"), "{text}");
    assert_eq!(
        count_matching(&lines, "> 198.51.100.2.5001: Flags [S], seq "),
        1,
        "{text}"
    );
    assert!(text.contains("options [mss 1460,sackOK,TS val "), "{text}");
    assert!(
        text.contains("IP 198.51.100.2.5001 > 198.51.100.1."),
        "{text}"
    );
    assert!(text.contains("Flags [S.], seq "), "{text}");
    assert!(text.contains("Flags [P.], seq "), "{text}");
    assert!(text.contains("length 6"), "{text}");
    assert!(text.contains("Flags [F.]"), "{text}");

    // The file reads back the same, and tshark reads it cleanly.
    let recs = pcap::read_file_as(&file, "vb1").unwrap();
    assert_eq!(recs.len() as u64, summary.packets);
    let decoded: Vec<String> = recs.iter().map(|r| decode(&r.data).to_string()).collect();
    assert_eq!(
        decoded,
        lines.iter().map(|(_, l, _)| l.clone()).collect::<Vec<_>>()
    );
    assert!(recs.iter().all(|r| r.interface == "vb1"));
    // Microsecond file: same instants to the microsecond.
    assert!(
        recs.iter()
            .zip(&lines)
            .all(|(r, l)| r.ts == l.2 / 1000 * 1000)
    );
    tshark_sees_pings_and_a_handshake(&file, summary.packets);
}

/// tshark reads `file` cleanly: `packets` packets, 3 pings answered, a
/// handshake to port 5001.
fn tshark_sees_pings_and_a_handshake(file: &Path, packets: u64) {
    let info = tshark(file, &[]);
    assert_eq!(info.len() as u64, packets);
    let info = info.join("\n");
    assert_eq!(info.matches("Echo (ping) request").count(), 3, "{info}");
    assert_eq!(info.matches("Echo (ping) reply").count(), 3, "{info}");
    assert!(
        info.contains("[SYN]") && info.contains("[SYN, ACK]"),
        "{info}"
    );
    let syns = tshark(file, &["tcp.flags.syn", "tcp.flags.ack", "tcp.dstport"]);
    assert!(
        syns.iter()
            .any(|l| l.split('\t').collect::<Vec<_>>() == ["1", "0", "5001"]),
        "{syns:?}"
    );
}

#[test]
fn pcapng_on_two_veths() {
    if skip_unless_root("pcapng_on_two_veths", &["tshark", "nc", "ping", "ss"]) {
        return;
    }
    let lab = Lab::new(2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.pcapng");
    assert_eq!(
        list_interfaces(Some(&lab.b.path())).unwrap(),
        ["vb1", "vb2"]
    );
    // No interfaces named: all of b's but lo.
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        ..CaptureSpec::default()
    };
    let finish = start(&spec, Sink::File(file.clone()));
    lab.ping("198.51.100.2", 3, 56);
    lab.tcp_exchange("10.99.2.2", 5002);
    lab.ping("10.99.2.2", 2, 56);
    let (summary, lines) = finish();
    let summary = summary.unwrap();
    assert_eq!(summary.format, Format::Pcapng);
    assert_eq!(summary.interfaces, ["vb1", "vb2"]);
    assert_eq!(summary.dropped, 0);
    assert!(
        lines.windows(2).all(|w| w[0].2 <= w[1].2),
        "not merged in time order"
    );
    let on = |iface: &str, needle: &str| {
        lines
            .iter()
            .filter(|(i, l, _)| i == iface && l.contains(needle))
            .count()
    };
    assert_eq!(on("vb1", "ICMP echo request"), 3);
    assert_eq!(on("vb1", "ICMP echo reply"), 3);
    assert_eq!(on("vb2", "ICMP echo request"), 2);
    assert_eq!(on("vb2", "> 10.99.2.2.5002: Flags [S], seq"), 1);
    assert_eq!(on("vb1", "10.99.2.2"), 0);

    let recs = read_file(&file).unwrap();
    assert_eq!(recs.len() as u64, summary.packets);
    for (r, (iface, line, ts)) in recs.iter().zip(&lines) {
        assert_eq!(&r.interface, iface);
        assert_eq!(&decode(&r.data).to_string(), line);
        assert_eq!(r.ts, *ts, "pcapng keeps nanoseconds");
    }

    let rows = tshark(
        &file,
        &[
            "frame.interface_name",
            "icmp.type",
            "tcp.flags.syn",
            "tcp.flags.ack",
        ],
    );
    assert_eq!(rows.len() as u64, summary.packets);
    let count = |want: &[&str]| {
        rows.iter()
            .filter(|r| r.split('\t').collect::<Vec<_>>() == want)
            .count()
    };
    assert_eq!(count(&["vb1", "8", "", ""]), 3, "{rows:?}");
    assert_eq!(count(&["vb1", "0", "", ""]), 3, "{rows:?}");
    assert_eq!(count(&["vb2", "8", "", ""]), 2, "{rows:?}");
    assert_eq!(count(&["vb2", "", "1", "0"]), 1, "{rows:?}");
    // capinfos lists both interfaces, with the statistics blocks' drop counts.
    if have("capinfos") {
        let out = run_cmd(&["capinfos", "-I", file.to_str().unwrap()]);
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(
            info.contains("Name = vb1") && info.contains("Name = vb2"),
            "{info}"
        );
        assert!(info.contains("Number of stat entries = 1"), "{info}");
    }
}

#[test]
fn router_interfaces_merge_in_time_order() {
    if skip_unless_root("router_interfaces_merge_in_time_order", &["ping"]) {
        return;
    }
    // a - b - c with b forwarding; capture both of b's interfaces while a
    // pings c quickly: each request must show on vb1 (in) before vb2 (out),
    // each reply on vb2 before vb1, and the whole file in time order.
    let lab = Lab::new(1);
    let c = Netns::new(lab.b.name.replace("-b", "-c"));
    run_cmd(&[
        "ip",
        "link",
        "add",
        "vb2",
        "netns",
        &lab.b.name,
        "type",
        "veth",
        "peer",
        "name",
        "vc",
        "netns",
        &c.name,
    ]);
    lab.b.ip(&["addr", "add", "10.99.2.2/24", "dev", "vb2"]);
    c.ip(&["addr", "add", "10.99.2.3/24", "dev", "vc"]);
    lab.b.ip(&["link", "set", "vb2", "up"]);
    c.ip(&["link", "set", "vc", "up"]);
    lab.a
        .ip(&["route", "add", "10.99.2.0/24", "via", "198.51.100.2"]);
    c.ip(&["route", "add", "198.51.100.0/24", "via", "10.99.2.2"]);
    run_cmd(&[
        "ip",
        "netns",
        "exec",
        &lab.b.name,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
    ]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.pcapng");
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        ..CaptureSpec::default()
    };
    let finish = start(&spec, Sink::File(file.clone()));
    let out = lab
        .a
        .exec(&["ping", "-n", "-q", "-c", "100", "-i", "0.005", "10.99.2.3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (summary, lines) = finish();
    let summary = summary.unwrap();
    assert_eq!(summary.interfaces, ["vb1", "vb2"]);
    assert_eq!(summary.dropped, 0);
    assert!(
        lines.windows(2).all(|w| w[0].2 <= w[1].2),
        "not merged in time order"
    );
    let recs = read_file(&file).unwrap();
    assert!(recs.windows(2).all(|w| w[0].ts <= w[1].ts));
    for seq in 1..=100 {
        let at = |iface: &str, what: &str| {
            let needle = format!("ICMP echo {what}, id ");
            let tail = format!(", seq {seq}, length 64");
            lines
                .iter()
                .position(|(i, l, _)| i == iface && l.contains(&needle) && l.ends_with(&tail))
                .unwrap_or_else(|| panic!("no echo {what} seq {seq} on {iface}"))
        };
        assert!(
            at("vb1", "request") < at("vb2", "request"),
            "request {seq} left before it came in"
        );
        assert!(
            at("vb2", "reply") < at("vb1", "reply"),
            "reply {seq} left before it came in"
        );
    }
}

#[test]
fn count_duration_snaplen_and_writer_sink() {
    if skip_unless_root("count_duration_snaplen_and_writer_sink", &["ping"]) {
        return;
    }
    let lab = Lab::new(1);

    // Count: stops by itself after 4 packets.
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        interfaces: vec!["vb1".into()],
        count: Some(4),
        snaplen: 64,
        ..CaptureSpec::default()
    };
    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buf = Shared(Arc::new(Mutex::new(Vec::new())));
    let cap = Capture::open(&spec).unwrap();
    let sink = Sink::Writer(Box::new(buf.clone()));
    let stop = AtomicBool::new(false);
    let pinger = std::thread::scope(|s| {
        let h = s.spawn(|| cap.run(sink, &stop, &mut |_, _, _| {}));
        lab.ping("198.51.100.2", 4, 500);
        h.join().unwrap()
    });
    let summary = pinger.unwrap();
    assert_eq!(summary.packets, 4);
    let recs = pcap::read_from(&buf.0.lock().unwrap()[..], "vb1").unwrap();
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert!(r.data.len() <= 64, "snaplen not applied: {}", r.data.len());
    }
    let big = recs
        .iter()
        .find(|r| decode(&r.data).is_echo_request())
        .expect("an echo request");
    assert_eq!(big.data.len(), 64);
    assert_eq!(big.orig_len, 14 + 20 + 8 + 500);
    assert!(decode(&big.data).to_string().contains("length 508"));

    // Duration: returns on time with a valid, empty file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiet.pcap");
    let spec = CaptureSpec {
        netns: Some(lab.a.path()),
        duration: Some(Duration::from_millis(300)),
        ..CaptureSpec::default()
    };
    let t = Instant::now();
    let s = run(
        &spec,
        Sink::File(file.clone()),
        &AtomicBool::new(false),
        &mut |_, _, _| {},
    )
    .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!((s.packets, s.format), (0, Format::Pcap));
    assert_eq!(read_file(&file).unwrap().len(), 0);
}

#[test]
fn vlan_tags_are_put_back() {
    if skip_unless_root("vlan_tags_are_put_back", &[]) {
        return;
    }
    // This kernel has no 8021q module, so a tagged frame is sent raw out of
    // va1. The receiving side strips the tag into packet metadata before any
    // tap sees it: the capture on vb1 must put it back.
    let lab = Lab::new(1);
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        interfaces: vec!["vb1".into()],
        ..CaptureSpec::default()
    };
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
    let mut ip = vec![
        0x45, 0, 0, 84, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 99, 10, 1, 10, 99, 10, 2,
    ];
    ip.extend_from_slice(&[8, 0, 0, 0, 0, 7, 0, 1]);
    ip.resize(84, 0x61);
    frame.extend_from_slice(&ip);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.pcap");
    let finish = start(&spec, Sink::File(file.clone()));
    send_raw(&lab.a.path(), "va1", &frame);
    let (summary, lines) = finish();
    summary.unwrap();
    assert_eq!(
        count_matching(
            &lines,
            "vlan 10, IP 10.99.10.1 > 10.99.10.2: ICMP echo request, id 7, seq 1, length 64"
        ),
        1,
        "{lines:?}"
    );
    let recs = read_file(&file).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data, frame, "the frame as sent, tag included");
    assert_eq!(recs[0].orig_len as usize, frame.len());
}

#[test]
fn link_down_is_survived_and_deletion_reported() {
    if skip_unless_root("link_down_is_survived_and_deletion_reported", &["ping"]) {
        return;
    }
    let lab = Lab::new(2);
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        interfaces: vec!["vb1".into(), "vb2".into()],
        ..CaptureSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.pcapng");
    let cap = Capture::open(&spec).unwrap();
    let stop = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut n = 0;
            let r = cap.run(Sink::File(file.clone()), &stop, &mut |_, _, _| n += 1);
            (r, n)
        });
        lab.ping("198.51.100.2", 1, 56);
        // A link cut for an experiment: the capture carries on.
        lab.b.ip(&["link", "set", "vb1", "down"]);
        std::thread::sleep(Duration::from_millis(200));
        lab.b.ip(&["link", "set", "vb1", "up"]);
        std::thread::sleep(Duration::from_millis(100));
        lab.ping("198.51.100.2", 1, 56);
        // Deleting the other interface ends it.
        lab.b.ip(&["link", "del", "vb2"]);
        let t = Instant::now();
        while !h.is_finished() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap()
    });
    let (r, n) = result;
    let err = r.unwrap_err();
    assert!(
        matches!(err, CaptureError::InterfaceGone { ref iface, .. } if iface == "vb2"),
        "{err}"
    );
    assert!(err.to_string().contains(&lab.b.name), "{err}");
    let recs = read_file(&file).unwrap();
    assert_eq!(recs.len(), n);
    let pings = recs
        .iter()
        .filter(|r| decode(&r.data).is_echo_request())
        .count();
    assert_eq!(
        pings, 2,
        "the ping after the link came back up was not captured"
    );
}

#[test]
fn errors_name_the_namespace_and_interface() {
    let missing = PathBuf::from("/run/netns/tcplab-captest-no-such-node");
    let spec = CaptureSpec {
        netns: Some(missing.clone()),
        ..CaptureSpec::default()
    };
    let err = Capture::open(&spec).unwrap_err();
    assert!(matches!(err, CaptureError::NetnsNotFound { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "network namespace /run/netns/tcplab-captest-no-such-node not found (is the lab up? `ip netns list` shows the namespaces)"
    );
    assert!(list_interfaces(Some(&missing)).is_err());

    if skip_unless_root("errors_name_the_namespace_and_interface (root part)", &[]) {
        return;
    }
    let lab = Lab::new(2);
    let spec = CaptureSpec {
        netns: Some(lab.b.path()),
        interfaces: vec!["eth9".into()],
        ..CaptureSpec::default()
    };
    let err = Capture::open(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "interface eth9 not found in {} (its interfaces: vb1, vb2)",
            lab.b.name
        )
    );
    let bare = Netns::new(format!("tcplab-captest-{}-bare", std::process::id()));
    let spec = CaptureSpec {
        netns: Some(bare.path()),
        ..CaptureSpec::default()
    };
    let err = Capture::open(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no interface to capture on besides lo (is the lab up?)",
            bare.name
        )
    );
    // The caller's thread never changed namespace.
    let here = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    list_interfaces(Some(&lab.a.path())).unwrap();
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        here
    );
}
