//! Running an experiment on a lab: steps in order, captures in the background, then checks,
//! then the report (Markdown, pcaps, one SVG time-line per capture).

use super::{Check, Experiment, Step};
use crate::capture::decode::{Packet, decode};
use crate::capture::{self, CaptureSpec, Sink};
use crate::error::{Context, Error, Result};
use crate::lab;
use crate::net::Netlink;
use crate::plan::Plan;
use crate::runtime::{AnyRuntime, CmdOutput, Runtime};
use crate::sys;
use crate::topology::{Topology, resolve_ends};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Everything a run needs to know about the lab.
pub struct LabView<'a> {
    /// Lab name.
    pub lab: &'a str,
    /// Its topology.
    pub topology: &'a Topology,
    /// Its plan (routes as applied).
    pub plan: &'a Plan,
    /// How to run commands in nodes.
    pub runner: std::sync::Arc<AnyRuntime>,
    /// MAC address of every node interface: (node, interface) -> MAC.
    pub macs: HashMap<(String, String), String>,
}

/// The result of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// The check's description.
    pub description: String,
    /// Passed?
    pub passed: bool,
    /// What was seen (on failure: what was expected and what came instead).
    pub detail: String,
}

/// One capture of the run.
#[derive(Debug, Clone)]
pub struct CaptureResult {
    /// Its name.
    pub name: String,
    /// Node.
    pub node: String,
    /// pcap or pcapng file.
    pub file: PathBuf,
    /// Packets with their interface and time (ns since the epoch).
    pub packets: Vec<(String, u64, Packet)>,
    /// Dropped by the kernel.
    pub dropped: u64,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The experiment.
    pub experiment: Experiment,
    /// Check results, in order.
    pub checks: Vec<CheckResult>,
    /// Captures.
    pub captures: Vec<CaptureResult>,
    /// Commands by name, with what they ran.
    pub commands: Vec<(String, String, String, CmdOutput)>,
    /// Where everything was written.
    pub out_dir: PathBuf,
}

