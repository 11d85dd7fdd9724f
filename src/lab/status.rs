//! `status`: each node of a lab with its interfaces, read from the kernel.

use crate::error::Result;
use crate::net::netlink::LinkInfoView;
use crate::os::{NetOps, System};
use crate::runtime::RuntimeKind;
use crate::state::LabState;
use crate::topology::Topology;
use serde::Serialize;

/// Status of one node.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Namespace name.
    pub netns: String,
    /// `running` or `missing`.
    pub state: String,
    /// Its interfaces (not lo).
    pub interfaces: Vec<LinkInfoView>,
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
    /// Uplink interface.
    pub uplink: Option<String>,
    /// Nodes.
    pub nodes: Vec<NodeStatus>,
    /// Conditions set on interfaces, by `NODE:IFACE`, in one line each.
    pub conditions: std::collections::BTreeMap<String, String>,
}

/// Read the status of a lab that has a record.
pub async fn status<S: System>(sys: &S, state: &LabState, topo: &Topology) -> Result<LabStatus> {
    let mut nodes = Vec::new();
    for n in &topo.nodes {
        let netns = crate::plan::node_netns(&state.lab, &n.name);
        let handle = if sys.netns_exists(&netns) {
            sys.enter_netns(&[(netns.clone(), Vec::new())])
                .ok()
                .and_then(|mut v| v.pop())
        } else {
            None
        };
        let (st, interfaces) = match handle {
            Some(h) => {
                let links = h
                    .links()
                    .await?
                    .into_iter()
                    .filter(|l| l.name != "lo")
                    .collect();
                ("running".to_string(), links)
            }
            None => ("missing".to_string(), Vec::new()),
        };
        nodes.push(NodeStatus {
            name: n.name.clone(),
            netns,
            state: st,
            interfaces,
        });
    }
    Ok(LabStatus {
        lab: state.lab.clone(),
        runtime: state.runtime,
        complete: state.complete,
        uplink: state.uplink.clone(),
        nodes,
        conditions: state
            .conditions
            .iter()
            .map(|(k, c)| (k.clone(), c.summary()))
            .collect(),
    })
}
