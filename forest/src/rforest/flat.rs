//! Random Forest trees flattened into arrays for batched inference.
//!
//! Every node of every tree is one [`FlatNode`] (threshold, feature, index
//! of its first child). The two children of a node are stored side by side,
//! so a step is branch-free: `i = children[i] + (x[feature[i]] > threshold[i])`.
//! A leaf points at itself with threshold +inf, so a row that reached its
//! leaf stays there while the other rows of its group go on; a group stops
//! when no row moved. Children always come after their parent, so every
//! walk ends (checked by [`FlatForest::validate`], also for loaded models).
//!
//! These arrays are what model files store. The lane walk below goes
//! through a block of rows tree by tree, `LANES` rows at a time so the
//! independent walks overlap in the CPU; [`crate::score::ForestScorer`]
//! uses it where the AVX-512 walk cannot run. It adds each leaf's class
//! probabilities to the rows' sums in tree order (the same order as the
//! pointer trees, so the sums are bit-identical), and stops a row's walk
//! once its class is decided when only classes are asked for
//! (`super::stop`).

use anyhow::{bail, Result};

use super::stop::{lead, Stop};
use super::tree::{DecisionTree, Node};
use crate::Block;

/// Rows walked together through one tree.
const LANES: usize = 16;

/// Rows the lane walk takes through every tree before the next ones:
/// their features and sums stay in L1/L2 while the trees stream by.
const PORTABLE_BLOCK_ROWS: usize = 4096;

/// One node: rows with `x[feature] > threshold` go to `children + 1`,
/// others to `children`. Leaves: threshold +inf, `children` = own index.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct FlatNode {
    pub threshold: f32,
    pub feature: u32,
    pub children: u32,
}

/// Marks a node that is not a leaf in `FlatForest::leaf_values`.
pub const NOT_A_LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq)]
pub struct FlatForest {
    pub(crate) n_features: u32,
    pub(crate) n_classes: u32,
    /// Every tree's nodes, one tree after the other; indices are absolute.
    pub(crate) nodes: Vec<FlatNode>,
    /// Index of each tree's root (its first node).
    pub(crate) roots: Vec<u32>,
    /// For each node: its leaf number, or [`NOT_A_LEAF`].
    pub(crate) leaf_values: Vec<u32>,
    /// `n_classes` probabilities per leaf.
    pub(crate) values: Vec<f32>,
}

