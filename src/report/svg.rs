//! Standalone SVG 1.1 drawings (and Graphviz DOT) for tcplab reports.
//!
//! * [`timeline_svg`] draws a packet time-line the way Stevens draws them in *TCP/IP
//!   Illustrated, Vol. 1* (e.g. figure 18.3, TCP connection establishment): one vertical line
//!   per host with its name on top, time going down, one slightly slanted arrow per packet
//!   labelled with its tcpdump line, the packet's number and time at the left margin.
//! * [`topology_svg`] draws a lab network like the book's figure 1.11: each LAN a thick
//!   horizontal bus with its hosts above or below it, point-to-point lines between hosts.
//! * [`topology_dot`] gives the same network in Graphviz DOT.
//!
//! Everything here is pure and deterministic (same input, same bytes out) and uses only
//! `std`. Nothing panics on odd input: empty lists, unknown host names, control characters and
//! very long labels are all drawn sensibly. Long text is wrapped or shortened with `…` (the
//! full text is kept in a tooltip `<title>`), and the canvas grows to fit everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

// ======================================================================= public API

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

/// A host (network node) of a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphHost {
    /// The host's name, as used by [`GraphPort::host`].
    pub name: String,
    /// Whether the host forwards IPv4 (drawn with a double border).
    pub router: bool,
}

/// One attachment of a host to a LAN or to one end of a point-to-point link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphPort {
    /// Name of the host; a name missing from [`Graph::hosts`] is drawn as a plain host.
    pub host: String,
    /// The interface name inside the host, e.g. `eth1`.
    pub interface: String,
    /// The interface's address as it should be shown, e.g. `140.252.1.92` or `140.252.13.65/27`.
    pub address: Option<String>,
}

/// A LAN (layer-2 network), drawn as a horizontal bus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphLan {
    /// The LAN's name, e.g. `net1`.
    pub name: String,
    /// The LAN's subnet as it should be shown, e.g. `140.252.1.0/24`.
    pub subnet: String,
    /// The hosts attached to it, in the order they are drawn along the bus.
    pub members: Vec<GraphPort>,
}

/// A point-to-point link between two hosts (the book's SLIP and dial-up lines).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphLink {
    /// The link's name, e.g. `slip-bsdi`.
    pub name: String,
    /// One end.
    pub a: GraphPort,
    /// The other end.
    pub b: GraphPort,
}

/// A lab network to draw with [`topology_svg`] or [`topology_dot`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    /// Title of the drawing.
    pub title: String,
    /// The hosts, in a preferred order (hosts named only by ports are added after them).
    pub hosts: Vec<GraphHost>,
    /// The LANs; the first one is drawn on top.
    pub lans: Vec<GraphLan>,
    /// The point-to-point links.
    pub links: Vec<GraphLink>,
}

// ======================================================================= text helpers

/// Font of every text: monospace, so that text widths can be estimated without font metrics.
const FONT_FAMILY: &str = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace";
/// Advance of one monospace glyph, in em (0.602 in `DejaVu Sans Mono`), rounded up for safety.
const EM: f64 = 0.62;
const MARGIN: f64 = 20.0;
const LINE_H: f64 = 16.0;
const TITLE_FS: f64 = 16.0;
const TITLE_Y: f64 = 30.0;

/// `s` with control characters turned into spaces and the non-characters XML forbids replaced.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// How many monospace cells `c` takes (2 for East Asian wide characters and emoji).
fn glyph_cols(c: char) -> usize {
    let wide = matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD);
    if wide { 2 } else { 1 }
}

fn cols(s: &str) -> usize {
    s.chars().map(glyph_cols).sum()
}

/// Estimated width in pixels of `s` at font size `size`.
fn text_w(s: &str, size: f64) -> f64 {
    cols(s) as f64 * size * EM
}

/// `s` shortened to at most `max` cells, ending in `…` when shortened.
fn clip(s: &str, max: usize) -> String {
    let max = max.max(1);
    if cols(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = glyph_cols(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` word-wrapped to lines of at most `width` cells, at most `max_lines` of them (the last
/// one ending in `…` when text was left out). Words longer than a line are split.
fn wrap(s: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let max_lines = max_lines.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if lines.len() > max_lines {
            break;
        }
        let ww = cols(word);
        if cur_w > 0 && cur_w + 1 + ww <= width {
            cur.push(' ');
            cur.push_str(word);
            cur_w += 1 + ww;
            continue;
        }
        if cur_w > 0 {
            lines.push(std::mem::take(&mut cur));
            cur_w = 0;
        }
        for c in word.chars() {
            let w = glyph_cols(c);
            if cur_w > 0 && cur_w + w > width {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
                if lines.len() > max_lines {
                    break;
                }
            }
            cur.push(c);
            cur_w += w;
        }
    }
    if cur_w > 0 {
        lines.push(cur);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.pop() {
            lines.push(clip(&format!("{last}…"), width));
        }
    }
    lines
}

/// `s` escaped for XML text and attribute values (`& < > " '`), control characters dropped.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            '\u{FFFE}' | '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// A coordinate for an SVG attribute: one decimal at most, never `NaN`.
fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".to_string();
    }
    let s = format!("{x:.1}");
    let t = s.strip_suffix(".0").unwrap_or(&s);
    if t == "-0" {
        "0".to_string()
    } else {
        t.to_string()
    }
}

// ======================================================================= SVG canvas

#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Clone, Copy)]
struct Font {
    size: f64,
    bold: bool,
    italic: bool,
    anchor: Anchor,
    fill: &'static str,
}

impl Font {
    const fn new(size: f64) -> Self {
        Font {
            size,
            bold: false,
            italic: false,
            anchor: Anchor::Start,
            fill: "#000000",
        }
    }
    const fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    const fn italic(mut self) -> Self {
        self.italic = true;
        self
    }
    const fn middle(mut self) -> Self {
        self.anchor = Anchor::Middle;
        self
    }
    const fn end(mut self) -> Self {
        self.anchor = Anchor::End;
        self
    }
    const fn fill(mut self, fill: &'static str) -> Self {
        self.fill = fill;
        self
    }
    /// Left and right x of `s` written at `x`.
    fn span(&self, x: f64, s: &str) -> (f64, f64) {
        let w = text_w(s, self.size);
        match self.anchor {
            Anchor::Start => (x, x + w),
            Anchor::Middle => (x - w / 2.0, x + w / 2.0),
            Anchor::End => (x - w, x),
        }
    }
}

#[derive(Clone, Copy)]
struct Pen {
    color: &'static str,
    width: f64,
    dash: Option<&'static str>,
}

const fn pen(color: &'static str, width: f64) -> Pen {
    Pen {
        color,
        width,
        dash: None,
    }
}

type Pt = (f64, f64);

/// An SVG body under construction, tracking how far right and down it reaches.
struct Canvas {
    body: String,
    max_x: f64,
    max_y: f64,
}

impl Canvas {
    fn new() -> Self {
        Canvas {
            body: String::new(),
            max_x: 0.0,
            max_y: 0.0,
        }
    }

    fn grow(&mut self, x: f64, y: f64) {
        if x.is_finite() && x > self.max_x {
            self.max_x = x;
        }
        if y.is_finite() && y > self.max_y {
            self.max_y = y;
        }
    }

    fn raw(&mut self, s: &str) {
        self.body.push_str(s);
    }

    fn text(&mut self, x: f64, y: f64, f: Font, s: &str) {
        if s.trim().is_empty() {
            return;
        }
        let (_, x1) = f.span(x, s);
        self.grow(x1, y + f.size * 0.3);
        let b = &mut self.body;
        let _ = write!(
            b,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\"",
            num(x),
            num(y),
            num(f.size)
        );
        if f.bold {
            b.push_str(" font-weight=\"bold\"");
        }
        if f.italic {
            b.push_str(" font-style=\"italic\"");
        }
        match f.anchor {
            Anchor::Start => {}
            Anchor::Middle => b.push_str(" text-anchor=\"middle\""),
            Anchor::End => b.push_str(" text-anchor=\"end\""),
        }
        if f.fill != "#000000" {
            let _ = write!(b, " fill=\"{}\"", f.fill);
        }
        let _ = writeln!(b, ">{}</text>", esc(s));
    }

    /// Text on a white background, so that lines under it do not make it unreadable.
    fn text_bg(&mut self, x: f64, y: f64, f: Font, s: &str) {
        if s.trim().is_empty() {
            return;
        }
        let (x0, x1) = f.span(x, s);
        let top = y - f.size * 0.85;
        self.rect(
            x0 - 2.0,
            top,
            x1 - x0 + 4.0,
            f.size * 1.15,
            "fill=\"#ffffff\" fill-opacity=\"0.9\"",
        );
        self.text(x, y, f, s);
    }

    fn line(&mut self, a: Pt, b: Pt, p: Pen) {
        self.grow(a.0.max(b.0), a.1.max(b.1));
        let _ = write!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"",
            num(a.0),
            num(a.1),
            num(b.0),
            num(b.1),
            p.color,
            num(p.width)
        );
        if let Some(d) = p.dash {
            let _ = write!(self.body, " stroke-dasharray=\"{d}\"");
        }
        self.body.push_str("/>\n");
    }

    /// `x,y x,y ...` for a points attribute, growing the canvas to hold them.
    fn points(&mut self, pts: &[Pt]) -> String {
        let mut list = String::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            self.grow(x, y);
            if i > 0 {
                list.push(' ');
            }
            let _ = write!(list, "{},{}", num(x), num(y));
        }
        list
    }

    fn polyline(&mut self, pts: &[Pt], p: Pen) {
        let list = self.points(pts);
        let _ = write!(
            self.body,
            "<polyline points=\"{list}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"",
            p.color,
            num(p.width)
        );
        if let Some(d) = p.dash {
            let _ = write!(self.body, " stroke-dasharray=\"{d}\"");
        }
        self.body.push_str("/>\n");
    }

    /// A rectangle; `attrs` are extra (trusted, already escaped) attributes.
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str) {
        self.grow(x + w, y + h);
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {attrs}/>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
    }

    /// A filled arrow head with its tip at `tip`, pointing along the unit vector `dir`.
    fn head(&mut self, tip: Pt, dir: Pt) {
        const LEN: f64 = 10.0;
        const HALF: f64 = 4.5;
        let base = (tip.0 - dir.0 * LEN, tip.1 - dir.1 * LEN);
        let nrm = (-dir.1, dir.0);
        let pts = [
            tip,
            (base.0 + nrm.0 * HALF, base.1 + nrm.1 * HALF),
            (base.0 - nrm.0 * HALF, base.1 - nrm.1 * HALF),
        ];
        let list = self.points(&pts);
        let _ = writeln!(
            self.body,
            "<polygon class=\"head\" points=\"{list}\" fill=\"#000000\"/>"
        );
    }

    /// The complete document: XML declaration, `<svg>` root, `<title>`, white background, body.
    fn finish(self, title: &str) -> String {
        let w = (self.max_x + MARGIN).ceil().max(100.0);
        let h = (self.max_y + MARGIN).ceil().max(60.0);
        let mut s = String::with_capacity(self.body.len() + 600);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
        let _ = writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\">"
        );
        let _ = writeln!(s, "<title>{}</title>", esc(title));
        let _ = writeln!(
            s,
            "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>"
        );
        s.push_str(&self.body);
        s.push_str("</svg>\n");
        s
    }

    /// The visible title at the top left, shortened to the drawing's width (60 to 120 cells).
    fn title(&mut self, title: &str) {
        let room = ((self.max_x - MARGIN) / (TITLE_FS * EM)).clamp(60.0, 120.0) as usize;
        let t = clip(&clean(title), room);
        self.text(MARGIN, TITLE_Y, Font::new(TITLE_FS).bold(), &t);
    }
}

