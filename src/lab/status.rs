//! `status`: each node of a lab with its interfaces, read from the kernel, compared with the
//! lab's plan: what is missing or different is listed, and the lab is `degraded` when anything
//! is (`tcplab up` repairs it).

use crate::error::Result;
use crate::net::netlink::LinkInfoView;
use crate::os::{NetOps, System};
use crate::plan::{NodePlan, Ns, Plan};
use crate::runtime::RuntimeKind;
use crate::state::LabState;
use crate::topology::{NetworkKind, Topology};
use serde::Serialize;

/// Status of one node.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Namespace name.
    pub netns: String,
    /// `running`, `degraded` (something of its plan is missing) or `missing`.
    pub state: String,
    /// Its interfaces (not lo).
    pub interfaces: Vec<LinkInfoView>,
    /// What its plan has and the node lacks.
    pub problems: Vec<String>,
}

/// Status of a lab.
#[derive(Debug, Serialize)]
pub struct LabStatus {
    /// Lab name.
    pub lab: String,
    /// Runtime.
    pub runtime: RuntimeKind,
    /// Whether `up` finished.
    pub complete: bool,
    /// Whether anything of the plan is missing (`tcplab up` repairs it).
    pub degraded: bool,
    /// Uplink interface.
    pub uplink: Option<String>,
    /// Nodes.
    pub nodes: Vec<NodeStatus>,
    /// What the lab lacks outside its nodes (switches, bridges, ports, conditions).
    pub problems: Vec<String>,
    /// Conditions set on interfaces, by `NODE:IFACE`, in one line each.
    pub conditions: std::collections::BTreeMap<String, String>,
}

/// Read the status of a lab that has a record, and compare it with its plan.
pub async fn status<S: System>(sys: &S, state: &LabState, topo: &Topology) -> Result<LabStatus> {
    let plan = state.plan(topo);
    let mut nodes = Vec::new();
    for n in &plan.nodes {
        nodes.push(node_status(sys, n).await?);
    }
    let problems = lab_problems(sys, state, &plan).await?;
    let degraded = !problems.is_empty() || nodes.iter().any(|n| n.state != "running");
    Ok(LabStatus {
        lab: state.lab.clone(),
        runtime: state.runtime,
        complete: state.complete,
        degraded,
        uplink: state.uplink.clone(),
        nodes,
        problems,
        conditions: state
            .conditions
            .iter()
            .map(|(k, c)| (k.clone(), c.summary()))
            .collect(),
    })
}

fn handle_of<S: System>(sys: &S, netns: &str) -> Option<S::Net> {
    if !sys.netns_exists(netns) {
        return None;
    }
    sys.enter_netns(&[(netns.to_string(), Vec::new())])
        .ok()
        .and_then(|mut v| v.pop())
}

async fn node_status<S: System>(sys: &S, n: &NodePlan) -> Result<NodeStatus> {
    let Some(h) = handle_of(sys, &n.netns) else {
        return Ok(NodeStatus {
            name: n.name.clone(),
            netns: n.netns.clone(),
            state: "missing".into(),
            interfaces: Vec::new(),
            problems: vec!["its namespace is gone".into()],
        });
    };
    let links: Vec<LinkInfoView> = h
        .links()
        .await?
        .into_iter()
        .filter(|l| l.name != "lo")
        .collect();
    let mut problems = Vec::new();
    for i in &n.interfaces {
        match links.iter().find(|l| l.name == i.name) {
            None => problems.push(format!("interface {} is missing", i.name)),
            Some(l) if !l.up => problems.push(format!("interface {} is down", i.name)),
            Some(_) => {}
        }
    }
    for (idx, a) in &n.addresses {
        let Some(name) = n
            .interfaces
            .iter()
            .find(|i| i.index == *idx)
            .map(|i| &i.name)
        else {
            continue;
        };
        let has = links
            .iter()
            .any(|l| &l.name == name && l.addresses.iter().any(|x| x == &a.to_string()));
        if !has && links.iter().any(|l| &l.name == name) {
            problems.push(format!("address {a} on {name} is missing"));
        }
    }
    let routes = h.routes().await?;
    for r in &n.routes {
        if !routes.iter().any(|(to, _, _)| *to == r.route.to) {
            problems.push(format!("route {} is missing", r.route));
        }
    }
    Ok(NodeStatus {
        name: n.name.clone(),
        netns: n.netns.clone(),
        state: if problems.is_empty() {
            "running"
        } else {
            "degraded"
        }
        .into(),
        interfaces: links,
        problems,
    })
}

/// The switch namespace and its bridges, the LAN ports (Linux bridge ports, OVS bridges and
/// their host-side ports), and the conditions workers.
async fn lab_problems<S: System>(sys: &S, state: &LabState, plan: &Plan) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let switch = match &plan.switch_ns {
        Some(sw) => {
            let h = handle_of(sys, sw);
            if h.is_none() {
                problems.push(format!("the switch namespace {sw} is gone"));
            }
            h
        }
        None => None,
    };
    let host = sys.host()?;
    let ovs = plan.bridges.iter().any(|b| b.kind == NetworkKind::Ovs);
    if ovs {
        let present = sys.ovs_lab_bridges(&plan.lab).await.unwrap_or_default();
        for b in plan.bridges.iter().filter(|b| b.kind == NetworkKind::Ovs) {
            if !present.contains(&b.name) {
                problems.push(format!(
                    "Open vSwitch bridge {} of {} is gone",
                    b.name, b.network
                ));
            }
        }
    }
    for v in plan.veths.iter().filter(|v| v.bridge.is_some()) {
        let end = [&v.a, &v.b]
            .into_iter()
            .find(|e| e.ns != Ns::Host && !matches!(e.ns, Ns::Node(_)))
            .or_else(|| [&v.a, &v.b].into_iter().find(|e| e.ns == Ns::Host));
        let Some(end) = end else { continue };
        let present = match end.ns {
            Ns::Switch => match &switch {
                Some(h) => h.link_index(&end.name).await?.is_some(),
                None => continue,
            },
            Ns::Host => host.link_index(&end.name).await?.is_some(),
            Ns::Node(_) => continue,
        };
        if !present {
            problems.push(format!("the LAN port of {} is gone", v.label));
        }
    }
    if let Some(u) = &plan.uplink {
        let edge = crate::plan::switch_netns(&plan.lab);
        let chain = crate::net::firewall::UplinkRules::new(&plan.lab, "", "", &[]).chain;
        let edge_ok = match handle_of(sys, &edge) {
            Some(e) => e.link_index(&u.host_interface).await?.is_some(),
            None => false,
        };
        if !edge_ok || !sys.firewall_chains().await?.contains(&chain) {
            problems.push(format!("the uplink out of {} is broken", u.uplink));
        }
    }
    for key in state.conditions.keys() {
        let (node, iface) = key.split_once(':').unwrap_or((key.as_str(), ""));
        let control = super::conditions::control_name(&state.dir, &state.lab, node, iface);
        if sys.link_worker_stats(&control).is_none() {
            problems.push(format!("the conditions on {key} are not applied"));
        }
    }
    Ok(problems)
}
