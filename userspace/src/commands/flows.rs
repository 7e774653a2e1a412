//! `flows OUTPUT (--read CAPTURE | --interface IF) [EXPRESSION]`: one CSV
//! row per bidirectional flow, with NFStream's statistical columns (see
//! `capture::flow_records`). Live, the XDP program keeps the flows
//! (`capture::kernel_flows`) and the rows are written as flows end.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ml_sniffing_common::parser::{self, Outcome};
use ml_sniffing_common::record::PacketRecord;

use crate::capture::flow_records::{self, FlowTable};
use crate::capture::kernel_flows::EndedFlow;
use crate::capture::live::{CaptureError, CaptureOptions, Control, RecordSink};
use crate::capture::pcap::CaptureReader;
use crate::io::output::Output;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["read", "interface"])))]
pub struct FlowsArgs {
    /// Destination CSV file for the flows (`-`: stdout).
    pub output: PathBuf,
    /// The pcap or pcapng capture (gzip or Zstandard too; `-` reads stdin;
    /// a folder, or `-r` given several times, reads its captures in the
    /// order of their first packets).
    #[arg(short, long, value_name = "CAPTURE", action = clap::ArgAction::Append)]
    pub read: Vec<PathBuf>,
    /// Capture live from this interface instead, until CTRL+C or SIGTERM:
    /// the XDP program keeps each flow's statistics and hands over one
    /// record per flow as it ends (rows are written as flows end; those
    /// still open at the stop are written then).
    #[arg(
        short,
        long,
        visible_alias = "iface",
        value_name = "IF",
        conflicts_with = "read"
    )]
    pub interface: Option<String>,
    /// Live: how the XDP program is attached: `auto` (driver mode when the
    /// driver has it, else generic), `skb` (generic) or `drv` (driver only).
    #[arg(long, value_enum, default_value_t = crate::capture::xdp::XdpMode::Auto, requires = "interface")]
    pub xdp_mode: crate::capture::xdp::XdpMode,
    /// A flow ends when it has been idle this long.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// A flow ends (and a new one begins) when it has lasted this long.
    #[arg(long, default_value = "1800s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub active_timeout: Duration,
    /// End flows on timeouts only, as NFStream does, not on a TCP FIN or
    /// RST (whose trailing ACKs then stay in the flow instead of starting
    /// a short one).
    #[arg(long)]
    pub no_tcp_end: bool,
    /// A tcpdump filter expression: only the frames it matches count.
    #[arg(value_name = "EXPRESSION")]
    pub filter: Vec<String>,
}

pub fn run(args: FlowsArgs, out: &mut dyn Write) -> Result<()> {
    if args.idle_timeout.is_zero() || args.active_timeout.is_zero() {
        bail!("--idle-timeout and --active-timeout must be longer than 0s");
    }
    if let Some(interface) = args.interface.clone() {
        return live(args, &interface, out);
    }
    let mut reader = CaptureReader::open_all(&args.read)?;
    if let Some(filter) = super::filter_of(&args.filter)? {
        reader.set_filter(filter);
    }
    let inputs: Vec<&std::path::Path> = args.read.iter().map(PathBuf::as_path).collect();
    crate::io::output::refuse_overwrite(Some(&args.output), "OUTPUT", &inputs)?;
    let mut rows = Rows::create(&args.output)?;
    let mut table = FlowTable::new(args.idle_timeout, args.active_timeout);
    if args.no_tcp_end {
        table = table.without_tcp_end();
    }
    let mut done = Vec::new();
    let (mut packets, mut other) = (0u64, 0u64);
    while let Some(frame) = reader.next_frame()? {
        let mut r = PacketRecord::default();
        if parser::parse(frame.data, frame.link, frame.wire_len as usize, &mut r) != Outcome::Ip {
            other += 1;
            continue;
        }
        r.timestamp_ns = frame.timestamp_ns;
        r.frame_len = frame.wire_len;
        packets += 1;
        table.add(&r, &mut done);
        rows.write(&mut done)?;
    }
    table.finish(&mut done);
    rows.write(&mut done)?;
    let name = reader.name().to_string();
    if packets == 0 {
        bail!("{name} holds no IP packet: no flow to write");
    }
    let (flows, shown) = (rows.flows, rows.shown.clone());
    let mut report = report_to(rows.commit()?, out);
    writeln!(
        report,
        "{flows} flows from {packets} IP packets of {name} written to {shown} ({other} other \
         frames{}{}).",
        match table.later_fragments() {
            0 => String::new(),
            n => format!(", {n} later IP fragments without ports in no flow"),
        },
        if args.filter.is_empty() {
            String::new()
        } else {
            format!(", {} not matching the filter", reader.filtered_out())
        }
    )?;
    if let Some(t) = reader.truncation() {
        writeln!(
            report,
            "Warning: the partial final record at byte offset {} was dropped.",
            t.offset
        )?;
    }
    Ok(())
}

