//! `up`: take the lab's lock, check everything that can be checked before touching anything,
//! record, apply the plan phase by phase, and on any failure (or Ctrl-C) remove what was made.

use super::apply::apply;
use super::down::teardown;
use crate::error::{Error, Result};
use crate::os::{NetOps, System};
use crate::plan::{Plan, PlanOptions};
use crate::progress::{Mode, Progress};
use crate::runtime::Runtime;
use crate::state::{LabLock, LabState};
use crate::topology::{NetworkKind, Topology};

/// What `up` needs besides the runtime and the system.
pub struct UpRequest<'a> {
    /// The validated topology.
    pub topology: &'a Topology,
    /// Lab name.
    pub lab: String,
    /// Where the topology came from (for the record).
    pub topology_file: String,
    /// Its text (for the record).
    pub topology_text: String,
    /// Uplink and switch override.
    pub options: PlanOptions,
}

/// What `up` did.
#[derive(Debug)]
pub enum UpOutcome {
    /// The lab was made.
    Created(Plan),
    /// The lab was up already: what was missing was made again (nothing, if the list is empty).
    Repaired(Plan, Vec<String>),
}

impl UpOutcome {
    /// The lab's plan.
    pub fn plan(&self) -> &Plan {
        match self {
            UpOutcome::Created(p) | UpOutcome::Repaired(p, _) => p,
        }
    }
}

/// Bring a lab up; on failure everything already made is removed again. A lab that is up
/// already is repaired instead: what its plan has and the machine lacks is made again, what is
/// there is left alone.
pub async fn up<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    req: UpRequest<'_>,
    progress: &Progress,
) -> Result<UpOutcome> {
    let plan = crate::plan::plan(req.topology, &req.lab, &req.options);
    let dir = sys.state_dir();
    let _lock = LabLock::acquire_in(&dir, &req.lab)?;
    if let Some(mut st) = LabState::load_in(&dir, &req.lab)? {
        if !st.complete {
            return Err(Error::Usage(format!(
                "lab '{}' is partly up from an earlier `up` that did not finish: run `tcplab down` first",
                req.lab
            )));
        }
        same_options(&st, &req, runtime.kind())?;
        let mut plan = st.plan(req.topology);
        let repaired = super::apply::repair(sys, runtime, &mut plan, &mut st, progress).await?;
        return Ok(UpOutcome::Repaired(plan, repaired));
    }
    let host = sys.host()?;
    precheck(sys, &plan, &host).await?;
    sys.prepare_netns_dir()?;

    let mut state = LabState::new_in(&dir, &req.lab, runtime.kind());
    state.topology_file = req.topology_file;
    state.topology_text = req.topology_text;
    state.uplink = req.options.uplink.clone();
    state.switch = req.options.switch_override;
    state.profile = req.options.profile.clone();
    state.fake_internet = req.options.fake_internet;
    state.save()?;
    // Signal handlers before anything is created, so a Ctrl-C at any point rolls back.
    let stop = interrupted()?;
    let mut plan = plan;
    let result = tokio::select! {
        r = apply(sys, runtime, &mut plan, &mut state, host, progress) => r,
        _ = stop => Err(Error::Usage("interrupted".into())),
    };
    match result {
        Ok(()) => {
            state.complete = true;
            state.save()?;
            Ok(UpOutcome::Created(plan))
        }
        Err(e) => {
            progress.note("up failed: removing what it made");
            Err(roll_back(sys, runtime, &req.lab, state, e).await)
        }
    }
}

/// A repair keeps the lab as it was made: asking for another runtime, uplink, switch or
/// profile is refused (take the lab down first).
fn same_options(
    st: &LabState,
    req: &UpRequest<'_>,
    kind: crate::runtime::RuntimeKind,
) -> Result<()> {
    let differs = |what: &str, was: String, asked: String| {
        Error::Usage(format!(
            "lab '{}' is up with {what}{was}, not {asked}: `tcplab down` first to change it",
            st.lab
        ))
    };
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    if st.runtime != kind {
        return Err(differs(
            "runtime ",
            st.runtime.to_string(),
            kind.to_string(),
        ));
    }
    if st.fake_internet != req.options.fake_internet {
        let (was, asked) = if st.fake_internet {
            ("with", "without")
        } else {
            ("without", "with")
        };
        return Err(Error::Usage(format!(
            "lab '{}' is up {was} a fake internet, not {asked} one: `tcplab down` first to change it",
            st.lab
        )));
    }
    if st.uplink != req.options.uplink {
        return Err(differs(
            "uplink ",
            show(&st.uplink),
            show(&req.options.uplink),
        ));
    }
    if req.options.switch_override.is_some() && st.switch != req.options.switch_override {
        let s = |k: Option<crate::topology::NetworkKind>| {
            k.map_or("as the topology says".into(), |k| k.as_str().to_string())
        };
        return Err(differs(
            "switch ",
            s(st.switch),
            s(req.options.switch_override),
        ));
    }
    if req.options.profile.is_some() && st.profile != req.options.profile {
        return Err(differs(
            "profile ",
            show(&st.profile),
            show(&req.options.profile),
        ));
    }
    Ok(())
}

