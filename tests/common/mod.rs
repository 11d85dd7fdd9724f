//! Helpers of the root-only integration tests: running the real `tcplab` binary with time
//! limits, labs on either runtime that remove themselves (even on panic), host snapshots, and a
//! fake internet (a namespace behind a veth on 198.51.100.0/24) to use as an uplink.
//! [`docker`] sees Docker containers and Open vSwitch from outside; [`scenarios`] holds the
//! scenarios that tests/lab_netns.rs and tests/lab_docker.rs both run, each on its runtime.
//!
//! Every test that creates anything takes [`serial`] first: snapshots compare the whole host,
//! and the snapshots of the host must not see another test's lab.

#![allow(dead_code)]

pub mod docker;
pub mod scenarios;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test.
pub const TCPLAB: &str = env!("CARGO_BIN_EXE_tcplab");

/// Where tcplab keeps its records (TCPLAB_STATE_DIR, as tcplab reads it, else /run/tcplab).
pub fn state_dir() -> PathBuf {
    std::env::var_os("TCPLAB_STATE_DIR").map_or_else(|| PathBuf::from("/run/tcplab"), PathBuf::from)
}

/// Skip the test (with the message CI greps for) unless we are root.
#[macro_export]
macro_rules! root_or_skip {
    () => {
        if !$crate::common::is_root() {
            eprintln!("skipped: not root");
            return;
        }
    };
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

static SERIAL: Mutex<()> = Mutex::new(());

/// The one lock every test of the file holds for its whole run (a panicking test poisons it:
/// that is not a reason to fail the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ running commands

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct Out {
    /// What ran, for messages.
    pub what: String,
    /// Exit code; -1 when killed by a signal (or by us, on timeout).
    pub code: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Whether we killed it because it ran past its time.
    pub timed_out: bool,
}

impl Out {
    /// Whether it exited 0 in time.
    pub fn ok(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Panic (with everything it said) unless it exited 0.
    pub fn expect_ok(self) -> Out {
        assert!(self.ok(), "command failed: {}", self.describe());
        self
    }

    /// One paragraph describing the run.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {}{}\n--- stdout:\n{}--- stderr:\n{}",
            self.what,
            self.code,
            if self.timed_out {
                " (killed: timed out)"
            } else {
                ""
            },
            self.stdout,
            self.stderr
        )
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

fn describe_cmd(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().to_string();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn reader(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

/// A command running in the background, in a process group of its own (killed with it on drop).
pub struct Bg {
    what: String,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Bg {
    /// Start `cmd` (stdin from `stdin`, /dev/null if none).
    pub fn spawn(cmd: Command, stdin: Option<Stdio>) -> Bg {
        Bg::spawn_to(cmd, stdin, None)
    }

    /// Start `cmd` with stdout sent to `stdout` instead of collected (if given).
    pub fn spawn_to(mut cmd: Command, stdin: Option<Stdio>, stdout: Option<Stdio>) -> Bg {
        let what = describe_cmd(&cmd);
        let collect_stdout = stdout.is_none();
        cmd.stdin(stdin.unwrap_or_else(Stdio::null))
            .stdout(stdout.unwrap_or_else(Stdio::piped))
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = vec![reader(child.stderr.take().expect("piped"), stderr.clone())];
        if collect_stdout {
            readers.push(reader(child.stdout.take().expect("piped"), stdout.clone()));
        }
        Bg {
            what,
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What it printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).to_string()
    }

    /// Wait until its stderr holds `needle` (true), or it exits or the time is up (false).
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_so_far().contains(needle) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .expect("running")
                .try_wait()
                .ok()
                .flatten()
                .is_some();
            if exited || Instant::now() >= deadline {
                return self.stderr_so_far().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send SIGKILL to the whole group at once.
    pub fn kill(&mut self) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) of our own child's process group.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
        }
    }

    /// Wait for it to end, killing its group if it runs past `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("running");
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    timed_out = true;
                    // SAFETY: kill(2) of our own child's process group.
                    unsafe {
                        libc::kill(-(child.id() as i32), libc::SIGKILL);
                    }
                    break child.wait().expect("waiting for a killed child");
                }
                Err(e) => panic!("waiting for `{}`: {e}", self.what),
            }
        };
        // A grandchild could keep a pipe open after the child is gone: do not wait on it forever.
        let readers_deadline = Instant::now() + Duration::from_secs(5);
        for r in std::mem::take(&mut self.readers) {
            while !r.is_finished() && Instant::now() < readers_deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        Out {
            what: self.what.clone(),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).to_string(),
            stderr: String::from_utf8_lossy(&self.stderr.lock().unwrap()).to_string(),
            timed_out,
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) of our own child's process group.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }
}

