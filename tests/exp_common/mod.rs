//! Helpers of the experiment and capture integration tests (tests/experiments.rs,
//! tests/capture.rs), on top of tests/common: the built-in experiments (the table build.rs
//! makes of experiments/*.toml, read here with the toml crate, not with tcplab's parser),
//! running one on a lab and checking its printed results, its report and its files, running
//! several side by side, and reading pcaps with tshark and SVGs with python3.

#![allow(dead_code)]

use crate::common::{Lab, Out, TempDir, run, sh};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The names of the built-in experiments (one per file of experiments/), sorted.
pub fn registered() -> Vec<&'static str> {
    tcplab::experiment::BUILTIN.iter().map(|e| e.name).collect()
}

/// The course topology, as shipped.
pub const COURSE_TOPOLOGY: &str = include_str!("../../topologies/tcpip-illustrated.toml");

/// The course lab's nine hosts.
pub const HOSTS: [&str; 9] = [
    "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi", "slip",
];

/// What the tests need to know of an experiment file.
#[derive(Debug, Clone)]
pub struct ExpInfo {
    /// Its name (the `name` field).
    pub name: String,
    /// Its chapter.
    pub chapter: String,
    /// Its checks' descriptions, in order.
    pub checks: Vec<String>,
    /// Its captures' names (a capture step's `name`, else its node).
    pub captures: Vec<String>,
    /// Its broken variants, in order.
    pub broken: Vec<BrokenInfo>,
    /// Its lab is NATed into a fake internet (`needs = "fake-internet"`).
    pub fake_internet: bool,
    /// The built-in topology it runs on, if not the course's (`topology = "ovs-lab"`).
    pub topology: Option<String>,
}

/// Held while a lab with a fake internet is up: the fake internet takes 198.51.100.0/24 on the
/// host, so one such lab at a time (the experiments run in parallel).
static FAKE_INTERNET: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held while a lab of a built-in topology other than the course's is up: the ovs-lab puts
/// its underlay addresses (10.251.1.1, 10.251.2.1) on the host, so one such lab at a time.
static BUILT_IN_TOPOLOGY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What keeps other tests' labs out of the way of a lab while it is up (drop it after the lab).
pub struct LabGuards {
    _topology: Option<std::sync::MutexGuard<'static, ()>>,
    _fake_internet: Option<std::sync::MutexGuard<'static, ()>>,
}

/// Lab `t<tag><pid>` on `runtime` as experiment `exp` runs on it: of the experiment's built-in
/// topology (`--topology NAME`) if it names one, else of the course's.
pub fn lab_for(exp: &ExpInfo, tag: &str, runtime: crate::common::Runtime) -> Lab {
    let mut lab = runtime.lab(tag);
    lab.topology = exp.topology.as_ref().map(PathBuf::from);
    lab
}

/// Whether `lab` is of a built-in topology named on its command line (`--topology ovs-lab`),
/// which says its own switch kinds: no `--switch` for it.
fn of_named_topology(lab: &Lab) -> bool {
    lab.topology
        .as_ref()
        .and_then(|t| t.to_str())
        .is_some_and(|t| !Path::new(t).exists() && tcplab::topology::builtin_text(t).is_some())
}

/// Bring `lab` (from [`lab_for`]) up as experiment `exp` needs it, one lab of a named
/// built-in topology and one with a fake internet at a time; the guards must outlive the lab.
fn up_for(exp: &ExpInfo, lab: &Lab) -> LabGuards {
    let lock = |m: &'static std::sync::Mutex<()>| m.lock().unwrap_or_else(|e| e.into_inner());
    let guards = LabGuards {
        _topology: exp.topology.as_ref().map(|_| lock(&BUILT_IN_TOPOLOGY)),
        _fake_internet: exp.fake_internet.then(|| lock(&FAKE_INTERNET)),
    };
    let mut c = if of_named_topology(lab) {
        let mut c = lab.cmd();
        c.args(["-q", "up"]);
        c
    } else {
        lab.up_cmd(true, None)
    };
    if exp.fake_internet {
        c.arg("--fake-internet");
    }
    let out = run(c, lab.runtime.up_timeout());
    assert!(
        out.ok(),
        "lab {} did not come up for {}: {}",
        lab.name,
        exp.name,
        out.describe()
    );
    guards
}

