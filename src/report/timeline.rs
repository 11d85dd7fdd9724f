//! The packet time-line, drawn the way Stevens draws them in *TCP/IP Illustrated, Vol. 1*
//! (e.g. figure 18.3): one vertical line per host, time going down, one slanted arrow per
//! packet. [`timeline_svg`] first lays the sheet out ([`Sheet::new`]: columns, their x, the
//! rows' y), then draws host lines, packets and notes on a [`Canvas`].

use super::canvas::{Canvas, Font, LINE_H, MARGIN, Pen, pen, unit};
use super::text::{clean, shown_name, text_w, wrap};
use std::collections::BTreeMap;

/// One packet of a time-line, see [`timeline_svg`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimelinePacket {
    /// Seconds since the first packet, shown at the left margin (e.g. `0.002345`).
    pub time: f64,
    /// Name of the sending host. A name missing from the host list gets a column of its own.
    pub from: String,
    /// Name of the receiving host, or `"*"` (or an empty string) for a broadcast.
    pub to: String,
    /// The tcpdump-style line written above the arrow,
    /// e.g. `S 1415531521:1415531521(0) win 4096 <mss 1024>`.
    pub label: String,
}

const LABEL_FS: f64 = 13.0;
const NAME_FS: f64 = 15.0;
const SMALL_FS: f64 = 12.0;
/// How far an arrow drops from sender to receiver.
const SLANT: f64 = 18.0;
const LABEL_COLS: usize = 72;
const LABEL_LINES: usize = 3;
const NAME_COLS: usize = 24;
/// Room between a label and the host lines around it.
const PAD: f64 = 14.0;
/// Least distance between two host lines.
const MIN_GAP: f64 = 120.0;
/// Width of the loop of a packet from a host to itself.
const LOOP_W: f64 = 26.0;
/// Length of the arrow of a broadcast from the only host.
const STUB_W: f64 = 90.0;
/// Baseline of the host names.
const NAME_Y: f64 = 68.0;

const GREY: &str = "#555555";
const ARROW: Pen = pen("#000000", 1.3);
const BROADCAST: Pen = ARROW.dashed("6 4");
const UNLISTED: Pen = pen("#777777", 1.2).dashed("5 4");
const ROW_GUIDE: Pen = pen("#bbbbbb", 1.0).dashed("1 3");

/// A packet time-line as an SVG document, drawn like the time-line figures of Stevens'
/// *TCP/IP Illustrated, Vol. 1* (e.g. figure 18.3).
///
/// Each host of `hosts` gets a vertical line with its name on top; time goes down, one row per
/// packet in the given order (rows are evenly spaced; the time is written at the left margin
/// together with the packet's number, 1, 2, 3...). Each packet is an arrow from the sender's
/// line to the receiver's, slanted slightly downward with its head at the receiver, its label
/// written above it; columns are spread so that labels fit between the lines they join
/// (labels longer than 72 characters are wrapped on up to 3 lines).
///
/// A packet to `"*"` (or to an empty name) is a broadcast: a dashed arrow from the sender
/// across every other host's line, with a head on each. A host name that is not in `hosts`
/// gets a dashed line of its own after the listed hosts; a packet from a host to itself is a
/// small loop.
#[must_use]
pub fn timeline_svg(title: &str, hosts: &[String], packets: &[TimelinePacket]) -> String {
    let sheet = Sheet::new(hosts, packets);
    let mut c = Canvas::new();
    if sheet.x.is_empty() {
        let note = Font::new(SMALL_FS).italic().fill(GREY);
        c.text(MARGIN, NAME_Y, note, "(no hosts, no packets)");
        c.title(title);
        return c.finish(title);
    }
    sheet.reserve_room(&mut c);
    sheet.draw_hosts(&mut c);
    for (i, p) in packets.iter().enumerate() {
        sheet.draw_packet(&mut c, i, p);
    }
    sheet.draw_notes(&mut c, packets.is_empty());
    c.title(title);
    c.finish(title)
}

/// Which host lines a packet's arrow joins.
enum Kind {
    /// From one host to another (column indexes).
    Unicast(usize, usize),
    /// From a host to itself.
    SelfLoop(usize),
    /// From a host to every other one.
    Broadcast(usize),
}

/// Time-line columns: names in order, whether each was listed, and an index by name.
#[derive(Default)]
struct Columns {
    names: Vec<String>,
    listed: Vec<bool>,
    index: BTreeMap<String, usize>,
}

