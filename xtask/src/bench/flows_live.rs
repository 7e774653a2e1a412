//! `kernel: flows live` (as root): `run --flows` on a veth pair at
//! 1,000,000 packets/s, the kernel keeping the flow records. 2,000 TCP
//! flows of 500 packets (the last a FIN) and 2,000 one-packet UDP flows,
//! paced at 1 Mpps, then flat out:
//! every flow must come out with all its packets, and the kernel's counters
//! must account for every packet.

use std::net::IpAddr;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};

use super::kernel::{end_to_end_sequence, objects};
use super::BenchOptions;
use crate::util;

const TCP_FLOWS: u32 = 2_000;
const TCP_PACKETS: u64 = 500;
const UDP_FLOWS: u32 = 2_000;

fn host(net: u8, i: u32) -> IpAddr {
    IpAddr::from([10, net, (i / 250) as u8, (i % 250) as u8 + 1])
}

/// The frames, in sending order.
fn sequence() -> Vec<(Vec<u8>, u64)> {
    let server: IpAddr = "10.9.0.1".parse().unwrap();
    let mut out = Vec::new();
    for i in 0..TCP_FLOWS {
        let tcp = |flags| Transport::Tcp {
            src: 40_000 + (i % 1000) as u16,
            dst: 443,
            flags,
        };
        let data = FrameSpec::new(host(1, i), server, tcp(tcp_flags::ACK))
            .payload(200)
            .build();
        let fin = FrameSpec::new(host(1, i), server, tcp(tcp_flags::FIN | tcp_flags::ACK)).build();
        out.push((data, TCP_PACKETS - 1));
        out.push((fin, 1));
    }
    for i in 0..UDP_FLOWS {
        let udp = Transport::Udp { src: 5000, dst: 53 };
        out.push((FrameSpec::new(host(2, i), server, udp).build(), 1));
    }
    out
}

/// A classifier trained on the flows of two shared captures (any model on
/// flow columns serves: this measures delivery, not verdicts).
fn classifier(dir: &std::path::Path, binary: &std::path::Path) -> Result<std::path::PathBuf> {
    let data = crate::eval::data::data_dir(&util::root())?;
    let mut table = String::new();
    for (capture, label) in [("ssh.pcap", "benign"), ("synscan.pcap", "scan")] {
        let out = Command::new(binary)
            .args(["flows", "-", "-r"])
            .arg(data.join("pcap").join(capture))
            .output()
            .context("running ml-sniffing flows")?;
        ensure!(out.status.success(), "flows failed: {out:?}");
        let csv = String::from_utf8(out.stdout)?;
        let mut lines = csv.lines();
        let header = lines.next().context("no header")?;
        if table.is_empty() {
            table = format!("{header},label\n");
        }
        for l in lines {
            table.push_str(&format!("{l},{label}\n"));
        }
    }
    let path = dir.join("flows.csv");
    std::fs::write(&path, table)?;
    let model = dir.join("model.bin");
    let out = Command::new(binary)
        .args(["classify", "--label-column", "label", "--save-model"])
        .arg(&model)
        .arg(&path)
        .output()?;
    ensure!(out.status.success(), "classify failed: {out:?}");
    Ok(model)
}

pub fn run(_options: &BenchOptions) -> Result<()> {
    objects()?;
    util::cargo(&["build", "--release", "--locked", "--package", "ml-sniffing"])?;
    let binary = util::root().join("target/release/ml-sniffing");
    let dir = tempfile::tempdir()?;
    let model = classifier(dir.path(), &binary)?;
    let flows_csv = dir.path().join("live-flows.csv");
    let packets: u64 = sequence().iter().map(|(_, n)| n).sum();
    let flows = (TCP_FLOWS + UDP_FLOWS) as u64;
    println!(
        "`run --flows` live on a veth pair, flow records kept in the kernel: {flows} flows, {packets} packets:\n"
    );
    println!("| run | sent (Mpps) | flows out | of them by FIN | packets in them | packets in kernel records | overflow to packet records | all accounted |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, rate) in [("paced 1 Mpps", Some(1e6)), ("flat out", None)] {
        delivery(name, rate, &model, &flows_csv, flows, packets)?;
    }
    println!();
    Ok(())
}

fn delivery(
    name: &str,
    rate: Option<f64>,
    model: &std::path::Path,
    flows_csv: &std::path::Path,
    flows: u64,
    packets: u64,
) -> Result<()> {
    let (m, f) = (model.to_path_buf(), flows_csv.to_path_buf());
    let run = end_to_end_sequence(
        move |iface| {
            vec![
                "run".into(),
                "--flows".into(),
                "-q".into(),
                "--iface".into(),
                iface.into(),
                "--classifier".into(),
                m.display().to_string(),
                "--output".into(),
                f.display().to_string(),
            ]
        },
        sequence(),
        rate,
    )?;
    let csv = std::fs::read_to_string(flows_csv)
        .with_context(|| format!("no flow output: {}", run.stderr))?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().context("empty output")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .context(name.to_string())
    };
    let (packets_col, expiration_col) = (col("bidirectional_packets")?, col("expiration_id")?);
    let (mut out_flows, mut by_fin, mut out_packets) = (0u64, 0u64, 0u64);
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        out_flows += 1;
        out_packets += cells[packets_col].parse::<u64>()?;
        by_fin += (cells[expiration_col] == "2") as u64;
    }
    let in_kernel = super::kernel::number_after(&run.stdout, "packets in kernel flow records:");
    let overflow =
        super::kernel::number_after(&run.stdout, "could not hold (counted in userspace):");
    let accounted = out_flows == flows && out_packets == packets && in_kernel + overflow == packets;
    println!(
        "| {name} | {:.2} | {out_flows} | {by_fin} | {out_packets} | {in_kernel} | {overflow} | {} |",
        run.send_mpps,
        if accounted { "yes" } else { "NO" }
    );
    if !accounted {
        println!(
            "The monitor's report:\n```\n{}{}```\n",
            run.stdout, run.stderr
        );
    }
    Ok(())
}
