use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
#[cfg(target_arch = "x86_64")]
use crate::score::avx512;
use crate::score::node_lines::{self, NodeLines};
use crate::score::rank_tree::RankTree;
use crate::score::{ForestScorer, Walk};
use crate::testing::noisy_problem;
use crate::Block;

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|k| k.to_string()).collect()
}

/// Probabilities on the walk this CPU picks.
fn proba(model: &RandomForest, data: &FeatureMatrix) -> Vec<f64> {
    ForestScorer::new(model.clone()).probabilities(data)
}

/// Classes on the walk this CPU picks.
fn predict(model: &RandomForest, data: &FeatureMatrix) -> Vec<u32> {
    ForestScorer::new(model.clone()).classes(data)
}

/// The node lines of a forest that fits them.
fn lines_of(forest: &FlatForest) -> NodeLines {
    NodeLines::new(forest).expect("at most 32 features fit node lines")
}

#[test]
fn flat_forest_equals_the_pointer_trees_on_every_row() {
    for (rows, features, depth) in [(400, 5, None), (150, 11, Some(4)), (60, 1, None)] {
        let (train, labels) = noisy_problem(rows, features, 1);
        let (test, _) = noisy_problem(333, features, 2);
        let params = RandomForestParams {
            n_estimators: 17,
            max_depth: depth,
            ..Default::default()
        };
        let trees = params.grow_trees(&train, &labels, 3, &|| {}).unwrap();
        let model = params.fit(&train, &labels, classes(3), &|| {}).unwrap();
        for data in [&train, &test] {
            let want = reference_proba(&trees, data);
            assert_eq!(proba(&model, data), want, "{rows}x{features}");
            let c = 3;
            let block = Block::of_matrix(data, 0, data.n_rows());
            let mut sums = vec![0.0; data.n_rows() * c];
            model.forest.add_probabilities_scalar(block, &mut sums);
            let got: Vec<f64> = sums.iter().map(|s| s / 17.0).collect();
            assert_eq!(got, want, "scalar");
            for walk in [Walk::Lanes, Walk::Avx512] {
                let Some(scorer) = ForestScorer::with_walk(&model, walk) else {
                    eprintln!("{walk:?} does not run here: not compared");
                    continue;
                };
                let mut sums = vec![0.0; data.n_rows() * c];
                scorer.add_sums(block, &mut sums);
                let got: Vec<f64> = sums.iter().map(|s| s / 17.0).collect();
                assert_eq!(got, want, "{walk:?}");
            }
        }
    }
}

#[test]
fn same_seed_same_forest_whatever_the_thread_count() {
    let (data, labels) = noisy_problem(300, 4, 6);
    let fit = |jobs, seed| {
        RandomForestParams {
            n_estimators: 12,
            n_jobs: jobs,
            random_state: seed,
            ..Default::default()
        }
        .fit(&data, &labels, classes(3), &|| {})
        .unwrap()
    };
    let one = fit(1, 42);
    assert_eq!(fit(3, 42).forest, one.forest);
    assert_eq!(fit(0, 42).forest, one.forest);
    assert_ne!(fit(1, 7).forest, one.forest);
}

#[test]
fn probabilities_are_means_of_leaf_frequencies_and_sum_to_one() {
    let (data, labels) = noisy_problem(300, 4, 8);
    let model = RandomForestParams {
        n_estimators: 10,
        ..Default::default()
    }
    .fit(&data, &labels, classes(3), &|| {})
    .unwrap();
    let proba = proba(&model, &data);
    for row in proba.chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{row:?}");
    }
    // Fully grown trees fit their training data well.
    let predicted = predict(&model, &data);
    let right = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, y)| p == y)
        .count();
    assert!(right as f64 > 0.8 * 300.0, "{right} of 300");
}

#[test]
fn a_learnable_problem_is_learned_and_entropy_works_too() {
    // Class = which of 4 quadrants; features 2..5 are noise.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let make = |rng: &mut ChaCha8Rng, n: usize| {
        let mut cols = vec![Vec::new(); 6];
        let mut y = Vec::new();
        for _ in 0..n {
            let a: f32 = rng.gen_range(-1.0..1.0);
            let b: f32 = rng.gen_range(-1.0..1.0);
            y.push((a > 0.0) as u32 * 2 + (b > 0.0) as u32);
            cols[0].push(a);
            cols[1].push(b);
            for c in cols.iter_mut().skip(2) {
                c.push(rng.gen_range(-1.0..1.0));
            }
        }
        let names = (0..6).map(|f| format!("f{f}")).collect();
        (FeatureMatrix::from_columns(names, cols), y)
    };
    let (train, y_train) = make(&mut rng, 1000);
    let (test, y_test) = make(&mut rng, 500);
    for criterion in [Criterion::Gini, Criterion::Entropy] {
        let model = RandomForestParams {
            n_estimators: 30,
            criterion,
            ..Default::default()
        }
        .fit(&train, &y_train, classes(4), &|| {})
        .unwrap();
        let right = predict(&model, &test)
            .iter()
            .zip(&y_test)
            .filter(|(p, y)| p == y)
            .count();
        assert!(right > 470, "{criterion:?}: {right} of 500");
    }
}

