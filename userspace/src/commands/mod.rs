//! One module per subcommand: its arguments (whose doc comments are the
//! `--help` text) and its `run` function.

pub mod alert_args;
pub mod classify;
pub mod config;
pub mod detect;
pub mod engine_args;
pub mod flows;
pub mod predict;
pub mod run;
pub mod sniff;

use clap::Args;

use crate::features::{FeatureSet, Selection};
use ml_sniffing_forest::iforest::{Contamination, IsolationForestParams, MaxSamples};

/// How rows become model inputs (shared by `detect` and `classify`).
#[derive(Debug, Clone, Args)]
pub struct FeatureArgs {
    /// Feature set computed from packet columns: `default` (stable protocol
    /// numbers, causal flow statistics, ports/TTL/TCP flags when present) or
    /// `seed` (the original tool's 11 features, quirks included).
    #[arg(long, value_enum, default_value_t = FeatureSet::Default, conflicts_with = "feature_columns")]
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

/// Isolation Forest hyper-parameters (shared by `detect` and `run`).
#[derive(Debug, Clone, Args)]
pub struct ForestArgs {
    /// Expected share of anomalies among the rows the model is fitted on:
    /// a number in (0, 0.5], or `auto` (scikit-learn's offset of -0.5).
    #[arg(long, default_value = "0.05")]
    pub contamination: Contamination,
    /// Number of trees in the forest.
    #[arg(long, default_value_t = 200)]
    pub n_estimators: usize,
    /// Rows each tree is grown on: `auto` (min(256, rows)), a count, or a
    /// fraction of the rows in (0, 1].
    #[arg(long, default_value = "auto")]
    pub max_samples: MaxSamples,
    /// Seed: the same seed gives the same scores on every run.
    #[arg(long, default_value_t = 42)]
    pub random_state: u64,
}

impl ForestArgs {
    /// The checked parameters.
    pub fn params(&self) -> anyhow::Result<IsolationForestParams> {
        let params = IsolationForestParams {
            n_estimators: self.n_estimators,
            max_samples: self.max_samples,
            contamination: self.contamination,
            random_state: self.random_state,
        };
        params.check()?;
        Ok(params)
    }
}

/// The filter expression given as the last arguments, compiled for
/// captures (`None` when there is none).
pub fn filter_of(words: &[String]) -> anyhow::Result<Option<crate::capture::filter::Filter>> {
    if words.is_empty() {
        return Ok(None);
    }
    crate::capture::filter::Filter::new(&words.join(" ")).map(Some)
}

/// The filter expression given as the last arguments, compiled for the
/// XDP program (`None` when there is none).
pub fn live_filter_of(
    words: &[String],
) -> anyhow::Result<Option<ml_sniffing_common::filter::Program>> {
    if words.is_empty() {
        return Ok(None);
    }
    crate::capture::live_filter::compile(&words.join(" ")).map(Some)
}
