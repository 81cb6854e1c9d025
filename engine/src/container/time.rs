//! RFC 3339 timestamps with nanoseconds (docker's `RFC3339Nano`) without a date library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a time as `2006-01-02T15:04:05.999999999Z` (trailing zeros of the fraction kept, so
/// log lines sort as text).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Now, formatted.
pub fn now() -> String {
    rfc3339_nano(SystemTime::now())
}

/// Docker's zero time, used for "never".
pub const ZERO: &str = "0001-01-01T00:00:00Z";

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let mut digits = frac.chars().take(9).collect::<String>();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz[1..3].parse::<i64>().ok()? * 3600 + tz[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// `--since`/`--until` values: RFC 3339, unix seconds (`1700000000[.5]`), or a duration before
/// now (`10m`, `1h30m`, `45s`).
pub fn parse_time_arg(s: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Some(UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
    }
    let d = parse_duration(s)?;
    now.checked_sub(d)
}

/// Go-style durations: `1h2m3s`, `500ms`, `1.5s`, `2us`, `10ns`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// "Up 5 minutes" / "3 hours ago" style durations as docker prints them.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s < 120 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if s < 7200 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", s / 3600)
    } else if s < 14 * 86400 {
        format!("{} days", s / 86400)
    } else if s < 60 * 86400 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 86400 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let s = rfc3339_nano(t);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert!(parse_duration("3 days").is_none());
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            parse_time_arg("10s", now),
            Some(UNIX_EPOCH + Duration::from_secs(990))
        );
        assert_eq!(human_duration(Duration::from_secs(300)), "5 minutes");
    }
}
