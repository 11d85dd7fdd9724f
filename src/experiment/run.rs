//! Running an experiment on a lab: steps in order, captures in the background, then checks,
//! then the report (Markdown, pcaps, one SVG time-line per capture).

use super::{Broken, Experiment, Step, host_steps};
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
    /// The broken lab it ran on (`--broken K`): K (from 1) and the break.
    pub broken: Option<(usize, Broken)>,
}

impl RunResult {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// On a broken lab: whether it went red as the break says (every check of `fails` failed,
    /// every check of `passes` passed), with the checks that did not. None on an unbroken lab.
    pub fn red_as_expected(&self) -> Option<(bool, Vec<String>)> {
        let (_, b) = self.broken.as_ref()?;
        let result = |d: &String| {
            self.checks
                .iter()
                .find(|c| &c.description == d)
                .map(|c| c.passed)
        };
        let mut wrong: Vec<String> = b
            .fails
            .iter()
            .filter(|d| result(d) != Some(false))
            .map(|d| format!("should fail but passed: {d}"))
            .collect();
        wrong.extend(
            b.passes
                .iter()
                .filter(|d| result(d) != Some(true))
                .map(|d| format!("should pass but failed: {d}")),
        );
        Some((wrong.is_empty(), wrong))
    }

    /// The run's exit code: 0 when green (or, on a broken lab, red as expected), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        let ok = match self.red_as_expected() {
            Some((ok, _)) => ok,
            None => self.passed(),
        };
        if ok { 0 } else { 1 }
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
                .map(|a| a.addr().to_string())
                .or_else(|| {
                    let f = view.plan.fake_internet.as_ref()?;
                    (node == crate::plan::FAKE_INTERNET_NODE && iface == f.far_link)
                        .then(|| f.far_address.addr().to_string())
                }),
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
    run_variant(exp, view, out_dir, log, None).await
}

/// Run `exp` on the lab, broken first as its `[[broken]]` number `broken` (from 1) says if
/// given. Captures go to `out_dir`.
pub async fn run_variant(
    exp: &Experiment,
    view: &LabView<'_>,
    out_dir: &Path,
    log: &dyn Fn(&str),
    broken: Option<usize>,
) -> Result<RunResult> {
    let brk = match broken {
        None => None,
        Some(k) => Some((
            k,
            exp.broken.get(k.wrapping_sub(1)).cloned().ok_or_else(|| {
                Error::Usage(format!(
                    "experiment {} has {} broken variants: give --broken 1 to {}",
                    exp.name,
                    exp.broken.len(),
                    exp.broken.len()
                ))
            })?,
        )),
    };
    // One experiment at a time on a lab: a second would see the first one's sysctls, routes
    // and conditions as the lab's own, and put them back at its end.
    let _one_at_a_time = crate::state::LabLock::acquire(&format!("{}.experiment", view.lab))
        .map_err(|e| match e {
            Error::Usage(_) => Error::Usage(format!(
                "another experiment is running on lab '{}': wait for it to finish",
                view.lab
            )),
            other => other,
        })?;
    if exp.needs_fake_internet() && view.plan.fake_internet.is_none() {
        return Err(Error::Usage(format!(
            "experiment {} needs the lab NATed into a fake internet: `tcplab --lab {} down`, then `tcplab --lab {} up --fake-internet`",
            exp.name, view.lab, view.lab
        )));
    }
    let mut steps = exp.steps.clone();
    if let Some((k, b)) = &brk {
        log(&format!("broken lab {k}: {}", b.description));
        steps.splice(0..0, b.steps.iter().cloned());
    }
    sys::create_user_dirs(out_dir)?;
    let mut st = RunState::default();
    let result = run_steps(&steps, view, out_dir, log, &mut st).await;
    // Cleanup runs whatever happened; then background commands are collected, captures
    // stopped, and sysctls get their old values back.
    let cleanup = run_steps(&exp.cleanup, view, out_dir, log, &mut st).await;
    for (name, (node, cmd, task)) in std::mem::take(&mut st.background) {
        let out = task
            .await
            .map_err(|e| Error::Other(format!("command {name}: {e}")))??;
        st.commands.push((name, node, cmd, out));
    }
    let stopped = stop_captures(&mut st.captures, &mut st.done);
    // Last, once nothing runs or captures any more: mending the broken lab and the sysctls as
    // they were are not part of the run.
    let mended = match &brk {
        Some((_, b)) => run_steps(&b.cleanup, view, out_dir, log, &mut st).await,
        None => Ok(()),
    };
    let restored = restore_sysctls(view, &st.restore, log);
    stopped?;
    mended?;
    result?;
    cleanup?;
    restored?;

    let mut checks = Vec::new();
    for c in &exp.checks {
        checks.push(super::checks::check(c, view, &st.commands, &st.done).await);
    }
    Ok(RunResult {
        experiment: exp.clone(),
        checks,
        captures: st.done,
        commands: st.commands,
        out_dir: out_dir.to_path_buf(),
        broken: brk,
    })
}

