//! Grouping rows into flows with little memory.
//!
//! A million-row capture can hold a million distinct flows. Hash maps keyed
//! by strings (or even by small tuples) cost tens of bytes a flow and twice
//! that while they grow; here rows are grouped by sorting `(key, row)` pairs
//! of 16 bytes, and each row keeps only its dense group number.

/// Rows grouped by a key: `of_row[r]` is the dense group number of row `r`.
pub struct Groups {
    pub of_row: Vec<u32>,
    pub len: usize,
}

/// Groups `n` rows by an exact 64-bit key.
pub fn group_by_key(n: usize, key: impl Fn(usize) -> u64) -> Groups {
    group_by_hash(n, key, |_, _| true)
}

/// Groups `n` rows whose keys are too wide for 64 bits: `hash(row)` puts
/// equal keys together, and `same(a, b)` tells rows apart when two keys
/// share a hash, so the grouping is exact whatever the hash.
pub fn group_by_hash(
    n: usize,
    hash: impl Fn(usize) -> u64,
    same: impl Fn(usize, usize) -> bool,
) -> Groups {
    let mut pairs: Vec<(u64, u32)> = (0..n).map(|row| (hash(row), row as u32)).collect();
    pairs.sort_unstable();
    let mut of_row = vec![0u32; n];
    let mut next = 0u32;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && pairs[end].0 == pairs[start].0 {
            end += 1;
        }
        let run = &pairs[start..end];
        let first = run[0].1 as usize;
        if run.iter().all(|&(_, row)| same(first, row as usize)) {
            for &(_, row) in run {
                of_row[row as usize] = next;
            }
            next += 1;
        } else {
            // Different keys with one hash: split the run (rare, and runs
            // are short).
            let mut representatives: Vec<(usize, u32)> = Vec::new();
            for &(_, row) in run {
                let row = row as usize;
                let group = match representatives.iter().find(|(r, _)| same(*r, row)) {
                    Some(&(_, g)) => g,
                    None => {
                        representatives.push((row, next));
                        next += 1;
                        next - 1
                    }
                };
                of_row[row] = group;
            }
        }
        start = end;
    }
    Groups {
        of_row,
        len: next as usize,
    }
}

/// A 64-bit hash of some text cells and a number.
pub fn hash_key(cells: &[&str], extra: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    for c in cells {
        c.hash(&mut h);
    }
    extra.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows are in one group exactly when their keys are equal.
    fn assert_partition(keys: &[&str], g: &Groups) {
        for a in 0..keys.len() {
            for b in 0..keys.len() {
                assert_eq!(
                    keys[a] == keys[b],
                    g.of_row[a] == g.of_row[b],
                    "rows {a} and {b}"
                );
            }
        }
        let distinct: std::collections::HashSet<&&str> = keys.iter().collect();
        assert_eq!(g.len, distinct.len());
        assert!(g.of_row.iter().all(|&x| (x as usize) < g.len));
    }

    #[test]
    fn groups_match_key_equality() {
        let keys = ["b", "a", "b", "c", "a", "b"];
        let g = group_by_hash(
            keys.len(),
            |r| hash_key(&[keys[r]], 0),
            |a, b| keys[a] == keys[b],
        );
        assert_partition(&keys, &g);
        let numbers = [5u64, 1, 5, 9];
        let g = group_by_key(4, |r| numbers[r]);
        assert_eq!(g.len, 3);
        assert_eq!(g.of_row[0], g.of_row[2]);
    }

    #[test]
    fn hash_collisions_are_split_exactly() {
        // A useless hash: every key collides.
        let keys = ["x", "y", "x", "z", "y", "x"];
        let g = group_by_hash(keys.len(), |_| 7, |a, b| keys[a] == keys[b]);
        assert_partition(&keys, &g);
    }

    #[test]
    fn empty_input() {
        let g = group_by_key(0, |_| 0);
        assert_eq!((g.of_row.len(), g.len), (0, 0));
    }
}
