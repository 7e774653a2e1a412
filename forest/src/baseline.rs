//! What the training rows looked like, feature by feature: the range and
//! the median and 99th percentile, kept with an Isolation Forest.
//!
//! An Isolation Forest cannot see a feature that did not vary in training
//! (it never splits on it), and scores a value far beyond the training
//! range only as anomalous as the range's edge. The monitor therefore also
//! flags a packet whose feature lies beyond the training range by more
//! than the range's own width, and at least [`MIN_MARGIN`] (two doublings
//! for the `log2` features of the default set): a scan from a source when
//! training saw one port per source, a flood when training saw no such
//! rate. Reasons quote the median and the 99th percentile as "normal".

use serde::{Deserialize, Serialize};

use crate::FeatureMatrix;

/// The smallest margin beyond the training range that counts as new.
pub const MIN_MARGIN: f32 = 2.0;

/// One feature's training values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureBaseline {
    pub min: f32,
    pub median: f32,
    pub p99: f32,
    pub max: f32,
}

impl FeatureBaseline {
    /// How far `v` lies beyond the range, in margins (> 1: new).
    #[inline]
    pub fn excess(&self, v: f32) -> f32 {
        let margin = (self.max - self.min).max(MIN_MARGIN);
        let beyond = if v > self.max {
            v - self.max
        } else if v < self.min {
            self.min - v
        } else {
            0.0
        };
        beyond / margin
    }
}

/// Every feature's training values, in the model's feature order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub features: Vec<FeatureBaseline>,
}

/// The value at quantile `q` of `values` (nearest rank, reorders them).
fn quantile(values: &mut [f32], q: f64) -> f32 {
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    *values.select_nth_unstable_by(i, f32::total_cmp).1
}

impl Baseline {
    /// The baseline of the rows of `data` (empty for no rows).
    pub fn of(data: &FeatureMatrix) -> Baseline {
        if data.n_rows() == 0 {
            return Baseline::default();
        }
        let features = (0..data.n_features())
            .map(|f| {
                let mut values = data.column(f).to_vec();
                let (min, max) = values
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                FeatureBaseline {
                    min,
                    median: quantile(&mut values, 0.5),
                    p99: quantile(&mut values, 0.99),
                    max,
                }
            })
            .collect();
        Baseline { features }
    }

    /// The feature most beyond its training range among `values` (one per
    /// feature), with its excess, when some excess is above 1.
    pub fn most_novel(&self, values: impl Iterator<Item = f32>) -> Option<(usize, f32)> {
        self.features
            .iter()
            .zip(values)
            .enumerate()
            .map(|(f, (b, v))| (f, b.excess(v)))
            .filter(|&(_, e)| e > 1.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_quantiles_and_novelty() {
        let m = FeatureMatrix::from_columns(
            vec!["a".into(), "flat".into()],
            vec![(0..101).map(|i| i as f32).collect(), vec![1.0; 101]],
        );
        let b = Baseline::of(&m);
        assert_eq!(
            b.features[0],
            FeatureBaseline {
                min: 0.0,
                median: 50.0,
                p99: 99.0,
                max: 100.0
            }
        );
        assert_eq!(b.features[1].min, 1.0);
        assert_eq!(b.features[1].max, 1.0);
        // Within the range, or less than a width beyond it: not new.
        assert_eq!(b.most_novel([150.0, 1.0].into_iter()), None);
        assert_eq!(b.most_novel([-90.0, 2.5].into_iter()), None);
        // The flat feature's margin is MIN_MARGIN.
        assert_eq!(b.most_novel([50.0, 3.5].into_iter()), Some((1, 1.25)));
        // The larger excess wins.
        assert_eq!(b.most_novel([301.0, 3.5].into_iter()), Some((0, 2.01)));
        assert_eq!(Baseline::default().most_novel([1e9f32].into_iter()), None);
        assert!(Baseline::of(&FeatureMatrix::zeros(vec!["a".into()], 0))
            .features
            .is_empty());
    }
}
