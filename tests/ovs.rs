//! Integration tests of Open vSwitch labs: the real `tcplab` binary brings up the built-in
//! `ovs-lab` topology (`--topology ovs-lab`) on the netns runtime; `tcplab ovs show` must name
//! every bridge, port (as node:interface), VLAN tag, trunk, tunnel and QoS row the topology
//! asks for, `tcplab ovs flows` every flow entry with node names; `down` must leave the host as
//! it was, OVS rows (bridges, ports, interfaces, QoS, queues, controllers) included. A topology
//! asking for ingress policing, which the userspace datapath here cannot do, is refused with
//! exit 2 and leaves nothing. An experiment naming the ovs-lab topology brings its lab up from
//! it, refuses a lab of another topology, and `run --all` on an ovs-lab lab skips the course's
//! experiments.
//!
//! They need root, Docker and a running Open vSwitch (`common::docker::docker_and_ovs_missing`);
//! without them each test prints `skipped: <reason>` and passes. The ovs-lab puts its underlay
//! addresses on the host, so the tests hold `common::serial` (one lab at a time); every lab is
//! removed by a drop guard, even when a test panics.

mod common;

use common::docker::{docker_and_ovs_missing, ovs_map_get, ovs_rows};
use common::{Lab, Runtime, Snapshot, TempDir};
use std::path::PathBuf;

/// The built-in topology under test, as shipped.
const OVS_LAB: &str = include_str!("../topologies/ovs-lab.toml");

/// Skip the test (with the message CI greps for) unless root, Docker and OVS are all there.
macro_rules! ovs_or_skip {
    () => {
        if let Some(reason) = docker_and_ovs_missing() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// Lab `oz<tag><pid>` of `topology` (a built-in name or a file; none: the default, or what an
/// experiment asks for) on the netns runtime.
fn lab(tag: &str, topology: Option<PathBuf>) -> Lab {
    Lab {
        name: format!("oz{tag}{:x}", std::process::id() & 0xfff),
        topology,
        runtime: Runtime::Netns,
    }
}

/// The host now: the docker runtime's snapshot (OVS bridges, ports and interfaces included)
/// plus the QoS, Queue and Controller rows, each named by its lab.
fn snapshot() -> Snapshot {
    let mut s = common::docker::snapshot();
    for (section, table) in [
        ("ovs-qos", "QoS"),
        ("ovs-queue", "Queue"),
        ("ovs-controller", "Controller"),
    ] {
        let mut lines: Vec<String> = ovs_rows(table, "_uuid,external_ids")
            .iter()
            .map(|r| {
                let uuid = r["_uuid"][1].as_str().unwrap_or("?").to_string();
                match ovs_map_get(&r["external_ids"], common::docker::OVS_LAB) {
                    Some(l) => format!("{table} {uuid} (tcplab:{l})"),
                    None => format!("{table} {uuid}"),
                }
            })
            .collect();
        lines.sort();
        s.sections.insert(section, lines);
    }
    s
}

/// The topology's OVS networks: (LAN name, its table).
fn networks(topology: &toml::Table) -> Vec<(String, toml::Table)> {
    topology["networks"]
        .as_table()
        .expect("[networks]")
        .iter()
        .filter(|(_, n)| n.get("kind").and_then(|k| k.as_str()) == Some("ovs"))
        .map(|(name, n)| (name.clone(), n.as_table().expect("a network").clone()))
        .collect()
}

/// The block of `ovs show` of the bridge of LAN `lan`: its `Bridge ... (LAN lan)` line and
/// the lines under it up to the next bridge.
fn bridge_block<'a>(show: &'a str, lan: &str) -> Option<Vec<&'a str>> {
    let mut lines = show.lines().skip_while(|l| {
        !(l.starts_with("Bridge ") && l.trim_end().ends_with(&format!("(LAN {lan})")))
    });
    let head = lines.next()?;
    let mut block = vec![head];
    block.extend(lines.take_while(|l| l.starts_with(' ')));
    Some(block)
}

/// The lines of port `port` (its `Port port ...` line and those under it) in a bridge block.
fn port_lines<'a>(block: &[&'a str], port: &str) -> Option<Vec<&'a str>> {
    let start = block
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("Port {port} ")))?;
    let mut out = vec![block[start]];
    out.extend(
        block[start + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("Port "))
            .copied(),
    );
    Some(out)
}