/// Run `cmd` to its end (stdin /dev/null), killing it after `timeout`.
pub fn run(cmd: Command, timeout: Duration) -> Out {
    Bg::spawn(cmd, None).wait(timeout)
}

/// Run a program with arguments, killing it after `timeout`.
pub fn sh(program: &str, args: &[&str], timeout: Duration) -> Out {
    let mut c = Command::new(program);
    c.args(args);
    run(c, timeout)
}

/// Run a program that must succeed (within 20 s); its stdout.
pub fn must(program: &str, args: &[&str]) -> String {
    sh(program, args, Duration::from_secs(20))
        .expect_ok()
        .stdout
}

/// `tcplab ARGS...`, nothing else on the command line.
pub fn tcplab(args: &[&str]) -> Out {
    let mut c = Command::new(TCPLAB);
    c.args(args);
    run(c, Duration::from_secs(60))
}

// ------------------------------------------------------------------ labs

/// The course lab's nodes (the built-in topology).
pub const NODES: [&str; 9] = [
    "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi", "slip",
];

/// A lab name unique to this test process: `t<tag><pid in hex>` (at most 12 characters).
pub fn lab_name(tag: &str) -> String {
    let name = format!("t{tag}{:x}", std::process::id() & 0xffff);
    assert!(
        name.len() <= 12
            && tag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "bad lab tag {tag}"
    );
    name
}

/// The runtime a lab is built with: what the tests of tests/lab_netns.rs and tests/lab_docker.rs
/// differ in, so that the scenarios of [`scenarios`] serve both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `--runtime netns --switch linux` (TCPLAB_TEST_SWITCH=ovs: `--switch ovs`).
    Netns,
    /// `--runtime docker`: containers on the topology's own switches (the built-in lab's two LANs
    /// are Open vSwitch bridges).
    Docker,
}

impl Runtime {
    /// Its name on tcplab's command line and in `status --json`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Netns => "netns",
            Runtime::Docker => "docker",
        }
    }

    /// What messages call a lab of this runtime.
    pub fn lab_word(self) -> &'static str {
        match self {
            Runtime::Netns => "lab",
            Runtime::Docker => "docker lab",
        }
    }

    /// How long one `up` may take (docker: the first one may build the node image).
    pub fn up_timeout(self) -> Duration {
        match self {
            Runtime::Netns => Duration::from_secs(60),
            Runtime::Docker => Duration::from_secs(240),
        }
    }

    /// The built-in course topology as lab `t<tag><pid>` on this runtime.
    pub fn lab(self, tag: &str) -> Lab {
        Lab {
            name: lab_name(tag),
            topology: None,
            runtime: self,
        }
    }

    /// The host now: the common [`Snapshot`], plus (docker) every container and every OVS
    /// bridge, port and interface.
    pub fn snapshot(self) -> Snapshot {
        match self {
            Runtime::Netns => Snapshot::take(),
            Runtime::Docker => docker::snapshot(),
        }
    }
}

