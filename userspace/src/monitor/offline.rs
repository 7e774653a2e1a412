//! Alerts over scored packets of a whole file (`detect --alerts`): the
//! alerting stage and sinks of the monitor, driven in file order on the
//! packets' own clock.

use std::time::Duration;

use anyhow::Result;
use ml_sniffing_common::record::PacketRecord;

use super::alerting::Alerter;
use super::alerts::{AlertOptions, Alerts, State};
use super::eve;
use super::models::Detector;
use super::sinks::Sinks;
use super::Totals;
use ml_sniffing_forest::Block;

/// Alerts are updated and closed on this step of the packets' clock.
const TICK_NS: u64 = 1_000_000_000;

pub struct OfflineAlerts<'a> {
    detector: Detector,
    threshold: f64,
    alerter: Alerter,
    sinks: Sinks<'a>,
    /// The input's first stretch, not reported (no history before it).
    history_ns: u64,
    start_ns: Option<u64>,
    now_ns: u64,
    last_tick_ns: u64,
    pub totals: Totals,
}

impl<'a> OfflineAlerts<'a> {
    /// `detector` must carry its threshold.
    pub fn new(
        detector: Detector,
        options: AlertOptions,
        sinks: Sinks<'a>,
        history: Duration,
    ) -> Self {
        OfflineAlerts {
            threshold: detector.threshold.unwrap_or(f64::NEG_INFINITY),
            detector,
            alerter: Alerter::new(options),
            sinks,
            history_ns: history.as_nanos().min(u64::MAX as u128) as u64,
            start_ns: None,
            now_ns: 0,
            last_tick_ns: 0,
            totals: Totals::default(),
        }
    }

    /// One packet, row `row` of `block` (its features), scored `raw`.
    pub fn packet(
        &mut self,
        record: &PacketRecord,
        block: Block,
        row: usize,
        raw: f64,
    ) -> Result<()> {
        self.totals.records += 1;
        self.totals.scored += 1;
        self.now_ns = self.now_ns.max(record.timestamp_ns);
        if self.now_ns.saturating_sub(self.last_tick_ns) >= TICK_NS {
            self.last_tick_ns = self.now_ns;
            self.tick()?;
        }
        let start = *self.start_ns.get_or_insert(record.timestamp_ns);
        if record.timestamp_ns < start.saturating_add(self.history_ns) {
            return Ok(());
        }
        self.totals.watched += 1;
        let report = self
            .alerter
            .packet(&self.detector, self.threshold, record, block, row, raw);
        if let Some(report) = report {
            self.totals.anomalies += 1;
            if let Some(a) = &report.opened {
                self.sinks.alert(a, State::Opened, record.timestamp_ns)?;
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.alerter.tick(self.now_ns, &mut self.sinks).map(|_| ())
    }

    /// Closes what is open, writes the final `stats` event and flushes.
    pub fn finish(mut self) -> Result<(Alerts, Totals)> {
        let now = self.now_ns;
        for a in self.alerter.alerts.close_all() {
            self.sinks.alert(&a, State::Closed, now)?;
        }
        let (totals, alerts) = (self.totals, &self.alerter.alerts);
        self.sinks
            .stats(|| eve::stats_event(now, Duration::ZERO, totals, alerts))?;
        self.sinks.flush()?;
        Ok((self.alerter.alerts, self.totals))
    }
}
