//! A view of consecutive rows in column-major storage: what the flat scorers
//! read. Feature `f` of row `r` is `data[f * stride + offset + r]`.

use crate::features::FeatureMatrix;

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
