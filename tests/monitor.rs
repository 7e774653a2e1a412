//! The live monitor (`ml-sniffing run`): replaying captures the tests write
//! (no root needed), and live in network namespaces and a veth pair the
//! tests create (root; RAII guards remove them on every path).
//!
//! The traffic: "normal" UDP between two hosts, then a burst that is clearly
//! different, a SYN scan across many ports from a new address. The burst
//! must be reported as anomalies and the normal packets mostly not.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use ml_sniffing_common::build::{tcp_flags, FrameSpec, Transport};
use predicates::prelude::*;
use support::captures::write_pcap;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");
const SCANNER: &str = "10.66.0.9";
const NORMAL: usize = 1500;
const SCAN: u16 = 200;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Ordinary UDP traffic: a few client ports to one DNS-like server port.
fn normal_frame(i: usize) -> Vec<u8> {
    FrameSpec::new(
        ip("10.20.0.2"),
        ip("10.20.0.1"),
        Transport::Udp {
            src: 40000 + (i % 8) as u16,
            dst: 53,
        },
    )
    .payload(40 + i % 20)
    .build()
}

/// One SYN of the scan, to port `port`.
fn scan_frame(port: u16) -> Vec<u8> {
    FrameSpec::new(
        ip(SCANNER),
        ip("10.20.0.1"),
        Transport::Tcp {
            src: 61000,
            dst: port,
            flags: tcp_flags::SYN,
        },
    )
    .build()
}

/// The normal traffic then the scan, as a classic pcap, 1 ms apart.
fn capture_file(dir: &Path) -> PathBuf {
    let path = dir.join("traffic.pcap");
    let frames = (0..NORMAL)
        .map(normal_frame)
        .chain((1..=SCAN).map(scan_frame));
    write_pcap(
        &path,
        frames.enumerate().map(|(i, frame)| {
            (
                Duration::from_micros(1_700_000_000_000_000 + i as u64 * 1000),
                frame,
            )
        }),
    );
    path
}

/// One reported packet: source, destination port, score, and whether a
/// reason says why (a feature beyond the training range) when the score
/// alone would not have flagged it.
type Found = (String, u16, f64, bool);

/// Anomaly rows of a `run --output` CSV.
fn anomalies(csv_path: &Path) -> Vec<Found> {
    let mut reader = csv::Reader::from_path(csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (src, dport, score, flag, reason) = (
        col("source_ip"),
        col("destination_port"),
        col("anomaly_score"),
        col("is_anomaly"),
        col("reason"),
    );
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(&r[flag], "True");
            (
                r[src].to_string(),
                r[dport].parse().unwrap(),
                r[score].parse().unwrap(),
                !r[reason].is_empty(),
            )
        })
        .collect()
}

/// The scan is found, the normal traffic mostly is not.
fn assert_burst_found(found: &[Found], normal_scored: usize) {
    let scan = found.iter().filter(|(s, _, _, _)| s == SCANNER).count();
    let normal = found.len() - scan;
    assert!(
        scan >= SCAN as usize * 9 / 10,
        "only {scan} of {SCAN} scan packets reported"
    );
    assert!(
        normal <= normal_scored / 20,
        "{normal} of {normal_scored} normal packets reported"
    );
    assert!(found.iter().all(|(_, _, score, why)| *score < 0.0 || *why));
}

