//! Integration tests of `tcplab capture` on the real binary and the netns runtime:
//! all of a node's interfaces go to pcapng, one interface to classic pcap, `-w -` to standard
//! output; SIGTERM and SIGINT end a capture with a complete file and a summary; the packet lines
//! on stderr read like `tcpdump -n`; an unknown node or interface is refused in one line.
//! Every file is checked with tshark.
//!
//! Root only (without root each test prints `skipped: not root` and passes). Every test has a
//! lab of its own (`t<tag><pid>`, isolated, no uplink), removed by a drop guard even when the
//! test panics, so the tests run in parallel.

mod common;
mod exp_common;

use common::{Bg, Lab, Out, TempDir};
use exp_common::*;
use regex::Regex;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The banner tcplab prints once the capture sockets are open.
const READY: &str = "capturing on";

/// `tcplab ... capture ARGS...`, started in the background; waits until it is capturing.
fn start_capture(lab: &Lab, args: &[&str], stdout: Option<Stdio>) -> Bg {
    let mut c: Command = lab.cmd();
    c.arg("capture").args(args);
    let mut bg = Bg::spawn_to(c, None, stdout);
    assert!(
        bg.wait_stderr(READY, Duration::from_secs(30)),
        "the capture did not start: {}",
        bg.stderr_so_far()
    );
    bg
}

/// The `N packets captured, M dropped` summary of a capture's stderr.
fn capture_summary(out: &Out) -> (usize, usize) {
    let re = Regex::new(r"(\d+) packets captured, (\d+) dropped").unwrap();
    let c = re.captures(&out.stderr).unwrap_or_else(|| {
        panic!(
            "no `N packets captured, M dropped` line: {}",
            out.describe()
        )
    });
    (c[1].parse().unwrap(), c[2].parse().unwrap())
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Warm the ARP caches on the way slip -> aix, so that a later ping is exactly its ICMP packets.
fn warm(lab: &Lab) {
    lab.exec(
        "slip",
        &["ping", "-n", "-c", "1", "-W", "3", "140.252.1.92"],
    )
    .expect_ok();
}

/// `capture bsdi -c 8 -w F.pcapng` (all of bsdi's interfaces) during `slip ping -c 2 aix`:
/// a pcapng holding both interfaces, with the echo requests on each.
#[test]
fn all_interfaces_make_a_pcapng_with_both() {
    root_or_skip!();
    let dir = TempDir::new("cng");
    let lab = Lab::new("cng");
    lab.up(None);
    warm(&lab);
    let file = dir.join("bsdi.pcapng");
    let cap = start_capture(
        &lab,
        &[
            "bsdi",
            "-c",
            "8",
            "--duration",
            "30",
            "-w",
            file.to_str().unwrap(),
        ],
        None,
    );
    lab.exec("slip", &["ping", "-c", "2", "-i", "0.2", "-W", "3", "aix"])
        .expect_ok();
    let out = cap.wait(Duration::from_secs(45));
    assert!(
        out.ok(),
        "capture -c 8 did not end well: {}",
        out.describe()
    );
    let (n, _) = capture_summary(&out);
    assert_eq!(n, 8, "-c 8 stops after 8 packets: {}", out.describe());
    assert_eq!(
        capture_format(&read(&file)),
        CaptureFormat::Pcapng,
        "several interfaces: pcapng"
    );
    let rows = tshark_fields(
        &file,
        &[
            "frame.interface_id",
            "frame.interface_name",
            "icmp.type",
            "ip.src",
            "ip.dst",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 8, "tshark reads the 8 packets: {rows:?}");
    let mut names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        ["bsdiside", "eth1"],
        "both of bsdi's interfaces, by name: {rows:?}"
    );
    let mut ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "two interface description blocks: {rows:?}");
    for iface in ["bsdiside", "eth1"] {
        let requests = rows
            .iter()
            .filter(|r| {
                r[1] == iface && r[2] == "8" && r[3] == "140.252.13.65" && r[4] == "140.252.1.92"
            })
            .count();
        assert!(
            requests >= 1,
            "no echo request from slip to aix on bsdi's {iface}: {rows:?}"
        );
    }
    // With several interfaces, each stderr line names its interface.
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("ICMP echo request"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains(" bsdiside "))
            && lines.iter().any(|l| l.contains(" eth1 ")),
        "{}",
        out.stderr
    );
}