#[test]
fn max_features_resolves_as_scikit_learn() {
    assert_eq!(MaxFeatures::Sqrt.resolve(11).unwrap(), 3);
    assert_eq!(MaxFeatures::Sqrt.resolve(1).unwrap(), 1);
    assert_eq!(MaxFeatures::Log2.resolve(11).unwrap(), 3);
    assert_eq!(MaxFeatures::All.resolve(11).unwrap(), 11);
    assert_eq!(MaxFeatures::Fraction(0.5).resolve(11).unwrap(), 5);
    assert_eq!(MaxFeatures::Fraction(0.01).resolve(11).unwrap(), 1);
    assert!(MaxFeatures::Count(12).resolve(11).is_err());
    assert_eq!("sqrt".parse::<MaxFeatures>().unwrap(), MaxFeatures::Sqrt);
    assert_eq!("4".parse::<MaxFeatures>().unwrap(), MaxFeatures::Count(4));
    assert_eq!(
        "0.3".parse::<MaxFeatures>().unwrap(),
        MaxFeatures::Fraction(0.3)
    );
    assert!("2.5".parse::<MaxFeatures>().is_err());
}

#[test]
fn linfa_traits_fit_and_predict() {
    use linfa::prelude::{Fit, ParamGuard, Predict};
    let (data, labels) = noisy_problem(200, 4, 10);
    let lines = ndarray::Array2::from_shape_fn((200, 4), |(r, f)| data.get(r, f));
    let targets = ndarray::Array1::from_iter(labels.iter().map(|&l| l as usize));
    let dataset = linfa::Dataset::new(lines.clone(), targets);
    let params = RandomForestParams {
        n_estimators: 5,
        ..Default::default()
    };
    // Inherent methods share the names: call the linfa traits explicitly.
    let model = Fit::fit(&params, &dataset).unwrap();
    let direct = params.fit(&data, &labels, classes(3), &|| {}).unwrap();
    assert_eq!(model.model().forest, direct.forest);
    let predicted: ndarray::Array1<usize> = Predict::predict(&model, &lines);
    let want: Vec<usize> = predict(&direct, &data)
        .iter()
        .map(|&p| p as usize)
        .collect();
    assert_eq!(predicted.to_vec(), want);
    let bad = RandomForestParams {
        n_estimators: 0,
        ..Default::default()
    };
    assert!(bad.check_ref().is_err());
}

/// `k` classes over `features` columns (repeated values, a constant column)
/// for the line layout tests.
fn problem_k(rows: usize, features: usize, k: u32, seed: u64) -> (FeatureMatrix, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..rows).map(|_| rng.gen_range(0..k)).collect();
    let columns = (0..features)
        .map(|f| {
            labels
                .iter()
                .map(|&y| match f % 3 {
                    0 => y as f32 + rng.gen_range(-1.5f32..1.5),
                    1 => rng.gen_range(-2..3) as f32,
                    _ if f == 2 => -4.0,
                    _ => rng.gen_range(-10.0f32..10.0) * (1 + y % 2) as f32,
                })
                .collect()
        })
        .collect();
    let names = (0..features).map(|f| format!("f{f}")).collect();
    (FeatureMatrix::from_columns(names, columns), labels)
}

/// `base` with some values replaced by the forest's own thresholds (ties
/// go left), zeros of both signs, infinities and NaN (never greater).
fn with_edge_values(base: &FeatureMatrix, forest: &FlatForest, seed: u64) -> FeatureMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let thresholds: Vec<f32> = forest
        .nodes
        .iter()
        .map(|n| n.threshold)
        .filter(|t| t.is_finite())
        .collect();
    let columns = (0..base.n_features())
        .map(|f| {
            (0..base.n_rows())
                .map(|r| match rng.gen_range(0..10) {
                    0 if !thresholds.is_empty() => thresholds[rng.gen_range(0..thresholds.len())],
                    1 => {
                        [0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY][rng.gen_range(0..5)]
                    }
                    _ => base.get(r, f),
                })
                .collect()
        })
        .collect();
    FeatureMatrix::from_columns(base.names().to_vec(), columns)
}

