//! Where the monitor's results go: readable alert lines (or EVE lines with
//! `--json`) on stdout, EVE JSON to `--eve`, anomaly rows to `--output`,
//! frames to `--write-pcap`.

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::Value;

use super::alerts::{Alert, State};
use super::eve::{self, EveFile};
use super::kafka::Kafka;
use super::output::{Anomaly, AnomalyCsv};
use super::PcapOut;

pub struct Sinks<'a> {
    pub out: &'a mut dyn Write,
    /// EVE lines on stdout instead of readable lines.
    pub json: bool,
    /// No alert lines on stdout.
    pub quiet: bool,
    pub eve: Option<EveFile>,
    pub csv: Option<AnomalyCsv>,
    pub pcap: Option<PcapOut>,
    pub kafka: Option<Kafka>,
}

impl<'a> Sinks<'a> {
    /// Lines (or EVE with `json`) on `out` only.
    pub fn lines(out: &'a mut dyn Write, json: bool, quiet: bool) -> Self {
        Sinks {
            out,
            json,
            quiet,
            eve: None,
            csv: None,
            pcap: None,
            kafka: None,
        }
    }

    /// An alert event: a readable line (or an EVE line with `--json`) on
    /// stdout unless quiet, and an EVE line to `--eve`.
    pub fn alert(&mut self, alert: &Alert, state: State, now_ns: u64) -> Result<()> {
        if self.json || self.eve.is_some() || self.kafka.is_some() {
            let event = eve::alert_event(alert, state, now_ns);
            if self.json {
                writeln!(self.out, "{event}")?;
            }
            if let Some(file) = &mut self.eve {
                file.write(&event)?;
            }
            if let Some(kafka) = &mut self.kafka {
                kafka.alert(&event);
            }
        }
        if !self.json && !self.quiet {
            writeln!(self.out, "{}", eve::alert_line(alert, state))?;
        }
        Ok(())
    }

    /// A reported packet: its CSV row, and its frame when one was kept.
    pub fn anomaly(&mut self, anomaly: &Anomaly, frame: Option<(u64, &[u8])>) -> Result<()> {
        if let Some(csv) = &mut self.csv {
            csv.write(anomaly)?;
        }
        if let (Some(pcap), Some((ts, data))) = (&mut self.pcap, frame) {
            pcap.writer
                .write(ts, data)
                .with_context(|| format!("cannot write {}", pcap.path.display()))?;
        }
        Ok(())
    }

    /// A `stats` event, to `--eve` and `--kafka` only.
    pub fn stats(&mut self, event: impl FnOnce() -> Value) -> Result<()> {
        if self.eve.is_none() && self.kafka.is_none() {
            return Ok(());
        }
        let event = event();
        if let Some(file) = &mut self.eve {
            file.write(&event)?;
        }
        if let Some(kafka) = &mut self.kafka {
            kafka.stats(&event);
        }
        Ok(())
    }

    /// Reopens the files written as they go (`--output`, `--eve`) after a
    /// log rotation; returns their paths. (A pcapng file cannot restart
    /// mid-stream: `--write-pcap` keeps its file.)
    pub fn reopen(&mut self) -> Result<Vec<String>> {
        let mut reopened = Vec::new();
        if let Some(csv) = &mut self.csv {
            csv.reopen()?;
            reopened.push(csv.path().display().to_string());
        }
        if let Some(eve) = &mut self.eve {
            eve.reopen()?;
            reopened.push(eve.path().display().to_string());
        }
        Ok(reopened)
    }

    /// Flushes every output, so that what was reported can be read.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(csv) = &mut self.csv {
            csv.flush()?;
        }
        if let Some(pcap) = &mut self.pcap {
            pcap.writer
                .get_mut()
                .flush()
                .with_context(|| format!("cannot write {}", pcap.path.display()))?;
        }
        if let Some(file) = &mut self.eve {
            file.flush()?;
        }
        self.out.flush()?;
        Ok(())
    }
}
