//! Reports: a Markdown page per experiment run with its checks and, per capture, an SVG
//! time-line drawn the way the book draws its figures; and the topology drawn (`tcplab graph`).
//!
//! Code map: [`svg`] is the drawings' public face (the functions and their inputs, re-exported
//! from the modules beside it); `text` measures, shortens and escapes text; `canvas` writes
//! SVG; `timeline` draws packet time-lines; `topology` draws the network (model, rows,
//! placement, line routes, layout, drawing, one file each); `dot` writes Graphviz DOT.

mod canvas;
mod dot;
pub mod svg;
#[cfg(test)]
mod test_support;
mod text;
mod timeline;
mod topology;

use crate::experiment::run::{LabView, RunResult};
use crate::topology::Topology;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Who owns which MAC and IP address, to name the two ends of a packet.
pub struct Names {
    macs: HashMap<String, String>,
    ips: HashMap<std::net::Ipv4Addr, String>,
}

impl Names {
    /// From a lab's view.
    pub fn new(view: &LabView) -> Self {
        let macs = view
            .macs
            .iter()
            .map(|((node, _), mac)| (mac.to_lowercase(), node.clone()))
            .collect();
        let mut ips = HashMap::new();
        for n in &view.topology.nodes {
            for i in &n.interfaces {
                if let Some(a) = i.address {
                    ips.insert(a.addr(), n.name.clone());
                }
            }
        }
        Names { macs, ips }
    }

    /// Sender and receiver of a packet: by Ethernet address (who really sent it: netb's proxy
    /// ARP reply comes from netb), else by IP address; `*` for broadcast.
    pub fn ends(&self, p: &crate::capture::Packet) -> (String, String) {
        let by_ip =
            |a: std::net::Ipv4Addr| self.ips.get(&a).cloned().unwrap_or_else(|| a.to_string());
        let (mut from, mut to) = match (&p.ipv4, &p.arp) {
            (Some(ip), _) => (by_ip(ip.src), by_ip(ip.dst)),
            (None, Some(a)) => (by_ip(a.sender_ip), by_ip(a.target_ip)),
            _ => ("?".into(), "?".into()),
        };
        if let Some(e) = &p.ethernet {
            if let Some(n) = self.macs.get(&e.src.to_string().to_lowercase()) {
                from = n.clone();
            }
            if e.dst.is_broadcast() {
                to = "*".into();
            } else if let Some(n) = self.macs.get(&e.dst.to_string().to_lowercase()) {
                to = n.clone();
            }
        }
        (from, to)
    }
}

/// Write the report of a run: `report.md` and one `<capture>.svg` per capture. Returns the
/// Markdown's path.
pub fn write_run_report(res: &RunResult, view: &LabView) -> std::io::Result<std::path::PathBuf> {
    let names = Names::new(view);
    let e = &res.experiment;
    let mut md = String::new();
    let _ = writeln!(md, "# {}: {}\n", e.name, e.title);
    let _ = writeln!(
        md,
        "*TCP/IP Illustrated, Vol. 1, chapter {}* — lab `{}`\n",
        e.chapter, view.lab
    );
    let _ = writeln!(md, "{}\n", e.description.trim());
    let _ = writeln!(md, "## Checks\n");
    for c in &res.checks {
        let _ = writeln!(
            md,
            "- {} **{}** {}  \n  {}",
            if c.passed { "✔" } else { "✘" },
            if c.passed { "passed" } else { "FAILED" },
            c.description,
            c.detail
        );
    }
    let _ = writeln!(
        md,
        "\n**{}**\n",
        if res.passed() {
            "All checks passed."
        } else {
            "Some checks failed."
        }
    );
    for cap in &res.captures {
        let file = cap
            .file
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let svg_name = format!("{}.svg", cap.name);
        let _ = writeln!(
            md,
            "## Capture `{}` on {} ({} packets, {} dropped)\n",
            cap.name,
            cap.node,
            cap.packets.len(),
            cap.dropped
        );
        let _ = writeln!(
            md,
            "File: [{file}]({file}) (open it in Wireshark)\n\n![{}]({svg_name})\n",
            cap.name
        );
        let t0 = cap.packets.first().map_or(0, |p| p.1);
        let mut hosts: Vec<String> = Vec::new();
        let mut pkts = Vec::new();
        let _ = writeln!(md, "```");
        for (iface, ts, p) in &cap.packets {
            let (from, to) = names.ends(p);
            for h in [&from, &to] {
                if h != "*" && !hosts.contains(h) {
                    hosts.push(h.clone());
                }
            }
            let t = (ts.saturating_sub(t0)) as f64 / 1e9;
            let _ = writeln!(md, "{t:10.6} {iface} {p}");
            pkts.push(svg::TimelinePacket {
                time: t,
                from,
                to,
                label: p.to_string(),
            });
        }
        let _ = writeln!(md, "```\n");
        let title = format!("{} — capture {} on {}", e.name, cap.name, cap.node);
        std::fs::write(
            res.out_dir.join(&svg_name),
            svg::timeline_svg(&title, &hosts, &pkts),
        )?;
    }
    if !res.commands.is_empty() {
        let _ = writeln!(md, "## Commands\n");
        for (name, node, cmd, out) in &res.commands {
            let _ = writeln!(md, "`{node}$ {cmd}` ({name}, exit code {})\n", out.code);
            let text = format!("{}{}", out.stdout, out.stderr);
            let lines: Vec<&str> = text.lines().take(40).collect();
            if !lines.is_empty() {
                let _ = writeln!(md, "```\n{}\n```\n", lines.join("\n"));
            }
        }
    }
    let path = res.out_dir.join("report.md");
    std::fs::write(&path, md)?;
    Ok(path)
}

/// The topology as the graph renderer wants it.
pub fn graph_of(topo: &Topology) -> svg::Graph {
    let port = |e: &crate::topology::Endpoint| svg::GraphPort {
        host: e.node.clone(),
        interface: e.interface.clone(),
        address: e.address.map(|a| a.to_string()),
    };
    svg::Graph {
        title: topo
            .description
            .clone()
            .unwrap_or_else(|| topo.name.clone()),
        hosts: topo
            .nodes
            .iter()
            .map(|n| svg::GraphHost {
                name: n.name.clone(),
                router: n.router,
            })
            .collect(),
        lans: topo
            .networks
            .iter()
            .map(|n| svg::GraphLan {
                name: n.name.clone(),
                subnet: n.subnet.to_string(),
                members: n.members.iter().map(port).collect(),
            })
            .collect(),
        links: topo
            .links
            .iter()
            .map(|l| svg::GraphLink {
                name: l.name.clone(),
                a: port(&l.a),
                b: port(&l.b),
            })
            .collect(),
    }
}
