//! Seeded stratified train/test split, as scikit-learn's
//! `train_test_split(..., stratify=y)` (`StratifiedShuffleSplit`): the test
//! set holds ceil(test_size * n) rows and each class gets its share, the
//! remainders going to the classes with the largest fractional parts
//! (random among equal ones).

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Row indices of each side, ascending (file order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainTest {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// scikit-learn's `_approximate_mode`: `draws` spread over classes in
/// proportion to `counts`.
fn approximate_mode(counts: &[usize], draws: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let continuous: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 * draws as f64 / total as f64)
        .collect();
    let mut floored: Vec<usize> = continuous.iter().map(|c| c.floor() as usize).collect();
    let mut need = draws.saturating_sub(floored.iter().sum());
    let remainder: Vec<f64> = continuous
        .iter()
        .zip(&floored)
        .map(|(c, &f)| c - f as f64)
        .collect();
    let mut values = remainder.clone();
    values.sort_by(|a, b| b.total_cmp(a));
    values.dedup();
    for v in values {
        if need == 0 {
            break;
        }
        let mut tied: Vec<usize> = (0..counts.len()).filter(|&k| remainder[k] == v).collect();
        tied.shuffle(rng);
        for &k in tied.iter().take(need) {
            floored[k] += 1;
        }
        need -= tied.len().min(need);
    }
    floored
}

/// Splits rows with class indices `labels` (below `classes.len()`).
/// Every class must end with rows on both sides.
pub fn stratified(
    labels: &[u32],
    classes: &[String],
    test_size: f64,
    random_state: u64,
) -> Result<TrainTest> {
    if !(test_size > 0.0 && test_size < 1.0) {
        bail!("--test-size must be a fraction in (0, 1), got {test_size}");
    }
    let n = labels.len();
    let n_classes = classes.len();
    let n_test = (test_size * n as f64).ceil() as usize;
    let n_train = n - n_test.min(n);
    if n_test < n_classes || n_train < n_classes {
        bail!(
            "a test size of {test_size} on {n} rows gives {n_test} test and {n_train} training rows; \
             each side needs at least one row of each of the {n_classes} classes"
        );
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (row, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(row);
    }
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    if let Some(k) = (0..n_classes).find(|&k| counts[k] < 2) {
        bail!(
            "the class `{}` has only {} row{}: a stratified split needs at least 2 rows of each class",
            classes[k],
            counts[k],
            if counts[k] == 1 { "" } else { "s" }
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(random_state);
    let train_counts = approximate_mode(&counts, n_train, &mut rng);
    let rest: Vec<usize> = counts
        .iter()
        .zip(&train_counts)
        .map(|(c, t)| c - t)
        .collect();
    let test_counts = approximate_mode(&rest, n_test, &mut rng);
    for k in 0..n_classes {
        if test_counts[k] == 0 || train_counts[k] == 0 {
            let side = if test_counts[k] == 0 {
                "test"
            } else {
                "training"
            };
            bail!(
                "the {side} split gets no row of the class `{}` ({} rows in all); \
                 change --test-size or add rows of that class",
                classes[k],
                counts[k]
            );
        }
    }
    let mut split = TrainTest {
        train: Vec::with_capacity(n_train),
        test: Vec::with_capacity(n_test),
    };
    for (k, rows) in by_class.iter_mut().enumerate() {
        rows.shuffle(&mut rng);
        split.train.extend_from_slice(&rows[..train_counts[k]]);
        split
            .test
            .extend_from_slice(&rows[train_counts[k]..train_counts[k] + test_counts[k]]);
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("c{k}")).collect()
    }

    #[test]
    fn proportions_are_kept_on_both_sides() {
        // 700 / 200 / 100 rows: a 30% test split holds 210 / 60 / 30.
        let mut labels = vec![0u32; 700];
        labels.extend(vec![1; 200]);
        labels.extend(vec![2; 100]);
        let s = stratified(&labels, &names(3), 0.3, 42).unwrap();
        assert_eq!(s.test.len(), 300);
        assert_eq!(s.train.len(), 700);
        let count = |rows: &[usize], k| rows.iter().filter(|&&r| labels[r] == k).count();
        assert_eq!([0, 1, 2].map(|k| count(&s.test, k)), [210, 60, 30]);
        assert_eq!([0, 1, 2].map(|k| count(&s.train, k)), [490, 140, 70]);
        // Disjoint and complete.
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn remainders_go_to_the_largest_fractions_and_the_seed_decides() {
        // 10 rows: 7 of class 0, 3 of class 1; test = ceil(2.5) = 3 rows.
        // Train 7: 4.9 -> 4 (+1 for the larger remainder .9) = 5 and 2.1 -> 2.
        let labels = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1];
        let s = stratified(&labels, &names(2), 0.25, 1).unwrap();
        let test1 = s.test.iter().filter(|&&r| labels[r] == 1).count();
        assert_eq!((s.train.len(), s.test.len(), test1), (7, 3, 1));
        assert_eq!(stratified(&labels, &names(2), 0.25, 1).unwrap(), s);
        let other: Vec<_> = (0..20)
            .map(|seed| stratified(&labels, &names(2), 0.25, seed).unwrap())
            .collect();
        assert!(other.iter().any(|o| o != &s), "seeds change the rows drawn");
    }

    #[test]
    fn impossible_splits_are_explained() {
        let e = stratified(&[0, 0, 0, 1], &names(2), 0.5, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("class `c1` has only 1 row"), "{e}");
        // 2 rows of class 1 among 100, 10% test: training gets 88.2 -> 88
        // of class 0 and 1.8 -> 1 + the larger remainder = 2 of class 1,
        // leaving class 1 no test row.
        let mut labels = vec![0u32; 98];
        labels.extend([1, 1]);
        let e = stratified(&labels, &names(2), 0.1, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("split gets no row of the class `c1` (2 rows in all)"),
            "{e}"
        );
        let e = stratified(&[0, 1, 0, 1], &names(2), 1.5, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--test-size must be a fraction"), "{e}");
        let e = stratified(&[0, 1, 0, 1, 0, 1], &names(3), 0.2, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("each side needs at least one row"), "{e}");
    }
}
