//! `detect`: Isolation Forest anomaly scores for every row.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use comfy_table::{CellAlignment, Table as Display};

use super::alert_args::AlertArgs;
use super::{FeatureArgs, ForestArgs};
use crate::features::encoding::FeaturePlan;
use crate::features::records::RecordFeatures;
use crate::features::{self, Engineered, Selection};
use crate::io::input::is_dash;
use crate::io::output::{self, Output};
use crate::io::Table;
use crate::model_file::SavedModel;
use crate::monitor::eve::EveFile;
use crate::monitor::models::{alert_threshold, Detector};
use crate::monitor::offline::OfflineAlerts;
use crate::monitor::sinks::Sinks;
use crate::monitor::summary::alerts_line;
use crate::screen::HEADER_RULE_ONLY;
use crate::timings::Timings;
use crate::{progress, pyfmt};
use ml_sniffing_forest::iforest::IsolationForest;
use ml_sniffing_forest::Block;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// CSV file of captured packets (or any CSV, with --feature-columns), or
    /// a pcap/pcapng capture; `-` reads stdin.
    pub input: PathBuf,
    /// Write every row with its anomaly score to this CSV, most anomalous
    /// first (the file appears only once it is complete; `-`: stdout, and
    /// the report goes to stderr).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Number of most anomalous packets to show (0 shows none).
    #[arg(long, default_value_t = 10)]
    pub top_n: usize,
    #[command(flatten)]
    pub features: FeatureArgs,
    #[command(flatten)]
    pub forest: ForestArgs,
    /// Write the fitted forest to this file (for `detect --model` or
    /// `predict`).
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub save_model: Option<PathBuf>,
    /// Score with the forest saved in this file instead of fitting one: its
    /// features, offset and trees are used (--features, --contamination,
    /// --n-estimators, --max-samples and --random-state are then unused).
    #[arg(long, value_name = "FILE", conflicts_with = "feature_columns")]
    pub model: Option<PathBuf>,
    /// Write a self-contained HTML report to this file: the score
    /// distribution against the threshold, scores over time, the top
    /// sources among the anomalies, and the features that set the
    /// anomalies apart most.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Also report the packets beyond the alert threshold as alerts, the
    /// way `run` does (opened, updated and closed lines with kind, counts
    /// and reasons), in file order on the packets' own clock: a capture
    /// triaged offline. The threshold is --alert-rate's quantile of this
    /// input's scores (never above the contamination offset). Implied by
    /// --eve.
    #[arg(long, conflicts_with = "feature_columns")]
    pub alerts: bool,
    /// With --alerts: packets in this first stretch of the input's time are
    /// scored but not reported. Nothing before the capture began is known,
    /// so in its first seconds every host looks new to the behaviour
    /// features (as `run` never reports its warm-up window).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub history: Duration,
    #[command(flatten)]
    pub alert: AlertArgs,
}

pub fn run(args: DetectArgs, out: &mut dyn Write) -> Result<()> {
    let params = args.forest.params()?;
    // `--output -`: the rows take stdout, the report goes to stderr.
    let mut stderr = std::io::stderr();
    let out: &mut dyn Write = if args.output.as_deref().is_some_and(is_dash) {
        &mut stderr
    } else {
        out
    };
    let alerts = args.alerts || args.alert.eve.is_some();
    let inputs: Vec<&Path> = [Some(args.input.as_path()), args.model.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    crate::io::output::refuse_overwrite(args.output.as_deref(), "--output", &inputs)?;
    crate::io::output::refuse_overwrite(args.save_model.as_deref(), "--save-model", &inputs)?;
    crate::io::output::refuse_overwrite(args.alert.eve.as_deref(), "--eve", &inputs)?;
    crate::io::output::refuse_overwrite(args.report.as_deref(), "--report", &inputs)?;
    if alerts {
        args.alert.check()?;
    }
    let timings = Timings::start();
    let saved = args
        .model
        .as_deref()
        .map(load_isolation_forest)
        .transpose()?;
    let table = crate::load::load_table(&args.input)?;
    timings.mark("read");
    let (engineered, model, mut scores) = match saved {
        Some((path, plan, model)) => {
            let engineered = features::engineer(&table, &plan_selection(&plan))
                .and_then(|e| {
                    let want = plan.feature_names();
                    if e.matrix.names() != want.as_slice() {
                        bail!(
                            "the model uses the features {} but this input gives {}",
                            want.join(", "),
                            e.matrix.names().join(", ")
                        );
                    }
                    Ok(e)
                })
                .with_context(|| {
                    format!(
                        "{} does not fit the model in {}",
                        args.input.display(),
                        path.display()
                    )
                })?;
            timings.mark("features");
            let scores = model.score_samples(&engineered.matrix);
            (engineered, model, scores)
        }
        None => {
            let selection = args.features.selection();
            let engineered = features::engineer(&table, &selection)?;
            timings.mark("features");
            let (model, scores) = params.fit_scored(&engineered.matrix)?;
            if let Some(path) = &args.save_model {
                SavedModel::IsolationForest {
                    plan: FeaturePlan::for_detect(&selection, engineered.matrix.names()),
                    model: model.clone(),
                }
                .save(path)?;
            }
            (engineered, model, scores)
        }
    };
    let raw = alerts.then(|| scores.clone());
    for s in scores.iter_mut() {
        *s -= model.offset;
    }
    timings.mark("fit+score");

    // Most anomalous first; equal scores keep file order.
    let mut order: Vec<u32> = (0..table.len() as u32).collect();
    order.sort_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));

    if let Some(path) = &args.output {
        write_scores(path, &table, &engineered, &scores, &order)?;
        timings.mark("write");
        writeln!(out, "Anomaly scores written to {}", output::shown(path))?;
    }
    let what = if engineered.packet_columns().is_some() {
        "packets"
    } else {
        "rows"
    };
    if args.top_n > 0 {
        writeln!(out, "Most anomalous {what}:")?;
        let shown = &order[..args.top_n.min(order.len())];
        writeln!(out, "{}", top_table(&table, &engineered, &scores, shown))?;
    }
    let flagged = scores.iter().filter(|s| **s < 0.0).count();
    writeln!(
        out,
        "{flagged} of {} {what} flagged as anomalous (contamination {}).",
        table.len(),
        model.params.contamination
    )?;
    if let Some(path) = &args.save_model {
        writeln!(out, "Model saved to {}", path.display())?;
    }
    if let Some(path) = &args.report {
        crate::reports::detect::write(
            path,
            &crate::reports::detect::Input {
                input: &args.input,
                table: &table,
                engineered: &engineered,
                scores: &scores,
                contamination: model.params.contamination.to_string(),
            },
        )?;
        timings.mark("report");
        writeln!(out, "Report written to {}", path.display())?;
    }
    if let Some(raw) = raw {
        report_alerts(&args, &table, &engineered, &model, &raw, out)?;
    }
    Ok(())
}

