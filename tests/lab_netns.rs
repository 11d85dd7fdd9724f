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
fn up_of_a_lab_already_up_exits_2_with_one_line() {
    root_or_skip!();
    let _serial = serial();
    let lab = Lab::new("twice");
    lab.up(None);
    let out = run(lab.up_cmd(false, None), Duration::from_secs(60));
    assert_eq!(out.code, 2, "{}", out.describe());
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one line on stderr: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains(&lab.name) && out.stderr.contains("already up"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    // And the lab is untouched.
    lab.exec("slip", &["ping", "-n", "-c1", "-W2", "aix"])
        .expect_ok();
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
