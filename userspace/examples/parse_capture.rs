//! Reads a capture through the reader, the shared parser and the flow
//! table, discarding the records: the "parsed before CSV formatting" rate
//! `cargo xtask bench pcap` reports.
//!
//! `cargo run --release -p ml-sniffing --example parse_capture -- FILE`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use ml_sniffing::capture::pcap::{self, CaptureReader, Options};
use ml_sniffing::capture::state::StateTables;

fn main() -> Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: parse_capture FILE")?
        .into();
    let start = Instant::now();
    let mut reader = CaptureReader::open(&path)?;
    let mut flows = StateTables::default();
    let mut checksum = 0u64;
    let summary = pcap::read_records(
        &mut reader,
        &mut flows,
        Options::default(),
        |record| {
            // Touch the record so that nothing is optimised away.
            checksum = checksum.wrapping_add(record.flow_packets ^ record.src_port as u64);
            Ok(())
        },
        |_| {},
    )?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "frames={} records={} flows={} seconds={seconds:.6} checksum={checksum}",
        summary.frames,
        summary.records,
        flows.len()
    );
    Ok(())
}
