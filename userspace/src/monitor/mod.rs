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

pub mod alerting;
pub mod alerts;
pub mod batch;
pub mod community_id;
pub mod dashboard;
pub mod eve;
pub mod flow_scoring;
pub mod kafka;
pub mod metrics;
pub mod models;
pub mod offline;
pub mod output;
pub mod sinks;
pub mod status;
pub mod summary;
pub mod web;

use std::io::Write;
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
use crate::progress;
use alerting::Alerter;
use alerts::{AlertOptions, State};
use batch::BatchFeatures;
use eve::EveFile;
use metrics::Metrics;
use ml_sniffing_forest::iforest::IsolationForestParams;
use models::{Classifier, Detector, Recent, Refit};
use output::{Anomaly, AnomalyCsv};
use sinks::Sinks;
use status::{Sampling, Status};
use summary::Tally;
pub use summary::Totals;

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
    /// Send the EVE events to Kafka.
    pub kafka: Option<kafka::KafkaOptions>,
    /// Serve Prometheus metrics on this address.
    pub metrics: Option<std::net::SocketAddr>,
    /// Serve the live dashboard on this address.
    pub web: Option<std::net::SocketAddr>,
    /// Records come from a capture file: refits are scheduled on the
    /// records' own time and run to completion before scoring goes on, so
    /// that a replay gives the same result every time.
    pub replay: bool,
}

/// What the monitor knows at a tick, for the metrics and the dashboard.
pub struct Observed<'a> {
    pub totals: Totals,
    /// The kernel's (or AF_XDP's) counters and the ring's fill (0 to 1),
    /// for live captures.
    pub kernel: Option<(Counters, f64)>,
    /// AF_XDP: each queue's counters (empty otherwise).
    pub queues: &'a [crate::capture::afxdp::QueueSummary],
    /// `--kafka`: what became of the events so far.
    pub kafka: Option<kafka::KafkaCounts>,
    pub sample_every: u32,
    pub alerts: &'a alerts::Alerts,
    /// None during the warm-up.
    pub model: Option<ModelState>,
    /// Records waiting in the warm-up window.
    pub warming: usize,
    /// Anomalies per source and per destination address.
    pub sources: &'a std::collections::HashMap<std::net::IpAddr, u64>,
    pub victims: &'a std::collections::HashMap<std::net::IpAddr, u64>,
}

/// The model scoring now.
#[derive(Debug, Clone, Copy)]
pub struct ModelState {
    pub version: u32,
    /// Since it was fitted.
    pub age: Duration,
    /// The alert threshold as a `decision_function` value.
    pub threshold: f64,
}

/// Frames written to a pcapng file (`--write-pcap`, AF_XDP mode).
pub struct PcapOut {
    pub writer: PcapNgWriter<std::io::BufWriter<std::fs::File>>,
    pub path: PathBuf,
    /// Only the frames of packets scored as anomalies (`--pcap-anomalies`);
    /// otherwise every frame.
    pub anomalies_only: bool,
}

