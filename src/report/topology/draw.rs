//! The topology drawn on a [`Canvas`] from its [`Layout`]: buses with their drop lines, the
//! point-to-point lines, the host boxes, the lines' labels over them, the legend.

use super::layout::Layout;
use super::model::{Link, Topo};
use super::route::LinkKind;
use super::rows::LOWER;
use super::{ADDR_FS, Graph, HOST_FS, LAN_FS, PORT_FS, PORT_LH};
use crate::report::canvas::{Canvas, Font, MARGIN, pen};
use crate::report::text::text_w;

/// Drawing of a label, done after the boxes so that labels stay on top.
type Label<'a> = Box<dyn Fn(&mut Canvas) + 'a>;

const PORT_FONT: Font = Font::new(PORT_FS).fill("#222222");
const LINK_NAME_FONT: Font = Font::new(PORT_FS).italic();
const ROUTER_FILL: &str = "#eef3fb";
const INNER_BORDER: &str = "rx=\"2\" fill=\"none\" stroke=\"#000000\" stroke-width=\"1\"";

/// The lab network as an SVG document, laid out like figure 1.11 of Stevens' *TCP/IP
/// Illustrated, Vol. 1*.
///
/// Each LAN is a thick horizontal bus labelled with its name and subnet. The LANs are stacked
/// top to bottom, the first one on top, each next one the LAN most closely tied to the one
/// above it (by hosts on both, then by point-to-point lines). A LAN's hosts stand above its bus
/// in member order, each joined to it by a short line labelled with interface name and
/// address; a host hangs below the bus instead when it is on the next LAN too (it then sits
/// between the two buses) or has a point-to-point line to a host of the next LAN (which is
/// then placed right under it, the line drawn straight down). Hosts are boxes with their name
/// and addresses; routers have a double border. A host on no LAN sits beside the host it has
/// a line to, the line labelled with the link's name and both interfaces. Any other line goes
/// around its row on a track of its own, or, between rows further apart, along such tracks
/// to a channel right of the drawing. The canvas grows with the network; nothing is left out.
#[must_use]
pub fn topology_svg(g: &Graph) -> String {
    let t = Topo::new(g);
    let lay = Layout::new(&t);
    let mut c = Canvas::new();
    for (li, lan) in g.lans.iter().enumerate() {
        draw_lan(&mut c, &t, &lay, li, &lan.name);
    }
    let labels: Vec<Label<'_>> = (0..t.links.len())
        .map(|k| draw_link(&mut c, &t, &lay, k))
        .collect();
    for h in 0..t.hosts.len() {
        draw_host(&mut c, &t, &lay, h);
    }
    for f in &labels {
        f(&mut c);
    }
    draw_legend(&mut c, &t, lay.bottom);
    c.title(&g.title);
    c.finish(&g.title)
}

/// LAN `li`'s bus with its name and subnet, and the drop line of every member, labelled with
/// its interfaces and addresses. `full_name` is the LAN's name as given, for the tooltip.
fn draw_lan(c: &mut Canvas, t: &Topo, lay: &Layout, li: usize, full_name: &str) {
    let lan = &t.lans[li];
    let y = lay.bus_y[li];
    let (x0, x1) = lay.bus_x[li];
    c.group("lan", Some(&format!("lan-{}", li + 1)), Some(full_name));
    c.line((x0, y), (x1, y), pen("#333333", 5.0));
    c.text(x1 + 10.0, y + 5.0, Font::new(LAN_FS).bold(), &lan.name);
    let sx = x1
        + 10.0
        + if lan.name.is_empty() {
            0.0
        } else {
            text_w(&lan.name, LAN_FS) + 8.0
        };
    c.text(sx, y + 5.0, Font::new(LAN_FS), &lan.subnet);
    for &(h, _) in &lan.members {
        let hx = lay.x[h];
        let above = lay.by[h] + lay.bh[h] <= y;
        let edge = if above {
            lay.by[h] + lay.bh[h]
        } else {
            lay.by[h]
        };
        c.line((hx, edge), (hx, y), pen("#333333", 1.5));
        c.dot((hx, y), "3.5", "#333333");
        let lines = t.drop_lines(h, li);
        for (i, l) in lines.iter().enumerate() {
            let ly = if above {
                y - 10.0 - (lines.len() - 1 - i) as f64 * PORT_LH
            } else {
                y + 21.0 + i as f64 * PORT_LH
            };
            c.text(hx + 6.0, ly, PORT_FONT, l);
        }
    }
    c.end_group();
}

