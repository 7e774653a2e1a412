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
use crate::Block;

/// The deepest tree the complete layout holds (2^16 leaves, 768 KiB a tree).
pub const MAX_DEPTH: u32 = 16;

/// Rows walked together through one tree.
const LANES: usize = 16;

/// Rows copied into the contiguous scratch block the fast paths walk.
pub const BLOCK_ROWS: usize = 256;

/// An internal node as the fast paths read it: the offset of its
/// feature's column in the scratch block and the threshold as an
/// [`order_key`], side by side in 8 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
struct PackedNode {
    /// `feature * BLOCK_ROWS`
    offset: u32,
    threshold: u32,
}

/// Maps an f32 to a u32 whose unsigned order is the float order, so that
/// the fast paths compare with one integer compare (whose carry flag feeds
/// the index update directly) instead of a float compare. For thresholds
/// `t` (never NaN) and any feature value `x`:
/// `order_key(x) > order_key(t)` exactly when `x > t`: both zeros map to
/// the key of +0.0 (they compare equal as floats), and NaN, which is never
/// greater than anything, maps to 0, a key no number has.
#[inline(always)]
pub fn order_key(x: f32) -> u32 {
    if x.is_nan() {
        return 0;
    }
    let bits = if x == 0.0 { 0 } else { x.to_bits() };
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// The arrays that define the forest (what model files store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatArrays {
    pub depth: u32,
    pub n_features: u32,
    /// `n_trees * (2^depth - 1)` feature indices.
    pub features: Vec<u32>,
    /// `n_trees * (2^depth - 1)` thresholds: `x > t` goes right.
    pub thresholds: Vec<f32>,
    /// `n_trees * 2^depth` path lengths.
    pub leaves: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FlatArrays", into = "FlatArrays")]
pub struct FlatIsolationForest {
    depth: u32,
    n_features: u32,
    features: Vec<u32>,
    thresholds: Vec<f32>,
    leaves: Vec<f32>,
    /// Derived from `features` and `thresholds` for the fast paths.
    packed: Vec<PackedNode>,
}

impl TryFrom<FlatArrays> for FlatIsolationForest {
    type Error = anyhow::Error;
    fn try_from(a: FlatArrays) -> Result<Self> {
        let mut flat = FlatIsolationForest {
            depth: a.depth,
            n_features: a.n_features,
            features: a.features,
            thresholds: a.thresholds,
            leaves: a.leaves,
            packed: Vec::new(),
        };
        flat.validate()?;
        flat.pack();
        Ok(flat)
    }
}

impl From<FlatIsolationForest> for FlatArrays {
    fn from(f: FlatIsolationForest) -> Self {
        FlatArrays {
            depth: f.depth,
            n_features: f.n_features,
            features: f.features,
            thresholds: f.thresholds,
            leaves: f.leaves,
        }
    }
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
            packed: Vec::new(),
        };
        for (t, tree) in trees.iter().enumerate() {
            if tree.height() > depth {
                bail!("tree {t} is {} levels deep, above {depth}", tree.height());
            }
            flat.place(tree, t, 0, 0, 0);
        }
        flat.validate()?;
        flat.pack();
        Ok(flat)
    }

    fn pack(&mut self) {
        self.packed = self
            .features
            .iter()
            .zip(&self.thresholds)
            .map(|(&f, &threshold)| PackedNode {
                offset: f * BLOCK_ROWS as u32,
                threshold: order_key(threshold),
            })
            .collect();
    }

    /// Which features isolated row `x` (one value per feature): on each
    /// tree's path, the split that finally set the row apart (the last one
    /// before its leaf) adds 1 to its feature, the one before it 1/2, and so
    /// on, averaged over the trees. A plain walk, for the few packets that
    /// open an alert, not the scoring paths.
    pub fn attribution(&self, x: &[f32]) -> Vec<f64> {
        let mut weights = vec![0.0; self.n_features as usize];
        let internal = (1usize << self.depth) - 1;
        let mut path = [0usize; MAX_DEPTH as usize];
        for t in 0..self.n_trees() {
            let (mut i, mut len) = (0, 0);
            for _ in 0..self.depth {
                let node = t * internal + i;
                let threshold = self.thresholds[node];
                if threshold == f32::INFINITY {
                    // Padding under a leaf reached early.
                    break;
                }
                let f = self.features[node] as usize;
                path[len] = f;
                len += 1;
                i = 2 * i + 1 + (x[f] > threshold) as usize;
            }
            for (k, &f) in path[..len].iter().enumerate() {
                weights[f] += 1.0 / (len - k) as f64;
            }
        }
        let n = self.n_trees().max(1) as f64;
        weights.iter_mut().for_each(|w| *w /= n);
        weights
    }

    /// The defining arrays (for model files).
    pub fn arrays(&self) -> FlatArrays {
        self.clone().into()
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
        if self.n_features as usize > u32::MAX as usize / BLOCK_ROWS {
            bail!(
                "the flat forest has too many features ({})",
                self.n_features
            );
        }
        if let Some(f) = self.features.iter().find(|&&f| f >= self.n_features.max(1)) {
            bail!("the flat forest uses feature {f} of {}", self.n_features);
        }
        if self.leaves.iter().any(|v| !v.is_finite()) {
            bail!("the flat forest has a non-finite leaf value");
        }
        Ok(())
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

    /// Adds each row's path length summed over all trees to `out`: the lane
    /// walk, one build for every x86-64 CPU (an AVX2 build with vector
    /// compares for the top levels measured within 1-8 %, and was dropped).
    pub fn add_path_lengths(&self, block: Block, out: &mut [f64]) {
        self.walk_blocks::<LANES>(block, out);
    }

    /// The plainest form: one row at a time through the checked arrays,
    /// the reference the fast paths are tested against.
    pub fn add_path_lengths_scalar(&self, block: Block, out: &mut [f64]) {
        assert_eq!(block.len(), out.len());
        let depth = self.depth as usize;
        let internal = (1usize << depth) - 1;
        for t in 0..self.n_trees() {
            let feats = &self.features[t * internal..(t + 1) * internal];
            let thr = &self.thresholds[t * internal..(t + 1) * internal];
            let leaves = &self.leaves[t * (internal + 1)..(t + 1) * (internal + 1)];
            for (row, acc) in out.iter_mut().enumerate() {
                let mut node = 0usize;
                for _ in 0..depth {
                    let v = block.get(feats[node] as usize, row);
                    node = 2 * node + 1 + (v > thr[node]) as usize;
                }
                *acc += leaves[node - internal] as f64;
            }
        }
    }

    /// Copies the block, `BLOCK_ROWS` rows at a time, into a contiguous
    /// scratch of order keys (column-major, rows padded to a multiple of
    /// `L`) that the packed node offsets index directly, then walks it.
    #[inline(always)]
    fn walk_blocks<const L: usize>(&self, block: Block, out: &mut [f64]) {
        self.for_each_scratch::<L>(block, out, |scratch, rows, sums| {
            self.walk_scratch::<L>(scratch, rows, sums)
        });
    }

    /// Feeds `walk` the block in scratch-sized pieces: `walk(scratch, rows,
    /// sums)` must add each row's path length sum to `sums[..rows]`.
    #[inline(always)]
    fn for_each_scratch<const L: usize>(
        &self,
        block: Block,
        out: &mut [f64],
        mut walk: impl FnMut(&[u32], usize, &mut [f64]),
    ) {
        assert_eq!(block.len(), out.len());
        assert!(
            block.n_features() >= self.n_features(),
            "block has too few features"
        );
        let mut scratch = vec![0u32; self.n_features().max(1) * BLOCK_ROWS];
        let mut sums = [0f64; BLOCK_ROWS];
        for start in (0..block.len()).step_by(BLOCK_ROWS) {
            let n = (block.len() - start).min(BLOCK_ROWS);
            for f in 0..self.n_features() {
                let column = &block.column(f)[start..start + n];
                let keys = &mut scratch[f * BLOCK_ROWS..f * BLOCK_ROWS + n];
                for (k, &x) in keys.iter_mut().zip(column) {
                    *k = order_key(x);
                }
            }
            let padded = n.div_ceil(L) * L;
            sums[..padded].fill(0.0);
            walk(&scratch, padded, &mut sums[..padded]);
            for (o, s) in out[start..start + n].iter_mut().zip(&sums[..n]) {
                *o += s;
            }
        }
    }

    /// Walks `rows` (a multiple of `L`, at most `BLOCK_ROWS`) rows of
    /// `scratch` through every tree, `L` rows side by side.
    #[inline(always)]
    fn walk_scratch<const L: usize>(&self, scratch: &[u32], rows: usize, sums: &mut [f64]) {
        let depth = self.depth as usize;
        let internal = (1usize << depth) - 1;
        assert!(rows.is_multiple_of(L) && rows <= BLOCK_ROWS && sums.len() == rows);
        assert!(scratch.len() >= self.n_features().max(1) * BLOCK_ROWS);
        for t in 0..self.n_trees() {
            let nodes = &self.packed[t * internal..(t + 1) * internal];
            let leaves = &self.leaves[t * (internal + 1)..(t + 1) * (internal + 1)];
            for r in (0..rows).step_by(L) {
                // Rows r..r + L: lane l reads `xs[offset + l]`, a constant
                // displacement from one base pointer.
                let xs = &scratch[r..];
                // 1-based heap numbering: node j's children are 2j and
                // 2j + 1, so a step is `j = 2j + (x > t)` (an add-with-carry).
                let mut idx = [1usize; L];
                for _ in 0..depth {
                    for (l, j) in idx.iter_mut().enumerate() {
                        debug_assert!(*j >= 1 && *j <= internal);
                        debug_assert!(nodes[*j - 1].offset as usize + l < xs.len());
                        // SAFETY: 1 <= j <= internal: it starts at 1 and
                        // after k < depth steps is below 2^(k+1) <= internal
                        // + 1; offset = feature * BLOCK_ROWS with feature <
                        // n_features (checked by `validate`), r + l < rows
                        // <= BLOCK_ROWS, and scratch holds n_features *
                        // BLOCK_ROWS values (asserted above).
                        unsafe { step(j, nodes, xs, l) };
                    }
                }
                add_leaves(&mut sums[r..r + L], leaves, &idx, internal);
            }
        }
    }
}

