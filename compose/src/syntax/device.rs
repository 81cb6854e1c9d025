//! `devices:` short syntax and `gpus:` / device requests.

use serde_json::{json, Map, Value};

use super::{type_name, SyntaxError};

/// Parses a `devices:` short-syntax entry `SOURCE[:TARGET[:PERMISSIONS]]` into
/// `{"source":"/dev/a","target":"/dev/b","permissions":"rwm"}` (compose-go `DeviceMapping`
/// order). The target defaults to the source and the permissions to `rwm`.
///
/// Like the docker CLI, `SOURCE:PERMISSIONS` (`/dev/a:rw`) is understood when the second field
/// is a permission string rather than a path. The source is not required to be a path, so CDI
/// names (`vendor.com/gpu=all`) pass through.
pub fn parse_device(s: &str) -> Result<Value, SyntaxError> {
    let err = |reason: String| SyntaxError::invalid("device", s, reason);

    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, permissions) =
        match parts.as_slice() {
            [source] => (*source, "", "rwm"),
            [source, second] if !second.starts_with('/') && is_device_permissions(second) => {
                (*source, "", *second)
            }
            [source, target] => (*source, *target, "rwm"),
            [source, target, permissions] => (*source, *target, *permissions),
            _ => return Err(err(
                "too many colons; expected SOURCE[:TARGET[:PERMISSIONS]], or use the long syntax"
                    .into(),
            )),
        };
    if source.is_empty() {
        return Err(err("the device path is empty".into()));
    }
    if !is_device_permissions(permissions) {
        return Err(err(format!(
            "permissions {permissions:?} must be a combination of r, w and m"
        )));
    }
    // compose-go also falls back to the source for an empty middle field ("/dev/a::r").
    let target = if target.is_empty() { source } else { target };
    Ok(json!({"source": source, "target": target, "permissions": permissions}))
}

/// Docker's `validDeviceMode`: a non-empty combination of `r`, `w`, `m`, each at most once.
fn is_device_permissions(p: &str) -> bool {
    let mut seen = [false; 3];
    !p.is_empty()
        && p.chars().all(|c| {
            let i = match c {
                'r' => 0,
                'w' => 1,
                'm' => 2,
                _ => return false,
            };
            !std::mem::replace(&mut seen[i], true)
        })
}

/// The service `gpus:` value: `all` becomes `[{"count":-1}]`; a list of device requests goes
/// through [`parse_device_request`].
pub fn parse_gpus(v: &Value) -> Result<Value, SyntaxError> {
    match v {
        Value::String(s) if s.eq_ignore_ascii_case("all") => Ok(json!([{"count": -1}])),
        Value::String(s) => Err(SyntaxError::invalid(
            "gpus",
            s,
            "expected \"all\" or a list of device requests",
        )),
        Value::Array(items) => items
            .iter()
            .map(parse_device_request)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Err(SyntaxError(format!(
            "invalid gpus: expected \"all\" or a list of device requests, got {}",
            type_name(other)
        ))),
    }
}

