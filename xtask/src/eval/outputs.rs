//! Reading the tool's CSV outputs back: the `timestamp` column (epoch
//! seconds, 6 decimals) and, for `predict`, `anomaly_score`.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// `1700000000.000001` as epoch microseconds, exactly.
pub fn parse_seconds6(cell: &str) -> Option<u64> {
    let (s, f) = cell.split_once('.')?;
    if f.len() != 6 {
        return None;
    }
    Some(s.parse::<u64>().ok()? * 1_000_000 + f.parse::<u64>().ok()?)
}

/// Each row's timestamp (epoch us) and, when `score` is set, the value of
/// that column.
pub fn read_rows(text: &str, score: Option<&str>) -> Result<Vec<(u64, f64)>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("no `{name}` column in the header {header:?}"))
    };
    let t = column("timestamp")?;
    let s = score.map(column).transpose()?;
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let Some(time) = cells.get(t).and_then(|c| parse_seconds6(c)) else {
            bail!("row {}: bad timestamp in {line:?}", i + 1);
        };
        let value = match s {
            // An empty `alert_id` (reported, in no alert) reads as 0.
            Some(s) if cells.get(s) == Some(&"") => 0.0,
            Some(s) => cells
                .get(s)
                .and_then(|c| c.parse::<f64>().ok())
                .with_context(|| format!("row {}: bad score in {line:?}", i + 1))?,
            None => 0.0,
        };
        rows.push((time, value));
    }
    Ok(rows)
}

/// [`read_rows`] of the file at `path`.
pub fn read_file(path: &Path, score: Option<&str>) -> Result<Vec<(u64, f64)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_rows(&text, score).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_scores() {
        assert_eq!(
            parse_seconds6("1700000000.000001"),
            Some(1_700_000_000_000_001)
        );
        assert_eq!(parse_seconds6("1700000000.5"), None);
        assert_eq!(parse_seconds6("x.000001"), None);
        let csv = "timestamp,source_ip,anomaly_score,is_anomaly\n\
                   1700000000.000001,::1,-0.125,True\n\
                   1700000001.250000,10.0.0.1,0.03,False\n";
        let rows = read_rows(csv, Some("anomaly_score")).unwrap();
        assert_eq!(
            rows,
            [
                (1_700_000_000_000_001, -0.125),
                (1_700_000_001_250_000, 0.03)
            ]
        );
        assert_eq!(read_rows(csv, None).unwrap().len(), 2);
        assert!(read_rows(csv, Some("nope")).is_err());
        assert!(read_rows("timestamp\nbad\n", None).is_err());
    }
}
