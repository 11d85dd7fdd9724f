//! Integration tests of the netns runtime: the real `tcplab` binary builds the
//! course lab in network namespaces, and the tests check what a student would see, then that
//! `down` leaves the host exactly as it was. Root only: without root each test says
//! `skipped: not root` and passes.
//!
//! Every test holds one global lock (`common::serial`), so they run one at a time whatever
//! `--test-threads` says: host snapshots must not see another test's lab. Every lab is removed by a drop guard, even when a test panics.
//! Snapshot comparisons leave out what belongs to other labs on the machine (found by name),
//! and substrings listed in TCPLAB_TEST_IGNORE (comma-separated).
//!
//! Labs use `--runtime netns --switch linux`; TCPLAB_TEST_SWITCH=ovs runs them on Open vSwitch.
//! The uplink test needs 198.51.100.0/24 unused on the host: it checks, and fails saying so.

mod common;

use common::scenarios::*;
use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The runtime of every lab of this file (its switch from TCPLAB_TEST_SWITCH).
const NETNS: Runtime = Runtime::Netns;

/// 1 and 6: every node reaches every address of every other node; `down` leaves the host as it was.
#[test]
fn isolated_lab_full_mesh_and_clean_down() {
    root_or_skip!();
    let _serial = serial();
    isolated_up_then_down_restores_the_host(NETNS, "mesh", |lab, _| assert_mesh(lab, &[]));
}

/// 2: proxy ARP: aix's ARP entry for sun's 140.252.1.29 holds netb's top-LAN MAC, not sun's.
#[test]
fn aix_arp_entry_for_sun_is_netbs_top_lan_mac() {
    root_or_skip!();
    let _serial = serial();
    with_lab_up(NETNS, "arp", assert_proxy_arp);
}

/// 3: traceroute from slip to aix takes the book's path.
#[test]
fn traceroute_slip_to_aix_takes_the_books_path() {
    root_or_skip!();
    let _serial = serial();
    with_lab_up(NETNS, "trace", assert_books_path);
}

/// 4: 2 MB over TCP from aix to slip (four routers, proxy ARP on the way) arrive whole.
#[test]
fn tcp_2mb_from_aix_to_slip_arrives_whole() {
    root_or_skip!();
    let _serial = serial();
    with_lab_up(NETNS, "tcp", assert_tcp_2mb_from_aix_to_slip);
}

/// 1, 5 and 6 with an uplink: every node reaches every other node and the fake internet; slip's
/// packet arrives there from the uplink's address (MASQUERADE); `down` restores the host.
#[test]
fn uplink_reaches_fake_internet_masqueraded_and_clean_down() {
    root_or_skip!();
    let _serial = serial();
    uplink_masquerades_to_the_fake_internet(NETNS, "up");
}

/// 7: `up` killed midway leaves a record marked incomplete; `up` again refuses (exit 2);
/// `down` removes everything.
#[test]
fn killed_up_is_refused_then_cleaned_by_down() {
    root_or_skip!();
    let _serial = serial();
    let tmp = TempDir::new("crash");
    let topo = tmp.join("big.toml");
    let name = lab_name("crash");
    std::fs::write(&topo, big_topology(&name, 150, 3)).unwrap();
    let lab = Lab::with_topology("crash", &topo);
    let before = NETNS.snapshot();

    // How long a whole `up` of 150 nodes takes here (a few hundred ms), then kill `up`s at
    // fractions of that until one dies half done: the record says incomplete, and (preferably)
    // some of the lab's namespaces exist.
    let t0 = Instant::now();
    lab.up(None);
    let full = t0.elapsed();
    lab.down();
    eprintln!("a whole up of 150 nodes took {} ms", full.as_millis());
    let delays: Vec<Duration> = [
        0.5, 0.3, 0.7, 0.4, 0.6, 0.2, 0.8, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.1, 0.9,
    ]
    .iter()
    .map(|f| full.mul_f64(*f))
    .collect();
    let (attempt, delay, record) =
        kill_up_midway(&lab, &delays, 40, |lab| !lab.namespaces().is_empty());
    eprintln!(
        "kill after {} ms (attempt {}) left {} recorded objects, {} namespaces",
        delay.as_millis(),
        attempt + 1,
        record["objects"].as_array().map_or(0, Vec::len),
        lab.namespaces().len()
    );
    half_up_lab_is_refused_then_removed_by_down(&lab, &before);
}

