//! Validation of a compose file against the Compose Specification's JSON schema.
//!
//! The schema (compose/schema/compose-spec.json, Apache-2.0, the Compose Specification authors)
//! is the list of keys we understand. Only the keywords it uses are implemented: `type`,
//! `properties`, `patternProperties`, `additionalProperties`, `required`, `$ref`, `oneOf`, `enum`,
//! `items`, `uniqueItems`, `minimum`, `maximum`, `pattern`. Validation runs on located nodes so
//! every error points at the offending key or value.
//!
//! The JSON schema is compiled once into a table of nodes with `$ref`s resolved, types as bit
//! sets and key patterns as plain matchers: validating a 500-service project visits tens of
//! thousands of nodes, and keyword lookups by name at every one of them dominated load time.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex_lite::Regex;
use serde_json::Value;

use crate::yaml::{Key, Kind, Loc, MergeTag, Node, ScalarType};

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

/// Mappings with more entries than this are checked in two halves at once.
const PARALLEL_ENTRIES: usize = 64;

fn compiled() -> Option<&'static Compiled> {
    static COMPILED: OnceLock<Option<Compiled>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let root = schema();
            if root.is_null() {
                return None;
            }
            let mut c = Compiled {
                nodes: Vec::new(),
                memo: HashMap::new(),
            };
            c.compile(root, root);
            Some(c)
        })
        .as_ref()
}

/// Compiles the schema now (it is compiled once per process, when first needed), so that a
/// thread can do it while another parses.
pub fn prepare() {
    let _ = compiled();
}

/// Validates a whole compose file, then turns strings that stand for booleans (`"true"`,
/// `"false"`, as interpolation or quoting leaves them) into booleans where the schema allows a
/// boolean, as compose-go does. Other strings there are errors at their location.
pub fn validate(root: &mut Node) -> Result<(), SchemaError> {
    let mut coerce = Vec::new();
    check(root, &mut coerce)?;
    if !coerce.is_empty() {
        coerce.sort_unstable();
        apply_coercions(root, &coerce);
    }
    Ok(())
}

fn check(root: &Node, coerce: &mut Vec<usize>) -> Result<(), SchemaError> {
    let Some(c) = compiled() else {
        return Err(SchemaError {
            path: String::new(),
            message: "the built-in compose schema is unreadable".into(),
            loc: Loc::none(),
        });
    };
    c.check(root, 0, &mut Vec::new(), &root.loc, coerce)
}

// Type bits.
const NULL: u8 = 1;
const BOOL: u8 = 2;
const INT: u8 = 4;
const NUM: u8 = 8;
const STR: u8 = 16;
const ARR: u8 = 32;
const OBJ: u8 = 64;

fn type_bit(name: &str) -> u8 {
    match name {
        "null" => NULL,
        "boolean" => BOOL,
        // An integer is also a number.
        "integer" => INT,
        "number" => INT | NUM,
        "string" => STR,
        "array" => ARR,
        "object" => OBJ,
        _ => 0,
    }
}

/// The type bit of a node, without copying it.
fn node_bit(node: &Node) -> u8 {
    match &node.kind {
        Kind::Seq(_) => ARR,
        Kind::Map(_) => OBJ,
        Kind::Scalar(..) => match node.scalar_type() {
            Some(ScalarType::Null) => NULL,
            Some(ScalarType::Bool) => BOOL,
            Some(ScalarType::Int) => INT,
            Some(ScalarType::Float) => NUM,
            Some(ScalarType::Str) | None => STR,
        },
    }
}

