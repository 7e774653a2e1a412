//! The early stop of class prediction: a row leaves the walk once the trees
//! left cannot change its class. Shared by the AVX-512 walk
//! ([`crate::score::avx512`]) and the lane walk ([`super::flat`]).

/// When a row's class is decided before the last tree.
///
/// A leaf adds at most `spread` to one class's sum over another's, so after
/// a tree with `left` trees to go, a class whose sum leads every other by
/// more than `left * spread` stays the largest whatever the other trees
/// say. The margin [`Stop::SLACK`] covers the rounding of the remaining
/// additions (at most about 1e-11 for a few hundred trees of values at
/// most one) and keeps the lead strict after the division by the number
/// of trees, so the class is exactly the one the full sums give.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    /// Largest leaf value minus the smallest (0 counts: a leaf adds
    /// nothing to the other classes).
    spread: f64,
}

impl Stop {
    /// Trees walked between two checks. Checking after every tree took
    /// 125.4 trees per row on the benchmark forest, every 4 trees 126.9,
    /// every 16 132.5: the check costs less than a tree walk but more than
    /// the trees it saves below 4.
    const EVERY: usize = 4;
    const SLACK: f64 = 1e-6;

    /// For a forest of `n_trees` trees whose leaves hold `values`; `None`
    /// when it has too many trees for the slack to cover the rounding (leaf
    /// values are finite: `FlatForest::validate`).
    pub(crate) fn new(n_trees: usize, values: &[f32]) -> Option<Stop> {
        if n_trees > 100_000 {
            return None;
        }
        let max = values.iter().fold(0.0f32, |m, &v| m.max(v)) as f64;
        let min = values.iter().fold(0.0f32, |m, &v| m.min(v)) as f64;
        Some(Stop { spread: max - min })
    }

    /// Whether a check after `walked` trees, `left` to go, can find a
    /// decided row: a lead is at most `walked * spread`.
    pub(crate) fn worth_checking(&self, walked: usize, left: usize) -> bool {
        left > 0 && walked.is_multiple_of(Self::EVERY) && walked > left
    }

    /// The lead over every other class that decides a row's class with
    /// `left` trees to go.
    pub(crate) fn lead_needed(&self, left: usize) -> f64 {
        left as f64 * self.spread + Self::SLACK
    }
}

/// How far the largest of `sums` is above the second largest (+inf for one
/// class). No branch per class.
#[inline(always)]
pub(crate) fn lead<T: Copy + Into<f64>>(sums: &[T]) -> f64 {
    let (mut first, mut second) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for s in sums.iter().map(|&s| s.into()) {
        second = second.max(first.min(s));
        first = first.max(s);
    }
    first - second
}
