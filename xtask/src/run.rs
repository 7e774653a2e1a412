//! `cargo xtask run -- [--iface IF] [run options]`: build everything and
//! start the live monitor (`ml-sniffing run`) as root; without `--iface` it
//! monitors the default route's interface.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{bail, Context, Result};

use crate::{setup, util};

/// The command `cargo xtask run` starts: the live monitor.
const SUBCOMMAND: &[&str] = &["run"];

pub fn run(args: &[String]) -> Result<()> {
    setup::ensure()?;
    let (iface, rest) = split_iface(args)?;
    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let binary = util::root().join("target/release/ml-sniffing");
    let mut cmd = as_root(binary)?;
    cmd.args(SUBCOMMAND);
    // Without --iface the monitor takes the default route's interface.
    if let Some(iface) = iface {
        cmd.args(["--iface", &iface]);
    }
    cmd.args(&rest);
    eprintln!("xtask: {cmd:?}");
    let mut child = cmd.spawn().context("cannot start ml-sniffing")?;
    forward_signals_to(child.id() as i32);
    let status = child.wait().context("cannot wait for ml-sniffing")?;
    if !status.success() {
        bail!("ml-sniffing exited with {status}");
    }
    Ok(())
}

/// `--iface IF`, `--iface=IF` or `-i IF`, and the other arguments.
fn split_iface(args: &[String]) -> Result<(Option<String>, Vec<String>)> {
    let mut iface = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--iface=") {
            iface = Some(v.to_owned());
        } else if a == "--iface" || a == "-i" || a == "--interface" {
            iface = Some(
                it.next()
                    .with_context(|| format!("{a} needs an interface name"))?
                    .clone(),
            );
        } else {
            rest.push(a.clone());
        }
    }
    Ok((iface, rest))
}

/// The command, through sudo when not already root.
fn as_root(binary: PathBuf) -> Result<Command> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(Command::new(binary));
    }
    let sudo_found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("sudo").is_file());
    if !sudo_found {
        bail!("live capture needs root: run `cargo xtask run` as root (sudo is not installed)");
    }
    eprintln!("xtask: live capture needs root; running it with sudo");
    let mut cmd = Command::new("sudo");
    cmd.arg(binary);
    Ok(cmd)
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: libc::c_int) {
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(child, signal) };
    }
}

/// Signals sent to xtask (SIGINT, SIGTERM, SIGHUP) are passed on to the
/// child, and xtask waits for it to detach its program and print its report
/// instead of dying first. (CTRL+C in a terminal reaches the child directly
/// too; a second SIGINT during its shutdown is harmless.)
fn forward_signals_to(child: i32) {
    CHILD.store(child, Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs an async-signal-safe handler.
        unsafe { libc::signal(signal, forward as *const () as libc::sighandler_t) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_is_taken_out_of_the_arguments() {
        let args: Vec<String> = ["--iface", "eth0", "-c", "10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (iface, rest) = split_iface(&args).unwrap();
        assert_eq!(iface.as_deref(), Some("eth0"));
        assert_eq!(rest, ["-c", "10"]);
        let (iface, _) = split_iface(&["--iface=veth1".to_string()]).unwrap();
        assert_eq!(iface.as_deref(), Some("veth1"));
        assert!(split_iface(&["--iface".to_string()]).is_err());
    }
}
