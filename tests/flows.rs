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

/// A TCP segment between 10.0.0.1:`port` and 10.0.0.2:80.
fn segment(port: u16, from_client: bool, flags: u8, payload: usize) -> Vec<u8> {
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
}

fn tcp(from_client: bool, flags: u8, payload: usize) -> Vec<u8> {
    segment(40000, from_client, flags, payload)
}

/// `flows - -r CAPTURE EXTRA...`: the run and its CSV.
fn flows_of(capture: &std::path::Path, extra: &[&str]) -> (std::process::Output, String) {
    let out = Command::new(BIN)
        .args(["flows", "-"])
        .args(extra)
        .arg("-r")
        .arg(capture)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout.clone()).unwrap();
    (out, csv)
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
    let (out, csv) = flows_of(&capture, &[]);
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

    // As NFStream: only timeouts end flows, the trailing ACK stays in.
    let (_, csv) = flows_of(&capture, &["--no-tcp-end"]);
    let flows = rows(&csv);
    assert_eq!(flows.len(), 1, "{csv}");
    assert_eq!(flows[0]["bidirectional_packets"], "6");
    assert_eq!(flows[0]["src2dst_max_piat_ms"], "110");
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

/// Ordinary exchanges from 60 client ports (SYN, SYN-ACK, data both ways,
/// FIN), 1 s apart, then a SYN scan of 60 ports, from `t0` (ms).
fn mixed_frames(t0: u64) -> Vec<(u64, Vec<u8>)> {
    use tcp_flags::{ACK, FIN, SYN};
    let mut frames = Vec::new();
    for i in 0..60u16 {
        let base = t0 + i as u64 * 1000;
        let port = 40000 + i;
        let mk = |from_client: bool, flags: u8, payload: usize| {
            segment(port, from_client, flags, payload)
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
    frames
}

/// A capture of [`mixed_frames`], its flow table labelled by source, and
/// a Random Forest `classify` trained on it.
struct Trained {
    capture: std::path::PathBuf,
    csv: String,
    table: std::path::PathBuf,
    model: std::path::PathBuf,
    trained: std::process::Output,
}

fn train(dir: &std::path::Path) -> Trained {
    let capture = dir.join("mixed.pcap");
    write_pcap(
        &capture,
        mixed_frames(1_700_000_000_000)
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
    let table = dir.join("flows.csv");
    std::fs::write(&table, &labelled).unwrap();
    let model = dir.join("model.bin");
    let trained = Command::new(BIN)
        .args(["classify", "--label-column", "label", "--save-model"])
        .arg(&model)
        .arg(&table)
        .output()
        .unwrap();
    assert!(trained.status.success(), "{trained:?}");
    Trained {
        capture,
        csv,
        table,
        model,
        trained,
    }
}

/// A flow table goes to `classify` as it is: the identifier, address and
/// timestamp columns are left out (and said so), and `predict` applies the
/// saved model to another flow table.
#[test]
fn flow_tables_train_and_apply_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let Trained {
        capture,
        csv,
        table,
        model,
        trained,
    } = train(dir.path());
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

    // The same model on the monitor's flows, with early verdicts after 2
    // packets.
    let eve = dir.path().join("eve.json");
    let run = Command::new(BIN)
        .args(["run", "--flows", "--early", "2", "--classifier"])
        .arg(&model)
        .arg("--eve")
        .arg(&eve)
        .arg("-r")
        .arg(&capture)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("Flows: 120 classified at their end and 60 early"),
        "{stdout}"
    );
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 180);
    // At their end every flow is told right (an early verdict on two
    // packets is the model's guess on less than it was trained on).
    for e in events.iter().filter(|e| e["flow"]["reason"] != "early") {
        assert_eq!(e["event_type"], "flow");
        let scan = e["src_ip"] == "10.66.0.9";
        assert_eq!(
            e["ml_sniffing"]["class"],
            if scan { "scan" } else { "ordinary" },
            "{e}"
        );
        assert_eq!(
            e["alert"].is_object(),
            scan,
            "alert fields for the scan only: {e}"
        );
    }
    let early = events
        .iter()
        .filter(|e| e["flow"]["reason"] == "early")
        .count();
    assert_eq!(
        early, 60,
        "one early verdict per exchange (the probes have one packet)"
    );
    // The classes `run --flows` gives at the flows' ends are those
    // `predict` gave on the flow table, flow by flow.
    let monitored = dir.path().join("monitored.csv");
    let run = Command::new(BIN)
        .args(["run", "--flows", "-q", "--classifier"])
        .arg(&model)
        .arg("--output")
        .arg(&monitored)
        .arg("-r")
        .arg(&capture)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let by_id = |rows: &[HashMap<String, String>]| -> HashMap<String, String> {
        rows.iter()
            .map(|r| (r["id"].clone(), r["prediction"].clone()))
            .collect()
    };
    assert_eq!(
        by_id(&crate::rows(&std::fs::read_to_string(&monitored).unwrap())),
        by_id(&rows)
    );
    // Without --eve or --json: a line for each flow of a class other than
    // the ordinary one.
    let lines = Command::new(BIN)
        .args(["run", "--flows", "--classifier"])
        .arg(&model)
        .arg("-r")
        .arg(&capture)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&lines.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("flow 10.66.0.9:61000 -> 10.0.0.2:"))
            .count(),
        60,
        "{text}"
    );
    assert!(!text.contains("flow 10.0.0.1:"), "{text}");
    assert!(text.contains("(ordinary: 60, scan: 60)"), "{text}");
}