/// Adds the leaf each lane reached (1-based heap index `j`, after the last
/// level) to its sum.
#[inline(always)]
fn add_leaves<const L: usize>(sums: &mut [f64], leaves: &[f32], idx: &[usize; L], internal: usize) {
    assert!(sums.len() == L && leaves.len() == internal + 1);
    for (l, &j) in idx.iter().enumerate() {
        debug_assert!(j > internal && j <= 2 * internal + 1);
        // SAFETY: after `depth` steps from 1, internal + 1 <= j <= 2 *
        // internal + 1, so j - internal - 1 indexes one of the
        // internal + 1 leaves; l < L = sums.len() (asserted).
        unsafe {
            *sums.get_unchecked_mut(l) += *leaves.get_unchecked(j - internal - 1) as f64;
        }
    }
}

/// One level of the walk for lane `l`: `j = 2j + (x > t)` at 1-based node
/// `j`, reading the lane's value at the node's column offset.
///
/// # Safety
/// `1 <= *j <= nodes.len()` and `nodes[*j - 1].offset + l < xs.len()`.
#[inline(always)]
unsafe fn step(j: &mut usize, nodes: &[PackedNode], xs: &[u32], l: usize) {
    // SAFETY: the caller's contract.
    let node = unsafe { *nodes.get_unchecked(*j - 1) };
    let v = unsafe { *xs.get_unchecked(node.offset as usize + l) };
    #[cfg(target_arch = "x86_64")]
    {
        // `cmp t, v` sets the carry exactly when t < v (unsigned), and
        // `adc j, j` makes that 2j + carry: two instructions where the
        // compiler otherwise emits a compare, a set, a zeroing and a shift.
        // SAFETY: register-only arithmetic on the inputs.
        unsafe {
            std::arch::asm!(
                "cmp {t:e}, {v:e}",
                "adc {j}, {j}",
                t = in(reg) node.threshold,
                v = in(reg) v,
                j = inout(reg) *j,
                options(pure, nomem, nostack),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        *j = 2 * *j + (node.threshold < v) as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FeatureMatrix;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    /// The attribution walks the same splits as scoring: a feature that
    /// sets one row apart gets most of that row's weight, and an ordinary
    /// row's weight is spread over both features.
    #[test]
    fn attribution_names_the_feature_that_isolates() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let rows = 300;
        let noise: Vec<f32> = (0..rows).map(|_| rng.gen_range(0.0f32..1.0)).collect();
        let mut level: Vec<f32> = (0..rows).map(|_| rng.gen_range(0.0f32..1.0)).collect();
        level[7] = 50.0;
        let data =
            FeatureMatrix::from_columns(vec!["level".into(), "noise".into()], vec![level, noise]);
        let model = crate::iforest::IsolationForestParams {
            n_estimators: 50,
            ..Default::default()
        }
        .fit(&data)
        .unwrap();
        let odd = model.forest.attribution(&data.row(7));
        let usual = model.forest.attribution(&data.row(8));
        assert!(odd[0] > 2.0 * odd[1], "{odd:?}");
        assert!(odd[0] / odd[1] > usual[0] / usual[1], "{odd:?} {usual:?}");
        // Each path adds a harmonic sum: the isolated row's path is
        // shorter, so its total is smaller.
        assert!(odd.iter().sum::<f64>() < usual.iter().sum::<f64>());
    }

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
            let round_trip: FlatIsolationForest = flat.arrays().try_into().unwrap();
            assert_eq!(round_trip, flat);
            let mut got = vec![0.0; rows];
            flat.add_path_lengths(block, &mut got);
            assert_eq!(got, want, "lanes");
        }
    }

    #[test]
    fn order_keys_compare_as_the_floats_do() {
        let special = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut values: Vec<f32> = special.to_vec();
        values.extend(
            (0..300)
                .map(|_| f32::from_bits(rng.gen()))
                .filter(|v| !v.is_nan()),
        );
        for &t in &values {
            for &x in values.iter().chain([f32::NAN, -f32::NAN].iter()) {
                assert_eq!(order_key(x) > order_key(t), x > t, "x = {x:e}, t = {t:e}");
            }
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
