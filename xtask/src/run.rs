//! `cargo xtask run -- [--iface IF] [sniff options]`: build everything and
//! capture live as root. Until the live monitor lands this runs
//! `ml-sniffing sniff - --interface IF` (CSV rows on stdout); then it will
//! run `ml-sniffing run`: only [`SUBCOMMAND`] changes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{bail, Context, Result};

use crate::{setup, util};

/// The live-capture command `run` starts, and its fixed arguments.
const SUBCOMMAND: &[&str] = &["sniff", "-"];

pub fn run(args: &[String]) -> Result<()> {
    setup::ensure()?;
    let (iface, rest) = split_iface(args)?;
    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let iface = match iface {
        Some(i) => i,
        None => {
            let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
            let route6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
            default_route_interface(&route, &route6).context(
                "there is no default route to take the interface from: pass one with `cargo xtask run -- --iface IF`",
            )?
        }
    };
    let binary = util::root().join("target/release/ml-sniffing");
    let mut cmd = as_root(binary)?;
    cmd.args(SUBCOMMAND)
        .args(["--interface", &iface])
        .args(&rest);
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

/// The interface of the default route with the lowest metric: IPv4 from
/// /proc/net/route, else IPv6 from /proc/net/ipv6_route.
pub fn default_route_interface(route: &str, ipv6_route: &str) -> Option<String> {
    const RTF_UP: u32 = 1;
    let v4 = route
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, flags, metric, mask) =
                (f.first()?, f.get(1)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let metric: u32 = metric.parse().ok()?;
            (*dest == "00000000" && *mask == "00000000" && flags & RTF_UP != 0)
                .then(|| (metric, iface.to_string()))
        })
        .min();
    if let Some((_, iface)) = v4 {
        return Some(iface);
    }
    ipv6_route
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, prefix, metric, flags, iface) =
                (f.first()?, f.get(1)?, f.get(5)?, f.get(8)?, f.get(9)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let metric = u32::from_str_radix(metric, 16).ok()?;
            let default = dest.bytes().all(|b| b == b'0') && *prefix == "00";
            (default && flags & RTF_UP != 0 && *iface != "lo").then(|| (metric, iface.to_string()))
        })
        .min()
        .map(|(_, iface)| iface)
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

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
";

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        assert_eq!(default_route_interface(ROUTE, "").as_deref(), Some("eth0"));
    }

    #[test]
    fn ipv6_default_route_when_there_is_no_ipv4_one() {
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     ens3
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     ens4
";
        let no_default_v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        assert_eq!(
            default_route_interface(no_default_v4, v6).as_deref(),
            Some("ens3")
        );
        assert_eq!(default_route_interface(no_default_v4, ""), None);
    }

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