/// The live path as stages: records are batched (after the warm-up
/// window that fits the model), their features computed once per batch,
/// scored (and classified), reported packets grouped into alerts, and the
/// results written to the sinks; a status line and a summary report on it.
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
    features: BatchFeatures,
    scores: Vec<f64>,
    proba: Vec<f64>,
    recent: Recent,
    refit: Option<Refit>,
    last_fit: Instant,
    /// Epoch ns of the latest record, and of the latest record when the
    /// model in use was fitted (replays schedule refits on these).
    latest_ns: u64,
    last_fit_ns: u64,
    alerter: Alerter,
    sinks: Sinks<'a>,
    status: Status,
    tally: Tally,
    /// Traffic time of the last `stats` event, and when the monitor began.
    last_stats_ns: u64,
    started: Instant,
    /// With `--pcap-anomalies`: the frames of the records not scored yet,
    /// in the same order (warm-up records, then the batch), and where the
    /// batch being scored starts among them.
    stash: FrameStash,
    stash_offset: usize,
    metrics: Option<Metrics>,
    dashboard: Option<dashboard::Dashboard>,
    /// Set by SIGHUP: reopen the output files at the next tick.
    reopen: Arc<std::sync::atomic::AtomicBool>,
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
        let eve = match &options.eve {
            Some(path) => Some(EveFile::create(path)?),
            None => None,
        };
        let kafka = match &options.kafka {
            Some(k) => {
                let kafka = kafka::Kafka::start(k.clone())?;
                eprintln!(
                    "Kafka: sending alerts to {p}-alert and stats to {p}-stats on {}.",
                    k.brokers.join(","),
                    p = k.prefix
                );
                Some(kafka)
            }
            None => None,
        };
        let dashboard = match options.web {
            Some(address) => {
                let web = web::Web::serve(address)?;
                eprintln!("Dashboard at {}", web.url);
                Some(dashboard::Dashboard::new(web))
            }
            None => None,
        };
        let reopen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reopen))
            .context("cannot handle SIGHUP")?;
        let metrics = match options.metrics {
            Some(address) => {
                let m = Metrics::serve(address)?;
                eprintln!("Metrics at http://{}/metrics", m.address);
                Some(m)
            }
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
        let classes = classifier
            .as_ref()
            .map_or(0, |c| c.scorer.model().n_classes());
        Ok(Monitor {
            status: Status::new(options.sampling),
            recent: Recent::new(fit_features.len(), recent_rows),
            batch: Vec::with_capacity(options.batch),
            warmup: Vec::new(),
            warmup_bar,
            features: BatchFeatures::new(&fit_features, classifier.as_ref().map(|c| &c.features)),
            scores: Vec::new(),
            proba: Vec::new(),
            refit: None,
            last_fit: Instant::now(),
            latest_ns: 0,
            last_fit_ns: 0,
            alerter: Alerter::new(options.alerts.clone()),
            sinks: Sinks {
                out,
                json: options.json,
                quiet: options.quiet,
                eve,
                csv,
                pcap: None,
                kafka,
            },
            tally: Tally::new(classes),
            last_stats_ns: 0,
            started: Instant::now(),
            stash: FrameStash::new(),
            stash_offset: 0,
            metrics,
            dashboard,
            reopen,
            detector,
            fit_features,
            classifier,
            options,
        })
    }

    /// Writes frames to `pcap` from now on (AF_XDP mode only: the record
    /// path never sees frames).
    pub fn write_frames(&mut self, pcap: PcapOut) {
        self.sinks.pcap = Some(pcap);
    }

    /// The pcapng writer, to finish the file after the capture.
    pub fn take_pcap(&mut self) -> Option<PcapOut> {
        self.sinks.pcap.take()
    }

    /// A whole frame, just before its record (AF_XDP mode).
    fn on_frame(&mut self, frame: &CapturedFrame) -> Result<()> {
        let Some(pcap) = &mut self.sinks.pcap else {
            return Ok(());
        };
        if self
            .options
            .packet_count
            .is_some_and(|n| self.tally.totals.records >= n)
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
        self.tally.totals
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
            .is_some_and(|n| self.tally.totals.records >= n)
        {
            return Ok(ControlFlow::Break(()));
        }
        let mut record = *record;
        record.timestamp_ns = epoch_ns;
        self.latest_ns = self.latest_ns.max(epoch_ns);
        self.tally.totals.records += 1;
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
                .is_some_and(|n| self.tally.totals.records >= n)
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
        self.features.fill(&self.batch);
        let block = self.features.detector();
        let started = Instant::now();
        detector.score(block, &mut self.scores);
        if let Some(m) = &self.metrics {
            m.scored_batch(started.elapsed());
        }
        if let Some(d) = &mut self.dashboard {
            let offset = detector.model.offset;
            for &raw in &self.scores {
                d.score(raw - offset);
            }
        }
        if self.options.refit_every.is_some() {
            for row in 0..n {
                self.recent
                    .push((0..block.n_features()).map(|f| block.get(f, row)));
            }
        }
        let predicted = match (&self.classifier, self.features.classifier()) {
            (Some(classifier), Some(features)) => {
                let predicted = classifier.classify(features, &mut self.proba);
                for &class in &predicted {
                    self.tally.classes[class as usize] += 1;
                }
                predicted
            }
            _ => Vec::new(),
        };
        self.tally.totals.scored += n as u64;
        if !report {
            self.batch.clear();
            return Ok(());
        }
        self.tally.totals.watched += n as u64;
        for (i, record) in self.batch.iter().enumerate() {
            let raw = self.scores[i];
            let Some(reported) = self
                .alerter
                .packet(&detector, threshold, record, block, i, raw)
            else {
                continue;
            };
            if let Some(alert) = &reported.opened {
                self.sinks
                    .alert(alert, State::Opened, record.timestamp_ns)?;
            }
            let class = self.classifier.as_ref().map(|c| {
                let k = predicted[i] as usize;
                let p = self.proba[i * c.scorer.model().n_classes() + k];
                (c.scorer.model().classes[k].as_str(), p)
            });
            let anomaly = Anomaly {
                record,
                score: raw - detector.model.offset,
                model_version: detector.version,
                class,
                reason: reported.reason,
                alert_id: reported.alert_id,
            };
            self.sinks.anomaly(&anomaly, self.stash.get(frames + i))?;
            self.tally.anomaly(record.source(), record.destination());
        }
        self.batch.clear();
        Ok(())
    }

    /// Periodic work: score what is waiting, flush outputs, swap in a
    /// finished refit or start one, and once a second the status line and
    /// back-pressure (`kernel` is there for live captures).
    pub fn on_tick(&mut self, kernel: Option<&mut Control>) -> Result<()> {
        if self
            .reopen
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let files = self.sinks.reopen()?;
            if !files.is_empty() {
                eprintln!("SIGHUP: reopened {}.", files.join(", "));
            }
        }
        self.score_batch()?;
        self.tick_alerts()?;
        self.sinks.flush()?;
        self.manage_refit()?;
        let version = self.model_version();
        if self.metrics.is_some() || self.dashboard.is_some() {
            // The kernel's counters read once for both.
            let kernel_control = kernel.as_deref();
            let kernel = match kernel_control {
                Some(k) => Some((k.counters()?, k.fill())),
                None => None,
            };
            let model = self.detector.as_ref().and_then(|det| {
                det.threshold.map(|t| ModelState {
                    version: det.version,
                    age: self.last_fit.elapsed(),
                    threshold: t - det.model.offset,
                })
            });
            let now = Observed {
                totals: self.tally.totals,
                kernel,
                queues: kernel_control.map_or(&[], |k| k.queues()),
                kafka: self.sinks.kafka.as_ref().map(kafka::Kafka::counts),
                sample_every: self.status.sample_every(),
                alerts: &self.alerter.alerts,
                model,
                warming: self.warmup.len(),
                sources: &self.tally.talkers,
                victims: &self.tally.victims,
            };
            if let Some(m) = &mut self.metrics {
                m.update(&now);
            }
            if let Some(d) = &mut self.dashboard {
                d.tick(&now);
            }
        }
        self.status
            .tick(kernel, self.tally.totals, version, self.warmup.len())?;
        Ok(())
    }

    /// Updates and closes alerts on the traffic's clock, and writes a
    /// `stats` event every [`eve::STATS_EVERY`].
    fn tick_alerts(&mut self) -> Result<()> {
        let now = self.latest_ns;
        let closed = self.alerter.tick(now, &mut self.sinks)?;
        if let Some(d) = &mut self.dashboard {
            closed.iter().for_each(|a| d.closed(a));
        }
        if now.saturating_sub(self.last_stats_ns) >= eve::STATS_EVERY.as_nanos() as u64 {
            self.last_stats_ns = now;
            self.write_stats()?;
        }
        Ok(())
    }

    fn write_stats(&mut self) -> Result<()> {
        let (now, uptime, totals) = (self.latest_ns, self.started.elapsed(), self.tally.totals);
        let alerts = &self.alerter.alerts;
        self.sinks
            .stats(|| eve::stats_event(now, uptime, totals, alerts))
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
        if !self.calibrated() && self.warmup.len() == 1 && self.detector.is_none() {
            eprintln!(
                "The capture ended after 1 packet, before the warm-up window filled: too few to \
                 fit a model on; nothing was scored."
            );
            self.warmup.clear();
        }
        if !self.calibrated() && !self.warmup.is_empty() {
            eprintln!(
                "The capture ended before the warm-up window filled: fitting on the {} packets \
                 seen. They are all warm-up, taken as ordinary and never reported: to look for \
                 anomalies in a capture this short, give a --warmup below its {} packets (the \
                 ordinary part it starts with), or use `detect --alerts`.",
                self.warmup.len(),
                self.warmup.len()
            );
            self.fit_warmup()?;
        }
        if let Some(bar) = self.warmup_bar.take() {
            bar.finish_and_clear();
        }
        self.score_batch()?;
        for a in self.alerter.alerts.close_all() {
            self.sinks.alert(&a, State::Closed, self.latest_ns)?;
            if let Some(d) = &mut self.dashboard {
                d.closed(&a);
            }
        }
        self.write_stats()?;
        if let Some(refit) = self.refit.take() {
            drop(refit);
        }
        if let Some(k) = &mut self.sinks.kafka {
            k.finish();
        }
        self.sinks.flush()
    }

    /// The end-of-run summary: totals, kernel counts, alerts, top talkers.
    pub fn summary(&self, elapsed: Duration, kernel: Option<&Counters>) -> String {
        summary::summary(
            &self.tally,
            summary::Context {
                elapsed,
                model_version: self.model_version(),
                kernel,
                alerts: &self.alerter.alerts,
                max_alerts_per_second: self.options.alerts.max_per_second,
                csv: self.sinks.csv.as_ref(),
                classifier: self.classifier.as_ref().map(|c| c.scorer.model()),
                kafka: self
                    .sinks
                    .kafka
                    .as_ref()
                    .map(|k| (k.options.brokers.join(","), k.counts())),
            },
        )
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