/// What `ovs show` must print for one member of `lan` (a table of its `members`): the port
/// as node:interface, its VLAN tag, trunks and QoS row. Misses are pushed on `missing`.
fn check_member(block: &[&str], lan: &str, m: &toml::Value, missing: &mut Vec<String>) {
    let node = m["node"].as_str().expect("member node");
    let iface = m["interface"].as_str().expect("member interface");
    let port = format!("{node}:{iface}");
    let Some(lines) = port_lines(block, &port) else {
        missing.push(format!("port {port} of LAN {lan}"));
        return;
    };
    let has = |want: &str| lines.iter().any(|l| l.contains(want));
    if let Some(tag) = m.get("vlan").and_then(|v| v.as_integer())
        && !has(&format!("tag: {tag}"))
    {
        missing.push(format!("VLAN tag {tag} of port {port}"));
    }
    if let Some(trunks) = m.get("trunks").and_then(|v| v.as_array()) {
        let list: Vec<String> = trunks.iter().map(|t| t.to_string()).collect();
        if !has(&format!("trunks: [{}]", list.join(", "))) {
            missing.push(format!("trunks {list:?} of port {port}"));
        }
    }
    if let Some(qos) = m.get("qos") {
        let bits = qos["max_rate"]
            .as_str()
            .and_then(|r| r.strip_suffix("mbit"))
            .and_then(|n| n.parse::<u64>().ok())
            .expect("the ovs-lab's QoS rates are in mbit")
            * 1_000_000;
        if !has("QoS type: linux-htb") || !has(&format!("max-rate={bits}")) {
            missing.push(format!(
                "QoS row (linux-htb, max-rate={bits}) of port {port}"
            ));
        }
    }
}

/// What `ovs show` of the ovs-lab misses: every bridge with its datapath type, every member's
/// port, tag, trunks and QoS, both ends of every tunnel with its kind and key.
fn missing_from_show(topology: &toml::Table, show: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for (lan, net) in networks(topology) {
        let Some(block) = bridge_block(show, &lan) else {
            missing.push(format!("bridge of LAN {lan}"));
            continue;
        };
        if !block.iter().any(|l| l.trim() == "datapath_type: netdev") {
            missing.push(format!("datapath_type netdev of LAN {lan}"));
        }
        for m in net
            .get("members")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            check_member(&block, &lan, m, &mut missing);
        }
    }
    for t in topology["tunnels"].as_array().expect("[[tunnels]]") {
        let (name, kind) = (t["name"].as_str().unwrap(), t["kind"].as_str().unwrap());
        let key = t["key"].as_integer().unwrap();
        for end in ["a", "b"] {
            let lan = t[end]["network"].as_str().unwrap();
            let port = format!("tunnel {name} ({kind} {key})");
            let block = bridge_block(show, lan).unwrap_or_default();
            let lines = port_lines(&block, &port).unwrap_or_default();
            let ok = lines.iter().any(|l| l.trim() == format!("type: {kind}"))
                && lines.iter().any(|l| l.contains(&format!("key={key}")));
            if !ok {
                missing.push(format!("{port} on LAN {lan} (type {kind}, key={key})"));
            }
        }
    }
    missing
}

/// What `ovs flows` misses: each LAN with flows has its section, holding each of its flows
/// (match with node names, then the actions; `ovs-ofctl` style, case aside).
fn missing_from_flows(topology: &toml::Table, flows: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for (lan, net) in networks(topology) {
        let Some(entries) = net.get("flows").and_then(|v| v.as_array()) else {
            continue;
        };
        let section: Vec<String> = flows
            .lines()
            .skip_while(|l| !l.starts_with(&format!("LAN {lan} (bridge ")))
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
            .map(|(_, l)| l.to_lowercase())
            .collect();
        if section.is_empty() {
            missing.push(format!("the flow table of LAN {lan}"));
            continue;
        }
        for f in entries {
            let want = f.as_str().unwrap().replace(",actions=", " actions=");
            if !section.iter().any(|l| l.contains(&want.to_lowercase())) {
                missing.push(format!("flow `{want}` of LAN {lan}"));
            }
        }
    }
    missing
}

/// `up` of the ovs-lab, then `ovs show` names every bridge, port, tag, trunk, tunnel and QoS
/// row, `ovs flows` every flow with node names, and `down` leaves the host as it was.
#[test]
fn ovs_show_and_flows_name_the_topology_and_down_leaves_nothing() {
    ovs_or_skip!();
    let _serial = common::serial();
    let topology: toml::Table = toml::from_str(OVS_LAB).expect("ovs-lab.toml is TOML");
    let before = snapshot();
    {
        let lab = lab("s", Some("ovs-lab".into()));
        let out = lab.tcplab(&["-q", "up"]);
        assert!(out.ok(), "ovs-lab did not come up: {}", out.describe());
        let show = lab.tcplab(&["ovs", "show"]);
        assert!(show.ok(), "{}", show.describe());
        let missing = missing_from_show(&topology, &show.stdout);
        assert!(
            missing.is_empty(),
            "`ovs show` misses {missing:?}:\n{}",
            show.stdout
        );
        let flows = lab.tcplab(&["ovs", "flows"]);
        assert!(flows.ok(), "{}", flows.describe());
        let missing = missing_from_flows(&topology, &flows.stdout);
        assert!(
            missing.is_empty(),
            "`ovs flows` misses {missing:?}:\n{}",
            flows.stdout
        );
        assert!(
            flows.stdout.contains("in_port=f1"),
            "`ovs flows` names ports by node: {}",
            flows.stdout
        );
        lab.down();
    }
    let diff = before.diff(&snapshot(), &[]);
    assert!(diff.is_empty(), "down left the host changed: {diff:#?}");
}

