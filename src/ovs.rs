//! A lab's Open vSwitch as the lecture draws it: bridge -> ports -> interfaces, with VLANs,
//! QoS, tunnels and controllers, read from the OVSDB rows labelled with the lab; and its flow
//! tables with their counters, read over OpenFlow. Ports are named by the node (and
//! interface) plugged into them; tunnel ports by their tunnel.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::net::openflow::{FlowStats, OpenFlow, reserved_port_name};
use crate::net::ovsdb::{self, LabRows, Ovsdb, RowMap, map_pairs, refs, set_items, text};
use crate::os::real::ovs_error;
use crate::plan::{PlanOptions, plan};
use crate::topology::{NetworkKind, Topology};

/// What each of a lab's OVS port names stands for: `node:iface`, or `tunnel NAME (KIND KEY)`.
pub fn port_labels(topo: &Topology, lab: &str) -> BTreeMap<String, String> {
    let p = plan(topo, lab, &PlanOptions::default());
    let mut out = BTreeMap::new();
    for b in p.bridges.iter().filter(|b| b.kind == NetworkKind::Ovs) {
        let net = topo.networks.iter().find(|n| n.name == b.network);
        for (i, m) in b.ovs.members.iter().enumerate() {
            let iface = net
                .and_then(|n| n.members.get(i))
                .map(|e| e.interface.as_str())
                .unwrap_or("?");
            out.insert(m.port.clone(), format!("{}:{iface}", m.node));
        }
        for t in &b.ovs.tunnels {
            out.insert(
                t.name.clone(),
                format!("tunnel {} ({} {})", t.tunnel, t.kind.as_str(), t.key),
            );
        }
        out.insert(b.name.clone(), format!("LOCAL (LAN {})", b.network));
    }
    out
}

fn connect() -> Result<Ovsdb> {
    Ovsdb::connect(Path::new(ovsdb::DEFAULT_SOCKET))
        .map_err(|e| ovs_error("connecting to Open vSwitch", e))
}

/// `tcplab ovs show`: the lab's rows as text.
pub fn show(topo: &Topology, lab: &str) -> Result<String> {
    let rows = connect()?
        .lab_rows(lab)
        .map_err(|e| ovs_error("reading the lab's rows", e))?;
    if rows.bridges.is_empty() {
        return Err(Error::Usage(format!(
            "lab '{lab}' has no Open vSwitch bridges: is it up, with LANs of kind \"ovs\"?"
        )));
    }
    let dpif = ovsdb::Unixctl::connect()
        .and_then(|mut c| c.dpif_show())
        .ok();
    Ok(render(&rows, &port_labels(topo, lab), dpif.as_deref()))
}

fn col<'a>(row: &'a RowMap, name: &str) -> Option<&'a serde_json::Value> {
    row.get(name)
}

fn col_text(row: &RowMap, name: &str) -> String {
    set_items(col(row, name)).join(", ")
}

