//! `sniff`: packet capture into CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct SniffArgs {
    /// Destination CSV file for the captured packets.
    pub output: PathBuf,
    /// Network interface to capture on.
    #[arg(short, long)]
    pub interface: String,
    /// Number of packets to capture (omit to capture until CTRL+C).
    #[arg(short = 'c', long)]
    pub packet_count: Option<u64>,
}

pub fn run(_args: SniffArgs, _out: &mut dyn Write) -> Result<()> {
    bail!("sniff is not available yet: live capture arrives with the kernel capture work (issue 4)")
}
