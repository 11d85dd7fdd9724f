//! Integration tests of the docker runtime on Open vSwitch (issue 3): the real `tcplab` binary
//! builds the built-in course lab (its two LANs are `kind = "ovs"`) as Docker containers with
//! `--runtime docker`, and the tests check what a student would see, then that `down` leaves the
//! host exactly as it was: no container, no OVS bridge or port, no veth, route, firewall rule,
//! /run/netns entry or record of the lab.
//!
//! They need root, a Docker engine that answers (`docker info`) and a running Open vSwitch
//! (`ovs-vsctl show`); without them each test prints `skipped: <reason>` and passes
//! (`scripts/setup-host.sh` installs and starts both; CI has them).
//!
//! Every test holds the global lock of `common::serial` (one lab of this file at a time: host
//! snapshots must not see another test's lab, and only one lab at a time can have an uplink),
//! and every lab is removed by a drop guard, even when a test panics. Snapshots are the common
//! ones plus the Docker containers and the OVS bridges, ports and interfaces; what belongs to
//! other labs on the machine is left out by name.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The course lab's nodes.
const NODES: [&str; 9] = [
    "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi", "slip",
];
/// The container label naming a container's lab.
const LABEL_LAB: &str = "org.tcplab.lab";
/// The OVS external_ids key naming a bridge's (port's, interface's) lab.
const OVS_LAB: &str = "tcplab-lab";
/// The book's path from slip to aix.
const SLIP_TO_AIX: [&str; 4] = [
    "140.252.13.66",
    "140.252.13.33",
    "140.252.1.183",
    "140.252.1.92",
];

// ------------------------------------------------------------------ the environment

/// Whether `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Why the docker tests cannot run here (None: they can).
fn missing_environment() -> Option<String> {
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
        let why = info
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        return Some(format!(
            "no Docker engine answers (`docker info` failed: {why}); start dockerd (scripts/setup-host.sh)"
        ));
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
        let why = ovs
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        return Some(format!(
            "Open vSwitch is not running (`ovs-vsctl show` failed: {why}); start it (scripts/setup-host.sh)"
        ));
    }
    None
}