impl Columns {
    /// The listed hosts (first occurrence wins), then unknown names as packets name them;
    /// with the kind of each packet.
    fn new(hosts: &[String], packets: &[TimelinePacket]) -> (Self, Vec<Kind>) {
        let mut cols = Columns::default();
        for h in hosts {
            cols.id(h, true);
        }
        let kinds = packets
            .iter()
            .map(|p| {
                let a = cols.id(&p.from, false);
                if p.to == "*" || p.to.trim().is_empty() {
                    Kind::Broadcast(a)
                } else {
                    let b = cols.id(&p.to, false);
                    if a == b {
                        Kind::SelfLoop(a)
                    } else {
                        Kind::Unicast(a, b)
                    }
                }
            })
            .collect();
        (cols, kinds)
    }

    /// The column of `name`, a new one when it has none yet.
    fn id(&mut self, name: &str, listed: bool) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.listed.push(listed);
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// Time at the left margin: microseconds like tcpdump, `?` when not a number.
fn fmt_time(t: f64) -> String {
    if !t.is_finite() {
        "?".to_string()
    } else if t.abs() >= 1e9 {
        format!("{t:.3e}")
    } else {
        format!("{:.6}", t + 0.0)
    }
}

/// Least distances between host lines: `need[j]` lists `(i, w)` for "line j at least `w`
/// right of line i" (so that labels fit between the lines they join); and the room needed
/// right of the last line.
fn label_room(kinds: &[Kind], label_w: &[f64], n: usize) -> (Vec<Vec<(usize, f64)>>, f64) {
    let mut need: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    let mut right_extra: f64 = 0.0;
    for (k, kind) in kinds.iter().enumerate() {
        let w = label_w[k];
        match *kind {
            Kind::Unicast(a, b) => need[a.max(b)].push((a.min(b), w + 2.0 * PAD)),
            Kind::SelfLoop(a) => {
                if a + 1 < n {
                    need[a + 1].push((a, (w + 8.0).max(LOOP_W) + PAD));
                } else {
                    right_extra = right_extra.max((w + 8.0).max(LOOP_W + 10.0));
                }
            }
            Kind::Broadcast(s) => match broadcast_neighbour(s, n) {
                Some(o) if o > s => need[o].push((s, w + 2.0 * PAD)),
                Some(o) => need[s].push((o, w + 2.0 * PAD)),
                None => right_extra = right_extra.max(STUB_W.max(w + 2.0 * PAD)),
            },
        }
    }
    (need, right_extra)
}

/// The line next to broadcaster `s` that its label sits beside: right of it when as many
/// hosts or more are on the right, else left; none when `s` is the only host.
fn broadcast_neighbour(s: usize, n: usize) -> Option<usize> {
    let (left, right) = (s, n - 1 - s);
    if right > 0 && right >= left {
        Some(s + 1)
    } else if left > 0 {
        Some(s - 1)
    } else {
        None
    }
}

/// The x of each host line: the first right of the margin columns, each next at least
/// [`MIN_GAP`] (and room for both names) right of the one before, and as far as `need` asks.
fn line_x(first: f64, name_w: &[f64], need: &[Vec<(usize, f64)>]) -> Vec<f64> {
    let mut x = vec![0.0_f64; name_w.len()];
    for j in 0..x.len() {
        x[j] = if j == 0 {
            first + (name_w[0] / 2.0).max(28.0)
        } else {
            x[j - 1] + MIN_GAP.max((name_w[j - 1] + name_w[j]) / 2.0 + 24.0)
        };
        for &(i, w) in &need[j] {
            x[j] = x[j].max(x[i] + w);
        }
    }
    x
}

/// A laid-out time-line: what is written where.
struct Sheet {
    cols: Columns,
    kinds: Vec<Kind>,
    /// Host names as shown (cleaned, shortened).
    shown: Vec<String>,
    name_w: Vec<f64>,
    /// Each packet's label, wrapped.
    labels: Vec<Vec<String>>,
    times: Vec<String>,
    /// x of each host line.
    x: Vec<f64>,
    /// Room needed right of the last host line.
    right_extra: f64,
    /// Right edges of the time and packet number columns.
    col_time_r: f64,
    col_num_r: f64,
    /// Top and bottom of the host lines.
    life_top: f64,
    life_bot: f64,
    /// y of the first row, and the distance between rows.
    y0: f64,
    row_h: f64,
}

impl Sheet {
    fn new(hosts: &[String], packets: &[TimelinePacket]) -> Self {
        let (cols, kinds) = Columns::new(hosts, packets);
        let shown: Vec<String> = cols
            .names
            .iter()
            .map(|s| shown_name(s, NAME_COLS))
            .collect();
        let name_w: Vec<f64> = shown.iter().map(|s| text_w(s, NAME_FS)).collect();
        let labels: Vec<Vec<String>> = packets
            .iter()
            .map(|p| wrap(&clean(&p.label), LABEL_COLS, LABEL_LINES))
            .collect();
        let label_w: Vec<f64> = labels
            .iter()
            .map(|ls| ls.iter().map(|l| text_w(l, LABEL_FS)).fold(0.0, f64::max))
            .collect();
        let max_lines = labels.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let times: Vec<String> = packets.iter().map(|p| fmt_time(p.time)).collect();
        let (need, right_extra) = label_room(&kinds, &label_w, cols.names.len());
        let time_w = times
            .iter()
            .map(|t| text_w(t, SMALL_FS))
            .fold(text_w("time", SMALL_FS), f64::max);
        let num_w = text_w(&packets.len().max(1).to_string(), SMALL_FS);
        let col_time_r = MARGIN + time_w;
        let col_num_r = col_time_r + 14.0 + num_w;
        let x = line_x(col_num_r + 12.0, &name_w, &need);
        let life_top = NAME_Y + 10.0;
        let row_h = max_lines as f64 * LINE_H + SLANT + 20.0;
        let y0 = life_top + 16.0 + max_lines as f64 * LINE_H;
        let life_bot = match packets.len() {
            0 => life_top + 60.0,
            len => y0 + (len - 1) as f64 * row_h + SLANT + 24.0,
        };
        Sheet {
            cols,
            kinds,
            shown,
            name_w,
            labels,
            times,
            x,
            right_extra,
            col_time_r,
            col_num_r,
            life_top,
            life_bot,
            y0,
            row_h,
        }
    }

