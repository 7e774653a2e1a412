//! `run --kafka`: the EVE events reach a real Kafka-compatible broker
//! (tansu, started by the test on a loopback port), each exactly once,
//! alerts keyed by their flow's Community ID; across a broker restart in
//! the middle of a replay, every event is delivered or counted.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use support::kafka::{consume, free_port, tansu, Broker};
use support::process::{describe, ChildGuard};

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");
const T0_US: u64 = 1_700_000_000_000_000;

fn normal(i: usize) -> Vec<u8> {
    FrameSpec::new(
        "10.20.0.2".parse().unwrap(),
        "10.20.0.1".parse().unwrap(),
        Transport::Udp {
            src: 40000 + (i % 8) as u16,
            dst: 53,
        },
    )
    .payload(40 + i % 20)
    .build()
}

fn probe(scanner: &str, port: u16) -> Vec<u8> {
    FrameSpec::new(
        scanner.parse().unwrap(),
        "10.20.0.1".parse().unwrap(),
        Transport::Tcp {
            src: 61000,
            dst: port,
            flags: tcp_flags::SYN,
        },
    )
    .build()
}

/// Ordinary traffic 20 ms apart (a `stats` event every 10 s of it), then
/// a scan from `scanner`, 1 ms apart; from `t_us` on. Returns the frames
/// and the time after the last.
fn traffic(t_us: u64, normal_frames: usize, scanner: &str) -> (Vec<(Duration, Vec<u8>)>, u64) {
    let mut t = t_us;
    let mut frames = Vec::new();
    for i in 0..normal_frames {
        frames.push((Duration::from_micros(t), normal(i)));
        t += 20_000;
    }
    for port in 1..=150 {
        frames.push((Duration::from_micros(t), probe(scanner, port)));
        t += 1_000;
    }
    (frames, t)
}

fn header() -> PcapHeader {
    PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        ..Default::default()
    }
}

fn write_capture(path: &Path, frames: &[(Duration, Vec<u8>)]) {
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header()).unwrap();
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(*ts, f.len() as u32, f))
            .unwrap();
    }
}

/// The EVE lines of `path` with this `event_type`.
fn eve_lines(path: &Path, kind: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_type"] == kind)
        .map(str::to_string)
        .collect()
}