#[test]
fn replaying_a_capture_reports_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_file(dir.path());
    let out = dir.path().join("anomalies.csv");
    let assert = Command::new(BIN)
        .args([
            "run",
            "--warmup",
            "500",
            "--contamination",
            "0.01",
            "--batch",
            "64",
            "--read",
        ])
        .arg(&capture)
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("Model v1 fitted on 500 packets"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("Summary: {} records", NORMAL + SCAN as usize)),
        "{stdout}"
    );
    assert!(
        stdout.contains("Top talkers among the anomalies:"),
        "{stdout}"
    );
    let found = anomalies(&out);
    assert_burst_found(&found, NORMAL);
    // One alert, for the scan, opened and closed, naming the scanner and
    // why; the normal traffic raises none.
    let alerts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ALERT #"))
        .collect();
    assert_eq!(alerts.len(), 2, "{stdout}");
    // Opened on the scanner's first packet (a new, quiet source); named a
    // scan once its fan-out leaves the training range.
    assert!(alerts[0].starts_with("ALERT #1 opened  "), "{stdout}");
    assert!(
        alerts[0].contains(&format!("  source {SCANNER}  ")),
        "{stdout}"
    );
    assert!(
        alerts[1].starts_with(&format!("ALERT #1 closed  scan  source {SCANNER}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("    why: destination ports per source"),
        "{stdout}"
    );
    assert!(stdout.contains("Alerts: 1 opened (1 scan)"), "{stdout}");
    assert!(
        stdout.contains("why: destination ports per source"),
        "{stdout}"
    );
    // The scanner tops the talkers.
    let talkers = stdout.split("Top talkers").nth(1).unwrap();
    let first = talkers.lines().nth(3).unwrap();
    assert!(first.trim_start().starts_with(SCANNER), "{talkers}");
}

#[test]
fn json_lines_and_a_saved_model() {
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_file(dir.path());
    // A model fitted by detect on the normal traffic alone (as a capture).
    let normal = dir.path().join("normal.pcap");
    write_pcap(
        &normal,
        (0..NORMAL).map(|i| {
            (
                Duration::from_micros(1_700_000_000_000_000 + i as u64 * 1000),
                normal_frame(i),
            )
        }),
    );
    let model = dir.path().join("model.bin");
    Command::new(BIN)
        .args([
            "detect",
            "--top-n",
            "0",
            "--contamination",
            "0.01",
            "--save-model",
        ])
        .arg(&model)
        .arg(&normal)
        .assert()
        .success();
    let assert = Command::new(BIN)
        .args(["run", "--json", "--warmup", "500", "--model"])
        .arg(&model)
        .arg("--read")
        .arg(&capture)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("Alert threshold placed on 500 packets") && !stderr.contains("fitted"),
        "a saved model is not fitted again, only calibrated: {stderr}"
    );
    assert!(
        stderr.contains("Summary:"),
        "the summary goes to stderr with --json"
    );
    // --json: EVE lines, the scan's alert opened then closed, nothing on
    // the normal traffic.
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(events.len(), 2, "{stdout}");
    assert_eq!(events[1]["ml"]["kind"], "scan");
    for (e, state) in events.iter().zip(["opened", "closed"]) {
        assert_eq!(e["event_type"], "alert");
        assert_eq!(e["src_ip"], SCANNER);
        assert_eq!(e["ml"]["state"], state);
        assert!(e["community_id"].as_str().unwrap().starts_with("1:"));
        assert!(e["timestamp"].as_str().unwrap().ends_with("+0000"));
    }
    assert!(events[1]["ml"]["packets"].as_u64().unwrap() >= SCAN as u64 * 9 / 10);
}

#[test]
fn refits_swap_in_new_model_versions() {
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_file(dir.path());
    let replay = |out: &Path| {
        Command::new(BIN)
            .args([
                "run",
                "--quiet",
                "--warmup",
                "300",
                "--refit-every",
                "300ms",
                "--read",
            ])
            .arg(&capture)
            .arg("--output")
            .arg(out)
            .assert()
            .success()
    };
    let out = dir.path().join("anomalies.csv");
    let assert = replay(&out);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("Model v2 fitted on the"), "{stderr}");
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        !stdout.contains(" score "),
        "--quiet prints no anomaly lines"
    );
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let versions: std::collections::BTreeSet<u32> = reader
        .records()
        .map(|r| r.unwrap()[17].parse().unwrap())
        .collect();
    assert!(
        versions.len() >= 2,
        "anomalies from several models: {versions:?}"
    );
    // Refits follow the capture's clock (1.7 s of packets, one refit per
    // 300 ms at tick boundaries): the same output every time.
    let again = dir.path().join("again.csv");
    replay(&again);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