/// A lab that this test owns: dropping it runs `tcplab --lab NAME down`, whatever happened.
pub struct Lab {
    /// Lab name.
    pub name: String,
    /// Topology file, if not the built-in one.
    pub topology: Option<PathBuf>,
    /// The runtime it is built with.
    pub runtime: Runtime,
}

impl Lab {
    /// The built-in course topology as lab `t<tag><pid>`, on the netns runtime.
    pub fn new(tag: &str) -> Lab {
        Runtime::Netns.lab(tag)
    }

    /// The built-in course topology as lab `t<tag><pid>`, on the docker runtime.
    pub fn docker(tag: &str) -> Lab {
        Runtime::Docker.lab(tag)
    }

    /// A topology file as lab `t<tag><pid>`, on the netns runtime.
    pub fn with_topology(tag: &str, file: &Path) -> Lab {
        Lab {
            name: lab_name(tag),
            topology: Some(file.to_path_buf()),
            runtime: Runtime::Netns,
        }
    }

    /// `tcplab --lab NAME --runtime RUNTIME [--topology FILE]`, to add a command to.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(TCPLAB);
        c.arg("--lab")
            .arg(&self.name)
            .args(["--runtime", self.runtime.name()]);
        if let Some(t) = &self.topology {
            c.arg("--topology").arg(t);
        }
        c
    }

    /// The full `up` command line: the lab's runtime (netns: on Linux bridges, or on Open
    /// vSwitch LANs with TCPLAB_TEST_SWITCH=ovs), `-q` if asked, the uplink if given.
    pub fn up_cmd(&self, quiet: bool, uplink: Option<&str>) -> Command {
        let mut c = self.cmd();
        if self.runtime == Runtime::Netns {
            let switch = std::env::var("TCPLAB_TEST_SWITCH").unwrap_or_else(|_| "linux".into());
            c.args(["--switch", &switch]);
        }
        if quiet {
            c.arg("-q");
        }
        c.arg("up").args(uplink);
        c
    }

    /// Run a tcplab command on this lab.
    pub fn tcplab(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        run(c, Duration::from_secs(60))
    }

    /// `up` (with an uplink if given), which must succeed.
    pub fn up(&self, uplink: Option<&str>) {
        let out = run(self.up_cmd(true, uplink), self.runtime.up_timeout());
        assert!(
            out.ok(),
            "{} {} did not come up: {}",
            self.runtime.lab_word(),
            self.name,
            out.describe()
        );
    }

    /// `down`, which must succeed.
    pub fn down(&self) {
        let out = self.tcplab(&["-q", "down"]);
        assert!(
            out.ok(),
            "{} {} did not go down: {}",
            self.runtime.lab_word(),
            self.name,
            out.describe()
        );
    }

    /// `tcplab exec NODE ARGS...` with a time limit.
    pub fn exec_t(&self, node: &str, args: &[&str], timeout: Duration) -> Out {
        run(self.exec_cmd(node, args), timeout)
    }

    /// `tcplab exec NODE ARGS...` (at most 30 s).
    pub fn exec(&self, node: &str, args: &[&str]) -> Out {
        self.exec_t(node, args, Duration::from_secs(30))
    }

    /// The command line of `tcplab exec NODE ARGS...`, to start in the background.
    pub fn exec_cmd(&self, node: &str, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("exec").arg(node).args(args);
        c
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.tcplab(&["status", "--json"]).expect_ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout))
    }

    /// The record file of the lab.
    pub fn state_file(&self) -> PathBuf {
        state_dir().join(format!("{}.json", self.name))
    }

    /// The record, if there is one (and it parses).
    pub fn record(&self) -> Option<Value> {
        std::fs::read_to_string(self.state_file())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    }

    /// Named namespaces of this lab that exist now (/run/netns entries).
    pub fn namespaces(&self) -> Vec<String> {
        let prefix = format!("tcplab-{}", self.name);
        netns_names()
            .into_iter()
            .filter(|n| *n == prefix || n.starts_with(&format!("{prefix}-")))
            .collect()
    }

    /// What of the lab the host shows from outside, by name and label, sorted: its namespaces,
    /// and (docker) its containers with their state and its OVS bridges.
    pub fn objects(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .namespaces()
            .into_iter()
            .map(|n| format!("netns {n}"))
            .collect();
        if self.runtime == Runtime::Docker {
            v.extend(self.docker_objects());
        }
        v.sort();
        v
    }

    /// Panic unless every node of the course lab is there: its namespace and (docker) its
    /// running container, and the lab's two OVS bridges.
    pub fn assert_whole(&self, when: &str) {
        let left = self.namespaces();
        for node in NODES {
            assert!(
                left.contains(&format!("tcplab-{}-{node}", self.name)),
                "{when}: lab {} lost node {node}: {left:?}",
                self.name
            );
        }
        if self.runtime == Runtime::Docker {
            self.assert_docker_whole(when);
        }
    }

    /// Panic unless nothing of the lab is left that its labels or names find: (docker) no
    /// container, OVS bridge, port or interface, no /run/netns entry, no record.
    pub fn assert_gone(&self, when: &str) {
        if self.runtime == Runtime::Docker {
            self.assert_docker_gone(when);
        }
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

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.tcplab(&["-q", "down"]);
        if !out.ok() {
            eprintln!(
                "cleanup of {} {} failed: {}",
                self.runtime.lab_word(),
                self.name,
                out.describe()
            );
        }
        // A refused or killed `up` can leave the lab's lock file when no record exists, or the
        // half-written record `<lab>.json.tmp` of a kill between its write and its rename
        // (tcplab bugs the tests report); do not leave them behind on the machine.
        if !self.state_file().exists() {
            for leftover in ["lock", "json.tmp"] {
                let _ = std::fs::remove_file(state_dir().join(format!("{}.{leftover}", self.name)));
            }
            let _ = std::fs::remove_dir(state_dir());
        }
    }
}

