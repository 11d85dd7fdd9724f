//! The operating system as `up`, `down` and repair see it: two small traits, so that the
//! orchestration in [`crate::lab`] runs against the real machine ([`real::RealSystem`]) or,
//! in unit tests, against a recording fake that can fail at any step (`fake`, tests only).
//!
//! - [`NetOps`]: network configuration inside ONE namespace (an rtnetlink connection opened by
//!   a thread inside it, plus the namespace's file for moving veth peers there).
//! - [`System`]: everything else: named namespaces and their /etc files, sysctl files, the host
//!   firewall, Open vSwitch, checksum offload, and where records live.
//!
//! Invariant: nothing in here decides anything; it only does what it is told and reports.

pub mod link_worker;
pub mod real;

#[cfg(test)]
pub(crate) mod fake;

use crate::conditions::spec::Conditions;
use crate::error::Result;
use crate::net::netlink::LinkInfoView;
use crate::net::ovsdb::{BridgeSetup, BridgeSpec, Datapath};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A veth pair to create: this end in the namespace of the handle asked, the peer created
/// directly in another namespace (never lingering in the host's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethRequest {
    /// This end's name.
    pub name: String,
    /// This end's interface index (0: the kernel's choice).
    pub index: u32,
    /// The peer's name.
    pub peer: String,
    /// The peer's interface index (0: the kernel's choice).
    pub peer_index: u32,
    /// MTU of both ends.
    pub mtu: u32,
    /// Index of a Linux bridge (in this namespace) this end becomes a port of.
    pub controller: Option<u32>,
}

/// A route as the kernel lists it: destination, gateway, output interface index.
pub type RouteEntry = (Ipv4Net, Option<Ipv4Addr>, Option<u32>);

/// Network configuration inside one namespace.
#[allow(async_fn_in_trait)]
pub trait NetOps {
    /// The interfaces (lo included).
    async fn links(&self) -> Result<Vec<LinkInfoView>>;
    /// Index of interface `name`, if it exists.
    async fn link_index(&self, name: &str) -> Result<Option<u32>>;
    /// Bring an interface up by index.
    async fn set_up(&self, index: u32) -> Result<()>;
    /// Set an interface up or down by name.
    async fn set_state(&self, name: &str, up: bool) -> Result<()>;
    /// Create a Linux bridge, up, with a fixed index.
    async fn add_bridge(&self, name: &str, index: u32) -> Result<()>;
    /// Create a veth pair whose peer is created in `peer`'s namespace (this end up, the peer
    /// down: bring it up from there).
    async fn add_veth(&self, req: &VethRequest, peer: &Self) -> Result<()>;
    /// Add an IPv4 address to an interface.
    async fn add_address(&self, index: u32, net: Ipv4Net) -> Result<()>;
    /// Add a route (a gateway, an output interface, or both).
    async fn add_route(&self, to: Ipv4Net, via: Option<Ipv4Addr>, oif: Option<u32>) -> Result<()>;
    /// Add a proxy ARP entry for `addr` on an interface.
    async fn add_proxy_neighbour(&self, index: u32, addr: Ipv4Addr) -> Result<()>;
    /// Set an interface's alias (tcplab tags what it makes in the host's namespace).
    async fn set_alias(&self, name: &str, alias: &str) -> Result<()>;
    /// An interface's alias (None: no such interface; empty: no alias).
    async fn alias(&self, name: &str) -> Result<Option<String>>;
    /// Delete an interface (Ok(false): it was not there).
    async fn delete_link(&self, name: &str) -> Result<bool>;
    /// The IPv4 routes of the main table.
    async fn routes(&self) -> Result<Vec<RouteEntry>>;
}

/// Everything besides per-namespace netlink that `up` and `down` do to the machine.
#[allow(async_fn_in_trait)]
pub trait System {
    /// The per-namespace handle.
    type Net: NetOps;

