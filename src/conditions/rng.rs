//! A small deterministic pseudo-random generator (SplitMix64) for the shaper's decisions: the
//! same seed gives the same losses, duplicates and jitter, so a run can be replayed and tested.
//! Not for anything that must be unpredictable.

/// SplitMix64 (Steele, Lea and Flood): a 64-bit state advanced by a constant and mixed.
/// Every seed, zero included, gives a full-period stream.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `percent / 100` (0 never, 100 always).
    pub fn chance(&mut self, percent: f64) -> bool {
        self.next_f64() * 100.0 < percent
    }

    /// A uniform number in `0..n` (0 when `n` is 0), by Lemire's multiply-shift, whose bias is
    /// below 2^-64 per draw for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform number in `-n..=n`.
    pub fn symmetric(&mut self, n: u64) -> i128 {
        let span = u128::from(n) * 2 + 1;
        let r = (u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())) % span;
        r as i128 - i128::from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_others_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Seed zero is not stuck at zero.
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), z.next_u64());
    }

    #[test]
    fn floats_stay_in_the_unit_interval_and_average_a_half() {
        let mut r = Rng::new(1);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        let mean = sum / f64::from(n);
        // The mean of n uniforms has standard deviation 1/sqrt(12 n) = 0.0009.
        assert!((mean - 0.5).abs() < 0.004, "mean {mean}");
    }

    #[test]
    fn chance_is_never_at_zero_and_always_at_a_hundred() {
        let mut r = Rng::new(3);
        for _ in 0..10_000 {
            assert!(!r.chance(0.0));
            assert!(r.chance(100.0));
        }
    }

    #[test]
    fn below_and_symmetric_cover_their_whole_range_and_no_more() {
        let mut r = Rng::new(5);
        let mut seen = [false; 7];
        let mut seen_sym = [false; 7];
        for _ in 0..10_000 {
            let b = r.below(7);
            assert!(b < 7);
            seen[b as usize] = true;
            let s = r.symmetric(3);
            assert!((-3..=3).contains(&s));
            seen_sym[(s + 3) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
        assert!(seen_sym.iter().all(|s| *s), "{seen_sym:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(r.symmetric(0), 0);
    }
}