/// Names of the host's named network namespaces.
pub fn netns_names() -> Vec<String> {
    must("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Each node of a `status --json` with its IPv4 addresses (without prefix length).
pub fn node_addresses(status: &Value) -> Vec<(String, Vec<String>)> {
    let nodes = status["nodes"].as_array().expect("status has nodes[]");
    nodes
        .iter()
        .map(|n| {
            let name = n["name"].as_str().expect("node name").to_string();
            let addrs = n["interfaces"]
                .as_array()
                .expect("node has interfaces[]")
                .iter()
                .flat_map(|i| i["addresses"].as_array().cloned().unwrap_or_default())
                .map(|a| {
                    a.as_str()
                        .expect("address is a string")
                        .split('/')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect();
            (name, addrs)
        })
        .collect()
}

/// The MAC of `node`'s interface `ifname` in a `status --json`.
pub fn mac_of(status: &Value, node: &str, ifname: &str) -> String {
    status["nodes"]
        .as_array()
        .expect("nodes[]")
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("no node {node} in status"))["interfaces"]
        .as_array()
        .expect("interfaces[]")
        .iter()
        .find(|i| i["name"] == ifname)
        .unwrap_or_else(|| panic!("no interface {node}:{ifname} in status"))["mac"]
        .as_str()
        .expect("mac is a string")
        .to_lowercase()
}

/// From every node, one `ping -c1 -W2` to every address of every other node and to each of
/// `extra`; the failures (none: an empty list). The nodes ping in parallel.
pub fn mesh_failures(lab: &Lab, extra: &[&str]) -> Vec<String> {
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
    let pings = nodes.len() * (total + extra.len()) - total;
    eprintln!(
        "lab {}: {pings} pings from {} nodes to {total} addresses and {:?}",
        lab.name,
        nodes.len(),
        extra
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
                    let mut failed = Vec::new();
                    for t in &targets {
                        let out = lab.exec_t(
                            from,
                            &["ping", "-n", "-c1", "-W2", t],
                            Duration::from_secs(10),
                        );
                        if !out.ok() {
                            failed.push(format!("{from} -> {t}: {}", out.describe()));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("ping thread"))
            .collect()
    })
}

/// Hop addresses of a `traceroute -n` output ("*" for a hop that did not answer).
pub fn traceroute_hops(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let n = it.next()?;
            n.parse::<u32>().ok()?;
            Some(it.next().unwrap_or("*").to_string())
        })
        .collect()
}

// ------------------------------------------------------------------ temp files

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory for test `tag`.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tcplab-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        TempDir(p)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// sha256 of a file (with `sha256sum`).
pub fn sha256(path: &Path) -> String {
    let out = must("sha256sum", &[path.to_str().unwrap()]);
    out.split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

// ------------------------------------------------------------------ host snapshots

/// What a lab may leave on the host, section by section, each a sorted list of lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// section -> lines
    pub sections: BTreeMap<&'static str, Vec<String>>,
}

fn iptables_lines(args: &[&str]) -> Vec<String> {
    let out = sh("iptables-save", args, Duration::from_secs(20));
    assert!(
        out.ok(),
        "iptables-save is needed by the snapshot tests: {}",
        out.describe()
    );
    out.stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(strip_counters)
        .collect()
}

/// `:CHAIN POLICY [12:345]` -> `:CHAIN POLICY`, and `[n:m]` counters anywhere.
fn strip_counters(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        match after.find(']') {
            Some(end)
                if {
                    let inner = &after[..end];
                    inner.split_once(':').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && a.bytes().all(|c| c.is_ascii_digit())
                            && b.bytes().all(|c| c.is_ascii_digit())
                    })
                } =>
            {
                out.push_str(&rest[..start]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    out.push(format!("dir {}", dir.display()));
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            walk(&p, out);
        } else {
            out.push(format!("file {}", p.display()));
        }
    }
}

