//! The nodes' interfaces as the wires name them: each end of a network, link or uplink is
//! registered on its node here, which refuses an unknown node, a bad or repeated interface
//! name and an address some other interface already has.

use super::Checker;
use super::names::{check_ifname, check_node_name};
use crate::error::Result;
use crate::topology::model::{Attachment, Endpoint, Interface};
use crate::topology::raw::{RawEndpoint, RawNode, indexmap_like::OrderedMap};
use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The interfaces of one node, and where in the file each was named.
#[derive(Default)]
struct NodeIfaces {
    interfaces: Vec<Interface>,
    places: HashMap<String, String>,
}

/// Every node's interfaces so far, and which place holds each address.
pub(super) struct Endpoints<'a> {
    c: &'a Checker<'a>,
    names: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
    nodes: Vec<NodeIfaces>,
    addr_owner: HashMap<Ipv4Addr, String>,
}

impl<'a> Endpoints<'a> {
    /// No interfaces yet on the file's nodes, whose names are checked here (valid, no twice).
    pub(super) fn new(c: &'a Checker<'a>, nodes: &'a OrderedMap<RawNode>) -> Result<Self> {
        let mut index = HashMap::new();
        for (i, (name, _)) in nodes.0.iter().enumerate() {
            check_node_name(name).map_err(|m| c.err(format!("nodes.{name}"), m))?;
            if index.insert(name.as_str(), i).is_some() {
                return Err(c.err(
                    format!("nodes.{name}"),
                    format!("node '{name}' is defined twice"),
                ));
            }
        }
        Ok(Endpoints {
            c,
            names: nodes.0.iter().map(|(n, _)| n.as_str()).collect(),
            index,
            nodes: nodes.0.iter().map(|_| NodeIfaces::default()).collect(),
            addr_owner: HashMap::new(),
        })
    }

    /// Register end `ep` (at `place` of the file) on its node, with its address, MTU and what
    /// it is plugged into.
    pub(super) fn add(
        &mut self,
        place: String,
        ep: &RawEndpoint,
        address: Option<Ipv4Net>,
        mtu: u32,
        attachment: Attachment,
    ) -> Result<Endpoint> {
        let c = self.c;
        let Some(&ni) = self.index.get(ep.node.as_str()) else {
            return Err(c.err(
                format!("{place}.node"),
                format!(
                    "unknown node '{}' (nodes: {})",
                    ep.node,
                    self.names.join(", ")
                ),
            ));
        };
        check_ifname(&ep.interface).map_err(|m| c.err(format!("{place}.interface"), m))?;
        let slot = &mut self.nodes[ni];
        if let Some(first) = slot.places.get(&ep.interface) {
            return Err(c.err(
                format!("{place}.interface"),
                format!(
                    "node '{}' already has an interface '{}' (at {first})",
                    ep.node, ep.interface
                ),
            ));
        }
        if let Some(a) = address {
            if let Some(first) = self.addr_owner.get(&a.addr()) {
                return Err(c.err(
                    format!("{place}.address"),
                    format!("duplicate address {} (also at {first})", a.addr()),
                ));
            }
            self.addr_owner.insert(a.addr(), place.clone());
        }
        slot.places.insert(ep.interface.clone(), place);
        slot.interfaces.push(Interface {
            name: ep.interface.clone(),
            address,
            mtu,
            attachment,
        });
        Ok(Endpoint {
            node: ep.node.clone(),
            interface: ep.interface.clone(),
            address,
            port: crate::topology::PortOptions::default(),
        })
    }

    /// Claim address `a` for a bridge's own port at `place`: refused when an interface (or
    /// another bridge) has it already.
    pub(super) fn claim_address(
        &mut self,
        c: &super::Checker,
        place: &str,
        a: Ipv4Addr,
    ) -> Result<()> {
        if let Some(first) = self.addr_owner.get(&a) {
            return Err(c.err(place, format!("duplicate address {a} (also at {first})")));
        }
        self.addr_owner.insert(a, place.to_string());
        Ok(())
    }

    /// The place of the interface that has address `a`, if any.
    pub(super) fn owner_of(&self, a: Ipv4Addr) -> Option<&str> {
        self.addr_owner.get(&a).map(String::as_str)
    }

    /// Each node's interfaces, in node order.
    pub(super) fn into_interfaces(self) -> Vec<Vec<Interface>> {
        self.nodes.into_iter().map(|n| n.interfaces).collect()
    }
}
