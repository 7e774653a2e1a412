//! Which inputs a saved model expects and how CSV cells become them: the
//! [`FeaturePlan`] learnt from the training CSV and applied, unchanged, to
//! every later CSV (test files, `predict`, `detect --model`).
//!
//! Column encodings (`Columns` plans, any CSV):
//! - `number`: numbers as they are, `True`/`False` as 1/0; an empty cell is
//!   an error naming line and column (what `detect --feature-columns` does).
//! - `number_or_missing` (`classify`): as `number`, but an empty cell is a
//!   missing value, encoded as +infinity: it sorts after every number, so a
//!   split can set missing values apart and they always take the `>` side.
//!   A literal `NaN` or `inf` is refused (leave the cell empty instead).
//! - `categories`: a column with any cell that is not a number. The
//!   training rows' distinct texts, sorted (byte order), get the codes 0, 1,
//!   2, ...; the empty cell is a category like any other (it sorts first).
//!   A text never seen in training gets the reserved code
//!   `categories.len()`, so new values are handled, never an error.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::cells;
use super::{engineer, FeatureMatrix, FeatureSet, Selection};
use crate::io::Table;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnEncoding {
    Number,
    NumberOrMissing,
    Categories { categories: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnFeature {
    pub name: String,
    #[serde(flatten)]
    pub encoding: ColumnEncoding,
}

/// How a model's inputs are computed from a CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FeaturePlan {
    /// A packet feature set (`--features default|seed`), keeping these
    /// features in this order.
    Packet {
        set: FeatureSet,
        features: Vec<String>,
    },
    /// CSV columns, each with its encoding.
    Columns { columns: Vec<ColumnFeature> },
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub set: Option<FeatureSet>,
    pub feature_columns: Option<Vec<String>>,
    pub exclude_columns: Vec<String>,
    /// The label column (never a feature).
    pub label: Option<String>,
}

fn quoted(names: &[impl AsRef<str>]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Columns of flow tables (NFStream's, CICFlowMeter's) that name a flow
/// rather than describe it: identifiers, addresses and timestamps. A model
/// that learned them would recognise the capture, not the traffic, so
/// `classify` leaves them out unless `--feature-columns` names them. Names
/// are compared without case, spaces or underscores (CIC headers carry
/// leading spaces).
pub fn identifier_columns(headers: &[String]) -> Vec<String> {
    const NAMES: [&str; 20] = [
        "id",
        "flowid",
        "expirationid",
        "srcip",
        "dstip",
        "sourceip",
        "destinationip",
        "srcmac",
        "dstmac",
        "srcoui",
        "dstoui",
        "timestamp",
        "bidirectionalfirstseenms",
        "bidirectionallastseenms",
        "src2dstfirstseenms",
        "src2dstlastseenms",
        "dst2srcfirstseenms",
        "dst2srclastseenms",
        "tunnelid",
        "requestedservername",
    ];
    headers
        .iter()
        .filter(|h| {
            let key: String = h
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '_')
                .flat_map(char::to_lowercase)
                .collect();
            NAMES.contains(&key.as_str())
        })
        .cloned()
        .collect()
}

impl FeaturePlan {
    pub fn feature_names(&self) -> Vec<String> {
        match self {
            FeaturePlan::Packet { features, .. } => features.clone(),
            FeaturePlan::Columns { columns } => columns.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// A one-line description for messages ("the `default` packet features").
    pub fn describe(&self) -> String {
        match self {
            FeaturePlan::Packet { set, .. } => {
                format!("the `{}` packet features", feature_set_name(*set))
            }
            FeaturePlan::Columns { columns } => format!(
                "the columns {}",
                quoted(&columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),)
            ),
        }
    }

    /// The plan for `classify`: `--feature-columns` if given; else the
    /// packet feature set if the table has the five packet columns; else
    /// every column but the label and the excluded ones.
    pub fn learn(table: &Table, req: &PlanRequest) -> Result<FeaturePlan> {
        let label = req.label.as_deref();
        let missing: Vec<&str> = req
            .exclude_columns
            .iter()
            .map(String::as_str)
            .filter(|c| table.column(c).is_none())
            .collect();
        let packet = cells::PacketColumns::find(table).is_ok();
        if let Some(cols) = &req.feature_columns {
            if !req.exclude_columns.is_empty() {
                bail!("--exclude-columns cannot be combined with --feature-columns: list only the columns to use");
            }
            if let Some(l) = label.filter(|l| cols.iter().any(|c| c == l)) {
                bail!("the label column `{l}` is also listed in --feature-columns; a model cannot learn its own answer");
            }
            let missing: Vec<&String> = cols.iter().filter(|c| table.column(c).is_none()).collect();
            if !missing.is_empty() {
                bail!(
                    "no column named {} in the input (it has: {})",
                    quoted(&missing),
                    table.headers().join(", ")
                );
            }
            if cols.is_empty() {
                bail!("--feature-columns needs at least one column name");
            }
            let columns = cols
                .iter()
                .map(|c| learn_column(table, c))
                .collect::<Result<_>>()?;
            return Ok(FeaturePlan::Columns { columns });
        }
        if packet {
            let set = req.set.unwrap_or(FeatureSet::Default);
            let engineered = engineer(table, &Selection::Set(set))?;
            let all = engineered.matrix.names().to_vec();
            if let Some(l) = label {
                if all.iter().any(|f| f == l) || cells::SEED_COLUMNS.contains(&l) {
                    bail!(
                        "the label column `{l}` is also an input of the `{}` packet features; \
                         rename it or use --feature-columns",
                        feature_set_name(set)
                    );
                }
            }
            let unknown: Vec<&String> = req
                .exclude_columns
                .iter()
                .filter(|c| !all.contains(c))
                .collect();
            if !unknown.is_empty() {
                bail!(
                    "--exclude-columns {} names no feature of the `{}` packet set; it can leave out \
                     only these: {}",
                    quoted(&unknown),
                    feature_set_name(set),
                    all.join(", ")
                );
            }
            let features: Vec<String> = all
                .into_iter()
                .filter(|f| !req.exclude_columns.contains(f))
                .collect();
            if features.is_empty() {
                bail!("--exclude-columns leaves no feature to learn from");
            }
            return Ok(FeaturePlan::Packet { set, features });
        }
        if !missing.is_empty() {
            bail!(
                "--exclude-columns names {}, which the input does not have (it has: {})",
                quoted(&missing),
                table.headers().join(", ")
            );
        }
        let identifiers = identifier_columns(table.headers());
        let columns: Vec<ColumnFeature> = table
            .headers()
            .iter()
            .filter(|h| Some(h.as_str()) != label && !req.exclude_columns.contains(h))
            .filter(|h| !identifiers.contains(h))
            .map(|h| learn_column(table, h))
            .collect::<Result<_>>()?;
        if columns.is_empty() {
            bail!("no column is left to learn from once the label and --exclude-columns are set aside");
        }
        Ok(FeaturePlan::Columns { columns })
    }

    /// The plan `detect` fits with (numbers only, empty cells refused).
    pub fn for_detect(selection: &Selection, names: &[String]) -> FeaturePlan {
        match selection {
            Selection::Set(set) => FeaturePlan::Packet {
                set: *set,
                features: names.to_vec(),
            },
            Selection::Columns(cols) => FeaturePlan::Columns {
                columns: cols
                    .iter()
                    .map(|c| ColumnFeature {
                        name: c.clone(),
                        encoding: ColumnEncoding::Number,
                    })
                    .collect(),
            },
        }
    }

    /// The model inputs of `table`, in the plan's order. Errors name the
    /// columns the table lacks.
    pub fn apply(&self, table: &Table) -> Result<FeatureMatrix> {
        match self {
            FeaturePlan::Packet {
                set: FeatureSet::Default | FeatureSet::Packet,
                features,
            } => {
                // Any record feature by name, so that models of earlier
                // versions of a set still apply.
                let context =
                    |e: anyhow::Error| anyhow!("{e:#} (the model uses {})", self.describe());
                let cols = cells::PacketColumns::find(table).map_err(context)?;
                let lacking: Vec<&String> = features
                    .iter()
                    .filter(|f| {
                        super::records::OPTIONAL_COLUMNS.contains(&f.as_str())
                            && table.column(f).is_none()
                    })
                    .collect();
                if !lacking.is_empty() {
                    bail!(
                        "the model uses the feature{} {}, which this input cannot give (it has \
                         no such column)",
                        if lacking.len() == 1 { "" } else { "s" },
                        quoted(&lacking),
                    );
                }
                let original = super::original::OriginalContext::new(table, cols)?;
                super::from_records(table, &cols, &original, features)
            }
            FeaturePlan::Packet { set, features } => {
                let engineered = engineer(table, &Selection::Set(*set))
                    .map_err(|e| anyhow!("{e:#} (the model uses {})", self.describe()))?;
                let names = engineered.matrix.names();
                let lacking: Vec<&String> =
                    features.iter().filter(|f| !names.contains(f)).collect();
                if !lacking.is_empty() {
                    bail!(
                        "the model uses the feature{} {}, which this input cannot give (its `{}` \
                         features are: {})",
                        if lacking.len() == 1 { "" } else { "s" },
                        quoted(&lacking),
                        feature_set_name(*set),
                        names.join(", ")
                    );
                }
                let columns = features
                    .iter()
                    .map(|f| {
                        let i = names.iter().position(|n| n == f).expect("checked above");
                        engineered.matrix.column(i).to_vec()
                    })
                    .collect();
                Ok(FeatureMatrix::from_columns(features.clone(), columns))
            }
            FeaturePlan::Columns { columns } => {
                let lacking: Vec<&str> = columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .filter(|c| table.column(c).is_none())
                    .collect();
                if !lacking.is_empty() {
                    bail!(
                        "the input has no column {} that the model uses (it has: {})",
                        quoted(&lacking),
                        table.headers().join(", ")
                    );
                }
                let names = columns.iter().map(|c| c.name.clone()).collect();
                let mut m = FeatureMatrix::zeros(names, table.len());
                for (f, c) in columns.iter().enumerate() {
                    let col = table.column(&c.name).expect("checked above");
                    encode_column(table, col, &c.encoding, m.column_mut(f))?;
                }
                Ok(m)
            }
        }
    }
}

fn feature_set_name(set: FeatureSet) -> &'static str {
    set.name()
}

/// A cell as a number: `Ok(None)` when it is not one.
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        return Some(1.0);
    }
    if t.eq_ignore_ascii_case("false") {
        return Some(0.0);
    }
    t.parse::<f64>().ok()
}

