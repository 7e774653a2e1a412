//! CART classification trees grown as scikit-learn's `DecisionTreeClassifier`
//! grows them inside a `RandomForestClassifier` (best splitter, per-split
//! feature sampling, bootstrap counts as sample weights), kept as ordinary
//! node lists: the reference the flat layout is checked against.
//!
//! Speed: every feature is sorted once per fit ([`Presorted`]); a tree keeps,
//! for each feature, its in-bag rows in that order and splits a node by
//! stably partitioning each feature's run of rows, so no node ever sorts.

use rand::Rng;

use super::{Criterion, RandomForestParams};
use crate::FeatureMatrix;

/// scikit-learn's `FEATURE_THRESHOLD`: values closer than this are equal
/// for splitting, and a feature whose range in a node is below it is
/// constant there.
const FEATURE_THRESHOLD: f32 = 1e-7;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, others to `right`.
    Split {
        feature: u32,
        threshold: f32,
        left: u32,
        right: u32,
    },
    /// Class probabilities at `values[value * n_classes..][..n_classes]`.
    Leaf { value: u32 },
}

/// One fitted tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionTree {
    pub nodes: Vec<Node>,
    /// Leaf class probabilities (weighted class counts / weighted total).
    pub values: Vec<f32>,
    pub n_classes: usize,
}

impl DecisionTree {
    /// The class probabilities of the leaf `x` ends in.
    pub fn predict_proba(&self, x: &[f32]) -> &[f32] {
        let mut i = 0usize;
        loop {
            match self.nodes[i] {
                // `x > t` goes right, as in the flat layout (NaN, which the
                // encoders never produce, would go left in both).
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if x[feature as usize] > threshold {
                        right as usize
                    } else {
                        left as usize
                    }
                }
                Node::Leaf { value } => {
                    let start = value as usize * self.n_classes;
                    return &self.values[start..start + self.n_classes];
                }
            }
        }
    }

    /// Levels below the root of the deepest leaf.
    pub fn depth(&self) -> u32 {
        let mut depth = vec![0u32; self.nodes.len()];
        let mut max = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if let Node::Split { left, right, .. } = *n {
                depth[left as usize] = depth[i] + 1;
                depth[right as usize] = depth[i] + 1;
                max = max.max(depth[i] + 1);
            }
        }
        max
    }

    pub fn n_leaves(&self) -> usize {
        self.values.len() / self.n_classes.max(1)
    }
}

/// Each feature's rows in ascending order of value (ties by row), computed
/// once per fit and shared by every tree.
pub struct Presorted {
    order: Vec<Vec<u32>>,
}

impl Presorted {
    pub fn new(data: &FeatureMatrix) -> Self {
        let order = (0..data.n_features())
            .map(|f| {
                let col = data.column(f);
                let mut rows: Vec<u32> = (0..col.len() as u32).collect();
                rows.sort_by(|&a, &b| col[a as usize].total_cmp(&col[b as usize]));
                rows
            })
            .collect();
        Presorted { order }
    }
}

/// What training needs besides the parameters.
pub struct TrainingSet<'a> {
    pub data: &'a FeatureMatrix,
    /// Class index of each row, below `n_classes`.
    pub labels: &'a [u32],
    pub n_classes: usize,
    pub presorted: &'a Presorted,
}

/// A row of one feature's sorted run: its value and the row's in-bag id.
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: f32,
    id: u32,
}

/// The best split found so far in a node.
#[derive(Debug, Clone, Copy)]
struct Split {
    feature: u32,
    /// Rows `start..start + pos` go left.
    pos: usize,
    threshold: f32,
    proxy: f64,
}

/// The impurity measure, as scikit-learn's `Gini` and `Entropy` criteria.
pub trait Impurity {
    /// Node impurity from weighted class counts.
    fn impurity(counts: &[u64], total: u64) -> f64;
}

/// Gini impurity `1 - sum p_k^2`.
pub struct Gini;
/// Shannon entropy `-sum p_k log2 p_k`.
pub struct Entropy;

impl Impurity for Gini {
    fn impurity(counts: &[u64], total: u64) -> f64 {
        if total == 0 {
            return 0.0;
        }
        let w = total as f64;
        1.0 - counts
            .iter()
            .map(|&c| (c as f64 / w) * (c as f64 / w))
            .sum::<f64>()
    }
}