#[test]
fn exit_table_follows_the_comparisons_down_three_levels() {
    for mask in 0..256usize {
        let bit = |p: usize| (mask >> p) & 1;
        let b1 = bit(1);
        let b2 = bit(2 + b1);
        let b3 = bit(4 + 2 * b1 + b2);
        assert_eq!(
            node_lines::EXIT[mask] as usize,
            4 * b1 + 2 * b2 + b3,
            "mask {mask:08b}"
        );
    }
}

#[test]
fn rank_tree_searches_equal_the_plain_search() {
    #[cfg(target_arch = "x86_64")]
    let avx512 = Walk::Avx512.runs_here();
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    if !avx512 {
        eprintln!("partly skipped: rank_tree_searches_equal_the_plain_search: this CPU has no AVX-512, only the plain search is checked");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    // Lengths around whole lines and around one more level (15, 255 and
    // 4095 keys and their pad fill 1, 2 and 3 levels exactly).
    let lengths = [255, 256, 257, 1000, 4095, 4096, 4097, 70_000];
    for len in (0..70).chain(lengths) {
        let mut sorted: Vec<u32> = (0..len).map(|_| rng.gen_range(1..u32::MAX - 1)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let tree = RankTree::new(&sorted);
        assert_eq!(tree.sorted(), sorted);
        for _ in 0..8 {
            // Keys on, beside and outside the sorted ones.
            let mut keys = [0u32; 16];
            for k in &mut keys {
                *k = match (rng.gen_range(0..4), sorted.is_empty()) {
                    (0, false) => sorted[rng.gen_range(0..sorted.len())],
                    (1, false) => sorted[rng.gen_range(0..sorted.len())] + 1,
                    (2, _) => [0, 1, u32::MAX - 1, u32::MAX][rng.gen_range(0..4)],
                    _ => rng.gen(),
                };
            }
            let want = keys.map(|k| sorted.partition_point(|&s| s < k));
            assert_eq!(keys.map(|k| tree.rank(k)), want, "{len} keys");
            #[cfg(target_arch = "x86_64")]
            if avx512 {
                // SAFETY: the CPU has AVX-512 (checked above).
                assert_eq!(unsafe { tree.ranks_avx512(&keys) }, want, "{len} keys");
            }
        }
    }
    // Whole columns (not a multiple of 16 rows, edge values included) give
    // the keys of one value at a time.
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        let (train, labels) = problem_k(300, 4, 3, 7);
        let model = RandomForestParams::default()
            .fit(&train, &labels, classes(3), &|| {})
            .unwrap();
        let lines = lines_of(&model.forest);
        let test = with_edge_values(&problem_k(37, 4, 3, 8).0, &model.forest, 2);
        for f in 0..4 {
            let mut got = vec![None; test.n_rows()];
            // SAFETY: the CPU has AVX-512 (checked above).
            unsafe { lines.row_keys(f, test.column(f), |r, key| got[r] = Some(key)) };
            let want: Vec<_> = (0..test.n_rows())
                .map(|r| Some(lines.row_key(f, test.get(r, f))))
                .collect();
            assert_eq!(got, want, "feature {f}");
        }
    }
}

#[test]
fn record_walk_equals_the_pointer_trees() {
    for (rows, features, k, depth) in [
        (400, 5, 3, None),
        (150, 16, 5, Some(4)),
        (60, 1, 2, None),
        (300, 11, 9, None),
        (200, 3, 4, Some(1)),
        (300, 24, 3, None),
    ] {
        let (train, labels) = problem_k(rows, features, k, 1);
        let params = RandomForestParams {
            n_estimators: 9,
            max_depth: depth,
            ..Default::default()
        };
        let trees = params
            .grow_trees(&train, &labels, k as usize, &|| {})
            .unwrap();
        let model = params
            .fit(&train, &labels, classes(k as usize), &|| {})
            .unwrap();
        let lines = lines_of(&model.forest);
        let (test, _) = problem_k(257, features, k, 2);
        for data in [&train, &with_edge_values(&test, &model.forest, 3)] {
            let want = reference_proba(&trees, data);
            let mut sums = vec![0.0; data.n_rows() * k as usize];
            lines.add_probabilities_scalar(Block::of_matrix(data, 0, data.n_rows()), &mut sums);
            let got: Vec<f64> = sums.iter().map(|s| s / 9.0).collect();
            assert_eq!(got, want, "{rows}x{features}, {k} classes, depth {depth:?}");
        }
    }
}

#[test]
fn single_leaf_trees_and_wide_forests_score_like_the_pointer_trees() {
    // Every label the same: each tree is one leaf (the root line leads
    // to it from every exit).
    let (data, _) = problem_k(50, 4, 2, 4);
    let same = vec![1u32; 50];
    let params = RandomForestParams {
        n_estimators: 3,
        ..Default::default()
    };
    let trees = params.grow_trees(&data, &same, 2, &|| {}).unwrap();
    let model = params.fit(&data, &same, classes(2), &|| {}).unwrap();
    assert!(trees.iter().all(|t| t.nodes.len() == 1));
    assert!(NodeLines::new(&model.forest).is_some());
    assert_eq!(proba(&model, &data), reference_proba(&trees, &data));
    // 33 features: no node lines; the lane walk scores instead.
    let (data, labels) = problem_k(120, 33, 3, 5);
    let trees = params.grow_trees(&data, &labels, 3, &|| {}).unwrap();
    let model = params.fit(&data, &labels, classes(3), &|| {}).unwrap();
    assert!(NodeLines::new(&model.forest).is_none());
    assert_eq!(ForestScorer::new(model.clone()).walk(), Walk::Lanes);
    assert_eq!(proba(&model, &data), reference_proba(&trees, &data));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_walk_equals_the_record_walk_on_random_forests_and_blocks() {
    if !Walk::Avx512.runs_here() {
        eprintln!("skipped: avx512_walk_equals_the_record_walk_on_random_forests_and_blocks: this CPU has no AVX-512");
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    // Forests seen with each leaf layout: votes, other shared values.
    let (mut votes, mut shared) = (0, 0);
    for round in 0..32 {
        // Up to 16 features: rows in one register; 17 to 32: two.
        let features = rng.gen_range(1..=32);
        let k = rng.gen_range(2..=9);
        let (train, labels) = problem_k(rng.gen_range(20..400), features, k, round);
        let params = RandomForestParams {
            n_estimators: rng.gen_range(1..8),
            max_depth: [None, Some(rng.gen_range(1..9))][rng.gen_range(0..2)],
            random_state: round,
            ..Default::default()
        };
        let model = params
            .fit(&train, &labels, classes(k as usize), &|| {})
            .unwrap();
        let lines = lines_of(&model.forest);
        let (test, _) = problem_k(rng.gen_range(1..700), features, k, 100 + round);
        let test = with_edge_values(&test, &model.forest, round);
        // Sub-blocks exercise offsets, partial lane groups and tiles.
        let start = rng.gen_range(0..test.n_rows());
        let end = rng.gen_range(start..=test.n_rows());
        let block = Block::of_matrix(&test, start, end);
        let mut want = vec![0.0; block.len() * k as usize];
        lines.add_probabilities_scalar(block, &mut want);
        // Fully grown trees share a few value vectors; the same forest with
        // numbered leaves is the layout of forests with many.
        let numbered = NodeLines::with_numbered_leaves(&model.forest).unwrap();
        assert!(!numbered.shared_values);
        assert!(!numbered.votes());
        votes += lines.votes() as usize;
        shared += (lines.shared_values && !lines.votes()) as usize;
        let mut again = vec![0.0; block.len() * k as usize];
        numbered.add_probabilities_scalar(block, &mut again);
        assert_eq!(
            again, want,
            "round {round}: numbered leaves, one row at a time"
        );
        for lines in [&lines, &numbered] {
            let tile = rng.gen_range(1..300);
            let (first, later) = (rng.gen_range(1..10), rng.gen_range(1..4));
            let mut got = vec![0.0; block.len() * k as usize];
            // SAFETY: the CPU has the features (checked at the top).
            unsafe { avx512::add_probabilities_with(lines, block, &mut got, tile, first, later) };
            assert_eq!(
                got, want,
                "round {round}: tile {tile}, waves {first}/{later}, shared {}",
                lines.shared_values
            );
        }
        let mut got = vec![0.0; block.len() * k as usize];
        let scorer = ForestScorer::with_walk(&model, Walk::Avx512).unwrap();
        scorer.add_sums(block, &mut got);
        assert_eq!(got, want, "round {round}: default tile and waves");
    }
    assert!(votes > 0 && shared > 0, "{votes} voting, {shared} shared");
}

/// Classes with the early stop against the argmax of every tree's sums, on
/// forests large enough for rows to stop (and some near-ties: random labels
/// and noise features): the lane walk, and the AVX-512 walk with shared and
/// numbered leaf values.
#[test]
fn early_stop_gives_the_classes_of_the_full_sums() {
    let avx512 = Walk::Avx512.runs_here();
    if !avx512 {
        eprintln!(
            "early_stop_gives_the_classes_of_the_full_sums: this CPU lacks AVX-512: \
             that walk is skipped"
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for round in 0..6 {
        let features = rng.gen_range(1..=20);
        let k = rng.gen_range(2..=5);
        let (train, labels) = problem_k(300, features, k, 50 + round);
        let params = RandomForestParams {
            n_estimators: rng.gen_range(30..90),
            max_depth: [None, Some(4)][round as usize % 2],
            random_state: round,
            ..Default::default()
        };
        let model = params
            .fit(&train, &labels, classes(k as usize), &|| {})
            .unwrap();
        let (test, _) = problem_k(rng.gen_range(1..900), features, k, 150 + round);
        let test = with_edge_values(&test, &model.forest, round);
        let block = Block::of_matrix(&test, 0, test.n_rows());
        let mut want = vec![0; block.len()];
        model.forest.predict_classes_all_trees(block, &mut want);
        let proba = proba(&model, &test);
        assert_eq!(want, argmax_rows(&proba, k as usize), "round {round}");
        // Rows did stop early (the test would not see a wrong stop
        // otherwise), and none walked more than every tree.
        let all = block.len() * model.forest.n_trees();
        let check = |got: &[u32], walks: usize, walk: &str| {
            assert_eq!(got, want, "round {round}, {walk}");
            assert!(walks < all, "round {round}, {walk}: {walks} walks of {all}");
        };
        let mut got = vec![u32::MAX; block.len()];
        let walks = model.forest.predict_classes_lanes(block, &mut got);
        check(&got, walks, "lanes");
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            let numbered = NodeLines::with_numbered_leaves(&model.forest).unwrap();
            let lines = lines_of(&model.forest);
            assert!(
                params.max_depth.is_some() || lines.votes(),
                "pure leaves: votes"
            );
            for lines in [&lines, &numbered] {
                let mut got = vec![u32::MAX; block.len()];
                // SAFETY: the CPU has the features (checked at the top).
                let walks = unsafe { avx512::predict_classes(lines, block, &mut got) };
                let walk = format!("AVX-512, shared {}", lines.shared_values);
                check(&got, walks, &walk);
            }
        }
        assert_eq!(predict(&model, &test), want, "round {round}: predict");
    }
}

#[test]
fn stop_needs_a_lead_the_trees_left_cannot_overturn() {
    use stop::lead;
    assert_eq!(lead(&[3.0, 7.0, 5.0]), 2.0);
    assert_eq!(lead(&[7.0, 7.0, 1.0]), 0.0);
    assert_eq!(lead(&[4.0]), f64::INFINITY);
    // Leaves of one class (spread 1): after 60 of 100 trees, 40 to go.
    let (_, labels) = problem_k(200, 3, 2, 9);
    let (data, _) = problem_k(200, 3, 2, 9);
    let model = RandomForestParams {
        n_estimators: 5,
        ..Default::default()
    }
    .fit(&data, &labels, classes(2), &|| {})
    .unwrap();
    let stop = stop::Stop::new(model.forest.n_trees(), &model.forest.values).unwrap();
    assert!(stop.lead_needed(40) > 40.0 && stop.lead_needed(40) < 40.001);
    assert!(
        !stop.worth_checking(40, 60),
        "a lead of 40 cannot beat 60 trees"
    );
    assert!(stop.worth_checking(64, 36));
    assert!(!stop.worth_checking(100, 0), "nothing left to save");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn tiles_keep_row_keys_in_a_large_l2_only() {
    // 1 MiB or unknown: the large tiles measured best there.
    assert_eq!(avx512::tile_rows_for(0), 50_000);
    assert_eq!(avx512::tile_rows_for(1 << 20), 50_000);
    // 2 MiB: 64-byte row keys in 3/4 of it.
    assert_eq!(avx512::tile_rows_for(2 << 20), 24_576);
    assert_eq!(avx512::tile_rows_for(3 << 20), 36_864);
    assert_eq!(avx512::tile_rows_for(8 << 20), 50_000);
    let rows = avx512::tile_rows();
    assert!((24_576..=50_000).contains(&rows), "{rows} rows per tile");
}
