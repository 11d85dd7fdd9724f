//! The scenarios both runtimes must pass, written once: tests/lab_netns.rs runs them with
//! [`Runtime::Netns`] (`--runtime netns --switch linux|ovs`), tests/lab_docker.rs with
//! [`Runtime::Docker`] (`--runtime docker`, the LANs on Open vSwitch). A lab is the built-in
//! course lab; what a runtime adds of its own (containers, OVS bridges) is in its test file, or
//! comes in through the `while_up` hook and [`Lab::assert_gone`] / [`Lab::assert_whole`].
//!
//! `assert_*` functions check a lab that is up; the others make (and remove) their own labs and
//! check the host around them. The caller holds [`super::serial`].

use super::{
    Bg, FakeInternet, INET_FAR, INET_HOST, Lab, NODES, Runtime, Snapshot, TempDir, mac_of,
    mesh_failures, run, sh, tcplab, traceroute_hops,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The book's path from slip to aix (`traceroute -n` hops).
pub const SLIP_TO_AIX: [&str; 4] = [
    "140.252.13.66",
    "140.252.13.33",
    "140.252.1.183",
    "140.252.1.92",
];

// ------------------------------------------------------------------ checks on a lab that is up

/// Bring up the course lab `t<tag><pid>` on `rt` and run `check` on it (the lab goes with the
/// drop guard, even if `check` panics).
pub fn with_lab_up(rt: Runtime, tag: &str, check: impl FnOnce(&Lab)) {
    let lab = rt.lab(tag);
    lab.up(None);
    check(&lab);
}

/// Every node pings every address of every other node, and each of `extra`.
pub fn assert_mesh(lab: &Lab, extra: &[&str]) {
    let failures = mesh_failures(lab, extra);
    assert!(
        failures.is_empty(),
        "lab {}: {} pings failed:\n{}",
        lab.name,
        failures.len(),
        failures.join("\n")
    );
}

/// Proxy ARP: after aix pings sun's 140.252.1.29, aix's ARP entry for it (on eth1) holds netb's
/// top-LAN (eth1) MAC, never sun's own sunside MAC.
pub fn assert_proxy_arp(lab: &Lab) {
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
    assert_ne!(
        lladdr, sun_sunside,
        "aix must never see sun's own sunside MAC"
    );
}

/// `traceroute -n` from slip to aix takes the book's path, [`SLIP_TO_AIX`].
pub fn assert_books_path(lab: &Lab) {
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
        "lab {}: traceroute -n slip -> aix:\n{}",
        lab.name,
        out.stdout
    );
}