/// A topology asking for ingress policing (which the userspace datapath here cannot do) is
/// refused by `up` with exit 2 in one line naming the node and LAN, and leaves nothing behind.
#[test]
fn ingress_policing_is_refused_and_leaves_nothing() {
    ovs_or_skip!();
    let _serial = common::serial();
    let kernel_ovs = std::path::Path::new("/sys/module/openvswitch").exists();
    if kernel_ovs {
        eprintln!("skipped: the kernel has the openvswitch module, whose datapath can police");
        return;
    }
    let dir = TempDir::new("ozpolice");
    let file = dir.join("police.toml");
    let text = OVS_LAB.replacen(
        r#"qos = { max_rate = "2mbit" }"#,
        r#"qos = { ingress_rate = "1mbit" }"#,
        1,
    );
    assert_ne!(text, OVS_LAB, "the ovs-lab has q2's QoS row to change");
    std::fs::write(&file, text).expect("writing the topology");
    let before = snapshot();
    {
        let lab = lab("p", Some(file));
        let out = lab.tcplab(&["-q", "up"]);
        let what = out.describe();
        assert_eq!(out.code, 2, "ingress policing must be refused: {what}");
        let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {what}");
        assert!(
            lines[0].contains("ingress policing")
                && lines[0].contains("node q2's port")
                && lines[0].contains("on LAN qos"),
            "the refusal names ingress policing, node q2 and LAN qos: {what}"
        );
    }
    let diff = before.diff(&snapshot(), &[]);
    assert!(diff.is_empty(), "a refused up left {diff:#?}");
}

/// `experiment run` of an experiment with `topology = "ovs-lab"` on a lab that is not up
/// brings the lab up from that topology; `run --all` on that lab then skips the course's
/// experiments in rows saying so, and exits 0.
#[test]
fn an_experiment_brings_its_topology_up_and_run_all_skips_the_others() {
    ovs_or_skip!();
    let _serial = common::serial();
    let dir = TempDir::new("ozrun");
    let lab = lab("r", None);
    let out = lab.tcplab(&[
        "experiment",
        "run",
        "ovs-flows",
        "--out",
        &dir.join("flows").to_string_lossy(),
    ]);
    let what = out.describe();
    assert_eq!(out.code, 0, "{what}");
    assert!(out.stderr.contains("bringing it up first"), "{what}");
    let show = lab.tcplab(&["ovs", "show"]);
    assert!(
        show.ok() && show.stdout.contains("(LAN flows)"),
        "the lab is up from ovs-lab: {}",
        show.describe()
    );
    let all = dir.join("all");
    let out = lab.tcplab(&[
        "experiment",
        "run",
        "--all",
        "--chapter",
        "4",
        "--out",
        &all.to_string_lossy(),
    ]);
    let what = out.describe();
    assert_eq!(out.code, 0, "skipped rows are no failure: {what}");
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("=> "))
        .collect();
    assert!(
        !rows.is_empty(),
        "a row per experiment of chapter 4: {what}"
    );
    for r in &rows {
        assert!(
            r.contains(": skipped: for topology tcpip-illustrated, not the lab's (ovslab)"),
            "{r}: {what}"
        );
    }
    assert!(
        out.stdout
            .contains(&format!("0 green, 0 red, 0 errors, {} skipped", rows.len())),
        "{what}"
    );
}

/// `experiment run` of an experiment with `topology = "ovs-lab"` on a lab up from the course's
/// topology is refused in one line with exit 2, naming both topologies.
#[test]
fn an_experiment_refuses_a_lab_of_another_topology() {
    ovs_or_skip!();
    let _serial = common::serial();
    let lab = lab("c", None);
    lab.up(None);
    let dir = TempDir::new("ozref");
    let out = lab.tcplab(&[
        "experiment",
        "run",
        "ovs-vlan",
        "--out",
        &dir.0.to_string_lossy(),
    ]);
    let what = out.describe();
    assert_eq!(out.code, 2, "{what}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {what}");
    assert!(
        lines[0].contains("from topology 'tcpip'") && lines[0].contains("topology ovs-lab"),
        "{what}"
    );
    assert!(out.stdout.is_empty(), "nothing ran: {what}");
}
