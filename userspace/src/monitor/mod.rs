//! Live monitoring: packet records scored as they arrive.
//!
//! Records come from the kernel's ring buffer (read in place, see
//! `capture::live`) or from a capture file, are gathered into batches of a
//! fixed size, turned into the default features column by column, and
//! scored by the flat Isolation Forest (and by a Random Forest classifier
//! when one is given). Without a saved model the first `--warmup` records
//! are collected, a model is fitted on them (a progress bar shows it), and
//! then they and every later record are scored; `--refit-every` fits a new
//! model on the most recent records in the background and swaps it in
//! without pausing capture.

pub mod alerts;
pub mod community_id;
pub mod eve;
pub mod models;
pub mod output;
pub mod status;

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ml_sniffing_common::maps::Counters;
use ml_sniffing_common::record::PacketRecord;

use crate::capture::frame_stash::FrameStash;
use crate::capture::live::{CapturedFrame, Control, RecordSink};
use crate::capture::pcap::writer::PcapNgWriter;
use crate::features::records::RecordFeatures;
use crate::models::iforest::IsolationForestParams;
use crate::models::rforest::argmax_rows;
use crate::models::Block;
use crate::progress;
use alerts::{AlertOptions, Alerts, Joined, Opening, State};
use eve::EveFile;
use models::{Classifier, Detector, Recent, Refit};
use output::{Anomaly, AnomalyCsv};
use status::{Sampling, Status};

/// Rows per piece when a batch is scored on several threads.
const SCORE_SPLIT: usize = 256;

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Records to fit the first model on, when no model is given.
    pub warmup: usize,
    /// Fit a new model on recent records this often.
    pub refit_every: Option<Duration>,
    /// Parameters for fitted models.
    pub params: IsolationForestParams,
    /// The share of ordinary packets expected to alert: the threshold's
    /// quantile among scores of packets the model did not train on.
    pub alert_rate: f64,
    /// Records scored together.
    pub batch: usize,
    /// Anomalies as CSV rows to this file.
    pub output: Option<PathBuf>,
    /// JSON lines on stdout instead of readable lines.
    pub json: bool,
    /// No line per anomaly on stdout.
    pub quiet: bool,
    pub sampling: Sampling,
    /// Stop after this many records.
    pub packet_count: Option<u64>,
    /// How reported packets become alerts.
    pub alerts: AlertOptions,
    /// Alerts and stats as EVE JSON lines to this file.
    pub eve: Option<PathBuf>,
    /// Records come from a capture file: refits are scheduled on the
    /// records' own time and run to completion before scoring goes on, so
    /// that a replay gives the same result every time.
    pub replay: bool,
}

/// Frames written to a pcapng file (`--write-pcap`, AF_XDP mode).
pub struct PcapOut {
    pub writer: PcapNgWriter<std::io::BufWriter<std::fs::File>>,
    pub path: PathBuf,
    /// Only the frames of packets scored as anomalies (`--pcap-anomalies`);
    /// otherwise every frame.
    pub anomalies_only: bool,
}

/// Running totals.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub records: u64,
    pub scored: u64,
    /// Scored after the warm-up window, where anomalies can be reported.
    pub watched: u64,
    pub anomalies: u64,
}

pub struct Monitor<'a> {
    options: MonitorOptions,
    /// None until the warm-up model is fitted.
    detector: Option<Detector>,
    /// Features the warm-up model is fitted on.
    fit_features: RecordFeatures,
    classifier: Option<Classifier>,
    warmup: Vec<PacketRecord>,
    warmup_bar: Option<indicatif::ProgressBar>,
    batch: Vec<PacketRecord>,
    /// The batch's detector features, column-major; the classifier's.
    scratch: Vec<f32>,
    class_scratch: Vec<f32>,
    scores: Vec<f64>,
    proba: Vec<f64>,
    recent: Recent,
    refit: Option<Refit>,
    last_fit: Instant,
    /// Epoch ns of the latest record, and of the latest record when the
    /// model in use was fitted (replays schedule refits on these).
    latest_ns: u64,
    last_fit_ns: u64,
    csv: Option<AnomalyCsv>,
    out: &'a mut dyn Write,
    status: Status,
    totals: Totals,
    /// Anomalies per source address.
    talkers: HashMap<IpAddr, u64>,
    alerts: Alerts,
    eve: Option<EveFile>,
    /// Traffic time of the last `stats` event, and when the monitor began.
    last_stats_ns: u64,
    started: Instant,
    classes: Vec<u64>,
    pcap: Option<PcapOut>,
    /// With `--pcap-anomalies`: the frames of the records not scored yet,
    /// in the same order (warm-up records, then the batch), and where the
    /// batch being scored starts among them.
    stash: FrameStash,
    stash_offset: usize,
}

