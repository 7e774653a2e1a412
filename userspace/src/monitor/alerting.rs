//! The alerting stage: which scored packets are reported, which alert each
//! joins or opens, and the reasons and kind of a new alert. Used by the
//! live monitor (and `run --read`) and by `detect --alerts`.

use ml_sniffing_common::record::PacketRecord;

use anyhow::Result;

use super::alerts::{self, Alert, AlertOptions, Alerts, Joined, Opening, State};
use super::models::Detector;
use super::sinks::Sinks;
use crate::features::records::describe;
use ml_sniffing_forest::Block;

/// One reported packet.
pub struct Report {
    /// The alert it belongs to (none when noise control kept it out).
    pub alert_id: Option<u64>,
    /// Why it was reported without a low score: a feature beyond the
    /// training range.
    pub reason: Option<String>,
    /// The alert it opened, to announce.
    pub opened: Option<Alert>,
}

pub struct Alerter {
    pub alerts: Alerts,
}

impl Alerter {
    pub fn new(options: AlertOptions) -> Self {
        Alerter {
            alerts: Alerts::new(options),
        }
    }

    /// Row `i` of `block` (the detector's features of `record`), scored
    /// `raw` (`score_samples`) against `threshold`: reported when below it
    /// or when a feature lies beyond the training range, where the forest
    /// cannot tell.
    pub fn packet(
        &mut self,
        detector: &Detector,
        threshold: f64,
        record: &PacketRecord,
        block: Block,
        i: usize,
        raw: f64,
    ) -> Option<Report> {
        let f = block.n_features();
        let baseline = &detector.model.baseline;
        let novel = baseline.most_novel((0..f).map(|k| block.get(k, i)));
        if raw >= threshold && novel.is_none() {
            return None;
        }
        let offset = detector.model.offset;
        let score = raw - offset;
        let reason = novel.map(|(k, _)| {
            let b = &baseline.features[k];
            format!(
                "{} {:.2} beyond training ({:.2} to {:.2})",
                detector.features.names()[k],
                block.get(k, i),
                b.min,
                b.max
            )
        });
        let novel = novel.map(|(k, _)| k);
        let mut opened = None;
        let alert_id = match self.alerts.join(record, score) {
            Joined::Alert(id) => {
                if let Some(k) = novel.filter(|_| !self.alerts.is_novel(id)) {
                    let (kind, reasons) = explain(detector, &block.row(i), Some(k), record);
                    self.alerts.revise(id, kind, reasons);
                }
                Some(id)
            }
            Joined::BecameScan(id) => {
                let (_, reasons) = explain(detector, &block.row(i), novel, record);
                self.alerts.scan_reasons(id, reasons);
                Some(id)
            }
            Joined::Quiet => None,
            Joined::New => {
                let (kind, reasons) = explain(detector, &block.row(i), novel, record);
                opened = self
                    .alerts
                    .open(Opening {
                        record,
                        kind,
                        reasons,
                        score,
                        threshold: threshold - offset,
                        percentile: percentile(&detector.calibration, raw),
                        model_version: detector.version,
                    })
                    .cloned();
                opened.as_ref().map(|a| a.id)
            }
        };
        Some(Report {
            alert_id,
            reason,
            opened,
        })
    }
}

impl Alerter {
    /// At `now_ns` (traffic time): writes the due updates and the alerts
    /// that closed to `sinks`; returns the closed ones.
    pub fn tick(&mut self, now_ns: u64, sinks: &mut Sinks) -> Result<Vec<Alert>> {
        let mut updated = Vec::new();
        let closed = self.alerts.tick(now_ns, |a| updated.push(a.clone()));
        for a in &updated {
            sinks.alert(a, State::Updated, now_ns)?;
        }
        for a in &closed {
            sinks.alert(a, State::Closed, now_ns)?;
        }
        Ok(closed)
    }
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
            let (label, value) = describe(name, row[f]);
            let (median, p99) = baseline.features.get(f).map_or((f64::NAN, f64::NAN), |b| {
                (describe(name, b.median).1, describe(name, b.p99).1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_counts_the_calibration_scores_above() {
        let sorted = [-0.6, -0.5, -0.4, -0.3];
        assert_eq!(percentile(&sorted, -0.7), 100.0);
        assert_eq!(percentile(&sorted, -0.5), 50.0);
        assert_eq!(percentile(&sorted, -0.1), 0.0);
        assert_eq!(percentile(&[], -0.1), 100.0);
        assert_eq!(round(412.4), "412");
        assert_eq!(round(1.234), "1.23");
    }
}
