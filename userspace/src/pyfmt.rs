//! Number and date formats of the original tool (Python floats, pandas
//! timestamps), so that CSV outputs read the same as the original's.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `repr(x)` of a Python float: the shortest text that reads back as `x`,
/// in fixed notation for 1e-4 <= |x| < 1e16 (always with a fraction:
/// `66.0`), scientific otherwise (`1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the same shortest round-trip digits Python uses.
    let sci = format!("{:e}", x);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let mut out = String::from(sign);
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
        out
    } else {
        let mut out = String::from(sign);
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exp < 0 { '-' } else { '+' };
        out.push_str(&format!("e{exp_sign}{:02}", exp.abs()));
        out
    }
}

/// Nanoseconds since the epoch as pandas computes them for
/// `pd.to_datetime(seconds, unit="s")`: the whole seconds, plus the fraction
/// rounded to 9 decimals and then truncated to an integer count of ns.
/// `None` where pandas gives `NaT` (not finite, or beyond pandas' range).
pub fn pandas_epoch_ns(seconds: f64) -> Option<i64> {
    if !seconds.is_finite() {
        return None;
    }
    // pandas' datetime64[ns] spans about 1677-09-21 to 2262-04-11.
    if seconds.abs() >= 9.2e9 {
        return None;
    }
    let base = seconds.trunc();
    let frac = seconds - base;
    // Python's round(frac, 9) rounds the exact binary value correctly;
    // formatting with 9 decimals and reading back does the same.
    let frac: f64 = format!("{frac:.9}").parse().ok()?;
    let ns = (base as i64).checked_mul(1_000_000_000)?;
    ns.checked_add((frac * 1e9) as i64)
}

/// The UTC time of `ns` nanoseconds since the epoch.
pub fn utc(ns: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// `(hour, day_of_week with Monday = 0, minute)` in UTC.
pub fn hour_weekday_minute(ns: i64) -> Option<(u32, u32, u32)> {
    let t = utc(ns)?;
    Some((t.hour(), t.weekday().num_days_from_monday(), t.minute()))
}

/// How many fraction digits pandas prints for a datetime column: the
/// finest resolution any of its values needs (0, 3, 6 or 9).
pub fn pandas_fraction_digits(all_ns: impl IntoIterator<Item = i64>) -> usize {
    let mut digits = 0;
    for ns in all_ns {
        let sub = ns.rem_euclid(1_000_000_000);
        let needed = if sub % 1_000 != 0 {
            9
        } else if sub % 1_000_000 != 0 {
            6
        } else if sub != 0 {
            3
        } else {
            0
        };
        digits = digits.max(needed);
        if digits == 9 {
            break;
        }
    }
    digits
}

/// A pandas datetime as `to_csv` writes it: `2024-04-08 15:10:10.595726967`
/// with `fraction_digits` digits after the second.
pub fn pandas_datetime(ns: i64, fraction_digits: usize) -> String {
    let Some(t) = utc(ns) else {
        return String::new();
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if fraction_digits > 0 {
        let sub = ns.rem_euclid(1_000_000_000);
        let scaled = sub / 10i64.pow(9 - fraction_digits as u32);
        s.push_str(&format!(".{scaled:0width$}", width = fraction_digits));
    }
    s
}

/// Python's `str(bool)`.
pub fn bool_str(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected strings are what CPython 3 prints for repr(x).
        let cases: &[(f64, &str)] = &[
            (66.0, "66.0"),
            (97.5, "97.5"),
            (-0.0123456789, "-0.0123456789"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (123456789012345.0, "123456789012345.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (3232235855.0, "3232235855.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
        ];
        for &(x, want) in cases {
            assert_eq!(float_repr(x), want, "repr({x:e})");
        }
    }

    #[test]
    fn pandas_ns_conversion_matches_pandas() {
        // pd.to_datetime(1712589010.595727, unit="s") == 2024-04-08 15:10:10.595726967
        let ns = pandas_epoch_ns(1712589010.595727).unwrap();
        assert_eq!(ns, 1_712_589_010_595_726_967);
        assert_eq!(pandas_datetime(ns, 9), "2024-04-08 15:10:10.595726967");
        // The seed reference's own example.
        let ns = pandas_epoch_ns(1712589012.367694).unwrap();
        assert_eq!(pandas_datetime(ns, 9), "2024-04-08 15:10:12.367693901");
        assert_eq!(pandas_epoch_ns(f64::NAN), None);
        assert_eq!(pandas_epoch_ns(1e12), None);
        assert_eq!(pandas_epoch_ns(-1.5), Some(-1_500_000_000));
    }

    #[test]
    fn fraction_digits_follow_the_finest_value() {
        assert_eq!(pandas_fraction_digits([0, 2_000_000_000]), 0);
        assert_eq!(pandas_fraction_digits([5_000_000, 0]), 3);
        assert_eq!(pandas_fraction_digits([5_000, 0]), 6);
        assert_eq!(pandas_fraction_digits([5, 5_000]), 9);
        assert_eq!(pandas_datetime(1_500_000_000, 3), "1970-01-01 00:00:01.500");
        assert_eq!(pandas_datetime(-1, 0), "1969-12-31 23:59:59");
    }

    #[test]
    fn calendar_fields_are_utc() {
        // 2024-04-08 was a Monday; 15:10 UTC.
        let ns = pandas_epoch_ns(1712589010.595727).unwrap();
        assert_eq!(hour_weekday_minute(ns), Some((15, 0, 10)));
    }
}
