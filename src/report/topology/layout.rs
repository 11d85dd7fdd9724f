//! The complete layout of a topology drawing: [`Layout::new`] runs the steps (rows, box sizes,
//! x, line paths), then stacks rows and buses top to bottom to give every y.

use super::model::Topo;
use super::place::{self, Boxes};
use super::route::{LinkKind, Routes};
use super::rows::{LOWER, RowKey, Rows};
use super::{LAN_FS, PORT_LH, TRACK};
use crate::report::canvas::{LINE_H, TITLE_Y};
use crate::report::text::text_w;
use std::collections::BTreeMap;

/// Where everything of a topology drawing goes.
pub(super) struct Layout {
    /// Each host's row.
    pub(super) row: Vec<RowKey>,
    /// x of each host's centre.
    pub(super) x: Vec<f64>,
    /// Width of each host's box.
    pub(super) bw: Vec<f64>,
    /// Height of each host's box.
    pub(super) bh: Vec<f64>,
    /// y of the top of each host's box.
    pub(super) by: Vec<f64>,
    /// Top and height of each row.
    rows: BTreeMap<RowKey, (f64, f64)>,
    /// y of each LAN's bus.
    pub(super) bus_y: Vec<f64>,
    /// Left and right end of each LAN's bus.
    pub(super) bus_x: Vec<(f64, f64)>,
    /// How each link is drawn.
    pub(super) kinds: Vec<LinkKind>,
    /// x of the legs of a bracket or routed link, at end a and end b.
    pub(super) legs: Vec<(f64, f64)>,
    /// y below the lowest row.
    pub(super) bottom: f64,
}

impl Layout {
    /// The layout of `t`.
    pub(super) fn new(t: &Topo) -> Self {
        let rows = Rows::new(t);
        let boxes = Boxes::new(t, &rows);
        let x = place::host_x(t, &rows, &boxes);
        let (in_row, rank) = place::rows_left_to_right(&rows.row, &x);
        let mut routes = Routes::new(t, &rows, &x, &boxes.w, &rank);
        let bus_x = place::bus_extents(t, &x, &boxes.w);
        // Routed lines go down a channel of their own, right of everything else.
        let right = right_edge(t, &x, &boxes.ext, &bus_x, routes.track_right);
        routes.set_channels(right + 30.0);
        let stack = Stack {
            t,
            rows: &rows,
            in_row: &in_row,
            bh: &boxes.h,
            routes: &routes,
            y: TITLE_Y + 34.0,
            tops: BTreeMap::new(),
        };
        let (tops, bus_y_at, bottom) = stack.stack();
        let loose_row = rows.loose_row();
        let by: Vec<f64> = (0..t.hosts.len())
            .map(|h| {
                let (top, rh) = tops.get(&rows.row[h]).copied().unwrap_or((0.0, 0.0));
                if rows.row[h].1 == LOWER && rows.row[h] != loose_row {
                    top + rh - boxes.h[h]
                } else {
                    top
                }
            })
            .collect();
        let bus_y: Vec<f64> = (0..t.lans.len()).map(|l| bus_y_at[rows.pos[l]]).collect();
        Layout {
            row: rows.row,
            x,
            bw: boxes.w,
            bh: boxes.h,
            by,
            rows: tops,
            bus_y,
            bus_x,
            kinds: routes.kinds,
            legs: routes.legs,
            bottom,
        }
    }

    /// The y of track `track` beside row `r` (above or below it).
    pub(super) fn track_y(&self, r: RowKey, above: bool, track: usize) -> f64 {
        let (top, rh) = self.rows.get(&r).copied().unwrap_or((0.0, 0.0));
        let off = (track + 1) as f64 * TRACK;
        if above { top - off } else { top + rh + off }
    }

    /// The y where a leg leaves box `h`: its top edge when going up, else its bottom edge.
    pub(super) fn box_edge(&self, h: usize, above: bool) -> f64 {
        if above {
            self.by[h]
        } else {
            self.by[h] + self.bh[h]
        }
    }
}

/// Right end of everything but the channels: tracks (from `track_right`), hosts with their
/// labels, buses with theirs.
fn right_edge(
    t: &Topo,
    x: &[f64],
    ext: &[(f64, f64)],
    bus_x: &[(f64, f64)],
    track_right: f64,
) -> f64 {
    let mut right = track_right;
    for h in 0..t.hosts.len() {
        right = right.max(x[h] + ext[h].1);
    }
    for (l, &(_, x1)) in t.lans.iter().zip(bus_x) {
        let label = text_w(&l.name, LAN_FS) + 8.0 + text_w(&l.subnet, LAN_FS);
        right = right.max(x1 + 10.0 + label);
    }
    right
}

