//! The SVG writer: a [`Canvas`] collects elements (text, lines, point lists, rectangles,
//! arrow heads) and grows to hold them; [`Canvas::finish`] wraps them into a complete
//! SVG 1.1 document. Coordinates are written with one decimal at most ([`num`]).

use super::text::{EM, FONT_FAMILY, clean, clip, esc, text_w};
use std::fmt::Write as _;

/// Room left around a drawing, and the x of its title.
pub(super) const MARGIN: f64 = 20.0;
/// Distance between two lines of a label.
pub(super) const LINE_H: f64 = 16.0;
/// Font size of a drawing's title.
const TITLE_FS: f64 = 16.0;
/// Baseline of a drawing's title.
pub(super) const TITLE_Y: f64 = 30.0;

/// A coordinate for an SVG attribute: one decimal at most, never `NaN`.
pub(super) fn num(x: f64) -> String {
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

/// Where a text's x lies: at its start, its middle or its end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// How a text is written: size, weight, slant, anchor and colour.
#[derive(Clone, Copy)]
pub(super) struct Font {
    size: f64,
    bold: bool,
    italic: bool,
    anchor: Anchor,
    fill: &'static str,
}

impl Font {
    pub(super) const fn new(size: f64) -> Self {
        Font {
            size,
            bold: false,
            italic: false,
            anchor: Anchor::Start,
            fill: "#000000",
        }
    }
    pub(super) const fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    pub(super) const fn italic(mut self) -> Self {
        self.italic = true;
        self
    }
    pub(super) const fn middle(mut self) -> Self {
        self.anchor = Anchor::Middle;
        self
    }
    pub(super) const fn end(mut self) -> Self {
        self.anchor = Anchor::End;
        self
    }
    pub(super) const fn fill(mut self, fill: &'static str) -> Self {
        self.fill = fill;
        self
    }
    /// Left and right x of `s` written at `x`.
    pub(super) fn span(&self, x: f64, s: &str) -> (f64, f64) {
        let w = text_w(s, self.size);
        match self.anchor {
            Anchor::Start => (x, x + w),
            Anchor::Middle => (x - w / 2.0, x + w / 2.0),
            Anchor::End => (x - w, x),
        }
    }
}

/// How a line is drawn: colour, width and dash pattern.
#[derive(Clone, Copy)]
pub(super) struct Pen {
    color: &'static str,
    width: f64,
    dash: Option<&'static str>,
}

/// A solid pen.
pub(super) const fn pen(color: &'static str, width: f64) -> Pen {
    Pen {
        color,
        width,
        dash: None,
    }
}

impl Pen {
    /// The same pen drawing dashes, `dash` being an SVG `stroke-dasharray` such as `"6 4"`.
    pub(super) const fn dashed(mut self, dash: &'static str) -> Self {
        self.dash = Some(dash);
        self
    }
}

/// A point (x, y).
pub(super) type Pt = (f64, f64);

/// An SVG body under construction, tracking how far right and down it reaches.
pub(super) struct Canvas {
    body: String,
    max_x: f64,
    max_y: f64,
}

impl Canvas {
    /// An empty canvas.
    pub(super) fn new() -> Self {
        Canvas {
            body: String::new(),
            max_x: 0.0,
            max_y: 0.0,
        }
    }

    /// Grow the canvas to reach `(x, y)`.
    pub(super) fn grow(&mut self, x: f64, y: f64) {
        if x.is_finite() && x > self.max_x {
            self.max_x = x;
        }
        if y.is_finite() && y > self.max_y {
            self.max_y = y;
        }
    }

    /// Open a group `<g class="…" id="…">`, with a tooltip `<title>` when `title` is given;
    /// [`Canvas::end_group`] closes it.
    pub(super) fn group(&mut self, class: &str, id: Option<&str>, title: Option<&str>) {
        let _ = write!(self.body, "<g class=\"{class}\"");
        if let Some(id) = id {
            let _ = write!(self.body, " id=\"{id}\"");
        }
        self.body.push('>');
        match title {
            Some(t) => self.tooltip(t),
            None => self.body.push('\n'),
        }
    }

    /// Close the group opened last.
    pub(super) fn end_group(&mut self) {
        self.body.push_str("</g>\n");
    }

    /// A tooltip `<title>` for the group it is in (`title` is escaped here).
    pub(super) fn tooltip(&mut self, title: &str) {
        let _ = writeln!(self.body, "<title>{}</title>", esc(title));
    }

    /// A filled dot of radius `r` at `at` (it does not grow the canvas: it sits on a line).
    pub(super) fn dot(&mut self, at: Pt, r: &str, fill: &str) {
        let _ = writeln!(
            self.body,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{r}\" fill=\"{fill}\"/>",
            num(at.0),
            num(at.1)
        );
    }

    /// A text at `(x, y)` (its baseline); nothing for blank text.
    pub(super) fn text(&mut self, x: f64, y: f64, f: Font, s: &str) {
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
    pub(super) fn text_bg(&mut self, x: f64, y: f64, f: Font, s: &str) {
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

    /// A straight line from `a` to `b`.
    pub(super) fn line(&mut self, a: Pt, b: Pt, p: Pen) {
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

    /// An open line through `pts`.
    pub(super) fn polyline(&mut self, pts: &[Pt], p: Pen) {
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
    pub(super) fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str) {
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
    pub(super) fn head(&mut self, tip: Pt, dir: Pt) {
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
    pub(super) fn finish(self, title: &str) -> String {
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
    pub(super) fn title(&mut self, title: &str) {
        let room = ((self.max_x - MARGIN) / (TITLE_FS * EM)).clamp(60.0, 120.0) as usize;
        let t = clip(&clean(title), room);
        self.text(MARGIN, TITLE_Y, Font::new(TITLE_FS).bold(), &t);
    }
}

/// Unit vector from `a` to `b` (pointing right when they coincide).
pub(super) fn unit(a: Pt, b: Pt) -> Pt {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let l = dx.hypot(dy);
    if l < 1e-9 {
        (1.0, 0.0)
    } else {
        (dx / l, dy / l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_have_one_decimal_and_are_never_nan() {
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(f64::INFINITY), "0");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(12.25), "12.2");
        assert_eq!(num(3.0), "3");
    }

    #[test]
    fn the_canvas_grows_to_hold_what_is_drawn() {
        let mut c = Canvas::new();
        c.group("host", Some("host-1"), Some("a<b"));
        c.line(
            (10.0, 20.0),
            (300.0, 40.0),
            pen("#000000", 1.5).dashed("5 4"),
        );
        c.dot((5.0, 5.0), "3.5", "#333333");
        c.end_group();
        let s = c.finish("t");
        assert!(s.contains("width=\"320\" height=\"60\""), "{s}");
        assert!(s.contains("<g class=\"host\" id=\"host-1\"><title>a&lt;b</title>\n<line "));
        assert!(s.contains(" stroke-dasharray=\"5 4\"/>\n<circle cx=\"5\" cy=\"5\" r=\"3.5\""));
        assert!(s.ends_with("</g>\n</svg>\n"));
    }
}
