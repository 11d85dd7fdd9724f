//! Link conditions on a lab that is up (`tcplab link set|clear|show`, an experiment's
//! `conditions` step, a topology's conditions and profiles at `up`): each conditioned
//! interface gets a worker, recorded before it starts, and its conditions are kept in the
//! record so they can be shown and applied again.

use crate::conditions::spec::{Conditions, ConditionsUpdate};
use crate::error::{Context, Error, Result};
use crate::os::System;
use crate::plan::Plan;
use crate::state::{LabState, Object};
use std::path::Path;

/// The record's key of an interface: `NODE:IFACE`.
pub fn end_key(node: &str, iface: &str) -> String {
    format!("{node}:{iface}")
}

/// The control socket of the worker on `node:iface` of lab `lab` (records in `dir`).
pub fn control_name(dir: &Path, lab: &str, node: &str, iface: &str) -> String {
    format!("tcplab-conditions{}/{lab}/{node}/{iface}", dir.display())
}

/// Apply `update` to each of `ends` (merged into what each has: conditions not named stay as
/// they are). An end whose conditions become empty is cleared. Returns each end's conditions.
pub async fn set_conditions<S: System>(
    sys: &S,
    state: &mut LabState,
    plan: &Plan,
    ends: &[(String, String)],
    update: &ConditionsUpdate,
) -> Result<Vec<(String, Conditions)>> {
    if update.is_empty() {
        return Err(Error::Usage(
            "link set needs a condition, e.g. --delay 100ms or --rate 9600bit --framing slip"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for (node, iface) in ends {
        let key = end_key(node, iface);
        let mut c = state.conditions.get(&key).cloned().unwrap_or_default();
        c.merge(update);
        apply_end(sys, state, plan, node, iface, &c)
            .await
            .with_context(|| format!("conditions on {key}"))?;
        out.push((key, c));
    }
    Ok(out)
}

/// Give `node:iface` exactly conditions `c` (empty: none), starting, changing or stopping its
/// worker as needed.
pub async fn apply_end<S: System>(
    sys: &S,
    state: &mut LabState,
    plan: &Plan,
    node: &str,
    iface: &str,
    c: &Conditions,
) -> Result<()> {
    let key = end_key(node, iface);
    if c.is_empty() {
        return clear_end(sys, state, node, iface);
    }
    let n = plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| Error::Usage(format!("unknown node '{node}'")))?;
    let control = control_name(&state.dir, &state.lab, node, iface);
    let recorded = state.objects.iter().any(|o| is_worker_of(o, node, iface));
    if recorded && sys.update_link_worker(&control, c)? {
        state.conditions.insert(key, c.clone());
        return state.save();
    }
    if recorded {
        // The worker is gone (killed, or the machine restarted): take what it left, start anew.
        sys.stop_link_worker(&n.netns, iface, &control)?;
    } else {
        state.record([Object::LinkConditions {
            node: node.into(),
            netns: n.netns.clone(),
            iface: iface.into(),
            control: control.clone(),
        }])?;
    }
    sys.start_link_worker(&n.netns, iface, &control, c)?;
    state.conditions.insert(key, c.clone());
    state.save()
}

/// Remove every condition of `node:iface` (nothing to do if it has none).
pub fn clear_end<S: System>(sys: &S, state: &mut LabState, node: &str, iface: &str) -> Result<()> {
    let key = end_key(node, iface);
    let found: Vec<Object> = state
        .objects
        .iter()
        .filter(|o| is_worker_of(o, node, iface))
        .cloned()
        .collect();
    for o in &found {
        if let Object::LinkConditions {
            netns,
            iface,
            control,
            ..
        } = o
        {
            sys.stop_link_worker(netns, iface, control)
                .with_context(|| format!("clearing conditions on {key}"))?;
        }
    }
    state.objects.retain(|o| !is_worker_of(o, node, iface));
    state.conditions.remove(&key);
    state.save()
}

fn is_worker_of(o: &Object, node: &str, iface: &str) -> bool {
    matches!(o, Object::LinkConditions { node: n, iface: i, .. } if n == node && i == iface)
}

/// What `link show` shows of one interface.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndConditions {
    /// `NODE:IFACE`.
    pub end: String,
    /// One line for people.
    pub summary: String,
    /// The conditions.
    pub conditions: Conditions,
    /// Whether its worker answers (false: the conditions are recorded but not applied).
    pub running: bool,
    /// The worker's counters, when it answers.
    pub stats: Option<crate::conditions::datapath::Stats>,
}

/// Every conditioned interface of the lab, in `NODE:IFACE` order.
pub fn show<S: System>(sys: &S, state: &LabState) -> Vec<EndConditions> {
    state
        .conditions
        .iter()
        .map(|(key, c)| {
            let (node, iface) = key.split_once(':').unwrap_or((key.as_str(), ""));
            let stats = sys.link_worker_stats(&control_name(&state.dir, &state.lab, node, iface));
            EndConditions {
                end: key.clone(),
                summary: c.summary(),
                conditions: c.clone(),
                running: stats.is_some(),
                stats,
            }
        })
        .collect()
}