fn pairs_text(row: &RowMap, name: &str) -> String {
    map_pairs(col(row, name))
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rows drawn as the lecture does; `labels` names the ports.
pub fn render(rows: &LabRows, labels: &BTreeMap<String, String>, dpif: Option<&str>) -> String {
    let mut out = String::new();
    let sw = &rows.switch;
    let _ = writeln!(
        out,
        "Open_vSwitch: datapath_types [{}]; kernel datapath (openvswitch module): {}",
        col_text(sw, "datapath_types"),
        if crate::net::datapath::kernel_datapath_available() {
            "present"
        } else {
            "absent"
        }
    );
    for b in &rows.bridges {
        let name = col(b, "name").map(text).unwrap_or_default();
        let network = map_pairs(col(b, "external_ids"))
            .into_iter()
            .find(|(k, _)| k == ovsdb::NETWORK_KEY)
            .map(|(_, v)| v)
            .unwrap_or_default();
        let _ = writeln!(out, "Bridge {name} (LAN {network})");
        let _ = writeln!(out, "    datapath_type: {}", col_text(b, "datapath_type"));
        let _ = writeln!(out, "    fail_mode: {}", col_text(b, "fail_mode"));
        for c in refs(col(b, "controller"))
            .iter()
            .filter_map(|u| rows.controllers.get(u))
        {
            let _ = writeln!(
                out,
                "    Controller \"{}\"  is_connected: {}",
                col_text(c, "target"),
                col_text(c, "is_connected")
            );
        }
        let mut ports: Vec<&RowMap> = refs(col(b, "ports"))
            .iter()
            .filter_map(|u| rows.ports.get(u))
            .collect();
        ports.sort_by_key(|p| col(p, "name").map(text));
        for p in ports {
            render_port(&mut out, rows, p, labels);
        }
    }
    if let Some(d) = dpif {
        let ours: Vec<String> = rows
            .bridges
            .iter()
            .filter_map(|b| col(b, "name").map(text))
            .collect();
        let _ = writeln!(out, "Datapaths in use (dpif/show, this lab's bridges):");
        let mut keep = true;
        for line in d.lines() {
            if !line.starts_with(' ') {
                keep = true;
            } else if !line.starts_with("    ") {
                keep = ours.iter().any(|b| line.trim().trim_end_matches(':') == b);
            }
            if keep {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

fn render_port(out: &mut String, rows: &LabRows, p: &RowMap, labels: &BTreeMap<String, String>) {
    let name = col(p, "name").map(text).unwrap_or_default();
    let label = labels.get(&name).cloned().unwrap_or_else(|| name.clone());
    let _ = writeln!(out, "    Port {label} ({name})");
    let tag = col_text(p, "tag");
    if !tag.is_empty() {
        let _ = writeln!(out, "        tag: {tag}");
    }
    let trunks = col_text(p, "trunks");
    if !trunks.is_empty() {
        let _ = writeln!(out, "        trunks: [{trunks}]");
    }
    for q in refs(col(p, "qos")).iter().filter_map(|u| rows.qos.get(u)) {
        let _ = writeln!(
            out,
            "        QoS type: {}  {}",
            col_text(q, "type"),
            pairs_text(q, "other_config")
        );
        for (k, v) in map_pairs(col(q, "queues")) {
            if let Some(queue) = rows.queues.get(&v) {
                let _ = writeln!(
                    out,
                    "            Queue {k}: {}",
                    pairs_text(queue, "other_config")
                );
            }
        }
    }
    for i in refs(col(p, "interfaces"))
        .iter()
        .filter_map(|u| rows.interfaces.get(u))
    {
        let iname = col(i, "name").map(text).unwrap_or_default();
        let _ = writeln!(
            out,
            "        Interface {iname}  ofport: {}",
            col_text(i, "ofport")
        );
        let kind = col_text(i, "type");
        if !kind.is_empty() {
            let _ = writeln!(out, "            type: {kind}");
        }
        let options = pairs_text(i, "options");
        if !options.is_empty() {
            let _ = writeln!(out, "            options: {options}");
        }
        for key in ["ingress_policing_rate", "ingress_policing_burst"] {
            let v = col_text(i, key);
            if !v.is_empty() && v != "0" {
                let _ = writeln!(out, "            {key}: {v}");
            }
        }
        let error = col_text(i, "error");
        if !error.is_empty() {
            let _ = writeln!(out, "            error: {error}");
        }
    }
}

/// The flow table of LAN `network`'s bridge `bridge`, ports named by node.
pub fn flows_of(topo: &Topology, lab: &str, network: &str, bridge: &str) -> Result<Vec<String>> {
    let p = plan(topo, lab, &PlanOptions::default());
    let all = port_labels(topo, lab);
    let labels: BTreeMap<String, String> = p
        .bridges
        .iter()
        .filter(|b| b.network == network)
        .flat_map(|b| b.ports.iter().chain(b.ovs.tunnels.iter().map(|t| &t.name)))
        .filter_map(|port| all.get(port).map(|l| (port.clone(), l.clone())))
        .collect();
    let names: Vec<String> = labels.keys().cloned().collect();
    let ofports = connect()?
        .ofports(&names)
        .map_err(|e| ovs_error("reading OpenFlow port numbers", e))?;
    let by_number: BTreeMap<u16, String> = ofports
        .iter()
        .map(|(port, n)| {
            (
                *n,
                labels.get(port).cloned().unwrap_or_else(|| port.clone()),
            )
        })
        .collect();
    let name = |p: u16| {
        reserved_port_name(p)
            .map(str::to_string)
            .or_else(|| {
                by_number
                    .get(&p)
                    .map(|n| n.split(':').next().unwrap_or(n).to_string())
            })
            .unwrap_or_else(|| p.to_string())
    };
    let flows = OpenFlow::connect(bridge)?.flows()?;
    Ok(flows.iter().map(|f| flow_line(f, &name)).collect())
}

/// One flow as ovs-ofctl prints it (ports named by `name`).
pub fn flow_line(f: &FlowStats, name: &dyn Fn(u16) -> String) -> String {
    let matched = f.matched.describe(name);
    let actions = if f.outputs.is_empty() && !f.other_actions {
        "drop".to_string()
    } else {
        let mut a: Vec<String> = f
            .outputs
            .iter()
            .map(|p| match reserved_port_name(*p) {
                Some(r) => r.to_string(),
                None => format!("output:{}", name(*p)),
            })
            .collect();
        if f.other_actions {
            a.push("(other actions)".into());
        }
        a.join(",")
    };
    let sep = if matched.is_empty() { "" } else { "," };
    format!(
        "table={}, n_packets={}, n_bytes={}, priority={}{sep}{matched} actions={actions}",
        f.table, f.packets, f.bytes, f.priority
    )
}
