//! Random Forest benchmark driver, run by `cargo xtask bench --only rforest`
//! (which also runs scikit-learn on the same CSVs and prints the ratios).
//!
//! `rforest_bench DIR [--linfa-trees N]` generates the problems into DIR as
//! CSVs, then measures on one thread: fit time (200 trees), prediction rate
//! on the flat layout, a single tree against linfa-trees' `DecisionTree`,
//! linfa-ensemble's `RandomForest` (N trees), and accuracy / macro F1 on
//! the held-out quality problem. Figures go to stdout as Markdown rows and
//! to DIR/ours.json.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use linfa::prelude::{Fit, Predict};
use ml_sniffing::features::encoding::{ColumnEncoding, ColumnFeature, FeaturePlan};
use ml_sniffing::model_file::SavedModel;
use ml_sniffing_forest::metrics;
use ml_sniffing_forest::rforest::{MaxFeatures, RandomForest, RandomForestParams};
use ml_sniffing_forest::score::{ForestScorer, Walk};
use ml_sniffing_forest::FeatureMatrix;
use ml_sniffing_forest::{split, Block};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `make_classification`-style problem: Gaussian clusters on hypercube
/// vertices of the informative dimensions, mixed by a random matrix,
/// redundant features as linear combinations, the rest noise, and a share
/// of labels replaced at random.
struct Problem {
    n_features: usize,
    n_classes: usize,
    flip_y: f64,
    /// Per cluster: centroid and mixing matrix (informative x informative).
    clusters: Vec<(Vec<f64>, Vec<f64>)>,
    /// informative x redundant.
    redundant: Vec<f64>,
    n_informative: usize,
    n_redundant: usize,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

impl Problem {
    #[allow(clippy::too_many_arguments)]
    fn new(
        n_features: usize,
        n_informative: usize,
        n_redundant: usize,
        n_classes: usize,
        clusters_per_class: usize,
        class_sep: f64,
        flip_y: f64,
        seed: u64,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let clusters = (0..n_classes * clusters_per_class)
            .map(|_| {
                let centroid = (0..n_informative)
                    .map(|_| {
                        if rng.gen_bool(0.5) {
                            class_sep
                        } else {
                            -class_sep
                        }
                    })
                    .collect();
                let mix = (0..n_informative * n_informative)
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect();
                (centroid, mix)
            })
            .collect();
        let redundant = (0..n_informative * n_redundant)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        Problem {
            n_features,
            n_classes,
            flip_y,
            clusters,
            redundant,
            n_informative,
            n_redundant,
        }
    }

