//! `detect` from the command line: outputs, and one clear error for each way
//! an input can be unusable (never a panic, never a partial output file).

mod support;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use support::data::shared_data;

fn ml() -> Command {
    Command::cargo_bin("ml-sniffing").expect("binary built")
}

/// A packet CSV with a cluster of ordinary rows and a few outliers.
fn packet_csv(rows: usize) -> String {
    let mut s = String::from("timestamp,source_ip,destination_ip,protocol,length\n");
    for i in 0..rows {
        let t = 1_712_589_010.0 + i as f64 * 0.01;
        if i % 40 == 39 {
            s.push_str(&format!(
                "{t:.6},203.0.113.{},10.0.0.1,udp,{}\n",
                i % 250,
                1400 + i % 50
            ));
        } else {
            s.push_str(&format!("{t:.6},10.0.0.2,10.0.0.1,tcp,{}\n", 60 + i % 7));
        }
    }
    s
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Runs `detect` on `content`, expecting failure with exactly `message`,
/// and checks that no output file was left behind.
fn fails_with(content: &[u8], message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", content);
    let out = dir.path().join("out.csv");
    ml().arg("detect")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("Error: ").and(predicate::str::contains(message)));
    assert!(!out.exists(), "no output for a failed run");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only the input remains: {leftovers:?}");
}

#[test]
fn writes_every_row_sorted_with_seed_columns_and_flags_the_outliers() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", packet_csv(400));
    let out = dir.path().join("nested/scores.csv");
    // Outliers by their packets (lengths, protocol), not by behaviour: the
    // first version's feature set.
    let assert = ml()
        .args(["detect", "--features", "packet", "--top-n", "3", "--output"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.starts_with(&format!(
        "Anomaly scores written to {}\nMost anomalous packets:\n",
        out.display()
    )));
    assert!(
        stdout.contains("20 of 400 packets flagged as anomalous"),
        "{stdout}"
    );
    // Header line + 3 rows + the summary after the first two lines.
    let table: Vec<&str> = stdout.lines().skip(2).collect();
    assert!(table[0].contains("rank") && table[0].contains("anomaly_score"));
    assert_eq!(
        table.iter().filter(|l| l.contains("203.0.113.")).count(),
        3,
        "{stdout}"
    );

    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &headers[..18],
        [
            "timestamp",
            "source_ip",
            "destination_ip",
            "protocol",
            "length",
            "hour",
            "day_of_week",
            "minute",
            "source_ip_int",
            "destination_ip_int",
            "source_is_private",
            "destination_is_private",
            "protocol_code",
            "flow_id",
            "flow_packet_count",
            "flow_avg_length",
            "ip_protocol",
            "flow_packets",
        ]
    );
    assert_eq!(
        &headers[headers.len() - 2..],
        ["anomaly_score", "is_anomaly"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 400);
    let score = |r: &csv::StringRecord| r[headers.len() - 2].parse::<f64>().unwrap();
    assert!(
        rows.windows(2).all(|w| score(&w[0]) <= score(&w[1])),
        "sorted ascending"
    );
    let flagged: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[headers.len() - 1] == "True")
        .collect();
    assert_eq!(flagged.len(), 20);
    assert!(rows
        .iter()
        .all(|r| matches!(&r[headers.len() - 1], "True" | "False")));
    // The ten planted outliers are all among the flagged rows.
    assert_eq!(
        flagged
            .iter()
            .filter(|r| r[1].starts_with("203.0.113."))
            .count(),
        10
    );
}

#[test]
fn same_seed_same_output_other_seed_other_scores() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", packet_csv(300));
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        ml().args(["detect", "--random-state", seed, "--output"])
            .arg(&out)
            .arg(&input)
            .assert()
            .success();
        std::fs::read_to_string(out).unwrap()
    };
    assert_eq!(run("42", "a.csv"), run("42", "b.csv"));
    assert_ne!(run("42", "a.csv"), run("7", "c.csv"));
}

