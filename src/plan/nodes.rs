//! A node's plan: its namespace, its interfaces with fixed indexes (from 2, in the order of
//! the topology; the uplink's only when `up` has an uplink), addresses, routes, sysctls,
//! proxy ARP and /etc/hosts.

use super::{IfacePlan, NodePlan, PlanOptions, RoutePlan, node_netns};
use crate::topology::{Attachment, Node, Route, Topology};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// sysctls as (key relative to /proc/sys/net, value).
type Sysctls = Vec<(String, String)>;

/// The plan of `node` of `topo` in lab `lab`; `hosts` is the lab's /etc/hosts.
pub(super) fn node_plan(
    topo: &Topology,
    node: &Node,
    lab: &str,
    opts: &PlanOptions,
    hosts: &str,
) -> NodePlan {
    let interfaces = interfaces(node, opts);
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
    routes.extend(uplink_default_route(topo, node, opts, index_of));
    let (own_sysctls, mut iface_sysctls) = topology_sysctls(node);
    let mut sysctls = base_sysctls(node.router);
    sysctls.extend(own_sysctls);
    let (proxy_sysctls, proxy_neighbours) = proxy_arp(node, index_of);
    iface_sysctls.extend(proxy_sysctls);
    NodePlan {
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
        hosts: hosts.to_string(),
    }
}

/// The node's interfaces with their fixed indexes: 2, 3, ... in the topology's order, the
/// uplink's left out unless `up` has an uplink.
fn interfaces(node: &Node, opts: &PlanOptions) -> Vec<IfacePlan> {
    node.interfaces
        .iter()
        .filter(|i| {
            i.attachment != Attachment::Uplink || opts.uplink.is_some() || opts.fake_internet
        })
        .zip(2u32..)
        .map(|(iface, index)| IfacePlan {
            name: iface.name.clone(),
            index,
            mtu: iface.mtu,
        })
        .collect()
}

/// The sysctls every node gets, set as soon as its namespace exists.
fn base_sysctls(router: bool) -> Sysctls {
    [
        ("ipv4.ip_forward", if router { "1" } else { "0" }),
        ("ipv4.conf.all.rp_filter", "0"),
        ("ipv4.conf.default.rp_filter", "0"),
        // The book's lab is IPv4 only: no IPv6 chatter in captures.
        ("ipv6.conf.all.disable_ipv6", "1"),
        ("ipv6.conf.default.disable_ipv6", "1"),
        // Every traceroute probe answered, as in the book.
        ("ipv4.icmp_ratelimit", "0"),
        // The book's congestion control (BSD's Reno), whatever the host's: a new namespace
        // starts with the host's (bbr paces its segments, and no slow-start burst shows), and
        // reno is the one every namespace may choose (tcp_allowed_congestion_control).
        ("ipv4.tcp_congestion_control", "reno"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The topology's own sysctls of the node, as (set at once, set once the interfaces exist):
/// per-interface ones (`ipv4.conf.<if>.*`, `ipv4.neigh.<if>.*`) must wait for the interface.
fn topology_sysctls(node: &Node) -> (Sysctls, Sysctls) {
    node.sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| !is_per_interface(k))
}

/// Whether sysctl key `k` (relative to net.) belongs to one interface.
fn is_per_interface(k: &str) -> bool {
    let parts: Vec<&str> = k.split('.').collect();
    parts.len() >= 4
        && (parts[1] == "conf" || parts[1] == "neigh")
        && parts[2] != "all"
        && parts[2] != "default"
}

/// Proxy ARP of the node: the per-interface sysctls that turn it on, and the proxy neighbour
/// entries (interface index, address answered for).
fn proxy_arp(
    node: &Node,
    index_of: impl Fn(&str) -> Option<u32>,
) -> (Sysctls, Vec<(u32, Ipv4Addr)>) {
    let mut sysctls = Vec::new();
    let mut neighbours = Vec::new();
    for p in &node.proxy_arp {
        sysctls.push((format!("ipv4.conf.{}.proxy_arp", p.interface), "1".into()));
        // Answer at once: the default proxy_delay (up to 0.8 s) loses a first ping -W1.
        sysctls.push((
            format!("ipv4.neigh.{}.proxy_delay", p.interface),
            "0".into(),
        ));
        if let Some(idx) = index_of(&p.interface) {
            neighbours.extend(p.addresses.iter().map(|a| (idx, *a)));
        }
    }
    (sysctls, neighbours)
}

/// With an uplink, the uplink's node gets a default route to the host, unless the topology
/// gives it one.
fn uplink_default_route(
    topo: &Topology,
    node: &Node,
    opts: &PlanOptions,
    index_of: impl Fn(&str) -> Option<u32>,
) -> Option<RoutePlan> {
    let up = topo
        .uplink
        .as_ref()
        .filter(|_| opts.uplink.is_some() || opts.fake_internet)?;
    if up.node.node != node.name || node.routes.iter().any(|r| r.to.prefix_len() == 0) {
        return None;
    }
    Some(RoutePlan {
        route: Route {
            to: Ipv4Net::default(),
            via: Some(up.host_address.addr()),
            dev: Some(up.node.interface.clone()),
        },
        oif: index_of(&up.node.interface),
    })
}
