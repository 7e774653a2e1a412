//! Reading typed values out of table cells, with errors that name the line
//! and the column.

use std::net::IpAddr;

use anyhow::{anyhow, bail, Result};

use crate::io::Table;

/// The five columns every packet CSV has (the original tool's format).
pub const SEED_COLUMNS: [&str; 5] = [
    "timestamp",
    "source_ip",
    "destination_ip",
    "protocol",
    "length",
];

/// Where the five seed columns are in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketColumns {
    pub timestamp: usize,
    pub source_ip: usize,
    pub destination_ip: usize,
    pub protocol: usize,
    pub length: usize,
}

impl PacketColumns {
    /// Finds the seed columns, naming every one that is missing.
    pub fn find(table: &Table) -> Result<Self> {
        let missing: Vec<&str> = SEED_COLUMNS
            .iter()
            .copied()
            .filter(|c| table.column(c).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "the input is missing the required column{} {} (it has: {}); \
                 use --feature-columns to score a CSV that is not a packet capture",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                table.headers().join(", ")
            );
        }
        let col = |name| table.column(name).expect("checked above");
        Ok(PacketColumns {
            timestamp: col("timestamp"),
            source_ip: col("source_ip"),
            destination_ip: col("destination_ip"),
            protocol: col("protocol"),
            length: col("length"),
        })
    }
}

fn not_a_number(table: &Table, row: usize, col: usize) -> anyhow::Error {
    anyhow!(
        "line {}, column `{}`: `{}` is not a number",
        table.line(row),
        table.headers()[col],
        table.cell(row, col)
    )
}

/// A numeric cell; `None` when it is empty (a missing value).
pub fn number(table: &Table, row: usize, col: usize) -> Result<Option<f64>> {
    let text = table.cell(row, col).trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(not_a_number(table, row, col)),
    }
}

/// A numeric cell that must be present (model inputs chosen by the user):
/// numbers, and `True`/`False` as 1/0 (how pandas writes booleans).
pub fn required_number(table: &Table, row: usize, col: usize) -> Result<f64> {
    let text = table.cell(row, col).trim();
    if text.is_empty() {
        bail!(
            "line {}, column `{}` is empty: every row needs a value in a feature column",
            table.line(row),
            table.headers()[col]
        );
    }
    if text.eq_ignore_ascii_case("true") {
        return Ok(1.0);
    }
    if text.eq_ignore_ascii_case("false") {
        return Ok(0.0);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(not_a_number(table, row, col)),
    }
}

/// Epoch seconds as written (`1712589010.595727`) to nanoseconds, exactly:
/// the digits are read as a decimal, not through a float, so that time
/// differences between rows are exact. Other forms (exponents) go through
/// a float. `None` when the cell is not a number.
pub fn epoch_ns(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !whole.is_empty() && plain(whole) && plain(fraction) && whole.len() <= 12 {
        // Beyond i64 nanoseconds (year 2262) is no time, as for floats below.
        let mut ns: i64 = whole.parse::<i64>().ok()?.checked_mul(1_000_000_000)?;
        let mut scale = 100_000_000;
        for b in fraction.bytes().take(9) {
            ns = ns.checked_add((b - b'0') as i64 * scale)?;
            scale /= 10;
        }
        return Some(if negative { -ns } else { ns });
    }
    let seconds: f64 = text.parse().ok()?;
    (seconds.is_finite() && seconds.abs() < 9.2e9).then(|| (seconds * 1e9).round() as i64)
}

/// An address cell; `None` when it does not parse.
pub fn ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// The address as an integer (the original's `int(ip_address(x))`), 0 when
/// it does not parse.
pub fn ip_to_int(text: &str) -> u128 {
    ip_as_int(ip(text))
}

/// [`ip_to_int`] of an already parsed address.
pub fn ip_as_int(addr: Option<IpAddr>) -> u128 {
    match addr {
        Some(IpAddr::V4(a)) => u32::from(a) as u128,
        Some(IpAddr::V6(a)) => u128::from(a),
        None => 0,
    }
}