impl Snapshot {
    /// Read the host now.
    pub fn take() -> Snapshot {
        let mut s = BTreeMap::new();
        let links = must("ip", &["-o", "link"])
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|n| {
                n.trim_end_matches(':')
                    .split('@')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        s.insert("link", links);
        let norm = |t: String| -> Vec<String> {
            t.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|l| !l.is_empty())
                .collect()
        };
        // IPv6 link-local addresses are the kernel's (and change state, "tentative", on their
        // own): tcplab never adds an address in fe80::/10, and a link it leaves shows in "link".
        let addrs = norm(must("ip", &["-o", "addr"]))
            .into_iter()
            .filter(|l| !l.contains(" inet6 fe80:"))
            .collect();
        s.insert("addr", addrs);
        s.insert("route", norm(must("ip", &["route"])));
        s.insert("netns", netns_names());
        s.insert("iptables", iptables_lines(&[]));
        s.insert("iptables-nat", iptables_lines(&["-t", "nat"]));
        let mut files = Vec::new();
        walk(&state_dir(), &mut files);
        walk(Path::new("/etc/netns"), &mut files);
        s.insert("files", files);
        let fwd =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("reading ip_forward");
        s.insert(
            "sysctl",
            vec![format!("net.ipv4.ip_forward = {}", fwd.trim())],
        );
        for v in s.values_mut() {
            v.sort();
        }
        Snapshot { sections: s }
    }