impl<'a> Monitor<'a> {
    /// A monitor scoring with `detector` when given (else fitting one on
    /// the warm-up window) and classifying with `classifier` when given.
    pub fn new(
        options: MonitorOptions,
        detector: Option<Detector>,
        classifier: Option<Classifier>,
        out: &'a mut dyn Write,
    ) -> Result<Self> {
        let fit_features = match &detector {
            Some(d) => d.features.clone(),
            None => RecordFeatures::default_set(),
        };
        let csv = match &options.output {
            Some(path) => Some(AnomalyCsv::create(path, classifier.is_some())?),
            None => None,
        };
        let recent_rows = if options.refit_every.is_some() {
            options.warmup.max(1)
        } else {
            0
        };
        let warmup_bar = Some({
            let bar = progress::items(options.warmup as u64, "warm-up");
            if bar.is_hidden() {
                if detector.is_none() {
                    eprintln!(
                        "Warming up: fitting the model on the first {} packets...",
                        options.warmup
                    );
                } else {
                    eprintln!(
                        "Warming up: placing the alert threshold on the first {} packets...",
                        options.warmup
                    );
                }
            }
            bar
        });
        let classes = classifier.as_ref().map_or(0, |c| c.model.n_classes());
        Ok(Monitor {
            status: Status::new(options.sampling),
            recent: Recent::new(fit_features.len(), recent_rows),
            batch: Vec::with_capacity(options.batch),
            warmup: Vec::new(),
            warmup_bar,
            scratch: Vec::new(),
            class_scratch: Vec::new(),
            scores: Vec::new(),
            proba: Vec::new(),
            refit: None,
            last_fit: Instant::now(),
            latest_ns: 0,
            last_fit_ns: 0,
            csv,
            out,
            totals: Totals::default(),
            talkers: HashMap::new(),
            alerts: Alerts::new(options.alerts.clone()),
            eve: match &options.eve {
                Some(path) => Some(EveFile::create(path)?),
                None => None,
            },
            last_stats_ns: 0,
            started: Instant::now(),
            classes: vec![0; classes],
            pcap: None,
            stash: FrameStash::new(),
            stash_offset: 0,
            detector,
            fit_features,
            classifier,
            options,
        })
    }

    /// Writes frames to `pcap` from now on (AF_XDP mode only: the record
    /// path never sees frames).
    pub fn write_frames(&mut self, pcap: PcapOut) {
        self.pcap = Some(pcap);
    }

    /// The pcapng writer, to finish the file after the capture.
    pub fn take_pcap(&mut self) -> Option<PcapOut> {
        self.pcap.take()
    }