/// A classroom: two labs NATed out of the same uplink at once, each reaching the fake internet
/// from the uplink's address, both in `ls`; each `down` removes exactly its own part.
#[test]
fn two_labs_with_uplinks_at_once_and_each_down_removes_its_own() {
    root_or_skip!();
    let _serial = serial();
    two_labs_with_uplinks(NETNS, ["cla", "clb"]);
}

/// 8: two labs side by side; removing one leaves the other working.
#[test]
fn two_labs_side_by_side() {
    root_or_skip!();
    let _serial = serial();
    common::scenarios::two_labs_side_by_side(NETNS, ["one", "two"]);
}

// ------------------------------------------------------------------ 9: the CLI's errors

#[test]
fn a_second_up_changes_nothing_and_says_so() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("twice");
    lab.up(None);
    let record = lab.record();
    let before = Snapshot::take();
    let out = run(lab.up_cmd(false, None), Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(
        out.stderr.contains(&lab.name) && out.stderr.contains("nothing to change"),
        "{}",
        out.describe()
    );
    assert_eq!(lab.record(), record, "the record is as it was");
    assert_eq!(before.diff(&Snapshot::take(), &[]), Vec::<String>::new());
    lab.exec("slip", &["ping", "-n", "-c1", "-W2", "aix"])
        .expect_ok();
}

#[test]
fn up_brings_a_lab_back_after_a_reboot_and_status_says_what_was_missing() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("reboot");
    lab.up(None);
    lab.tcplab(&["-q", "link", "set", "slip", "bsdi", "--delay", "2ms"])
        .expect_ok();
    let check = lab.tcplab(&["status", "--check"]);
    assert_eq!(check.code, 0, "a whole lab: {}", check.describe());
    // A reboot behind tcplab's back: the lab's namespaces and its conditions workers are gone,
    // the record stays.
    for pid in must("pgrep", &["-f", &format!("link-worker.*/{}/", lab.name)]).lines() {
        must("kill", &["-9", pid.trim()]);
    }
    for ns in lab.namespaces() {
        must("ip", &["netns", "delete", &ns]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let check = lab.tcplab(&["status", "--check"]);
    assert_eq!(check.code, 1, "degraded: {}", check.describe());
    for what in ["DEGRADED", "aix", "missing", "conditions on slip:slipside"] {
        assert!(
            check.stdout.contains(what),
            "status names {what}: {}",
            check.stdout
        );
    }
    let out = run(lab.up_cmd(false, None), Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(out.stderr.contains("repaired"), "{}", out.describe());
    let check = lab.tcplab(&["status", "--check"]);
    assert_eq!(check.code, 0, "whole again: {}", check.describe());
    let failures = mesh_failures(&lab, &[]);
    assert!(failures.is_empty(), "after the repair: {failures:?}");
    let shown = lab.tcplab(&["link", "show"]).expect_ok().stdout;
    assert!(
        shown.contains("delay 2ms") && !shown.contains("NOT APPLIED"),
        "{shown}"
    );
    let out = run(lab.up_cmd(false, None), Duration::from_secs(60));
    assert!(
        out.stderr.contains("nothing to change"),
        "{}",
        out.describe()
    );
}

#[test]
fn exec_of_an_unknown_node_exits_2_naming_it() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("unode");
    lab.up(None);
    let out = lab.tcplab(&["exec", "nosuchnode", "true"]);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains("nosuchnode"),
        "the error names the node: {}",
        out.describe()
    );
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one line on stderr: {}",
        out.describe()
    );
}

