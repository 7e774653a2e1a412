//! The trees regrouped into 64-byte lines of three levels, the layout the
//! AVX-512 walk ([`super::avx512`]) reads.
//!
//! A line holds a complete binary subtree of three levels: 7 nodes in
//! heap positions 1..=7 (node `p` has its children at `2p` and `2p + 1`)
//! and 8 exits (positions 8..=15). A tree node that is a leaf above the
//! third level is padded: the positions under it get the threshold key
//! `u32::MAX`, which no row exceeds, so a row under it always goes left and
//! leaves by the first exit of the leaf's range. An exit leads either to the
//! line of the node found there, or, for a leaf, back to the line
//! itself: a row that reached its leaf keeps stepping in place, so a group
//! of rows can take a fixed number of steps without a branch per row.
//!
//! Leaves: a fully grown forest has few distinct leaf value vectors (its
//! leaves are pure, one class each, save a few with tied rows), so when
//! there are at most [`MAX_SHARED_VALUES`] of them each leaf exit names its
//! vector directly (`leaves[e]`, one byte) in a table that stays in L1.
//! Otherwise leaves are numbered, each with its own values: the leaf of
//! exit `e` is `keys[0] - 1 + popcount(leaves[0] & (2^(e+1) - 1))`.
//!
//! One step of a row through a line is three comparisons at once: the
//! row's feature values are picked by the line's 7 node keys themselves
//! (one permute of the row's keys, whose indices are the keys' low bits),
//! compared with the same 7 node keys (one vector compare), and the 7-bit
//! result names the exit through a 256-entry table ([`EXIT`]).
//!
//! Keys are ranks. For each feature, the forest's distinct thresholds are
//! sorted (`NodeLines::row_key`); a node's key is its threshold's rank
//! shifted left by [`FEATURE_BITS`], with its feature in the low bits; a
//! row's key for a feature is the number of that feature's thresholds
//! below the row's value, shifted the same way, low bits zero. Then
//! `row key > node key` exactly when `x > threshold` (NaN counts below
//! every threshold and goes left, as in the pointer trees), and the node's
//! key is also the permute index that picks the row's key. The line needs
//! no separate feature indices: one load and no widening per step (about
//! 5 % more rows/s than order keys with a byte index per node, ranking
//! included, measured A/B).
//!
//! On the benchmark forest (200 trees of 11,300 nodes) a walk visits 6.1
//! lines on average, against 17.2 nodes. The lines take 24 MB; its
//! leaves share 3 value vectors (numbered leaves would take 18 MB).

use super::rank_tree::RankTree;
use crate::iforest::flat::order_key;
use crate::rforest::flat::{FlatForest, NOT_A_LEAF};
use crate::Block;

/// Exits of a line.
pub const EXITS: usize = 8;

/// The most features a line walk handles (the permute picks from two
/// registers of 16 lanes).
pub const MAX_FEATURES: usize = 32;

/// Most distinct leaf value vectors named by value ids (one byte per exit,
/// and one id for the zero vector).
pub const MAX_SHARED_VALUES: usize = 255;

/// Low bits of a node key that hold its feature (the permute of two
/// 16-key registers reads 5 index bits).
pub const FEATURE_BITS: u32 = 5;

/// Most distinct thresholds per feature: ranks fit above the feature bits.
const MAX_RANKS: usize = (u32::MAX >> FEATURE_BITS) as usize;

/// A rank as keys hold it: above [`FEATURE_BITS`] zero bits (a row's key;
/// a node's key adds its feature in those bits).
fn rank_key(rank: usize) -> u32 {
    (rank as u32) << FEATURE_BITS
}

/// Key of padding nodes: no row's key is greater (row keys have zero low
/// bits; the feature it names, 31, is a padding lane or a zero key).
const PADDING_KEY: u32 = u32::MAX;

