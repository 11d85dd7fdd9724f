//! The time-sequence graph of a TCP bulk transfer (the "Stevens graph" of tcptrace and
//! Wireshark): time to the right, relative sequence number up; each data segment a short
//! vertical bar from its first byte to its last, retransmissions in red; the receiver's
//! ACKs as a green step line and the right edge of its advertised window as an orange one.
//! Slow start shows as bursts that grow, the window limit as data running into the orange
//! line, a retransmission as a red bar with a gap before it (growing gaps for a backoff),
//! fast retransmit as a red bar after a flat ACK line dotted with duplicate ACKs.

use super::canvas::{Canvas, Font, MARGIN, Pen, Pt, pen};
use super::seqdata::{MAX_DRAWN, SeqSeries};
use super::text::text_w;

const PLOT_W: f64 = 720.0;
const PLOT_H: f64 = 420.0;
const PLOT_TOP: f64 = 70.0;
const TICK_FS: f64 = 12.0;
const AXIS_FS: f64 = 12.0;
const LEGEND_FS: f64 = 12.0;
/// Half the width of the ticks at the ends of a segment's bar, and its least height (a
/// segment is often less than a pixel of the sequence axis); the same for retransmissions,
/// drawn larger to be seen at a glance.
const BAR_HALF: f64 = 2.5;
const BAR_MIN_H: f64 = 3.0;
const RE_HALF: f64 = 4.5;
const RE_MIN_H: f64 = 10.0;
/// Retransmission times listed in the legend at most.
const LISTED_RETRANS: usize = 8;

const DATA: &str = "#1f4e9c";
const RETRANS: &str = "#d62728";
const ACK: &str = "#2ca02c";
const WINDOW: &str = "#e69500";
const GRID: Pen = pen("#e4e4e4", 1.0);
const AXIS: Pen = pen("#000000", 1.2);

/// The time-sequence graph of `s` as an SVG document titled `title`.
#[must_use]
pub(super) fn seq_graph_svg(title: &str, s: &SeqSeries) -> String {
    let plot = Plot::new(s);
    let mut c = Canvas::new();
    plot.draw_axes(&mut c);
    plot.draw_window_and_acks(&mut c, s);
    plot.draw_data(&mut c, s);
    plot.draw_legend(&mut c, s);
    c.title(title);
    c.finish(title)
}

/// Where the plot lies and how values map onto it.
struct Plot {
    left: f64,
    t_max: f64,
    y_max: f64,
    /// The window edge goes above the plot (clipped at its top).
    window_clipped: Option<u64>,
    x_step: f64,
    y_step: f64,
}

impl Plot {
    fn new(s: &SeqSeries) -> Self {
        let data_top = s.data.iter().map(|d| d.end).max().unwrap_or(0);
        let ack_top = s.acks.iter().map(|a| a.ack).max().unwrap_or(0);
        let edge_top = s.acks.iter().map(|a| a.edge).max().unwrap_or(0);
        let base_top = data_top.max(ack_top).max(1);
        // A window far above the data would squash it: clip the window line instead.
        let limit = base_top + base_top / 4;
        let (y_top, window_clipped) = if edge_top > limit {
            (limit, Some(edge_top))
        } else {
            (base_top.max(edge_top), None)
        };
        let t_top = s.t_end.max(s.data.iter().map(|d| d.t).fold(0.0, f64::max));
        let t_top = if t_top.is_finite() && t_top > 0.0 {
            t_top
        } else {
            1e-3
        };
        let x_step = nice_step(t_top, 8.0);
        let y_step = nice_step(y_top as f64, 8.0);
        let y_max = (y_top as f64 / y_step).ceil() * y_step;
        let widest = text_w(&fmt_num(y_max, y_step), TICK_FS);
        Plot {
            left: MARGIN + widest.max(text_w("bytes", AXIS_FS)) + 14.0,
            t_max: (t_top / x_step).ceil() * x_step,
            y_max,
            window_clipped,
            x_step,
            y_step,
        }
    }

    fn x(&self, t: f64) -> f64 {
        self.left + t.clamp(0.0, self.t_max) / self.t_max * PLOT_W
    }

    fn y(&self, v: u64) -> f64 {
        PLOT_TOP + PLOT_H - (v as f64).min(self.y_max) / self.y_max * PLOT_H
    }

    fn bottom(&self) -> f64 {
        PLOT_TOP + PLOT_H
    }

