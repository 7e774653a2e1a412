//! Isolation Forest with scikit-learn's semantics.
//!
//! Hyper-parameters ([`IsolationForestParams`], defaults as scikit-learn's):
//! - `n_estimators`: 200 trees (scikit-learn's default is 100; the original
//!   tool asked for 200);
//! - `max_samples`: rows drawn without replacement for each tree, `auto` =
//!   min(256, n);
//! - `contamination`: the share of training rows called anomalous (0.05),
//!   in (0, 0.5], or `auto` (offset -0.5);
//! - `random_state`: the seed (42); the same seed gives the same model and
//!   the same scores on every run and every machine.
//!
//! Each tree is grown to at most `ceil(log2(max_samples))` levels. A row's
//! path length in a tree is the depth of its leaf plus `c(rows in leaf)`;
//! `score_samples = -2^(-mean path length / c(max_samples))`, `offset_` is
//! the contamination percentile of the training scores, and
//! `decision_function = score_samples - offset_` (negative = anomalous).

pub mod flat;
pub mod tree;

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baseline::Baseline;
use crate::block::on_every_cpu;
use crate::Block;
use crate::FeatureMatrix;
pub use flat::FlatIsolationForest;
pub use tree::{average_path_length, ITree};

/// Rows scored per block: small enough that a block's features and sums
/// stay in L1/L2 while every tree walks it.
const BLOCK_ROWS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MaxSamples {
    /// min(256, n)
    Auto,
    Count(usize),
    /// A fraction of the rows, in (0, 1].
    Fraction(f64),
}

impl MaxSamples {
    /// The rows each tree is grown on, for `n` training rows.
    pub fn resolve(self, n: usize) -> Result<usize> {
        if n < 2 {
            bail!(
                "an Isolation Forest needs at least 2 rows to fit on (it isolates a row among \
                 others), got {n}"
            );
        }
        let rows = match self {
            MaxSamples::Auto => n.min(256),
            MaxSamples::Count(0) => bail!("--max-samples must be at least 1"),
            // scikit-learn warns and uses all rows.
            MaxSamples::Count(c) => c.min(n),
            MaxSamples::Fraction(f) if f > 0.0 && f <= 1.0 => ((f * n as f64) as usize).max(1),
            MaxSamples::Fraction(f) => {
                bail!("--max-samples as a fraction must be in (0, 1], got {f}")
            }
        };
        if rows < 2 {
            bail!(
                "--max-samples must give each tree at least 2 rows (a tree of one row isolates \
                 nothing and its scores are not numbers), got {rows} of {n}"
            );
        }
        Ok(rows)
    }
}

impl FromStr for MaxSamples {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(MaxSamples::Auto);
        }
        if let Ok(c) = s.parse::<usize>() {
            return Ok(MaxSamples::Count(c));
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(MaxSamples::Fraction(f)),
            _ => Err(format!(
                "`{s}` is not `auto`, a row count, or a fraction in (0, 1]"
            )),
        }
    }
}

impl fmt::Display for MaxSamples {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            MaxSamples::Auto => write!(f, "auto"),
            MaxSamples::Count(c) => write!(f, "{c}"),
            MaxSamples::Fraction(x) => write!(f, "{x}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Contamination {
    /// Offset -0.5, as in the original paper.
    Auto,
    Fraction(f64),
}

impl FromStr for Contamination {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Contamination::Auto);
        }
        // The range is checked with the other parameters (an `Error:` and
        // status 1, as the original), not while parsing arguments.
        match s.parse::<f64>() {
            Ok(c) => Ok(Contamination::Fraction(c)),
            Err(_) => Err(format!("`{s}` is not a number in (0, 0.5] or `auto`")),
        }
    }
}

impl fmt::Display for Contamination {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Contamination::Auto => write!(f, "auto"),
            // `{:?}` keeps 1e-300 short where `{}` writes 300 digits.
            Contamination::Fraction(c) => write!(f, "{c:?}"),
        }
    }
}

/// The most trees a forest may have (`--n-estimators`), here and in the
/// Random Forest.
pub const MAX_TREES: usize = 10_000;

/// Isolation Forest hyper-parameters; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestParams {
    pub n_estimators: usize,
    pub max_samples: MaxSamples,
    pub contamination: Contamination,
    pub random_state: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 200,
            max_samples: MaxSamples::Auto,
            contamination: Contamination::Fraction(0.05),
            random_state: 42,
        }
    }
}

/// A fitted forest: what scoring and model files need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    pub feature_names: Vec<String>,
    pub params: IsolationForestParams,
    /// Rows each tree was grown on (resolved `max_samples`).
    pub max_samples: usize,
    /// `offset_`: decision_function = score_samples - offset.
    pub offset: f64,
    pub forest: FlatIsolationForest,
    /// The training rows, feature by feature (empty in model files of
    /// earlier versions).
    pub baseline: Baseline,
}

