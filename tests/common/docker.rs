//! Docker containers and Open vSwitch as the host shows them from outside (`docker ps`,
//! `ovs-vsctl`), for docker labs: the docker runtime's host snapshot, and a lab's containers and
//! OVS bridges, ports and interfaces, found by the labels tcplab puts on them.

use super::{Lab, NODES, Snapshot, is_root, must, sh};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The container label naming a container's lab.
pub const LABEL_LAB: &str = "org.tcplab.lab";
/// The OVS external_ids key naming a bridge's (port's, interface's) lab.
pub const OVS_LAB: &str = "tcplab-lab";

/// Rows of an OVSDB table (`ovs-vsctl -f json list TABLE`), each column by name.
pub fn ovs_rows(table: &str, columns: &str) -> Vec<BTreeMap<String, Value>> {
    let out = must(
        "ovs-vsctl",
        &[
            "--timeout=10",
            "-f",
            "json",
            &format!("--columns={columns}"),
            "list",
            table,
        ],
    );
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("ovs-vsctl -f json list {table} ({e}): {out}"));
    let headings: Vec<String> = v["headings"]
        .as_array()
        .expect("headings")
        .iter()
        .map(|h| h.as_str().expect("heading").to_string())
        .collect();
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| {
            headings
                .iter()
                .cloned()
                .zip(row.as_array().expect("row").iter().cloned())
                .collect()
        })
        .collect()
}

/// A value of an OVSDB map column (`["map", [[k, v], ...]]`).
pub fn ovs_map_get(map: &Value, key: &str) -> Option<String> {
    map.get(1)?
        .as_array()?
        .iter()
        .find(|kv| kv[0] == key)
        .and_then(|kv| kv[1].as_str())
        .map(str::to_string)
}

/// (name, lab from external_ids) of every row of an OVS table.
pub fn ovs_names(table: &str) -> Vec<(String, Option<String>)> {
    ovs_rows(table, "name,external_ids")
        .into_iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_string(),
                ovs_map_get(&r["external_ids"], OVS_LAB),
            )
        })
        .collect()
}

/// (name, lab label) of every container, running or not.
pub fn docker_containers() -> Vec<(String, String)> {
    let fmt = format!("{{{{.Names}}}}\t{{{{.Label \"{LABEL_LAB}\"}}}}");
    must("docker", &["ps", "-a", "--no-trunc", "--format", &fmt])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (n, lab) = l.split_once('\t').unwrap_or((l, ""));
            (n.to_string(), lab.trim().to_string())
        })
        .collect()
}

/// A snapshot line naming a lab the way `Snapshot::diff` recognises it (`(tcplab:LAB)`), so
/// that other labs' objects are left out and ours are not.
fn owned(name: &str, lab: Option<&str>) -> String {
    match lab {
        Some(l) if !l.is_empty() => format!("{name} (tcplab:{l})"),
        _ => name.to_string(),
    }
}

/// The common host snapshot, plus every Docker container and every OVS bridge, port and interface.
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot::take();
    let mut containers: Vec<String> = docker_containers()
        .iter()
        .map(|(n, l)| owned(&format!("container {n}"), Some(l)))
        .collect();
    containers.sort();
    s.sections.insert("docker", containers);
    for (section, table) in [
        ("ovs-bridge", "Bridge"),
        ("ovs-port", "Port"),
        ("ovs-interface", "Interface"),
    ] {
        let mut lines: Vec<String> = ovs_names(table)
            .iter()
            .map(|(n, l)| owned(n, l.as_deref()))
            .collect();
        lines.sort();
        s.sections.insert(section, lines);
    }
    s
}

impl Lab {
    /// `tcplab-<lab>-<node>`: the node's container (and its /run/netns entry).
    pub fn container(&self, node: &str) -> String {
        format!("tcplab-{}-{node}", self.name)
    }