/// A broken variant of an experiment: the checks that must fail and those that must pass.
#[derive(Debug, Clone)]
pub struct BrokenInfo {
    /// What is broken.
    pub description: String,
    /// Checks that must fail.
    pub fails: Vec<String>,
    /// Checks that must still pass.
    pub passes: Vec<String>,
}

/// Parse built-in experiment `name`.
pub fn experiment(name: &str) -> ExpInfo {
    let text = tcplab::experiment::BUILTIN
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.text)
        .unwrap_or_else(|| {
            panic!(
                "no built-in experiment {name} (experiments: {:?})",
                registered()
            )
        });
    let t: toml::Table =
        toml::from_str(text).unwrap_or_else(|e| panic!("experiments/{name}.toml is not TOML: {e}"));
    let s = |v: &toml::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let root = toml::Value::Table(t.clone());
    let list = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    ExpInfo {
        name: s(&root, "name").expect("experiment has a name"),
        chapter: s(&root, "chapter").expect("experiment has a chapter"),
        checks: list("checks")
            .iter()
            .map(|c| s(c, "description").expect("a check has a description"))
            .collect(),
        captures: list("steps")
            .iter()
            .filter(|st| s(st, "action").as_deref() == Some("capture"))
            .map(|st| {
                s(st, "name")
                    .or_else(|| s(st, "node"))
                    .expect("a capture step has a node")
            })
            .collect(),
        broken: list("broken")
            .iter()
            .map(|b| {
                let strings = |k: &str| -> Vec<String> {
                    b.get(k)
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                BrokenInfo {
                    description: s(b, "description").expect("a broken variant has a description"),
                    fails: strings("fails"),
                    passes: strings("passes"),
                }
            })
            .collect(),
        fake_internet: s(&root, "needs").as_deref() == Some("fake-internet"),
        topology: s(&root, "topology"),
    }
}

/// The course topology with `from` replaced by `to` (which must be there, once).
pub fn course_topology_with(edits: &[(&str, &str)]) -> String {
    let mut t = COURSE_TOPOLOGY.to_string();
    for (from, to) in edits {
        assert_eq!(
            t.matches(from).count(),
            1,
            "the course topology should hold `{from}` exactly once"
        );
        t = t.replacen(from, to, 1);
    }
    t
}

/// The course topology without netb's `proxy_arp = [...]` entries.
pub fn course_topology_without_proxy_arp() -> String {
    let t = COURSE_TOPOLOGY;
    let start = t
        .find("proxy_arp = [")
        .expect("the course topology has netb's proxy_arp entries");
    let end = start
        + t[start..]
            .find("\n]\n")
            .expect("proxy_arp = [ ... ] ends with a line `]`")
        + 3;
    let out = format!("{}{}", &t[..start], &t[end..]);
    assert!(
        !out.contains("proxy_arp"),
        "only one proxy_arp table in the course topology"
    );
    let netb = t
        .find("[nodes.netb]")
        .expect("the course topology has netb");
    let next = netb + 1 + t[netb + 1..].find("[nodes.").expect("a node after netb");
    assert!(
        netb < start && start < next,
        "the proxy_arp entries are netb's"
    );
    out
}

/// `tcplab --lab X --runtime netns [--topology F] [--switch S] experiment run NAME --out DIR`.
/// The switch (Linux bridges unless TCPLAB_TEST_SWITCH says ovs) matters when the run brings
/// the lab up itself.
pub fn run_experiment(lab: &Lab, name: &str, out: &Path) -> Out {
    run_experiment_args(lab, name, out, &[])
}

