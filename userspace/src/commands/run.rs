//! `run`: the live monitor (what `cargo xtask run -- --iface eth0` starts).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::alert_args::AlertArgs;
use super::engine_args::EngineArgs;
use super::ForestArgs;

use crate::capture::afxdp;
use crate::capture::live::{self, CaptureError, CaptureMode, CaptureOptions};
use crate::capture::pcap::records::{self, read_records};
use crate::capture::pcap::writer::{CaptureStats, PcapNgWriter};
use crate::capture::pcap::CaptureReader;
use crate::capture::state::StateTables;
use crate::capture::xdp::{check_privileges_for, interface_index, Needs, XdpMode};
use crate::capture::{programs, route};
use crate::io::input::is_dash;
use crate::monitor::models::{load_classifier, load_detector};
use crate::monitor::status::Sampling;
use crate::monitor::{Monitor, MonitorOptions, PcapOut};
use crate::signals;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Interface to monitor live (needs root). Default: the interface of the
    /// default route.
    #[arg(
        short = 'i',
        long = "iface",
        visible_alias = "interface",
        value_name = "IF"
    )]
    pub iface: Option<String>,
    /// A tcpdump filter expression (pcap-filter syntax, e.g. `tcp port 443
    /// or udp port 53`): only the packets it matches are monitored. With
    /// --read, the whole syntax (compiled by libpcap, which must be
    /// installed); live, in the XDP program, the subset host, net, port,
    /// portrange and the protocols, with and, or, not and parentheses.
    #[arg(value_name = "EXPRESSION")]
    pub filter: Vec<String>,
    /// Replay a pcap/pcapng capture through the monitor instead of capturing
    /// live (no root needed); `-` reads stdin. A folder, or `-r` given
    /// several times, replays every capture in it in the order of their
    /// first packets; gzip and Zstandard captures are read as they are.
    #[arg(short = 'r', long, value_name = "CAPTURE", action = clap::ArgAction::Append, conflicts_with_all = ["iface", "xdp_mode", "ipv4_only", "write_pcap", "sample"])]
    pub read: Vec<PathBuf>,
    /// How the XDP program is attached: `auto` (driver mode where the driver
    /// supports it), `skb` (generic), `drv` (driver).
    #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
    pub xdp_mode: XdpMode,
    /// Leave IPv6 out (the original tool's behaviour).
    #[arg(long)]
    pub ipv4_only: bool,
    /// Score with this Isolation Forest (saved by `detect --save-model` on
    /// packets with the default features) instead of fitting one.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Also classify every packet with this Random Forest (saved by
    /// `classify --save-model` on packets with the default features).
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    /// Classify flows instead of packets: packets are gathered into
    /// bidirectional flows (the rows `ml-sniffing flows` writes; ended after
    /// 120 s idle, 1800 s of life, a TCP FIN or RST) and --classifier, a
    /// Random Forest trained on such rows, classifies each flow when it
    /// ends: lines for the classes other than benign/normal, --output CSV
    /// rows, EVE `flow` events (--eve, --json) with alert fields when the
    /// class is not benign.
    #[arg(long, requires = "classifier", conflicts_with_all = ["model", "refit_every", "write_pcap", "web", "metrics"])]
    pub flows: bool,
    /// With --flows: also classify each flow once after its first N packets
    /// (a verdict before the flow ends).
    #[arg(long, value_name = "N", requires = "flows", value_parser = clap::value_parser!(u64).range(1..))]
    pub early: Option<u64>,
    /// With --flows: end flows on timeouts only, as NFStream does (for a
    /// model trained on NFStream's tables or `flows --no-tcp-end`), not on
    /// a TCP FIN or RST.
    #[arg(long, requires = "flows")]
    pub no_tcp_end: bool,
    /// Without --model: packets to fit the first model on before scoring.
    #[arg(long, default_value_t = 50_000, value_name = "PACKETS")]
    pub warmup: usize,
    /// Fit a new model on the most recent packets (as many as --warmup)
    /// this often, in the background, and swap it in (e.g. `30s`, `10m`).
    /// With --read, on the capture's own clock, and scoring waits for it.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub refit_every: Option<Duration>,
    #[command(flatten)]
    pub alert: AlertArgs,
    /// Serve Prometheus metrics (OpenMetrics text) at
    /// http://ADDR/metrics while running: packets seen, records, drops by
    /// cause, ring fill, sampling, records scored, anomalies, alerts by
    /// kind, model version and age, scoring time per batch (e.g.
    /// `127.0.0.1:9477`; bind to loopback unless the network is trusted).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Serve a live dashboard (rates, scores against the threshold, alerts
    /// and their reasons, top hosts, capture health) at http://ADDR/; just
    /// `--web` serves 127.0.0.1:8080. On an address other than loopback the
    /// page needs the token printed at start.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub web: Option<std::net::SocketAddr>,
    /// Send the EVE events to these Kafka brokers (`host:port`,
    /// comma-separated): alerts to the topic `PREFIX-alert`, keyed by their
    /// flow's Community ID (one flow's events stay in one partition), and
    /// `stats` events to `PREFIX-stats` (with --flows: flow events to
    /// `PREFIX-flow`, keyed by Community ID); missing topics are created
    /// with one partition. Events wait in memory while the broker is away (see
    /// --kafka-backlog) and go out when it returns; what is dropped is
    /// counted in the summary.
    #[arg(long, value_name = "BROKERS", value_delimiter = ',')]
    pub kafka: Vec<String>,
    /// The Kafka topics' prefix (letters, digits, `.`, `_`, `-`).
    #[arg(long, value_name = "PREFIX", default_value = "ml-sniffing", value_parser = topic_prefix, requires = "kafka")]
    pub topic: String,
    /// Events kept in memory at most while the Kafka broker is away (beyond
    /// them, new events are dropped and counted).
    #[arg(long, value_name = "EVENTS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..), requires = "kafka")]
    pub kafka_backlog: u64,
    /// Read options from this TOML file first (keys are the long option
    /// names: `iface = "eth0"`, `alert-rate = 1e-4`, `quiet = true`,
    /// `allow = ["10.0.0.0/8"]`); options on the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the process id to this file while running (removed on exit),
    /// for service managers.
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Packets scored together.
    #[arg(long, default_value_t = 1024, value_name = "PACKETS")]
    pub batch: usize,
    /// Write each anomaly as a CSV row to this file (the capture columns,
    /// then anomaly_score, is_anomaly, model_version); `-`: stdout (the
    /// lines and the summary then go to stderr).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Anomalies as JSON lines on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No line per anomaly on stdout (the status line and summary remain).
    #[arg(short, long)]
    pub quiet: bool,
    /// Which packets the kernel hands over: `auto` (all, and 1 in N with N
    /// doubling while scoring cannot keep up, with a warning) or `1/N`.
    #[arg(long, default_value = "auto", value_name = "auto|1/N")]
    pub sample: Sampling,
    /// Stop after this many packets.
    #[arg(short = 'c', long, value_name = "N")]
    pub packet_count: Option<u64>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Write frames to this pcapng file (needs --capture af-xdp: only
    /// AF_XDP sees whole frames): every frame, or with --pcap-anomalies
    /// only those scored as anomalies.
    #[arg(long, value_name = "FILE")]
    pub write_pcap: Option<PathBuf>,
    /// With --write-pcap: keep only the frames of packets scored as
    /// anomalies.
    #[arg(long, requires = "write_pcap")]
    pub pcap_anomalies: bool,
    /// Parameters of the models fitted on the warm-up window and in refits
    /// (refits derive their seeds from --random-state).
    #[command(flatten)]
    pub forest: ForestArgs,
}

