//! What the monitor counts as it goes, and the end-of-run summary made of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ml_sniffing_common::maps::Counters;

use super::alerts::Alerts;
use super::kafka::KafkaCounts;
use super::output::AnomalyCsv;
use ml_sniffing_forest::rforest::RandomForest;

/// Running totals.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub records: u64,
    pub scored: u64,
    /// Scored after the warm-up window, where anomalies can be reported.
    pub watched: u64,
    pub anomalies: u64,
}

/// The totals, anomalies per source and destination address and packets
/// per class.
#[derive(Debug, Default)]
pub struct Tally {
    pub totals: Totals,
    pub talkers: HashMap<IpAddr, u64>,
    /// Anomalies per destination address.
    pub victims: HashMap<IpAddr, u64>,
    pub classes: Vec<u64>,
}

impl Tally {
    pub fn new(classes: usize) -> Self {
        Tally {
            classes: vec![0; classes],
            ..Tally::default()
        }
    }

    pub fn anomaly(&mut self, source: IpAddr, destination: IpAddr) {
        *self.talkers.entry(source).or_default() += 1;
        *self.victims.entry(destination).or_default() += 1;
        self.totals.anomalies += 1;
    }
}

/// What the summary reports beside the tally.
pub struct Context<'a> {
    pub elapsed: Duration,
    pub model_version: Option<u32>,
    pub kernel: Option<&'a Counters>,
    pub alerts: &'a Alerts,
    pub max_alerts_per_second: u32,
    pub csv: Option<&'a AnomalyCsv>,
    pub classifier: Option<&'a RandomForest>,
    /// `--kafka`: where the events went, and what became of them.
    pub kafka: Option<(String, KafkaCounts)>,
}

/// The end-of-run summary: totals, kernel counts, alerts, top talkers.
pub fn summary(tally: &Tally, c: Context) -> String {
    let t = tally.totals;
    let mut s = String::new();
    let share = 100.0 * t.anomalies as f64 / t.watched.max(1) as f64;
    s.push_str(&format!(
        "Summary: {} records in {:.1} s, {} scored, {} anomalies ({share:.2}% of the {} \
         scored after the warm-up)",
        t.records,
        c.elapsed.as_secs_f64(),
        t.scored,
        t.anomalies,
        t.watched
    ));
    match c.model_version {
        Some(v) => s.push_str(&format!(", last model v{v}.\n")),
        None => s.push_str(", no model (nothing was scored).\n"),
    }
    if let Some(k) = c.kernel {
        s.push_str(&format!(
            "Kernel: {} packets seen, {} records emitted, {} dropped (ring buffer full), {} \
             sampled out, {} unparsed, {} not IP, {} filtered.\n",
            k.seen, k.emitted, k.ring_full, k.sampled_out, k.unparsed, k.not_ip, k.filtered
        ));
    }
    s.push_str(&alerts_line(c.alerts, c.max_alerts_per_second));
    if let Some(csv) = c.csv {
        s.push_str(&format!(
            "Anomalies written to {} ({} rows).\n",
            crate::io::output::shown(csv.path()),
            csv.rows()
        ));
    }
    if let Some((brokers, k)) = &c.kafka {
        s.push_str(&k.line("events", brokers));
    }
    if let Some(model) = c.classifier {
        let counts: Vec<String> = model
            .classes
            .iter()
            .zip(&tally.classes)
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        s.push_str(&format!("Classes: {}.\n", counts.join(", ")));
    }
    let mut talkers: Vec<(&IpAddr, &u64)> = tally.talkers.iter().collect();
    talkers.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !talkers.is_empty() {
        s.push_str("Top talkers among the anomalies:\n");
        let mut table = comfy_table::Table::new();
        table.load_preset(crate::screen::HEADER_RULE_ONLY);
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

/// Alerts opened per kind and the packets noise control kept out.
pub fn alerts_line(alerts: &Alerts, max_per_second: u32) -> String {
    let q = alerts.quieted;
    let mut kinds: Vec<(&&str, &u64)> = alerts.by_kind.iter().collect();
    kinds.sort();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "Alerts: {} opened{}; packets kept out: {} allowed, {} suppressed after an alert \
         closed, {} past the cap of {} new alerts a second ({} alerts not opened).\n",
        alerts.opened,
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        },
        q.allowed,
        q.suppressed,
        q.capped_packets,
        max_per_second,
        q.capped_alerts
    )
}