impl FlatForest {
    /// Lays out `trees` (all with `n_classes` classes) over `n_features`.
    pub fn from_trees(trees: &[DecisionTree], n_features: usize, n_classes: usize) -> Result<Self> {
        let total: usize = trees.iter().map(|t| t.nodes.len()).sum();
        if total >= u32::MAX as usize {
            bail!("the forest has {total} nodes, more than the flat layout holds");
        }
        let mut flat = FlatForest {
            n_features: n_features as u32,
            n_classes: n_classes as u32,
            nodes: Vec::with_capacity(total),
            roots: Vec::with_capacity(trees.len()),
            leaf_values: Vec::with_capacity(total),
            values: Vec::new(),
        };
        for tree in trees {
            if tree.n_classes != n_classes {
                bail!("a tree has {} classes, not {n_classes}", tree.n_classes);
            }
            let root = flat.nodes.len();
            flat.roots.push(root as u32);
            flat.nodes.push(FlatNode {
                threshold: f32::INFINITY,
                feature: 0,
                children: root as u32,
            });
            flat.leaf_values.push(NOT_A_LEAF);
            // Depth first: a node's children are placed as a pair when the
            // node is visited, then the left subtree, then the right.
            let mut stack = vec![(0usize, root)];
            while let Some((node, slot)) = stack.pop() {
                match tree.nodes[node] {
                    Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        let children = flat.nodes.len();
                        for _ in 0..2 {
                            flat.nodes.push(FlatNode {
                                threshold: f32::INFINITY,
                                feature: 0,
                                children: 0,
                            });
                            flat.leaf_values.push(NOT_A_LEAF);
                        }
                        flat.nodes[slot] = FlatNode {
                            threshold,
                            feature,
                            children: children as u32,
                        };
                        stack.push((right as usize, children + 1));
                        stack.push((left as usize, children));
                    }
                    Node::Leaf { value } => {
                        let leaf = flat.values.len() / n_classes.max(1);
                        let start = value as usize * n_classes;
                        flat.values
                            .extend_from_slice(&tree.values[start..start + n_classes]);
                        flat.nodes[slot] = FlatNode {
                            threshold: f32::INFINITY,
                            feature: 0,
                            children: slot as u32,
                        };
                        flat.leaf_values[slot] = leaf as u32;
                    }
                }
            }
        }
        flat.validate()?;
        Ok(flat)
    }

    /// A forest from its stored arrays (as model files hold them), checked
    /// with [`FlatForest::validate`].
    pub fn from_parts(
        n_features: u32,
        n_classes: u32,
        nodes: Vec<FlatNode>,
        roots: Vec<u32>,
        leaf_values: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self> {
        let flat = FlatForest {
            n_features,
            n_classes,
            nodes,
            roots,
            leaf_values,
            values,
        };
        flat.validate()?;
        Ok(flat)
    }

    /// Checks the invariants the walks rely on (also run on models read
    /// from files): indices in range, children after their parent inside
    /// the same tree, leaves pointing at themselves with finite values.
    pub fn validate(&self) -> Result<()> {
        let n_nodes = self.nodes.len();
        let c = self.n_classes as usize;
        if c < 2 {
            bail!("the forest has {c} classes; at least 2 are needed");
        }
        if self.n_features == 0 {
            bail!("the forest uses no features");
        }
        if self.roots.is_empty() {
            bail!("the forest has no trees");
        }
        if self.leaf_values.len() != n_nodes || !self.values.len().is_multiple_of(c) {
            bail!("the forest's arrays have inconsistent lengths");
        }
        if self.roots[0] != 0 || self.roots.windows(2).any(|w| w[0] >= w[1]) {
            bail!("the forest's tree offsets are not increasing");
        }
        if *self.roots.last().expect("not empty") as usize >= n_nodes {
            bail!("the forest's last tree is empty");
        }
        let n_leaves = self.values.len() / c;
        for (t, &root) in self.roots.iter().enumerate() {
            let end = self.roots.get(t + 1).map_or(n_nodes, |&r| r as usize);
            for i in root as usize..end {
                let node = self.nodes[i];
                match self.leaf_values[i] {
                    NOT_A_LEAF => {
                        let ch = node.children as usize;
                        if ch <= i || ch + 1 >= end {
                            bail!("node {i} of tree {t} has children outside the tree");
                        }
                        if node.feature >= self.n_features {
                            bail!(
                                "node {i} uses feature {} of {}",
                                node.feature,
                                self.n_features
                            );
                        }
                        if node.threshold.is_nan() {
                            bail!("node {i} has no threshold");
                        }
                    }
                    leaf => {
                        if leaf as usize >= n_leaves
                            || node.children as usize != i
                            || node.threshold != f32::INFINITY
                            || node.feature != 0
                        {
                            bail!("leaf {i} of tree {t} is malformed");
                        }
                    }
                }
            }
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            bail!("the forest has a non-finite leaf value");
        }
        Ok(())
    }

    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    pub fn n_features(&self) -> usize {
        self.n_features as usize
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes as usize
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Every tree's nodes, one tree after the other (indices are absolute).
    pub fn nodes(&self) -> &[FlatNode] {
        &self.nodes
    }

    /// Index of each tree's root.
    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// Each node's leaf number, or [`NOT_A_LEAF`].
    pub fn leaf_values(&self) -> &[u32] {
        &self.leaf_values
    }

    /// `n_classes` probabilities per leaf.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The class of each row: the argmax (first on ties) of its summed
    /// probabilities divided by the number of trees, into `out`
    /// (`block.len()`), exactly as from the sums. A row stops once the trees
    /// left cannot change its class (`stop::Stop`). Returns the number of
    /// (row, tree) walks.
    pub(crate) fn predict_classes_lanes(&self, block: Block, out: &mut [u32]) -> usize {
        self.classes_by_blocks::<LANES>(block, out)
    }

    /// The classes from the full sums of every tree: the reference for the
    /// early stop.
    #[cfg(test)]
    pub(crate) fn predict_classes_all_trees(&self, block: Block, out: &mut [u32]) {
        let c = self.n_classes();
        let n_trees = self.n_trees() as f64;
        let mut sums = vec![0.0; block.len() * c];
        self.add_probabilities_scalar(block, &mut sums);
        for (o, row) in out.iter_mut().zip(sums.chunks_exact(c)) {
            *o = super::argmax(row.iter().map(|s| s / n_trees));
        }
    }

    pub(crate) fn check_shapes(&self, block: &Block, out: &[f64]) {
        assert_eq!(
            out.len(),
            block.len() * self.n_classes(),
            "one sum per row and class"
        );
        assert!(
            block.n_features() >= self.n_features(),
            "block has too few features"
        );
    }

    /// Adds each row's class probabilities summed over all trees (from
    /// zero, in tree order) to `out` (`block.len() * n_classes`, row after
    /// row): the lane walk.
    pub(crate) fn add_probabilities_lanes(&self, block: Block, out: &mut [f64]) {
        self.check_shapes(&block, out);
        self.walk_blocks::<LANES>(block, out);
    }

    /// One row at a time: the plainest form of the walk, the reference.
    #[cfg(test)]
    pub(crate) fn add_probabilities_scalar(&self, block: Block, out: &mut [f64]) {
        self.check_shapes(&block, out);
        self.walk_blocks::<1>(block, out);
    }

    /// Sums from zero per block of rows, then adds them to `out`.
    #[inline(always)]
    fn walk_blocks<const L: usize>(&self, block: Block, out: &mut [f64]) {
        let c = self.n_classes();
        self.by_blocks::<L>(block, None, |start, sums| {
            for (o, s) in out[start * c..][..sums.len()].iter_mut().zip(sums) {
                *o += s;
            }
        });
    }

    /// The classes on the lane walk, rows stopping once
    /// their class is decided (`stop::Stop`). Returns the number of (row,
    /// tree) walks.
    #[inline(always)]
    fn classes_by_blocks<const L: usize>(&self, block: Block, out: &mut [u32]) -> usize {
        assert_eq!(out.len(), block.len(), "one class per row");
        let (c, n) = (self.n_classes(), self.n_trees() as f64);
        let stop = Stop::new(self.n_trees(), &self.values);
        self.by_blocks::<L>(block, stop, |start, sums| {
            for (o, row) in out[start..].iter_mut().zip(sums.chunks_exact(c)) {
                *o = super::argmax(row.iter().map(|s| s / n));
            }
        })
    }

    /// Walks `block` a block of rows at a time, tree after tree, through
    /// the rows whose class is not decided yet (every row without a
    /// `stop`), handing each block's first row and its rows' sums from zero
    /// (`n_classes` per row) to `done`. Returns the number of (row, tree)
    /// walks.
    #[inline(always)]
    fn by_blocks<const L: usize>(
        &self,
        block: Block,
        stop: Option<Stop>,
        mut done: impl FnMut(usize, &[f64]),
    ) -> usize {
        let c = self.n_classes();
        let n_trees = self.n_trees();
        let mut sums = vec![0.0; PORTABLE_BLOCK_ROWS.min(block.len()) * c];
        let mut active = Vec::with_capacity(PORTABLE_BLOCK_ROWS.min(block.len()));
        let mut walked = 0;
        for start in (0..block.len()).step_by(PORTABLE_BLOCK_ROWS) {
            let end = (start + PORTABLE_BLOCK_ROWS).min(block.len());
            let sums = &mut sums[..(end - start) * c];
            sums.fill(0.0);
            active.clear();
            active.extend(0..(end - start) as u32);
            let tile = block.rows(start, end);
            for (t, &root) in self.roots.iter().enumerate() {
                if active.is_empty() {
                    break;
                }
                walked += active.len();
                self.walk_tree::<L>(root, tile, &active, sums);
                let left = n_trees - t - 1;
                if let Some(stop) = stop.filter(|s| s.worth_checking(t + 1, left)) {
                    let needed = stop.lead_needed(left);
                    active.retain(|&r| lead(&sums[r as usize * c..][..c]) <= needed);
                }
            }
            done(start, sums);
        }
        walked
    }

    /// Walks the rows `rows` of `block` through the tree at `root`, adding
    /// each one's leaf probabilities to its sums in `out` (`n_classes` per
    /// row of the block), `L` rows side by side.
    #[inline(always)]
    fn walk_tree<const L: usize>(&self, root: u32, block: Block, rows: &[u32], out: &mut [f64]) {
        let c = self.n_classes();
        let (data, stride, offset) = block.raw();
        let n = block.len();
        let nodes = &self.nodes[..];
        // Bounds the unchecked reads below: rows stay below `n`, and `Block`
        // holds rows `offset..offset + n` of every column.
        assert!(n == 0 || (self.n_features() - 1) * stride + offset + n <= data.len());
        assert!(rows.iter().all(|&r| (r as usize) < n), "rows of the block");
        for group in rows.chunks(L) {
            let mut idx = [root; L];
            let mut at = [offset; L];
            for (a, &r) in at.iter_mut().zip(group) {
                *a += r as usize;
            }
            if group.len() == L {
                loop {
                    let mut moved = false;
                    for (i, &a) in idx.iter_mut().zip(&at) {
                        // SAFETY: `validate` (run on every forest built or
                        // loaded; the fields are not public) keeps a walk
                        // inside its tree (children after the parent, leaves
                        // pointing at themselves) and features below
                        // `n_features`; `a` is `offset` plus a row of the
                        // block (both asserted above). The tests compare
                        // this path with the pointer trees.
                        let node = unsafe { *nodes.get_unchecked(*i as usize) };
                        let v = unsafe { *data.get_unchecked(node.feature as usize * stride + a) };
                        let next = node.children + (v > node.threshold) as u32;
                        moved |= next != *i;
                        *i = next;
                    }
                    if !moved {
                        break;
                    }
                }
            } else {
                for (i, &a) in idx.iter_mut().zip(&at).take(group.len()) {
                    loop {
                        let node = nodes[*i as usize];
                        let v = data[node.feature as usize * stride + a];
                        let next = node.children + (v > node.threshold) as u32;
                        if next == *i {
                            break;
                        }
                        *i = next;
                    }
                }
            }
            for (&i, &r) in idx.iter().zip(group) {
                let leaf = self.leaf_values[i as usize] as usize;
                let probs = &self.values[leaf * c..(leaf + 1) * c];
                let sums = &mut out[r as usize * c..(r as usize + 1) * c];
                for (s, &p) in sums.iter_mut().zip(probs) {
                    *s += p as f64;
                }
            }
        }
    }
}
