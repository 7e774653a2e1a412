//! End-to-end `detect` on a generated 1,000,000-row seed-format CSV (wall
//! time, peak memory), and the Isolation Forest scoring rate alone; with
//! the original Python tool and scikit-learn measured beside them when
//! python3 has pandas and scikit-learn.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::BenchOptions;
use crate::measure::{measure, Measured};
use crate::util;

pub fn run(options: &BenchOptions) -> Result<()> {
    util::cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "ml-sniffing",
        "--bin",
        "ml-sniffing",
    ])?;
    let bin = util::target_dir().join("release/ml-sniffing");
    let dir = util::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join(format!("seed-format-{}.csv", options.rows));
    if !csv.exists() {
        eprintln!("generating {} ...", csv.display());
        generate_csv(&csv, options.rows)?;
    }
    let out = dir.join("detect-out.csv");

    println!(
        "Input: {} rows, {:.1} MB ({}).\n",
        options.rows,
        mb(std::fs::metadata(&csv)?.len()),
        csv.display()
    );
    println!("| command | wall s | peak RSS MB |\n|---|---|---|");
    let mut ours = Vec::new();
    for extra in [&[][..], &["--features", "seed"][..]] {
        let mut cmd = Command::new(&bin);
        cmd.arg("detect")
            .arg(&csv)
            .arg("--output")
            .arg(&out)
            .args(extra);
        let m = measure(cmd)?;
        println!(
            "| `ml-sniffing detect --output` {} | {:.2} | {:.0} |",
            extra.join(" "),
            m.wall_secs,
            m.peak_rss_mb()
        );
        ours.push(m);
    }
    let python = python_with(&["pandas", "sklearn"]);
    if python && !options.no_python {
        let mut cmd = Command::new("python3");
        cmd.arg(util::root().join("xtask/python/seed_detect.py"))
            .arg(&csv)
            .arg(dir.join("python-out.csv"));
        let m = measure(cmd)?;
        println!("| original tool (pandas + scikit-learn, `xtask/python/seed_detect.py`) | {:.2} | {:.0} |", m.wall_secs, m.peak_rss_mb());
        let seed: &Measured = &ours[1];
        println!(
            "\nSpeed-up over the original, same input, same run: {:.1}x (default features), {:.1}x (--features seed); memory {:.1}x less.",
            m.wall_secs / ours[0].wall_secs,
            m.wall_secs / seed.wall_secs,
            m.peak_rss_mb() / seed.peak_rss_mb()
        );
    } else {
        println!(
            "\n(original tool not run: {})",
            if python {
                "--no-python"
            } else {
                "python3 lacks pandas or scikit-learn"
            }
        );
    }

    println!(
        "\nIsolation Forest scoring alone (200 trees, max_samples 256, 11 features, one thread):\n"
    );
    let table = super::crate_bench("ml-sniffing-forest", "iforest_scoring")?;
    print!("{table}");
    let ours_rate = table
        .lines()
        .find(|l| l.starts_with("| lanes"))
        .and_then(|l| {
            l.trim_end_matches(" |")
                .rsplit("| ")
                .next()?
                .parse::<f64>()
                .ok()
        });
    if python_with(&["sklearn"]) {
        let rows = "200000";
        let out = Command::new("python3")
            .arg(util::root().join("xtask/python/iforest_scoring.py"))
            .arg(rows)
            .output()?;
        let rate: f64 = String::from_utf8(out.stdout)?
            .trim()
            .parse()
            .context("scikit-learn's rate")?;
        println!("| scikit-learn IsolationForest.score_samples (n_jobs=1, {rows} rows) | 200 | 8 | {rows} | | {rate:.0} |");
        if let Some(ours) = ours_rate {
            println!(
                "\nScoring: {:.1}x scikit-learn's rate, same machine, same run.",
                ours / rate
            );
        }
    } else {
        println!("\n(scikit-learn not importable by python3: its scoring rate was not measured)");
    }
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Whether `python3` can import all of `modules`.
pub fn python_with(modules: &[&str]) -> bool {
    Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A capture-like CSV in the original's format: a few busy internal hosts,
/// many external ones, mostly TCP, realistic frame lengths.
pub(super) fn generate_csv(path: &Path, rows: usize) -> Result<()> {
    let tmp: PathBuf = path.with_extension("partial");
    let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
    writeln!(w, "timestamp,source_ip,destination_ip,protocol,length")?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut t = 1_712_589_010.0f64;
    for _ in 0..rows {
        let r = next();
        t += (r % 1000) as f64 * 1e-6;
        let inside = format!("192.168.1.{}", 2 + r % 50);
        let outside = format!(
            "{}.{}.{}.{}",
            20 + (r >> 8) % 200,
            (r >> 16) % 256,
            (r >> 24) % 256,
            1 + (r >> 32) % 254
        );
        let (src, dst) = if (r >> 40) % 2 == 0 {
            (inside, outside)
        } else {
            (outside, inside)
        };
        let (proto, len) = match (r >> 44) % 100 {
            0..=84 => (
                "tcp",
                [66, 66, 1514, 54, 590][((r >> 52) % 5) as usize] + (r >> 56) % 3,
            ),
            85..=97 => ("udp", 60 + (r >> 50) % 500),
            _ => ("icmp", 98),
        };
        writeln!(w, "{t:.6},{src},{dst},{proto},{len}")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
