//! Hostile and broken input files, property-based: topology files and experiment files,
//! mutated from the real ones (the course topology, every built-in experiment, small valid
//! topologies generated at random) and fully random, never make tcplab panic or stall; every
//! refusal is one line with exit code 2; every topology that validates also plans. And input
//! files given by path that are not regular files of a sane size are refused at once.
//!
//! Each target runs `fuzz_common::CASES` cases; failures are recorded under
//! `proptest-regressions/` and replayed first on later runs.

mod fuzz_common;

use fuzz_common::{Watchdog, check_refusal, mutated, mutation, random_text, run, runner};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tcplab::plan::{PlanOptions, plan};
use tcplab::topology::{self, BUILTIN_TCPIP, NetworkKind};

/// Small valid topologies: a LAN with a default route, a line with conditions and a
/// profile, an uplink with sysctls and proxy ARP.
const SMALL_TOPOLOGIES: &[&str] = &[
    r#"name = "t"
[nodes.a]
routes = [{ to = "default", via = "10.0.0.2" }]
[nodes.b]
router = true
[networks.lan]
subnet = "10.0.0.0/24"
members = [
  { node = "a", interface = "eth1", address = "10.0.0.1" },
  { node = "b", interface = "eth1", address = "10.0.0.2" },
]
"#,
    r#"name = "line"
description = "two hosts on a serial line"
[nodes.x]
[nodes.y]
[[links]]
name = "serial"
mtu = 296
a = { node = "x", interface = "sl0", address = "10.1.0.1/30" }
b = { node = "y", interface = "sl0", address = "10.1.0.2/30" }
conditions = { rate = "9600bit", framing = "slip" }
[profiles.slow]
description = "slower"
links.serial = { rate = "1200bit", delay = "10ms" }
ends."x:sl0" = { loss = "1%" }
"#,
    r#"name = "out"
[defaults]
image = "tcplab-node"
[nodes.gw]
router = true
sysctls = { "net.ipv4.ip_forward" = "1" }
proxy_arp = [{ interface = "eth1", addresses = ["10.2.0.9"] }]
[nodes.h]
routes = [{ to = "default", via = "10.2.0.1", dev = "eth1" }]
[networks.lan]
kind = "linux"
subnet = "10.2.0.0/24"
mtu = 1400
members = [
  { node = "gw", interface = "eth1", address = "10.2.0.1" },
  { node = "h", interface = "eth1", address = "10.2.0.2", conditions = { delay = "5ms" } },
]
[uplink]
node = "gw"
interface = "gwin"
address = "10.3.0.2/24"
host_interface = "outside"
host_address = "10.3.0.1/24"
host_routes = ["10.2.0.0/24"]
"#,
];

/// Parse and validate `text` within the case limit: a refusal must be one line with exit
/// code 2, and a topology that validates must plan, with every kind of plan option.
fn parse_and_plan(dog: &Watchdog, text: &str, opts: &PlanOptions) -> Result<bool, TestCaseError> {
    let planned = dog.time(text.as_bytes(), || {
        topology::parse(text, "fuzz.toml").map(|t| plan(&t, "fuzz", opts))
    })?;
    match planned {
        Ok(p) => {
            prop_assert!(!p.nodes.is_empty() || p.veths.is_empty());
            Ok(true)
        }
        Err(e) => check_refusal(&e).map(|()| false),
    }
}

/// Plan options: an uplink or not, a switch kind forced or not, a profile or not, a fake
/// internet or not.
fn plan_options() -> impl Strategy<Value = PlanOptions> {
    (
        proptest::option::of(Just("eth0".to_string())),
        proptest::option::of(prop_oneof![
            Just(NetworkKind::Linux),
            Just(NetworkKind::Ovs)
        ]),
        proptest::option::of(prop_oneof![
            Just("book".to_string()),
            Just("slow".to_string()),
            Just("none".to_string())
        ]),
        proptest::bool::ANY,
    )
        .prop_map(
            |(uplink, switch_override, profile, fake_internet)| PlanOptions {
                uplink,
                switch_override,
                profile,
                fake_internet,
            },
        )
}

#[test]
fn mutated_topology_files_are_refused_in_one_line_or_planned() {
    let mut seeds = vec![BUILTIN_TCPIP.to_string()];
    seeds.extend(SMALL_TOPOLOGIES.iter().map(|s| s.to_string()));
    let dog = Watchdog::new("mutated topology files");
    run(
        runner("proptest-regressions/fuzz_input/mutated_topology.txt"),
        (mutated(seeds, 4), plan_options()),
        |(text, opts)| parse_and_plan(&dog, &text, &opts).map(drop),
    );
}