#[test]
fn exec_on_a_lab_not_up_exits_2() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("notup");
    let out = lab.tcplab(&["exec", "slip", "true"]);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains(&lab.name) && out.stderr.contains("not up"),
        "{}",
        out.describe()
    );
}

#[test]
fn up_with_a_missing_uplink_exits_2_and_creates_nothing() {
    root_or_skip!();
    let _serial = serial();
    let before = NETNS.snapshot();
    let lab = Lab::new("noif");
    let out = run(
        lab.up_cmd(false, Some("nosuchif0")),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains("nosuchif0"),
        "the error names the interface: {}",
        out.describe()
    );
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one line on stderr: {}",
        out.describe()
    );
    assert_nothing_left(&lab, &before, "after `up nosuchif0` was refused");
}

#[test]
fn down_twice_second_has_nothing_to_do() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("down2");
    lab.up(None);
    lab.down();
    let out = lab.tcplab(&["down"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(out.stderr.contains("nothing to do"), "{}", out.describe());
}

#[test]
fn exec_returns_the_commands_exit_code() {
    root_or_skip!();
    let _serial = serial();
    with_lab_up(NETNS, "code", assert_exec_passes_exit_code_and_stderr);
}

#[test]
fn exec_resolves_node_names() {
    root_or_skip!();
    let _serial = serial();
    with_lab_up(NETNS, "names", assert_node_names_resolve);
}

/// `tcplab status | head -1`: a reader that stops early must not make tcplab panic.
#[test]
fn status_into_a_closed_pipe_exits_without_a_panic() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("pipe");
    lab.up(None);
    for args in [&["status"][..], &["status", "--json"][..]] {
        let mut fds = [0i32; 2];
        // SAFETY: pipe(2) fills two descriptors that we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors are ours and open; the read end is closed at once, as `head` does.
        let (read_end, write_end) = unsafe {
            use std::os::fd::FromRawFd;
            (
                std::os::fd::OwnedFd::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            )
        };
        drop(read_end);
        let mut c = lab.cmd();
        c.args(args);
        let out = Bg::spawn_to(c, None, Some(Stdio::from(write_end))).wait(Duration::from_secs(30));
        assert!(
            !out.stderr.contains("panicked") && out.code != 101 && !out.timed_out,
            "`tcplab {}` into a closed pipe panicked (exit {}):\n{}",
            args.join(" "),
            out.code,
            out.stderr.lines().take(3).collect::<Vec<_>>().join("\n")
        );
    }
}

// ------------------------------------------------------------------ crashes and quiet LANs

/// `up` of the course lab (on Open vSwitch, whose host-side ports are what the kernel removes
/// last) killed at 20 moments spread over a whole `up`, each followed by `down`: every `down`
/// leaves the host exactly as before, at once (it waits for the kernel to finish).
#[test]
fn up_killed_at_20_moments_then_down_leaves_nothing_behind() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("kill20");
    let up = |lab: &Lab| {
        let mut c = lab.cmd();
        c.args(["--switch", "ovs", "-q", "up"]);
        c
    };
    if !sh(
        "ovs-vsctl",
        &["--timeout=5", "show"],
        Duration::from_secs(10),
    )
    .ok()
    {
        eprintln!("skipped: Open vSwitch is not running (scripts/setup-host.sh starts it)");
        return;
    }
    let before = NETNS.snapshot();
    let t0 = Instant::now();
    run(up(&lab), Duration::from_secs(60)).expect_ok();
    let full = t0.elapsed();
    lab.down();
    eprintln!("a whole up took {} ms", full.as_millis());
    let mut incomplete = 0;
    for i in 0..20u32 {
        let mut bg = Bg::spawn(up(&lab), None);
        std::thread::sleep(full.mul_f64(f64::from(i) / 19.0));
        bg.kill();
        let _ = bg.wait(Duration::from_secs(10));
        if lab.record().is_some_and(|r| r["complete"] != true) {
            incomplete += 1;
        }
        lab.down();
        let diff = before.diff(&NETNS.snapshot(), &[]);
        assert!(diff.is_empty(), "killed at moment {i}: left {diff:?}");
    }
    eprintln!("{incomplete} of 20 kills left a half-made lab");
    assert!(incomplete > 0, "no kill landed inside an up");
}

