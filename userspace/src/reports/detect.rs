//! `detect --report FILE.html`: where the anomalies are. The score
//! distribution against the threshold, scores over time, the top sources
//! among the anomalies, and the features whose values set the anomalies
//! apart most, each as anomalies against the rest.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::charts::{self, Series, BLUE, RED};
use super::Page;
use crate::features::{cells, Engineered};
use crate::io::Table;

/// Points drawn at most per series in the scores-over-time chart (an SVG
/// of millions of points would not open).
const MAX_POINTS: usize = 5_000;
/// Features shown as distributions.
const TOP_FEATURES: usize = 4;

/// What the report is made of: `scores` are `decision_function` values
/// (below 0: anomalous).
pub struct Input<'a> {
    pub input: &'a Path,
    pub table: &'a Table,
    pub engineered: &'a Engineered,
    pub scores: &'a [f64],
    pub contamination: String,
}

pub fn write(path: &Path, d: &Input) -> Result<()> {
    let n = d.scores.len();
    let anomalous: Vec<bool> = d.scores.iter().map(|&s| s < 0.0).collect();
    let flagged = anomalous.iter().filter(|&&a| a).count();
    let mut page = Page::new(
        "ml-sniffing detect report",
        &format!(
            "{}: {n} rows, {flagged} flagged as anomalous (contamination {}); {} features.",
            d.input.display(),
            d.contamination,
            d.engineered.matrix.n_features()
        ),
    );
    let (ordinary, anomalies) = split(d.scores, &anomalous);
    page.chart(
        "scores",
        "Anomaly scores",
        &charts::histogram(
            &against(&ordinary, &anomalies),
            60,
            false,
            Some((0.0, "threshold (the contamination offset)")),
            "anomaly score (decision_function; below 0: anomalous)",
        )?,
        "Rows per score; the threshold is the contamination quantile of the scores.",
    );
    if let Some(cols) = d.engineered.packet_columns() {
        let times: Vec<Option<f64>> = (0..n)
            .map(|r| cells::epoch_ns(d.table.cell(r, cols.timestamp)).map(|ns| ns as f64 / 1e9))
            .collect();
        if let Some(t0) = times.iter().flatten().cloned().reduce(f64::min) {
            let points = |want: bool| -> Vec<(f64, f64)> {
                let rows: Vec<usize> = (0..n).filter(|&r| anomalous[r] == want).collect();
                let step = rows.len().div_ceil(MAX_POINTS).max(1);
                rows.iter()
                    .step_by(step)
                    .filter_map(|&r| times[r].map(|t| (t - t0, d.scores[r])))
                    .collect()
            };
            page.chart(
                "time",
                "Scores over time",
                &charts::scatter(
                    &[
                        ("ordinary", points(false), BLUE),
                        ("anomalies", points(true), RED),
                    ],
                    Some((0.0, "threshold")),
                    "seconds since the first packet",
                    "anomaly score",
                )?,
                &format!("At most {MAX_POINTS} points per series (evenly thinned)."),
            );
            let mut sources: HashMap<&str, usize> = HashMap::new();
            for r in (0..n).filter(|&r| anomalous[r]) {
                *sources.entry(d.table.cell(r, cols.source_ip)).or_default() += 1;
            }
            let mut top: Vec<(&str, usize)> = sources.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            top.truncate(10);
            if !top.is_empty() {
                let labels: Vec<String> = top.iter().map(|(s, _)| s.to_string()).collect();
                let values: Vec<f64> = top.iter().map(|(_, c)| *c as f64).collect();
                page.chart(
                    "sources",
                    "Top sources among the anomalies",
                    &charts::bars(&labels, &[("anomalies", values, RED)], "anomalous rows")?,
                    "The ten sources with the most anomalous rows.",
                );
            }
        }
    }
    let m = &d.engineered.matrix;
    let mut separation: Vec<(usize, f64)> = (0..m.n_features())
        .map(|f| {
            let column: Vec<f64> = m.column(f).iter().map(|&v| v as f64).collect();
            let (a, o) = split(&column, &anomalous);
            (f, apart(&a, &o))
        })
        .collect();
    separation.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for &(f, _) in separation.iter().take(TOP_FEATURES) {
        let column: Vec<f64> = m.column(f).iter().map(|&v| v as f64).collect();
        let (ordinary, anomalies) = split(&column, &anomalous);
        let name = &m.names()[f];
        page.chart(
            &format!("feature-{name}"),
            &format!("Feature {name}"),
            &charts::histogram(&against(&ordinary, &anomalies), 40, true, None, name)?,
            "Each series as shares of its own rows: where the anomalies' values lie \
             against the rest.",
        );
    }
    page.write(path)
}

/// The two series every chart of this report compares.
fn against<'a>(ordinary: &'a [f64], anomalies: &'a [f64]) -> [Series<'a>; 2] {
    [
        Series {
            name: "ordinary",
            values: ordinary,
            color: BLUE,
        },
        Series {
            name: "anomalies",
            values: anomalies,
            color: RED,
        },
    ]
}

/// Values of the rows where `mask` is false, and where it is true.
fn split(values: &[f64], mask: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let (mut no, mut yes) = (Vec::new(), Vec::new());
    for (&v, &m) in values.iter().zip(mask) {
        if m {
            yes.push(v)
        } else {
            no.push(v)
        }
    }
    (no, yes)
}

/// How far apart two samples lie: the difference of their medians over
/// the spread (interquartile range) of both together.
fn apart(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut all: Vec<f64> = a.iter().chain(b).cloned().collect();
    let spread = (quantile(&mut all, 0.75) - quantile(&mut all, 0.25)).max(1e-9);
    let median = |v: &[f64]| quantile(&mut v.to_vec(), 0.5);
    (median(a) - median(b)).abs() / spread
}

/// The `q` quantile of `v` (the nearest rank), reordering `v` in linear
/// time rather than sorting it: a report reads millions of rows.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_that_set_anomalies_apart_rank_first() {
        let same = [1.0, 2.0, 3.0, 4.0];
        let far = [100.0, 101.0];
        assert!(apart(&far, &same) > apart(&[2.0, 3.0], &same));
        assert_eq!(apart(&[], &same), 0.0);
        let (no, yes) = split(&[1.0, 2.0, 3.0], &[false, true, false]);
        assert_eq!((no, yes), (vec![1.0, 3.0], vec![2.0]));
    }
}
