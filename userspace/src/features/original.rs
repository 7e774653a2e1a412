//! The original tool's 11 features, quirks included (`--features seed`), and
//! the derived columns its output CSV carries.
//!
//! Quirks kept on purpose, for parity: `protocol_code` is the index of the
//! protocol name among the names present in *this* file; the flow statistics
//! are over the whole file (each packet sees its flow's future); hour, minute
//! and day of week are UTC.

use anyhow::Result;

use super::cells::{self, PacketColumns};
use super::flow_groups::{group_by_hash, hash_key};
use crate::io::Table;
use crate::pyfmt;
use ml_sniffing_forest::matrix::{to_f32, FeatureMatrix};

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
pub const NAT: i64 = i64::MIN;

/// Everything needed to compute the original's derived values for any row.
pub struct OriginalContext {
    cols: PacketColumns,
    /// pandas nanoseconds per row, [`NAT`] when the timestamp does not parse.
    ts_ns: Vec<i64>,
    ts_digits: usize,
    /// The lower-cased protocol names, indexed by protocol number.
    protocols: Vec<String>,
    /// Per row: its protocol's number in `protocols`.
    protocol_of_row: Vec<u32>,
    /// Per protocol number: its code (rank among the sorted names).
    protocol_code: Vec<u32>,
    /// Per row: its flow (source text, destination text, protocol name).
    flow_of_row: Vec<u32>,
    /// Per flow: rows with a length (pandas' `count`) and their sum.
    flow_count: Vec<u32>,
    flow_sum: Vec<f64>,
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

/// The cell lower-cased, borrowing when it already is.
fn lower(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) || !text.is_ascii() {
        std::borrow::Cow::Owned(text.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

impl OriginalContext {
    pub fn new(table: &Table, cols: PacketColumns) -> Result<Self> {
        let n = table.len();
        let mut ts_ns = Vec::with_capacity(n);
        for row in 0..n {
            let ns = cells::number(table, row, cols.timestamp)
                .ok()
                .flatten()
                .and_then(pyfmt::pandas_epoch_ns);
            ts_ns.push(ns.unwrap_or(NAT));
        }
        let ts_digits = pyfmt::pandas_fraction_digits(ts_ns.iter().copied().filter(|&t| t != NAT));

        let mut protocols: Vec<String> = Vec::new();
        let mut protocol_numbers: rustc_hash::FxHashMap<String, u32> = Default::default();
        let mut protocol_of_row = Vec::with_capacity(n);
        for row in 0..n {
            let name = lower(pandas_str(table.cell(row, cols.protocol)));
            let number = match protocol_numbers.get(name.as_ref()) {
                Some(&k) => k,
                None => {
                    let k = protocols.len() as u32;
                    protocols.push(name.to_string());
                    protocol_numbers.insert(name.into_owned(), k);
                    k
                }
            };
            protocol_of_row.push(number);
        }
        // pandas orders string categories by code point, like `str::cmp`.
        let mut sorted: Vec<u32> = (0..protocols.len() as u32).collect();
        sorted.sort_by(|&a, &b| protocols[a as usize].cmp(&protocols[b as usize]));
        let mut protocol_code = vec![0; protocols.len()];
        for (code, &k) in sorted.iter().enumerate() {
            protocol_code[k as usize] = code as u32;
        }

        // The original's flow_id: source and destination as written, and
        // the lower-cased protocol.
        let src = |row| table.cell(row, cols.source_ip);
        let dst = |row| table.cell(row, cols.destination_ip);
        let flows = group_by_hash(
            n,
            |row| hash_key(&[src(row), dst(row)], protocol_of_row[row] as u64),
            |a, b| protocol_of_row[a] == protocol_of_row[b] && src(a) == src(b) && dst(a) == dst(b),
        );
        let mut flow_count = vec![0u32; flows.len];
        let mut flow_sum = vec![0f64; flows.len];
        for (row, &flow) in flows.of_row.iter().enumerate() {
            if let Some(len) = cells::number(table, row, cols.length)? {
                flow_count[flow as usize] += 1;
                flow_sum[flow as usize] += len;
            }
        }
        Ok(OriginalContext {
            cols,
            ts_ns,
            ts_digits,
            protocols,
            protocol_of_row,
            protocol_code,
            flow_of_row: flows.of_row,
            flow_count,
            flow_sum,
        })
    }

    /// Touches the per-row data of `rows` (see [`Table::prefetch_rows`]).
    pub fn prefetch_rows(&self, rows: &[u32]) -> usize {
        let mut touched = 0usize;
        for &row in rows {
            let row = row as usize;
            let flow = self.flow_of_row[row] as usize;
            touched ^= self.ts_ns[row] as usize ^ self.protocol_of_row[row] as usize;
            touched ^= self.flow_count[flow] as usize ^ self.flow_sum[flow].to_bits() as usize;
        }
        touched
    }

    pub fn columns(&self) -> &PacketColumns {
        &self.cols
    }

    /// Per row: its flow in the original's sense (source and destination as
    /// written, lower-cased protocol name).
    pub fn flow_of_row(&self) -> &[u32] {
        &self.flow_of_row
    }

    /// Appends the row's timestamp as the original's output shows it
    /// (nothing for NaT).
    pub fn push_datetime(&self, row: usize, out: &mut String) {
        if self.ts_ns[row] != NAT {
            pyfmt::push_pandas_datetime(out, self.ts_ns[row], self.ts_digits);
        }
    }

    /// The row's timestamp as the original's output shows it (empty for NaT).
    pub fn datetime(&self, row: usize) -> String {
        let mut s = String::new();
        self.push_datetime(row, &mut s);
        s
    }

    fn hour_weekday_minute(&self, row: usize) -> (u32, u32, u32) {
        match self.ts_ns[row] {
            NAT => (0, 0, 0),
            ns => pyfmt::hour_weekday_minute(ns),
        }
    }

    /// The distinct protocol names (lower-cased; "nan" for empty cells).
    pub fn protocol_names(&self) -> &[String] {
        &self.protocols
    }

    /// The row's protocol, as an index into [`Self::protocol_names`].
    pub fn protocol_id(&self, row: usize) -> u32 {
        self.protocol_of_row[row]
    }

    /// The lower-cased protocol name of a row.
    pub fn protocol(&self, row: usize) -> &str {
        &self.protocols[self.protocol_of_row[row] as usize]
    }

    fn protocol_code(&self, row: usize) -> u32 {
        self.protocol_code[self.protocol_of_row[row] as usize]
    }

    /// (count, sum) of the lengths of the row's flow.
    fn flow(&self, row: usize) -> (u32, f64) {
        let f = self.flow_of_row[row] as usize;
        (self.flow_count[f], self.flow_sum[f])
    }

    /// The original tool's 11 features of every row.
    pub fn features(&self, table: &Table) -> Result<FeatureMatrix> {
        let n = table.len();
        let mut m = FeatureMatrix::zeros(FEATURES.iter().map(|s| s.to_string()).collect(), n);
        m.fill_rows(|row, values| {
            let length = cells::number(table, row, self.cols.length)?;
            let (hour, weekday, minute) = self.hour_weekday_minute(row);
            let src = cells::ip(table.cell(row, self.cols.source_ip));
            let dst = cells::ip(table.cell(row, self.cols.destination_ip));
            let (count, sum) = self.flow(row);
            // pandas: the mean is NaN (then 0) when the flow has no length.
            let avg = if count == 0 { 0.0 } else { sum / count as f64 };
            let row_values = [
                length.unwrap_or(0.0),
                hour as f64,
                weekday as f64,
                minute as f64,
                cells::ip_as_int(src) as f64,
                cells::ip_as_int(dst) as f64,
                cells::is_private_v4(src) as u8 as f64,
                cells::is_private_v4(dst) as u8 as f64,
                self.protocol_code(row) as f64,
                count as f64,
                avg,
            ];
            for (slot, v) in values.iter_mut().zip(row_values) {
                *slot = to_f32(v);
            }
            Ok(())
        })?;
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
        let mut int = itoa::Buffer::new();
        out.push_field(int.format(hour).as_bytes());
        out.push_field(int.format(weekday).as_bytes());
        out.push_field(int.format(minute).as_bytes());
        out.push_field(int.format(cells::ip_to_int(src)).as_bytes());
        out.push_field(int.format(cells::ip_to_int(dst)).as_bytes());
        out.push_field(if cells::is_private_v4(cells::ip(src)) {
            b"1"
        } else {
            b"0"
        });
        out.push_field(if cells::is_private_v4(cells::ip(dst)) {
            b"1"
        } else {
            b"0"
        });
        out.push_field(int.format(self.protocol_code(row)).as_bytes());
        buf.clear();
        buf.push_str(pandas_str(src));
        buf.push_str("->");
        buf.push_str(pandas_str(dst));
        buf.push(':');
        buf.push_str(self.protocol(row));
        out.push_field(buf.as_bytes());
        let (count, sum) = self.flow(row);
        out.push_field(int.format(count).as_bytes());
        if count == 0 {
            // NaN: pandas writes an empty cell.
            out.push_field(b"");
        } else {
            buf.clear();
            pyfmt::push_float_repr(buf, sum / count as f64);
            out.push_field(buf.as_bytes());
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
            t.push_row(r.iter().copied(), i as u64 + 2).unwrap();
        }
        t
    }

    #[test]
    fn seed_features_match_hand_computed_values() {
        let t = seed_like_table();
        let ctx = OriginalContext::new(&t, PacketColumns::find(&t).unwrap()).unwrap();
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
        let ctx = OriginalContext::new(&t, PacketColumns::find(&t).unwrap()).unwrap();
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
