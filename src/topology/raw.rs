//! The topology file exactly as written: serde structs that refuse unknown fields.
//! See the README ("Topology format") for the documented format.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Lab name: lowercase letters and digits (the default `--lab`).
    pub name: String,
    /// Free text shown by `status` and `graph`.
    #[serde(default)]
    pub description: Option<String>,
    /// Settings every node gets unless it sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Hosts, by name, in file order.
    #[serde(default)]
    pub nodes: indexmap_like::OrderedMap<RawNode>,
    /// Layer-2 networks (LANs), by name.
    #[serde(default)]
    pub networks: indexmap_like::OrderedMap<RawNetwork>,
    /// Point-to-point lines.
    #[serde(default)]
    pub links: Vec<RawLink>,
    /// The gateway's line to the host, used only when `up` is given an uplink interface.
    #[serde(default)]
    pub uplink: Option<RawUplink>,
    /// Named sets of link conditions, applied by `up --profile NAME`.
    #[serde(default)]
    pub profiles: indexmap_like::OrderedMap<RawProfile>,
    /// Tunnels (VXLAN, GRE) joining two OVS LANs over an underlay.
    #[serde(default)]
    pub tunnels: Vec<RawTunnel>,
}

/// Link conditions as written: condition name -> value in tc's units (`rate = "9600bit"`,
/// `framing = "slip"`, `delay = "100ms"`, `loss = "5%"`, `queue = 100`).
pub type RawConditions = BTreeMap<String, toml::Value>;

/// A named set of link conditions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Free text shown by `up --profile` errors and the README.
    #[serde(default)]
    pub description: Option<String>,
    /// Conditions for both directions of point-to-point lines, by line name.
    #[serde(default)]
    pub links: BTreeMap<String, RawConditions>,
    /// Conditions for what leaves one interface, by `NODE:IFACE`.
    #[serde(default)]
    pub ends: BTreeMap<String, RawConditions>,
}

/// Defaults applied to every node.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Docker image of the nodes (docker runtime).
    #[serde(default)]
    pub image: Option<String>,
    /// `privileged` or `capabilities` (docker runtime).
    #[serde(default)]
    pub privileges: Option<String>,
}

/// One host.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Forward IPv4 between interfaces.
    #[serde(default)]
    pub router: bool,
    /// Docker image for this node (docker runtime).
    #[serde(default)]
    pub image: Option<String>,
    /// Static routes.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Proxy ARP: answer ARP on `interface` for `addresses`.
    #[serde(default)]
    pub proxy_arp: Vec<RawProxyArp>,
    /// Extra sysctls under /proc/sys/net set in the node, e.g. `"ipv4.tcp_sack" = "0"`.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
}

/// A static route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// `default` or a prefix like `140.252.13.32/27`.
    pub to: String,
    /// Next hop; absent for a device route.
    #[serde(default)]
    pub via: Option<String>,
    /// Output interface; required for a device route.
    #[serde(default)]
    pub dev: Option<String>,
}

/// A proxy-ARP entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyArp {
    /// The node's interface that answers.
    pub interface: String,
    /// Addresses it answers for with its own MAC.
    pub addresses: Vec<String>,
}

/// A LAN.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// `linux` (a Linux bridge) or `ovs` (an Open vSwitch bridge).
    #[serde(default)]
    pub kind: Option<String>,
    /// The LAN's prefix, e.g. `140.252.1.0/24`.
    pub subnet: String,
    /// MTU of every port (default 1500).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The hosts on it.
    #[serde(default)]
    pub members: Vec<RawEndpoint>,
    /// OVS only: address of the bridge's own port in the host's namespace (`A.B.C.D`, prefix
    /// from `subnet`): the bridge's place on an underlay or a management network.
    #[serde(default)]
    pub address: Option<String>,
    /// OVS only: OpenFlow controller target, e.g. `tcp:10.0.9.10:6653`.
    #[serde(default)]
    pub controller: Option<String>,
    /// OVS only: `standalone` (default) or `secure`.
    #[serde(default)]
    pub fail_mode: Option<String>,
    /// OVS only: flow entries in `ovs-ofctl` syntax, ports named by node
    /// (`priority=100,in_port=h1,actions=drop`).
    #[serde(default)]
    pub flows: Vec<String>,
}

