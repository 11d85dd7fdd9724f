//! Reports: a Markdown page per experiment run with its checks and, per capture, an SVG
//! time-line drawn the way the book draws its figures; and the topology drawn (`tcplab graph`).
//!
//! Code map: [`svg`] is the drawings' public face (the functions and their inputs, re-exported
//! from the modules beside it); `text` measures, shortens and escapes text; `canvas` writes
//! SVG; `timeline` draws packet time-lines; `topology` draws the network (model, rows,
//! placement, line routes, layout, drawing, one file each); `dot` writes Graphviz DOT.
//! A capture's part of the report: `tcpconn` sorts its TCP segments into connections,
//! `book` writes each packet's line the way the book prints it (with `services` naming
//! well-known ports), `listing` tables them in Markdown, `seqdata` and `seqgraph` draw the
//! time-sequence graph of each bulk transfer.

mod book;
mod canvas;
mod dot;
mod listing;
mod seqdata;
mod seqgraph;
mod services;
pub mod svg;
mod tcpconn;
#[cfg(test)]
mod test_frames;
#[cfg(test)]
mod test_support;
mod text;
mod timeline;
mod topology;

use crate::experiment::run::{CaptureResult, LabView, RunResult};
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

    /// From (MAC, host) and (address, host) pairs; MACs as `MacAddr` prints them.
    #[cfg(test)]
    pub(crate) fn from_pairs(
        macs: impl IntoIterator<Item = (String, String)>,
        ips: impl IntoIterator<Item = (std::net::Ipv4Addr, String)>,
    ) -> Self {
        Names {
            macs: macs
                .into_iter()
                .map(|(m, n)| (m.to_lowercase(), n))
                .collect(),
            ips: ips.into_iter().collect(),
        }
    }

    /// The host that owns `ip`, else the address itself.
    pub fn host(&self, ip: std::net::Ipv4Addr) -> String {
        self.ips.get(&ip).cloned().unwrap_or_else(|| ip.to_string())
    }

    /// Sender and receiver of a packet: by Ethernet address (who really sent it: netb's proxy
    /// ARP reply comes from netb), else by IP address; `*` for broadcast.
    pub fn ends(&self, p: &crate::capture::Packet) -> (String, String) {
        let by_ip = |a| self.host(a);
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
        let (section, figures) = capture_section(&e.name, cap, &names);
        md.push_str(&section);
        for (file, svg) in figures {
            std::fs::write(res.out_dir.join(file), svg)?;
        }
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

/// Packets drawn at most on a capture's time-line (the table lists more).
const MAX_TIMELINE: usize = 300;

/// A capture's part of `report.md` (its time-line, its packet table, its time-sequence
/// graphs) and the figures it links to, as (file name, SVG document).
fn capture_section(
    experiment: &str,
    cap: &CaptureResult,
    names: &Names,
) -> (String, Vec<(String, String)>) {
    let mut md = String::new();
    let mut figures = Vec::new();
    let file = cap
        .file
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "## Capture `{}` on {} ({} packets, {} dropped)\n",
        cap.name,
        cap.node,
        cap.packets.len(),
        cap.dropped
    );
    let t0 = cap.packets.first().map_or(0, |p| p.1);
    let caps: Vec<tcpconn::Captured> = cap
        .packets
        .iter()
        .map(|(iface, ts, p)| tcpconn::Captured {
            iface,
            time: ts.saturating_sub(t0) as f64 / 1e9,
            packet: p,
        })
        .collect();
    let conns = tcpconn::Conns::new(&caps);
    let lines = book::book_lines(&caps, &conns, names, book::Detail::Full);
    let labels = book::book_lines(&caps, &conns, names, book::Detail::Figure);
    let svg_name = format!("{}.svg", cap.name);
    let mut title = format!("{experiment} — capture {} on {}", cap.name, cap.node);
    if caps.len() > MAX_TIMELINE {
        let _ = write!(title, " (first {MAX_TIMELINE} of {} packets)", caps.len());
        let _ = writeln!(
            md,
            "The time-line shows the first {MAX_TIMELINE} of the {} packets.\n",
            caps.len()
        );
    }
    let _ = writeln!(
        md,
        "File: [{file}]({file}) (open it in Wireshark)\n\n![{}]({svg_name})\n",
        cap.name
    );
    figures.push((svg_name, timeline_of(&title, &caps, &labels, names)));
    listing::packet_table(&mut md, &caps, &lines);
    for (k, s) in seqdata::bulk_series(&caps, &conns, names)
        .iter()
        .enumerate()
    {
        let file = format!("{}-tcpseq-{}.svg", cap.name, k + 1);
        let title = format!(
            "{experiment} — {}: time-sequence graph of {}",
            cap.name, s.sender
        );
        seq_graph_text(&mut md, k + 1, s, &file);
        figures.push((file, seqgraph::seq_graph_svg(&title, s)));
    }
    (md, figures)
}

