//! The wires, in file order: networks (LANs), point-to-point links and the uplink to the
//! host. Each end is registered on its node through [`Endpoints`].

use super::Checker;
use super::addresses::{check_mtu, parse_if_addr, parse_prefix};
use super::endpoints::Endpoints;
use super::names::check_ifname;
use crate::error::Result;
use crate::topology::model::*;
use crate::topology::raw::*;
use std::collections::HashSet;

/// Every `[networks.NAME]`: a name that can name a bridge (once), its kind, subnet, MTU and
/// members.
pub(super) fn networks(
    c: &Checker,
    raw: &indexmap_like::OrderedMap<RawNetwork>,
    ends: &mut Endpoints,
) -> Result<Vec<Network>> {
    let mut seen = HashSet::new();
    let mut networks = Vec::new();
    for (index, (name, n)) in raw.0.iter().enumerate() {
        let place = format!("networks.{name}");
        check_ifname(name).map_err(|m| c.err(&place, format!("network name: {m}")))?;
        if !seen.insert(name.as_str()) {
            return Err(c.err(&place, format!("network '{name}' is defined twice")));
        }
        networks.push(network(c, &place, index, name, n, ends)?);
    }
    Ok(networks)
}

/// Network `name` (`networks[index]`, at `place`), once its name is checked.
fn network(
    c: &Checker,
    place: &str,
    index: usize,
    name: &str,
    n: &RawNetwork,
    ends: &mut Endpoints,
) -> Result<Network> {
    let kind = network_kind(c, place, n.kind.as_deref())?;
    let subnet = parse_prefix(c, &format!("{place}.subnet"), &n.subnet)?;
    let mtu = check_mtu(c, &format!("{place}.mtu"), n.mtu)?;
    let mut members = Vec::new();
    for (mi, m) in n.members.iter().enumerate() {
        let mplace = format!("{place}.members[{mi}]");
        let address = match &m.address {
            Some(s) => Some(parse_if_addr(
                c,
                &format!("{mplace}.address"),
                s,
                Some(subnet),
            )?),
            None => None,
        };
        let attachment = Attachment::Network { index };
        let port = super::ovs::port_options(c, &mplace, kind, m)?;
        let mut member = ends.add(mplace, m, address, mtu, attachment)?;
        member.port = port;
        members.push(member);
    }
    let ovs = super::ovs::lan_options(c, place, kind, subnet, n, &members)?;
    if let Some(a) = ovs.address {
        ends.claim_address(c, &format!("{place}.address"), a.addr())?;
    }
    Ok(Network {
        name: name.to_string(),
        kind,
        subnet,
        mtu,
        members,
        ovs,
    })
}

/// A network's `kind`: `linux` (also when absent) or `ovs`.
fn network_kind(c: &Checker, place: &str, kind: Option<&str>) -> Result<NetworkKind> {
    match kind.unwrap_or("linux") {
        "linux" => Ok(NetworkKind::Linux),
        "ovs" => Ok(NetworkKind::Ovs),
        other => Err(c.err(
            format!("{place}.kind"),
            format!("unknown kind '{other}' (use \"linux\" or \"ovs\")"),
        )),
    }
}

/// Every `[[links]]`: two ends on two different nodes, each address with its prefix.
pub(super) fn links(c: &Checker, raw: &[RawLink], ends: &mut Endpoints) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    for (li, l) in raw.iter().enumerate() {
        let place = format!("links[{li}]");
        let mtu = check_mtu(c, &format!("{place}.mtu"), l.mtu)?;
        if l.a.node == l.b.node {
            return Err(c.err(
                &place,
                format!(
                    "both ends are on node '{}': a link joins two nodes",
                    l.a.node
                ),
            ));
        }
        let mut sides = Vec::with_capacity(2);
        for (side, raw_end) in [("a", &l.a), ("b", &l.b)] {
            let address = match &raw_end.address {
                Some(s) => Some(parse_if_addr(
                    c,
                    &format!("{place}.{side}.address"),
                    s,
                    None,
                )?),
                None => None,
            };
            super::ovs::refuse_port_options(c, &format!("{place}.{side}"), raw_end)?;
            let attachment = Attachment::Link { index: li };
            sides.push(ends.add(format!("{place}.{side}"), raw_end, address, mtu, attachment)?);
        }
        let (b, a) = (
            sides.pop().expect("two ends"),
            sides.pop().expect("two ends"),
        );
        let name = l
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", a.node, b.node));
        links.push(Link { name, mtu, a, b });
    }
    Ok(links)
}

/// `[uplink]`: the node's end and the host's end on one subnet with two different addresses,
/// the host's interface name, and the prefixes the host routes into the lab. Validated even
/// when unused (it is used only when `up` names an uplink interface).
pub(super) fn uplink(c: &Checker, u: &RawUplink, ends: &mut Endpoints) -> Result<Uplink> {
    let mtu = check_mtu(c, "uplink.mtu", u.mtu)?;
    let addr = parse_if_addr(c, "uplink.address", &u.address, None)?;
    let host_address = parse_if_addr(c, "uplink.host_address", &u.host_address, None)?;
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
        conditions: None,
        vlan: None,
        trunks: None,
        qos: None,
    };
    let node = ends.add("uplink".into(), &ep, Some(addr), mtu, Attachment::Uplink)?;
    if let Some(first) = ends.owner_of(host_address.addr()) {
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
        host_routes.push(parse_prefix(c, &format!("uplink.host_routes[{i}]"), r)?);
    }
    Ok(Uplink {
        node,
        host_interface: u.host_interface.clone(),
        host_address,
        host_routes,
        mtu,
    })
}