#[test]
fn random_topology_text_is_refused_in_one_line() {
    let dog = Watchdog::new("random topology text");
    run(
        runner("proptest-regressions/fuzz_input/random_topology.txt"),
        random_text(),
        |text| parse_and_plan(&dog, &text, &PlanOptions::default()).map(drop),
    );
}

/// A small topology, valid by construction: `nodes` hosts, LANs of some of them, lines
/// between two of them, default routes through a neighbour, maybe an uplink and a profile.
fn generated_topology() -> impl Strategy<Value = String> {
    let lan = (
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 6),
        proptest::option::of(576u32..9000),
    );
    let link = (
        0..6usize,
        1..6usize,
        proptest::option::of(68u32..9000),
        any::<bool>(),
    );
    (
        1..6usize,
        proptest::collection::vec(any::<bool>(), 6),
        proptest::collection::vec(lan, 0..3),
        proptest::collection::vec(link, 0..3),
        proptest::collection::vec(any::<usize>(), 6),
        any::<bool>(),
    )
        .prop_map(|(n, routers, lans, links, routes, uplink)| {
            Generated {
                n,
                routers,
                lans,
                links,
                routes,
                uplink,
            }
            .text()
        })
}

/// The choices `generated_topology` made.
struct Generated {
    n: usize,
    routers: Vec<bool>,
    lans: Vec<(bool, Vec<bool>, Option<u32>)>,
    links: Vec<(usize, usize, Option<u32>, bool)>,
    routes: Vec<usize>,
    uplink: bool,
}

impl Generated {
    fn text(&self) -> String {
        use std::fmt::Write;
        let n = self.n;
        // (node, address) of every end, for the routes.
        let mut ends: Vec<(usize, String)> = Vec::new();
        let mut wires = String::new();
        for (i, (linux, members, mtu)) in self.lans.iter().enumerate() {
            let kind = if *linux { "linux" } else { "ovs" };
            writeln!(wires, "[networks.lan{i}]\nkind = \"{kind}\"").unwrap();
            writeln!(wires, "subnet = \"10.{i}.0.0/24\"").unwrap();
            if let Some(m) = mtu {
                writeln!(wires, "mtu = {m}").unwrap();
            }
            wires.push_str("members = [\n");
            for (node, _) in members.iter().take(n).enumerate().filter(|(_, m)| **m) {
                let addr = format!("10.{i}.0.{}", node + 1);
                writeln!(
                    wires,
                    "  {{ node = \"n{node}\", interface = \"eth{}\", address = \"{addr}\" }},",
                    i + 1
                )
                .unwrap();
                ends.push((node, addr));
            }
            wires.push_str("]\n");
        }
        let mut profile = String::new();
        for (i, (a, step, mtu, slow)) in self.links.iter().enumerate() {
            let (a, b) = (a % n, (a + step) % n);
            if a == b {
                continue;
            }
            writeln!(wires, "[[links]]\nname = \"l{i}\"").unwrap();
            if let Some(m) = mtu {
                writeln!(wires, "mtu = {m}").unwrap();
            }
            writeln!(
                wires,
                "a = {{ node = \"n{a}\", interface = \"p{i}a\", address = \"10.200.{i}.1/30\" }}"
            )
            .unwrap();
            writeln!(
                wires,
                "b = {{ node = \"n{b}\", interface = \"p{i}b\", address = \"10.200.{i}.2/30\" }}"
            )
            .unwrap();
            ends.push((a, format!("10.200.{i}.1")));
            ends.push((b, format!("10.200.{i}.2")));
            if *slow {
                writeln!(
                    profile,
                    "links.l{i} = {{ rate = \"9600bit\", framing = \"slip\" }}"
                )
                .unwrap();
            }
        }
        let mut t = String::from("name = \"gen\"\n");
        for node in 0..n {
            writeln!(t, "[nodes.n{node}]").unwrap();
            if self.routers[node] {
                t.push_str("router = true\n");
            }
            // A default route via a neighbour: an address of another end of the same wire.
            let mine: Vec<&String> = ends.iter().filter(|e| e.0 == node).map(|e| &e.1).collect();
            let via: Vec<&String> = ends
                .iter()
                .filter(|(other, addr)| *other != node && mine.iter().any(|m| same_wire(m, addr)))
                .map(|e| &e.1)
                .collect();
            if !via.is_empty() && !self.routes[node].is_multiple_of(3) {
                let v = via[self.routes[node] % via.len()];
                writeln!(t, "routes = [{{ to = \"default\", via = \"{v}\" }}]").unwrap();
            }
        }
        t.push_str(&wires);
        if self.uplink {
            t.push_str(
                "[uplink]\nnode = \"n0\"\ninterface = \"up0\"\naddress = \"10.254.0.2/24\"\n\
                 host_interface = \"genout\"\nhost_address = \"10.254.0.1/24\"\n\
                 host_routes = [\"10.0.0.0/24\"]\n",
            );
        }
        if !profile.is_empty() {
            t.push_str("[profiles.slow]\n");
            t.push_str(&profile);
        }
        t
    }
}

