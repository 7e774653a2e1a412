//! `sniff`: packet capture into CSV, live from an interface or offline from
//! a pcap/pcapng file (`--read`, in `offline`).

mod offline;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{value_parser, ArgGroup, Args};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["interface", "read"])))]
pub struct SniffArgs {
    /// Destination CSV file for the captured packets.
    pub output: PathBuf,
    /// Network interface to capture on.
    #[arg(short, long)]
    pub interface: Option<String>,
    /// Read packets from this pcap or pcapng file instead of an interface
    /// (the format is told by the file's magic bytes, not its name).
    #[arg(short, long, value_name = "CAPTURE")]
    pub read: Option<PathBuf>,
    /// Number of packets to capture (omit to capture until CTRL+C, or to the
    /// end of the file with --read).
    #[arg(short = 'c', long, value_parser = value_parser!(u64).range(1..))]
    pub packet_count: Option<u64>,
    /// Keep only IPv4 packets, as the original tool did (IPv6 packets are
    /// skipped and counted).
    #[arg(long)]
    pub ipv4_only: bool,
}

pub fn run(args: SniffArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(capture) = &args.read {
        return offline::run(&args, capture, out);
    }
    bail!("sniff is not available yet: live capture arrives with the kernel capture work (issue 4)")
}