    /// A handle on the namespace tcplab runs in (the host's).
    fn host(&self) -> Result<Self::Net>;
    /// Create named namespace `name`, write `sysctls` (keys under /proc/sys/net) inside it, and
    /// return a handle on it.
    fn create_netns(&self, name: &str, sysctls: &[(String, String)]) -> Result<Self::Net>;
    /// Enter each existing named namespace (in parallel where the system can), write its
    /// sysctls, and return a handle on each, in order.
    fn enter_netns(&self, namespaces: &[(String, Vec<(String, String)>)])
    -> Result<Vec<Self::Net>>;
    /// Whether named namespace `name` exists.
    fn netns_exists(&self, name: &str) -> bool;
    /// Remove named namespace `name` (Ok(false): it was not there).
    fn delete_netns(&self, name: &str) -> Result<bool>;
    /// Make the directory of named namespaces ready (a shared mount point, as iproute2 does).
    fn prepare_netns_dir(&self) -> Result<()>;
    /// The directory of namespace `netns`'s /etc files (`/etc/netns/<netns>`).
    fn etc_dir(&self, netns: &str) -> PathBuf;
    /// Whether that directory exists.
    fn etc_dir_exists(&self, netns: &str) -> bool;
    /// Create `/etc/netns/<netns>/hosts` with `hosts`.
    fn write_etc_hosts(&self, netns: &str, hosts: &str) -> Result<()>;
    /// Remove an /etc/netns directory tcplab made (refuses any other path).
    fn remove_etc_dir(&self, path: &str) -> Result<()>;
    /// Remove /etc/netns itself if it is empty (it is iproute2's: never when it holds anything).
    fn remove_etc_root_if_empty(&self);
    /// Write sysctls inside named namespace `netns`.
    fn write_netns_sysctls(&self, netns: &str, sysctls: &[(String, String)]) -> Result<()>;
    /// Read a sysctl of the host's namespace.
    fn read_host_sysctl(&self, key: &str) -> Result<String>;
    /// Write a sysctl of the host's namespace.
    fn write_host_sysctl(&self, key: &str, value: &str) -> Result<()>;
    /// Add host firewall rules (an iptables-restore script that adds only tcplab's chains).
    async fn firewall_add(&self, script: &str) -> Result<()>;
    /// Remove host firewall rules (the matching remove script; gone already is fine).
    async fn firewall_remove(&self, script: &str) -> Result<()>;
    /// Names of tcplab's firewall chains (`TCPLAB-<lab>`) in the host's filter table.
    async fn firewall_chains(&self) -> Result<Vec<String>>;
    /// Turn transmit checksum offload off on interfaces of namespace `netns` (None: the host).
    fn disable_tx_checksums(&self, netns: Option<&str>, ifaces: &[String]) -> Result<()>;
    /// Names of the Open vSwitch bridges labelled as lab `lab`'s (errors if OVS is not running).
    async fn ovs_lab_bridges(&self, lab: &str) -> Result<Vec<String>>;
    /// Create bridges with their ports in one transaction; returns the datapath chosen.
    async fn ovs_create_bridges(&self, specs: &[BridgeSpec]) -> Result<Datapath>;
    /// Delete every bridge labelled as lab `lab`'s, with Open vSwitch's routes out of them and
    /// the lab's QoS rows (OVS not running: nothing to delete).
    async fn ovs_delete_lab(&self, lab: &str) -> Result<()>;
    /// Add the routes of the bridges' tunnel packets and their flow entries (the bridges exist
    /// and their own addresses are set).
    async fn ovs_configure(&self, setups: &[BridgeSetup]) -> Result<()>;
    /// Start a conditions worker for what leaves `iface` in namespace `netns`, serving the
    /// control socket `control`; returns once it applies `conditions` (or with its error).
    fn start_link_worker(
        &self,
        netns: &str,
        iface: &str,
        control: &str,
        conditions: &Conditions,
    ) -> Result<()>;
    /// Change a running worker's conditions live. Ok(false): no worker answers on `control`.
    fn update_link_worker(&self, control: &str, conditions: &Conditions) -> Result<bool>;
    /// A running worker's counters (None: nothing answers on `control`).
    fn link_worker_stats(&self, control: &str) -> Option<crate::conditions::datapath::Stats>;
    /// Stop the worker on `control` (killing it if it does not answer) and remove what a
    /// worker installs on `iface` in `netns`, if the namespace still exists.
    fn stop_link_worker(&self, netns: &str, iface: &str, control: &str) -> Result<()>;
    /// Where lab records live.
    fn state_dir(&self) -> PathBuf;
    /// Move host interface `name` into named namespace `netns`, renamed `new_name` (it arrives
    /// down, without addresses or routes).
    async fn move_host_link(&self, name: &str, netns: &str, new_name: &str) -> Result<()>;
    /// Add firewall rules inside named namespace `netns` (an iptables-restore script); they
    /// go away with the namespace.
    async fn netns_firewall_add(&self, netns: &str, script: &str) -> Result<()>;
}