/// Two generated addresses on one wire: the same first three bytes.
fn same_wire(a: &str, b: &str) -> bool {
    a.rsplit_once('.').map(|x| x.0) == b.rsplit_once('.').map(|x| x.0)
}

#[test]
fn generated_topologies_plan_and_their_mutations_are_refused_in_one_line() {
    let dog = Watchdog::new("generated topologies");
    let (cases, planned) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let changes = proptest::collection::vec(mutation(), 0..3);
    run(
        runner("proptest-regressions/fuzz_input/generated_topology.txt"),
        (generated_topology(), changes, plan_options()),
        |(text, changes, opts)| {
            let text = changes.iter().fold(text, |t, m| fuzz_common::apply(&t, m));
            cases.fetch_add(1, Ordering::Relaxed);
            let ok = parse_and_plan(&dog, &text, &opts)?;
            if changes.is_empty() {
                prop_assert!(ok, "a generated topology is valid: {}", text);
            }
            planned.fetch_add(usize::from(ok), Ordering::Relaxed);
            Ok(())
        },
    );
    let (cases, planned) = (cases.into_inner(), planned.into_inner());
    eprintln!("{planned} of {cases} generated topologies planned");
    assert!(
        planned * 3 >= cases,
        "at least a third of the cases reach the planner: {planned} of {cases}"
    );
}

/// Parse `text` as an experiment within the case limit; a refusal must be one line with
/// exit code 2.
fn parse_experiment(dog: &Watchdog, text: &str) -> Result<(), TestCaseError> {
    let parsed = dog.time(text.as_bytes(), || {
        tcplab::experiment::parse(text, "fuzz.toml")
    })?;
    match parsed {
        Ok(e) => {
            prop_assert!(!e.name.is_empty());
            Ok(())
        }
        Err(e) => check_refusal(&e),
    }
}

#[test]
fn mutated_experiment_files_are_refused_in_one_line() {
    let seeds = tcplab::experiment::BUILTIN
        .iter()
        .map(|e| e.text.to_string())
        .collect();
    let dog = Watchdog::new("mutated experiment files");
    run(
        runner("proptest-regressions/fuzz_input/mutated_experiment.txt"),
        mutated(seeds, 4),
        |text| parse_experiment(&dog, &text),
    );
}

#[test]
fn random_experiment_text_is_refused_in_one_line() {
    let dog = Watchdog::new("random experiment text");
    run(
        runner("proptest-regressions/fuzz_input/random_experiment.txt"),
        random_text(),
        |text| parse_experiment(&dog, &text),
    );
}

// ------------------------------------------------------------ files given by path

/// `tcplab experiment run PATH` on `path`: refused within 2 s, one line, exit code 2, naming
/// the path.
fn experiment_refusal(path: &std::path::Path) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.display().to_string();
    std::thread::spawn(move || tx.send(tcplab::experiment::source(&p).map(drop)).ok());
    let e = rx
        .recv_timeout(std::time::Duration::from_secs(2))
        .unwrap_or_else(|_| panic!("reading {} blocked for 2 s", path.display()))
        .expect_err("refused");
    let line = e.to_string();
    assert_eq!(e.exit_code(), 2, "{line}");
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with(&format!("{}: file: ", path.display())),
        "{line}"
    );
    assert!(line.contains("experiment file"), "{line}");
    line
}

#[test]
fn experiment_files_that_are_not_regular_files_of_a_sane_size_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(experiment_refusal(&fifo).contains("named pipe"));
    assert!(experiment_refusal(std::path::Path::new("/dev/zero")).contains("character device"));
    let sub = dir.path().join("dir.toml");
    std::fs::create_dir(&sub).unwrap();
    assert!(experiment_refusal(&sub).contains("a directory"));
    assert!(experiment_refusal(&dir.path().join("missing.toml")).contains("no such file"));
    let big = dir.path().join("big.toml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(topology::MAX_INPUT_FILE_BYTES + 1).unwrap();
    assert!(experiment_refusal(&big).contains("over the limit of 1024 KiB"));
    let good = dir.path().join("good.toml");
    let arp = tcplab::experiment::BUILTIN[0];
    std::fs::write(&good, arp.text).unwrap();
    let (file, text) = tcplab::experiment::source(good.to_str().unwrap()).unwrap();
    assert_eq!(
        (file, text.as_str()),
        (good.display().to_string(), arp.text)
    );
}