/// An idle lab is silent: no IPv6 router solicitations or MLD reports from any interface tcplab
/// made (the host-side ends of LAN ports included), nothing at all on any node for 10 s.
#[test]
fn an_idle_lab_sends_nothing() {
    root_or_skip!();
    let _serial = serial();
    for switch in ["linux", "ovs"] {
        if switch == "ovs"
            && !sh(
                "ovs-vsctl",
                &["--timeout=5", "show"],
                Duration::from_secs(10),
            )
            .ok()
        {
            eprintln!("skipped on ovs: Open vSwitch is not running");
            continue;
        }
        let lab = Lab::new(&format!("quiet{}", &switch[..1]));
        let mut c = lab.cmd();
        c.args(["--switch", switch, "-q", "up"]);
        run(c, Duration::from_secs(60)).expect_ok();
        let dir = tempfile::tempdir().unwrap();
        let captures: Vec<(String, Bg)> = NODES
            .iter()
            .map(|node| {
                let mut c = lab.cmd();
                c.args(["capture", node, "--duration", "10", "-w"])
                    .arg(dir.path().join(format!("{node}.pcapng")));
                (node.to_string(), Bg::spawn(c, None))
            })
            .collect();
        for (node, bg) in captures {
            let out = bg.wait(Duration::from_secs(30));
            assert!(out.ok(), "{node}: {}", out.describe());
            assert!(
                out.stderr.contains("0 packets captured"),
                "{switch}: {node} saw packets on an idle lab: {}",
                out.stderr
            );
        }
        lab.down();
    }
}

/// Run under sudo, what tcplab writes for the user is the user's: a capture (and the
/// directories made for it) and an experiment's whole output directory.
#[test]
fn files_written_under_sudo_belong_to_the_user_who_ran_it() {
    root_or_skip!();
    let _serial = serial();
    use std::os::unix::fs::MetadataExt;
    let lab = Lab::new("owner");
    lab.up(None);
    let dir = tempfile::tempdir().unwrap();
    let sudo = |c: &mut std::process::Command| {
        c.env("SUDO_UID", "65534").env("SUDO_GID", "65534");
    };
    let mut c = lab.cmd();
    c.args(["-q", "capture", "aix", "--duration", "1"])
        .current_dir(dir.path());
    sudo(&mut c);
    run(c, Duration::from_secs(30)).expect_ok();
    let mut c = lab.cmd();
    c.args(["-q", "experiment", "run", "arp", "--out"])
        .arg(dir.path().join("results/arp"));
    sudo(&mut c);
    run(c, Duration::from_secs(120)).expect_ok();
    let mut seen = 0;
    let mut stack = vec![dir.path().join("captures"), dir.path().join("results")];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (65534, 65534),
            "{} is not the user's",
            p.display()
        );
        seen += 1;
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(seen >= 6, "only {seen} files and directories written");
}

