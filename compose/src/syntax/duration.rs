//! Durations (`healthcheck.interval`, `stop_grace_period`, …): Go `time.ParseDuration` syntax as
//! extended by str2duration (which compose-go uses) with `d` and `w`, and Go's
//! `Duration.String()` for printing.

use std::time::Duration;

use super::SyntaxError;

/// Go refuses durations that do not fit an int64 of nanoseconds (about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go-style duration: one or more `<number><unit>` pairs such as `1m30s`, `1.5s`,
/// `250ms`, `10us`/`10µs`, `2h`, `1d`, `1w`. A bare `0` is allowed; other bare numbers are not
/// (a unit is required), and signs are rejected because negative durations mean nothing here.
pub fn parse_duration(s: &str) -> Result<Duration, SyntaxError> {
    let err = |reason: &str| SyntaxError::invalid("duration", s, reason);

    if s.starts_with(['-', '+']) {
        return Err(err("a duration cannot have a sign"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("the duration is empty; use e.g. 30s, 1m30s or 250ms"));
    }

    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut total: u128 = 0;
    while pos < bytes.len() {
        // Integer part.
        let int_start = pos;
        let mut whole: u128 = 0;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            whole = whole * 10 + u128::from(bytes[pos] - b'0');
            if whole > MAX_NANOS {
                return Err(err("the duration is too large"));
            }
            pos += 1;
        }
        let has_int = pos > int_start;

        // Fraction: like Go, keep digits while they fit, ignore the rest (beyond nanosecond
        // precision for any unit).
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut has_frac = false;
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            let mut overflow = false;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                if !overflow {
                    match frac
                        .checked_mul(10)
                        .and_then(|f| f.checked_add(u64::from(bytes[pos] - b'0')))
                    {
                        Some(f) if f <= i64::MAX as u64 => {
                            frac = f;
                            scale *= 10.0;
                        }
                        _ => overflow = true,
                    }
                }
                pos += 1;
            }
            has_frac = pos > frac_start;
        }
        if !has_int && !has_frac {
            return Err(err(
                "expected a number before each unit, e.g. 30s, 1m30s or 1.5h",
            ));
        }

        // Unit: everything up to the next digit or '.'. Those are ASCII, so the slice below
        // always ends on a character boundary even when the unit is "µs".
        let unit_start = pos;
        while pos < bytes.len() && !(bytes[pos].is_ascii_digit() || bytes[pos] == b'.') {
            pos += 1;
        }
        let unit = &s[unit_start..pos];
        if unit.is_empty() {
            return Err(err(
                "missing unit; use one of ns, us, ms, s, m, h, d, w (e.g. 30s)",
            ));
        }
        let Some(unit_nanos) = unit_nanos(unit) else {
            return Err(SyntaxError::invalid(
                "duration",
                s,
                format!("unknown unit {unit:?}; use one of ns, us, ms, s, m, h, d, w"),
            ));
        };

        let mut value = whole * unit_nanos;
        if frac > 0 {
            // Same float arithmetic as Go, so rounding of e.g. "1.0000000001h" matches.
            value += (frac as f64 * (unit_nanos as f64 / scale)) as u128;
        }
        total += value;
        if total > MAX_NANOS {
            return Err(err("the duration is too large"));
        }
    }
    let secs =
        u64::try_from(total / 1_000_000_000).map_err(|_| err("the duration is too large"))?;
    // Always < 1e9, so the conversion cannot fail.
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // Go accepts both the micro sign (U+00B5) and the Greek mu (U+03BC).
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return None,
    })
}

/// Formats like Go's `time.Duration.String()`: `0s`, `250ms`, `1.5µs`, `1.5s`, `1m30s`,
/// `1h0m0s`. Hours are the largest unit (`48h0m0s`, never days).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        // Sub-second values use the largest unit that keeps an integer part.
        let (unit, precision) = if nanos < 1_000 {
            ("ns", 0)
        } else if nanos < 1_000_000 {
            ("\u{b5}s", 3)
        } else {
            ("ms", 6)
        };
        let (int, frac) = split_fraction(nanos, precision);
        return format!("{int}{frac}{unit}");
    }
    let (secs, frac) = split_fraction(nanos, 9);
    let mut out = format!("{}{frac}s", secs % 60);
    let minutes = secs / 60;
    if minutes > 0 {
        out = format!("{}m{out}", minutes % 60);
        let hours = minutes / 60;
        if hours > 0 {
            out = format!("{hours}h{out}");
        }
    }
    out
}

