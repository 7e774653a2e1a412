//! `classify`, `predict`, and `detect --save-model/--model` through the
//! binary, on CSVs the tests write themselves (and the CTU-13 scenario 8
//! Zeek flows from ../shared/data when present).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod support;
use tempfile::TempDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ml-sniffing"))
}

/// Runs the binary; returns (status code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Asserts a failure with one `Error: ...` line containing `want`.
fn fails_with(args: &[&str], want: &str) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 1, "args {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.starts_with("Error: ") && stderr.trim_end().lines().count() == 1,
        "one error line expected, got: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(want), "expected `{want}` in: {stderr}");
}

/// A deterministic pseudo-random sequence (no dependency on a crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Flows whose class follows from protocol and size: `scan` (tcp, tiny),
/// `dns` (udp), `web` (tcp, large); an identifier column, a text column
/// and a few empty byte counts.
fn flows_csv(dir: &Path, name: &str, rows: usize, seed: u64) -> PathBuf {
    let mut rng = Lcg(seed);
    let mut text = String::from("uid,proto,bytes,duration,state,label\n");
    for i in 0..rows {
        let (proto, bytes, state, label) = match rng.below(3) {
            0 => ("tcp", rng.below(60), "S0", "scan"),
            1 => ("udp", 40 + rng.below(400), "SF", "dns"),
            _ => ("tcp", 800 + rng.below(5000), "SF", "web"),
        };
        let bytes = if i % 37 == 5 {
            String::new()
        } else {
            bytes.to_string()
        };
        let duration = rng.below(1000) as f64 / 100.0;
        text.push_str(&format!(
            "C{seed}x{i},{proto},{bytes},{duration},{state},{label}\n"
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (headers, rows)
}

#[test]
fn classify_prints_metrics_report_and_confusion_matrix_in_order() {
    let dir = TempDir::new().unwrap();
    let input = flows_csv(dir.path(), "flows.csv", 600, 1);
    let (code, stdout, stderr) = run(&[
        "classify",
        s(&input),
        "--label-column",
        "label",
        "--exclude-columns",
        "uid",
        "--n-estimators",
        "30",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // 600 rows, 30% test: ceil(180) test rows, 420 training rows.
    assert!(
        lines[0].starts_with("Trained on 420 rows, tested on 180 rows"),
        "{stdout}"
    );
    assert_eq!(lines[1], "Evaluation metrics:");
    let keys = ["accuracy", "macro_precision", "macro_recall", "macro_f1"];
    for (i, key) in keys.iter().enumerate() {
        let (k, v) = lines[2 + i].trim().split_once(": ").unwrap();
        assert_eq!(k, *key);
        assert_eq!(v.len(), 5, "3 decimals: {v}");
        // The classes are separable: every figure is high.
        assert!(v.parse::<f64>().unwrap() > 0.95, "{k} = {v}");
    }
    assert_eq!(lines[6], "");
    assert_eq!(lines[7], "Detailed classification report:");
    for word in ["precision", "recall", "f1-score", "support"] {
        assert!(lines[8].contains(word), "{}", lines[8]);
    }
    let labels: Vec<&str> = lines[10..16]
        .iter()
        .map(|l| l.trim().split("  ").next().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "dns",
            "scan",
            "web",
            "accuracy",
            "macro avg",
            "weighted avg"
        ]
    );
    // Supports of the three classes add up to the 180 test rows.
    let support: u64 = lines[10..13]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(support, 180);
    assert_eq!(lines[16], "");
    assert_eq!(lines[17], "Confusion matrix:");
    assert!(lines[18].contains("true \\ predicted"));
    for (row, name) in lines[20..23].iter().zip(["dns", "scan", "web"]) {
        assert_eq!(row.split_whitespace().next(), Some(name));
    }
}

#[test]
fn json_gives_the_same_figures() {
    let dir = TempDir::new().unwrap();
    let input = flows_csv(dir.path(), "flows.csv", 400, 2);
    let args = [
        "classify",
        s(&input),
        "--label-column",
        "label",
        "--exclude-columns",
        "uid",
        "--n-estimators",
        "20",
    ];
    let (code, text, _) = run(&args);
    assert_eq!(code, 0);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, json, stderr) = run(&json_args);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON object");
    for key in ["accuracy", "macro_precision", "macro_recall", "macro_f1"] {
        let shown = format!("  {key}: {:.3}", v[key].as_f64().unwrap());
        assert!(text.contains(&shown), "{shown} not in {text}");
    }
    assert_eq!(v["train_rows"], 280);
    assert_eq!(v["test_rows"], 120);
    let report = v["classification_report"].as_array().unwrap();
    assert_eq!(report.len(), 3);
    assert_eq!(report[0]["class"], "dns");
    let matrix = v["confusion_matrix"]["rows_true_columns_predicted"]
        .as_array()
        .unwrap();
    let total: u64 = matrix
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 120);
    // Support = row sums of the confusion matrix.
    for (row, class) in matrix.iter().zip(report) {
        let sum: u64 = row
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(class["support"].as_u64().unwrap(), sum);
    }
}

#[test]
fn bad_inputs_each_give_one_clear_error() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let good = flows_csv(d, "flows.csv", 100, 3);
    fails_with(
        &["classify", s(&good), "--label-column", "class"],
        "has no label column `class` (its columns are: uid, proto, bytes, duration, state, label)",
    );
    let one = write(d, "one.csv", "a,label\n1,x\n2,x\n3,x\n");
    fails_with(
        &["classify", s(&one), "--label-column", "label"],
        "the label column `label` holds only one class (`x`)",
    );
    // 98 rows of `a`, 2 of `b`: a 10% test split leaves `b` no test row.
    let mut text = String::from("v,label\n");
    for i in 0..100 {
        text.push_str(&format!("{i},{}\n", if i < 98 { "a" } else { "b" }));
    }
    let rare = write(d, "rare.csv", &text);
    fails_with(
        &[
            "classify",
            s(&rare),
            "--label-column",
            "label",
            "--test-size",
            "0.1",
        ],
        "the test split gets no row of the class `b` (2 rows in all)",
    );
    let single = write(d, "single.csv", "v,label\n1,a\n2,a\n3,b\n4,a\n");
    fails_with(
        &["classify", s(&single), "--label-column", "label"],
        "the class `b` has only 1 row",
    );
    let nan = write(d, "nan.csv", "v,w,label\n1,2,a\nNaN,3,b\n2,4,a\n3,5,b\n");
    fails_with(
        &["classify", s(&nan), "--label-column", "label"],
        "line 3, column `v`: `NaN` is not a finite number",
    );
    let empty_label = write(d, "el.csv", "v,label\n1,a\n2,\n3,b\n");
    fails_with(
        &["classify", s(&empty_label), "--label-column", "label"],
        "line 3: the label column `label` is empty",
    );
    // An empty cell in a column named with --feature-columns of numbers is
    // a missing value, but a NaN there is refused like anywhere else.
    fails_with(
        &[
            "classify",
            s(&good),
            "--label-column",
            "label",
            "--feature-columns",
            "bytes,label",
        ],
        "the label column `label` is also listed in --feature-columns",
    );
    fails_with(
        &[
            "classify",
            s(&good),
            "--label-column",
            "label",
            "--exclude-columns",
            "nothing",
        ],
        "--exclude-columns names `nothing`, which the input does not have",
    );
    fails_with(
        &[
            "classify",
            s(&good),
            "--label-column",
            "label",
            "--test-size",
            "1.5",
        ],
        "--test-size must be a fraction in (0, 1), got 1.5",
    );
    fails_with(
        &[
            "classify",
            s(&good),
            "--label-column",
            "label",
            "--n-estimators",
            "0",
        ],
        "--n-estimators must be from 1 to 10000",
    );
    let packets = write(
        d,
        "packets.csv",
        "timestamp,source_ip,destination_ip,protocol,length,bad\n\
         1.0,10.0.0.1,10.0.0.2,tcp,60,0\n2.0,10.0.0.2,10.0.0.1,udp,80,1\n",
    );
    fails_with(
        &["classify", s(&packets), "--label-column", "length"],
        "the label column `length` is also an input of the `default` packet features",
    );
}

#[test]
fn test_file_mode_trains_on_all_rows_and_refuses_unknown_labels() {
    let dir = TempDir::new().unwrap();
    let train = flows_csv(dir.path(), "train.csv", 300, 4);
    let test = flows_csv(dir.path(), "test.csv", 90, 5);
    let (code, stdout, stderr) = run(&[
        "classify",
        s(&train),
        "--label-column",
        "label",
        "--exclude-columns",
        "uid",
        "--test-file",
        s(&test),
        "--n-estimators",
        "20",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["train_rows"], 300);
    assert_eq!(v["test_rows"], 90);
    assert!(v["accuracy"].as_f64().unwrap() > 0.95);
    let odd = write(
        dir.path(),
        "odd.csv",
        "uid,proto,bytes,duration,state,label\nX,tcp,10,1.0,S0,worm\n",
    );
    fails_with(
        &[
            "classify",
            s(&train),
            "--label-column",
            "label",
            "--test-file",
            s(&odd),
        ],
        "line 2: the label `worm` never occurs in the training rows",
    );
}

#[test]
fn saved_classifier_predicts_new_csv_with_columns_in_any_order() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let train = flows_csv(d, "train.csv", 400, 6);
    let model = d.join("flows.model");
    let (code, stdout, stderr) = run(&[
        "classify",
        s(&train),
        "--label-column",
        "label",
        "--exclude-columns",
        "uid",
        "--n-estimators",
        "25",
        "--save-model",
        s(&model),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("Model saved to {}", model.display())));

    let new = flows_csv(d, "new.csv", 150, 7);
    let out = d.join("pred.csv");
    let (code, stdout, stderr) = run(&[
        "predict",
        "--model",
        s(&model),
        s(&new),
        "--output",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("Predictions for 150 rows written to"),
        "{stdout}"
    );
    let (headers, rows) = read_csv(&out);
    assert_eq!(
        &headers[6..],
        [
            "prediction",
            "probability_dns",
            "probability_scan",
            "probability_web"
        ]
    );
    assert_eq!(rows.len(), 150);
    let right = rows.iter().filter(|r| r[6] == r[5]).count();
    assert!(right > 140, "{right} of 150 predicted right");
    for r in &rows {
        let p: Vec<f64> = r[7..].iter().map(|x| x.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        // The prediction is the most probable class.
        let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(r[6], ["dns", "scan", "web"][best]);
    }

    // Columns reordered, the label gone, an unseen state value: same
    // predictions for the same rows (features are found by name).
    let mut text = String::from("state,duration,bytes,proto,uid\n");
    for (i, r) in rows.iter().enumerate() {
        let state = if i % 10 == 0 { "REJ" } else { r[4].as_str() };
        text.push_str(&format!("{state},{},{},{},{}\n", r[3], r[2], r[1], r[0]));
    }
    let shuffled = write(d, "shuffled.csv", &text);
    let out2 = d.join("pred2.csv");
    let (code, _, stderr) = run(&[
        "predict",
        "--model",
        s(&model),
        s(&shuffled),
        "--output",
        s(&out2),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (_, rows2) = read_csv(&out2);
    for (i, (a, b)) in rows.iter().zip(&rows2).enumerate() {
        if i % 10 != 0 {
            assert_eq!(a[6..], b[5..], "row {i}: same inputs, same prediction");
        }
    }

    // Errors: a missing column, a truncated model, another format version.
    let lacking = write(d, "lacking.csv", "proto,bytes\ntcp,10\n");
    fails_with(
        &[
            "predict",
            "--model",
            s(&model),
            s(&lacking),
            "--output",
            s(&d.join("x.csv")),
        ],
        "lacking.csv does not fit the model in",
    );
    fails_with(
        &[
            "predict",
            "--model",
            s(&model),
            s(&lacking),
            "--output",
            s(&d.join("x.csv")),
        ],
        "the input has no column `duration`, `state`",
    );
    assert!(!d.join("x.csv").exists(), "no partial output");
    let bytes = std::fs::read(&model).unwrap();
    let cut = write(d, "cut.model", "");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    fails_with(
        &[
            "predict",
            "--model",
            s(&cut),
            s(&new),
            "--output",
            s(&d.join("x.csv")),
        ],
        "cut.model is damaged (truncated or corrupted)",
    );
    let mut other = bytes.clone();
    other[8] = 9;
    let other_path = d.join("other.model");
    std::fs::write(&other_path, other).unwrap();
    fails_with(
        &[
            "predict",
            "--model",
            s(&other_path),
            s(&new),
            "--output",
            s(&d.join("x.csv")),
        ],
        "other.model was written by format version 9; this ml-sniffing reads version 1",
    );
    fails_with(
        &[
            "predict",
            "--model",
            s(&new),
            s(&new),
            "--output",
            s(&d.join("x.csv")),
        ],
        "new.csv is not an ml-sniffing model file",
    );
    fails_with(
        &["detect", s(&new), "--model", s(&model)],
        "holds a Random Forest classifier; detect needs an Isolation Forest",
    );
}

/// Packets with an ordinary mix and a few odd ones.
fn packets_csv(dir: &Path, name: &str, rows: usize, seed: u64) -> PathBuf {
    let mut rng = Lcg(seed);
    let mut text = String::from("timestamp,source_ip,destination_ip,protocol,length\n");
    for i in 0..rows {
        let (proto, len) = if i % 40 == 39 {
            ("udp", 1400 + rng.below(100))
        } else {
            ("tcp", 60 + rng.below(20))
        };
        text.push_str(&format!(
            "{}.{:06},10.0.0.{},10.0.1.{},{proto},{len}\n",
            1_700_000_000 + i as u64,
            rng.below(1_000_000),
            1 + rng.below(5),
            1 + rng.below(5)
        ));
    }
    write(dir, name, &text)
}

#[test]
fn detect_saved_model_scores_like_the_fitting_run() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let input = packets_csv(d, "p.csv", 400, 8);
    let model = d.join("if.model");
    let fitted = d.join("fitted.csv");
    let (code, stdout, stderr) = run(&[
        "detect",
        s(&input),
        "--output",
        s(&fitted),
        "--save-model",
        s(&model),
        "--n-estimators",
        "50",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Model saved to"), "{stdout}");
    let loaded = d.join("loaded.csv");
    let (code, stdout2, stderr) = run(&[
        "detect",
        s(&input),
        "--output",
        s(&loaded),
        "--model",
        s(&model),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read(&fitted).unwrap(),
        std::fs::read(&loaded).unwrap(),
        "same output file from the saved model"
    );
    // The same report, apart from the output file's name.
    assert_eq!(
        stdout
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("Model saved"))
            .collect::<Vec<_>>(),
        stdout2.lines().skip(1).collect::<Vec<_>>()
    );

    // predict with the Isolation Forest: same scores, in input order.
    let out = d.join("pred.csv");
    let (code, _, stderr) = run(&[
        "predict",
        "--model",
        s(&model),
        s(&input),
        "--output",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (h, fitted_rows) = read_csv(&fitted);
    let score_col = h.iter().position(|c| c == "anomaly_score").unwrap();
    // detect writes date-times and sorts by score; key rows on addresses,
    // length and score.
    let key = |r: &[String], score: &str| format!("{} {} {} {score}", r[1], r[2], r[4]);
    let scored: HashSet<String> = fitted_rows.iter().map(|r| key(r, &r[score_col])).collect();
    let (_, input_rows) = read_csv(&input);
    let (ph, pred_rows) = read_csv(&out);
    assert_eq!(&ph[5..], ["anomaly_score", "is_anomaly"]);
    assert_eq!(pred_rows.len(), input_rows.len());
    for (p, i) in pred_rows.iter().zip(&input_rows) {
        assert_eq!(p[..5], i[..5], "input order kept");
        assert!(
            scored.contains(&key(p, &p[5])),
            "row {p:?} scored differently"
        );
    }

    // A CSV without the packet columns does not fit the packet model.
    let other = flows_csv(d, "flows.csv", 10, 9);
    fails_with(
        &["detect", s(&other), "--model", s(&model)],
        "flows.csv does not fit the model in",
    );
}

/// The real labelled Zeek flows (CTU-13 scenario 8), when present.
#[test]
fn ctu008_zeek_flows_are_classified_accurately() {
    let Some(data) = support::data::shared_data() else {
        return;
    };
    let file = data.join("labelled/ctu008_zeek_conn.csv");
    if !file.exists() {
        eprintln!("skipped: {} not found", file.display());
        return;
    }
    let (code, stdout, stderr) = run(&[
        "classify",
        s(&file),
        "--label-column",
        "label",
        "--exclude-columns",
        "uid,detailedlabel,ts",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.95, "accuracy {accuracy}");
    // 5,663 rows, 30% test.
    assert_eq!(v["test_rows"], 1699);
    assert_eq!(v["train_rows"], 3964);
}

/// A numeric column with a stray cell (`0x10`) becomes categories, and the
/// user is told which cell did it.
#[test]
fn a_stray_cell_in_a_numeric_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("size,label\n");
    for i in 0..40 {
        s.push_str(&format!(
            "{},{}\n",
            i * 10,
            if i % 2 == 0 { "a" } else { "b" }
        ));
    }
    s.push_str("0x10,a\n");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, s).unwrap();
    Command::cargo_bin("ml-sniffing")
        .unwrap()
        .arg("classify")
        .arg(&input)
        .args(["--label-column", "label"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "Warning: column `size` is taken as categories, not numbers, because of 1 cell \
             that is not a number (the first on line 42: `0x10`)",
        ));
}
