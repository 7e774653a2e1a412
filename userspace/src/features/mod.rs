//! Feature engineering: from table rows to the f32 matrix the models see,
//! and the derived columns written beside each row in outputs.

pub mod cells;
pub mod encoding;
pub mod flow_groups;
pub mod original;
pub mod records;
pub mod table_records;

use anyhow::{bail, Result};

pub use cells::PacketColumns;
pub use ml_sniffing_forest::FeatureMatrix;
use original::OriginalContext;

use crate::io::Table;
use crate::pyfmt;

/// Which features a model sees.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSet {
    /// How the packet's hosts and pair behave over time: rates of packets
    /// and new flows per source and per destination, fan-out, SYN shares,
    /// bytes each way.
    Default,
    /// The first version's set: per-packet fields and 5-tuple counters.
    Packet,
    /// The original tool's 11 features, quirks included.
    Seed,
}

impl FeatureSet {
    pub fn name(self) -> &'static str {
        match self {
            FeatureSet::Default => "default",
            FeatureSet::Packet => "packet",
            FeatureSet::Seed => "seed",
        }
    }
}

/// The features chosen on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Set(FeatureSet),
    /// These numeric columns, as they are (any CSV).
    Columns(Vec<String>),
}

impl Selection {
    pub fn from_args(set: FeatureSet, columns: Option<Vec<String>>) -> Self {
        match columns {
            Some(cols) => Selection::Columns(cols),
            None => Selection::Set(set),
        }
    }
}

/// Features of a table plus what is needed to write its output rows.
pub struct Engineered {
    pub matrix: FeatureMatrix,
    /// The original tool's derived columns and contexts, for packet inputs.
    original: Option<OriginalContext>,
    /// Model features written as extra output columns (those the input and
    /// the original tool's derived columns do not already hold).
    extra_outputs: Vec<usize>,
}

impl Engineered {
    pub fn packet_columns(&self) -> Option<&PacketColumns> {
        self.original.as_ref().map(OriginalContext::columns)
    }

    /// Calls `each(row, record)` for every row of a packet table, in file
    /// order, as [`table_records::for_each_record`] makes them (nothing for
    /// other tables).
    pub fn for_each_record(
        &self,
        table: &Table,
        each: impl FnMut(usize, &ml_sniffing_common::record::PacketRecord),
    ) -> Result<()> {
        match &self.original {
            Some(original) => {
                table_records::for_each_record(table, original.columns(), original, each)
                    .map(|_| ())
            }
            None => Ok(()),
        }
    }

    /// Output headers before the model's own columns (score, label...).
    pub fn output_headers(&self, table: &Table) -> Vec<String> {
        let mut headers = table.headers().to_vec();
        if self.original.is_some() {
            headers.extend(original::DERIVED_COLUMNS.iter().map(|s| s.to_string()));
        }
        headers.extend(
            self.extra_outputs
                .iter()
                .map(|&f| self.matrix.names()[f].clone()),
        );
        headers
    }

    /// Brings what writing `rows` reads into cache (see
    /// [`Table::prefetch_rows`]); returns a value only to keep the reads.
    pub fn prefetch_rows(&self, table: &Table, rows: &[u32]) -> usize {
        let mut touched = table.prefetch_rows(rows);
        if let Some(ctx) = &self.original {
            touched ^= ctx.prefetch_rows(rows);
        }
        for &f in &self.extra_outputs {
            let column = self.matrix.column(f);
            touched ^= rows
                .iter()
                .map(|&r| column[r as usize].to_bits() as usize)
                .fold(0, |a, b| a ^ b);
        }
        touched
    }

