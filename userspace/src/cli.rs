//! Command-line interface: argument definitions and error reporting.
//!
//! Every failure prints `Error: MESSAGE` on stderr and exits with status 1,
//! as the original tool did.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;

/// `--version`: the package version, the commit and what is built in.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ML_SNIFFING_COMMIT"),
    "; ",
    env!("ML_SNIFFING_BUILT_WITH"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "ml-sniffing",
    version = VERSION,
    about = "Network-traffic anomaly detection: capture packets, score them with an \
             Isolation Forest, classify them with a Random Forest.",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture packets from a network interface into a CSV file.
    Sniff(commands::sniff::SniffArgs),
    /// Score every packet of a CSV with an Isolation Forest and show the most
    /// anomalous ones.
    Detect(commands::detect::DetectArgs),
    /// Train a Random Forest on a labelled CSV and print how well it does on
    /// held-out rows.
    Classify(commands::classify::ClassifyArgs),
    /// Apply a model saved by `classify` or `detect` to a new CSV.
    Predict(commands::predict::PredictArgs),
    /// Monitor live traffic: score every packet as it arrives and report
    /// anomalies (or replay a capture file with --read).
    // `--config`'s options come first; the command line's then win.
    #[command(args_override_self = true)]
    Run(Box<commands::run::RunArgs>),
    /// Write one CSV row per bidirectional flow of a capture or of live traffic, with
    /// NFStream's statistical columns (packet sizes, inter-arrival times
    /// and TCP flags, each way and both ways).
    Flows(commands::flows::FlowsArgs),
    /// Print a shell completion script (e.g. `ml-sniffing completions bash >
    /// /etc/bash_completion.d/ml-sniffing`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (e.g. `ml-sniffing manpage >
    /// /usr/local/share/man/man1/ml-sniffing.1`).
    Manpage,
}

/// Runs the command line and turns errors into `Error: ...` and status 1.
pub fn main() -> ExitCode {
    let run = Cli::command().find_subcommand("run").cloned();
    let args = match run.map(|run| commands::config::expand(std::env::args_os().collect(), &run)) {
        Some(Err(e)) => {
            eprintln!("Error: {e:#}");
            return ExitCode::from(1);
        }
        Some(Ok(args)) => args,
        None => std::env::args_os().collect(),
    };
    let cli = Cli::parse_from(args);
    crate::signals::install();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Sniff(args) => commands::sniff::run(args, &mut out),
        Command::Detect(args) => commands::detect::run(args, &mut out),
        Command::Classify(args) => commands::classify::run(args, &mut out),
        Command::Predict(args) => commands::predict::run(args, &mut out),
        Command::Run(args) => commands::run::run(*args, &mut out),
        Command::Flows(args) => commands::flows::run(args, &mut out),
        Command::Completions { shell } => {
            // Into a buffer: clap_complete panics when its writer fails (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ml-sniffing", &mut script);
            out.write_all(&script).map_err(Into::into)
        }
        Command::Manpage => clap_mangen::Man::new(Cli::command())
            .render(&mut out)
            .map_err(Into::into),
    };
    let result = result.and_then(|()| out.flush().map_err(Into::into));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not our failure:
        // end as the Unix tools do, by SIGPIPE (status 141 in the shell),
        // now that every guard has cleaned up.
        Err(e) if crate::io::output::is_broken_pipe(&e) => {
            die_of_sigpipe();
            ExitCode::from(141)
        }
        Err(e) => match e.downcast_ref::<crate::signals::Interrupted>() {
            // Stopped by a signal after its report: the shell's status for it.
            Some(interrupted) => {
                eprintln!("{interrupted}.");
                ExitCode::from(interrupted.exit_code())
            }
            None => {
                eprintln!("Error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// Restores SIGPIPE's default action (Rust ignores it) and raises it.
fn die_of_sigpipe() {
    // SAFETY: signal() and raise() take no pointers; nothing else changes
    // signal dispositions at this point of main.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
