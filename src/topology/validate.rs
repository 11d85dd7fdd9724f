//! Raw topology -> validated model. Every error names the file, the place (a path such as
//! `networks.net1.members[2].address`) and the offending value.

use super::IFNAME_MAX;
use super::model::*;
use super::raw::*;
use crate::error::{Error, Result};
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

const DEFAULT_MTU: u32 = 1500;

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn err(&self, place: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Topology {
            file: self.file.to_string(),
            place: place.into(),
            message: message.into(),
        }
    }
}

/// Lab and topology names: a lowercase letter, then lowercase letters and digits (at most 12),
/// so that `tcplab-<lab>-<node>` always parses back and host-side names fit in 15 bytes.
pub fn check_lab_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 12
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid lab name '{name}': use 1 to 12 lowercase letters and digits, starting with a letter"
        ))
    }
}

fn check_node_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid node name '{name}': use lowercase letters, digits, '-' and '_', starting with a letter (at most 32)"
        ))
    }
}

fn check_ifname(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("interface name is empty".into());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "interface name '{name}' is {} bytes long, longer than {IFNAME_MAX}",
            name.len()
        ));
    }
    if name == "lo" || name == "." || name == ".." {
        return Err(format!("interface name '{name}' is reserved"));
    }
    if name
        .chars()
        .any(|c| !c.is_ascii_graphic() || c == '/' || c == ':' || c == '%')
    {
        return Err(format!(
            "interface name '{name}' has a character tcplab refuses: use ASCII letters, digits and punctuation other than '/', ':' and '%'"
        ));
    }
    Ok(())
}

fn check_mtu(c: &Checker, place: &str, mtu: Option<u32>) -> Result<u32> {
    let mtu = mtu.unwrap_or(DEFAULT_MTU);
    if !(68..=65535).contains(&mtu) {
        return Err(c.err(place, format!("mtu {mtu} is out of range (68 to 65535)")));
    }
    Ok(mtu)
}

