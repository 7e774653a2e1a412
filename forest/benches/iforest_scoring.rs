//! Isolation Forest scoring rate on one thread: 200 trees grown on 256 rows,
//! 11 features, scored over 1,000,000 rows through each code path.
//! Run by `cargo xtask bench` (or `cargo bench -p ml-sniffing --bench iforest_scoring`).

use std::hint::black_box;
use std::time::Instant;

use ml_sniffing_forest::iforest::IsolationForestParams;
use ml_sniffing_forest::Block;
use ml_sniffing_forest::FeatureMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 1_000_000;
const FEATURES: usize = 11;
const BLOCK: usize = 512;

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let columns = (0..FEATURES)
        .map(|f| {
            (0..ROWS)
                .map(|_| match f % 3 {
                    0 => rng.gen_range(0.0f32..1500.0),
                    1 => rng.gen_range(0..24) as f32,
                    _ => rng.gen::<f32>() * 4e9,
                })
                .collect()
        })
        .collect();
    let data =
        FeatureMatrix::from_columns((0..FEATURES).map(|f| format!("f{f}")).collect(), columns);
    let model = IsolationForestParams::default()
        .fit(&data.select_rows(&(0..10_000).collect::<Vec<_>>()))
        .expect("fit");
    let forest = &model.forest;
    println!(
        "| path | trees | depth | rows | seconds | samples/s (one thread) |\n|---|---|---|---|---|---|"
    );
    type Walk = fn(&ml_sniffing_forest::iforest::FlatIsolationForest, Block, &mut [f64]);
    let mut paths: Vec<(&str, Walk)> = vec![
        ("lanes (used by detect)", |f, b, o| f.add_path_lengths(b, o)),
        ("scalar, one row at a time", |f, b, o| {
            f.add_path_lengths_scalar(b, o)
        }),
    ];
    if std::env::args().any(|a| a == "--quick") {
        paths.truncate(1);
    }
    let mut out = vec![0.0f64; BLOCK];
    for (name, walk) in paths {
        let start = Instant::now();
        for first in (0..ROWS).step_by(BLOCK) {
            let end = (first + BLOCK).min(ROWS);
            let o = &mut out[..end - first];
            o.fill(0.0);
            walk(forest, Block::of_matrix(&data, first, end), o);
            black_box(&o);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "| {name} | {} | {} | {ROWS} | {secs:.3} | {:.0} |",
            forest.n_trees(),
            forest.depth(),
            ROWS as f64 / secs
        );
    }
}
