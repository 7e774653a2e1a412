//! Compressed inputs (`.gz`, `.zst`, told by their magic bytes): every
//! command reads them as the files they hold.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod support;

use assert_cmd::Command;
use ml_sniffing_common::build::{FrameSpec, Transport};
use support::captures::write_pcap;

fn ml() -> Command {
    Command::cargo_bin("ml-sniffing").expect("binary built")
}

fn capture(dir: &Path) -> PathBuf {
    let path = dir.join("traffic.pcap");
    write_pcap(
        &path,
        (0..300usize).map(|i| {
            let frame = FrameSpec::new(
                format!("10.20.0.{}", 2 + i % 5).parse().unwrap(),
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

/// `path` gzipped and zstd-compressed, beside it.
fn compressed(path: &Path) -> [PathBuf; 2] {
    let bytes = std::fs::read(path).unwrap();
    let gz = path.with_extension("gzipped");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&bytes).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let zst = path.with_extension("zstd");
    std::fs::write(
        &zst,
        ruzstd::encoding::compress_to_vec(&bytes[..], ruzstd::encoding::CompressionLevel::Fastest),
    )
    .unwrap();
    [gz, zst]
}

fn stdout(args: &[&str], input: &Path) -> String {
    let out = ml()
        .args(args)
        .arg(input)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn compressed_captures_and_csvs_read_as_the_files_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    let rows = stdout(&["sniff", "-", "-r"], &pcap);
    assert_eq!(rows.lines().count(), 301);
    for packed in compressed(&pcap) {
        assert_eq!(
            stdout(&["sniff", "-", "-r"], &packed),
            rows,
            "{}",
            packed.display()
        );
        let detect = stdout(&["detect", "--top-n", "3"], &packed);
        assert_eq!(detect, stdout(&["detect", "--top-n", "3"], &pcap));
        let run = stdout(&["run", "-q", "--warmup", "100", "--read"], &packed);
        assert!(run.contains("Summary: 300 records"), "{run}");
    }
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, &rows).unwrap();
    let scores = stdout(&["detect", "--top-n", "5"], &csv);
    for packed in compressed(&csv) {
        assert_eq!(stdout(&["detect", "--top-n", "5"], &packed), scores);
    }
}

#[test]
fn a_damaged_compressed_capture_keeps_the_packets_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    for packed in compressed(&pcap) {
        let mut bytes = std::fs::read(&packed).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&packed, bytes).unwrap();
        let out = ml()
            .args(["sniff", "-", "-r"])
            .arg(&packed)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The packets before the damage are kept, with a warning (as for
        // a corrupt record of a plain capture). Zstandard decodes whole
        // blocks (up to 128 KiB): a file of one block cut short gives
        // nothing to keep, and is then refused in one sentence.
        if packed.extension().is_some_and(|e| e == "zstd") && out.status.code() == Some(1) {
            assert!(
                stderr.starts_with("Error: ") && stderr.contains("not a valid Zstandard stream"),
                "{stderr}"
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        // The damage shows as a cut stream, or as the garbage it decoded to.
        assert!(
            stderr.starts_with("Warning: ") && stderr.contains("packets before it were read"),
            "{stderr}"
        );
        let kept = String::from_utf8_lossy(&out.stdout).lines().count() - 1;
        assert!(kept > 0 && kept < 300, "{kept} rows kept");
    }
}

/// A capture of `n` frames starting at `t0_ms`, as classic pcap.
fn capture_at(path: &Path, t0_ms: u64, n: usize) {
    write_pcap(
        path,
        (0..n).map(|i| {
            let frame = FrameSpec::new(
                "10.20.0.2".parse().unwrap(),
                "10.20.0.1".parse().unwrap(),
                Transport::Udp {
                    src: 40000 + i as u16,
                    dst: 53,
                },
            )
            .payload(40)
            .build();
            (
                Duration::from_millis(1_700_000_000_000 + t0_ms + i as u64),
                frame,
            )
        }),
    );
}

/// A folder of rotated captures (one of them compressed) reads as one
/// capture in the order of their first packets, whatever their names.
#[test]
fn a_folder_of_captures_reads_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("rotated");
    std::fs::create_dir(&folder).unwrap();
    capture_at(&folder.join("b.pcap"), 0, 50);
    capture_at(&folder.join("a.pcap"), 1000, 30);
    capture_at(&dir.path().join("c.pcap"), 2000, 20);
    let [gz, _] = compressed(&dir.path().join("c.pcap"));
    std::fs::rename(gz, folder.join("0-last.pcap.gz")).unwrap();
    std::fs::write(folder.join(".hidden"), "not read").unwrap();
    let rows = stdout(&["sniff", "-", "-r"], &folder);
    let times: Vec<f64> = rows
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 100, "{rows}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "in time order");
    let detect = stdout(&["detect", "--top-n", "0"], &folder);
    assert!(detect.contains("of 100 packets flagged"), "{detect}");
    // A file of another format is refused in one sentence.
    std::fs::write(folder.join("notes.txt"), "hello").unwrap();
    ml().args(["sniff", "-", "-r"])
        .arg(&folder)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "notes.txt is not a pcap or pcapng capture: every file in the folder",
        ));
}

/// `-r` given several times reads the captures in the order of their
/// first packets, whatever the order they were named in; stdin cannot be
/// one of them.
#[test]
fn several_captures_read_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let (early, late) = (dir.path().join("early.pcap"), dir.path().join("late.pcap"));
    capture_at(&late, 5000, 20);
    capture_at(&early, 0, 30);
    let output = ml()
        .args(["sniff", "-", "-r"])
        .arg(&late)
        .arg("-r")
        .arg(&early)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let rows = String::from_utf8(output.stdout).unwrap();
    let times: Vec<f64> = rows
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 50, "{rows}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "in time order");
    let run = ml()
        .args(["run", "--warmup", "10", "-q", "-r"])
        .arg(&late)
        .arg("-r")
        .arg(&early)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("Summary: 50 records"),
        "{run:?}"
    );
    ml().args(["sniff", "-", "-r", "-", "-r"])
        .arg(&early)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "`-` (stdin) cannot be one of several inputs",
        ));
}

/// A folder of more captures than the process may hold open at once reads
/// whole: each file is opened when its turn comes.
#[test]
fn a_folder_of_many_captures_holds_one_open_at_a_time() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..100 {
        capture_at(&dir.path().join(format!("{i:03}.pcap")), i * 10, 2);
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ml-sniffing"));
    cmd.args(["sniff", "-", "-r"]).arg(dir.path());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the
    // parent; the limit applies to the child only.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().lines().count(),
        1 + 200,
        "a header and every packet"
    );
}
