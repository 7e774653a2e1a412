//! `sniff`: packet capture into CSV, live from an interface through the XDP
//! program (`live`) or offline from a pcap/pcapng file (`--read`, in
//! `offline`).

mod live;
mod offline;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{value_parser, ArgGroup, Args};

use super::engine_args::EngineArgs;
use crate::capture::xdp::XdpMode;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["interface", "read"])))]
pub struct SniffArgs {
    /// Destination CSV file for the captured packets (`-`: stdout).
    pub output: PathBuf,
    /// A tcpdump filter expression (pcap-filter syntax, e.g. `tcp port 80
    /// and not host 10.0.0.1`): only the frames it matches are read. With
    /// --read, the whole syntax (compiled by libpcap, which must be
    /// installed); live, in the XDP program, the subset host, net, port,
    /// portrange and the protocols, with and, or, not and parentheses.
    #[arg(value_name = "EXPRESSION")]
    pub filter: Vec<String>,
    /// Network interface to capture on (as root: the XDP program parses
    /// packets in the kernel).
    #[arg(short, long)]
    pub interface: Option<String>,
    /// Read packets from this pcap or pcapng file instead of an interface
    /// (the format is told by the file's magic bytes, not its name; `-`
    /// reads stdin). A folder, or `-r` given several times, reads every
    /// capture in it in the order of their first packets; gzip and
    /// Zstandard captures are read as they are.
    #[arg(short, long, value_name = "CAPTURE", action = clap::ArgAction::Append)]
    pub read: Vec<PathBuf>,
    /// Number of packets to capture (omit to capture until CTRL+C or
    /// SIGTERM, or to the end of the file with --read).
    #[arg(short = 'c', long, value_parser = value_parser!(u64).range(1..))]
    pub packet_count: Option<u64>,
    /// Keep only IPv4 packets, as the original tool did (IPv6 packets are
    /// skipped and counted).
    #[arg(long)]
    pub ipv4_only: bool,
    /// Live capture: how the XDP program is attached: `auto` (driver mode
    /// when the driver has it, else generic), `skb` (generic, any interface)
    /// or `drv` (driver/native only).
    #[arg(long, value_enum, default_value_t = XdpMode::Auto, conflicts_with = "read")]
    pub xdp_mode: XdpMode,
    /// Live capture: record one packet in N (`1/N` or `N`), drawn at random
    /// in the kernel (flow counters still count every packet). 1 records
    /// every packet.
    #[arg(long, default_value = "1", value_name = "1/N", conflicts_with = "read",
          value_parser = crate::monitor::status::one_in)]
    pub sample: u32,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Live AF_XDP capture: also write every frame captured to this pcapng
    /// file (with the interface's drop statistics at the end).
    #[arg(long, value_name = "FILE", conflicts_with = "read")]
    pub write_pcap: Option<PathBuf>,
}

pub fn run(args: SniffArgs, out: &mut dyn Write) -> Result<()> {
    if !args.read.is_empty() {
        if args.engine.any_given() {
            bail!("--capture and the AF_XDP options apply to live captures, not to --read");
        }
        return offline::run(&args, &args.read, out);
    }
    match &args.interface {
        Some(interface) => live::run(&args, interface, out),
        None => bail!("sniff needs --interface or --read"),
    }
}