/// Link `k`'s line; returns the drawing of its labels (made later, over the boxes' edges if
/// need be).
fn draw_link<'a>(c: &mut Canvas, t: &'a Topo, lay: &Layout, k: usize) -> Label<'a> {
    let l = &t.links[k];
    c.group(
        "link",
        Some(&format!("link-{}", k + 1)),
        Some(&t.link_text(k)),
    );
    let label = match lay.kinds[k] {
        LinkKind::Horizontal => draw_horizontal(c, l, lay),
        LinkKind::Vertical => draw_vertical(c, l, lay),
        LinkKind::Routed { tracks, channel } => draw_routed(c, t, lay, k, tracks, channel),
        LinkKind::Bracket { above, track } => draw_bracket(c, t, lay, k, above, track),
    };
    c.end_group();
    label
}

/// A line between neighbouring boxes at the middle of their common height: its name above,
/// each end's port below.
fn draw_horizontal<'a>(c: &mut Canvas, l: &'a Link, lay: &Layout) -> Label<'a> {
    let (lh, rh) = if lay.x[l.a] < lay.x[l.b] {
        (l.a, l.b)
    } else {
        (l.b, l.a)
    };
    let top = lay.by[lh].max(lay.by[rh]);
    let bot = (lay.by[lh] + lay.bh[lh]).min(lay.by[rh] + lay.bh[rh]);
    let y = (top + bot) / 2.0;
    let x1 = lay.x[lh] + lay.bw[lh] / 2.0;
    let x2 = lay.x[rh] - lay.bw[rh] / 2.0;
    c.line((x1, y), (x2, y), pen("#000000", 1.5));
    let (pl, pr) = (l.port_of(lh).lines(), l.port_of(rh).lines());
    Box::new(move |c: &mut Canvas| {
        c.text((x1 + x2) / 2.0, y - 6.0, LINK_NAME_FONT.middle(), &l.name);
        for (i, s) in pl.iter().enumerate() {
            c.text(x1 + 6.0, y + 15.0 + i as f64 * PORT_LH, PORT_FONT, s);
        }
        for (i, s) in pr.iter().enumerate() {
            c.text(x2 - 6.0, y + 15.0 + i as f64 * PORT_LH, PORT_FONT.end(), s);
        }
    })
}

/// A line straight down from one box to the box under it: the upper port, the link's name,
/// the lower port, right of the line.
fn draw_vertical<'a>(c: &mut Canvas, l: &'a Link, lay: &Layout) -> Label<'a> {
    let (up, dn) = if lay.by[l.a] < lay.by[l.b] {
        (l.a, l.b)
    } else {
        (l.b, l.a)
    };
    let xl = lay.x[up];
    let (y1, y2) = (lay.by[up] + lay.bh[up], lay.by[dn]);
    c.line((xl, y1), (xl, y2), pen("#000000", 1.5));
    let (pu, pd) = (l.port_of(up).lines(), l.port_of(dn).lines());
    Box::new(move |c: &mut Canvas| {
        for (i, s) in pu.iter().enumerate() {
            c.text(xl + 6.0, y1 + 16.0 + i as f64 * PORT_LH, PORT_FONT, s);
        }
        let name_y = y1 + 18.0 + pu.len() as f64 * PORT_LH;
        c.text(xl + 6.0, name_y, LINK_NAME_FONT, &l.name);
        for (i, s) in pd.iter().enumerate() {
            let ly = y2 - 8.0 - (pd.len() - 1 - i) as f64 * PORT_LH;
            c.text(xl + 6.0, ly, PORT_FONT, s);
        }
    })
}

/// A line out of each box to a track beside its row, along it to the line's channel, and
/// along the channel; the link's text on both tracks.
fn draw_routed(
    c: &mut Canvas,
    t: &Topo,
    lay: &Layout,
    k: usize,
    tracks: (usize, usize),
    channel: f64,
) -> Label<'static> {
    let l = &t.links[k];
    let (ra, rb) = (lay.row[l.a], lay.row[l.b]);
    let (ua, ub) = (ra.1 == LOWER, rb.1 == LOWER);
    let ya = lay.track_y(ra, ua, tracks.0);
    let yb = lay.track_y(rb, ub, tracks.1);
    let (xa, xb) = lay.legs[k];
    let pts = [
        (xa, lay.box_edge(l.a, ua)),
        (xa, ya),
        (channel, ya),
        (channel, yb),
        (xb, yb),
        (xb, lay.box_edge(l.b, ub)),
    ];
    c.polyline(&pts, pen("#000000", 1.5));
    let text = t.link_text(k);
    Box::new(move |c: &mut Canvas| {
        c.text_bg(xa + 6.0, ya - 5.0, Font::new(PORT_FS), &text);
        c.text_bg(xb + 6.0, yb - 5.0, Font::new(PORT_FS), &text);
    })
}

