//! `classify --report FILE.html`: how well the classifier does per class.
//! The confusion matrix as a heat map, precision, recall and F1 per class,
//! and the features the test accuracy depends on most (permutation
//! importance: the accuracy lost when one feature's test values are
//! shuffled, so it holds for any model and is measured on held-out rows).

use std::path::Path;

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::charts::{self, BLUE, GREEN, RED};
use super::Page;
use ml_sniffing_forest::metrics::{self, Evaluation};
use ml_sniffing_forest::score::ForestScorer;
use ml_sniffing_forest::FeatureMatrix;

/// Features shown in the importance chart at most.
const TOP_FEATURES: usize = 20;

pub struct Input<'a> {
    pub input: &'a Path,
    pub how: &'a str,
    pub evaluation: &'a Evaluation,
    pub classes: &'a [String],
    pub scorer: &'a ForestScorer,
    pub test: &'a FeatureMatrix,
    pub y_test: &'a [u32],
    pub random_state: u64,
}

pub fn write(path: &Path, d: &Input) -> Result<()> {
    let e = d.evaluation;
    let mut page = Page::new(
        "ml-sniffing classify report",
        &format!(
            "{}: tested on {} rows ({}); accuracy {:.4}, macro F1 {:.4}.",
            d.input.display(),
            e.n_samples,
            d.how,
            e.accuracy,
            e.macro_avg.f1
        ),
    );
    let labels: Vec<String> = e
        .labels
        .iter()
        .map(|&k| d.classes[k as usize].clone())
        .collect();
    page.chart(
        "confusion",
        "Confusion matrix",
        &charts::heatmap(&labels, &e.confusion)?,
        "Rows: true class; columns: predicted class; shade: share of the row.",
    );
    let pick = |f: fn(&metrics::Scores) -> f64| e.per_class.iter().map(f).collect::<Vec<f64>>();
    page.chart(
        "per-class",
        "Precision, recall and F1 per class",
        &charts::bars(
            &labels,
            &[
                ("precision", pick(|s| s.precision), BLUE),
                ("recall", pick(|s| s.recall), GREEN),
                ("F1", pick(|s| s.f1), RED),
            ],
            "score (0 to 1)",
        )?,
        "On the test rows.",
    );
    let mut rows: Vec<Vec<String>> = labels
        .iter()
        .zip(&e.per_class)
        .map(|(name, s)| {
            vec![
                name.clone(),
                format!("{:.2}", s.precision),
                format!("{:.2}", s.recall),
                format!("{:.2}", s.f1),
                s.support.to_string(),
            ]
        })
        .collect();
    rows.push(vec![
        "accuracy".into(),
        String::new(),
        String::new(),
        format!("{:.2}", e.accuracy),
        e.n_samples.to_string(),
    ]);
    page.table(
        "report",
        "Classification report",
        &["class", "precision", "recall", "f1-score", "support"],
        &rows,
    );
    let importance = permutation_importance(d);
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
    order.truncate(TOP_FEATURES);
    let names: Vec<String> = order.iter().map(|&f| d.test.names()[f].clone()).collect();
    let values: Vec<f64> = order.iter().map(|&f| importance[f].max(0.0)).collect();
    page.chart(
        "importance",
        "Feature importance",
        &charts::bars(
            &names,
            &[("accuracy lost", values, BLUE)],
            "test accuracy lost when shuffled",
        )?,
        "Permutation importance on the test rows (one seeded shuffle per feature); the \
         most important first.",
    );
    page.write(path)
}

/// The test accuracy lost when each feature's column is shuffled.
fn permutation_importance(d: &Input) -> Vec<f64> {
    let k = d.classes.len();
    let base = metrics::evaluate(d.y_test, &d.scorer.classes(d.test), k).accuracy;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(d.random_state);
    (0..d.test.n_features())
        .map(|f| {
            let mut shuffled = d.test.clone();
            shuffled.column_mut(f).shuffle(&mut rng);
            base - metrics::evaluate(d.y_test, &d.scorer.classes(&shuffled), k).accuracy
        })
        .collect()
}
