//! `detect --report` and `classify --report`: self-contained HTML files,
//! opened in a real browser (headless Chromium, installed with apt when
//! missing and root) to check that the charts render with the numbers the
//! commands print.

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use support::browser::{chromium, file_url, rendered};

fn ml() -> Command {
    Command::cargo_bin("ml-sniffing").expect("binary built")
}

/// Ordinary rows and a few outliers, with a label for classify.
fn packet_csv(dir: &Path) -> PathBuf {
    let mut s = String::from("timestamp,source_ip,destination_ip,protocol,length,label\n");
    for i in 0..400 {
        let t = 1_712_589_010.0 + i as f64 * 0.05;
        if i % 40 == 39 {
            s.push_str(&format!(
                "{t:.6},203.0.113.{},10.0.0.1,udp,{},odd\n",
                i % 250,
                1400 + i % 50
            ));
        } else {
            s.push_str(&format!(
                "{t:.6},10.0.0.{},10.0.0.1,tcp,{},usual\n",
                2 + i % 3,
                60 + i % 7
            ));
        }
    }
    let path = dir.join("packets.csv");
    std::fs::write(&path, s).unwrap();
    path
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn detect_report_shows_scores_time_sources_and_features() {
    let dir = tempfile::tempdir().unwrap();
    let input = packet_csv(dir.path());
    let report = dir.path().join("detect.html");
    let out = ml()
        .arg("detect")
        .arg(&input)
        .args(["--top-n", "0", "--report"])
        .arg(&report)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    // "20 of 400 packets flagged as anomalous".
    let flagged: usize = out
        .lines()
        .find_map(|l| {
            l.split(" of 400 packets flagged")
                .next()
                .filter(|_| l.contains(" of 400 "))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out.contains(&format!("Report written to {}", report.display())));
    let html = std::fs::read_to_string(&report).unwrap();
    for id in ["scores", "time", "sources"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert_eq!(count(&html, "<section id=\"feature-"), 4, "four features");
    assert!(!html.contains("<script"), "self-contained, no script");
    assert!(html.contains(&format!("anomalies ({flagged})")));
    assert!(html.contains(&format!("ordinary ({})", 400 - flagged)));
    assert!(html.contains("203.0.113."), "the outliers' sources");

    let Some(browser) = chromium() else { return };
    let dom = rendered(&browser, &file_url(&report), 1000, &[]);
    assert_eq!(count(&dom, "<svg"), 7, "every chart renders as SVG");
    assert!(dom.contains(&format!("anomalies ({flagged})")));
    assert!(dom.contains("ml-sniffing detect report"));
}

#[test]
fn classify_report_shows_the_confusion_matrix_scores_and_importances() {
    let dir = tempfile::tempdir().unwrap();
    let input = packet_csv(dir.path());
    let report = dir.path().join("classify.html");
    let out = ml()
        .arg("classify")
        .arg(&input)
        .args(["--label-column", "label", "--report"])
        .arg(&report)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Report written to"), "{out}");
    let html = std::fs::read_to_string(&report).unwrap();
    for id in ["confusion", "per-class", "report", "importance"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    // The test split: 30 % of 400 rows, 120; every count of the matrix is
    // drawn in its cell and the supports add up.
    assert!(html.contains("<td>accuracy</td>"));
    assert!(html.contains("<td>120</td>"), "{html}");
    let Some(browser) = chromium() else { return };
    let dom = rendered(&browser, &file_url(&report), 1000, &[]);
    assert_eq!(count(&dom, "<svg"), 3);
    assert!(dom.contains("Confusion matrix") && dom.contains("usual") && dom.contains("odd"));
}