/// Three levels of one tree in one cache line.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeLine {
    /// `keys[0]`: with numbered leaves, the global number of the first leaf
    /// this line leads to (the walk never uses the comparison in lane 0);
    /// `keys[1..8]`: the nodes' keys in heap order (threshold rank above
    /// [`FEATURE_BITS`], feature below).
    pub keys: [u32; 8],
    /// For each exit, the next line (counted from the tree's first
    /// line); a leaf exit holds the line's own number.
    pub next: [u16; EXITS],
    /// Zero: keeps the line at 64 bytes with every byte initialised.
    pub reserved: [u8; 8],
    /// With shared values (`NodeLines::shared_values`): the value id of
    /// each leaf exit. With numbered leaves: `leaves[0]` has bit `e` set
    /// when exit `e` is the first exit leading to a leaf (padding repeats
    /// a leaf over adjacent exits).
    pub leaves: [u8; EXITS],
}

/// The exit (0..8) a row leaves a line by, for each 8-bit comparison mask
/// (bit `p` = the row's value is greater than node `p`'s threshold; bit 0
/// is ignored): three steps `p = 2p + bit p` from `p = 1`.
pub const EXIT: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut m = 0;
    while m < 256 {
        let mut p = 1;
        let mut level = 0;
        while level < 3 {
            p = 2 * p + ((m >> p) & 1);
            level += 1;
        }
        table[m] = (p - EXITS) as u8;
        m += 1;
    }
    table
};

/// The forest as lines, derived from a validated [`FlatForest`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLines {
    /// Every tree's lines, one tree after the other.
    pub(crate) lines: Vec<NodeLine>,
    /// First line of each tree, and the total at the end.
    pub(crate) tree_lines: Vec<u32>,
    /// First leaf of each tree, and the total at the end (all 0 with
    /// shared values).
    pub(crate) tree_leaves: Vec<u32>,
    /// The most lines a walk through each tree visits.
    pub(crate) tree_steps: Vec<u32>,
    /// For each tree, a line whose exit 0 is a leaf exit (the one an
    /// all-zero row reaches): where padding lanes of a walk wait.
    pub(crate) parking: Vec<u16>,
    /// `padded_classes` probabilities (zeros after the classes) per shared
    /// value vector or per numbered leaf, then one vector of zeros
    /// ([`NodeLines::zero_leaf`]).
    pub(crate) leaf_values: Vec<f32>,
    /// Per feature, the distinct thresholds' order keys, ascending (laid
    /// out for searching): a node's rank is its threshold's index.
    pub(crate) thresholds: Vec<RankTree>,
    /// Whether leaf exits name shared value vectors (`NodeLine::leaves`).
    pub(crate) shared_values: bool,
    /// When every shared value vector is one class with probability 1 (a
    /// fully grown forest's pure leaves) and the trees are at most 65,535:
    /// each vector's class, and the zero vector's slot `n_classes`. The
    /// walk then counts votes in 16 bits instead of adding 4 f64s per leaf
    /// (their sums are exactly the counts). Empty otherwise.
    pub(crate) vote_slots: Vec<u8>,
    pub(crate) n_classes: usize,
    /// Classes rounded up to a multiple of 4 (one 256-bit vector of f64).
    pub(crate) padded_classes: usize,
    pub(crate) n_features: usize,
}

impl NodeLines {
    /// Regroups `forest` (already validated) into lines, or `None` when
    /// the forest is outside what lines hold: more than [`MAX_FEATURES`]
    /// features, a tree of more than 65,536 lines, or more than 2^27
    /// distinct thresholds on a feature.
    pub fn new(forest: &FlatForest) -> Option<NodeLines> {
        Self::build(forest, true)
    }

    /// [`NodeLines::new`] with numbered leaves whatever the values: the
    /// layout of forests with many distinct leaves, for tests on any forest.
    #[cfg(test)]
    pub(crate) fn with_numbered_leaves(forest: &FlatForest) -> Option<NodeLines> {
        Self::build(forest, false)
    }