/// The time-line of the first [`MAX_TIMELINE`] packets, labelled with their book lines.
fn timeline_of(title: &str, caps: &[tcpconn::Captured], lines: &[String], names: &Names) -> String {
    let mut hosts: Vec<String> = Vec::new();
    let mut pkts = Vec::new();
    for (c, line) in caps.iter().zip(lines).take(MAX_TIMELINE) {
        let (from, to) = names.ends(c.packet);
        for h in [&from, &to] {
            if h != "*" && !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        pkts.push(svg::TimelinePacket {
            time: c.time,
            from,
            to,
            label: line.clone(),
        });
    }
    svg::timeline_svg(title, &hosts, &pkts)
}

/// The Markdown around time-sequence graph `k`: its link and what to look for in it.
fn seq_graph_text(md: &mut String, k: usize, s: &seqdata::SeqSeries, file: &str) {
    let bytes: u64 = s.data.iter().map(|d| d.end - d.start).sum();
    let dups = s.acks.iter().filter(|a| a.dup).count();
    let _ = writeln!(
        md,
        "### Time-sequence graph {k}: {}\n\n![time-sequence graph of {}]({file})\n",
        s.sender, s.sender
    );
    let _ = writeln!(
        md,
        "Time runs to the right, the sequence number (relative to the ISN) up; each blue bar \
         is a data segment, the green steps are {}'s ACKs and the orange steps the right \
         edge of its advertised window. Look for slow start's bursts that grow each round \
         trip, the data running into the orange line when the window is the limit, red \
         retransmissions after a pause (pauses that double are the retransmission timer \
         backing off), and a red bar after a flat ACK line dotted with duplicate ACKs (fast \
         retransmit and fast recovery). Here: {} data segments, {bytes} bytes, {} \
         retransmitted, {dups} duplicate ACKs.\n",
        s.receiver,
        s.total_data,
        s.retransmissions().len()
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_frames::{bulk_frames, decode_all, lab_names};
    use crate::report::test_support::check_svg;

    /// A capture on sun of `frames`, one millisecond apart.
    fn capture_of(frames: &[Vec<u8>]) -> CaptureResult {
        CaptureResult {
            name: "c1".into(),
            node: "sun".into(),
            file: "/tmp/out/c1.pcap".into(),
            packets: decode_all(frames)
                .into_iter()
                .enumerate()
                .map(|(i, p)| ("eth0".to_string(), 1_000_000_000 + i as u64 * 1_000_000, p))
                .collect(),
            dropped: 0,
        }
    }

    #[test]
    fn a_capture_has_its_time_line_table_and_time_sequence_graph() {
        let cap = capture_of(&bulk_frames(12));
        let (md, figures) = capture_section("bulk", &cap, &lab_names());
        let files: Vec<&str> = figures.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(files, ["c1.svg", "c1-tcpseq-1.svg"]);
        assert!(md.contains("![c1](c1.svg)"), "{md}");
        assert!(
            md.contains("![time-sequence graph of bsdi.1036 > svr4.discard](c1-tcpseq-1.svg)"),
            "{md}"
        );
        assert!(md.contains("Here: 13 data segments, 13312 bytes, 1 retransmitted, 3 duplicate"));
        assert!(
            md.contains(
                "| 3 | 0.002000 | (0.0010) | `bsdi.1036 > svr4.discard: . ack 1 win 4096` |"
            ),
            "{md}"
        );
        let timeline = check_svg(&figures[0].1);
        let texts: Vec<String> = timeline
            .find("text")
            .iter()
            .map(|t| t.text.clone())
            .collect();
        for want in [
            "bsdi.1036 > svr4.discard: . ack 1 win 4096",
            "bsdi.1036 > svr4.discard: . 1:1025(1024) ack 1 win 4096",
            "svr4.discard > bsdi.1036: . ack 1025 win 1000",
        ] {
            assert!(
                texts.iter().any(|t| t == want),
                "{want} not on the time-line"
            );
        }
        check_svg(&figures[1].1);
    }

    #[test]
    fn two_data_segments_get_no_time_sequence_graph() {
        let cap = capture_of(&bulk_frames(2));
        let (md, figures) = capture_section("short", &cap, &lab_names());
        assert_eq!(figures.len(), 1);
        assert!(!md.contains("tcpseq") && !md.contains("Time-sequence graph"));
    }
}
