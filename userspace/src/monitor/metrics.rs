//! `run --metrics ADDR`: the monitor's counters in Prometheus' text
//! exposition (OpenMetrics), served at `/metrics` by a thread of its own so
//! that a scrape never waits for scoring. The monitor updates them at every
//! tick; counters that the kernel keeps as totals are added as differences.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use ml_sniffing_common::maps::Counters;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::kafka::KafkaCounts;
use super::{Observed, Totals};
use crate::capture::afxdp::QueueSummary;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Cause {
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Queue {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertKind {
    kind: String,
}

pub struct Metrics {
    seen: Counter,
    records: Counter,
    scored: Counter,
    anomalies: Counter,
    dropped: Family<Cause, Counter>,
    ring_fill: Gauge<f64, AtomicU64>,
    sample_one_in: Gauge,
    alerts_opened: Family<AlertKind, Counter>,
    alerts_open: Gauge,
    model_version: Gauge,
    model_age: Gauge<f64, AtomicU64>,
    scoring: Histogram,
    /// AF_XDP, per receive queue.
    queue_received: Family<Queue, Counter>,
    queue_dropped: Family<Queue, Counter>,
    queue_ring_full: Family<Queue, Counter>,
    queue_fill_empty: Family<Queue, Counter>,
    last_queues: std::collections::HashMap<u32, QueueSummary>,
    kafka: Family<Outcome, Counter>,
    last_kafka: KafkaCounts,
    /// The totals already added to the counters.
    last: Totals,
    last_kernel: Counters,
    last_alerts: std::collections::HashMap<&'static str, u64>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub address: SocketAddr,
}

impl Metrics {
    /// Registers the metrics and starts serving them on `address`.
    pub fn serve(address: SocketAddr) -> Result<Self> {
        let mut registry = Registry::with_prefix("ml_sniffing");
        let mut m = Metrics {
            seen: Counter::default(),
            records: Counter::default(),
            scored: Counter::default(),
            anomalies: Counter::default(),
            dropped: Family::default(),
            ring_fill: Gauge::default(),
            sample_one_in: Gauge::default(),
            alerts_opened: Family::default(),
            alerts_open: Gauge::default(),
            model_version: Gauge::default(),
            model_age: Gauge::default(),
            scoring: Histogram::new(exponential_buckets(1e-5, 2.0, 16)),
            queue_received: Family::default(),
            queue_dropped: Family::default(),
            queue_ring_full: Family::default(),
            queue_fill_empty: Family::default(),
            last_queues: Default::default(),
            kafka: Family::default(),
            last_kafka: KafkaCounts::default(),
            last: Totals::default(),
            last_kernel: Counters::default(),
            last_alerts: Default::default(),
            server: Arc::new(
                tiny_http::Server::http(address)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("cannot serve metrics on {address}"))?,
            ),
            thread: None,
            address,
        };
        let r = &mut registry;
        r.register(
            "packets_seen",
            "Packets the capture program saw",
            m.seen.clone(),
        );
        r.register(
            "records",
            "Packet records handed to the monitor",
            m.records.clone(),
        );
        r.register(
            "records_scored",
            "Records scored by the detector",
            m.scored.clone(),
        );
        r.register(
            "anomalies",
            "Records reported (below the alert threshold or beyond the training range)",
            m.anomalies.clone(),
        );
        r.register(
            "dropped",
            "Packets not handed over, by cause (ring_full: lost; sampled_out, not_ip, \
             unparsed, filtered: by design)",
            m.dropped.clone(),
        );
        r.register(
            "ring_fill_ratio",
            "Largest share of the ring buffer found waiting since the last tick",
            m.ring_fill.clone(),
        );
        r.register(
            "sample_one_in",
            "The kernel hands over 1 packet in this many",
            m.sample_one_in.clone(),
        );
        r.register(
            "alerts_opened",
            "Alerts opened, by kind",
            m.alerts_opened.clone(),
        );
        r.register("alerts_open", "Alerts open now", m.alerts_open.clone());
        r.register(
            "model_version",
            "Version of the model scoring now (0 during the warm-up)",
            m.model_version.clone(),
        );
        r.register(
            "model_age_seconds",
            "Seconds since the model scoring now was fitted",
            m.model_age.clone(),
        );
        r.register(
            "scoring_seconds",
            "Time to score one batch of records",
            m.scoring.clone(),
        );
        r.register(
            "afxdp_queue_received",
            "AF_XDP: frames userspace took from this queue's receive ring",
            m.queue_received.clone(),
        );
        r.register(
            "afxdp_queue_dropped",
            "AF_XDP: frames this queue's socket dropped (no free chunk, or larger than one)",
            m.queue_dropped.clone(),
        );
        r.register(
            "afxdp_queue_ring_full",
            "AF_XDP: frames this queue's socket dropped because its receive ring was full",
            m.queue_ring_full.clone(),
        );
        r.register(
            "afxdp_queue_fill_ring_empty",
            "AF_XDP: times the kernel found this queue's fill ring empty",
            m.queue_fill_empty.clone(),
        );
        r.register(
            "kafka_events",
            "Events for --kafka, by outcome (delivered; dropped: the backlog was full)",
            m.kafka.clone(),
        );
        let (registry, server) = (Arc::new(registry), Arc::clone(&m.server));
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || answer(&server, &registry))
            .context("cannot start the metrics thread")?;
        m.thread = Some(thread);
        Ok(m)
    }

    /// One batch scored in `took`.
    pub fn scored_batch(&self, took: Duration) {
        self.scoring.observe(took.as_secs_f64());
    }

    pub fn update(&mut self, s: &Observed) {
        let t = s.totals;
        self.records.inc_by(t.records - self.last.records);
        self.scored.inc_by(t.scored - self.last.scored);
        self.anomalies.inc_by(t.anomalies - self.last.anomalies);
        self.last = t;
        if let Some((k, fill)) = s.kernel {
            let before = self.last_kernel;
            self.seen.inc_by(k.seen.saturating_sub(before.seen));
            for (cause, now, then) in [
                ("ring_full", k.ring_full, before.ring_full),
                ("sampled_out", k.sampled_out, before.sampled_out),
                ("unparsed", k.unparsed, before.unparsed),
                ("not_ip", k.not_ip, before.not_ip),
                ("filtered", k.filtered, before.filtered),
            ] {
                self.dropped
                    .get_or_create(&Cause {
                        cause: cause.into(),
                    })
                    .inc_by(now.saturating_sub(then));
            }
            self.last_kernel = k;
            self.ring_fill.set(fill);
        }
        for q in s.queues {
            let before = self
                .last_queues
                .insert(q.queue, q.clone())
                .unwrap_or_default();
            let label = Queue {
                queue: q.queue.to_string(),
            };
            for (family, now, then) in [
                (
                    &self.queue_received,
                    q.events.received,
                    before.events.received,
                ),
                (
                    &self.queue_dropped,
                    q.socket.rx_dropped,
                    before.socket.rx_dropped,
                ),
                (
                    &self.queue_ring_full,
                    q.socket.rx_ring_full,
                    before.socket.rx_ring_full,
                ),
                (
                    &self.queue_fill_empty,
                    q.socket.rx_fill_ring_empty_descs,
                    before.socket.rx_fill_ring_empty_descs,
                ),
            ] {
                family
                    .get_or_create(&label)
                    .inc_by(now.saturating_sub(then));
            }
        }
        if let Some(k) = s.kafka {
            let before = std::mem::replace(&mut self.last_kafka, k);
            for (outcome, now, then) in [
                ("delivered", k.delivered, before.delivered),
                ("dropped", k.dropped, before.dropped),
            ] {
                self.kafka
                    .get_or_create(&Outcome {
                        outcome: outcome.into(),
                    })
                    .inc_by(now.saturating_sub(then));
            }
        }
        self.sample_one_in.set(s.sample_every as i64);
        for (&kind, &n) in &s.alerts.by_kind {
            let before = self.last_alerts.insert(kind, n).unwrap_or(0);
            self.alerts_opened
                .get_or_create(&AlertKind { kind: kind.into() })
                .inc_by(n.saturating_sub(before));
        }
        self.alerts_open.set(s.alerts.open_alerts().count() as i64);
        self.model_version
            .set(s.model.map_or(0, |m| m.version) as i64);
        self.model_age
            .set(s.model.map_or(0.0, |m| m.age.as_secs_f64()));
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers scrapes until the server is unblocked.
fn answer(server: &tiny_http::Server, registry: &Registry) {
    for request in server.incoming_requests() {
        let response = if request.url() == "/metrics" {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => tiny_http::Response::from_string(body).with_header(
                    "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
                        .parse::<tiny_http::Header>()
                        .expect("a valid header"),
                ),
                Err(_) => tiny_http::Response::from_string("cannot encode").with_status_code(500),
            }
        } else {
            tiny_http::Response::from_string("ml-sniffing: metrics are at /metrics\n")
                .with_status_code(404)
        };
        let _ = request.respond(response);
    }
}
