//! `flows`: one row per bidirectional flow with NFStream's statistical
//! columns, on captures the test writes (values checked by hand) and on the
//! shared captures (every IP packet in exactly one flow).

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use support::captures::write_pcap;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");

fn rows(csv: &str) -> Vec<HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn tcp(from_client: bool, flags: u8, payload: usize) -> Vec<u8> {
    let (c, s) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let (src, dst, sp, dp) = if from_client {
        (c, s, 40000, 80)
    } else {
        (s, c, 80, 40000)
    };
    FrameSpec::new(
        src,
        dst,
        Transport::Tcp {
            src: sp,
            dst: dp,
            flags,
        },
    )
    .payload(payload)
    .build()
}

#[test]
fn a_handshake_an_exchange_and_a_close_make_one_flow() {
    use tcp_flags::{ACK, FIN, SYN};
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("web.pcap");
    let t0 = 1_700_000_000_000u64;
    let frames = [
        (0, tcp(true, SYN, 0)),
        (10, tcp(false, SYN | ACK, 0)),
        (20, tcp(true, ACK, 100)),
        (50, tcp(false, ACK, 1000)),
        (90, tcp(true, FIN | ACK, 0)),
        // A later packet of the same 5-tuple starts a new flow.
        (200, tcp(true, ACK, 0)),
    ];
    write_pcap(
        &capture,
        frames
            .iter()
            .map(|(ms, f)| (Duration::from_millis(t0 + ms), f.clone())),
    );
    let out = Command::new(BIN)
        .args(["flows", "-", "-r"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout).unwrap();
    let flows = rows(&csv);
    assert_eq!(flows.len(), 2, "{csv}");
    let f = &flows[0];
    let sizes: Vec<usize> = frames[..5].iter().map(|(_, f)| f.len()).collect();
    assert_eq!(f["expiration_id"], "2", "ended by the FIN");
    assert_eq!(
        (f["src_ip"].as_str(), f["src_port"].as_str()),
        ("10.0.0.1", "40000")
    );
    assert_eq!(
        (f["dst_ip"].as_str(), f["dst_port"].as_str()),
        ("10.0.0.2", "80")
    );
    assert_eq!(f["bidirectional_packets"], "5");
    assert_eq!(
        f["bidirectional_bytes"],
        sizes.iter().sum::<usize>().to_string()
    );
    assert_eq!(f["src2dst_packets"], "3");
    assert_eq!(f["dst2src_packets"], "2");
    assert_eq!(f["bidirectional_first_seen_ms"], t0.to_string());
    assert_eq!(f["bidirectional_duration_ms"], "90");
    assert_eq!(f["dst2src_duration_ms"], "40");
    assert_eq!(
        f["bidirectional_max_ps"],
        sizes.iter().max().unwrap().to_string()
    );
    assert_eq!(f["bidirectional_min_piat_ms"], "10");
    assert_eq!(f["bidirectional_max_piat_ms"], "40");
    assert_eq!(f["src2dst_mean_piat_ms"], "45");
    assert_eq!(f["bidirectional_syn_packets"], "2");
    assert_eq!(f["bidirectional_ack_packets"], "4");
    assert_eq!(f["src2dst_fin_packets"], "1");
    assert_eq!(f["dst2src_fin_packets"], "0");
    assert_eq!(flows[1]["expiration_id"], "-1", "the end of the input");
    assert_eq!(flows[1]["bidirectional_packets"], "1");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("2 flows from 6 IP packets"));
}