    fn build(forest: &FlatForest, may_share: bool) -> Option<NodeLines> {
        let c = forest.n_classes();
        if forest.n_features() > MAX_FEATURES {
            return None;
        }
        let padded_classes = c.div_ceil(4) * 4;
        let pad = |v: &[f32]| {
            let mut v = v.to_vec();
            v.resize(padded_classes, 0.0);
            v
        };
        // The distinct leaf value vectors (bit for bit), if few enough.
        let mut shared: std::collections::HashMap<Vec<u32>, u8> = Default::default();
        let mut leaf_values = Vec::new();
        for values in forest.values.chunks_exact(c) {
            let bits = values.iter().map(|v| v.to_bits()).collect();
            if shared.len() <= MAX_SHARED_VALUES && !shared.contains_key(&bits) {
                shared.insert(bits, shared.len() as u8);
                leaf_values.extend(pad(values));
            }
        }
        let shared_values = may_share && shared.len() <= MAX_SHARED_VALUES;
        if !shared_values {
            leaf_values.clear();
        }
        let mut thresholds = vec![Vec::new(); forest.n_features()];
        for (n, split) in forest.nodes.iter().enumerate() {
            if forest.leaf_values[n] == NOT_A_LEAF {
                thresholds[split.feature as usize].push(order_key(split.threshold));
            }
        }
        for keys in &mut thresholds {
            keys.sort_unstable();
            keys.dedup();
            if keys.len() > MAX_RANKS {
                return None;
            }
        }
        let thresholds: Vec<RankTree> = thresholds.iter().map(|k| RankTree::new(k)).collect();

        let mut r = NodeLines {
            lines: Vec::new(),
            tree_lines: vec![0],
            tree_leaves: vec![0],
            tree_steps: Vec::with_capacity(forest.n_trees()),
            parking: Vec::with_capacity(forest.n_trees()),
            leaf_values,
            thresholds,
            shared_values,
            vote_slots: Vec::new(),
            n_classes: c,
            padded_classes,
            n_features: forest.n_features(),
        };
        for &root in &forest.roots {
            let base = r.lines.len();
            // Breadth first: every line comes after the one leading to
            // it, so a walk only moves forward and ends.
            let mut queue = std::collections::VecDeque::from([(root as usize, 0usize, 1u32)]);
            r.lines.push(NodeLine::default());
            let mut steps = 1;
            while let Some((node, index, depth)) = queue.pop_front() {
                steps = steps.max(depth);
                let mut line = NodeLine::default();
                // The tree node at each heap position (padding repeats the
                // leaf above it).
                let mut at = [0usize; 2 * EXITS];
                at[1] = node;
                for p in 1..EXITS {
                    let n = at[p];
                    if forest.leaf_values[n] == NOT_A_LEAF {
                        let split = forest.nodes[n];
                        let f = split.feature as usize;
                        let rank = r.thresholds[f].rank(order_key(split.threshold));
                        line.keys[p] = rank_key(rank) | f as u32;
                        at[2 * p] = split.children as usize;
                        at[2 * p + 1] = split.children as usize + 1;
                    } else {
                        line.keys[p] = PADDING_KEY;
                        at[2 * p] = n;
                        at[2 * p + 1] = n;
                    }
                }
                if !shared_values {
                    line.keys[0] = (r.leaf_values.len() / padded_classes) as u32;
                }
                let mut previous = usize::MAX;
                for e in 0..EXITS {
                    let n = at[EXITS + e];
                    if forest.leaf_values[n] == NOT_A_LEAF {
                        let next = r.lines.len() - base;
                        if next > u16::MAX as usize {
                            return None;
                        }
                        r.lines.push(NodeLine::default());
                        queue.push_back((n, next, depth + 1));
                        line.next[e] = next as u16;
                    } else {
                        line.next[e] = index as u16;
                        let leaf = forest.leaf_values[n] as usize;
                        let values = &forest.values[leaf * c..(leaf + 1) * c];
                        if shared_values {
                            let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
                            line.leaves[e] = shared[&bits];
                        } else if n != previous {
                            line.leaves[0] |= 1 << e;
                            r.leaf_values.extend(pad(values));
                        }
                    }
                    previous = n;
                }
                r.lines[base + index] = line;
            }
            let lines = &r.lines[base..];
            let mut parking = 0;
            while lines[parking].next[0] as usize != parking {
                parking = lines[parking].next[0] as usize;
            }
            r.parking.push(parking as u16);
            r.tree_steps.push(steps);
            r.tree_lines.push(r.lines.len() as u32);
            let leaves = if shared_values {
                0
            } else {
                r.leaf_values.len() / padded_classes
            };
            r.tree_leaves.push(leaves as u32);
        }
        r.leaf_values
            .resize(r.leaf_values.len() + padded_classes, 0.0);
        if shared_values && r.n_trees() <= u16::MAX as usize && c < u8::MAX as usize {
            let zero = r.zero_leaf() as usize;
            let slots: Option<Vec<u8>> = r
                .leaf_values
                .chunks_exact(padded_classes)
                .enumerate()
                .map(|(i, v)| match v[..c].iter().position(|&p| p == 1.0) {
                    _ if i == zero => Some(c as u8),
                    Some(k) if v[..c].iter().filter(|&&p| p != 0.0).count() == 1 => Some(k as u8),
                    _ => None,
                })
                .collect();
            r.vote_slots = slots.unwrap_or_default();
        }
        r.check();
        Some(r)
    }