fn describe_bits(bits: u8) -> String {
    let mut words: Vec<&str> = Vec::new();
    for (bit, word) in [
        (OBJ, "a mapping"),
        (ARR, "a list"),
        (STR, "a string"),
        (NUM, "a number"),
        (INT, "an integer"),
        (BOOL, "a boolean"),
        (NULL, "null"),
    ] {
        if bits & bit != 0 {
            // "a number" already covers integers.
            if bit == INT && bits & NUM != 0 {
                continue;
            }
            words.push(word);
        }
    }
    // Keep the order the schema authors favour: boolean before string reads naturally.
    words.sort_by_key(|w| match *w {
        "a boolean" => 0,
        "a number" | "an integer" => 1,
        "a string" => 2,
        "a list" => 3,
        "a mapping" => 4,
        _ => 5,
    });
    match words.len() {
        0 => "valid".into(),
        1 => words[0].to_string(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// A key pattern of `patternProperties`; the ones the schema uses are matched directly.
enum Matcher {
    Prefix(String),
    NameChars,
    NonEmpty,
    Lowercase,
    Regex(Regex),
    Never,
}

impl Matcher {
    fn new(pattern: &str) -> Matcher {
        match pattern {
            "^x-" => Matcher::Prefix("x-".into()),
            "^[a-zA-Z0-9._-]+$" => Matcher::NameChars,
            "^.+$" | ".+" => Matcher::NonEmpty,
            "^[a-z]+$" => Matcher::Lowercase,
            p => Regex::new(p).map(Matcher::Regex).unwrap_or(Matcher::Never),
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::NameChars => {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
            Matcher::NonEmpty => !s.is_empty() && !s.contains('\n'),
            Matcher::Lowercase => !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase()),
            Matcher::Regex(re) => re.is_match(s),
            Matcher::Never => false,
        }
    }
}

enum Additional {
    Any,
    Forbidden,
    Schema(usize),
}

struct SNode {
    /// Allowed types; 0 means any.
    types: u8,
    always_false: bool,
    one_of: Vec<usize>,
    enum_values: Option<Vec<Value>>,
    pattern: Option<(String, Matcher)>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    /// Sorted by key for binary search.
    properties: Vec<(String, usize)>,
    pattern_properties: Vec<(Matcher, usize)>,
    additional: Additional,
    required: Vec<String>,
    items: Option<usize>,
    unique_items: bool,
}

struct Compiled {
    nodes: Vec<SNode>,
    /// Schema objects already compiled, by address, so `$ref`s share one node.
    memo: HashMap<usize, usize>,
}

impl Compiled {
    fn resolve<'v>(root: &'v Value, mut s: &'v Value) -> &'v Value {
        for _ in 0..16 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                break;
            };
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(t) => s = t,
                None => break,
            }
        }
        s
    }

    fn compile(&mut self, root: &Value, schema: &Value) -> usize {
        let schema = Self::resolve(root, schema);
        let addr = schema as *const Value as usize;
        if let Some(&i) = self.memo.get(&addr) {
            return i;
        }
        let idx = self.nodes.len();
        self.memo.insert(addr, idx);
        self.nodes.push(SNode {
            types: 0,
            always_false: matches!(schema, Value::Bool(false)),
            one_of: Vec::new(),
            enum_values: None,
            pattern: None,
            minimum: None,
            maximum: None,
            properties: Vec::new(),
            pattern_properties: Vec::new(),
            additional: Additional::Any,
            required: Vec::new(),
            items: None,
            unique_items: false,
        });
        let types = match schema.get("type") {
            Some(Value::String(t)) => type_bit(t),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(type_bit)
                .fold(0, |x, y| x | y),
            _ => 0,
        };
        let one_of = match schema.get("oneOf") {
            Some(Value::Array(bs)) => bs.iter().map(|b| self.compile(root, b)).collect(),
            _ => Vec::new(),
        };
        let mut properties: Vec<(String, usize)> = match schema.get("properties") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), self.compile(root, v)))
                .collect(),
            _ => Vec::new(),
        };
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        let pattern_properties = match schema.get("patternProperties") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (Matcher::new(k), self.compile(root, v)))
                .collect(),
            _ => Vec::new(),
        };
        let additional = match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => Additional::Forbidden,
            Some(s @ Value::Object(_)) => Additional::Schema(self.compile(root, s)),
            _ => Additional::Any,
        };
        let items = schema.get("items").map(|i| self.compile(root, i));
        let node = &mut self.nodes[idx];
        node.types = types;
        node.one_of = one_of;
        node.enum_values = schema.get("enum").and_then(Value::as_array).cloned();
        node.pattern = schema.get("pattern").and_then(Value::as_str).map(|p| {
            (
                p.to_string(),
                Regex::new(p).map(Matcher::Regex).unwrap_or(Matcher::Never),
            )
        });
        node.minimum = schema.get("minimum").and_then(Value::as_f64);
        node.maximum = schema.get("maximum").and_then(Value::as_f64);
        node.properties = properties;
        node.pattern_properties = pattern_properties;
        node.additional = additional;
        node.required = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        node.items = items;
        node.unique_items = schema.get("uniqueItems") == Some(&Value::Bool(true));
        idx
    }

    fn err(&self, path: &[Seg<'_>], message: String, loc: &Loc) -> SchemaError {
        SchemaError {
            path: dotted(path),
            message,
            loc: loc.clone(),
        }
    }

    /// The type bits a schema node accepts, looking through `oneOf` branches without types.
    fn accepted(&self, i: usize) -> u8 {
        let n = &self.nodes[i];
        if n.types != 0 {
            return n.types;
        }
        n.one_of.iter().fold(0, |acc, b| acc | self.nodes[*b].types)
    }

    fn check<'n>(
        &self,
        node: &'n Node,
        si: usize,
        path: &mut Vec<Seg<'n>>,
        key_loc: &Loc,
        out: &mut Vec<usize>,
    ) -> Result<(), SchemaError> {
        // `!reset` removes the value whatever its shape, so its body is never validated.
        if node.tag == Some(MergeTag::Reset) {
            return Ok(());
        }
        let s = &self.nodes[si];
        if s.always_false {
            return Err(self.err(path, "is not allowed here".into(), key_loc));
        }
        let bit = node_bit(node);
        if !s.one_of.is_empty() {
            self.check_one_of(node, bit, &s.one_of, path, key_loc, out)?;
        }
        // Where the schema takes "boolean or string", the string is there only so that
        // interpolation can produce a boolean (maps of arbitrary values allow more types).
        if bit == STR && s.types == BOOL | STR {
            let text = node.as_scalar().unwrap_or_default();
            match parse_bool(text) {
                Some(_) => out.push(node as *const Node as usize),
                None => {
                    return Err(self.err(
                        path,
                        format!("must be a boolean (true or false), not {text:?}"),
                        &node.loc,
                    ))
                }
            }
        }
        if s.types != 0 && s.types & bit == 0 {
            return Err(self.err(
                path,
                format!(
                    "must be {}, not {}",
                    describe_bits(s.types),
                    node.type_name()
                ),
                &node.loc,
            ));
        }
        if let Some(allowed) = &s.enum_values {
            let value = node.shallow_value();
            if !allowed.contains(&value) {
                let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
                return Err(self.err(
                    path,
                    format!("must be one of {}, not {}", list.join(", "), value),
                    &node.loc,
                ));
            }
        }
        if let (Some((p, m)), STR) = (&s.pattern, bit) {
            let text = node.as_scalar().unwrap_or_default();
            if !m.matches(text) {
                return Err(self.err(
                    path,
                    format!("{text:?} does not match the pattern {p:?}"),
                    &node.loc,
                ));
            }
        }
        if bit & (INT | NUM) != 0 && (s.minimum.is_some() || s.maximum.is_some()) {
            if let Some(x) = node.shallow_value().as_f64() {
                if let Some(min) = s.minimum.filter(|m| x < *m) {
                    return Err(self.err(path, format!("must be at least {min}"), &node.loc));
                }
                if let Some(max) = s.maximum.filter(|m| x > *m) {
                    return Err(self.err(path, format!("must be at most {max}"), &node.loc));
                }
            }
        }
        match &node.kind {
            Kind::Map(entries) => self.check_object(node, entries, s, path, out),
            Kind::Seq(items) => self.check_array(items, s, path, out),
            Kind::Scalar(..) => Ok(()),
        }
    }

    fn check_one_of<'n>(
        &self,
        node: &'n Node,
        bit: u8,
        branches: &[usize],
        path: &mut Vec<Seg<'n>>,
        key_loc: &Loc,
        out: &mut Vec<usize>,
    ) -> Result<(), SchemaError> {
        // Only branches whose type fits the value can match; trying the others would build an
        // error for each of them, for nothing.
        let mut all = 0u8;
        let mut first_err: Option<SchemaError> = None;
        let mut tried = false;
        for &b in branches {
            let types = self.accepted(b);
            all |= types;
            if types != 0 && types & bit == 0 {
                continue;
            }
            tried = true;
            // Overlapping branches (an integer is also a number) are accepted: the schema's
            // intent is "one of these shapes", and docker compose's validator is as lenient.
            let mark = out.len();
            match self.check(node, b, path, key_loc, out) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Coercions a failed branch asked for do not apply.
                    out.truncate(mark);
                    first_err.get_or_insert(e);
                }
            }
        }
        if !tried {
            return Err(self.err(
                path,
                format!("must be {}, not {}", describe_bits(all), node.type_name()),
                &node.loc,
            ));
        }
        Err(first_err.unwrap_or_else(|| self.err(path, "is invalid".into(), &node.loc)))
    }

    fn check_object<'n>(
        &self,
        node: &'n Node,
        entries: &'n [(Key, Node)],
        s: &SNode,
        path: &mut Vec<Seg<'n>>,
        out: &mut Vec<usize>,
    ) -> Result<(), SchemaError> {
        for r in &s.required {
            if !entries.iter().any(|(k, _)| k.name == *r) {
                return Err(self.err(path, format!("missing required key {r:?}"), &node.loc));
            }
        }
        if entries.len() <= PARALLEL_ENTRIES {
            return self.check_entries(entries, s, path, out);
        }
        // A large mapping (hundreds of services) is checked in two halves at once. The first
        // half's error, if any, comes first in the file, as when checked in order.
        let (first, second) = entries.split_at(entries.len() / 2);
        let mut second_path = path.clone();
        let mut second_out = Vec::new();
        let (first_result, second_result) = std::thread::scope(|scope| {
            let later =
                scope.spawn(|| self.check_entries(second, s, &mut second_path, &mut second_out));
            let earlier = self.check_entries(first, s, path, out);
            let later = later
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            (earlier, later)
        });
        first_result.and(second_result)?;
        out.extend(second_out);
        Ok(())
    }

    fn check_entries<'n>(
        &self,
        entries: &'n [(Key, Node)],
        s: &SNode,
        path: &mut Vec<Seg<'n>>,
        out: &mut Vec<usize>,
    ) -> Result<(), SchemaError> {
        for (k, v) in entries {
            path.push(Seg::Key(&k.name));
            let mut handled = false;
            if let Ok(i) = s
                .properties
                .binary_search_by(|(name, _)| name.as_str().cmp(k.name.as_str()))
            {
                self.check(v, s.properties[i].1, path, &k.loc, out)?;
                handled = true;
            }
            for (m, si) in &s.pattern_properties {
                if m.matches(&k.name) {
                    self.check(v, *si, path, &k.loc, out)?;
                    handled = true;
                }
            }
            if !handled {
                match s.additional {
                    Additional::Forbidden => {
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
                    Additional::Schema(si) => self.check(v, si, path, &k.loc, out)?,
                    Additional::Any => {}
                }
            }
            path.pop();
        }
        Ok(())
    }

    fn check_array<'n>(
        &self,
        items: &'n [Node],
        s: &SNode,
        path: &mut Vec<Seg<'n>>,
        out: &mut Vec<usize>,
    ) -> Result<(), SchemaError> {
        if let Some(item_schema) = s.items {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                self.check(item, item_schema, path, &item.loc, out)?;
                path.pop();
            }
        }
        if s.unique_items && items.len() > 1 {
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

/// Go's `strconv.ParseBool`, which compose-go applies to boolean fields.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Rewrites the nodes at the recorded addresses (sorted) as booleans.
fn apply_coercions(node: &mut Node, targets: &[usize]) {
    let addr = node as *const Node as usize;
    if targets.binary_search(&addr).is_ok() {
        if let Kind::Scalar(text, style) = &mut node.kind {
            if let Some(b) = parse_bool(text) {
                *text = b.to_string();
                *style = crate::yaml::Style::Plain;
            }
        }
        return;
    }
    match &mut node.kind {
        Kind::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| apply_coercions(v, targets)),
        Kind::Seq(items) => items.iter_mut().for_each(|v| apply_coercions(v, targets)),
        Kind::Scalar(..) => {}
    }
}

