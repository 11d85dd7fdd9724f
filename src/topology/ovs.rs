//! The Open vSwitch parts of the validated topology: a LAN member's VLAN and QoS settings, an
//! OVS LAN's own address, controller, fail mode and flows, and the tunnels joining two OVS LANs
//! over an underlay.

use ipnet::Ipv4Net;
use serde::Serialize;
use std::net::Ipv4Addr;

/// How a member's port carries VLANs and limits its rate (OVS LANs only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortOptions {
    /// Access port of this VLAN: untagged frames on the wire, tagged inside the bridge.
    pub vlan: Option<u16>,
    /// Trunk port carrying these VLANs tagged (802.1Q); empty: not a trunk.
    pub trunks: Vec<u16>,
    /// Rate limits of the port.
    pub qos: Option<PortQos>,
}

impl PortOptions {
    /// Whether the port is a plain port (no VLAN, no trunk, no QoS).
    pub fn is_plain(&self) -> bool {
        self == &PortOptions::default()
    }
}

/// Rate limits of one OVS port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PortQos {
    /// Egress shaping toward the member (a `linux-htb` QoS row with one queue), bit/s.
    pub max_rate: Option<u64>,
    /// Ingress policing of what the member sends (`Interface.ingress_policing_rate`), kbit/s.
    pub ingress_rate_kbps: Option<u64>,
    /// Burst of the ingress policer, kbit (`Interface.ingress_policing_burst`).
    pub ingress_burst_kb: Option<u64>,
}

/// What a bridge with a controller does when it loses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Switch as a learning switch (NORMAL) without a controller.
    Standalone,
    /// Forward only by the flows it has: without a controller, new traffic stops.
    Secure,
}

impl FailMode {
    /// The value of the `Bridge.fail_mode` column.
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Standalone => "standalone",
            FailMode::Secure => "secure",
        }
    }
}

/// The Open vSwitch settings of an OVS LAN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OvsLan {
    /// Address of the bridge's own (local, internal) port in the host's namespace: the
    /// bridge's place on an underlay or a management network.
    pub address: Option<Ipv4Net>,
    /// OpenFlow controller target, e.g. `tcp:10.0.9.10:6653`.
    pub controller: Option<String>,
    /// What the bridge does without its controller (default standalone).
    pub fail_mode: Option<FailMode>,
    /// Flow entries added once the bridge exists, in `ovs-ofctl` syntax with node names as ports.
    pub flows: Vec<String>,
}

/// The encapsulation of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    /// VXLAN: Ethernet in UDP (port 4789), a 24-bit VNI.
    Vxlan,
    /// GRE: Ethernet in GRE (transparent Ethernet bridging), a 32-bit key.
    Gre,
}

impl TunnelKind {
    /// The value of the `Interface.type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Gre => "gre",
        }
    }
}

/// One end of a tunnel: a port on OVS LAN `network`, its packets leaving from the address of
/// OVS LAN `underlay`'s bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelEnd {
    /// The OVS LAN (tenant side) the tunnel port is on (index into `Topology::networks`).
    pub network: usize,
    /// The OVS LAN whose bridge address the encapsulated packets come from.
    pub underlay: usize,
    /// That bridge's address (the tunnel's local address).
    pub local: Ipv4Addr,
    /// Next hop toward the other end, when it is not on the same underlay subnet.
    pub via: Option<Ipv4Addr>,
}

/// A tunnel joining two OVS LANs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    /// Its name (default `<a.network>-<b.network>`).
    pub name: String,
    /// VXLAN or GRE.
    pub kind: TunnelKind,
    /// The VNI (VXLAN) or GRE key.
    pub key: u32,
    /// Side A.
    pub a: TunnelEnd,
    /// Side B.
    pub b: TunnelEnd,
}
