//! The plan: what `up` will create, computed from a validated topology without touching the
//! machine. `up --dry-run` prints it; [`crate::lab`] applies it.
//!
//! Interfaces inside namespaces that tcplab creates get fixed interface indexes (lo is 1, the
//! rest are numbered from 2 in plan order), so that addresses and routes can be added without
//! asking the kernel for an index first.

mod nodes;
mod ovs;
mod render;
mod wires;

pub use ovs::{OvsMember, OvsPlan, TunnelPort, is_lab_mark, tunnel_mark, tunnel_port_name};

use crate::topology::model::EndConditions;
use crate::topology::{NetworkKind, Privileges, Route, Topology};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::net::Ipv4Addr;

/// Prefix of every name tcplab gives a namespace, container or chain.
pub const PREFIX: &str = "tcplab";

/// Where an interface lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ns {
    /// The host's own namespace (uplink host side, OVS ports).
    Host,
    /// The lab's switch namespace holding its Linux bridges.
    Switch,
    /// A node's namespace (`nodes[i]`).
    Node(usize),
}

/// A namespace name for a lab's node: `tcplab-<lab>-<node>`.
pub fn node_netns(lab: &str, node: &str) -> String {
    format!("{PREFIX}-{lab}-{node}")
}

/// The lab's switch namespace: `tcplab-<lab>` (lab names have no '-', node names follow one).
pub fn switch_netns(lab: &str) -> String {
    format!("{PREFIX}-{lab}")
}

/// The plan of one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodePlan {
    /// Node name (and hostname).
    pub name: String,
    /// Its namespace (and container) name.
    pub netns: String,
    /// Forwards IPv4.
    pub router: bool,
    /// Docker image (docker runtime).
    pub image: Option<String>,
    /// Docker privileges.
    pub privileges: Privileges,
    /// sysctls set right after the namespace exists (relative to /proc/sys/net/).
    pub sysctls: Vec<(String, String)>,
    /// sysctls set after the interfaces exist (per-interface ones).
    pub iface_sysctls: Vec<(String, String)>,
    /// Interfaces: name, fixed index, mtu.
    pub interfaces: Vec<IfacePlan>,
    /// Addresses: interface index, address.
    pub addresses: Vec<(u32, Ipv4Net)>,
    /// Routes, with output interface indexes resolved.
    pub routes: Vec<RoutePlan>,
    /// Proxy neighbour entries: interface index, address.
    pub proxy_neighbours: Vec<(u32, Ipv4Addr)>,
    /// /etc/hosts of the node.
    pub hosts: String,
}

/// An interface inside a node.
#[derive(Debug, Clone, Serialize)]
pub struct IfacePlan {
    /// Name.
    pub name: String,
    /// Fixed ifindex.
    pub index: u32,
    /// MTU.
    pub mtu: u32,
}

/// A route with its interface index.
#[derive(Debug, Clone, Serialize)]
pub struct RoutePlan {
    /// As written.
    pub route: Route,
    /// Output interface index, if named.
    pub oif: Option<u32>,
}

/// A bridge for a LAN.
#[derive(Debug, Clone, Serialize)]
pub struct BridgePlan {
    /// Network name.
    pub network: String,
    /// Bridge device name (the network name for Linux bridges inside the switch namespace;
    /// a lab-unique name for OVS bridges, which live in the host's namespace).
    pub name: String,
    /// Linux or OVS.
    pub kind: NetworkKind,
    /// Fixed index in the switch namespace (Linux bridges).
    pub index: u32,
    /// Port names on the switch side.
    pub ports: Vec<String>,
    /// Open vSwitch settings (OVS bridges; default for Linux bridges).
    pub ovs: OvsPlan,
}

/// One end of a veth pair.
#[derive(Debug, Clone, Serialize)]
pub struct VethEnd {
    /// Where it lives.
    pub ns: Ns,
    /// Its name there.
    pub name: String,
    /// Fixed index (0: let the kernel choose, in the host namespace).
    pub index: u32,
}

/// A veth pair: created in `a.ns` with its peer directly in `b.ns`, both up.
#[derive(Debug, Clone, Serialize)]
pub struct VethPlan {
    /// What it is for, e.g. `net1: aix eth1`.
    pub label: String,
    /// The end the request is sent from.
    pub a: VethEnd,
    /// The peer.
    pub b: VethEnd,
    /// MTU of both ends.
    pub mtu: u32,
    /// Bridge (index into `Plan::bridges`) that `a` is a port of.
    pub bridge: Option<usize>,
}

