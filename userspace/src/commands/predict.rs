//! `predict`: apply a saved model (`classify --save-model` or
//! `detect --save-model`) to a new CSV.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::io::output::{self, Output};
use crate::io::{self, Table};
use crate::model_file::SavedModel;
use crate::{progress, pyfmt};
use ml_sniffing_forest::rforest::argmax_rows;
use ml_sniffing_forest::score::ForestScorer;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// CSV file (or capture) to apply the model to (the columns the model
    /// was trained on); `-` reads stdin.
    pub input: PathBuf,
    /// Model file written by `classify --save-model` or `detect --save-model`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Write every input row, in input order, with the model's columns: a
    /// Random Forest adds `prediction` and one `probability_CLASS` column
    /// per class; an Isolation Forest adds `anomaly_score` and `is_anomaly`.
    /// `-`: stdout (the report goes to stderr).
    #[arg(long, value_name = "OUT.csv")]
    pub output: PathBuf,
}

pub fn run(args: PredictArgs, out: &mut dyn Write) -> Result<()> {
    // `--output -`: the rows take stdout, the report goes to stderr.
    let mut stderr = std::io::stderr();
    let out: &mut dyn Write = if io::input::is_dash(&args.output) {
        &mut stderr
    } else {
        out
    };
    crate::io::output::refuse_overwrite(
        Some(&args.output),
        "--output",
        &[&args.input, &args.model],
    )?;
    let saved = SavedModel::load(&args.model)?;
    let table = crate::load::load_table(&args.input)?;
    let data = saved.plan().apply(&table).with_context(|| {
        format!(
            "{} does not fit the model in {}",
            args.input.display(),
            args.model.display()
        )
    })?;
    match &saved {
        SavedModel::RandomForest { model, .. } => {
            let c = model.n_classes();
            let proba = ForestScorer::new(model.clone()).probabilities(&data);
            let predicted = argmax_rows(&proba, c);
            let mut headers = vec!["prediction".to_string()];
            headers.extend(model.classes.iter().map(|k| format!("probability_{k}")));
            write_rows(&args.output, &table, &headers, |row, record| {
                record.push_field(model.classes[predicted[row] as usize].as_bytes());
                for p in &proba[row * c..(row + 1) * c] {
                    record.push_field(pyfmt::float_repr(*p).as_bytes());
                }
            })?;
            let mut counts = vec![0usize; c];
            for &p in &predicted {
                counts[p as usize] += 1;
            }
            let summary: Vec<String> = model
                .classes
                .iter()
                .zip(&counts)
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            writeln!(
                out,
                "Predictions for {} rows written to {} ({}).",
                table.len(),
                output::shown(&args.output),
                summary.join(", ")
            )?;
        }
        SavedModel::IsolationForest { model, .. } => {
            let scores = model.decision_function(&data);
            let headers = ["anomaly_score".to_string(), "is_anomaly".to_string()];
            write_rows(&args.output, &table, &headers, |row, record| {
                record.push_field(pyfmt::float_repr(scores[row]).as_bytes());
                record.push_field(pyfmt::bool_str(scores[row] < 0.0).as_bytes());
            })?;
            let flagged = scores.iter().filter(|s| **s < 0.0).count();
            writeln!(
                out,
                "Anomaly scores for {} rows written to {}; {flagged} flagged as anomalous.",
                table.len(),
                output::shown(&args.output)
            )?;
        }
    }
    Ok(())
}

/// Input columns as they are, then `extra` columns filled by `push_extra`.
fn write_rows(
    path: &Path,
    table: &Table,
    extra: &[String],
    mut push_extra: impl FnMut(usize, &mut csv::ByteRecord),
) -> Result<()> {
    let file = Output::create(path)?;
    let mut writer = csv::Writer::from_writer(file);
    let mut headers = table.headers().to_vec();
    headers.extend_from_slice(extra);
    writer.write_record(&headers)?;
    let bar = progress::items(table.len() as u64, "writing");
    let mut record = csv::ByteRecord::new();
    for row in 0..table.len() {
        record.clear();
        for col in 0..table.headers().len() {
            record.push_field(table.cell(row, col).as_bytes());
        }
        push_extra(row, &mut record);
        writer.write_byte_record(&record)?;
        if row % 65_536 == 0 {
            bar.set_position(row as u64);
        }
    }
    bar.finish_and_clear();
    let file = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", output::shown(path)))?;
    file.commit()?;
    Ok(())
}