/// One end of a wire: a node's interface and its address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Node name.
    pub node: String,
    /// Interface name inside the node (at most 15 bytes).
    pub interface: String,
    /// `A.B.C.D` (prefix taken from the network) or `A.B.C.D/N`; absent: no address.
    #[serde(default)]
    pub address: Option<String>,
    /// Conditions on what leaves this interface, always on.
    #[serde(default)]
    pub conditions: Option<RawConditions>,
    /// OVS LAN members only: access port of this VLAN (1-4094).
    #[serde(default)]
    pub vlan: Option<u16>,
    /// OVS LAN members only: trunk port carrying these VLANs tagged.
    #[serde(default)]
    pub trunks: Option<Vec<u16>>,
    /// OVS LAN members only: rate limits of the member's port.
    #[serde(default)]
    pub qos: Option<RawQos>,
}

/// Rate limits of an OVS port, in tc's units (`2mbit`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQos {
    /// Egress shaping toward the member (HTB).
    #[serde(default)]
    pub max_rate: Option<String>,
    /// Ingress policing of what the member sends.
    #[serde(default)]
    pub ingress_rate: Option<String>,
    /// Burst of the ingress policer (`100kbit`).
    #[serde(default)]
    pub ingress_burst: Option<String>,
}

/// A tunnel between two OVS LANs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTunnel {
    /// Optional name (default `<a.network>-<b.network>`).
    #[serde(default)]
    pub name: Option<String>,
    /// `vxlan` or `gre`.
    pub kind: String,
    /// VXLAN VNI (24 bits) or GRE key.
    pub key: u32,
    /// Side A.
    pub a: RawTunnelEnd,
    /// Side B.
    pub b: RawTunnelEnd,
}

/// One end of a tunnel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTunnelEnd {
    /// The OVS LAN the tunnel port is on.
    pub network: String,
    /// The OVS LAN (with an `address`) the encapsulated packets leave from.
    pub underlay: String,
    /// Next hop toward the other end's underlay address, when not on the same subnet.
    #[serde(default)]
    pub via: Option<String>,
}

/// A point-to-point line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// Optional name (default `<a.node>-<b.node>`).
    #[serde(default)]
    pub name: Option<String>,
    /// MTU on both ends (default 1500).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Side A.
    pub a: RawEndpoint,
    /// Side B.
    pub b: RawEndpoint,
    /// Conditions on both directions of the line, always on.
    #[serde(default)]
    pub conditions: Option<RawConditions>,
}

/// The line from a node to the host, NATed out of the uplink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUplink {
    /// The node that routes to the outside (the course: gateway).
    pub node: String,
    /// Its interface (the course: gatewayin).
    pub interface: String,
    /// Its address with prefix (the course: 140.252.104.2/24).
    pub address: String,
    /// Host side interface name (the course: gatewayout).
    pub host_interface: String,
    /// Host side address with prefix (the course: 140.252.104.1/24).
    pub host_address: String,
    /// Prefixes the host routes into the lab through the node.
    #[serde(default)]
    pub host_routes: Vec<String>,
    /// MTU of the line (default 1500).
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// A map that keeps the file's order (TOML tables are ordered in the file; the course
/// topology's node order is the order of `status`).
pub mod indexmap_like {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    /// Entries in file order.
    #[derive(Debug)]
    pub struct OrderedMap<V>(pub Vec<(String, V)>);

    impl<V> Default for OrderedMap<V> {
        fn default() -> Self {
            OrderedMap(Vec::new())
        }
    }

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<V>(PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
                type Value = OrderedMap<V>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a table")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, V>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            d.deserialize_map(V2(PhantomData))
        }
    }
}
