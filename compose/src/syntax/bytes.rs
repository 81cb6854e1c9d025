//! Byte sizes (`mem_limit`, `shm_size`, tmpfs `size`, …): go-units `RAMInBytes`, which compose-go
//! uses for its `UnitBytes` type, and the way `UnitBytes` is printed.

use serde_json::Value;

use super::{type_name, SyntaxError};

/// Parses a size like go-units `RAMInBytes`: a non-negative decimal number (fraction and
/// exponent allowed, `1.5g`), optionally one space, then an optional case-insensitive suffix
/// `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`…, `t`…, `p`… — all binary (1k = 1024). The result is
/// truncated to whole bytes.
pub fn parse_bytes(s: &str) -> Result<u64, SyntaxError> {
    let err = |reason: String| SyntaxError::invalid("size", s, reason);

    if s.starts_with('-') {
        return Err(err("a size cannot be negative".into()));
    }
    // go-units splits after the last digit, '.' or space; a space separator is dropped.
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(err("expected a number, e.g. 512m, 1.5g or 1048576".into()));
    };
    // `sep` indexes an ASCII character, so `sep + 1` is a character boundary.
    let (num, suffix) = if s[sep..].starts_with(' ') {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..sep + 1], &s[sep + 1..])
    };
    if !is_decimal_number(num) {
        return Err(err(format!(
            "{num:?} is not a number; expected e.g. 512m, 1.5g or 1048576"
        )));
    }
    let size: f64 = num
        .parse()
        .map_err(|_| err(format!("{num:?} is not a number")))?;

    let multiplier = suffix_multiplier(suffix).ok_or_else(|| {
        err(format!(
            "unknown unit {suffix:?}; use b, k, m, g, t or p (optionally followed by b or ib)"
        ))
    })?;
    let bytes = size * multiplier;
    // go-units returns an int64; refuse what does not fit rather than wrapping.
    if !bytes.is_finite() || bytes >= 9_223_372_036_854_775_808.0 {
        return Err(err("the size is too large".into()));
    }
    // Truncation towards zero is what Go's int64(float64) does; the value is in range.
    Ok(bytes as u64)
}

/// `[0-9]*(\.[0-9]*)?([eE][+-]?[0-9]+)?` with at least one mantissa digit — the forms of Go's
/// `ParseFloat` that make sense for a size (no sign, hex, `inf` or `nan`).
fn is_decimal_number(num: &str) -> bool {
    let (mantissa, exponent) = match num.find(['e', 'E']) {
        Some(i) => (&num[..i], Some(&num[i + 1..])),
        None => (num, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn suffix_multiplier(suffix: &str) -> Option<f64> {
    let lower = suffix.to_ascii_lowercase();
    let mut chars = lower.chars();
    let exponent = match chars.next() {
        None => return Some(1.0),
        Some('b') => return chars.next().is_none().then_some(1.0),
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        Some(_) => return None,
    };
    // After the prefix only "", "b" or "ib" may follow (go-units rejects "ki").
    match chars.as_str() {
        "" | "b" | "ib" => Some(1024f64.powi(exponent)),
        _ => None,
    }
}

/// A compose-go `UnitBytes` field (`mem_limit`, `memswap_limit`, `shm_size`, …): a YAML integer
/// is taken as is (so `memswap_limit: -1` keeps meaning "unlimited"), a string goes through
/// [`parse_bytes`]. Pair with [`unit_bytes_value`] for the printed form.
pub fn parse_unit_bytes(v: &Value) -> Result<i64, SyntaxError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            SyntaxError(format!(
                "invalid size {n}: expected a whole number of bytes or a string such as \"512m\""
            ))
        }),
        Value::String(s) => {
            let b = parse_bytes(s)?;
            i64::try_from(b).map_err(|_| SyntaxError::invalid("size", s, "the size is too large"))
        }
        other => Err(SyntaxError(format!(
            "invalid size: expected a number or a string such as \"512m\", got {}",
            type_name(other)
        ))),
    }
}

/// How compose-go prints a `UnitBytes`: the decimal byte count as a *string*
/// (`mem_limit: "536870912"`).
pub fn unit_bytes_value(bytes: i64) -> Value {
    Value::String(bytes.to_string())
}

