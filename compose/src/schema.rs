//! Validation of a compose file against the Compose Specification's JSON schema.
//!
//! The schema (compose/schema/compose-spec.json, Apache-2.0, the Compose Specification authors)
//! is the list of keys we understand. Only the keywords it uses are implemented: `type`,
//! `properties`, `patternProperties`, `additionalProperties`, `required`, `$ref`, `oneOf`, `enum`,
//! `items`, `uniqueItems`, `minimum`, `maximum`, `pattern`. Validation runs on located nodes so
//! every error points at the offending key or value.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex_lite::Regex;
use serde_json::Value;

use crate::yaml::{Kind, Loc, MergeTag, Node};

const SCHEMA_TEXT: &str = include_str!("../schema/compose-spec.json");

#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaError {
    /// Dotted path of the offending value, as docker compose prints it (`services.web.ports.0`).
    pub path: String,
    pub message: String,
    pub loc: Loc,
}

/// The parsed schema, loaded once per process.
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    // The schema is compiled into the binary and tested; failing to parse it is a build defect.
    SCHEMA.get_or_init(|| serde_json::from_str(SCHEMA_TEXT).unwrap_or(Value::Null))
}

/// Validates a whole compose file.
pub fn validate(root: &Node) -> Result<(), SchemaError> {
    let s = schema();
    if s.is_null() {
        return Err(SchemaError {
            path: String::new(),
            message: "the built-in compose schema is unreadable".into(),
            loc: Loc::none(),
        });
    }
    Validator { root: s }.check(root, s, &mut Vec::new(), &root.loc)
}

struct Validator<'s> {
    root: &'s Value,
}

fn regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().ok()?;
    guard
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .clone()
}