    /// Differences from `self` (before) to `after` that concern this test: lines naming another
    /// tcplab lab than `ours` (someone else's lab on the same machine) are left out, and so are
    /// lines holding a substring listed in TCPLAB_TEST_IGNORE (comma-separated; for noise from
    /// other work on a shared machine).
    pub fn diff(&self, after: &Snapshot, ours: &[&str]) -> Vec<String> {
        let ignore: Vec<String> = std::env::var("TCPLAB_TEST_IGNORE")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let others = other_labs(&[self, after], ours);
        let foreign = |l: &str| names_other_lab(l, ours, &others);
        let foreign_files = [self, after].iter().any(|s| {
            s.sections
                .get("files")
                .is_some_and(|f| f.iter().any(|l| foreign(l)))
        });
        let mut out = Vec::new();
        for (section, before_lines) in &self.sections {
            let after_lines = after.sections.get(section).cloned().unwrap_or_default();
            for (sign, a, b) in [
                ("-", before_lines, &after_lines),
                ("+", &after_lines, before_lines),
            ] {
                let mut rest = b.clone();
                for l in a {
                    if let Some(pos) = rest.iter().position(|x| x == l) {
                        rest.remove(pos);
                        continue;
                    }
                    if foreign(l) || ignore.iter().any(|i| l.contains(i.as_str())) {
                        continue;
                    }
                    // Open vSwitch's own datapath devices come and go with any lab's OVS bridges
                    // (the bridges themselves are compared by name like every other link).
                    if *section == "link" && (l == "ovs-netdev" || l == "ovs-system") {
                        continue;
                    }
                    // Whether tcplab's own directories exist depends on other labs too.
                    let state_dir_line = format!("dir {}", state_dir().display());
                    if *section == "files"
                        && foreign_files
                        && (*l == state_dir_line || l == "dir /etc/netns")
                    {
                        continue;
                    }
                    out.push(format!("{sign} {section}: {l}"));
                }
            }
        }
        out
    }

    /// Panic, listing every difference, unless the host is as it was.
    pub fn assert_same(&self, after: &Snapshot, ours: &[&str], when: &str) {
        let d = self.diff(after, ours);
        assert!(
            d.is_empty(),
            "{when}: the host is not as it was before (- gone, + new):\n{}",
            d.join("\n")
        );
    }
}

/// Labs other than `ours` that the snapshots show (by their namespaces, chains, records).
fn other_labs(snaps: &[&Snapshot], ours: &[&str]) -> Vec<String> {
    let mut labs = std::collections::BTreeSet::new();
    for s in snaps {
        for l in s.sections.values().flatten() {
            labs.extend(
                lab_tokens(l)
                    .into_iter()
                    .filter(|t| !ours.contains(&t.as_str())),
            );
        }
    }
    labs.into_iter().collect()
}

/// How tcplab names a lab's host-side OVS ports (`tl<hash>p<n>`; see `ovs_port_name` in
/// src/plan/mod.rs).
fn lab_hash(lab: &str) -> u16 {
    tcplab::util::short_hash(lab)
}

/// Whether a snapshot line belongs to a lab other than ours: it names another lab, or a
/// host-side interface of one of `others` (its OVS ports and bridges).
fn names_other_lab(line: &str, ours: &[&str], others: &[String]) -> bool {
    if foreign(line, ours) {
        return true;
    }
    others.iter().any(|o| {
        let port = format!("tl{:04x}", lab_hash(o));
        let bridge = format!("{o}-");
        let uplink_line = scenarios::uplink_host_link(o);
        line.split(|c: char| c.is_whitespace() || c == ':' || c == '@')
            .any(|w| w.starts_with(&port) || w.starts_with(&bridge) || w == uplink_line)
    })
}

/// Lab names a line mentions (after `tcplab-`, `TCPLAB-`, `tcplab:` or the state directory).
fn lab_tokens(line: &str) -> Vec<String> {
    let state = format!("{}/", state_dir().display());
    let mut out = Vec::new();
    for marker in ["tcplab-", "TCPLAB-", "tcplab:", state.as_str()] {
        let mut rest = line;
        while let Some(i) = rest.find(marker) {
            let after = &rest[i + marker.len()..];
            let token: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                .collect();
            if !token.is_empty() {
                out.push(token);
            }
            rest = after;
        }
    }
    out
}

/// Whether a snapshot line names a tcplab lab other than `ours`.
fn foreign(line: &str, ours: &[&str]) -> bool {
    lab_tokens(line).iter().any(|t| !ours.contains(&t.as_str()))
}