/// 2 MB of random data go over TCP (`nc`) from aix to slip (four routers, proxy ARP on the way)
/// and arrive whole: the byte count and sha256 taken in slip are those taken in aix. The data is
/// made in aix and hashed at both ends, so this checks the network, not exec's stdin; the files
/// are in a temporary directory of the host for netns nodes (they share the host's file system,
/// and it is removed with the test), in the container's own /tmp for docker ones.
pub fn assert_tcp_2mb_from_aix_to_slip(lab: &Lab) {
    let tmp = (lab.runtime == Runtime::Netns).then(|| TempDir::new(&format!("tcp{}", lab.name)));
    let dir = tmp
        .as_ref()
        .map_or_else(|| "/tmp".to_string(), |t| t.0.display().to_string());
    // How long nc may listen in slip, and how long we wait for it (docker exec is slower).
    let (listen, wait) = match lab.runtime {
        Runtime::Netns => ("30", Duration::from_secs(40)),
        Runtime::Docker => ("40", Duration::from_secs(45)),
    };
    let made = lab
        .exec(
            "aix",
            &[
                "sh",
                "-c",
                &format!(
                    "head -c 2097152 /dev/urandom > '{dir}/sent' && wc -c < '{dir}/sent' && sha256sum < '{dir}/sent'"
                ),
            ],
        )
        .expect_ok();
    let receiver = Bg::spawn(
        lab.exec_cmd(
            "slip",
            &[
                "timeout",
                listen,
                "sh",
                "-c",
                &format!(
                    "nc -l 5001 > '{dir}/received'; wc -c < '{dir}/received'; sha256sum < '{dir}/received'"
                ),
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
            &format!("nc -N -w 10 140.252.13.65 5001 < '{dir}/sent'"),
        ],
        Duration::from_secs(40),
    );
    assert!(
        sender.ok(),
        "sending from aix failed: {}",
        sender.describe()
    );
    let recv = receiver.wait(wait);
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

/// `tcplab exec` hands back the command's exit code (7, 0, 1) and its stderr (on stderr, with
/// nothing on stdout); a node's hostname is its name.
pub fn assert_exec_passes_exit_code_and_stderr(lab: &Lab) {
    let out = lab.exec("slip", &["sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{}", out.describe());
    let out = lab.exec("slip", &["true"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let out = lab.exec("slip", &["false"]);
    assert_eq!(out.code, 1, "{}", out.describe());
    let out = lab.exec("gemini", &["sh", "-c", "echo to-stderr >&2; exit 3"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    assert_eq!(
        out.stderr.trim(),
        "to-stderr",
        "the command's stderr comes out on stderr: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    // The node's own name.
    let out = lab.exec("svr4", &["hostname"]).expect_ok();
    assert_eq!(out.stdout.trim(), "svr4");
}

/// Node names resolve inside the nodes: sun pings aix by name (140.252.1.92), and a second
/// address has a name too (bsdi-bsdiside is 140.252.13.66).
pub fn assert_node_names_resolve(lab: &Lab) {
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

/// `status --json` of a whole lab: complete, of the runtime asked for, every node running, the
/// uplink given (or none).
fn assert_status_complete(lab: &Lab, uplink: Option<&str>) {
    let st = lab.status();
    assert_eq!(st["complete"], true, "status after up: {st}");
    assert_eq!(
        st["runtime"],
        lab.runtime.name(),
        "status after `--runtime {} up`: {st}",
        lab.runtime.name()
    );
    match uplink {
        None => assert!(
            st["uplink"].is_null(),
            "an isolated lab has no uplink: {st}"
        ),
        Some(u) => assert_eq!(st["uplink"], u, "status shows the uplink: {st}"),
    }
    assert!(
        NODES.iter().all(|n| st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == *n && x["state"] == "running")),
        "every node is running: {st}"
    );
}

/// Nothing of the lab is left ([`Lab::assert_gone`]), and the host is as `before`.
pub fn assert_nothing_left(lab: &Lab, before: &Snapshot, when: &str) {
    lab.assert_gone(when);
    before.assert_same(&lab.runtime.snapshot(), &[&lab.name], when);
}

/// After `what` (say "a killed netns up"), `down` succeeds, leaves nothing of the lab, and
/// leaves the host as `before`.
pub fn assert_down_restores_the_host(lab: &Lab, before: &Snapshot, what: &str) {
    let down = lab.tcplab(&["-q", "down"]);
    assert!(down.ok(), "down after {what}: {}", down.describe());
    assert_nothing_left(lab, before, &format!("after {what} and a down"));
}

// ------------------------------------------------------------------ whole scenarios

/// An isolated lab comes up complete (status: the runtime, no uplink, every node running), the
/// host snapshot sees every node's namespace (so that its coming back equal means something),
/// `while_up` checks what the test is about (given the lab and the snapshot before `up`), and
/// `down` leaves nothing of the lab and the host exactly as it was.
pub fn isolated_up_then_down_restores_the_host(
    rt: Runtime,
    tag: &str,
    while_up: impl FnOnce(&Lab, &Snapshot),
) {
    let before = rt.snapshot();
    let lab = rt.lab(tag);
    lab.up(None);
    assert_status_complete(&lab, None);
    let during = before.diff(&rt.snapshot(), &[&lab.name]);
    for node in NODES {
        let ns = format!("+ netns: tcplab-{}-{node}", lab.name);
        assert!(
            during.contains(&ns),
            "the snapshot does not see the lab's namespace {ns}: {during:?}"
        );
    }
    while_up(&lab, &before);
    assert_down_restores_the_host(
        &lab,
        &before,
        &format!("an up of an isolated {}", rt.lab_word()),
    );
}

/// With an uplink (a veth to a fake internet on 198.51.100.0/24, never a real interface):
/// status shows it, the snapshot shows what it adds to the host, slip's ping arrives in the fake
/// internet from the uplink's address (MASQUERADE), every node reaches every other node and the
/// fake internet, and `down` leaves the host as it was. Needs 198.51.100.0/24 unused on the host.
pub fn uplink_masquerades_to_the_fake_internet(rt: Runtime, tag: &str) {
    let tmp = TempDir::new(tag);
    let inet = FakeInternet::create();
    let before = rt.snapshot();
    let lab = rt.lab(tag);
    lab.up(Some(&inet.uplink));
    assert_status_complete(&lab, Some(&inet.uplink));

    // The snapshot sees what the uplink adds to the host (so that its going means something):
    // the lab's line from its edge and its chain, never the lab's own addresses or routes.
    let during = before.diff(&rt.snapshot(), &[&lab.name]).join("\n");
    let line = uplink_host_link(&lab.name);
    for seen in [
        format!("+ link: {line}"),
        format!("+ route: {}", uplink_transfer(&lab)),
        format!("TCPLAB-{}", lab.name),
        "MASQUERADE".into(),
    ] {
        assert!(
            during.contains(&seen),
            "the snapshot does not show `{seen}` while the lab is up:\n{during}"
        );
    }
    assert!(
        !during.contains("140.252.") && !during.contains("gatewayout"),
        "the host holds the lab's own addresses or routes:\n{during}"
    );
    assert_traceroute_through_the_edge(&lab, "slip");

    // slip -> 198.51.100.2, captured where it arrives.
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
        .unwrap_or_else(|| panic!("no echo request in the capture: {}", read.stdout));
    eprintln!("captured in the fake internet: {line}");
    let (src, dst) = icmp_src_dst(line);
    assert_eq!(dst, INET_FAR, "captured: {line}");
    assert_eq!(
        src, INET_HOST,
        "slip's packet must arrive from the uplink's address (MASQUERADE), captured: {line}"
    );

    // Everyone reaches everyone, and the fake internet.
    assert_mesh(&lab, &[INET_FAR]);

    assert_down_restores_the_host(
        &lab,
        &before,
        &format!("an up of a {} with an uplink", rt.lab_word()),
    );
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

/// Start `up` and kill it (-9, its whole process group) after each of `delays` in turn (round
/// and round, `attempts` times at most) until one dies half done: the record says incomplete and
/// `left_something(lab)` (checked first, once `up` is dead) finds what that runtime's `up` made,
/// or, from the 11th attempt on, the incomplete record alone. Each kill that lands too early or
/// too late is undone by `down`. Returns (attempt, from 0; the delay; the record).
pub fn kill_up_midway(
    lab: &Lab,
    delays: &[Duration],
    attempts: usize,
    left_something: impl Fn(&Lab) -> bool,
) -> (usize, Duration, Value) {
    for (attempt, delay) in delays.iter().cycle().take(attempts).enumerate() {
        let mut up = Bg::spawn(lab.up_cmd(true, None), None);
        std::thread::sleep(*delay);
        up.kill();
        up.wait(Duration::from_secs(30));
        let left = left_something(lab);
        match lab.record() {
            Some(r) if r["complete"] == false && (left || attempt >= 10) => {
                return (attempt, *delay, r);
            }
            // Too early or too late: start again from nothing.
            _ => lab.down(),
        }
    }
    panic!("no kill landed while `up` was half done in {attempts} attempts");
}

/// A lab whose `up` was killed half done: `status` says incomplete, `up` again refuses with exit
/// 2 and says why (keeping the record), and `down` removes it all, leaving the host as `before`.
pub fn half_up_lab_is_refused_then_removed_by_down(lab: &Lab, before: &Snapshot) {
    let st = lab.tcplab(&["status", "--json"]);
    assert!(
        st.stdout.contains("\"complete\": false"),
        "status of a half-up lab says incomplete: {}",
        st.describe()
    );

    let again = run(lab.up_cmd(true, None), Duration::from_secs(60));
    assert_eq!(
        again.code,
        2,
        "`up` of a half-up lab must refuse with exit 2: {}",
        again.describe()
    );
    assert!(
        !again.stderr.trim().is_empty(),
        "the refusal says why: {}",
        again.describe()
    );
    assert!(
        lab.state_file().exists(),
        "the refusal must keep the record"
    );

    assert_down_restores_the_host(lab, before, &format!("a killed {} up", lab.runtime.name()));
}

/// Two labs side by side, brought up at the same time: both are whole and work; one going down
/// leaves nothing of it and the other exactly as it was (its namespaces, containers, bridges),
/// every node of it reaching every other and slip's traceroute taking the book's path; after
/// both are down the host is as it was.
pub fn two_labs_side_by_side(rt: Runtime, tags: [&str; 2]) {
    let before = rt.snapshot();
    let one = rt.lab(tags[0]);
    let two = rt.lab(tags[1]);
    let ups: Vec<Bg> = [&one, &two]
        .iter()
        .map(|l| Bg::spawn(l.up_cmd(true, None), None))
        .collect();
    for (u, l) in ups.into_iter().zip([&one, &two]) {
        let out = u.wait(rt.up_timeout());
        assert!(
            out.ok(),
            "{} {} did not come up alongside the other: {}",
            rt.lab_word(),
            l.name,
            out.describe()
        );
    }
    for l in [&one, &two] {
        l.assert_whole("two labs up");
        for (from, to, peer) in [("slip", "aix", "aix"), ("aix", "140.252.13.65", "slip")] {
            let out = l.exec(from, &["ping", "-n", "-c1", "-W2", to]);
            assert!(
                out.ok(),
                "lab {}: {from} cannot reach {peer}: {}",
                l.name,
                out.describe()
            );
        }
    }
    let two_objects = two.objects();
    one.down();
    one.assert_gone("after down of one of two labs");
    assert_eq!(
        two.objects(),
        two_objects,
        "lab {} lost parts when {} went down",
        two.name,
        one.name
    );
    let failures = mesh_failures(&two, &[]);
    assert!(
        failures.is_empty(),
        "lab {} stopped working when {} went down: {} pings failed:\n{}",
        two.name,
        one.name,
        failures.len(),
        failures.join("\n")
    );
    assert_books_path(&two);
    let st = two.status();
    assert!(
        st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "running"),
        "lab {}: {st}",
        two.name
    );
    two.down();
    two.assert_gone("after down of the second lab");
    before.assert_same(
        &rt.snapshot(),
        &[&one.name, &two.name],
        &format!("after two {}s up and down", rt.lab_word()),
    );
}

/// The host end of lab `lab`'s line from its edge (as tcplab names it: `tlu` and 32 bits of a
/// hash of the lab).
pub fn uplink_host_link(lab: &str) -> String {
    let h = tcplab::util::fnv1a64(&[lab.as_bytes(), b"uplink-host"]);
    format!("tlu{:08x}", (h >> 32) as u32 ^ h as u32)
}

/// The transfer network of the lab's line to the host, from its record.
pub fn uplink_transfer(lab: &Lab) -> String {
    let rec = lab.record().expect("the lab has a record");
    rec["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["kind"] == "uplink_line")
        .and_then(|o| o["transfer"].as_str())
        .unwrap_or_else(|| panic!("no uplink line in the record: {rec}"))
        .to_string()
}

/// traceroute from `node` to the fake internet: the lab's routers, then the edge (the
/// topology's host address), then the host (the first address of the lab's transfer network),
/// then the fake internet.
pub fn assert_traceroute_through_the_edge(lab: &Lab, node: &str) {
    let out = lab.exec_t(
        node,
        &["traceroute", "-n", "-q1", "-w2", "-m12", INET_FAR],
        Duration::from_secs(60),
    );
    assert!(out.ok(), "traceroute from {node}: {}", out.describe());
    let hops = traceroute_hops(&out.stdout);
    let transfer: std::net::Ipv4Addr = uplink_transfer(lab)
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let host = std::net::Ipv4Addr::from(u32::from(transfer) + 1).to_string();
    let edge = hops.iter().position(|h| h == "140.252.104.1");
    let tail: Vec<&str> = edge
        .map(|i| hops[i..].iter().map(String::as_str).take(3).collect())
        .unwrap_or_default();
    assert!(
        edge.is_some_and(|i| i > 0 && hops[i - 1].starts_with("140.252."))
            && tail.len() >= 2
            && tail[1] == host
            && hops.last().map(String::as_str) == Some(INET_FAR),
        "traceroute {node} -> {INET_FAR} must pass the gateway, the edge (140.252.104.1), the host ({host}): {hops:?}"
    );
}

/// Two labs with uplinks on the same fake internet at once (the uplink's forwarding off
/// before, so that sharing it matters): both come up, both reach the fake internet from the
/// uplink's address, `ls` lists both; the first one's `down` removes exactly its part of the
/// host (the host as it was with both, less what the first added) while the second keeps
/// working; the second's `down` leaves the host as before both, forwarding off again.
pub fn two_labs_with_uplinks(rt: Runtime, tags: [&str; 2]) {
    let inet = FakeInternet::create();
    let fwd = format!("/proc/sys/net/ipv4/conf/{}/forwarding", inet.uplink);
    std::fs::write(&fwd, "0").expect("turning the fake uplink's forwarding off");
    let read_fwd = || std::fs::read_to_string(&fwd).unwrap().trim().to_string();
    let before = rt.snapshot();
    let one = rt.lab(tags[0]);
    let two = rt.lab(tags[1]);
    one.up(Some(&inet.uplink));
    let with_one = rt.snapshot();
    two.up(Some(&inet.uplink));
    let with_both = rt.snapshot();
    assert_eq!(
        read_fwd(),
        "1",
        "forwarding on the uplink while labs use it"
    );
    assert_ne!(uplink_transfer(&one), uplink_transfer(&two));
    for l in [&one, &two] {
        assert_reaches_inet_masqueraded(&inet, l);
    }
    let ls = tcplab(&["ls", "--json"]).expect_ok();
    let rows: Value = serde_json::from_str(&ls.stdout).expect("ls --json");
    for l in [&one, &two] {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["lab"] == l.name.as_str())
            .unwrap_or_else(|| panic!("ls does not list {}: {rows}", l.name));
        assert_eq!(row["uplink"], inet.uplink.as_str(), "{row}");
        assert_eq!(row["nodes"], 9, "{row}");
        assert_eq!(row["complete"], true, "{row}");
        assert_eq!(row["runtime"], rt.name(), "{row}");
    }
    let table = tcplab(&["ls"]).expect_ok().stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{} ", one.name))),
        "{table}"
    );

    // The first goes: exactly its part of the host goes with it.
    let down = one.tcplab(&["-q", "down"]);
    assert!(down.ok(), "down of {}: {}", one.name, down.describe());
    one.assert_gone("the first of two labs with uplinks down");
    let ones_part = before.diff(&with_one, &[&one.name]);
    let expected = without(&with_both, &ones_part);
    expected.assert_same(
        &rt.snapshot(),
        &[&one.name, &two.name],
        "the first lab's down must remove exactly its part",
    );
    assert_eq!(
        read_fwd(),
        "1",
        "the other lab still needs the uplink's forwarding"
    );
    assert_reaches_inet_masqueraded(&inet, &two);
    assert_down_restores_the_host(&two, &before, "two labs with uplinks");
    assert_eq!(
        read_fwd(),
        "0",
        "the last lab's down puts the uplink's forwarding back"
    );
}

/// `snap` without the lines `diff` added ("+ section: line"), the shared directories aside.
fn without(snap: &Snapshot, diff: &[String]) -> Snapshot {
    let mut out = snap.clone();
    for d in diff {
        let Some(rest) = d.strip_prefix("+ ") else {
            continue;
        };
        let (section, line) = rest.split_once(": ").expect("a diff line");
        // The directories every lab's records and /etc files share stay while one is up.
        if section == "files" && line.starts_with("dir ") && !line.contains("tcplab-") {
            continue;
        }
        if let Some(lines) = out.sections.get_mut(section)
            && let Some(pos) = lines.iter().position(|l| l == line)
        {
            lines.remove(pos);
        }
    }
    out
}

/// aix's ping arrives in the fake internet from the uplink's address.
fn assert_reaches_inet_masqueraded(inet: &FakeInternet, lab: &Lab) {
    let mut capture = Bg::spawn(
        inet.cmd(
            "timeout",
            &[
                "20",
                "tcpdump",
                "-n",
                "-l",
                "-i",
                &inet.far_if,
                "-c",
                "1",
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
        "aix",
        &["ping", "-n", "-c1", "-W2", INET_FAR],
        Duration::from_secs(10),
    );
    assert!(
        ping.ok(),
        "lab {}: aix cannot reach the fake internet: {}",
        lab.name,
        ping.describe()
    );
    let cap = capture.wait(Duration::from_secs(15));
    let line = cap
        .stdout
        .lines()
        .find(|l| l.contains("ICMP echo request"))
        .unwrap_or_else(|| panic!("lab {}: no echo request seen: {}", lab.name, cap.describe()));
    let (src, _) = icmp_src_dst(line);
    assert_eq!(
        src, INET_HOST,
        "lab {}: aix's ping must arrive from the uplink's address: {line}",
        lab.name
    );
}