/// Numeric if every non-empty cell is a finite number (a `NaN` or `inf`
/// among numbers is an error); categorical otherwise.
fn learn_column(table: &Table, name: &str) -> Result<ColumnFeature> {
    let col = table.column(name).expect("caller checked");
    let mut non_finite: Option<usize> = None;
    let mut numeric = true;
    for row in 0..table.len() {
        let text = table.cell(row, col);
        if text.trim().is_empty() {
            continue;
        }
        match parse_number(text) {
            Some(v) if v.is_finite() => {}
            Some(_) => {
                non_finite.get_or_insert(row);
            }
            None => {
                numeric = false;
                break;
            }
        }
    }
    if numeric {
        if let Some(row) = non_finite {
            return Err(non_finite_error(table, row, col));
        }
        return Ok(ColumnFeature {
            name: name.to_string(),
            encoding: ColumnEncoding::NumberOrMissing,
        });
    }
    warn_if_mostly_numbers(table, col);
    let mut categories: Vec<String> = (0..table.len())
        .map(|row| table.cell(row, col).to_string())
        .collect();
    categories.sort_unstable();
    categories.dedup();
    Ok(ColumnFeature {
        name: name.to_string(),
        encoding: ColumnEncoding::Categories { categories },
    })
}

/// A column of numbers with a few cells that are not (a `0x10`, a typo)
/// becomes categories, which loses the order of its numbers: say so.
fn warn_if_mostly_numbers(table: &Table, col: usize) {
    let (mut numbers, mut others, mut first) = (0usize, 0usize, None);
    for row in 0..table.len() {
        let text = table.cell(row, col);
        if text.trim().is_empty() {
            continue;
        }
        if parse_number(text).is_some() {
            numbers += 1;
        } else {
            others += 1;
            first.get_or_insert(row);
        }
    }
    if let Some(row) = first.filter(|_| numbers >= 9 * others) {
        eprintln!(
            "Warning: column `{}` is taken as categories, not numbers, because of {others} \
             cell{} that {} not a number (the first on line {}: `{}`); fix {} (or leave {} \
             empty for a missing value) to use it as a number.",
            table.headers()[col],
            if others == 1 { "" } else { "s" },
            if others == 1 { "is" } else { "are" },
            table.line(row),
            crate::screen::shown_cell(table.cell(row, col).trim()),
            if others == 1 { "it" } else { "them" },
            if others == 1 { "it" } else { "them" },
        );
    }
}

