//! The default feature set: what the seed columns (and the extra columns the
//! capture commands write) say about a packet, without the original's quirks.
//!
//! - protocol numbers are IANA's, the same in every file;
//! - flow statistics are causal: a packet sees only its flow's past, so the
//!   same values can be computed live, packet by packet (the kernel program
//!   computes them with the same [`FlowState`] code);
//! - no wall-clock features (time of day says little about a packet);
//! - no addresses read as magnitudes.

use anyhow::Result;
use ml_sniffing_common::flow::FlowState;
use ml_sniffing_common::protocol;

use super::cells::{self, PacketColumns};
use super::flows::{group_by_key, Groups};
use super::matrix::{to_f32, FeatureMatrix};
use super::seed::SeedContext;
use crate::io::Table;

/// The IP protocol feature for a protocol name no table knows.
pub const UNKNOWN_PROTOCOL: u8 = 255;

/// Capture columns used as features, as they are, when the input has them.
pub const OPTIONAL_COLUMNS: [&str; 4] = ["source_port", "destination_port", "ttl", "tcp_flags"];

/// Columns the capture commands write with the kernel's flow counters. When
/// an input has all three they are used instead of recomputing them (the
/// kernel saw every packet even when the CSV holds a sample).
pub const FLOW_COLUMNS: [&str; 3] = ["flow_packets", "flow_bytes", "flow_gap"];

/// Every default feature, in model order. Those from [`OPTIONAL_COLUMNS`]
/// are only present when the input has the column.
pub const ALL_FEATURES: [&str; 11] = [
    "length",
    "ip_protocol",
    "source_port",
    "destination_port",
    "ttl",
    "tcp_flags",
    "source_is_private",
    "destination_is_private",
    "flow_packets",
    "flow_mean_length",
    "flow_gap",
];

/// The default features available for a table's columns, in model order.
pub fn feature_names(table: &Table) -> Vec<String> {
    ALL_FEATURES
        .iter()
        .filter(|f| !OPTIONAL_COLUMNS.contains(f) || table.column(f).is_some())
        .map(|f| f.to_string())
        .collect()
}

/// The protocol feature of a protocol cell: its IANA number.
pub fn protocol_number(cell: &str) -> u8 {
    protocol::number(cell).unwrap_or(UNKNOWN_PROTOCOL)
}

