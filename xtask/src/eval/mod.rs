//! `cargo xtask eval`: a deterministic detection benchmark. A labelled
//! mixture of the shared captures (benign applications looped over 15
//! minutes, attacks inserted once in the last 40 %) is written as pcap
//! files, the release binary's offline commands score it, and the figures
//! are printed as Markdown tables (DETECTION.md explains them).

mod alerts;
mod capture;
pub mod data;
mod files;
mod link;
mod metrics;
mod mixture;
mod outputs;
mod report;
mod tool;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util;
use capture::{Capture, Label};
use mixture::{Mixture, Timeline};

/// What `cargo xtask eval` was asked for.
pub struct EvalOptions {
    pub seed: u64,
    /// Work folder instead of `target/eval/seed-N`.
    pub keep: Option<PathBuf>,
}

pub fn run(options: &EvalOptions) -> Result<()> {
    let started = Instant::now();
    let data = data::data_dir(&util::root())?;
    eprintln!("eval: building the release binary");
    let bin = tool::build()?;
    let dir = options.keep.clone().unwrap_or_else(|| {
        util::target_dir()
            .join("eval")
            .join(format!("seed-{}", options.seed))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;

    let list = data::list(&data)?;
    eprintln!(
        "eval: reading {} captures from {}",
        list.len(),
        data.display()
    );
    let captures = list
        .iter()
        .map(|(path, label)| Capture::load(path, *label))
        .collect::<Result<Vec<_>>>()?;
    let timeline = Timeline::default();
    let mixture = Mixture::build(&captures, &timeline, options.seed);
    eprintln!(
        "eval: mixture of {} packets ({} for training); writing mix.pcap, train.pcap, labels.csv to {}",
        mixture.slots.len(),
        mixture.n_train,
        dir.display()
    );
    files::write_all(&dir, &captures, &mixture)?;
    files::write_captures(&dir.join("captures.csv"), &captures, &mixture)?;

    let n_train = mixture.n_train.to_string();
    println!("Commands (in {}):\n", dir.display());
    let tool = tool::Tool {
        bin: &bin,
        dir: &dir,
    };
    tool.run(
        "detect (fit on train.pcap)",
        &[
            "detect",
            "train.pcap",
            "--save-model",
            "model.bin",
            "--top-n",
            "0",
        ],
    )?;
    tool.run(
        "predict (score mix.pcap)",
        &[
            "predict",
            "--model",
            "model.bin",
            "mix.pcap",
            "--output",
            "scores.csv",
        ],
    )?;
    // A stale run.csv or eve.json must not be read if `run` writes none.
    let _ = std::fs::remove_file(dir.join("run.csv"));
    let _ = std::fs::remove_file(dir.join("eve.json"));
    tool.run(
        "run (replay mix.pcap)",
        &[
            "run", "--read", "mix.pcap", "--warmup", &n_train, "--quiet", "--output", "run.csv",
            "--eve", "eve.json",
        ],
    )?;
    println!();

    eprintln!("eval: reading scores.csv and run.csv");
    let suspicion = predict_scores(&dir.join("scores.csv"), &mixture)?;
    let alert_of = run_reports(&dir.join("run.csv"), &mixture)?;
    let reported: Vec<bool> = alert_of.iter().map(Option::is_some).collect();
    let figures = report::evaluate(&captures, &mixture, &suspicion, &reported);
    print!("{}", report::markdown(&figures, options.seed));
    let opened = alerts::read_eve(&dir.join("eve.json"))?;
    print!(
        "\n{}",
        alerts::markdown(&captures, &mixture, &alert_of, &opened)
    );
    summary(&captures, &mixture);
    eprintln!(
        "eval: done in {:.1} s; inputs and outputs in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// `predict`'s rows, one per packet in input order, checked against the
/// mixture's timestamps: the negated `anomaly_score` of each packet.
fn predict_scores(path: &std::path::Path, mixture: &Mixture) -> Result<Vec<f64>> {
    let rows = outputs::read_file(path, Some("anomaly_score"))?;
    if rows.len() != mixture.slots.len() {
        bail!(
            "{} has {} rows for the {} packets of mix.pcap",
            path.display(),
            rows.len(),
            mixture.slots.len()
        );
    }
    for (i, ((time, _), slot)) in rows.iter().zip(&mixture.slots).enumerate() {
        if *time != slot.time_us {
            bail!(
                "{} row {} has timestamp {} where packet {i} of mix.pcap has {}",
                path.display(),
                i + 1,
                files::seconds6(*time),
                files::seconds6(slot.time_us)
            );
        }
    }
    Ok(rows.into_iter().map(|(_, score)| -score).collect())
}

/// Which packets `run` reported, found by their unique timestamps, and the
/// alert each is in (`Some(0)`: reported, in no alert).
fn run_reports(path: &std::path::Path, mixture: &Mixture) -> Result<Vec<Option<u64>>> {
    let mut reported = vec![None; mixture.slots.len()];
    if !path.exists() {
        return Ok(reported);
    }
    for (time, alert) in outputs::read_file(path, Some("alert_id"))? {
        match mixture.slots.binary_search_by_key(&time, |s| s.time_us) {
            Ok(i) => reported[i] = Some(alert as u64),
            Err(_) => bail!(
                "{} reports a packet at {} that mix.pcap does not hold",
                path.display(),
                files::seconds6(time)
            ),
        }
    }
    Ok(reported)
}

/// What the mixture is made of (per-capture details are in captures.csv).
fn summary(captures: &[Capture], mixture: &Mixture) {
    let benign = captures.iter().filter(|c| c.label == Label::Benign).count();
    let span_s = match (mixture.slots.first(), mixture.slots.last()) {
        (Some(a), Some(b)) => (b.time_us - a.time_us) as f64 / 1e6,
        _ => 0.0,
    };
    let attack_packets = (0..mixture.slots.len())
        .filter(|&i| mixture.label(captures, i) == Label::Attack)
        .count();
    println!(
        "\nMixture: {} packets over {span_s:.0} s from {benign} benign and {} attack captures ({attack_packets} attack packets); per capture: captures.csv in the work folder.",
        mixture.slots.len(),
        captures.len() - benign
    );
}