/// 10/8, 172.16/12 and 192.168/16: the original's definition (an IPv6
/// address is never private there).
pub fn is_private_v4(addr: Option<IpAddr>) -> bool {
    match addr {
        Some(IpAddr::V4(a)) => {
            let o = a.octets();
            o[0] == 10 || (o[0] == 172 && (16..32).contains(&o[1])) || (o[0] == 192 && o[1] == 168)
        }
        _ => false,
    }
}

/// The original's definition plus IPv6 unique local addresses (fc00::/7).
pub fn is_private(addr: Option<IpAddr>) -> bool {
    match addr {
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => is_private_v4(Some(IpAddr::V4(v4))),
            None => (a.octets()[0] & 0xfe) == 0xfc,
        },
        other => is_private_v4(other),
    }
}

/// The address in the 16-byte form flow keys use (IPv4 mapped into IPv6);
/// all zeros when it does not parse.
pub fn ip_key(addr: Option<IpAddr>) -> [u8; 16] {
    match addr {
        Some(IpAddr::V4(a)) => a.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(a)) => a.octets(),
        None => [0; 16],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]]) -> Table {
        Table::from_rows(&["x", "y"], rows).unwrap()
    }

    #[test]
    fn numbers_missing_values_and_errors() {
        let t = table(&[&["66", ""], &["1.5e2", "abc"], &["true", "inf"]]);
        assert_eq!(number(&t, 0, 0).unwrap(), Some(66.0));
        assert_eq!(number(&t, 0, 1).unwrap(), None);
        assert_eq!(number(&t, 1, 0).unwrap(), Some(150.0));
        assert_eq!(
            number(&t, 1, 1).unwrap_err().to_string(),
            "line 3, column `y`: `abc` is not a number"
        );
        assert!(number(&t, 2, 1).is_err());
        assert_eq!(required_number(&t, 2, 0).unwrap(), 1.0);
        assert_eq!(
            required_number(&t, 0, 1).unwrap_err().to_string(),
            "line 2, column `y` is empty: every row needs a value in a feature column"
        );
    }

    #[test]
    fn epoch_seconds_are_read_exactly() {
        assert_eq!(
            epoch_ns("1712589010.595727"),
            Some(1_712_589_010_595_727_000)
        );
        assert_eq!(epoch_ns("10"), Some(10_000_000_000));
        assert_eq!(epoch_ns("0.1234567891"), Some(123_456_789));
        assert_eq!(epoch_ns("-1.5"), Some(-1_500_000_000));
        assert_eq!(epoch_ns("1.5e3"), Some(1_500_000_000_000));
        assert_eq!(epoch_ns(""), None);
        assert_eq!(epoch_ns("soon"), None);
        assert_eq!(epoch_ns("1e300"), None);
        // Past i64 nanoseconds: no time (found by tests/fuzz_inputs.rs; the
        // multiplication used to overflow, a panic in debug builds).
        assert_eq!(epoch_ns("999999999999.5"), None);
        assert_eq!(epoch_ns("-9223372036.999999999"), None);
        assert_eq!(
            epoch_ns("9223372036.854775807"),
            Some(i64::MAX),
            "the largest time is one"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(ip_to_int("192.168.1.79"), 3232235855);
        assert_eq!(ip_to_int("::1"), 1);
        assert_eq!(ip_to_int("not an address"), 0);
        assert!(is_private_v4(ip("172.31.0.1")));
        assert!(!is_private_v4(ip("172.32.0.1")));
        assert!(!is_private_v4(ip("fd00::1")));
        assert!(is_private(ip("fd00::1")));
        assert!(is_private(ip("::ffff:10.0.0.1")));
        assert!(!is_private(ip("2001:db8::1")));
        assert_eq!(&ip_key(ip("1.2.3.4"))[10..], &[0xff, 0xff, 1, 2, 3, 4]);
    }
}
