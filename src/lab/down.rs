//! `down`: remove everything a lab's record names (or, without a record, everything found by
//! the lab's labels and names), keeping going past failures and reporting all of them.

use super::parts::host_alias;
use crate::error::{Error, Result};
use crate::os::{NetOps, System};
use crate::plan::{Ns, PlanOptions};
use crate::progress::Progress;
use crate::runtime::{self, Runtime, RuntimeKind};
use crate::state::{LabLock, LabState, Object};
use crate::topology::{NetworkKind, Topology};

/// What `down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// Objects removed.
    pub removed: usize,
    /// Whether the lab had a record (false: found by labels and names).
    pub recorded: bool,
    /// Containers the engine created after an interrupted `up`, removed too.
    pub late: usize,
}

/// Take lab `lab` down: the recorded objects, or those found by the lab's labels and names when
/// there is no record. Ok(None): there was nothing to remove.
pub async fn down<S: System>(
    sys: &S,
    lab: &str,
    topology: &Topology,
    progress: &Progress,
) -> Result<Option<DownReport>> {
    let dir = sys.state_dir();
    let _lock = LabLock::acquire_in(&dir, lab)?;
    // Read the record under the lock: an `up` may have finished meanwhile.
    let (mut state, recorded) = match LabState::load_in(&dir, lab)? {
        Some(s) => (s, true),
        None => (find_unrecorded(sys, lab, topology).await?, false),
    };
    if state.objects.is_empty() {
        LabState::remove_in(&dir, lab)?;
        return Ok(None);
    }
    let removed = state.objects.len();
    let rt = runtime::open_for_teardown(state.runtime, &state.topology_file).await;
    let incomplete = !state.complete;
    let host_ends = host_ends(&state, topology);
    teardown(sys, &rt, &mut state, progress).await?;
    // The killed `up`'s requests may still be running in the engine.
    let late = if incomplete { rt.sweep(lab).await? } else { 0 };
    wait_gone(sys, lab, &host_ends).await?;
    Ok(Some(DownReport {
        removed,
        recorded,
        late,
    }))
}

/// The names the lab's interfaces in the host's namespace have (in its plan, and as OVS ports
/// whatever the plan's switches: a record without its options still finds them).
fn host_ends(state: &LabState, topo: &Topology) -> Vec<String> {
    let mut opts = PlanOptions {
        uplink: state.uplink.clone(),
        switch_override: state.switch,
        profile: None,
        fake_internet: state.fake_internet,
    };
    let mut names: Vec<String> = Vec::new();
    for switch in [state.switch, Some(NetworkKind::Ovs)] {
        opts.switch_override = switch;
        let plan = crate::plan::plan(topo, &state.lab, &opts);
        names.extend(
            plan.veths
                .iter()
                .flat_map(|v| [&v.a, &v.b])
                .filter(|e| e.ns == Ns::Host)
                .map(|e| e.name.clone()),
        );
    }
    names.sort();
    names.dedup();
    names
}