    /// y of packet `i`'s row (where its arrow leaves the sender).
    fn row_y(&self, i: usize) -> f64 {
        self.y0 + i as f64 * self.row_h
    }

    /// Grow the canvas to hold the last host's name and what is drawn right of its line.
    fn reserve_room(&self, c: &mut Canvas) {
        if let (Some(&last), Some(&w)) = (self.x.last(), self.name_w.last()) {
            c.grow(last + (w / 2.0).max(self.right_extra + 6.0), self.life_bot);
        }
    }

    /// The margin columns' heads, and each host's name over its line (hosts not in the list
    /// in grey italics, with a dashed line).
    fn draw_hosts(&self, c: &mut Canvas) {
        let small_grey = Font::new(SMALL_FS).fill(GREY);
        c.text(self.col_time_r, NAME_Y, small_grey.end(), "time");
        c.text(self.col_num_r, NAME_Y, small_grey.end(), "#");
        for (j, &x) in self.x.iter().enumerate() {
            let listed = self.cols.listed[j];
            c.group("host", None, Some(&self.cols.names[j]));
            let f = Font::new(NAME_FS).bold().middle();
            let f = if listed { f } else { f.italic().fill(GREY) };
            c.text(x, NAME_Y, f, &self.shown[j]);
            let p = if listed {
                pen("#000000", 1.5)
            } else {
                UNLISTED
            };
            c.line((x, self.life_top), (x, self.life_bot), p);
            c.end_group();
        }
    }

    /// Packet `i`: its row's time and number, its arrow, its label, its tooltip.
    fn draw_packet(&self, c: &mut Canvas, i: usize, p: &TimelinePacket) {
        let y = self.row_y(i);
        c.group("packet", Some(&format!("packet-{}", i + 1)), None);
        c.line((self.col_num_r + 8.0, y), (self.x[0] - 6.0, y), ROW_GUIDE);
        c.text(
            self.col_time_r,
            y + 4.0,
            Font::new(SMALL_FS).end(),
            &self.times[i],
        );
        let number = Font::new(SMALL_FS).bold().end();
        c.text(self.col_num_r, y + 4.0, number, &(i + 1).to_string());
        let (lx, font) = match self.kinds[i] {
            Kind::Unicast(a, b) => self.draw_unicast(c, y, a, b),
            Kind::SelfLoop(a) => self.draw_self_loop(c, y, a),
            Kind::Broadcast(s) => self.draw_broadcast(c, y, s),
        };
        self.draw_label(c, y, lx, font, &self.labels[i]);
        c.tooltip(&format!("{} {}", self.times[i], clean(&p.label)));
        c.end_group();
    }