/// A classifier trained with `classify` on the capture's rows labels every
/// packet; anomalies carry the predicted class.
#[test]
fn a_classifier_labels_the_packets() {
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_file(dir.path());
    // The capture as sniff writes it, with a label column added.
    let rows = dir.path().join("rows.csv");
    Command::new(BIN)
        .args(["sniff"])
        .arg(&rows)
        .arg("--read")
        .arg(&capture)
        .assert()
        .success();
    let text = std::fs::read_to_string(&rows).unwrap();
    let mut labelled = String::new();
    for (i, line) in text.lines().enumerate() {
        let label = match i {
            0 => "label",
            _ if line.contains(SCANNER) => "scan",
            _ => "normal",
        };
        labelled.push_str(&format!("{line},{label}\n"));
    }
    let labelled_path = dir.path().join("labelled.csv");
    std::fs::write(&labelled_path, labelled).unwrap();
    let model = dir.path().join("classifier.bin");
    Command::new(BIN)
        .args([
            "classify",
            "--label-column",
            "label",
            "--n-estimators",
            "20",
            "--save-model",
        ])
        .arg(&model)
        .arg(&labelled_path)
        .assert()
        .success();
    let out = dir.path().join("anomalies.csv");
    let assert = Command::new(BIN)
        .args([
            "run",
            "--quiet",
            "--warmup",
            "500",
            "--contamination",
            "0.01",
            "--classifier",
        ])
        .arg(&model)
        .arg("--read")
        .arg(&capture)
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    // Every packet classified: the counts add up to the packets. The
    // scanner's first packet carries no behaviour yet (a new host at about
    // a packet a second, like the normal client's first): it may read as
    // normal.
    let classes = stdout.lines().find(|l| l.starts_with("Classes:")).unwrap();
    let count = |name: &str| -> usize {
        let at = classes.find(&format!("{name}: ")).unwrap() + name.len() + 2;
        classes[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        count("scan") + count("normal"),
        SCAN as usize + NORMAL,
        "{classes}"
    );
    assert!(count("scan") >= SCAN as usize - 1, "{classes}");
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[headers.len() - 4], "predicted_class");
    assert_eq!(&headers[headers.len() - 2], "reason");
    for (i, r) in reader.records().enumerate() {
        let r = r.unwrap();
        let expected = if &r[1] == SCANNER { "scan" } else { "normal" };
        if i > 0 {
            assert_eq!(&r[headers.len() - 4], expected);
        }
        let p: f64 = r[headers.len() - 3].parse().unwrap();
        assert!((0.5..=1.0).contains(&p));
    }
}

#[test]
fn models_of_the_wrong_kind_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_file(dir.path());
    // An Isolation Forest on the original's features cannot score live packets.
    let seed_csv = dir.path().join("seed.csv");
    let mut text = String::from("timestamp,source_ip,destination_ip,protocol,length\n");
    for i in 0..100 {
        text.push_str(&format!(
            "{}.5,10.0.0.1,10.0.0.2,tcp,{}\n",
            1000 + i,
            60 + i % 5
        ));
    }
    std::fs::write(&seed_csv, text).unwrap();
    let seed_model = dir.path().join("seed.model");
    Command::new(BIN)
        .args([
            "detect",
            "--features",
            "seed",
            "--top-n",
            "0",
            "--save-model",
        ])
        .arg(&seed_model)
        .arg(&seed_csv)
        .assert()
        .success();
    Command::new(BIN)
        .args(["run", "--model"])
        .arg(&seed_model)
        .arg("--read")
        .arg(&capture)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("--features seed").and(predicate::str::starts_with("Error: ")),
        );
    Command::new(BIN)
        .args(["run", "--classifier"])
        .arg(&seed_model)
        .arg("--read")
        .arg(&capture)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is an Isolation Forest: pass it with --model",
        ));
    Command::new(BIN)
        .args(["run", "--read"])
        .arg(&capture)
        .args(["--warmup", "1"])
        .assert()
        .code(1)
        .stderr("Error: --warmup must be at least 2 packets to fit a model on\n");
    Command::new(BIN)
        .args(["run", "--sample", "1/0", "--read"])
        .arg(&capture)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not `auto` or `1/N`"));
}

