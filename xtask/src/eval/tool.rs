//! Running the release binary's offline commands in the work folder, as a
//! user would type them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util;

/// Builds `ml-sniffing` (release) and returns its path.
pub fn build() -> Result<PathBuf> {
    util::cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "ml-sniffing",
        "--bin",
        "ml-sniffing",
    ])?;
    Ok(util::target_dir().join("release/ml-sniffing"))
}

/// The commands of one evaluation, run in `dir`.
pub struct Tool<'a> {
    pub bin: &'a Path,
    pub dir: &'a Path,
}

impl Tool<'_> {
    /// Prints `ml-sniffing ARGS`, runs it in the work folder, and echoes
    /// what it printed (to stderr: stdout is for the tables).
    pub fn run(&self, step: &str, args: &[&str]) -> Result<()> {
        println!("    ml-sniffing {}", args.join(" "));
        let started = Instant::now();
        let output = Command::new(self.bin)
            .args(args)
            .current_dir(self.dir)
            .output()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        for stream in [&output.stdout, &output.stderr] {
            for line in String::from_utf8_lossy(stream).lines() {
                eprintln!("eval:   | {line}");
            }
        }
        if !output.status.success() {
            bail!(
                "`ml-sniffing {}` failed ({}) in {}",
                args.join(" "),
                output.status,
                self.dir.display()
            );
        }
        eprintln!(
            "eval: {step} done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