// ------------------------------------------------------------------ the fake internet

/// The fake internet's range: nothing else on the host may cover it.
pub const INET_NET: (u32, u8) = (0xC633_6400, 24); // 198.51.100.0/24
/// The uplink's (host end's) address.
pub const INET_HOST: &str = "198.51.100.1";
/// The fake internet's address.
pub const INET_FAR: &str = "198.51.100.2";

fn parse_v4(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a.0 & mask == b.0 & mask
}

/// Host addresses and routes (other than the default) that cover 198.51.100.0/24 now.
pub fn inet_range_users() -> Vec<String> {
    let mut found = Vec::new();
    let routes: Value = serde_json::from_str(&must("ip", &["-j", "route"])).expect("ip -j route");
    for r in routes.as_array().expect("route list") {
        let dst = r["dst"].as_str().unwrap_or("");
        if dst == "default" {
            continue;
        }
        let (addr, len) = dst
            .split_once('/')
            .map_or((dst, 32), |(a, l)| (a, l.parse().unwrap_or(32)));
        if parse_v4(addr).is_some_and(|a| overlaps((a, len), INET_NET)) {
            found.push(format!("route {r}"));
        }
    }
    let addrs: Value = serde_json::from_str(&must("ip", &["-j", "addr"])).expect("ip -j addr");
    for l in addrs.as_array().expect("link list") {
        for a in l["addr_info"].as_array().cloned().unwrap_or_default() {
            if a["family"] != "inet" {
                continue;
            }
            let (Some(ip), Some(len)) = (
                a["local"].as_str().and_then(parse_v4),
                a["prefixlen"].as_u64(),
            ) else {
                continue;
            };
            if overlaps((ip, len as u8), INET_NET) {
                found.push(format!("address {} on {}", a["local"], l["ifname"]));
            }
        }
    }
    found
}

/// A namespace `tltest-inet-<pid>` holding 198.51.100.2/24, joined to the host by a veth whose
/// host end `tlup<pid%10000>` (198.51.100.1/24) is the lab's uplink. Removed on drop.
pub struct FakeInternet {
    /// The namespace.
    pub netns: String,
    /// The host end: the uplink to give `tcplab up`.
    pub uplink: String,
    /// The far end, inside the namespace.
    pub far_if: String,
}

impl FakeInternet {
    /// Make it, after checking that nothing on the host uses 198.51.100.0/24 already.
    pub fn create() -> FakeInternet {
        let users = inet_range_users();
        assert!(
            users.is_empty(),
            "the fake internet needs 198.51.100.0/24 all to itself, but the host already uses it: {}\n\
             (remove whatever holds it, or run the tests on a machine where the range is free)",
            users.join("; ")
        );
        let pid = std::process::id();
        let fi = FakeInternet {
            netns: format!("tltest-inet-{pid}"),
            uplink: format!("tlup{}", pid % 10000),
            far_if: "inet0".into(),
        };
        assert!(
            !netns_names().contains(&fi.netns),
            "namespace {} exists already",
            fi.netns
        );
        must("ip", &["netns", "add", &fi.netns]);
        // From here on the drop guard removes what exists.
        let (ns, up, far) = (fi.netns.as_str(), fi.uplink.as_str(), fi.far_if.as_str());
        let inside = |args: &[&str]| {
            let mut a = vec!["netns", "exec", ns];
            a.extend_from_slice(args);
            must("ip", &a);
        };
        // No IPv6 chatter either way: only what the test sends crosses the line.
        inside(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        must(
            "ip",
            &[
                "link", "add", up, "type", "veth", "peer", "name", far, "netns", ns,
            ],
        );
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{up}/disable_ipv6"), "1");
        must(
            "ip",
            &["addr", "add", &format!("{INET_HOST}/24"), "dev", up],
        );
        must("ip", &["link", "set", up, "up"]);
        inside(&["ip", "addr", "add", &format!("{INET_FAR}/24"), "dev", far]);
        inside(&["ip", "link", "set", far, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        fi
    }

    /// A command run inside the fake internet.
    pub fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, program]).args(args);
        c
    }
}