    /// Frame, grid, ticks with their numbers, and the units.
    fn draw_axes(&self, c: &mut Canvas) {
        c.group("axis", None, None);
        let (l, r, b) = (self.left, self.left + PLOT_W, self.bottom());
        let tick = Font::new(TICK_FS);
        for k in 0..=((self.t_max / self.x_step).round() as usize) {
            let t = k as f64 * self.x_step;
            let x = self.x(t);
            if k > 0 {
                c.line((x, PLOT_TOP), (x, b), GRID);
            }
            c.line((x, b), (x, b + 5.0), AXIS);
            c.text(x, b + 18.0, tick.middle(), &fmt_num(t, self.x_step));
        }
        for k in 0..=((self.y_max / self.y_step).round() as usize) {
            let v = k as f64 * self.y_step;
            let y = PLOT_TOP + PLOT_H - v / self.y_max * PLOT_H;
            if k > 0 {
                c.line((l, y), (r, y), GRID);
            }
            c.line((l - 5.0, y), (l, y), AXIS);
            c.text(l - 8.0, y + 4.0, tick.end(), &fmt_num(v, self.y_step));
        }
        c.polyline(&[(l, PLOT_TOP), (l, b), (r, b)], AXIS);
        let unit = Font::new(AXIS_FS).bold();
        c.text(l - 8.0, PLOT_TOP - 12.0, unit.end(), "bytes");
        let rel = "relative sequence number";
        c.text(l + 4.0, PLOT_TOP - 12.0, Font::new(AXIS_FS), rel);
        let time = "time since the connection's first segment (s)";
        c.text(l + PLOT_W / 2.0, b + 38.0, unit.middle(), time);
        c.end_group();
    }

    /// The window edge and the ACK line as steps, duplicate ACKs as dots on the ACK line.
    fn draw_window_and_acks(&self, c: &mut Canvas, s: &SeqSeries) {
        if s.acks.is_empty() {
            return;
        }
        let end_x = self.x(s.t_end);
        let steps = |value: &dyn Fn(usize) -> u64| {
            let mut pts: Vec<Pt> = Vec::with_capacity(2 * s.acks.len() + 1);
            for (i, a) in s.acks.iter().enumerate() {
                let (x, y) = (self.x(a.t), self.y(value(i)));
                if let Some(&(_, py)) = pts.last() {
                    if (py - y).abs() < 0.05 {
                        continue;
                    }
                    pts.push((x, py));
                }
                pts.push((x, y));
            }
            if let Some(&(_, py)) = pts.last() {
                pts.push((end_x, py));
            }
            pts
        };
        c.group(
            "window",
            None,
            Some("right edge of the advertised window (ack + win)"),
        );
        c.polyline(&steps(&|i| s.acks[i].edge), pen(WINDOW, 1.4));
        c.end_group();
        c.group("acks", None, Some("acknowledged: next byte expected"));
        c.polyline(&steps(&|i| s.acks[i].ack), pen(ACK, 1.4));
        c.end_group();
        let dups: Vec<_> = s.acks.iter().filter(|a| a.dup).collect();
        if !dups.is_empty() {
            c.group("dup-acks", None, Some("duplicate ACKs"));
            for a in dups {
                c.dot((self.x(a.t), self.y(a.ack)), "2.6", ACK);
            }
            c.end_group();
        }
    }

    /// Each data segment as a bar with short ticks at its ends; retransmissions in red,
    /// each in a group of its own with a tooltip.
    fn draw_data(&self, c: &mut Canvas, s: &SeqSeries) {
        let bar =
            |c: &mut Canvas, d: &super::seqdata::DataSeg, p: Pen, (half, min_h): (f64, f64)| {
                let (x, y0, y1) = (self.x(d.t), self.y(d.start), self.y(d.end));
                let grow = ((min_h - (y0 - y1)) / 2.0).max(0.0);
                let (y0, y1) = (y0 + grow, y1 - grow);
                let pts = [
                    (x - half, y0),
                    (x + half, y0),
                    (x, y0),
                    (x, y1),
                    (x - half, y1),
                    (x + half, y1),
                ];
                c.polyline(&pts, p);
            };
        c.group("data", None, None);
        for d in s.data.iter().filter(|d| !d.retrans) {
            bar(c, d, pen(DATA, 1.2), (BAR_HALF, BAR_MIN_H));
        }
        c.end_group();
        for d in s.data.iter().filter(|d| d.retrans) {
            let tip = format!(
                "retransmission {}:{}({}) at {:.6} s",
                d.start,
                d.end,
                d.end - d.start,
                d.t
            );
            c.group("retransmission", None, Some(&tip));
            bar(c, d, pen(RETRANS, 2.2), (RE_HALF, RE_MIN_H));
            c.end_group();
        }
    }

