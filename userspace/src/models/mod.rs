//! Tree ensembles: training on ordinary trees, scoring on flat layouts.

pub mod block;
pub mod iforest;

pub use block::Block;