/// The largest `--batch` and `--warmup`.
const MAX_BATCH: usize = 1 << 20;
const MAX_WARMUP: usize = 10_000_000;

pub fn run(args: RunArgs, out: &mut dyn Write) -> Result<()> {
    let params = args.forest.params()?;
    // `--output -`: the CSV rows take stdout, everything else goes to
    // stderr.
    let mut stderr = std::io::stderr();
    let out: &mut dyn Write = if args.output.as_deref().is_some_and(is_dash) {
        if args.json {
            bail!("--output - and --json both write to stdout: choose one");
        }
        &mut stderr
    } else {
        out
    };
    if args.flows {
        return run_flows(&args, out);
    }
    if !(1..=MAX_BATCH).contains(&args.batch) {
        bail!(
            "--batch must be from 1 to {MAX_BATCH} packets (larger batches only delay the \
             alerts), got {}",
            args.batch
        );
    }
    if args.warmup > MAX_WARMUP {
        bail!(
            "--warmup must be at most {MAX_WARMUP} packets (they are held in memory, {} bytes \
             each, until the model is fitted), got {}",
            std::mem::size_of::<ml_sniffing_common::record::PacketRecord>(),
            args.warmup
        );
    }
    if args.refit_every.is_some_and(|d| d.is_zero()) {
        bail!("--refit-every must be longer than 0s (e.g. 10m)");
    }
    args.alert.check()?;
    let inputs: Vec<&std::path::Path> = args
        .read
        .iter()
        .map(PathBuf::as_path)
        .chain(args.model.as_deref())
        .chain(args.classifier.as_deref())
        .collect();
    crate::io::output::refuse_overwrite(args.output.as_deref(), "--output", &inputs)?;
    crate::io::output::refuse_overwrite(args.write_pcap.as_deref(), "--write-pcap", &inputs)?;
    crate::io::output::refuse_overwrite(args.alert.eve.as_deref(), "--eve", &inputs)?;
    if args.model.is_none() && args.warmup < 2 {
        bail!("--warmup must be at least 2 packets to fit a model on");
    }
    let _pidfile = args.pidfile.as_deref().map(PidFile::create).transpose()?;
    if args.packet_count == Some(0) {
        bail!("--packet-count must be at least 1");
    }
    let detector = args.model.as_deref().map(load_detector).transpose()?;
    let classifier = args
        .classifier
        .as_deref()
        .map(load_classifier)
        .transpose()?;
    let options = MonitorOptions {
        warmup: args.warmup,
        refit_every: args.refit_every,
        params,
        alert_rate: args.alert.alert_rate,
        batch: args.batch,
        output: args.output.clone(),
        json: args.json,
        quiet: args.quiet,
        sampling: args.sample,
        packet_count: args.packet_count,
        replay: !args.read.is_empty(),
        alerts: args.alert.options(),
        eve: args.alert.eve.clone(),
        metrics: args.metrics,
        web: args.web,
        kafka: kafka_options(&args, false),
    };
    let json = args.json;
    if args.read.is_empty() {
        live(&args, options, detector, classifier, out, json)
    } else {
        replay(
            &args.read,
            &args.filter,
            options,
            detector,
            classifier,
            out,
            json,
        )
    }
}