    /// What each colour means, with counts; the retransmissions' times; notes on capping
    /// and clipping.
    fn draw_legend(&self, c: &mut Canvas, s: &SeqSeries) {
        c.group("legend", None, None);
        let f = Font::new(LEGEND_FS);
        let x = self.left;
        let mut y = self.bottom() + 68.0;
        let mut row = |c: &mut Canvas, swatch: &dyn Fn(&mut Canvas, f64), text: &str| {
            swatch(c, y - 4.0);
            c.text(x + 34.0, y, f, text);
            y += 19.0;
        };
        let bytes: u64 = s.data.iter().map(|d| d.end - d.start).sum();
        let re = s.retransmissions();
        let vbar = |color: &'static str| {
            move |c: &mut Canvas, yy: f64| {
                c.line((x + 12.0, yy - 7.0), (x + 12.0, yy + 7.0), pen(color, 2.0))
            }
        };
        let text = format!(
            "data segment from {} ({} drawn, {bytes} bytes)",
            s.sender,
            s.data.len()
        );
        row(c, &vbar(DATA), &text);
        row(c, &vbar(RETRANS), &retrans_text(s, &re));
        let hline = |color: &'static str| {
            move |c: &mut Canvas, yy: f64| c.line((x, yy), (x + 24.0, yy), pen(color, 1.6))
        };
        let acks = format!("ACK from {}: next byte expected", s.receiver);
        row(c, &hline(ACK), &acks);
        let scaled = match s.shift {
            0 => String::new(),
            k => format!(", win scaled by 2^{k}"),
        };
        let win = format!("advertised window of {}: ack + win{scaled}", s.receiver);
        row(c, &hline(WINDOW), &win);
        let dups = s.acks.iter().filter(|a| a.dup).count();
        let dot = |c: &mut Canvas, yy: f64| c.dot((x + 12.0, yy), "2.6", ACK);
        row(c, &dot, &format!("duplicate ACK ({dups})"));
        let grey = Font::new(LEGEND_FS).italic().fill("#555555");
        if s.total_data > s.data.len() {
            let note = format!(
                "only the first {} of {} data segments are drawn (up to {:.3} s)",
                s.data.len().min(MAX_DRAWN),
                s.total_data,
                s.t_end
            );
            c.text(x, y, grey, &note);
            y += 19.0;
        }
        if let Some(top) = self.window_clipped {
            let note = format!("the window edge reaches {top} bytes, above the graph: clipped");
            c.text(x, y, grey, &note);
        }
        c.end_group();
    }
}

/// The legend's line on retransmissions: how many, and when (the first few).
fn retrans_text(s: &SeqSeries, re: &[usize]) -> String {
    if re.is_empty() {
        return "retransmission (none)".to_string();
    }
    let mut times: Vec<String> = re
        .iter()
        .take(LISTED_RETRANS)
        .map(|&i| format!("{:.3}", s.data[i].t))
        .collect();
    if re.len() > LISTED_RETRANS {
        times.push("…".into());
    }
    format!("retransmission ({}) at {} s", re.len(), times.join(", "))
}

/// A round step (1, 2 or 5 times a power of ten) cutting `range` into about `parts`.
fn nice_step(range: f64, parts: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / parts;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let k = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    k * p
}

/// A tick's number with as many decimals as its step needs.
fn fmt_num(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::seqdata::bulk_series;
    use crate::report::tcpconn::Conns;
    use crate::report::test_frames::*;
    use crate::report::test_support::{assert_no_overlap, check_svg};

    fn graph_of(segments: usize) -> String {
        let packets = decode_all(&bulk_frames(segments));
        let caps = captured(&packets, 0.001);
        let series = bulk_series(&caps, &Conns::new(&caps), &lab_names());
        seq_graph_svg("bulk <&>", &series[0])
    }

    #[test]
    fn the_graph_marks_the_retransmission_and_has_axes() {
        let svg = graph_of(12);
        let root = check_svg(&svg);
        assert!(svg.contains("<title>bulk &lt;&amp;&gt;</title>"));
        assert_eq!(root.with_class("g", "axis").len(), 1);
        let re = root.with_class("g", "retransmission");
        assert_eq!(re.len(), 1);
        assert_eq!(
            re[0].kids[0].text,
            "retransmission 3073:4097(1024) at 0.015000 s"
        );
        let data = root.with_class("g", "data");
        assert_eq!(data[0].find("polyline").len(), 12);
        assert_eq!(root.with_class("g", "dup-acks")[0].find("circle").len(), 3);
        let texts: Vec<String> = root.find("text").iter().map(|t| t.text.clone()).collect();
        for want in [
            "bytes",
            "time since the connection's first segment (s)",
            "0",
            "0.000",
        ] {
            assert!(
                texts.iter().any(|t| t == want),
                "{want} not drawn in {texts:?}"
            );
        }
        assert!(
            texts.iter().any(|t| t == "retransmission (1) at 0.015 s"),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains("scaled by 2^2")));
        assert_no_overlap(&root);
    }

    #[test]
    fn a_capped_graph_says_so_and_stays_bounded() {
        let svg = graph_of(MAX_DRAWN + 10);
        check_svg(&svg);
        assert!(svg.contains(&format!(
            "only the first {MAX_DRAWN} of {} data",
            MAX_DRAWN + 11
        )));
        assert!(svg.len() < 1_000_000, "{} bytes", svg.len());
    }

    #[test]
    fn steps_and_numbers_are_round() {
        assert_eq!(nice_step(200_000.0, 8.0), 50_000.0);
        assert_eq!(nice_step(0.0123, 8.0), 0.002);
        assert_eq!(nice_step(0.0, 8.0), 1.0);
        assert_eq!(fmt_num(0.004, 0.002), "0.004");
        assert_eq!(fmt_num(150_000.0, 50_000.0), "150000");
    }
}