impl IsolationForestParams {
    /// Checks the parameters before any work is done.
    pub fn check(&self) -> Result<()> {
        if !(1..=MAX_TREES).contains(&self.n_estimators) {
            bail!(
                "--n-estimators must be from 1 to {MAX_TREES} (more trees change the scores \
                 by less than their noise and cost memory), got {}",
                self.n_estimators
            );
        }
        if let Contamination::Fraction(c) = self.contamination {
            if !(c > 0.0 && c <= 0.5) {
                bail!("contamination must be in the range (0, 0.5]");
            }
        }
        Ok(())
    }

    /// The height limit for trees grown on `max_samples` rows.
    pub fn max_depth(max_samples: usize) -> u32 {
        (max_samples.max(2) as f64).log2().ceil() as u32
    }

    /// Grows the pointer trees (the reference form) on `data`.
    pub fn grow_trees(&self, data: &FeatureMatrix) -> Result<(Vec<ITree>, usize, u32)> {
        self.check()?;
        let n = data.n_rows();
        if n == 0 {
            bail!("no rows to fit the Isolation Forest on");
        }
        let max_samples = self.max_samples.resolve(n)?;
        let depth = Self::max_depth(max_samples);
        if depth > flat::MAX_DEPTH {
            bail!(
                "--max-samples {max_samples} gives trees {depth} levels deep; at most {} \
                 (max-samples 65536) is supported",
                flat::MAX_DEPTH
            );
        }
        // One seed per tree, drawn up front, so trees do not depend on the
        // order they are grown in.
        let mut master = ChaCha8Rng::seed_from_u64(self.random_state);
        let seeds: Vec<u64> = (0..self.n_estimators).map(|_| master.gen()).collect();
        let trees = seeds
            .iter()
            .map(|&seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut rows: Vec<u32> = rand::seq::index::sample(&mut rng, n, max_samples)
                    .into_iter()
                    .map(|r| r as u32)
                    .collect();
                ITree::grow(data, &mut rows, depth, &mut rng)
            })
            .collect();
        Ok((trees, max_samples, depth))
    }

    /// Fits the forest on `data` and sets the offset from its scores.
    pub fn fit(&self, data: &FeatureMatrix) -> Result<IsolationForest> {
        Ok(self.fit_scored(data)?.0)
    }

    /// Fits the forest and also returns `score_samples` of the training
    /// rows (computed anyway for the offset), so that scoring the training
    /// data needs no second pass.
    pub fn fit_scored(&self, data: &FeatureMatrix) -> Result<(IsolationForest, Vec<f64>)> {
        let (trees, max_samples, depth) = self.grow_trees(data)?;
        let forest = FlatIsolationForest::from_trees(&trees, depth, data.n_features())?;
        let mut model = IsolationForest {
            feature_names: data.names().to_vec(),
            params: *self,
            max_samples,
            offset: -0.5,
            forest,
            baseline: Baseline::of(data),
        };
        let scores = model.score_samples(data);
        if let Contamination::Fraction(c) = self.contamination {
            model.offset = percentile(&scores, 100.0 * c);
        }
        Ok((model, scores))
    }
}

impl IsolationForest {
    /// scikit-learn's `score_samples`: in [-1, 0), lower = more anomalous.
    pub fn score_samples(&self, data: &FeatureMatrix) -> Vec<f64> {
        let mut out = vec![0.0; data.n_rows()];
        on_every_cpu(data, &mut out, 1, BLOCK_ROWS, |block, out| {
            self.score_block(block, out)
        });
        out
    }

    /// Scores one block of rows on this thread into `out`.
    pub fn score_block(&self, block: Block, out: &mut [f64]) {
        out.fill(0.0);
        for start in (0..block.len()).step_by(BLOCK_ROWS) {
            let end = (start + BLOCK_ROWS).min(block.len());
            self.forest
                .add_path_lengths(block.rows(start, end), &mut out[start..end]);
        }
        let denominator = self.forest.n_trees() as f64 * average_path_length(self.max_samples);
        for v in out.iter_mut() {
            *v = -(2f64.powf(-*v / denominator));
        }
    }

    /// `decision_function`: score minus offset; negative = anomaly.
    pub fn decision_function(&self, data: &FeatureMatrix) -> Vec<f64> {
        let mut scores = self.score_samples(data);
        for s in scores.iter_mut() {
            *s -= self.offset;
        }
        scores
    }
}