    fn sample(&self, rows: usize, seed: u64) -> (FeatureMatrix, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (ni, nr) = (self.n_informative, self.n_redundant);
        let mut cols = vec![Vec::with_capacity(rows); self.n_features];
        let mut labels = Vec::with_capacity(rows);
        for _ in 0..rows {
            let k = rng.gen_range(0..self.clusters.len());
            let (centroid, mix) = &self.clusters[k];
            let z: Vec<f64> = (0..ni).map(|_| normal(&mut rng)).collect();
            let x: Vec<f64> = (0..ni)
                .map(|j| centroid[j] + (0..ni).map(|i| z[i] * mix[i * ni + j]).sum::<f64>())
                .collect();
            for j in 0..ni {
                cols[j].push(x[j] as f32);
            }
            for r in 0..nr {
                let v: f64 = (0..ni).map(|i| x[i] * self.redundant[i * nr + r]).sum();
                cols[ni + r].push(v as f32);
            }
            for col in cols.iter_mut().skip(ni + nr) {
                col.push(normal(&mut rng) as f32);
            }
            let mut y = (k % self.n_classes) as u32;
            if rng.gen_bool(self.flip_y) {
                y = rng.gen_range(0..self.n_classes as u32);
            }
            labels.push(y);
        }
        let names = (0..self.n_features).map(|f| format!("f{f}")).collect();
        (FeatureMatrix::from_columns(names, cols), labels)
    }
}

fn write_csv(path: &Path, data: &FeatureMatrix, labels: &[u32]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    let mut header: Vec<String> = data.names().to_vec();
    header.push("label".into());
    w.write_record(&header)?;
    for (r, label) in labels.iter().enumerate() {
        let mut rec: Vec<String> = data.row(r).iter().map(|v| format!("{v:?}")).collect();
        rec.push(format!("class_{label}"));
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("class_{k}")).collect()
}

/// Classes on this thread only (what `ForestScorer::classes` runs on each
/// thread: rows stop walking once their class is decided).
fn predict_one_thread(scorer: &ForestScorer, data: &FeatureMatrix) -> Vec<u32> {
    let mut out = vec![0; data.n_rows()];
    scorer.classes_block(Block::of_matrix(data, 0, data.n_rows()), &mut out);
    out
}

/// Probabilities on this thread only (every row through every tree), and
/// their argmax.
fn predict_proba_one_thread(scorer: &ForestScorer, data: &FeatureMatrix) -> Vec<u32> {
    let c = scorer.model().n_classes();
    let mut proba = vec![0.0; data.n_rows() * c];
    scorer.probabilities_block(Block::of_matrix(data, 0, data.n_rows()), &mut proba);
    ml_sniffing_forest::rforest::argmax_rows(&proba, c)
}

fn accuracy(pred: &[u32], truth: &[u32]) -> f64 {
    pred.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

fn to_ndarray(data: &FeatureMatrix) -> ndarray::Array2<f32> {
    ndarray::Array2::from_shape_fn((data.n_rows(), data.n_features()), |(r, f)| data.get(r, f))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: rforest_bench DIR [--linfa-trees N]")?,
    );
    let mut linfa_trees = 20usize;
    let mut predict_only = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--linfa-trees" => linfa_trees = args.next().context("--linfa-trees N")?.parse()?,
            // Development: fit on every core, then only time prediction.
            "--predict-only" => predict_only = true,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    std::fs::create_dir_all(&dir)?;
    let mut json = serde_json::Map::new();
    let mut record = |k: &str, v: f64| {
        json.insert(k.into(), v.into());
    };

    // The speed problem: 50,000 rows, 11 features, 3 classes.
    let problem = Problem::new(11, 6, 2, 3, 2, 1.0, 0.05, 2024);
    let (train, y_train) = problem.sample(50_000, 1);
    let (test, y_test) = problem.sample(50_000, 2);
    write_csv(&dir.join("bench_train.csv"), &train, &y_train)?;
    write_csv(&dir.join("bench_test.csv"), &test, &y_test)?;

    // The quality problem, never tuned on: other shape, 4 classes; a
    // stratified 70/30 split written as two files.
    let quality = Problem::new(9, 4, 3, 4, 1, 0.8, 0.02, 77);
    let (q_all, q_labels) = quality.sample(20_000, 3);
    let q_split = split::stratified(&q_labels, &classes(4), 0.3, 42)?;
    let pick = |rows: &[usize]| {
        (
            q_all.select_rows(rows),
            rows.iter().map(|&r| q_labels[r]).collect::<Vec<u32>>(),
        )
    };
    let (q_train, qy_train) = pick(&q_split.train);
    let (q_test, qy_test) = pick(&q_split.test);
    write_csv(&dir.join("quality_train.csv"), &q_train, &qy_train)?;
    write_csv(&dir.join("quality_test.csv"), &q_test, &qy_test)?;

    println!("| measurement | ml-sniffing |");
    println!("|---|---|");
    let one_thread = RandomForestParams {
        n_jobs: if predict_only { 0 } else { 1 },
        ..Default::default()
    };
    // `--predict-only` keeps the forest in DIR/bench_forest.model (written
    // and read through the model file format) so that iterations on the
    // inference code skip the fit.
    let cached = dir.join("bench_forest.model");
    let model = match predict_only.then(|| SavedModel::load(&cached)) {
        Some(Ok(SavedModel::RandomForest { model, .. })) => {
            println!("| forest read from | {} |", cached.display());
            model
        }
        _ => {
            let t = Instant::now();
            let model = one_thread.fit(&train, &y_train, classes(3), &|| {})?;
            let fit_s = t.elapsed().as_secs_f64();
            println!("| fit 200 trees, 50,000 x 11, 1 thread | {fit_s:.2} s |");
            record("fit_seconds", fit_s);
            if predict_only {
                let columns = train
                    .names()
                    .iter()
                    .map(|name| ColumnFeature {
                        name: name.clone(),
                        encoding: ColumnEncoding::Number,
                    })
                    .collect();
                SavedModel::RandomForest {
                    plan: FeaturePlan::Columns { columns },
                    model: model.clone(),
                }
                .save(&cached)?;
            }
            model
        }
    };
    println!(
        "| forest size | {} nodes, {:.0} per tree |",
        model.forest.n_nodes(),
        model.forest.n_nodes() as f64 / 200.0
    );

    if !predict_only {
        let t = Instant::now();
        let parallel = RandomForestParams::default().fit(&train, &y_train, classes(3), &|| {})?;
        let par_s = t.elapsed().as_secs_f64();
        assert_eq!(
            parallel.forest, model.forest,
            "thread count changed the model"
        );
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("| fit 200 trees, {threads} threads | {par_s:.2} s |");
    }

    // Prediction, one thread, best of 3, classes and probabilities in turn
    // (wall time: the recorded figure; this thread's CPU time too, steadier
    // on a shared machine).
    type Predict = fn(&ForestScorer, &FeatureMatrix) -> Vec<u32>;
    let scorer = ForestScorer::new(model.clone());
    println!("| walk | {:?} |", scorer.walk());
    let ways: [(&str, &str, Predict); 2] = [
        (
            "predict (classes)",
            "predict_per_second",
            predict_one_thread,
        ),
        (
            "predict_proba (+ argmax)",
            "predict_proba_per_second",
            predict_proba_one_thread,
        ),
    ];
    let mut best = [(f64::INFINITY, f64::INFINITY); 2];
    let mut preds = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        for ((_, _, run), (best, pred)) in ways.iter().zip(best.iter_mut().zip(&mut preds)) {
            let (t, cpu) = (Instant::now(), thread_cpu_seconds());
            *pred = run(&scorer, &test);
            best.0 = best.0.min(t.elapsed().as_secs_f64());
            best.1 = best.1.min(thread_cpu_seconds() - cpu);
        }
    }
    assert!(
        preds[0] == preds[1],
        "the early stop changed a predicted class"
    );
    for ((name, key, _), (wall, cpu)) in ways.iter().zip(best) {
        let rate = test.n_rows() as f64 / wall;
        println!(
            "| {name}, 1 thread | {rate:.0} samples/s ({:.0} per CPU second) |",
            test.n_rows() as f64 / cpu
        );
        record(key, rate);
    }
    let pred = std::mem::take(&mut preds[0]);
    let mut stopped = vec![0; test.n_rows()];
    let walks = scorer.classes_block(Block::of_matrix(&test, 0, test.n_rows()), &mut stopped);
    let per_row = walks as f64 / test.n_rows() as f64;
    println!(
        "| predict (classes): trees walked per row | {per_row:.1} of {} |",
        model.forest.n_trees()
    );
    record("trees_walked_per_row", per_row);
    #[cfg(target_arch = "x86_64")]
    if scorer.walk() == Walk::Avx512 {
        println!(
            "| AVX-512 walk: rows per tile (from this CPU's L2) | {} |",
            ml_sniffing_forest::score::avx512::tile_rows()
        );
    }
    compare_walks(&model, &test);
    if predict_only {
        return Ok(());
    }
    let acc = accuracy(&pred, &y_test);
    println!("| accuracy on 50,000 fresh rows | {acc:.4} |");
    record("bench_accuracy", acc);