/// The flow rows of the output file.
struct Rows {
    sink: Output,
    shown: String,
    line: String,
    flows: u64,
}

impl Rows {
    /// Creates `path` and writes the header.
    fn create(path: &std::path::Path) -> Result<Self> {
        let mut sink = Output::create(path)?;
        let shown = path.display().to_string();
        writeln!(sink, "{}", flow_records::header())
            .with_context(|| format!("cannot write {shown}"))?;
        Ok(Rows {
            sink,
            shown,
            line: String::with_capacity(1024),
            flows: 0,
        })
    }

    /// Writes the flows of `done` (emptying it).
    fn write(&mut self, done: &mut Vec<flow_records::Flow>) -> Result<()> {
        for f in done.drain(..) {
            self.line.clear();
            flow_records::row(&f, &mut self.line);
            self.line.push('\n');
            self.sink
                .write_all(self.line.as_bytes())
                .with_context(|| format!("cannot write {}", self.shown))?;
            self.flows += 1;
        }
        Ok(())
    }

    /// Finishes the file; true when it went to stdout (the summary then
    /// goes to stderr).
    fn commit(self) -> Result<bool> {
        let to_stdout = self.sink.is_stdout();
        self.sink.commit()?;
        Ok(to_stdout)
    }
}

/// Writes each ended flow as a row (and keeps the packet records the
/// kernel hands over when its flow map is full, or without it).
struct LiveRows {
    table: FlowTable,
    rows: Rows,
    done: Vec<flow_records::Flow>,
    from_kernel: u64,
}

impl RecordSink for LiveRows {
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
        for r in batch {
            self.table.add(r, &mut self.done);
        }
        self.rows.write(&mut self.done)?;
        Ok(ControlFlow::Continue(()))
    }

    fn flows(&mut self, ended: &mut Vec<EndedFlow>) -> Result<()> {
        for e in ended.drain(..) {
            let id = self.table.new_id();
            self.done.push(flow_records::Flow {
                expiration: e.expiration,
                ..flow_records::Flow::new(id, e.stats)
            });
            self.from_kernel += 1;
        }
        self.rows.write(&mut self.done)
    }

    fn tick(&mut self, _control: &mut Control) -> Result<()> {
        self.rows
            .sink
            .flush()
            .with_context(|| format!("cannot write {}", self.rows.shown))
    }
}

fn live(args: FlowsArgs, interface: &str, out: &mut dyn Write) -> Result<()> {
    let mut options = CaptureOptions {
        mode: args.xdp_mode,
        filter: super::live_filter_of(&args.filter)?,
        ..CaptureOptions::new(interface)
    };
    let mut table = FlowTable::new(args.idle_timeout, args.active_timeout);
    if args.no_tcp_end {
        // The kernel's records end on FIN/RST: build flows from packets.
        table = table.without_tcp_end();
    } else {
        options.flow_records = Some((args.idle_timeout, args.active_timeout));
    }
    crate::io::output::refuse_overwrite(Some(&args.output), "OUTPUT", &[])?;
    let mut live = LiveRows {
        table,
        rows: Rows::create(&args.output)?,
        done: Vec::new(),
        from_kernel: 0,
    };
    eprintln!(
        "Writing the flows of {interface} to {}; CTRL+C to stop.",
        live.rows.shown
    );
    let result = crate::capture::live::capture(&options, &mut live);
    live.table.finish(&mut live.done);
    live.rows.write(&mut live.done)?;
    let (flows, from_kernel, shown) = (live.rows.flows, live.from_kernel, live.rows.shown.clone());
    let to_stderr = live.rows.commit()?;
    let summary = match result {
        Ok(s) => s,
        Err(CaptureError { error, .. }) => return Err(error),
    };
    let mut report = report_to(to_stderr, out);
    writeln!(
        report,
        "{flows} flows of {interface} written to {shown} ({from_kernel} of them kept in the \
         kernel's flow records)."
    )?;
    write!(
        report,
        "{}",
        crate::capture::stats::Report(&summary.counters)
    )?;
    Ok(())
}

/// Where the summary goes: stderr when the rows went to stdout.
fn report_to(to_stderr: bool, out: &mut dyn Write) -> Box<dyn Write + '_> {
    if to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(out)
    }
}
