//! `sniff OUTPUT --interface IF`: live capture, through the XDP program's
//! records or, with `--capture af-xdp`, whole frames through AF_XDP (which
//! `--write-pcap` also writes to a pcapng file).
//!
//! Rows (and frames) are written as they arrive and flushed every 100 ms,
//! so a crash loses nothing already flushed (the original kept everything in
//! memory until the end). A CSV file always ends on a whole row, also when
//! the disk fills, and the report (rows in the file, kernel counters) is
//! printed on every exit once the program was attached, errors included.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ml_sniffing_common::record::PacketRecord;

use super::SniffArgs;
use crate::capture::afxdp;
use crate::capture::csv_rows::CsvRowWriter;
use crate::capture::live::{
    self, CaptureError, CaptureMode, CaptureOptions, CapturedFrame, RecordSink, StopReason,
};
use crate::capture::pcap::writer::{CaptureStats, PcapNgWriter};
use crate::capture::programs;
use crate::capture::stats::Report;
use crate::capture::xdp::{check_privileges_for, interface_index, Needs};
use crate::io::lines::LineFile;

/// Writes records as CSV rows (and, in AF_XDP mode, frames to a pcapng
/// file) until the packet count is reached.
struct Rows<W: Write> {
    rows: CsvRowWriter<W>,
    limit: Option<u64>,
    shown: String,
    pcap: Option<PcapOut>,
    /// Records whose frames came since the last batch (frames come before
    /// the batch holding their records).
    pending: u64,
}

/// The `--write-pcap` file.
struct PcapOut {
    writer: PcapNgWriter<BufWriter<File>>,
    path: PathBuf,
    created: bool,
}

impl<W: Write> Rows<W> {
    fn limit_reached(&self, rows: u64) -> bool {
        self.limit.is_some_and(|limit| rows >= limit)
    }
}

