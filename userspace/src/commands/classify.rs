//! `classify`: Random Forest training and evaluation.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// CSV file with labelled rows.
    pub input: PathBuf,
    /// Name of the column holding the ground-truth labels.
    #[arg(long)]
    pub label_column: String,
    /// Fraction of the rows kept for evaluation.
    #[arg(long, default_value_t = 0.3)]
    pub test_size: f64,
    /// Seed for the train/test split and the model.
    #[arg(long, default_value_t = 42)]
    pub random_state: u64,
}

pub fn run(_args: ClassifyArgs, _out: &mut dyn Write) -> Result<()> {
    bail!("classify is not available yet: it arrives with the Random Forest work (issue 3)")
}
