//! Wall time and peak memory of a command. The command runs under a fresh
//! `xtask measure` process, so that the peak resident set of its waited-for
//! children is the command's own (and not, say, an earlier cargo build's).

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub struct Measured {
    pub wall_secs: f64,
    pub peak_rss_kib: u64,
}

impl Measured {
    pub fn peak_rss_mb(&self) -> f64 {
        self.peak_rss_kib as f64 * 1024.0 / 1e6
    }
}

/// Runs `cmd` (stdout discarded) and measures it.
pub fn measure(cmd: Command) -> Result<Measured> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .arg("measure")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stderr(Stdio::inherit())
        .output()
        .context("starting xtask measure")?;
    if !output.status.success() {
        bail!("{cmd:?} failed");
    }
    let text = String::from_utf8(output.stdout)?;
    let mut fields = text.split_whitespace();
    let wall_secs = fields.next().context("no wall time")?.parse()?;
    let peak_rss_kib = fields.next().context("no peak RSS")?.parse()?;
    Ok(Measured {
        wall_secs,
        peak_rss_kib,
    })
}

/// `xtask measure -- CMD ARGS`: runs CMD and prints `wall_seconds peak_rss_kib`.
pub fn measure_child(command: &[String]) -> Result<()> {
    let (program, args) = command.split_first().context("nothing to measure")?;
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{program} failed ({status})");
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    // Linux reports ru_maxrss in KiB.
    println!("{wall:.4} {}", usage.max_rss());
    Ok(())
}
