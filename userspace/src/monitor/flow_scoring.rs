//! `run --flows --classifier MODEL`: packets become bidirectional flows
//! (`capture::flow_records`, the table `flows` writes) and each flow is
//! classified when it ends and, with `--early N`, once after its first N
//! packets, by a Random Forest trained on `flows` output. Results go out as
//! lines, `--output` CSV rows (the flow's columns, then `prediction`,
//! `probability`, `early`) and EVE `flow` events (`--eve`, `--json`), with
//! the alert fields when the class is not benign.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ml_sniffing_common::record::PacketRecord;
use serde_json::json;

use super::community_id::community_id;
use super::eve::{eve_timestamp, EveFile};
use crate::capture::flow_records::{self, Expiration, Flow, FlowTable};
use crate::capture::kernel_flows::EndedFlow;
use crate::capture::live::RecordSink;
use crate::features::encoding::FeaturePlan;
use crate::io::output::Output;
use crate::io::Table;
use crate::model_file::SavedModel;
use ml_sniffing_forest::score::ForestScorer;

/// What `run --flows` was asked for.
pub struct FlowOptions {
    pub classifier: PathBuf,
    pub early: Option<u64>,
    /// Whether a TCP FIN or RST ends a flow.
    pub tcp_end: bool,
    pub idle: std::time::Duration,
    pub active: std::time::Duration,
    pub output: Option<PathBuf>,
    pub eve: Option<PathBuf>,
    pub json: bool,
    pub quiet: bool,
    /// `--kafka`: flow events to `PREFIX-flow`.
    pub kafka: Option<super::kafka::KafkaOptions>,
}

pub struct FlowScorer<'a> {
    table: FlowTable,
    plan: FeaturePlan,
    model: ForestScorer,
    early: Option<u64>,
    header: Vec<String>,
    done: Vec<Flow>,
    line: String,
    out: &'a mut dyn Write,
    json: bool,
    quiet: bool,
    csv: Option<(Output, String)>,
    eve: Option<EveFile>,
    pub scored: u64,
    pub early_scored: u64,
    pub per_class: Vec<u64>,
    /// Live: stop after this many packets (`--packet-count`).
    pub limit: Option<u64>,
    packets: u64,
    /// Flows that came ended from the kernel's flow records.
    kernel_flows: u64,
    kafka: Option<super::kafka::Kafka>,
}

/// Whether a class name means ordinary traffic (no alert fields).
fn benign(class: &str) -> bool {
    matches!(
        class.to_ascii_lowercase().as_str(),
        "benign" | "normal" | "ordinary" | "0"
    )
}

fn reason(e: Expiration) -> &'static str {
    match e {
        Expiration::Idle => "timeout",
        Expiration::Active => "active_timeout",
        Expiration::Closed => "fin_or_rst",
        Expiration::End => "end_of_input",
    }
}

