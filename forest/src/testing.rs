//! Synthetic training problems for tests, here and in the crates that use
//! these forests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::FeatureMatrix;

/// Three noisy classes over `features` columns, some with repeated values
/// and one constant column, so that ties, constants and impure leaves occur.
pub fn noisy_problem(rows: usize, features: usize, seed: u64) -> (FeatureMatrix, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..rows).map(|_| rng.gen_range(0..3)).collect();
    let columns = (0..features)
        .map(|f| {
            labels
                .iter()
                .map(|&y| match f % 4 {
                    0 => y as f32 + rng.gen_range(-1.0f32..1.0),
                    1 => rng.gen_range(0..5) as f32,
                    2 => 7.0,
                    _ => (y as f32) * 0.5 + rng.gen_range(0.0f32..2.0),
                })
                .collect()
        })
        .collect();
    let names = (0..features).map(|f| format!("f{f}")).collect();
    (FeatureMatrix::from_columns(names, columns), labels)
}
