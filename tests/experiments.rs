//! Integration tests of the book's experiments, on the real `tcplab` binary and the netns
//! runtime: every built-in experiment (every file of experiments/) runs green on a fresh course
//! lab, with a report naming every check, well-formed SVGs and pcaps tshark reads; an
//! experiment goes red, for the right reason, on a lab broken for it; `experiment list` and
//! `graph`.
//!
//! Root only for the tests that build labs (without root they print `skipped: not root` and
//! pass); `list` and `graph` need no privilege and run anyway. Every lab has a name of its own
//! (`t<tag><pid>`, isolated, no uplink), removed by a drop guard even when the test panics, so
//! the labs run in parallel. TCPLAB_TEST_SWITCH=ovs makes the LANs Open vSwitch bridges;
//! TCPLAB_TEST_EXPERIMENTS=NAME[,NAME...] makes the green test run only those experiments.

mod common;
mod exp_common;

use common::{Lab, TempDir, lab_name, tcplab};
use exp_common::*;
use regex::Regex;

// ---------------------------------------------------------------- every experiment is green

/// Every built-in experiment passes every check, each on a fresh course lab of its own
/// (`txok<i><pid>`, netns runtime), as many at a time as the test harness runs tests.
#[test]
fn every_experiment_is_green() {
    root_or_skip!();
    let names = selected_experiments();
    let failed = each_in_parallel(&names, test_threads(), |i, name| {
        assert_green(&format!("xok{i}"), name, common::Runtime::Netns)
    });
    assert!(
        failed.is_empty(),
        "not green: {failed:?} (the failure of each is printed above, under its name)"
    );
}

/// Every built-in experiment passes every check on the docker runtime too, each on a fresh lab
/// of containers of its own.
#[test]
fn every_experiment_is_green_on_docker() {
    if let Some(why) = common::docker::docker_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let names = selected_experiments();
    let failed = each_in_parallel(&names, test_threads(), |i, name| {
        assert_green(&format!("xdk{i}"), name, common::Runtime::Docker)
    });
    assert!(
        failed.is_empty(),
        "not green on docker: {failed:?} (the failure of each is printed above, under its name)"
    );
}

/// Every built-in experiment has at least one broken variant, and goes red on each exactly as
/// the variant says (the checks it names fail, those it says still pass pass), each on a fresh
/// netns lab of its own.
#[test]
fn every_experiment_goes_red_on_its_broken_labs() {
    root_or_skip!();
    let mut cases: Vec<String> = Vec::new();
    for name in selected_experiments() {
        let exp = experiment(name);
        assert!(
            !exp.broken.is_empty(),
            "experiments/{name}.toml has no [[broken]]: every experiment shows how it fails"
        );
        cases.extend((1..=exp.broken.len()).map(|k| format!("{name}#{k}")));
    }
    let refs: Vec<&str> = cases.iter().map(String::as_str).collect();
    let failed = each_in_parallel(&refs, test_threads(), |i, case| {
        let (name, k) = case.split_once('#').expect("NAME#K");
        assert_red(
            &format!("xbr{i}"),
            name,
            k.parse().expect("K"),
            common::Runtime::Netns,
        )
    });
    assert!(
        failed.is_empty(),
        "not red as expected: {failed:?} (the failure of each is printed above, under its name)"
    );
}

/// The built-in experiments, or those TCPLAB_TEST_EXPERIMENTS names (each must be one).
fn selected_experiments() -> Vec<&'static str> {
    let all = registered();
    assert!(
        !all.is_empty(),
        "no built-in experiment: experiments/ holds no file"
    );
    let wanted = std::env::var("TCPLAB_TEST_EXPERIMENTS").unwrap_or_default();
    let wanted: Vec<&str> = wanted
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if wanted.is_empty() {
        return all;
    }
    for w in &wanted {
        assert!(
            all.contains(w),
            "TCPLAB_TEST_EXPERIMENTS names '{w}', which is no built-in experiment: {all:?}"
        );
    }
    all.into_iter().filter(|n| wanted.contains(n)).collect()
}