impl<W: Write> RecordSink for Rows<W> {
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
        self.pending = 0;
        for record in batch {
            if self.limit_reached(self.rows.rows()) {
                break;
            }
            self.rows
                .write(record)
                .with_context(|| format!("cannot write {}", self.shown))?;
        }
        if self.limit_reached(self.rows.rows()) {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Every frame goes to the pcap file until the packet count is reached
    /// (frames after the last row are left out, as their rows are).
    fn frame(&mut self, frame: &CapturedFrame<'_>) -> Result<()> {
        if self.limit_reached(self.rows.rows() + self.pending) {
            return Ok(());
        }
        self.pending += frame.record.is_some() as u64;
        if let Some(pcap) = &mut self.pcap {
            pcap.writer
                .write(frame.timestamp_ns, frame.data)
                .with_context(|| format!("cannot write {}", pcap.path.display()))?;
        }
        Ok(())
    }

    fn tick(&mut self, _control: &mut live::Control) -> Result<()> {
        // Ticks come once the program is attached: the header of a deferred
        // writer (stdout) shows the capture has started.
        self.rows
            .write_header()
            .and_then(|()| self.rows.get_mut().flush())
            .with_context(|| format!("cannot write {}", self.shown))?;
        if let Some(pcap) = &mut self.pcap {
            pcap.writer
                .get_mut()
                .flush()
                .with_context(|| format!("cannot write {}", pcap.path.display()))?;
        }
        Ok(())
    }
}

pub fn run(args: &SniffArgs, interface: &str, out: &mut dyn Write) -> Result<()> {
    let mut options = CaptureOptions {
        mode: args.xdp_mode,
        ipv4_only: args.ipv4_only,
        sample_every: args.sample,
        filter: crate::commands::live_filter_of(&args.filter)?,
        ..CaptureOptions::new(interface)
    };
    args.engine.apply(&mut options)?;
    if args.write_pcap.is_some() && options.capture != CaptureMode::AfXdp {
        bail!("--write-pcap needs --capture af-xdp: the record path never sees whole frames");
    }
    // The failures that need no kernel come before any output.
    match options.capture {
        CaptureMode::Xdp => programs::capture()?,
        CaptureMode::AfXdp => {
            afxdp::attach_mode(&options)?;
            programs::xsk()?
        }
    };
    interface_index(&options.interface)?;
    check_privileges_for(match options.capture {
        CaptureMode::Xdp => Needs::Xdp,
        CaptureMode::AfXdp => Needs::AfXdp,
    })?;
    let pcap = match &args.write_pcap {
        Some(path) => {
            if same_path(path, &args.output) {
                bail!(
                    "--write-pcap {} is also the CSV output: choose another file",
                    path.display()
                );
            }
            let created = !path.exists();
            let file = create(path)?;
            let writer = PcapNgWriter::new(BufWriter::with_capacity(1 << 20, file), interface)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(PcapOut {
                writer,
                path: path.clone(),
                created,
            })
        }
        None => None,
    };
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout {
        // Rows go to stdout: everything else to stderr.
        let mut sink = Rows {
            // The header waits for the capture to start (first tick).
            rows: CsvRowWriter::deferred(&mut *out),
            limit: args.packet_count,
            shown: "stdout".into(),
            pcap,
            pending: 0,
        };
        let started = epoch_ns();
        let result = capture(&options, &mut sink);
        let rows = sink.rows.rows();
        let pcap = sink.pcap.take();
        drop(sink);
        let summary = match reported(result, None, rows, &options, &mut std::io::stderr()) {
            Ok(summary) => summary,
            Err(e) => {
                discard(pcap);
                return Err(e);
            }
        };
        if rows == 0 {
            discard(pcap);
            bail!(no_packets(&options));
        }
        finish_pcap(pcap, &summary, started, &mut std::io::stderr())?;
        return Ok(());
    }

    let path = &args.output;
    // Only a file this run creates is removed when nothing was captured
    // (never /dev/null or a file that was there before).
    let created = !path.exists();
    let file = create(path)?;
    // Whole rows only, even when the disk fills (see `io::lines`).
    let mut sink = Rows {
        rows: CsvRowWriter::new(LineFile::new(file))
            .with_context(|| format!("cannot write {}", path.display()))?,
        limit: args.packet_count,
        shown: path.display().to_string(),
        pcap,
        pending: 0,
    };
    let started = epoch_ns();
    let result = capture(&options, &mut sink);
    let flushed = sink
        .rows
        .get_mut()
        .flush()
        .with_context(|| format!("cannot write {}", path.display()));
    // The rows in the file: all of them, or those before a write failed.
    let rows = sink.rows.get_mut().lines().saturating_sub(1);
    let pcap = sink.pcap.take();
    drop(sink);
    // The report goes with the rows' summary, or with the error when
    // nothing was captured.
    let mut stderr = std::io::stderr();
    let report_to: &mut dyn Write = if rows == 0 { &mut stderr } else { &mut *out };
    let summary = match reported(result, flushed.err(), rows, &options, report_to) {
        Ok(summary) => summary,
        Err(e) => {
            if rows == 0 && created {
                let _ = std::fs::remove_file(path);
            }
            discard(pcap);
            return Err(e);
        }
    };
    if rows == 0 {
        // As the original: no file when nothing was captured.
        if created {
            let _ = std::fs::remove_file(path);
        }
        discard(pcap);
        bail!(no_packets(&options));
    }
    writeln!(out, "Captured packets saved to {}", path.display())?;
    finish_pcap(pcap, &summary, started, out)?;
    Ok(())
}

/// Writes the report of a capture that got as far as attaching, failed
/// or not (`late` is an error after the capture, e.g. the last flush), to
/// `out`; returns the summary, or the error once reported.
fn reported(
    result: Result<live::Summary, CaptureError>,
    late: Option<anyhow::Error>,
    rows: u64,
    options: &CaptureOptions,
    out: &mut dyn Write,
) -> Result<live::Summary> {
    let (summary, error) = match result {
        Ok(summary) => (summary, late),
        Err(CaptureError {
            error,
            summary: Some(summary),
        }) => (*summary, Some(error)),
        Err(CaptureError {
            error,
            summary: None,
        }) => return Err(error),
    };
    report(out, rows, &summary, options)?;
    match error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Ends the pcapng file with the capture's statistics.
fn finish_pcap(
    pcap: Option<PcapOut>,
    summary: &live::Summary,
    started: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(pcap) = pcap else { return Ok(()) };
    let frames = pcap.writer.frames();
    let (received, dropped) = summary
        .af_xdp
        .as_ref()
        .map_or((0, 0), |a| (a.kernel.seen, a.lost()));
    let stats = CaptureStats {
        start_ns: started,
        end_ns: epoch_ns(),
        received,
        dropped,
    };
    let shown = pcap.path.display().to_string();
    pcap.writer
        .finish(&stats)
        .and_then(|mut w| w.flush().map_err(Into::into))
        .with_context(|| format!("cannot write {shown}"))?;
    writeln!(out, "Frames saved to {shown} (pcapng): {frames}")?;
    Ok(())
}

/// Removes a pcap file this run created (the capture failed).
fn discard(pcap: Option<PcapOut>) {
    if let Some(p) = pcap {
        let (path, created) = (p.path, p.created);
        drop(p.writer);
        if created {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn epoch_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn same_path(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn capture(
    options: &CaptureOptions,
    sink: &mut dyn RecordSink,
) -> Result<live::Summary, CaptureError> {
    match options.capture {
        CaptureMode::Xdp => eprintln!(
            "Capturing on {} (XDP mode {}); press CTRL+C to stop.",
            options.interface,
            options.mode.name()
        ),
        CaptureMode::AfXdp => eprintln!(
            "Capturing on {} through AF_XDP (queues {}, {} bind, {}); press CTRL+C to stop.",
            options.interface,
            options.af_xdp.queues,
            options.af_xdp.bind.name(),
            if options.af_xdp.consume {
                "frames kept from the host stack"
            } else {
                "frames re-injected into the host stack"
            }
        ),
    }
    live::capture(options, sink)
}

fn create(path: &Path) -> Result<File> {
    crate::io::output::open_for_writing(path, false)
}

fn no_packets(options: &CaptureOptions) -> String {
    format!(
        "No packets were captured on {}{}.",
        options.interface,
        if options.ipv4_only {
            " (IPv4 only)"
        } else {
            ""
        }
    )
}

fn report(
    out: &mut dyn Write,
    rows: u64,
    summary: &live::Summary,
    options: &CaptureOptions,
) -> Result<()> {
    let why = match summary.reason {
        StopReason::SinkDone => "packet count reached",
        StopReason::Interrupted => "interrupted",
        StopReason::Terminated => "terminated",
        StopReason::InterfaceGone => "the interface vanished",
        StopReason::Failed => "stopped by an error",
    };
    writeln!(
        out,
        "Rows written: {rows} ({why}, detached from {})",
        options.interface
    )?;
    let unwritten = summary.counters.emitted.saturating_sub(rows);
    if unwritten > 0 && summary.reason == StopReason::SinkDone {
        writeln!(
            out,
            "Records emitted but not written (packet count reached): {unwritten}"
        )?;
    } else if unwritten > 0 {
        writeln!(
            out,
            "Records emitted but not written: {unwritten} ({} still in the ring buffer when the capture stopped)",
            summary.left_unread
        )?;
    }
    match &summary.af_xdp {
        Some(af_xdp) => write!(
            out,
            "{}",
            afxdp::stats::Report {
                counters: &summary.counters,
                af_xdp
            }
        )?,
        None => write!(out, "{}", Report(&summary.counters))?,
    }
    Ok(())
}