    /// A slanted arrow from line `a` to line `b`; where its label goes.
    fn draw_unicast(&self, c: &mut Canvas, y: f64, a: usize, b: usize) -> (f64, Font) {
        let x = &self.x;
        arrow(c, (x[a], y), (x[b], y + SLANT), ARROW);
        ((x[a] + x[b]) / 2.0, Font::new(LABEL_FS).middle())
    }

    /// A small loop right of line `a`, back to it; where its label goes.
    fn draw_self_loop(&self, c: &mut Canvas, y: f64, a: usize) -> (f64, Font) {
        let xa = self.x[a];
        let pts = [
            (xa, y),
            (xa + LOOP_W, y),
            (xa + LOOP_W, y + SLANT),
            (xa + 9.0, y + SLANT),
        ];
        c.polyline(&pts, ARROW);
        c.head((xa + 1.0, y + SLANT), (-1.0, 0.0));
        (xa + 6.0, Font::new(LABEL_FS))
    }

    /// A dashed arrow from line `s` to the farthest line on each side, with a head on every
    /// line it crosses (a short stub when `s` is the only host); where its label goes.
    fn draw_broadcast(&self, c: &mut Canvas, y: f64, s: usize) -> (f64, Font) {
        let (x, n) = (&self.x, self.x.len());
        let xs = x[s];
        let mut sides: Vec<(usize, Vec<usize>)> = Vec::new();
        if s + 1 < n {
            sides.push((n - 1, (s + 1..n).collect()));
        }
        if s > 0 {
            sides.push((0, (0..s).rev().collect()));
        }
        let middle = Font::new(LABEL_FS).middle();
        let Some(other) = broadcast_neighbour(s, n) else {
            let to = (xs + self.right_extra.max(STUB_W), y + SLANT);
            arrow(c, (xs, y), to, BROADCAST);
            return ((xs + to.0) / 2.0, middle);
        };
        for (far, reached) in &sides {
            let to = (x[*far], y + SLANT);
            let d = unit((xs, y), to);
            c.line((xs, y), (to.0 - d.0 * 9.0, to.1 - d.1 * 9.0), BROADCAST);
            let span = x[*far] - xs;
            for &k in reached {
                let t = if span.abs() < 1e-9 {
                    1.0
                } else {
                    (x[k] - xs) / span
                };
                c.head((x[k], y + SLANT * t), d);
            }
        }
        ((xs + x[other]) / 2.0, middle)
    }

    /// A packet's label lines above its arrow, on a white background when a host line
    /// crosses them.
    fn draw_label(&self, c: &mut Canvas, y: f64, lx: f64, font: Font, lines: &[String]) {
        let bg = lines.iter().any(|l| {
            let (l0, l1) = font.span(lx, l);
            self.x.iter().any(|&xk| xk > l0 - 3.0 && xk < l1 + 3.0)
        });
        for (k, l) in lines.iter().enumerate() {
            let ly = y - 6.0 - (lines.len() - 1 - k) as f64 * LINE_H;
            if bg {
                c.text_bg(lx, ly, font, l);
            } else {
                c.text(lx, ly, font, l);
            }
        }
    }

