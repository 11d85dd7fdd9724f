//! The wires of the plan: a bridge per LAN with a veth pair per member (its switch end in the
//! switch namespace for a Linux bridge, in the host's for Open vSwitch), a veth pair per
//! point-to-point link, and the uplink's veth pair from its node towards the lab's edge.

use super::{
    BridgePlan, NodePlan, Ns, UplinkPlan, VethEnd, VethPlan, ovs_bridge_name, ovs_port_name,
};
use crate::topology::{IFNAME_MAX, Link, Network, NetworkKind, Topology, Uplink};
use ipnet::Ipv4Net;

/// The bridges and veth pairs planned so far, and the next free names and indexes.
pub(super) struct Wires<'a> {
    topo: &'a Topology,
    lab: &'a str,
    nodes: &'a [NodePlan],
    bridges: Vec<BridgePlan>,
    veths: Vec<VethPlan>,
    /// Next fixed index in the switch namespace (lo is 1).
    switch_index: u32,
    /// OVS ports named so far (their names are numbered per lab).
    ovs_ports: usize,
}

impl<'a> Wires<'a> {
    /// No wires yet between `nodes` (the plans of `topo`'s nodes, in order).
    pub(super) fn new(topo: &'a Topology, lab: &'a str, nodes: &'a [NodePlan]) -> Self {
        Wires {
            topo,
            lab,
            nodes,
            bridges: Vec::new(),
            veths: Vec::new(),
            switch_index: 2,
            ovs_ports: 0,
        }
    }

    /// The bridges and veth pairs, in plan order.
    pub(super) fn finish(self) -> (Vec<BridgePlan>, Vec<VethPlan>) {
        (self.bridges, self.veths)
    }

    /// Interface `iface` of node `node`, as a veth end in the node's namespace.
    fn node_end(&self, node: &str, iface: &str) -> VethEnd {
        let ni = self
            .topo
            .nodes
            .iter()
            .position(|n| n.name == node)
            .expect("validated");
        let index = self.nodes[ni]
            .interfaces
            .iter()
            .find(|i| i.name == iface)
            .map(|i| i.index)
            .expect("validated");
        VethEnd {
            ns: Ns::Node(ni),
            name: iface.to_string(),
            index,
        }
    }

    /// LAN `net` as a bridge of `kind`, with a veth pair per member.
    pub(super) fn network(&mut self, net: &Network, kind: NetworkKind) {
        let bridge = self.bridges.len();
        let (name, index) = match kind {
            NetworkKind::Linux => {
                let i = self.switch_index;
                self.switch_index += 1;
                (net.name.clone(), i)
            }
            NetworkKind::Ovs => (ovs_bridge_name(self.lab, &net.name), 0),
        };
        let mut ports = Vec::new();
        for m in &net.members {
            let node_end = self.node_end(&m.node, &m.interface);
            let (a, b) = match kind {
                NetworkKind::Linux => (self.linux_port(&m.node, &m.interface, &ports), node_end),
                // Created from the node's side so that it vanishes with the node.
                NetworkKind::Ovs => (node_end, self.ovs_port()),
            };
            let port = if kind == NetworkKind::Linux { &a } else { &b };
            ports.push(port.name.clone());
            self.veths.push(VethPlan {
                label: format!("{}: {} {}", net.name, m.node, m.interface),
                a,
                b,
                mtu: net.mtu,
                bridge: Some(bridge),
            });
        }
        let mut plan = BridgePlan {
            network: net.name.clone(),
            name,
            kind,
            index,
            ports,
            ovs: Default::default(),
        };
        if kind == NetworkKind::Ovs {
            let lab = self.lab;
            let topo = self.topo;
            let bridge_of = |i: usize| ovs_bridge_name(lab, &topo.networks[i].name);
            plan.ovs = super::ovs::ovs_plan(topo, lab, net, &plan, &bridge_of);
        }
        self.bridges.push(plan);
    }

