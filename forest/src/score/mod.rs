//! Scoring a fitted Random Forest: [`ForestScorer`] picks its walk once,
//! when it is built, and offers what callers need: probabilities and
//! classes, for a matrix (on every CPU) or for one block (on this thread).
//!
//! Two walks, both adding each leaf's probabilities in tree order, so they
//! give bit-identical sums (the tests compare both with the pointer trees):
//! - [`Walk::Avx512`], on CPUs with AVX-512 and forests of at most 32
//!   features: the forest is laid out again as [`node_lines::NodeLines`],
//!   three tree levels per 64-byte line, and walked 16 rows side by side by
//!   [`avx512`]. The layout (about 24 MB for 200 fully grown trees on
//!   50,000 rows) is built only for this walk.
//! - [`Walk::Lanes`], everywhere else: the stored arrays walked 16 rows
//!   side by side ([`FlatForest`](crate::rforest::FlatForest)'s lane walk).
//!
//! The Isolation Forest has one walk (its lanes; an AVX2 build measured
//! within 1-8 % and was dropped), so it scores itself
//! ([`crate::iforest::IsolationForest::score_samples`]).

#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod node_lines;
pub(crate) mod rank_tree;

use crate::block::on_every_cpu;
use crate::rforest::RandomForest;
use crate::{Block, FeatureMatrix};
use node_lines::NodeLines;

/// The fewest rows worth a thread of their own.
const MIN_ROWS_PER_THREAD: usize = 4096;

/// How a [`ForestScorer`] walks its trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// 16 rows side by side over the stored arrays; any CPU.
    Lanes,
    /// 16 rows side by side over node lines, with AVX-512.
    Avx512,
}

impl Walk {
    /// Whether this CPU runs the walk.
    pub fn runs_here(self) -> bool {
        match self {
            Walk::Lanes => true,
            #[cfg(target_arch = "x86_64")]
            Walk::Avx512 => avx512::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Walk::Avx512 => false,
        }
    }
}

/// A fitted Random Forest with the walk chosen for this CPU.
pub struct ForestScorer {
    model: RandomForest,
    walk: Walk,
    /// The AVX-512 layout, with [`Walk::Avx512`] only.
    lines: Option<Box<NodeLines>>,
}

impl ForestScorer {
    /// The fastest walk this CPU and forest allow.
    pub fn new(model: RandomForest) -> Self {
        let lines = Walk::Avx512
            .runs_here()
            .then(|| NodeLines::new(&model.forest).map(Box::new))
            .flatten();
        let walk = if lines.is_some() {
            Walk::Avx512
        } else {
            Walk::Lanes
        };
        ForestScorer { model, walk, lines }
    }

    /// A copy of `model` scored with `walk`, or `None` when this CPU cannot
    /// run it or the forest does not fit its layout (tests, benchmarks).
    pub fn with_walk(model: &RandomForest, walk: Walk) -> Option<Self> {
        let lines = match walk {
            _ if !walk.runs_here() => return None,
            Walk::Lanes => None,
            Walk::Avx512 => Some(Box::new(NodeLines::new(&model.forest)?)),
        };
        Some(ForestScorer {
            model: model.clone(),
            walk,
            lines,
        })
    }

    pub fn model(&self) -> &RandomForest {
        &self.model
    }

    pub fn into_model(self) -> RandomForest {
        self.model
    }

    pub fn walk(&self) -> Walk {
        self.walk
    }

    /// Class probabilities, `n_rows * n_classes` row after row: the mean
    /// over trees of each tree's leaf frequencies.
    pub fn probabilities(&self, data: &FeatureMatrix) -> Vec<f64> {
        let c = self.model.n_classes();
        let mut out = vec![0.0; data.n_rows() * c];
        on_every_cpu(data, &mut out, c, MIN_ROWS_PER_THREAD, |block, out| {
            self.probabilities_block(block, out)
        });
        out
    }

    /// [`ForestScorer::probabilities`] of one block, on this thread.
    pub fn probabilities_block(&self, block: Block, out: &mut [f64]) {
        out.fill(0.0);
        self.add_sums(block, out);
        let n_trees = self.model.forest.n_trees() as f64;
        for v in out.iter_mut() {
            *v /= n_trees;
        }
    }

    /// The most probable class index of each row (first on ties), on every
    /// CPU: the argmax of [`ForestScorer::probabilities`], though rows stop
    /// walking trees once their class is decided (`rforest::stop`).
    pub fn classes(&self, data: &FeatureMatrix) -> Vec<u32> {
        let mut out = vec![0; data.n_rows()];
        on_every_cpu(data, &mut out, 1, MIN_ROWS_PER_THREAD, |block, out| {
            self.classes_block(block, out);
        });
        out
    }

    /// [`ForestScorer::classes`] of one block, on this thread. Returns the
    /// number of (row, tree) walks.
    pub fn classes_block(&self, block: Block, out: &mut [u32]) -> usize {
        assert_eq!(out.len(), block.len(), "one class per row");
        match &self.lines {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `lines` is built only when the CPU runs the walk
            // (`with_walk` checked `runs_here`).
            Some(lines) => unsafe { avx512::predict_classes(lines, block, out) },
            _ => self.model.forest.predict_classes_lanes(block, out),
        }
    }

    /// Adds each row's probabilities summed over the trees to `out`.
    pub(crate) fn add_sums(&self, block: Block, out: &mut [f64]) {
        self.model.forest.check_shapes(&block, out);
        match &self.lines {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `classes_block`.
            Some(lines) => unsafe { avx512::add_probabilities(lines, block, out) },
            _ => self.model.forest.add_probabilities_lanes(block, out),
        }
    }
}