#[test]
fn extra_columns_are_carried_and_feature_columns_work_on_any_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv =
        String::from("sensor,reading,timestamp,source_ip,destination_ip,protocol,length,note\n");
    for i in 0..100 {
        let reading = if i == 50 { 9999.0 } else { (i % 10) as f64 };
        csv.push_str(&format!(
            "s{},{reading},{}.5,10.0.0.1,10.0.0.2,tcp,60,\"a, b\"\n",
            i % 3,
            1000 + i
        ));
    }
    let input = write(dir.path(), "in.csv", &csv);
    let out = dir.path().join("out.csv");
    ml().args([
        "detect",
        "--feature-columns",
        "reading",
        "--top-n",
        "1",
        "--output",
    ])
    .arg(&out)
    .arg(&input)
    .assert()
    .success()
    .stdout(predicate::str::contains("Most anomalous rows:").and(predicate::str::contains("9999")));
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        headers,
        [
            "sensor",
            "reading",
            "timestamp",
            "source_ip",
            "destination_ip",
            "protocol",
            "length",
            "note",
            "anomaly_score",
            "is_anomaly"
        ]
    );
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(&first[1], "9999");
    assert_eq!(&first[7], "a, b");

    // Packet features keep extra columns in input order, before the derived ones.
    ml().args(["detect", "--top-n", "0", "--output"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &headers[..9],
        [
            "sensor",
            "reading",
            "timestamp",
            "source_ip",
            "destination_ip",
            "protocol",
            "length",
            "note",
            "hour"
        ]
    );
}

#[test]
fn ipv6_addresses_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("timestamp,source_ip,destination_ip,protocol,length\n");
    for i in 0..50 {
        csv.push_str(&format!(
            "{}.0,2001:db8::{:x},fd00::1,ipv6-icmp,{}\n",
            100 + i,
            i + 1,
            70 + i % 3
        ));
    }
    let input = write(dir.path(), "in.csv", &csv);
    let out = dir.path().join("out.csv");
    ml().args(["detect", "--features", "seed", "--output"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let row = reader
        .records()
        .map(Result::unwrap)
        .find(|r| &r[1] == "2001:db8::1")
        .unwrap();
    // int(ip_address("2001:db8::1")) and fd00::1 is not private in the seed's definition.
    assert_eq!(&row[8], "42540766411282592856903984951653826561");
    assert_eq!(&row[11], "0");
}

#[test]
fn missing_columns_are_all_named() {
    fails_with(
        b"timestamp,src,length\n1,2,3\n",
        "the input is missing the required columns source_ip, destination_ip, protocol (it has: timestamp, src, length)",
    );
}

#[test]
fn unreadable_numbers_give_line_and_column() {
    fails_with(
        b"timestamp,source_ip,destination_ip,protocol,length\n1.0,10.0.0.1,10.0.0.2,tcp,60\n2.0,10.0.0.1,10.0.0.2,tcp,lots\n",
        "line 3, column `length`: `lots` is not a number",
    );
}

#[test]
fn empty_header_only_ragged_and_non_utf8_files() {
    fails_with(
        b"",
        "is empty: expected a CSV header line and at least one row",
    );
    fails_with(
        b"timestamp,source_ip,destination_ip,protocol,length\n",
        "has a header line but no data rows",
    );
    fails_with(
        b"timestamp,source_ip,destination_ip,protocol,length\n1,a,b,tcp\n",
        "line 2 has 4 fields but the header has 5",
    );
    fails_with(
        b"timestamp,source_ip,destination_ip,protocol,length\n1,\xff\xfe,b,tcp,60\n",
        "is not UTF-8 text (line 2, column `source_ip` holds other bytes)",
    );
}

#[test]
fn missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    ml().arg("detect")
        .arg(dir.path().join("nope.csv"))
        .assert()
        .code(1)
        .stderr(predicate::str::is_match("^Error: .*nope.csv does not exist\n$").unwrap());
    ml().arg("detect").arg(dir.path()).assert().code(1).stderr(
        predicate::str::is_match("^Error: .* is a directory with no capture in it: ").unwrap(),
    );
}

