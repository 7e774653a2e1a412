//! Alerts as people and SIEMs read them: a readable line, and Suricata's
//! EVE JSON (`--eve FILE`, `--json` on stdout): one object a line with
//! `timestamp` (microseconds, UTC offset), `event_type` (`alert`, or
//! `stats` every [`STATS_EVERY`]), the flow's `src_ip`, `src_port`,
//! `dest_ip`, `dest_port`, `proto`, `flow_id` and `community_id`, an
//! `alert` object as Suricata writes it, and an `ml` object with the
//! score, threshold, percentile, model version, reasons and the alert's
//! counts. Filebeat's Suricata module and `jq` read the lines as they are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::HumanCount;
use ml_sniffing_common::protocol;
use serde_json::{json, Value};

use super::alerts::{Alert, Alerts, State};
use super::output::utc_micros;
use super::Totals;
use crate::io::lines::LineFile;

/// How often a `stats` event is written (traffic time).
pub const STATS_EVERY: Duration = Duration::from_secs(10);

/// EVE's timestamp: `2026-11-24T06:40:12.123456+0000`.
pub fn eve_timestamp(epoch_ns: u64) -> String {
    let mut s = crate::pyfmt::pandas_datetime(epoch_ns as i64, 6).replacen(' ', "T", 1);
    s.push_str("+0000");
    s
}

pub(crate) fn proto_name(p: u8) -> String {
    match protocol::name(p) {
        Some(name) => name.to_ascii_uppercase(),
        None => p.to_string(),
    }
}

/// The EVE `alert` event of an alert in `state`, at `now_ns`.
pub fn alert_event(a: &Alert, state: State, now_ns: u64) -> Value {
    let (signature_id, category, severity) = a.kind.signature();
    json!({
        "timestamp": eve_timestamp(now_ns),
        "event_type": "alert",
        "src_ip": a.src.to_string(),
        "src_port": a.src_port,
        "dest_ip": a.dst.to_string(),
        "dest_port": a.dst_port,
        "proto": proto_name(a.protocol),
        "flow_id": a.flow_id(),
        "community_id": a.community_id,
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": signature_id,
            "rev": 1,
            "signature": format!("ML-SNIFFING {}", a.kind.name()),
            "category": category,
            "severity": severity,
        },
        "ml": {
            "alert_id": a.id,
            "state": state.name(),
            "kind": a.kind.name(),
            "host": a.key.host().to_string(),
            "score": a.peak_score,
            "threshold": a.threshold,
            "percentile": a.percentile,
            "model_version": a.model_version,
            "first_seen": eve_timestamp(a.first_ns),
            "last_seen": eve_timestamp(a.last_ns),
            "packets": a.packets,
            "bytes": a.bytes,
            "peers": a.peers(),
            "ports": a.ports(),
            "reasons": a.reasons.iter().map(|r| json!({
                "feature": r.feature,
                "beyond_training": r.novel,
                "text": r.text,
                "value": r.value,
                "median": r.median,
                "p99": r.p99,
            })).collect::<Vec<_>>(),
        },
    })
}

/// The periodic `stats` event.
pub fn stats_event(now_ns: u64, uptime: Duration, totals: Totals, alerts: &Alerts) -> Value {
    let q = alerts.quieted;
    json!({
        "timestamp": eve_timestamp(now_ns),
        "event_type": "stats",
        "stats": {
            "uptime": uptime.as_secs(),
            "capture": {
                "records": totals.records,
                "scored": totals.scored,
                "reported": totals.anomalies,
            },
            "ml": {
                "alerts_opened": alerts.opened,
                "alerts_open": alerts.open_alerts().count(),
                "alerts_by_kind": alerts.by_kind,
                "packets_allowed": q.allowed,
                "packets_suppressed": q.suppressed,
                "alerts_capped": q.capped_alerts,
                "packets_capped": q.capped_packets,
            },
        },
    })
}