fn type_matches(node_value: &Value, ty: &str) -> bool {
    match (ty, node_value) {
        ("null", Value::Null) => true,
        ("boolean", Value::Bool(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Value::Number(_)) => true,
        ("string", Value::String(_)) => true,
        ("array", Value::Array(_)) => true,
        ("object", Value::Object(_)) => true,
        _ => false,
    }
}

fn describe_types(types: &[&str]) -> String {
    let words: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "object" => "a mapping".to_string(),
            "array" => "a list".to_string(),
            "integer" => "an integer".to_string(),
            "null" => "null".to_string(),
            other => format!("a {other}"),
        })
        .collect();
    match words.len() {
        0 => "valid".into(),
        1 => words[0].clone(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn dotted(path: &[String]) -> String {
    if path.is_empty() {
        "(root)".to_string()
    } else {
        path.join(".")
    }
}

impl<'s> Validator<'s> {
    fn resolve(&self, schema: &'s Value) -> &'s Value {
        let mut s = schema;
        // `$ref`s in this schema are local (`#/$defs/name`); follow chains of them.
        for _ in 0..16 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(ptr) = r.strip_prefix('#') else {
                break;
            };
            match self.root.pointer(ptr) {
                Some(target) => s = target,
                None => break,
            }
        }
        s
    }

    fn err(&self, path: &[String], message: String, loc: &Loc) -> SchemaError {
        SchemaError {
            path: dotted(path),
            message,
            loc: loc.clone(),
        }
    }

    fn check(
        &self,
        node: &Node,
        schema: &'s Value,
        path: &mut Vec<String>,
        key_loc: &Loc,
    ) -> Result<(), SchemaError> {
        // `!reset` removes the value whatever its shape, so its body is never validated.
        if node.tag == Some(MergeTag::Reset) {
            return Ok(());
        }
        let schema = self.resolve(schema);
        if let Value::Bool(allowed) = schema {
            return if *allowed {
                Ok(())
            } else {
                Err(self.err(path, "is not allowed here".into(), key_loc))
            };
        }
        let value = node.shallow_value();

        if let Some(Value::Array(branches)) = schema.get("oneOf") {
            self.check_one_of(node, &value, branches, path, key_loc)?;
        }

        let types = schema_types(schema);
        if !types.is_empty() && !types.iter().any(|t| type_matches(&value, t)) {
            return Err(self.err(
                path,
                format!(
                    "must be {}, not {}",
                    describe_types(&types),
                    node.type_name()
                ),
                &node.loc,
            ));
        }

        if let Some(Value::Array(allowed)) = schema.get("enum") {
            if !allowed.contains(&value) {
                let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
                return Err(self.err(
                    path,
                    format!("must be one of {}, not {}", list.join(", "), value),
                    &node.loc,
                ));
            }
        }
        if let (Some(p), Value::String(s)) = (schema.get("pattern").and_then(Value::as_str), &value)
        {
            if let Some(re) = regex(p) {
                if !re.is_match(s) {
                    return Err(self.err(
                        path,
                        format!("{s:?} does not match the pattern {p:?}"),
                        &node.loc,
                    ));
                }
            }
        }
        if let Value::Number(n) = &value {
            if let (Some(min), Some(x)) =
                (schema.get("minimum").and_then(Value::as_f64), n.as_f64())
            {
                if x < min {
                    return Err(self.err(path, format!("must be at least {min}"), &node.loc));
                }
            }
            if let (Some(max), Some(x)) =
                (schema.get("maximum").and_then(Value::as_f64), n.as_f64())
            {
                if x > max {
                    return Err(self.err(path, format!("must be at most {max}"), &node.loc));
                }
            }
        }

        match &node.kind {
            Kind::Map(entries) => self.check_object(node, entries, schema, path),
            Kind::Seq(items) => self.check_array(items, schema, path),
            Kind::Scalar(..) => Ok(()),
        }
    }

    fn check_one_of(
        &self,
        node: &Node,
        value: &Value,
        branches: &'s [Value],
        path: &mut Vec<String>,
        key_loc: &Loc,
    ) -> Result<(), SchemaError> {
        let mut first_err: Option<SchemaError> = None;
        let mut best_err: Option<SchemaError> = None;
        let mut matched = 0;
        for b in branches {
            match self.check(node, b, path, key_loc) {
                Ok(()) => matched += 1,
                Err(e) => {
                    // Prefer the error from a branch whose type fits the value: it explains
                    // what is wrong inside; a type mismatch from another branch does not.
                    let rb = self.resolve(b);
                    let types = schema_types(rb);
                    if best_err.is_none() && types.iter().any(|t| type_matches(value, t)) {
                        best_err = Some(e.clone());
                    }
                    first_err.get_or_insert(e);
                }
            }
        }
        // Overlapping branches (an integer is also a number) are accepted: the schema's intent is
        // "one of these shapes", and docker compose's validator is equally lenient in practice.
        if matched > 0 {
            return Ok(());
        }
        if let Some(e) = best_err {
            return Err(e);
        }
        let mut all: Vec<&str> = Vec::new();
        for b in branches {
            for t in schema_types(self.resolve(b)) {
                if !all.contains(&t) {
                    all.push(t);
                }
            }
        }
        if !all.is_empty() {
            return Err(self.err(
                path,
                format!("must be {}, not {}", describe_types(&all), node.type_name()),
                &node.loc,
            ));
        }
        Err(first_err.unwrap_or_else(|| self.err(path, "is invalid".into(), &node.loc)))
    }

    fn check_object(
        &self,
        node: &Node,
        entries: &[(crate::yaml::Key, Node)],
        schema: &'s Value,
        path: &mut Vec<String>,
    ) -> Result<(), SchemaError> {
        let props = schema.get("properties").and_then(Value::as_object);
        let patterns = schema.get("patternProperties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        if let Some(Value::Array(req)) = schema.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !entries.iter().any(|(k, _)| k.name == r) {
                    return Err(self.err(path, format!("missing required key {r:?}"), &node.loc));
                }
            }
        }
        for (k, v) in entries {
            path.push(k.name.clone());
            let mut handled = false;
            if let Some(s) = props.and_then(|p| p.get(&k.name)) {
                self.check(v, s, path, &k.loc)?;
                handled = true;
            }
            if let Some(pats) = patterns {
                for (pat, s) in pats {
                    if regex(pat).is_some_and(|re| re.is_match(&k.name)) {
                        self.check(v, s, path, &k.loc)?;
                        handled = true;
                    }
                }
            }
            if !handled {
                match additional {
                    Some(Value::Bool(false)) => {
                        path.pop();
                        let what = if path.is_empty() {
                            "the top level".to_string()
                        } else {
                            dotted(path)
                        };
                        return Err(SchemaError {
                            path: dotted(path),
                            message: format!("unknown key {:?} in {what}", k.name),
                            loc: k.loc.clone(),
                        });
                    }
                    Some(s @ Value::Object(_)) => self.check(v, s, path, &k.loc)?,
                    _ => {}
                }
            }
            path.pop();
        }
        Ok(())
    }

    fn check_array(
        &self,
        items: &[Node],
        schema: &'s Value,
        path: &mut Vec<String>,
    ) -> Result<(), SchemaError> {
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                self.check(item, item_schema, path, &item.loc)?;
                path.pop();
            }
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            let values: Vec<Value> = items.iter().map(Node::to_value).collect();
            for (i, v) in values.iter().enumerate() {
                if values[..i].contains(v) {
                    return Err(self.err(path, format!("holds {v} more than once"), &items[i].loc));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Source};

    fn check(text: &str) -> Result<(), SchemaError> {
        validate(&parse(&Source::new("compose.yaml", text)).unwrap())
    }

    #[test]
    fn schema_loads() {
        assert!(schema().get("$defs").is_some());
    }

    #[test]
    fn valid_file_passes() {
        check(
            "services:\n  web:\n    image: nginx\n    ports: ['80:80', 8080]\n    environment:\n      A: 1\n      B:\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: pg\n    x-foo: {any: thing}\nx-common: &c {a: 1}\n",
        )
        .unwrap();
    }

    #[test]
    fn unknown_key_points_at_key() {
        let e = check("services:\n  web:\n    image: nginx\n    imagee: x\n").unwrap_err();
        assert_eq!(e.path, "services.web");
        assert!(e.message.contains("unknown key \"imagee\""), "{e}");
        assert_eq!((e.loc.line, e.loc.col), (4, 5));
        let e = check("servicess: {}\n").unwrap_err();
        assert!(e.message.contains("top level"), "{e}");
    }

    #[test]
    fn wrong_type_points_at_value() {
        let e = check("services:\n  web:\n    image: nginx\n    privileged: [1]\n").unwrap_err();
        assert_eq!(e.path, "services.web.privileged");
        assert!(e.message.contains("must be a boolean or a string"), "{e}");
        assert_eq!((e.loc.line, e.loc.col), (4, 17));
    }

    #[test]
    fn one_of_reports_the_fitting_branch() {
        let e = check("services:\n  web:\n    depends_on:\n      db: {condition: sometimes}\n")
            .unwrap_err();
        assert!(e.path.starts_with("services.web.depends_on.db"), "{e}");
        assert!(e.message.contains("service_healthy"), "{e}");
    }

    #[test]
    fn enum_pattern_and_uniqueness() {
        assert!(check("services:\n  a:\n    pull_policy: sometimes\n").is_err());
        assert!(check("services:\n  a:\n    pull_policy: every_12h\n").is_ok());
        let e = check("services:\n  a:\n    dns_search: [a, a]\n").unwrap_err();
        assert!(e.message.contains("more than once"), "{e}");
    }

    #[test]
    fn reset_tag_skips_validation() {
        check("services:\n  a:\n    build: !reset null\n").unwrap();
    }
}