impl Impurity for Entropy {
    fn impurity(counts: &[u64], total: u64) -> f64 {
        if total == 0 {
            return 0.0;
        }
        let w = total as f64;
        -counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| (c as f64 / w) * (c as f64 / w).log2())
            .sum::<f64>()
    }
}

/// The impurity decrease of a split, up to terms that are the same for
/// every split of a node (scikit-learn's `proxy_impurity_improvement`):
/// `-(w_l * I_l + w_r * I_r)` rescaled. Exposed for tests.
pub fn proxy_improvement(
    criterion: Criterion,
    left: &[u64],
    right: &[u64],
    xlogx: &dyn Fn(u64) -> f64,
) -> f64 {
    let wl: u64 = left.iter().sum();
    let wr: u64 = right.iter().sum();
    match criterion {
        // -(wl (1 - sum l^2/wl^2) + wr (...)) = sum l^2/wl + sum r^2/wr - w
        Criterion::Gini => {
            let sl: u64 = left.iter().map(|c| c * c).sum();
            let sr: u64 = right.iter().map(|c| c * c).sum();
            sl as f64 / wl as f64 + sr as f64 / wr as f64
        }
        // -(wl H_l + wr H_r) * ln 2 = sum c ln c - wl ln wl - (same right)
        Criterion::Entropy => {
            let sl: f64 = left.iter().map(|&c| xlogx(c)).sum();
            let sr: f64 = right.iter().map(|&c| xlogx(c)).sum();
            sl + sr - xlogx(wl) - xlogx(wr)
        }
    }
}

/// Per-tree working memory.
struct Grower<'a, R: Rng> {
    params: &'a RandomForestParams,
    max_features: usize,
    n_features: usize,
    n_classes: usize,
    /// In-bag rows: `(weight << 16) | class` by in-bag id.
    weight_class: Vec<u32>,
    /// For each feature, `m` entries; a node owns `start..end` of each.
    sorted: Vec<Entry>,
    m: usize,
    goes_left: Vec<bool>,
    scratch: Vec<Entry>,
    /// scikit-learn's splitter `features` / `constant_features` arrays:
    /// the first `n_constant` entries of `features` are constant in the
    /// node being split.
    features: Vec<u32>,
    constant_features: Vec<u32>,
    /// `x ln x` for integer weights up to the bootstrap total (entropy).
    xlogx: Vec<f64>,
    left_counts: Vec<u64>,
    rng: &'a mut R,
    tree: DecisionTree,
}

struct Pending {
    start: usize,
    end: usize,
    depth: u32,
    /// Index of the node to fill in.
    node: usize,
    n_constant: usize,
}

/// Grows one tree on a bootstrap sample of `set` drawn with `rng`.
pub fn grow<R: Rng>(
    set: &TrainingSet,
    params: &RandomForestParams,
    max_features: usize,
    rng: &mut R,
) -> DecisionTree {
    let n = set.data.n_rows();
    let n_features = set.data.n_features();
    // Bootstrap as scikit-learn: n draws with replacement; the counts become
    // sample weights and rows drawn zero times are left out.
    let mut counts = vec![0u32; n];
    if params.bootstrap {
        for _ in 0..n {
            counts[rng.gen_range(0..n)] += 1;
        }
    } else {
        counts.fill(1);
    }
    let mut id_of = vec![u32::MAX; n];
    let mut weight_class = Vec::with_capacity(n);
    for (row, &c) in counts.iter().enumerate() {
        if c > 0 {
            id_of[row] = weight_class.len() as u32;
            weight_class.push((c.min(0xffff) << 16) | set.labels[row]);
        }
    }
    let m = weight_class.len();
    let mut sorted = Vec::with_capacity(m * n_features);
    for f in 0..n_features {
        let col = set.data.column(f);
        sorted.extend(
            set.presorted.order[f]
                .iter()
                .filter(|&&row| id_of[row as usize] != u32::MAX)
                .map(|&row| Entry {
                    value: col[row as usize],
                    id: id_of[row as usize],
                }),
        );
    }
    let xlogx = match params.criterion {
        Criterion::Entropy => (0..=n as u64)
            .map(|x| {
                if x == 0 {
                    0.0
                } else {
                    x as f64 * (x as f64).ln()
                }
            })
            .collect(),
        Criterion::Gini => Vec::new(),
    };
    let mut g = Grower {
        params,
        max_features,
        n_features,
        n_classes: set.n_classes,
        weight_class,
        sorted,
        m,
        goes_left: vec![false; m],
        scratch: Vec::with_capacity(m),
        features: (0..n_features as u32).collect(),
        constant_features: (0..n_features as u32).collect(),
        xlogx,
        left_counts: vec![0; set.n_classes],
        rng,
        tree: DecisionTree {
            nodes: Vec::new(),
            values: Vec::new(),
            n_classes: set.n_classes,
        },
    };
    g.build();
    g.tree
}

