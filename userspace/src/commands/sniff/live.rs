//! `sniff OUTPUT --interface IF`: live capture through the XDP program.
//!
//! Rows are written as records arrive and flushed every 100 ms, so a crash
//! loses nothing already flushed (the original kept everything in memory
//! until the end).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ml_sniffing_common::record::PacketRecord;

use super::SniffArgs;
use crate::capture::csv_rows::CsvRowWriter;
use crate::capture::live::{self, CaptureOptions, RecordSink, StopReason};
use crate::capture::programs;
use crate::capture::stats::Report;
use crate::capture::xdp::{check_privileges, interface_index};

/// Writes records as CSV rows until the packet count is reached.
struct Rows<W: Write> {
    rows: CsvRowWriter<W>,
    limit: Option<u64>,
    shown: String,
}

impl<W: Write> RecordSink for Rows<W> {
    fn records(&mut self, batch: &[PacketRecord]) -> Result<ControlFlow<()>> {
        for record in batch {
            if self.limit.is_some_and(|limit| self.rows.rows() >= limit) {
                break;
            }
            self.rows
                .write(record)
                .with_context(|| format!("cannot write {}", self.shown))?;
        }
        if self.limit.is_some_and(|limit| self.rows.rows() >= limit) {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    fn tick(&mut self, _control: &mut live::Control) -> Result<()> {
        self.rows
            .get_mut()
            .flush()
            .with_context(|| format!("cannot write {}", self.shown))
    }
}

pub fn run(args: &SniffArgs, interface: &str, out: &mut dyn Write) -> Result<()> {
    let options = CaptureOptions {
        interface: interface.to_owned(),
        mode: args.xdp_mode,
        ipv4_only: args.ipv4_only,
        sample_every: args.sample,
    };
    // The failures that need no kernel come before any output.
    programs::capture()?;
    interface_index(&options.interface)?;
    check_privileges()?;
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout {
        // Rows go to stdout: everything else to stderr.
        let mut sink = Rows {
            rows: CsvRowWriter::new(&mut *out).context("cannot write stdout")?,
            limit: args.packet_count,
            shown: "stdout".into(),
        };
        let summary = capture(&options, &mut sink)?;
        let rows = sink.rows.rows();
        drop(sink);
        report(&mut std::io::stderr(), rows, &summary, &options)?;
        if rows == 0 {
            bail!(no_packets(&options));
        }
        return Ok(());
    }

    let path = &args.output;
    // Only a file this run creates is removed when nothing was captured
    // (never /dev/null or a file that was there before).
    let created = !path.exists();
    let file = create(path)?;
    let mut sink = Rows {
        rows: CsvRowWriter::new(BufWriter::with_capacity(1 << 20, file))
            .with_context(|| format!("cannot write {}", path.display()))?,
        limit: args.packet_count,
        shown: path.display().to_string(),
    };
    let result = capture(&options, &mut sink);
    let rows = sink.rows.rows();
    let flushed = sink.rows.get_mut().flush();
    drop(sink);
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            if rows == 0 && created {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    flushed.with_context(|| format!("cannot write {}", path.display()))?;
    if rows == 0 {
        // As the original: no file when nothing was captured.
        if created {
            let _ = std::fs::remove_file(path);
        }
        report(&mut std::io::stderr(), rows, &summary, &options)?;
        bail!(no_packets(&options));
    }
    report(out, rows, &summary, &options)?;
    writeln!(out, "Captured packets saved to {}", path.display())?;
    Ok(())
}

fn capture(options: &CaptureOptions, sink: &mut dyn RecordSink) -> Result<live::Summary> {
    eprintln!(
        "Capturing on {} (XDP mode {}); press CTRL+C to stop.",
        options.interface,
        options.mode.name()
    );
    live::capture(options, sink)
}

fn create(path: &Path) -> Result<File> {
    if path.is_dir() {
        bail!("cannot write {}: it is a directory", path.display());
    }
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
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
    }
    write!(out, "{}", Report(&summary.counters))?;
    Ok(())
}