/// How long `down` waits for the kernel to finish removing what it took away.
const GONE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wait until none of `names` is an interface of the host's namespace any more. The host end of
/// a veth whose other end was in a namespace tcplab removed goes only when the kernel has
/// finished removing that namespace, which it does after `down`'s requests have returned.
async fn wait_gone<S: System>(sys: &S, lab: &str, names: &[String]) -> Result<()> {
    let host = sys.host()?;
    let ours = host_alias(lab);
    let deadline = std::time::Instant::now() + GONE_TIMEOUT;
    loop {
        let mut left = Vec::new();
        for n in names {
            // Untagged: an end whose `up` was killed before tagging it (another lab's are tagged
            // as that lab's).
            let mine = host
                .alias(n)
                .await?
                .is_none_or(|a| a.is_empty() || a == ours);
            if mine && host.link_index(n).await?.is_some() {
                left.push(n.clone());
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Other(format!(
                "host interfaces {} are still there {} s after down: look for a process holding the lab's namespaces",
                left.join(", "),
                GONE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Remove everything recorded in `state`, continuing past failures. The record is removed when
/// everything is gone; otherwise it keeps what is left and every error is returned.
pub async fn teardown<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    state: &mut LabState,
    progress: &Progress,
) -> Result<()> {
    let mut phase = progress.phase("down", state.objects.len() as u64);
    let objects = std::mem::take(&mut state.objects);
    let host = sys.host();
    let lab = state.lab.clone();
    // No object depends on another's removal (a namespace outlives its container while linked,
    // a veth dies with either namespace), so they go many at once. Containers and OVS bridges
    // go first (together): deleting OVS ports' veths while ovs-vswitchd still polls them, and
    // containers' namespaces at the same time, makes everything contend for the kernel's rtnl
    // lock; once the bridges are gone the veths go fast. (Without containers, one stage.)
    let staged = objects
        .iter()
        .any(|o| matches!(o, Object::Container { .. }));
    // Conditions workers go in the first stage always: a worker holds its node's namespace.
    let first = |o: &&Object| {
        matches!(o, Object::LinkConditions { .. })
            || (staged && matches!(o, Object::Container { .. } | Object::OvsBridges { .. }))
    };
    let (early, late): (Vec<&Object>, Vec<&Object>) = objects.iter().rev().partition(first);
    let host = host.as_ref();
    let mut results = futures::future::join_all(
        early
            .iter()
            .map(|o| remove_object(sys, runtime, o, host, &lab)),
    )
    .await;
    results.extend(
        futures::future::join_all(
            late.iter()
                .map(|o| remove_object(sys, runtime, o, host, &lab)),
        )
        .await,
    );
    let mut errors = Vec::new();
    let mut left = Vec::new();
    for (obj, r) in early.iter().chain(late.iter()).zip(results) {
        if let Err(e) = r {
            errors.push(e.context(describe(obj)));
            left.push((*obj).clone());
        }
    }
    phase.advance(objects.len() as u64);
    phase.finish();
    if errors.is_empty() {
        sys.remove_etc_root_if_empty();
        LabState::remove_in(&state.dir, &state.lab)
    } else {
        left.reverse();
        state.objects = left;
        state.save()?;
        Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            Error::Many(errors)
        })
    }
}

fn describe(obj: &Object) -> String {
    match obj {
        Object::Netns { name } => format!("namespace {name}"),
        Object::EtcDir { path } => path.clone(),
        Object::HostLink { name } => format!("host interface {name}"),
        Object::Firewall { chain, .. } => format!("firewall chain {chain}"),
        Object::HostSysctl { key, .. } => format!("host sysctl net.{key}"),
        Object::Container { name } => format!("container {name}"),
        Object::OvsBridges { names } => format!("Open vSwitch bridges {}", names.join(", ")),
        Object::LinkConditions { node, iface, .. } => format!("conditions on {node}:{iface}"),
        Object::UplinkLine { host_link, .. } => format!("uplink line {host_link}"),
        Object::UplinkForwarding { key, .. } => format!("host sysctl net.{key}"),
    }
}

pub(super) async fn remove_object<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    obj: &Object,
    host: std::result::Result<&S::Net, &Error>,
    lab: &str,
) -> Result<()> {
    match obj {
        Object::Netns { name } => sys.delete_netns(name).map(|_| ()),
        Object::EtcDir { path } => sys.remove_etc_dir(path),
        Object::HostLink { name } => {
            let host = host.map_err(|e| Error::Other(e.to_string()))?;
            // Only an interface tagged as this lab's: a name reused by another lab (or by
            // anyone) after this one's vanished is left alone.
            if host.alias(name).await?.as_deref() == Some(host_alias(lab).as_str()) {
                host.delete_link(name).await?;
            }
            Ok(())
        }
        Object::Firewall { remove, .. } => sys.firewall_remove(remove).await,
        Object::HostSysctl { key, old, new } => {
            // Restore only if nobody changed it since.
            if sys.read_host_sysctl(key)? == *new {
                sys.write_host_sysctl(key, old)
            } else {
                Ok(())
            }
        }
        Object::Container { .. } => runtime.remove(obj).await.map(|_| ()),
        Object::OvsBridges { .. } => sys.ovs_delete_lab(lab).await,
        Object::LinkConditions {
            netns,
            iface,
            control,
            ..
        } => sys.stop_link_worker(netns, iface, control),
        Object::UplinkLine { host_link, .. } => {
            // It dies with the edge namespace; deleted here too, if still tagged as ours.
            let host = host.map_err(|e| Error::Other(e.to_string()))?;
            if host.alias(host_link).await?.as_deref() == Some(host_alias(lab).as_str()) {
                host.delete_link(host_link).await?;
            }
            Ok(())
        }
        Object::UplinkForwarding { key, old, new } => {
            super::uplink::release_uplink_forwarding(sys, lab, key, old, new).await
        }
    }
}

/// Objects of lab `lab` that exist without a record (its record was lost, e.g. after a reboot,
/// while containers survive): what the runtimes find by the lab's labels, OVS bridges labelled
/// as the lab's, the lab's host ports, and namespaces and /etc/netns directories with the lab's
/// exact names. Returned as a record that [`teardown`] can remove.
pub async fn find_unrecorded<S: System>(sys: &S, lab: &str, topo: &Topology) -> Result<LabState> {
    let (kind, mut objects) = runtime::find_leftovers(lab).await;
    if let Ok(names) = sys.ovs_lab_bridges(lab).await
        && !names.is_empty()
    {
        objects.push(Object::OvsBridges { names });
    }
    // The uplink's firewall chain (its removal needs only the lab's name). The uplink's old
    // forwarding setting is known only to the record: without one it stays as it is.
    let rules = crate::net::firewall::UplinkRules::new(lab, "", "", &[]);
    if sys.firewall_chains().await?.contains(&rules.chain) {
        objects.push(Object::Firewall {
            chain: rules.chain.clone(),
            remove: rules.remove_script(),
        });
    }
    // The lab's OVS ports in the host namespace (their names are the lab's own): they vanish
    // with the node namespaces, but not while something still holds one.
    let ovs_plan = crate::plan::plan(
        topo,
        lab,
        &PlanOptions {
            uplink: None,
            switch_override: Some(NetworkKind::Ovs),
            profile: None,
            fake_internet: false,
        },
    );
    if let Ok(host) = sys.host() {
        for v in ovs_plan.veths.iter().filter(|v| v.b.ns == Ns::Host) {
            if host.alias(&v.b.name).await.ok().flatten().as_deref()
                == Some(host_alias(lab).as_str())
            {
                objects.push(Object::HostLink {
                    name: v.b.name.clone(),
                });
            }
        }
    }
    let mut names: Vec<String> = topo
        .nodes
        .iter()
        .map(|n| crate::plan::node_netns(lab, &n.name))
        .collect();
    names.push(crate::plan::switch_netns(lab));
    names.push(crate::plan::FakeInternetPlan::for_lab(lab).netns);
    for name in names {
        if sys.netns_exists(&name) {
            objects.push(Object::Netns { name: name.clone() });
        }
        if sys.etc_dir_exists(&name) {
            objects.push(Object::EtcDir {
                path: sys.etc_dir(&name).display().to_string(),
            });
        }
    }
    let mut state = LabState::new_in(&sys.state_dir(), lab, kind.unwrap_or(RuntimeKind::Netns));
    state.objects = objects;
    Ok(state)
}
