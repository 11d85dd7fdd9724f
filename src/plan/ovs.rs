//! What an Open vSwitch bridge gets beyond its ports: each member's VLAN and QoS settings,
//! its tunnel ports (with the route their packets take over the underlay), its own address,
//! its controller, fail mode and flow entries.

use super::BridgePlan;
use crate::topology::{FailMode, Network, PortOptions, Topology, TunnelEnd, TunnelKind};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::net::Ipv4Addr;

/// The Open vSwitch settings of one bridge.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OvsPlan {
    /// Members: node, host-side port name, port settings (in member order).
    pub members: Vec<OvsMember>,
    /// Tunnel ports on this bridge.
    pub tunnels: Vec<TunnelPort>,
    /// The bridge's own address (its internal port in the host's namespace).
    pub address: Option<Ipv4Net>,
    /// OpenFlow controller target.
    pub controller: Option<String>,
    /// Fail mode (default standalone).
    pub fail_mode: Option<FailMode>,
    /// Flow entries, as written (ports named by node).
    pub flows: Vec<String>,
}

/// A member's port on an OVS bridge.
#[derive(Debug, Clone, Serialize)]
pub struct OvsMember {
    /// The node.
    pub node: String,
    /// The port's name (the veth's host end).
    pub port: String,
    /// VLAN, trunk and QoS.
    pub options: PortOptions,
}

/// A tunnel port: its packets are encapsulated toward `remote`, leaving through bridge
/// `underlay_bridge` (whose address is the source), routed by Open vSwitch's own route with
/// packet mark `mark` so that the host's local addresses do not short-cut the underlay.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelPort {
    /// Port and interface name.
    pub name: String,
    /// The tunnel's name in the topology.
    pub tunnel: String,
    /// VXLAN or GRE.
    pub kind: TunnelKind,
    /// VNI or GRE key.
    pub key: u32,
    /// The other end's underlay address.
    pub remote: Ipv4Addr,
    /// This end's underlay address.
    pub local: Ipv4Addr,
    /// The bridge of the underlay LAN.
    pub underlay_bridge: String,
    /// Next hop toward `remote` (itself when on the same subnet).
    pub gateway: Ipv4Addr,
    /// Packet mark of the encapsulated packets (and of their route).
    pub mark: u32,
}

/// Name of tunnel port `n` of lab `lab`: `tl<16-bit hash>t<n>`.
pub fn tunnel_port_name(lab: &str, n: usize) -> String {
    format!("tl{:04x}t{n}", crate::util::short_hash(lab))
}

/// Packet mark of tunnel port `n` of lab `lab`: `0x7c` in the top byte, the lab's 16-bit
/// hash, then `n`, so that `down` finds the lab's routes by mark and bridge.
pub fn tunnel_mark(lab: &str, n: usize) -> u32 {
    0x7c00_0000 | (u32::from(crate::util::short_hash(lab)) << 8) | (n as u32 & 0xff)
}

/// Whether packet mark `mark` is one of lab `lab`'s tunnel marks.
pub fn is_lab_mark(lab: &str, mark: u32) -> bool {
    mark & 0xffff_ff00 == tunnel_mark(lab, 0)
}

/// The OVS settings of bridge `net` (already planned as `bridges[index]`) of lab `lab`.
pub(super) fn ovs_plan(
    topo: &Topology,
    lab: &str,
    net: &Network,
    bridge: &BridgePlan,
    bridges_of: &dyn Fn(usize) -> String,
) -> OvsPlan {
    let members = net
        .members
        .iter()
        .zip(&bridge.ports)
        .map(|(m, port)| OvsMember {
            node: m.node.clone(),
            port: port.clone(),
            options: m.port.clone(),
        })
        .collect();
    let index = topo
        .networks
        .iter()
        .position(|n| n.name == net.name)
        .expect("planned");
    let mut tunnels = Vec::new();
    let mut n = 0;
    for t in &topo.tunnels {
        for (end, other) in [(&t.a, &t.b), (&t.b, &t.a)] {
            if end.network == index {
                tunnels.push(tunnel_port(lab, n, t, end, other, bridges_of));
            }
            n += 1;
        }
    }
    OvsPlan {
        members,
        tunnels,
        address: net.ovs.address,
        controller: net.ovs.controller.clone(),
        fail_mode: net.ovs.fail_mode,
        flows: net.ovs.flows.clone(),
    }
}

fn tunnel_port(
    lab: &str,
    n: usize,
    t: &crate::topology::Tunnel,
    end: &TunnelEnd,
    other: &TunnelEnd,
    bridges_of: &dyn Fn(usize) -> String,
) -> TunnelPort {
    TunnelPort {
        name: tunnel_port_name(lab, n),
        tunnel: t.name.clone(),
        kind: t.kind,
        key: t.key,
        remote: other.local,
        local: end.local,
        underlay_bridge: bridges_of(end.underlay),
        gateway: end.via.unwrap_or(other.local),
        mark: tunnel_mark(lab, n),
    }
}
