//! Service `secrets:` / `configs:` entries (compose-go `FileReferenceConfig`).

use serde_json::{Map, Value};

use super::{type_name, SyntaxError};

/// Parses one service `secrets:` or `configs:` entry.
///
/// A bare name becomes `{"source":"name"}`. The long form is checked and re-emitted in
/// compose-go order — `source`, `target`, `uid`, `gid`, `mode`, then any `x-*` keys — with
/// `mode` (a YAML number, or an octal string like `"0440"`) printed the way current
/// compose-go prints a `FileMode`: as an octal *string*, `"0440"`. No default `target` is
/// filled in here; that differs between secrets and configs and is the caller's call.
pub fn parse_secret_or_config_ref(v: &Value) -> Result<Value, SyntaxError> {
    let map = match v {
        Value::String(name) => {
            if name.is_empty() {
                return Err(SyntaxError(
                    "invalid secret/config reference: the name is empty".into(),
                ));
            }
            let mut out = Map::new();
            out.insert("source".into(), Value::String(name.clone()));
            return Ok(Value::Object(out));
        }
        Value::Object(map) => map,
        other => {
            return Err(SyntaxError(format!(
                "invalid secret/config reference: expected a name or a mapping with source, \
                 target, uid, gid, mode, got {}",
                type_name(other)
            )))
        }
    };

    for key in map.keys() {
        if !key.starts_with("x-")
            && !matches!(key.as_str(), "source" | "target" | "uid" | "gid" | "mode")
        {
            return Err(SyntaxError(format!(
                "invalid secret/config reference: unknown key {key:?}; expected source, \
                 target, uid, gid or mode"
            )));
        }
    }

    let mut out = Map::new();
    match map.get("source") {
        Some(Value::String(s)) if !s.is_empty() => {
            out.insert("source".into(), Value::String(s.clone()));
        }
        Some(Value::String(_)) | None => {
            return Err(SyntaxError(
                "invalid secret/config reference: \"source\" is required and names the \
                 top-level secret or config"
                    .into(),
            ))
        }
        Some(other) => {
            return Err(SyntaxError(format!(
                "invalid secret/config reference: \"source\" must be a string, got {}",
                type_name(other)
            )))
        }
    }
    if let Some(target) = map.get("target") {
        let Value::String(t) = target else {
            return Err(SyntaxError(format!(
                "invalid secret/config reference: \"target\" must be a string, got {}",
                type_name(target)
            )));
        };
        if !t.is_empty() {
            out.insert("target".into(), Value::String(t.clone()));
        }
    }
    for id in ["uid", "gid"] {
        let Some(value) = map.get(id) else { continue };
        // The schema wants strings; a YAML number is the obvious intent, so accept it.
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.as_u64().is_some() => n.to_string(),
            other => {
                return Err(SyntaxError(format!(
                    "invalid secret/config reference: {id:?} must be a string such as \"1000\", \
                     got {}",
                    type_name(other)
                )))
            }
        };
        if !text.is_empty() {
            out.insert(id.into(), Value::String(text));
        }
    }
    if let Some(mode) = map.get("mode") {
        out.insert(
            "mode".into(),
            Value::String(format!("0{:o}", file_mode(mode)?)),
        );
    }
    for (key, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        out.insert(key.clone(), value.clone());
    }
    Ok(Value::Object(out))
}

/// A file mode: a number is taken as its value (YAML `0440` must already have been read as
/// octal by the YAML layer), a string is octal (`"0440"`, `"440"`; `"0o440"` is also accepted).
fn file_mode(v: &Value) -> Result<u32, SyntaxError> {
    let mode = match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| {
                SyntaxError(format!(
                    "invalid mode {n}: expected a file mode such as 0440"
                ))
            })?,
        Value::String(s) => {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(SyntaxError::invalid(
                    "mode",
                    s,
                    "expected an octal file mode such as \"0440\"",
                ));
            }
            u32::from_str_radix(digits, 8).map_err(|_| {
                SyntaxError::invalid("mode", s, "expected a file mode no larger than 07777")
            })?
        }
        other => {
            return Err(SyntaxError(format!(
                "invalid mode: expected an octal string such as \"0440\" or a number, got {}",
                type_name(other)
            )))
        }
    };
    if mode > 0o7777 {
        return Err(SyntaxError(format!(
            "invalid mode 0{mode:o}: expected a file mode no larger than 07777"
        )));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(v: Value) -> Value {
        parse_secret_or_config_ref(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn err(v: Value) -> String {
        parse_secret_or_config_ref(&v).unwrap_err().0
    }

    #[test]
    fn short_form() {
        assert_eq!(ok(json!("db_password")), json!({"source": "db_password"}));
    }

    #[test]
    fn long_form() {
        let v = ok(json!({
            "x-note": 1,
            "mode": "0440",
            "gid": "1001",
            "uid": 1000,
            "target": "/etc/app.conf",
            "source": "app",
        }));
        assert_eq!(
            v,
            json!({"source":"app","target":"/etc/app.conf","uid":"1000","gid":"1001","mode":"0440","x-note":1})
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["source", "target", "uid", "gid", "mode", "x-note"]);
        assert_eq!(ok(json!({"source": "s"})), json!({"source": "s"}));
        // Empty strings are omitempty in compose-go.
        assert_eq!(
            ok(json!({"source": "s", "target": "", "uid": ""})),
            json!({"source": "s"})
        );
    }

    #[test]
    fn modes() {
        for (input, want) in [
            (json!(288), "0440"),
            (json!(0o755), "0755"),
            (json!("0440"), "0440"),
            (json!("440"), "0440"),
            (json!("0o400"), "0400"),
            (json!("0"), "00"),
            (json!(0), "00"),
            (json!("7777"), "07777"),
        ] {
            assert_eq!(
                ok(json!({"source": "s", "mode": input}))["mode"],
                json!(want)
            );
        }
    }

    #[test]
    fn errors() {
        assert!(err(json!("")).contains("name is empty"));
        assert!(err(json!(1)).contains("got a number"));
        assert!(err(json!({})).contains("\"source\" is required"));
        assert!(err(json!({"source": ""})).contains("\"source\" is required"));
        assert!(err(json!({"source": 1})).contains("must be a string"));
        assert!(err(json!({"source": "s", "target": 1})).contains("\"target\" must be a string"));
        assert!(err(json!({"source": "s", "uid": -1})).contains("\"uid\" must be a string"));
        assert!(err(json!({"source": "s", "gid": true})).contains("\"gid\""));
        assert!(err(json!({"source": "s", "name": "x"})).contains(r#"unknown key "name""#));
        assert_eq!(
            err(json!({"source": "s", "mode": "0948"})),
            r#"invalid mode "0948": expected an octal file mode such as "0440""#
        );
        assert!(err(json!({"source": "s", "mode": "rw"})).contains("octal"));
        assert!(err(json!({"source": "s", "mode": ""})).contains("octal"));
        assert!(err(json!({"source": "s", "mode": "-0400"})).contains("octal"));
        assert!(err(json!({"source": "s", "mode": "0é"})).contains("octal"));
        assert!(err(json!({"source": "s", "mode": "10000"})).contains("07777"));
        assert!(err(json!({"source": "s", "mode": "77777777777777777777777"})).contains("07777"));
        assert!(err(json!({"source": "s", "mode": 4096})).contains("07777"));
        assert!(err(json!({"source": "s", "mode": -1})).contains("file mode"));
        assert!(err(json!({"source": "s", "mode": 1.5})).contains("file mode"));
        assert!(err(json!({"source": "s", "mode": null})).contains("got null"));
    }
}