    /// Appends the output cells of `row` matching [`Self::output_headers`].
    pub fn push_output_cells(
        &self,
        table: &Table,
        row: usize,
        out: &mut csv::ByteRecord,
        buf: &mut String,
    ) {
        match &self.original {
            Some(ctx) => {
                let cols = ctx.columns();
                for col in 0..table.headers().len() {
                    if col == cols.timestamp {
                        // The original's date-time; a cell that is not epoch
                        // seconds (ISO text, this tool's own output) is kept.
                        let datetime = ctx.datetime(row);
                        if datetime.is_empty() {
                            out.push_field(table.cell(row, col).as_bytes());
                        } else {
                            out.push_field(datetime.as_bytes());
                        }
                    } else if col == cols.protocol {
                        let proto = table.cell(row, col);
                        let lower = if proto.is_empty() {
                            "nan".to_string()
                        } else {
                            proto.to_lowercase()
                        };
                        out.push_field(lower.as_bytes());
                    } else {
                        out.push_field(table.cell(row, col).as_bytes());
                    }
                }
                ctx.push_derived(table, row, out, buf);
            }
            None => {
                for col in 0..table.headers().len() {
                    out.push_field(table.cell(row, col).as_bytes());
                }
            }
        }
        for &f in &self.extra_outputs {
            buf.clear();
            push_feature(buf, self.matrix.get(row, f));
            out.push_field(buf.as_bytes());
        }
    }

    /// The row's timestamp as outputs show it.
    pub fn display_timestamp(&self, table: &Table, row: usize) -> Option<String> {
        self.original.as_ref().map(|ctx| {
            let s = ctx.datetime(row);
            if s.is_empty() {
                table.cell(row, ctx.columns().timestamp).to_string()
            } else {
                s
            }
        })
    }
}

/// A feature value as written in outputs: integers without a fraction,
/// other values as the shortest text that reads back as the same f32.
pub fn format_feature(v: f32) -> String {
    let mut s = String::new();
    push_feature(&mut s, v);
    s
}

/// Appends [`format_feature`] of `v` to `out`.
pub fn push_feature(out: &mut String, v: f32) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        out.push_str(ryu::Buffer::new().format(v));
    }
}

/// Computes the selected features of `table`.
pub fn engineer(table: &Table, selection: &Selection) -> Result<Engineered> {
    match selection {
        Selection::Columns(names) => {
            let matrix = columns_as_features(table, names)?;
            Ok(Engineered {
                matrix,
                original: None,
                extra_outputs: Vec::new(),
            })
        }
        Selection::Set(set) => {
            let cols = PacketColumns::find(table)?;
            let ctx = OriginalContext::new(table, cols)?;
            let matrix = match set {
                FeatureSet::Seed => ctx.features(table)?,
                FeatureSet::Default | FeatureSet::Packet => {
                    let names = set_features(table, *set);
                    from_records(table, &cols, &ctx, &names)?
                }
            };
            let extra_outputs = (0..matrix.n_features())
                .filter(|&f| {
                    let name = matrix.names()[f].as_str();
                    table.column(name).is_none() && !original::DERIVED_COLUMNS.contains(&name)
                })
                .collect();
            Ok(Engineered {
                matrix,
                original: Some(ctx),
                extra_outputs,
            })
        }
    }
}

/// The features of a record-based set for a table: the packet set's
/// optional capture columns only when the table has them.
pub fn set_features(table: &Table, set: FeatureSet) -> Vec<String> {
    let names: &[&str] = match set {
        FeatureSet::Default => records::DEFAULT_FEATURES,
        FeatureSet::Packet => &records::PACKET_FEATURES,
        FeatureSet::Seed => &[],
    };
    names
        .iter()
        .filter(|f| !records::OPTIONAL_COLUMNS.contains(f) || table.column(f).is_some())
        .map(|f| f.to_string())
        .collect()
}

/// The named packet features of every row, computed from the rows as
/// records (see [`table_records`]).
pub fn from_records(
    table: &Table,
    cols: &PacketColumns,
    original: &OriginalContext,
    names: &[String],
) -> Result<FeatureMatrix> {
    let features = records::RecordFeatures::for_model(names)?;
    let mut m = FeatureMatrix::zeros(names.to_vec(), table.len());
    let checks = table_records::for_each_record(table, cols, original, |row, r| {
        features.set_row(r, &mut m, row)
    })?;
    for warning in checks.warnings(table) {
        eprintln!("Warning: {warning}.");
    }
    Ok(m)
}