    /// The vector of zero probabilities after the others: adding it leaves
    /// a sum unchanged (sums are never -0.0).
    pub(crate) fn zero_leaf(&self) -> u32 {
        (self.leaf_values.len() / self.padded_classes - 1) as u32
    }

    /// Asserts the invariants the unchecked reads of the walks rely on.
    /// They hold by construction; this guards against a mistake in it.
    fn check(&self) {
        let n_leaves = self.leaf_values.len() / self.padded_classes;
        assert!(self.leaf_values.len() == n_leaves * self.padded_classes);
        let zeros = &self.leaf_values[(n_leaves.max(1) - 1) * self.padded_classes..];
        assert!(
            n_leaves >= 1 && zeros.iter().all(|&v| v == 0.0),
            "zero vector last"
        );
        assert!(!self.shared_values || n_leaves <= MAX_SHARED_VALUES + 1);
        assert!(
            !self.votes()
                || (self.shared_values
                    && self.vote_slots.len() == n_leaves
                    && self
                        .vote_slots
                        .iter()
                        .all(|&s| (s as usize) < self.vote_stride())),
            "a vote slot per shared vector"
        );
        for t in 0..self.n_trees() {
            let (first, end) = (self.tree_lines[t] as usize, self.tree_lines[t + 1] as usize);
            let (first_leaf, end_leaf) = (self.tree_leaves[t], self.tree_leaves[t + 1]);
            assert!(first < end && end - first <= 1 << 16);
            let parking = self.parking[t] as usize;
            assert!(first + parking < end);
            assert!(self.lines[first + parking].next[0] as usize == parking);
            for (i, line) in self.lines[first..end].iter().enumerate() {
                assert!(line.keys[1..]
                    .iter()
                    .all(|&k| k == PADDING_KEY || self.feature_of(k) < self.n_features));
                for e in 0..EXITS {
                    let next = line.next[e] as usize;
                    assert!(next < end - first, "exits stay in the tree");
                    if next == i {
                        let leaf = self.leaf_of(line, e);
                        if self.shared_values {
                            assert!(leaf < self.zero_leaf(), "shared values");
                        } else {
                            assert!(leaf >= first_leaf && leaf < end_leaf, "leaf of tree {t}");
                        }
                    } else {
                        assert!(next > i, "walks move forward");
                    }
                }
            }
        }
    }

    pub fn n_trees(&self) -> usize {
        self.tree_steps.len()
    }

    /// Whether walks count votes (`NodeLines::vote_slots`).
    pub(crate) fn votes(&self) -> bool {
        !self.vote_slots.is_empty()
    }

    /// Counts per row when voting: the classes and the zero leaf's slot.
    pub(crate) fn vote_stride(&self) -> usize {
        self.n_classes + 1
    }

    /// The feature a node key tests.
    fn feature_of(&self, key: u32) -> usize {
        (key & ((1 << FEATURE_BITS) - 1)) as usize
    }