    // A single fully grown tree on all rows, all features: ours vs linfa-trees.
    let single = RandomForestParams {
        n_estimators: 1,
        bootstrap: false,
        max_features: MaxFeatures::All,
        n_jobs: 1,
        ..Default::default()
    };
    let t = Instant::now();
    let ours = single.fit(&train, &y_train, classes(3), &|| {})?;
    let ours_s = t.elapsed().as_secs_f64();
    let ours_acc = accuracy(&ForestScorer::new(ours).classes(&test), &y_test);
    let records = to_ndarray(&train);
    let targets = ndarray::Array1::from_iter(y_train.iter().map(|&y| y as usize));
    let dataset = linfa::Dataset::new(records, targets);
    let t = Instant::now();
    let linfa_tree = linfa_trees::DecisionTree::params().fit(&dataset)?;
    let linfa_s = t.elapsed().as_secs_f64();
    let test_records = to_ndarray(&test);
    let linfa_pred: ndarray::Array1<usize> = linfa_tree.predict(&test_records);
    let linfa_pred: Vec<u32> = linfa_pred.iter().map(|&p| p as u32).collect();
    let linfa_acc = accuracy(&linfa_pred, &y_test);
    println!(
        "| one full tree, all features: fit | ours {ours_s:.3} s, linfa-trees {linfa_s:.3} s ({:.1}x) |",
        linfa_s / ours_s
    );
    println!("| one full tree: accuracy | ours {ours_acc:.4}, linfa-trees {linfa_acc:.4} |");