fn live(
    args: &RunArgs,
    options: MonitorOptions,
    detector: Option<crate::monitor::models::Detector>,
    classifier: Option<crate::monitor::models::Classifier>,
    out: &mut dyn Write,
    json: bool,
) -> Result<()> {
    let sample_every = match args.sample {
        Sampling::Fixed(n) => n,
        Sampling::Auto => 1,
    };
    let (interface, capture) = capture_options(args, sample_every)?;
    if args.write_pcap.is_some() && capture.capture != CaptureMode::AfXdp {
        bail!("--write-pcap needs --capture af-xdp: the record path never sees whole frames");
    }
    // The failures that need no kernel come first.
    match capture.capture {
        CaptureMode::Xdp => programs::capture().map(|_| ())?,
        CaptureMode::AfXdp => {
            afxdp::attach_mode(&capture)?;
            programs::xsk().map(|_| ())?;
        }
    }
    interface_index(&interface)?;
    check_privileges_for(match capture.capture {
        CaptureMode::Xdp => Needs::Xdp,
        CaptureMode::AfXdp => Needs::AfXdp,
    })?;
    match capture.capture {
        CaptureMode::Xdp => {
            eprintln!(
                "Monitoring {interface} (XDP, {} mode); CTRL+C to stop.",
                args.xdp_mode.name()
            );
        }
        CaptureMode::AfXdp => {
            eprintln!(
                "Monitoring {interface} (AF_XDP, XDP {} mode); CTRL+C to stop.",
                args.xdp_mode.name()
            );
        }
    }
    let pcap = match &args.write_pcap {
        Some(path) => {
            let file = crate::io::output::open_for_writing(path, false)?;
            let writer =
                PcapNgWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), &interface)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            Some(PcapOut {
                writer,
                path: path.clone(),
                anomalies_only: args.pcap_anomalies,
            })
        }
        None => None,
    };
    let started = Instant::now();
    let started_ns = epoch_ns();
    let mut summary_out: Vec<u8> = Vec::new();
    let mut failure = None;
    {
        let mut monitor = Monitor::new(options, detector, classifier, out)?;
        if let Some(pcap) = pcap {
            monitor.write_frames(pcap);
        }
        let result = live::capture(&capture, &mut monitor);
        // What was gathered is scored and written even when capture failed.
        let finished = monitor.finish();
        // Once the program was attached the summary (with the kernel's
        // counters) is printed on every exit, then the first error.
        let session = match result {
            Ok(session) => session,
            Err(CaptureError {
                error,
                summary: Some(session),
            }) => {
                failure = Some(error);
                *session
            }
            Err(CaptureError {
                error,
                summary: None,
            }) => return Err(error),
        };
        if let Err(e) = finished {
            failure.get_or_insert(e);
        }
        summary_out.extend_from_slice(
            monitor
                .summary(started.elapsed(), Some(&session.counters))
                .as_bytes(),
        );
        if let Some(pcap) = monitor.take_pcap() {
            let (received, dropped) = session
                .af_xdp
                .as_ref()
                .map_or((0, 0), |a| (a.kernel.seen, a.lost()));
            let frames = pcap.writer.frames();
            let stats = CaptureStats {
                start_ns: started_ns,
                end_ns: epoch_ns(),
                received,
                dropped,
            };
            match pcap
                .writer
                .finish(&stats)
                .and_then(|mut w| w.flush().map_err(Into::into))
                .with_context(|| format!("cannot write {}", pcap.path.display()))
            {
                Ok(_) => summary_out.extend_from_slice(
                    format!(
                        "Frames saved to {} (pcapng): {frames}\n",
                        pcap.path.display()
                    )
                    .as_bytes(),
                ),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(a) = &session.af_xdp {
            let report = afxdp::stats::Report {
                counters: &session.counters,
                af_xdp: a,
            };
            summary_out.extend_from_slice(report.to_string().as_bytes());
        }
        if session.left_unread > 0 {
            let when = if session.reason == live::StopReason::SinkDone {
                "the packet count was reached"
            } else {
                "the capture stopped (not scored: the monitor was behind)"
            };
            summary_out.extend_from_slice(
                format!(
                    "{} records were still in the ring buffer when {when}.\n",
                    session.left_unread
                )
                .as_bytes(),
            );
        }
    }
    write_summary(out, &summary_out, json)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn replay(
    paths: &[PathBuf],
    filter: &[String],
    options: MonitorOptions,
    detector: Option<crate::monitor::models::Detector>,
    classifier: Option<crate::monitor::models::Classifier>,
    out: &mut dyn Write,
    json: bool,
) -> Result<()> {
    let mut reader = CaptureReader::open_all(paths)?;
    if let Some(f) = super::filter_of(filter)? {
        reader.set_filter(f);
    }
    let mut flows = StateTables::default();
    let started = Instant::now();
    // SIGINT/SIGTERM stop the replay, which reports what it read (a second
    // signal ends it at once).
    let _stopper = signals::Stopper::until_second();
    let limit = options.packet_count;
    let mut summary_out: Vec<u8> = Vec::new();
    {
        let mut monitor = Monitor::new(options, detector, classifier, out)?;
        let mut since_tick = 0u32;
        let read = read_records(
            &mut reader,
            &mut flows,
            records::Options {
                ipv4_only: false,
                limit,
            },
            |record| {
                if signals::received().is_some() {
                    return Err(records::Stop.into());
                }
                // The packet count is the reader's limit too.
                let _ = monitor.push(record, record.timestamp_ns)?;
                since_tick += 1;
                if since_tick >= REPLAY_TICK {
                    since_tick = 0;
                    monitor.on_tick(None)?;
                }
                Ok(())
            },
            |_| {},
        )
        .with_context(|| format!("cannot replay {}", crate::io::input::shown_all(paths)))?;
        monitor.finish()?;
        let interrupted = signals::received().filter(|_| read.stopped);
        if read.records == 0 {
            if let Some(signal) = interrupted {
                return Err(signals::Interrupted(signal).into());
            }
            if read.frames == 0 && reader.filtered_out() > 0 {
                bail!(
                    "none of the {} frames of {} matches the filter `{}`: nothing was monitored",
                    reader.filtered_out(),
                    reader.name(),
                    filter.join(" ")
                );
            }
            bail!(records::no_packets(reader.name(), &read));
        }
        summary_out.extend_from_slice(monitor.summary(started.elapsed(), None).as_bytes());
        if !filter.is_empty() {
            summary_out.extend_from_slice(
                format!(
                    "Filter `{}`: {} of {} frames matched.\n",
                    filter.join(" "),
                    read.frames,
                    read.frames + reader.filtered_out()
                )
                .as_bytes(),
            );
        }
        for warning in read.damage_warnings(reader.name()) {
            summary_out.extend_from_slice(format!("Warning: {warning}\n").as_bytes());
        }
        if let Some(signal) = interrupted {
            summary_out.extend_from_slice(
                format!(
                    "{}: the replay stopped after {} packets of {}; the rest was not read.\n",
                    signals::Interrupted(signal)
                        .to_string()
                        .replace("Interrupted", "Stopped"),
                    read.records,
                    reader.name()
                )
                .as_bytes(),
            );
            write_summary(out, &summary_out, json)?;
            return Err(signals::Interrupted(signal).into());
        }
    }
    write_summary(out, &summary_out, json)
}

fn epoch_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Records between two ticks of a replay (refits, flushes, status).
const REPLAY_TICK: u32 = 256;

/// The summary goes to stdout, or to stderr when stdout carries JSON lines.
fn write_summary(out: &mut dyn Write, summary: &[u8], json: bool) -> Result<()> {
    if json {
        std::io::stderr().write_all(summary)?;
    } else {
        out.write_all(summary)?;
    }
    Ok(())
}

/// `--pidfile`: the process id, in a file removed when the run ends.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &std::path::Path) -> Result<Self> {
        let mut file = crate::io::output::open_for_writing(path, false)?;
        writeln!(file, "{}", std::process::id())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A Kafka topic prefix: the characters topic names allow, short enough
/// for the suffixes.
fn topic_prefix(s: &str) -> std::result::Result<String, String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > 200 || !s.chars().all(legal) {
        return Err(
            "a topic prefix is 1 to 200 letters, digits, `.`, `_` or `-` (e.g. `sensor1`)".into(),
        );
    }
    Ok(s.to_string())
}

/// The live capture's options: the interface (`--iface` or the default
/// route's), the XDP mode, the filter and the engine.
fn capture_options(args: &RunArgs, sample_every: u32) -> Result<(String, CaptureOptions)> {
    let interface = match &args.iface {
        Some(i) => i.clone(),
        None => route::default_interface()?,
    };
    let mut capture = CaptureOptions {
        mode: args.xdp_mode,
        ipv4_only: args.ipv4_only,
        sample_every,
        filter: super::live_filter_of(&args.filter)?,
        ..CaptureOptions::new(interface.clone())
    };
    args.engine.apply(&mut capture)?;
    Ok((interface, capture))
}

/// `--kafka`'s settings, for the packet monitor or (`flows`) `--flows`.
fn kafka_options(args: &RunArgs, flows: bool) -> Option<crate::monitor::kafka::KafkaOptions> {
    (!args.kafka.is_empty()).then(|| crate::monitor::kafka::KafkaOptions {
        brokers: args.kafka.clone(),
        prefix: args.topic.clone(),
        backlog: args.kafka_backlog as usize,
        flows,
    })
}

/// `run --flows`: flows classified as they end (see
/// `monitor::flow_scoring`), from a capture or live.
fn run_flows(args: &RunArgs, out: &mut dyn Write) -> Result<()> {
    use crate::monitor::flow_scoring::{check_outputs, FlowOptions, FlowScorer};
    use ml_sniffing_common::parser::{parse, Outcome};
    use ml_sniffing_common::record::PacketRecord;

    let options = FlowOptions {
        classifier: args
            .classifier
            .clone()
            .context("--flows needs --classifier")?,
        early: args.early,
        tcp_end: !args.no_tcp_end,
        idle: Duration::from_secs(120),
        active: Duration::from_secs(1800),
        output: args.output.clone(),
        eve: args.alert.eve.clone(),
        json: args.json,
        quiet: args.quiet,
        kafka: kafka_options(args, true),
    };
    let inputs: Vec<&std::path::Path> = args.read.iter().map(PathBuf::as_path).collect();
    check_outputs(&options, &inputs)?;
    let _pidfile = args.pidfile.as_deref().map(PidFile::create).transpose()?;
    let started = Instant::now();
    let summary = if !args.read.is_empty() {
        let mut reader = CaptureReader::open_all(&args.read)?;
        if let Some(f) = super::filter_of(&args.filter)? {
            reader.set_filter(f);
        }
        let _stopper = signals::Stopper::until_second();
        let mut scorer = FlowScorer::new(&options, out)?;
        let mut packets = 0u64;
        while let Some(frame) = reader.next_frame()? {
            if signals::received().is_some() {
                break;
            }
            let mut r = PacketRecord::default();
            if parse(frame.data, frame.link, frame.wire_len as usize, &mut r) != Outcome::Ip {
                continue;
            }
            r.timestamp_ns = frame.timestamp_ns;
            r.frame_len = frame.wire_len;
            scorer.push(&r)?;
            packets += 1;
            if args.packet_count.is_some_and(|n| packets >= n) {
                break;
            }
        }
        scorer.finish()?;
        format!(
            "Summary: {packets} IP packets of {} in {:.1} s.\n{}",
            reader.name(),
            started.elapsed().as_secs_f64(),
            scorer.summary()
        )
    } else {
        // Flows need every packet.
        let (interface, mut capture) = capture_options(args, 1)?;
        // The kernel keeps the flows (one record per flow, not per packet)
        // unless what was asked needs the packets: early verdicts, a packet
        // count, flows that FIN/RST do not end, AF_XDP.
        let in_kernel = args.early.is_none()
            && args.packet_count.is_none()
            && !args.no_tcp_end
            && capture.capture == crate::capture::live::CaptureMode::Xdp;
        if in_kernel {
            capture.flow_records = Some((options.idle, options.active));
        }
        eprintln!("Classifying the flows of {interface}; CTRL+C to stop.");
        let mut scorer = FlowScorer::new(&options, out)?;
        scorer.limit = args.packet_count;
        let result = live::capture(&capture, &mut scorer);
        scorer.finish()?;
        let kernel = match result {
            Ok(session) => format!("{}", crate::capture::stats::Report(&session.counters)),
            Err(CaptureError { error, .. }) => return Err(error),
        };
        format!(
            "Summary: {:.1} s on {interface}.\n{}{kernel}",
            started.elapsed().as_secs_f64(),
            scorer.summary()
        )
    };
    let mut stderr = std::io::stderr();
    let report: &mut dyn Write = if args.json { &mut stderr } else { out };
    write!(report, "{summary}")?;
    Ok(())
}
