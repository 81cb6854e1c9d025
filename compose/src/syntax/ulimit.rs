//! `ulimits:` entries, printed the way compose-go `UlimitsConfig` marshals them.

use serde_json::{json, Value};

use super::{type_name, SyntaxError};

/// Parses the value of one `ulimits:` entry (the caller keeps the name, e.g. `nofile`).
///
/// * a whole number `N` (or its decimal string) sets soft and hard alike and is printed as the
///   bare number: `20000`;
/// * `{soft, hard}` is printed as `{"soft":S,"hard":H}`, and soft may not exceed hard.
///
/// `-1` means unlimited (RLIM_INFINITY) and counts as the largest value. A single `0` prints as
/// `{"soft":0,"hard":0}`, because compose-go uses 0 to mean "not the single form".
pub fn parse_ulimit_value(v: &Value) -> Result<Value, SyntaxError> {
    match v {
        Value::Number(_) | Value::String(_) => {
            let n = limit(v, None)?;
            if n == 0 {
                return Ok(json!({"soft": 0, "hard": 0}));
            }
            Ok(json!(n))
        }
        Value::Object(map) => {
            for key in map.keys() {
                if !key.starts_with("x-") && key != "soft" && key != "hard" {
                    return Err(SyntaxError(format!(
                        "invalid ulimit: unknown key {key:?}; expected soft and hard"
                    )));
                }
            }
            let get = |name: &str| {
                map.get(name).ok_or_else(|| {
                    SyntaxError(format!(
                        "invalid ulimit: {name:?} is missing; give both soft and hard, or a \
                         single number for both"
                    ))
                })
            };
            let soft = limit(get("soft")?, Some("soft"))?;
            let hard = limit(get("hard")?, Some("hard"))?;
            if as_ceiling(soft) > as_ceiling(hard) {
                return Err(SyntaxError(format!(
                    "invalid ulimit: soft limit {soft} is greater than hard limit {hard}"
                )));
            }
            Ok(json!({"soft": soft, "hard": hard}))
        }
        other => Err(SyntaxError(format!(
            "invalid ulimit: expected a number or a mapping with soft and hard, got {}",
            type_name(other)
        ))),
    }
}

/// -1 (unlimited) compares above every finite limit.
fn as_ceiling(n: i64) -> i128 {
    if n == -1 {
        i128::MAX
    } else {
        i128::from(n)
    }
}

fn limit(v: &Value, field: Option<&str>) -> Result<i64, SyntaxError> {
    let what = match field {
        Some(f) => format!("ulimit {f}"),
        None => "ulimit".to_string(),
    };
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| SyntaxError(format!("invalid {what} {n}: expected a whole number")))?,
        Value::String(s) => s
            .parse::<i64>()
            .map_err(|_| SyntaxError::invalid(&what, s, "expected a whole number"))?,
        other => {
            return Err(SyntaxError(format!(
                "invalid {what}: expected a whole number, got {}",
                type_name(other)
            )))
        }
    };
    if n < -1 {
        return Err(SyntaxError(format!(
            "invalid {what} {n}: a limit cannot be negative (use -1 for unlimited)"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_value() {
        assert_eq!(parse_ulimit_value(&json!(20000)).unwrap(), json!(20000));
        assert_eq!(parse_ulimit_value(&json!("20000")).unwrap(), json!(20000));
        assert_eq!(parse_ulimit_value(&json!(-1)).unwrap(), json!(-1));
        assert_eq!(
            parse_ulimit_value(&json!(0)).unwrap(),
            json!({"soft": 0, "hard": 0})
        );
    }

    #[test]
    fn soft_and_hard() {
        let v = parse_ulimit_value(&json!({"hard": 40000, "soft": "20000", "x-a": 1})).unwrap();
        assert_eq!(v, json!({"soft": 20000, "hard": 40000}));
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["soft", "hard"]);
        assert!(parse_ulimit_value(&json!({"soft": 5, "hard": 5})).is_ok());
        assert!(parse_ulimit_value(&json!({"soft": 5, "hard": -1})).is_ok());
        assert!(parse_ulimit_value(&json!({"soft": -1, "hard": -1})).is_ok());
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_ulimit_value(&json!({"soft": 2, "hard": 1}))
                .unwrap_err()
                .0,
            "invalid ulimit: soft limit 2 is greater than hard limit 1"
        );
        assert!(parse_ulimit_value(&json!({"soft": -1, "hard": 10}))
            .unwrap_err()
            .0
            .contains("greater than"));
        assert!(parse_ulimit_value(&json!({"soft": 1}))
            .unwrap_err()
            .0
            .contains(r#""hard" is missing"#));
        assert!(parse_ulimit_value(&json!({"soft": 1, "hard": 2, "max": 3}))
            .unwrap_err()
            .0
            .contains(r#"unknown key "max""#));
        assert_eq!(
            parse_ulimit_value(&json!("lots")).unwrap_err().0,
            r#"invalid ulimit "lots": expected a whole number"#
        );
        assert!(parse_ulimit_value(&json!(1.5))
            .unwrap_err()
            .0
            .contains("whole number"));
        assert!(parse_ulimit_value(&json!(-2))
            .unwrap_err()
            .0
            .contains("cannot be negative"));
        assert!(parse_ulimit_value(&json!({"soft": "x", "hard": 1}))
            .unwrap_err()
            .0
            .contains("ulimit soft"));
        assert!(parse_ulimit_value(&json!(null))
            .unwrap_err()
            .0
            .contains("got null"));
        assert!(parse_ulimit_value(&json!([1]))
            .unwrap_err()
            .0
            .contains("got a list"));
        assert!(parse_ulimit_value(&json!({"soft": true, "hard": 1})).is_err());
        assert!(parse_ulimit_value(&json!("é")).is_err());
    }
}
