//! A view of consecutive rows in column-major storage: what the flat scorers
//! read. Feature `f` of row `r` is `data[f * stride + offset + r]`.

use crate::FeatureMatrix;

#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    data: &'a [f32],
    stride: usize,
    offset: usize,
    len: usize,
    n_features: usize,
}

impl<'a> Block<'a> {
    /// Rows `start..end` of a feature matrix.
    pub fn of_matrix(m: &'a FeatureMatrix, start: usize, end: usize) -> Self {
        assert!(
            start <= end && end <= m.n_rows(),
            "rows {start}..{end} of {}",
            m.n_rows()
        );
        let n_features = m.n_features();
        let data = m.as_slice();
        Block {
            data,
            stride: m.n_rows(),
            offset: start,
            len: end - start,
            n_features,
        }
    }

    /// `len` rows stored as `n_features` columns of `len` values each.
    pub fn contiguous(data: &'a [f32], len: usize, n_features: usize) -> Self {
        assert_eq!(data.len(), len * n_features, "a {len} x {n_features} block");
        Block {
            data,
            stride: len,
            offset: 0,
            len,
            n_features,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Feature `f` of row `r` (row counted from the block's first row).
    #[inline(always)]
    pub fn get(&self, f: usize, r: usize) -> f32 {
        self.data[f * self.stride + self.offset + r]
    }

    /// The whole column `f` for this block's rows.
    #[inline(always)]
    pub fn column(&self, f: usize) -> &'a [f32] {
        let start = f * self.stride + self.offset;
        &self.data[start..start + self.len]
    }

    /// Rows `start..end` of this block.
    pub fn rows(&self, start: usize, end: usize) -> Block<'a> {
        assert!(start <= end && end <= self.len);
        Block {
            offset: self.offset + start,
            len: end - start,
            ..*self
        }
    }

    /// The raw storage and its layout, for the unchecked inner loops.
    #[inline(always)]
    pub fn raw(&self) -> (&'a [f32], usize, usize) {
        (self.data, self.stride, self.offset)
    }

    /// One row's features, for reference scoring in tests.
    pub fn row(&self, r: usize) -> Vec<f32> {
        (0..self.n_features).map(|f| self.get(f, r)).collect()
    }
}

/// Splits `data`'s rows into one block per CPU (at least `min_rows` each)
/// and runs `work(block, out)` on each in its own thread, `out` being the
/// block's share of `out` (`per_row` values per row).
pub fn on_every_cpu<T: Send>(
    data: &FeatureMatrix,
    out: &mut [T],
    per_row: usize,
    min_rows: usize,
    work: impl Fn(Block, &mut [T]) + Sync,
) {
    assert_eq!(
        out.len(),
        data.n_rows() * per_row,
        "{per_row} values per row"
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = data.n_rows().div_ceil(threads).max(min_rows).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        for (i, chunk) in out.chunks_mut(per_thread * per_row).enumerate() {
            let start = i * per_thread;
            scope.spawn(move || {
                let block = Block::of_matrix(data, start, start + chunk.len() / per_row);
                work(block, chunk);
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's values land in its own slots, whatever the split: each
    /// block writes its rows' feature values where they belong.
    #[test]
    fn on_every_cpu_gives_each_row_its_own_slots() {
        for (rows, min_rows) in [(0, 1), (1, 1), (7, 1), (1001, 3), (1001, 2000)] {
            let a: Vec<f32> = (0..rows).map(|r| r as f32).collect();
            let b: Vec<f32> = (0..rows).map(|r| -(r as f32)).collect();
            let m = FeatureMatrix::from_columns(vec!["a".into(), "b".into()], vec![a, b]);
            let mut out = vec![f32::NAN; rows * 2];
            on_every_cpu(&m, &mut out, 2, min_rows, |block, out| {
                assert!(block.len() >= min_rows.min(rows));
                for r in 0..block.len() {
                    out[2 * r] = block.get(0, r);
                    out[2 * r + 1] = block.get(1, r);
                }
            });
            let expected: Vec<f32> = (0..rows).flat_map(|r| [r as f32, -(r as f32)]).collect();
            assert_eq!(out, expected, "{rows} rows, at least {min_rows} per thread");
        }
    }
}
