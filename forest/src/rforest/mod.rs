//! Random Forest classifier with scikit-learn's semantics.
//!
//! Hyper-parameters ([`RandomForestParams`], defaults as scikit-learn's
//! `RandomForestClassifier`):
//! - `n_estimators`: 200 trees (scikit-learn's default is 100; the original
//!   tool asked for 200);
//! - `criterion`: `gini` (or `entropy`);
//! - `max_depth`: unlimited (`None`): trees grow until leaves are pure;
//! - `max_features`: features tried at each split, `sqrt` = max(1,
//!   floor(sqrt(n_features))); also `log2`, `all`, a count or a fraction;
//! - `min_samples_split`: 2, `min_samples_leaf`: 1 (rows, not weights);
//! - `bootstrap`: true: each tree sees n rows drawn with replacement, the
//!   draw counts being sample weights;
//! - `random_state`: 42; the same seed gives the same forest on every run,
//!   whatever the number of threads.
//!
//! Splits are scikit-learn's: thresholds halfway between consecutive
//! distinct values, the best proxy impurity improvement wins (first found
//! on ties), features drawn in random order per split. Probabilities are the
//! mean of the trees' leaf class frequencies (soft voting); the prediction
//! is the most probable class (the first one on ties).
//!
//! Training grows pointer trees ([`tree::DecisionTree`]); the fitted model
//! stores them flat ([`flat::FlatForest`]), and [`crate::score::ForestScorer`]
//! scores them.

pub mod flat;
pub(crate) mod stop;
pub mod tree;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::FeatureMatrix;
pub use flat::FlatForest;
pub use tree::DecisionTree;

/// Features tried at each split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    /// max(1, floor(sqrt(n_features))): scikit-learn's default.
    Sqrt,
    /// max(1, floor(log2(n_features))).
    Log2,
    /// Every feature (plain bagged trees).
    All,
    Count(usize),
    /// max(1, floor(fraction * n_features)), fraction in (0, 1].
    Fraction(f64),
}

impl MaxFeatures {
    pub fn resolve(self, n_features: usize) -> Result<usize> {
        let n = n_features as f64;
        let k = match self {
            MaxFeatures::Sqrt => n.sqrt() as usize,
            MaxFeatures::Log2 => n.log2() as usize,
            MaxFeatures::All => n_features,
            MaxFeatures::Count(0) => bail!("--max-features must be at least 1"),
            MaxFeatures::Count(c) if c > n_features => {
                bail!("--max-features {c} is more than the {n_features} features")
            }
            MaxFeatures::Count(c) => c,
            MaxFeatures::Fraction(f) if f > 0.0 && f <= 1.0 => (f * n) as usize,
            MaxFeatures::Fraction(f) => {
                bail!("--max-features as a fraction must be in (0, 1], got {f}")
            }
        };
        Ok(k.clamp(1, n_features.max(1)))
    }
}

impl FromStr for MaxFeatures {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sqrt" | "auto" => return Ok(MaxFeatures::Sqrt),
            "log2" => return Ok(MaxFeatures::Log2),
            "all" | "none" => return Ok(MaxFeatures::All),
            _ => {}
        }
        if let Ok(c) = s.parse::<usize>() {
            return Ok(MaxFeatures::Count(c));
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(MaxFeatures::Fraction(f)),
            _ => Err(format!(
                "`{s}` is not `sqrt`, `log2`, `all`, a count, or a fraction in (0, 1]"
            )),
        }
    }
}

impl fmt::Display for MaxFeatures {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            MaxFeatures::Sqrt => write!(f, "sqrt"),
            MaxFeatures::Log2 => write!(f, "log2"),
            MaxFeatures::All => write!(f, "all"),
            MaxFeatures::Count(c) => write!(f, "{c}"),
            MaxFeatures::Fraction(x) => write!(f, "{x}"),
        }
    }
}

/// The impurity a split minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    Gini,
    Entropy,
}

impl Criterion {
    /// The names [`Criterion::from_str`] takes.
    pub const NAMES: [&'static str; 2] = ["gini", "entropy"];
}

impl FromStr for Criterion {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gini" => Ok(Criterion::Gini),
            "entropy" => Ok(Criterion::Entropy),
            _ => bail!("the criterion is gini or entropy, not `{s}`"),
        }
    }
}

/// Random Forest hyper-parameters; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomForestParams {
    pub n_estimators: usize,
    pub criterion: Criterion,
    pub max_depth: Option<u32>,
    pub max_features: MaxFeatures,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub bootstrap: bool,
    pub random_state: u64,
    /// Threads that grow trees (0 = one per CPU). Never changes the model.
    #[serde(skip)]
    pub n_jobs: usize,
}

impl Default for RandomForestParams {
    fn default() -> Self {
        RandomForestParams {
            n_estimators: 200,
            criterion: Criterion::Gini,
            max_depth: None,
            max_features: MaxFeatures::Sqrt,
            min_samples_split: 2,
            min_samples_leaf: 1,
            bootstrap: true,
            random_state: 42,
            n_jobs: 0,
        }
    }
}

