//! The models a monitor scores with: an Isolation Forest (fitted on a
//! warm-up window or loaded from a file, refitted in the background if
//! asked) and optionally a Random Forest classifier, each with the record
//! features it expects.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};

use crate::features::encoding::FeaturePlan;
use crate::features::records::RecordFeatures;
use crate::features::{FeatureMatrix, FeatureSet};
use crate::model_file::SavedModel;
use ml_sniffing_forest::iforest::{IsolationForest, IsolationForestParams};
use ml_sniffing_forest::rforest::argmax_rows;
use ml_sniffing_forest::score::ForestScorer;
use ml_sniffing_forest::Block;

/// The anomaly model in use, and its version (1 for the first; each refit
/// or swap adds one).
#[derive(Clone)]
pub struct Detector {
    pub model: Arc<IsolationForest>,
    pub features: RecordFeatures,
    pub version: u32,
    /// Packets whose `score_samples` is below this alert; `None` until the
    /// model is calibrated (a loaded model, on the warm-up window).
    pub threshold: Option<f64>,
    /// The scores the threshold was placed on, sorted (for percentiles).
    pub calibration: Arc<Vec<f64>>,
}

/// The share of a fitting window held back to place the alert threshold:
/// scores of packets the model did not train on, so that the alert rate
/// holds on new ordinary traffic (in-sample scores are less anomalous).
pub const HELD_BACK: f64 = 0.2;