mod privileged {
    use super::*;
    use support::lab::Lab;
    use support::process::{describe, ChildGuard};
    use support::root::can_run_kernel_tests;

    /// `flows --interface`: the kernel keeps the flows and the rows come
    /// out as they end; every packet sent is in one of them.
    #[test]
    fn flows_writes_an_interfaces_flows() {
        if !can_run_kernel_tests() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::new();
        let out = dir.path().join("live.csv");
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["flows"])
            .arg(&out)
            .args(["--interface", lab.iface()]);
        let capture = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        let frames = mixed_frames(0);
        for (_, frame) in &frames {
            sock.send(frame).unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(500));
        capture.signal(libc::SIGINT).unwrap();
        let output = capture.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let flows = rows(&std::fs::read_to_string(&out).unwrap());
        let ours: Vec<_> = flows
            .iter()
            .filter(|f| f["src_ip"] == "10.0.0.1" || f["src_ip"] == "10.66.0.9")
            .collect();
        assert_eq!(ours.len(), 120, "{}", describe(&output));
        let packets: usize = ours
            .iter()
            .map(|f| f["bidirectional_packets"].parse::<usize>().unwrap())
            .sum();
        assert_eq!(packets, frames.len(), "every packet sent is in a flow");
        let by_fin = ours.iter().filter(|f| f["expiration_id"] == "2").count();
        assert_eq!(by_fin, 60, "the exchanges end by their FIN");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("{} of them kept in the kernel", flows.len())),
            "{}",
            describe(&output)
        );
        lab.assert_detached();
    }

    /// Live: the monitor gathers the interface's packets into flows and
    /// classifies them (the scan's probes as scan, with alert fields).
    #[test]
    fn live_flows_are_classified() {
        if !can_run_kernel_tests() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let model = train(dir.path()).model;
        let lab = Lab::new();
        // EVE to a file: on stdout it would fill the pipe the guard reads
        // only at the end.
        let eve = dir.path().join("eve.json");
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["run", "--flows", "--iface", lab.iface(), "--classifier"])
            .arg(&model)
            .arg("--eve")
            .arg(&eve);
        let monitor = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        for (_, frame) in mixed_frames(0) {
            sock.send(&frame).unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(500));
        monitor.signal(libc::SIGINT).unwrap();
        let output = monitor.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let events: Vec<serde_json::Value> = std::fs::read_to_string(&eve)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let scans: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["src_ip"] == "10.66.0.9")
            .collect();
        assert_eq!(scans.len(), 60, "{}", describe(&output));
        assert!(scans
            .iter()
            .all(|e| e["ml_sniffing"]["class"] == "scan" && e["alert"].is_object()));
        let ordinary = events.iter().filter(|e| e["src_ip"] == "10.0.0.1").count();
        assert_eq!(ordinary, 60, "one event per exchange, ended by its FIN");
        // All of them kept in the kernel: one record per flow, not per packet.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout
                .contains("120 of them kept in the kernel's flow records (0 from packet records)")
                && stdout.contains("flows ended by FIN/RST there:    60"),
            "{}",
            describe(&output)
        );
        lab.assert_detached();
    }
}

/// Options `run --flows` does not serve are refused, not ignored.
#[test]
fn flows_refuse_the_packet_monitors_outputs() {
    for extra in [&["--web"][..], &["--metrics", "127.0.0.1:9477"]] {
        let out = Command::new(BIN)
            .args(["run", "--flows", "--classifier", "m.bin", "-r", "x.pcap"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
            "{extra:?}: {out:?}"
        );
    }
}