/// A fitted forest: class names and the flat trees.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomForest {
    /// Class names in class-index order (sorted, as scikit-learn's `classes_`).
    pub classes: Vec<String>,
    pub feature_names: Vec<String>,
    pub params: RandomForestParams,
    pub forest: FlatForest,
}

impl RandomForestParams {
    /// Checks the parameters before any work is done.
    pub fn check(&self) -> Result<()> {
        let most = crate::iforest::MAX_TREES;
        if !(1..=most).contains(&self.n_estimators) {
            bail!(
                "--n-estimators must be from 1 to {most} (more trees change the votes by less \
                 than their noise and cost memory), got {}",
                self.n_estimators
            );
        }
        if self.min_samples_leaf == 0 {
            bail!("--min-samples-leaf must be at least 1");
        }
        if self.max_depth == Some(0) {
            bail!("--max-depth must be at least 1");
        }
        if let MaxFeatures::Fraction(f) = self.max_features {
            if !(f > 0.0 && f <= 1.0) {
                bail!("--max-features as a fraction must be in (0, 1], got {f}");
            }
        }
        if let MaxFeatures::Count(0) = self.max_features {
            bail!("--max-features must be at least 1");
        }
        Ok(())
    }

    /// Grows the pointer trees (the reference form) on `data` with class
    /// indices `labels` (each below `n_classes`). `on_tree` is called once
    /// per finished tree (progress bars).
    pub fn grow_trees(
        &self,
        data: &FeatureMatrix,
        labels: &[u32],
        n_classes: usize,
        on_tree: &(dyn Fn() + Sync),
    ) -> Result<Vec<DecisionTree>> {
        self.check()?;
        let n = data.n_rows();
        if n == 0 {
            bail!("no rows to train the Random Forest on");
        }
        if labels.len() != n {
            bail!("{} labels for {n} rows", labels.len());
        }
        if data.n_features() == 0 {
            bail!("no features to train the Random Forest on");
        }
        if !(2..=0xffff).contains(&n_classes) || labels.iter().any(|&l| l as usize >= n_classes) {
            bail!("labels must be class indices below {n_classes} (2 to 65535 classes)");
        }
        let max_features = self.max_features.resolve(data.n_features())?;
        let presorted = tree::Presorted::new(data);
        let set = tree::TrainingSet {
            data,
            labels,
            n_classes,
            presorted: &presorted,
        };
        // One seed per tree, drawn up front: trees do not depend on which
        // thread grows them or in what order.
        let mut master = ChaCha8Rng::seed_from_u64(self.random_state);
        let seeds: Vec<u64> = (0..self.n_estimators).map(|_| master.gen()).collect();
        let threads = match self.n_jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            j => j,
        }
        .min(self.n_estimators);
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<Option<DecisionTree>>> = Mutex::new(vec![None; self.n_estimators]);
        let work = || loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= seeds.len() {
                break;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seeds[t]);
            let tree = tree::grow(&set, self, max_features, &mut rng);
            done.lock().expect("no panics while holding the lock")[t] = Some(tree);
            on_tree();
        };
        if threads <= 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        Ok(done
            .into_inner()
            .expect("no panics while holding the lock")
            .into_iter()
            .map(|t| t.expect("every tree grown"))
            .collect())
    }

    /// Fits the forest: `labels` are indices into `classes`.
    pub fn fit(
        &self,
        data: &FeatureMatrix,
        labels: &[u32],
        classes: Vec<String>,
        on_tree: &(dyn Fn() + Sync),
    ) -> Result<RandomForest> {
        let trees = self.grow_trees(data, labels, classes.len(), on_tree)?;
        let forest = FlatForest::from_trees(&trees, data.n_features(), classes.len())?;
        Ok(RandomForest {
            classes,
            feature_names: data.names().to_vec(),
            params: *self,
            forest,
        })
    }
}

impl RandomForest {
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
}

/// Index of the largest value in each row of `c` values (first on ties),
/// as numpy's `argmax`.
pub fn argmax_rows(proba: &[f64], c: usize) -> Vec<u32> {
    proba
        .chunks(c)
        .map(|row| argmax(row.iter().copied()))
        .collect()
}

/// Index of the largest of `values` (first on ties; 0 when empty).
pub fn argmax(values: impl IntoIterator<Item = f64>) -> u32 {
    let mut values = values.into_iter();
    let Some(mut top) = values.next() else {
        return 0;
    };
    let mut best = 0;
    for (k, v) in values.enumerate() {
        if v > top {
            (best, top) = (k + 1, v);
        }
    }
    best as u32
}

/// The pointer trees' own probabilities for each row: the reference the
/// flat layout must equal (sums in tree order, then divided).
pub fn reference_proba(trees: &[DecisionTree], data: &FeatureMatrix) -> Vec<f64> {
    let c = trees.first().map_or(0, |t| t.n_classes);
    let mut out = Vec::with_capacity(data.n_rows() * c);
    for r in 0..data.n_rows() {
        let x = data.row(r);
        let mut sums = vec![0.0f64; c];
        for t in trees {
            for (s, &p) in sums.iter_mut().zip(t.predict_proba(&x)) {
                *s += p as f64;
            }
        }
        out.extend(sums.iter().map(|s| s / trees.len() as f64));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
