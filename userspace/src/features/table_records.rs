//! CSV rows become packet records, in file order, and are counted in the
//! same flow, host and pair state a capture is (the update the XDP program
//! runs), so that the packet features of a CSV are computed from records
//! like those of every other input.
//!
//! A row gives what the CSV has: the original tool's five columns, and the capture's
//! extra columns (`source_port`, `destination_port`, `ttl`, `tcp_flags`,
//! `vlan_id`) when present; others are 0. When the CSV carries the
//! capture's own flow counters (`flow_packets`, `flow_bytes`, `flow_gap`,
//! written by `sniff`) they are used as they are; the host and pair state
//! is always counted from the rows (for a CSV of a sampled live capture,
//! it sees the sample). A row whose timestamp does not read is counted at
//! the previous row's time.

use anyhow::Result;
use ml_sniffing_common::record::PacketRecord;

use super::cells::{self, PacketColumns};
use super::original::OriginalContext;
use super::records::UNKNOWN_PROTOCOL;
use crate::capture::state::StateTables;
use crate::io::Table;

/// Columns the capture commands write with the kernel's flow counters.
pub const FLOW_COLUMNS: [&str; 3] = ["flow_packets", "flow_bytes", "flow_gap"];

/// A number cell clamped into an integer type's range (empty cells: 0).
fn whole(table: &Table, row: usize, col: Option<usize>, max: f64) -> Result<u64> {
    Ok(match col {
        Some(c) => cells::number(table, row, c)?.unwrap_or(0.0).clamp(0.0, max) as u64,
        None => 0,
    })
}

/// The largest length a packet row may have: a 64 KiB IP packet with
/// link-layer headers (larger values are not packets).
const MAX_LENGTH: f64 = 65_535.0 + 64.0;

/// Rows whose values a packet cannot have, counted with the first one's
/// row, so that they are reported rather than taken silently.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RowChecks {
    /// A timestamp earlier than the row before (counted at that row's time).
    pub out_of_order: (u64, usize),
    /// A timestamp that does not read (counted at the row before's time).
    pub unreadable_time: (u64, usize),
    /// An address that does not read (an IPv6 zone `%eth0`, a name...).
    pub unreadable_address: (u64, usize),
    /// A length below 0, with a fraction, or above 64 KiB.
    pub impossible_length: (u64, usize),
}

impl RowChecks {
    fn note(slot: &mut (u64, usize), row: usize) {
        if slot.0 == 0 {
            slot.1 = row;
        }
        slot.0 += 1;
    }

    /// One warning line per kind of problem found in `table`.
    pub fn warnings(&self, table: &Table) -> Vec<String> {
        [
            (
                self.out_of_order,
                "out of time order (the behaviour features of the rows after them may be off)",
            ),
            (
                self.unreadable_time,
                "with a timestamp that does not read as epoch seconds (counted at the row \
                 before's time)",
            ),
            (
                self.unreadable_address,
                "with an address that does not read (an IPv6 zone such as %eth0, a name; \
                 taken as ::)",
            ),
            (
                self.impossible_length,
                "with a length no packet has (below 0, a fraction, or above 65,599; clamped)",
            ),
        ]
        .into_iter()
        .filter(|((n, _), _)| *n > 0)
        .map(|((n, first), what)| {
            // For a capture, the line of the CSV `sniff` writes of it.
            format!(
                "{n} row{} {what}; the first on line {}",
                if n == 1 { "" } else { "s" },
                table.line(first)
            )
        })
        .collect()
    }
}

/// Calls `each(row, record)` for every row of a packet table, in file
/// order, with the record's flow counters and behaviour counted; says
/// which rows held values a packet cannot have.
pub fn for_each_record(
    table: &Table,
    cols: &PacketColumns,
    original: &OriginalContext,
    mut each: impl FnMut(usize, &PacketRecord),
) -> Result<RowChecks> {
    let mut checks = RowChecks::default();
    let protocol_numbers: Vec<u8> = original
        .protocol_names()
        .iter()
        .map(|p| ml_sniffing_common::protocol::number(p).unwrap_or(UNKNOWN_PROTOCOL))
        .collect();
    let column = |name: &str| table.column(name);
    let (sport, dport, ttl, flags, vlan) = (
        column("source_port"),
        column("destination_port"),
        column("ttl"),
        column("tcp_flags"),
        column("vlan_id"),
    );
    let flow_columns: Option<Vec<usize>> = FLOW_COLUMNS.iter().map(|c| column(c)).collect();
    let mut tables = StateTables::default();
    let mut last_ns = 0u64;
    for row in 0..table.len() {
        let src = cells::ip(table.cell(row, cols.source_ip));
        let dst = cells::ip(table.cell(row, cols.destination_ip));
        let v6 = |a: Option<std::net::IpAddr>| matches!(a, Some(std::net::IpAddr::V6(v)) if v.to_ipv4_mapped().is_none());
        let (src_cell, dst_cell) = (
            table.cell(row, cols.source_ip),
            table.cell(row, cols.destination_ip),
        );
        if (src.is_none() && !src_cell.trim().is_empty())
            || (dst.is_none() && !dst_cell.trim().is_empty())
        {
            RowChecks::note(&mut checks.unreadable_address, row);
        }
        match cells::epoch_ns(table.cell(row, cols.timestamp)) {
            Some(ns) => {
                let ns = ns.max(0) as u64;
                if ns < last_ns {
                    RowChecks::note(&mut checks.out_of_order, row);
                }
                last_ns = ns;
            }
            None => RowChecks::note(&mut checks.unreadable_time, row),
        }
        if let Some(len) = cells::number(table, row, cols.length)? {
            if !(0.0..=MAX_LENGTH).contains(&len) || len.fract() != 0.0 {
                RowChecks::note(&mut checks.impossible_length, row);
            }
        }
        let mut r = PacketRecord {
            timestamp_ns: last_ns,
            src_addr: cells::ip_key(src),
            dst_addr: cells::ip_key(dst),
            frame_len: whole(table, row, Some(cols.length), u32::MAX as f64)? as u32,
            src_port: whole(table, row, sport, u16::MAX as f64)? as u16,
            dst_port: whole(table, row, dport, u16::MAX as f64)? as u16,
            vlan_id: whole(table, row, vlan, u16::MAX as f64)? as u16,
            protocol: protocol_numbers[original.protocol_id(row) as usize],
            ip_version: if v6(src) || v6(dst) { 6 } else { 4 },
            ttl: whole(table, row, ttl, 255.0)? as u8,
            tcp_flags: whole(table, row, flags, 255.0)? as u8,
            ..PacketRecord::default()
        };
        match &flow_columns {
            Some(c) => {
                r.flow_packets = whole(table, row, Some(c[0]), u64::MAX as f64)?;
                r.flow_bytes = whole(table, row, Some(c[1]), u64::MAX as f64)?;
                let gap = cells::number(table, row, c[2])?.unwrap_or(0.0);
                r.flow_gap_ns = (gap.max(0.0) * 1e9).round().min(u64::MAX as f64) as u64;
                tables.count_behaviour(&mut r);
            }
            None => {
                tables.count(&mut r);
            }
        }
        each(row, &r);
    }
    Ok(checks)
}
