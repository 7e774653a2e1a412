//! Frames to packet records: the shared parser, then the flow table, the
//! same steps (in the same order) as the XDP program.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Result};
use ml_sniffing_common::parser::{self, Malformed, Outcome};
use ml_sniffing_common::record::{PacketRecord, FLAG_SNAPPED};

use super::{CaptureReader, Corruption, Truncation};
use crate::capture::csv_rows::{self, RowFormatter};
use crate::capture::state::StateTables;
use crate::io::Table;
use crate::progress;

/// What to keep.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Skip IPv6 packets (the original tool kept IPv4 only).
    pub ipv4_only: bool,
    /// Stop after this many records.
    pub limit: Option<u64>,
}

/// Every reason the parser gives, in `Malformed` order (discriminants 1..).
pub const MALFORMED: [Malformed; 10] = [
    Malformed::TruncatedLink,
    Malformed::TooManyVlanTags,
    Malformed::TruncatedIp,
    Malformed::BadIpVersion,
    Malformed::BadIpHeaderLength,
    Malformed::BadIpLength,
    Malformed::TruncatedTransport,
    Malformed::BadTcpHeaderLength,
    Malformed::BadExtensionHeaders,
    Malformed::TooDeep,
];

/// A reason in words.
pub fn malformed_reason(m: Malformed) -> &'static str {
    match m {
        Malformed::TruncatedLink => "shorter than its link-layer header",
        Malformed::TooManyVlanTags => "more than 2 VLAN tags",
        Malformed::TruncatedIp => "IP header cut short",
        Malformed::BadIpVersion => "IP version does not match the link layer",
        Malformed::BadIpHeaderLength => "IPv4 header length below 20 bytes",
        Malformed::BadIpLength => "IP length field larger than the frame",
        Malformed::TruncatedTransport => "transport header cut short",
        Malformed::BadTcpHeaderLength => "TCP header length below 20 bytes",
        Malformed::BadExtensionHeaders => "IPv6 extension headers too long or cut short",
        Malformed::TooDeep => "headers beyond 1024 bytes",
    }
}

/// Returned by `on_record` (see [`read_records`]) to stop reading there:
/// the summary then says [`Summary::stopped`].
#[derive(Debug, Clone, Copy)]
pub struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reading stopped")
    }
}

impl std::error::Error for Stop {}

/// What reading a capture gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Frames read from the file.
    pub frames: u64,
    /// Records handed on (rows).
    pub records: u64,
    /// Well-formed frames that do not carry IP (ARP, LLDP...).
    pub not_ip: u64,
    /// Frames the parser refused, by reason (index = `Malformed as u8 - 1`).
    pub malformed: [u64; MALFORMED.len()],
    /// IPv6 packets skipped by `ipv4_only`.
    pub skipped_ipv6: u64,
    /// Records whose frame the capture cut short (snap length); their
    /// headers were read from the bytes kept.
    pub snapped: u64,
    /// Flows evicted from the full flow table (their counters restarted).
    pub flows_evicted: u64,
    /// The file ended inside a record.
    pub truncation: Option<Truncation>,
    /// Reading stopped at a corrupt record or block.
    pub corruption: Option<Corruption>,
    /// Reading stopped at `Options::limit`.
    pub stopped_at_limit: bool,
    /// `on_record` stopped reading ([`Stop`]).
    pub stopped: bool,
}

impl Summary {
    /// The warnings for a damaged capture called `name` (truncated, or
    /// corrupt after its first frame).
    pub fn damage_warnings(&self, name: &str) -> Vec<String> {
        let truncated = self.truncation.iter().map(|t| t.warning(name));
        let corrupt = self.corruption.iter().map(|c| c.warning(name));
        truncated.chain(corrupt).collect()
    }

    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }

    /// `(reason, count)` for every reason that occurred.
    pub fn malformed_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        MALFORMED
            .iter()
            .zip(self.malformed)
            .filter(|(_, n)| *n > 0)
            .map(|(m, n)| (malformed_reason(*m), n))
    }
}