    /// The switch end of a member's veth on a Linux bridge, with the next switch index: named
    /// `<node>-<iface>` when that fits and is unique in the switch namespace (node "a-b" with
    /// "c" and node "a" with "b-c" would clash), `tlport<index>` otherwise. `ports` are the
    /// names already given on the bridge being planned.
    fn linux_port(&mut self, node: &str, iface: &str, ports: &[String]) -> VethEnd {
        let index = self.switch_index;
        self.switch_index += 1;
        let mut name = format!("{node}-{iface}");
        if name.len() > IFNAME_MAX || self.switch_name_taken(&name, ports) {
            name = format!("tlport{index}");
        }
        VethEnd {
            ns: Ns::Switch,
            name,
            index,
        }
    }

    /// Whether `name` already names a bridge or a port in the switch namespace.
    fn switch_name_taken(&self, name: &str, ports: &[String]) -> bool {
        self.topo.networks.iter().any(|x| x.name == name)
            || self
                .bridges
                .iter()
                .any(|b| b.ports.iter().any(|p| p == name))
            || ports.iter().any(|p| p == name)
    }

    /// The host end of a member's veth on an OVS bridge, with the lab's next port name.
    fn ovs_port(&mut self) -> VethEnd {
        let name = ovs_port_name(self.lab, self.ovs_ports);
        self.ovs_ports += 1;
        VethEnd {
            ns: Ns::Host,
            name,
            index: 0,
        }
    }

    /// Point-to-point `link` as a veth pair between its two nodes.
    pub(super) fn link(&mut self, link: &Link) {
        self.veths.push(VethPlan {
            label: format!(
                "{}: {} {} - {} {}",
                link.name, link.a.node, link.a.interface, link.b.node, link.b.interface
            ),
            a: self.node_end(&link.a.node, &link.a.interface),
            b: self.node_end(&link.b.node, &link.b.interface),
            mtu: link.mtu,
            bridge: None,
        });
    }

    /// The uplink as a veth pair from its node to the host, and what the lab's edge does with
    /// it: its address, its routes into the lab, and NAT of the lab's prefixes out of
    /// `host_uplink`. The host end gets a name of the lab's own (`tlg<hash of the lab>`, so
    /// that any number of labs can have an uplink at once); the uplink phase moves it into the
    /// lab's edge namespace as the topology's `host_interface`, so the host never holds the
    /// lab's addresses or routes.
    pub(super) fn uplink(&mut self, host_uplink: &str, up: &Uplink) -> UplinkPlan {
        self.veths.push(VethPlan {
            label: format!(
                "uplink: {} {} - edge {}",
                up.node.node, up.node.interface, up.host_interface
            ),
            a: self.node_end(&up.node.node, &up.node.interface),
            b: VethEnd {
                ns: Ns::Host,
                name: uplink_line_name(self.lab),
                index: 0,
            },
            mtu: up.mtu,
            bridge: None,
        });
        UplinkPlan {
            uplink: host_uplink.to_string(),
            host_interface: up.host_interface.clone(),
            host_address: up.host_address,
            host_routes: up.host_routes.clone(),
            gateway: up.node.address.expect("uplink address validated").addr(),
            masquerade: masquerade(self.topo, up),
        }
    }
}

/// The name of the gateway's line in the host's namespace until the uplink phase moves it
/// into the lab's edge: `tlg` and 32 bits of a hash of the lab (≤ 15 bytes).
fn uplink_line_name(lab: &str) -> String {
    let h = crate::util::fnv1a64(&[lab.as_bytes(), b"uplink-line"]);
    format!("tlg{:08x}", (h >> 32) as u32 ^ h as u32)
}

/// The sources NATed out of the uplink: every LAN, every addressed link and the uplink line
/// itself, aggregated.
fn masquerade(topo: &Topology, up: &Uplink) -> Vec<Ipv4Net> {
    let mut nets: Vec<Ipv4Net> = topo.networks.iter().map(|n| n.subnet).collect();
    for l in &topo.links {
        nets.extend(
            [l.a.address, l.b.address]
                .into_iter()
                .flatten()
                .map(|a| a.trunc()),
        );
    }
    nets.push(up.host_address.trunc());
    Ipv4Net::aggregate(&nets)
}