fn non_finite_error(table: &Table, row: usize, col: usize) -> anyhow::Error {
    anyhow!(
        "line {}, column `{}`: `{}` is not a finite number; leave the cell empty to mark a \
         missing value, or leave the column out with --exclude-columns",
        table.line(row),
        table.headers()[col],
        table.cell(row, col).trim()
    )
}

fn encode_column(table: &Table, col: usize, enc: &ColumnEncoding, out: &mut [f32]) -> Result<()> {
    match enc {
        ColumnEncoding::Number => {
            for (row, v) in out.iter_mut().enumerate() {
                *v = ml_sniffing_forest::matrix::to_f32(cells::required_number(table, row, col)?);
            }
        }
        ColumnEncoding::NumberOrMissing => {
            for (row, v) in out.iter_mut().enumerate() {
                let text = table.cell(row, col);
                *v = if text.trim().is_empty() {
                    f32::INFINITY
                } else {
                    match parse_number(text) {
                        Some(x) if x.is_finite() => ml_sniffing_forest::matrix::to_f32(x),
                        Some(_) => return Err(non_finite_error(table, row, col)),
                        None => bail!(
                            "line {}, column `{}`: `{}` is not a number (the model was trained on \
                             numbers in this column)",
                            table.line(row),
                            table.headers()[col],
                            text
                        ),
                    }
                };
            }
        }
        ColumnEncoding::Categories { categories } => {
            for (row, v) in out.iter_mut().enumerate() {
                let text = table.cell(row, col);
                let code = categories
                    .binary_search_by(|c| c.as_str().cmp(text))
                    .unwrap_or(categories.len());
                *v = code as f32;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(headers: &[&str], rows: &[&[&str]]) -> Table {
        Table::from_rows(headers, rows).unwrap()
    }

    fn req(label: &str) -> PlanRequest {
        PlanRequest {
            label: Some(label.into()),
            ..Default::default()
        }
    }

    #[test]
    fn strings_get_sorted_codes_and_unseen_values_the_reserved_code() {
        let train = table(
            &["proto", "bytes", "y"],
            &[
                &["udp", "10", "a"],
                &["tcp", "", "b"],
                &["", "2.5", "a"],
                &["tcp", "True", "b"],
            ],
        );
        let plan = FeaturePlan::learn(&train, &req("y")).unwrap();
        let FeaturePlan::Columns { columns } = &plan else {
            panic!("{plan:?}")
        };
        assert_eq!(
            columns[0].encoding,
            ColumnEncoding::Categories {
                categories: vec!["".into(), "tcp".into(), "udp".into()]
            }
        );
        assert_eq!(columns[1].encoding, ColumnEncoding::NumberOrMissing);
        assert_eq!(plan.feature_names(), ["proto", "bytes"]);
        let m = plan.apply(&train).unwrap();
        assert_eq!(m.column(0), &[2.0, 1.0, 0.0, 1.0]);
        assert_eq!(m.column(1), &[10.0, f32::INFINITY, 2.5, 1.0]);
        // New data: an unseen protocol gets code 3 (= number of categories).
        let new = table(&["bytes", "proto"], &[&["1", "icmp"], &["2", "udp"]]);
        let m = plan.apply(&new).unwrap();
        assert_eq!(m.column(0), &[3.0, 2.0]);
        assert_eq!(m.column(1), &[1.0, 2.0]);
    }

    #[test]
    fn nan_among_numbers_and_text_in_a_number_column_are_explained() {
        let t = table(&["x", "y"], &[&["1", "a"], &["NaN", "b"]]);
        let e = FeaturePlan::learn(&t, &req("y")).unwrap_err().to_string();
        assert_eq!(
            e,
            "line 3, column `x`: `NaN` is not a finite number; leave the cell empty to mark a \
             missing value, or leave the column out with --exclude-columns"
        );
        let train = table(&["x", "y"], &[&["1", "a"], &["2", "b"]]);
        let plan = FeaturePlan::learn(&train, &req("y")).unwrap();
        let e = plan
            .apply(&table(&["x"], &[&["1"], &["oops"]]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("line 3, column `x`: `oops` is not a number"),
            "{e}"
        );
        let e = plan
            .apply(&table(&["z"], &[&["1"]]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the input has no column `x` that the model uses (it has: z)"
        );
    }

    #[test]
    fn selection_rules_and_their_errors() {
        let t = table(
            &["id", "a", "b", "y"],
            &[&["u1", "1", "2", "p"], &["u2", "3", "4", "q"]],
        );
        let r = PlanRequest {
            exclude_columns: vec!["id".into()],
            ..req("y")
        };
        assert_eq!(
            FeaturePlan::learn(&t, &r).unwrap().feature_names(),
            ["a", "b"]
        );
        let r = PlanRequest {
            feature_columns: Some(vec!["b".into(), "y".into()]),
            ..req("y")
        };
        let e = FeaturePlan::learn(&t, &r).unwrap_err().to_string();
        assert!(
            e.starts_with("the label column `y` is also listed in --feature-columns"),
            "{e}"
        );
        let r = PlanRequest {
            exclude_columns: vec!["nope".into()],
            ..req("y")
        };
        let e = FeaturePlan::learn(&t, &r).unwrap_err().to_string();
        assert!(e.contains("`nope`, which the input does not have"), "{e}");
        let r = PlanRequest {
            feature_columns: Some(vec!["a".into()]),
            exclude_columns: vec!["b".into()],
            ..req("y")
        };
        assert!(FeaturePlan::learn(&t, &r).is_err());
    }

    #[test]
    fn flow_identifiers_are_left_out() {
        let headers: Vec<String> = [
            "id",
            " Source IP",
            "src_port",
            "Flow ID",
            "bidirectional_first_seen_ms",
            "bidirectional_packets",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            identifier_columns(&headers),
            ["id", " Source IP", "Flow ID", "bidirectional_first_seen_ms"].map(String::from)
        );
    }

    #[test]
    fn packet_captures_use_the_feature_set_and_can_drop_features() {
        let t = table(
            &[
                "timestamp",
                "source_ip",
                "destination_ip",
                "protocol",
                "length",
                "bad",
            ],
            &[
                &["1.0", "10.0.0.1", "10.0.0.2", "tcp", "60", "0"],
                &["2.0", "10.0.0.2", "10.0.0.1", "udp", "80", "1"],
            ],
        );
        let r = PlanRequest {
            set: Some(FeatureSet::Seed),
            exclude_columns: vec!["source_ip_int".into(), "destination_ip_int".into()],
            ..req("bad")
        };
        let plan = FeaturePlan::learn(&t, &r).unwrap();
        let names = plan.feature_names();
        assert_eq!(names.len(), 9);
        assert!(!names.contains(&"source_ip_int".to_string()));
        assert_eq!(plan.apply(&t).unwrap().n_features(), 9);
        let r = PlanRequest {
            exclude_columns: vec!["timestamp".into()],
            ..req("bad")
        };
        let e = FeaturePlan::learn(&t, &r).unwrap_err().to_string();
        assert!(
            e.contains("names no feature of the `default` packet set"),
            "{e}"
        );
        let e = FeaturePlan::learn(&t, &req("length"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("label column `length` is also an input"), "{e}");
        // The plan survives a JSON round trip (model files).
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<FeaturePlan>(&json).unwrap(), plan);
    }
}