/// The readable line of an alert event (counts with thousands separators).
pub fn alert_line(a: &Alert, state: State) -> String {
    let mut line = format!(
        "ALERT #{} {}  {}  {}  {} -> {}  {}",
        a.id,
        state.name(),
        a.kind.name(),
        match a.key {
            super::alerts::Key::Source(h) => format!("source {h}"),
            super::alerts::Key::Victim(h) => format!("victim {h}"),
        },
        utc_micros(a.first_ns),
        utc_micros(a.last_ns),
        format_args!(
            "{} packets, {} bytes, {} peers, {} ports, peak score {:.4} (threshold {:.4}, more \
             anomalous than {:.2} % of the calibration packets), model v{}",
            HumanCount(a.packets),
            HumanCount(a.bytes),
            HumanCount(a.peers() as u64),
            HumanCount(a.ports() as u64),
            a.peak_score,
            a.threshold,
            a.percentile,
            a.model_version
        ),
    );
    if state != State::Updated && !a.reasons.is_empty() {
        let reasons: Vec<&str> = a.reasons.iter().map(|r| r.text.as_str()).collect();
        line.push_str(&format!("\n    why: {}", reasons.join("; ")));
    }
    line
}

/// `--eve FILE`: EVE lines appended as they come, flushed every tick; the
/// file ends on a whole line even when the disk fills (see `io::lines`).
pub struct EveFile {
    path: PathBuf,
    out: LineFile,
}

impl EveFile {
    pub fn create(path: &Path) -> Result<Self> {
        let file = crate::io::output::open_for_writing(path, true)?;
        Ok(EveFile {
            path: path.to_path_buf(),
            out: LineFile::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After a log rotation (SIGHUP): flushes, then appends to the path
    /// anew.
    pub fn reopen(&mut self) -> Result<()> {
        self.flush()?;
        self.out = LineFile::new(crate::io::output::open_for_writing(&self.path, true)?);
        Ok(())
    }

    pub fn write(&mut self, event: &Value) -> Result<()> {
        writeln!(self.out, "{event}")
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::alerts::{AlertOptions, Joined, Kind, Opening, Reason};
    use ml_sniffing_common::record::{addr_bytes, PacketRecord};

    #[test]
    fn alert_events_carry_the_eve_fields() {
        let mut alerts = Alerts::new(AlertOptions::default());
        let r = PacketRecord {
            timestamp_ns: 1_700_000_000_123_456_789,
            src_addr: addr_bytes("128.232.110.120".parse().unwrap()),
            dst_addr: addr_bytes("66.35.250.204".parse().unwrap()),
            src_port: 34855,
            dst_port: 80,
            protocol: 6,
            ip_version: 4,
            frame_len: 60,
            ..PacketRecord::default()
        };
        assert!(matches!(alerts.join(&r, -0.3), Joined::New));
        let a = alerts
            .open(Opening {
                record: &r,
                kind: Kind::Scan,
                reasons: vec![Reason {
                    feature: "src_ports".into(),
                    novel: false,
                    text: "destination ports per source (10 s): 412 (normal 1-3)".into(),
                    value: 412.0,
                    median: 1.0,
                    p99: 3.0,
                }],
                score: -0.3,
                threshold: -0.1,
                percentile: 99.99,
                model_version: 2,
            })
            .unwrap()
            .clone();
        let line = alert_event(&a, State::Opened, r.timestamp_ns).to_string();
        let e: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["timestamp"], "2023-11-14T22:13:20.123456+0000");
        assert_eq!(e["event_type"], "alert");
        assert_eq!(e["src_ip"], "128.232.110.120");
        assert_eq!(e["dest_port"], 80);
        assert_eq!(e["proto"], "TCP");
        assert_eq!(e["community_id"], "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert!(e["flow_id"].as_u64().unwrap() < 1 << 53);
        for field in [
            "action",
            "gid",
            "signature_id",
            "signature",
            "category",
            "severity",
        ] {
            assert!(!e["alert"][field].is_null(), "{field}");
        }
        assert_eq!(e["alert"]["category"], "Detection of a Network Scan");
        assert_eq!(e["ml"]["score"], -0.3);
        assert_eq!(e["ml"]["model_version"], 2);
        assert_eq!(e["ml"]["reasons"][0]["feature"], "src_ports");
        let s = stats_event(
            r.timestamp_ns,
            Duration::from_secs(5),
            Totals::default(),
            &alerts,
        );
        assert_eq!(s["event_type"], "stats");
        assert_eq!(s["stats"]["ml"]["alerts_opened"], 1);
        let text = alert_line(&a, State::Opened);
        assert!(
            text.starts_with("ALERT #1 opened  scan  source 128.232.110.120"),
            "{text}"
        );
        assert!(
            text.contains("why: destination ports per source (10 s): 412"),
            "{text}"
        );
    }
}
