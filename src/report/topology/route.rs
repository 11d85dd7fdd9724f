//! How each point-to-point line is drawn ([`LinkKind`]): between neighbouring boxes, straight
//! down, around its row on a track of its own, or along tracks to a channel right of the
//! drawing. Tracks are shared out so that lines on one track do not meet.

use super::PORT_FS;
use super::model::Topo;
use super::rows::{LOWER, RowKey, Rows};
use crate::report::canvas::Font;
use std::collections::{BTreeMap, BTreeSet};

/// How a point-to-point line is drawn.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum LinkKind {
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

/// A request for room on a track: left and right x, link index, end (0 = a, 1 = b).
type TrackWant = (f64, f64, usize, usize);
/// The track requests beside each row, by (row, above).
type TrackWants = BTreeMap<(RowKey, bool), Vec<TrackWant>>;

/// Where the legs of brackets and routed lines leave a box, as a share of its width off its
/// centre (where the drop lines are), each leg at its own place.
const LEG_AT: [f64; 6] = [0.25, -0.25, 0.375, -0.375, 0.125, -0.125];

/// The lines' paths, without the y of rows (see `Layout`).
pub(super) struct Routes {
    /// How each link is drawn.
    pub(super) kinds: Vec<LinkKind>,
    /// x of the legs of a bracket or routed link, at end a and end b.
    pub(super) legs: Vec<(f64, f64)>,
    /// How many tracks lie beside each row, above or below it.
    pub(super) tracks: BTreeMap<(RowKey, bool), usize>,
    /// Right end of the longest track with a right end.
    pub(super) track_right: f64,
}

/// Whether a row's lines go around it above (the row stands on a bus under it) or below.
fn goes_above(r: RowKey) -> bool {
    r.1 == LOWER
}

impl Routes {
    /// Paths of `t`'s links for hosts at `x` with boxes `bw` wide, `rank` their places in
    /// their rows; channels are given later by [`Routes::set_channels`].
    pub(super) fn new(t: &Topo, rows: &Rows, x: &[f64], bw: &[f64], rank: &[usize]) -> Self {
        let mut kinds = link_kinds(t, rows, x, bw, rank);
        let (legs, wants) = legs_and_tracks_wanted(t, &rows.row, x, bw, &kinds);
        let (tracks, track_right) = share_tracks(wants, &mut kinds);
        Routes {
            kinds,
            legs,
            tracks,
            track_right,
        }
    }

    /// Give each routed line a channel of its own, the first at `first_x`, each next one 16
    /// further right.
    pub(super) fn set_channels(&mut self, first_x: f64) {
        let mut channel_x = first_x;
        for kind in &mut self.kinds {
            if let LinkKind::Routed { channel, .. } = kind {
                *channel = channel_x;
                channel_x += 16.0;
            }
        }
    }
}

/// How each link is drawn, tracks and channels still 0. Only the first of parallel links
/// between two hosts takes a straight path.
fn link_kinds(t: &Topo, rows: &Rows, x: &[f64], bw: &[f64], rank: &[usize]) -> Vec<LinkKind> {
    let row = &rows.row;
    let mut straight: BTreeSet<(usize, usize)> = BTreeSet::new();
    t.links
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
                && rows.consecutive(row[a], row[b])
                && (x[a] - x[b]).abs() < 0.5
            {
                LinkKind::Vertical
            } else if a == b || row[a] == row[b] {
                LinkKind::Bracket {
                    above: goes_above(row[a]),
                    track: 0,
                }
            } else {
                LinkKind::Routed {
                    tracks: (0, 0),
                    channel: 0.0,
                }
            }
        })
        .collect()
}

/// The legs of brackets and routed lines, and the room each wants on the tracks beside a
/// row, by (row, above).
fn legs_and_tracks_wanted(
    t: &Topo,
    row: &[RowKey],
    x: &[f64],
    bw: &[f64],
    kinds: &[LinkKind],
) -> (Vec<(f64, f64)>, TrackWants) {
    let mut legs_used = vec![0usize; t.hosts.len()];
    let mut leg_x = |h: usize| {
        let j = legs_used[h];
        legs_used[h] += 1;
        x[h] + bw[h] * LEG_AT[j % LEG_AT.len()]
    };
    let mut legs: Vec<(f64, f64)> = vec![(0.0, 0.0); t.links.len()];
    let mut wants = TrackWants::new();
    for (k, l) in t.links.iter().enumerate() {
        match kinds[k] {
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
                let want = (lo.min(f0), hi.max(f1), k, 0);
                wants.entry((row[l.a], above)).or_default().push(want);
            }
            LinkKind::Routed { .. } => {
                legs[k] = (leg_x(l.a), leg_x(l.b));
                let (ra, rb) = (row[l.a], row[l.b]);
                let want_a = (legs[k].0, f64::INFINITY, k, 0);
                wants.entry((ra, goes_above(ra))).or_default().push(want_a);
                let want_b = (legs[k].1, f64::INFINITY, k, 1);
                wants.entry((rb, goes_above(rb))).or_default().push(want_b);
            }
            _ => {}
        }
    }
    (legs, wants)
}

/// Share out the tracks beside each row: left to right, each request on the first track free
/// there (12 clear of the last one on it). Sets the tracks in `kinds`; returns how many tracks
/// each row side has, and the right end of the rightmost request with a right end.
fn share_tracks(
    wants: TrackWants,
    kinds: &mut [LinkKind],
) -> (BTreeMap<(RowKey, bool), usize>, f64) {
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
    (tracks, right_edge)
}
