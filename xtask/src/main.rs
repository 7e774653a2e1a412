//! `cargo xtask <task>`: everything a developer or CI runs, in one place.
//! Each subcommand's doc comment is its `--help`.

mod bench;
mod ebpf;
mod eval;
mod measure;
mod run;
mod setup;
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
    /// Install what building the XDP program needs, when missing: the nightly
    /// toolchain's rust-src and bpf-linker (built against nightly's LLVM, in
    /// ${XDG_CACHE_HOME:-~/.cache}/ml-sniffing/toolchain). Quiet when present.
    Setup,
    /// Build the XDP program alone (runs `setup` first) and print where its
    /// object file is.
    BuildEbpf,
    /// Build everything and start the live monitor (`ml-sniffing run`) as
    /// root, on `--iface` or the default route's interface; other arguments
    /// go to `run`.
    Run {
        /// Arguments after `--`: `--iface IF` picks the interface, the others
        /// go to `ml-sniffing run`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the whole test suite (unit, CLI and, as root, kernel tests).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Checks before merging: `cargo fmt --check`, `cargo clippy -D warnings`
    /// (host, and the XDP programs for the BPF target), then `test`.
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
    /// Detection benchmark: build a labelled mixture of the shared captures
    /// (benign applications looped over 15 minutes, each attack capture once
    /// in the test part, deterministic from --seed), score it with the
    /// release binary's `detect`/`predict` and `run --read`, and print ROC
    /// AUC, average precision and detection at fixed false-alarm rates as
    /// Markdown tables (see DETECTION.md).
    Eval {
        /// Seed of the mixture (start times, pauses, attack insertions).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Work folder for the mixture and the tool's outputs (kept), instead
        /// of target/eval/seed-N.
        #[arg(long, value_name = "DIR")]
        keep: Option<std::path::PathBuf>,
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
        Task::Setup => setup::ensure(),
        Task::BuildEbpf => ebpf::build().map(|object| println!("{}", object.display())),
        Task::Run { args } => run::run(&args),
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
        Task::Eval { seed, keep } => eval::run(&eval::EvalOptions { seed, keep }),
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

/// Builds everything (the XDP program included: `setup` first), runs the
/// unprivileged tests, then the privileged ones (tests in a `privileged`
/// module: network namespaces, veth pairs, XDP) one at a time, as root.
fn test(extra: &[String]) -> Result<()> {
    setup::ensure()?;
    util::cargo(&["build", "--workspace", "--all-targets", "--locked"])?;
    let with_extra = |mut args: Vec<&'static str>| -> Vec<String> {
        let mut all: Vec<String> = args.drain(..).map(String::from).collect();
        all.extend(extra.iter().cloned());
        all
    };
    util::cargo_env(
        &with_extra(vec![
            "test",
            "--workspace",
            "--locked",
            "--",
            "--skip",
            "privileged::",
        ]),
        &[],
    )?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!(
            "\nxtask: privileged tests (network namespaces, veth, XDP) skipped: they need root"
        );
        return Ok(());
    }
    // As root the kernel tests must run: a binary built without the XDP
    // program is then a failure, not a skip.
    util::cargo_env(
        &with_extra(vec![
            "test",
            "--workspace",
            "--locked",
            "--",
            "privileged::",
            "--test-threads=1",
        ]),
        &[("ML_SNIFFING_REQUIRE_EBPF", "1")],
    )
}

fn ci() -> Result<()> {
    setup::ensure()?;
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
    ebpf::clippy()?;
    test(&[])
}