impl<R: Rng> Grower<'_, R> {
    fn build(&mut self) {
        let mut counts = vec![0u64; self.n_classes];
        self.tree.nodes.push(Node::Leaf { value: 0 });
        // Depth first, left child first, as scikit-learn's builder: the
        // order decides which random draws each node gets.
        let mut stack = vec![Pending {
            start: 0,
            end: self.m,
            depth: 0,
            node: 0,
            n_constant: 0,
        }];
        while let Some(p) = stack.pop() {
            counts.fill(0);
            for e in &self.sorted[p.start..p.end] {
                let wc = self.weight_class[e.id as usize];
                counts[(wc & 0xffff) as usize] += (wc >> 16) as u64;
            }
            let total: u64 = counts.iter().sum();
            let n_node = p.end - p.start;
            let msl = self.params.min_samples_leaf;
            let pure = counts.iter().filter(|&&c| c > 0).count() <= 1;
            let mut split = None;
            if !(p.depth >= self.params.max_depth.unwrap_or(u32::MAX)
                || n_node < self.params.min_samples_split.max(2)
                || n_node < 2 * msl
                || pure)
            {
                let (s, n_constant) = self.best_split(p.start, p.end, p.n_constant, &counts);
                split = s.map(|s| (s, n_constant));
            }
            match split {
                None => {
                    let value = (self.tree.values.len() / self.n_classes) as u32;
                    self.tree
                        .values
                        .extend(counts.iter().map(|&c| (c as f64 / total as f64) as f32));
                    self.tree.nodes[p.node] = Node::Leaf { value };
                }
                Some((s, n_constant)) => {
                    self.partition(p.start, p.end, s);
                    let left = self.tree.nodes.len();
                    let right = left + 1;
                    self.tree.nodes.push(Node::Leaf { value: 0 });
                    self.tree.nodes.push(Node::Leaf { value: 0 });
                    self.tree.nodes[p.node] = Node::Split {
                        feature: s.feature,
                        threshold: s.threshold,
                        left: left as u32,
                        right: right as u32,
                    };
                    let mid = p.start + s.pos;
                    stack.push(Pending {
                        start: mid,
                        end: p.end,
                        depth: p.depth + 1,
                        node: right,
                        n_constant,
                    });
                    stack.push(Pending {
                        start: p.start,
                        end: mid,
                        depth: p.depth + 1,
                        node: left,
                        n_constant,
                    });
                }
            }
        }
    }

    /// scikit-learn's `BestSplitter.node_split` feature sampling: draw
    /// features without replacement until `max_features` have been visited
    /// (constant ones included) and at least one was not constant, or none
    /// is left. Returns the split and the constant-feature count for the
    /// children.
    fn best_split(
        &mut self,
        start: usize,
        end: usize,
        n_known_constants: usize,
        counts: &[u64],
    ) -> (Option<Split>, usize) {
        let mut best: Option<Split> = None;
        let mut n_visited = 0usize;
        let mut n_found_constants = 0usize;
        let mut n_drawn_constants = 0usize;
        let mut n_total_constants = n_known_constants;
        let mut f_i = self.n_features;
        while f_i > n_total_constants
            && (n_visited < self.max_features || n_visited <= n_found_constants + n_drawn_constants)
        {
            n_visited += 1;
            let mut f_j = self
                .rng
                .gen_range(n_drawn_constants..f_i - n_found_constants);
            if f_j < n_known_constants {
                self.features.swap(n_drawn_constants, f_j);
                n_drawn_constants += 1;
                continue;
            }
            f_j += n_found_constants;
            let feature = self.features[f_j];
            let run = &self.sorted[feature as usize * self.m..][start..end];
            if run[end - start - 1].value <= run[0].value + FEATURE_THRESHOLD {
                self.features.swap(f_j, n_total_constants);
                n_found_constants += 1;
                n_total_constants += 1;
                continue;
            }
            f_i -= 1;
            self.features.swap(f_i, f_j);
            if let Some(s) = self.scan(feature, start, end, counts) {
                if best.is_none_or(|b| s.proxy > b.proxy) {
                    best = Some(s);
                }
            }
        }
        // Keep the constants first for the children (scikit-learn's
        // bookkeeping with `constant_features`).
        self.features[..n_known_constants]
            .copy_from_slice(&self.constant_features[..n_known_constants]);
        self.constant_features[n_known_constants..n_total_constants]
            .copy_from_slice(&self.features[n_known_constants..n_total_constants]);
        (best, n_total_constants)
    }

    /// The best threshold on one feature: every boundary between distinct
    /// values that leaves `min_samples_leaf` rows on each side.
    fn scan(&mut self, feature: u32, start: usize, end: usize, counts: &[u64]) -> Option<Split> {
        let run = &self.sorted[feature as usize * self.m..][start..end];
        let n = run.len();
        let msl = self.params.min_samples_leaf;
        let total: u64 = counts.iter().sum();
        let left = &mut self.left_counts;
        left.fill(0);
        let mut wl = 0u64;
        let mut best: Option<(usize, f64)> = None;
        match self.params.criterion {
            Criterion::Gini => {
                let mut sq_l = 0u64;
                let mut sq_r: u64 = counts.iter().map(|c| c * c).sum();
                let mut moved = 0usize;
                let mut p = 0usize;
                while p < n {
                    while p + 1 < n && run[p + 1].value <= run[p].value + FEATURE_THRESHOLD {
                        p += 1;
                    }
                    p += 1;
                    if p >= n {
                        break;
                    }
                    for e in &run[moved..p] {
                        let wc = self.weight_class[e.id as usize];
                        let (c, w) = ((wc & 0xffff) as usize, (wc >> 16) as u64);
                        let l = left[c];
                        let r = counts[c] - l;
                        sq_l += 2 * l * w + w * w;
                        sq_r = sq_r + w * w - 2 * r * w;
                        left[c] = l + w;
                        wl += w;
                    }
                    moved = p;
                    if p < msl || n - p < msl {
                        continue;
                    }
                    let proxy = sq_l as f64 / wl as f64 + sq_r as f64 / (total - wl) as f64;
                    if best.is_none_or(|(_, b)| proxy > b) {
                        best = Some((p, proxy));
                    }
                }
            }
            Criterion::Entropy => {
                let xlogx = &self.xlogx;
                let mut s_l = 0.0f64;
                let mut s_r: f64 = counts.iter().map(|&c| xlogx[c as usize]).sum();
                let mut moved = 0usize;
                let mut p = 0usize;
                while p < n {
                    while p + 1 < n && run[p + 1].value <= run[p].value + FEATURE_THRESHOLD {
                        p += 1;
                    }
                    p += 1;
                    if p >= n {
                        break;
                    }
                    for e in &run[moved..p] {
                        let wc = self.weight_class[e.id as usize];
                        let (c, w) = ((wc & 0xffff) as usize, (wc >> 16) as u64);
                        let l = left[c];
                        let r = counts[c] - l;
                        s_l += xlogx[(l + w) as usize] - xlogx[l as usize];
                        s_r += xlogx[(r - w) as usize] - xlogx[r as usize];
                        left[c] = l + w;
                        wl += w;
                    }
                    moved = p;
                    if p < msl || n - p < msl {
                        continue;
                    }
                    let proxy = s_l + s_r - xlogx[wl as usize] - xlogx[(total - wl) as usize];
                    if best.is_none_or(|(_, b)| proxy > b) {
                        best = Some((p, proxy));
                    }
                }
            }
        }
        best.map(|(pos, proxy)| Split {
            feature,
            pos,
            threshold: midpoint(run[pos - 1].value, run[pos].value),
            proxy,
        })
    }

    /// Splits the node's run of every feature into its left rows then its
    /// right rows, each kept in sorted order.
    fn partition(&mut self, start: usize, end: usize, s: Split) {
        let m = self.m;
        let split_run = &self.sorted[s.feature as usize * m..][start..end];
        for (i, e) in split_run.iter().enumerate() {
            self.goes_left[e.id as usize] = i < s.pos;
        }
        for f in 0..self.n_features {
            if f == s.feature as usize {
                continue;
            }
            let run = &mut self.sorted[f * m + start..f * m + end];
            self.scratch.clear();
            let mut w = 0;
            for i in 0..run.len() {
                let e = run[i];
                if self.goes_left[e.id as usize] {
                    run[w] = e;
                    w += 1;
                } else {
                    self.scratch.push(e);
                }
            }
            run[w..].copy_from_slice(&self.scratch);
        }
    }
}