/// `--config FILE`: its options apply, and the command line's win.
#[test]
fn a_config_file_gives_options_the_command_line_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_file(dir.path());
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "warmup = 300\nquiet = true\nalert-rate = 1e-3\n").unwrap();
    let run = |extra: &[&str]| {
        let assert = Command::new(BIN)
            .args(["run", "--read"])
            .arg(&capture)
            .arg("--config")
            .arg(&config)
            .args(extra)
            .assert()
            .success();
        let out = assert.get_output();
        (
            String::from_utf8(out.stdout.clone()).unwrap(),
            String::from_utf8(out.stderr.clone()).unwrap(),
        )
    };
    let (stdout, stderr) = run(&[]);
    assert!(
        stderr.contains("Model v1 fitted on 300 packets"),
        "{stderr}"
    );
    assert!(stderr.contains("alert rate 0.001"), "{stderr}");
    assert!(!stdout.contains("ALERT #"), "quiet from the file: {stdout}");
    let (_, stderr) = run(&["--warmup", "400"]);
    assert!(
        stderr.contains("Model v1 fitted on 400 packets"),
        "{stderr}"
    );
    std::fs::write(&config, "wramup = 300\n").unwrap();
    Command::new(BIN)
        .args(["run", "--read"])
        .arg(&capture)
        .arg("--config")
        .arg(&config)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`wramup` is not an option of `run`",
        ));
}

mod privileged {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::support::lab::Lab;
    use crate::support::process::{describe, ChildGuard};
    use crate::support::raw::RawSocket;
    use crate::support::root::can_run_kernel_tests;