/// Give every sysctl a `sysctl` step changed its first value back, last change first.
fn restore_sysctls(
    view: &LabView<'_>,
    changed: &[(String, String, String)],
    log: &dyn Fn(&str),
) -> Result<()> {
    let mut first: Vec<&(String, String, String)> = Vec::new();
    for c in changed {
        if !first.iter().any(|f| f.0 == c.0 && f.1 == c.1) {
            first.push(c);
        }
    }
    let mut errors = Vec::new();
    for (node, key, old) in first.into_iter().rev() {
        log(&format!("{node}: sysctl {key} = {old} (as it was)"));
        let ns = sys::netns_path(&node_netns(view, node)?);
        if let Err(e) = host_steps::set_sysctl(&ns, key, old) {
            errors.push(e);
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Many(errors)),
    }
}

/// The namespace of `node`: one of the lab's nodes, or `internet`, the fake internet of a lab
/// brought up with `--fake-internet` (a node of that name in the topology wins).
pub fn node_netns(view: &LabView<'_>, node: &str) -> Result<String> {
    if node == crate::plan::FAKE_INTERNET_NODE && view.topology.node(node).is_none() {
        return match &view.plan.fake_internet {
            Some(f) => Ok(f.netns.clone()),
            None => Err(Error::Usage(format!(
                "the experiment uses node `internet`, but lab '{}' has no fake internet: `tcplab --lab {} down`, then `tcplab --lab {} up --fake-internet`",
                view.lab, view.lab, view.lab
            ))),
        };
    }
    view.topology.require_node(view.lab, node)?;
    Ok(crate::plan::node_netns(view.lab, node))
}

/// What runs commands in `node`: the lab's runtime, or for the fake internet (a namespace on
/// every runtime) the netns runtime.
fn runner_of(view: &LabView<'_>, node: &str) -> std::sync::Arc<AnyRuntime> {
    if node == crate::plan::FAKE_INTERNET_NODE && view.topology.node(node).is_none() {
        std::sync::Arc::new(AnyRuntime::Netns(crate::runtime::netns::NetnsRuntime))
    } else {
        view.runner.clone()
    }
}

type Background = HashMap<String, (String, String, tokio::task::JoinHandle<Result<CmdOutput>>)>;

/// What the steps of a run build up.
#[derive(Default)]
struct RunState {
    captures: Vec<RunningCapture>,
    done: Vec<CaptureResult>,
    background: Background,
    commands: Vec<(String, String, String, CmdOutput)>,
    unnamed: usize,
    /// Sysctls changed by `sysctl` steps: (node, key, value before).
    restore: Vec<(String, String, String)>,
}

