//! One node, once its interfaces are known: its static routes (each gateway reachable), its
//! proxy ARP entries and its sysctls.

use super::Checker;
use super::addresses::{parse_addr, parse_prefix};
use super::names::is_sysctl_name;
use crate::error::Result;
use crate::topology::model::*;
use crate::topology::raw::{RawNode, RawRoute};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;

/// Node `name` of the file, with the interfaces its wires gave it.
pub(super) fn node(
    c: &Checker,
    name: &str,
    rn: &RawNode,
    interfaces: Vec<Interface>,
    image: Option<String>,
    privileges: Privileges,
) -> Result<Node> {
    let n = NodeChecks {
        c,
        name,
        place: format!("nodes.{name}"),
        interfaces: &interfaces,
    };
    let routes = n.routes(&rn.routes)?;
    let proxy_arp = n.proxy_arp(rn)?;
    let sysctls = n.sysctls(&rn.sysctls)?;
    Ok(Node {
        name: name.to_string(),
        router: rn.router,
        image,
        privileges,
        interfaces,
        routes,
        proxy_arp,
        sysctls,
    })
}

/// What the checks of one node refer to.
struct NodeChecks<'a> {
    c: &'a Checker<'a>,
    name: &'a str,
    /// `nodes.NAME`
    place: String,
    interfaces: &'a [Interface],
}

impl NodeChecks<'_> {
    /// The node's routes, each well-formed and to a different prefix, every gateway reachable;
    /// device routes first, so that gateways resolve through them.
    fn routes(&self, raw: &[RawRoute]) -> Result<Vec<Route>> {
        let mut routes: Vec<Route> = Vec::new();
        for (ri, r) in raw.iter().enumerate() {
            let route = self.route(ri, r)?;
            if routes.iter().any(|x| x.to == route.to) {
                return Err(self.c.err(
                    format!("{}.routes[{ri}]", self.place),
                    format!("node '{}' has two routes to {}", self.name, r.to),
                ));
            }
            routes.push(route);
        }
        for (ri, r) in routes.iter().enumerate() {
            self.check_gateway(ri, r, &routes)?;
        }
        routes.sort_by_key(|r| r.via.is_some());
        Ok(routes)
    }

    /// Route `ri`: its destination, its device (one of the node's, not the uplink), its
    /// gateway, and at least one of the two.
    fn route(&self, ri: usize, r: &RawRoute) -> Result<Route> {
        let rplace = format!("{}.routes[{ri}]", self.place);
        let to = if r.to == "default" {
            Ipv4Net::default()
        } else {
            parse_prefix(self.c, &format!("{rplace}.to"), &r.to)?
        };
        if let Some(dev) = &r.dev
            && !self
                .interfaces
                .iter()
                .any(|i| &i.name == dev && i.attachment != Attachment::Uplink)
        {
            return Err(self.c.err(
                format!("{rplace}.dev"),
                format!(
                    "node '{}' has no interface '{dev}' (its interfaces: {})",
                    self.name,
                    iface_list(self.interfaces)
                ),
            ));
        }
        let via = match &r.via {
            Some(s) => Some(parse_addr(self.c, &format!("{rplace}.via"), s)?),
            None => None,
        };
        if via.is_none() && r.dev.is_none() {
            return Err(self.c.err(
                &rplace,
                format!(
                    "route to {} needs `via` (a gateway) or `dev` (a device route)",
                    r.to
                ),
            ));
        }
        Ok(Route {
            to,
            via,
            dev: r.dev.clone(),
        })
    }

    /// Subnets the node reaches directly, with their device: the connected ones (not the
    /// uplink's: its default route is added by the planner when `up` has an uplink).
    fn connected(&self) -> Vec<(String, Ipv4Net)> {
        self.interfaces
            .iter()
            .filter(|i| i.attachment != Attachment::Uplink)
            .filter_map(|i| i.address.map(|a| (i.name.clone(), a.trunc())))
            .collect()
    }

    /// Route `ri`'s gateway, if any, is on a connected subnet or a device route of the node
    /// (through the route's device, if it names one), and is not the node's own address.
    fn check_gateway(&self, ri: usize, r: &Route, routes: &[Route]) -> Result<()> {
        let Some(gw) = r.via else { return Ok(()) };
        let rplace = format!("{}.routes[{ri}].via", self.place);
        let connected = self.connected();
        let device_routes = routes
            .iter()
            .filter(|x| x.via.is_none())
            .map(|x| (x.dev.clone().unwrap_or_default(), x.to));
        let reachable = connected
            .iter()
            .cloned()
            .chain(device_routes)
            .any(|(dev, net)| net.contains(&gw) && r.dev.as_ref().is_none_or(|d| *d == dev));
        if !reachable {
            let subnets: Vec<String> = connected
                .iter()
                .map(|(d, n)| format!("{n} on {d}"))
                .collect();
            return Err(self.c.err(
                rplace,
                format!(
                    "gateway {gw} is on no connected subnet of node '{}'{} (connected: {})",
                    self.name,
                    r.dev
                        .as_ref()
                        .map(|d| format!(" through {d}"))
                        .unwrap_or_default(),
                    if subnets.is_empty() {
                        "none".to_string()
                    } else {
                        subnets.join(", ")
                    }
                ),
            ));
        }
        if self
            .interfaces
            .iter()
            .any(|i| i.address.map(|a| a.addr()) == Some(gw))
        {
            return Err(self.c.err(
                rplace,
                format!("gateway {gw} is node '{}''s own address", self.name),
            ));
        }
        Ok(())
    }

    /// Proxy ARP entries: on one of the node's interfaces, on a router, for addresses.
    fn proxy_arp(&self, rn: &RawNode) -> Result<Vec<ProxyArp>> {
        let mut proxy_arp = Vec::new();
        for (pi, p) in rn.proxy_arp.iter().enumerate() {
            let pplace = format!("{}.proxy_arp[{pi}]", self.place);
            if !self.interfaces.iter().any(|i| i.name == p.interface) {
                return Err(self.c.err(
                    format!("{pplace}.interface"),
                    format!(
                        "node '{}' has no interface '{}' (its interfaces: {})",
                        self.name,
                        p.interface,
                        iface_list(self.interfaces)
                    ),
                ));
            }
            if !rn.router {
                return Err(self.c.err(
                    &pplace,
                    format!(
                        "proxy ARP forwards packets: set `router = true` on node '{}'",
                        self.name
                    ),
                ));
            }
            let mut addresses = Vec::new();
            for (ai, a) in p.addresses.iter().enumerate() {
                addresses.push(parse_addr(self.c, &format!("{pplace}.addresses[{ai}]"), a)?);
            }
            proxy_arp.push(ProxyArp {
                interface: p.interface.clone(),
                addresses,
            });
        }
        Ok(proxy_arp)
    }

    /// Sysctls: names under /proc/sys/net, values of one line.
    fn sysctls(&self, raw: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        for (k, v) in raw {
            if !is_sysctl_name(k) {
                return Err(self.c.err(
                    format!("{}.sysctls", self.place),
                    format!("'{k}' is not a sysctl name under net. like \"ipv4.tcp_sack\""),
                ));
            }
            if v.contains('\n') {
                return Err(self
                    .c
                    .err(format!("{}.sysctls.{k}", self.place), "value has a newline"));
            }
        }
        Ok(raw.clone())
    }
}

/// The node's interfaces other than the uplink, for messages ("none" when it has none).
fn iface_list(ifaces: &[Interface]) -> String {
    let v: Vec<&str> = ifaces
        .iter()
        .filter(|i| i.attachment != Attachment::Uplink)
        .map(|i| i.name.as_str())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
