//! Random Forest: fit time and prediction rate on one core for 200 trees on
//! a generated 50,000 x 11 problem, a single tree against linfa-trees,
//! linfa-ensemble's forest, and accuracy / macro F1 on a held-out problem;
//! scikit-learn's RandomForestClassifier on the same CSVs side by side when
//! python3 has it.
//!
//! The measuring itself is `userspace/examples/rforest_bench.rs` (built in
//! release mode); this file runs it and scikit-learn and prints the ratios.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::BenchOptions;
use crate::util;

/// scikit-learn on the CSVs the driver wrote; prints one JSON object.
const SKLEARN: &str = r#"
import json, sys, time
import numpy as np, pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score

d = sys.argv[1]
def load(name):
    df = pd.read_csv(f"{d}/{name}")
    return df.drop(columns=["label"]).to_numpy(np.float32), df["label"].to_numpy()

X, y = load("bench_train.csv")
Xt, yt = load("bench_test.csv")
m = RandomForestClassifier(n_estimators=200, random_state=42, n_jobs=1)
t = time.perf_counter(); m.fit(X, y); fit = time.perf_counter() - t
t = time.perf_counter(); p = m.predict(Xt); pred = time.perf_counter() - t
t = time.perf_counter(); m.predict_proba(Xt); proba = time.perf_counter() - t
out = {"fit_seconds": fit, "predict_per_second": len(Xt) / pred,
       "predict_proba_per_second": len(Xt) / proba,
       "bench_accuracy": accuracy_score(yt, p)}
Xq, yq = load("quality_train.csv")
Xqt, yqt = load("quality_test.csv")
q = RandomForestClassifier(n_estimators=200, random_state=42).fit(Xq, yq).predict(Xqt)
out["quality_accuracy"] = accuracy_score(yqt, q)
out["quality_macro_f1"] = f1_score(yqt, q, average="macro")
print(json.dumps(out))
"#;

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn sklearn_available() -> bool {
    Command::new("python3")
        .args(["-c", "import sklearn, pandas"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(_options: &BenchOptions) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ml-sniffing-rforest-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path) -> Result<()> {
    let shown = dir.to_str().context("temporary folder is not UTF-8")?;
    util::cargo(&[
        "run",
        "--quiet",
        "--release",
        "--locked",
        "-p",
        "ml-sniffing",
        "--example",
        "rforest_bench",
        "--",
        shown,
    ])?;
    let ours = read_json(&dir.join("ours.json"))?;
    if !sklearn_available() {
        println!(
            "\nscikit-learn comparison skipped: `python3 -c 'import sklearn, pandas'` failed."
        );
        return Ok(());
    }
    let output = Command::new("python3")
        .args(["-c", SKLEARN, shown])
        .output()
        .context("cannot start python3")?;
    if !output.status.success() {
        anyhow::bail!(
            "scikit-learn run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let sk: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let get = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("\n| side by side (one core) | ml-sniffing | scikit-learn | ratio |");
    println!("|---|---|---|---|");
    let (of, sf) = (get(&ours, "fit_seconds"), get(&sk, "fit_seconds"));
    println!(
        "| fit 200 trees, 50,000 x 11 | {of:.2} s | {sf:.2} s | {:.1}x faster |",
        sf / of
    );
    let (op, sp) = (
        get(&ours, "predict_per_second"),
        get(&sk, "predict_per_second"),
    );
    println!(
        "| predict (classes) | {op:.0} samples/s | {sp:.0} samples/s | {:.1}x faster |",
        op / sp
    );
    let (opp, spp) = (
        get(&ours, "predict_proba_per_second"),
        get(&sk, "predict_proba_per_second"),
    );
    println!(
        "| predict_proba (every tree) | {opp:.0} samples/s | {spp:.0} samples/s | {:.1}x faster |",
        opp / spp
    );
    for (name, key) in [
        ("accuracy, 50,000 fresh rows", "bench_accuracy"),
        ("quality problem: accuracy", "quality_accuracy"),
        ("quality problem: macro F1", "quality_macro_f1"),
    ] {
        let (o, s) = (get(&ours, key), get(&sk, key));
        println!("| {name} | {o:.4} | {s:.4} | {:+.4} |", o - s);
    }
    let quality_ok = (get(&ours, "quality_accuracy") - get(&sk, "quality_accuracy")).abs() <= 0.01
        && (get(&ours, "quality_macro_f1") - get(&sk, "quality_macro_f1")).abs() <= 0.01;
    println!(
        "\nTargets: fit faster than scikit-learn on one core: {}; predict >= 1,000,000 samples/s: {}; \
         quality within 0.01 of scikit-learn: {}.",
        if of < sf { "met" } else { "MISSED" },
        if op >= 1e6 { "met" } else { "MISSED" },
        if quality_ok { "met" } else { "MISSED" },
    );
    Ok(())
}
