//! Box sizes and horizontal placement: each host's x, bus by bus, each bus's hosts in member
//! order; hosts on no LAN beside their neighbour; the hosts of the loose row left to right.

use super::model::Topo;
use super::rows::{RowKey, Rows};
use super::{ADDR_FS, HOST_FS, PORT_FS, UNIT_GAP};
use crate::report::canvas::MARGIN;
use crate::report::text::{lines_w, text_w};
use std::collections::BTreeMap;

/// The size of each host's box, and the room each host takes with its neighbours.
pub(super) struct Boxes {
    /// Width of each box.
    pub(super) w: Vec<f64>,
    /// Height of each box.
    pub(super) h: Vec<f64>,
    /// Room taken left and right of each host's centre, with the hosts beside it and the
    /// labels on its right.
    pub(super) ext: Vec<(f64, f64)>,
}

impl Boxes {
    /// Boxes big enough for name and addresses; extents with the hosts beside them.
    pub(super) fn new(t: &Topo, rows: &Rows) -> Self {
        let n = t.hosts.len();
        let mut w = vec![0.0; n];
        let mut h = vec![0.0; n];
        for i in 0..n {
            let lines = t.addr_lines(i);
            w[i] =
                (text_w(&t.hosts[i].name, HOST_FS).max(lines_w(&lines, ADDR_FS)) + 20.0).max(60.0);
            h[i] = 30.0 + 15.0 * lines.len() as f64;
        }
        let ext = (0..n)
            .map(|i| {
                let (mut l, mut r) = (w[i] / 2.0, w[i] / 2.0);
                let mut prev = i;
                for &c in &rows.left[i] {
                    l += gap(t, prev, c) + w[c];
                    prev = c;
                }
                prev = i;
                for &c in &rows.right[i] {
                    r += gap(t, prev, c) + w[c];
                    prev = c;
                }
                (l, r.max(drop_room(t, i)).max(line_room(t, rows, i)))
            })
            .collect();
        Boxes { w, h, ext }
    }
}

/// Room right of host `h`'s centre for the labels of its drop lines.
fn drop_room(t: &Topo, h: usize) -> f64 {
    t.hosts[h]
        .lans
        .iter()
        .map(|&l| 8.0 + lines_w(&t.drop_lines(h, l), PORT_FS))
        .fold(0.0, f64::max)
}

/// Room right of host `h`'s centre for the labels of lines drawn straight down or up to a
/// host on a LAN.
fn line_room(t: &Topo, rows: &Rows, h: usize) -> f64 {
    t.hosts[h]
        .links
        .iter()
        .filter(|&&li| {
            let q = t.links[li].other(h);
            q != h && rows.on_lan[q]
        })
        .map(|&li| {
            let l = &t.links[li];
            8.0 + lines_w(&l.pa.lines(), PORT_FS)
                .max(lines_w(&l.pb.lines(), PORT_FS))
                .max(text_w(&l.name, PORT_FS))
        })
        .fold(0.0, f64::max)
}

/// Room between the boxes of hosts `a` and `b` side by side: a line's labels when one joins
/// them.
fn gap(t: &Topo, a: usize, b: usize) -> f64 {
    t.link_between(a, b).map_or(UNIT_GAP, |k| t.link_gap(k))
}

/// The x of every host's centre.
pub(super) fn host_x(t: &Topo, rows: &Rows, boxes: &Boxes) -> Vec<f64> {
    let n = t.hosts.len();
    let mut p = Placer {
        t,
        rows,
        boxes,
        x: vec![0.0; n],
        has_x: vec![false; n],
    };
    for &lan in &rows.order {
        p.place_bus(lan);
    }
    p.place_loose();
    p.x
}

/// An anchor of a bus: a host whose x is known (fixed) or wished (standing under the peer of
/// its point-to-point line): (x, member index, host, fixed).
type Anchor = (f64, usize, usize, bool);

/// Horizontal placement under way.
struct Placer<'a> {
    t: &'a Topo,
    rows: &'a Rows,
    boxes: &'a Boxes,
    x: Vec<f64>,
    has_x: Vec<bool>,
}

impl<'a> Placer<'a> {
    /// Width a host takes with its neighbours, and the gap after it.
    fn width(&self, h: usize) -> f64 {
        self.boxes.ext[h].0 + self.boxes.ext[h].1 + UNIT_GAP
    }