/// A line around its row on a track above or below it; the link's text on the track.
fn draw_bracket(
    c: &mut Canvas,
    t: &Topo,
    lay: &Layout,
    k: usize,
    above: bool,
    track: usize,
) -> Label<'static> {
    let l = &t.links[k];
    let yb = lay.track_y(lay.row[l.a], above, track);
    let (xa, xb) = lay.legs[k];
    let pts = [
        (xa, lay.box_edge(l.a, above)),
        (xa, yb),
        (xb, yb),
        (xb, lay.box_edge(l.b, above)),
    ];
    c.polyline(&pts, pen("#000000", 1.5));
    let text = t.link_text(k);
    Box::new(move |c: &mut Canvas| {
        let font = Font::new(PORT_FS).middle();
        c.text_bg((xa + xb) / 2.0, yb - 5.0, font, &text);
    })
}

/// Host `h`'s box (a double border for a router) with its name and addresses.
fn draw_host(c: &mut Canvas, t: &Topo, lay: &Layout, h: usize) {
    let host = &t.hosts[h];
    let (x, y, w, bh) = (lay.x[h], lay.by[h], lay.bw[h], lay.bh[h]);
    c.group("host", Some(&format!("host-{}", h + 1)), Some(&host.full));
    let fill = if host.router { ROUTER_FILL } else { "#ffffff" };
    let border =
        format!("class=\"box\" rx=\"4\" fill=\"{fill}\" stroke=\"#000000\" stroke-width=\"1.5\"");
    c.rect(x - w / 2.0, y, w, bh, &border);
    if host.router {
        c.rect(x - w / 2.0 + 3.0, y + 3.0, w - 6.0, bh - 6.0, INNER_BORDER);
    }
    c.text(x, y + 19.0, Font::new(HOST_FS).bold().middle(), &host.name);
    let addr_font = Font::new(ADDR_FS).middle().fill("#222222");
    for (i, a) in t.addr_lines(h).iter().enumerate() {
        c.text(x, y + 34.0 + 15.0 * i as f64, addr_font, a);
    }
    c.end_group();
}