/// `experiment run NAME --out DIR ARGS...` (e.g. `--broken 1`) on `lab`.
pub fn run_experiment_args(lab: &Lab, name: &str, out: &Path, args: &[&str]) -> Out {
    let mut c = lab.cmd();
    if lab.runtime == crate::common::Runtime::Netns && !of_named_topology(lab) {
        let switch = std::env::var("TCPLAB_TEST_SWITCH").unwrap_or_else(|_| "linux".into());
        c.args(["--switch", &switch]);
    }
    c.args(["experiment", "run", name, "--out"])
        .arg(out)
        .args(args);
    run(c, Duration::from_secs(240))
}

/// `N passed, M failed` from an experiment's output (the last such line).
pub fn summary(stdout: &str) -> Option<(usize, usize)> {
    let re = Regex::new(r"(?m)^(\d+) passed, (\d+) failed\s*$").unwrap();
    re.captures_iter(stdout)
        .last()
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
}

/// The `PASS <description>` / `FAIL <description>` lines, as (passed, description, the line after).
pub fn results(stdout: &str) -> Vec<(bool, String, String)> {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let (passed, rest) = if let Some(r) = l.strip_prefix("PASS ") {
            (true, r)
        } else if let Some(r) = l.strip_prefix("FAIL ") {
            (false, r)
        } else {
            continue;
        };
        let detail = lines
            .get(i + 1)
            .map(|d| d.trim().to_string())
            .unwrap_or_default();
        out.push((passed, rest.trim().to_string(), detail));
    }
    out
}

/// Whether `file` is well-formed XML (python3's minidom parses it); the parser's complaint if not.
pub fn xml_error(file: &Path) -> Option<String> {
    let f = file.to_str().expect("utf-8 path");
    let out = sh(
        "python3",
        &[
            "-c",
            "import sys,xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])",
            f,
        ],
        Duration::from_secs(30),
    );
    (!out.ok()).then(|| out.describe())
}

/// The text nodes of an XML file (python3's minidom), one a line.
pub fn svg_text(file: &Path) -> String {
    let script = "import sys,xml.dom.minidom\n\
                  def walk(n):\n    \
                      if n.nodeType == n.TEXT_NODE: print(n.data)\n    \
                      for c in n.childNodes: walk(c)\n\
                  walk(xml.dom.minidom.parse(sys.argv[1]))";
    sh(
        "python3",
        &["-c", script, file.to_str().expect("utf-8 path")],
        Duration::from_secs(30),
    )
    .expect_ok()
    .stdout
}

/// What a capture file starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// classic pcap (microsecond or nanosecond, either byte order)
    Pcap,
    /// pcapng (a section header block)
    Pcapng,
    /// neither
    Unknown,
}

/// The format of a capture file's first bytes.
pub fn capture_format(bytes: &[u8]) -> CaptureFormat {
    if bytes.len() < 4 {
        return CaptureFormat::Unknown;
    }
    let m = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let be = u32::from_be_bytes(m);
    let le = u32::from_le_bytes(m);
    if [be, le]
        .iter()
        .any(|x| *x == 0xa1b2_c3d4 || *x == 0xa1b2_3c4d)
    {
        CaptureFormat::Pcap
    } else if be == 0x0a0d_0d0a {
        CaptureFormat::Pcapng
    } else {
        CaptureFormat::Unknown
    }
}