/// Skip the test (with the message CI greps for) unless root, Docker and OVS are all there.
macro_rules! docker_or_skip {
    () => {
        if let Some(reason) = missing_environment() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

// ------------------------------------------------------------------ Docker and OVS, as seen from outside

/// Rows of an OVSDB table (`ovs-vsctl -f json list TABLE`), each column by name.
fn ovs_rows(table: &str, columns: &str) -> Vec<BTreeMap<String, Value>> {
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
fn ovs_map_get(map: &Value, key: &str) -> Option<String> {
    map.get(1)?
        .as_array()?
        .iter()
        .find(|kv| kv[0] == key)
        .and_then(|kv| kv[1].as_str())
        .map(str::to_string)
}

/// (name, lab from external_ids) of every row of an OVS table.
fn ovs_names(table: &str) -> Vec<(String, Option<String>)> {
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
fn docker_containers() -> Vec<(String, String)> {
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

/// `docker inspect` of containers, parsed.
fn docker_inspect(names: &[String]) -> Vec<Value> {
    let mut args = vec!["inspect"];
    args.extend(names.iter().map(String::as_str));
    let out = must("docker", &args);
    serde_json::from_str::<Vec<Value>>(&out)
        .unwrap_or_else(|e| panic!("docker inspect is not JSON ({e}): {out}"))
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
fn snapshot() -> Snapshot {
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

/// Whether the host has an interface of that name.
fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether the kernel has Open vSwitch's datapath (else tcplab must use the userspace one).
fn kernel_has_ovs_datapath() -> bool {
    Path::new("/sys/module/openvswitch").exists()
        || (on_path("genl")
            && sh("genl", &["ctrl", "list"], Duration::from_secs(10))
                .stdout
                .contains("ovs_datapath"))
}

// ------------------------------------------------------------------ a docker lab

/// A docker lab of the built-in topology that this test owns: dropping it runs `down`.
struct DLab {
    name: String,
}

impl DLab {
    /// Lab `t<tag><pid>`.
    fn new(tag: &str) -> DLab {
        DLab {
            name: lab_name(tag),
        }
    }

    /// `tcplab --lab NAME --runtime docker`, to add a command to.
    fn cmd(&self) -> Command {
        let mut c = Command::new(TCPLAB);
        c.arg("--lab").arg(&self.name).args(["--runtime", "docker"]);
        c
    }

    /// `tcplab --lab NAME --runtime docker -q up [UPLINK]`.
    fn up_cmd(&self, uplink: Option<&str>) -> Command {
        let mut c = self.cmd();
        c.args(["-q", "up"]).args(uplink);
        c
    }

    /// `up`, which must succeed (the first one may build the node image: generous time).
    fn up(&self, uplink: Option<&str>) {
        let out = run(self.up_cmd(uplink), Duration::from_secs(240));
        assert!(
            out.ok(),
            "docker lab {} did not come up: {}",
            self.name,
            out.describe()
        );
    }

    /// A tcplab command on this lab.
    fn tcplab(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        run(c, Duration::from_secs(60))
    }

    /// `down`, which must succeed.
    fn down(&self) {
        let out = self.tcplab(&["-q", "down"]);
        assert!(
            out.ok(),
            "docker lab {} did not go down: {}",
            self.name,
            out.describe()
        );
    }

    /// `tcplab exec NODE ARGS...` as a command line.
    fn exec_cmd(&self, node: &str, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("exec").arg(node).args(args);
        c
    }

    /// `tcplab exec NODE ARGS...` with a time limit.
    fn exec_t(&self, node: &str, args: &[&str], timeout: Duration) -> Out {
        run(self.exec_cmd(node, args), timeout)
    }

    /// `tcplab exec NODE ARGS...` (at most 30 s).
    fn exec(&self, node: &str, args: &[&str]) -> Out {
        self.exec_t(node, args, Duration::from_secs(30))
    }

    /// `status --json`, parsed.
    fn status(&self) -> Value {
        let out = self.tcplab(&["status", "--json"]).expect_ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout))
    }

    fn state_file(&self) -> PathBuf {
        state_dir().join(format!("{}.json", self.name))
    }

    /// The record, if there is one (and it parses).
    fn record(&self) -> Option<Value> {
        std::fs::read_to_string(self.state_file())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    }

    /// The host interfaces the record lists (OVS ports' host ends, the uplink's).
    fn recorded_host_links(&self) -> Vec<String> {
        self.record()
            .and_then(|r| r["objects"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|o| o["kind"] == "host_link")
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect()
    }

    /// `tcplab-<lab>-<node>`.
    fn container(&self, node: &str) -> String {
        format!("tcplab-{}-{node}", self.name)
    }

    /// The lab's containers (by label), running only or all.
    fn containers(&self, all: bool) -> Vec<String> {
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
    fn bridges(&self) -> Vec<(String, String, String)> {
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
    fn ovs_ports_and_interfaces(&self) -> Vec<String> {
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

    /// The lab's named namespaces (/run/netns entries) that exist now.
    fn namespaces(&self) -> Vec<String> {
        let prefix = format!("tcplab-{}", self.name);
        netns_names()
            .into_iter()
            .filter(|n| *n == prefix || n.starts_with(&format!("{prefix}-")))
            .collect()
    }

    /// Panic unless nothing of the lab is left that its labels or names find.
    fn assert_gone(&self, when: &str) {
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
        assert_eq!(
            self.namespaces(),
            Vec::<String>::new(),
            "{when}: /run/netns entries of lab {} left",
            self.name
        );
        assert!(
            !self.state_file().exists(),
            "{when}: record left: {}",
            self.state_file().display()
        );
    }
}

impl Drop for DLab {
    fn drop(&mut self) {
        let out = self.tcplab(&["-q", "down"]);
        if !out.ok() {
            eprintln!(
                "cleanup of docker lab {} failed: {}",
                self.name,
                out.describe()
            );
        }
        if !self.state_file().exists() {
            let _ = std::fs::remove_file(state_dir().join(format!("{}.lock", self.name)));
            let _ = std::fs::remove_dir(state_dir());
        }
    }
}

/// From every node, one `ping -c1 -W2` to every address of every other node and to each of
/// `extra`, through `tcplab exec` (the Docker exec API); the failures. Nodes ping in parallel.
fn docker_mesh_failures(lab: &DLab, extra: &[&str]) -> Vec<String> {
    let nodes = node_addresses(&lab.status());
    assert_eq!(nodes.len(), 9, "the course lab has 9 nodes: {nodes:?}");
    for (n, a) in &nodes {
        assert!(!a.is_empty(), "node {n} has no address in status --json");
    }
    let total: usize = nodes.iter().map(|(_, a)| a.len()).sum();
    assert!(
        total >= 11,
        "the course lab has at least 11 addresses, status shows {total}"
    );
    eprintln!(
        "lab {}: {} pings from 9 nodes to {total} addresses and {extra:?}",
        lab.name,
        9 * (total + extra.len()) - total
    );
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|(from, _)| {
                let targets: Vec<String> = nodes
                    .iter()
                    .filter(|(n, _)| n != from)
                    .flat_map(|(_, a)| a.clone())
                    .chain(extra.iter().map(|e| e.to_string()))
                    .collect();
                s.spawn(move || {
                    targets
                        .iter()
                        .filter_map(|t| {
                            let out = lab.exec_t(
                                from,
                                &["ping", "-n", "-c1", "-W2", t],
                                Duration::from_secs(10),
                            );
                            (!out.ok()).then(|| format!("{from} -> {t}: {}", out.describe()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("ping thread"))
            .collect()
    })
}

/// A file holding `text`, for a command's stdin.
fn stdin_of(tmp: &TempDir, name: &str, data: &[u8]) -> Stdio {
    let p = tmp.join(name);
    std::fs::write(&p, data).unwrap();
    Stdio::from(std::fs::File::open(&p).unwrap())
}

/// `IP 198.51.100.1 > 198.51.100.2: ICMP echo request, ...` -> (source, destination).
fn icmp_src_dst(line: &str) -> (String, String) {
    let t: Vec<&str> = line.split_whitespace().collect();
    let ip = t
        .iter()
        .position(|w| *w == "IP")
        .unwrap_or_else(|| panic!("not an IPv4 line: {line}"));
    (
        t[ip + 1].to_string(),
        t[ip + 3].trim_end_matches(':').to_string(),
    )
}

/// Wait until the lab's containers have been the same for `quiet` (at most `max`). A `up`
/// killed with requests in flight leaves dockerd finishing them for a moment: a user's `down`
/// comes seconds later, not in the same millisecond.
fn settle_containers(lab: &DLab, quiet: Duration, max: Duration) -> Vec<String> {
    let deadline = Instant::now() + max;
    let mut last = lab.containers(true);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = lab.containers(true);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            break;
        }
    }
    last
}

/// Start `up`, and kill it (-9, its whole process group) as soon as OVSDB holds the lab's
/// bridges; retried until a kill leaves the record incomplete with the bridges there. Returns
/// the attempt it took.
fn kill_up_once_its_bridges_exist(lab: &DLab) -> usize {
    for attempt in 1..=15 {
        let mut up = Bg::spawn(lab.up_cmd(None), None);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found = ovs_rows("Bridge", "external_ids").iter().any(|r| {
                ovs_map_get(&r["external_ids"], OVS_LAB).as_deref() == Some(lab.name.as_str())
            });
            if found
                || Instant::now() > deadline
                || lab.record().is_some_and(|r| r["complete"] == true)
            {
                break;
            }
        }
        up.kill();
        up.wait(Duration::from_secs(30));
        match lab.record() {
            Some(r) if r["complete"] == false && !lab.bridges().is_empty() => return attempt,
            _ => lab.down(),
        }
    }
    panic!(
        "in 15 attempts no kill of `up` landed after its OVS bridges were made and before it finished"
    );
}

// ------------------------------------------------------------------ 1 and 4: what `up` makes, and `down` removes

/// 1 and 4: nine labelled containers (hostname = node, network mode none), their namespaces at
/// /run/netns, the lab's OVS bridges (labelled, netdev datapath without the kernel module) with
/// their ports; after `down` none of it, and the host as it was.
#[test]
fn up_makes_labelled_containers_netns_links_and_ovs_bridges_and_down_removes_them() {
    docker_or_skip!();
    let _serial = serial();
    let before = snapshot();
    let lab = DLab::new("dup");
    lab.up(None);
    let st = lab.status();
    assert_eq!(
        st["runtime"], "docker",
        "status after `--runtime docker up`: {st}"
    );
    assert_eq!(st["complete"], true, "status after up: {st}");
    assert!(
        NODES.iter().all(|n| st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == *n && x["state"] == "running")),
        "{st}"
    );

    // The containers.
    let mut expected: Vec<String> = NODES.iter().map(|n| lab.container(n)).collect();
    expected.sort();
    assert_eq!(
        lab.containers(false),
        expected,
        "docker ps: the lab's running containers"
    );
    for c in docker_inspect(&expected) {
        let name = c["Name"]
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string();
        let node = name
            .strip_prefix(&format!("tcplab-{}-", lab.name))
            .unwrap_or_else(|| panic!("container {name}"));
        let labels = &c["Config"]["Labels"];
        assert_eq!(
            labels[LABEL_LAB],
            lab.name.as_str(),
            "{name}: label {LABEL_LAB}: {labels}"
        );
        assert_eq!(
            labels["org.tcplab.node"], node,
            "{name}: label org.tcplab.node: {labels}"
        );
        assert!(
            labels["org.tcplab.topology"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{name}: label org.tcplab.topology: {labels}"
        );
        assert_eq!(c["Config"]["Hostname"], node, "{name}: hostname");
        assert_eq!(
            c["HostConfig"]["NetworkMode"], "none",
            "{name}: network mode"
        );
        assert_eq!(c["State"]["Running"], true, "{name}: running");
        // /run/netns/<name> is this container's namespace.
        use std::os::unix::fs::MetadataExt;
        let pid = c["State"]["Pid"].as_u64().unwrap();
        let link = Path::new("/run/netns").join(&name);
        let linked = std::fs::metadata(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        let real = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
        assert_eq!(
            (linked.dev(), linked.ino()),
            (real.dev(), real.ino()),
            "{} is not container {name}'s namespace",
            link.display()
        );
    }
    let mut ns = lab.namespaces();
    ns.sort();
    assert_eq!(ns, expected, "/run/netns entries of the lab");

    // The OVS bridges: one per LAN, labelled with the lab, and their ports.
    let bridges = lab.bridges();
    let networks: Vec<&str> = bridges.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        networks,
        ["net1", "net2"],
        "OVS bridges with external_ids {OVS_LAB}={}: {bridges:?}",
        lab.name
    );
    let kernel_dp = kernel_has_ovs_datapath();
    for (br, net, dp) in &bridges {
        if kernel_dp {
            assert!(
                dp == "system" || dp == "netdev" || dp.is_empty(),
                "bridge {br}: datapath {dp}"
            );
        } else {
            assert_eq!(
                dp, "netdev",
                "bridge {br}: without the kernel module only the userspace datapath works"
            );
        }
        let ports: Vec<String> = must("ovs-vsctl", &["list-ports", br])
            .lines()
            .map(str::to_string)
            .collect();
        let want = if net == "net1" { 5 } else { 3 };
        assert_eq!(
            ports.len(),
            want,
            "bridge {br} ({net}) has a port per member: {ports:?}"
        );
        for p in &ports {
            must("ip", &["link", "show", "dev", p]);
        }
    }
    let listing = must(
        "ovs-vsctl",
        &["--columns=name,external_ids", "list", "Bridge"],
    );
    for (br, _, _) in &bridges {
        assert!(
            listing.contains(br.as_str()),
            "`ovs-vsctl list Bridge` shows {br}:\n{listing}"
        );
    }
    assert!(
        listing.contains(&format!("tcplab-lab={}", lab.name)),
        "`ovs-vsctl list Bridge` shows the lab's external_ids:\n{listing}"
    );

    // The snapshot sees it all (so that its coming back equal means something).
    let during = before.diff(&snapshot(), &[&lab.name]).join("\n");
    for seen in [
        format!(
            "+ docker: container tcplab-{}-aix (tcplab:{})",
            lab.name, lab.name
        ),
        format!("+ netns: tcplab-{}-aix", lab.name),
        format!("+ ovs-bridge: {} (tcplab:{})", bridges[0].0, lab.name),
        "+ ovs-port: ".to_string(),
        "+ link: ".to_string(),
    ] {
        assert!(
            during.contains(&seen),
            "the snapshot does not show `{seen}` while the lab is up:\n{during}"
        );
    }

    lab.down();
    lab.assert_gone("after down");
    before.assert_same(
        &snapshot(),
        &[&lab.name],
        "after up and down of a docker lab",
    );
}

/// `up -q` with the node image already there prints nothing at all (`-q`: no progress output).
#[test]
fn quiet_up_with_the_image_present_prints_nothing() {
    docker_or_skip!();
    let _serial = serial();
    let lab = DLab::new("dquiet");
    lab.up(None); // builds the image if it is missing
    lab.down();
    let out = run(lab.up_cmd(None), Duration::from_secs(120));
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(
        out.stderr.trim(),
        "",
        "`up -q` with tcplab/node:latest present must print nothing: {}",
        out.describe()
    );
}

// ------------------------------------------------------------------ 2: the lab works, through OVS

/// 2: every node pings every address of every other node; aix's ARP entry for sun is netb's
/// eth1 MAC (proxy ARP); traceroute slip -> aix takes the book's path.
#[test]
fn mesh_proxy_arp_and_traceroute_through_ovs() {
    docker_or_skip!();
    let _serial = serial();
    let lab = DLab::new("dmesh");
    lab.up(None);

    let failures = docker_mesh_failures(&lab, &[]);
    assert!(
        failures.is_empty(),
        "{} pings failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    lab.exec("aix", &["ping", "-n", "-c1", "-W2", "140.252.1.29"])
        .expect_ok();
    let st = lab.status();
    let netb_eth1 = mac_of(&st, "netb", "eth1");
    let sun_sunside = mac_of(&st, "sun", "sunside");
    assert_ne!(netb_eth1, sun_sunside);
    let neigh = lab
        .exec("aix", &["ip", "-j", "neigh", "show", "140.252.1.29"])
        .expect_ok();
    let v: Value = serde_json::from_str(&neigh.stdout)
        .unwrap_or_else(|e| panic!("ip -j neigh ({e}): {}", neigh.stdout));
    let entry = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["dst"] == "140.252.1.29"))
        .unwrap_or_else(|| {
            panic!(
                "aix has no ARP entry for 140.252.1.29 after pinging it: {}",
                neigh.stdout
            )
        });
    let lladdr = entry["lladdr"]
        .as_str()
        .unwrap_or_else(|| panic!("entry without lladdr: {entry}"))
        .to_lowercase();
    assert_eq!(
        entry["dev"], "eth1",
        "aix reaches 140.252.1.29 on eth1: {entry}"
    );
    assert_eq!(
        lladdr, netb_eth1,
        "aix's ARP entry for sun must be netb's eth1 MAC (proxy ARP)"
    );

    let out = lab
        .exec_t(
            "slip",
            &["traceroute", "-n", "-w", "2", "aix"],
            Duration::from_secs(60),
        )
        .expect_ok();
    assert_eq!(
        traceroute_hops(&out.stdout),
        SLIP_TO_AIX,
        "traceroute -n slip -> aix:\n{}",
        out.stdout
    );
}

/// 2: 2 MB over TCP from aix to slip arrive whole, across both OVS bridges: with the userspace
/// datapath this works only if tcplab turned transmit checksum offload off on the lab's veths.
#[test]
fn tcp_2mb_from_aix_to_slip_through_ovs_arrives_whole() {
    docker_or_skip!();
    let _serial = serial();
    let lab = DLab::new("dtcp");
    lab.up(None);

    // On the userspace datapath, both ends of every OVS port have tx checksumming off.
    let netdev = lab.bridges().iter().all(|(_, _, dp)| dp == "netdev");
    if netdev {
        for node in [
            "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi",
        ] {
            let k = lab.exec(node, &["ethtool", "-k", "eth1"]).expect_ok();
            assert!(
                k.stdout.contains("tx-checksumming: off"),
                "{node}:eth1 on an OVS netdev bridge has tx checksumming on:\n{}",
                k.stdout
            );
        }
        for (br, _, _) in lab.bridges() {
            for p in must("ovs-vsctl", &["list-ports", &br]).lines() {
                let k = sh("ethtool", &["-k", p], Duration::from_secs(10)).expect_ok();
                assert!(
                    k.stdout.contains("tx-checksumming: off"),
                    "host end {p} of bridge {br} has tx checksumming on:\n{}",
                    k.stdout
                );
            }
        }
    }

    // The data is made in aix and hashed at both ends: this checks the network, not exec's stdin.
    let made = lab
        .exec("aix", &["sh", "-c", "head -c 2097152 /dev/urandom > /tmp/sent && wc -c < /tmp/sent && sha256sum < /tmp/sent"])
        .expect_ok();
    let receiver = Bg::spawn(
        lab.exec_cmd(
            "slip",
            &[
                "timeout",
                "40",
                "sh",
                "-c",
                "nc -l 5001 > /tmp/received; wc -c < /tmp/received; sha256sum < /tmp/received",
            ],
        ),
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab
        .exec("slip", &["ss", "-Hltn", "sport = :5001"])
        .stdout
        .contains("5001")
    {
        assert!(
            Instant::now() < deadline,
            "nc never listened on slip:5001: {}",
            receiver.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    let sender = lab.exec_t(
        "aix",
        &[
            "timeout",
            "30",
            "sh",
            "-c",
            "nc -N -w 10 140.252.13.65 5001 < /tmp/sent",
        ],
        Duration::from_secs(40),
    );
    assert!(
        sender.ok(),
        "sending from aix failed: {}",
        sender.describe()
    );
    let recv = receiver.wait(Duration::from_secs(45));
    assert!(recv.ok(), "receiving on slip failed: {}", recv.describe());
    eprintln!("2 MB aix -> slip in {} ms", t0.elapsed().as_millis());
    let words = |s: &str| {
        s.split_whitespace()
            .filter(|w| *w != "-")
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (sent, got) = (words(&made.stdout), words(&recv.stdout));
    assert_eq!(sent[0], "2097152", "aix made {:?}", made.stdout);
    assert_eq!(
        got, sent,
        "slip received (bytes, sha256) {got:?}, aix sent {sent:?}"
    );
}

// ------------------------------------------------------------------ 3: MASQUERADE to the fake internet

/// 3 and 4: with an uplink (a veth to a namespace on 198.51.100.0/24, never a real interface),
/// slip's ping arrives in the fake internet from the uplink's address (MASQUERADE), every node
/// reaches it, and `down` leaves the host as it was.
#[test]
fn uplink_masquerades_to_the_fake_internet_and_down_restores_the_host() {
    docker_or_skip!();
    let _serial = serial();
    let tmp = TempDir::new("dnat");
    let inet = FakeInternet::create();
    let before = snapshot();
    let lab = DLab::new("dnat");
    lab.up(Some(&inet.uplink));
    let st = lab.status();
    assert_eq!(
        st["uplink"],
        inet.uplink.as_str(),
        "status shows the uplink: {st}"
    );

    let during = before.diff(&snapshot(), &[&lab.name]).join("\n");
    for seen in [
        "+ link: gatewayout",
        "+ route: 140.252.1.0/24 via 140.252.104.2 dev gatewayout",
        &format!("TCPLAB-{}", lab.name),
        "MASQUERADE",
    ] {
        assert!(
            during.contains(seen),
            "the snapshot does not show `{seen}` while the lab is up:\n{during}"
        );
    }

    let pcap = tmp.join("inet.pcap");
    let mut capture = Bg::spawn(
        inet.cmd(
            "timeout",
            &[
                "20",
                "tcpdump",
                "-n",
                "-U",
                "-i",
                &inet.far_if,
                "-c",
                "1",
                "-w",
                pcap.to_str().unwrap(),
                "icmp[icmptype] == icmp-echo",
            ],
        ),
        None,
    );
    assert!(
        capture.wait_stderr("listening on", Duration::from_secs(10)),
        "tcpdump did not start: {}",
        capture.stderr_so_far()
    );
    let ping = lab.exec_t(
        "slip",
        &["ping", "-n", "-c1", "-W2", INET_FAR],
        Duration::from_secs(10),
    );
    assert!(
        ping.ok(),
        "slip cannot reach the fake internet: {}",
        ping.describe()
    );
    let cap = capture.wait(Duration::from_secs(15));
    assert!(
        cap.ok(),
        "the capture in the fake internet saw no echo request: {}",
        cap.describe()
    );
    let read = sh(
        "tcpdump",
        &["-n", "-r", pcap.to_str().unwrap()],
        Duration::from_secs(10),
    )
    .expect_ok();
    let line = read
        .stdout
        .lines()
        .find(|l| l.contains("ICMP echo request"))
        .unwrap_or_else(|| panic!("no echo request captured: {}", read.stdout));
    eprintln!("captured in the fake internet: {line}");
    let (src, dst) = icmp_src_dst(line);
    assert_eq!(dst, INET_FAR, "captured: {line}");
    assert_eq!(
        src, INET_HOST,
        "slip's packet must arrive from the uplink's address (MASQUERADE), captured: {line}"
    );

    // Every node reaches the fake internet.
    let failures: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = NODES
            .iter()
            .map(|n| {
                let lab = &lab;
                s.spawn(move || {
                    let out = lab.exec_t(
                        n,
                        &["ping", "-n", "-c1", "-W2", INET_FAR],
                        Duration::from_secs(10),
                    );
                    (!out.ok()).then(|| format!("{n} -> {INET_FAR}: {}", out.describe()))
                })
            })
            .collect();
        hs.into_iter().filter_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        failures.is_empty(),
        "{} nodes cannot reach the fake internet:\n{}",
        failures.len(),
        failures.join("\n")
    );

    lab.down();
    lab.assert_gone("after down of a lab with an uplink");
    before.assert_same(
        &snapshot(),
        &[&lab.name],
        "after up and down of a docker lab with an uplink",
    );
}

// ------------------------------------------------------------------ 5: a killed `up`

/// 5: `up` killed (-9) midway leaves a record marked incomplete and some containers; `down`
/// removes them all and the host is as it was.
#[test]
fn up_killed_midway_is_removed_by_down() {
    docker_or_skip!();
    let _serial = serial();
    let before = snapshot();
    let lab = DLab::new("dkill");
    lab.up(None); // the image exists from here on: `up` takes its usual time
    lab.down();
    let delays = [300u64, 500, 700, 400, 600, 800, 350, 450, 550, 650, 750];
    let mut midway = None;
    for (attempt, ms) in delays.iter().cycle().take(25).enumerate() {
        let mut up = Bg::spawn(lab.up_cmd(None), None);
        std::thread::sleep(Duration::from_millis(*ms));
        up.kill();
        up.wait(Duration::from_secs(30));
        let containers =
            settle_containers(&lab, Duration::from_millis(300), Duration::from_secs(5));
        match lab.record() {
            Some(r) if r["complete"] == false && (!containers.is_empty() || attempt >= 10) => {
                midway = Some((attempt, *ms, r, containers));
                break;
            }
            _ => lab.down(),
        }
    }
    let (attempt, ms, record, containers) =
        midway.expect("no kill landed while `up` was half done in 25 attempts");
    eprintln!(
        "kill after {ms} ms (attempt {}) left {} recorded objects, {} containers, {} namespaces, {} OVS bridges",
        attempt + 1,
        record["objects"].as_array().map_or(0, Vec::len),
        containers.len(),
        lab.namespaces().len(),
        lab.bridges().len()
    );
    let st = lab.tcplab(&["status", "--json"]);
    assert!(
        st.stdout.contains("\"complete\": false"),
        "status of a half-up lab says incomplete: {}",
        st.describe()
    );

    let down = lab.tcplab(&["-q", "down"]);
    assert!(down.ok(), "down after a killed up: {}", down.describe());
    lab.assert_gone("after down of a killed up");
    before.assert_same(
        &snapshot(),
        &[&lab.name],
        "after a killed docker up and a down",
    );
}

/// 5: `up` killed (-9) once its OVS bridges exist: `down` removes containers and bridges.
#[test]
fn up_killed_after_its_ovs_bridges_is_removed_by_down() {
    docker_or_skip!();
    let _serial = serial();
    let before = snapshot();
    let lab = DLab::new("dkovs");
    let attempt = kill_up_once_its_bridges_exist(&lab);
    settle_containers(&lab, Duration::from_millis(300), Duration::from_secs(5));
    eprintln!(
        "kill on attempt {attempt} left {} containers, {} OVS bridges, {} namespaces",
        lab.containers(true).len(),
        lab.bridges().len(),
        lab.namespaces().len()
    );
    assert!(
        !lab.containers(true).is_empty(),
        "the killed up left containers to remove"
    );
    let down = lab.tcplab(&["-q", "down"]);
    assert!(down.ok(), "down after a killed up: {}", down.describe());
    lab.assert_gone("after down of an up killed after its OVS bridges");
    before.assert_same(
        &snapshot(),
        &[&lab.name],
        "after a killed docker up and a down",
    );
}

/// 5: `up` killed, then its record deleted by hand: `down` still finds the labelled containers
/// and OVS bridges (and the namespaces by name) and removes them.
#[test]
fn killed_up_without_its_record_is_found_by_labels_and_removed() {
    docker_or_skip!();
    let _serial = serial();
    let before = snapshot();
    let lab = DLab::new("dorph");
    kill_up_once_its_bridges_exist(&lab);
    settle_containers(&lab, Duration::from_millis(300), Duration::from_secs(5));
    assert!(
        !lab.containers(true).is_empty() && !lab.bridges().is_empty(),
        "the killed up left containers and bridges"
    );
    let host_links = lab.recorded_host_links();
    std::fs::remove_file(lab.state_file()).expect("removing the record by hand");

    let down = lab.tcplab(&["down"]);
    assert!(down.ok(), "down without a record: {}", down.describe());
    assert!(
        down.stderr.contains("no record"),
        "down says it worked without a record: {}",
        down.describe()
    );
    lab.assert_gone("after down of a killed up whose record was deleted");
    // Without the record, `down` does not delete the lab's host-side veths: they go only when
    // the kernel gets round to destroying the node namespaces they lead to, which can take
    // seconds (see down_without_record_removes_the_host_veths_of_a_held_namespace). Wait for
    // that here, so that the snapshot checks everything else.
    let deadline = Instant::now() + Duration::from_secs(15);
    while host_links.iter().any(|l| link_exists(l)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    before.assert_same(
        &snapshot(),
        &[&lab.name],
        "after a killed docker up, rm of its record, and a down",
    );
}

/// 5: without the record, `down` must still remove the lab's host-side veths (the host ends of
/// its OVS ports, named `tl<hash of the lab>p<n>`), as it does with the record. Here a process
/// holds a node's namespace, as a user's `ip netns exec tcplab-<lab>-aix bash` does (README:
/// "`ip netns exec` works on it too"): with the record `down` deletes the veths itself; without
/// it they stay on the host, outside any bridge, for as long as that process lives.
#[test]
fn down_without_record_removes_the_host_veths_of_a_held_namespace() {
    docker_or_skip!();
    let _serial = serial();
    let lab = DLab::new("dveth");
    kill_up_once_its_bridges_exist(&lab);
    settle_containers(&lab, Duration::from_millis(300), Duration::from_secs(5));
    let host_links = lab.recorded_host_links();
    assert!(
        host_links.iter().any(|l| link_exists(l)),
        "the killed up made host veths: {host_links:?}"
    );
    let mut hold = Command::new("ip");
    hold.args(["netns", "exec", &lab.container("aix"), "sleep", "60"]);
    let mut holder = Bg::spawn(hold, None);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(lab.state_file()).expect("removing the record by hand");

    let down = lab.tcplab(&["-q", "down"]);
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<String> = host_links
        .iter()
        .filter(|l| link_exists(l))
        .cloned()
        .collect();
    holder.kill();
    holder.wait(Duration::from_secs(10));
    // Let them go with the namespaces before the next test's snapshot.
    let deadline = Instant::now() + Duration::from_secs(15);
    while host_links.iter().any(|l| link_exists(l)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(down.ok(), "down without a record: {}", down.describe());
    lab.assert_gone("after down without a record");
    assert!(
        left.is_empty(),
        "`down` without the record left the lab's host veths {left:?} (of {host_links:?}) while a \
         process held node aix's namespace"
    );
}

/// 5: `down` run at once after a killed `up` (as a script does: `timeout -s KILL 1 tcplab up;
/// tcplab down`) must also remove the containers dockerd was still creating for the dead `up`:
/// dockerd finishes create requests whose client is gone. The kill is aimed at the moment the
/// containers are being created (measured first), `down` follows at once, and 1.5 s later no
/// container of the lab may exist. `docker events` tells which kills landed in that moment
/// (containers created after the kill).
#[test]
fn down_at_once_after_a_killed_up_catches_containers_still_being_created() {
    docker_or_skip!();
    let _serial = serial();
    let tmp = TempDir::new("drace");
    let lab = DLab::new("drace");
    let events_file = tmp.join("events");
    let mut ev = Command::new("docker");
    ev.args([
        "events",
        "--filter",
        &format!("label={LABEL_LAB}={}", lab.name),
        "--filter",
        "type=container",
    ])
    .args(["--format", "{{.Action}} {{.TimeNano}}"]);
    let _events = Bg::spawn_to(
        ev,
        None,
        Some(Stdio::from(std::fs::File::create(&events_file).unwrap())),
    );
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    };
    let creates_after = |t: u128| {
        std::fs::read_to_string(&events_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("create "))
            .filter(|ns| ns.trim().parse::<u128>().is_ok_and(|ns| ns > t))
            .count()
    };

    // When does dockerd create the first container, counted from the start of `up`?
    let first_create_after = |t: u128| {
        std::fs::read_to_string(&events_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("create "))
            .filter_map(|ns| ns.trim().parse::<u128>().ok())
            .filter(|ns| *ns > t)
            .min()
    };
    std::thread::sleep(Duration::from_millis(300)); // `docker events` is listening
    let started = now_ns();
    lab.up(None);
    std::thread::sleep(Duration::from_millis(200));
    let first = Duration::from_nanos(
        (first_create_after(started).expect("docker events saw the lab's containers created")
            - started) as u64,
    );
    lab.down();
    eprintln!(
        "dockerd creates the first container of an up about {} ms after it starts",
        first.as_millis()
    );

    let mut landed = 0;
    for offset in [
        -20i64, -40, -10, -60, 0, -30, -50, -80, 10, -100, -25, -45, -15, -5,
    ] {
        let delay = Duration::from_millis((first.as_millis() as i64 + offset).max(10) as u64);
        let mut up = Bg::spawn(lab.up_cmd(None), None);
        std::thread::sleep(delay);
        up.kill();
        up.wait(Duration::from_secs(30));
        let killed_at = now_ns();
        let down = lab.tcplab(&["-q", "down"]);
        assert!(down.ok(), "down after a killed up: {}", down.describe());
        std::thread::sleep(Duration::from_millis(1500));
        let late = creates_after(killed_at);
        let left = lab.containers(true);
        assert!(
            left.is_empty(),
            "`up` killed after {} ms, then `down` at once: {} containers are left behind ({late} were created by dockerd \
             after the kill): {left:?}",
            delay.as_millis(),
            left.len()
        );
        lab.down(); // whatever a late create made and the first `down` removed: start again from nothing
        if late > 0 {
            landed += 1;
            if landed == 4 {
                break;
            }
        }
    }
    eprintln!("{landed} kills landed while dockerd was still creating containers");
}

// ------------------------------------------------------------------ 6: two labs

/// 6: two docker labs side by side (brought up at the same time) both work; one going down
/// leaves the other whole and working.
#[test]
fn two_docker_labs_side_by_side() {
    docker_or_skip!();
    let _serial = serial();
    let before = snapshot();
    let one = DLab::new("done");
    let two = DLab::new("dtwo");
    let ups: Vec<Bg> = [&one, &two]
        .iter()
        .map(|l| Bg::spawn(l.up_cmd(None), None))
        .collect();
    for (u, l) in ups.into_iter().zip([&one, &two]) {
        let out = u.wait(Duration::from_secs(240));
        assert!(
            out.ok(),
            "docker lab {} did not come up alongside the other: {}",
            l.name,
            out.describe()
        );
    }
    for l in [&one, &two] {
        assert_eq!(l.containers(false).len(), 9, "lab {}: containers", l.name);
        assert_eq!(l.bridges().len(), 2, "lab {}: OVS bridges", l.name);
        let out = l.exec("slip", &["ping", "-n", "-c1", "-W2", "aix"]);
        assert!(
            out.ok(),
            "lab {}: slip cannot reach aix: {}",
            l.name,
            out.describe()
        );
        let out = l.exec("aix", &["ping", "-n", "-c1", "-W2", "140.252.13.65"]);
        assert!(
            out.ok(),
            "lab {}: aix cannot reach slip: {}",
            l.name,
            out.describe()
        );
    }
    let two_bridges = two.bridges();
    one.down();
    one.assert_gone("after down of one of two labs");
    let mut expected: Vec<String> = NODES.iter().map(|n| two.container(n)).collect();
    expected.sort();
    assert_eq!(
        two.containers(false),
        expected,
        "lab {} lost containers when {} went down",
        two.name,
        one.name
    );
    assert_eq!(
        two.bridges(),
        two_bridges,
        "lab {} lost OVS bridges when {} went down",
        two.name,
        one.name
    );
    assert_eq!(
        two.namespaces().len(),
        9,
        "lab {}: namespaces {:?}",
        two.name,
        two.namespaces()
    );
    let failures = docker_mesh_failures(&two, &[]);
    assert!(
        failures.is_empty(),
        "lab {} stopped working when {} went down: {} pings failed:\n{}",
        two.name,
        one.name,
        failures.len(),
        failures.join("\n")
    );
    let out = two
        .exec_t(
            "slip",
            &["traceroute", "-n", "-w", "2", "aix"],
            Duration::from_secs(60),
        )
        .expect_ok();
    assert_eq!(
        traceroute_hops(&out.stdout),
        SLIP_TO_AIX,
        "lab {}: traceroute:\n{}",
        two.name,
        out.stdout
    );
    two.down();
    two.assert_gone("after down of the second lab");
    before.assert_same(
        &snapshot(),
        &[&one.name, &two.name],
        "after two docker labs up and down",
    );
}

// ------------------------------------------------------------------ 7: no engine, no OVS

/// `tcplab --lab NAME --runtime docker up` with no Docker engine at DOCKER_HOST.
fn up_without_engine(lab: &str) -> Out {
    let mut c = Command::new(TCPLAB);
    c.env("DOCKER_HOST", "unix:///nonexistent.sock").args([
        "--lab",
        lab,
        "--runtime",
        "docker",
        "up",
    ]);
    run(c, Duration::from_secs(60))
}

/// 7: no Docker engine answers: one line saying so and how to start it, nothing created.
#[test]
fn no_docker_engine_is_one_line_and_creates_nothing() {
    docker_or_skip!(); // the machine's engine is there; tcplab is pointed at none
    let _serial = serial();
    let before = snapshot();
    let lab = DLab::new("dnoeng");
    let out = up_without_engine(&lab.name);
    assert_ne!(out.code, 0, "{}", out.describe());
    assert!(!out.timed_out, "{}", out.describe());
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one line on stderr: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("Docker"),
        "the line names Docker: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("start dockerd") || out.stderr.contains("setup-host.sh"),
        "the line says how to start it: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    lab.assert_gone("after up without an engine");
    before.assert_same(
        &snapshot(),
        &[&lab.name],
        "after `up` without a Docker engine",
    );
}

/// 7: the README's exit codes: "2 bad input (..., no Docker engine for `--runtime docker`)".
#[test]
fn no_docker_engine_exits_2_as_the_readme_says() {
    docker_or_skip!();
    let _serial = serial();
    let lab = DLab::new("dnoex");
    let out = up_without_engine(&lab.name);
    assert_eq!(
        out.code,
        2,
        "README: exit 2 when --runtime docker finds no Docker engine: {}",
        out.describe()
    );
}

/// 7: Open vSwitch not running: one line saying so and how to start it, nothing created. The
/// machine's OVS keeps running (other tests use it): tcplab runs in a mount namespace of its own
/// where an empty tmpfs hides /run/openvswitch, so it finds no db.sock.
#[test]
fn no_open_vswitch_is_one_line_and_creates_nothing() {
    docker_or_skip!();
    if !on_path("unshare") {
        eprintln!("skipped: no unshare (util-linux) to hide Open vSwitch's socket from tcplab");
        return;
    }
    let _serial = serial();
    let ovs_dir = std::fs::canonicalize("/var/run/openvswitch")
        .expect("/var/run/openvswitch exists when OVS runs");
    let before = snapshot();
    let lab = DLab::new("dnoovs");
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs tcplab-test-noovs \"$1\" && shift && exec \"$@\"",
        "sh",
    ])
    .arg(&ovs_dir)
    .arg(TCPLAB)
    .args(["--lab", &lab.name, "--runtime", "docker", "up"]);
    let out = run(c, Duration::from_secs(120));
    assert!(
        !out.stderr.contains("mount:"),
        "hiding the OVS socket failed: {}",
        out.describe()
    );
    assert_ne!(out.code, 0, "{}", out.describe());
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one line on stderr: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("Open vSwitch"),
        "the line names Open vSwitch: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("start it") || out.stderr.contains("setup-host.sh"),
        "the line says how to start it: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(
        Path::new(&ovs_dir).join("db.sock").exists(),
        "the machine's OVS socket is untouched"
    );
    lab.assert_gone("after up without Open vSwitch");
    before.assert_same(&snapshot(), &[&lab.name], "after `up` without Open vSwitch");
}

// ------------------------------------------------------------------ 8: exec on docker

/// 8: `tcplab exec` through the Docker exec API: the exit code comes back, stdin goes in (a
/// line, and 1 MB whole), stderr comes out, the node's name is its hostname, names resolve.
#[test]
fn exec_passes_exit_code_stdin_and_resolves_names() {
    docker_or_skip!();
    let _serial = serial();
    let tmp = TempDir::new("dexec");
    let lab = DLab::new("dexec");
    lab.up(None);

    let out = lab.exec("slip", &["sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{}", out.describe());
    let out = lab.exec("slip", &["true"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let out = lab.exec("slip", &["false"]);
    assert_eq!(out.code, 1, "{}", out.describe());

    let out = Bg::spawn(
        lab.exec_cmd("aix", &["cat"]),
        Some(stdin_of(&tmp, "hi", b"hi\n")),
    )
    .wait(Duration::from_secs(30));
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(
        out.stdout,
        "hi\n",
        "echo hi | tcplab exec aix cat: {}",
        out.describe()
    );

    let mut data = vec![0u8; 1 << 20];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut data)
            .unwrap();
    }
    let big = tmp.join("big");
    std::fs::write(&big, &data).unwrap();
    let out = Bg::spawn(
        lab.exec_cmd("aix", &["wc", "-c"]),
        Some(Stdio::from(std::fs::File::open(&big).unwrap())),
    )
    .wait(Duration::from_secs(30));
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(
        out.stdout.trim(),
        "1048576",
        "1 MB through exec's stdin: {}",
        out.describe()
    );
    let out = Bg::spawn(
        lab.exec_cmd("aix", &["sha256sum"]),
        Some(Stdio::from(std::fs::File::open(&big).unwrap())),
    )
    .wait(Duration::from_secs(30));
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(
        out.stdout.split_whitespace().next(),
        Some(sha256(&big).as_str()),
        "1 MB through exec's stdin arrives whole"
    );

    let out = lab.exec("gemini", &["sh", "-c", "echo to-stderr >&2; exit 3"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    assert_eq!(
        out.stderr.trim(),
        "to-stderr",
        "the command's stderr comes out on stderr: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());

    let out = lab.exec("svr4", &["hostname"]).expect_ok();
    assert_eq!(out.stdout.trim(), "svr4");
    let out = lab.exec("sun", &["ping", "-c1", "-W2", "aix"]);
    assert!(out.ok(), "sun cannot ping aix by name: {}", out.describe());
    assert!(
        out.stdout.contains("140.252.1.92"),
        "aix resolves to 140.252.1.92: {}",
        out.stdout
    );
    let out = lab
        .exec("aix", &["getent", "hosts", "bsdi-bsdiside"])
        .expect_ok();
    assert!(
        out.stdout.contains("140.252.13.66"),
        "a second address has a name too: {}",
        out.stdout
    );
}
