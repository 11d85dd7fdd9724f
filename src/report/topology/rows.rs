//! Which row each host stands in. The LANs are stacked top to bottom; a host stands above
//! its LAN's bus, hangs below it, or sits between two buses when it is on both. A host on no
//! LAN stands beside a host it has a line to; hosts with no way to a LAN form a row at the
//! bottom.

use super::model::Topo;
use std::collections::{BTreeMap, BTreeSet};

/// A row of hosts: (tier, kind). Tier t lies between bus t-1 and bus t; the kinds are the
/// hosts hanging below bus t-1 ([`UPPER`]), those on both buses ([`MIDDLE`]) and those
/// standing above bus t ([`LOWER`]). Hosts on no LAN form the row (LANs + 1, 0).
pub(super) type RowKey = (usize, u8);
/// Hosts hanging below the bus over their tier.
pub(super) const UPPER: u8 = 0;
/// Hosts on the buses over and under their tier.
pub(super) const MIDDLE: u8 = 1;
/// Hosts standing on the bus under their tier.
pub(super) const LOWER: u8 = 2;

/// Where each host goes, before any coordinate: LAN order, rows, neighbours.
pub(super) struct Rows {
    /// The LANs from top to bottom.
    pub(super) order: Vec<usize>,
    /// Each LAN's place in [`Rows::order`].
    pub(super) pos: Vec<usize>,
    /// Each host's row.
    pub(super) row: Vec<RowKey>,
    /// Whether each host is on a LAN.
    pub(super) on_lan: Vec<bool>,
    /// The hosts on no LAN standing left of each host, nearest first.
    pub(super) left: Vec<Vec<usize>>,
    /// The hosts on no LAN standing right of each host, nearest first.
    pub(super) right: Vec<Vec<usize>>,
    /// The hosts with no line to any LAN's host, left to right in the bottom row.
    pub(super) loose: Vec<usize>,
    /// The rows that have hosts, top to bottom.
    pub(super) list: Vec<RowKey>,
    /// Each row's place in [`Rows::list`].
    index: BTreeMap<RowKey, usize>,
}

impl Rows {
    /// The rows of `t`'s hosts.
    pub(super) fn new(t: &Topo) -> Self {
        let order = lan_order(t);
        let mut pos = vec![0; order.len()];
        for (k, &l) in order.iter().enumerate() {
            pos[l] = k;
        }
        let on_lan: Vec<bool> = t.hosts.iter().map(|h| !h.lans.is_empty()).collect();
        let (mut row, primary) = lan_rows(t, &order, &pos);
        let mut placed = on_lan.clone();
        let (left, right) = beside(t, &mut row, &primary, &mut placed);
        let loose = loose_hosts(t, &mut placed);
        let list: Vec<RowKey> = row
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index = list.iter().enumerate().map(|(i, &r)| (r, i)).collect();
        Rows {
            order,
            pos,
            row,
            on_lan,
            left,
            right,
            loose,
            list,
            index,
        }
    }

    /// The row of the hosts on no LAN and with no line to a LAN's host.
    pub(super) fn loose_row(&self) -> RowKey {
        (self.order.len() + 1, 0)
    }

    /// Whether `r1` and `r2` are next to each other in the same tier.
    pub(super) fn consecutive(&self, r1: RowKey, r2: RowKey) -> bool {
        r1.0 == r2.0
            && match (self.index.get(&r1), self.index.get(&r2)) {
                (Some(&i), Some(&j)) => i.abs_diff(j) == 1,
                _ => false,
            }
    }
}

/// How strongly each LAN is tied to each other one: hosts on both count 2, point-to-point
/// lines between their hosts 1.
fn lan_ties(t: &Topo) -> Vec<BTreeMap<usize, u32>> {
    let mut tie: Vec<BTreeMap<usize, u32>> = vec![BTreeMap::new(); t.lans.len()];
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
    tie
}

/// LAN order, top to bottom: a chain from the first LAN, each next LAN the one most strongly
/// tied to the last one placed, falling back to earlier LANs, then to the first LAN not yet
/// placed.
fn lan_order(t: &Topo) -> Vec<usize> {
    let tie = lan_ties(t);
    let nl = tie.len();
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
    order
}

/// The row of each host on a LAN (others get the loose row), and its primary LAN (the
/// highest one it is on).
fn lan_rows(t: &Topo, order: &[usize], pos: &[usize]) -> (Vec<RowKey>, Vec<usize>) {
    let n = t.hosts.len();
    let mut row = vec![(order.len() + 1, 0); n];
    let mut primary = vec![0usize; n];
    for h in 0..n {
        let mut p: Vec<usize> = t.hosts[h].lans.iter().map(|&l| pos[l]).collect();
        p.sort_unstable();
        p.dedup();
        let Some(&k) = p.first() else { continue };
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
    (row, primary)
}

/// Hosts on no LAN sit beside a host they have a line to (first on the left of a
/// first-in-row host, then alternating sides), chains of them continuing outward, in that
/// host's row. Returns who stands left and right of each host.
fn beside(
    t: &Topo,
    row: &mut [RowKey],
    primary: &[usize],
    placed: &mut [bool],
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let n = t.hosts.len();
    let mut left: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut right: Vec<Vec<usize>> = vec![Vec::new(); n];
    for r in 0..n {
        if t.hosts[r].lans.is_empty() {
            continue;
        }
        let mut go_left = t.lans[primary[r]].members.first().map(|m| m.0) == Some(r);
        for &li in &t.hosts[r].links {
            let p = t.links[li].other(r);
            if placed[p] {
                continue;
            }
            placed[p] = true;
            let chain = reach(t, p, placed);
            for &h in &chain {
                row[h] = row[r];
            }
            if go_left {
                left[r].extend(chain)
            } else {
                right[r].extend(chain)
            }
            go_left = !go_left;
        }
    }
    (left, right)
}

/// The hosts not placed yet, each with the hosts it reaches by lines, in the bottom row.
fn loose_hosts(t: &Topo, placed: &mut [bool]) -> Vec<usize> {
    let mut loose: Vec<usize> = Vec::new();
    for s in 0..t.hosts.len() {
        if placed[s] {
            continue;
        }
        placed[s] = true;
        loose.extend(reach(t, s, placed));
    }
    loose
}

/// `start` (already marked placed) and the hosts not yet placed that it reaches by lines,
/// depth first, each marked placed.
fn reach(t: &Topo, start: usize, placed: &mut [bool]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut stack = vec![start];
    while let Some(h) = stack.pop() {
        found.push(h);
        for &l2 in t.hosts[h].links.iter().rev() {
            let q = t.links[l2].other(h);
            if !placed[q] {
                placed[q] = true;
                stack.push(q);
            }
        }
    }
    found
}
