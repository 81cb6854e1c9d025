//! Parsers for the Compose short syntaxes.
//!
//! Each function turns one short-form value (`"8080:80/udp"`, `"./data:/data:ro"`, `"1m30s"`, …)
//! into the canonical long form that `docker compose config` (compose-go) prints, so the
//! normalizer can build the project model without knowing the string grammars.
//!
//! Objects are built as `serde_json::Value` maps. serde_json is compiled with `preserve_order`,
//! so the insertion order below *is* the output order; every builder inserts keys in the order of
//! the corresponding compose-go struct fields, and omits the fields compose-go marks `omitempty`
//! when they are empty.
//!
//! Everything here is pure: no file system, no environment. Relative paths are returned as
//! written; the caller resolves them against the project directory.

mod bytes;
mod device;
mod duration;
mod hosts;
mod policy;
mod ports;
mod refs;
mod ulimit;
mod volume;

pub use bytes::{parse_bytes, parse_tmpfs_size, parse_unit_bytes, unit_bytes_value};
pub use device::{parse_device, parse_device_request, parse_gpus};
pub use duration::{format_duration, parse_duration};
pub use hosts::parse_extra_host;
pub use policy::{is_valid_signal, normalize_restart, parse_env_list_entry};
pub use ports::parse_port;
pub use refs::parse_secret_or_config_ref;
pub use ulimit::parse_ulimit_value;
pub use volume::{clean_path, parse_volume};

/// A short-syntax value that cannot be understood. The message quotes the offending input and
/// says what was expected, so it can be shown to the user as is (the caller adds the file
/// position).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

impl SyntaxError {
    /// `invalid <what> "<input>": <reason>` — the one shape every message here uses.
    fn invalid(what: &str, input: &str, reason: impl std::fmt::Display) -> Self {
        SyntaxError(format!("invalid {what} {input:?}: {reason}"))
    }
}

/// A short, human description of a JSON value's type, for "expected X, got Y" messages.
fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of up to four characters over an alphabet of the separators, digits and
    /// multibyte characters the grammars care about: no parser may panic on any of them.
    #[test]
    fn no_parser_panics_on_short_strings() {
        const ALPHABET: [char; 16] = [
            '0', '1', '9', ':', '/', '-', '.', '[', ']', '=', ',', 'é', 'µ', 's', 'k', ' ',
        ];
        let mut inputs = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            let next: Vec<String> = last
                .iter()
                .flat_map(|prefix| {
                    ALPHABET.iter().map(move |c| {
                        let mut s = prefix.clone();
                        s.push(*c);
                        s
                    })
                })
                .collect();
            inputs.extend(next.iter().cloned());
            last = next;
        }
        for s in &inputs {
            let _ = parse_port(s);
            let _ = parse_volume(s);
            let _ = parse_duration(s);
            let _ = parse_bytes(s);
            let _ = parse_extra_host(s);
            let _ = parse_device(s);
            let _ = normalize_restart(s);
            let _ = is_valid_signal(s);
            let _ = parse_env_list_entry(s);
            let _ = clean_path(s);
            let v = serde_json::Value::String(s.clone());
            let _ = parse_ulimit_value(&v);
            let _ = parse_secret_or_config_ref(&v);
            let _ = parse_gpus(&v);
            let _ = parse_tmpfs_size(&v);
        }
    }

    #[test]
    fn error_display_is_the_message() {
        let e = SyntaxError::invalid("port", "80:abc", "container port \"abc\" is not a number");
        assert_eq!(
            e.to_string(),
            r#"invalid port "80:abc": container port "abc" is not a number"#
        );
    }
}
