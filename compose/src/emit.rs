//! A YAML writer for JSON values, in the block style `docker compose config` prints: two-space
//! indentation, sequences under their key without extra indent, strings quoted only where a
//! plain scalar would read back as something else.

use serde_json::Value;

use crate::yaml::resolve_plain;

pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn is_collection(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, ind: usize) {
    for (k, v) in m {
        indent(out, ind);
        out.push_str(&key(k));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, ind + 2);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, ind + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, ind + 2));
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], ind: usize) {
    for item in items {
        indent(out, ind);
        out.push('-');
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                // The first key shares the dash's line, the rest align under it.
                let mut first = true;
                for (k, v) in inner {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, ind + 2);
                    }
                    out.push_str(&key(k));
                    out.push(':');
                    if is_collection(v) {
                        out.push('\n');
                        match v {
                            Value::Object(m) => write_map(out, m, ind + 4),
                            Value::Array(a) => write_seq(out, a, ind + 4),
                            _ => {}
                        }
                    } else {
                        out.push(' ');
                        out.push_str(&scalar(v, ind + 4));
                        out.push('\n');
                    }
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, ind + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, ind + 2));
                out.push('\n');
            }
        }
    }
}

fn key(k: &str) -> String {
    if needs_quotes(k) {
        quote(k)
    } else {
        k.to_string()
    }
}

fn scalar(v: &Value, ind: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, ind),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string(s: &str, ind: usize) -> String {
    if s.contains('\n') && literal_ok(s) {
        // Multi-line text (inline Dockerfiles, config contents) reads best as a literal block.
        let chomp = if s.ends_with('\n') { "|" } else { "|-" };
        let mut out = String::from(chomp);
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', ind));
                out.push_str(line);
            }
        }
        return out;
    }
    if needs_quotes(s) {
        quote(s)
    } else {
        s.to_string()
    }
}

/// A literal block keeps the text exactly only when no line has trailing blanks, the text does
/// not start with a space, does not end with several newlines, and has no control characters.
fn literal_ok(s: &str) -> bool {
    !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && !s.split('\n').any(|l| l.ends_with([' ', '\t']))
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || !matches!(resolve_plain(s), Value::String(_)) {
        return true;
    }
    // YAML 1.1 booleans and other words some readers still type.
    if matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | ".inf" | "-.inf" | "+.inf" | ".nan"
    ) {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !(first == '-' && s.len() > 1 && !s[1..].starts_with(' '))
    {
        return true;
    }
    if first == '-' && s == "-" {
        return true;
    }
    s.starts_with(' ')
        || s.ends_with(' ')
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(|c| c.is_control())
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Source};
    use serde_json::json;

    fn round_trip(v: Value) {
        let text = to_yaml(&v);
        let back = parse(&Source::new("out.yaml", text.clone()))
            .unwrap_or_else(|e| panic!("{e}: {text}"))
            .to_value();
        assert_eq!(back, v, "{text}");
    }

    #[test]
    fn prints_block_style() {
        let v = json!({"name":"p","services":{"web":{"command":["echo","hi"],"ports":[{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"}],"environment":{"A":"1","B":null}}}});
        let text = to_yaml(&v);
        assert_eq!(
            text,
            "name: p\nservices:\n  web:\n    command:\n      - echo\n      - hi\n    ports:\n      - mode: ingress\n        target: 80\n        published: \"8080\"\n        protocol: tcp\n    environment:\n      A: \"1\"\n      B: null\n"
        );
        round_trip(v);
    }

    #[test]
    fn quoting_round_trips() {
        round_trip(json!({
            "a": ["", "true", "no", "1.5", "-", "- x", "-x", "a: b", "x #c", "#x", "*x", "ok:", " lead", "trail ",
                   "tab\there", "quote\"d", "back\\slash", "multi\nline\n", "multi\nline", "  indented\nx", "null", "~", "é"],
            "b": {}, "c": [], "d": {"k": [[1, 2], {"x": {"y": [true]}}]},
            "weird key: x": 1, "1": "numeric key"
        }));
    }
}