    /// Sends frames, pausing now and then so nothing is lost on the way.
    fn send_all(sock: &RawSocket, frames: impl Iterator<Item = Vec<u8>>) {
        for (i, frame) in frames.enumerate() {
            sock.send(&frame).unwrap();
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    #[test]
    fn live_monitor_reports_a_scan_and_detaches_on_sigint() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("anomalies.csv");
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["run", "--iface", lab.iface(), "--xdp-mode", "drv"])
            .args([
                "--warmup",
                "500",
                "--contamination",
                "0.01",
                "--batch",
                "64",
                "--quiet",
            ])
            .arg("--output")
            .arg(&out);
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        send_all(&sock, (0..NORMAL).map(normal_frame));
        // Until the warm-up model is fitted on the first 500 packets, and
        // the rest of the normal traffic is scored.
        std::thread::sleep(Duration::from_millis(800));
        send_all(&sock, (1..=SCAN).map(scan_frame));
        // The scan reaches the CSV (flushed at every tick).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.matches(SCANNER).count() >= SCAN as usize * 9 / 10 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.signal(libc::SIGINT).unwrap();
        let output = child.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stdout.contains("Summary: "), "{}", describe(&output));
        assert!(stdout.contains("Kernel: "), "{stdout}");
        assert!(
            stdout.contains("Top talkers among the anomalies:"),
            "{stdout}"
        );
        assert!(
            stderr.contains("status: "),
            "a status line each second: {stderr}"
        );
        assert_burst_found(&anomalies(&out), NORMAL);
        lab.assert_detached();
    }

    /// The disk fills while the monitor writes anomalies: the CSV ends on
    /// its last whole row, the summary (with the kernel's counters and the
    /// rows in the file) is printed, then the error.
    #[test]
    fn a_full_disk_ends_the_monitor_on_a_whole_row_with_its_summary() {
        use crate::support::tmpfs::SmallDisk;
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        // One page: a few rows of the scan's 200.
        let disk = SmallDisk::new("4k").unwrap();
        let out = disk.file("anomalies.csv");
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["run", "--iface", lab.iface(), "--xdp-mode", "drv"])
            .args([
                "--warmup",
                "500",
                "--contamination",
                "0.01",
                "--batch",
                "64",
            ])
            .arg("--quiet")
            .arg("--output")
            .arg(&out);
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        send_all(&sock, (0..NORMAL).map(normal_frame));
        std::thread::sleep(Duration::from_millis(800));
        send_all(&sock, (1..=SCAN).map(scan_frame));
        let output = child.wait(Duration::from_secs(20)).unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("No space left on device"), "{stderr}");
        assert!(stdout.contains("Summary: "), "{}", describe(&output));
        assert!(stdout.contains("Kernel: "), "{stdout}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.ends_with('\n'), "the file ends on a whole row");
        let found = anomalies(&out);
        assert!(!found.is_empty());
        assert!(
            stdout.contains(&format!("({} rows)", found.len())),
            "the summary counts the rows in the file: {stdout}"
        );
        lab.assert_detached();
    }

    /// Ordinary traffic of four clients to one server: during the warm-up
    /// each cycles through 8 source ports; afterwards (`i` from
    /// `CLIENTS_WARM`) each takes new source ports, every one used longer
    /// than the last, as long-lived clients do.
    fn client_frame(i: usize) -> Vec<u8> {
        let client = i % 4;
        let port = if i < CLIENTS_WARM {
            40000 + (i / 4 % 8) as u16
        } else {
            // Flow k of a client lasts k packets: ever longer flows.
            let n = (i - CLIENTS_WARM) / 4;
            let k = ((((8 * n + 1) as f64).sqrt() - 1.0) / 2.0) as u16;
            41000 + k
        };
        FrameSpec::new(
            ip(&format!("10.20.0.{}", 2 + client)),
            ip("10.20.0.1"),
            Transport::Udp { src: port, dst: 53 },
        )
        .payload(40 + i % 20)
        .build()
    }

    const CLIENTS_WARM: usize = 800;
    const CLIENTS_AFTER: usize = 1600;

    /// Sends frames at a steady pace (about 10,000 a second at most).
    fn send_paced(sock: &RawSocket, frames: impl Iterator<Item = Vec<u8>>) {
        for (i, frame) in frames.enumerate() {
            sock.send(&frame).unwrap();
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// With its defaults (but a short warm-up), the live monitor opens one
    /// alert, for the scan, and none for the clients that keep sending
    /// after the warm-up from new source ports in ever longer flows.
    #[test]
    fn live_alerts_name_the_scan_and_not_the_clients() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["run", "--iface", lab.iface(), "--warmup", "600"]);
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        send_paced(&sock, (0..CLIENTS_WARM + CLIENTS_AFTER).map(client_frame));
        send_paced(&sock, (1..=SCAN).map(scan_frame));
        std::thread::sleep(Duration::from_millis(1500));
        child.signal(libc::SIGINT).unwrap();
        let output = child.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let total = CLIENTS_WARM + CLIENTS_AFTER + SCAN as usize;
        assert!(
            stdout.contains(&format!("Summary: {total} records")),
            "every packet reached the monitor: {}",
            describe(&output)
        );
        let opened: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("ALERT #") && l.contains(" opened "))
            .collect();
        assert_eq!(opened.len(), 1, "one alert, for the scan:\n{stdout}");
        // Opened on the scanner, or on the server its first probes reach as
        // new flows towards a victim; closed as the scanner's scan.
        assert!(
            opened[0].contains(&format!("  source {SCANNER}  "))
                || opened[0].contains("  victim 10.20.0.1  "),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("closed  scan  source {SCANNER}")),
            "{stdout}"
        );
        assert!(stdout.contains("Alerts: 1 opened (1 scan)"), "{stdout}");
        lab.assert_detached();
    }

    /// A service's life: `--pidfile` holds the pid while running and is
    /// removed on exit; SIGHUP reopens `--output` and `--eve` after a log
    /// rotation moved them away.
    #[test]
    fn pidfile_and_sighup_reopen_the_outputs() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let dir = tempfile::tempdir().unwrap();
        let (pidfile, csv, eve) = (
            dir.path().join("run.pid"),
            dir.path().join("anomalies.csv"),
            dir.path().join("eve.json"),
        );
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["run", "--iface", lab.iface(), "--warmup", "100", "-q"])
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--output")
            .arg(&csv)
            .arg("--eve")
            .arg(&eve);
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert_eq!(pid.trim(), child.id().to_string());
        // logrotate: move the files away, then SIGHUP.
        std::fs::rename(&csv, dir.path().join("anomalies.csv.1")).unwrap();
        std::fs::rename(&eve, dir.path().join("eve.json.1")).unwrap();
        child.signal(libc::SIGHUP).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(csv.exists() && eve.exists()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(csv.exists() && eve.exists(), "reopened after SIGHUP");
        child.signal(libc::SIGINT).unwrap();
        let output = child.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("SIGHUP: reopened"),
            "{}",
            describe(&output)
        );
        // The new CSV starts with its header; the stats event went to the new EVE file.
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.starts_with("timestamp,"), "{text}");
        assert!(std::fs::read_to_string(&eve).unwrap().contains("\"stats\""));
        assert!(!pidfile.exists(), "the pidfile is removed on exit");
        lab.assert_detached();
    }

    /// AF_XDP mode: the frames of the packets scored as anomalies go to a
    /// pcapng file, byte for byte, and nothing stays attached.
    #[test]
    fn af_xdp_monitor_keeps_the_anomalous_frames() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("anomalies.csv");
        let pcap = dir.path().join("anomalies.pcapng");
        let mut cmd = lab.capture.command(BIN);
        cmd.args([
            "run",
            "-i",
            lab.iface(),
            "--capture",
            "af-xdp",
            "--xdp-mode",
            "drv",
        ])
        .args([
            "--warmup",
            "500",
            "--contamination",
            "0.01",
            "--batch",
            "64",
            "--quiet",
        ])
        .arg("--output")
        .arg(&out)
        .arg("--write-pcap")
        .arg(&pcap)
        .arg("--pcap-anomalies");
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        send_all(&sock, (0..NORMAL).map(normal_frame));
        std::thread::sleep(Duration::from_millis(800));
        send_all(&sock, (1..=SCAN).map(scan_frame));
        std::thread::sleep(Duration::from_millis(1500));
        child.signal(libc::SIGINT).unwrap();
        let output = child.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("AF_XDP counters"), "{stdout}");
        let found = anomalies(&out);
        assert_burst_found(&found, NORMAL);
        // The pcapng holds exactly the anomalies' frames, in order.
        let mut reader = ml_sniffing::capture::pcap::CaptureReader::open(&pcap).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = reader.next_frame().unwrap() {
            frames.push(f.data.to_vec());
        }
        assert_eq!(frames.len(), found.len(), "one frame per anomaly");
        for (frame, (source, port, _, _)) in frames.iter().zip(&found) {
            if source == SCANNER {
                assert_eq!(frame, &scan_frame(*port), "the scan SYN to port {port}");
            }
        }
        assert!(
            stdout.contains(&format!("(pcapng): {}", found.len())),
            "{stdout}"
        );
        lab.assert_detached();
    }

    /// Frames for a flood: UDP from many source ports (many flows).
    fn flood_frames() -> Vec<Vec<u8>> {
        (0..256u16)
            .map(|i| {
                FrameSpec::new(
                    ip("10.30.0.2"),
                    ip("10.30.0.1"),
                    Transport::Udp {
                        src: 20000 + i,
                        dst: 5000,
                    },
                )
                .payload(18)
                .build()
            })
            .collect()
    }

    /// Under a flood the reader cannot keep up with, the monitor still
    /// ticks: a status line about every second, auto-sampling engaged
    /// while the flood runs, SIGINT honoured with the summary while the
    /// flood still runs, and every packet the program saw in one of its
    /// counters. (The reader used to stay in its drain loop while the ring
    /// buffer stayed full: no status line, no sampling, no signal.)
    #[test]
    fn a_flood_keeps_the_status_sampling_and_sigint_going() {
        if !can_run_kernel_tests() {
            return;
        }
        flood_the_monitor(&["--capture", "xdp"]);
    }

    /// The same through AF_XDP (sampling in userspace, the sockets' drops
    /// counted as `ring_full`).
    #[test]
    fn a_flood_through_af_xdp_keeps_the_status_sampling_and_sigint_going() {
        if !can_run_kernel_tests() {
            return;
        }
        flood_the_monitor(&["--capture", "af-xdp", "--consume"]);
    }

    fn flood_the_monitor(engine: &[&str]) {
        use crate::support::flood::Flood;
        let lab = Lab::new();
        let mut cmd = lab.capture.command(BIN);
        cmd.args(["run", "-i", lab.iface(), "--xdp-mode", "drv", "--quiet"])
            .args(["--warmup", "2000", "--batch", "256"])
            .args(engine);
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let flood = Flood::start(&lab, flood_frames());
        std::thread::sleep(Duration::from_secs(FLOOD_SECONDS));
        child.signal(libc::SIGINT).unwrap();
        let output = child.wait(Duration::from_secs(20));
        assert!(flood.running(), "the flood ran until the monitor ended");
        let sent = flood.stop();
        let output = output.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}", describe(&output));
        let status_lines = stderr.lines().filter(|l| l.starts_with("status: ")).count();
        assert!(
            status_lines as u64 >= FLOOD_SECONDS - 2,
            "{status_lines} status lines during a {FLOOD_SECONDS} s flood: {stderr}"
        );
        assert!(
            stderr.contains("the kernel now hands over 1 packet in 2 "),
            "auto-sampling engaged during the flood: {stderr}"
        );
        // "Kernel: S packets seen, E records emitted, D dropped (ring buffer
        // full), X sampled out, U unparsed, N not IP, F filtered."
        let kernel = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Kernel: "))
            .unwrap_or_else(|| panic!("no kernel counters: {}", describe(&output)));
        let counts: Vec<u64> = kernel
            .split(", ")
            .map(|part| part.split(' ').next().unwrap().parse().unwrap())
            .collect();
        let (seen, emitted, sampled_out) = (counts[0], counts[1], counts[3]);
        assert_eq!(
            seen,
            counts[1..].iter().sum::<u64>(),
            "every packet seen has one outcome: {kernel}"
        );
        assert!(seen <= sent, "{seen} seen of {sent} sent");
        assert!(sampled_out > 0, "{kernel}");
        // Every record emitted reached the monitor, or is counted as left
        // in the ring buffer when the capture stopped.
        let records = number_before(&stdout, "Summary: ", " records");
        let unread = stdout
            .lines()
            .find(|l| l.contains("records were still in the ring buffer"))
            .map_or(0, |l| l.split(' ').next().unwrap().parse().unwrap());
        assert_eq!(records + unread, emitted, "{stdout}");
        lab.assert_detached();
    }

    const FLOOD_SECONDS: u64 = 6;

    /// The number between `before` and `after` on the line starting with
    /// `before`.
    fn number_before(text: &str, before: &str, after: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(before)?.split(after).next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {before:?}N{after:?} in:\n{text}"))
    }

    #[test]
    fn a_packet_count_ends_the_monitor_with_its_summary() {
        if !can_run_kernel_tests() {
            return;
        }
        let lab = Lab::new();
        let mut cmd = lab.capture.command(BIN);
        cmd.args([
            "run",
            "-i",
            &lab.link.a.name,
            "--warmup",
            "50",
            "-c",
            "300",
            "--quiet",
        ]);
        let child = ChildGuard::spawn(&mut cmd).unwrap();
        lab.wait_attached(Duration::from_secs(20));
        let sock = lab.sender();
        send_all(&sock, (0..400).map(normal_frame));
        let output = child.wait(Duration::from_secs(20)).unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("Summary: 300 records"),
            "{}",
            describe(&output)
        );
        lab.assert_detached();
    }
}