/// One device request (a `gpus:` item or a `deploy.resources.reservations.devices` item), in
/// compose-go `DeviceRequest` order: `capabilities`, `driver`, `count`, `device_ids`, `options`.
///
/// `count: all` becomes `-1`; with neither `count` nor `device_ids`, `count` defaults to `-1`
/// (all devices); giving both is an error. Options are printed as a string map. `x-*` keys
/// are dropped, as compose-go has nowhere to keep them.
pub fn parse_device_request(v: &Value) -> Result<Value, SyntaxError> {
    let Value::Object(map) = v else {
        return Err(SyntaxError(format!(
            "invalid device request: expected a mapping, got {}",
            type_name(v)
        )));
    };
    for key in map.keys() {
        if !key.starts_with("x-")
            && !matches!(
                key.as_str(),
                "capabilities" | "driver" | "count" | "device_ids" | "options"
            )
        {
            return Err(SyntaxError(format!(
                "invalid device request: unknown key {key:?}; expected capabilities, driver, \
                 count, device_ids or options"
            )));
        }
    }
    if map.contains_key("count") && map.contains_key("device_ids") {
        return Err(SyntaxError(
            "invalid device request: \"count\" and \"device_ids\" cannot be used together".into(),
        ));
    }

    let mut out = Map::new();
    if let Some(caps) = map.get("capabilities") {
        let caps = string_list(caps, "capabilities")?;
        if !caps.is_empty() {
            out.insert("capabilities".into(), json!(caps));
        }
    }
    match map.get("driver") {
        None => {}
        Some(Value::String(d)) if d.is_empty() => {}
        Some(Value::String(d)) => {
            out.insert("driver".into(), json!(d));
        }
        Some(other) => {
            return Err(SyntaxError(format!(
                "invalid device request driver: expected a string, got {}",
                type_name(other)
            )))
        }
    }
    let count = match map.get("count") {
        Some(c) => device_count(c)?,
        None if map.contains_key("device_ids") => 0,
        None => -1,
    };
    // `count` is omitempty in compose-go.
    if count != 0 {
        out.insert("count".into(), json!(count));
    }
    if let Some(ids) = map.get("device_ids") {
        let ids = string_list(ids, "device_ids")?;
        if !ids.is_empty() {
            out.insert("device_ids".into(), json!(ids));
        }
    }
    if let Some(options) = map.get("options") {
        let options = string_map(options)?;
        if !options.is_empty() {
            out.insert("options".into(), Value::Object(options));
        }
    }
    Ok(Value::Object(out))
}

