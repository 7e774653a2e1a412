//! The original tool's 11 features, quirks included (`--features seed`), and
//! the derived columns its output CSV carries.
//!
//! Quirks kept on purpose, for parity: `protocol_code` is the index of the
//! protocol name among the names present in *this* file; the flow statistics
//! are over the whole file (each packet sees its flow's future); hour, minute
//! and day of week are UTC.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Result;

use super::cells::{self, PacketColumns};
use super::matrix::{to_f32, FeatureMatrix};
use crate::io::Table;
use crate::pyfmt;

/// The original's feature columns, in its order.
pub const FEATURES: [&str; 11] = [
    "length",
    "hour",
    "day_of_week",
    "minute",
    "source_ip_int",
    "destination_ip_int",
    "source_is_private",
    "destination_is_private",
    "protocol_code",
    "flow_packet_count",
    "flow_avg_length",
];

/// The columns the original adds to its output, in its order (`flow_id`
/// among them, between `protocol_code` and `flow_packet_count`).
pub const DERIVED_COLUMNS: [&str; 11] = [
    "hour",
    "day_of_week",
    "minute",
    "source_ip_int",
    "destination_ip_int",
    "source_is_private",
    "destination_is_private",
    "protocol_code",
    "flow_id",
    "flow_packet_count",
    "flow_avg_length",
];

/// `NaT` in the per-row timestamps.
const NAT: i64 = i64::MIN;

#[derive(Debug, Clone, Copy, Default)]
struct FlowTotals {
    /// Rows of the flow with a length (pandas' `count`).
    count: u64,
    sum: f64,
}

/// Everything needed to compute the original's derived values for any row.
#[derive(Debug)]
pub struct SeedContext {
    cols: PacketColumns,
    /// pandas nanoseconds per row, `NAT` when the timestamp does not parse.
    ts_ns: Vec<i64>,
    ts_digits: usize,
    protocol_codes: HashMap<String, u32>,
    flows: HashMap<String, FlowTotals>,
}

/// The original's string for a cell: pandas reads an empty cell as NaN,
/// which `astype(str)` turns into "nan".
fn pandas_str(text: &str) -> &str {
    if text.is_empty() {
        "nan"
    } else {
        text
    }
}

fn flow_id_into(buf: &mut String, table: &Table, cols: &PacketColumns, row: usize) {
    buf.clear();
    buf.push_str(pandas_str(table.cell(row, cols.source_ip)));
    buf.push_str("->");
    buf.push_str(pandas_str(table.cell(row, cols.destination_ip)));
    buf.push(':');
    buf.push_str(&pandas_str(table.cell(row, cols.protocol)).to_lowercase());
}

