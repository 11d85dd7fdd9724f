//! The plan: what `up` will create, computed from a validated topology without touching the
//! machine. `up --dry-run` prints it; [`crate::lab`] applies it.
//!
//! Interfaces inside namespaces that tcplab creates get fixed interface indexes (lo is 1, the
//! rest are numbered from 2 in plan order), so that addresses and routes can be added without
//! asking the kernel for an index first.

use crate::topology::{Attachment, NetworkKind, Privileges, Route, Topology};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::fmt::Write as _;
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
}

/// Options that change the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Host interface to NAT out of.
    pub uplink: Option<String>,
    /// Make every LAN of this kind, whatever the file says.
    pub switch_override: Option<NetworkKind>,
}

fn fnv(s: &str) -> u32 {
    // FNV-1a.
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn short_hash(s: &str) -> u32 {
    // 16 bits of FNV-1a keep two labs' host-side port names apart; the names are also tagged
    // with the lab (an interface alias), so a collision can never delete another lab's.
    let h = fnv(s);
    (h >> 16) ^ (h & 0xffff)
}

/// Host-side name of an OVS port (host names must be unique across labs and fit 15 bytes).
pub fn ovs_port_name(lab: &str, port: usize) -> String {
    format!("tl{:04x}p{port}", short_hash(lab))
}

/// Host-side name of an OVS bridge.
pub fn ovs_bridge_name(lab: &str, network: &str) -> String {
    let n = format!("{lab}-{network}");
    if n.len() <= crate::topology::IFNAME_MAX {
        n
    } else {
        format!("tl{:08x}", fnv(&format!("{lab}\0{network}")))
    }
}

/// Compute the plan for `topo` as lab `lab`.
pub fn plan(topo: &Topology, lab: &str, opts: &PlanOptions) -> Plan {
    let kind_of = |k: NetworkKind| opts.switch_override.unwrap_or(k);
    let mut nodes: Vec<NodePlan> = Vec::new();
    for node in &topo.nodes {
        let mut sysctls = vec![
            (
                "ipv4.ip_forward".to_string(),
                if node.router { "1" } else { "0" }.to_string(),
            ),
            ("ipv4.conf.all.rp_filter".into(), "0".into()),
            ("ipv4.conf.default.rp_filter".into(), "0".into()),
            // The book's lab is IPv4 only: no IPv6 chatter in captures.
            ("ipv6.conf.all.disable_ipv6".into(), "1".into()),
            ("ipv6.conf.default.disable_ipv6".into(), "1".into()),
            // Every traceroute probe answered, as in the book.
            ("ipv4.icmp_ratelimit".into(), "0".into()),
        ];
        let mut interfaces = Vec::new();
        let mut next_index = 2u32;
        for iface in &node.interfaces {
            if iface.attachment == Attachment::Uplink && opts.uplink.is_none() {
                continue;
            }
            interfaces.push(IfacePlan {
                name: iface.name.clone(),
                index: next_index,
                mtu: iface.mtu,
            });
            next_index += 1;
        }
        let index_of = |name: &str| interfaces.iter().find(|i| i.name == name).map(|i| i.index);
        let addresses: Vec<(u32, Ipv4Net)> = node
            .interfaces
            .iter()
            .filter_map(|i| Some((index_of(&i.name)?, i.address?)))
            .collect();
        let mut routes: Vec<RoutePlan> = node
            .routes
            .iter()
            .map(|r| RoutePlan {
                route: r.clone(),
                oif: r.dev.as_deref().and_then(index_of),
            })
            .collect();
        let mut iface_sysctls = Vec::new();
        // The topology's own sysctls: per-interface ones (ipv4.conf.<if>.*, ipv4.neigh.<if>.*)
        // once the interfaces exist, the rest at once.
        for (k, v) in &node.sysctls {
            let parts: Vec<&str> = k.split('.').collect();
            let per_iface = parts.len() >= 4
                && (parts[1] == "conf" || parts[1] == "neigh")
                && parts[2] != "all"
                && parts[2] != "default";
            if per_iface {
                iface_sysctls.push((k.clone(), v.clone()));
            } else {
                sysctls.push((k.clone(), v.clone()));
            }
        }
        let mut proxy_neighbours = Vec::new();
        for p in &node.proxy_arp {
            iface_sysctls.push((format!("ipv4.conf.{}.proxy_arp", p.interface), "1".into()));
            // Answer at once: the default proxy_delay (up to 0.8 s) loses a first ping -W1.
            iface_sysctls.push((
                format!("ipv4.neigh.{}.proxy_delay", p.interface),
                "0".into(),
            ));
            if let Some(idx) = index_of(&p.interface) {
                for a in &p.addresses {
                    proxy_neighbours.push((idx, *a));
                }
            }
        }
        if let (Some(_), Some(up)) = (&opts.uplink, &topo.uplink)
            && up.node.node == node.name
            && !node.routes.iter().any(|r| r.to.prefix_len() == 0)
        {
            routes.push(RoutePlan {
                route: Route {
                    to: Ipv4Net::default(),
                    via: Some(up.host_address.addr()),
                    dev: Some(up.node.interface.clone()),
                },
                oif: index_of(&up.node.interface),
            });
        }
        nodes.push(NodePlan {
            name: node.name.clone(),
            netns: node_netns(lab, &node.name),
            router: node.router,
            image: node.image.clone(),
            privileges: node.privileges,
            sysctls,
            iface_sysctls,
            interfaces,
            addresses,
            routes,
            proxy_neighbours,
            hosts: topo.hosts_file(),
        });
    }
    let node_idx = |name: &str| {
        topo.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("validated")
    };
    let iface_idx = |node: usize, ifname: &str| {
        nodes[node]
            .interfaces
            .iter()
            .find(|i| i.name == ifname)
            .map(|i| i.index)
            .expect("validated")
    };

    let mut bridges = Vec::new();
    let mut veths = Vec::new();
    let mut switch_index = 2u32;
    let mut ovs_ports = 0usize;
    for net in &topo.networks {
        let kind = kind_of(net.kind);
        let bi = bridges.len();
        let (bname, bindex) = match kind {
            NetworkKind::Linux => {
                let i = switch_index;
                switch_index += 1;
                (net.name.clone(), i)
            }
            NetworkKind::Ovs => (ovs_bridge_name(lab, &net.name), 0),
        };
        let mut ports = Vec::new();
        for m in &net.members {
            let ni = node_idx(&m.node);
            let b = VethEnd {
                ns: Ns::Node(ni),
                name: m.interface.clone(),
                index: iface_idx(ni, &m.interface),
            };
            let label = format!("{}: {} {}", net.name, m.node, m.interface);
            match kind {
                NetworkKind::Linux => {
                    // Readable when it fits and is unique in the switch namespace (node "a-b"
                    // with "c" and node "a" with "b-c" would clash); numbered otherwise.
                    let mut pname = format!("{}-{}", m.node, m.interface);
                    let taken = |n: &str| {
                        topo.networks.iter().any(|x| x.name == n)
                            || bridges
                                .iter()
                                .any(|b: &BridgePlan| b.ports.iter().any(|p| p == n))
                            || ports.iter().any(|p: &String| p == n)
                    };
                    if pname.len() > crate::topology::IFNAME_MAX || taken(&pname) {
                        pname = format!("tlport{switch_index}");
                    }
                    let a = VethEnd {
                        ns: Ns::Switch,
                        name: pname.clone(),
                        index: switch_index,
                    };
                    switch_index += 1;
                    ports.push(pname);
                    veths.push(VethPlan {
                        label,
                        a,
                        b,
                        mtu: net.mtu,
                        bridge: Some(bi),
                    });
                }
                NetworkKind::Ovs => {
                    // Created from the node's side so that it vanishes with the node.
                    let pname = ovs_port_name(lab, ovs_ports);
                    ovs_ports += 1;
                    ports.push(pname.clone());
                    let host = VethEnd {
                        ns: Ns::Host,
                        name: pname,
                        index: 0,
                    };
                    veths.push(VethPlan {
                        label,
                        a: b,
                        b: host,
                        mtu: net.mtu,
                        bridge: Some(bi),
                    });
                }
            }
        }
        bridges.push(BridgePlan {
            network: net.name.clone(),
            name: bname,
            kind,
            index: bindex,
            ports,
        });
    }
    for link in &topo.links {
        let (na, nb) = (node_idx(&link.a.node), node_idx(&link.b.node));
        veths.push(VethPlan {
            label: format!(
                "{}: {} {} - {} {}",
                link.name, link.a.node, link.a.interface, link.b.node, link.b.interface
            ),
            a: VethEnd {
                ns: Ns::Node(na),
                name: link.a.interface.clone(),
                index: iface_idx(na, &link.a.interface),
            },
            b: VethEnd {
                ns: Ns::Node(nb),
                name: link.b.interface.clone(),
                index: iface_idx(nb, &link.b.interface),
            },
            mtu: link.mtu,
            bridge: None,
        });
    }
    let uplink = match (&opts.uplink, &topo.uplink) {
        (Some(uplink), Some(up)) => {
            let ni = node_idx(&up.node.node);
            veths.push(VethPlan {
                label: format!(
                    "uplink: {} {} - host {}",
                    up.node.node, up.node.interface, up.host_interface
                ),
                a: VethEnd {
                    ns: Ns::Node(ni),
                    name: up.node.interface.clone(),
                    index: iface_idx(ni, &up.node.interface),
                },
                b: VethEnd {
                    ns: Ns::Host,
                    name: up.host_interface.clone(),
                    index: 0,
                },
                mtu: up.mtu,
                bridge: None,
            });
            let mut masquerade: Vec<Ipv4Net> = topo.networks.iter().map(|n| n.subnet).collect();
            for l in &topo.links {
                for a in [l.a.address, l.b.address].into_iter().flatten() {
                    masquerade.push(a.trunc());
                }
            }
            masquerade.push(up.host_address.trunc());
            masquerade = Ipv4Net::aggregate(&masquerade);
            Some(UplinkPlan {
                uplink: uplink.clone(),
                host_interface: up.host_interface.clone(),
                host_address: up.host_address,
                host_routes: up.host_routes.clone(),
                gateway: up.node.address.expect("uplink address validated").addr(),
                masquerade,
            })
        }
        _ => None,
    };
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

    /// Human-readable plan, for `up --dry-run`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "lab {}", self.lab);
        if let Some(sw) = &self.switch_ns {
            let _ = writeln!(o, "namespace {sw} (switches)");
        }
        for n in &self.nodes {
            let _ = writeln!(
                o,
                "node {} (namespace {}){}",
                n.name,
                n.netns,
                if n.router { ", router" } else { "" }
            );
        }
        for b in &self.bridges {
            let _ = writeln!(
                o,
                "bridge {} ({}, network {}): ports {}",
                b.name,
                b.kind.as_str(),
                b.network,
                b.ports.join(", ")
            );
        }
        for v in &self.veths {
            let _ = writeln!(
                o,
                "veth {}: {}:{} <-> {}:{} mtu {}",
                v.label,
                self.ns_name(v.a.ns),
                v.a.name,
                self.ns_name(v.b.ns),
                v.b.name,
                v.mtu
            );
        }
        for n in &self.nodes {
            let name_of = |idx: u32| {
                n.interfaces
                    .iter()
                    .find(|i| i.index == idx)
                    .map_or("?", |i| i.name.as_str())
            };
            for (idx, a) in &n.addresses {
                let _ = writeln!(o, "address {} {} {}", n.name, name_of(*idx), a);
            }
            for r in &n.routes {
                let _ = writeln!(o, "route {} {}", n.name, r.route);
            }
            for (k, v) in n.sysctls.iter().chain(&n.iface_sysctls) {
                let _ = writeln!(o, "sysctl {} net.{} = {}", n.name, k, v);
            }
            for (idx, a) in &n.proxy_neighbours {
                let _ = writeln!(
                    o,
                    "proxy-arp {} {} answers for {}",
                    n.name,
                    name_of(*idx),
                    a
                );
            }
        }
        if let Some(u) = &self.uplink {
            let _ = writeln!(o, "host address {} {}", u.host_interface, u.host_address);
            for r in &u.host_routes {
                let _ = writeln!(
                    o,
                    "host route {} via {} dev {}",
                    r, u.gateway, u.host_interface
                );
            }
            for s in &u.masquerade {
                let _ = writeln!(o, "host nat MASQUERADE {} out of {}", s, u.uplink);
            }
            let _ = writeln!(
                o,
                "host forward {} <-> {} (chain {PREFIX}-{})",
                u.host_interface, u.uplink, self.lab
            );
        }
        o
    }
}
