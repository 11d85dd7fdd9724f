//! The plan as text, one action a line, for `up --dry-run`.

use super::{NodePlan, Plan, UplinkPlan};
use std::fmt::Write as _;

impl Plan {
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
            render_node(&mut o, n);
        }
        if let Some(u) = &self.uplink {
            render_uplink(&mut o, u, &self.lab);
        }
        o
    }
}

/// A node's addresses, routes, sysctls and proxy ARP entries.
fn render_node(o: &mut String, n: &NodePlan) {
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

/// What the lab's edge and the host do for the uplink.
fn render_uplink(o: &mut String, u: &UplinkPlan, lab: &str) {
    let edge = super::switch_netns(lab);
    let _ = writeln!(o, "edge {edge}: gatewayout {}", u.host_address);
    for r in &u.host_routes {
        let _ = writeln!(o, "edge {edge}: route {} via {}", r, u.gateway);
    }
    for s in &u.masquerade {
        let _ = writeln!(o, "edge {edge}: nat MASQUERADE {} out of tohost", s);
    }
    let _ = writeln!(
        o,
        "host: a /30 of 100.64.0.0/10 to {edge} (chosen at up), forwarded and MASQUERADEd out of {} (chain TCPLAB-{})",
        u.uplink, lab
    );
}
