//! The validated topology: every reference resolves, every address has its prefix.

use ipnet::Ipv4Net;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub use super::ovs::*;

/// A validated topology.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The topology's name (default lab name).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Hosts in file order.
    pub nodes: Vec<Node>,
    /// LANs in file order.
    pub networks: Vec<Network>,
    /// Point-to-point lines in file order.
    pub links: Vec<Link>,
    /// Conditions always on, per interface (from the file's `conditions` tables).
    pub conditions: Vec<EndConditions>,
    /// Named sets of conditions for `up --profile`.
    pub profiles: Vec<Profile>,
    /// The gateway's line to the host, when the topology has one.
    pub uplink: Option<Uplink>,
    /// Tunnels (VXLAN, GRE) joining two OVS LANs, in file order.
    pub tunnels: Vec<Tunnel>,
}

/// How a node runs privileged operations under Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Privileges {
    /// Try `--privileged`; fall back to capabilities with a warning if the engine refuses.
    Auto,
    /// `--privileged` or fail.
    Privileged,
    /// Only the capabilities a lab host needs (NET_ADMIN, NET_RAW, SYS_ADMIN, ...).
    Capabilities,
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Its name, also its hostname.
    pub name: String,
    /// Forwards IPv4.
    pub router: bool,
    /// Docker image (docker runtime), when set.
    pub image: Option<String>,
    /// Docker privileges (docker runtime).
    pub privileges: Privileges,
    /// Its interfaces, in the order they appear in the file (networks first, then links).
    pub interfaces: Vec<Interface>,
    /// Static routes, device routes first.
    pub routes: Vec<Route>,
    /// Proxy ARP entries.
    pub proxy_arp: Vec<ProxyArp>,
    /// Extra sysctls under /proc/sys/net (key relative to net., e.g. `ipv4.tcp_sack`).
    pub sysctls: BTreeMap<String, String>,
}

impl Node {
    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }
    /// The address other nodes' /etc/hosts give this node: its first interface address.
    pub fn primary_address(&self) -> Option<Ipv4Addr> {
        self.interfaces
            .iter()
            .find_map(|i| i.address.map(|a| a.addr()))
    }
}

/// What an interface is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Attachment {
    /// A port of LAN `networks[index]`.
    Network {
        /// index into `Topology::networks`
        index: usize,
    },
    /// One end of `links[index]`.
    Link {
        /// index into `Topology::links`
        index: usize,
    },
    /// The gateway's line to the host.
    Uplink,
}

/// An interface of a node.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    /// Name inside the node.
    pub name: String,
    /// Address with prefix, if any.
    pub address: Option<Ipv4Net>,
    /// MTU.
    pub mtu: u32,
    /// What it is plugged into.
    pub attachment: Attachment,
}

/// The bridge technology of a LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// A Linux bridge (inside the lab's switch namespace).
    Linux,
    /// An Open vSwitch bridge.
    Ovs,
}

impl NetworkKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkKind::Linux => "linux",
            NetworkKind::Ovs => "ovs",
        }
    }
}

/// A LAN.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    /// Its name (also the bridge's name).
    pub name: String,
    /// Bridge technology.
    pub kind: NetworkKind,
    /// Its prefix.
    pub subnet: Ipv4Net,
    /// Port MTU.
    pub mtu: u32,
    /// Members.
    pub members: Vec<Endpoint>,
    /// Open vSwitch settings (OVS LANs only; default for Linux bridges).
    pub ovs: OvsLan,
}

/// A node's interface on a wire.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Node name.
    pub node: String,
    /// Interface name.
    pub interface: String,
    /// Address with prefix.
    pub address: Option<Ipv4Net>,
    /// VLAN and QoS settings of its switch port (OVS LAN members only).
    pub port: PortOptions,
}

/// A point-to-point line.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Its name.
    pub name: String,
    /// MTU of both ends.
    pub mtu: u32,
    /// Side A.
    pub a: Endpoint,
    /// Side B.
    pub b: Endpoint,
}

/// The uplink line.
#[derive(Debug, Clone, Serialize)]
pub struct Uplink {
    /// The node's end.
    pub node: Endpoint,
    /// Host side interface name.
    pub host_interface: String,
    /// Host side address.
    pub host_address: Ipv4Net,
    /// Prefixes routed from the host into the lab via the node.
    pub host_routes: Vec<Ipv4Net>,
    /// MTU.
    pub mtu: u32,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination (0.0.0.0/0 for default).
    pub to: Ipv4Net,
    /// Next hop.
    pub via: Option<Ipv4Addr>,
    /// Output interface.
    pub dev: Option<String>,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.to.prefix_len() == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.to)?;
        }
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        Ok(())
    }
}

/// Proxy ARP on one interface.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyArp {
    /// The answering interface.
    pub interface: String,
    /// Addresses answered for.
    pub addresses: Vec<Ipv4Addr>,
}

impl Topology {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Comma-separated node names, for error messages.
    pub fn node_names(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The node called `name`, or a usage error naming lab `lab` and listing its nodes.
    pub fn require_node(&self, lab: &str, name: &str) -> crate::Result<&Node> {
        self.node(name).ok_or_else(|| {
            crate::Error::Usage(format!(
                "unknown node '{name}' in lab '{lab}' (its nodes: {})",
                self.node_names()
            ))
        })
    }

    /// /etc/hosts text listing every node by name (primary address), and every other
    /// address as `<node>-<interface>`.
    pub fn hosts_file(&self) -> String {
        let mut out =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for node in &self.nodes {
            let primary = node.primary_address();
            for iface in &node.interfaces {
                let Some(addr) = iface.address else { continue };
                if Some(addr.addr()) == primary {
                    out.push_str(&format!(
                        "{}\t{} {}-{}\n",
                        addr.addr(),
                        node.name,
                        node.name,
                        iface.name
                    ));
                } else {
                    out.push_str(&format!("{}\t{}-{}\n", addr.addr(), node.name, iface.name));
                }
            }
        }
        out
    }
}

/// Conditions on what leaves one interface of a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndConditions {
    /// The node.
    pub node: String,
    /// Its interface.
    pub interface: String,
    /// The conditions.
    pub conditions: crate::conditions::spec::Conditions,
}

/// A named set of link conditions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Its conditions, per interface.
    pub ends: Vec<EndConditions>,
}

impl Topology {
    /// The conditions of profile `name`, or a usage error listing the profiles.
    pub fn profile(&self, name: &str) -> crate::error::Result<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.profiles.iter().map(|p| p.name.as_str()).collect();
                crate::error::Error::Usage(if names.is_empty() {
                    format!("profile '{name}' does not exist: the topology has no [profiles]")
                } else {
                    format!(
                        "profile '{name}' does not exist (the topology's profiles: {})",
                        names.join(", ")
                    )
                })
            })
    }
}
