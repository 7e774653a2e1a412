//! Isolation trees as scikit-learn grows them (`ExtraTreeRegressor` with the
//! random splitter and `max_features=1`), kept as ordinary node lists.
//!
//! These are the reference the flat layout is checked against, and what the
//! flat layout is built from; scoring in production uses the flat layout.

use rand::Rng;

use crate::FeatureMatrix;

/// scikit-learn's `FEATURE_THRESHOLD`: a feature whose range in a node is
/// below this is treated as constant there.
const FEATURE_THRESHOLD: f32 = 1e-7;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node {
    /// Samples with `x[feature] <= threshold` go to `left`.
    Split {
        feature: u32,
        threshold: f32,
        left: u32,
        right: u32,
    },
    /// `samples` training rows ended here, at `depth` (root = 0).
    Leaf { samples: u32, depth: u32 },
}

/// One isolation tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct ITree {
    pub nodes: Vec<Node>,
}

/// `c(n)`: the average path length of an unsuccessful search in a binary
/// search tree of `n` nodes, used to correct leaves that hold several rows.
/// `c(n) = 2 (ln(n-1) + γ) - 2 (n-1)/n`, `c(1) = 0`, `c(2) = 1`.
pub fn average_path_length(n: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// The path length a sample ending in a leaf gets: its depth plus the
/// correction for the rows the leaf held. Stored as f32 in both layouts so
/// that they score identically.
pub fn leaf_path_length(depth: u32, samples: u32) -> f32 {
    (depth as f64 + average_path_length(samples as usize)) as f32
}

/// The largest f32 not above `t`, so that `x <= t` and `x <= threshold`
/// agree for every f32 `x` (scikit-learn keeps f64 thresholds and compares
/// f32 features against them).
fn f32_at_or_below(t: f64) -> f32 {
    let down = t as f32;
    if down as f64 > t {
        down.next_down()
    } else {
        down
    }
}

impl ITree {
    /// Grows a tree on `rows` of `data`, at most `max_depth` levels deep.
    pub fn grow<R: Rng>(
        data: &FeatureMatrix,
        rows: &mut [u32],
        max_depth: u32,
        rng: &mut R,
    ) -> ITree {
        let mut tree = ITree { nodes: Vec::new() };
        let mut features: Vec<u32> = (0..data.n_features() as u32).collect();
        tree.grow_node(data, rows, 0, max_depth, &mut features, rng);
        tree
    }

    fn grow_node<R: Rng>(
        &mut self,
        data: &FeatureMatrix,
        rows: &mut [u32],
        depth: u32,
        max_depth: u32,
        features: &mut [u32],
        rng: &mut R,
    ) -> u32 {
        let id = self.nodes.len() as u32;
        let leaf = Node::Leaf {
            samples: rows.len() as u32,
            depth,
        };
        self.nodes.push(leaf);
        if depth >= max_depth || rows.len() < 2 {
            return id;
        }
        let Some((feature, threshold)) = Self::draw_split(data, rows, features, rng) else {
            return id;
        };
        let column = data.column(feature as usize);
        // Partition in place: rows with x <= threshold first.
        let mut split = 0;
        for i in 0..rows.len() {
            if column[rows[i] as usize] <= threshold {
                rows.swap(i, split);
                split += 1;
            }
        }
        let (left_rows, right_rows) = rows.split_at_mut(split);
        let left = self.grow_node(data, left_rows, depth + 1, max_depth, features, rng);
        let right = self.grow_node(data, right_rows, depth + 1, max_depth, features, rng);
        self.nodes[id as usize] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        id
    }

    /// Draws features in random order until one is not constant over `rows`,
    /// then a threshold uniformly between its min and max there.
    fn draw_split<R: Rng>(
        data: &FeatureMatrix,
        rows: &[u32],
        features: &mut [u32],
        rng: &mut R,
    ) -> Option<(u32, f32)> {
        for drawn in 0..features.len() {
            let pick = rng.gen_range(drawn..features.len());
            features.swap(drawn, pick);
            let feature = features[drawn];
            let column = data.column(feature as usize);
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &r in rows {
                let v = column[r as usize];
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi <= lo + FEATURE_THRESHOLD {
                continue;
            }
            let t = lo as f64 + (hi as f64 - lo as f64) * rng.gen::<f64>();
            // As scikit-learn: a threshold that reaches the max becomes the min.
            let t = if t >= hi as f64 {
                lo
            } else {
                f32_at_or_below(t)
            };
            return Some((feature, t));
        }
        None
    }

    /// The height of the tree (levels below the root).
    pub fn height(&self) -> u32 {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Leaf { depth, .. } => Some(*depth),
                Node::Split { .. } => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// The path length of one sample (`x` indexed by feature).
    pub fn path_length(&self, x: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            match self.nodes[i] {
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if x[feature as usize] <= threshold {
                        left as usize
                    } else {
                        right as usize
                    }
                }
                Node::Leaf { samples, depth } => return leaf_path_length(depth, samples),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn average_path_length_matches_the_formula() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(3) = 2 (ln 2 + γ) - 4/3
        let c3 = 2.0 * (2f64.ln() + 0.5772156649015329) - 4.0 / 3.0;
        assert!((average_path_length(3) - c3).abs() < 1e-15);
        // c(256), as scikit-learn's _average_path_length([256]) gives it.
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-9);
    }

    #[test]
    fn thresholds_round_down_to_f32() {
        let t = 0.1f64; // not an f32
        let t32 = f32_at_or_below(t);
        assert!((t32 as f64) <= t);
        assert!((t32.next_up() as f64) > t);
        assert_eq!(f32_at_or_below(0.5), 0.5);
    }

    fn random_matrix(rows: usize, features: usize, seed: u64) -> FeatureMatrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cols = (0..features)
            .map(|_| (0..rows).map(|_| rng.gen_range(-10.0f32..10.0)).collect())
            .collect();
        FeatureMatrix::from_columns((0..features).map(|f| format!("f{f}")).collect(), cols)
    }

    #[test]
    fn trees_respect_the_height_limit_and_isolate_each_row() {
        let data = random_matrix(64, 3, 1);
        let mut rows: Vec<u32> = (0..64).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let tree = ITree::grow(&data, &mut rows, 6, &mut rng);
        assert!(tree.height() <= 6);
        let total: u32 = tree
            .nodes
            .iter()
            .map(|n| match n {
                Node::Leaf { samples, .. } => *samples,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 64, "every training row ends in exactly one leaf");
        // Unlimited height: every leaf holds one row (distinct random values).
        let mut rows: Vec<u32> = (0..64).collect();
        let tree = ITree::grow(&data, &mut rows, 64, &mut rng);
        assert!(tree
            .nodes
            .iter()
            .all(|n| !matches!(n, Node::Leaf { samples, .. } if *samples > 1)));
    }

    #[test]
    fn constant_features_never_split() {
        let data = FeatureMatrix::from_columns(
            vec!["c".into(), "v".into()],
            vec![vec![5.0; 8], (0..8).map(|i| i as f32).collect()],
        );
        let mut rows: Vec<u32> = (0..8).collect();
        let tree = ITree::grow(&data, &mut rows, 8, &mut ChaCha8Rng::seed_from_u64(3));
        for n in &tree.nodes {
            if let Node::Split { feature, .. } = n {
                assert_eq!(*feature, 1);
            }
        }
        let constant = FeatureMatrix::from_columns(vec!["c".into()], vec![vec![1.0; 8]]);
        let mut rows: Vec<u32> = (0..8).collect();
        let tree = ITree::grow(&constant, &mut rows, 8, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(
            tree.nodes,
            vec![Node::Leaf {
                samples: 8,
                depth: 0
            }]
        );
    }

    #[test]
    fn path_length_of_a_hand_built_tree() {
        // root splits f0 at 0: left leaf holds 3 rows at depth 1, right
        // leaf holds 1 row at depth 1.
        let tree = ITree {
            nodes: vec![
                Node::Split {
                    feature: 0,
                    threshold: 0.0,
                    left: 1,
                    right: 2,
                },
                Node::Leaf {
                    samples: 3,
                    depth: 1,
                },
                Node::Leaf {
                    samples: 1,
                    depth: 1,
                },
            ],
        };
        assert_eq!(
            tree.path_length(&[-1.0]),
            (1.0 + average_path_length(3)) as f32
        );
        assert_eq!(
            tree.path_length(&[0.0]),
            (1.0 + average_path_length(3)) as f32
        );
        assert_eq!(tree.path_length(&[0.5]), 1.0);
    }
}