/// Unit vector from `a` to `b` (pointing right when they coincide).
fn unit(a: Pt, b: Pt) -> Pt {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let l = dx.hypot(dy);
    if l < 1e-9 {
        (1.0, 0.0)
    } else {
        (dx / l, dy / l)
    }
}

// ======================================================================= time-line

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
    const LABEL_FS: f64 = 13.0;
    const NAME_FS: f64 = 15.0;
    const SMALL_FS: f64 = 12.0;
    const SLANT: f64 = 18.0;
    const LABEL_COLS: usize = 72;
    const LABEL_LINES: usize = 3;
    const NAME_COLS: usize = 24;
    const PAD: f64 = 14.0;
    const MIN_GAP: f64 = 120.0;
    const LOOP_W: f64 = 26.0;
    const STUB_W: f64 = 90.0;
    const NAME_Y: f64 = 68.0;

    enum Kind {
        Unicast(usize, usize),
        SelfLoop(usize),
        Broadcast(usize),
    }

    // Columns: the listed hosts (first occurrence wins), then unknown names as they appear.
    let mut cols = Columns::default();
    for h in hosts {
        cols.id(h, true);
    }
    let kinds: Vec<Kind> = packets
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
    let n = cols.names.len();
    let shown: Vec<String> = cols
        .names
        .iter()
        .map(|s| {
            let s = clean(s);
            if s.trim().is_empty() {
                "?".to_string()
            } else {
                clip(s.trim(), NAME_COLS)
            }
        })
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
    let any_broadcast = kinds.iter().any(|k| matches!(k, Kind::Broadcast(_)));

    // Horizontal layout: label i must fit between the lines it joins (constraints on x[j] - x[i]).
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
            Kind::Broadcast(s) => {
                let (left, right) = (s, n - 1 - s);
                if right > 0 && right >= left {
                    need[s + 1].push((s, w + 2.0 * PAD));
                } else if left > 0 {
                    need[s].push((s - 1, w + 2.0 * PAD));
                } else {
                    right_extra = right_extra.max(STUB_W.max(w + 2.0 * PAD));
                }
            }
        }
    }
    let time_w = times
        .iter()
        .map(|t| text_w(t, SMALL_FS))
        .fold(text_w("time", SMALL_FS), f64::max);
    let num_w = text_w(&packets.len().max(1).to_string(), SMALL_FS);
    let col_time_r = MARGIN + time_w;
    let col_num_r = col_time_r + 14.0 + num_w;
    let mut x = vec![0.0_f64; n];
    for j in 0..n {
        x[j] = if j == 0 {
            col_num_r + 12.0 + (name_w[0] / 2.0).max(28.0)
        } else {
            x[j - 1] + MIN_GAP.max((name_w[j - 1] + name_w[j]) / 2.0 + 24.0)
        };
        for &(i, w) in &need[j] {
            x[j] = x[j].max(x[i] + w);
        }
    }

    // Vertical layout.
    let life_top = NAME_Y + 10.0;
    let row_h = max_lines as f64 * LINE_H + SLANT + 20.0;
    let y0 = life_top + 16.0 + max_lines as f64 * LINE_H;
    let row_y = |i: usize| y0 + i as f64 * row_h;
    let life_bot = if packets.is_empty() {
        life_top + 60.0
    } else {
        row_y(packets.len() - 1) + SLANT + 24.0
    };

    let mut c = Canvas::new();
    if n == 0 {
        c.text(
            MARGIN,
            NAME_Y,
            Font::new(SMALL_FS).italic().fill("#555555"),
            "(no hosts, no packets)",
        );
        c.title(title);
        return c.finish(title);
    }
    if let Some(&last) = x.last() {
        c.grow(
            last + (name_w[n - 1] / 2.0).max(right_extra + 6.0),
            life_bot,
        );
    }

    // Column heads and host lines.
    let small_grey = Font::new(SMALL_FS).fill("#555555");
    c.text(col_time_r, NAME_Y, small_grey.end(), "time");
    c.text(col_num_r, NAME_Y, small_grey.end(), "#");
    let mut any_unlisted = false;
    for j in 0..n {
        let listed = cols.listed[j];
        any_unlisted |= !listed;
        let _ = writeln!(
            c.body,
            "<g class=\"host\"><title>{}</title>",
            esc(&cols.names[j])
        );
        let f = Font::new(NAME_FS).bold().middle();
        c.text(
            x[j],
            NAME_Y,
            if listed {
                f
            } else {
                f.italic().fill("#555555")
            },
            &shown[j],
        );
        let p = if listed {
            pen("#000000", 1.5)
        } else {
            Pen {
                color: "#777777",
                width: 1.2,
                dash: Some("5 4"),
            }
        };
        c.line((x[j], life_top), (x[j], life_bot), p);
        c.raw("</g>\n");
    }

    // Packets.
    let label_font = Font::new(LABEL_FS);
    for (i, kind) in kinds.iter().enumerate() {
        let y = row_y(i);
        let _ = writeln!(c.body, "<g class=\"packet\" id=\"packet-{}\">", i + 1);
        c.line(
            (col_num_r + 8.0, y),
            (x[0] - 6.0, y),
            Pen {
                color: "#bbbbbb",
                width: 1.0,
                dash: Some("1 3"),
            },
        );
        c.text(col_time_r, y + 4.0, Font::new(SMALL_FS).end(), &times[i]);
        c.text(
            col_num_r,
            y + 4.0,
            Font::new(SMALL_FS).bold().end(),
            &(i + 1).to_string(),
        );
        // Where the label goes: its centre (anchor middle) or its left end (anchor start).
        let (lx, font) = match *kind {
            Kind::Unicast(a, b) => {
                let (from, to) = ((x[a], y), (x[b], y + SLANT));
                let d = unit(from, to);
                c.line(
                    from,
                    (to.0 - d.0 * 9.0, to.1 - d.1 * 9.0),
                    pen("#000000", 1.3),
                );
                c.head(to, d);
                ((x[a] + x[b]) / 2.0, label_font.middle())
            }
            Kind::SelfLoop(a) => {
                let xa = x[a];
                c.polyline(
                    &[
                        (xa, y),
                        (xa + LOOP_W, y),
                        (xa + LOOP_W, y + SLANT),
                        (xa + 9.0, y + SLANT),
                    ],
                    pen("#000000", 1.3),
                );
                c.head((xa + 1.0, y + SLANT), (-1.0, 0.0));
                (xa + 6.0, label_font)
            }
            Kind::Broadcast(s) => {
                let dashed = Pen {
                    color: "#000000",
                    width: 1.3,
                    dash: Some("6 4"),
                };
                let xs = x[s];
                let mut sides: Vec<(usize, Vec<usize>)> = Vec::new();
                if s + 1 < n {
                    sides.push((n - 1, (s + 1..n).collect()));
                }
                if s > 0 {
                    sides.push((0, (0..s).rev().collect()));
                }
                if sides.is_empty() {
                    let to = (xs + right_extra.max(STUB_W), y + SLANT);
                    let d = unit((xs, y), to);
                    c.line((xs, y), (to.0 - d.0 * 9.0, to.1 - d.1 * 9.0), dashed);
                    c.head(to, d);
                    ((xs + to.0) / 2.0, label_font.middle())
                } else {
                    for (far, reached) in &sides {
                        let to = (x[*far], y + SLANT);
                        let d = unit((xs, y), to);
                        c.line((xs, y), (to.0 - d.0 * 9.0, to.1 - d.1 * 9.0), dashed);
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
                    let (left, right) = (s, n - 1 - s);
                    let other = if right > 0 && right >= left {
                        s + 1
                    } else {
                        s - left.min(1)
                    };
                    ((xs + x[other]) / 2.0, label_font.middle())
                }
            }
        };
        let lines = &labels[i];
        let mut bg = false;
        for l in lines {
            let (l0, l1) = font.span(lx, l);
            bg |= x.iter().any(|&xk| xk > l0 - 3.0 && xk < l1 + 3.0);
        }
        for (k, l) in lines.iter().enumerate() {
            let ly = y - 6.0 - (lines.len() - 1 - k) as f64 * LINE_H;
            if bg {
                c.text_bg(lx, ly, font, l);
            } else {
                c.text(lx, ly, font, l);
            }
        }
        let _ = writeln!(
            c.body,
            "<title>{}</title>",
            esc(&format!("{} {}", times[i], clean(&packets[i].label)))
        );
        c.raw("</g>\n");
    }

    // Notes under the drawing.
    let mut ny = life_bot + 26.0;
    if packets.is_empty() {
        c.text(
            x[0] + 8.0,
            life_top + 30.0,
            Font::new(SMALL_FS).italic().fill("#555555"),
            "(no packets)",
        );
    }
    if any_broadcast {
        let dashed = Pen {
            color: "#000000",
            width: 1.3,
            dash: Some("6 4"),
        };
        c.line((MARGIN, ny - 4.0), (MARGIN + 31.0, ny - 4.0), dashed);
        c.head((MARGIN + 40.0, ny - 4.0), (1.0, 0.0));
        c.text(
            MARGIN + 50.0,
            ny,
            small_grey,
            "broadcast: one arrow head on each host line it reaches",
        );
        ny += 20.0;
    }
    if any_unlisted {
        c.line(
            (MARGIN + 20.0, ny - 14.0),
            (MARGIN + 20.0, ny + 2.0),
            Pen {
                color: "#777777",
                width: 1.2,
                dash: Some("5 4"),
            },
        );
        c.text(MARGIN + 50.0, ny, small_grey, "not in the host list");
    }
    c.title(title);
    c.finish(title)
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

/// Time-line columns: names in order, whether each was listed, and an index by name.
#[derive(Default)]
struct Columns {
    names: Vec<String>,
    listed: Vec<bool>,
    index: BTreeMap<String, usize>,
}

impl Columns {
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

// ======================================================================= topology: model

const HOST_FS: f64 = 14.0;
const ADDR_FS: f64 = 12.0;
const PORT_FS: f64 = 12.0;
const PORT_LH: f64 = 14.0;
const UNIT_GAP: f64 = 28.0;
const TRACK: f64 = 24.0;
const MAX_ADDR_LINES: usize = 4;
const NAME_COLS: usize = 28;

/// A port's text, cleaned and shortened.
#[derive(Clone, Default)]
struct PortText {
    iface: String,
    addr: String,
}

impl PortText {
    fn new(p: &GraphPort) -> Self {
        PortText {
            iface: clip(clean(&p.interface).trim(), 24),
            addr: p
                .address
                .as_deref()
                .map(|a| clip(clean(a).trim(), 43))
                .unwrap_or_default(),
        }
    }
    fn lines(&self) -> Vec<String> {
        [&self.iface, &self.addr]
            .into_iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect()
    }
    fn one_line(&self) -> String {
        self.lines().join(" ")
    }
}

fn lines_w(lines: &[String], size: f64) -> f64 {
    lines.iter().map(|l| text_w(l, size)).fold(0.0, f64::max)
}

struct THost {
    full: String,
    name: String,
    router: bool,
    addrs: Vec<String>,
    lans: Vec<usize>,
    links: Vec<usize>,
}

struct TLan {
    name: String,
    subnet: String,
    members: Vec<(usize, Vec<PortText>)>,
}

struct TLink {
    name: String,
    a: usize,
    b: usize,
    pa: PortText,
    pb: PortText,
}

impl TLink {
    fn other(&self, h: usize) -> usize {
        if self.a == h { self.b } else { self.a }
    }
    /// Port text of host `h`'s end (end a for a link from a host to itself).
    fn port_of(&self, h: usize) -> &PortText {
        if self.a == h { &self.pa } else { &self.pb }
    }
}

/// A [`Graph`] with every name resolved to an index and every text cleaned.
struct Topo {
    hosts: Vec<THost>,
    lans: Vec<TLan>,
    links: Vec<TLink>,
}

impl Topo {
    fn new(g: &Graph) -> Self {
        let mut t = Topo {
            hosts: Vec::new(),
            lans: Vec::new(),
            links: Vec::new(),
        };
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for h in &g.hosts {
            let i = t.host_id(&mut index, &h.name);
            t.hosts[i].router |= h.router;
        }
        for (li, lan) in g.lans.iter().enumerate() {
            let mut members: Vec<(usize, Vec<PortText>)> = Vec::new();
            for p in &lan.members {
                let h = t.host_id(&mut index, &p.host);
                let pt = PortText::new(p);
                t.add_addr(h, &pt);
                match members.iter_mut().find(|m| m.0 == h) {
                    Some(m) => m.1.push(pt),
                    None => members.push((h, vec![pt])),
                }
                if !t.hosts[h].lans.contains(&li) {
                    t.hosts[h].lans.push(li);
                }
            }
            t.lans.push(TLan {
                name: clip(clean(&lan.name).trim(), NAME_COLS),
                subnet: clip(clean(&lan.subnet).trim(), 43),
                members,
            });
        }
        for (k, l) in g.links.iter().enumerate() {
            let a = t.host_id(&mut index, &l.a.host);
            let b = t.host_id(&mut index, &l.b.host);
            let (pa, pb) = (PortText::new(&l.a), PortText::new(&l.b));
            t.add_addr(a, &pa);
            t.add_addr(b, &pb);
            t.hosts[a].links.push(k);
            if b != a {
                t.hosts[b].links.push(k);
            }
            t.links.push(TLink {
                name: clip(clean(&l.name).trim(), NAME_COLS),
                a,
                b,
                pa,
                pb,
            });
        }
        t
    }

    fn host_id(&mut self, index: &mut BTreeMap<String, usize>, name: &str) -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        let shown = clean(name);
        let shown = if shown.trim().is_empty() {
            "?".to_string()
        } else {
            clip(shown.trim(), NAME_COLS)
        };
        self.hosts.push(THost {
            full: name.to_string(),
            name: shown,
            router: false,
            addrs: Vec::new(),
            lans: Vec::new(),
            links: Vec::new(),
        });
        index.insert(name.to_string(), self.hosts.len() - 1);
        self.hosts.len() - 1
    }

    fn add_addr(&mut self, h: usize, p: &PortText) {
        if !p.addr.is_empty() && !self.hosts[h].addrs.contains(&p.addr) {
            self.hosts[h].addrs.push(p.addr.clone());
        }
    }

    /// The lines written in a host's box under its name.
    fn addr_lines(&self, h: usize) -> Vec<String> {
        let a = &self.hosts[h].addrs;
        if a.len() <= MAX_ADDR_LINES {
            a.clone()
        } else {
            let mut v: Vec<String> = a[..MAX_ADDR_LINES - 1].to_vec();
            v.push(format!("+{} more", a.len() - (MAX_ADDR_LINES - 1)));
            v
        }
    }

    /// The label lines of host `h`'s drop line to LAN `lan`.
    fn drop_lines(&self, h: usize, lan: usize) -> Vec<String> {
        self.lans[lan]
            .members
            .iter()
            .filter(|m| m.0 == h)
            .flat_map(|m| m.1.iter().flat_map(PortText::lines))
            .collect()
    }

    /// The first link between `a` and `b`, if any.
    fn link_between(&self, a: usize, b: usize) -> Option<usize> {
        self.hosts[a].links.iter().copied().find(|&k| {
            let l = &self.links[k];
            (l.a == a && l.b == b) || (l.a == b && l.b == a)
        })
    }

    /// Room needed between two boxes joined by link `k` drawn horizontally.
    fn link_gap(&self, k: usize) -> f64 {
        let l = &self.links[k];
        let wa = lines_w(&l.pa.lines(), PORT_FS);
        let wb = lines_w(&l.pb.lines(), PORT_FS);
        (wa + wb + 24.0)
            .max(text_w(&l.name, PORT_FS) + 16.0)
            .max(48.0)
    }

    /// One-line description of link `k`, for links not drawn between neighbouring boxes.
    fn link_text(&self, k: usize) -> String {
        let l = &self.links[k];
        let end = |h: usize, p: &PortText| {
            let s = p.one_line();
            if s.is_empty() {
                self.hosts[h].name.clone()
            } else {
                format!("{} {s}", self.hosts[h].name)
            }
        };
        let ends = format!("{} — {}", end(l.a, &l.pa), end(l.b, &l.pb));
        let s = if l.name.is_empty() {
            ends
        } else {
            format!("{}: {ends}", l.name)
        };
        clip(&s, 100)
    }
}

// ======================================================================= topology: layout

/// A row of hosts: (tier, kind). Tier t lies between bus t-1 and bus t; the kinds are the
/// hosts hanging below bus t-1 ([`UPPER`]), those on both buses ([`MIDDLE`]) and those
/// standing above bus t ([`LOWER`]). Hosts on no LAN form the row (LANs + 1, 0).
type RowKey = (usize, u8);
const UPPER: u8 = 0;
const MIDDLE: u8 = 1;
const LOWER: u8 = 2;

/// A request for room on a track: left and right x, link index, end (0 = a, 1 = b).
type TrackWant = (f64, f64, usize, usize);

/// Drawing of a label, done after the boxes so that labels stay on top.
type Label<'a> = Box<dyn Fn(&mut Canvas) + 'a>;

#[derive(Clone, Copy, PartialEq)]
enum LinkKind {
    /// Between neighbouring boxes of one row.
    Horizontal,
    /// Straight down between boxes of two consecutive rows.
    Vertical,
    /// Around a row, on a track above or below it.
    Bracket { above: bool, track: usize },
    /// Between rows further apart: out of each box to a track beside its row, along it to a
    /// channel right of the drawing, and down or up that channel.
    Routed {
        tracks: (usize, usize),
        channel: f64,
    },
}

struct Layout {
    row: Vec<RowKey>,
    x: Vec<f64>,
    bw: Vec<f64>,
    bh: Vec<f64>,
    by: Vec<f64>,
    rows: BTreeMap<RowKey, (f64, f64)>,
    bus_y: Vec<f64>,
    bus_x: Vec<(f64, f64)>,
    kinds: Vec<LinkKind>,
    /// x of the legs of a bracket or routed link, at end a and end b.
    legs: Vec<(f64, f64)>,
    bottom: f64,
}

impl Layout {
    fn new(t: &Topo) -> Self {
        let n = t.hosts.len();
        let nl = t.lans.len();

        // LAN order, top to bottom: a chain from the first LAN, each next LAN the one most
        // strongly tied to the last one placed (hosts on both count 2, point-to-point lines 1),
        // falling back to earlier LANs, then to the first LAN not yet placed.
        let mut tie: Vec<BTreeMap<usize, u32>> = vec![BTreeMap::new(); nl];
        for h in &t.hosts {
            for &a in &h.lans {
                for &b in &h.lans {
                    if a != b {
                        *tie[a].entry(b).or_default() += 2;
                    }
                }
            }
        }
        for l in &t.links {
            for &a in &t.hosts[l.a].lans {
                for &b in &t.hosts[l.b].lans {
                    if a != b {
                        *tie[a].entry(b).or_default() += 1;
                        *tie[b].entry(a).or_default() += 1;
                    }
                }
            }
        }
        let mut order: Vec<usize> = Vec::with_capacity(nl);
        let mut seen = vec![false; nl];
        while order.len() < nl {
            let next = order
                .iter()
                .rev()
                .find_map(|&p| {
                    tie[p]
                        .iter()
                        .filter(|(b, _)| !seen[**b])
                        .max_by_key(|(b, w)| (**w, std::cmp::Reverse(**b)))
                        .map(|(b, _)| *b)
                })
                .or_else(|| seen.iter().position(|s| !s));
            let Some(next) = next else { break };
            seen[next] = true;
            order.push(next);
        }
        let mut pos = vec![0; nl];
        for (k, &l) in order.iter().enumerate() {
            pos[l] = k;
        }

        // Rows of the hosts on LANs.
        let loose_row: RowKey = (nl + 1, 0);
        let mut row = vec![loose_row; n];
        let mut on_lan = vec![false; n];
        let mut primary = vec![0usize; n];
        for h in 0..n {
            let mut p: Vec<usize> = t.hosts[h].lans.iter().map(|&l| pos[l]).collect();
            p.sort_unstable();
            p.dedup();
            let Some(&k) = p.first() else { continue };
            on_lan[h] = true;
            primary[h] = order[k];
            row[h] = if p.len() > 1 {
                (k + 1, MIDDLE)
            } else {
                // Hang below the bus when a line leads to a host on the next LAN down.
                let down = t.hosts[h].links.iter().any(|&li| {
                    let q = t.links[li].other(h);
                    t.hosts[q].lans.iter().any(|&l| pos[l] == k + 1)
                });
                if down { (k + 1, UPPER) } else { (k, LOWER) }
            };
        }

        // Hosts on no LAN sit beside a host they have a line to (first on the left of a
        // first-in-row host, then alternating sides), chains of them continuing outward.
        let mut placed = on_lan.clone();
        let mut left: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut right: Vec<Vec<usize>> = vec![Vec::new(); n];
        for r in 0..n {
            if !on_lan[r] {
                continue;
            }
            let mut go_left = t.lans[primary[r]].members.first().map(|m| m.0) == Some(r);
            for &li in &t.hosts[r].links {
                let p = t.links[li].other(r);
                if placed[p] {
                    continue;
                }
                placed[p] = true;
                let mut chain = Vec::new();
                let mut stack = vec![p];
                while let Some(h) = stack.pop() {
                    chain.push(h);
                    row[h] = row[r];
                    for &l2 in t.hosts[h].links.iter().rev() {
                        let q = t.links[l2].other(h);
                        if !placed[q] {
                            placed[q] = true;
                            stack.push(q);
                        }
                    }
                }
                if go_left {
                    left[r].extend(chain)
                } else {
                    right[r].extend(chain)
                }
                go_left = !go_left;
            }
        }
        let mut loose: Vec<usize> = Vec::new();
        for s in 0..n {
            if placed[s] {
                continue;
            }
            placed[s] = true;
            let mut stack = vec![s];
            while let Some(h) = stack.pop() {
                loose.push(h);
                for &l2 in t.hosts[h].links.iter().rev() {
                    let q = t.links[l2].other(h);
                    if !placed[q] {
                        placed[q] = true;
                        stack.push(q);
                    }
                }
            }
        }

        // Box sizes and the room each host needs on its right for labels.
        let mut bw = vec![0.0; n];
        let mut bh = vec![0.0; n];
        for h in 0..n {
            let lines = t.addr_lines(h);
            bw[h] =
                (text_w(&t.hosts[h].name, HOST_FS).max(lines_w(&lines, ADDR_FS)) + 20.0).max(60.0);
            bh[h] = 30.0 + 15.0 * lines.len() as f64;
        }
        let drop_res: Vec<f64> = (0..n)
            .map(|h| {
                t.hosts[h]
                    .lans
                    .iter()
                    .map(|&l| 8.0 + lines_w(&t.drop_lines(h, l), PORT_FS))
                    .fold(0.0, f64::max)
            })
            .collect();
        let vert_res: Vec<f64> = (0..n)
            .map(|h| {
                t.hosts[h]
                    .links
                    .iter()
                    .filter(|&&li| {
                        let q = t.links[li].other(h);
                        q != h && on_lan[q]
                    })
                    .map(|&li| {
                        let l = &t.links[li];
                        8.0 + lines_w(&l.pa.lines(), PORT_FS)
                            .max(lines_w(&l.pb.lines(), PORT_FS))
                            .max(text_w(&l.name, PORT_FS))
                    })
                    .fold(0.0, f64::max)
            })
            .collect();
        let gap = |a: usize, b: usize| t.link_between(a, b).map_or(UNIT_GAP, |k| t.link_gap(k));
        // Extent of a host with the hosts beside it, left and right of its centre.
        let ext: Vec<(f64, f64)> = (0..n)
            .map(|h| {
                let (mut l, mut r) = (bw[h] / 2.0, bw[h] / 2.0);
                let mut prev = h;
                for &c in &left[h] {
                    l += gap(prev, c) + bw[c];
                    prev = c;
                }
                prev = h;
                for &c in &right[h] {
                    r += gap(prev, c) + bw[c];
                    prev = c;
                }
                (l, r.max(drop_res[h]).max(vert_res[h]))
            })
            .collect();

        let nonempty: BTreeSet<RowKey> = row.iter().copied().collect();
        let row_list: Vec<RowKey> = nonempty.iter().copied().collect();
        let row_idx: BTreeMap<RowKey, usize> =
            row_list.iter().enumerate().map(|(i, &r)| (r, i)).collect();
        let consecutive = |r1: RowKey, r2: RowKey| {
            r1.0 == r2.0
                && match (row_idx.get(&r1), row_idx.get(&r2)) {
                    (Some(&i), Some(&j)) => i.abs_diff(j) == 1,
                    _ => false,
                }
        };

        // Horizontal placement, bus by bus: each bus's hosts (above and below it) in member order.
        let mut x = vec![0.0_f64; n];
        let mut has_x = vec![false; n];
        let place_beside = |x: &mut Vec<f64>, h: usize| {
            let mut edge = x[h] - bw[h] / 2.0;
            let mut prev = h;
            for &c in &left[h] {
                edge -= gap(prev, c);
                x[c] = edge - bw[c] / 2.0;
                edge -= bw[c];
                prev = c;
            }
            let mut edge = x[h] + bw[h] / 2.0;
            prev = h;
            for &c in &right[h] {
                edge += gap(prev, c);
                x[c] = edge + bw[c] / 2.0;
                edge += bw[c];
                prev = c;
            }
        };
        for &lan in &order {
            // Anchors: hosts placed with an earlier bus (fixed), or wanting to stand right under
            // the peer of their point-to-point line (soft).
            let mut anchors: Vec<(f64, usize, usize, bool)> = Vec::new();
            let mut free: Vec<(usize, usize)> = Vec::new();
            for (mi, &(h, _)) in t.lans[lan].members.iter().enumerate() {
                if has_x[h] {
                    anchors.push((x[h], mi, h, true));
                    continue;
                }
                let soft = t.hosts[h].links.iter().find_map(|&li| {
                    let q = t.links[li].other(h);
                    (q != h && has_x[q] && on_lan[q] && consecutive(row[q], row[h])).then_some(x[q])
                });
                match soft {
                    Some(sx) => anchors.push((sx, mi, h, false)),
                    None => free.push((mi, h)),
                }
            }
            anchors.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut cursor = MARGIN;
            let mut fi = 0;
            let mut pending: Vec<usize> = Vec::new();
            for &(ax0, mi, h, fixed) in &anchors {
                let mut block = std::mem::take(&mut pending);
                while fi < free.len() && free[fi].0 < mi {
                    block.push(free[fi].1);
                    fi += 1;
                }
                let (al, ar) = ext[h];
                let width = |b: &usize| ext[*b].0 + ext[*b].1 + UNIT_GAP;
                let ax = if fixed {
                    let room = ax0 - al - cursor;
                    let mut used = 0.0;
                    let mut keep = Vec::new();
                    for b in block {
                        if pending.is_empty() && used + width(&b) <= room + 1e-6 {
                            used += width(&b);
                            keep.push(b);
                        } else {
                            pending.push(b);
                        }
                    }
                    block = keep;
                    ax0
                } else {
                    let total: f64 = block.iter().map(width).sum();
                    ax0.max(cursor + total + al)
                };
                let mut edge = ax - al - UNIT_GAP;
                for &b in block.iter().rev() {
                    x[b] = edge - ext[b].1;
                    edge = x[b] - ext[b].0 - UNIT_GAP;
                    has_x[b] = true;
                    place_beside(&mut x, b);
                }
                if !fixed {
                    x[h] = ax;
                    has_x[h] = true;
                    place_beside(&mut x, h);
                }
                cursor = cursor.max(ax + ar + UNIT_GAP);
            }
            let rest: Vec<usize> = pending
                .into_iter()
                .chain(free[fi..].iter().map(|f| f.1))
                .collect();
            for b in rest {
                x[b] = cursor + ext[b].0;
                cursor = x[b] + ext[b].1 + UNIT_GAP;
                has_x[b] = true;
                place_beside(&mut x, b);
            }
        }
        let mut cursor = MARGIN;
        for (i, &h) in loose.iter().enumerate() {
            x[h] = cursor + bw[h] / 2.0;
            let next_gap = loose.get(i + 1).map_or(UNIT_GAP, |&nx| gap(h, nx));
            cursor = x[h] + bw[h] / 2.0 + next_gap;
        }

        // Each row's hosts from left to right.
        let mut in_row: BTreeMap<RowKey, Vec<usize>> = BTreeMap::new();
        for (h, &r) in row.iter().enumerate() {
            in_row.entry(r).or_default().push(h);
        }
        let mut rank = vec![0usize; n];
        for hs in in_row.values_mut() {
            hs.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(a.cmp(&b)));
            for (i, &h) in hs.iter().enumerate() {
                rank[h] = i;
            }
        }

        // How each link is drawn.
        // Only the first of parallel links between two hosts takes the straight path.
        let above_of = |r: RowKey| r.1 == LOWER;
        let mut straight: BTreeSet<(usize, usize)> = BTreeSet::new();
        let kinds0: Vec<LinkKind> = t
            .links
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let (a, b) = (l.a, l.b);
                let first = straight.insert((a.min(b), a.max(b)));
                if first && a != b && row[a] == row[b] && rank[a].abs_diff(rank[b]) == 1 && {
                    let (lh, rh) = if x[a] < x[b] { (a, b) } else { (b, a) };
                    (x[rh] - bw[rh] / 2.0) - (x[lh] + bw[lh] / 2.0) >= t.link_gap(k) - 0.5
                } {
                    LinkKind::Horizontal
                } else if first
                    && a != b
                    && consecutive(row[a], row[b])
                    && (x[a] - x[b]).abs() < 0.5
                {
                    LinkKind::Vertical
                } else if a == b || row[a] == row[b] {
                    LinkKind::Bracket {
                        above: above_of(row[a]),
                        track: 0,
                    }
                } else {
                    LinkKind::Routed {
                        tracks: (0, 0),
                        channel: 0.0,
                    }
                }
            })
            .collect();
        // Legs of brackets and routed lines leave a box off its centre (where the drop lines
        // are), each at its own place.
        const LEG_AT: [f64; 6] = [0.25, -0.25, 0.375, -0.375, 0.125, -0.125];
        let mut legs_used = vec![0usize; n];
        let mut leg_x = |h: usize| {
            let j = legs_used[h];
            legs_used[h] += 1;
            x[h] + bw[h] * LEG_AT[j % LEG_AT.len()]
        };
        let mut legs: Vec<(f64, f64)> = vec![(0.0, 0.0); t.links.len()];
        // Track requests by (row, above): (left, right, link, end).
        let mut wants: BTreeMap<(RowKey, bool), Vec<TrackWant>> = BTreeMap::new();
        for (k, l) in t.links.iter().enumerate() {
            match kinds0[k] {
                LinkKind::Bracket { above, .. } => {
                    legs[k] = if l.a == l.b {
                        let m = leg_x(l.a);
                        (m - 10.0, m + 10.0)
                    } else {
                        (leg_x(l.a), leg_x(l.b))
                    };
                    let (lo, hi) = (legs[k].0.min(legs[k].1), legs[k].0.max(legs[k].1));
                    let (f0, f1) = Font::new(PORT_FS)
                        .middle()
                        .span((lo + hi) / 2.0, &t.link_text(k));
                    wants.entry((row[l.a], above)).or_default().push((
                        lo.min(f0),
                        hi.max(f1),
                        k,
                        0,
                    ));
                }
                LinkKind::Routed { .. } => {
                    legs[k] = (leg_x(l.a), leg_x(l.b));
                    wants
                        .entry((row[l.a], above_of(row[l.a])))
                        .or_default()
                        .push((legs[k].0, f64::INFINITY, k, 0));
                    wants
                        .entry((row[l.b], above_of(row[l.b])))
                        .or_default()
                        .push((legs[k].1, f64::INFINITY, k, 1));
                }
                _ => {}
            }
        }
        let mut kinds = kinds0;
        let mut tracks: BTreeMap<(RowKey, bool), usize> = BTreeMap::new();
        let mut right_edge: f64 = 0.0;
        for (key, mut items) in wants {
            items.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.2.cmp(&q.2)).then(p.3.cmp(&q.3)));
            let mut ends: Vec<f64> = Vec::new();
            for (lo, hi, k, end) in items {
                let tr = match ends.iter().position(|&e| e + 12.0 < lo) {
                    Some(i) => i,
                    None => {
                        ends.push(f64::NEG_INFINITY);
                        ends.len() - 1
                    }
                };
                ends[tr] = hi;
                if hi.is_finite() {
                    right_edge = right_edge.max(hi);
                }
                match &mut kinds[k] {
                    LinkKind::Bracket { track, .. } => *track = tr,
                    LinkKind::Routed { tracks, .. } if end == 0 => tracks.0 = tr,
                    LinkKind::Routed { tracks, .. } => tracks.1 = tr,
                    _ => {}
                }
            }
            tracks.insert(key, ends.len());
        }
        // Routed lines go down a channel of their own, right of everything else.
        for h in 0..n {
            right_edge = right_edge.max(x[h] + ext[h].1);
        }
        let bus_x: Vec<(f64, f64)> = t
            .lans
            .iter()
            .map(|l| {
                let lo = l
                    .members
                    .iter()
                    .map(|&(h, _)| x[h] - bw[h] / 2.0)
                    .fold(f64::INFINITY, f64::min);
                let hi = l
                    .members
                    .iter()
                    .map(|&(h, _)| x[h] + bw[h] / 2.0)
                    .fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() && hi.is_finite() {
                    let (lo, hi) = ((lo - 12.0).max(MARGIN / 2.0), hi + 12.0);
                    (lo, hi.max(lo + 120.0))
                } else {
                    (MARGIN, MARGIN + 200.0)
                }
            })
            .collect();
        for (l, &(_, x1)) in t.lans.iter().zip(&bus_x) {
            let label = text_w(&l.name, 13.0) + 8.0 + text_w(&l.subnet, 13.0);
            right_edge = right_edge.max(x1 + 10.0 + label);
        }
        let mut channel_x = right_edge + 30.0;
        for kind in &mut kinds {
            if let LinkKind::Routed { channel, .. } = kind {
                *channel = channel_x;
                channel_x += 16.0;
            }
        }

        // Vertical placement: tier by tier, buses between them.
        let mut lines_above = vec![0usize; nl];
        let mut lines_below = vec![0usize; nl];
        for (lan, l) in t.lans.iter().enumerate() {
            let k = pos[lan];
            for &(h, _) in &l.members {
                let c = t.drop_lines(h, lan).len();
                if row[h].0 <= k {
                    lines_above[k] = lines_above[k].max(c);
                } else {
                    lines_below[k] = lines_below[k].max(c);
                }
            }
        }
        let drop_space = |lines: usize| lines.max(1) as f64 * PORT_LH + 30.0;
        let row_h = |r: RowKey| {
            in_row
                .get(&r)
                .map_or(0.0, |hs| hs.iter().map(|&h| bh[h]).fold(0.0, f64::max))
        };
        let between = |r1: RowKey, r2: RowKey| {
            t.links
                .iter()
                .zip(&kinds)
                .filter(|(l, k)| {
                    **k == LinkKind::Vertical
                        && ((row[l.a] == r1 && row[l.b] == r2)
                            || (row[l.a] == r2 && row[l.b] == r1))
                })
                .map(|(l, _)| (l.pa.lines().len() + l.pb.lines().len() + 1) as f64 * LINE_H + 28.0)
                .fold(40.0, f64::max)
        };
        let track_room = |r: RowKey, above: bool| {
            let c = tracks.get(&(r, above)).copied().unwrap_or(0);
            if c == 0 { 0.0 } else { c as f64 * TRACK + 6.0 }
        };
        let mut rows: BTreeMap<RowKey, (f64, f64)> = BTreeMap::new();
        let mut bus_y_pos = vec![0.0; nl];
        let mut y = TITLE_Y + 34.0;
        let mut place_rows = |tier_rows: &[RowKey], y: &mut f64| {
            for (i, &r) in tier_rows.iter().enumerate() {
                if i > 0 {
                    *y += between(tier_rows[i - 1], r);
                }
                *y += track_room(r, true);
                let h = row_h(r);
                rows.insert(r, (*y, h));
                *y += h + track_room(r, false);
            }
        };
        for tier in 0..=nl {
            let tier_rows: Vec<RowKey> = row_list.iter().copied().filter(|r| r.0 == tier).collect();
            if tier > 0 {
                bus_y_pos[tier - 1] = y;
                y += if !tier_rows.is_empty() {
                    drop_space(lines_below[tier - 1])
                } else if tier < nl {
                    60.0
                } else {
                    10.0
                };
            } else if tier_rows.is_empty() && nl > 0 {
                y += 10.0;
            }
            place_rows(&tier_rows, &mut y);
            if tier < nl && !tier_rows.is_empty() {
                y += drop_space(lines_above[tier]);
            }
        }
        if in_row.contains_key(&loose_row) {
            y += if nl > 0 { 50.0 } else { 0.0 };
            place_rows(&[loose_row], &mut y);
        }
        let by: Vec<f64> = (0..n)
            .map(|h| {
                let (top, rh) = rows.get(&row[h]).copied().unwrap_or((0.0, 0.0));
                if row[h].1 == LOWER && row[h] != loose_row {
                    top + rh - bh[h]
                } else {
                    top
                }
            })
            .collect();
        let bus_y: Vec<f64> = (0..nl).map(|l| bus_y_pos[pos[l]]).collect();
        Layout {
            row,
            x,
            bw,
            bh,
            by,
            rows,
            bus_y,
            bus_x,
            kinds,
            legs,
            bottom: y,
        }
    }

    /// The y of track `track` beside row `r` (above or below it).
    fn track_y(&self, r: RowKey, above: bool, track: usize) -> f64 {
        let (top, rh) = self.rows.get(&r).copied().unwrap_or((0.0, 0.0));
        let off = (track + 1) as f64 * TRACK;
        if above { top - off } else { top + rh + off }
    }

    /// The y where a leg leaves box `h`: its top edge when going up, else its bottom edge.
    fn box_edge(&self, h: usize, above: bool) -> f64 {
        if above {
            self.by[h]
        } else {
            self.by[h] + self.bh[h]
        }
    }
}

