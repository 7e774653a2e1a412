//! Isolation trees as complete binary trees in flat arrays.
//!
//! A tree grown with a height limit `D` fits a complete binary tree of
//! `2^D - 1` internal nodes and `2^D` leaves. Internal node `i` has its
//! children at `2i + 1` and `2i + 2`; a leaf reached early is padded: its
//! whole subtree repeats its value, so every path is exactly `D` steps and
//! traversal needs no branch: `i = 2i + 1 + (x[f[i]] > t[i])`. Each leaf
//! holds the path length (depth + c(rows in leaf)) as one f32.
//!
//! Scoring walks a block of rows tree by tree (a tree of height 8 is 3 KiB
//! and stays in L1 for the whole block), `LANES` rows at a time so that the
//! independent walks overlap in the CPU.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::tree::{leaf_path_length, ITree, Node};
use crate::models::Block;

/// The deepest tree the complete layout holds (2^16 leaves, 768 KiB a tree).
pub const MAX_DEPTH: u32 = 16;

/// Rows walked together through one tree.
const LANES: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatIsolationForest {
    depth: u32,
    n_features: u32,
    /// `n_trees * (2^depth - 1)` feature indices.
    features: Vec<u32>,
    /// `n_trees * (2^depth - 1)` thresholds: `x > t` goes right.
    thresholds: Vec<f32>,
    /// `n_trees * 2^depth` path lengths.
    leaves: Vec<f32>,
}

impl FlatIsolationForest {
    /// Lays out `trees` (each at most `depth` levels) over `n_features`.
    pub fn from_trees(trees: &[ITree], depth: u32, n_features: usize) -> Result<Self> {
        if depth > MAX_DEPTH {
            bail!("trees {depth} levels deep do not fit the flat layout (at most {MAX_DEPTH})");
        }
        let internal = (1usize << depth) - 1;
        let mut flat = FlatIsolationForest {
            depth,
            n_features: n_features as u32,
            features: vec![0; trees.len() * internal],
            thresholds: vec![f32::INFINITY; trees.len() * internal],
            leaves: vec![0.0; trees.len() * (internal + 1)],
        };
        for (t, tree) in trees.iter().enumerate() {
            if tree.height() > depth {
                bail!("tree {t} is {} levels deep, above {depth}", tree.height());
            }
            flat.place(tree, t, 0, 0, 0);
        }
        flat.validate()?;
        Ok(flat)
    }