/// numpy's `percentile(values, q)` with the default linear method.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    assert!(!values.is_empty());
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = (q / 100.0) * (sorted.len() - 1) as f64;
    let lo = position.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = position - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // numpy's _lerp: interpolate from the nearer end.
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clustered_with_outliers(n: usize, seed: u64) -> FeatureMatrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..n {
            if i % 50 == 49 {
                a.push(rng.gen_range(50.0f32..100.0));
                b.push(rng.gen_range(-100.0f32..-50.0));
            } else {
                a.push(rng.gen_range(-1.0f32..1.0));
                b.push(rng.gen_range(-1.0f32..1.0));
            }
        }
        FeatureMatrix::from_columns(vec!["a".into(), "b".into()], vec![a, b])
    }

    #[test]
    fn numpy_percentile() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 5.0);
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert!((percentile(&v, 5.0) - 1.2).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 5.0), 7.0);
    }

    #[test]
    fn scores_follow_the_formula_from_pointer_trees() {
        let data = clustered_with_outliers(300, 1);
        let params = IsolationForestParams {
            n_estimators: 25,
            ..Default::default()
        };
        let model = params.fit(&data).unwrap();
        let (trees, max_samples, _) = params.grow_trees(&data).unwrap();
        assert_eq!(max_samples, 256);
        let scores = model.score_samples(&data);
        for (r, score) in scores.iter().enumerate() {
            let x = data.row(r);
            let total: f64 = trees.iter().map(|t| t.path_length(&x) as f64).sum();
            let want = -(2f64.powf(-total / (25.0 * average_path_length(256))));
            assert_eq!(*score, want, "row {r}");
        }
    }

    #[test]
    fn outliers_score_lowest_and_contamination_sets_the_share() {
        let data = clustered_with_outliers(1000, 2);
        let model = IsolationForestParams::default().fit(&data).unwrap();
        let decision = model.decision_function(&data);
        let flagged: Vec<usize> = (0..1000).filter(|&r| decision[r] < 0.0).collect();
        assert_eq!(flagged.len(), 50, "5% of 1000 rows");
        // Every planted outlier (every 50th row) is flagged.
        assert!((0..1000)
            .filter(|r| r % 50 == 49)
            .all(|r| decision[r] < 0.0));
        assert!(model
            .score_samples(&data)
            .iter()
            .all(|s| (-1.0..0.0).contains(s)));
    }

    #[test]
    fn same_seed_same_scores_other_seed_other_scores() {
        let data = clustered_with_outliers(500, 3);
        let a = IsolationForestParams::default().fit(&data).unwrap();
        let b = IsolationForestParams::default().fit(&data).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.decision_function(&data), b.decision_function(&data));
        let c = IsolationForestParams {
            random_state: 7,
            ..Default::default()
        }
        .fit(&data)
        .unwrap();
        assert_ne!(a.score_samples(&data), c.score_samples(&data));
    }

    #[test]
    fn training_scores_come_with_the_fit() {
        let data = clustered_with_outliers(300, 5);
        let (model, scores) = IsolationForestParams::default().fit_scored(&data).unwrap();
        assert_eq!(scores, model.score_samples(&data));
    }

    #[test]
    fn auto_contamination_uses_offset_minus_half() {
        let data = clustered_with_outliers(200, 4);
        let model = IsolationForestParams {
            contamination: Contamination::Auto,
            ..Default::default()
        }
        .fit(&data)
        .unwrap();
        assert_eq!(model.offset, -0.5);
    }

    #[test]
    fn parameters_parse_and_resolve() {
        assert_eq!("auto".parse::<MaxSamples>().unwrap(), MaxSamples::Auto);
        assert_eq!("100".parse::<MaxSamples>().unwrap(), MaxSamples::Count(100));
        assert_eq!(
            "0.5".parse::<MaxSamples>().unwrap(),
            MaxSamples::Fraction(0.5)
        );
        assert!("1.5".parse::<MaxSamples>().is_err());
        assert_eq!(MaxSamples::Auto.resolve(100).unwrap(), 100);
        assert_eq!(MaxSamples::Auto.resolve(1000).unwrap(), 256);
        assert_eq!(MaxSamples::Count(5000).resolve(1000).unwrap(), 1000);
        assert_eq!(MaxSamples::Fraction(0.5).resolve(1000).unwrap(), 500);
        assert_eq!(IsolationForestParams::max_depth(256), 8);
        assert_eq!(IsolationForestParams::max_depth(100), 7);
        assert_eq!(IsolationForestParams::max_depth(1), 1);
        assert!("lots".parse::<Contamination>().is_err());
        for bad in ["0.6", "0", "-0.1", "NaN"] {
            let params = IsolationForestParams {
                contamination: bad.parse().unwrap(),
                ..Default::default()
            };
            assert_eq!(
                params.check().unwrap_err().to_string(),
                "contamination must be in the range (0, 0.5]"
            );
        }
        assert_eq!(
            "0.5".parse::<Contamination>().unwrap(),
            Contamination::Fraction(0.5)
        );
        assert_eq!(
            "AUTO".parse::<Contamination>().unwrap(),
            Contamination::Auto
        );
    }
}
