//! Integration tests of the lab image (`Dockerfile`, target `lab`): a whole course lab inside ONE
//! container, as a classroom server or a Kubernetes pod per student runs it. The image is built
//! the documented way (a tar of the Dockerfile, images/ and the tcplab binary under test, piped
//! into `docker build --target lab`), started with only NET_ADMIN, SYS_ADMIN and NET_RAW (every
//! other capability dropped, not privileged, no network), and the tests check that its
//! entrypoint brings the lab up, that an experiment and a ping pass inside it, that `docker
//! stop` takes the lab down and the container exits 0, and that the host never sees any of the
//! lab: its links, addresses, routes, named namespaces, iptables rules, tcplab's records and
//! the list of containers are the same before, while the lab is up, and after.
//!
//! They need root and a Docker engine that answers (`docker info`); without them each test
//! prints `skipped: <reason>` and passes. The tcplab node image is built first if missing
//! (`tcplab image build`: its stages are the lab image's first layers). Each test builds its
//! own image tag and removes it, and removes its containers even when it panics.

mod common;

use common::docker::docker_containers;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the lab container is given: nothing else (`--cap-drop ALL` first).
const CAPS: [&str; 3] = ["NET_ADMIN", "SYS_ADMIN", "NET_RAW"];
/// The file the entrypoint writes once the lab is up (its start and end times inside).
const READY: &str = "/run/tcplab-lab/up";
/// How long a lab container may take to come up (the lab alone takes well under a second).
const UP_TIMEOUT: Duration = Duration::from_secs(120);
/// The lab name inside every container (the built-in topology's). Snapshots count what is named
/// after it as ours: a namespace, port or rule of it on the host is a difference, not another
/// lab's.
const COURSE_LAB: &str = "tcpip";
/// Label on every container of these tests.
const TEST_LABEL: &str = "org.tcplab.test=lab-in-container";

// ------------------------------------------------------------------ the environment

/// Why these tests cannot run here (None: they can): Docker's, and `tar` for the image's
/// build context.
fn missing_environment() -> Option<String> {
    if let Some(reason) = common::docker::docker_missing() {
        return Some(reason);
    }
    (!common::docker::on_path("tar")).then(|| "no `tar` on PATH".to_string())
}

/// Skip the test (with the message CI greps for) unless root and Docker are there.
macro_rules! docker_or_skip {
    () => {
        if let Some(reason) = missing_environment() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// The host as these tests compare it: the common snapshot plus every container's name.
fn host_snapshot() -> Snapshot {
    let mut s = Snapshot::take();
    let mut containers: Vec<String> = docker_containers()
        .into_iter()
        .map(|(name, _)| format!("container {name}"))
        .collect();
    containers.sort();
    s.sections.insert("docker", containers);
    s
}

/// `docker ARGS...`, killed after `timeout`.
fn docker(args: &[&str], timeout: Duration) -> Out {
    sh("docker", args, timeout)
}

// ------------------------------------------------------------------ the image

/// A lab image built for one test from the binary under test, removed on drop.
struct LabImage {
    tag: String,
}

impl LabImage {
    /// Build it: the node image first (through tcplab, if missing or stale), then
    /// `tar -c Dockerfile images -C BINDIR tcplab | docker build --target lab -t TAG -`.
    fn build(test: &str) -> LabImage {
        let node = run(
            {
                let mut c = Command::new(TCPLAB);
                c.args(["image", "build"]);
                c
            },
            Duration::from_secs(900),
        );
        assert!(node.ok(), "the node image: {}", node.describe());

        let tag = format!("tcplab/lab-test:{}-{test}", std::process::id());
        let image = LabImage { tag };
        let bin = std::path::Path::new(TCPLAB);
        let (dir, file) = (bin.parent().unwrap(), bin.file_name().unwrap());
        assert_eq!(file, "tcplab", "the binary under test is called tcplab");
        let mut tar = Command::new("tar")
            .args([
                "-c",
                "-C",
                env!("CARGO_MANIFEST_DIR"),
                "Dockerfile",
                "images",
            ])
            .arg("-C")
            .arg(dir)
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tar");
        let context = Stdio::from(tar.stdout.take().expect("piped"));
        let mut build = Command::new("docker");
        build.args(["build", "--target", "lab", "-t", &image.tag, "-"]);
        let started = Instant::now();
        let out = Bg::spawn(build, Some(context)).wait(Duration::from_secs(600));
        let tar_status = tar.wait().expect("waiting for tar");
        assert!(tar_status.success(), "tar of the build context failed");
        assert!(out.ok(), "building the lab image: {}", out.describe());
        eprintln!(
            "lab image {} built in {:.1} s",
            image.tag,
            started.elapsed().as_secs_f64()
        );
        image
    }
}

impl Drop for LabImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag], Duration::from_secs(60));
    }
}