    fn place(&mut self, tree: &ITree, t: usize, node: usize, slot: usize, level: u32) {
        let internal = (1usize << self.depth) - 1;
        match tree.nodes[node] {
            Node::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                self.features[t * internal + slot] = feature;
                self.thresholds[t * internal + slot] = threshold;
                self.place(tree, t, left as usize, 2 * slot + 1, level + 1);
                self.place(tree, t, right as usize, 2 * slot + 2, level + 1);
            }
            Node::Leaf { samples, depth } => {
                // The subtree under `slot` is padding: internal nodes keep
                // feature 0 / threshold +inf; all its leaves get the value.
                let below = self.depth - level;
                let first_leaf = ((slot + 1) << below) - 1 - internal;
                let value = leaf_path_length(depth, samples);
                let leaves = &mut self.leaves[t * (internal + 1)..(t + 1) * (internal + 1)];
                leaves[first_leaf..first_leaf + (1 << below)].fill(value);
            }
        }
    }

    /// Checks the invariants the scoring loops rely on (also run on models
    /// read from files).
    pub fn validate(&self) -> Result<()> {
        if self.depth > MAX_DEPTH {
            bail!(
                "trees {} levels deep do not fit the flat layout",
                self.depth
            );
        }
        let internal = (1usize << self.depth) - 1;
        if self.features.len() != self.thresholds.len()
            || !self.features.len().is_multiple_of(internal.max(1))
            || self.leaves.len() != self.n_trees() * (internal + 1)
        {
            bail!("the flat forest's arrays have inconsistent lengths");
        }
        if let Some(f) = self.features.iter().find(|&&f| f >= self.n_features.max(1)) {
            bail!("the flat forest uses feature {f} of {}", self.n_features);
        }
        if self.leaves.iter().any(|v| !v.is_finite()) {
            bail!("the flat forest has a non-finite leaf value");
        }
        Ok(())
    }

    /// The flat arrays (feature indices, thresholds, leaf path lengths), as
    /// model files store them.
    pub fn arrays(&self) -> (&[u32], &[f32], &[f32]) {
        (&self.features, &self.thresholds, &self.leaves)
    }

    /// Rebuilds a forest from [`Self::arrays`] (a model file), checked.
    pub fn from_arrays(
        depth: u32,
        n_features: u32,
        features: Vec<u32>,
        thresholds: Vec<f32>,
        leaves: Vec<f32>,
    ) -> Result<Self> {
        let flat = FlatIsolationForest {
            depth,
            n_features,
            features,
            thresholds,
            leaves,
        };
        flat.validate()?;
        Ok(flat)
    }

    pub fn n_trees(&self) -> usize {
        // Every tree has 2^depth leaves (one when depth is 0).
        self.leaves.len() >> self.depth
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }

    pub fn n_features(&self) -> usize {
        self.n_features as usize
    }

    /// Adds each row's path length summed over all trees to `out`.
    pub fn add_path_lengths(&self, block: Block, out: &mut [f64]) {
        assert_eq!(block.len(), out.len());
        assert!(
            block.n_features() >= self.n_features(),
            "block has too few features"
        );
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.add_path_lengths_avx2(block, out) };
            return;
        }
        self.add_path_lengths_portable(block, out);
    }

    /// The portable path: the lane loop compiled for the baseline CPU.
    pub fn add_path_lengths_portable(&self, block: Block, out: &mut [f64]) {
        self.walk::<LANES>(block, out);
    }

    /// The same loop compiled with AVX2 enabled, so that the compiler turns
    /// the lane loop into gathers and vector compares.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_path_lengths_avx2(&self, block: Block, out: &mut [f64]) {
        self.walk::<LANES>(block, out);
    }

    /// One row at a time, no lanes: the plainest form of the walk.
    pub fn add_path_lengths_scalar(&self, block: Block, out: &mut [f64]) {
        self.walk::<1>(block, out);
    }

    #[inline(always)]
    fn walk<const L: usize>(&self, block: Block, out: &mut [f64]) {
        let depth = self.depth as usize;
        let internal = (1usize << depth) - 1;
        let (data, stride, offset) = block.raw();
        let n = block.len();
        for t in 0..self.n_trees() {
            let feats = &self.features[t * internal..(t + 1) * internal];
            let thr = &self.thresholds[t * internal..(t + 1) * internal];
            let leaves = &self.leaves[t * (internal + 1)..(t + 1) * (internal + 1)];
            let mut r = 0;
            while r + L <= n {
                let mut idx = [0usize; L];
                for _ in 0..depth {
                    for (l, i) in idx.iter_mut().enumerate() {
                        let node = *i;
                        let v = data[feats[node] as usize * stride + offset + r + l];
                        *i = 2 * node + 1 + (v > thr[node]) as usize;
                    }
                }
                for (l, i) in idx.iter().enumerate() {
                    out[r + l] += leaves[*i - internal] as f64;
                }
                r += L;
            }
            for (row, acc) in out.iter_mut().enumerate().skip(r) {
                let mut node = 0usize;
                for _ in 0..depth {
                    let v = data[feats[node] as usize * stride + offset + row];
                    node = 2 * node + 1 + (v > thr[node]) as usize;
                }
                *acc += leaves[node - internal] as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureMatrix;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_matrix(rows: usize, features: usize, rng: &mut ChaCha8Rng) -> FeatureMatrix {
        let cols = (0..features)
            .map(|_| {
                (0..rows)
                    .map(|_| {
                        // Some repeated values so that leaves hold several rows.
                        if rng.gen_bool(0.3) {
                            rng.gen_range(0..4) as f32
                        } else {
                            rng.gen_range(-100.0f32..100.0)
                        }
                    })
                    .collect()
            })
            .collect();
        FeatureMatrix::from_columns((0..features).map(|f| format!("f{f}")).collect(), cols)
    }

    fn random_forest(
        data: &FeatureMatrix,
        trees: usize,
        depth: u32,
        rng: &mut ChaCha8Rng,
    ) -> Vec<ITree> {
        (0..trees)
            .map(|_| {
                let mut rows: Vec<u32> = (0..data.n_rows() as u32).collect();
                ITree::grow(data, &mut rows, depth, rng)
            })
            .collect()
    }

    /// The pointer trees, one row at a time, summed in tree order.
    fn reference(trees: &[ITree], data: &FeatureMatrix) -> Vec<f64> {
        (0..data.n_rows())
            .map(|r| {
                let x = data.row(r);
                trees.iter().map(|t| t.path_length(&x) as f64).sum()
            })
            .collect()
    }

    #[test]
    fn every_path_equals_the_pointer_trees() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (rows, features, depth) in
            [(200, 3, 8), (37, 1, 6), (300, 11, 9), (5, 2, 1), (64, 4, 0)]
        {
            let data = random_matrix(rows, features, &mut rng);
            let trees = random_forest(&data, 13, depth, &mut rng);
            let flat = FlatIsolationForest::from_trees(&trees, depth, features).unwrap();
            let want = reference(&trees, &data);
            let block = Block::of_matrix(&data, 0, rows);
            let mut got = vec![0.0; rows];
            flat.add_path_lengths_scalar(block, &mut got);
            assert_eq!(got, want, "scalar, {rows}x{features} depth {depth}");
            let mut got = vec![0.0; rows];
            flat.add_path_lengths_portable(block, &mut got);
            assert_eq!(got, want, "portable lanes");
            let mut got = vec![0.0; rows];
            flat.add_path_lengths(block, &mut got);
            assert_eq!(got, want, "dispatched (AVX2 where present)");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_path_equals_scalar_path_on_random_forests_and_blocks() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..20 {
            let rows = rng.gen_range(1..500);
            let features = rng.gen_range(1..12);
            let depth = rng.gen_range(1..10);
            let data = random_matrix(rows, features, &mut rng);
            let trees = random_forest(&data, 7, depth, &mut rng);
            let flat = FlatIsolationForest::from_trees(&trees, depth, features).unwrap();
            // Sub-blocks exercise offsets and partial lane groups.
            let start = rng.gen_range(0..rows);
            let block = Block::of_matrix(&data, start, rows);
            let mut scalar = vec![0.0; block.len()];
            flat.add_path_lengths_scalar(block, &mut scalar);
            let mut simd = vec![0.0; block.len()];
            // SAFETY: AVX2 checked at the top of the test.
            unsafe { flat.add_path_lengths_avx2(block, &mut simd) };
            assert_eq!(simd, scalar);
        }
    }

    #[test]
    fn batch_boundaries_one_row_and_partial_lanes() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let data = random_matrix(17, 3, &mut rng);
        let trees = random_forest(&data, 5, 5, &mut rng);
        let flat = FlatIsolationForest::from_trees(&trees, 5, 3).unwrap();
        let want = reference(&trees, &data);
        for (start, end) in [(0, 1), (16, 17), (3, 12), (0, 17), (5, 5)] {
            let mut got = vec![0.0; end - start];
            flat.add_path_lengths(Block::of_matrix(&data, start, end), &mut got);
            assert_eq!(got, want[start..end]);
        }
    }

    #[test]
    fn bad_layouts_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let data = random_matrix(50, 2, &mut rng);
        let trees = random_forest(&data, 2, 6, &mut rng);
        assert!(
            FlatIsolationForest::from_trees(&trees, 3, 2).is_err(),
            "too shallow"
        );
        assert!(
            FlatIsolationForest::from_trees(&trees, 17, 2).is_err(),
            "too deep"
        );
        let mut flat = FlatIsolationForest::from_trees(&trees, 6, 2).unwrap();
        flat.features[0] = 9;
        assert!(flat.validate().is_err());
    }
}