#[test]
fn bad_options_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", packet_csv(20));
    ml().args(["detect", "--contamination", "0.7"])
        .arg(&input)
        .assert()
        .code(1)
        .stderr("Error: contamination must be in the range (0, 0.5]\n");
    ml().args(["detect", "--n-estimators", "0"])
        .arg(&input)
        .assert()
        .code(1)
        .stderr(
            "Error: --n-estimators must be from 1 to 10000 (more trees change the scores by \
             less than their noise and cost memory), got 0\n",
        );
    ml().args(["detect", "--feature-columns", "nope"])
        .arg(&input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no column named `nope`"));
}

#[test]
fn contamination_auto_and_help_text() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", packet_csv(200));
    ml().args(["detect", "--contamination", "auto"])
        .arg(&input)
        .assert()
        .success()
        .stdout(predicate::str::contains("(contamination auto)"));
    ml().args(["detect", "--help"]).assert().success().stdout(
        predicate::str::contains("--top-n").and(predicate::str::contains("[default: 0.05]")),
    );
}

/// The original tool's own sample: 100 packets.
#[test]
fn seed_sample_flags_five_rows_with_the_seed_columns() {
    let Some(data) = shared_data() else { return };
    let input = data.join("seed/captured_packets.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    ml().args(["detect", "--features", "seed", "--output"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "5 of 100 packets flagged as anomalous",
        ));
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        headers,
        [
            "timestamp",
            "source_ip",
            "destination_ip",
            "protocol",
            "length",
            "hour",
            "day_of_week",
            "minute",
            "source_ip_int",
            "destination_ip_int",
            "source_is_private",
            "destination_is_private",
            "protocol_code",
            "flow_id",
            "flow_packet_count",
            "flow_avg_length",
            "anomaly_score",
            "is_anomaly"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 100);
    assert_eq!(rows.iter().filter(|r| &r[17] == "True").count(), 5);
    // Values pandas gives for the first input row (1712589010.595727,
    // 20.189.173.8 -> 192.168.1.79, tcp, 161): checked against the original.
    let first = rows
        .iter()
        .find(|r| r[0].starts_with("2024-04-08 15:10:10.595726967"))
        .unwrap();
    assert_eq!(
        first.iter().skip(5).take(8).collect::<Vec<_>>(),
        ["15", "0", "10", "347974920", "3232235855", "0", "1", "0"]
    );
    assert_eq!(&first[13], "20.189.173.8->192.168.1.79:tcp");
}

/// Ordinary request/response traffic of 20 clients for a minute, then one
/// new address sending SYNs to 300 ports of a server within a second.
fn scan_csv() -> String {
    let mut s = String::from(
        "timestamp,source_ip,destination_ip,protocol,length,source_port,destination_port,tcp_flags\n",
    );
    let t0 = 1_712_589_010.0;
    for i in 0..10_000u32 {
        let t = t0 + i as f64 * 0.006;
        let client = i % 20;
        let port = 40_000 + (i / 200) % 50;
        if i % 2 == 0 {
            s.push_str(&format!(
                "{t:.6},10.0.0.{},10.0.0.53,udp,{},{port},53,0\n",
                10 + client,
                70 + i % 9
            ));
        } else {
            s.push_str(&format!(
                "{t:.6},10.0.0.53,10.0.0.{},udp,{},53,{port},0\n",
                10 + client,
                120 + i % 31
            ));
        }
    }
    for p in 0..300u32 {
        let t = t0 + 60.5 + p as f64 * 0.003;
        s.push_str(&format!(
            "{t:.6},198.51.100.9,10.0.0.50,tcp,58,51000,{},2\n",
            1 + p
        ));
    }
    s
}