/// `--alerts`: the packets beyond the alert threshold grouped into alerts
/// as `run` reports them, in file order on the packets' own clock.
fn report_alerts(
    detect: &DetectArgs,
    table: &Table,
    engineered: &Engineered,
    model: &IsolationForest,
    raw: &[f64],
    out: &mut dyn Write,
) -> Result<()> {
    let args = &detect.alert;
    if engineered.packet_columns().is_none() {
        bail!("--alerts needs packets (a capture or a CSV of packets) to group into alerts");
    }
    let features = RecordFeatures::for_model(engineered.matrix.names()).context(
        "--alerts needs the packet features of `run` (--features default or packet): alerts \
         name the behaviour of sources and victims",
    )?;
    let mut calibration = raw.to_vec();
    let threshold = alert_threshold(&mut calibration, args.alert_rate).min(model.offset);
    let detector = Detector {
        model: Arc::new(model.clone()),
        features,
        version: 1,
        threshold: Some(threshold),
        calibration: Arc::new(calibration),
    };
    writeln!(
        out,
        "Alerts (threshold {:.6}: alert rate {} of these packets' scores):",
        threshold - model.offset,
        args.alert_rate
    )?;
    if args.alert_rate * (raw.len() as f64) < 1.0 {
        writeln!(
            out,
            "(at an alert rate of {} the {} packets give less than one packet to report: only \
             features beyond the model's training range alert; --alert-rate {:.0e} or more \
             reports the most anomalous.)",
            args.alert_rate,
            raw.len(),
            1.0 / raw.len().max(1) as f64
        )?;
    }
    let mut sinks = Sinks::lines(&mut *out, false, false);
    sinks.eve = args.eve.as_deref().map(EveFile::create).transpose()?;
    let mut alerts = OfflineAlerts::new(detector, args.options(), sinks, detect.history);
    let block = Block::of_matrix(&engineered.matrix, 0, table.len());
    let mut result = Ok(());
    engineered.for_each_record(table, |row, record| {
        if result.is_ok() {
            result = alerts.packet(record, block, row, raw[row]);
        }
    })?;
    result?;
    let (alerts, totals) = alerts.finish()?;
    write!(out, "{}", alerts_line(&alerts, args.max_alerts_per_second))?;
    let unreported = totals.records - totals.watched;
    if unreported > 0 {
        writeln!(
            out,
            "{unreported} packets in the first {} of the input scored but not reported \
             (--history).",
            humantime::format_duration(detect.history)
        )?;
    }
    if let Some(path) = &args.eve {
        writeln!(out, "EVE events appended to {}", path.display())?;
    }
    Ok(())
}