    /// A whole frame, just before its record (AF_XDP mode).
    fn on_frame(&mut self, frame: &CapturedFrame) -> Result<()> {
        let Some(pcap) = &mut self.pcap else {
            return Ok(());
        };
        if self
            .options
            .packet_count
            .is_some_and(|n| self.totals.records >= n)
        {
            return Ok(());
        }
        if !pcap.anomalies_only {
            pcap.writer
                .write(frame.timestamp_ns, frame.data)
                .with_context(|| format!("cannot write {}", pcap.path.display()))?;
        } else if frame.record.is_some() {
            self.stash.push(frame.timestamp_ns, frame.data);
        }
        Ok(())
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    pub fn model_version(&self) -> Option<u32> {
        self.detector.as_ref().map(|d| d.version)
    }

    /// Takes one record (its time in epoch ns); says `Break` once the
    /// packet count is reached.
    pub fn push(&mut self, record: &PacketRecord, epoch_ns: u64) -> Result<ControlFlow<()>> {
        if self
            .options
            .packet_count
            .is_some_and(|n| self.totals.records >= n)
        {
            return Ok(ControlFlow::Break(()));
        }
        let mut record = *record;
        record.timestamp_ns = epoch_ns;
        self.latest_ns = self.latest_ns.max(epoch_ns);
        self.totals.records += 1;
        if !self.calibrated() {
            self.warmup.push(record);
            if let Some(bar) = &self.warmup_bar {
                bar.inc(1);
            }
            if self.warmup.len() >= self.options.warmup {
                self.fit_warmup()?;
            }
        } else {
            self.batch.push(record);
            if self.batch.len() >= self.options.batch {
                self.score_batch()?;
            }
        }
        Ok(
            if self
                .options
                .packet_count
                .is_some_and(|n| self.totals.records >= n)
            {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            },
        )
    }

    /// Whether a model with its alert threshold is ready to score.
    fn calibrated(&self) -> bool {
        self.detector
            .as_ref()
            .is_some_and(|d| d.threshold.is_some())
    }

    /// Fits the first model on the warm-up records (or, for a loaded model,
    /// places its threshold on their scores), then scores them.
    fn fit_warmup(&mut self) -> Result<()> {
        let records = std::mem::take(&mut self.warmup);
        if records.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let rate = self.options.alert_rate;
        match &mut self.detector {
            Some(loaded) => {
                let mut scores = loaded
                    .model
                    .score_samples(&loaded.features.matrix(&records));
                let offset = loaded.model.offset;
                loaded.threshold = Some(models::alert_threshold(&mut scores, rate).min(offset));
                loaded.calibration = Arc::new(scores);
                if let Some(bar) = self.warmup_bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "Alert threshold placed on {} packets (alert rate {rate}); scoring.",
                    records.len()
                );
            }
            None => {
                let data = self.fit_features.matrix(&records);
                let (model, threshold, calibration) =
                    models::fit_calibrated(&self.options.params, &data, rate)
                        .context("cannot fit the model on the warm-up packets")?;
                if let Some(bar) = self.warmup_bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "Model v1 fitted on {} packets in {:.2} s (the last {:.0} % held back for the \
                     alert threshold, alert rate {rate}); scoring.",
                    records.len(),
                    started.elapsed().as_secs_f64(),
                    models::HELD_BACK * 100.0
                );
                self.detector = Some(Detector {
                    model: Arc::new(model),
                    features: self.fit_features.clone(),
                    version: 1,
                    threshold: Some(threshold),
                    calibration: Arc::new(calibration),
                });
            }
        }
        self.last_fit = Instant::now();
        self.last_fit_ns = self.latest_ns;
        for chunk in records.chunks(self.options.batch.max(1)) {
            self.batch.extend_from_slice(chunk);
            self.score_batch_at(self.stash_offset, false)?;
            self.stash_offset += chunk.len();
        }
        self.stash_offset = 0;
        self.stash.clear();
        Ok(())
    }

    /// Scores the records gathered so far and reports the anomalies.
    fn score_batch(&mut self) -> Result<()> {
        // During the warm-up the stash holds the warm-up records' frames.
        if !self.calibrated() || self.batch.is_empty() {
            return Ok(());
        }
        self.score_batch_at(0, true)?;
        self.stash.clear();
        Ok(())
    }

    /// [`score_batch`](Self::score_batch), the batch's frames (if kept)
    /// starting at `frames` in the stash.
    /// `report`: false for the warm-up window, which the model takes as
    /// ordinary traffic (it is scored, never reported; its first packets,
    /// with no history behind them, would otherwise look new).
    fn score_batch_at(&mut self, frames: usize, report: bool) -> Result<()> {
        let Some(detector) = self.detector.clone() else {
            return Ok(());
        };
        let Some(threshold) = detector.threshold else {
            return Ok(());
        };
        let n = self.batch.len();
        if n == 0 {
            return Ok(());
        }
        let f = detector.features.len();
        detector
            .features
            .fill_columns(&self.batch, &mut self.scratch);
        self.scores.resize(n, 0.0);
        let block = Block::contiguous(&self.scratch, n, f);
        if n >= 2 * SCORE_SPLIT {
            // Scoring dominates a record's cost: spread large batches over
            // the cores (rayon's pool; this thread takes part).
            use rayon::prelude::*;
            self.scores
                .par_chunks_mut(SCORE_SPLIT)
                .enumerate()
                .for_each(|(i, chunk)| {
                    let start = i * SCORE_SPLIT;
                    detector
                        .model
                        .score_block(block.rows(start, start + chunk.len()), chunk);
                });
        } else {
            detector.model.score_block(block, &mut self.scores);
        }
        let offset = detector.model.offset;
        if self.options.refit_every.is_some() {
            for row in 0..n {
                self.recent
                    .push((0..f).map(|feature| self.scratch[feature * n + row]));
            }
        }
        let mut predicted: Vec<u32> = Vec::new();
        if let Some(classifier) = &self.classifier {
            let c = classifier.model.n_classes();
            classifier
                .features
                .fill_columns(&self.batch, &mut self.class_scratch);
            self.proba.resize(n * c, 0.0);
            classifier.model.predict_proba_block(
                Block::contiguous(&self.class_scratch, n, classifier.features.len()),
                &mut self.proba,
            );
            predicted = argmax_rows(&self.proba, c);
            for &class in &predicted {
                self.classes[class as usize] += 1;
            }
        }
        let baseline = &detector.model.baseline;
        for (i, (record, &raw)) in self.batch.iter().zip(&self.scores).enumerate() {
            let score = raw - offset;
            // Beyond the training range, where the forest cannot tell.
            let novel = baseline.most_novel((0..f).map(|feature| self.scratch[feature * n + i]));
            if !report || (raw >= threshold && novel.is_none()) {
                continue;
            }
            let reason = novel.map(|(feature, _)| {
                let b = &baseline.features[feature];
                format!(
                    "{} {:.2} beyond training ({:.2} to {:.2})",
                    detector.features.names()[feature],
                    self.scratch[feature * n + i],
                    b.min,
                    b.max
                )
            });
            let class = self.classifier.as_ref().map(|c| {
                let k = predicted[i] as usize;
                let p = self.proba[i * c.model.n_classes() + k];
                (c.model.classes[k].as_str(), p)
            });
            let alert_id = match self.alerts.join(record, score) {
                Joined::Alert(id) => {
                    if let Some((k, _)) = novel.filter(|_| !self.alerts.is_novel(id)) {
                        let row: Vec<f32> = (0..f).map(|k| self.scratch[k * n + i]).collect();
                        let (kind, reasons) = explain(&detector, &row, Some(k), record);
                        self.alerts.revise(id, kind, reasons);
                    }
                    Some(id)
                }
                Joined::BecameScan(id) => {
                    let row: Vec<f32> = (0..f).map(|k| self.scratch[k * n + i]).collect();
                    let (_, reasons) = explain(&detector, &row, novel.map(|(k, _)| k), record);
                    self.alerts.scan_reasons(id, reasons);
                    Some(id)
                }
                Joined::Quiet => None,
                Joined::New => {
                    let row: Vec<f32> = (0..f).map(|k| self.scratch[k * n + i]).collect();
                    let (kind, reasons) = explain(&detector, &row, novel.map(|(k, _)| k), record);
                    let opened = self.alerts.open(Opening {
                        record,
                        kind,
                        reasons,
                        score,
                        threshold: threshold - offset,
                        percentile: percentile(&detector.calibration, raw),
                        model_version: detector.version,
                    });
                    match opened {
                        Some(alert) => {
                            emit(
                                &mut *self.out,
                                &mut self.eve,
                                (self.options.json, self.options.quiet),
                                alert,
                                State::Opened,
                                record.timestamp_ns,
                            )?;
                            Some(alert.id)
                        }
                        None => None,
                    }
                }
            };
            let anomaly = Anomaly {
                record,
                score,
                model_version: detector.version,
                class,
                reason,
                alert_id,
            };
            if let Some(csv) = &mut self.csv {
                csv.write(&anomaly)?;
            }
            if let (Some(pcap), Some((ts, data))) = (&mut self.pcap, self.stash.get(frames + i)) {
                pcap.writer
                    .write(ts, data)
                    .with_context(|| format!("cannot write {}", pcap.path.display()))?;
            }
            *self.talkers.entry(record.source()).or_default() += 1;
            self.totals.anomalies += 1;
        }
        self.totals.scored += n as u64;
        if report {
            self.totals.watched += n as u64;
        }
        self.batch.clear();
        Ok(())
    }

    /// Periodic work: score what is waiting, flush outputs, swap in a
    /// finished refit or start one, and once a second the status line and
    /// back-pressure (`kernel` is there for live captures).
    pub fn on_tick(&mut self, kernel: Option<&mut Control>) -> Result<()> {
        self.score_batch()?;
        if let Some(csv) = &mut self.csv {
            csv.flush()?;
        }
        if let Some(pcap) = &mut self.pcap {
            pcap.writer
                .get_mut()
                .flush()
                .with_context(|| format!("cannot write {}", pcap.path.display()))?;
        }
        self.tick_alerts()?;
        self.out.flush()?;
        self.manage_refit()?;
        let version = self.model_version();
        self.status
            .tick(kernel, self.totals, version, self.warmup.len())?;
        Ok(())
    }

    /// Updates and closes alerts on the traffic's clock, and writes a
    /// `stats` event every [`eve::STATS_EVERY`].
    fn tick_alerts(&mut self) -> Result<()> {
        let now = self.latest_ns;
        let style = (self.options.json, self.options.quiet);
        let mut updated = Vec::new();
        let closed = self.alerts.tick(now, |a| updated.push(a.clone()));
        for a in &updated {
            emit(&mut *self.out, &mut self.eve, style, a, State::Updated, now)?;
        }
        for a in &closed {
            emit(&mut *self.out, &mut self.eve, style, a, State::Closed, now)?;
        }
        if now.saturating_sub(self.last_stats_ns) >= eve::STATS_EVERY.as_nanos() as u64 {
            self.last_stats_ns = now;
            if let Some(file) = &mut self.eve {
                file.write(&eve::stats_event(
                    now,
                    self.started.elapsed(),
                    self.totals,
                    &self.alerts,
                ))?;
            }
        }
        if let Some(file) = &mut self.eve {
            file.flush()?;
        }
        Ok(())
    }

    fn manage_refit(&mut self) -> Result<()> {
        if self.refit.as_ref().is_some_and(Refit::is_finished) {
            let refit = self.refit.take().expect("checked above");
            self.swap_in(refit)?;
        }
        let (Some(every), Some(detector)) = (self.options.refit_every, &self.detector) else {
            return Ok(());
        };
        let due = if self.options.replay {
            self.latest_ns.saturating_sub(self.last_fit_ns) >= every.as_nanos() as u64
        } else {
            self.last_fit.elapsed() >= every
        };
        if self.refit.is_none() && due && !self.recent.is_empty() {
            let mut params = detector.model.params;
            // A new seed for each model, derived from the first.
            params.random_state = params.random_state.wrapping_add(detector.version as u64);
            let data = self.recent.snapshot(detector.features.names());
            let refit = Refit::start(params, data, self.options.alert_rate)?;
            self.last_fit = Instant::now();
            self.last_fit_ns = self.latest_ns;
            if self.options.replay {
                self.swap_in(refit)?;
            } else {
                self.refit = Some(refit);
            }
        }
        Ok(())
    }

    /// Scores with the model of a finished (or, waiting, running) refit.
    fn swap_in(&mut self, refit: Refit) -> Result<()> {
        let rows = refit.rows;
        let (model, threshold, calibration) = refit.finish()?;
        if let Some(detector) = &mut self.detector {
            detector.model = Arc::new(model);
            detector.threshold = Some(threshold);
            detector.calibration = Arc::new(calibration);
            detector.version += 1;
            eprintln!(
                "Model v{} fitted on the {rows} most recent packets; now scoring with it.",
                detector.version
            );
        }
        Ok(())
    }

    /// Scores what is left (fitting on a short warm-up if the capture ended
    /// before the warm-up window filled) and waits for a running refit.
    pub fn finish(&mut self) -> Result<()> {
        if !self.calibrated() && !self.warmup.is_empty() {
            eprintln!(
                "The capture ended before the warm-up window filled: fitting on the {} packets seen.",
                self.warmup.len()
            );
            self.fit_warmup()?;
        }
        if let Some(bar) = self.warmup_bar.take() {
            bar.finish_and_clear();
        }
        self.score_batch()?;
        let style = (self.options.json, self.options.quiet);
        for a in self.alerts.close_all() {
            emit(
                &mut *self.out,
                &mut self.eve,
                style,
                &a,
                State::Closed,
                self.latest_ns,
            )?;
        }
        if let Some(file) = &mut self.eve {
            file.write(&eve::stats_event(
                self.latest_ns,
                self.started.elapsed(),
                self.totals,
                &self.alerts,
            ))?;
            file.flush()?;
        }
        if let Some(refit) = self.refit.take() {
            drop(refit);
        }
        if let Some(csv) = &mut self.csv {
            csv.flush()?;
        }
        self.out.flush()?;
        Ok(())
    }

    /// The end-of-run summary: totals, kernel counts, top talkers.
    pub fn summary(&self, elapsed: Duration, kernel: Option<&Counters>) -> String {
        let t = self.totals;
        let mut s = String::new();
        let share = 100.0 * t.anomalies as f64 / t.watched.max(1) as f64;
        s.push_str(&format!(
            "Summary: {} records in {:.1} s, {} scored, {} anomalies ({share:.2}% of the {} \
             scored after the warm-up)",
            t.records,
            elapsed.as_secs_f64(),
            t.scored,
            t.anomalies,
            t.watched
        ));
        match self.model_version() {
            Some(v) => s.push_str(&format!(", last model v{v}.\n")),
            None => s.push_str(", no model (nothing was scored).\n"),
        }
        if let Some(k) = kernel {
            s.push_str(&format!(
                "Kernel: {} packets seen, {} records emitted, {} dropped (ring buffer full), {} \
                 sampled out, {} unparsed, {} not IP, {} filtered.\n",
                k.seen, k.emitted, k.ring_full, k.sampled_out, k.unparsed, k.not_ip, k.filtered
            ));
        }
        let q = self.alerts.quieted;
        let mut kinds: Vec<(&&str, &u64)> = self.alerts.by_kind.iter().collect();
        kinds.sort();
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        s.push_str(&format!(
            "Alerts: {} opened{}; packets kept out: {} allowed, {} suppressed after an alert \
             closed, {} past the cap of {} new alerts a second ({} alerts not opened).\n",
            self.alerts.opened,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            q.allowed,
            q.suppressed,
            q.capped_packets,
            self.options.alerts.max_per_second,
            q.capped_alerts
        ));
        if let Some(csv) = &self.csv {
            s.push_str(&format!(
                "Anomalies written to {} ({} rows).\n",
                csv.path().display(),
                csv.rows()
            ));
        }
        if let Some(c) = &self.classifier {
            let counts: Vec<String> = c
                .model
                .classes
                .iter()
                .zip(&self.classes)
                .map(|(name, n)| format!("{name}: {n}"))
                .collect();
            s.push_str(&format!("Classes: {}.\n", counts.join(", ")));
        }
        let mut talkers: Vec<(&IpAddr, &u64)> = self.talkers.iter().collect();
        talkers.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !talkers.is_empty() {
            s.push_str("Top talkers among the anomalies:\n");
            let mut table = comfy_table::Table::new();
            table.load_preset(crate::commands::HEADER_RULE_ONLY);
            table.set_header(["source", "anomalies", "share"]);
            for (addr, n) in talkers.iter().take(10) {
                table.add_row([
                    addr.to_string(),
                    n.to_string(),
                    format!("{:.1}%", 100.0 * **n as f64 / t.anomalies.max(1) as f64),
                ]);
            }
            s.push_str(&table.to_string());
            s.push('\n');
        }
        s
    }
}