/// Under the drawing at `bottom`: a note when there is nothing to draw, what a router looks
/// like when there are routers.
fn draw_legend(c: &mut Canvas, t: &Topo, bottom: f64) {
    let grey = Font::new(PORT_FS).fill("#555555");
    let mut ly = bottom + 30.0;
    if t.hosts.is_empty() && t.lans.is_empty() {
        c.text(
            MARGIN,
            ly,
            Font::new(PORT_FS).italic().fill("#555555"),
            "(no hosts)",
        );
        ly += 20.0;
    }
    if t.hosts.iter().any(|h| h.router) {
        let outer =
            format!("rx=\"3\" fill=\"{ROUTER_FILL}\" stroke=\"#000000\" stroke-width=\"1.5\"");
        c.rect(MARGIN, ly - 12.0, 30.0, 16.0, &outer);
        c.rect(MARGIN + 3.0, ly - 9.0, 24.0, 10.0, INNER_BORDER);
        c.text(MARGIN + 40.0, ly, grey, "router (forwards IPv4)");
    }
    c.grow(0.0, ly);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::{GraphHost, GraphLink};
    use crate::report::test_support::{
        assert_no_overlap, check_svg, course, odd_graph, port, stress,
    };
    use crate::report::text::cols;

    #[test]
    fn course_topology_is_drawn_like_the_book() {
        let g = course();
        let svg = topology_svg(&g);
        let root = check_svg(&svg);
        assert_no_overlap(&root);
        let hosts = root.with_class("g", "host");
        assert_eq!(hosts.len(), g.hosts.len());
        assert_eq!(root.with_class("rect", "box").len(), g.hosts.len());
        let texts: Vec<String> = root.find("text").iter().map(|t| t.text.clone()).collect();
        for h in &g.hosts {
            assert!(texts.contains(&h.name), "host {} not drawn", h.name);
        }
        for want in [
            "net1",
            "140.252.1.0/24",
            "net2",
            "140.252.13.32/27",
            "slip-bsdi",
            "sun-netb",
            "netbside",
            "140.252.1.29/24",
        ] {
            assert!(texts.iter().any(|t| t == want), "{want} not drawn");
        }
        // Where things are: the top LAN above the bottom one, its hosts above it; netb below
        // it with sun right under netb; bsdi and svr4 above the bottom LAN; slip beside bsdi.
        let center = |name: &str| {
            let t = root
                .find("text")
                .into_iter()
                .find(|t| t.text == name && t.attr("font-weight") == Some("bold"));
            t.map(|t| (t.num("x"), t.num("y")))
                .unwrap_or((f64::NAN, f64::NAN))
        };
        let bus_y = |id: &str| {
            let g = root
                .find("g")
                .into_iter()
                .find(|g| g.attr("id") == Some(id));
            g.and_then(|g| g.find("line").first().map(|l| l.num("y1")))
                .unwrap_or(f64::NAN)
        };
        let (top, bottom) = (bus_y("lan-1"), bus_y("lan-2"));
        assert!(top < bottom);
        for h in ["aix", "solaris", "gemini", "gateway"] {
            assert!(center(h).1 < top, "{h} not above the top LAN");
        }
        let xs: Vec<f64> = ["aix", "solaris", "gemini", "gateway", "netb"]
            .iter()
            .map(|h| center(h).0)
            .collect();
        assert!(
            xs.windows(2).all(|w| w[0] < w[1]),
            "top LAN hosts out of order: {xs:?}"
        );
        let (netb, sun) = (center("netb"), center("sun"));
        assert!(netb.1 > top && netb.1 < sun.1 && sun.1 < bottom);
        assert!((netb.0 - sun.0).abs() < 0.6, "sun not under netb");
        for h in ["bsdi", "svr4"] {
            assert!(
                center(h).1 > top && center(h).1 < bottom,
                "{h} not just above the bottom LAN"
            );
        }
        let (bsdi, slip) = (center("bsdi"), center("slip"));
        assert!(
            (bsdi.1 - slip.1).abs() < 20.0 && slip.0 < bsdi.0,
            "slip not beside bsdi"
        );
        assert!(center("bsdi").0 < center("sun").0 && center("sun").0 < center("svr4").0);
    }

    #[test]
    fn topology_escapes_text_and_shows_every_host() {
        let mut g = course();
        g.title = "<lab> & \"co\" 'x'".into();
        g.hosts.push(GraphHost {
            name: "r&d <1>".into(),
            router: true,
        });
        g.lans[0]
            .members
            .push(port("r&d <1>", "e\"th'", Some("1.2.3.4/8")));
        g.links.push(GraphLink {
            name: "<odd>".into(),
            a: port("r&d <1>", "x", None),
            b: port("not-listed", "y", Some("&")),
        });
        let svg = topology_svg(&g);
        let root = check_svg(&svg);
        assert!(svg.contains("<title>&lt;lab&gt; &amp; &quot;co&quot; &apos;x&apos;</title>"));
        assert!(svg.contains("r&amp;d &lt;1&gt;"));
        assert!(svg.contains("e&quot;th&apos;"));
        assert!(!svg.contains("<odd>") && !svg.contains("<1>"));
        let texts: Vec<String> = root.find("text").iter().map(|t| t.text.clone()).collect();
        for h in ["r&d <1>", "not-listed", "aix", "slip"] {
            assert!(texts.iter().any(|t| t == h), "host {h} not drawn");
        }
        assert_eq!(root.with_class("rect", "box").len(), g.hosts.len() + 1);
        assert_no_overlap(&root);
    }

    #[test]
    fn thirty_and_two_hundred_hosts_do_not_overlap() {
        for (lans, per) in [(5, 5), (3, 10), (1, 30), (20, 9), (1, 200)] {
            let g = stress(lans, per);
            let svg = topology_svg(&g);
            let root = check_svg(&svg);
            let hosts = g.hosts.len()
                + g.links
                    .iter()
                    .filter(|l| l.b.host.starts_with("dialin"))
                    .count();
            assert_eq!(
                root.with_class("rect", "box").len(),
                hosts,
                "{lans} x {per}"
            );
            assert_no_overlap(&root);
        }
    }

    #[test]
    fn topology_survives_odd_input() {
        let g = odd_graph();
        let svg = topology_svg(&g);
        let root = check_svg(&svg);
        assert_no_overlap(&root);
        for t in root.find("text") {
            assert!(
                cols(&t.text) <= 120,
                "over-long text not shortened: {}",
                t.text
            );
        }
        assert_eq!(svg, topology_svg(&g), "not deterministic");
    }

    #[test]
    fn empty_graph_is_still_a_document() {
        let svg = topology_svg(&Graph::default());
        let root = check_svg(&svg);
        assert!(root.with_class("rect", "box").is_empty());
    }

    #[test]
    fn output_is_deterministic() {
        let g = stress(4, 6);
        assert_eq!(topology_svg(&g), topology_svg(&g));
    }
}