fn device_count(v: &Value) -> Result<i64, SyntaxError> {
    let bad = || {
        SyntaxError(format!(
            "invalid device count {v}: expected \"all\" or a whole number"
        ))
    };
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        Value::String(s) if s.eq_ignore_ascii_case("all") => Ok(-1),
        Value::String(s) => s.parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, SyntaxError> {
    let bad = || {
        SyntaxError(format!(
            "invalid device request {what}: expected a list of strings, got {}",
            type_name(v)
        ))
    };
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// compose-go `Mapping`: a dict with scalar values, or a list of `KEY=VALUE` strings.
fn string_map(v: &Value) -> Result<Map<String, Value>, SyntaxError> {
    let mut out = Map::new();
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let s = match val {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    other => {
                        return Err(SyntaxError(format!(
                            "invalid device request option {k:?}: expected a scalar, got {}",
                            type_name(other)
                        )))
                    }
                };
                out.insert(k.clone(), Value::String(s));
            }
        }
        Value::Array(items) => {
            for item in items {
                let Some(s) = item.as_str() else {
                    return Err(SyntaxError(format!(
                        "invalid device request options: expected KEY=VALUE strings, got {}",
                        type_name(item)
                    )));
                };
                let (k, val) = s.split_once('=').unwrap_or((s, ""));
                out.insert(k.to_string(), Value::String(val.to_string()));
            }
        }
        other => {
            return Err(SyntaxError(format!(
                "invalid device request options: expected a mapping or a list, got {}",
                type_name(other)
            )))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(s: &str) -> Value {
        parse_device(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn device_forms() {
        assert_eq!(
            dev("/dev/a"),
            json!({"source":"/dev/a","target":"/dev/a","permissions":"rwm"})
        );
        assert_eq!(
            dev("/dev/a:/dev/b"),
            json!({"source":"/dev/a","target":"/dev/b","permissions":"rwm"})
        );
        assert_eq!(
            dev("/dev/a:/dev/b:r"),
            json!({"source":"/dev/a","target":"/dev/b","permissions":"r"})
        );
        assert_eq!(
            dev("/dev/a:rw"),
            json!({"source":"/dev/a","target":"/dev/a","permissions":"rw"})
        );
        assert_eq!(
            dev("/dev/a::mw"),
            json!({"source":"/dev/a","target":"/dev/a","permissions":"mw"})
        );
        // Not a permission string, so it is a (relative) target as compose-go reads it.
        assert_eq!(dev("/dev/a:dev-b")["target"], json!("dev-b"));
        assert_eq!(
            dev("vendor.com/gpu=all"),
            json!({"source":"vendor.com/gpu=all","target":"vendor.com/gpu=all","permissions":"rwm"})
        );
        let keys: Vec<_> = dev("/dev/a").as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["source", "target", "permissions"]);
    }

    #[test]
    fn device_errors() {
        assert_eq!(
            parse_device("/a:/b:rwm:x").unwrap_err().0,
            r#"invalid device "/a:/b:rwm:x": too many colons; expected SOURCE[:TARGET[:PERMISSIONS]], or use the long syntax"#
        );
        assert!(parse_device("")
            .unwrap_err()
            .0
            .contains("device path is empty"));
        assert!(parse_device(":/dev/b")
            .unwrap_err()
            .0
            .contains("device path is empty"));
        assert!(parse_device("/a:/b:x")
            .unwrap_err()
            .0
            .contains(r#"permissions "x""#));
        assert!(parse_device("/a:/b:rr")
            .unwrap_err()
            .0
            .contains("combination of r, w and m"));
        assert!(parse_device("/a:/b:")
            .unwrap_err()
            .0
            .contains(r#"permissions """#));
        for s in ["é", "é:é", "/a:é", "/a:/b:é", "😀:😀:😀"] {
            let _ = parse_device(s);
        }
    }

    #[test]
    fn gpus() {
        assert_eq!(parse_gpus(&json!("all")).unwrap(), json!([{"count": -1}]));
        assert_eq!(
            parse_gpus(&json!([{"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}]))
                .unwrap(),
            json!([{"capabilities": ["gpu"], "driver": "nvidia", "count": 2}])
        );
        assert!(parse_gpus(&json!("some"))
            .unwrap_err()
            .0
            .contains("expected \"all\""));
        assert!(parse_gpus(&json!(3))
            .unwrap_err()
            .0
            .contains("got a number"));
        assert!(parse_gpus(&json!([1]))
            .unwrap_err()
            .0
            .contains("expected a mapping"));
    }

    #[test]
    fn device_requests() {
        let v = parse_device_request(&json!({
            "options": {"a": 1, "b": true, "c": null},
            "device_ids": ["0", "3"],
            "driver": "nvidia",
            "capabilities": ["gpu", "utility"],
            "x-note": "dropped",
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"capabilities":["gpu","utility"],"driver":"nvidia","device_ids":["0","3"],"options":{"a":"1","b":"true","c":""}})
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["capabilities", "driver", "device_ids", "options"]);
        assert_eq!(
            parse_device_request(&json!({})).unwrap(),
            json!({"count": -1})
        );
        assert_eq!(
            parse_device_request(&json!({"count": "ALL"})).unwrap(),
            json!({"count": -1})
        );
        assert_eq!(
            parse_device_request(&json!({"count": "2"})).unwrap(),
            json!({"count": 2})
        );
        assert_eq!(
            parse_device_request(&json!({"count": 0})).unwrap(),
            json!({})
        );
        assert_eq!(
            parse_device_request(&json!({"options": ["a=b", "c"]})).unwrap(),
            json!({"count": -1, "options": {"a": "b", "c": ""}})
        );
    }

    #[test]
    fn device_request_errors() {
        assert!(
            parse_device_request(&json!({"count": 1, "device_ids": ["0"]}))
                .unwrap_err()
                .0
                .contains("cannot be used together")
        );
        assert!(parse_device_request(&json!({"count": "many"}))
            .unwrap_err()
            .0
            .contains("expected \"all\" or a whole number"));
        assert!(parse_device_request(&json!({"count": 1.5})).is_err());
        assert!(parse_device_request(&json!({"ids": ["0"]}))
            .unwrap_err()
            .0
            .contains(r#"unknown key "ids""#));
        assert!(parse_device_request(&json!({"capabilities": "gpu"}))
            .unwrap_err()
            .0
            .contains("list of strings"));
        assert!(parse_device_request(&json!({"capabilities": [1]})).is_err());
        assert!(parse_device_request(&json!({"driver": 1})).is_err());
        assert!(parse_device_request(&json!({"options": "a=b"})).is_err());
        assert!(parse_device_request(&json!({"options": [1]})).is_err());
        assert!(parse_device_request(&json!({"options": {"a": [1]}})).is_err());
    }
}
