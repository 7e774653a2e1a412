//! Live monitoring: packet records scored as they arrive.

pub mod record_features;