// ------------------------------------------------------------------ one lab container

/// One student's lab container, removed (`docker rm -f`) on drop.
struct LabBox {
    name: String,
    /// When `docker run` was started.
    started: Instant,
}

impl LabBox {
    /// `docker run -d` of `image` as `name`, with `caps` only, on no network.
    fn start(image: &LabImage, name: &str, caps: &[&str]) -> LabBox {
        let _ = docker(&["rm", "-f", name], Duration::from_secs(30));
        let mut args = vec!["run", "-d", "--name", name, "--label", TEST_LABEL];
        args.extend(["--network", "none", "--cap-drop", "ALL"]);
        for cap in caps {
            args.extend(["--cap-add", cap]);
        }
        args.push(&image.tag);
        let started = Instant::now();
        let lab = LabBox {
            name: name.to_string(),
            started,
        };
        docker(&args, Duration::from_secs(60)).expect_ok();
        lab
    }

    /// `docker exec NAME ARGS...`.
    fn exec(&self, args: &[&str], timeout: Duration) -> Out {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend(args);
        docker(&all, timeout)
    }

    /// Whether the container is running.
    fn running(&self) -> bool {
        docker(
            &["inspect", "-f", "{{.State.Running}}", &self.name],
            Duration::from_secs(20),
        )
        .stdout
        .trim()
            == "true"
    }

    /// Its exit code (once it has stopped).
    fn exit_code(&self) -> i32 {
        let out = docker(
            &["inspect", "-f", "{{.State.ExitCode}}", &self.name],
            Duration::from_secs(20),
        )
        .expect_ok();
        out.stdout.trim().parse().expect("an exit code")
    }

    /// What the entrypoint and tcplab printed.
    fn logs(&self) -> String {
        let out = docker(&["logs", &self.name], Duration::from_secs(20));
        format!("{}{}", out.stdout, out.stderr)
    }