impl RecordSink for Monitor<'_> {
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
        for record in batch {
            if self.push(record, record.timestamp_ns)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    fn frame(&mut self, frame: &CapturedFrame<'_>) -> Result<()> {
        self.on_frame(frame)
    }

    fn in_place(&self) -> bool {
        true
    }

    fn record_in_place(&mut self, record: &PacketRecord, epoch_ns: u64) -> Result<ControlFlow<()>> {
        self.push(record, epoch_ns)
    }

    fn tick(&mut self, control: &mut Control) -> Result<()> {
        self.on_tick(Some(control))
    }
}

/// Writes an alert event: a readable line (or an EVE line with `--json`)
/// on stdout unless quiet, and an EVE line to `--eve`.
fn emit(
    out: &mut dyn Write,
    eve: &mut Option<EveFile>,
    (json, quiet): (bool, bool),
    alert: &alerts::Alert,
    state: State,
    now_ns: u64,
) -> Result<()> {
    if json || eve.is_some() {
        let event = eve::alert_event(alert, state, now_ns);
        if json {
            writeln!(out, "{event}")?;
        }
        if let Some(file) = eve {
            file.write(&event)?;
        }
    }
    if !json && !quiet {
        writeln!(out, "{}", eve::alert_line(alert, state))?;
    }
    Ok(())
}

