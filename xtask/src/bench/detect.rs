//! End-to-end `detect` on a generated CSV, and the Isolation Forest scoring
//! rate alone.

use anyhow::Result;

use super::BenchOptions;

pub fn run(options: &BenchOptions) -> Result<()> {
    anyhow::bail!("not written yet ({} rows)", options.rows)
}
