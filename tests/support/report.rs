//! Reading what `sniff` writes: CSV rows and the counters of its report.

use std::collections::HashMap;

/// The rows of a sniff CSV as string maps (header -> value).
pub fn read_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .map(str::to_owned)
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// A counter from sniff's report (`  packets seen:   7`).
pub fn counter(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(label)?.trim().strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} count in the report:\n{report}"))
}

/// `seconds.micros` as written in the CSV, in microseconds.
pub fn seconds_to_us(s: &str) -> u64 {
    let (secs, frac) = s
        .split_once('.')
        .unwrap_or_else(|| panic!("no decimals in {s:?}"));
    assert_eq!(frac.len(), 6, "6 decimals in {s:?}");
    secs.parse::<u64>().unwrap() * 1_000_000 + frac.parse::<u64>().unwrap()
}
