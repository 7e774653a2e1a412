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
use crate::models::iforest::{Contamination, IsolationForestParams, MaxSamples};

/// comfy-table preset: no borders, no row lines, one rule under the header.
pub(crate) const HEADER_RULE_ONLY: &str = "     -             ";

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

/// Whether two paths name the same existing file (`-`, stdin or stdout,
/// names none).
pub(crate) fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    if crate::io::input::is_dash(a) || crate::io::input::is_dash(b) {
        return false;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses to write `output` (the file of option `flag`) over one of
/// `inputs`, itself or through a link: the input would be destroyed.
pub(crate) fn refuse_overwrite(
    output: Option<&std::path::Path>,
    flag: &str,
    inputs: &[&std::path::Path],
) -> anyhow::Result<()> {
    let Some(output) = output else {
        return Ok(());
    };
    if let Some(input) = inputs.iter().find(|i| same_file(i, output)) {
        anyhow::bail!(
            "{} {}: choose another {flag} file (writing it would destroy the input)",
            output.display(),
            if input == &output {
                "is also the input".to_string()
            } else {
                format!("is the same file as the input {}", input.display())
            }
        );
    }
    Ok(())
}

/// Characters of a cell shown in a table on screen: a longer cell is cut
/// (its whole text stays in the output files), so that a huge cell neither
/// floods the terminal nor costs the table's layout seconds.
const SHOWN_CHARS: usize = 64;

/// `cell` as tables on screen show it: at most [`SHOWN_CHARS`] characters,
/// an ellipsis marking a cut.
pub(crate) fn shown_cell(cell: &str) -> String {
    match cell.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &cell[..end]),
        None => cell.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_for_the_screen() {
        assert_eq!(shown_cell("udp"), "udp");
        let long = "é".repeat(3_000_000);
        let shown = shown_cell(&long);
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(
            shown_cell(&"x".repeat(SHOWN_CHARS)),
            "x".repeat(SHOWN_CHARS)
        );
    }
}
