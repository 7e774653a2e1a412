//! What the live dashboard shows (`run --web`), gathered by the monitor and
//! published once a second as one JSON snapshot: rates, the recent score
//! distribution against the threshold, open and recently closed alerts, top
//! sources and victims, capture health and the model.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ml_sniffing_common::maps::Counters;
use serde_json::{json, Value};

use super::alerts::{Alert, Key};
use super::web::Web;
use super::{Observed, Totals};

/// Score histogram: bins over this range of `decision_function` values.
const LO: f64 = -0.5;
const HI: f64 = 0.5;
const BINS: usize = 50;
/// Seconds of scores the histogram covers.
const WINDOW: usize = 60;
/// Closed alerts listed.
const RECENT: usize = 20;
/// Snapshots published at most this often.
pub const EVERY: Duration = Duration::from_secs(1);

pub struct Dashboard {
    pub web: Web,
    /// Per-second score histograms, the newest last.
    scores: VecDeque<[u64; BINS]>,
    recent: VecDeque<Value>,
    last: Instant,
    last_totals: Totals,
    last_kernel: Option<Counters>,
    last_opened: u64,
    started: Instant,
}

impl Dashboard {
    pub fn new(web: Web) -> Self {
        let mut scores = VecDeque::with_capacity(WINDOW);
        scores.push_back([0; BINS]);
        Dashboard {
            web,
            scores,
            recent: VecDeque::new(),
            last: Instant::now(),
            last_totals: Totals::default(),
            last_kernel: None,
            last_opened: 0,
            started: Instant::now(),
        }
    }

    /// A scored packet's `decision_function` value.
    #[inline]
    pub fn score(&mut self, score: f64) {
        let b = ((score - LO) / (HI - LO) * BINS as f64).clamp(0.0, (BINS - 1) as f64) as usize;
        if let Some(second) = self.scores.back_mut() {
            second[b] += 1;
        }
    }

    /// An alert that closed, for the recent list.
    pub fn closed(&mut self, alert: &Alert) {
        self.recent.push_front(alert_json(alert));
        self.recent.truncate(RECENT);
    }

    /// Publishes a snapshot when one is due.
    pub fn tick(&mut self, now: &Observed) {
        let elapsed = self.last.elapsed();
        if elapsed < EVERY {
            return;
        }
        self.last = Instant::now();
        let secs = elapsed.as_secs_f64();
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let t = now.totals;
        let (kernel, fill) = match now.kernel {
            Some((k, fill)) => (Some(k), fill),
            None => (None, 0.0),
        };
        let before = self.last_kernel.unwrap_or_default();
        let opened = now.alerts.opened;
        let mut counts = [0u64; BINS];
        for second in &self.scores {
            for (c, n) in counts.iter_mut().zip(second) {
                *c += n;
            }
        }
        let mut open: Vec<&Alert> = now.alerts.open_alerts().collect();
        open.sort_by_key(|a| a.id);
        let snapshot = json!({
            "uptime": self.started.elapsed().as_secs_f64(),
            "rates": {
                "packets": kernel.map(|k| rate(k.seen, before.seen)),
                "dropped": kernel.map_or(0.0, |k| rate(k.ring_full, before.ring_full)),
                "records": rate(t.records, self.last_totals.records),
                "scored": rate(t.scored, self.last_totals.scored),
                "anomalies": rate(t.anomalies, self.last_totals.anomalies),
                "alerts": rate(opened, self.last_opened),
            },
            "totals": {
                "records": t.records,
                "scored": t.scored,
                "anomalies": t.anomalies,
                "alerts": opened,
            },
            "kernel": kernel.map(|k| json!({
                "packets_seen": k.seen,
                "records_emitted": k.emitted,
                "dropped_ring_full": k.ring_full,
                "sampled_out": k.sampled_out,
                "unparsed": k.unparsed,
                "not_ip": k.not_ip,
                "filtered": k.filtered,
            })),
            "ring_fill": fill,
            "sampling": now.sample_every,
            "model": now.model.map(|m| json!({
                "version": m.version, "age": m.age.as_secs_f64(), "threshold": m.threshold,
            })),
            "warming": now.warming,
            "scores": {
                "lo": LO, "hi": HI, "counts": counts.to_vec(),
                "threshold": now.model.map(|m| m.threshold),
            },
            "alerts_open": open.into_iter().map(alert_json).collect::<Vec<_>>(),
            "alerts_recent": self.recent.iter().cloned().collect::<Vec<_>>(),
            "top_sources": top(now.sources),
            "top_victims": top(now.victims),
        });
        self.web.publish(snapshot.to_string());
        self.last_totals = t;
        self.last_kernel = kernel;
        self.last_opened = opened;
        if self.scores.len() >= WINDOW {
            self.scores.pop_front();
        }
        self.scores.push_back([0; BINS]);
    }
}

fn alert_json(a: &Alert) -> Value {
    let (key, host) = match a.key {
        Key::Source(h) => ("source", h),
        Key::Victim(h) => ("victim", h),
    };
    json!({
        "id": a.id,
        "kind": a.kind.name(),
        "key": key,
        "host": host.to_string(),
        "packets": a.packets,
        "bytes": a.bytes,
        "peers": a.peers(),
        "ports": a.ports(),
        "peak": a.peak_score,
        "reasons": a.reasons.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
        "raised": a.raised.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
    })
}

/// The ten hosts with the most anomalies, most first.
fn top(counts: &HashMap<IpAddr, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(&IpAddr, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .take(10)
        .map(|(h, n)| (h.to_string(), *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_land_in_their_bins_and_hosts_rank() {
        let web = Web::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut d = Dashboard::new(web);
        for s in [-0.9, -0.5, 0.0, 0.49, 0.9] {
            d.score(s);
        }
        let second = d.scores.back().unwrap();
        assert_eq!(second[0], 2, "below the range: the first bin");
        assert_eq!(second[BINS / 2], 1);
        assert_eq!(second[BINS - 1], 2);
        let counts: HashMap<IpAddr, u64> = [
            ("10.0.0.1".parse().unwrap(), 3),
            ("10.0.0.2".parse().unwrap(), 9),
        ]
        .into();
        assert_eq!(
            top(&counts),
            [("10.0.0.2".to_string(), 9), ("10.0.0.1".to_string(), 3)]
        );
    }
}