    /// Wait until the entrypoint says the lab is up; the time since `docker run`. Panics with
    /// the container's output if it stops first or takes too long.
    fn wait_up(&self) -> Duration {
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            if self
                .exec(&["test", "-e", READY], Duration::from_secs(20))
                .ok()
            {
                return self.started.elapsed();
            }
            assert!(
                self.running(),
                "container {} stopped before its lab was up:\n{}",
                self.name,
                self.logs()
            );
            assert!(
                Instant::now() < deadline,
                "container {}: no lab after {UP_TIMEOUT:?}:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How long `tcplab up` took inside, from the times the entrypoint wrote to [`READY`].
    fn up_time_inside(&self) -> Duration {
        let out = self
            .exec(&["cat", READY], Duration::from_secs(20))
            .expect_ok();
        let t: Vec<f64> = out
            .stdout
            .split_whitespace()
            .map(|w| w.parse().expect("a time in seconds"))
            .collect();
        assert_eq!(t.len(), 2, "start and end times in {READY}: {}", out.stdout);
        Duration::from_secs_f64(t[1] - t[0])
    }

    /// The container's memory as its cgroup counts it (what a memory limit is held against),
    /// in bytes; None if the cgroup is not where Docker usually puts it.
    fn memory(&self) -> Option<u64> {
        let id = docker(
            &["inspect", "-f", "{{.Id}}", &self.name],
            Duration::from_secs(20),
        )
        .expect_ok()
        .stdout
        .trim()
        .to_string();
        [
            format!("/sys/fs/cgroup/memory/docker/{id}/memory.usage_in_bytes"),
            format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.current"),
            format!("/sys/fs/cgroup/docker/{id}/memory.current"),
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
    }

    /// The checks every lab container passes once up: not privileged, the lab's nine nodes
    /// running, an experiment and a ping across the routers.
    fn check_lab(&self) {
        let privileged = docker(
            &["inspect", "-f", "{{.HostConfig.Privileged}}", &self.name],
            Duration::from_secs(20),
        )
        .expect_ok();
        assert_eq!(
            privileged.stdout.trim(),
            "false",
            "{} is not privileged",
            self.name
        );

        let status = self
            .exec(&["tcplab", "status"], Duration::from_secs(60))
            .expect_ok();
        for node in NODES {
            assert!(
                status.stdout.lines().any(|l| {
                    let mut w = l.split_whitespace();
                    w.next() == Some(node) && w.next() == Some("running")
                }),
                "{}: node {node} is not running:\n{}",
                self.name,
                status.stdout
            );
        }

        let arp = self.exec(
            &["tcplab", "experiment", "run", "arp", "--out", "/tmp/arp"],
            Duration::from_secs(120),
        );
        assert!(
            arp.ok(),
            "{}: experiment arp: {}",
            self.name,
            arp.describe()
        );
        assert!(
            arp.stdout
                .lines()
                .any(|l| l.ends_with(" passed, 0 failed") && !l.starts_with("0 ")),
            "{}: experiment arp: {}",
            self.name,
            arp.describe()
        );

        // sun (bottom LAN) to aix (top LAN): through netb's proxy ARP and two routers.
        let ping = self.exec(
            &[
                "tcplab",
                "exec",
                "sun",
                "ping",
                "-n",
                "-c",
                "2",
                "-W",
                "3",
                "140.252.1.92",
            ],
            Duration::from_secs(30),
        );
        assert!(
            ping.ok(),
            "{}: ping sun -> aix: {}",
            self.name,
            ping.describe()
        );
    }

    /// `docker kill` (SIGKILL: no `down`, the record stays in the container) and `docker
    /// start` again; the time from the start to the lab up.
    fn kill_and_start(&mut self) -> Duration {
        docker(&["kill", &self.name], Duration::from_secs(30)).expect_ok();
        assert!(!self.running(), "{} was killed", self.name);
        self.started = Instant::now();
        docker(&["start", &self.name], Duration::from_secs(60)).expect_ok();
        self.wait_up()
    }

    /// `docker stop` (SIGTERM): the entrypoint takes the lab down and exits 0.
    fn stop(&self) {
        let started = Instant::now();
        docker(&["stop", "-t", "60", &self.name], Duration::from_secs(90)).expect_ok();
        eprintln!(
            "{}: stopped in {:.2} s",
            self.name,
            started.elapsed().as_secs_f64()
        );
        let logs = self.logs();
        assert_eq!(
            self.exit_code(),
            0,
            "{}: exit code after stop:\n{logs}",
            self.name
        );
        assert!(
            logs.contains("is down"),
            "{}: no `lab ... is down` in its output:\n{logs}",
            self.name
        );
    }
}

impl Drop for LabBox {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name], Duration::from_secs(60));
    }
}

/// A container name of this test process (no `tcplab-` in it: the snapshots would take it
/// for another lab's).
fn box_name(tag: &str) -> String {
    format!("labbox-{:x}-{tag}", std::process::id())
}

/// Removes the containers (they are removed already unless a check failed) and checks that the
/// host and the list of containers are as they were.
fn assert_host_as_before(before: &Snapshot, boxes: Vec<LabBox>, when: &str) {
    let names: Vec<String> = boxes.iter().map(|b| b.name.clone()).collect();
    drop(boxes);
    let left: Vec<String> = docker_containers()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "{when}: containers left: {left:?}");
    before.assert_same(&host_snapshot(), &[COURSE_LAB], when);
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".to_string(),
        |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    )
}

// ------------------------------------------------------------------ the tests

#[test]
fn a_lab_container_runs_an_experiment_and_leaves_the_host_as_it_was() {
    docker_or_skip!();
    let _serial = serial();
    let image = LabImage::build("one");
    let before = host_snapshot();

    let lab = LabBox::start(&image, &box_name("one"), &CAPS);
    let up = lab.wait_up();
    eprintln!(
        "{}: lab up {:.2} s after docker run (tcplab up inside: {:.2} s), memory {}",
        lab.name,
        up.as_secs_f64(),
        lab.up_time_inside().as_secs_f64(),
        mib(lab.memory())
    );
    // The whole lab is inside the container: the host gained nothing but the container.
    let mut during = host_snapshot();
    let line = format!("container {}", lab.name);
    let containers = during.sections.get_mut("docker").expect("docker section");
    assert!(containers.contains(&line), "{line} in docker ps");
    containers.retain(|l| *l != line);
    before.assert_same(
        &during,
        &[COURSE_LAB],
        "while the lab is up in its container",
    );

    lab.check_lab();
    lab.stop();
    assert_host_as_before(&before, vec![lab], "after the lab container stopped");
}

