//! Column-major feature storage: what the scorers read.

/// `n_rows x names.len()` f32 values stored column after column, so that a
/// block of consecutive rows is a set of contiguous column slices.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    names: Vec<String>,
    n_rows: usize,
    data: Vec<f32>,
}

impl FeatureMatrix {
    /// A matrix of zeros.
    pub fn zeros(names: Vec<String>, n_rows: usize) -> Self {
        let data = vec![0.0; names.len() * n_rows];
        FeatureMatrix {
            names,
            n_rows,
            data,
        }
    }

    /// Builds a matrix from whole columns (each of the same length).
    pub fn from_columns(names: Vec<String>, columns: Vec<Vec<f32>>) -> Self {
        assert_eq!(names.len(), columns.len(), "one name per column");
        let n_rows = columns.first().map_or(0, Vec::len);
        assert!(
            columns.iter().all(|c| c.len() == n_rows),
            "columns of equal length"
        );
        let data = columns.concat();
        FeatureMatrix {
            names,
            n_rows,
            data,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    pub fn column(&self, feature: usize) -> &[f32] {
        &self.data[feature * self.n_rows..(feature + 1) * self.n_rows]
    }

    pub fn column_mut(&mut self, feature: usize) -> &mut [f32] {
        &mut self.data[feature * self.n_rows..(feature + 1) * self.n_rows]
    }

    /// All values, column after column.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn get(&self, row: usize, feature: usize) -> f32 {
        self.data[feature * self.n_rows + row]
    }

    pub fn set(&mut self, row: usize, feature: usize, value: f32) {
        self.data[feature * self.n_rows + row] = value;
    }

    /// The columns of rows `start..end`, as the scorers take them.
    pub fn block(&self, start: usize, end: usize) -> Vec<&[f32]> {
        (0..self.n_features())
            .map(|f| &self.column(f)[start..end])
            .collect()
    }

    /// One row, for display and tests.
    pub fn row(&self, row: usize) -> Vec<f32> {
        (0..self.n_features()).map(|f| self.get(row, f)).collect()
    }

    /// A matrix of the given rows (in that order), e.g. a training sample.
    pub fn select_rows(&self, rows: &[usize]) -> FeatureMatrix {
        let columns = (0..self.n_features())
            .map(|f| {
                let col = self.column(f);
                rows.iter().map(|&r| col[r]).collect()
            })
            .collect();
        FeatureMatrix::from_columns(self.names.clone(), columns)
    }

    /// Computes every row on all cores: `fill(row, values)` writes the row's
    /// values, one per feature, into `values`. Rows are split into one
    /// contiguous range per thread; the error of the earliest failing range
    /// is returned, so messages do not depend on thread timing.
    pub fn fill_rows<F>(&mut self, fill: F) -> anyhow::Result<()>
    where
        F: Fn(usize, &mut [f32]) -> anyhow::Result<()> + Sync,
    {
        let n = self.n_rows;
        let width = self.names.len();
        if n == 0 || width == 0 {
            return Ok(());
        }
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let per_thread = n.div_ceil(threads).max(4096);
        // pieces[t][f]: feature f's values for thread t's rows.
        let mut pieces: Vec<Vec<&mut [f32]>> =
            (0..n.div_ceil(per_thread)).map(|_| Vec::new()).collect();
        for column in self.data.chunks_mut(n) {
            let mut rest = column;
            for piece in pieces.iter_mut() {
                let (mine, others) = rest.split_at_mut(per_thread.min(rest.len()));
                piece.push(mine);
                rest = others;
            }
        }
        let fill = &fill;
        std::thread::scope(|scope| {
            let workers: Vec<_> = pieces
                .into_iter()
                .enumerate()
                .map(|(t, mut columns)| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        let mut values = vec![0f32; width];
                        for i in 0..columns[0].len() {
                            fill(t * per_thread + i, &mut values)?;
                            for (column, &v) in columns.iter_mut().zip(&values) {
                                column[i] = v;
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a feature thread failed"))?
            })
        })
    }
}

/// Converts a feature value to the f32 the models use, as scikit-learn's
/// trees do (`np.float32(x)`), except that values beyond the f32 range
/// saturate instead of becoming infinite, and NaN (never produced by the
/// feature code) becomes 0.
pub fn to_f32(x: f64) -> f32 {
    if x.is_nan() {
        return 0.0;
    }
    (x as f32).clamp(f32::MIN, f32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_major_access() {
        let m = FeatureMatrix::from_columns(
            vec!["a".into(), "b".into()],
            vec![vec![1.0, 2.0, 3.0], vec![10.0, 20.0, 30.0]],
        );
        assert_eq!(m.n_rows(), 3);
        assert_eq!(m.get(1, 1), 20.0);
        assert_eq!(m.row(2), vec![3.0, 30.0]);
        assert_eq!(m.block(1, 3), vec![&[2.0, 3.0][..], &[20.0, 30.0][..]]);
        assert_eq!(m.select_rows(&[2, 0]).column(0), &[3.0, 1.0]);
    }

    #[test]
    fn rows_filled_in_parallel_land_in_their_place() {
        let n = 20_000;
        let mut m = FeatureMatrix::zeros(vec!["a".into(), "b".into()], n);
        m.fill_rows(|row, v| {
            v[0] = row as f32;
            v[1] = -(row as f32);
            Ok(())
        })
        .unwrap();
        assert!((0..n).all(|r| m.row(r) == [r as f32, -(r as f32)]));
        // The earliest failing row's error, whatever the threads do.
        let e = m
            .fill_rows(|row, _| {
                if row % 5000 == 4999 {
                    anyhow::bail!("row {row}")
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "row 4999");
    }

    #[test]
    fn f32_conversion_saturates() {
        assert_eq!(to_f32(1e300), f32::MAX);
        assert_eq!(to_f32(-1e300), f32::MIN);
        assert_eq!(to_f32(f64::NAN), 0.0);
        assert_eq!(to_f32(3232235855.0), 3232235855.0f64 as f32);
    }
}
