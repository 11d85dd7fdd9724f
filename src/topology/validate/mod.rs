//! Raw topology -> validated model. Every error names the file, the place (a path such as
//! `networks.net1.members[2].address`) and the offending value; the first error stops.
//!
//! The checks run in this order: the lab's name, the nodes' names and the defaults; the wires
//! ([`wires`]: networks, then links, then the uplink), each end registered on its node by
//! [`Endpoints`], which keeps interface names unique per node and addresses unique in the
//! topology; then each node's routes, proxy ARP and sysctls ([`node`]). Names are checked by
//! [`names`], numbers (MTUs, prefixes, addresses) by [`addresses`].

mod addresses;
mod conditions;
mod endpoints;
mod names;
mod node;
mod ovs;
mod wires;

pub use names::check_lab_name;

use super::model::*;
use super::raw::*;
use crate::error::{Error, Result};
use endpoints::Endpoints;

/// The most nodes a topology may have: a lab is made of namespaces or containers on one
/// machine, and every node's /etc/hosts names every other.
pub const MAX_NODES: usize = 1000;

/// Makes the errors of one file.
struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    /// A topology error at `place` of the file.
    fn err(&self, place: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Topology {
            file: self.file.to_string(),
            place: place.into(),
            message: message.into(),
        }
    }
}

/// Validate a parsed topology file; `file` names it in error messages.
pub(super) fn validate(raw: RawTopology, file: &str, _text: &str) -> Result<Topology> {
    let c = Checker { file };
    check_lab_name(&raw.name).map_err(|m| c.err("name", m))?;
    if raw.nodes.0.len() > MAX_NODES {
        return Err(c.err(
            "nodes",
            format!(
                "the topology has {} nodes: at most {MAX_NODES} (each node is a namespace or a container on this machine)",
                raw.nodes.0.len()
            ),
        ));
    }
    if raw.nodes.0.is_empty() {
        return Err(c.err(
            "nodes",
            "the topology has no nodes: add at least one [nodes.NAME] table",
        ));
    }
    let privileges = parse_privileges(
        &c,
        "defaults.privileges",
        raw.defaults.privileges.as_deref(),
    )?;
    let mut ends = Endpoints::new(&c, &raw.nodes)?;
    let networks = wires::networks(&c, &raw.networks, &mut ends)?;
    let links = wires::links(&c, &raw.links, &mut ends)?;
    let uplink = match &raw.uplink {
        Some(u) => Some(wires::uplink(&c, u, &mut ends)?),
        None => None,
    };
    let mut nodes = Vec::with_capacity(raw.nodes.0.len());
    for ((name, rn), interfaces) in raw.nodes.0.iter().zip(ends.into_interfaces()) {
        let image = rn.image.clone().or_else(|| raw.defaults.image.clone());
        nodes.push(node::node(&c, name, rn, interfaces, image, privileges)?);
    }
    let tunnels = ovs::tunnels(&c, &raw.tunnels, &networks)?;
    let always = conditions::always_on(&c, &raw, &links)?;
    let profiles = conditions::profiles(&c, &raw, &links, &nodes)?;
    Ok(Topology {
        name: raw.name,
        description: raw.description,
        nodes,
        networks,
        links,
        conditions: always,
        profiles,
        uplink,
        tunnels,
    })
}

/// `defaults.privileges`: `auto` (also when absent), `privileged` or `capabilities`.
fn parse_privileges(c: &Checker, place: &str, s: Option<&str>) -> Result<Privileges> {
    match s {
        None | Some("auto") => Ok(Privileges::Auto),
        Some("privileged") => Ok(Privileges::Privileged),
        Some("capabilities") => Ok(Privileges::Capabilities),
        Some(other) => Err(c.err(
            place,
            format!(
                "unknown privileges '{other}' (use \"auto\", \"privileged\" or \"capabilities\")"
            ),
        )),
    }
}
