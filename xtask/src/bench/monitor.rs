//! The live monitor end to end (`cargo xtask bench --only monitor`, as
//! root): `ml-sniffing run` with a saved 200-tree Isolation Forest scoring
//! every packet, on a veth pair fed by the live-frames generator (see
//! `kernel.rs`), paced at 1 Mpps and flat out; how many packets the kernel
//! saw, how many were scored, and whether any was dropped. First the
//! userspace path alone (`benches/monitor_path.rs`: records through
//! features, batches and scoring, one thread and all cores). The scoring
//! rate alone is the `detect` benchmark's (`iforest_scoring`).

use anyhow::{Context, Result};
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use pcap_file::pcap::{PcapPacket, PcapWriter};

use super::kernel::{end_to_end, number_after};
use super::BenchOptions;
use crate::util;

const COUNT: u64 = 5_000_000;

/// Ordinary traffic to fit the model on.
fn training_frames() -> Vec<Vec<u8>> {
    let (a, b) = ("10.1.0.2".parse().unwrap(), "10.1.0.1".parse().unwrap());
    (0..5_000u32)
        .map(|i| {
            let transport = if i % 3 == 0 {
                Transport::Udp {
                    src: 40_000 + (i % 50) as u16,
                    dst: 53,
                }
            } else {
                Transport::Tcp {
                    src: 50_000 + (i % 20) as u16,
                    dst: 443,
                    flags: tcp_flags::ACK,
                }
            };
            FrameSpec::new(a, b, transport)
                .payload((i % 400) as usize)
                .build()
        })
        .collect()
}

/// An Isolation Forest of `trees` trees saved by `detect --save-model`
/// (fitted on [`training_frames`]) in `dir`; returns its path.
pub(super) fn training_model(
    binary: &std::path::Path,
    dir: &std::path::Path,
    trees: usize,
) -> Result<String> {
    let capture = dir.join("train.pcap");
    {
        let mut w = PcapWriter::new(std::fs::File::create(&capture)?)?;
        for (i, frame) in training_frames().iter().enumerate() {
            let ts = std::time::Duration::from_micros(1_700_000_000_000_000 + i as u64 * 100);
            w.write_packet(&PcapPacket::new(ts, frame.len() as u32, frame))?;
        }
    }
    let model = dir.join(format!("model-{trees}.bin"));
    let status = std::process::Command::new(binary)
        .args([
            "detect",
            "--top-n",
            "0",
            "--n-estimators",
            &trees.to_string(),
        ])
        .arg("--save-model")
        .arg(&model)
        .arg(&capture)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot start ml-sniffing detect")?;
    anyhow::ensure!(status.success(), "detect --save-model failed");
    Ok(model.display().to_string())
}

pub fn run(_options: &BenchOptions) -> Result<()> {
    println!("The userspace path alone (no kernel), `cargo bench -p ml-sniffing --bench monitor_path`:\n");
    println!("{}", super::crate_bench("ml-sniffing", "monitor_path")?);

    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let binary = util::root().join("target/release/ml-sniffing");
    let dir = tempfile::tempdir()?;
    let model = training_model(&binary, dir.path(), 200)?;
    let frame = FrameSpec::new(
        "10.1.0.2".parse()?,
        "10.1.0.1".parse()?,
        Transport::Udp {
            src: 40_000,
            dst: 53,
        },
    )
    .payload(18)
    .build();

    println!("`ml-sniffing run --model M --quiet --sample 1/1 --xdp-mode drv` (200 trees, every packet scored):\n");
    println!("| sender | sent | send rate (Mpps) | seen by program | scored | ring full | lost | peak scored/s (status line) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, rate) in [("paced 1 Mpps", Some(1e6)), ("flat out", None)] {
        let run = end_to_end(
            |iface| {
                [
                    "run",
                    "--model",
                    &model,
                    "--quiet",
                    "--sample",
                    "1/1",
                    "--xdp-mode",
                    "drv",
                    "-i",
                    iface,
                ]
                .map(String::from)
                .to_vec()
            },
            &frame,
            COUNT,
            rate,
        )?;
        let seen = number_after(&run.stdout, "Kernel: ");
        // "Summary: R records in T s, S scored, A anomalies ..."
        let scored: u64 = run
            .stdout
            .lines()
            .find(|l| l.starts_with("Summary:"))
            .and_then(|l| {
                l.split(", ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let ring_full = number_after(&run.stdout, "records emitted, ");
        let peak = run
            .stderr
            .lines()
            .filter_map(|l| {
                let field = l.split(" | ").find(|f| f.ends_with("scored/s"))?;
                field
                    .split_whitespace()
                    .next()?
                    .replace(',', "")
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        println!(
            "| {label} | {COUNT} | {:.2} | {seen} | {scored} | {ring_full} | {} | {peak} |",
            run.send_mpps,
            COUNT.saturating_sub(scored)
        );
        if !run.stdout.contains("Summary:") {
            println!(
                "\n(no summary from the monitor: stderr was)\n{}",
                run.stderr
            );
        }
    }
    println!();
    Ok(())
}