/// The uplink, when `up` names one.
#[derive(Debug, Clone, Serialize)]
pub struct UplinkPlan {
    /// The host interface traffic leaves by (UPLINK).
    pub uplink: String,
    /// Host side of the gateway's line.
    pub host_interface: String,
    /// Its address.
    pub host_address: Ipv4Net,
    /// Prefixes routed into the lab.
    pub host_routes: Vec<Ipv4Net>,
    /// The node's address on the line (next hop of the host routes).
    pub gateway: Ipv4Addr,
    /// Sources that are MASQUERADEd out of the uplink.
    pub masquerade: Vec<Ipv4Net>,
}

/// Everything `up` will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Lab name.
    pub lab: String,
    /// Switch namespace, when there is a Linux bridge.
    pub switch_ns: Option<String>,
    /// Nodes.
    pub nodes: Vec<NodePlan>,
    /// Bridges.
    pub bridges: Vec<BridgePlan>,
    /// Veth pairs.
    pub veths: Vec<VethPlan>,
    /// Uplink.
    pub uplink: Option<UplinkPlan>,
    /// Link conditions to apply once the lab is up, per interface.
    pub conditions: Vec<EndConditions>,
    /// The fake internet the lab is NATed into, instead of a real uplink.
    pub fake_internet: Option<FakeInternetPlan>,
}

/// A stand-in for the internet, made by `up --fake-internet`: a namespace holding the far end of
/// a veth whose host end is the lab's uplink, on 198.51.100.0/24 (TEST-NET-2, never routed on
/// the real internet). Experiments reach it as the node `internet`.
#[derive(Debug, Clone, Serialize)]
pub struct FakeInternetPlan {
    /// Its namespace.
    pub netns: String,
    /// The host end, the lab's uplink.
    pub host_link: String,
    /// Its address.
    pub host_address: Ipv4Net,
    /// The far end, in the namespace.
    pub far_link: String,
    /// Its address.
    pub far_address: Ipv4Net,
}

/// The name experiments give the fake internet, as if it were a node.
pub const FAKE_INTERNET_NODE: &str = "internet";

impl FakeInternetPlan {
    /// The fake internet of lab `lab`.
    pub fn for_lab(lab: &str) -> FakeInternetPlan {
        FakeInternetPlan {
            netns: format!("tcplab-{lab}.internet"),
            host_link: format!("tli{:04x}", crate::util::short_hash(lab)),
            host_address: "198.51.100.1/24".parse().expect("valid prefix"),
            far_link: "inet0".into(),
            far_address: "198.51.100.2/24".parse().expect("valid prefix"),
        }
    }
}

/// Options that change the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Host interface to NAT out of.
    pub uplink: Option<String>,
    /// Make every LAN of this kind, whatever the file says.
    pub switch_override: Option<NetworkKind>,
    /// The topology's profile of link conditions to apply.
    pub profile: Option<String>,
    /// NAT the lab into a fake internet made for it (`uplink` is then its host end).
    pub fake_internet: bool,
}

/// Host-side name of an OVS port (host names must be unique across labs and fit 15 bytes):
/// `tl<16-bit hash of the lab>p<port>`. A collision of two labs' hashes can never delete the
/// other lab's ports: they are also tagged with their lab (an interface alias).
pub fn ovs_port_name(lab: &str, port: usize) -> String {
    format!("tl{:04x}p{port}", crate::util::short_hash(lab))
}

/// Host-side name of an OVS bridge: `<lab>-<network>` when it fits 15 bytes, else
/// `tl<32-bit hash of both>`.
pub fn ovs_bridge_name(lab: &str, network: &str) -> String {
    let n = format!("{lab}-{network}");
    if n.len() <= crate::topology::IFNAME_MAX {
        n
    } else {
        let h = crate::util::fnv1a64(&[lab.as_bytes(), network.as_bytes()]);
        format!("tl{:08x}", (h >> 32) as u32 ^ h as u32)
    }
}

/// The conditions `up` applies: the topology's always-on ones, then the profile's (which
/// replace an end's always-on conditions). An unknown profile adds nothing (`up` refuses it
/// before planning).
fn conditions_of(topo: &Topology, profile: Option<&str>) -> Vec<EndConditions> {
    let mut out: Vec<EndConditions> = Vec::new();
    let profile = profile
        .and_then(|p| topo.profiles.iter().find(|x| x.name == p))
        .map(|p| p.ends.as_slice())
        .unwrap_or_default();
    for e in topo.conditions.iter().chain(profile) {
        out.retain(|x| !(x.node == e.node && x.interface == e.interface));
        out.push(e.clone());
    }
    out
}