#[test]
fn two_student_lab_containers_run_side_by_side() {
    docker_or_skip!();
    let _serial = serial();
    let image = LabImage::build("two");
    let before = host_snapshot();

    // Both started at once, both with the lab name `tcpip`: each lab is its container's own.
    let alice = LabBox::start(&image, &box_name("alice"), &CAPS);
    let bob = LabBox::start(&image, &box_name("bob"), &CAPS);
    for b in [&alice, &bob] {
        let up = b.wait_up();
        eprintln!(
            "{}: lab up {:.2} s after docker run (tcplab up inside: {:.2} s)",
            b.name,
            up.as_secs_f64(),
            b.up_time_inside().as_secs_f64()
        );
    }
    // Two students at work at the same moment.
    std::thread::scope(|s| {
        s.spawn(|| alice.check_lab());
        s.spawn(|| bob.check_lab());
    });
    for b in [&alice, &bob] {
        let memory = b.memory();
        eprintln!("{}: memory with its lab up {}", b.name, mib(memory));
        if let Some(m) = memory {
            assert!(
                m < 256 << 20,
                "{}: a lab container should need far less than 256 MiB, it uses {}",
                b.name,
                mib(memory)
            );
        }
    }

    // One student's lab ends; the other's goes on.
    alice.stop();
    assert!(bob.running(), "{} still runs", bob.name);
    let ping = bob.exec(
        &[
            "tcplab",
            "exec",
            "slip",
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "3",
            "140.252.1.92",
        ],
        Duration::from_secs(30),
    );
    assert!(
        ping.ok(),
        "{}: ping slip -> aix: {}",
        bob.name,
        ping.describe()
    );
    bob.stop();
    assert_host_as_before(
        &before,
        vec![alice, bob],
        "after both lab containers stopped",
    );
}

#[test]
fn a_killed_lab_container_brings_its_lab_back_when_started_again() {
    docker_or_skip!();
    let _serial = serial();
    let image = LabImage::build("again");
    let before = host_snapshot();

    let mut lab = LabBox::start(&image, &box_name("again"), &CAPS);
    lab.wait_up();
    let again = lab.kill_and_start();
    eprintln!(
        "{}: lab back {:.2} s after docker start",
        lab.name,
        again.as_secs_f64()
    );
    let logs = lab.logs();
    assert!(
        logs.contains("clearing what the container's previous run left"),
        "the previous run's record is cleared:\n{logs}"
    );
    let ping = lab.exec(
        &[
            "tcplab",
            "exec",
            "slip",
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "3",
            "140.252.1.92",
        ],
        Duration::from_secs(30),
    );
    assert!(
        ping.ok(),
        "{}: ping slip -> aix: {}",
        lab.name,
        ping.describe()
    );
    lab.stop();
    assert_host_as_before(
        &before,
        vec![lab],
        "after the restarted lab container stopped",
    );
}

#[test]
fn without_sys_admin_the_lab_container_says_what_to_do() {
    docker_or_skip!();
    let _serial = serial();
    let image = LabImage::build("nosys");
    let before = host_snapshot();

    let lab = LabBox::start(&image, &box_name("nosys"), &["NET_ADMIN", "NET_RAW"]);
    let waited = docker(&["wait", &lab.name], Duration::from_secs(60)).expect_ok();
    let logs = lab.logs();
    assert_eq!(waited.stdout.trim(), "2", "exit code 2:\n{logs}");
    let said: Vec<&str> = logs
        .lines()
        .filter(|l| l.starts_with("tcplab-lab:"))
        .collect();
    assert_eq!(said.len(), 1, "one line says why:\n{logs}");
    assert!(
        said[0].contains("--cap-add SYS_ADMIN"),
        "it says what to do: {}",
        said[0]
    );
    assert!(!logs.contains("is up"), "no lab came up:\n{logs}");
    assert_host_as_before(&before, vec![lab], "after the refused lab container");
}