impl Drop for FakeInternet {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = sh(
            "ip",
            &["link", "del", &self.uplink],
            Duration::from_secs(10),
        );
        let out = sh(
            "ip",
            &["netns", "del", &self.netns],
            Duration::from_secs(10),
        );
        if !out.ok() {
            eprintln!("cleanup of the fake internet failed: {}", out.describe());
        }
    }
}

// ------------------------------------------------------------------ generated topologies

/// A topology of `nodes` hosts spread over `lans` Linux-bridge LANs (10.<lan>.0.0/16), named
/// `name`: big enough that `up` takes a while.
pub fn big_topology(name: &str, nodes: usize, lans: usize) -> String {
    let mut t =
        format!("name = \"{name}\"\ndescription = \"generated by the integration tests\"\n\n");
    for i in 0..nodes {
        t += &format!("[nodes.h{i}]\n");
    }
    for lan in 0..lans {
        t += &format!(
            "\n[networks.lan{lan}]\nkind = \"linux\"\nsubnet = \"10.{lan}.0.0/16\"\nmembers = [\n"
        );
        for i in (0..nodes).filter(|i| i % lans == lan) {
            t += &format!(
                "  {{ node = \"h{i}\", interface = \"eth1\", address = \"10.{lan}.{}.{}\" }},\n",
                i / 250,
                i % 250 + 1
            );
        }
        t += "]\n";
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_stripped() {
        assert_eq!(strip_counters(":INPUT ACCEPT [12:3456]"), ":INPUT ACCEPT");
        assert_eq!(strip_counters("[1:2] -A FORWARD -j X"), "-A FORWARD -j X");
        assert_eq!(
            strip_counters("-A X -m comment --comment \"[a:b]\""),
            "-A X -m comment --comment \"[a:b]\""
        );
    }

    #[test]
    fn foreign_lines() {
        assert!(foreign("tcplab-captest-1-a", &["tx1"]));
        assert!(!foreign("tcplab-tx1-aix", &["tx1"]));
        assert!(foreign("file /run/tcplab/tcpip.json", &["tx1"]));
        assert!(!foreign("file /run/tcplab/tx1.lock", &["tx1"]));
        assert!(!foreign("default via 192.0.2.1 dev eth0", &["tx1"]));
        assert!(foreign(
            "-A FORWARD -m comment --comment \"tcplab:other\" -j TCPLAB-other",
            &["tx1"]
        ));
    }

    #[test]
    fn other_labs_ovs_ports() {
        let others = vec!["tcpip".to_string()];
        let port = format!("tl{:04x}p3", lab_hash("tcpip"));
        assert!(names_other_lab(
            &format!("308: {port} inet 10.0.0.1/24"),
            &["tx1"],
            &others
        ));
        assert!(names_other_lab("tcpip-net1", &["tx1"], &others));
        assert!(!names_other_lab("tx1-net1", &["tx1"], &others));
        assert!(!names_other_lab("gatewayout", &["tx1"], &others));
    }

    #[test]
    fn overlap() {
        assert!(overlaps((0xC633_6400, 24), INET_NET));
        assert!(overlaps((0xC633_6401, 32), INET_NET));
        assert!(overlaps((0xC600_0000, 8), INET_NET));
        assert!(!overlaps((0xC000_0200, 24), INET_NET));
    }

    #[test]
    fn hops() {
        let t = "traceroute to aix (140.252.1.92), 30 hops max\n 1  140.252.13.66  0.05 ms\n 2  * * *\n";
        assert_eq!(traceroute_hops(t), vec!["140.252.13.66", "*"]);
    }
}
