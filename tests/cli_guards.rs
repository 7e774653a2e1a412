//! What the commands refuse before doing harm: numbers that would exhaust
//! memory or give scores that are not numbers, and outputs that are (or
//! link to) one of their inputs. Each case failed before its guard.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod support;

use assert_cmd::Command;
use ml_sniffing_common::build::{FrameSpec, Transport};
use predicates::prelude::*;
use support::captures::write_pcap;

fn ml() -> Command {
    Command::cargo_bin("ml-sniffing").expect("binary built")
}

/// A labelled packet CSV of `rows` rows.
fn packet_csv(dir: &Path, rows: usize) -> PathBuf {
    let mut s = String::from("timestamp,source_ip,destination_ip,protocol,length,label\n");
    for i in 0..rows {
        let t = 1_712_589_010.0 + i as f64 * 0.01;
        let label = if i % 10 == 0 { "odd" } else { "usual" };
        s.push_str(&format!(
            "{t:.6},10.0.0.{},10.0.0.1,udp,{},{label}\n",
            2 + i % 5,
            60 + (i % 10 == 0) as usize * 900 + i % 7
        ));
    }
    let path = dir.join("packets.csv");
    std::fs::write(&path, s).unwrap();
    path
}

/// A classic pcap of `n` UDP frames, 1 ms apart.
fn capture(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("traffic.pcap");
    write_pcap(
        &path,
        (0..n).map(|i| {
            let frame = FrameSpec::new(
                "10.20.0.2".parse().unwrap(),
                "10.20.0.1".parse().unwrap(),
                Transport::Udp {
                    src: 40000 + (i % 8) as u16,
                    dst: 53,
                },
            )
            .payload(40 + i % 20)
            .build();
            (
                Duration::from_micros(1_700_000_000_000_000 + i as u64 * 1000),
                frame,
            )
        }),
    );
    path
}

fn refused(args: &[&str], message: &str) {
    ml().args(args)
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("Error: ").and(predicate::str::contains(message)));
}

#[test]
fn numbers_beyond_what_the_machine_can_hold_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path(), 50);
    let csv = packet_csv(dir.path(), 100);
    let (pcap, csv) = (pcap.to_str().unwrap(), csv.to_str().unwrap());
    refused(
        &[
            "run",
            "--read",
            pcap,
            "-q",
            "--batch",
            "18446744073709551615",
        ],
        "--batch must be from 1 to 1048576 packets",
    );
    refused(
        &["run", "--read", pcap, "-q", "--batch", "4294967296"],
        "--batch must be from 1",
    );
    refused(
        &[
            "run",
            "--read",
            pcap,
            "-q",
            "--warmup",
            "18446744073709551615",
            "--refit-every",
            "1s",
        ],
        "--warmup must be at most 10000000 packets",
    );
    refused(
        &["run", "--read", pcap, "-q", "--refit-every", "0s"],
        "--refit-every must be longer than 0s",
    );
    refused(
        &["detect", csv, "--n-estimators", "4294967296"],
        "--n-estimators must be from 1 to 10000",
    );
    refused(
        &["detect", csv, "--n-estimators", "100000000"],
        "--n-estimators must be from 1 to 10000",
    );
    refused(
        &[
            "classify",
            csv,
            "--label-column",
            "label",
            "--n-estimators",
            "100000000",
        ],
        "--n-estimators must be from 1 to 10000",
    );
}

#[test]
fn forests_whose_scores_would_not_be_numbers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = packet_csv(dir.path(), 100);
    let model = dir.path().join("model.bin");
    ml().arg("detect")
        .arg(&csv)
        .args(["--max-samples", "1", "--save-model"])
        .arg(&model)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--max-samples must give each tree at least 2 rows",
        ));
    assert!(!model.exists(), "no model saved");
    let one_row = dir.path().join("one-row.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(
        &one_row,
        text.lines().take(2).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    refused(
        &["detect", one_row.to_str().unwrap()],
        "an Isolation Forest needs at least 2 rows to fit on",
    );
    // `-c 1` ends the capture before the warm-up with one packet: no model
    // is fitted on it, and nothing is scored.
    let pcap = capture(dir.path(), 5);
    ml().args(["run", "-q", "-c", "1", "--read"])
        .arg(&pcap)
        .assert()
        .success()
        .stderr(predicate::str::contains("too few to fit a model on"))
        .stdout(
            predicate::str::contains("Summary: 1 records")
                .and(predicate::str::contains("no model (nothing was scored)")),
        );
}