#[test]
fn every_ip_packet_of_the_shared_captures_is_in_one_flow() {
    let Some(data) = support::data::shared_data() else {
        return;
    };
    for name in [
        "ssh.pcap",
        "synscan.pcap",
        "amp.TCP.syn.optionallyACK.optionallysamePort.pcapng",
    ] {
        let capture = data.join("pcap").join(name);
        let out = Command::new(BIN)
            .args(["flows", "-", "-r"])
            .arg(&capture)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let flows = rows(&String::from_utf8(out.stdout).unwrap());
        let packets: u64 = flows
            .iter()
            .map(|f| f["bidirectional_packets"].parse::<u64>().unwrap())
            .sum();
        let sniffed = Command::new(BIN)
            .args(["sniff", "/dev/null", "-r"])
            .arg(&capture)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&sniffed.stdout);
        let written: u64 = report
            .lines()
            .find_map(|l| l.trim().strip_prefix("rows written"))
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or_else(|| panic!("{report}"));
        assert_eq!(packets, written, "{name}: every IP packet once");
        for f in &flows {
            let (both, a, b) = (
                f["bidirectional_packets"].parse::<u64>().unwrap(),
                f["src2dst_packets"].parse::<u64>().unwrap(),
                f["dst2src_packets"].parse::<u64>().unwrap(),
            );
            assert_eq!(both, a + b, "{name}: {f:?}");
            assert!(a >= 1, "the first packet goes src to dst");
        }
    }
}

/// A flow table goes to `classify` as it is: the identifier, address and
/// timestamp columns are left out (and said so), and `predict` applies the
/// saved model to another flow table.
#[test]
fn flow_tables_train_and_apply_a_classifier() {
    use tcp_flags::{ACK, FIN, SYN};
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000u64;
    // Ordinary exchanges from many client ports, and a SYN scan.
    let mut frames = Vec::new();
    for i in 0..60u16 {
        let base = t0 + i as u64 * 1000;
        let port = 40000 + i;
        let mk = |from_client: bool, flags: u8, payload: usize| {
            let (c, s) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
            let (src, dst, sp, dp) = if from_client {
                (c, s, port, 80)
            } else {
                (s, c, 80, port)
            };
            FrameSpec::new(
                src,
                dst,
                Transport::Tcp {
                    src: sp,
                    dst: dp,
                    flags,
                },
            )
            .payload(payload)
            .build()
        };
        frames.push((base, mk(true, SYN, 0)));
        frames.push((base + 5, mk(false, SYN | ACK, 0)));
        frames.push((base + 9, mk(true, ACK, 300)));
        frames.push((base + 30, mk(false, ACK, 1200)));
        frames.push((base + 40, mk(true, FIN | ACK, 0)));
    }
    for port in 1..=60u16 {
        let probe = FrameSpec::new(
            "10.66.0.9".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            Transport::Tcp {
                src: 61000,
                dst: port,
                flags: SYN,
            },
        )
        .build();
        frames.push((t0 + 70_000 + port as u64, probe));
    }
    let capture = dir.path().join("mixed.pcap");
    write_pcap(
        &capture,
        frames
            .into_iter()
            .map(|(ms, f)| (Duration::from_millis(ms), f)),
    );
    let out = Command::new(BIN)
        .args(["flows", "-", "-r"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    let mut labelled = format!("{},label\n", lines.next().unwrap());
    for l in lines {
        let scan = l.split(',').nth(2) == Some("10.66.0.9");
        labelled.push_str(&format!("{l},{}\n", if scan { "scan" } else { "ordinary" }));
    }
    let table = dir.path().join("flows.csv");
    std::fs::write(&table, &labelled).unwrap();
    let model = dir.path().join("model.bin");
    let trained = Command::new(BIN)
        .args(["classify", "--label-column", "label", "--save-model"])
        .arg(&model)
        .arg(&table)
        .output()
        .unwrap();
    assert!(trained.status.success(), "{trained:?}");
    let stderr = String::from_utf8_lossy(&trained.stderr);
    assert!(
        stderr.contains("Left out of the features") && stderr.contains("`src_ip`"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&trained.stdout);
    let columns = csv.lines().next().unwrap().split(',').count();
    assert!(
        stdout.contains(&format!("{} features, 2 classes", columns - 10)),
        "ten identifier columns left out: {stdout}"
    );
    let predictions = dir.path().join("predicted.csv");
    let applied = Command::new(BIN)
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--output")
        .arg(&predictions)
        .arg(&table)
        .output()
        .unwrap();
    assert!(applied.status.success(), "{applied:?}");
    let rows = rows(&std::fs::read_to_string(&predictions).unwrap());
    assert_eq!(rows.len(), 120);
    let right = rows
        .iter()
        .filter(|r| r["prediction"] == r["label"])
        .count();
    assert_eq!(right, 120, "scan flows and ordinary ones told apart");
}