/// The share (in %) of the calibration scores above `raw`: how much more
/// anomalous than ordinary traffic a score is.
fn percentile(sorted: &[f64], raw: f64) -> f64 {
    if sorted.is_empty() {
        return 100.0;
    }
    let below_or_equal = sorted.partition_point(|&s| s <= raw);
    100.0 * (sorted.len() - below_or_equal) as f64 / sorted.len() as f64
}

/// What an alert of a packet with features `row` is: its kind, named from
/// the first reason whose value is above the training's 99th percentile
/// (a rate, a fan-out, a byte ratio higher than normal; else "unusual"),
/// and its reasons.
fn explain(
    detector: &Detector,
    row: &[f32],
    novel: Option<usize>,
    record: &PacketRecord,
) -> (alerts::Kind, Vec<alerts::Reason>) {
    let reasons = reasons(detector, row, novel);
    let ratio = detector
        .features
        .names()
        .iter()
        .position(|n| n == "pair_byte_ratio_1s")
        .map(|k| row[k]);
    let kind = reasons
        .iter()
        .find(|r| r.value > r.p99)
        .map_or(alerts::Kind::Unusual, |r| {
            alerts::Kind::of(&r.feature, ratio, record.frame_len)
        });
    (kind, reasons)
}

/// The three features that isolated `row` most (a feature beyond the
/// training range first), with the value and the training baseline.
fn reasons(detector: &Detector, row: &[f32], novel: Option<usize>) -> Vec<alerts::Reason> {
    let names = detector.features.names();
    let baseline = &detector.model.baseline;
    let weights = detector.model.forest.attribution(row);
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    if let Some(k) = novel {
        order.retain(|&f| f != k);
        order.insert(0, k);
    }
    order
        .into_iter()
        .take(3)
        .map(|f| {
            let name = &names[f];
            let (label, value) = crate::features::records::describe(name, row[f]);
            let (median, p99) = baseline.features.get(f).map_or((f64::NAN, f64::NAN), |b| {
                (
                    crate::features::records::describe(name, b.median).1,
                    crate::features::records::describe(name, b.p99).1,
                )
            });
            alerts::Reason {
                feature: name.clone(),
                novel: novel == Some(f),
                text: format!(
                    "{label}: {} (normal {} to {})",
                    round(value),
                    round(median),
                    round(p99)
                ),
                value,
                median,
                p99,
            }
        })
        .collect()
}

/// A value as reasons show it: whole above 10, else two decimals.
fn round(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
