//! `cargo xtask bench`: each benchmark prints its figures as Markdown rows;
//! BENCHMARKS.md records them with the commands that produced them.

mod afxdp;
mod detect;
mod flows_live;
mod kernel;
mod monitor;
mod overload;
mod pcap;
mod rforest;
mod see;

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

/// Runs `cargo bench -p PACKAGE --bench NAME` (release build) and returns
/// what it printed.
fn crate_bench(package: &str, name: &str) -> Result<String> {
    use anyhow::Context;
    let output =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["bench", "--locked", "-q", "-p", package, "--bench", name])
            .current_dir(crate::util::root())
            .output()
            .with_context(|| format!("running the {name} benchmark"))?;
    anyhow::ensure!(
        output.status.success(),
        "the {name} benchmark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Every benchmark, by name.
const BENCHES: &[(&str, Bench)] = &[
    ("detect", detect::run),
    ("rforest", rforest::run),
    ("pcap", pcap::run),
    ("kernel: in-kernel cost", kernel::cost),
    ("kernel: record path", kernel::record_path),
    ("kernel: veth", kernel::veth_rates),
    ("kernel: flows live", flows_live::run),
    ("monitor", monitor::run),
    ("afxdp", afxdp::run),
    ("overload", overload::run),
    ("see: dashboard and reports", see::run),
];

pub fn run(options: &BenchOptions) -> Result<()> {
    // The kernel benchmarks time code of this process (ring readers, CSV
    // rows): run them from an optimized build of xtask.
    if cfg!(debug_assertions)
        && BENCHES.iter().any(|(n, _)| {
            (n.starts_with("kernel") || *n == "afxdp" || *n == "overload") && selected(options, n)
        })
    {
        let mut args = vec![
            "run",
            "--release",
            "--locked",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "bench",
        ];
        let rows = options.rows.to_string();
        args.extend(["--rows", &rows]);
        if let Some(only) = &options.only {
            args.extend(["--only", only]);
        }
        if options.no_python {
            args.push("--no-python");
        }
        return crate::util::cargo(&args);
    }
    for (name, bench) in BENCHES {
        if !selected(options, name) {
            continue;
        }
        println!("\n## {name}\n");
        bench(options)?;
    }
    Ok(())
}

fn selected(options: &BenchOptions, name: &str) -> bool {
    options.only.as_deref().is_none_or(|o| name.contains(o))
}