/// The score below which `rate` of `scores` lies: with fewer scores than
/// `1 / rate`, the lowest (none of them would alert).
pub fn alert_threshold(scores: &mut [f64], rate: f64) -> f64 {
    scores.sort_by(f64::total_cmp);
    let k = (rate * scores.len() as f64).floor() as usize;
    scores
        .get(k.min(scores.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NEG_INFINITY)
}

/// A fitted model, its alert threshold (`score_samples`) and the sorted
/// scores the threshold was placed on.
pub type Calibrated = (IsolationForest, f64, Vec<f64>);

/// Fits on all rows of `data` but the last [`HELD_BACK`] share and places
/// the threshold at the `rate` quantile of the held-back rows' scores, and
/// never above the model's offset (the contamination quantile of the
/// training scores: a score more ordinary than that never alerts, however
/// few rows were held back); the model's baseline covers every row. Windows under 10 rows hold nothing
/// back (the threshold then comes from the training scores).
pub fn fit_calibrated(
    params: &IsolationForestParams,
    data: &FeatureMatrix,
    rate: f64,
) -> Result<Calibrated> {
    let n = data.n_rows();
    let held = if n < 10 {
        0
    } else {
        (n as f64 * HELD_BACK) as usize
    };
    let (mut model, mut scores) = if held == 0 {
        params.fit_scored(data)?
    } else {
        let fit: Vec<usize> = (0..n - held).collect();
        let model = params.fit(&data.select_rows(&fit))?;
        let rest: Vec<usize> = (n - held..n).collect();
        let scores = model.score_samples(&data.select_rows(&rest));
        (model, scores)
    };
    model.baseline = ml_sniffing_forest::baseline::Baseline::of(data);
    let threshold = alert_threshold(&mut scores, rate).min(model.offset);
    Ok((model, threshold, scores))
}

/// Rows per piece when a batch is scored on several threads.
const SCORE_SPLIT: usize = 256;

impl Detector {
    /// The `score_samples` of every row of `block`, into `scores`.
    pub fn score(&self, block: Block, scores: &mut Vec<f64>) {
        scores.resize(block.len(), 0.0);
        if block.len() >= 2 * SCORE_SPLIT {
            // Scoring dominates a record's cost: spread large batches over
            // the cores (rayon's pool; this thread takes part).
            use rayon::prelude::*;
            scores
                .par_chunks_mut(SCORE_SPLIT)
                .enumerate()
                .for_each(|(i, chunk)| {
                    let start = i * SCORE_SPLIT;
                    self.model
                        .score_block(block.rows(start, start + chunk.len()), chunk);
                });
        } else {
            self.model.score_block(block, scores);
        }
    }
}

/// A classifier saved by `classify --save-model` on packet features.
pub struct Classifier {
    pub scorer: ForestScorer,
    pub features: RecordFeatures,
}

impl Classifier {
    /// The class of every row of `block`; `proba` gets each row's class
    /// probabilities.
    pub fn classify(&self, block: Block, proba: &mut Vec<f64>) -> Vec<u32> {
        let c = self.scorer.model().n_classes();
        proba.resize(block.len() * c, 0.0);
        self.scorer.probabilities_block(block, proba);
        argmax_rows(proba, c)
    }
}

/// The packet features a saved model reads, if it was fitted on a
/// record-based set (`default` or `packet`).
fn packet_features(plan: &FeaturePlan, path: &Path) -> Result<Vec<String>> {
    match plan {
        FeaturePlan::Packet {
            set: FeatureSet::Default | FeatureSet::Packet,
            features,
        } => Ok(features.clone()),
        FeaturePlan::Packet {
            set: FeatureSet::Seed,
            ..
        } => bail!(
            "{} was fitted on the original tool's features (--features seed), which need a whole \
             file; live scoring needs a model fitted with --features default",
            path.display()
        ),
        FeaturePlan::Columns { .. } => bail!(
            "{} was fitted on CSV columns (--feature-columns or a non-packet CSV); live scoring \
             needs a model fitted on packet captures with --features default",
            path.display()
        ),
    }
}

/// Loads an Isolation Forest saved by `detect --save-model`.
pub fn load_detector(path: &Path) -> Result<Detector> {
    match SavedModel::load(path)? {
        SavedModel::IsolationForest { plan, model } => {
            let features = RecordFeatures::for_model(&packet_features(&plan, path)?)
                .with_context(|| format!("cannot score live packets with {}", path.display()))?;
            Ok(Detector {
                model: Arc::new(model),
                features,
                version: 1,
                threshold: None,
                calibration: Arc::new(Vec::new()),
            })
        }
        SavedModel::RandomForest { .. } => bail!(
            "{} is a Random Forest classifier: pass it with --classifier; --model takes an \
             Isolation Forest saved by `detect --save-model`",
            path.display()
        ),
    }
}

/// Loads a Random Forest saved by `classify --save-model`.
pub fn load_classifier(path: &Path) -> Result<Classifier> {
    match SavedModel::load(path)? {
        SavedModel::RandomForest { plan, model } => {
            let features = RecordFeatures::for_model(&packet_features(&plan, path)?)
                .with_context(|| format!("cannot classify live packets with {}", path.display()))?;
            Ok(Classifier {
                scorer: ForestScorer::new(model),
                features,
            })
        }
        SavedModel::IsolationForest { .. } => bail!(
            "{} is an Isolation Forest: pass it with --model; --classifier takes a Random Forest \
             saved by `classify --save-model`",
            path.display()
        ),
    }
}

/// The features of the most recent records, kept for refitting: a ring of
/// `capacity` rows, column-major.
pub struct Recent {
    columns: Vec<Vec<f32>>,
    capacity: usize,
    next: usize,
    filled: usize,
}

impl Recent {
    pub fn new(n_features: usize, capacity: usize) -> Self {
        Recent {
            columns: vec![vec![0.0; capacity]; n_features],
            capacity,
            next: 0,
            filled: 0,
        }
    }

    /// Remembers one row (one value per feature).
    pub fn push(&mut self, row: impl Iterator<Item = f32>) {
        if self.capacity == 0 {
            return;
        }
        for (column, v) in self.columns.iter_mut().zip(row) {
            column[self.next] = v;
        }
        self.next = (self.next + 1) % self.capacity;
        self.filled = (self.filled + 1).min(self.capacity);
    }

    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The rows kept so far, as a matrix to fit on.
    pub fn snapshot(&self, names: Vec<String>) -> FeatureMatrix {
        let columns = self
            .columns
            .iter()
            .map(|c| c[..self.filled].to_vec())
            .collect();
        FeatureMatrix::from_columns(names, columns)
    }
}

/// A fit running in the background while capture goes on.
pub struct Refit {
    handle: JoinHandle<Result<Calibrated>>,
    pub rows: usize,
}

impl Refit {
    /// Starts fitting `params` on `data` (calibrated for `rate`, see
    /// [`fit_calibrated`]) on another thread.
    pub fn start(params: IsolationForestParams, data: FeatureMatrix, rate: f64) -> Result<Refit> {
        let rows = data.n_rows();
        let handle = std::thread::Builder::new()
            .name("refit".into())
            .spawn(move || fit_calibrated(&params, &data, rate))
            .context("cannot start the refit thread")?;
        Ok(Refit { handle, rows })
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The fitted model and its threshold (waits if it is not done).
    pub fn finish(self) -> Result<Calibrated> {
        self.handle
            .join()
            .map_err(|_| anyhow!("the refit thread failed"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_last_rows() {
        let mut r = Recent::new(2, 3);
        for i in 0..5 {
            r.push([i as f32, 10.0 * i as f32].into_iter());
        }
        assert_eq!(r.len(), 3);
        let m = r.snapshot(vec!["a".into(), "b".into()]);
        let mut a = m.column(0).to_vec();
        a.sort_by(f32::total_cmp);
        assert_eq!(a, [2.0, 3.0, 4.0]);
        let mut b = m.column(1).to_vec();
        b.sort_by(f32::total_cmp);
        assert_eq!(b, [20.0, 30.0, 40.0]);
    }

    #[test]
    fn thresholds_hold_back_unseen_rows() {
        let mut s: Vec<f64> = (0..1000).rev().map(|i| i as f64).collect();
        assert_eq!(alert_threshold(&mut s, 0.01), 10.0);
        assert_eq!(
            alert_threshold(&mut s, 1e-4),
            0.0,
            "fewer rows than 1/rate: the lowest"
        );
        assert_eq!(alert_threshold(&mut [], 0.1), f64::NEG_INFINITY);
        // 100 rows: 80 fitted, 20 scored for the threshold; the baseline
        // covers all 100.
        let m = FeatureMatrix::from_columns(
            vec!["x".into()],
            vec![(0..100).map(|i| (i % 10) as f32).collect()],
        );
        let params = IsolationForestParams {
            n_estimators: 20,
            ..Default::default()
        };
        let (model, t, scores) = fit_calibrated(&params, &m, 0.05).unwrap();
        assert_eq!(scores.len(), 20);
        assert!(scores.windows(2).all(|w| w[0] <= w[1]));
        let fit = params
            .fit(&m.select_rows(&(0..80).collect::<Vec<_>>()))
            .unwrap();
        assert_eq!(model.forest, fit.forest);
        let mut held = fit.score_samples(&m.select_rows(&(80..100).collect::<Vec<_>>()));
        assert_eq!(t, alert_threshold(&mut held, 0.05).min(model.offset));
        assert_eq!(model.baseline.features[0].max, 9.0);
    }

    #[test]
    fn a_refit_runs_in_the_background_and_returns_the_model() {
        let mut r = Recent::new(1, 100);
        for i in 0..100 {
            r.push(std::iter::once((i % 10) as f32));
        }
        let params = IsolationForestParams {
            n_estimators: 10,
            ..Default::default()
        };
        let data = r.snapshot(vec!["length".into()]);
        let want = fit_calibrated(&params, &data, 0.01).unwrap();
        let refit = Refit::start(params, data, 0.01).unwrap();
        assert_eq!(refit.rows, 100);
        assert_eq!(refit.finish().unwrap(), want);
    }
}
