//! Detection metrics over suspicion scores (higher = more anomalous: the
//! negated `anomaly_score`); attacks are the positives.

/// ROC AUC: the chance that an attack scores above a benign packet, ties
/// counting one half (the Mann-Whitney U statistic over `n_pos * n_neg`).
/// `NaN` when either side is empty.
pub fn roc_auc(attack: &[f64], benign: &[f64]) -> f64 {
    if attack.is_empty() || benign.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = attack
        .iter()
        .map(|&s| (s, true))
        .chain(benign.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the attacks' ranks (1-based), tied values sharing their mean
    // rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        let positives = all[i..j].iter().filter(|e| e.1).count();
        rank_sum += mean_rank * positives as f64;
        i = j;
    }
    let p = attack.len() as f64;
    let u = rank_sum - p * (p + 1.0) / 2.0;
    u / (p * benign.len() as f64)
}

/// Average precision as scikit-learn computes it: the precision at each
/// distinct threshold, weighted by the recall gained there (tied scores
/// form one threshold).
pub fn average_precision(attack: &[f64], benign: &[f64]) -> f64 {
    if attack.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = attack
        .iter()
        .map(|&s| (s, true))
        .chain(benign.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = attack.len() as f64;
    let (mut tp, mut fp, mut ap) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        let gained = tp;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        if tp > gained {
            ap += (tp - gained) as f64 / positives * (tp as f64 / (tp + fp) as f64);
        }
        i = j;
    }
    ap
}

/// The threshold for a false-alarm rate: scores strictly above it are
/// alarms, and at most `floor(rate * n)` of the `n` benign scores are
/// above it (fewer when scores tie). `+inf` when `benign` is empty.
pub fn threshold_at(benign: &[f64], rate: f64) -> f64 {
    if benign.is_empty() {
        return f64::INFINITY;
    }
    let mut sorted = benign.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let k = ((rate * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
    sorted[k]
}

/// How many of `scores` are alarms at `threshold`.
pub fn count_above(scores: &[f64], threshold: f64) -> usize {
    scores.iter().filter(|&&s| s > threshold).count()
}

/// `part / whole`, 0 for an empty whole.
pub fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn brute_auc(attack: &[f64], benign: &[f64]) -> f64 {
        let mut wins = 0.0;
        for a in attack {
            for b in benign {
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        wins / (attack.len() * benign.len()) as f64
    }

    #[test]
    fn auc_matches_a_pair_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..200 {
            let np = rng.gen_range(1..20);
            let nn = rng.gen_range(1..20);
            // Few distinct values: many ties.
            let levels = rng.gen_range(1..8);
            let attack: Vec<f64> = (0..np).map(|_| rng.gen_range(0..levels) as f64).collect();
            let benign: Vec<f64> = (0..nn).map(|_| rng.gen_range(0..levels) as f64).collect();
            let fast = roc_auc(&attack, &benign);
            let slow = brute_auc(&attack, &benign);
            assert!((fast - slow).abs() < 1e-12, "{fast} vs {slow}");
        }
        assert_eq!(roc_auc(&[2.0, 3.0], &[0.0, 1.0]), 1.0);
        assert_eq!(roc_auc(&[0.0], &[1.0]), 0.0);
        assert!(roc_auc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn average_precision_by_hand() {
        // Ranked: A .9, B .8, A .6, B .5, A .3 -> (1 + 2/3 + 3/5) / 3.
        let ap = average_precision(&[0.9, 0.6, 0.3], &[0.8, 0.5]);
        assert!((ap - (1.0 + 2.0 / 3.0 + 0.6) / 3.0).abs() < 1e-12, "{ap}");
        // A tie is one threshold: precision 1/2 there.
        assert_eq!(average_precision(&[0.5], &[0.5]), 0.5);
        // A tie of an attack and a benign packet (precision 1/2), a
        // benign packet, then the other attack (2/4): (1/2 + 2/4) / 2.
        let ap = average_precision(&[0.7, 0.2], &[0.7, 0.1, 0.4]);
        assert!((ap - 0.5).abs() < 1e-12, "{ap}");
        assert_eq!(average_precision(&[5.0], &[1.0, 2.0]), 1.0);
    }

    #[test]
    fn thresholds_are_benign_quantiles() {
        let benign: Vec<f64> = (0..1000).map(f64::from).collect();
        let t = threshold_at(&benign, 0.01);
        assert_eq!(t, 989.0);
        assert_eq!(count_above(&benign, t), 10);
        let t = threshold_at(&benign, 0.001);
        assert_eq!(count_above(&benign, t), 1);
        // Too few benign packets for 1 %: nothing benign passes.
        let few: Vec<f64> = (0..50).map(f64::from).collect();
        assert_eq!(count_above(&few, threshold_at(&few, 0.01)), 0);
        // Ties never push the false alarms above the rate.
        let tied = vec![1.0; 500];
        assert_eq!(count_above(&tied, threshold_at(&tied, 0.01)), 0);
        assert_eq!(threshold_at(&[], 0.01), f64::INFINITY);
        assert_eq!(share(1, 4), 0.25);
        assert_eq!(share(1, 0), 0.0);
    }
}
