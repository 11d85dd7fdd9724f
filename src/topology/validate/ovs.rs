//! The Open vSwitch settings: a member's VLAN, trunk and QoS, an OVS LAN's address,
//! controller, fail mode and flows, and the tunnels between OVS LANs. Each is refused on a
//! Linux bridge, where it would silently mean nothing.

use super::Checker;
use super::addresses::{parse_addr, parse_if_addr};
use crate::conditions::spec::parse_rate;
use crate::error::Result;
use crate::topology::model::*;
use crate::topology::raw::*;
use ipnet::Ipv4Net;
use std::collections::BTreeSet;

/// Highest VLAN id (4095 is reserved).
const MAX_VLAN: u16 = 4094;
/// Highest VXLAN network identifier (24 bits).
const MAX_VNI: u32 = (1 << 24) - 1;

/// The VLAN and QoS settings of LAN member `m` at `place`, on a LAN of `kind`.
pub(super) fn port_options(
    c: &Checker,
    place: &str,
    kind: NetworkKind,
    m: &RawEndpoint,
) -> Result<PortOptions> {
    let given = m.vlan.is_some() || m.trunks.is_some() || m.qos.is_some();
    if !given {
        return Ok(PortOptions::default());
    }
    if kind != NetworkKind::Ovs {
        return Err(c.err(
            place,
            "vlan, trunks and qos need an Open vSwitch LAN: set the network's kind = \"ovs\"",
        ));
    }
    if m.vlan.is_some() && m.trunks.is_some() {
        return Err(c.err(
            place,
            "a port is an access port (vlan) or a trunk (trunks), not both: keep one",
        ));
    }
    if let Some(v) = m.vlan {
        check_vlan(c, &format!("{place}.vlan"), v)?;
    }
    let mut trunks = Vec::new();
    if let Some(list) = &m.trunks {
        if list.is_empty() {
            return Err(c.err(
                format!("{place}.trunks"),
                "an empty trunk carries nothing: list its VLANs, e.g. [10, 20]",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, &v) in list.iter().enumerate() {
            check_vlan(c, &format!("{place}.trunks[{i}]"), v)?;
            if !seen.insert(v) {
                return Err(c.err(
                    format!("{place}.trunks[{i}]"),
                    format!("VLAN {v} is listed twice"),
                ));
            }
        }
        trunks = list.clone();
    }
    let qos = match &m.qos {
        Some(q) => Some(port_qos(c, &format!("{place}.qos"), q)?),
        None => None,
    };
    Ok(PortOptions {
        vlan: m.vlan,
        trunks,
        qos,
    })
}

/// Refuse VLAN and QoS settings on an end of a point-to-point line.
pub(super) fn refuse_port_options(c: &Checker, place: &str, e: &RawEndpoint) -> Result<()> {
    if e.vlan.is_some() || e.trunks.is_some() || e.qos.is_some() {
        return Err(c.err(
            place,
            "vlan, trunks and qos are settings of an Open vSwitch LAN's port: move the node onto an OVS network",
        ));
    }
    Ok(())
}

fn check_vlan(c: &Checker, place: &str, v: u16) -> Result<()> {
    if !(1..=MAX_VLAN).contains(&v) {
        return Err(c.err(place, format!("VLAN {v} is out of range (1 to {MAX_VLAN})")));
    }
    Ok(())
}

/// A port's `qos` table: rates in tc's units.
fn port_qos(c: &Checker, place: &str, q: &RawQos) -> Result<PortQos> {
    let rate = |field: &str, v: &Option<String>| -> Result<Option<u64>> {
        match v {
            Some(s) => parse_rate(s)
                .map(|r| Some(r.bits_per_sec))
                .map_err(|e| c.err(format!("{place}.{field}"), e.to_string())),
            None => Ok(None),
        }
    };
    let max_rate = rate("max_rate", &q.max_rate)?;
    let ingress = rate("ingress_rate", &q.ingress_rate)?;
    let burst = rate("ingress_burst", &q.ingress_burst)?;
    if burst.is_some() && ingress.is_none() {
        return Err(c.err(
            format!("{place}.ingress_burst"),
            "a burst without ingress_rate limits nothing: give ingress_rate too",
        ));
    }
    if max_rate.is_none() && ingress.is_none() {
        return Err(c.err(place, "no limit given: set max_rate and/or ingress_rate"));
    }
    Ok(PortQos {
        max_rate,
        ingress_rate_kbps: ingress.map(|b| (b / 1000).max(1)),
        ingress_burst_kb: burst.map(|b| (b / 1000).max(1)),
    })
}

/// An OVS LAN's own settings (`address`, `controller`, `fail_mode`, `flows`) at `place`.
pub(super) fn lan_options(
    c: &Checker,
    place: &str,
    kind: NetworkKind,
    subnet: Ipv4Net,
    n: &RawNetwork,
    members: &[Endpoint],
) -> Result<OvsLan> {
    let given = n.address.is_some()
        || n.controller.is_some()
        || n.fail_mode.is_some()
        || !n.flows.is_empty();
    if !given {
        return Ok(OvsLan::default());
    }
    if kind != NetworkKind::Ovs {
        return Err(c.err(
            place,
            "address, controller, fail_mode and flows need an Open vSwitch LAN: set kind = \"ovs\"",
        ));
    }
    let address = match &n.address {
        Some(s) => Some(parse_if_addr(
            c,
            &format!("{place}.address"),
            s,
            Some(subnet),
        )?),
        None => None,
    };
    if let Some(t) = &n.controller {
        check_controller(c, &format!("{place}.controller"), t)?;
    }
    let fail_mode = match n.fail_mode.as_deref() {
        None => None,
        Some("standalone") => Some(FailMode::Standalone),
        Some("secure") => Some(FailMode::Secure),
        Some(other) => {
            return Err(c.err(
                format!("{place}.fail_mode"),
                format!("unknown fail_mode '{other}' (use \"standalone\" or \"secure\")"),
            ));
        }
    };
    let ports: Vec<&str> = members.iter().map(|m| m.node.as_str()).collect();
    for (i, f) in n.flows.iter().enumerate() {
        crate::net::openflow::FlowSpec::parse(f, &ports)
            .map_err(|m| c.err(format!("{place}.flows[{i}]"), m))?;
    }
    Ok(OvsLan {
        address,
        controller: n.controller.clone(),
        fail_mode,
        flows: n.flows.clone(),
    })
}

/// A controller target: `tcp:IP:PORT`, `ssl:IP:PORT` or `unix:PATH`.
fn check_controller(c: &Checker, place: &str, t: &str) -> Result<()> {
    let bad = || {
        c.err(
            place,
            format!("'{t}' is not a controller target: write it like tcp:10.0.9.10:6653"),
        )
    };
    match t.split_once(':') {
        Some(("unix", path)) if path.starts_with('/') => Ok(()),
        Some(("tcp" | "ssl", rest)) => {
            let (ip, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            ip.parse::<std::net::Ipv4Addr>().map_err(|_| bad())?;
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(bad)?;
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// Every `[[tunnels]]`: two ends on two different OVS LANs, each leaving from the address of
/// an OVS underlay LAN, the other end reachable on that subnet or through `via`.
pub(super) fn tunnels(c: &Checker, raw: &[RawTunnel], networks: &[Network]) -> Result<Vec<Tunnel>> {
    let mut out: Vec<Tunnel> = Vec::new();
    for (ti, t) in raw.iter().enumerate() {
        let place = format!("tunnels[{ti}]");
        let kind = match t.kind.as_str() {
            "vxlan" => TunnelKind::Vxlan,
            "gre" => TunnelKind::Gre,
            other => {
                return Err(c.err(
                    format!("{place}.kind"),
                    format!("unknown tunnel kind '{other}' (use \"vxlan\" or \"gre\")"),
                ));
            }
        };
        if kind == TunnelKind::Vxlan && t.key > MAX_VNI {
            return Err(c.err(
                format!("{place}.key"),
                format!("VNI {} is over 24 bits (at most {MAX_VNI})", t.key),
            ));
        }
        let a = tunnel_end(c, &format!("{place}.a"), &t.a, networks)?;
        let b = tunnel_end(c, &format!("{place}.b"), &t.b, networks)?;
        if a.network == b.network {
            return Err(c.err(
                &place,
                "both ends are on the same LAN: a tunnel joins two OVS LANs",
            ));
        }
        if a.local == b.local {
            return Err(c.err(
                &place,
                "both ends leave from the same address: give each end its own underlay",
            ));
        }
        for (side, end, other) in [("a", &a, &b), ("b", &b, &a)] {
            let subnet = networks[end.underlay].ovs.address.expect("checked").trunc();
            if end.via.is_none() && !subnet.contains(&other.local) {
                return Err(c.err(
                    format!("{place}.{side}"),
                    format!(
                        "the other end's {} is not on {subnet}: give `via`, the next hop toward it",
                        other.local
                    ),
                ));
            }
        }
        let name = t.name.clone().unwrap_or_else(|| {
            format!("{}-{}", networks[a.network].name, networks[b.network].name)
        });
        if out.iter().any(|o| o.name == name) {
            return Err(c.err(
                &place,
                format!("tunnel '{name}' is defined twice: give it a name"),
            ));
        }
        let same = out.iter().find(|o| {
            o.kind == kind && o.key == t.key && [o.a.local, o.b.local] == [a.local, b.local]
        });
        if let Some(o) = same {
            return Err(c.err(
                &place,
                format!(
                    "tunnel '{}' has the same kind, key and addresses: give this one another key",
                    o.name
                ),
            ));
        }
        out.push(Tunnel {
            name,
            kind,
            key: t.key,
            a,
            b,
        });
    }
    Ok(out)
}

/// One end of a tunnel at `place`.
fn tunnel_end(
    c: &Checker,
    place: &str,
    e: &RawTunnelEnd,
    networks: &[Network],
) -> Result<TunnelEnd> {
    let find = |field: &str, name: &str| -> Result<usize> {
        let i = networks
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| {
                c.err(
                    format!("{place}.{field}"),
                    format!("unknown network '{name}'"),
                )
            })?;
        if networks[i].kind != NetworkKind::Ovs {
            return Err(c.err(
                format!("{place}.{field}"),
                format!("network '{name}' is a Linux bridge: tunnels join Open vSwitch LANs (kind = \"ovs\")"),
            ));
        }
        Ok(i)
    };
    let network = find("network", &e.network)?;
    let underlay = find("underlay", &e.underlay)?;
    if network == underlay {
        return Err(c.err(
            format!("{place}.underlay"),
            "the underlay is the LAN the tunnel carries: give another OVS LAN",
        ));
    }
    let Some(local) = networks[underlay].ovs.address else {
        return Err(c.err(
            format!("{place}.underlay"),
            format!(
                "network '{}' has no address: give it one (the tunnel's local address)",
                e.underlay
            ),
        ));
    };
    let via = match &e.via {
        Some(s) => {
            let v = parse_addr(c, &format!("{place}.via"), s)?;
            if !local.trunc().contains(&v) || v == local.addr() {
                return Err(c.err(
                    format!("{place}.via"),
                    format!("next hop {v} is not another address on {}", local.trunc()),
                ));
            }
            Some(v)
        }
        None => None,
    };
    Ok(TunnelEnd {
        network,
        underlay,
        local: local.addr(),
        via,
    })
}

#[cfg(test)]
mod tests {
    use crate::topology::{TunnelKind, parse};

    const LAB: &str = include_str!("../../../topologies/ovs-lab.toml");

    fn refusal(text: &str) -> String {
        let e = parse(text, "t.toml").expect_err("refused");
        assert_eq!(e.exit_code(), 2);
        e.to_string()
    }

    #[test]
    fn the_ovs_lab_parses_with_vlans_tunnels_flows_and_qos() {
        let t = parse(LAB, "ovs-lab.toml").unwrap();
        let vlans = t.networks.iter().find(|n| n.name == "vlans").unwrap();
        assert_eq!(vlans.members[0].port.vlan, Some(10));
        assert_eq!(vlans.members[3].port.trunks, vec![10, 20]);
        assert_eq!(t.tunnels.len(), 3);
        assert_eq!(
            (t.tunnels[0].kind, t.tunnels[0].key),
            (TunnelKind::Vxlan, 5001)
        );
        assert_eq!(t.tunnels[2].kind, TunnelKind::Gre);
        let qos = t.networks.iter().find(|n| n.name == "qos").unwrap();
        assert_eq!(
            qos.members[1].port.qos.as_ref().unwrap().max_rate,
            Some(2_000_000)
        );
        let p = crate::plan::plan(&t, "ovt", &Default::default());
        let site = p.bridges.iter().find(|b| b.network == "sitea1").unwrap();
        assert_eq!(site.ovs.tunnels.len(), 1);
        assert_eq!(site.ovs.tunnels[0].remote.to_string(), "10.251.2.1");
        assert_eq!(site.ovs.tunnels[0].gateway.to_string(), "10.251.1.2");
        assert!(crate::plan::is_lab_mark("ovt", site.ovs.tunnels[0].mark));
        assert!(!crate::plan::is_lab_mark("other", site.ovs.tunnels[0].mark));
    }

    const BASE: &str = "name = \"t\"\n[nodes.a]\n[nodes.b]\n";

    #[test]
    fn ovs_settings_are_refused_where_they_mean_nothing() {
        let linux = format!(
            "{BASE}[networks.n]\nsubnet = \"10.0.0.0/24\"\nmembers = [{{ node = \"a\", interface = \"eth0\", vlan = 10 }}]\n"
        );
        assert!(refusal(&linux).contains("need an Open vSwitch LAN"));
        let both = format!(
            "{BASE}[networks.n]\nkind = \"ovs\"\nsubnet = \"10.0.0.0/24\"\nmembers = [{{ node = \"a\", interface = \"eth0\", vlan = 10, trunks = [20] }}]\n"
        );
        assert!(refusal(&both).contains("not both"));
        let range = format!(
            "{BASE}[networks.n]\nkind = \"ovs\"\nsubnet = \"10.0.0.0/24\"\nmembers = [{{ node = \"a\", interface = \"eth0\", vlan = 4095 }}]\n"
        );
        assert!(refusal(&range).contains("out of range"));
        let link = format!(
            "{BASE}[[links]]\na = {{ node = \"a\", interface = \"s0\", vlan = 3 }}\nb = {{ node = \"b\", interface = \"s0\" }}\n"
        );
        assert!(refusal(&link).contains("move the node onto an OVS network"));
        let flow = format!(
            "{BASE}[networks.n]\nkind = \"ovs\"\nsubnet = \"10.0.0.0/24\"\nflows = [\"in_port=c,actions=drop\"]\nmembers = [{{ node = \"a\", interface = \"eth0\" }}]\n"
        );
        assert!(refusal(&flow).contains("flows[0]: in_port=c"));
        let ctl = format!(
            "{BASE}[networks.n]\nkind = \"ovs\"\nsubnet = \"10.0.0.0/24\"\ncontroller = \"tcp:x:1\"\n"
        );
        assert!(refusal(&ctl).contains("not a controller target"));
    }

    #[test]
    fn tunnels_need_ovs_lans_with_an_underlay_address() {
        let nets = "[networks.s1]\nkind = \"ovs\"\nsubnet = \"10.1.0.0/24\"\n[networks.s2]\nkind = \"ovs\"\nsubnet = \"10.1.0.0/24\"\n[networks.u]\nkind = \"ovs\"\nsubnet = \"10.9.0.0/24\"\n";
        let t = format!(
            "{BASE}{nets}[[tunnels]]\nkind = \"vxlan\"\nkey = 1\na = {{ network = \"s1\", underlay = \"u\" }}\nb = {{ network = \"s2\", underlay = \"u\" }}\n"
        );
        assert!(refusal(&t).contains("has no address"));
        let t = format!(
            "{BASE}{nets}[[tunnels]]\nkind = \"vxlan\"\nkey = 16777216\na = {{ network = \"s1\", underlay = \"u\" }}\nb = {{ network = \"s2\", underlay = \"u\" }}\n"
        );
        assert!(refusal(&t).contains("over 24 bits"));
        let t = format!(
            "{BASE}{nets}[[tunnels]]\nkind = \"ipip\"\nkey = 1\na = {{ network = \"s1\", underlay = \"u\" }}\nb = {{ network = \"s2\", underlay = \"u\" }}\n"
        );
        assert!(refusal(&t).contains("unknown tunnel kind"));
    }
}