/// One interface: a classic pcap; the stderr lines read like `tcpdump -n` (ARP and ICMP).
#[test]
fn one_interface_makes_a_pcap_and_tcpdump_lines() {
    root_or_skip!();
    let dir = TempDir::new("cpcap");
    let lab = Lab::new("cpcap");
    lab.up(None);
    let file = dir.join("bsdi.pcap");
    // A cold ARP cache on slip: the capture sees slip ask for bsdi first.
    lab.exec("slip", &["ip", "neigh", "flush", "dev", "slipside"])
        .expect_ok();
    let cap = start_capture(
        &lab,
        &[
            "bsdi",
            "bsdiside",
            "-c",
            "4",
            "--duration",
            "30",
            "-w",
            file.to_str().unwrap(),
        ],
        None,
    );
    lab.exec("slip", &["ping", "-c", "1", "-W", "3", "aix"])
        .expect_ok();
    let out = cap.wait(Duration::from_secs(45));
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(capture_summary(&out).0, 4, "{}", out.describe());
    let bytes = read(&file);
    assert_eq!(
        capture_format(&bytes),
        CaptureFormat::Pcap,
        "one interface: classic pcap (magic {:02x?})",
        &bytes[..bytes.len().min(4)]
    );
    let rows = tshark_fields(&file, &["arp.opcode", "icmp.type"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter().any(|r| r[0] == "1") && rows.iter().any(|r| r[0] == "2"),
        "ARP request and reply: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "8") && rows.iter().any(|r| r[1] == "0"),
        "echo request and reply: {rows:?}"
    );
    // tcpdump -n: "HH:MM:SS.uuuuuu ARP, Request who-has 140.252.13.66 tell 140.252.13.65, length 28",
    // "HH:MM:SS.uuuuuu IP 140.252.13.65 > 140.252.1.92: ICMP echo request, id N, seq 1, length 64".
    let stamp = Regex::new(r"^\d\d:\d\d:\d\d\.\d{6} ").unwrap();
    let packet_lines: Vec<&str> = out.stderr.lines().filter(|l| stamp.is_match(l)).collect();
    assert_eq!(
        packet_lines.len(),
        4,
        "one line per packet, starting with the time:\n{}",
        out.stderr
    );
    let has = |s: &str| packet_lines.iter().any(|l| l.contains(s));
    assert!(
        has("ARP, Request who-has 140.252.13.66 tell 140.252.13.65"),
        "{}",
        out.stderr
    );
    assert!(has("ARP, Reply 140.252.13.66 is-at "), "{}", out.stderr);
    assert!(
        has("IP 140.252.13.65 > 140.252.1.92: ICMP echo request"),
        "{}",
        out.stderr
    );
    assert!(
        has("IP 140.252.1.92 > 140.252.13.65: ICMP echo reply"),
        "{}",
        out.stderr
    );
}

/// `-w -`: the pcap goes to standard output (to pipe into Wireshark); the lines stay on stderr.
#[test]
fn dash_writes_a_pcap_to_stdout() {
    root_or_skip!();
    let dir = TempDir::new("cout");
    let lab = Lab::new("cout");
    lab.up(None);
    warm(&lab);
    let file = dir.join("stdout.pcap");
    let sink = std::fs::File::create(&file).expect("creating the stdout file");
    let cap = start_capture(
        &lab,
        &["bsdi", "bsdiside", "-c", "2", "--duration", "30", "-w", "-"],
        Some(Stdio::from(sink)),
    );
    lab.exec("slip", &["ping", "-c", "1", "-W", "3", "aix"])
        .expect_ok();
    let out = cap.wait(Duration::from_secs(45));
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(capture_summary(&out).0, 2, "{}", out.describe());
    let bytes = read(&file);
    assert_eq!(
        capture_format(&bytes),
        CaptureFormat::Pcap,
        "stdout holds a pcap (first bytes {:02x?})",
        &bytes[..bytes.len().min(16)]
    );
    let rows = tshark_fields(&file, &["icmp.type"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["8", "0"],
        "the echo request and its reply"
    );
    assert!(
        out.stderr.contains("ICMP echo request"),
        "the packet lines go to stderr: {}",
        out.stderr
    );
}

/// A capture with neither count nor duration, ended by a signal: a complete file holding what
/// the summary line says.
fn signal_ends_capture(tag: &str, signal: libc::c_int) {
    let dir = TempDir::new(tag);
    let lab = Lab::new(tag);
    lab.up(None);
    warm(&lab);
    let file = dir.join("bsdi.pcap");
    let cap = start_capture(
        &lab,
        &["bsdi", "bsdiside", "-w", file.to_str().unwrap()],
        None,
    );
    lab.exec("slip", &["ping", "-c", "2", "-i", "0.2", "-W", "3", "aix"])
        .expect_ok();
    // Both replies are on the line once the ping is done; wait until the capture printed them.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cap.stderr_so_far().matches("ICMP echo reply").count() < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) of our own child (tcplab itself, not its process group).
    let rc = unsafe { libc::kill(cap.pid() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "sending signal {signal}");
    let out = cap.wait(Duration::from_secs(20));
    assert!(
        !out.timed_out,
        "signal {signal} did not end the capture: {}",
        out.describe()
    );
    assert_eq!(
        out.code,
        0,
        "a capture ended by signal {signal} exits 0 (as tcpdump does): {}",
        out.describe()
    );
    let (n, dropped) = capture_summary(&out);
    assert!(
        n >= 4,
        "two echo requests and two replies at least: {}",
        out.describe()
    );
    assert_eq!(dropped, 0, "{}", out.describe());
    assert_eq!(capture_format(&read(&file)), CaptureFormat::Pcap);
    let rows = tshark_fields(&file, &["icmp.type"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows.len(),
        n,
        "the file holds the {n} packets the summary counts"
    );
    assert_eq!(rows.iter().filter(|r| r[0] == "8").count(), 2, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r[0] == "0").count(), 2, "{rows:?}");
}

/// SIGTERM ends a running capture with a complete file and the summary line.
#[test]
fn sigterm_ends_a_capture_with_a_complete_file() {
    root_or_skip!();
    signal_ends_capture("cterm", libc::SIGTERM);
}

/// SIGINT (Ctrl-C) ends a running capture with a complete file and the summary line.
#[test]
fn sigint_ends_a_capture_with_a_complete_file() {
    root_or_skip!();
    signal_ends_capture("cint", libc::SIGINT);
}

/// An unknown node or interface: exit 2, one line naming it, no file written.
#[test]
fn unknown_node_or_interface_is_refused_in_one_line() {
    root_or_skip!();
    let dir = TempDir::new("cbad");
    let lab = Lab::new("cbad");
    lab.up(None);
    let file = dir.join("x.pcap");
    let f = file.to_str().unwrap();
    for (args, names) in [
        (
            vec!["capture", "nosuch", "-c", "1", "-w", f],
            vec!["nosuch"],
        ),
        (
            vec!["capture", "bsdi", "eth9", "-c", "1", "-w", f],
            vec!["eth9", "bsdi"],
        ),
    ] {
        let out = lab.tcplab(&args);
        assert_eq!(out.code, 2, "{}", out.describe());
        let lines = out.stderr_lines();
        assert_eq!(lines.len(), 1, "one line: {}", out.describe());
        for n in names {
            assert!(
                lines[0].contains(&format!("'{n}'")) || lines[0].contains(n),
                "the error names {n}: {}",
                out.describe()
            );
        }
        assert!(!file.exists(), "a refused capture writes no file");
    }
}

/// An error that names a lab names the lab it was asked about (`--lab`), not the topology's name.
#[test]
fn unknown_node_error_names_the_lab_asked_about() {
    root_or_skip!();
    let lab = Lab::new("cname");
    lab.up(None);
    let out = lab.tcplab(&["capture", "nosuch", "-c", "1", "-w", "/dev/null"]);
    assert_eq!(out.code, 2, "{}", out.describe());
    let line = out.stderr_lines().join("\n");
    let re = Regex::new(r"lab '([a-z0-9]+)'").unwrap();
    if let Some(c) = re.captures(&line) {
        assert_eq!(
            &c[1], lab.name,
            "the error is about lab {} but names lab '{}': {line}",
            lab.name, &c[1]
        );
    }
}
