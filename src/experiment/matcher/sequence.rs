//! Finding a sequence of packet matches in a capture, in order, with backtracking (a relation
//! such as `ack = "syn.seq + 1"` may hold only for a later candidate than the first that
//! matches on its own), and counting the packets that match.

use super::PacketMatch;
use super::expr::{Bound, Seen};

/// How many candidate packets a search may try before it gives up (a bound on the work of
/// backtracking over a large capture).
const BUDGET: usize = 2_000_000;

/// Find `seq` in order among `packets` (others may come between). Ok(indexes of the matches),
/// or Err((how many elements matched at best, index after which the next was looked for)).
pub fn find_sequence(seq: &[PacketMatch], packets: &[Seen]) -> Result<Vec<usize>, (usize, usize)> {
    let mut s = Search {
        seq,
        packets,
        budget: BUDGET,
        best: (0, 0),
        found: Vec::new(),
    };
    if s.from(0, 0, &Bound::default()) {
        Ok(s.found)
    } else {
        Err(s.best)
    }
}

struct Search<'a, 'p> {
    seq: &'a [PacketMatch],
    packets: &'a [Seen<'p>],
    budget: usize,
    best: (usize, usize),
    found: Vec<usize>,
}

impl<'p> Search<'_, 'p> {
    /// Match elements `k..` among packets `from..`, given what is bound.
    fn from(&mut self, k: usize, from: usize, bound: &Bound<'p>) -> bool {
        if k > self.best.0 {
            self.best = (k, from);
        }
        let Some(m) = self.seq.get(k) else {
            return true;
        };
        for i in from..self.packets.len() {
            if self.budget == 0 {
                return false;
            }
            self.budget -= 1;
            let seen = self.packets[i];
            if !m.matches_seen(&seen, bound) {
                continue;
            }
            self.found.push(i);
            let next = bound.with(m.bind.as_deref(), seen);
            if self.from(k + 1, i + 1, &next) {
                return true;
            }
            self.found.pop();
        }
        false
    }
}

/// How many of `packets` match `m` (on its own: no relations).
pub fn count_matching(m: &PacketMatch, packets: &[Seen]) -> usize {
    let none = Bound::default();
    packets.iter().filter(|s| m.matches_seen(s, &none)).count()
}