fn parse_prefix(c: &Checker, place: &str, s: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        c.err(
            place,
            format!("'{s}' is not an IPv4 prefix like 140.252.1.0/24"),
        )
    })?;
    if net.network() != net.addr() {
        return Err(c.err(
            place,
            format!("'{s}' has host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    Ok(net)
}

fn parse_addr(c: &Checker, place: &str, s: &str) -> Result<Ipv4Addr> {
    s.parse()
        .map_err(|_| c.err(place, format!("'{s}' is not an IPv4 address")))
}

/// An interface address: `A.B.C.D` takes the network's prefix, `A.B.C.D/N` must agree with it.
fn parse_if_addr(c: &Checker, place: &str, s: &str, subnet: Option<Ipv4Net>) -> Result<Ipv4Net> {
    let net = if s.contains('/') {
        s.parse::<Ipv4Net>().map_err(|_| {
            c.err(
                place,
                format!("'{s}' is not an IPv4 address with prefix like 140.252.13.65/27"),
            )
        })?
    } else {
        let addr = parse_addr(c, place, s)?;
        match subnet {
            Some(sn) => Ipv4Net::new(addr, sn.prefix_len()).expect("prefix from a valid net"),
            None => return Err(c.err(place, format!("'{s}' needs a prefix length, like {s}/24"))),
        }
    };
    if let Some(sn) = subnet {
        if !sn.contains(&net.addr()) {
            return Err(c.err(place, format!("{} is outside {sn}", net.addr())));
        }
        if net.prefix_len() != sn.prefix_len() {
            return Err(c.err(
                place,
                format!("{net} has a different prefix length than its network {sn}"),
            ));
        }
    }
    let a = net.addr();
    if net.prefix_len() < 31 && (a == net.network() || a == net.broadcast()) {
        return Err(c.err(
            place,
            format!(
                "{net} is the network or broadcast address of {}",
                net.trunc()
            ),
        ));
    }
    if a.is_loopback() || a.is_multicast() || a.is_unspecified() || a.is_broadcast() {
        return Err(c.err(place, format!("{a} cannot be a host address")));
    }
    Ok(net)
}

/// Per node, while collecting interfaces.
#[derive(Default)]
struct NodeIfaces {
    interfaces: Vec<Interface>,
    places: HashMap<String, String>,
}

pub(super) fn validate(raw: RawTopology, file: &str, _text: &str) -> Result<Topology> {
    let c = Checker { file };
    check_lab_name(&raw.name).map_err(|m| c.err("name", m))?;
    if raw.nodes.0.is_empty() {
        return Err(c.err(
            "nodes",
            "the topology has no nodes: add at least one [nodes.NAME] table",
        ));
    }
    let default_priv = parse_privileges(
        &c,
        "defaults.privileges",
        raw.defaults.privileges.as_deref(),
    )?;

    let mut node_index: HashMap<String, usize> = HashMap::new();
    for (i, (name, _)) in raw.nodes.0.iter().enumerate() {
        check_node_name(name).map_err(|m| c.err(format!("nodes.{name}"), m))?;
        if node_index.insert(name.clone(), i).is_some() {
            return Err(c.err(
                format!("nodes.{name}"),
                format!("node '{name}' is defined twice"),
            ));
        }
    }
    let mut ifaces: Vec<NodeIfaces> = raw.nodes.0.iter().map(|_| NodeIfaces::default()).collect();
    let mut addr_owner: HashMap<Ipv4Addr, String> = HashMap::new();

    // Registers an endpoint on its node, checking the name and uniqueness.
    let mut add_endpoint = |place: String,
                            ep: &RawEndpoint,
                            address: Option<Ipv4Net>,
                            mtu: u32,
                            attachment: Attachment|
     -> Result<Endpoint> {
        let Some(&ni) = node_index.get(&ep.node) else {
            let known: Vec<&str> = raw.nodes.0.iter().map(|(n, _)| n.as_str()).collect();
            return Err(c.err(
                format!("{place}.node"),
                format!("unknown node '{}' (nodes: {})", ep.node, known.join(", ")),
            ));
        };
        check_ifname(&ep.interface).map_err(|m| c.err(format!("{place}.interface"), m))?;
        let slot = &mut ifaces[ni];
        if let Some(first) = slot.places.get(&ep.interface) {
            return Err(c.err(
                format!("{place}.interface"),
                format!(
                    "node '{}' already has an interface '{}' (at {first})",
                    ep.node, ep.interface
                ),
            ));
        }
        if let Some(a) = address {
            if let Some(first) = addr_owner.get(&a.addr()) {
                return Err(c.err(
                    format!("{place}.address"),
                    format!("duplicate address {} (also at {first})", a.addr()),
                ));
            }
            addr_owner.insert(a.addr(), place.clone());
        }
        slot.places.insert(ep.interface.clone(), place);
        slot.interfaces.push(Interface {
            name: ep.interface.clone(),
            address,
            mtu,
            attachment,
        });
        Ok(Endpoint {
            node: ep.node.clone(),
            interface: ep.interface.clone(),
            address,
        })
    };

    // Networks.
    let mut networks = Vec::new();
    let mut net_names: HashMap<String, ()> = HashMap::new();
    for (ni, (name, n)) in raw.networks.0.iter().enumerate() {
        let place = format!("networks.{name}");
        check_ifname(name).map_err(|m| c.err(&place, format!("network name: {m}")))?;
        if net_names.insert(name.clone(), ()).is_some() {
            return Err(c.err(&place, format!("network '{name}' is defined twice")));
        }
        let kind = match n.kind.as_deref().unwrap_or("linux") {
            "linux" => NetworkKind::Linux,
            "ovs" => NetworkKind::Ovs,
            other => {
                return Err(c.err(
                    format!("{place}.kind"),
                    format!("unknown kind '{other}' (use \"linux\" or \"ovs\")"),
                ));
            }
        };
        let subnet = parse_prefix(&c, &format!("{place}.subnet"), &n.subnet)?;
        let mtu = check_mtu(&c, &format!("{place}.mtu"), n.mtu)?;
        let mut members = Vec::new();
        for (mi, m) in n.members.iter().enumerate() {
            let mplace = format!("{place}.members[{mi}]");
            let address = match &m.address {
                Some(s) => Some(parse_if_addr(
                    &c,
                    &format!("{mplace}.address"),
                    s,
                    Some(subnet),
                )?),
                None => None,
            };
            members.push(add_endpoint(
                mplace,
                m,
                address,
                mtu,
                Attachment::Network { index: ni },
            )?);
        }
        networks.push(Network {
            name: name.clone(),
            kind,
            subnet,
            mtu,
            members,
        });
    }

    // Point-to-point links.
    let mut links = Vec::new();
    for (li, l) in raw.links.iter().enumerate() {
        let place = format!("links[{li}]");
        let mtu = check_mtu(&c, &format!("{place}.mtu"), l.mtu)?;
        if l.a.node == l.b.node {
            return Err(c.err(
                &place,
                format!(
                    "both ends are on node '{}': a link joins two nodes",
                    l.a.node
                ),
            ));
        }
        let mut ends = Vec::with_capacity(2);
        for (side, raw_end) in [("a", &l.a), ("b", &l.b)] {
            let address = match &raw_end.address {
                Some(s) => Some(parse_if_addr(
                    &c,
                    &format!("{place}.{side}.address"),
                    s,
                    None,
                )?),
                None => None,
            };
            ends.push(add_endpoint(
                format!("{place}.{side}"),
                raw_end,
                address,
                mtu,
                Attachment::Link { index: li },
            )?);
        }
        let (b, a) = (ends.pop().expect("two ends"), ends.pop().expect("two ends"));
        let name = l
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", a.node, b.node));
        links.push(Link { name, mtu, a, b });
    }

    // Uplink (validated now, used only when `up` names an uplink interface).
    let uplink = match &raw.uplink {
        None => None,
        Some(u) => {
            let place = "uplink";
            let mtu = check_mtu(&c, "uplink.mtu", u.mtu)?;
            let addr = parse_if_addr(&c, "uplink.address", &u.address, None)?;
            let host_address = parse_if_addr(&c, "uplink.host_address", &u.host_address, None)?;
            if addr.trunc() != host_address.trunc() {
                return Err(c.err(
                    "uplink.host_address",
                    format!("{host_address} is not on the same subnet as the node's {addr}"),
                ));
            }
            if addr.addr() == host_address.addr() {
                return Err(c.err(
                    "uplink.host_address",
                    format!("duplicate address {}", addr.addr()),
                ));
            }
            check_ifname(&u.host_interface).map_err(|m| c.err("uplink.host_interface", m))?;
            let ep = RawEndpoint {
                node: u.node.clone(),
                interface: u.interface.clone(),
                address: None,
            };
            let node = add_endpoint(place.to_string(), &ep, Some(addr), mtu, Attachment::Uplink)?;
            if let Some(first) = addr_owner.get(&host_address.addr()) {
                return Err(c.err(
                    "uplink.host_address",
                    format!(
                        "duplicate address {} (also at {first})",
                        host_address.addr()
                    ),
                ));
            }
            let mut host_routes = Vec::new();
            for (i, r) in u.host_routes.iter().enumerate() {
                host_routes.push(parse_prefix(&c, &format!("uplink.host_routes[{i}]"), r)?);
            }
            Some(Uplink {
                node,
                host_interface: u.host_interface.clone(),
                host_address,
                host_routes,
                mtu,
            })
        }
    };

    // Nodes: routes, proxy ARP, sysctls.
    let mut nodes = Vec::new();
    for ((name, rn), slot) in raw.nodes.0.iter().zip(ifaces) {
        let place = format!("nodes.{name}");
        let interfaces = slot.interfaces;
        let privileges = default_priv;
        // Subnets the node reaches directly: connected ones (the uplink's only when up with
        // an uplink: its default route is added by the planner then, not written here).
        let connected: Vec<(String, Ipv4Net)> = interfaces
            .iter()
            .filter(|i| i.attachment != Attachment::Uplink)
            .filter_map(|i| i.address.map(|a| (i.name.clone(), a.trunc())))
            .collect();
        let mut routes: Vec<Route> = Vec::new();
        let mut onlink: Vec<(String, Ipv4Net)> = connected.clone();
        for (ri, r) in rn.routes.iter().enumerate() {
            let rplace = format!("{place}.routes[{ri}]");
            let to = if r.to == "default" {
                Ipv4Net::default()
            } else {
                parse_prefix(&c, &format!("{rplace}.to"), &r.to)?
            };
            if let Some(dev) = &r.dev
                && !interfaces
                    .iter()
                    .any(|i| &i.name == dev && i.attachment != Attachment::Uplink)
            {
                return Err(c.err(
                    format!("{rplace}.dev"),
                    format!(
                        "node '{name}' has no interface '{dev}' (its interfaces: {})",
                        iface_list(&interfaces)
                    ),
                ));
            }
            let via = match &r.via {
                Some(s) => Some(parse_addr(&c, &format!("{rplace}.via"), s)?),
                None => None,
            };
            if via.is_none() && r.dev.is_none() {
                return Err(c.err(
                    &rplace,
                    format!(
                        "route to {} needs `via` (a gateway) or `dev` (a device route)",
                        r.to
                    ),
                ));
            }
            let route = Route {
                to,
                via,
                dev: r.dev.clone(),
            };
            if routes.iter().any(|x| x.to == to) {
                return Err(c.err(&rplace, format!("node '{name}' has two routes to {}", r.to)));
            }
            if via.is_none() {
                onlink.push((r.dev.clone().unwrap_or_default(), to));
            }
            routes.push(route);
        }
        // Gateways must be on a connected subnet (or a device route) of the node.
        for (ri, r) in routes.iter().enumerate() {
            let Some(gw) = r.via else { continue };
            let rplace = format!("{place}.routes[{ri}].via");
            let reach: Vec<&(String, Ipv4Net)> = onlink
                .iter()
                .filter(|(dev, net)| net.contains(&gw) && r.dev.as_ref().is_none_or(|d| d == dev))
                .collect();
            if reach.is_empty() {
                let subnets: Vec<String> = connected
                    .iter()
                    .map(|(d, n)| format!("{n} on {d}"))
                    .collect();
                return Err(c.err(
                    rplace,
                    format!(
                        "gateway {gw} is on no connected subnet of node '{name}'{} (connected: {})",
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
            if interfaces
                .iter()
                .any(|i| i.address.map(|a| a.addr()) == Some(gw))
            {
                return Err(c.err(
                    rplace,
                    format!("gateway {gw} is node '{name}''s own address"),
                ));
            }
        }
        // Device routes before gateway routes, so that gateways resolve through them.
        routes.sort_by_key(|r| r.via.is_some());

        let mut proxy_arp = Vec::new();
        for (pi, p) in rn.proxy_arp.iter().enumerate() {
            let pplace = format!("{place}.proxy_arp[{pi}]");
            if !interfaces.iter().any(|i| i.name == p.interface) {
                return Err(c.err(
                    format!("{pplace}.interface"),
                    format!(
                        "node '{name}' has no interface '{}' (its interfaces: {})",
                        p.interface,
                        iface_list(&interfaces)
                    ),
                ));
            }
            if !rn.router {
                return Err(c.err(
                    &pplace,
                    format!("proxy ARP forwards packets: set `router = true` on node '{name}'"),
                ));
            }
            let mut addresses = Vec::new();
            for (ai, a) in p.addresses.iter().enumerate() {
                addresses.push(parse_addr(&c, &format!("{pplace}.addresses[{ai}]"), a)?);
            }
            proxy_arp.push(ProxyArp {
                interface: p.interface.clone(),
                addresses,
            });
        }
        let mut sysctls = BTreeMap::new();
        for (k, v) in &rn.sysctls {
            let ok = !k.is_empty()
                && k.split('.').all(|p| {
                    !p.is_empty()
                        && p != ".."
                        && p.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                });
            if !ok {
                return Err(c.err(
                    format!("{place}.sysctls"),
                    format!("'{k}' is not a sysctl name under net. like \"ipv4.tcp_sack\""),
                ));
            }
            if v.contains('\n') {
                return Err(c.err(format!("{place}.sysctls.{k}"), "value has a newline"));
            }
            sysctls.insert(k.clone(), v.clone());
        }
        nodes.push(Node {
            name: name.clone(),
            router: rn.router,
            image: rn.image.clone().or_else(|| raw.defaults.image.clone()),
            privileges,
            interfaces,
            routes,
            proxy_arp,
            sysctls,
        });
    }

    Ok(Topology {
        name: raw.name,
        description: raw.description,
        nodes,
        networks,
        links,
        uplink,
    })
}

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

fn parse_privileges(c: &Checker, place: &str, s: Option<&str>) -> Result<Privileges> {
    match s {
        None | Some("auto") => Ok(Privileges::Auto),
        Some("privileged") => Ok(Privileges::Privileged),
        Some("capabilities") => Ok(Privileges::Capabilities),
        Some(other) => Err(c.err(
            place,
            format!(
                "unknown privileges '{other}' (use \"auto\", \"privileged\" or \"capabilities\")"
            ),
        )),
    }
}