impl RunResult {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Replace `{node.iface.mac}` and `{node.iface.ip}` in an experiment's text with the lab's values.
pub fn expand_templates(text: &str, view: &LabView) -> Result<String> {
    let re = super::template_regex();
    let mut err = None;
    let out = re.replace_all(text, |c: &regex::Captures| {
        let (node, iface, what) = (&c[1], &c[2], &c[3]);
        let v = match what {
            "mac" => view
                .macs
                .get(&(node.to_string(), iface.to_string()))
                .cloned(),
            _ => view
                .topology
                .node(node)
                .and_then(|n| n.interface(iface))
                .and_then(|i| i.address)
                .map(|a| a.addr().to_string()),
        };
        v.unwrap_or_else(|| {
            err = Some(Error::Usage(format!(
                "experiment refers to {{{node}.{iface}.{what}}}, which this lab does not have"
            )));
            String::new()
        })
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

/// Read every node interface's MAC address.
pub async fn read_macs(lab: &str, topo: &Topology) -> Result<HashMap<(String, String), String>> {
    let rt = tokio::runtime::Handle::current();
    let mut out = HashMap::new();
    for n in &topo.nodes {
        let path = sys::netns_path(&crate::plan::node_netns(lab, &n.name));
        let rt2 = rt.clone();
        let h = sys::in_netns(&path, move || Netlink::open_here(&rt2))
            .with_context(|| format!("node {}", n.name))?;
        for l in h.links().await? {
            out.insert((n.name.clone(), l.name), l.mac);
        }
    }
    Ok(out)
}

struct RunningCapture {
    name: String,
    node: String,
    file: PathBuf,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<std::result::Result<capture::Summary, capture::CaptureError>>,
    single_iface: Option<String>,
}

fn shell(command: &str, timeout: f64) -> Vec<String> {
    // coreutils `timeout` kills a command that hangs, in a namespace or in a container.
    vec![
        "timeout".into(),
        "-s".into(),
        "KILL".into(),
        format!("{timeout}"),
        "sh".into(),
        "-c".into(),
        command.into(),
    ]
}

/// Run `exp` on the lab. Captures go to `out_dir`.
pub async fn run(
    exp: &Experiment,
    view: &LabView<'_>,
    out_dir: &Path,
    log: &dyn Fn(&str),
) -> Result<RunResult> {
    sys::create_user_dirs(out_dir)?;
    let mut captures: Vec<RunningCapture> = Vec::new();
    let mut done_captures: Vec<CaptureResult> = Vec::new();
    let mut background: Background = HashMap::new();
    let mut commands: Vec<(String, String, String, CmdOutput)> = Vec::new();
    let mut unnamed = 0;

    let mut st = RunState {
        captures: &mut captures,
        done: &mut done_captures,
        background: &mut background,
        commands: &mut commands,
        unnamed: &mut unnamed,
    };
    let result = run_steps(&exp.steps, view, out_dir, log, &mut st).await;
    // Cleanup runs whatever happened; then background commands are collected and captures stopped.
    let cleanup = run_steps(&exp.cleanup, view, out_dir, log, &mut st).await;
    for (name, (node, cmd, task)) in background.drain() {
        let out = task
            .await
            .map_err(|e| Error::Other(format!("command {name}: {e}")))??;
        commands.push((name, node, cmd, out));
    }
    stop_captures(&mut captures, &mut done_captures)?;
    result?;
    cleanup?;

    let mut checks = Vec::new();
    for c in &exp.checks {
        checks.push(check(c, view, &commands, &done_captures).await);
    }
    Ok(RunResult {
        experiment: exp.clone(),
        checks,
        captures: done_captures,
        commands,
        out_dir: out_dir.to_path_buf(),
    })
}

type Background = HashMap<String, (String, String, tokio::task::JoinHandle<Result<CmdOutput>>)>;

/// What the steps of a run build up.
struct RunState<'s> {
    captures: &'s mut Vec<RunningCapture>,
    done: &'s mut Vec<CaptureResult>,
    background: &'s mut Background,
    commands: &'s mut Vec<(String, String, String, CmdOutput)>,
    unnamed: &'s mut usize,
}

async fn run_steps(
    steps: &[Step],
    view: &LabView<'_>,
    out_dir: &Path,
    log: &dyn Fn(&str),
    st: &mut RunState<'_>,
) -> Result<()> {
    for step in steps {
        match step {
            Step::Capture {
                node,
                interfaces,
                name,
            } => {
                view.topology.require_node(view.lab, node)?;
                let name = name.clone().unwrap_or_else(|| node.clone());
                let netns = sys::netns_path(&crate::plan::node_netns(view.lab, node));
                let spec = CaptureSpec {
                    netns: Some(netns),
                    interfaces: interfaces.clone(),
                    count: None,
                    duration: None,
                    snaplen: 0,
                };
                let cap = capture::Capture::open(&spec)
                    .map_err(|e| Error::Other(format!("capture {name}: {e}")))?;
                let ifaces = cap.interfaces();
                let ext = if ifaces.len() == 1 { "pcap" } else { "pcapng" };
                let file = out_dir.join(format!("{name}.{ext}"));
                let stop = Arc::new(AtomicBool::new(false));
                let (stop2, file2) = (stop.clone(), file.clone());
                let thread = std::thread::spawn(move || {
                    cap.run(Sink::File(file2), &stop2, &mut |_, _, _| {})
                });
                log(&format!("capture {name} on {node} ({})", ifaces.join(", ")));
                let single_iface = (ifaces.len() == 1).then(|| ifaces[0].clone());
                st.captures.push(RunningCapture {
                    name,
                    node: node.clone(),
                    file,
                    stop,
                    thread,
                    single_iface,
                });
            }
            Step::Run {
                node,
                command,
                name,
                background: bg,
                timeout,
            } => {
                view.topology.require_node(view.lab, node)?;
                let name = name.clone().unwrap_or_else(|| {
                    *st.unnamed += 1;
                    format!("command{}", st.unnamed)
                });
                let argv = shell(command, timeout.unwrap_or(20.0));
                log(&format!("{node}$ {command}{}", if *bg { " &" } else { "" }));
                if *bg {
                    let runner = view.runner.clone();
                    let (netns, node2) = (crate::plan::node_netns(view.lab, node), node.clone());
                    let task = tokio::spawn(async move { runner.run(&netns, &node2, &argv).await });
                    st.background
                        .insert(name, (node.clone(), command.clone(), task));
                } else {
                    let netns = crate::plan::node_netns(view.lab, node);
                    let out = view.runner.run(&netns, node, &argv).await?;
                    st.commands.push((name, node.clone(), command.clone(), out));
                }
            }
            Step::Join { name } => {
                if let Some((node, cmd, task)) = st.background.remove(name) {
                    let out = task
                        .await
                        .map_err(|e| Error::Other(format!("command {name}: {e}")))??;
                    st.commands.push((name.clone(), node, cmd, out));
                }
            }
            Step::WaitListen {
                node,
                port,
                timeout,
            } => {
                view.topology.require_node(view.lab, node)?;
                let path = sys::netns_path(&crate::plan::node_netns(view.lab, node));
                let deadline = std::time::Instant::now()
                    + Duration::try_from_secs_f64(timeout.unwrap_or(10.0).max(0.0))
                        .unwrap_or(Duration::from_secs(10));
                loop {
                    if sys::tcp_listening(&path, *port)? {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(Error::Other(format!(
                            "nothing listens on {node} port {port} after {:.0} s",
                            timeout.unwrap_or(10.0)
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Step::Wait { seconds } => {
                tokio::time::sleep(
                    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::ZERO),
                )
                .await
            }
            Step::Link { state, ends } => {
                let up = state == "up";
                for (node, iface) in resolve_ends(view.topology, view.lab, ends)? {
                    log(&format!("link {node}:{iface} {state}"));
                    lab::set_link(
                        &crate::os::real::RealSystem::new(),
                        view.plan,
                        &node,
                        &iface,
                        up,
                    )
                    .await?;
                }
            }
            Step::Mtu { ends, mtu } => {
                for (node, iface) in resolve_ends(view.topology, view.lab, ends)? {
                    log(&format!("mtu {node}:{iface} {mtu}"));
                    let rt = tokio::runtime::Handle::current();
                    let path = sys::netns_path(&crate::plan::node_netns(view.lab, &node));
                    let h = sys::in_netns(&path, move || Netlink::open_here(&rt))?;
                    h.set_mtu(&iface, *mtu)
                        .await
                        .with_context(|| format!("node {node}"))?;
                }
            }
            Step::Conditions { ends, set, clear } => {
                conditions_step(view, ends, set, *clear, log).await?
            }
            Step::Stop {} => stop_captures(st.captures, st.done)?,
        }
    }
    Ok(())
}

/// A `conditions` step: the lab's record changed under its lock, as `tcplab link set` does.
async fn conditions_step(
    view: &LabView<'_>,
    ends: &[String],
    set: &std::collections::BTreeMap<String, String>,
    clear: bool,
    log: &dyn Fn(&str),
) -> Result<()> {
    let targets = resolve_ends(view.topology, view.lab, ends)?;
    let targets = targets.as_slice();
    for (node, iface) in targets {
        let what = if clear {
            "cleared".to_string()
        } else {
            format!("{set:?}")
        };
        log(&format!("conditions {node}:{iface} {what}"));
    }
    let sys = crate::os::real::RealSystem::new();
    let _lock = crate::state::LabLock::acquire(view.lab)?;
    let mut state = crate::state::LabState::load(view.lab)?
        .ok_or_else(|| Error::Usage(format!("lab '{}' is not up", view.lab)))?;
    if clear {
        for (node, iface) in targets {
            lab::clear_end(&sys, &mut state, node, iface)?;
        }
        return Ok(());
    }
    let update = Step::conditions_update(set)?;
    lab::set_conditions(&sys, &mut state, view.plan, targets, &update).await?;
    Ok(())
}

fn stop_captures(captures: &mut Vec<RunningCapture>, done: &mut Vec<CaptureResult>) -> Result<()> {
    // Let the last packets reach the rings before stopping.
    if !captures.is_empty() {
        std::thread::sleep(Duration::from_millis(150));
    }
    for c in captures.iter() {
        c.stop.store(true, Ordering::SeqCst);
    }
    for c in captures.drain(..) {
        let summary = c
            .thread
            .join()
            .map_err(|_| Error::Other(format!("capture {} panicked", c.name)))?
            .map_err(|e| Error::Other(format!("capture {}: {e}", c.name)))?;
        let records = match &c.single_iface {
            Some(i) => capture::pcap::read_file_as(&c.file, i),
            None => capture::read_file(&c.file),
        }
        .with_context(|| format!("reading {}", c.file.display()))?;
        let packets = records
            .into_iter()
            .map(|r| (r.interface, r.ts, decode(&r.data)))
            .collect();
        done.push(CaptureResult {
            name: c.name,
            node: c.node,
            file: c.file,
            packets,
            dropped: summary.dropped,
        });
    }
    Ok(())
}

fn summarize(packets: &[&(String, u64, Packet)], from: usize, max: usize) -> String {
    let shown: Vec<String> = packets
        .iter()
        .skip(from)
        .take(max)
        .map(|(i, _, p)| format!("[{i}] {p}"))
        .collect();
    if shown.is_empty() {
        "no packets".into()
    } else {
        shown.join(" | ")
    }
}

async fn check(
    c: &Check,
    view: &LabView<'_>,
    commands: &[(String, String, String, CmdOutput)],
    caps: &[CaptureResult],
) -> CheckResult {
    let mut r = CheckResult {
        description: c.description.clone(),
        passed: false,
        detail: String::new(),
    };
    if let Some(name) = &c.command {
        let Some((_, _, _, out)) = commands.iter().find(|(n, ..)| n == name) else {
            r.detail = format!("command {name} did not run");
            return r;
        };
        let mut problems = Vec::new();
        if let Some(code) = c.exit_code
            && out.code != code
        {
            problems.push(format!("exit code {} instead of {code}", out.code));
        }
        if let Some(re) = &c.output_matches {
            let text = format!("{}{}", out.stdout, out.stderr);
            if !regex::Regex::new(re)
                .map(|r| r.is_match(&text))
                .unwrap_or(false)
            {
                let first: String = text.lines().take(4).collect::<Vec<_>>().join(" | ");
                problems.push(format!("output does not match /{re}/: {first}"));
            }
        }
        r.passed = problems.is_empty();
        r.detail = if r.passed {
            format!("exit code {}", out.code)
        } else {
            problems.join("; ")
        };
        return r;
    }
    if let Some(nodes) = &c.routes_of {
        let mut missing = Vec::new();
        for node in nodes {
            match routes_missing(view, node).await {
                Ok(m) => missing.extend(m.into_iter().map(|x| format!("{node}: {x}"))),
                Err(e) => missing.push(format!("{node}: {e}")),
            }
        }
        r.passed = missing.is_empty();
        r.detail = if r.passed {
            format!("all routes present on {}", nodes.join(", "))
        } else {
            format!("missing: {}", missing.join(", "))
        };
        return r;
    }
    let Some(cap_name) = &c.capture else { return r };
    let Some(cap) = caps.iter().find(|x| &x.name == cap_name) else {
        r.detail = format!("capture {cap_name} did not run");
        return r;
    };
    let packets: Vec<&(String, u64, Packet)> = cap
        .packets
        .iter()
        .filter(|(i, _, _)| c.interface.as_ref().is_none_or(|want| want == i))
        .collect();
    if let Some(seq) = &c.sequence {
        let plain: Vec<&Packet> = packets.iter().map(|(_, _, p)| p).collect();
        match super::matcher::find_sequence(seq, &plain) {
            Ok(idx) => {
                r.passed = true;
                r.detail = idx
                    .iter()
                    .map(|&i| format!("#{} {}", i + 1, plain[i]))
                    .collect::<Vec<_>>()
                    .join(" | ");
            }
            Err((k, from)) => {
                r.detail = format!(
                    "step {} of {} not seen: expected {} after packet #{}; seen instead: {}",
                    k + 1,
                    seq.len(),
                    seq[k],
                    from,
                    summarize(&packets, from, 6)
                );
            }
        }
        return r;
    }
    if let Some(rt) = &c.retransmits {
        let (ok, detail) = retransmits(&packets, rt);
        r.passed = ok;
        r.detail = detail;
    }
    r
}

async fn routes_missing(view: &LabView<'_>, node: &str) -> Result<Vec<String>> {
    let n = view
        .plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| Error::Usage(format!("unknown node '{node}'")))?;
    let rt = tokio::runtime::Handle::current();
    let h = sys::in_netns(&sys::netns_path(&n.netns), move || Netlink::open_here(&rt))?;
    let have = h.routes().await?;
    Ok(n.routes
        .iter()
        .filter(|r| {
            !have.iter().any(|(dst, gw, oif)| {
                *dst == r.route.to && *gw == r.route.via && r.oif.is_none_or(|o| Some(o) == *oif)
            })
        })
        .map(|r| r.route.to_string())
        .collect())
}

/// One segment sent again and again with growing gaps.
fn retransmits(packets: &[&(String, u64, Packet)], rt: &super::RetransmitCheck) -> (bool, String) {
    let (Ok(src), Ok(dst)) = (
        rt.src.parse::<std::net::Ipv4Addr>(),
        rt.dst.parse::<std::net::Ipv4Addr>(),
    ) else {
        return (false, format!("bad addresses {} / {}", rt.src, rt.dst));
    };
    let mut by_seq: HashMap<u32, Vec<u64>> = HashMap::new();
    for (_, ts, p) in packets {
        let (Some(ip), Some(t)) = (&p.ipv4, &p.tcp) else {
            continue;
        };
        if ip.src == src && ip.dst == dst && t.payload_len > 0 {
            by_seq.entry(t.seq).or_default().push(*ts);
        }
    }
    let Some((seq, times)) = by_seq
        .into_iter()
        .max_by_key(|(s, v)| (v.len(), std::cmp::Reverse(*s)))
    else {
        return (
            false,
            format!("no TCP data from {src} to {dst} was captured"),
        );
    };
    let retrans = times.len() - 1;
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1].saturating_sub(w[0])) as f64 / 1e9)
        .collect();
    // The backoff: the retransmissions from the first on whose gaps keep growing (10% slack for
    // timer jitter). Later ones may restart small once the line is back or an ICMP error
    // resets the timer (RFC 6069), so only the first run counts.
    let mut backoff = gaps.len().min(1);
    while backoff < gaps.len() && gaps[backoff] >= gaps[backoff - 1] * 0.9 {
        backoff += 1;
    }
    let gap_text = gaps
        .iter()
        .map(|g| format!("{g:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    let detail = format!(
        "segment seq {seq} sent {} times ({retrans} retransmissions), gaps {gap_text} s; the first {backoff} grow",
        times.len()
    );
    if backoff < rt.min {
        return (
            false,
            format!(
                "{detail}: expected at least {} retransmissions with growing gaps",
                rt.min
            ),
        );
    }
    (true, detail)
}
