//! The topology in Graphviz DOT ([`topology_dot`]), for those who lay it out with `dot`.

use super::svg::Graph;
use super::topology::model::{PortText, Topo};
use std::fmt::Write as _;

/// `s` as the inside of a DOT double-quoted string (newlines and control characters become
/// spaces).
fn dq(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Lines joined for a DOT label (each escaped, joined with DOT's `\n`).
fn dq_lines<S: AsRef<str>>(lines: &[S]) -> String {
    lines
        .iter()
        .map(|l| dq(l.as_ref()))
        .collect::<Vec<_>>()
        .join("\\n")
}

/// The same network as [`topology_svg`](super::svg::topology_svg) in Graphviz DOT (an undirected `graph`): hosts are
/// boxes with their name and addresses (routers with a double border), LANs are grey
/// ellipses with their name and subnet, each LAN member joined to its LAN by an edge labelled
/// with interface name and address, each point-to-point link an edge between its hosts
/// labelled with its name, each end labelled with interface name and address.
#[must_use]
pub fn topology_dot(g: &Graph) -> String {
    let t = Topo::new(g);
    let mut s = String::new();
    s.push_str("graph \"tcplab\" {\n");
    let _ = writeln!(
        s,
        "  graph [label=\"{}\", labelloc=t, fontname=\"monospace\", fontsize=16, nodesep=0.4, ranksep=0.7];",
        dq(&g.title)
    );
    s.push_str("  node [fontname=\"monospace\", fontsize=12];\n");
    s.push_str("  edge [fontname=\"monospace\", fontsize=10];\n");
    for (i, h) in t.hosts.iter().enumerate() {
        let mut lines = vec![h.full.clone()];
        lines.extend(t.addr_lines(i));
        let style = if h.router {
            ", peripheries=2, style=filled, fillcolor=\"#eef3fb\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  h{} [shape=box{style}, label=\"{}\"];",
            i + 1,
            dq_lines(&lines)
        );
    }
    for (i, l) in t.lans.iter().enumerate() {
        let lines: Vec<&str> = [g.lans[i].name.as_str(), l.subnet.as_str()]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect();
        let _ = writeln!(
            s,
            "  lan{} [shape=ellipse, style=filled, fillcolor=\"#e8e8e8\", label=\"{}\"];",
            i + 1,
            dq_lines(&lines)
        );
        for (h, ports) in &l.members {
            let lines: Vec<String> = ports.iter().flat_map(PortText::lines).collect();
            let _ = writeln!(
                s,
                "  h{} -- lan{} [label=\"{}\"];",
                h + 1,
                i + 1,
                dq_lines(&lines)
            );
        }
    }
    for (k, l) in t.links.iter().enumerate() {
        let _ = writeln!(
            s,
            "  h{} -- h{} [label=\"{}\", taillabel=\"{}\", headlabel=\"{}\", style=bold];",
            l.a + 1,
            l.b + 1,
            dq(&g.links[k].name),
            dq_lines(&l.pa.lines()),
            dq_lines(&l.pb.lines())
        );
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::GraphHost;
    use crate::report::test_support::{course, odd_graph, stress};

    /// Quotes closed, braces balanced outside strings, brackets too.
    fn assert_dot_balanced(dot: &str) {
        let (mut depth, mut square, mut in_str, mut esc_next) = (0i64, 0i64, false, false);
        for c in dot.chars() {
            if in_str {
                match (esc_next, c) {
                    (true, _) => esc_next = false,
                    (false, '\\') => esc_next = true,
                    (false, '"') => in_str = false,
                    (false, '\n') => panic!("newline inside a DOT string"),
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '{' => depth += 1,
                '}' => depth -= 1,
                '[' => square += 1,
                ']' => square -= 1,
                _ => {}
            }
            assert!(depth >= 0 && square >= 0, "unbalanced DOT:\n{dot}");
        }
        assert!(
            !in_str && depth == 0 && square == 0,
            "unbalanced DOT:\n{dot}"
        );
    }

    #[test]
    fn dot_has_every_host_and_is_balanced() {
        let mut g = course();
        g.hosts.push(GraphHost {
            name: "q\"uote\\back".into(),
            router: false,
        });
        let dot = topology_dot(&g);
        assert_dot_balanced(&dot);
        for h in &g.hosts {
            let label = format!("label=\"{}", dq(&h.name));
            assert!(dot.contains(&label), "host {} missing from DOT", h.name);
        }
        assert!(dot.contains("q\\\"uote\\\\back"));
        let edges = dot.lines().filter(|l| l.contains(" -- ")).count();
        let members: usize = g.lans.iter().map(|l| l.members.len()).sum();
        assert_eq!(edges, members + g.links.len());
        assert_eq!(dot.matches("shape=box").count(), g.hosts.len());
        assert_eq!(dot.matches("shape=ellipse").count(), g.lans.len());
        assert!(dot.contains("taillabel=\"slipside\\n140.252.13.65/27\""));
        assert!(dot.contains("label=\"eth1\\n140.252.1.92\""));
    }

    #[test]
    fn odd_and_empty_graphs_give_balanced_dot() {
        assert_dot_balanced(&topology_dot(&odd_graph()));
        let dot = topology_dot(&Graph::default());
        assert_dot_balanced(&dot);
        assert!(dot.starts_with("graph "));
    }

    #[test]
    fn output_is_deterministic() {
        let g = stress(4, 6);
        assert_eq!(topology_dot(&g), topology_dot(&g));
    }
}
