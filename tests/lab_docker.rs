//! Integration tests of the docker runtime on Open vSwitch: the real `tcplab` binary
//! builds the built-in course lab (its two LANs are `kind = "ovs"`) as Docker containers with
//! `--runtime docker`, and the tests check what a student would see, then that `down` leaves the
//! host exactly as it was: no container, no OVS bridge or port, no veth, route, firewall rule,
//! /run/netns entry or record of the lab. The scenarios the netns runtime must pass too (the
//! mesh, proxy ARP, traceroute, 2 MB over TCP, the uplink's MASQUERADE, a killed `up`, two labs,
//! exec) are those of `common::scenarios`, run here with `Runtime::Docker`; this file adds what
//! only Docker and OVS have.
//!
//! They need root, a Docker engine that answers (`docker info`) and a running Open vSwitch
//! (`ovs-vsctl show`); without them each test prints `skipped: <reason>` and passes
//! (`scripts/setup-host.sh` installs and starts both; CI has them).
//!
//! Every test holds the global lock of `common::serial` (one lab of this file at a time: host
//! snapshots must not see another test's lab),
//! and every lab is removed by a drop guard, even when a test panics. Snapshots are the common
//! ones plus the Docker containers and the OVS bridges, ports and interfaces
//! (`Runtime::Docker.snapshot()`); what belongs to other labs on the machine is left out by name.

mod common;

use common::docker::*;
use common::scenarios::*;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The runtime of every lab of this file.
const DOCKER: Runtime = Runtime::Docker;

