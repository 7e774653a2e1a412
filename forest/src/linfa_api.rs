//! The forest behind linfa's traits, so that it can be used like the linfa
//! models: `RandomForestParams` is a `ParamGuard` (checked by `check`), its
//! checked form `Fit`s a `linfa::Dataset` of f32 records and `usize` class
//! indices into a [`ForestScorer`], which `Predict`s class indices for a
//! record matrix. Class names are `"0"`, `"1"`, ... (indices), as linfa's targets
//! carry no names; the CLI uses [`RandomForestParams::fit`] with names.

use bytemuck::TransparentWrapper;
use linfa::dataset::DatasetBase;
use linfa::prelude::{Fit, ParamGuard, PredictInplace};
use ndarray::{Array1, ArrayBase, Data, Ix2};

use crate::rforest::RandomForestParams;
use crate::score::ForestScorer;
use crate::FeatureMatrix;

/// Errors of the linfa-facing API (linfa needs a `std::error::Error`).
#[derive(Debug, thiserror::Error)]
pub enum RandomForestError {
    #[error("{0}")]
    Params(String),
    #[error("{0}")]
    Fit(String),
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// Parameters that passed [`RandomForestParams::check`].
#[derive(Debug, Clone, Copy, PartialEq, TransparentWrapper)]
#[repr(transparent)]
pub struct RandomForestValidParams(RandomForestParams);

impl RandomForestValidParams {
    pub fn params(&self) -> &RandomForestParams {
        &self.0
    }
}

impl ParamGuard for RandomForestParams {
    type Checked = RandomForestValidParams;
    type Error = RandomForestError;

    fn check_ref(&self) -> Result<&Self::Checked, Self::Error> {
        RandomForestParams::check(self).map_err(|e| RandomForestError::Params(e.to_string()))?;
        Ok(RandomForestValidParams::wrap_ref(self))
    }

    fn check(self) -> Result<Self::Checked, Self::Error> {
        RandomForestParams::check(&self).map_err(|e| RandomForestError::Params(e.to_string()))?;
        Ok(RandomForestValidParams(self))
    }
}

/// Records (rows x features, any ndarray layout) as the column-major matrix
/// the trainer and scorer read.
pub fn records_to_matrix<D: Data<Elem = f32>>(x: &ArrayBase<D, Ix2>) -> FeatureMatrix {
    let names = (0..x.ncols()).map(|f| format!("feature_{f}")).collect();
    let columns = x.columns().into_iter().map(|c| c.to_vec()).collect();
    FeatureMatrix::from_columns(names, columns)
}

impl<D: Data<Elem = f32>> Fit<ArrayBase<D, Ix2>, Array1<usize>, RandomForestError>
    for RandomForestValidParams
{
    type Object = ForestScorer;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, Array1<usize>>,
    ) -> Result<ForestScorer, RandomForestError> {
        let records = dataset.records();
        let targets = dataset.targets();
        if records.nrows() != targets.len() {
            return Err(linfa::Error::MismatchedShapes(records.nrows(), targets.len()).into());
        }
        let n_classes = targets.iter().max().map_or(0, |m| m + 1).max(2);
        let labels: Vec<u32> = targets.iter().map(|&t| t as u32).collect();
        let classes = (0..n_classes).map(|c| c.to_string()).collect();
        self.0
            .fit(&records_to_matrix(records), &labels, classes, &|| {})
            .map(ForestScorer::new)
            .map_err(|e| RandomForestError::Fit(e.to_string()))
    }
}

impl<D: Data<Elem = f32>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for ForestScorer {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        assert_eq!(x.nrows(), y.len(), "one target per row");
        let predicted = self.classes(&records_to_matrix(x));
        for (t, p) in y.iter_mut().zip(predicted) {
            *t = p as usize;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}