/// How many tests the harness runs at a time: RUST_TEST_THREADS, else one per CPU.
fn test_threads() -> usize {
    std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

// ---------------------------------------------------------------- red on a broken lab

fn fail_line<'a>(
    res: &'a [(bool, String, String)],
    description: &str,
    what: &str,
) -> &'a (bool, String, String) {
    let r = res
        .iter()
        .find(|(_, d, _)| d == description)
        .unwrap_or_else(|| panic!("no PASS/FAIL line for check `{description}`: {what}"));
    assert!(
        !r.0,
        "check `{description}` should FAIL on this lab: {what}"
    );
    r
}

/// On a lab whose netb has no proxy ARP, `experiment run proxy-arp` (bringing the lab up
/// itself from the topology file) exits 1 and fails the check on netb's reply: gemini's ARP
/// requests for sun's 140.252.1.29 go unanswered.
#[test]
fn proxy_arp_goes_red_without_netbs_proxy_arp() {
    root_or_skip!();
    let dir = TempDir::new("rparp");
    let topo = dir.join("no-proxy-arp.toml");
    std::fs::write(&topo, course_topology_without_proxy_arp()).expect("writing the topology");
    // Declared after `dir`: the lab goes down (with its topology file still there) first.
    let lab = Lab::with_topology("rparp", &topo);
    let out_dir = dir.join("out");
    let out = run_experiment(&lab, "proxy-arp", &out_dir);
    let what = out.describe();
    assert_eq!(
        out.code, 1,
        "proxy-arp on a lab without proxy ARP must exit 1: {what}"
    );
    assert!(!out.timed_out, "{what}");
    let (passed, failed) =
        summary(&out.stdout).unwrap_or_else(|| panic!("no summary line: {what}"));
    assert!(
        failed >= 1,
        "summary says {passed} passed, {failed} failed: {what}"
    );
    let res = results(&out.stdout);
    fail_line(
        &res,
        "netb (not sun) replies for 140.252.1.29 with its own MAC",
        &what,
    );
    fail_line(&res, "sun's address answers the ping", &what);
    // The right reason: gemini asked for 140.252.1.29 and nobody answered.
    let cap = out_dir.join("gemini.pcap");
    let rows = tshark_fields(
        &cap,
        &["arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let requests = rows
        .iter()
        .filter(|r| r[0] == "1" && r[2] == "140.252.1.29")
        .count();
    let replies = rows
        .iter()
        .filter(|r| r[0] == "2" && r[1] == "140.252.1.29")
        .count();
    assert!(
        requests >= 1,
        "gemini sent no ARP request for 140.252.1.29: {rows:?}"
    );
    assert_eq!(
        replies, 0,
        "someone answered ARP for 140.252.1.29 on a lab without proxy ARP: {rows:?}"
    );
    let report =
        std::fs::read_to_string(out_dir.join("report.md")).expect("report.md of a red run");
    assert!(
        report.contains("netb (not sun) replies for 140.252.1.29 with its own MAC"),
        "{report}"
    );
}

/// On a lab where bsdi does not forward (`router = false`), traceroute from slip goes red:
/// the first probe leaves slip but no router answers, so the hops of the book are not printed
/// and no time exceeded comes back from bsdi.
#[test]
fn traceroute_goes_red_when_bsdi_is_not_a_router() {
    root_or_skip!();
    let dir = TempDir::new("rtrace");
    let topo = dir.join("bsdi-no-router.toml");
    let text = course_topology_with(&[(
        "[nodes.bsdi]\nrouter = true\n",
        "[nodes.bsdi]\nrouter = false\n",
    )]);
    std::fs::write(&topo, text).expect("writing the topology");
    let lab = Lab::with_topology("rtrace", &topo);
    lab.up(None);
    let fwd = lab
        .exec("bsdi", &["cat", "/proc/sys/net/ipv4/ip_forward"])
        .expect_ok();
    assert_eq!(fwd.stdout.trim(), "0", "bsdi must not forward on this lab");
    let out_dir = dir.join("out");
    let out = run_experiment(&lab, "traceroute", &out_dir);
    let what = out.describe();
    assert_ne!(
        out.code, 0,
        "traceroute must go red when bsdi does not route: {what}"
    );
    assert_eq!(out.code, 1, "a failed check is exit code 1: {what}");
    let (_, failed) = summary(&out.stdout).unwrap_or_else(|| panic!("no summary line: {what}"));
    assert_eq!(failed, 2, "both checks fail: {what}");
    let res = results(&out.stdout);
    fail_line(&res, "traceroute prints the four hops of the book", &what);
    fail_line(
        &res,
        "time exceeded from bsdi, sun and netb in turn, then port unreachable from aix",
        &what,
    );
    // The right reason: the probes left slip, nothing came back from bsdi.
    let rows = tshark_fields(
        &out_dir.join("slip.pcap"),
        &["ip.src", "ip.dst", "udp.dstport", "icmp.type"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rows.iter()
            .any(|r| r[0] == "140.252.13.65" && r[1] == "140.252.1.92" && !r[2].is_empty()),
        "no UDP probe from slip to aix: {rows:?}"
    );
    assert!(
        !rows.iter().any(|r| r[0] == "140.252.13.66" && r[3] == "11"),
        "bsdi sent time exceeded without forwarding: {rows:?}"
    );
}

// ---------------------------------------------------------------- list

/// `experiment list` prints every built-in experiment, one a line, each with its chapter.
#[test]
fn experiment_list_names_every_experiment_with_its_chapter() {
    let out = tcplab(&["--runtime", "netns", "experiment", "list"]).expect_ok();
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let names = registered();
    assert!(!names.is_empty(), "no built-in experiment");
    assert_eq!(
        lines.len(),
        names.len(),
        "{} experiments, one a line:\n{}",
        names.len(),
        out.stdout
    );
    for name in names {
        let e = experiment(name);
        let re = Regex::new(&format!(
            r"^{}\s+ch\.\s*{}\s",
            regex::escape(name),
            regex::escape(&e.chapter)
        ))
        .unwrap();
        assert!(
            lines.iter().any(|l| re.is_match(l)),
            "no line `{name} ch. {}` in:\n{}",
            e.chapter,
            out.stdout
        );
    }
}

// ---------------------------------------------------------------- graph

fn graph(format: &str) -> String {
    // A lab name no one has up: the built-in course topology, whatever labs are up on the machine.
    let lab = lab_name("g");
    tcplab(&[
        "--lab",
        &lab,
        "--runtime",
        "netns",
        "graph",
        "--format",
        format,
    ])
    .expect_ok()
    .stdout
}

fn missing_hosts(text: &str) -> Vec<&'static str> {
    HOSTS
        .iter()
        .copied()
        .filter(|h| !Regex::new(&format!(r"\b{h}\b")).unwrap().is_match(text))
        .collect()
}

/// `graph --format svg` is well-formed XML whose text names all nine hosts.
#[test]
fn graph_svg_is_xml_naming_the_nine_hosts() {
    let svg = graph("svg");
    let dir = TempDir::new("gsvg");
    let f = dir.join("graph.svg");
    std::fs::write(&f, &svg).expect("writing the SVG");
    if let Some(e) = xml_error(&f) {
        panic!("graph --format svg is not well-formed XML: {e}\n{svg}");
    }
    // The hosts must be in the drawing's text (not only in, say, an attribute).
    let text = svg_text(&f);
    let missing = missing_hosts(&text);
    assert!(
        missing.is_empty(),
        "graph --format svg does not name {missing:?}; its text: {text:?}\n{svg}"
    );
}

/// `graph --format dot` mentions all nine hosts.
#[test]
fn graph_dot_names_the_nine_hosts() {
    let dot = graph("dot");
    assert!(
        dot.trim_start().starts_with("graph")
            || dot.trim_start().starts_with("digraph")
            || dot.trim_start().starts_with("strict"),
        "not DOT:\n{dot}"
    );
    let missing = missing_hosts(&dot);
    assert!(
        missing.is_empty(),
        "graph --format dot does not mention {missing:?}:\n{dot}"
    );
}

/// `graph --format svg` escapes the topology's free text: a description with `<`, `&` and quotes
/// still gives well-formed XML (and DOT that Graphviz reads, where Graphviz is installed).
#[test]
fn graph_escapes_the_description() {
    let dir = TempDir::new("gesc");
    let topo = dir.join("odd.toml");
    let text = course_topology_with(&[(
        "description = \"TCP/IP Illustrated, Vol. 1: the internet used for examples\"",
        "description = 'Stevens <Vol. 1> & \"friends\"'",
    )]);
    std::fs::write(&topo, text).expect("writing the topology");
    let t = topo.to_str().unwrap();
    let svg = tcplab(&[
        "--topology",
        t,
        "--runtime",
        "netns",
        "graph",
        "--format",
        "svg",
    ])
    .expect_ok()
    .stdout;
    let f = dir.join("graph.svg");
    std::fs::write(&f, &svg).expect("writing the SVG");
    if let Some(e) = xml_error(&f) {
        panic!(
            "graph --format svg of a topology whose description holds <, & and \" is not XML: {e}\n{svg}"
        );
    }
    let have_dot = common::sh(
        "sh",
        &["-c", "command -v dot"],
        std::time::Duration::from_secs(10),
    )
    .ok();
    if have_dot {
        let dot = tcplab(&[
            "--topology",
            t,
            "--runtime",
            "netns",
            "graph",
            "--format",
            "dot",
        ])
        .expect_ok()
        .stdout;
        let g = dir.join("graph.dot");
        std::fs::write(&g, &dot).expect("writing the DOT");
        let out = common::sh(
            "dot",
            &["-Tsvg", "-o", "/dev/null", g.to_str().unwrap()],
            std::time::Duration::from_secs(30),
        );
        assert!(
            out.ok(),
            "Graphviz does not read graph --format dot: {}\n{dot}",
            out.describe()
        );
    }
}

/// The time-line SVG of a capture draws it: its text names the hosts that exchanged the
/// packets (bsdi and svr4 for tcp-rst), not only a title.
#[test]
fn timeline_svg_names_the_hosts_of_the_capture() {
    root_or_skip!();
    let dir = TempDir::new("xsvg");
    let lab = Lab::new("xsvg");
    lab.up(None);
    let out_dir = dir.join("out");
    let out = run_experiment(&lab, "tcp-rst", &out_dir);
    assert_eq!(out.code, 0, "{}", out.describe());
    let f = out_dir.join("svr4.svg");
    if let Some(e) = xml_error(&f) {
        panic!("{} is not XML: {e}", f.display());
    }
    let svg = std::fs::read_to_string(&f).expect("reading the SVG");
    let text = svg_text(&f);
    // The title names svr4 (the capture's node) already; bsdi only a drawing of the packets names.
    for host in ["bsdi", "svr4"] {
        assert!(
            Regex::new(&format!(r"\b{host}\b")).unwrap().is_match(&text),
            "the time-line does not name {host}; its text: {text:?}\n{svg}"
        );
    }
}

/// One experiment at a time on a lab: a second `experiment run` while one runs is refused at
/// once (exit 2, naming the lab), and the first is not disturbed.
#[test]
fn a_second_experiment_on_a_busy_lab_is_refused() {
    root_or_skip!();
    let dir = TempDir::new("xbusy");
    let lab = Lab::new("xbusy");
    lab.up(None);
    let mut first_cmd = lab.cmd();
    first_cmd
        .args(["experiment", "run", "ping-slip", "--out"])
        .arg(dir.join("first"));
    let mut first = common::Bg::spawn(first_cmd, None);
    assert!(
        first.wait_stderr("capture", std::time::Duration::from_secs(60)),
        "the first experiment did not start: {}",
        first.stderr_so_far()
    );
    let second = run_experiment(&lab, "arp", &dir.join("second"));
    assert_eq!(second.code, 2, "{}", second.describe());
    assert!(
        second.stderr.contains(&format!(
            "another experiment is running on lab '{}'",
            lab.name
        )),
        "{}",
        second.describe()
    );
    let first = first.wait(std::time::Duration::from_secs(120));
    assert_eq!(
        first.code,
        0,
        "the first run was disturbed: {}",
        first.describe()
    );
}