/// `tshark -n -r FILE -T fields -e F1 -e F2 ...`: one row per packet, or tshark's complaint
/// (non-zero exit, or an error line such as "appears to have been cut short").
pub fn tshark_fields(file: &Path, fields: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let mut args: Vec<String> = vec![
        "-n".into(),
        "-r".into(),
        file.display().to_string(),
        "-T".into(),
        "fields".into(),
    ];
    for f in fields {
        args.push("-e".into());
        args.push(f.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sh("tshark", &args, Duration::from_secs(60));
    // tshark's own errors start with "tshark:" (its warning about running as root does not).
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("tshark:"))
        .collect();
    if !out.ok() || !errors.is_empty() {
        return Err(format!(
            "tshark cannot read {}: {}",
            file.display(),
            out.describe()
        ));
    }
    Ok(out
        .stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

/// How many packets tshark reads from `file` (it must read it without error).
pub fn tshark_count(file: &Path) -> usize {
    tshark_fields(file, &["frame.number"])
        .unwrap_or_else(|e| panic!("{e}"))
        .len()
}

/// Files of a directory, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn ext(p: &Path) -> &str {
    p.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Run `each(i, names[i])` for every name, at most `width` at a time, each in a thread named
/// after its name (so that a panic says which one); the names whose run panicked, in order.
pub fn each_in_parallel(
    names: &[&str],
    width: usize,
    each: impl Fn(usize, &str) + Sync,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..width.clamp(1, names.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&name) = names.get(i) else { break };
                    let ok = std::thread::scope(|one| {
                        std::thread::Builder::new()
                            .name(name.to_string())
                            .spawn_scoped(one, || each(i, name))
                            .expect("spawning a thread")
                            .join()
                            .is_ok()
                    });
                    if !ok {
                        failed
                            .lock()
                            .expect("no panic holds the lock")
                            .push(name.to_string());
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().expect("no panic holds the lock");
    failed.sort_by_key(|n| names.iter().position(|x| x == n));
    failed
}

/// Run experiment `name` on a fresh course lab `t<tag><pid>` (brought up first, removed at the
/// end) and check everything a green run must show: exit code 0, `N passed, 0 failed` with N the
/// experiment's number of checks, a PASS line for every check, a report.md naming every check,
/// a pcap (one interface) or pcapng (several) and an SVG per capture, every SVG well-formed XML,
/// every capture file read by tshark with as many packets as the report says.
pub fn assert_green(tag: &str, name: &str, runtime: crate::common::Runtime) {
    let exp = experiment(name);
    assert_eq!(exp.name, name, "experiments/{name}.toml names itself");
    assert!(!exp.checks.is_empty(), "{name} has checks");
    // The guards are declared first: they are dropped after the lab went down.
    let _guards;
    let lab = lab_for(&exp, tag, runtime);
    _guards = up_for(&exp, &lab);
    let dir = TempDir::new(&format!("{tag}-out"));
    let out_dir = dir.join(name);
    let t0 = std::time::Instant::now();
    let out = run_experiment(&lab, name, &out_dir);
    eprintln!(
        "experiment {name} on lab {}: exit {} in {:.1} s",
        lab.name,
        out.code,
        t0.elapsed().as_secs_f64()
    );
    let what = out.describe();
    assert_eq!(
        out.code,
        0,
        "experiment {name} is not green on the {} runtime: {what}",
        runtime.name()
    );
    assert_all_passed(&exp, &out.stdout, &what);
    let report_path = out_dir.join("report.md");
    let report = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|e| panic!("{}: {e}; {what}", report_path.display()));
    assert_report_and_files(&exp, &out_dir, &report);
}

/// The output of a green run of `exp`: `N passed, 0 failed` with N its number of checks, and a
/// PASS line for every check. `what` describes the run for messages.
fn assert_all_passed(exp: &ExpInfo, stdout: &str, what: &str) {
    let name = &exp.name;
    let (passed, failed) =
        summary(stdout).unwrap_or_else(|| panic!("no `N passed, M failed` line: {what}"));
    assert!(
        passed >= 1 && failed == 0,
        "summary says {passed} passed, {failed} failed: {what}"
    );
    assert_eq!(
        passed,
        exp.checks.len(),
        "{name} has {} checks: {what}",
        exp.checks.len()
    );
    let res = results(stdout);
    assert_eq!(
        res.len(),
        exp.checks.len(),
        "one PASS/FAIL line per check: {what}"
    );
    for c in &exp.checks {
        assert!(
            res.iter().any(|(p, d, _)| *p && d == c),
            "no PASS line for check `{c}`: {what}"
        );
    }
}

/// What a run of `exp` leaves in `out_dir`: a report naming every check, a pcap or pcapng and
/// an SVG per capture, every SVG well-formed XML, every capture file read by tshark with as
/// many packets as `report` says.
fn assert_report_and_files(exp: &ExpInfo, out_dir: &Path, report: &str) {
    for c in &exp.checks {
        assert!(
            report.contains(c.as_str()),
            "report.md does not mention check `{c}`:\n{report}"
        );
    }
    let files = files_in(out_dir);
    for cap in &exp.captures {
        let pcap = out_dir.join(format!("{cap}.pcap"));
        let pcapng = out_dir.join(format!("{cap}.pcapng"));
        assert!(
            pcap.exists() || pcapng.exists(),
            "no {cap}.pcap or {cap}.pcapng in {}: {files:?}",
            out_dir.display()
        );
        assert!(
            out_dir.join(format!("{cap}.svg")).exists(),
            "no {cap}.svg in {}: {files:?}",
            out_dir.display()
        );
    }
    for f in &files {
        match ext(f) {
            "svg" => assert_svg(f),
            "pcap" | "pcapng" => assert_capture_file(f, report),
            _ => {}
        }
    }
}

/// `f` is well-formed XML.
fn assert_svg(f: &Path) {
    if let Some(e) = xml_error(f) {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        panic!(
            "{} is not well-formed XML: {e}\n--- the file:\n{text}",
            f.display()
        );
    }
}

/// Capture file `f` is what its extension says, tshark reads it, and it holds as many packets
/// as `report` says.
fn assert_capture_file(f: &Path, report: &str) {
    let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    let want = if ext(f) == "pcap" {
        CaptureFormat::Pcap
    } else {
        CaptureFormat::Pcapng
    };
    assert_eq!(
        capture_format(&bytes),
        want,
        "{} does not start as a {} file does",
        f.display(),
        ext(f)
    );
    let n = tshark_count(f);
    assert!(
        n >= 1,
        "{} holds no packet (the checks on it passed)",
        f.display()
    );
    // The report's heading of the capture gives its packet count: the file must hold as many.
    let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let re = Regex::new(&format!(
        r"Capture `{}`[^\n(]*\((\d+) packets",
        regex::escape(stem)
    ))
    .unwrap();
    if let Some(c) = re.captures(report) {
        let said: usize = c[1].parse().unwrap();
        assert_eq!(
            n,
            said,
            "report.md says capture {stem} has {said} packets, tshark reads {n} in {}",
            f.display()
        );
    }
}

/// Experiment `name` on a fresh lab broken as its variant `k` (from 1) says goes red as the
/// variant says: exit 0, "red as expected", a FAIL line for each check of `fails` and a PASS
/// line for each of `passes`.
pub fn assert_red(tag: &str, name: &str, k: usize, runtime: crate::common::Runtime) {
    let exp = experiment(name);
    let b = &exp.broken[k - 1];
    let _guards;
    let lab = lab_for(&exp, tag, runtime);
    _guards = up_for(&exp, &lab);
    let dir = TempDir::new(&format!("{tag}-out"));
    let t0 = std::time::Instant::now();
    let out = run_experiment_args(&lab, name, &dir.join(name), &["--broken", &k.to_string()]);
    eprintln!(
        "experiment {name} broken {k} on lab {}: exit {} in {:.1} s",
        lab.name,
        out.code,
        t0.elapsed().as_secs_f64()
    );
    let what = format!(
        "{name}, broken lab {k} ({}): {}",
        b.description,
        out.describe()
    );
    assert_eq!(out.code, 0, "not red as expected: {what}");
    assert!(out.stdout.contains("red as expected"), "{what}");
    let res = results(&out.stdout);
    for f in &b.fails {
        assert!(
            res.iter().any(|(p, d, _)| !*p && d == f),
            "no FAIL line for check `{f}`: {what}"
        );
    }
    for p in &b.passes {
        assert!(
            res.iter().any(|(ok, d, _)| *ok && d == p),
            "no PASS line for check `{p}`: {what}"
        );
    }
}