/// Room between a bus and the boxes next to it, for drop lines with `lines` label lines.
fn drop_space(lines: usize) -> f64 {
    lines.max(1) as f64 * PORT_LH + 30.0
}

/// Rows and buses stacked top to bottom, tier by tier, buses between tiers.
struct Stack<'a> {
    t: &'a Topo,
    rows: &'a Rows,
    in_row: &'a BTreeMap<RowKey, Vec<usize>>,
    bh: &'a [f64],
    routes: &'a Routes,
    /// The y reached.
    y: f64,
    /// Top and height of each row placed.
    tops: BTreeMap<RowKey, (f64, f64)>,
}

impl Stack<'_> {
    /// Top and height of each row, y of each bus by its place top to bottom, and the bottom.
    fn stack(mut self) -> (BTreeMap<RowKey, (f64, f64)>, Vec<f64>, f64) {
        let nl = self.t.lans.len();
        let (lines_above, lines_below) = self.drop_label_lines();
        let mut bus_y = vec![0.0; nl];
        for tier in 0..=nl {
            let tier_rows: Vec<RowKey> = self
                .rows
                .list
                .iter()
                .copied()
                .filter(|r| r.0 == tier)
                .collect();
            if tier > 0 {
                bus_y[tier - 1] = self.y;
                self.y += if !tier_rows.is_empty() {
                    drop_space(lines_below[tier - 1])
                } else if tier < nl {
                    60.0
                } else {
                    10.0
                };
            } else if tier_rows.is_empty() && nl > 0 {
                self.y += 10.0;
            }
            self.place_rows(&tier_rows);
            if tier < nl && !tier_rows.is_empty() {
                self.y += drop_space(lines_above[tier]);
            }
        }
        let loose_row = self.rows.loose_row();
        if self.in_row.contains_key(&loose_row) {
            self.y += if nl > 0 { 50.0 } else { 0.0 };
            self.place_rows(&[loose_row]);
        }
        (self.tops, bus_y, self.y)
    }

    /// Most label lines on the drop lines above and below each bus (by its place).
    fn drop_label_lines(&self) -> (Vec<usize>, Vec<usize>) {
        let (t, rows) = (self.t, self.rows);
        let mut above = vec![0usize; t.lans.len()];
        let mut below = vec![0usize; t.lans.len()];
        for (lan, l) in t.lans.iter().enumerate() {
            let k = rows.pos[lan];
            for &(h, _) in &l.members {
                let c = t.drop_lines(h, lan).len();
                if rows.row[h].0 <= k {
                    above[k] = above[k].max(c);
                } else {
                    below[k] = below[k].max(c);
                }
            }
        }
        (above, below)
    }

    /// Place the rows of one tier, each with its tracks above and below it.
    fn place_rows(&mut self, tier_rows: &[RowKey]) {
        for (i, &r) in tier_rows.iter().enumerate() {
            if i > 0 {
                self.y += self.between(tier_rows[i - 1], r);
            }
            self.y += self.track_room(r, true);
            let h = self.row_height(r);
            self.tops.insert(r, (self.y, h));
            self.y += h + self.track_room(r, false);
        }
    }

    /// Height of the tallest box of row `r`.
    fn row_height(&self, r: RowKey) -> f64 {
        self.in_row
            .get(&r)
            .map_or(0.0, |hs| hs.iter().map(|&h| self.bh[h]).fold(0.0, f64::max))
    }

    /// Room between rows `r1` and `r2` of one tier: at least 40, more for the labels of lines
    /// drawn straight down between them.
    fn between(&self, r1: RowKey, r2: RowKey) -> f64 {
        let row = &self.rows.row;
        self.t
            .links
            .iter()
            .zip(&self.routes.kinds)
            .filter(|(l, k)| {
                **k == LinkKind::Vertical
                    && ((row[l.a] == r1 && row[l.b] == r2) || (row[l.a] == r2 && row[l.b] == r1))
            })
            .map(|(l, _)| (l.pa.lines().len() + l.pb.lines().len() + 1) as f64 * LINE_H + 28.0)
            .fold(40.0, f64::max)
    }

    /// Room for the tracks beside row `r`, above or below it.
    fn track_room(&self, r: RowKey, above: bool) -> f64 {
        let c = self.routes.tracks.get(&(r, above)).copied().unwrap_or(0);
        if c == 0 { 0.0 } else { c as f64 * TRACK + 6.0 }
    }
}