async fn run_steps(
    steps: &[Step],
    view: &LabView<'_>,
    out_dir: &Path,
    log: &dyn Fn(&str),
    st: &mut RunState,
) -> Result<()> {
    for step in steps {
        match step {
            Step::Capture {
                node,
                interfaces,
                name,
            } => {
                let name = name.clone().unwrap_or_else(|| node.clone());
                let netns = sys::netns_path(&node_netns(view, node)?);
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
                input,
            } => {
                let netns = node_netns(view, node)?;
                let name = name.clone().unwrap_or_else(|| {
                    st.unnamed += 1;
                    format!("command{}", st.unnamed)
                });
                let argv = shell(
                    &host_steps::with_input(command, input),
                    timeout.unwrap_or(20.0),
                );
                log(&format!("{node}$ {command}{}", if *bg { " &" } else { "" }));
                if *bg {
                    let runner = runner_of(view, node);
                    let node2 = node.clone();
                    let task = tokio::spawn(async move { runner.run(&netns, &node2, &argv).await });
                    st.background
                        .insert(name, (node.clone(), command.clone(), task));
                } else {
                    let out = runner_of(view, node).run(&netns, node, &argv).await?;
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
                let path = sys::netns_path(&node_netns(view, node)?);
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
            Step::Stop {} => stop_captures(&mut st.captures, &mut st.done)?,
            other => host_step(other, view, log, st).await?,
        }
    }
    Ok(())
}

/// A step done from the host side in a node's namespace (sysctl, route, neigh-flush,
/// wait-tcp-state) or on the lab as a whole (nat, ovs-show).
async fn host_step(
    step: &Step,
    view: &LabView<'_>,
    log: &dyn Fn(&str),
    st: &mut RunState,
) -> Result<()> {
    let ns_of = |node: &str| -> Result<PathBuf> { Ok(sys::netns_path(&node_netns(view, node)?)) };
    match step {
        Step::Sysctl { node, key, value } => {
            log(&format!("{node}: sysctl {key} = {value}"));
            let old = host_steps::set_sysctl(&ns_of(node)?, key, value)?;
            st.restore.push((node.clone(), key.clone(), old));
        }
        Step::Route {
            node,
            op,
            to,
            via,
            dev,
        } => {
            log(&format!("{node}: ip route {op} {to}"));
            host_steps::route(&ns_of(node)?, op, to, *via, dev.as_deref())
                .map_err(|e| Error::Other(format!("{node}: {e}")))?;
        }
        Step::Nat { state } => {
            let Some(u) = &view.plan.uplink else {
                return Err(Error::Usage(format!(
                    "the experiment changes the lab's NAT, but lab '{}' has no uplink: bring it up with an uplink or --fake-internet",
                    view.lab
                )));
            };
            log(&format!("NAT {state}"));
            let edge = sys::netns_path(&crate::plan::switch_netns(view.lab));
            host_steps::nat(&edge, &u.masquerade, state == "on")?;
        }
        Step::RouteFlush { node } => {
            log(&format!("{node}: route cache flushed"));
            host_steps::route_flush(&ns_of(node)?)?;
        }
        Step::NeighFlush { node, dev } => {
            log(&format!("{node}: ARP cache emptied"));
            host_steps::neigh_flush(&ns_of(node)?, dev.as_deref())
                .map_err(|e| Error::Other(format!("{node}: {e}")))?;
        }
        Step::OvsShow { name } => {
            log("ovs show");
            let out = match crate::ovs::show(view.topology, view.lab) {
                Ok(text) => CmdOutput {
                    code: 0,
                    stdout: text,
                    stderr: String::new(),
                },
                Err(e) => CmdOutput {
                    code: 1,
                    stdout: String::new(),
                    stderr: e.to_string(),
                },
            };
            st.commands
                .push((name.clone(), "host".into(), "tcplab ovs show".into(), out));
        }
        Step::WaitTcpState {
            node,
            state,
            port,
            timeout,
        } => {
            log(&format!(
                "{node}: waiting for a TCP socket with port {port} in {state}"
            ));
            host_steps::wait_tcp_state(&ns_of(node)?, node, state, *port, timeout.unwrap_or(10.0))
                .await?;
        }
        _ => {}
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
