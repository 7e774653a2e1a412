//! `-` and pipes: `-` reads stdin (`sniff -r -`, `run -r -`, `detect -`,
//! `classify -`, `predict ... -`) and writes stdout (`--output -` of
//! `detect`, `predict` and `run`, never a file named `-`), and an input that
//! is a pipe is read once (its first bytes tell a capture from a CSV from
//! the same stream), so it gives what the file it carries gives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use ml_sniffing_common::build::{FrameSpec, Transport};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

fn ml(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("ml-sniffing").expect("binary built");
    // A file named `-` would appear here.
    cmd.current_dir(dir);
    cmd
}

/// A classic pcap of `n` UDP frames; in its second half, one in 20 is far
/// larger than the others (an anomaly for `run` once warmed up on the
/// first half).
fn capture(n: usize) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for i in 0..n {
        let frame = FrameSpec::new(
            format!("10.20.0.{}", 2 + i % 9).parse().unwrap(),
            "10.20.0.1".parse().unwrap(),
            Transport::Udp {
                src: 40000 + (i % 8) as u16,
                dst: 53,
            },
        )
        .payload(40 + i % 20 + (i >= n / 2 && i % 20 == 0) as usize * 1400)
        .build();
        let ts = Duration::from_micros(1_700_000_000_000_000 + i as u64 * 100_000);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    }
    w.into_writer()
}

/// A labelled CSV of `rows` rows.
fn labelled_csv(rows: usize) -> String {
    let mut s = String::from("size,port,label\n");
    for i in 0..rows {
        let odd = i % 10 == 0;
        s.push_str(&format!(
            "{},{},{}\n",
            60 + odd as usize * 900 + i % 7,
            if odd { 6000 } else { 53 },
            if odd { "odd" } else { "usual" }
        ));
    }
    s
}

fn stdout_of(cmd: &mut Command, stdin: &[u8]) -> (String, String) {
    let output = cmd.write_stdin(stdin.to_vec()).output().unwrap();
    assert!(output.status.success(), "{cmd:?}: {output:?}");
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn no_dash_file(dir: &Path) {
    assert!(!dir.join("-").exists(), "a file named `-` was created");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `sniff - -r -` and `run -r -` read the capture from stdin (`-r -` used
/// to be refused: `- does not exist`).
#[test]
fn captures_are_read_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(500);
    let file = write(dir.path(), "traffic.pcap", &pcap);
    ml(dir.path())
        .args(["sniff", "rows.csv", "-r"])
        .arg(&file)
        .assert()
        .success();
    let expected = std::fs::read_to_string(dir.path().join("rows.csv")).unwrap();
    let (rows, report) = stdout_of(ml(dir.path()).args(["sniff", "-", "-r", "-"]), &pcap);
    assert_eq!(rows, expected);
    assert!(report.starts_with("stdin (pcap, "), "{report}");

    let (summary, _) = stdout_of(
        ml(dir.path()).args(["run", "--quiet", "--warmup", "100", "-r", "-"]),
        &pcap,
    );
    assert!(summary.contains("Summary: 500 records in "), "{summary}");
    no_dash_file(dir.path());
}

/// `detect`, `classify` and `predict` read a CSV or a capture from stdin
/// (`-`) or from a pipe given by name (`/dev/stdin`), which used to be
/// opened twice: once for its magic bytes, then again without them, hence
/// errors about field counts.
#[test]
fn tables_are_read_once_from_stdin_and_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(300);
    let csv = labelled_csv(300);
    let csv_file = write(dir.path(), "labelled.csv", csv.as_bytes());
    let pcap_file = write(dir.path(), "traffic.pcap", &pcap);
    for (file, bytes, columns) in [
        (
            &csv_file,
            csv.as_bytes(),
            &["--feature-columns", "size,port"][..],
        ),
        (&pcap_file, &pcap[..], &[][..]),
    ] {
        let scores = dir.path().join("scores.csv");
        ml(dir.path())
            .arg("detect")
            .arg(file)
            .args(columns)
            .arg("--output")
            .arg(&scores)
            .assert()
            .success();
        let expected = std::fs::read_to_string(&scores).unwrap();
        for name in ["-", "/dev/stdin"] {
            let (got, report) = stdout_of(
                ml(dir.path())
                    .args(["detect", name, "--output", "-"])
                    .args(columns),
                bytes,
            );
            assert_eq!(got, expected, "detect {name}");
            assert!(
                report.contains("Anomaly scores written to stdout"),
                "{report}"
            );
        }
    }

    let (report, _) = stdout_of(
        ml(dir.path()).args([
            "classify",
            "/dev/stdin",
            "--label-column",
            "label",
            "--n-estimators",
            "10",
            "--save-model",
            "rf.model",
        ]),
        csv.as_bytes(),
    );
    assert!(report.contains("odd"), "{report}");
    ml(dir.path())
        .args([
            "classify",
            "-",
            "--label-column",
            "label",
            "--test-file",
            "-",
        ])
        .write_stdin(csv.clone())
        .assert()
        .code(1)
        .stderr("Error: stdin can be read only once: give INPUT or --test-file as a file\n");

    ml(dir.path())
        .arg("predict")
        .arg(&csv_file)
        .args(["--model", "rf.model", "--output", "predicted.csv"])
        .assert()
        .success();
    let expected = std::fs::read_to_string(dir.path().join("predicted.csv")).unwrap();
    let (got, report) = stdout_of(
        ml(dir.path()).args(["predict", "-", "--model", "rf.model", "--output", "-"]),
        csv.as_bytes(),
    );
    assert_eq!(got, expected);
    assert!(
        report.starts_with("Predictions for 300 rows written to stdout"),
        "{report}"
    );
    no_dash_file(dir.path());
}

/// `run --output -` writes the anomaly rows to stdout (the summary then
/// goes to stderr); with --json both would take stdout.
#[test]
fn run_writes_anomalies_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = write(dir.path(), "traffic.pcap", &capture(600));
    let args = ["run", "--quiet", "--warmup", "200", "--alert-rate", "0.05"];
    ml(dir.path())
        .args(args)
        .arg("-r")
        .arg(&pcap)
        .args(["--output", "anomalies.csv"])
        .assert()
        .success();
    let expected = std::fs::read_to_string(dir.path().join("anomalies.csv")).unwrap();
    assert!(expected.lines().count() > 1, "{expected}");
    let output = ml(dir.path())
        .args(args)
        .arg("-r")
        .arg(&pcap)
        .args(["--output", "-"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Anomalies written to stdout ("), "{stderr}");
    ml(dir.path())
        .args(args)
        .arg("-r")
        .arg(&pcap)
        .args(["--output", "-", "--json"])
        .assert()
        .code(1)
        .stderr("Error: --output - and --json both write to stdout: choose one\n");
    no_dash_file(dir.path());
}