    /// A row's key for `feature` at value `x`: the number of the feature's
    /// thresholds below `x` (0 for NaN), above [`FEATURE_BITS`] zero bits.
    pub(crate) fn row_key(&self, feature: usize, x: f32) -> u32 {
        rank_key(self.thresholds[feature].rank(order_key(x)))
    }

    /// `NodeLines::row_key` of every value of a column, handed to `put`
    /// with its row, 16 rows searched in lockstep down the feature's
    /// [`RankTree`]. On the benchmark forest (78,000 to 107,000 thresholds
    /// per feature), ranking 50,000 rows took 6.0 ms with 16 branch-free
    /// binary searches in lockstep, 4.4 ms down the tree, 3.3 ms with the
    /// tree prefetched (one binary search after the other: 730,000
    /// classes/s overall, against 900,000 for the lockstep searches).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn row_keys(
        &self,
        feature: usize,
        column: &[f32],
        mut put: impl FnMut(usize, u32),
    ) {
        const LOCKSTEP: usize = 16;
        let sorted = &self.thresholds[feature];
        sorted.prefetch_for(column.len());
        for (c, values) in column.chunks(LOCKSTEP).enumerate() {
            let mut keys = [0u32; LOCKSTEP];
            for (k, &x) in keys.iter_mut().zip(values) {
                *k = order_key(x);
            }
            // SAFETY: the caller's contract.
            let ranks = unsafe { sorted.ranks_avx512(&keys) };
            for (i, &rank) in ranks[..values.len()].iter().enumerate() {
                put(c * LOCKSTEP + i, rank_key(rank));
            }
        }
    }

    /// The values (their index in `leaf_values`, in vectors) reached by
    /// leaving `line` by leaf exit `e`.
    pub(crate) fn leaf_of(&self, line: &NodeLine, e: usize) -> u32 {
        if self.shared_values {
            Self::leaf_of_by::<true>(line, e)
        } else {
            Self::leaf_of_by::<false>(line, e)
        }
    }

    /// [`NodeLines::leaf_of`] for a known `shared_values`.
    #[inline(always)]
    pub(crate) fn leaf_of_by<const SHARED: bool>(line: &NodeLine, e: usize) -> u32 {
        if SHARED {
            return line.leaves[e] as u32;
        }
        let starts = line.leaves[0] as u32 & ((2u32 << e) - 1);
        line.keys[0]
            .wrapping_add(starts.count_ones())
            .wrapping_sub(1)
    }

    /// The plainest walk over the lines, one row at a time through
    /// checked arrays: the reference the AVX-512 walk is tested against.
    /// Adds each row's probability sums (from zero, in tree order) to
    /// `out` (`block.len() * n_classes`).
    pub fn add_probabilities_scalar(&self, block: Block, out: &mut [f64]) {
        let c = self.n_classes;
        assert_eq!(out.len(), block.len() * c);
        let mut sums = vec![0.0f64; c];
        for r in 0..block.len() {
            let mut keys = [0u32; 1 << FEATURE_BITS];
            for (f, key) in keys[..self.n_features].iter_mut().enumerate() {
                *key = self.row_key(f, block.get(f, r));
            }
            sums.fill(0.0);
            for t in 0..self.n_trees() {
                let tree = &self.lines[self.tree_lines[t] as usize..];
                let mut i = 0;
                let leaf = loop {
                    let line = &tree[i];
                    let mut mask = 0usize;
                    for p in 1..EXITS {
                        let x = keys[self.feature_of(line.keys[p])];
                        mask |= ((x > line.keys[p]) as usize) << p;
                    }
                    let e = EXIT[mask] as usize;
                    let next = line.next[e] as usize;
                    if next == i {
                        break self.leaf_of(line, e) as usize;
                    }
                    i = next;
                };
                let values = &self.leaf_values[leaf * self.padded_classes..][..c];
                for (s, &v) in sums.iter_mut().zip(values) {
                    *s += v as f64;
                }
            }
            for (o, s) in out[r * c..(r + 1) * c].iter_mut().zip(&sums) {
                *o += s;
            }
        }
    }
}