#[test]
fn tiny_contamination_prints_short() {
    let dir = tempfile::tempdir().unwrap();
    let csv = packet_csv(dir.path(), 100);
    ml().arg("detect")
        .arg(&csv)
        .args(["--contamination", "1e-300", "--top-n", "0"])
        .assert()
        .success()
        .stdout(predicate::str::contains("(contamination 1e-300)."));
}

#[test]
fn outputs_that_are_inputs_are_refused_and_the_inputs_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path(), 50);
    let csv = packet_csv(dir.path(), 100);
    let model = dir.path().join("model.bin");
    ml().arg("detect")
        .arg(&csv)
        .args(["--top-n", "0", "--save-model"])
        .arg(&model)
        .assert()
        .success();
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&csv, &link).unwrap();
    let before: Vec<Vec<u8>> = [&pcap, &csv, &model]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let (p, c, m, l) = (
        pcap.to_str().unwrap(),
        csv.to_str().unwrap(),
        model.to_str().unwrap(),
        link.to_str().unwrap(),
    );
    let also = "is also the input: choose another";
    refused(&["run", "--read", p, "-q", "--output", p], also);
    refused(&["run", "--read", p, "-q", "--eve", p], also);
    refused(
        &["run", "--read", p, "-q", "--model", m, "--output", m],
        also,
    );
    refused(&["detect", c, "--output", c], also);
    refused(&["detect", c, "--save-model", c], also);
    refused(&["detect", c, "--alerts", "--eve", c], also);
    refused(
        &["detect", c, "--output", l],
        "is the same file as the input",
    );
    refused(
        &["classify", c, "--label-column", "label", "--save-model", l],
        "is the same file as the input",
    );
    refused(&["predict", "--model", m, c, "--output", m], also);
    refused(&["predict", "--model", m, c, "--output", c], also);
    let after: Vec<Vec<u8>> = [&pcap, &csv, &model]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(before == after, "every input is left as it was");
}

/// `sniff - | head -1`: when the reader closes the pipe, sniff says how
/// far it got and ends by SIGPIPE, as the Unix tools do.
#[test]
fn a_closed_pipe_ends_sniff_by_sigpipe_with_a_report() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path(), 20_000);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ml-sniffing"))
        .args(["sniff", "-", "-r"])
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut header = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut header)
        .unwrap();
    assert!(header.starts_with("timestamp,"), "{header}");
    // The reader is gone (dropped above).
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the output was closed by its reader after"),
        "{stderr}"
    );
}

/// The writers that write as they go (`run --output`, `--eve`) do not
/// follow a link planted where their file goes: as root it could point
/// anywhere.
#[test]
fn live_outputs_do_not_follow_planted_links() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path(), 50);
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let link = dir.path().join("out");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let (p, l) = (pcap.to_str().unwrap(), link.to_str().unwrap());
    for flag in ["--output", "--eve"] {
        refused(
            &["run", "--read", p, "-q", flag, l],
            "is a symbolic link: not followed",
        );
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

/// Options that would be ignored, or given twice, are refused; `--sample`
/// reads `1/N` and `N` in both commands that take it.
#[test]
fn options_that_would_be_ignored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = packet_csv(dir.path(), 30);
    let pcap = capture(dir.path(), 20);
    let (c, p) = (csv.to_str().unwrap(), pcap.to_str().unwrap());
    refused(
        &["detect", c, "--feature-columns", "length,length"],
        "--feature-columns names `length` twice",
    );
    for (args, message) in [
        (
            vec![
                "detect",
                c,
                "--feature-columns",
                "length",
                "--features",
                "seed",
            ],
            "cannot be used with",
        ),
        (
            vec!["run", "--read", p, "--sample", "1/2"],
            "cannot be used with",
        ),
        (
            vec!["sniff", "-", "-i", "lo", "--sample", "1/0"],
            "is not `1/N` or `N`",
        ),
    ] {
        ml().args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    }
    // `1/4` reads as one in four: the error is then about the interface.
    ml().args(["sniff", "-", "-i", "no-such-if0", "--sample", "1/4"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no-such-if0"));
}
