//! The tree ensembles of ml-sniffing, on their own: the column-major
//! feature matrix and its blocks, the Isolation Forest and the Random
//! Forest (parameters, fitting, stored arrays and their checks), and
//! [`score`], where each fitted forest gets the one scorer that suits this
//! CPU. Nothing here reads captures, files or sockets.

pub mod baseline;
pub mod block;
pub mod iforest;
pub mod linfa_api;
pub mod matrix;
pub mod metrics;
pub mod rforest;
pub mod score;
pub mod split;
#[doc(hidden)]
pub mod testing;

pub use block::Block;
pub use matrix::FeatureMatrix;