/// Computes the default features of every row. `seed` has each row's
/// flow in the original's sense (source, destination, protocol as written)
/// and its protocol name.
pub fn features(table: &Table, cols: &PacketColumns, seed: &SeedContext) -> Result<FeatureMatrix> {
    let seed_flows = seed.flow_of_row();
    // Each distinct protocol name is looked up once.
    let protocol_numbers: Vec<u8> = seed
        .protocol_names()
        .iter()
        .map(|p| protocol_number(p))
        .collect();
    let names = feature_names(table);
    let n = table.len();
    let mut m = FeatureMatrix::zeros(names.clone(), n);
    let index = |name: &str| {
        names
            .iter()
            .position(|f| f == name)
            .expect("always present")
    };
    let (f_length, f_proto) = (index("length"), index("ip_protocol"));
    let (f_src_priv, f_dst_priv) = (index("source_is_private"), index("destination_is_private"));
    let (f_packets, f_mean, f_gap) = (
        index("flow_packets"),
        index("flow_mean_length"),
        index("flow_gap"),
    );
    // (feature index, column index) of the optional capture columns present.
    let optional: Vec<(usize, usize)> = OPTIONAL_COLUMNS
        .iter()
        .filter_map(|c| Some((names.iter().position(|f| f == c)?, table.column(c)?)))
        .collect();

    // Per-row features on all cores; flow statistics after, in file order.
    m.fill_rows(|row, values| {
        values[f_length] = to_f32(cells::number(table, row, cols.length)?.unwrap_or(0.0));
        values[f_proto] = protocol_numbers[seed.protocol_id(row) as usize] as f32;
        let src = cells::ip(table.cell(row, cols.source_ip));
        let dst = cells::ip(table.cell(row, cols.destination_ip));
        values[f_src_priv] = cells::is_private(src) as u8 as f32;
        values[f_dst_priv] = cells::is_private(dst) as u8 as f32;
        for &(f, c) in &optional {
            values[f] = to_f32(cells::number(table, row, c)?.unwrap_or(0.0));
        }
        Ok(())
    })?;

    if let Some(c) = FLOW_COLUMNS
        .iter()
        .map(|c| table.column(c))
        .collect::<Option<Vec<usize>>>()
    {
        for row in 0..n {
            let packets = cells::number(table, row, c[0])?.unwrap_or(0.0);
            let bytes = cells::number(table, row, c[1])?.unwrap_or(0.0);
            let gap = cells::number(table, row, c[2])?.unwrap_or(0.0);
            m.set(row, f_packets, to_f32(packets));
            m.set(
                row,
                f_mean,
                to_f32(if packets > 0.0 { bytes / packets } else { 0.0 }),
            );
            m.set(row, f_gap, to_f32(gap));
        }
        return Ok(m);
    }

    // Flows by (source, destination, protocol, ports), counted in file
    // order with the same update the kernel program runs.
    let (sport, dport) = (
        table.column("source_port"),
        table.column("destination_port"),
    );
    let port = |c: Option<usize>, row| -> Result<u64> {
        Ok(match c {
            Some(c) => cells::number(table, row, c)?.unwrap_or(0.0) as u16 as u64,
            None => 0,
        })
    };
    let flows = if sport.is_some() || dport.is_some() {
        let mut keys = Vec::with_capacity(n);
        for (row, &flow) in seed_flows.iter().enumerate() {
            keys.push((flow as u64) << 32 | port(sport, row)? << 16 | port(dport, row)?);
        }
        group_by_key(n, |row| keys[row])
    } else {
        Groups {
            of_row: seed_flows.to_vec(),
            len: seed_flows
                .iter()
                .map(|&f| f as usize + 1)
                .max()
                .unwrap_or(0),
        }
    };
    let mut states = vec![FlowState::default(); flows.len];
    for row in 0..n {
        let state = &mut states[flows.of_row[row] as usize];
        let now = match cells::epoch_ns(table.cell(row, cols.timestamp)) {
            Some(ns) => ns.max(0) as u64,
            // No usable time: count the packet with no gap.
            None => state.last_seen_ns,
        };
        let length = m.get(row, f_length).clamp(0.0, u32::MAX as f32) as u32;
        let c = state.record(length, now);
        m.set(row, f_packets, c.packets as f32);
        m.set(row, f_mean, to_f32(c.bytes as f64 / c.packets as f64));
        m.set(row, f_gap, to_f32(c.gap_ns as f64 / 1e9));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(headers: &[&str], rows: &[&[&str]]) -> Table {
        Table::from_rows(headers, rows).unwrap()
    }

    fn compute(t: &Table) -> Result<FeatureMatrix> {
        let cols = PacketColumns::find(t).unwrap();
        let seed = SeedContext::new(t, cols)?;
        features(t, &cols, &seed)
    }

    fn column(m: &FeatureMatrix, name: &str) -> Vec<f32> {
        let f = m.names().iter().position(|n| n == name).unwrap();
        m.column(f).to_vec()
    }

    #[test]
    fn causal_flow_statistics_and_stable_protocol_numbers() {
        let t = table(
            &cells::SEED_COLUMNS,
            &[
                &["10.0", "10.0.0.1", "8.8.8.8", "udp", "100"],
                &["10.5", "10.0.0.1", "8.8.8.8", "UDP", "50"],
                &["11.0", "8.8.8.8", "10.0.0.1", "udp", "70"],
                &["12.0", "10.0.0.1", "8.8.8.8", "udp", "90"],
                &["12.0", "fd00::1", "2001:db8::1", "ipv6-icmp", "80"],
                &["", "10.0.0.1", "8.8.8.8", "weird", "10"],
            ],
        );
        let m = compute(&t).unwrap();
        assert_eq!(
            m.names(),
            [
                "length",
                "ip_protocol",
                "source_is_private",
                "destination_is_private",
                "flow_packets",
                "flow_mean_length",
                "flow_gap"
            ]
        );
        assert_eq!(
            column(&m, "ip_protocol"),
            [17.0, 17.0, 17.0, 17.0, 58.0, 255.0]
        );
        assert_eq!(column(&m, "flow_packets"), [1.0, 2.0, 1.0, 3.0, 1.0, 1.0]);
        assert_eq!(
            column(&m, "flow_mean_length"),
            [100.0, 75.0, 70.0, 80.0, 80.0, 10.0]
        );
        assert_eq!(column(&m, "flow_gap"), [0.0, 0.5, 0.0, 1.5, 0.0, 0.0]);
        assert_eq!(
            column(&m, "source_is_private"),
            [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn capture_columns_become_features_and_ports_split_flows() {
        let t = table(
            &[
                "timestamp",
                "source_ip",
                "destination_ip",
                "protocol",
                "length",
                "source_port",
                "destination_port",
                "ttl",
                "tcp_flags",
            ],
            &[
                &[
                    "1.0", "10.0.0.1", "10.0.0.2", "tcp", "60", "1000", "80", "64", "2",
                ],
                &[
                    "2.0", "10.0.0.1", "10.0.0.2", "tcp", "60", "1001", "80", "64", "2",
                ],
                &[
                    "3.0", "10.0.0.1", "10.0.0.2", "tcp", "60", "1000", "80", "64", "16",
                ],
            ],
        );
        let m = compute(&t).unwrap();
        assert_eq!(m.n_features(), 11);
        assert_eq!(column(&m, "destination_port"), [80.0, 80.0, 80.0]);
        assert_eq!(column(&m, "tcp_flags"), [2.0, 2.0, 16.0]);
        assert_eq!(column(&m, "flow_packets"), [1.0, 1.0, 2.0]);
        assert_eq!(column(&m, "flow_gap"), [0.0, 0.0, 2.0]);
    }

    #[test]
    fn kernel_flow_counters_are_used_when_present() {
        let t = table(
            &[
                "timestamp",
                "source_ip",
                "destination_ip",
                "protocol",
                "length",
                "flow_packets",
                "flow_bytes",
                "flow_gap",
            ],
            &[&[
                "1.0", "10.0.0.1", "10.0.0.2", "tcp", "60", "7", "700", "0.25",
            ]],
        );
        let m = compute(&t).unwrap();
        assert_eq!(column(&m, "flow_packets"), [7.0]);
        assert_eq!(column(&m, "flow_mean_length"), [100.0]);
        assert_eq!(column(&m, "flow_gap"), [0.25]);
    }

    #[test]
    fn unreadable_numbers_name_line_and_column() {
        let t = table(
            &cells::SEED_COLUMNS,
            &[
                &["1.0", "10.0.0.1", "10.0.0.2", "tcp", "60"],
                &["2.0", "10.0.0.1", "10.0.0.2", "tcp", "sixty"],
            ],
        );
        let e = compute(&t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3, column `length`: `sixty` is not a number"
        );
    }
}