    /// Place the hosts of bus `lan` not placed yet: between the anchors in member order, the
    /// rest after the last anchor.
    fn place_bus(&mut self, lan: usize) {
        let (anchors, free) = self.anchors(lan);
        let boxes: &'a Boxes = self.boxes;
        let ext = &boxes.ext;
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
            let ax = if fixed {
                (block, pending) = self.fit(block, ax0 - al - cursor);
                ax0
            } else {
                let total: f64 = block.iter().map(|&b| self.width(b)).sum();
                ax0.max(cursor + total + al)
            };
            self.place_leftward(ax - al - UNIT_GAP, &block);
            if !fixed {
                self.place_at(h, ax);
            }
            cursor = cursor.max(ax + ar + UNIT_GAP);
        }
        let rest: Vec<usize> = pending
            .into_iter()
            .chain(free[fi..].iter().map(|f| f.1))
            .collect();
        for b in rest {
            let x = cursor + self.boxes.ext[b].0;
            self.place_at(b, x);
            cursor = x + self.boxes.ext[b].1 + UNIT_GAP;
        }
    }

    /// The anchors of bus `lan` sorted by x, and its other unplaced members
    /// (member index, host).
    fn anchors(&self, lan: usize) -> (Vec<Anchor>, Vec<(usize, usize)>) {
        let (t, rows) = (self.t, self.rows);
        let mut anchors: Vec<Anchor> = Vec::new();
        let mut free: Vec<(usize, usize)> = Vec::new();
        for (mi, &(h, _)) in t.lans[lan].members.iter().enumerate() {
            if self.has_x[h] {
                anchors.push((self.x[h], mi, h, true));
                continue;
            }
            let soft = t.hosts[h].links.iter().find_map(|&li| {
                let q = t.links[li].other(h);
                let under = rows.on_lan[q] && rows.consecutive(rows.row[q], rows.row[h]);
                (q != h && self.has_x[q] && under).then_some(self.x[q])
            });
            match soft {
                Some(sx) => anchors.push((sx, mi, h, false)),
                None => free.push((mi, h)),
            }
        }
        anchors.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        (anchors, free)
    }

    /// The first hosts of `block` that fit in `room`, and the others (which wait for the
    /// next gap).
    fn fit(&self, block: Vec<usize>, room: f64) -> (Vec<usize>, Vec<usize>) {
        let mut used = 0.0;
        let (mut keep, mut wait) = (Vec::new(), Vec::new());
        for b in block {
            if wait.is_empty() && used + self.width(b) <= room + 1e-6 {
                used += self.width(b);
                keep.push(b);
            } else {
                wait.push(b);
            }
        }
        (keep, wait)
    }

    /// Place `block` right to left, its last host's room ending at `edge`.
    fn place_leftward(&mut self, mut edge: f64, block: &[usize]) {
        for &b in block.iter().rev() {
            let x = edge - self.boxes.ext[b].1;
            self.place_at(b, x);
            edge = x - self.boxes.ext[b].0 - UNIT_GAP;
        }
    }

    /// Put host `h` at `x`, and the hosts beside it next to it.
    fn place_at(&mut self, h: usize, x: f64) {
        self.x[h] = x;
        self.has_x[h] = true;
        let (t, w) = (self.t, &self.boxes.w);
        let mut edge = x - w[h] / 2.0;
        let mut prev = h;
        for &c in &self.rows.left[h] {
            edge -= gap(t, prev, c);
            self.x[c] = edge - w[c] / 2.0;
            edge -= w[c];
            prev = c;
        }
        let mut edge = x + w[h] / 2.0;
        prev = h;
        for &c in &self.rows.right[h] {
            edge += gap(t, prev, c);
            self.x[c] = edge + w[c] / 2.0;
            edge += w[c];
            prev = c;
        }
    }

    /// The hosts of the loose row, left to right.
    fn place_loose(&mut self) {
        let (t, w, loose) = (self.t, &self.boxes.w, &self.rows.loose);
        let mut cursor = MARGIN;
        for (i, &h) in loose.iter().enumerate() {
            self.x[h] = cursor + w[h] / 2.0;
            let next_gap = loose.get(i + 1).map_or(UNIT_GAP, |&nx| gap(t, h, nx));
            cursor = self.x[h] + w[h] / 2.0 + next_gap;
        }
    }
}

/// Each row's hosts from left to right, and each host's place in its row.
pub(super) fn rows_left_to_right(
    row: &[RowKey],
    x: &[f64],
) -> (BTreeMap<RowKey, Vec<usize>>, Vec<usize>) {
    let mut in_row: BTreeMap<RowKey, Vec<usize>> = BTreeMap::new();
    for (h, &r) in row.iter().enumerate() {
        in_row.entry(r).or_default().push(h);
    }
    let mut rank = vec![0usize; row.len()];
    for hs in in_row.values_mut() {
        hs.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(a.cmp(&b)));
        for (i, &h) in hs.iter().enumerate() {
            rank[h] = i;
        }
    }
    (in_row, rank)
}

/// Left and right end of each LAN's bus: a little beyond its outermost boxes, at least 120
/// long.
pub(super) fn bus_extents(t: &Topo, x: &[f64], w: &[f64]) -> Vec<(f64, f64)> {
    t.lans
        .iter()
        .map(|l| {
            let lo = l
                .members
                .iter()
                .map(|&(h, _)| x[h] - w[h] / 2.0)
                .fold(f64::INFINITY, f64::min);
            let hi = l
                .members
                .iter()
                .map(|&(h, _)| x[h] + w[h] / 2.0)
                .fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() && hi.is_finite() {
                let (lo, hi) = ((lo - 12.0).max(MARGIN / 2.0), hi + 12.0);
                (lo, hi.max(lo + 120.0))
            } else {
                (MARGIN, MARGIN + 200.0)
            }
        })
        .collect()
}