/// Compute the plan for `topo` as lab `lab`: the nodes with their interfaces, addresses,
/// routes, sysctls and hosts file (`nodes`), then the wires between them (`wires`):
/// a bridge per LAN with a veth per member, a veth per link, and the uplink when asked for.
pub fn plan(topo: &Topology, lab: &str, opts: &PlanOptions) -> Plan {
    let hosts = topo.hosts_file();
    let nodes: Vec<NodePlan> = topo
        .nodes
        .iter()
        .map(|node| nodes::node_plan(topo, node, lab, opts, &hosts))
        .collect();
    let mut wires = wires::Wires::new(topo, lab, &nodes);
    for net in &topo.networks {
        wires.network(net, opts.switch_override.unwrap_or(net.kind));
    }
    for link in &topo.links {
        wires.link(link);
    }
    let fake_internet =
        (opts.fake_internet && topo.uplink.is_some()).then(|| FakeInternetPlan::for_lab(lab));
    let host_uplink = fake_internet
        .as_ref()
        .map(|f| f.host_link.clone())
        .or_else(|| opts.uplink.clone());
    let uplink = match (&host_uplink, &topo.uplink) {
        (Some(host_uplink), Some(up)) => Some(wires.uplink(host_uplink, up)),
        _ => None,
    };
    let (bridges, veths) = wires.finish();
    let switch_ns = bridges
        .iter()
        .any(|b| b.kind == NetworkKind::Linux)
        .then(|| switch_netns(lab));
    Plan {
        lab: lab.to_string(),
        switch_ns,
        nodes,
        bridges,
        veths,
        uplink,
        conditions: conditions_of(topo, opts.profile.as_deref()),
        fake_internet,
    }
}

impl Plan {
    /// Move every fixed interface index in namespace `ns` up by `by` (devices the kernel made
    /// in a new namespace take the first numbers).
    pub fn shift_indexes(&mut self, ns: Ns, by: u32) {
        let bump = |i: &mut u32| {
            if *i != 0 {
                *i += by;
            }
        };
        for v in &mut self.veths {
            for end in [&mut v.a, &mut v.b] {
                if end.ns == ns {
                    bump(&mut end.index);
                }
            }
        }
        match ns {
            Ns::Node(n) => {
                let node = &mut self.nodes[n];
                node.interfaces.iter_mut().for_each(|i| bump(&mut i.index));
                node.addresses.iter_mut().for_each(|(i, _)| bump(i));
                node.routes
                    .iter_mut()
                    .for_each(|r| r.oif.iter_mut().for_each(&bump));
                node.proxy_neighbours.iter_mut().for_each(|(i, _)| bump(i));
            }
            Ns::Switch => self
                .bridges
                .iter_mut()
                .filter(|b| b.kind == NetworkKind::Linux)
                .for_each(|b| bump(&mut b.index)),
            Ns::Host => {}
        }
    }

    /// Name of a namespace reference.
    pub fn ns_name(&self, ns: Ns) -> &str {
        match ns {
            Ns::Host => "host",
            Ns::Switch => self.switch_ns.as_deref().unwrap_or("switch"),
            Ns::Node(i) => &self.nodes[i].name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_side_names_fit_and_tell_labs_apart() {
        let port = ovs_port_name("tcpip", 7);
        assert_eq!(
            port,
            format!("tl{:04x}p7", crate::util::short_hash("tcpip"))
        );
        assert_ne!(ovs_port_name("tcpip", 7), ovs_port_name("tcpip2", 7));
        assert!(ovs_port_name("abcdefghijkl", 999).len() <= crate::topology::IFNAME_MAX);
        assert_eq!(ovs_bridge_name("tcpip", "net1"), "tcpip-net1");
        let long = ovs_bridge_name("abcdefghijkl", "net1");
        assert!(long.starts_with("tl") && long.len() == 10, "{long}");
        assert_ne!(long, ovs_bridge_name("abcdefghijkl", "net2"));
        assert_ne!(long, ovs_bridge_name("abcdefghijk", "lnet1"));
    }

    #[test]
    fn every_veth_end_in_a_node_is_one_of_its_planned_interfaces() {
        let topo = crate::topology::builtin();
        for switch_override in [None, Some(NetworkKind::Linux)] {
            let opts = PlanOptions {
                uplink: Some("eth9".into()),
                switch_override,
                profile: None,
                fake_internet: false,
            };
            let p = plan(&topo, "tcpip", &opts);
            let mut ends = 0;
            for v in &p.veths {
                for end in [&v.a, &v.b] {
                    let Ns::Node(n) = end.ns else { continue };
                    ends += 1;
                    let iface = p.nodes[n].interfaces.iter().find(|i| i.name == end.name);
                    assert_eq!(iface.map(|i| i.index), Some(end.index), "{}", v.label);
                }
            }
            let interfaces: usize = p.nodes.iter().map(|n| n.interfaces.len()).sum();
            assert_eq!(ends, interfaces, "one veth end per planned interface");
        }
    }
}