// ======================================================================= topology: drawing

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
    let port_font = Font::new(PORT_FS).fill("#222222");

    // Buses with their labels, and the drop line of every member.
    for (li, lan) in t.lans.iter().enumerate() {
        let y = lay.bus_y[li];
        let (x0, x1) = lay.bus_x[li];
        let _ = writeln!(
            c.body,
            "<g class=\"lan\" id=\"lan-{}\"><title>{}</title>",
            li + 1,
            esc(&g.lans[li].name)
        );
        c.line((x0, y), (x1, y), pen("#333333", 5.0));
        let name_font = Font::new(13.0).bold();
        c.text(x1 + 10.0, y + 5.0, name_font, &lan.name);
        let sx = x1
            + 10.0
            + if lan.name.is_empty() {
                0.0
            } else {
                text_w(&lan.name, 13.0) + 8.0
            };
        c.text(sx, y + 5.0, Font::new(13.0), &lan.subnet);
        for &(h, _) in &lan.members {
            let hx = lay.x[h];
            let above = lay.by[h] + lay.bh[h] <= y;
            let edge = if above {
                lay.by[h] + lay.bh[h]
            } else {
                lay.by[h]
            };
            c.line((hx, edge), (hx, y), pen("#333333", 1.5));
            let _ = writeln!(
                c.body,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"#333333\"/>",
                num(hx),
                num(y)
            );
            let lines = t.drop_lines(h, li);
            for (i, l) in lines.iter().enumerate() {
                let ly = if above {
                    y - 10.0 - (lines.len() - 1 - i) as f64 * PORT_LH
                } else {
                    y + 21.0 + i as f64 * PORT_LH
                };
                c.text(hx + 6.0, ly, port_font, l);
            }
        }
        c.raw("</g>\n");
    }

    // Point-to-point lines (labels later, over the boxes' edges if need be).
    let mut labels: Vec<Label<'_>> = Vec::new();
    for (k, l) in t.links.iter().enumerate() {
        let _ = writeln!(
            c.body,
            "<g class=\"link\" id=\"link-{}\"><title>{}</title>",
            k + 1,
            esc(&t.link_text(k))
        );
        let line_pen = pen("#000000", 1.5);
        let name_font = Font::new(PORT_FS).italic();
        match lay.kinds[k] {
            LinkKind::Horizontal => {
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
                c.line((x1, y), (x2, y), line_pen);
                let (pl, pr) = (l.port_of(lh).lines(), l.port_of(rh).lines());
                labels.push(Box::new(move |c: &mut Canvas| {
                    c.text((x1 + x2) / 2.0, y - 6.0, name_font.middle(), &l.name);
                    for (i, s) in pl.iter().enumerate() {
                        c.text(x1 + 6.0, y + 15.0 + i as f64 * PORT_LH, port_font, s);
                    }
                    for (i, s) in pr.iter().enumerate() {
                        c.text(x2 - 6.0, y + 15.0 + i as f64 * PORT_LH, port_font.end(), s);
                    }
                }));
            }
            LinkKind::Vertical => {
                let (up, dn) = if lay.by[l.a] < lay.by[l.b] {
                    (l.a, l.b)
                } else {
                    (l.b, l.a)
                };
                let xl = lay.x[up];
                let (y1, y2) = (lay.by[up] + lay.bh[up], lay.by[dn]);
                c.line((xl, y1), (xl, y2), line_pen);
                let (pu, pd) = (l.port_of(up).lines(), l.port_of(dn).lines());
                labels.push(Box::new(move |c: &mut Canvas| {
                    for (i, s) in pu.iter().enumerate() {
                        c.text(xl + 6.0, y1 + 16.0 + i as f64 * PORT_LH, port_font, s);
                    }
                    c.text(
                        xl + 6.0,
                        y1 + 18.0 + pu.len() as f64 * PORT_LH,
                        name_font,
                        &l.name,
                    );
                    for (i, s) in pd.iter().enumerate() {
                        c.text(
                            xl + 6.0,
                            y2 - 8.0 - (pd.len() - 1 - i) as f64 * PORT_LH,
                            port_font,
                            s,
                        );
                    }
                }));
            }
            LinkKind::Routed { tracks, channel } => {
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
                c.polyline(&pts, line_pen);
                let text = t.link_text(k);
                labels.push(Box::new(move |c: &mut Canvas| {
                    c.text_bg(xa + 6.0, ya - 5.0, Font::new(PORT_FS), &text);
                    c.text_bg(xb + 6.0, yb - 5.0, Font::new(PORT_FS), &text);
                }));
            }
            LinkKind::Bracket { above, track } => {
                let yb = lay.track_y(lay.row[l.a], above, track);
                let (xa, xb) = lay.legs[k];
                let pts = [
                    (xa, lay.box_edge(l.a, above)),
                    (xa, yb),
                    (xb, yb),
                    (xb, lay.box_edge(l.b, above)),
                ];
                c.polyline(&pts, line_pen);
                let text = t.link_text(k);
                labels.push(Box::new(move |c: &mut Canvas| {
                    c.text_bg(
                        (xa + xb) / 2.0,
                        yb - 5.0,
                        Font::new(PORT_FS).middle(),
                        &text,
                    );
                }));
            }
        }
        c.raw("</g>\n");
    }

    // Host boxes.
    for (h, host) in t.hosts.iter().enumerate() {
        let (x, y, w, bh) = (lay.x[h], lay.by[h], lay.bw[h], lay.bh[h]);
        let _ = writeln!(
            c.body,
            "<g class=\"host\" id=\"host-{}\"><title>{}</title>",
            h + 1,
            esc(&host.full)
        );
        let fill = if host.router { "#eef3fb" } else { "#ffffff" };
        c.rect(
            x - w / 2.0,
            y,
            w,
            bh,
            &format!(
                "class=\"box\" rx=\"4\" fill=\"{fill}\" stroke=\"#000000\" stroke-width=\"1.5\""
            ),
        );
        if host.router {
            c.rect(
                x - w / 2.0 + 3.0,
                y + 3.0,
                w - 6.0,
                bh - 6.0,
                "rx=\"2\" fill=\"none\" stroke=\"#000000\" stroke-width=\"1\"",
            );
        }
        c.text(x, y + 19.0, Font::new(HOST_FS).bold().middle(), &host.name);
        for (i, a) in t.addr_lines(h).iter().enumerate() {
            c.text(
                x,
                y + 34.0 + 15.0 * i as f64,
                Font::new(ADDR_FS).middle().fill("#222222"),
                a,
            );
        }
        c.raw("</g>\n");
    }
    for f in &labels {
        f(&mut c);
    }

    // Legend, title.
    let mut ly = lay.bottom + 30.0;
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
        c.rect(
            MARGIN,
            ly - 12.0,
            30.0,
            16.0,
            "rx=\"3\" fill=\"#eef3fb\" stroke=\"#000000\" stroke-width=\"1.5\"",
        );
        c.rect(
            MARGIN + 3.0,
            ly - 9.0,
            24.0,
            10.0,
            "rx=\"2\" fill=\"none\" stroke=\"#000000\" stroke-width=\"1\"",
        );
        c.text(
            MARGIN + 40.0,
            ly,
            Font::new(PORT_FS).fill("#555555"),
            "router (forwards IPv4)",
        );
    }
    c.grow(0.0, ly);
    c.title(&g.title);
    c.finish(&g.title)
}