/// scikit-learn's threshold between two consecutive distinct values:
/// `a/2 + b/2` in f64, or `a` when that rounds to `b` or overflows; then
/// the largest f32 not above it, so that `x <= threshold` in f32 decides
/// as the f64 comparison would.
pub fn midpoint(a: f32, b: f32) -> f32 {
    let t = a as f64 / 2.0 + b as f64 / 2.0;
    if t == b as f64 || t.is_infinite() {
        return a;
    }
    let down = t as f32;
    if down as f64 > t {
        down.next_down()
    } else {
        down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xlogx(x: u64) -> f64 {
        if x == 0 {
            0.0
        } else {
            x as f64 * (x as f64).ln()
        }
    }

    #[test]
    fn gini_and_entropy_of_hand_computed_nodes() {
        // 3 of class 0, 1 of class 1: gini = 1 - (9 + 1)/16 = 0.375.
        assert_eq!(Gini::impurity(&[3, 1], 4), 0.375);
        assert_eq!(Gini::impurity(&[4, 0], 4), 0.0);
        // Three equal classes: 1 - 3/9 = 2/3.
        assert!((Gini::impurity(&[2, 2, 2], 6) - 2.0 / 3.0).abs() < 1e-15);
        // Entropy (bits): a fair coin is 1, (3/4, 1/4) is 0.811278...
        assert_eq!(Entropy::impurity(&[5, 5], 10), 1.0);
        assert!((Entropy::impurity(&[3, 1], 4) - 0.811_278_124_459_132_9).abs() < 1e-12);
        assert_eq!(Entropy::impurity(&[7, 0], 7), 0.0);
        assert!((Entropy::impurity(&[1, 1, 1, 1], 4) - 2.0).abs() < 1e-15);
    }

    #[test]
    fn proxy_orders_splits_as_the_weighted_impurity_decrease() {
        // Node (4, 4); candidate children, hand-checked below.
        let splits: [([u64; 2], [u64; 2]); 3] =
            [([4, 0], [0, 4]), ([3, 1], [1, 3]), ([4, 2], [0, 2])];
        for criterion in [Criterion::Gini, Criterion::Entropy] {
            let imp = |c: &[u64]| match criterion {
                Criterion::Gini => Gini::impurity(c, c.iter().sum()),
                Criterion::Entropy => Entropy::impurity(c, c.iter().sum()),
            };
            // The weighted impurity of the children, which a split minimises.
            let weighted = |(l, r): &([u64; 2], [u64; 2])| {
                l.iter().sum::<u64>() as f64 * imp(l) + r.iter().sum::<u64>() as f64 * imp(r)
            };
            let proxy = |(l, r): &([u64; 2], [u64; 2])| proxy_improvement(criterion, l, r, &xlogx);
            for a in &splits {
                for b in &splits {
                    assert_eq!(
                        weighted(a) < weighted(b) - 1e-12,
                        proxy(a) > proxy(b) + 1e-12,
                        "{criterion:?} {a:?} {b:?}"
                    );
                }
            }
        }
        // Hand-computed gini proxies: (4,0|0,4): 16/4 + 16/4 = 8;
        // (3,1|1,3): 10/4 + 10/4 = 5; (4,2|0,2): 20/6 + 4/2 = 5.333...
        let gini = |l: &[u64], r: &[u64]| proxy_improvement(Criterion::Gini, l, r, &xlogx);
        assert_eq!(gini(&[4, 0], &[0, 4]), 8.0);
        assert_eq!(gini(&[3, 1], &[1, 3]), 5.0);
        assert!((gini(&[4, 2], &[0, 2]) - 16.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn midpoints_match_the_f64_comparison() {
        assert_eq!(midpoint(1.0, 2.0), 1.5);
        assert_eq!(
            midpoint(1.0, f32::INFINITY),
            1.0,
            "missing values sort last"
        );
        assert_eq!(midpoint(f32::MAX, f32::INFINITY), f32::MAX);
        // Adjacent f32 values: the midpoint rounds to b in f32 but not f64.
        let a = 1.0f32;
        let b = a.next_up();
        let t = midpoint(a, b);
        assert_eq!(t, a, "largest f32 at or below the f64 midpoint");
        let t = midpoint(0.1, 0.3);
        let t64 = 0.1f32 as f64 / 2.0 + 0.3f32 as f64 / 2.0;
        assert!(t as f64 <= t64 && t.next_up() as f64 > t64);
    }

    fn tree_on(
        columns: Vec<Vec<f32>>,
        labels: &[u32],
        params: &RandomForestParams,
    ) -> DecisionTree {
        let names = (0..columns.len()).map(|f| format!("f{f}")).collect();
        let data = FeatureMatrix::from_columns(names, columns);
        let presorted = Presorted::new(&data);
        let n_classes = *labels.iter().max().unwrap() as usize + 1;
        let set = TrainingSet {
            data: &data,
            labels,
            n_classes,
            presorted: &presorted,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let max_features = params.max_features.resolve(data.n_features()).unwrap();
        grow(&set, params, max_features, &mut rng)
    }

    use rand::SeedableRng;

    fn no_bootstrap() -> RandomForestParams {
        RandomForestParams {
            bootstrap: false,
            max_features: super::super::MaxFeatures::All,
            ..Default::default()
        }
    }

    #[test]
    fn split_choice_on_a_hand_computed_case() {
        // x0 separates perfectly between 3 and 10 (midpoint 6.5); x1 is
        // noisy. With every feature tried, the root splits x0 at 6.5 and
        // both children are pure leaves.
        let x0 = vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let x1 = vec![5.0, 1.0, 6.0, 2.0, 7.0, 3.0];
        let y = [0, 0, 0, 1, 1, 1];
        let tree = tree_on(vec![x0, x1], &y, &no_bootstrap());
        assert_eq!(tree.nodes.len(), 3);
        assert_eq!(
            tree.nodes[0],
            Node::Split {
                feature: 0,
                threshold: 6.5,
                left: 1,
                right: 2
            }
        );
        assert_eq!(tree.predict_proba(&[2.0, 9.0]), &[1.0, 0.0]);
        assert_eq!(tree.predict_proba(&[6.6, 9.0]), &[0.0, 1.0]);
    }

    #[test]
    fn gini_prefers_the_split_with_the_larger_hand_computed_decrease() {
        // Labels 0 0 1 1 1 1 sorted by x. Cuts: after 2 rows -> (2,0 | 0,4)
        // pure, proxy 4/2 + 16/4 = 6; after 1 row -> (1,0|1,4): 1 + 17/5 =
        // 4.4; after 3 -> (2,1|0,3): 5/3 + 3 = 4.67. Best: between 2 and 3.
        let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [0, 0, 1, 1, 1, 1];
        let tree = tree_on(vec![x], &y, &no_bootstrap());
        assert!(matches!(tree.nodes[0], Node::Split { threshold, .. } if threshold == 2.5));
        // With min_samples_leaf = 3, only the cut after 3 rows is allowed.
        let params = RandomForestParams {
            min_samples_leaf: 3,
            ..no_bootstrap()
        };
        let tree = tree_on(vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], &y, &params);
        assert!(matches!(tree.nodes[0], Node::Split { threshold, .. } if threshold == 3.5));
        // The left leaf (2 of class 0, 1 of class 1) holds probabilities.
        assert_eq!(tree.predict_proba(&[0.0]), &[2.0 / 3.0, 1.0 / 3.0]);
    }

    #[test]
    fn equal_values_are_never_split_and_constant_features_are_skipped() {
        // x0 constant; x1 has ties: rows with equal x1 end in the same leaf.
        let x0 = vec![3.0; 6];
        let x1 = vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let y = [0, 1, 0, 1, 0, 1];
        let tree = tree_on(vec![x0, x1], &y, &no_bootstrap());
        for n in &tree.nodes {
            if let Node::Split { feature, .. } = n {
                assert_eq!(*feature, 1);
            }
        }
        // Leaves where x1 is a single value are 50/50.
        assert_eq!(tree.predict_proba(&[3.0, 1.0]), &[0.5, 0.5]);
        assert_eq!(tree.predict_proba(&[3.0, 3.0]), &[0.5, 0.5]);
    }

    #[test]
    fn max_depth_limits_the_tree() {
        let x: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let y: Vec<u32> = (0..64).map(|i| (i % 2) as u32).collect();
        let full = tree_on(vec![x.clone()], &y, &no_bootstrap());
        assert_eq!(full.n_leaves(), 64, "alternating labels isolate every row");
        let params = RandomForestParams {
            max_depth: Some(3),
            ..no_bootstrap()
        };
        let shallow = tree_on(vec![x], &y, &params);
        assert_eq!(shallow.depth(), 3);
        assert!(shallow.n_leaves() <= 8);
    }
}