impl<'a> FlowScorer<'a> {
    pub fn new(o: &FlowOptions, out: &'a mut dyn Write) -> Result<Self> {
        let (plan, model) = match SavedModel::load(&o.classifier)? {
            SavedModel::RandomForest { plan, model } => (plan, model),
            SavedModel::IsolationForest { .. } => bail!(
                "{} is an Isolation Forest: --flows needs a Random Forest trained on a flow \
                 table (`ml-sniffing flows`, then `classify --save-model`)",
                o.classifier.display()
            ),
        };
        let header: Vec<String> = flow_records::header()
            .split(',')
            .map(String::from)
            .collect();
        if let Some(missing) = plan
            .feature_names()
            .into_iter()
            .find(|f| !header.contains(f))
        {
            bail!(
                "{} was not trained on a flow table: its feature `{missing}` is not a column \
                 `ml-sniffing flows` writes",
                o.classifier.display()
            );
        }
        let csv = match &o.output {
            Some(path) => {
                let mut file = Output::create(path)?;
                let mut columns = header.join(",");
                columns.push_str(",prediction,probability,early\n");
                file.write_all(columns.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Some((file, path.display().to_string()))
            }
            None => None,
        };
        let eve = o.eve.as_deref().map(EveFile::create).transpose()?;
        let kafka = match &o.kafka {
            Some(k) => {
                eprintln!(
                    "Kafka: sending flow events to {}-flow on {}.",
                    k.prefix,
                    k.brokers.join(",")
                );
                Some(super::kafka::Kafka::start(k.clone())?)
            }
            None => None,
        };
        let classes = model.n_classes();
        Ok(FlowScorer {
            table: match o.tcp_end {
                true => FlowTable::new(o.idle, o.active),
                false => FlowTable::new(o.idle, o.active).without_tcp_end(),
            },
            plan,
            model: ForestScorer::new(model),
            early: o.early,
            header,
            done: Vec::new(),
            line: String::new(),
            out,
            json: o.json,
            quiet: o.quiet,
            csv,
            eve,
            scored: 0,
            early_scored: 0,
            per_class: vec![0; classes],
            limit: None,
            packets: 0,
            kernel_flows: 0,
            kafka,
        })
    }

    /// One packet (epoch timestamp).
    pub fn push(&mut self, r: &PacketRecord) -> Result<()> {
        let mut done = std::mem::take(&mut self.done);
        let joined = self.table.add(r, &mut done);
        if let (Some(n), Some((id, stats))) = (self.early, joined) {
            if stats.both.packets == n {
                let flow = Flow::new(id, *stats);
                self.score(&flow, true)?;
            }
        }
        for f in done.drain(..) {
            self.score(&f, false)?;
        }
        self.done = done;
        Ok(())
    }

    /// Scores the flows still open.
    pub fn finish(&mut self) -> Result<()> {
        let mut done = Vec::new();
        self.table.finish(&mut done);
        for f in &done {
            self.score(f, false)?;
        }
        if let Some((csv, _)) = self.csv.take() {
            csv.commit()?;
        }
        if let Some(eve) = &mut self.eve {
            eve.flush()?;
        }
        if let Some(kafka) = &mut self.kafka {
            kafka.finish();
        }
        self.out.flush()?;
        Ok(())
    }

    fn score(&mut self, f: &Flow, early: bool) -> Result<()> {
        self.line.clear();
        flow_records::row(f, &mut self.line);
        let headers: Vec<&str> = self.header.iter().map(String::as_str).collect();
        let cells: Vec<&str> = self.line.split(',').collect();
        let table = Table::from_rows(&headers, &[&cells])
            .map_err(|e| anyhow::anyhow!("a flow row: {e:?}"))?;
        let data = self.plan.apply(&table)?;
        let proba = self.model.probabilities(&data);
        let model = self.model.model();
        let class = ml_sniffing_forest::rforest::argmax_rows(&proba, model.n_classes())[0] as usize;
        let name = model.classes[class].clone();
        let p = proba[class];
        self.scored += 1;
        self.early_scored += early as u64;
        self.per_class[class] += 1;
        if let Some((csv, shown)) = &mut self.csv {
            let row = format!("{},{name},{p},{early}\n", self.line);
            csv.write_all(row.as_bytes())
                .with_context(|| format!("cannot write {shown}"))?;
        }
        if self.json || self.eve.is_some() || self.kafka.is_some() {
            let event = self.event(f, &name, p, early);
            if self.json {
                writeln!(self.out, "{event}")?;
            }
            if let Some(eve) = &mut self.eve {
                eve.write(&event)?;
            }
            if let Some(kafka) = &mut self.kafka {
                kafka.flow(&event);
            }
        }
        if !self.json && self.eve.is_none() && !self.quiet && !benign(&name) {
            writeln!(
                self.out,
                "flow {}:{} -> {}:{} proto {}: {name} (p={p:.2}), {} packets{}",
                f.src,
                f.stats.src_port,
                f.dst,
                f.stats.dst_port,
                f.stats.protocol,
                f.stats.both.packets,
                if early {
                    " (early)".to_string()
                } else {
                    format!(", ended by {}", reason(f.expiration))
                }
            )?;
        }
        Ok(())
    }

    fn event(&self, f: &Flow, class: &str, p: f64, early: bool) -> serde_json::Value {
        let ms = |t: u64| eve_timestamp(t * 1_000_000);
        let mut event = json!({
            "timestamp": ms(f.stats.both.last_ms),
            "event_type": "flow",
            "src_ip": f.src.to_string(),
            "src_port": f.stats.src_port,
            "dest_ip": f.dst.to_string(),
            "dest_port": f.stats.dst_port,
            "proto": super::eve::proto_name(f.stats.protocol),
            "vlan": f.stats.vlan_id,
            "community_id": community_id(f.src, f.dst, f.stats.protocol, f.stats.src_port, f.stats.dst_port),
            "flow": {
                "pkts_toserver": f.stats.src2dst.packets,
                "pkts_toclient": f.stats.dst2src.packets,
                "bytes_toserver": f.stats.src2dst.bytes,
                "bytes_toclient": f.stats.dst2src.bytes,
                "start": ms(f.stats.both.first_ms),
                "end": ms(f.stats.both.last_ms),
                "state": if early { "early" } else { "closed" },
                "reason": if early { "early" } else { reason(f.expiration) },
            },
            "ml_sniffing": { "class": class, "probability": p, "early": early },
        });
        if !benign(class) {
            event["alert"] = json!({
                "action": "allowed",
                "signature": format!("ml-sniffing: flow classified as {class}"),
                "category": class,
                "severity": 2,
            });
        }
        event
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let classes: Vec<String> = self
            .model
            .model()
            .classes
            .iter()
            .zip(&self.per_class)
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        format!(
            "Flows: {} classified at their end and {} early ({}); {} still open counted at the \
             end{}.\n",
            self.scored - self.early_scored,
            self.early_scored,
            classes.join(", "),
            self.table.open(),
            match self.table.later_fragments() {
                0 => String::new(),
                n => format!("; {n} later IP fragments (without ports) in no flow"),
            }
        ) + &match self.kernel_flows {
            0 => String::new(),
            n => format!(
                "{n} of them kept in the kernel's flow records ({} from packet records).\n",
                self.scored - n
            ),
        } + &match &self.kafka {
            Some(kafka) => kafka
                .counts()
                .line("flow events", &kafka.options.brokers.join(",")),
            None => String::new(),
        }
    }
}

impl RecordSink for FlowScorer<'_> {
    /// Flows from the kernel's flow records (live), scored as they end.
    fn flows(&mut self, ended: &mut Vec<EndedFlow>) -> Result<()> {
        for e in ended.drain(..) {
            let flow = Flow {
                expiration: e.expiration,
                ..Flow::new(self.table.new_id(), e.stats)
            };
            self.kernel_flows += 1;
            self.score(&flow, false)?;
        }
        Ok(())
    }

    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
        for r in batch {
            self.push(r)?;
            self.packets += 1;
            if self.limit.is_some_and(|n| self.packets >= n) {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Refuses a classifier path that is also an output.
pub fn check_outputs(o: &FlowOptions, inputs: &[&Path]) -> Result<()> {
    let mut all: Vec<&Path> = inputs.to_vec();
    all.push(&o.classifier);
    crate::io::output::refuse_overwrite(o.output.as_deref(), "--output", &all)?;
    crate::io::output::refuse_overwrite(o.eve.as_deref(), "--eve", &all)
}