/// Skip the test (with the message CI greps for) unless root, Docker and OVS are all there.
macro_rules! docker_or_skip {
    () => {
        if let Some(reason) = docker_and_ovs_missing() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

// ------------------------------------------------------------------ Docker and OVS, as seen from outside

/// `docker inspect` of containers, parsed.
fn docker_inspect(names: &[String]) -> Vec<Value> {
    let mut args = vec!["inspect"];
    args.extend(names.iter().map(String::as_str));
    let out = must("docker", &args);
    serde_json::from_str::<Vec<Value>>(&out)
        .unwrap_or_else(|e| panic!("docker inspect is not JSON ({e}): {out}"))
}

/// Whether the host has an interface of that name.
fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Wait (at most 15 s) until none of `links` is on the host. Without the record, `down` does not
/// delete a lab's host-side veths: they go when the kernel gets round to destroying the node
/// namespaces they lead to, which can take seconds.
fn wait_until_links_gone(links: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while links.iter().any(|l| link_exists(l)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the kernel has Open vSwitch's datapath (else tcplab must use the userspace one).
fn kernel_has_ovs_datapath() -> bool {
    Path::new("/sys/module/openvswitch").exists()
        || (on_path("genl")
            && sh("genl", &["ctrl", "list"], Duration::from_secs(10))
                .stdout
                .contains("ovs_datapath"))
}

/// The host interfaces the lab's record lists (OVS ports' host ends, the uplink's).
fn recorded_host_links(lab: &Lab) -> Vec<String> {
    lab.record()
        .and_then(|r| r["objects"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|o| o["kind"] == "host_link")
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect()
}

/// A file holding `data`, for a command's stdin.
fn stdin_of(tmp: &TempDir, name: &str, data: &[u8]) -> Stdio {
    let p = tmp.join(name);
    std::fs::write(&p, data).unwrap();
    Stdio::from(std::fs::File::open(&p).unwrap())
}

/// Wait until the lab's containers have been the same for `quiet` (at most `max`). A `up`
/// killed with requests in flight leaves dockerd finishing them for a moment: a user's `down`
/// comes seconds later, not in the same millisecond.
fn settle_containers(lab: &Lab, quiet: Duration, max: Duration) -> Vec<String> {
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
/// bridges; retried until a kill leaves the record incomplete with the bridges there. Then let
/// dockerd finish what the dead `up` asked of it (`settle_containers`). Returns the attempt it
/// took.
fn kill_up_once_its_bridges_exist(lab: &Lab) -> usize {
    for attempt in 1..=15 {
        let mut up = Bg::spawn(lab.up_cmd(true, None), None);
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
            Some(r) if r["complete"] == false && !lab.bridges().is_empty() => {
                settle_containers(lab, Duration::from_millis(300), Duration::from_secs(5));
                return attempt;
            }
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
    isolated_up_then_down_restores_the_host(DOCKER, "dup", |lab, before| {
        // A running container and a namespace per node, an OVS bridge per LAN.
        lab.assert_whole("after up");

        // The containers.
        let mut expected: Vec<String> = NODES.iter().map(|n| lab.container(n)).collect();
        expected.sort();
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
            let linked =
                std::fs::metadata(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
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

        // The OVS bridges (one per LAN, labelled with the lab: `assert_whole`), and their ports.
        let bridges = lab.bridges();
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
        let during = before.diff(&DOCKER.snapshot(), &[&lab.name]).join("\n");
        for seen in [
            format!("+ ovs-bridge: {} (tcplab:{})", bridges[0].0, lab.name),
            format!("+ ovs-bridge: {} (tcplab:{})", bridges[1].0, lab.name),
            "+ ovs-port: ".to_string(),
            "+ link: ".to_string(),
        ]
        .into_iter()
        .chain(NODES.iter().map(|n| {
            format!(
                "+ docker: container tcplab-{}-{n} (tcplab:{})",
                lab.name, lab.name
            )
        })) {
            assert!(
                during.contains(&seen),
                "the snapshot does not show `{seen}` while the lab is up:\n{during}"
            );
        }
    });
}

/// `up -q` with the node image already there prints nothing at all (`-q`: no progress output).
#[test]
fn quiet_up_with_the_image_present_prints_nothing() {
    docker_or_skip!();
    let _serial = serial();
    let lab = Lab::docker("dquiet");
    lab.up(None); // builds the image if it is missing
    lab.down();
    let out = run(lab.up_cmd(true, None), Duration::from_secs(120));
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
    with_lab_up(DOCKER, "dmesh", |lab| {
        assert_mesh(lab, &[]);
        assert_proxy_arp(lab);
        assert_books_path(lab);
    });
}

/// 2: 2 MB over TCP from aix to slip arrive whole, across both OVS bridges: with the userspace
/// datapath this works only if tcplab turned transmit checksum offload off on the lab's veths.
#[test]
fn tcp_2mb_from_aix_to_slip_through_ovs_arrives_whole() {
    docker_or_skip!();
    let _serial = serial();
    with_lab_up(DOCKER, "dtcp", |lab| {
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
        assert_tcp_2mb_from_aix_to_slip(lab);
    });
}

// ------------------------------------------------------------------ 3: MASQUERADE to the fake internet

/// 3 and 4: with an uplink (a veth to a namespace on 198.51.100.0/24, never a real interface),
/// slip's ping arrives in the fake internet from the uplink's address (MASQUERADE), every node
/// reaches it (and every other node), and `down` leaves the host as it was.
#[test]
fn uplink_masquerades_to_the_fake_internet_and_down_restores_the_host() {
    docker_or_skip!();
    let _serial = serial();
    uplink_masquerades_to_the_fake_internet(DOCKER, "dnat");
}

// ------------------------------------------------------------------ 5: a killed `up`

/// 5: `up` killed (-9) midway leaves a record marked incomplete and some containers; `up` again
/// refuses (exit 2); `down` removes them all and the host is as it was.
#[test]
fn up_killed_midway_is_removed_by_down() {
    docker_or_skip!();
    let _serial = serial();
    let before = DOCKER.snapshot();
    let lab = Lab::docker("dkill");
    lab.up(None); // the image exists from here on: `up` takes its usual time
    lab.down();
    let delays: Vec<Duration> = [300u64, 500, 700, 400, 600, 800, 350, 450, 550, 650, 750]
        .map(Duration::from_millis)
        .to_vec();
    let (attempt, delay, record) = kill_up_midway(&lab, &delays, 25, |lab| {
        !settle_containers(lab, Duration::from_millis(300), Duration::from_secs(5)).is_empty()
    });
    eprintln!(
        "kill after {} ms (attempt {}) left {} recorded objects, {} containers, {} namespaces, {} OVS bridges",
        delay.as_millis(),
        attempt + 1,
        record["objects"].as_array().map_or(0, Vec::len),
        lab.containers(true).len(),
        lab.namespaces().len(),
        lab.bridges().len()
    );
    half_up_lab_is_refused_then_removed_by_down(&lab, &before);
}

/// 5: `up` killed (-9) once its OVS bridges exist: `down` removes containers and bridges.
#[test]
fn up_killed_after_its_ovs_bridges_is_removed_by_down() {
    docker_or_skip!();
    let _serial = serial();
    let before = DOCKER.snapshot();
    let lab = Lab::docker("dkovs");
    let attempt = kill_up_once_its_bridges_exist(&lab);
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
    assert_down_restores_the_host(&lab, &before, "a docker up killed after its OVS bridges");
}

/// 5: `up` killed, then its record deleted by hand: `down` still finds the labelled containers
/// and OVS bridges (and the namespaces by name) and removes them.
#[test]
fn killed_up_without_its_record_is_found_by_labels_and_removed() {
    docker_or_skip!();
    let _serial = serial();
    let before = DOCKER.snapshot();
    let lab = Lab::docker("dorph");
    kill_up_once_its_bridges_exist(&lab);
    assert!(
        !lab.containers(true).is_empty() && !lab.bridges().is_empty(),
        "the killed up left containers and bridges"
    );
    let host_links = recorded_host_links(&lab);
    std::fs::remove_file(lab.state_file()).expect("removing the record by hand");

    let down = lab.tcplab(&["down"]);
    assert!(down.ok(), "down without a record: {}", down.describe());
    assert!(
        down.stderr.contains("no record"),
        "down says it worked without a record: {}",
        down.describe()
    );
    lab.assert_gone("after down of a killed up whose record was deleted");
    // Without the record the host-side veths go only with the node namespaces (see
    // down_without_record_removes_the_host_veths_of_a_held_namespace): wait for that here, so
    // that the snapshot checks everything else.
    wait_until_links_gone(&host_links);
    before.assert_same(
        &DOCKER.snapshot(),
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
    let lab = Lab::docker("dveth");
    kill_up_once_its_bridges_exist(&lab);
    let host_links = recorded_host_links(&lab);
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
    wait_until_links_gone(&host_links);
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
    let lab = Lab::docker("drace");
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
    // When (ns since the epoch) dockerd created the lab's containers, after `t`.
    let creates_after = |t: u128| -> Vec<u128> {
        std::fs::read_to_string(&events_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("create "))
            .filter_map(|ns| ns.trim().parse::<u128>().ok())
            .filter(|ns| *ns > t)
            .collect()
    };

    // When does dockerd create the first container, counted from the start of `up`?
    std::thread::sleep(Duration::from_millis(300)); // `docker events` is listening
    let started = now_ns();
    lab.up(None);
    std::thread::sleep(Duration::from_millis(200));
    let first = Duration::from_nanos(
        (creates_after(started)
            .into_iter()
            .min()
            .expect("docker events saw the lab's containers created")
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
        let mut up = Bg::spawn(lab.up_cmd(true, None), None);
        std::thread::sleep(delay);
        up.kill();
        up.wait(Duration::from_secs(30));
        let killed_at = now_ns();
        let down = lab.tcplab(&["-q", "down"]);
        assert!(down.ok(), "down after a killed up: {}", down.describe());
        std::thread::sleep(Duration::from_millis(1500));
        let late = creates_after(killed_at).len();
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
    two_labs_side_by_side(DOCKER, ["done", "dtwo"]);
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

/// `up` refused, in time, for want of `service` (Docker, Open vSwitch): one line on stderr that
/// names it and says how to start it (`how`, or scripts/setup-host.sh), nothing on stdout.
fn assert_refused_in_one_line(out: &Out, service: &str, how: &str) {
    assert_ne!(out.code, 0, "{}", out.describe());
    assert!(!out.timed_out, "{}", out.describe());
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one line on stderr: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains(service),
        "the line names {service}: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains(how) || out.stderr.contains("setup-host.sh"),
        "the line says how to start it: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

/// 7: no Docker engine answers: one line saying so and how to start it, nothing created.
#[test]
fn no_docker_engine_is_one_line_and_creates_nothing() {
    docker_or_skip!(); // the machine's engine is there; tcplab is pointed at none
    let _serial = serial();
    let before = DOCKER.snapshot();
    let lab = Lab::docker("dnoeng");
    let out = up_without_engine(&lab.name);
    assert_refused_in_one_line(&out, "Docker", "start dockerd");
    assert_nothing_left(&lab, &before, "after `up` without a Docker engine");
}

/// 7: the README's exit codes: "2 bad input (..., no Docker engine for `--runtime docker`)".
#[test]
fn no_docker_engine_exits_2_as_the_readme_says() {
    docker_or_skip!();
    let _serial = serial();
    let lab = Lab::docker("dnoex");
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
    let before = DOCKER.snapshot();
    let lab = Lab::docker("dnoovs");
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
    assert_refused_in_one_line(&out, "Open vSwitch", "start it");
    assert!(
        Path::new(&ovs_dir).join("db.sock").exists(),
        "the machine's OVS socket is untouched"
    );
    assert_nothing_left(&lab, &before, "after `up` without Open vSwitch");
}

// ------------------------------------------------------------------ 8: exec on docker

/// 8: `tcplab exec` through the Docker exec API: the exit code comes back, stdin goes in (a
/// line, and 1 MB whole), stderr comes out, the node's name is its hostname, names resolve.
#[test]
fn exec_passes_exit_code_stdin_and_resolves_names() {
    docker_or_skip!();
    let _serial = serial();
    let tmp = TempDir::new("dexec");
    with_lab_up(DOCKER, "dexec", |lab| {
        assert_exec_passes_exit_code_and_stderr(lab);

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

        assert_node_names_resolve(lab);
    });
}

// ------------------------------------------------------------------ repair

/// A node restarted behind tcplab's back (`docker restart`) comes back with only `lo`, and one
/// stopped (as a restart of dockerd leaves them) is not running: status says the lab is
/// degraded and names them, `up` starts the stopped one and makes their interfaces again, and
/// the lab works as before.
#[test]
fn a_restarted_container_is_repaired_by_up() {
    docker_or_skip!();
    let _serial = serial();
    let lab = Lab::docker("restart");
    lab.up(None);
    let name = format!("tcplab-{}-sun", lab.name);
    must("docker", &["restart", "-t", "1", &name]);
    // And one stopped, as a restart of dockerd leaves its containers.
    must(
        "docker",
        &["stop", "-t", "1", &format!("tcplab-{}-aix", lab.name)],
    );
    let check = lab.tcplab(&["status", "--check"]);
    assert_eq!(check.code, 1, "degraded: {}", check.describe());
    assert!(
        check.stdout.contains("sun") && check.stdout.contains("missing"),
        "{}",
        check.stdout
    );
    let out = run(lab.up_cmd(false, None), Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(out.stderr.contains("repaired"), "{}", out.describe());
    let check = lab.tcplab(&["status", "--check"]);
    assert_eq!(check.code, 0, "whole again: {}", check.describe());
    lab.exec("slip", &["ping", "-n", "-c1", "-W2", "aix"])
        .expect_ok();
    let hops = traceroute_hops(
        &lab.exec("slip", &["traceroute", "-n", "-w", "2", "aix"])
            .stdout,
    );
    assert_eq!(
        hops,
        [
            "140.252.13.66",
            "140.252.13.33",
            "140.252.1.183",
            "140.252.1.92"
        ],
        "the book's path through the restarted sun"
    );
}