/// Commands racing on one lab: two `up`s at once (one makes the lab, the other says at once
/// that another tcplab is at work, exit 2), a `down` during an `up` (the same), and `exec` and
/// `capture` during a `down` (they end, whatever they say); afterwards nothing is left.
#[test]
fn racing_commands_end_cleanly_and_leave_nothing() {
    root_or_skip!();
    let _serial = serial();
    let before = NETNS.snapshot();
    // A topology big enough that its `up` takes a while.
    let tmp = TempDir::new("race");
    let topo = tmp.join("big.toml");
    std::fs::write(&topo, big_topology(&lab_name("race"), 120, 3)).unwrap();
    let lab = Lab::with_topology("race", &topo);
    let first = Bg::spawn(lab.up_cmd(true, None), None);
    std::thread::sleep(Duration::from_millis(30));
    let t = Instant::now();
    let second = run(lab.up_cmd(true, None), Duration::from_secs(60));
    let third = lab.tcplab(&["-q", "down"]);
    let waited = t.elapsed();
    let first = first.wait(Duration::from_secs(120));
    assert!(first.ok(), "{}", first.describe());
    for out in [&second, &third] {
        assert_eq!(out.code, 2, "{}", out.describe());
        assert!(
            out.stderr.contains("another tcplab is working"),
            "{}",
            out.describe()
        );
    }
    assert!(
        waited < Duration::from_secs(5),
        "refused at once, not after {waited:?}"
    );
    // exec and capture while the lab goes down.
    let exec = Bg::spawn(lab.exec_cmd("h0", &["sleep", "5"]), None);
    let mut cap = lab.cmd();
    cap.args(["-q", "capture", "h0", "--duration", "5", "-w"])
        .arg(tmp.join("race.pcap"));
    let cap = Bg::spawn(cap, None);
    std::thread::sleep(Duration::from_millis(300));
    lab.down();
    let exec = exec.wait(Duration::from_secs(20));
    let cap = cap.wait(Duration::from_secs(20));
    eprintln!(
        "exec during down: {}; capture: {}",
        exec.describe(),
        cap.describe()
    );
    assert_eq!(
        before.diff(&NETNS.snapshot(), &[]),
        Vec::<String>::new(),
        "something of the lab is left"
    );
}

/// A lab NATed out of an uplink after a reboot behind tcplab's back (its namespaces, its host
/// ports and its firewall chain gone, the uplink's forwarding off again, the record kept):
/// status names the broken uplink, `up` makes the whole lab again, and it reaches the fake
/// internet as before; `down` then leaves the host as it was.
#[test]
fn up_brings_back_a_lab_with_an_uplink_after_a_reboot() {
    root_or_skip!();
    let _serial = serial();
    let inet = FakeInternet::create();
    let before = NETNS.snapshot();
    let lab = Lab::new("rbup");
    lab.up(Some(&inet.uplink));
    let reach = |lab: &Lab| {
        lab.exec_t(
            "slip",
            &["ping", "-n", "-c1", "-W2", INET_FAR],
            Duration::from_secs(10),
        )
    };
    reach(&lab).expect_ok();
    for ns in lab.namespaces() {
        must("ip", &["netns", "delete", &ns]);
    }
    let line = uplink_host_link(&lab.name);
    let _ = sh("ip", &["link", "delete", &line], Duration::from_secs(10));
    // The lab's chains and their jumps, as a reboot leaves them: gone.
    let chain = format!("TCPLAB-{}", lab.name);
    let comment = format!("tcplab:{}", lab.name);
    for (table, builtin) in [("filter", "FORWARD"), ("nat", "POSTROUTING")] {
        let jump = [
            "-t",
            table,
            "-D",
            builtin,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            &chain,
        ];
        must("iptables", &jump);
        must("iptables", &["-t", table, "-F", &chain]);
        must("iptables", &["-t", table, "-X", &chain]);
    }
    let forwarding = format!("/proc/sys/net/ipv4/conf/{}/forwarding", inet.uplink);
    std::fs::write(&forwarding, "0").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let check = lab.tcplab(&["status", "--check"]);
    assert_eq!(check.code, 1, "{}", check.describe());
    assert!(check.stdout.contains("uplink"), "{}", check.stdout);
    let out = run(
        lab.up_cmd(false, Some(&inet.uplink)),
        Duration::from_secs(60),
    );
    assert!(
        out.ok() && out.stderr.contains("repaired"),
        "{}",
        out.describe()
    );
    assert_eq!(lab.tcplab(&["status", "--check"]).code, 0);
    reach(&lab).expect_ok();
    lab.down();
    assert_eq!(before.diff(&NETNS.snapshot(), &[]), Vec::<String>::new());
}