    /// The lab's containers (by label), running only or all, sorted.
    pub fn containers(&self, all: bool) -> Vec<String> {
        let filter = format!("label={LABEL_LAB}={}", self.name);
        let mut args = vec!["ps", "--filter", &filter, "--format", "{{.Names}}"];
        if all {
            args.insert(1, "-a");
        }
        let mut v: Vec<String> = must("docker", &args)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// The lab's OVS bridges (by external_ids): name, network, datapath type.
    pub fn bridges(&self) -> Vec<(String, String, String)> {
        let mut v: Vec<(String, String, String)> =
            ovs_rows("Bridge", "name,external_ids,datapath_type")
                .into_iter()
                .filter(|r| {
                    ovs_map_get(&r["external_ids"], OVS_LAB).as_deref() == Some(self.name.as_str())
                })
                .map(|r| {
                    (
                        r["name"].as_str().expect("name").to_string(),
                        ovs_map_get(&r["external_ids"], "tcplab-network").unwrap_or_default(),
                        r["datapath_type"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
        v.sort();
        v
    }

    /// The lab's OVS ports and interfaces (by external_ids).
    pub fn ovs_ports_and_interfaces(&self) -> Vec<String> {
        let mut v = Vec::new();
        for table in ["Port", "Interface"] {
            v.extend(
                ovs_names(table)
                    .into_iter()
                    .filter(|(_, l)| l.as_deref() == Some(self.name.as_str()))
                    .map(|(n, _)| format!("{table} {n}")),
            );
        }
        v
    }

    /// The lab's containers (with whether each runs) and OVS bridges, for [`Lab::objects`].
    pub(super) fn docker_objects(&self) -> Vec<String> {
        let running = self.containers(false);
        let mut v: Vec<String> = self
            .containers(true)
            .into_iter()
            .map(|c| {
                let state = if running.contains(&c) {
                    "running"
                } else {
                    "not running"
                };
                format!("container {c} {state}")
            })
            .collect();
        v.extend(
            self.bridges()
                .into_iter()
                .map(|(b, net, dp)| format!("ovs-bridge {b} network {net} datapath {dp}")),
        );
        v
    }

    /// Panic unless a running container for each node of the course lab and the OVS bridges of
    /// its two LANs are there.
    pub(super) fn assert_docker_whole(&self, when: &str) {
        let mut expected: Vec<String> = NODES.iter().map(|n| self.container(n)).collect();
        expected.sort();
        assert_eq!(
            self.containers(false),
            expected,
            "{when}: lab {}: running containers",
            self.name
        );
        let bridges = self.bridges();
        let networks: Vec<&str> = bridges.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(
            networks,
            ["net1", "net2"],
            "{when}: lab {}: OVS bridges {bridges:?}",
            self.name
        );
    }

    /// Panic if a container, OVS bridge, port or interface of the lab is left.
    pub(super) fn assert_docker_gone(&self, when: &str) {
        assert_eq!(
            self.containers(true),
            Vec::<String>::new(),
            "{when}: containers of lab {} left (docker ps -a)",
            self.name
        );
        assert_eq!(
            self.bridges(),
            vec![],
            "{when}: OVS bridges of lab {} left",
            self.name
        );
        assert_eq!(
            self.ovs_ports_and_interfaces(),
            Vec::<String>::new(),
            "{when}: OVS ports of lab {} left",
            self.name
        );
    }
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The first non-empty line of a command's stderr, trimmed.
pub fn first_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Why docker tests cannot run here: not root, no docker client, no engine answering (None:
/// they can).
pub fn docker_missing() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    if !on_path("docker") {
        return Some("no docker client (install docker.io, or run scripts/setup-host.sh)".into());
    }
    let info = sh(
        "docker",
        &["info", "--format", "{{.ServerVersion}}"],
        Duration::from_secs(30),
    );
    if !info.ok() {
        return Some(format!(
            "no Docker engine answers (`docker info` failed: {}); start dockerd (scripts/setup-host.sh)",
            first_line(&info.stderr)
        ));
    }
    None
}

/// [`docker_missing`], or Open vSwitch not installed or not running (the course lab's LANs are
/// OVS bridges on the docker runtime).
pub fn docker_and_ovs_missing() -> Option<String> {
    if let Some(reason) = docker_missing() {
        return Some(reason);
    }
    if !on_path("ovs-vsctl") {
        return Some("Open vSwitch is not installed (scripts/setup-host.sh installs it)".into());
    }
    let ovs = sh(
        "ovs-vsctl",
        &["--timeout=5", "show"],
        Duration::from_secs(10),
    );
    if !ovs.ok() {
        return Some(format!(
            "Open vSwitch is not running (`ovs-vsctl show` failed: {}); start it (scripts/setup-host.sh)",
            first_line(&ovs.stderr)
        ));
    }
    None
}