#[test]
fn alerts_group_a_scan_into_one_alert_with_eve_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "scan.csv", scan_csv());
    let eve = dir.path().join("eve.json");
    let out = ml()
        .arg("detect")
        .arg(&input)
        .args(["--top-n", "0", "--alerts", "--alert-rate", "0.01", "--eve"])
        .arg(&eve)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let opened: Vec<&str> = out.lines().filter(|l| l.contains(" opened ")).collect();
    assert!(!opened.is_empty(), "{out}");
    // Every alert is the scanner's (as its source, or its victim's).
    for line in out.lines().filter(|l| l.starts_with("ALERT #")) {
        assert!(
            line.contains("198.51.100.9") || line.contains("victim 10.0.0.50"),
            "an alert on ordinary traffic: {line}\n{out}"
        );
    }
    assert!(
        out.contains("closed  scan  source 198.51.100.9"),
        "the scan alert closes as a scan of its source:\n{out}"
    );
    assert!(out.contains("    why: "), "reasons are given:\n{out}");
    assert!(out.contains("Alerts: "), "{out}");

    let events: Vec<serde_json::Value> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every EVE line is JSON"))
        .collect();
    let alerts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert!(!alerts.is_empty());
    for a in &alerts {
        for field in [
            "timestamp",
            "src_ip",
            "dest_ip",
            "proto",
            "flow_id",
            "community_id",
        ] {
            assert!(!a[field].is_null(), "{field} in {a}");
        }
        assert!(a["ml"]["score"].as_f64().unwrap() < a["ml"]["threshold"].as_f64().unwrap());
        assert!(!a["ml"]["reasons"].as_array().unwrap().is_empty());
    }
    assert_eq!(events.last().unwrap()["event_type"], "stats");
}

#[test]
fn alerts_need_packet_features() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "scan.csv", scan_csv());
    ml().arg("detect")
        .arg(&input)
        .args(["--alerts", "--features", "seed"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--alerts needs the packet features",
        ));
    ml().arg("detect")
        .arg(&input)
        .args(["--alerts", "--alert-rate", "2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--alert-rate must be above 0"));
    ml().arg("detect")
        .arg(&input)
        .args(["--eve"])
        .arg(&input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("choose another --eve file"));
}

/// Values no packet has are reported as warnings, not taken silently, and
/// timestamp cells that are not epoch seconds are kept in the output.
#[test]
fn impossible_rows_are_warned_about_and_timestamps_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = packet_csv(60);
    s.push_str("1712589009.5,10.0.0.2,10.0.0.1,tcp,60\n"); // earlier
    s.push_str("2024-04-08T15:10:12Z,10.0.0.2,10.0.0.1,tcp,61\n"); // ISO text
    s.push_str("1712589011.0,10.0.0.2,10.0.0.1,tcp,-1\n");
    s.push_str("1712589011.1,10.0.0.2,10.0.0.1,tcp,60.5\n");
    s.push_str("1712589011.2,10.0.0.2,10.0.0.1,tcp,1e308\n");
    s.push_str("1712589011.3,fe80::1%eth0,10.0.0.1,udp,80\n");
    let input = write(dir.path(), "odd.csv", s);
    let out = dir.path().join("scores.csv");
    let assert = ml()
        .arg("detect")
        .arg(&input)
        .args(["--top-n", "0", "--output"])
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    for expected in [
        "Warning: 1 row out of time order",
        "the first on line 62",
        "Warning: 1 row with a timestamp that does not read",
        "Warning: 3 rows with a length no packet has",
        "the first on line 64",
        "Warning: 1 row with an address that does not read",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("2024-04-08T15:10:12Z,")),
        "the ISO timestamp is kept:\n{text}"
    );
    // A clean file gives no warning.
    let clean = write(dir.path(), "clean.csv", packet_csv(60));
    ml().arg("detect")
        .arg(&clean)
        .args(["--top-n", "0"])
        .assert()
        .success()
        .stderr(predicate::str::contains("Warning").not());
}

/// A huge cell is cut in the table on screen (its row still shown); the
/// output file keeps it whole.
#[test]
fn huge_cells_are_cut_on_screen_and_kept_in_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = packet_csv(40);
    let huge = "q".repeat(3_000_000);
    s.push_str(&format!("1712589011.0,10.0.0.2,10.0.0.1,{huge},60\n"));
    let input = write(dir.path(), "huge.csv", s);
    let out = dir.path().join("scores.csv");
    let assert = ml()
        .arg("detect")
        .arg(&input)
        .args(["--top-n", "41", "--output"])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains(&format!("{}…", "q".repeat(64))), "cut");
    assert!(stdout.len() < 100_000, "{} bytes on screen", stdout.len());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains(&huge.to_lowercase()),
        "kept whole in the file"
    );
}