    // linfa-ensemble's RandomForest: bootstrap + one feature subset per
    // tree (not per split), hard voting. Compared at the same tree count.
    let n = linfa_trees;
    let rng = rand::rngs::StdRng::seed_from_u64(42);
    let t = Instant::now();
    let ensemble =
        linfa_ensemble::RandomForestParams::new_fixed_rng(linfa_trees::DecisionTree::params(), rng)
            .ensemble_size(n)
            .bootstrap_proportion(1.0)
            .feature_proportion(0.27) // ceil(11 * 0.27) = 3 = sqrt(11), per tree
            .fit(&dataset)?;
    let ens_s = t.elapsed().as_secs_f64();
    let ens_pred: ndarray::Array1<usize> = ensemble.predict(&test_records);
    let ens_pred: Vec<u32> = ens_pred.iter().map(|&p| p as u32).collect();
    let ens_acc = accuracy(&ens_pred, &y_test);
    let small = RandomForestParams {
        n_estimators: n,
        n_jobs: 1,
        ..Default::default()
    };
    let t = Instant::now();
    let ours_small = small.fit(&train, &y_train, classes(3), &|| {})?;
    let small_s = t.elapsed().as_secs_f64();
    let small_acc = accuracy(&ForestScorer::new(ours_small).classes(&test), &y_test);
    println!(
        "| {n} trees: fit | ours {small_s:.2} s, linfa-ensemble {ens_s:.2} s ({:.1}x) |",
        ens_s / small_s
    );
    println!("| {n} trees: accuracy | ours {small_acc:.4}, linfa-ensemble {ens_acc:.4} |");

    // Quality on the held-out problem.
    let q_model = RandomForestParams::default().fit(&q_train, &qy_train, classes(4), &|| {})?;
    let q_pred = ForestScorer::new(q_model).classes(&q_test);
    let e = metrics::evaluate(&qy_test, &q_pred, 4);
    println!(
        "| quality problem (14,000 / 6,000 rows, 9 features, 4 classes) | accuracy {:.4}, macro F1 {:.4} |",
        e.accuracy, e.macro_avg.f1
    );
    record("quality_accuracy", e.accuracy);
    record("quality_macro_f1", e.macro_avg.f1);

    let mut f = std::fs::File::create(dir.join("ours.json"))?;
    writeln!(f, "{}", serde_json::Value::Object(json))?;
    Ok(())
}

/// This thread's CPU time in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid place for the result.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Every walk this CPU runs, on the same rows, one thread, interleaved
/// rounds: classes (with the early stop) and probabilities (every tree),
/// rates side by side, and a check that the walks agree.
fn compare_walks(model: &RandomForest, test: &FeatureMatrix) {
    let all = Block::of_matrix(test, 0, test.n_rows());
    let c = model.n_classes();
    let scorers: Vec<ForestScorer> = [Walk::Avx512, Walk::Lanes]
        .into_iter()
        .filter_map(|walk| ForestScorer::with_walk(model, walk))
        .collect();
    // Per walk: best (wall, CPU) for classes and for probabilities, walks.
    let mut best = vec![[(f64::INFINITY, f64::INFINITY); 2]; scorers.len()];
    let mut walked = vec![0; scorers.len()];
    let (mut want_classes, mut want_proba) = (None, None);
    for _ in 0..3 {
        for ((scorer, best), walked) in scorers.iter().zip(&mut best).zip(&mut walked) {
            let mut classes = vec![u32::MAX; all.len()];
            let (t, cpu) = (Instant::now(), thread_cpu_seconds());
            *walked = scorer.classes_block(all, &mut classes);
            best[0].0 = best[0].0.min(t.elapsed().as_secs_f64());
            best[0].1 = best[0].1.min(thread_cpu_seconds() - cpu);
            let mut proba = vec![0.0; all.len() * c];
            let (t, cpu) = (Instant::now(), thread_cpu_seconds());
            scorer.probabilities_block(all, &mut proba);
            best[1].0 = best[1].0.min(t.elapsed().as_secs_f64());
            best[1].1 = best[1].1.min(thread_cpu_seconds() - cpu);
            assert!(
                *want_classes.get_or_insert_with(|| classes.clone()) == classes,
                "the walks' classes differ"
            );
            assert!(
                *want_proba.get_or_insert_with(|| proba.clone()) == proba,
                "the walks' probabilities differ"
            );
        }
    }
    for ((scorer, best), walked) in scorers.iter().zip(&best).zip(&walked) {
        let walk = scorer.walk();
        let rate = |(wall, cpu): (f64, f64)| {
            format!(
                "{:.0} samples/s ({:.0} per CPU second",
                all.len() as f64 / wall,
                all.len() as f64 / cpu
            )
        };
        println!(
            "| classes, {walk:?} walk, 1 thread | {}, {:.1} trees per row) |",
            rate(best[0]),
            *walked as f64 / all.len() as f64
        );
        println!(
            "| probabilities, {walk:?} walk, 1 thread | {}) |",
            rate(best[1])
        );
    }
}
