//! SIGINT and SIGTERM: an interrupted `sniff --read` or `detect --output`
//! leaves no temporary file behind (they used to stay, hidden, as large as
//! the output), and an interrupted `run --read` stops reading, prints its
//! summary and exits. The inputs are built here: an endless capture fed
//! through a pipe (the command is still reading whenever the signal comes)
//! or a large CSV.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ml_sniffing_common::build::{FrameSpec, Transport};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

/// Long enough for any machine; a test past it fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(120);

fn ml(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ml-sniffing"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Writes a classic pcap of UDP packets to `stdin` until the reader goes.
fn feed_endless_capture(stdin: ChildStdin) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            ..Default::default()
        };
        let Ok(mut w) = PcapWriter::with_header(stdin, header) else {
            return;
        };
        for i in 0u64.. {
            let frame = FrameSpec::new(
                format!("10.20.0.{}", 2 + i % 9).parse().unwrap(),
                "10.20.0.1".parse().unwrap(),
                Transport::Udp {
                    src: 40000 + (i % 8) as u16,
                    dst: 53,
                },
            )
            .payload(40 + (i % 20) as usize)
            .build();
            let ts = Duration::from_micros(1_700_000_000_000_000 + i * 1000);
            if w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
                .is_err()
            {
                return;
            }
        }
    })
}

/// Our temporary files in `dir`.
fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".ml-sniffing-") && n.ends_with(".partial"))
        .collect()
}

/// Polls until `ready` holds (or the child ends, or `PATIENCE` runs out).
fn wait_for(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the command ended ({status}) before {what}");
        }
        if start.elapsed() > PATIENCE {
            child.kill().unwrap();
            panic!("no {what} after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}

/// Waits for the child's end, and collects what it printed.
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > PATIENCE {
            child.kill().unwrap();
            panic!("still running {PATIENCE:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_interrupted_sniff_read_leaves_no_temporary_file() {
    for (sig, name, code) in [
        (libc::SIGINT, "SIGINT", 130),
        (libc::SIGTERM, "SIGTERM", 143),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = ml(dir.path(), &["sniff", "out.csv", "-r", "-"]);
        let feeder = feed_endless_capture(child.stdin.take().unwrap());
        wait_for(&mut child, "a .partial file", || {
            !partials(dir.path()).is_empty()
        });
        signal(&child, sig);
        let output = finish(child);
        feeder.join().unwrap();
        assert_eq!(output.status.code(), Some(code), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("Interrupted by {name}: stopped; the outputs not yet complete were removed.\n")
        );
        assert_eq!(partials(dir.path()), Vec::<String>::new(), "{name}");
        assert!(!dir.path().join("out.csv").exists());
    }
}

#[test]
fn an_interrupted_detect_output_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    // Enough rows that writing them takes a while (the signal comes as
    // soon as the temporary file appears).
    let mut csv = String::from("a,b\n");
    for i in 0..1_000_000u64 {
        csv.push_str(&format!("{},{}\n", i % 97, (i * 7) % 101));
    }
    std::fs::write(dir.path().join("rows.csv"), csv).unwrap();
    let mut child = ml(
        dir.path(),
        &[
            "detect",
            "rows.csv",
            "--feature-columns",
            "a,b",
            "--n-estimators",
            "5",
            "--top-n",
            "0",
            "--output",
            "scores.csv",
        ],
    );
    wait_for(&mut child, "a .partial file", || {
        !partials(dir.path()).is_empty()
    });
    signal(&child, libc::SIGTERM);
    let output = finish(child);
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    assert_eq!(partials(dir.path()), Vec::<String>::new());
    assert!(!dir.path().join("scores.csv").exists());
}

/// `run --read` interrupted used to die without a word; now it stops
/// reading, prints the summary of what it read, and exits with 130.
#[test]
fn an_interrupted_replay_prints_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ml(
        dir.path(),
        &[
            "run",
            "-r",
            "-",
            "--quiet",
            "--warmup",
            "500",
            "--output",
            "anomalies.csv",
        ],
    );
    let feeder = feed_endless_capture(child.stdin.take().unwrap());
    // Scoring has begun once the first model is fitted.
    let (lines, fitted) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let collector = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.starts_with("Model v1 fitted") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    wait_for(&mut child, "the model fitted", || fitted.try_recv().is_ok());
    signal(&child, libc::SIGINT);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let output = finish(child);
    feeder.join().unwrap();
    let stderr = collector.join().unwrap();
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("Summary: "), "{stdout}");
    assert!(
        stdout.contains("Stopped by SIGINT: the replay stopped after "),
        "{stdout}"
    );
    assert!(stderr.ends_with("Interrupted by SIGINT.\n"), "{stderr}");
    let csv = std::fs::read_to_string(dir.path().join("anomalies.csv")).unwrap();
    assert!(csv.starts_with("timestamp,"), "{csv}");
}