impl SeedContext {
    pub fn new(table: &Table, cols: PacketColumns) -> Result<Self> {
        let n = table.len();
        let mut ts_ns = Vec::with_capacity(n);
        let mut names: Vec<String> = Vec::new();
        let mut seen_names: HashMap<String, ()> = HashMap::new();
        let mut flows: HashMap<String, FlowTotals> = HashMap::new();
        let mut key = String::new();
        for row in 0..n {
            let ns = cells::number(table, row, cols.timestamp)
                .ok()
                .flatten()
                .and_then(pyfmt::pandas_epoch_ns);
            ts_ns.push(ns.unwrap_or(NAT));

            let proto = pandas_str(table.cell(row, cols.protocol)).to_lowercase();
            if !seen_names.contains_key(&proto) {
                seen_names.insert(proto.clone(), ());
                names.push(proto);
            }

            let length = cells::number(table, row, cols.length)?;
            flow_id_into(&mut key, table, &cols, row);
            let totals = match flows.get_mut(key.as_str()) {
                Some(t) => t,
                None => flows.entry(key.clone()).or_default(),
            };
            if let Some(len) = length {
                totals.count += 1;
                totals.sum += len;
            }
        }
        // pandas orders string categories by code point, like `str::cmp`.
        names.sort();
        let protocol_codes = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, i as u32))
            .collect();
        let ts_digits = pyfmt::pandas_fraction_digits(ts_ns.iter().copied().filter(|&t| t != NAT));
        Ok(SeedContext {
            cols,
            ts_ns,
            ts_digits,
            protocol_codes,
            flows,
        })
    }

    pub fn columns(&self) -> &PacketColumns {
        &self.cols
    }

    /// The row's timestamp as the original's output shows it (empty for NaT).
    pub fn datetime(&self, row: usize) -> String {
        match self.ts_ns[row] {
            NAT => String::new(),
            ns => pyfmt::pandas_datetime(ns, self.ts_digits),
        }
    }

    fn hour_weekday_minute(&self, row: usize) -> (u32, u32, u32) {
        match self.ts_ns[row] {
            NAT => (0, 0, 0),
            ns => pyfmt::hour_weekday_minute(ns).unwrap_or((0, 0, 0)),
        }
    }

    fn protocol_code(&self, table: &Table, row: usize) -> u32 {
        let name = pandas_str(table.cell(row, self.cols.protocol)).to_lowercase();
        self.protocol_codes[&name]
    }

    fn flow(&self, table: &Table, row: usize, key: &mut String) -> FlowTotals {
        flow_id_into(key, table, &self.cols, row);
        self.flows[key.as_str()]
    }

    /// The 11 seed features of every row.
    pub fn features(&self, table: &Table) -> Result<FeatureMatrix> {
        let n = table.len();
        let mut m = FeatureMatrix::zeros(FEATURES.iter().map(|s| s.to_string()).collect(), n);
        let mut key = String::new();
        for row in 0..n {
            let length = cells::number(table, row, self.cols.length)?;
            let (hour, weekday, minute) = self.hour_weekday_minute(row);
            let src = table.cell(row, self.cols.source_ip);
            let dst = table.cell(row, self.cols.destination_ip);
            let flow = self.flow(table, row, &mut key);
            // pandas: count of non-missing lengths; the mean is NaN (then 0)
            // when the flow has none.
            let avg = if flow.count == 0 {
                0.0
            } else {
                flow.sum / flow.count as f64
            };
            let values = [
                length.unwrap_or(0.0),
                hour as f64,
                weekday as f64,
                minute as f64,
                cells::ip_to_int(src) as f64,
                cells::ip_to_int(dst) as f64,
                cells::is_private_v4(cells::ip(src)) as u8 as f64,
                cells::is_private_v4(cells::ip(dst)) as u8 as f64,
                self.protocol_code(table, row) as f64,
                flow.count as f64,
                avg,
            ];
            for (f, v) in values.into_iter().enumerate() {
                m.set(row, f, to_f32(v));
            }
        }
        Ok(m)
    }

    /// Appends the original's derived columns ([`DERIVED_COLUMNS`]) for `row`,
    /// formatted as pandas writes them.
    pub fn push_derived(
        &self,
        table: &Table,
        row: usize,
        out: &mut csv::ByteRecord,
        buf: &mut String,
    ) {
        let (hour, weekday, minute) = self.hour_weekday_minute(row);
        let src = table.cell(row, self.cols.source_ip);
        let dst = table.cell(row, self.cols.destination_ip);
        let mut push = |v: std::fmt::Arguments| {
            buf.clear();
            let _ = buf.write_fmt(v);
            out.push_field(buf.as_bytes());
        };
        push(format_args!("{hour}"));
        push(format_args!("{weekday}"));
        push(format_args!("{minute}"));
        push(format_args!("{}", cells::ip_to_int(src)));
        push(format_args!("{}", cells::ip_to_int(dst)));
        push(format_args!(
            "{}",
            cells::is_private_v4(cells::ip(src)) as u8
        ));
        push(format_args!(
            "{}",
            cells::is_private_v4(cells::ip(dst)) as u8
        ));
        push(format_args!("{}", self.protocol_code(table, row)));
        let mut key = String::new();
        let flow = self.flow(table, row, &mut key);
        out.push_field(key.as_bytes());
        out.push_field(flow.count.to_string().as_bytes());
        if flow.count == 0 {
            // NaN: pandas writes an empty cell.
            out.push_field(b"");
        } else {
            out.push_field(pyfmt::float_repr(flow.sum / flow.count as f64).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn seed_like_table() -> Table {
        let mut t = Table::new(cells::SEED_COLUMNS.iter().map(|s| s.to_string()).collect());
        let rows: &[[&str; 5]] = &[
            [
                "1712589010.595727",
                "20.189.173.8",
                "192.168.1.79",
                "tcp",
                "161",
            ],
            [
                "1712589010.595866",
                "192.168.1.79",
                "20.189.173.8",
                "tcp",
                "66",
            ],
            [
                "1712589010.596437",
                "192.168.1.79",
                "20.189.173.8",
                "TCP",
                "101",
            ],
            [
                "1712589012.367694",
                "192.168.1.1",
                "192.168.1.79",
                "udp",
                "268",
            ],
            ["bogus", "fe80::1", "not-an-ip", "ICMP", ""],
        ];
        for (i, r) in rows.iter().enumerate() {
            t.push_row(r.iter().map(|c| c.as_bytes()), i as u64 + 2)
                .unwrap();
        }
        t
    }

    #[test]
    fn seed_features_match_hand_computed_values() {
        let t = seed_like_table();
        let ctx = SeedContext::new(&t, PacketColumns::find(&t).unwrap()).unwrap();
        let m = ctx.features(&t).unwrap();
        // Row 2 (third packet): 15:10 UTC on Monday 2024-04-08; 192.168.1.79
        // = 3232235855; flow 192.168.1.79->20.189.173.8:tcp has rows 2 and 3
        // (protocol lower-cased), lengths 66 and 101 -> mean 83.5; protocol
        // names sorted: icmp, tcp, udp -> tcp = 1.
        let want = [
            101.0,
            15.0,
            0.0,
            10.0,
            3232235855.0,
            (20u32 << 24 | 189 << 16 | 173 << 8 | 8) as f32,
            1.0,
            0.0,
            1.0,
            2.0,
            83.5,
        ];
        assert_eq!(m.row(2), want);
        // Row 4: unreadable timestamp -> 0,0,0; IPv6 source is never private;
        // unparsable destination -> 0; empty length -> 0 and not counted.
        let row4 = m.row(4);
        assert_eq!(&row4[..4], &[0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            row4[4],
            0xfe80_0000_0000_0000_0000_0000_0000_0001u128 as f64 as f32
        );
        assert_eq!(&row4[5..], &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(m.get(3, 8), 2.0);
    }

    #[test]
    fn derived_columns_are_written_as_pandas_writes_them() {
        let t = seed_like_table();
        let ctx = SeedContext::new(&t, PacketColumns::find(&t).unwrap()).unwrap();
        let mut rec = csv::ByteRecord::new();
        let mut buf = String::new();
        ctx.push_derived(&t, 2, &mut rec, &mut buf);
        let got: Vec<&str> = rec
            .iter()
            .map(|f| std::str::from_utf8(f).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                "15",
                "0",
                "10",
                "3232235855",
                "347974920",
                "1",
                "0",
                "1",
                "192.168.1.79->20.189.173.8:tcp",
                "2",
                "83.5"
            ]
        );
        assert_eq!(ctx.datetime(0), "2024-04-08 15:10:10.595726967");
        assert_eq!(ctx.datetime(4), "");
        rec.clear();
        ctx.push_derived(&t, 4, &mut rec, &mut buf);
        assert_eq!(&rec[8], b"fe80::1->not-an-ip:icmp");
        assert_eq!(&rec[9], b"0");
        assert_eq!(&rec[10], b"");
    }
}