/// Splits `v` into `v / 10^precision` and the decimal fraction `.ddd` of the remainder with
/// trailing zeros removed (empty when the remainder is zero), as Go's `fmtFrac` does.
fn split_fraction(v: u128, precision: u32) -> (u128, String) {
    let divisor = 10u128.pow(precision);
    let rem = v % divisor;
    let frac = if rem == 0 {
        String::new()
    } else {
        let digits = format!("{rem:0width$}", width = precision as usize);
        format!(".{}", digits.trim_end_matches('0'))
    };
    (v / divisor, frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), ms(250));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_duration(".5s").unwrap(), ms(500));
        assert_eq!(parse_duration("1.s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("10µs").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("10μs").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(
            parse_duration("1h2m3s4ms5us6ns").unwrap(),
            Duration::new(3723, 4_005_006)
        );
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2m2m").unwrap(), Duration::from_secs(240));
        assert_eq!(
            parse_duration("0.000000001s").unwrap(),
            Duration::from_nanos(1)
        );
        // Digits past the nanosecond are dropped, not rejected.
        assert_eq!(
            parse_duration("1.00000000000000000000000000001s").unwrap(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn parses_str2duration_days_and_weeks() {
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("1w2d").unwrap(),
            Duration::from_secs(9 * 86_400)
        );
    }

    #[test]
    fn limits() {
        assert_eq!(
            parse_duration("9223372036854775807ns").unwrap(),
            Duration::from_nanos(i64::MAX as u64)
        );
        assert!(parse_duration("9223372036854775808ns")
            .unwrap_err()
            .0
            .contains("too large"));
        assert!(parse_duration("2562048h")
            .unwrap_err()
            .0
            .contains("too large"));
        assert!(parse_duration("99999999999999999999999999999999999999999s")
            .unwrap_err()
            .0
            .contains("too large"));
        assert!(parse_duration("2562047h48m").is_err());
        assert!(parse_duration("2562047h47m").is_ok());
        assert!(parse_duration("2562047h47m16.854775807s").is_ok());
        assert!(parse_duration("2562047h47m16.854775808s").is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_duration("10").unwrap_err().0,
            r#"invalid duration "10": missing unit; use one of ns, us, ms, s, m, h, d, w (e.g. 30s)"#
        );
        assert!(parse_duration("").unwrap_err().0.contains("empty"));
        assert!(parse_duration("-1s").unwrap_err().0.contains("sign"));
        assert!(parse_duration("+1s").unwrap_err().0.contains("sign"));
        assert!(parse_duration("1x")
            .unwrap_err()
            .0
            .contains(r#"unknown unit "x""#));
        assert!(parse_duration("1S")
            .unwrap_err()
            .0
            .contains(r#"unknown unit "S""#));
        assert!(parse_duration("1 s")
            .unwrap_err()
            .0
            .contains("unknown unit"));
        assert!(parse_duration("s")
            .unwrap_err()
            .0
            .contains("expected a number"));
        assert!(parse_duration(".s")
            .unwrap_err()
            .0
            .contains("expected a number"));
        assert!(parse_duration("1s5")
            .unwrap_err()
            .0
            .contains("missing unit"));
        assert!(parse_duration("1..5s")
            .unwrap_err()
            .0
            .contains("missing unit"));
        assert!(parse_duration("00").is_err());
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        for s in ["µ", "1µ", "1é", "é1s", "1😀", "1s😀", "1.😀", "😀"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formats_like_go() {
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_100), "1.1µs"),
            (Duration::from_micros(10), "10µs"),
            (Duration::from_nanos(2_200_000), "2.2ms"),
            (ms(250), "250ms"),
            (Duration::from_nanos(999_999_999), "999.999999ms"),
            (Duration::from_secs(1), "1s"),
            (ms(1500), "1.5s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(5400), "1h30m0s"),
            (Duration::new(3723, 4_005_006), "1h2m3.004005006s"),
            (Duration::from_secs(86_400), "24h0m0s"),
            (
                Duration::from_nanos(i64::MAX as u64),
                "2562047h47m16.854775807s",
            ),
        ] {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
        // Beyond Go's range it still formats instead of panicking.
        assert_eq!(format_duration(Duration::MAX).chars().last(), Some('s'));
    }

    #[test]
    fn round_trips() {
        for s in ["1m30s", "250ms", "1h0m0s", "1.5s", "10µs", "0s", "3ns"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
