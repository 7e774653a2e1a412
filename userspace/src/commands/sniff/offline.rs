//! `sniff OUTPUT --read CAPTURE`: a capture file through the shared parser
//! and the flow table into the CSV a live capture writes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::SniffArgs;
use crate::capture::csv_rows::CsvRowWriter;
use crate::capture::pcap::{self, records, CaptureReader, Options, Summary};
use crate::capture::state::StateTables;
use crate::io::output::Output;
use crate::progress;

pub fn run(args: &SniffArgs, captures: &[PathBuf], out: &mut dyn Write) -> Result<()> {
    let mut reader = CaptureReader::open_all(captures)?;
    if let Some(filter) = crate::commands::filter_of(&args.filter)? {
        reader.set_filter(filter);
    }
    if captures
        .iter()
        .any(|c| crate::io::output::same_file(c, &args.output))
    {
        bail!(
            "{} is the capture being read: choose another output file",
            args.output.display()
        );
    }
    let mut sink = Output::create(&args.output)?;
    let shown_output = args.output.display().to_string();
    let size = captures
        .iter()
        .map(|c| std::fs::metadata(c).map_or(0, |m| m.len()))
        .sum();
    let bar = progress::bytes(size, "reading capture");
    let mut flows = StateTables::default();
    let options = Options {
        ipv4_only: args.ipv4_only,
        limit: args.packet_count,
    };
    let mut written = 0u64;
    let summary = {
        let mut rows =
            CsvRowWriter::new(&mut sink).with_context(|| format!("cannot write {shown_output}"))?;
        pcap::read_records(
            &mut reader,
            &mut flows,
            options,
            |record| {
                rows.write(record)
                    .with_context(|| format!("cannot write {shown_output}"))?;
                written += 1;
                Ok(())
            },
            |offset| bar.set_position(offset),
        )
    };
    let summary = summary.inspect_err(|e| {
        if crate::io::output::is_broken_pipe(e) {
            bar.finish_and_clear();
            eprintln!(
                "{}: the output was closed by its reader after {written} rows; stopped.",
                reader.name()
            );
        }
    })?;
    bar.finish_and_clear();
    for warning in summary.damage_warnings(reader.name()) {
        eprintln!("Warning: {warning}");
    }
    if summary.flows_evicted > 0 {
        eprintln!(
            "Warning: {}",
            records::evictions_warning(&flows, summary.flows_evicted)
        );
    }
    if summary.records == 0 && summary.frames == 0 && reader.filtered_out() > 0 {
        bail!(
            "none of the {} frames of {} matches the filter `{}`: nothing was written",
            reader.filtered_out(),
            reader.name(),
            args.filter.join(" ")
        );
    }
    if summary.records == 0 {
        // The temporary output is removed: no empty CSV appears.
        bail!("{}", records::no_packets(reader.name(), &summary));
    }
    sink.commit()?;
    if args.output.as_os_str() == "-" {
        // The rows took stdout: the report goes to stderr.
        write_summary(&mut std::io::stderr(), &reader, &summary, args)?;
        return Ok(());
    }
    writeln!(out, "Captured packets saved to {}", args.output.display())?;
    write_summary(out, &reader, &summary, args)?;
    Ok(())
}

fn write_summary<R: std::io::Read>(
    out: &mut dyn Write,
    reader: &CaptureReader<R>,
    s: &Summary,
    args: &SniffArgs,
) -> Result<()> {
    writeln!(out, "{} ({}):", reader.name(), reader.format())?;
    writeln!(
        out,
        "  frames read      {}",
        s.frames + reader.filtered_out()
    )?;
    if !args.filter.is_empty() {
        writeln!(
            out,
            "  filtered out     {} (not matching `{}`)",
            reader.filtered_out(),
            args.filter.join(" ")
        )?;
    }
    writeln!(out, "  rows written     {}", s.records)?;
    writeln!(out, "  not IP           {}", s.not_ip)?;
    let reasons: Vec<String> = s
        .malformed_by_reason()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    if reasons.is_empty() {
        writeln!(out, "  malformed        0")?;
    } else {
        writeln!(
            out,
            "  malformed        {} ({})",
            s.malformed_total(),
            reasons.join(", ")
        )?;
    }
    if args.ipv4_only {
        writeln!(out, "  IPv6 skipped     {} (--ipv4-only)", s.skipped_ipv6)?;
    }
    if s.snapped > 0 {
        writeln!(
            out,
            "  cut short        {} (the capture kept only part of the frame; \
             headers were read from the kept bytes)",
            s.snapped
        )?;
    }
    if s.stopped_at_limit {
        writeln!(out, "  stopped after --packet-count {}", s.records)?;
    }
    if let Some(t) = &s.truncation {
        writeln!(
            out,
            "  truncated        the partial final record at byte offset {} was dropped",
            t.offset
        )?;
    }
    if let Some(c) = &s.corruption {
        writeln!(
            out,
            "  corrupt          reading stopped at the corrupt record at byte offset {}; \
             the rest of the file was skipped",
            c.offset
        )?;
    }
    if s.flows_evicted > 0 {
        writeln!(out, "  flows evicted    {}", s.flows_evicted)?;
    }
    Ok(())
}