/// Reads `path`, which must hold an Isolation Forest.
fn load_isolation_forest(path: &Path) -> Result<(&Path, FeaturePlan, IsolationForest)> {
    match SavedModel::load(path)? {
        SavedModel::IsolationForest { plan, model } => Ok((path, plan, model)),
        SavedModel::RandomForest { .. } => bail!(
            "{} holds a Random Forest classifier; detect needs an Isolation Forest \
             (apply a classifier with `ml-sniffing predict`)",
            path.display()
        ),
    }
}

/// The feature selection that recomputes a saved plan's features.
fn plan_selection(plan: &FeaturePlan) -> Selection {
    match plan {
        FeaturePlan::Packet { set, .. } => Selection::Set(*set),
        FeaturePlan::Columns { .. } => Selection::Columns(plan.feature_names()),
    }
}

/// Rows formatted per thread per round of [`write_scores`].
const FORMAT_ROWS: usize = 16_384;

/// The output CSV: input columns, derived columns, then the score and label.
/// Formatting dominates the cost of writing, so rounds of `FORMAT_ROWS`
/// rows per thread are formatted in parallel and written in order.
fn write_scores(
    path: &Path,
    table: &Table,
    engineered: &Engineered,
    scores: &[f64],
    order: &[u32],
) -> Result<()> {
    let mut file = Output::create(path)?;
    let mut headers = engineered.output_headers(table);
    headers.extend(["anomaly_score".to_string(), "is_anomaly".to_string()]);
    let mut header = csv::Writer::from_writer(Vec::new());
    header.write_record(&headers)?;
    file.write_all(&header.into_inner().map_err(|e| e.into_error())?)?;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bar = progress::items(order.len() as u64, "writing");
    for round in order.chunks(FORMAT_ROWS * threads) {
        let parts = std::thread::scope(|scope| {
            let workers: Vec<_> = round
                .chunks(FORMAT_ROWS)
                .map(|rows| scope.spawn(move || format_rows(table, engineered, scores, rows)))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .map_err(|_| anyhow::anyhow!("a formatting thread failed"))?
                })
                .collect::<Result<Vec<Vec<u8>>>>()
        })?;
        for part in parts {
            file.write_all(&part)
                .with_context(|| format!("cannot write {}", output::shown(path)))?;
        }
        bar.inc(round.len() as u64);
    }
    bar.finish_and_clear();
    file.commit()?;
    Ok(())
}

/// The CSV lines of `rows`, in that order.
fn format_rows(
    table: &Table,
    engineered: &Engineered,
    scores: &[f64],
    rows: &[u32],
) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 160));
    let mut record = csv::ByteRecord::new();
    let mut buf = String::new();
    for chunk in rows.chunks(1024) {
        std::hint::black_box(engineered.prefetch_rows(table, chunk));
        for &row in chunk {
            let row = row as usize;
            record.clear();
            engineered.push_output_cells(table, row, &mut record, &mut buf);
            buf.clear();
            pyfmt::push_float_repr(&mut buf, scores[row]);
            record.push_field(buf.as_bytes());
            record.push_field(pyfmt::bool_str(scores[row] < 0.0).as_bytes());
            writer.write_byte_record(&record)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("formatting rows: {}", e.error()))
}

/// The top rows as an aligned table a person can read.
fn top_table(table: &Table, engineered: &Engineered, scores: &[f64], rows: &[u32]) -> Display {
    let mut columns: Vec<usize> = Vec::new();
    let mut headers: Vec<String> = vec!["rank".into()];
    match engineered.packet_columns() {
        Some(p) => {
            columns.extend([
                p.timestamp,
                p.source_ip,
                p.destination_ip,
                p.protocol,
                p.length,
            ]);
            columns.extend(
                ["source_port", "destination_port", "tcp_flags"]
                    .iter()
                    .filter_map(|c| table.column(c)),
            );
        }
        None => {
            // The model's inputs, then nothing else: other columns may be wide.
            columns.extend(
                engineered
                    .matrix
                    .names()
                    .iter()
                    .filter_map(|n| table.column(n)),
            );
        }
    }
    headers.extend(columns.iter().map(|&c| table.headers()[c].clone()));
    headers.extend(["anomaly_score".into(), "is_anomaly".into()]);

    let mut display = Display::new();
    display.load_preset(HEADER_RULE_ONLY);
    display.set_header(headers);
    let timestamp_col = engineered.packet_columns().map(|p| p.timestamp);
    for (rank, &row) in rows.iter().enumerate() {
        let row = row as usize;
        let mut cells = vec![(rank + 1).to_string()];
        for &c in &columns {
            if Some(c) == timestamp_col {
                let time = engineered.display_timestamp(table, row).unwrap_or_default();
                cells.push(crate::screen::shown_cell(&time));
            } else {
                cells.push(crate::screen::shown_cell(table.cell(row, c)));
            }
        }
        cells.push(format!("{:.6}", scores[row]));
        cells.push(pyfmt::bool_str(scores[row] < 0.0).to_string());
        display.add_row(cells);
    }
    let last = display.column_count().saturating_sub(2);
    for c in [0, last] {
        if let Some(col) = display.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    display
}
