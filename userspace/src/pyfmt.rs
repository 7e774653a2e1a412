//! Number and date formats of the original tool (Python floats, pandas
//! timestamps), so that CSV outputs read the same as the original's.

/// `repr(x)` of a Python float: the shortest text that reads back as `x`,
/// in fixed notation for 1e-4 <= |x| < 1e16 (always with a fraction:
/// `66.0`), scientific otherwise (`1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    let mut s = String::with_capacity(24);
    push_float_repr(&mut s, x);
    s
}

/// Appends [`float_repr`] of `x` to `out`.
pub fn push_float_repr(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(x);
    // ryu and Python agree on the digits (shortest round trip, ties to
    // even) and on the layout for numbers written in fixed notation with
    // at most 4 zeros after the point (ryu writes 1e-5 as 0.00001, Python
    // switches to 1e-05 there).
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if !unsigned.contains('e') && !unsigned.starts_with("0.0000") {
        out.push_str(text);
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    let (digits, exp) = shortest_digits(unsigned);
    let digits = digits.as_slice();
    push_ascii(out, &digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        push_ascii(out, &digits[1..]);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let mut int = itoa::Buffer::new();
    let e = int.format(exp.unsigned_abs());
    if e.len() < 2 {
        out.push('0');
    }
    out.push_str(e);
}

fn push_ascii(out: &mut String, digits: &[u8]) {
    out.push_str(std::str::from_utf8(digits).expect("ASCII digits"));
}

/// The significant digits (no leading or trailing zeros) of a positive
/// number written by ryu (`66.0`, `0.00012`, `1.5e-7`, `1e16`), and the
/// decimal exponent of its first digit.
fn shortest_digits(text: &str) -> (arrayvec_digits::Digits, i32) {
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu exponent")),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = arrayvec_digits::Digits::default();
    let mut first_exp = None;
    for (i, b) in int.bytes().chain(frac.bytes()).enumerate() {
        if first_exp.is_none() {
            if b == b'0' {
                continue;
            }
            first_exp = Some(int.len() as i32 - 1 - i as i32);
        }
        digits.push(b);
    }
    digits.trim_trailing_zeros();
    (digits, first_exp.unwrap_or(0) + exp)
}

/// A fixed-capacity digit string (an f64 has at most 17 significant digits).
mod arrayvec_digits {
    #[derive(Default)]
    pub struct Digits {
        bytes: [u8; 24],
        len: usize,
    }

    impl Digits {
        pub fn push(&mut self, b: u8) {
            self.bytes[self.len] = b;
            self.len += 1;
        }

        pub fn trim_trailing_zeros(&mut self) {
            while self.len > 1 && self.bytes[self.len - 1] == b'0' {
                self.len -= 1;
            }
        }

        pub fn as_slice(&self) -> &[u8] {
            &self.bytes[..self.len]
        }
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
    // Python's round(frac, 9) rounds the exact binary value to the nearest
    // multiple of 1e-9. Far from a tie, rounding the product frac * 1e9
    // (off by at most 1e-7) picks the same multiple; near one, the exact
    // decimal expansion decides.
    let scaled = frac * 1e9;
    let rounded = if (scaled - scaled.floor() - 0.5).abs() > 1e-3 {
        scaled.round() / 1e9
    } else {
        format!("{frac:.9}").parse().ok()?
    };
    let ns = (base as i64).checked_mul(1_000_000_000)?;
    ns.checked_add((rounded * 1e9) as i64)
}

/// `(hour, day_of_week with Monday = 0, minute)` in UTC.
pub fn hour_weekday_minute(ns: i64) -> (u32, u32, u32) {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let weekday = (days + 3).rem_euclid(7);
    (
        (of_day / 3600) as u32,
        weekday as u32,
        (of_day % 3600 / 60) as u32,
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + (month <= 2) as i64;
    (year, month, day)
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

/// Writes `value` as exactly `buf.len()` decimal digits.
fn put_digits(buf: &mut [u8], mut value: u64) {
    for b in buf.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Appends a pandas datetime as `to_csv` writes it: `2024-04-08
/// 15:10:10.595726967`, with `fraction_digits` digits after the second.
pub fn push_pandas_datetime(out: &mut String, ns: i64, fraction_digits: usize) {
    let secs = ns.div_euclid(1_000_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400) as u64;
    let mut buf = *b"0000-00-00 00:00:00.000000000";
    put_digits(&mut buf[0..4], year.clamp(0, 9999) as u64);
    put_digits(&mut buf[5..7], month as u64);
    put_digits(&mut buf[8..10], day as u64);
    put_digits(&mut buf[11..13], of_day / 3600);
    put_digits(&mut buf[14..16], of_day % 3600 / 60);
    put_digits(&mut buf[17..19], of_day % 60);
    let len = if fraction_digits == 0 {
        19
    } else {
        let digits = fraction_digits.min(9);
        let sub = ns.rem_euclid(1_000_000_000) as u64;
        const SCALE: [u64; 10] = [
            1_000_000_000,
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
            100,
            10,
            1,
        ];
        put_digits(&mut buf[20..20 + digits], sub / SCALE[digits]);
        20 + digits
    };
    out.push_str(std::str::from_utf8(&buf[..len]).expect("ASCII"));
}

/// [`push_pandas_datetime`] into a new string.
pub fn pandas_datetime(ns: i64, fraction_digits: usize) -> String {
    let mut s = String::with_capacity(29);
    push_pandas_datetime(&mut s, ns, fraction_digits);
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
            (1e15, "1000000000000000.0"),
            (123.0e-20, "1.23e-18"),
            (-2.5e300, "-2.5e+300"),
            (5e-324, "5e-324"),
            (0.00012, "0.00012"),
            (f64::MAX, "1.7976931348623157e+308"),
            // Exactly 2181495296738027.25, a tie between two shortest texts.
            (f64::from_bits(0x431f_003b_d0f7_0bad), "2181495296738027.2"),
        ];
        for &(x, want) in cases {
            assert_eq!(float_repr(x), want, "repr({x:e})");
        }
    }

    /// Over many random doubles: the text reads back as the same double,
    /// with as few digits as Rust's own shortest formatting uses. (The
    /// digits themselves may differ on exact ties, e.g. 2181495296738027.25,
    /// where Python and ryu round half to even, `2181495296738027.2`, and
    /// Rust's formatting does not.)
    #[test]
    fn float_repr_round_trips_with_the_shortest_digits() {
        let mut state = 0x243f_6a88_85a3_08d3u64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if !x.is_finite() {
                continue;
            }
            let repr = float_repr(x);
            assert_eq!(repr.parse::<f64>().unwrap(), x, "{repr}");
            let ours: String = repr
                .split(['e', 'E'])
                .next()
                .unwrap()
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect();
            let std_digits: String = format!("{:e}", x)
                .split('e')
                .next()
                .unwrap()
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect();
            assert_eq!(
                ours.trim_matches('0').len(),
                std_digits.trim_matches('0').len(),
                "{x:e}"
            );
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
        assert_eq!(hour_weekday_minute(ns), (15, 0, 10));
    }

    /// The fast paths against chrono and against the exact (string) rounding.
    #[test]
    fn fast_paths_agree_with_references() {
        use chrono::{DateTime, Datelike, Timelike};
        let utc = |ns: i64| {
            DateTime::from_timestamp(
                ns.div_euclid(1_000_000_000),
                ns.rem_euclid(1_000_000_000) as u32,
            )
        };
        let exact = |seconds: f64| {
            let base = seconds.trunc();
            let frac: f64 = format!("{:.9}", seconds - base).parse().unwrap();
            (base as i64) * 1_000_000_000 + (frac * 1e9) as i64
        };
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seconds =
                (x % 9_000_000_000) as f64 / 1.0 - 4.5e9 + (x >> 40) as f64 / 16_777_216.0;
            let ns = pandas_epoch_ns(seconds).unwrap();
            assert_eq!(ns, exact(seconds), "{seconds}");
            let t = utc(ns).unwrap();
            assert_eq!(
                hour_weekday_minute(ns),
                (t.hour(), t.weekday().num_days_from_monday(), t.minute())
            );
            assert_eq!(
                pandas_datetime(ns, 9),
                t.format("%Y-%m-%d %H:%M:%S%.9f").to_string()
            );
        }
        // Ties at the ninth decimal go through the exact path.
        for tie in [0.5e-9, 2.5e-9, 1712589010.0000000005, -3.5e-9] {
            assert_eq!(pandas_epoch_ns(tie), Some(exact(tie)), "{tie}");
        }
    }
}