/// "Kafka: D events delivered to ..., X dropped (...), U undelivered at exit."
fn kafka_counts(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Kafka: "))
        .unwrap_or_else(|| panic!("no Kafka line in the summary: {stdout}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    // delivered, (the broker's address: 127, 0, 0, 1, port), dropped, undelivered
    (
        numbers[0],
        numbers[numbers.len() - 2],
        numbers[numbers.len() - 1],
    )
}

#[test]
fn every_event_arrives_once_keyed_by_its_flow() {
    let tansu = tansu();
    let broker = Broker::start(&tansu, free_port());
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("scan.pcap");
    let (frames, _) = traffic(T0_US, 1200, "10.66.0.9");
    write_capture(&capture, &frames);
    let eve = dir.path().join("eve.json");
    let output = Command::new(BIN)
        .args(["run", "--warmup", "500", "-q", "--read"])
        .arg(&capture)
        .arg("--eve")
        .arg(&eve)
        .args(["--kafka", &broker.address, "--topic", "sensor1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for kind in ["alert", "stats"] {
        let mut sent = eve_lines(&eve, kind);
        assert!(!sent.is_empty(), "the replay wrote {kind} events");
        let got = consume(&broker.address, &format!("sensor1-{kind}"));
        if kind == "alert" {
            for (key, value) in &got {
                let v: serde_json::Value = serde_json::from_str(value).unwrap();
                assert_eq!(key.as_deref(), v["community_id"].as_str(), "{value}");
            }
        }
        let mut got: Vec<String> = got.into_iter().map(|(_, v)| v).collect();
        sent.sort();
        got.sort();
        assert_eq!(got, sent, "each {kind} event once, as in the EVE file");
    }
    let total = eve_lines(&eve, "alert").len() + eve_lines(&eve, "stats").len();
    assert_eq!(kafka_counts(&stdout), (total, 0, 0), "{stdout}");
}

/// `run --flows --kafka`: every flow event reaches `PREFIX-flow` once, as
/// in the EVE file, keyed by its Community ID.
#[test]
fn flow_events_arrive_once_keyed_by_their_flow() {
    let tansu = tansu();
    let broker = Broker::start(&tansu, free_port());
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("scan.pcap");
    let (frames, _) = traffic(T0_US, 400, "10.66.0.9");
    write_capture(&capture, &frames);
    // A classifier on the capture's own flows: the scanner's are `scan`.
    let flows = Command::new(BIN)
        .args(["flows", "-", "-r"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(flows.status.success(), "{}", describe(&flows));
    let csv = String::from_utf8(flows.stdout).unwrap();
    let mut lines = csv.lines();
    let mut table = format!("{},label\n", lines.next().unwrap());
    for l in lines {
        let scan = l.split(',').nth(2) == Some("10.66.0.9");
        table.push_str(&format!("{l},{}\n", if scan { "scan" } else { "benign" }));
    }
    std::fs::write(dir.path().join("flows.csv"), table).unwrap();
    let model = dir.path().join("model.bin");
    let trained = Command::new(BIN)
        .args(["classify", "--label-column", "label", "--save-model"])
        .arg(&model)
        .arg(dir.path().join("flows.csv"))
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", describe(&trained));

    let eve = dir.path().join("eve.json");
    let output = Command::new(BIN)
        .args(["run", "--flows", "-q", "--classifier"])
        .arg(&model)
        .arg("--read")
        .arg(&capture)
        .arg("--eve")
        .arg(&eve)
        .args(["--kafka", &broker.address, "--topic", "f1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let mut sent = eve_lines(&eve, "flow");
    assert_eq!(sent.len(), 8 + 150, "eight UDP flows and the scan's probes");
    let got = consume(&broker.address, "f1-flow");
    for (key, value) in &got {
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        assert_eq!(key.as_deref(), v["community_id"].as_str(), "{value}");
    }
    let mut got: Vec<String> = got.into_iter().map(|(_, v)| v).collect();
    sent.sort();
    got.sort();
    assert_eq!(got, sent, "each flow event once, as in the EVE file");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(kafka_counts(&stdout), (sent.len(), 0, 0), "{stdout}");
}

/// Everything the consumer can read of both topics.
fn read_all(address: &str) -> Vec<String> {
    ["t2-alert", "t2-stats"]
        .iter()
        .flat_map(|t| consume(address, t))
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn across_a_broker_restart_every_event_is_delivered_or_counted() {
    let tansu = tansu();
    let port = free_port();
    let broker = Broker::start(&tansu, port);
    let address = broker.address.clone();
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--warmup", "500", "--batch", "16", "-q", "-r", "-"])
        .arg("--eve")
        .arg(&eve)
        .args(["--kafka", &address, "--topic", "t2", "--kafka-backlog", "5"]);
    let (monitor, stdin) = ChildGuard::spawn_fed(&mut cmd).unwrap();
    let mut pcap = PcapWriter::with_header(stdin, header()).unwrap();
    let mut write = |frames: Vec<(Duration, Vec<u8>)>| {
        for (ts, f) in &frames {
            pcap.write_packet(&PcapPacket::new(*ts, f.len() as u32, f))
                .unwrap();
        }
    };
    let (first, t) = traffic(T0_US, 1200, "10.66.0.9");
    write(first);
    // What the broker received before it goes away: wait until it stops
    // growing.
    let mut before = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut still = 0;
    while Instant::now() < deadline && still < 5 {
        std::thread::sleep(Duration::from_millis(300));
        let now = read_all(&address);
        still = if !now.is_empty() && now.len() == before.len() {
            still + 1
        } else {
            0
        };
        before = now;
    }
    assert!(
        !before.is_empty(),
        "events reached the broker before the restart"
    );
    drop(broker);
    // Events while it is away: more than the backlog holds.
    let (second, t) = traffic(t, 1500, "10.66.0.10");
    write(second);
    std::thread::sleep(Duration::from_secs(1));
    let broker = Broker::start(&tansu, port);
    let (third, _) = traffic(t, 600, "10.66.0.11");
    write(third);
    drop(pcap);
    let output = monitor.wait(Duration::from_secs(60)).unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: Kafka:"),
        "the outage was reported: {stderr}"
    );
    let after = read_all(&broker.address);
    let (delivered, dropped, undelivered) = kafka_counts(&stdout);
    let written = eve_lines(&eve, "alert").len() + eve_lines(&eve, "stats").len();
    assert!(dropped > 0, "the backlog of 5 overflowed: {stdout}");
    assert_eq!(
        delivered + dropped + undelivered,
        written,
        "every event delivered or counted: {stdout}"
    );
    assert_eq!(before.len() + after.len(), delivered, "{stdout}");
    let all: HashSet<&String> = before.iter().chain(&after).collect();
    assert_eq!(all.len(), delivered, "no event twice");
    let lines: HashSet<String> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        all.iter().all(|e| lines.contains(*e)),
        "each one an EVE line"
    );
}
