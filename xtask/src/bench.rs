//! Benchmarks (filled in below).

use anyhow::Result;

pub fn run(_rows: usize) -> Result<()> {
    anyhow::bail!("not yet")
}
