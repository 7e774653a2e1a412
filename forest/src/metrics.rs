//! Classification metrics as scikit-learn computes them: accuracy,
//! per-class precision / recall / F1 / support, macro and weighted averages
//! (`zero_division = 0`), and the confusion matrix.
//!
//! As `classification_report` and `confusion_matrix` with `labels=None`,
//! the classes reported are those present in the true or the predicted
//! labels, in class order.

use serde::Serialize;

/// Precision, recall, F1 and support of one class or one average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    #[serde(rename = "f1-score")]
    pub f1: f64,
    pub support: u64,
}

/// Every figure of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Class indices reported, ascending.
    pub labels: Vec<u32>,
    /// One entry per reported class, in `labels` order.
    pub per_class: Vec<Scores>,
    pub accuracy: f64,
    pub macro_avg: Scores,
    pub weighted_avg: Scores,
    /// `confusion[i][j]`: rows of true class `labels[i]` predicted as `labels[j]`.
    pub confusion: Vec<Vec<u64>>,
    pub n_samples: u64,
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Evaluates predictions `pred` against `truth` (class indices below
/// `n_classes`).
pub fn evaluate(truth: &[u32], pred: &[u32], n_classes: usize) -> Evaluation {
    assert_eq!(truth.len(), pred.len(), "one prediction per row");
    let mut full = vec![vec![0u64; n_classes]; n_classes];
    for (&t, &p) in truth.iter().zip(pred) {
        full[t as usize][p as usize] += 1;
    }
    let labels: Vec<u32> = (0..n_classes as u32)
        .filter(|&k| {
            let k = k as usize;
            full[k].iter().sum::<u64>() > 0 || full.iter().any(|row| row[k] > 0)
        })
        .collect();
    let confusion: Vec<Vec<u64>> = labels
        .iter()
        .map(|&i| {
            labels
                .iter()
                .map(|&j| full[i as usize][j as usize])
                .collect()
        })
        .collect();
    let per_class: Vec<Scores> = labels
        .iter()
        .map(|&k| {
            let k = k as usize;
            let tp = full[k][k] as f64;
            let support: u64 = full[k].iter().sum();
            let predicted: u64 = full.iter().map(|row| row[k]).sum();
            Scores {
                precision: ratio(tp, predicted as f64),
                recall: ratio(tp, support as f64),
                // F1 = 2 tp / (support + predicted), scikit-learn's form.
                f1: ratio(2.0 * tp, (support + predicted) as f64),
                support,
            }
        })
        .collect();
    let n_samples = truth.len() as u64;
    let correct: u64 = (0..n_classes).map(|k| full[k][k]).sum();
    let n_labels = per_class.len() as f64;
    let mean = |f: fn(&Scores) -> f64| ratio(per_class.iter().map(f).sum(), n_labels);
    let weighted = |f: fn(&Scores) -> f64| {
        ratio(
            per_class.iter().map(|s| f(s) * s.support as f64).sum(),
            n_samples as f64,
        )
    };
    Evaluation {
        accuracy: ratio(correct as f64, n_samples as f64),
        macro_avg: Scores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
            support: n_samples,
        },
        weighted_avg: Scores {
            precision: weighted(|s| s.precision),
            recall: weighted(|s| s.recall),
            f1: weighted(|s| s.f1),
            support: n_samples,
        },
        labels,
        per_class,
        confusion,
        n_samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows for a confusion matrix `m` (true i predicted j, m[i][j] times).
    fn rows_of(m: &[&[u32]]) -> (Vec<u32>, Vec<u32>) {
        let (mut t, mut p) = (Vec::new(), Vec::new());
        for (i, row) in m.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                for _ in 0..count {
                    t.push(i as u32);
                    p.push(j as u32);
                }
            }
        }
        (t, p)
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn binary_figures_from_a_hand_computed_confusion_matrix() {
        // true 0: 50 right, 10 wrong; true 1: 5 wrong, 35 right.
        let (t, p) = rows_of(&[&[50, 10], &[5, 35]]);
        let e = evaluate(&t, &p, 2);
        assert_eq!(e.confusion, vec![vec![50, 10], vec![5, 35]]);
        close(e.accuracy, 0.85);
        // class 0: precision 50/55, recall 50/60, f1 = 100/115.
        close(e.per_class[0].precision, 50.0 / 55.0);
        close(e.per_class[0].recall, 50.0 / 60.0);
        close(e.per_class[0].f1, 100.0 / 115.0);
        assert_eq!(e.per_class[0].support, 60);
        // class 1: precision 35/45, recall 35/40, f1 = 70/85.
        close(e.per_class[1].precision, 35.0 / 45.0);
        close(e.per_class[1].recall, 35.0 / 40.0);
        close(e.per_class[1].f1, 70.0 / 85.0);
        close(e.macro_avg.recall, (50.0 / 60.0 + 35.0 / 40.0) / 2.0);
        close(
            e.weighted_avg.f1,
            (60.0 * 100.0 / 115.0 + 40.0 * 70.0 / 85.0) / 100.0,
        );
        assert_eq!(e.macro_avg.support, 100);
    }

    #[test]
    fn three_classes_and_zero_division() {
        // Class 2 is never predicted: precision 0 (zero_division = 0).
        let (t, p) = rows_of(&[&[3, 1, 0], &[0, 4, 0], &[1, 1, 0]]);
        let e = evaluate(&t, &p, 3);
        assert_eq!(e.labels, vec![0, 1, 2]);
        close(e.accuracy, 7.0 / 10.0);
        assert_eq!(e.per_class[2].precision, 0.0);
        assert_eq!(e.per_class[2].recall, 0.0);
        assert_eq!(e.per_class[2].f1, 0.0);
        close(e.per_class[0].precision, 3.0 / 4.0);
        close(e.per_class[1].precision, 4.0 / 6.0);
        close(e.macro_avg.precision, (0.75 + 4.0 / 6.0 + 0.0) / 3.0);
        close(
            e.weighted_avg.recall,
            (4.0 * 0.75 + 4.0 * 1.0 + 2.0 * 0.0) / 10.0,
        );
    }

    #[test]
    fn classes_absent_from_both_sides_are_not_reported() {
        // Class 1 of 3 appears nowhere; class 2 only in predictions.
        let t = [0, 0, 2];
        let p = [0, 2, 2];
        let e = evaluate(&t, &p, 4);
        assert_eq!(e.labels, vec![0, 2]);
        assert_eq!(e.confusion, vec![vec![1, 1], vec![0, 1]]);
        close(e.per_class[1].precision, 0.5);
        close(e.per_class[0].recall, 0.5);
    }
}
