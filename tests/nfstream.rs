//! `flows --no-tcp-end` against NFStream itself (installed by the test into
//! a virtual environment) on every shared capture: the same flows (keys and
//! first-seen times) with the same statistics, column by column. The few
//! captures where the two differ on purpose (README, "Differences from
//! NFStream") are checked to differ in just that way.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ml-sniffing");

type Row = HashMap<String, String>;

fn read(path: &Path) -> (Vec<String>, Vec<Row>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

fn key(row: &Row, with_vlan: bool) -> String {
    let mut cols = vec!["src_ip", "src_port", "dst_ip", "dst_port", "protocol"];
    if with_vlan {
        cols.push("vlan_id");
    }
    cols.push("bidirectional_first_seen_ms");
    cols.iter()
        .map(|c| row[*c].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How one capture's flows compare.
#[derive(Default, Debug)]
struct Comparison {
    matched: usize,
    only_nfstream: Vec<Row>,
    only_ours: usize,
    /// Matched flows with a column that differs: (key, column, NFStream's, ours).
    unequal: Vec<(String, String, String, String)>,
}

fn compare(columns: &[String], theirs: &[Row], ours: &[Row], with_vlan: bool) -> Comparison {
    let mut by_key: HashMap<String, &Row> = ours.iter().map(|r| (key(r, with_vlan), r)).collect();
    assert_eq!(by_key.len(), ours.len(), "two of our flows share a key");
    let mut c = Comparison::default();
    for t in theirs {
        let k = key(t, with_vlan);
        let Some(o) = by_key.remove(&k) else {
            c.only_nfstream.push(t.clone());
            continue;
        };
        c.matched += 1;
        for col in columns {
            if col == "id" || (!with_vlan && col == "vlan_id") {
                continue;
            }
            let (a, b) = (t[col].as_str(), o[col].as_str());
            let equal = if col == "expiration_id" {
                // NFStream ends the flows left at the end of the input as idle.
                a == b || (a == "0" && b == "-1")
            } else {
                let (x, y): (f64, f64) =
                    (a.parse().unwrap_or(f64::NAN), b.parse().unwrap_or(f64::NAN));
                a == b || (x - y).abs() <= 1e-9 * x.abs().max(1.0)
            };
            if !equal {
                c.unequal.push((k.clone(), col.clone(), a.into(), b.into()));
            }
        }
    }
    c.only_ours = by_key.len();
    c
}

/// Differences documented in the README.
#[derive(Debug, Clone, Copy)]
enum Known {
    /// Frames NFStream reads as IP that are not (Cisco's 0x8903 frames):
    /// its extra flows hold only frames we report as not IP.
    NotIp,
    /// Frames cut shorter than their IP length, which we count as
    /// malformed: the same flows, NFStream's holding those frames too.
    Malformed,
    /// Two VLAN tags: our `vlan_id` is the outer tag, NFStream's the inner.
    OuterVlan,
}

const KNOWN: [(&str, Known); 5] = [
    ("ajp.pcap", Known::NotIp),
    ("telnet.pcap", Known::Malformed),
    ("http_origin_different_than_host.pcap", Known::OuterVlan),
    ("tls_change_cipher.pcap", Known::OuterVlan),
    ("zoom.pcap", Known::OuterVlan),
];

/// Our flows of `capture` into `out`, and the frames we counted as not IP.
fn our_flows(capture: &Path, out: &Path) -> u64 {
    let run = Command::new(BIN)
        .arg("flows")
        .arg(out)
        .arg("-r")
        .arg(capture)
        .arg("--no-tcp-end")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "flows failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let other = stdout
        .split_once(" other frames")
        .and_then(|(before, _)| before.rsplit_once('(').map(|(_, n)| n.to_string()))
        .unwrap_or_else(|| panic!("no count of other frames in {stdout:?}"));
    other.parse().unwrap()
}

fn packets(rows: &[Row]) -> u64 {
    rows.iter()
        .map(|r| r["bidirectional_packets"].parse::<u64>().unwrap())
        .sum()
}

#[test]
fn flows_equal_nfstreams_on_every_shared_capture() {
    let Some(data) = support::data::shared_data() else {
        return;
    };
    let mut captures: Vec<PathBuf> = Vec::new();
    for folder in ["pcap", "benign"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        files.sort();
        captures.extend(files);
    }
    assert!(
        captures.len() > 100,
        "too few shared captures: {}",
        captures.len()
    );
    let python = support::nfstream::python();
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/nfstream_flows.py");
    let status = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .args(&captures)
        .status()
        .unwrap();
    assert!(status.success(), "NFStream failed");

    let (mut flows, mut identical_captures) = (0usize, 0usize);
    let mut failures = Vec::new();
    for (n, capture) in captures.iter().enumerate() {
        let name = capture.file_name().unwrap().to_string_lossy().to_string();
        let (_, theirs) = read(&dir.path().join(format!("{n}.csv")));
        let ours_path = dir.path().join(format!("{n}.ours.csv"));
        let not_ip = our_flows(capture, &ours_path);
        let (columns, ours) = read(&ours_path);
        let exact = compare(&columns, &theirs, &ours, true);
        let known = KNOWN.iter().find(|(c, _)| *c == name).map(|(_, k)| *k);
        let same =
            exact.only_nfstream.is_empty() && exact.only_ours == 0 && exact.unequal.is_empty();
        flows += exact.matched;
        let problem = match (known, same) {
            (None, true) => {
                identical_captures += 1;
                None
            }
            (None, false) => Some(format!("{exact:?}")),
            (Some(k), true) => Some(format!("documented as differing ({k:?}) but identical")),
            (Some(Known::OuterVlan), false) => {
                let loose = compare(&columns, &theirs, &ours, false);
                let vlan_only = loose.only_nfstream.is_empty()
                    && loose.only_ours == 0
                    && loose.unequal.is_empty();
                (!vlan_only).then(|| format!("more than the VLAN tag differs: {loose:?}"))
            }
            (Some(Known::NotIp), false) => {
                let ok = exact.only_ours == 0
                    && exact.unequal.is_empty()
                    && packets(&exact.only_nfstream) <= not_ip;
                (!ok).then(|| format!("not only frames we call not IP ({not_ip}): {exact:?}"))
            }
            (Some(Known::Malformed), false) => {
                let extra = packets(&theirs) as i64 - packets(&ours) as i64;
                let ok = exact.only_nfstream.is_empty()
                    && exact.only_ours == 0
                    && extra > 0
                    && extra as u64 <= not_ip;
                (!ok).then(|| format!("not only the {not_ip} malformed frames: {exact:?}"))
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", capture.display()));
        }
    }
    eprintln!(
        "NFStream {}: {flows} flows matched on {} captures, {identical_captures} identical in \
         every column, {} differing as documented",
        support::nfstream::VERSION,
        captures.len(),
        KNOWN.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