/// Reads every frame of `reader` through the shared parser and the flow
/// table, handing each kept record to `on_record`; `on_progress` gets the
/// byte offset now and then.
pub fn read_records<R: Read>(
    reader: &mut CaptureReader<R>,
    flows: &mut StateTables,
    options: Options,
    mut on_record: impl FnMut(&PacketRecord) -> Result<()>,
    mut on_progress: impl FnMut(u64),
) -> Result<Summary> {
    let mut summary = Summary::default();
    let evicted_before = flows.evicted();
    loop {
        if summary.frames.is_multiple_of(65_536) {
            on_progress(reader.offset());
        }
        if options.limit.is_some_and(|n| summary.records >= n) {
            summary.stopped_at_limit = true;
            break;
        }
        let Some(frame) = reader.next_frame()? else {
            break;
        };
        summary.frames += 1;
        let mut record = PacketRecord::default();
        match parser::parse(frame.data, frame.link, frame.wire_len as usize, &mut record) {
            Outcome::Ip => {}
            Outcome::NotIp { .. } => {
                summary.not_ip += 1;
                continue;
            }
            Outcome::Malformed(m) => {
                summary.malformed[(m as usize).saturating_sub(1).min(MALFORMED.len() - 1)] += 1;
                continue;
            }
        }
        if options.ipv4_only && record.ip_version != 4 {
            summary.skipped_ipv6 += 1;
            continue;
        }
        record.timestamp_ns = frame.timestamp_ns;
        record.frame_len = frame.wire_len;
        if record.flags & FLAG_SNAPPED != 0 {
            summary.snapped += 1;
        }
        flows.count(&mut record);
        match on_record(&record) {
            Ok(()) => summary.records += 1,
            Err(e) if e.is::<Stop>() => {
                summary.stopped = true;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    summary.truncation = reader.truncation().cloned();
    summary.corruption = reader.corruption().cloned();
    summary.flows_evicted = flows.evicted() - evicted_before;
    Ok(summary)
}

/// Reads a whole capture into a [`Table`] with the columns `sniff` writes
/// (see [`csv_rows`]), for `detect` and `classify`. A truncated final
/// record, a corrupt record after the first (the packets before it are
/// kept) and a full flow table are reported on stderr.
pub fn read_table(path: &Path) -> Result<Table> {
    let opened = crate::io::input::open(path)?;
    read_table_from(opened.reader, &crate::io::input::shown(path), opened.size)
}

/// [`read_table`] from a stream of `size` bytes (0 if unknown) called
/// `name`.
pub fn read_table_from<R: Read>(input: R, name: &str, size: u64) -> Result<Table> {
    let mut reader = CaptureReader::new(input, name)?;
    let bar = progress::bytes(size, "reading capture");
    let mut table = csv_rows::new_table();
    let mut formatter = RowFormatter::new();
    let mut flows = StateTables::default();
    let summary = read_records(
        &mut reader,
        &mut flows,
        Options::default(),
        |record| csv_rows::push_record(&mut table, &mut formatter, record),
        |offset| bar.set_position(offset),
    )?;
    bar.finish_and_clear();
    let name = reader.name();
    for warning in summary.damage_warnings(name) {
        eprintln!("Warning: {warning}");
    }
    if summary.flows_evicted > 0 {
        eprintln!(
            "Warning: {}",
            evictions_warning(&flows, summary.flows_evicted)
        );
    }
    if table.is_empty() {
        bail!("{}", no_packets(name, &summary));
    }
    Ok(table)
}

/// The sentence for a full flow table.
pub fn evictions_warning(flows: &StateTables, evicted: u64) -> String {
    format!(
        "the capture holds more than {} concurrent flows: {evicted} flows were evicted \
         (least recently seen first) and restarted their counters when they came back, \
         as they would in the kernel's flow map",
        flows.capacity()
    )
}

/// The sentence for a capture that yields no record.
pub fn no_packets(name: &str, summary: &Summary) -> String {
    if summary.frames == 0 {
        return format!("No packets were captured: {name} holds no packets");
    }
    let mut parts = Vec::new();
    if summary.not_ip > 0 {
        parts.push(format!("{} not IP", summary.not_ip));
    }
    if summary.malformed_total() > 0 {
        parts.push(format!("{} malformed", summary.malformed_total()));
    }
    if summary.skipped_ipv6 > 0 {
        parts.push(format!(
            "{} IPv6 skipped by --ipv4-only",
            summary.skipped_ipv6
        ));
    }
    format!(
        "No packets were captured: none of the {} frames in {name} is an IP packet to keep ({})",
        summary.frames,
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ml_sniffing_common::build::{FrameSpec, Transport};
    use pcap_file::pcap::{PcapPacket, PcapWriter};

    use super::*;

    /// Packets of flows a, b, c, a (one second apart) through a table of 2
    /// flows: `c` evicts `a`, whose last packet then starts over.
    #[test]
    fn evictions_are_counted_and_restart_the_flow() {
        let frame = |dst: u16| {
            FrameSpec::new(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                Transport::Udp { src: 1, dst },
            )
            .build()
        };
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (i, dst) in [10u16, 20, 30, 10].into_iter().enumerate() {
            let f = frame(dst);
            w.write_packet(&PcapPacket::new(
                Duration::from_secs(1 + i as u64),
                f.len() as u32,
                &f,
            ))
            .unwrap();
        }
        let bytes = w.into_writer();
        let mut reader = CaptureReader::new(&bytes[..], "x").unwrap();
        let mut flows = StateTables::with_capacity(2);
        let mut packets = Vec::new();
        let summary = read_records(
            &mut reader,
            &mut flows,
            Options::default(),
            |r| {
                packets.push((r.dst_port, r.flow_packets, r.flow_gap_ns));
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(summary.flows_evicted, 2);
        assert_eq!(packets, [(10, 1, 0), (20, 1, 0), (30, 1, 0), (10, 1, 0)]);
        assert!(evictions_warning(&flows, 2).starts_with("the capture holds more than 2 "));
    }
}