/// The `tmpfs.size` of a long-syntax `tmpfs` volume: a number of bytes or a size string, never
/// negative; returned in the printed `UnitBytes` form (`"67108864"`).
pub fn parse_tmpfs_size(v: &Value) -> Result<Value, SyntaxError> {
    let bytes = parse_unit_bytes(v)?;
    if bytes < 0 {
        return Err(SyntaxError(format!(
            "invalid tmpfs size {bytes}: a size cannot be negative"
        )));
    }
    Ok(unit_bytes_value(bytes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const K: u64 = 1024;

    #[test]
    fn plain_numbers() {
        assert_eq!(parse_bytes("0").unwrap(), 0);
        assert_eq!(parse_bytes("1048576").unwrap(), 1_048_576);
        assert_eq!(parse_bytes("32").unwrap(), 32);
        assert_eq!(parse_bytes("1.9").unwrap(), 1);
        assert_eq!(parse_bytes(".5k").unwrap(), 512);
        assert_eq!(parse_bytes("1.").unwrap(), 1);
        assert_eq!(parse_bytes("1e3").unwrap(), 1000);
        assert_eq!(parse_bytes("1E3b").unwrap(), 1000);
        assert_eq!(parse_bytes("1 ").unwrap(), 1);
    }

    #[test]
    fn suffixes() {
        for (s, want) in [
            ("1b", 1),
            ("1B", 1),
            ("1k", K),
            ("1K", K),
            ("1kb", K),
            ("1KB", K),
            ("1KiB", K),
            ("1kib", K),
            ("512m", 512 * K * K),
            ("512MB", 512 * K * K),
            ("1.5g", 3 * K * K * K / 2),
            ("2G", 2 * K * K * K),
            ("1gb", K * K * K),
            ("1t", K.pow(4)),
            ("1TB", K.pow(4)),
            ("1p", K.pow(5)),
            ("1PiB", K.pow(5)),
            ("10 MB", 10 * K * K),
            ("1 b", 1),
        ] {
            assert_eq!(parse_bytes(s).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_bytes("-1").unwrap_err().0,
            r#"invalid size "-1": a size cannot be negative"#
        );
        assert!(parse_bytes("").unwrap_err().0.contains("expected a number"));
        assert!(parse_bytes("m")
            .unwrap_err()
            .0
            .contains("expected a number"));
        assert!(parse_bytes("abc")
            .unwrap_err()
            .0
            .contains("expected a number"));
        assert!(parse_bytes("1x")
            .unwrap_err()
            .0
            .contains(r#"unknown unit "x""#));
        assert!(parse_bytes("1ki").unwrap_err().0.contains("unknown unit"));
        assert!(parse_bytes("1bb").unwrap_err().0.contains("unknown unit"));
        assert!(parse_bytes("1kbb").unwrap_err().0.contains("unknown unit"));
        assert!(parse_bytes("1e").unwrap_err().0.contains("unknown unit"));
        assert!(parse_bytes("1 2").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes("1  k").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes("+1").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes("1.2.3").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes(".").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes("0x10").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes("inf 1").unwrap_err().0.contains("not a number"));
        assert!(parse_bytes("8192p").unwrap_err().0.contains("too large"));
        assert!(parse_bytes("1e400").unwrap_err().0.contains("too large"));
        assert!(parse_bytes("9223372036854775808")
            .unwrap_err()
            .0
            .contains("too large"));
        assert_eq!(parse_bytes("8191p").unwrap(), 8191 * K.pow(5));
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        for s in ["é", "1é", "1 é", "é1", "1kö", "😀1", "1😀", "1.😀b"] {
            assert!(parse_bytes(s).is_err(), "{s}");
        }
    }

    #[test]
    fn unit_bytes() {
        assert_eq!(parse_unit_bytes(&json!(1024)).unwrap(), 1024);
        assert_eq!(parse_unit_bytes(&json!(-1)).unwrap(), -1);
        assert_eq!(parse_unit_bytes(&json!("1k")).unwrap(), 1024);
        assert!(parse_unit_bytes(&json!(1.5))
            .unwrap_err()
            .0
            .contains("whole number"));
        assert!(parse_unit_bytes(&json!(true))
            .unwrap_err()
            .0
            .contains("got a boolean"));
        assert!(parse_unit_bytes(&json!("-1")).is_err());
        assert_eq!(unit_bytes_value(536_870_912), json!("536870912"));
    }

    #[test]
    fn tmpfs_size() {
        assert_eq!(parse_tmpfs_size(&json!("64m")).unwrap(), json!("67108864"));
        assert_eq!(parse_tmpfs_size(&json!(1000)).unwrap(), json!("1000"));
        assert!(parse_tmpfs_size(&json!(-1))
            .unwrap_err()
            .0
            .contains("negative"));
        assert!(parse_tmpfs_size(&json!(null)).is_err());
    }
}
