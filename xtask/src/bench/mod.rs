//! `cargo xtask bench`: each benchmark prints its figures as Markdown rows;
//! BENCHMARKS.md records them with the commands that produced them.

mod detect;
mod pcap;
mod rforest;

use anyhow::Result;

/// Options shared by the benchmarks.
pub struct BenchOptions {
    /// Rows of the generated CSV for the end-to-end `detect` benchmark.
    pub rows: usize,
    /// Packets of the generated capture for the `pcap` benchmark.
    pub packets: usize,
    /// Only run benchmarks whose name contains this.
    pub only: Option<String>,
    /// Skip runs of the original Python tool.
    pub no_python: bool,
}

type Bench = fn(&BenchOptions) -> Result<()>;

/// Every benchmark, by name.
const BENCHES: &[(&str, Bench)] = &[
    ("detect", detect::run),
    ("rforest", rforest::run),
    ("pcap", pcap::run),
];

pub fn run(options: &BenchOptions) -> Result<()> {
    for (name, bench) in BENCHES {
        if options.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        println!("\n## {name}\n");
        bench(options)?;
    }
    Ok(())
}
