//! Tree ensembles: training on ordinary trees, scoring on flat layouts.

pub mod baseline;
pub mod block;
pub mod iforest;
pub mod metrics;
pub mod model_file;
pub mod rforest;
pub mod split;

pub use block::Block;