/// Remove what a failed `up` recorded; the error says what failed, and also the rollback's own
/// failure if it had one.
async fn roll_back<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    lab: &str,
    state: LabState,
    e: Error,
) -> Error {
    // The record on disk may hold more than `state` if apply was cut short; reload it.
    let mut recorded = match LabState::load_in(&sys.state_dir(), lab) {
        Ok(Some(s)) => s,
        _ => state,
    };
    let quiet = Progress::with_mode(Mode::Quiet);
    let result = match teardown(sys, runtime, &mut recorded, &quiet).await {
        // Requests a runtime was still serving may create things after the rollback.
        Ok(()) => runtime.sweep(lab).await.map(|_| ()),
        Err(e2) => Err(e2),
    };
    match result {
        Ok(()) => e,
        Err(e2) => Error::Other(format!(
            "{e}; rollback also failed: {e2} (run `tcplab down`)"
        )),
    }
}

/// SIGINT or SIGTERM: the handlers are installed now, the future resolves on the signal.
fn interrupted() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("catching SIGINT", e))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("catching SIGTERM", e))?;
    Ok(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    })
}

/// Everything that can be checked before anything is created.
async fn precheck<S: System>(sys: &S, plan: &Plan, host: &S::Net) -> Result<()> {
    let mut names: Vec<&str> = plan.nodes.iter().map(|n| n.netns.as_str()).collect();
    names.extend(plan.switch_ns.as_deref());
    for name in names {
        if sys.netns_exists(name) {
            return Err(Error::Usage(format!(
                "namespace {name} exists already but lab '{}' has no record: remove it with `ip netns delete {name}` if it is a leftover",
                plan.lab
            )));
        }
    }
    for n in &plan.nodes {
        if sys.etc_dir_exists(&n.netns) {
            return Err(Error::Usage(format!(
                "{} exists already: remove it if it is a leftover of lab '{}'",
                sys.etc_dir(&n.netns).display(),
                plan.lab
            )));
        }
    }
    precheck_ovs(sys, plan, host).await?;
    super::fake_internet::precheck(plan, host).await?;
    if plan.uplink.is_some() {
        precheck_uplink(plan, host).await?;
    }
    Ok(())
}

async fn precheck_ovs<S: System>(sys: &S, plan: &Plan, host: &S::Net) -> Result<()> {
    if !plan.bridges.iter().any(|b| b.kind == NetworkKind::Ovs) {
        return Ok(());
    }
    // The one place a missing OVS matters: say the alternative too.
    let existing = sys.ovs_lab_bridges(&plan.lab).await.map_err(|e| match e {
        Error::Environment(m) => Error::Environment(format!(
            "{m}; or make the LANs Linux bridges with --switch linux"
        )),
        other => other,
    })?;
    for b in plan.bridges.iter().filter(|b| b.kind == NetworkKind::Ovs) {
        if host.link_index(&b.name).await?.is_some() || !existing.is_empty() {
            return Err(Error::Usage(format!(
                "Open vSwitch bridge {} (or another bridge of lab '{}') exists already: run `tcplab --lab {} down` first",
                b.name, plan.lab, plan.lab
            )));
        }
    }
    Ok(())
}

async fn precheck_uplink<N: NetOps>(plan: &Plan, host: &N) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    if plan.fake_internet.is_none() && host.link_index(&u.uplink).await?.is_none() {
        let names: Vec<String> = host
            .links()
            .await?
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n != "lo")
            .collect();
        return Err(Error::Usage(format!(
            "uplink interface '{}' does not exist (host interfaces: {})",
            u.uplink,
            names.join(", ")
        )));
    }
    if u.uplink == u.host_interface {
        return Err(Error::Usage(format!(
            "uplink '{}' is the lab's own line to the host",
            u.uplink
        )));
    }
    // The edge shares the switch namespace when there is one: its two lines need free names.
    let edge_names = [u.host_interface.as_str(), super::uplink::EDGE_TO_HOST];
    let switch_names = plan
        .bridges
        .iter()
        .filter(|b| b.kind == NetworkKind::Linux)
        .flat_map(|b| std::iter::once(&b.name).chain(&b.ports));
    for name in switch_names {
        if edge_names.contains(&name.as_str()) {
            return Err(Error::Usage(format!(
                "the lab's switch namespace has a bridge or port named {name}, which the uplink's edge needs: rename that network (or the uplink's host_interface)"
            )));
        }
    }
    // The lab's own names on the host: taken means a leftover of this lab (or, rarely, a
    // hash shared with another lab).
    let line = plan
        .veths
        .iter()
        .filter(|v| v.b.ns == crate::plan::Ns::Host && v.bridge.is_none())
        .map(|v| v.b.name.clone());
    for name in line.chain([super::uplink::uplink_host_link(&plan.lab)]) {
        if host.link_index(&name).await?.is_some() {
            return Err(Error::Usage(format!(
                "host interface {name} exists already: run `tcplab --lab {} down` if it is a leftover of this lab, or choose another lab name",
                plan.lab
            )));
        }
    }
    Ok(())
}