/// `--feature-columns`: the named columns, each a number in every row.
pub fn columns_as_features(table: &Table, names: &[String]) -> Result<FeatureMatrix> {
    if names.is_empty() {
        bail!("--feature-columns needs at least one column name");
    }
    if let Some(twice) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        bail!("--feature-columns names `{twice}` twice: name each column once");
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| table.column(n).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "no column named {} in the input (it has: {})",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", "),
            table.headers().join(", ")
        );
    }
    let mut m = FeatureMatrix::zeros(names.to_vec(), table.len());
    for (f, name) in names.iter().enumerate() {
        let col = table.column(name).expect("checked above");
        for row in 0..table.len() {
            m.set(
                row,
                f,
                ml_sniffing_forest::matrix::to_f32(cells::required_number(table, row, col)?),
            );
        }
    }
    Ok(m)
}

/// Formats an anomaly score or probability as Python prints floats.
pub fn format_score(v: f64) -> String {
    pyfmt::float_repr(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(headers: &[&str], rows: &[&[&str]]) -> Table {
        Table::from_rows(headers, rows).unwrap()
    }

    #[test]
    fn feature_columns_are_read_as_they_are() {
        let t = table(&["a", "b", "c"], &[&["1", "x", "2.5"], &["3", "y", "True"]]);
        let m = columns_as_features(&t, &["c".into(), "a".into()]).unwrap();
        assert_eq!(m.column(0), &[2.5, 1.0]);
        assert_eq!(m.column(1), &[1.0, 3.0]);
        let e = columns_as_features(&t, &["b".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "line 2, column `b`: `x` is not a number");
        let e = columns_as_features(&t, &["q".into(), "z".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "no column named `q`, `z` in the input (it has: a, b, c)");
    }

    #[test]
    fn missing_seed_columns_are_all_named() {
        let t = table(&["timestamp", "length"], &[&["1", "2"]]);
        let e = engineer(&t, &Selection::Set(FeatureSet::Default))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("the input is missing the required columns source_ip, destination_ip, protocol (it has: timestamp, length)"),
            "{e}"
        );
    }

    #[test]
    fn output_rows_carry_extra_columns_and_new_features() {
        let t = table(
            &[
                "timestamp",
                "source_ip",
                "destination_ip",
                "protocol",
                "length",
                "note",
            ],
            &[&["1.5", "10.0.0.1", "10.0.0.2", "TCP", "60", "hello"]],
        );
        let e = engineer(&t, &Selection::Set(FeatureSet::Packet)).unwrap();
        let headers = e.output_headers(&t);
        assert_eq!(
            &headers[..6],
            &[
                "timestamp",
                "source_ip",
                "destination_ip",
                "protocol",
                "length",
                "note"
            ]
        );
        assert_eq!(&headers[6..17], &original::DERIVED_COLUMNS);
        assert_eq!(
            &headers[17..],
            &[
                "ip_protocol",
                "flow_packets",
                "flow_mean_length",
                "flow_gap"
            ]
        );
        let mut rec = csv::ByteRecord::new();
        e.push_output_cells(&t, 0, &mut rec, &mut String::new());
        assert_eq!(rec.len(), headers.len());
        assert_eq!(&rec[0], b"1970-01-01 00:00:01.500");
        assert_eq!(&rec[3], b"tcp");
        assert_eq!(&rec[5], b"hello");
        assert_eq!(&rec[17], b"6");
        assert_eq!(&rec[19], b"60");
    }

    #[test]
    fn feature_formatting() {
        assert_eq!(format_feature(66.0), "66");
        assert_eq!(format_feature(83.5), "83.5");
        assert_eq!(format_feature(0.1), "0.1");
        assert_eq!(format_feature(-3.0), "-3");
        for v in [0.1f32, 1.0e-7, 123.456, f32::MAX, f32::MIN_POSITIVE, 2.5e-3] {
            assert_eq!(format_feature(v).parse::<f32>().unwrap(), v);
        }
    }
}