// ======================================================================= DOT

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

/// The same network as [`topology_svg`] in Graphviz DOT (an undirected `graph`): hosts are
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

// ======================================================================= tests

#[cfg(test)]
mod tests {
    use super::*;

    // ---------------------------------------------------------------- a tiny XML parser

    /// An XML element: name, attributes (decoded), children and its own text (decoded).
    #[derive(Debug)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        kids: Vec<El>,
        text: String,
    }

    impl El {
        fn attr(&self, k: &str) -> Option<&str> {
            self.attrs.iter().find(|a| a.0 == k).map(|a| a.1.as_str())
        }
        fn num(&self, k: &str) -> f64 {
            self.attr(k)
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        }
        fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a El>) {
            if self.name == name {
                out.push(self);
            }
            for k in &self.kids {
                k.all(name, out);
            }
        }
        fn find(&self, name: &str) -> Vec<&El> {
            let mut v = Vec::new();
            self.all(name, &mut v);
            v
        }
        fn with_class(&self, name: &str, class: &str) -> Vec<&El> {
            self.find(name)
                .into_iter()
                .filter(|e| e.attr("class") == Some(class))
                .collect()
        }
    }

    /// `s` with its entity references replaced; an error for any malformed or unknown one.
    fn decode(s: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let r = &rest[i + 1..];
            let j = r
                .find(';')
                .ok_or_else(|| format!("unterminated entity in {s:?}"))?;
            let ent = &r[..j];
            let c = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(h) = ent.strip_prefix("#x") {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = ent.strip_prefix('#') {
                        d.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                        .ok_or_else(|| format!("bad entity &{ent};"))?
                }
            };
            out.push(c);
            rest = &r[j + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn xml_char_ok(c: char) -> bool {
        matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
    }

    fn name_at(s: &str) -> String {
        s.chars()
            .take_while(|&c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
            .collect()
    }

    /// Parses a whole document, checking well-formedness: one root, balanced tags, quoted
    /// and unique attributes, no `<` in attribute values, valid entities, valid characters.
    fn parse_xml(s: &str) -> Result<El, String> {
        if let Some(c) = s.chars().find(|&c| !xml_char_ok(c)) {
            return Err(format!("character not allowed in XML: {:?}", c));
        }
        let mut stack: Vec<El> = Vec::new();
        let mut root: Option<El> = None;
        let mut i = 0;
        while i < s.len() {
            let r = &s[i..];
            if r.starts_with("<?") {
                if !stack.is_empty() || root.is_some() {
                    return Err("processing instruction outside the prolog".into());
                }
                i += r.find("?>").ok_or("unterminated <?")? + 2;
            } else if r.starts_with("<!--") {
                i += r.find("-->").ok_or("unterminated comment")? + 3;
            } else if r.starts_with("<!") {
                return Err("unexpected <! declaration".into());
            } else if let Some(after) = r.strip_prefix("</") {
                let name = name_at(after);
                let rest = after[name.len()..].trim_start();
                if !rest.starts_with('>') {
                    return Err(format!("bad end tag </{name}"));
                }
                i += 2 + name.len() + (after.len() - name.len() - rest.len()) + 1;
                let el = stack
                    .pop()
                    .ok_or_else(|| format!("end tag </{name}> without start"))?;
                if el.name != name {
                    return Err(format!("</{name}> closes <{}>", el.name));
                }
                match stack.last_mut() {
                    Some(p) => p.kids.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err("two root elements".into()),
                }
            } else if let Some(after) = r.strip_prefix('<') {
                let name = name_at(after);
                if name.is_empty() {
                    return Err(format!("bad tag at {i}"));
                }
                if stack.is_empty() && root.is_some() {
                    return Err("two root elements".into());
                }
                let mut el = El {
                    name,
                    attrs: Vec::new(),
                    kids: Vec::new(),
                    text: String::new(),
                };
                let mut j = i + 1 + el.name.len();
                let closed;
                loop {
                    let rest = &s[j..];
                    let t = rest.trim_start();
                    let ws = rest.len() - t.len();
                    j += ws;
                    if t.starts_with("/>") {
                        j += 2;
                        closed = true;
                        break;
                    }
                    if t.starts_with('>') {
                        j += 1;
                        closed = false;
                        break;
                    }
                    if ws == 0 {
                        return Err(format!("no space before attribute in <{}>", el.name));
                    }
                    let an = name_at(t);
                    if an.is_empty() {
                        return Err(format!(
                            "bad attribute in <{}>: {:?}",
                            el.name,
                            &t[..t.len().min(20)]
                        ));
                    }
                    let t2 = t[an.len()..].trim_start();
                    let t2 = t2
                        .strip_prefix('=')
                        .ok_or_else(|| format!("attribute {an} without ="))?
                        .trim_start();
                    let q = t2.chars().next().ok_or("end of input in tag")?;
                    if q != '"' && q != '\'' {
                        return Err(format!("attribute {an} not quoted"));
                    }
                    let end = t2[1..]
                        .find(q)
                        .ok_or_else(|| format!("attribute {an} unterminated"))?;
                    let raw = &t2[1..1 + end];
                    if raw.contains('<') {
                        return Err(format!("< in attribute {an}"));
                    }
                    if el.attrs.iter().any(|a| a.0 == an) {
                        return Err(format!("duplicate attribute {an}"));
                    }
                    el.attrs.push((an, decode(raw)?));
                    j = s.len() - (t2.len() - end - 2);
                }
                i = j;
                if closed {
                    match stack.last_mut() {
                        Some(p) => p.kids.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            } else {
                let end = r.find('<').unwrap_or(r.len());
                let text = &r[..end];
                if text.contains("]]>") {
                    return Err("]]> in text".into());
                }
                let d = decode(text)?;
                match stack.last_mut() {
                    Some(p) => p.text.push_str(&d),
                    None if d.trim().is_empty() => {}
                    None => return Err(format!("text outside the root: {:?}", d)),
                }
                i += end;
            }
        }
        if let Some(el) = stack.last() {
            return Err(format!("<{}> not closed", el.name));
        }
        root.ok_or_else(|| "no root element".to_string())
    }

    #[test]
    fn the_xml_checker_rejects_broken_documents() {
        assert!(parse_xml("<a><b></b></a>").is_ok());
        assert!(parse_xml("<a x=\"1\" y='2'>t &amp; &#60; &#x3C;</a>").is_ok());
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a x=1/>",
            "<a x=\"1\"y=\"2\"/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a>&nbsp;</a>",
            "<a>& </a>",
            "<a x=\"<\"/>",
            "<a/><b/>",
            "text<a/>",
            "</a>",
            "<a>\u{1}</a>",
        ] {
            assert!(parse_xml(bad).is_err(), "accepted {bad:?}");
        }
    }

    // ---------------------------------------------------------------- checks on drawings

    /// Parses an SVG document and checks what every drawing must have.
    fn check_svg(s: &str) -> El {
        let root = parse_xml(s).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{s}"));
        assert_eq!(root.name, "svg");
        assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
        assert_eq!(root.attr("version"), Some("1.1"));
        assert!(
            root.kids.first().is_some_and(|k| k.name == "title"),
            "first child must be <title>"
        );
        for (k, v) in [("width", root.num("width")), ("height", root.num("height"))] {
            assert!(v.is_finite() && v > 0.0, "{k} = {v}");
        }
        for t in root.find("text") {
            let fs = t.num("font-size");
            assert!(fs >= 12.0, "font-size {fs} < 12 for {:?}", t.text);
        }
        assert!(
            !s.contains("NaN") && !s.contains("inf"),
            "non-finite number in output"
        );
        root
    }

    #[derive(Debug)]
    struct Bx {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        what: String,
    }

    fn overlap(a: &Bx, b: &Bx) -> bool {
        a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5
    }

    fn inside(a: &Bx, b: &Bx) -> bool {
        a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1
    }

    /// Ink boxes of every text (DejaVu Sans Mono metrics: 0.602 em advance).
    fn text_boxes(root: &El) -> Vec<Bx> {
        root.find("text")
            .into_iter()
            .map(|t| {
                let (x, y, fs) = (t.num("x"), t.num("y"), t.num("font-size"));
                let w = cols(&t.text) as f64 * fs * 0.602;
                let x0 = match t.attr("text-anchor") {
                    Some("middle") => x - w / 2.0,
                    Some("end") => x - w,
                    _ => x,
                };
                Bx {
                    x0,
                    y0: y - 0.76 * fs,
                    x1: x0 + w,
                    y1: y + 0.24 * fs,
                    what: t.text.clone(),
                }
            })
            .collect()
    }

    fn rect_boxes(root: &El, class: &str) -> Vec<Bx> {
        root.with_class("rect", class)
            .into_iter()
            .map(|r| {
                let (x, y) = (r.num("x"), r.num("y"));
                Bx {
                    x0: x,
                    y0: y,
                    x1: x + r.num("width"),
                    y1: y + r.num("height"),
                    what: class.into(),
                }
            })
            .collect()
    }

    /// No two texts overlap; a text is inside a host box or clear of all of them; host
    /// boxes do not overlap; everything is on the canvas.
    fn assert_no_overlap(root: &El) {
        let texts = text_boxes(root);
        let boxes = rect_boxes(root, "box");
        let (w, h) = (root.num("width"), root.num("height"));
        for (i, a) in texts.iter().enumerate() {
            assert!(
                a.x0 >= 0.0 && a.y0 >= 0.0 && a.x1 <= w && a.y1 <= h,
                "text off the canvas: {a:?}"
            );
            for b in &texts[i + 1..] {
                assert!(!overlap(a, b), "texts overlap: {a:?} and {b:?}");
            }
            for b in &boxes {
                assert!(!overlap(a, b) || inside(a, b), "text {a:?} over box {b:?}");
            }
        }
        for (i, a) in boxes.iter().enumerate() {
            assert!(
                a.x0 >= 0.0 && a.y0 >= 0.0 && a.x1 <= w && a.y1 <= h,
                "box off the canvas: {a:?}"
            );
            for b in &boxes[i + 1..] {
                assert!(!overlap(a, b), "boxes overlap: {a:?} and {b:?}");
            }
        }
    }

    // ---------------------------------------------------------------- inputs

    fn port(host: &str, interface: &str, address: Option<&str>) -> GraphPort {
        GraphPort {
            host: host.into(),
            interface: interface.into(),
            address: address.map(Into::into),
        }
    }

    fn course() -> Graph {
        let routers = ["bsdi", "sun", "netb", "gateway"];
        let names = [
            "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi", "slip",
        ];
        Graph {
            title: "course lab".into(),
            hosts: names
                .iter()
                .map(|n| GraphHost {
                    name: (*n).into(),
                    router: routers.contains(n),
                })
                .collect(),
            lans: vec![
                GraphLan {
                    name: "net1".into(),
                    subnet: "140.252.1.0/24".into(),
                    members: vec![
                        port("aix", "eth1", Some("140.252.1.92")),
                        port("solaris", "eth1", Some("140.252.1.32")),
                        port("gemini", "eth1", Some("140.252.1.11")),
                        port("gateway", "eth1", Some("140.252.1.4")),
                        port("netb", "eth1", Some("140.252.1.183")),
                    ],
                },
                GraphLan {
                    name: "net2".into(),
                    subnet: "140.252.13.32/27".into(),
                    members: vec![
                        port("bsdi", "eth1", Some("140.252.13.35")),
                        port("sun", "eth1", Some("140.252.13.33")),
                        port("svr4", "eth1", Some("140.252.13.34")),
                    ],
                },
            ],
            links: vec![
                GraphLink {
                    name: "slip-bsdi".into(),
                    a: port("slip", "slipside", Some("140.252.13.65/27")),
                    b: port("bsdi", "bsdiside", Some("140.252.13.66/27")),
                },
                GraphLink {
                    name: "sun-netb".into(),
                    a: port("sun", "sunside", Some("140.252.1.29/24")),
                    b: port("netb", "netbside", None),
                },
            ],
        }
    }

    /// `lans` LANs of `per` hosts chained by routers, dial-in hosts, a line inside a LAN, a
    /// line from the first LAN to the last, an isolated host.
    fn stress(lans: usize, per: usize) -> Graph {
        let mut g = Graph {
            title: format!("{lans} x {per}"),
            ..Graph::default()
        };
        for l in 0..lans {
            let mut members = Vec::new();
            for i in 0..per {
                let name = format!("h{l}-{i}");
                g.hosts.push(GraphHost {
                    name: name.clone(),
                    router: false,
                });
                members.push(port(&name, "eth0", Some(&format!("10.{l}.0.{}", i + 1))));
            }
            if l > 0 {
                let r = format!("r{l}");
                g.hosts.push(GraphHost {
                    name: r.clone(),
                    router: true,
                });
                g.lans[l - 1]
                    .members
                    .push(port(&r, "eth0", Some(&format!("10.{}.0.254", l - 1))));
                members.push(port(&r, "eth1", Some(&format!("10.{l}.0.254"))));
            }
            g.lans.push(GraphLan {
                name: format!("lan{l}"),
                subnet: format!("10.{l}.0.0/24"),
                members,
            });
            if l % 2 == 0 {
                g.links.push(GraphLink {
                    name: format!("slip{l}"),
                    a: port(&format!("h{l}-0"), "sl0", Some("192.168.0.1")),
                    b: port(&format!("dialin{l}"), "sl0", Some("192.168.0.2")),
                });
            }
        }
        if lans > 1 && per > 2 {
            g.links.push(GraphLink {
                name: "cross".into(),
                a: port("h0-1", "eth9", None),
                b: port("h0-2", "eth9", None),
            });
            let last = format!("h{}-1", lans - 1);
            g.links.push(GraphLink {
                name: "far".into(),
                a: port("h0-1", "eth8", None),
                b: port(&last, "eth8", None),
            });
        }
        g.hosts.push(GraphHost {
            name: "lonely".into(),
            router: false,
        });
        g
    }

    fn pkt(time: f64, from: &str, to: &str, label: &str) -> TimelinePacket {
        TimelinePacket {
            time,
            from: from.into(),
            to: to.into(),
            label: label.into(),
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn handshake() -> Vec<TimelinePacket> {
        vec![
            pkt(0.0, "bsdi", "*", "arp who-has svr4 tell bsdi"),
            pkt(
                0.001201,
                "svr4",
                "bsdi",
                "arp reply svr4 is-at 0:0:c0:c2:9b:26",
            ),
            pkt(
                0.001843,
                "bsdi",
                "svr4",
                "S 1415531521:1415531521(0) win 4096 <mss 1024>",
            ),
            pkt(
                0.004245,
                "svr4",
                "bsdi",
                "S 1823083521:1823083521(0) ack 1415531522 win 4096 <mss 1024>",
            ),
            pkt(0.009067, "bsdi", "svr4", ". ack 1823083522 win 4096"),
            pkt(
                1.523872,
                "bsdi",
                "svr4",
                "P 1415531522:1415531523(1) ack 1823083522 win 4096",
            ),
            pkt(
                4.157284,
                "bsdi",
                "svr4",
                "F 1415531523:1415531523(0) ack 1823083522 win 4096",
            ),
            pkt(4.158590, "svr4", "bsdi", ". ack 1415531524 win 4096"),
            pkt(
                4.159987,
                "svr4",
                "bsdi",
                "F 1823083522:1823083522(0) ack 1415531524 win 4096",
            ),
            pkt(4.182505, "bsdi", "svr4", ". ack 1823083523 win 4096"),
        ]
    }

    // ---------------------------------------------------------------- time-line

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

    // ---------------------------------------------------------------- topology

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
        let long = "n".repeat(3000);
        let g = Graph {
            title: "\u{0}\u{1b}[31m".repeat(100),
            hosts: vec![
                GraphHost {
                    name: long.clone(),
                    router: true,
                },
                GraphHost {
                    name: long.clone(),
                    router: false,
                },
                GraphHost {
                    name: String::new(),
                    router: false,
                },
                GraphHost {
                    name: "漢字のホスト".into(),
                    router: false,
                },
            ],
            lans: vec![
                GraphLan {
                    name: String::new(),
                    subnet: String::new(),
                    members: vec![],
                },
                GraphLan {
                    name: long.clone(),
                    subnet: long.clone(),
                    members: vec![
                        port(&long, &long, Some(&long)),
                        port(&long, "second", None),
                        port("", "", Some("")),
                        port("漢字のホスト", "eth0", Some("::1/128")),
                        port("on-both", "e0", Some("10.0.0.1")),
                    ],
                },
                GraphLan {
                    name: "other".into(),
                    subnet: "10.9.0.0/16".into(),
                    members: vec![port("on-both", "e1", None), port("on-both", "e2", None)],
                },
                GraphLan {
                    name: "third".into(),
                    subnet: "x".into(),
                    members: vec![port("t1", "e1", None), port("on-both", "e3", None)],
                },
            ],
            links: vec![
                GraphLink {
                    name: "self".into(),
                    a: port("x", "a", None),
                    b: port("x", "b", None),
                },
                GraphLink {
                    name: "chain1".into(),
                    a: port("x", "c", None),
                    b: port("y", "d", None),
                },
                GraphLink {
                    name: "dup".into(),
                    a: port("x", "c", None),
                    b: port("y", "d", None),
                },
                GraphLink {
                    name: "to-lan".into(),
                    a: port("y", "e", None),
                    b: port("漢字のホスト", "f", None),
                },
                GraphLink {
                    name: long.clone(),
                    a: port(&long, &long, Some(&long)),
                    b: port("t1", &long, Some(&long)),
                },
                GraphLink {
                    name: "loop-on-lan".into(),
                    a: port("t1", "l", None),
                    b: port("t1", "m", None),
                },
            ],
        };
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
        let dot = topology_dot(&g);
        assert_dot_balanced(&dot);
    }

    #[test]
    fn empty_graph_is_still_a_document() {
        let svg = topology_svg(&Graph::default());
        let root = check_svg(&svg);
        assert!(root.with_class("rect", "box").is_empty());
        let dot = topology_dot(&Graph::default());
        assert_dot_balanced(&dot);
        assert!(dot.starts_with("graph "));
    }

    #[test]
    fn output_is_deterministic() {
        let g = stress(4, 6);
        assert_eq!(topology_svg(&g), topology_svg(&g));
        assert_eq!(topology_dot(&g), topology_dot(&g));
        let hosts = names(&["bsdi", "svr4"]);
        assert_eq!(
            timeline_svg("t", &hosts, &handshake()),
            timeline_svg("t", &hosts, &handshake())
        );
    }

    // ---------------------------------------------------------------- DOT

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

    // ---------------------------------------------------------------- golden files

    /// The drawings byte for byte as they were when the golden files in `testdata/` were
    /// written: a change of layout or markup shows here first. After an intended change,
    /// write them anew with `TCPLAB_BLESS=1 cargo test --lib report::svg`.
    fn same_as_golden(file: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/report/testdata")
            .join(file);
        if std::env::var_os("TCPLAB_BLESS").is_some() {
            std::fs::write(&path, got).expect("write a golden file");
            return;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if let Some(i) = want.lines().zip(got.lines()).position(|(w, g)| w != g) {
            let (w, g) = (want.lines().nth(i), got.lines().nth(i));
            panic!("{file} differs at line {}:\nwant {w:?}\ngot  {g:?}", i + 1);
        }
        assert_eq!(want, got, "{file} differs in length");
    }

    #[test]
    fn the_course_topology_is_drawn_as_before() {
        same_as_golden("course.svg", &topology_svg(&course()));
        same_as_golden("course.dot", &topology_dot(&course()));
    }

    #[test]
    fn a_larger_topology_is_drawn_as_before() {
        same_as_golden("stress-4-6.svg", &topology_svg(&stress(4, 6)));
    }

    #[test]
    fn a_handshake_time_line_is_drawn_as_before() {
        let hosts = names(&["bsdi", "svr4", "sun"]);
        same_as_golden(
            "handshake.svg",
            &timeline_svg("handshake", &hosts, &handshake()),
        );
    }

    // ---------------------------------------------------------------- helpers

    #[test]
    fn text_helpers_never_panic_and_keep_limits() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("漢字漢字", 5), "漢字…");
        assert_eq!(wrap("", 10, 3), Vec::<String>::new());
        assert_eq!(wrap("a b c", 3, 3), vec!["a b", "c"]);
        assert_eq!(wrap("abcdefgh", 3, 2), vec!["abc", "de…"]);
        let w = wrap(&"word ".repeat(1000), 20, 3);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|l| cols(l) <= 20) && w[2].ends_with('…'));
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(12.25), "12.2");
        assert_eq!(fmt_time(-0.0), "0.000000");
        assert_eq!(fmt_time(0.002345), "0.002345");
        assert_eq!(esc("<&>\"'\u{1}"), "&lt;&amp;&gt;&quot;&apos; ");
    }
}
