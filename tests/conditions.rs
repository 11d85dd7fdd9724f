//! Link conditions end to end, on both runtimes: the real `tcplab` binary sets conditions on
//! the course lab's lines and the tests measure what a student would measure: ping RTTs across
//! the SLIP line at the book's speeds (TCP/IP Illustrated Vol. 1, 7.2: 1.43 s at 1200 bit/s),
//! one-way delay, random loss within a binomial interval, a deterministic drop that makes TCP
//! fast-retransmit, a rate-limited transfer's time, `clear`, and `down` leaving nothing.
//! Root only (without root, each test says `skipped: not root`); docker tests also need a Docker
//! engine and Open vSwitch and say which is missing.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Why labs of this runtime cannot run here (None: they can).
fn missing(rt: Runtime) -> Option<String> {
    match rt {
        Runtime::Netns => (!is_root()).then(|| "not root".to_string()),
        Runtime::Docker => common::docker::docker_and_ovs_missing(),
    }
}

macro_rules! env_or_skip {
    ($rt:expr) => {
        if let Some(reason) = missing($rt) {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// The RTTs (ms) of each reply in ping's output.
fn rtts(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no RTT measured");
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median RTT of `count` pings from `from` to `to` (ARP warmed first, without conditions).
fn ping_median(lab: &Lab, from: &str, to: &str, count: u32, interval: &str) -> f64 {
    let n = count.to_string();
    let out = lab.exec_t(
        from,
        &["ping", "-n", "-c", &n, "-i", interval, "-W", "5", to],
        Duration::from_secs(120),
    );
    median(rtts(&out.stdout))
}

fn set(lab: &Lab, args: &[&str]) {
    let mut a = vec!["-q", "link", "set"];
    a.extend_from_slice(args);
    lab.tcplab(&a).expect_ok();
}

fn within(measured: f64, expected: f64, pct: f64) -> bool {
    (measured - expected).abs() <= expected * pct / 100.0
}

/// Worker processes serving any of this lab's conditions.
fn workers_of(lab: &Lab) -> usize {
    let out = must("ps", &["-eo", "args"]);
    out.lines()
        .filter(|l| l.contains("link-worker") && l.contains(&format!("/{}/", lab.name)))
        .count()
}

fn serial_line_rtts(rt: Runtime) {
    let _serial = serial();
    let lab = rt.lab("cser");
    lab.up(None);
    // Warm ARP on the line first: the first ping would also carry ARP at 1200 bit/s.
    ping_median(&lab, "slip", "bsdi-bsdiside", 2, "0.2");
    set(
        &lab,
        &["slip", "bsdi", "--rate", "1200bit", "--framing", "slip"],
    );
    let m = ping_median(&lab, "slip", "bsdi-bsdiside", 5, "2");
    // 86 bytes on the line, 10 bits a byte, both ways: 86 * 10 / 1200 * 2 = 1.4333 s.
    assert!(
        within(m, 1433.3, 5.0),
        "median RTT {m} ms at 1200 bit/s, expected 1433 ms +-5%"
    );
    set(&lab, &["slip", "bsdi", "--rate", "9600bit"]);
    let m = ping_median(&lab, "slip", "bsdi-bsdiside", 7, "0.5");
    // 86 bytes at 9600 bit/s: 89.6 ms each way.
    assert!(
        within(m, 179.2, 5.0),
        "median RTT {m} ms at 9600 bit/s, expected 179 ms +-5%"
    );
    lab.tcplab(&["-q", "link", "clear", "slip", "bsdi"])
        .expect_ok();
    let m = ping_median(&lab, "slip", "bsdi-bsdiside", 5, "0.2");
    assert!(m < 1.0, "after clear the RTT is {m} ms, not microseconds");
    assert_eq!(workers_of(&lab), 0, "clear stops the workers");
}

#[test]
fn serial_line_at_the_books_speeds_netns() {
    env_or_skip!(Runtime::Netns);
    serial_line_rtts(Runtime::Netns);
}

#[test]
fn serial_line_at_the_books_speeds_docker() {
    env_or_skip!(Runtime::Docker);
    serial_line_rtts(Runtime::Docker);
}

fn one_way_delay_and_loss(rt: Runtime) {
    let _serial = serial();
    let lab = rt.lab("cdel");
    lab.up(None);
    ping_median(&lab, "slip", "bsdi-bsdiside", 2, "0.2");
    // What leaves bsdi's end only: the replies. One way, so the RTT is 100 ms, not 200.
    set(&lab, &["bsdi:bsdiside", "--delay", "100ms"]);
    let m = ping_median(&lab, "slip", "bsdi-bsdiside", 5, "0.2");
    assert!(
        (100.0..112.0).contains(&m),
        "RTT {m} ms with 100 ms one way"
    );
    // Setting loss keeps the delay (only named conditions change).
    set(&lab, &["bsdi:bsdiside", "--delay", "0", "--loss", "20%"]);
    let shown = lab.tcplab(&["link", "show"]).expect_ok().stdout;
    assert!(
        shown.contains("loss 20%") && !shown.contains("delay"),
        "{shown}"
    );
    let out = lab.exec_t(
        "slip",
        &[
            "ping",
            "-n",
            "-q",
            "-c",
            "500",
            "-i",
            "0.01",
            "-W",
            "1",
            "bsdi-bsdiside",
        ],
        Duration::from_secs(120),
    );
    let received: u32 = out
        .stdout
        .split(", ")
        .find_map(|p| p.strip_suffix(" received")?.parse().ok())
        .expect("ping's summary");
    let lost = 500 - received;
    // Binomial(500, 0.2): mean 100, sd 8.94; 99% interval 100 +- 2.576 sd = [77, 123].
    assert!((77..=123).contains(&lost), "{lost} of 500 lost at 20% loss");
}

#[test]
fn one_way_delay_and_random_loss_netns() {
    env_or_skip!(Runtime::Netns);
    one_way_delay_and_loss(Runtime::Netns);
}

#[test]
fn one_way_delay_and_random_loss_docker() {
    env_or_skip!(Runtime::Docker);
    one_way_delay_and_loss(Runtime::Docker);
}

/// Start `nc -l` on slip writing what it gets to a file, and wait until it listens.
fn receiver(lab: &Lab, file: &str) -> Bg {
    let cmd = format!("nc -l -p 5001 > {file}");
    let bg = Bg::spawn(lab.exec_cmd("slip", &["sh", "-c", &cmd]), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let ss = lab.exec("slip", &["sh", "-c", "ss -ltn | grep -c ':5001 ' || true"]);
        if ss.stdout.trim() != "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bg
}

fn fast_retransmit(rt: Runtime) {
    let _serial = serial();
    let lab = rt.lab("cfrx");
    lab.up(None);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("slip.pcap");
    let rx = receiver(&lab, "/tmp/received");
    // The first data segment aix sends is dropped once.
    set(&lab, &["aix:eth1", "--drop-next", "1 tcp data"]);
    let mut cap = Bg::spawn(
        {
            let mut c = lab.cmd();
            c.args(["-q", "capture", "slip", "slipside", "-w"])
                .arg(&pcap);
            c
        },
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let send = lab.exec_t(
        "aix",
        &[
            "sh",
            "-c",
            "head -c 300000 /dev/urandom | tee /tmp/sent | nc -N slip 5001",
        ],
        Duration::from_secs(60),
    );
    assert!(send.ok(), "{}", send.describe());
    rx.wait(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    cap.kill();
    cap.wait(Duration::from_secs(10));
    let shown = lab.tcplab(&["link", "show", "--json"]).expect_ok().stdout;
    assert!(
        shown.contains("\"dropped\": 1"),
        "one segment dropped: {shown}"
    );
    // Every byte arrived.
    let a = lab.exec("aix", &["sha256sum", "/tmp/sent"]).stdout;
    let b = lab.exec("slip", &["sha256sum", "/tmp/received"]).stdout;
    assert_eq!(
        a.split(' ').next(),
        b.split(' ').next(),
        "the transfer is whole"
    );
    // Seen at slip: duplicate ACKs going out, then the missing segment arriving again, well
    // before a retransmission timeout (at least 200 ms on Linux) could have sent it.
    let t = sh(
        "tshark",
        &[
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "tcp.analysis.duplicate_ack || tcp.analysis.retransmission || tcp.analysis.fast_retransmission",
            "-T",
            "fields",
            "-e",
            "frame.time_relative",
            "-e",
            "tcp.analysis.duplicate_ack_num",
            "-e",
            "tcp.analysis.retransmission",
            "-e",
            "tcp.analysis.fast_retransmission",
        ],
        Duration::from_secs(60),
    );
    assert!(t.ok(), "{}", t.describe());
    let rows: Vec<Vec<&str>> = t.stdout.lines().map(|l| l.split('\t').collect()).collect();
    let dup_times: Vec<f64> = rows
        .iter()
        .filter(|r| r.get(1).is_some_and(|v| !v.is_empty()))
        .filter_map(|r| r[0].parse().ok())
        .collect();
    let retransmit = rows
        .iter()
        .find(|r| r.iter().skip(2).any(|v| !v.is_empty()))
        .and_then(|r| r[0].parse::<f64>().ok());
    assert!(dup_times.len() >= 3, "three duplicate ACKs: {}", t.stdout);
    let retransmit = retransmit.unwrap_or_else(|| panic!("no retransmission: {}", t.stdout));
    let first_dup = dup_times[0];
    assert!(
        retransmit > first_dup && retransmit - first_dup < 0.2,
        "retransmitted {:.3} s after the first duplicate ACK: {}",
        retransmit - first_dup,
        t.stdout
    );
}

#[test]
fn a_dropped_segment_is_fast_retransmitted_netns() {
    env_or_skip!(Runtime::Netns);
    fast_retransmit(Runtime::Netns);
}

#[test]
fn a_dropped_segment_is_fast_retransmitted_docker() {
    env_or_skip!(Runtime::Docker);
    fast_retransmit(Runtime::Docker);
}

fn rate_limited_transfer(rt: Runtime) {
    let _serial = serial();
    let lab = rt.lab("crate");
    lab.up(None);
    let rx = receiver(&lab, "/dev/null");
    set(&lab, &["aix:eth1", "--rate", "1mbit"]);
    let bytes = 500_000u64;
    let start = Instant::now();
    let send = lab.exec_t(
        "aix",
        &[
            "sh",
            "-c",
            &format!("head -c {bytes} /dev/zero | nc -N slip 5001"),
        ],
        Duration::from_secs(60),
    );
    let took = start.elapsed().as_secs_f64();
    assert!(send.ok(), "{}", send.describe());
    rx.wait(Duration::from_secs(10));
    // Full-sized segments carry 1448 bytes (MSS 1460 less the timestamp option) in
    // 1514-byte frames, each sent at 1 Mbit/s.
    let frames = bytes.div_ceil(1448);
    let predicted = (frames * 1514 * 8) as f64 / 1e6;
    assert!(
        within(took, predicted, 5.0),
        "{bytes} bytes at 1 Mbit/s took {took:.2} s, predicted {predicted:.2} s"
    );
}

#[test]
fn a_transfer_at_1_mbit_takes_its_predicted_time_netns() {
    env_or_skip!(Runtime::Netns);
    rate_limited_transfer(Runtime::Netns);
}

#[test]
fn a_transfer_at_1_mbit_takes_its_predicted_time_docker() {
    env_or_skip!(Runtime::Docker);
    rate_limited_transfer(Runtime::Docker);
}

#[test]
fn down_removes_workers_even_one_killed_and_leaves_the_host_as_it_was() {
    env_or_skip!(Runtime::Netns);
    let _serial = serial();
    let before = Runtime::Netns.snapshot();
    let lab = Runtime::Netns.lab("cdown");
    lab.up(None);
    set(&lab, &["slip", "bsdi", "--delay", "5ms"]);
    set(&lab, &["aix:eth1", "--loss", "1%"]);
    assert_eq!(workers_of(&lab), 3);
    // One worker dies: its redirect stays, the line is dead; down still removes everything.
    let pid = must(
        "pgrep",
        &["-f", &format!("link-worker.*/{}/aix/eth1", lab.name)],
    );
    must("kill", &["-9", pid.trim()]);
    std::thread::sleep(Duration::from_millis(200));
    let shown = lab.tcplab(&["link", "show"]).expect_ok().stdout;
    assert!(shown.contains("NOT APPLIED"), "{shown}");
    // `link set` brings it back.
    set(&lab, &["aix:eth1", "--loss", "0%", "--delay", "1ms"]);
    let ok = lab.exec("aix", &["ping", "-c", "2", "-W", "2", "gemini"]);
    assert!(ok.ok(), "{}", ok.describe());
    lab.down();
    assert_eq!(workers_of(&lab), 0, "no worker outlives down");
    let after = Runtime::Netns.snapshot();
    assert_eq!(before.diff(&after, &[&lab.name]), Vec::<String>::new());
}

#[test]
fn bad_conditions_exit_2_with_one_line_and_change_nothing() {
    env_or_skip!(Runtime::Netns);
    let _serial = serial();
    let lab = Runtime::Netns.lab("cbad");
    lab.up(None);
    set(&lab, &["slip", "bsdi", "--delay", "10ms"]);
    let record = lab.record();
    let cases: &[(&[&str], &str)] = &[
        (&["slip", "bsdi", "--delay", "-5ms"], "-5ms"),
        (&["slip", "bsdi", "--rate", "fast"], "fast"),
        (&["slip", "bsdi", "--loss", "120%"], "120%"),
        (&["slip", "bsdi", "--rate", "0bit"], "0bit"),
        (&["slip", "bsdi", "--rate", "500gbit"], "500gbit"),
        (&["slip", "bsdi", "--framing", "hdlc"], "hdlc"),
        (&["slip:nosuch", "--delay", "1ms"], "nosuch"),
        (&["nosuch", "bsdi", "--delay", "1ms"], "nosuch"),
        (&["aix", "sun", "--delay", "1ms"], "aix"),
        (&["slip", "bsdi"], "needs a condition"),
    ];
    for (args, named) in cases {
        let mut a = vec!["link", "set"];
        a.extend_from_slice(args);
        let out = lab.tcplab(&a);
        assert_eq!(out.code, 2, "{args:?}: {}", out.describe());
        let lines = out.stderr_lines();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {}", out.describe());
        assert!(
            lines[0].contains(named),
            "{args:?}: names {named}: {}",
            lines[0]
        );
    }
    assert_eq!(lab.record(), record, "nothing changed");
    assert_eq!(workers_of(&lab), 2);
}