    /// Notes under the drawing: no packets, what a broadcast looks like, what a dashed host
    /// line means (each only when it applies).
    fn draw_notes(&self, c: &mut Canvas, no_packets: bool) {
        let small_grey = Font::new(SMALL_FS).fill(GREY);
        let mut ny = self.life_bot + 26.0;
        if no_packets {
            let note = Font::new(SMALL_FS).italic().fill(GREY);
            c.text(self.x[0] + 8.0, self.life_top + 30.0, note, "(no packets)");
        }
        if self.kinds.iter().any(|k| matches!(k, Kind::Broadcast(_))) {
            c.line((MARGIN, ny - 4.0), (MARGIN + 31.0, ny - 4.0), BROADCAST);
            c.head((MARGIN + 40.0, ny - 4.0), (1.0, 0.0));
            let text = "broadcast: one arrow head on each host line it reaches";
            c.text(MARGIN + 50.0, ny, small_grey, text);
            ny += 20.0;
        }
        if self.cols.listed.iter().any(|l| !l) {
            c.line(
                (MARGIN + 20.0, ny - 14.0),
                (MARGIN + 20.0, ny + 2.0),
                UNLISTED,
            );
            c.text(MARGIN + 50.0, ny, small_grey, "not in the host list");
        }
    }
}

/// A straight arrow from `from` to `to`, its head at `to`.
fn arrow(c: &mut Canvas, from: (f64, f64), to: (f64, f64), p: Pen) {
    let d = unit(from, to);
    c.line(from, (to.0 - d.0 * 9.0, to.1 - d.1 * 9.0), p);
    c.head(to, d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{
        El, assert_no_overlap, check_svg, handshake, names, pkt, text_boxes,
    };

    #[test]
    fn timeline_has_one_arrow_per_packet_and_every_host() {
        let hosts = names(&["bsdi", "svr4", "sun"]);
        let packets = handshake();
        let svg = timeline_svg("handshake", &hosts, &packets);
        let root = check_svg(&svg);
        assert_eq!(root.kids[0].text, "handshake");
        let arrows = root.with_class("g", "packet");
        assert_eq!(arrows.len(), packets.len());
        for (i, a) in arrows.iter().enumerate() {
            assert_eq!(a.attr("id"), Some(format!("packet-{}", i + 1).as_str()));
            let heads = a.with_class("polygon", "head").len();
            // The broadcast reaches both other hosts; every other packet has one head.
            assert_eq!(heads, if i == 0 { 2 } else { 1 }, "packet {}", i + 1);
        }
        let texts: Vec<String> = root.find("text").iter().map(|t| t.text.clone()).collect();
        for h in &hosts {
            assert!(texts.contains(h), "host {h} not drawn");
        }
        for p in &packets {
            assert!(texts.contains(&p.label), "label {} not drawn", p.label);
        }
        for t in ["0.000000", "0.001201", "4.182505", "1", "10"] {
            assert!(texts.iter().any(|x| x == t), "{t} not drawn");
        }
        assert_no_overlap(&root);
    }

    #[test]
    fn timeline_arrows_slant_down_to_the_receiver() {
        let hosts = names(&["bsdi", "svr4"]);
        let svg = timeline_svg("", &hosts, &handshake()[2..4]);
        let root = check_svg(&svg);
        let lines: Vec<&El> = root.find("line");
        let x = |name: &str| {
            let t = root
                .find("text")
                .into_iter()
                .find(|t| t.text == name)
                .map(|t| t.num("x"));
            t.unwrap_or(f64::NAN)
        };
        let (xb, xs) = (x("bsdi"), x("svr4"));
        for (i, g) in root.with_class("g", "packet").iter().enumerate() {
            let head = g.with_class("polygon", "head")[0]
                .attr("points")
                .unwrap_or_default()
                .to_string();
            let tip: Vec<f64> = head
                .split(' ')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect();
            let want = if i == 0 { xs } else { xb };
            assert!(
                (tip[0] - want).abs() < 0.6,
                "head of packet {} at {} not on the receiver {want}",
                i + 1,
                tip[0]
            );
            let arrow = g
                .find("line")
                .into_iter()
                .find(|l| l.attr("stroke") == Some("#000000"))
                .map(|l| (l.num("y1"), l.num("y2")));
            let (y1, y2) = arrow.unwrap_or((f64::NAN, f64::NAN));
            assert!(
                y2 > y1 && y2 - y1 < 30.0,
                "arrow of packet {} not slanted slightly down",
                i + 1
            );
        }
        assert!(!lines.is_empty());
    }

    #[test]
    fn timeline_escapes_text() {
        let hosts = names(&["a<b&\"c'", "d"]);
        let packets = vec![
            pkt(0.0, "a<b&\"c'", "d", "<script>&amp;\"'"),
            pkt(0.1, "d", "e>f", "x"),
        ];
        let svg = timeline_svg("t<&>\"'", &hosts, &packets);
        let root = check_svg(&svg);
        assert!(svg.contains("a&lt;b&amp;&quot;c&apos;"));
        assert!(svg.contains("&lt;script&gt;&amp;amp;&quot;&apos;"));
        assert!(svg.contains("<title>t&lt;&amp;&gt;&quot;&apos;</title>"));
        assert!(!svg.contains("<script"));
        let texts: Vec<String> = root.find("text").iter().map(|t| t.text.clone()).collect();
        for want in ["a<b&\"c'", "d", "e>f", "<script>&amp;\"'"] {
            assert!(texts.iter().any(|t| t == want), "{want} not drawn");
        }
        assert_no_overlap(&root);
    }

    #[test]
    fn timeline_survives_odd_input() {
        let long_host = "a-host-with-a-name-much-longer-than-anyone-would-choose";
        let hosts = names(&[long_host, "b", "b", "", "c"]);
        let packets = vec![
            pkt(0.0, long_host, "b", &"x".repeat(5000)),
            pkt(f64::NAN, "b", "b", "to itself"),
            pkt(f64::INFINITY, "c", "*", "broadcast from the last host"),
            pkt(-0.0, "zz", "", "from a host not listed, empty destination"),
            pkt(
                1e300,
                "b",
                "yy",
                "ctrl\u{0}\u{7}\u{1b}\n\t\u{FFFE} chars, wide 漢字漢字 text",
            ),
            pkt(2.0, "", "c", ""),
            pkt(3.0, long_host, "c", &"word ".repeat(400)),
        ];
        let svg = timeline_svg(&"title ".repeat(200), &hosts, &packets);
        let root = check_svg(&svg);
        assert_eq!(root.with_class("g", "packet").len(), packets.len());
        for g in root.with_class("g", "packet") {
            assert!(!g.with_class("polygon", "head").is_empty());
        }
        // Long labels are wrapped on at most three lines, shortened with an ellipsis.
        let xs: Vec<&El> = root
            .find("text")
            .into_iter()
            .filter(|t| t.text.starts_with("xxx"))
            .collect();
        assert_eq!(xs.len(), 3);
        assert!(xs[2].text.ends_with('…'));
        assert!(svg.contains(">?</text>"), "non-finite time not shown as ?");
        assert_no_overlap(&root);
        // A lone host broadcasting, a packet from a host to itself at the right end.
        let svg = timeline_svg(
            "x",
            &names(&["a"]),
            &[pkt(0.0, "a", "*", "who-has"), pkt(0.1, "a", "a", "self")],
        );
        let root = check_svg(&svg);
        assert_eq!(root.with_class("g", "packet").len(), 2);
        assert_no_overlap(&root);
    }

    #[test]
    fn timeline_of_nothing_is_still_a_document() {
        for (hosts, packets) in [(vec![], vec![]), (names(&["a", "b"]), vec![])] {
            let svg = timeline_svg("", &hosts, &packets);
            let root = check_svg(&svg);
            assert!(root.with_class("g", "packet").is_empty());
            assert_no_overlap(&root);
        }
    }

    #[test]
    fn timeline_columns_make_room_for_labels() {
        // Unicast between non-neighbours: the label sits between its two lines.
        let hosts = names(&["a", "b", "c"]);
        let label = "S 1415531521:1415531521(0) ack 1823083522 win 4096 <mss 1024>";
        let svg = timeline_svg(
            "",
            &hosts,
            &[pkt(0.0, "a", "b", label), pkt(0.1, "c", "a", label)],
        );
        let root = check_svg(&svg);
        let tb = text_boxes(&root);
        let x_of = |n: &str| {
            tb.iter()
                .find(|b| b.what == n)
                .map(|b| (b.x0 + b.x1) / 2.0)
                .unwrap_or(f64::NAN)
        };
        let (xa, xb) = (x_of("a"), x_of("b"));
        let first = tb.iter().find(|b| b.what == label).expect("label drawn");
        assert!(
            first.x0 > xa && first.x1 < xb,
            "label {first:?} not between a={xa} and b={xb}"
        );
        assert_no_overlap(&root);
    }

    #[test]
    fn times_are_written_like_tcpdump() {
        assert_eq!(fmt_time(-0.0), "0.000000");
        assert_eq!(fmt_time(0.002345), "0.002345");
        assert_eq!(fmt_time(f64::NAN), "?");
        assert_eq!(fmt_time(2e9), "2.000e9");
    }

    #[test]
    fn output_is_deterministic() {
        let hosts = names(&["bsdi", "svr4"]);
        assert_eq!(
            timeline_svg("t", &hosts, &handshake()),
            timeline_svg("t", &hosts, &handshake())
        );
    }
}
