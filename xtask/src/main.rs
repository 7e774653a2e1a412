//! `cargo xtask <task>`: everything a developer or CI runs, in one place.
//! Each subcommand's doc comment is its `--help`.

mod bench;
mod measure;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ml-sniffing project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run the whole test suite (unit, CLI and, as root, kernel tests).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// What CI runs: `cargo fmt --check`, `cargo clippy -D warnings`, then `test`.
    Ci,
    /// Run the benchmarks and print their figures (see BENCHMARKS.md).
    Bench {
        /// Rows in the generated CSV for the end-to-end `detect` benchmark.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Packets in the generated capture for the `pcap` benchmark.
        #[arg(long, default_value_t = 1_000_000)]
        packets: usize,
        /// Only run the benchmarks whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Skip the runs of the original Python tool (about a minute).
        #[arg(long)]
        no_python: bool,
    },
    /// Run a command and print its wall time (s) and peak RSS (KiB).
    #[command(hide = true)]
    Measure {
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Test { args } => test(&args),
        Task::Ci => ci(),
        Task::Bench {
            rows,
            packets,
            only,
            no_python,
        } => bench::run(&bench::BenchOptions {
            rows,
            packets,
            only,
            no_python,
        }),
        Task::Measure { command } => measure::measure_child(&command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<()> {
    let mut args = vec!["test", "--workspace", "--locked"];
    let mut tail: Vec<&str> = Vec::new();
    if !extra.is_empty() {
        tail.push("--");
        tail.extend(extra.iter().map(String::as_str));
    }
    args.extend(tail);
    util::cargo(&args)
}

fn ci() -> Result<()> {
    util::cargo(&["fmt", "--all", "--check"])?;
    util::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    test(&[])
}
