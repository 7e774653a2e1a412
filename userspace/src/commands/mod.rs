//! One module per subcommand: its arguments (whose doc comments are the
//! `--help` text) and its `run` function.

pub mod classify;
pub mod detect;
pub mod predict;
pub mod run;
pub mod sniff;

use clap::Args;

use crate::features::{FeatureSet, Selection};

/// comfy-table preset: no borders, no row lines, one rule under the header.
pub(crate) const HEADER_RULE_ONLY: &str = "     -             ";

/// How rows become model inputs (shared by `detect` and `classify`).
#[derive(Debug, Clone, Args)]
pub struct FeatureArgs {
    /// Feature set computed from packet columns: `default` (stable protocol
    /// numbers, causal flow statistics, ports/TTL/TCP flags when present) or
    /// `seed` (the original tool's 11 features, quirks included).
    #[arg(long, value_enum, default_value_t = FeatureSet::Default)]
    pub features: FeatureSet,
    /// Use these numeric columns as they are, instead of a feature set (any
    /// CSV, not only packet captures). Comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub feature_columns: Option<Vec<String>>,
}

impl FeatureArgs {
    pub fn selection(&self) -> Selection {
        Selection::from_args(self.features, self.feature_columns.clone())
    }
}