/// One step of the path to a value: a mapping key or a sequence index. Borrowed from the tree so
/// walking it allocates nothing unless an error is reported.
#[derive(Clone, Copy)]
enum Seg<'n> {
    Key(&'n str),
    Index(usize),
}

fn dotted(path: &[Seg<'_>]) -> String {
    if path.is_empty() {
        return "(root)".to_string();
    }
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => (*k).to_string(),
            Seg::Index(i) => i.to_string(),
        })
        .collect();
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Source};

    fn check(text: &str) -> Result<(), SchemaError> {
        validate(&mut parse(&Source::new("compose.yaml", text)).unwrap())
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
    fn boolean_strings_become_booleans() {
        let mut n = parse(&Source::new(
            "compose.yaml",
            "services:\n  a:\n    privileged: \"true\"\n    tty: 'False'\n    environment: {X: \"true\"}\n",
        ))
        .unwrap();
        validate(&mut n).unwrap();
        let v = n.to_value();
        assert_eq!(v["services"]["a"]["privileged"], serde_json::json!(true));
        assert_eq!(v["services"]["a"]["tty"], serde_json::json!(false));
        // Environment values are strings, whatever they say.
        assert_eq!(
            v["services"]["a"]["environment"]["X"],
            serde_json::json!("true")
        );
        let e = check("services:\n  a:\n    read_only: maybe\n").unwrap_err();
        assert_eq!(e.path, "services.a.read_only");
        assert!(e.message.contains("must be a boolean"), "{e}");
        assert_eq!((e.loc.line, e.loc.col), (3, 16));
    }

    #[test]
    fn large_mappings_report_the_first_error_and_coerce_everywhere() {
        let n = PARALLEL_ENTRIES * 2;
        let file = |bad: &[usize]| {
            let mut text = String::from("services:\n");
            for i in 0..n {
                let key = if bad.contains(&i) { "imagee" } else { "image" };
                text.push_str(&format!("  s{i}:\n    {key}: x\n    tty: \"true\"\n"));
            }
            text
        };
        let mut ok = parse(&Source::new("compose.yaml", file(&[]))).unwrap();
        validate(&mut ok).unwrap();
        let v = ok.to_value();
        assert_eq!(v["services"]["s0"]["tty"], serde_json::json!(true));
        assert_eq!(
            v["services"][&format!("s{}", n - 1)]["tty"],
            serde_json::json!(true)
        );
        for bad in [vec![2, n - 1], vec![n - 3, n - 1], vec![n / 2 - 1, n / 2]] {
            let e = check(&file(&bad)).unwrap_err();
            // Service i's first key is on line 3 + 3 i.
            assert_eq!(e.loc.line, 3 + 3 * bad[0], "{bad:?}: {e}");
        }
    }

    #[test]
    fn reset_tag_skips_validation() {
        check("services:\n  a:\n    build: !reset null\n").unwrap();
    }
}
