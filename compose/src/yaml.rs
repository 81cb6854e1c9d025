//! A YAML document tree that remembers where every node came from.
//!
//! Compose errors must name the file, line and column of the offending value, long after anchors
//! were expanded and files were merged. `yaml-rust2`'s own tree drops positions, so this module
//! builds its own from the parser's marked events, resolving anchors, aliases and `<<` merge keys
//! on the way and keeping tags (`!reset`, `!override`) on the nodes they annotate.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A source file's path and text, shared by every node parsed from it.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Source {
            path: path.into(),
            text: text.into(),
        })
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }
}

/// Every parsed source, by id (`Loc::file` is the index plus one; 0 is no file). A source is
/// kept for the whole process: errors quote its text whenever they are reported, and locations
/// stay plain numbers, cheap to copy and with nothing to release.
static SOURCES: Mutex<Vec<&'static Source>> = Mutex::new(Vec::new());

/// Registers a source for the locations of nodes parsed from it.
fn register(source: &Arc<Source>) -> u32 {
    let kept: &'static Source = Box::leak(Box::new(Arc::clone(source)));
    let mut all = SOURCES.lock().unwrap_or_else(PoisonError::into_inner);
    all.push(kept);
    u32::try_from(all.len()).unwrap_or(0)
}

/// Where a node starts: file, 1-based line and 1-based column.
#[derive(Clone)]
pub struct Loc {
    file: u32,
    pub line: usize,
    pub col: usize,
}

impl Loc {
    /// A location for values that come from no file (command-line defaults, computed values).
    pub fn none() -> Self {
        Loc {
            file: 0,
            line: 0,
            col: 0,
        }
    }

    /// The file the location is in, if any.
    pub fn source(&self) -> Option<&'static Source> {
        let i = usize::try_from(self.file).ok()?.checked_sub(1)?;
        let all = SOURCES.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(i).copied()
    }

    /// Whether the location is in a file (computed values are not).
    pub fn has_source(&self) -> bool {
        self.file != 0
    }

    pub fn path(&self) -> Option<&Path> {
        self.source().map(|s| s.path.as_path())
    }

    /// The quoted source line with a caret under the column, for error reports.
    pub fn snippet(&self) -> Option<String> {
        let src = self.source()?;
        let text = src.line(self.line)?;
        let pad: String = text
            .chars()
            .take(self.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        Some(format!("{:>5} | {text}\n      | {pad}^", self.line))
    }
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            Some(p) if self.line > 0 => write!(f, "{}:{}:{}", p.display(), self.line, self.col),
            Some(p) => write!(f, "{}", p.display()),
            None => write!(f, "<generated>"),
        }
    }
}

/// How a scalar was written: plain scalars are typed by the YAML core schema, quoted and block
/// scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
}

/// The type a scalar resolves to, known without building its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// What `Node::walk_scalars_mut` calls for each scalar: its text, style and location.
pub type ScalarVisitor<'a, E> = dyn FnMut(&mut String, &mut Style, &Loc) -> Result<(), E> + 'a;

/// A mapping key with its own location (errors about unknown keys point at the key).
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

/// Tags Compose gives meaning to when files are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTag {
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the inherited value instead of merging into it.
    Override,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub loc: Loc,
    pub tag: Option<MergeTag>,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub message: String,
    pub loc: Loc,
}

impl Node {
    pub fn new(kind: Kind, loc: Loc) -> Self {
        Node {
            kind,
            loc,
            tag: None,
        }
    }

    pub fn null(loc: Loc) -> Self {
        Node::new(Kind::Scalar(String::new(), Style::Plain), loc)
    }

    pub fn string(s: impl Into<String>, loc: Loc) -> Self {
        Node::new(Kind::Scalar(s.into(), Style::Quoted), loc)
    }

    pub fn map(entries: Vec<(Key, Node)>, loc: Loc) -> Self {
        Node::new(Kind::Map(entries), loc)
    }

    pub fn seq(items: Vec<Node>, loc: Loc) -> Self {
        Node::new(Kind::Seq(items), loc)
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if plain_type(s) == ScalarType::Null)
    }

    /// The type of a scalar (`None` for collections), without copying its text.
    pub fn scalar_type(&self) -> Option<ScalarType> {
        match &self.kind {
            Kind::Scalar(_, Style::Quoted) => Some(ScalarType::Str),
            Kind::Scalar(s, Style::Plain) => Some(plain_type(s)),
            Kind::Seq(_) | Kind::Map(_) => None,
        }
    }

    /// The node's value with collections left empty: enough to know its type without copying
    /// a whole subtree.
    pub fn shallow_value(&self) -> Value {
        match &self.kind {
            Kind::Scalar(..) => self.to_value(),
            Kind::Seq(_) => Value::Array(Vec::new()),
            Kind::Map(_) => Value::Object(Map::new()),
        }
    }

    pub fn as_map(&self) -> Option<&Vec<(Key, Node)>> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(Key, Node)>> {
        match &mut self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text, whatever its resolved type (`80` and `"80"` both give `80`).
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// A scalar that is a string once typed (quoted, or plain text that is not a number etc.).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, Style::Quoted) => Some(s),
            Kind::Scalar(s, Style::Plain) if plain_type(s) == ScalarType::Str => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` (keeping its position when present) on a mapping node.
    pub fn insert(&mut self, key: &str, value: Node) {
        let loc = value.loc.clone();
        if let Some(m) = self.as_map_mut() {
            if let Some(slot) = m.iter_mut().find(|(k, _)| k.name == key) {
                slot.1 = value;
            } else {
                m.push((
                    Key {
                        name: key.to_string(),
                        loc,
                    },
                    value,
                ));
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let m = self.as_map_mut()?;
        let i = m.iter().position(|(k, _)| k.name == key)?;
        Some(m.remove(i).1)
    }

    /// What kind of value this is, in the words of error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "list",
            Kind::Map(_) => "mapping",
            Kind::Scalar(..) => match self.scalar_type() {
                Some(ScalarType::Null) => "null",
                Some(ScalarType::Bool) => "boolean",
                Some(ScalarType::Float) => "number",
                Some(ScalarType::Int) => "integer",
                Some(ScalarType::Str) | None => "string",
            },
        }
    }

    /// The node as JSON, typing plain scalars by the YAML 1.2 core schema.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Scalar(s, Style::Quoted) => Value::String(s.clone()),
            Kind::Scalar(s, Style::Plain) => resolve_plain(s),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Kind::Map(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k.name.clone(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }

    /// Whether two nodes hold the same value (as their JSON would compare), without building it.
    pub fn same_value(&self, other: &Node) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Scalar(a, sa), Kind::Scalar(b, sb)) => {
                if sa == sb && a == b {
                    return true;
                }
                // Different texts of one type are the same value only for numbers, booleans and
                // nulls (`1` and `0x1`); strings are equal by text.
                match (self.scalar_type(), other.scalar_type()) {
                    (Some(ScalarType::Str), Some(ScalarType::Str)) => a == b,
                    (ta, tb) if ta == tb => self.shallow_value() == other.shallow_value(),
                    _ => false,
                }
            }
            (Kind::Seq(a), Kind::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
            }
            (Kind::Map(a), Kind::Map(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(bk, _)| bk.name == k.name)
                            .is_some_and(|(_, bv)| v.same_value(bv))
                    })
            }
            _ => false,
        }
    }

    /// The node as JSON, consuming it (strings move instead of being copied).
    pub fn into_value(self) -> Value {
        match self.kind {
            Kind::Scalar(s, Style::Quoted) => Value::String(s),
            Kind::Scalar(s, Style::Plain) if plain_type(&s) == ScalarType::Str => Value::String(s),
            Kind::Scalar(s, Style::Plain) => resolve_plain(&s),
            Kind::Seq(items) => Value::Array(items.into_iter().map(Node::into_value).collect()),
            Kind::Map(entries) => {
                let mut m = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    m.insert(k.name, v.into_value());
                }
                Value::Object(m)
            }
        }
    }

    /// Builds a node from JSON, every part located at `loc` (used for values a transformation
    /// produced from a node at `loc`).
    pub fn from_value(v: &Value, loc: &Loc) -> Node {
        let kind = match v {
            Value::Null => Kind::Scalar("null".into(), Style::Plain),
            Value::Bool(b) => Kind::Scalar(b.to_string(), Style::Plain),
            Value::Number(n) => Kind::Scalar(n.to_string(), Style::Plain),
            Value::String(s) => Kind::Scalar(s.clone(), Style::Quoted),
            Value::Array(a) => Kind::Seq(a.iter().map(|x| Node::from_value(x, loc)).collect()),
            Value::Object(o) => Kind::Map(
                o.iter()
                    .map(|(k, x)| {
                        (
                            Key {
                                name: k.clone(),
                                loc: loc.clone(),
                            },
                            Node::from_value(x, loc),
                        )
                    })
                    .collect(),
            ),
        };
        Node::new(kind, loc.clone())
    }

    /// [`Node::from_value`], consuming the value: its strings move into the nodes.
    pub fn from_value_owned(v: Value, loc: &Loc) -> Node {
        let kind = match v {
            Value::String(s) => Kind::Scalar(s, Style::Quoted),
            Value::Array(a) => Kind::Seq(
                a.into_iter()
                    .map(|x| Node::from_value_owned(x, loc))
                    .collect(),
            ),
            Value::Object(o) => Kind::Map(
                o.into_iter()
                    .map(|(k, x)| {
                        (
                            Key {
                                name: k,
                                loc: loc.clone(),
                            },
                            Node::from_value_owned(x, loc),
                        )
                    })
                    .collect(),
            ),
            scalar => return Node::from_value(&scalar, loc),
        };
        Node::new(kind, loc.clone())
    }

    /// Visits every scalar, keys excluded, in document order.
    pub fn walk_scalars_mut<E>(&mut self, f: &mut ScalarVisitor<'_, E>) -> Result<(), E> {
        match &mut self.kind {
            Kind::Scalar(s, style) => f(s, style, &self.loc),
            Kind::Seq(items) => items
                .iter_mut()
                .try_for_each(|item| item.walk_scalars_mut(f)),
            Kind::Map(entries) => entries
                .iter_mut()
                .try_for_each(|(_, v)| v.walk_scalars_mut(f)),
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar, as go-yaml v3 does for untyped targets.
pub fn resolve_plain(s: &str) -> Value {
    match plain_type(s) {
        ScalarType::Null => Value::Null,
        ScalarType::Bool => Value::Bool(matches!(s, "true" | "True" | "TRUE")),
        ScalarType::Int => parse_int(s).map_or(Value::Null, |n| Value::Number(Number::from(n))),
        ScalarType::Float => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ScalarType::Str => Value::String(s.to_string()),
    }
}

/// The type [`resolve_plain`] gives a plain scalar, without building the value.
pub fn plain_type(s: &str) -> ScalarType {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarType::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return ScalarType::Str,
        _ => {}
    }
    // Numbers start with a sign, a digit or a dot: most text is told apart by its first byte.
    if !matches!(s.as_bytes().first(), Some(b'0'..=b'9' | b'-' | b'+' | b'.')) {
        return ScalarType::Str;
    }
    if parse_int(s).is_some() {
        return ScalarType::Int;
    }
    if looks_like_float(s) && s.parse::<f64>().ok().and_then(Number::from_f64).is_some() {
        return ScalarType::Float;
    }
    ScalarType::Str
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = body.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        // go-yaml parses integers with Go's base prefixes, so `0400` is octal: file modes in
        // compose files are written this way and mean what a shell user expects.
        i64::from_str_radix(&body[1..], 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// The core schema's float pattern: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn looks_like_float(s: &str) -> bool {
    let b = s.trim_start_matches(['-', '+']);
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|c| c.is_ascii_digit())
                && frac.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.trim_start_matches(['-', '+']);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok && b.len() + 1 >= s.len()
}

/// Parses one YAML document. An empty file is an empty mapping, as docker compose treats it.
pub fn parse(source: &Arc<Source>) -> Result<Node, YamlError> {
    let file = register(source);
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(&source.text).keep_tags(true);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(YamlError {
            message: e.info().to_string(),
            loc: builder.loc(*e.marker()),
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    let mut docs = builder.docs.into_iter();
    let doc = docs.next();
    if let Some(extra) = docs.next() {
        return Err(YamlError {
            message: "a compose file holds one YAML document; found another".into(),
            loc: extra.loc,
        });
    }
    let loc = Loc {
        file,
        line: 1,
        col: 1,
    };
    Ok(doc.unwrap_or_else(|| Node::map(Vec::new(), loc)))
}

enum Frame {
    Seq {
        anchor: usize,
        node: Node,
    },
    Map {
        anchor: usize,
        node: Node,
        pending_key: Option<Node>,
        seen: Option<HashSet<String>>,
    },
}

struct Builder {
    file: u32,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn loc(&self, m: Marker) -> Loc {
        Loc {
            file: self.file,
            line: m.line(),
            col: m.col() + 1,
        }
    }

    fn fail(&mut self, message: String, loc: Loc) {
        if self.error.is_none() {
            self.error = Some(YamlError { message, loc });
        }
    }

    fn tag_of(&mut self, tag: Option<Tag>, loc: &Loc) -> Option<MergeTag> {
        let tag = tag?;
        match (tag.handle.as_str(), tag.suffix.as_str()) {
            ("!", "reset") => Some(MergeTag::Reset),
            ("!", "override") => Some(MergeTag::Override),
            // Core-schema tags only restate what a plain scalar already is; they carry no merge
            // meaning, so they are accepted and dropped.
            ("tag:yaml.org,2002:", _) | ("!!", _) => None,
            (h, s) => {
                self.fail(format!("unknown YAML tag {h}{s}"), loc.clone());
                None
            }
        }
    }

    /// Hands a finished node to its parent (or ends the document).
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { node: seq, .. }) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map {
                node: map,
                pending_key,
                seen,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let Kind::Scalar(name, _) = key.kind else {
                        self.fail("mapping keys must be scalars".into(), key.loc);
                        return;
                    };
                    if let Kind::Map(entries) = &mut map.kind {
                        // Large mappings (hundreds of services) get a set, so the duplicate
                        // check stays linear.
                        if seen.is_none() && entries.len() >= 16 {
                            *seen = Some(entries.iter().map(|(k, _)| k.name.clone()).collect());
                        }
                        let duplicate = name != "<<"
                            && match seen {
                                Some(set) => !set.insert(name.clone()),
                                None => entries.iter().any(|(k, _)| k.name == name),
                            };
                        if duplicate {
                            self.fail(format!("duplicate key {name:?} in mapping"), key.loc);
                            return;
                        }
                        entries.push((Key { name, loc: key.loc }, node));
                    }
                }
            },
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

/// Applies `<<` merge keys: keys written in the mapping win over merged ones, and among merged
/// mappings the first listed wins, as the YAML merge-key spec says.
fn apply_merge_keys(node: &mut Node) -> Result<(), YamlError> {
    let Kind::Map(entries) = &mut node.kind else {
        return Ok(());
    };
    if !entries.iter().any(|(k, _)| k.name == "<<") {
        return Ok(());
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = std::mem::take(entries)
        .into_iter()
        .partition(|(k, _)| k.name == "<<");
    for (_, src) in merges {
        let sources: Vec<Node> = match src.kind {
            Kind::Map(_) => vec![src],
            Kind::Seq(items) => items,
            _ => {
                return Err(YamlError {
                    message: "merge key << needs a mapping or a list of mappings".into(),
                    loc: src.loc,
                })
            }
        };
        for s in sources {
            let Kind::Map(m) = s.kind else {
                return Err(YamlError {
                    message: "merge key << needs a mapping or a list of mappings".into(),
                    loc: s.loc,
                });
            };
            for (k, v) in m {
                if !own.iter().any(|(ok, _)| ok.name == k.name) {
                    own.push((k, v));
                }
            }
        }
    }
    *entries = own;
    Ok(())
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let loc = self.loc(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let merge_tag = self.tag_of(tag.clone(), &loc);
                let style = match (style, &tag) {
                    (TScalarStyle::Plain, None) => Style::Plain,
                    // `!!str 80` is a string; `!reset` on a plain scalar keeps its type.
                    (TScalarStyle::Plain, Some(t)) if t.suffix != "str" => Style::Plain,
                    _ => Style::Quoted,
                };
                let mut node = Node::new(Kind::Scalar(text, style), loc);
                node.tag = merge_tag;
                self.remember(anchor, &node);
                self.push_value(node);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_value(node),
                None => self.fail("alias to an unknown anchor".into(), loc),
            },
            Event::SequenceStart(anchor, tag) => {
                let mut node = Node::seq(Vec::new(), loc.clone());
                node.tag = self.tag_of(tag, &loc);
                self.stack.push(Frame::Seq { anchor, node });
            }
            Event::MappingStart(anchor, tag) => {
                let mut node = Node::map(Vec::new(), loc.clone());
                node.tag = self.tag_of(tag, &loc);
                self.stack.push(Frame::Map {
                    anchor,
                    node,
                    pending_key: None,
                    seen: None,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { anchor, node }) = self.stack.pop() {
                    self.remember(anchor, &node);
                    self.push_value(node);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    anchor, mut node, ..
                }) = self.stack.pop()
                {
                    if let Err(e) = apply_merge_keys(&mut node) {
                        self.error = Some(e);
                        return;
                    }
                    self.remember(anchor, &node);
                    self.push_value(node);
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Result<Node, YamlError> {
        parse(&Source::new("compose.yaml", text))
    }

    #[test]
    fn scalars_are_typed_by_core_schema() {
        let n = p(
            "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 0x10\ng: hello\nh: \"\"\ni: 1e3\nj: 1.2.3\n",
        )
        .unwrap();
        assert_eq!(
            n.to_value(),
            json!({"a":1,"b":"1","c":true,"d":null,"e":1.5,"f":16,"g":"hello","h":"","i":1000.0,"j":"1.2.3"})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = p(
            "x: &base\n  a: 1\n  b: 2\ny:\n  <<: *base\n  b: 3\nz:\n  <<: [{c: 1}, {c: 2, d: 4}]\n",
        )
        .unwrap();
        assert_eq!(n.get("y").unwrap().to_value(), json!({"b":3,"a":1}));
        assert_eq!(n.get("z").unwrap().to_value(), json!({"c":1,"d":4}));
    }

    #[test]
    fn locations_are_one_based() {
        let n = p("services:\n  web:\n    image: nginx\n").unwrap();
        let image = n
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!((image.loc.line, image.loc.col), (3, 12));
        let snippet = image.loc.snippet().unwrap();
        assert!(snippet.contains("image: nginx"), "{snippet}");
    }

    #[test]
    fn tags_are_kept() {
        let n = p("a: !reset []\nb: !override {x: 1}\nc: !!str 80\n").unwrap();
        assert_eq!(n.get("a").unwrap().tag, Some(MergeTag::Reset));
        assert_eq!(n.get("b").unwrap().tag, Some(MergeTag::Override));
        assert_eq!(n.get("c").unwrap().to_value(), json!("80"));
        assert!(p("a: !custom 1\n").is_err());
    }

    #[test]
    fn syntax_errors_have_locations() {
        let e = p("services:\n  web:\n    image: [a\n").unwrap_err();
        assert!(e.loc.line >= 3, "{:?}", e.loc);
        let e = p("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key"));
        assert_eq!(e.loc.line, 2);
    }

    #[test]
    fn same_value_compares_like_json() {
        let n = p("a: {x: 1, y: [a, '2']}\nb: {y: [a, \"2\"], x: 1}\nc: {x: '1', y: [a, '2']}\nd: 1\ne: 0x1\n").unwrap();
        let g = |k: &str| n.get(k).unwrap();
        assert!(g("a").same_value(g("b")));
        assert!(!g("a").same_value(g("c")));
        assert!(g("d").same_value(g("e")));
        assert!(!g("d").same_value(g("a")));
    }

    #[test]
    fn empty_file_is_empty_mapping() {
        assert_eq!(p("").unwrap().to_value(), json!({}));
        assert!(p("a: 1\n---\nb: 2\n").is_err());
    }
}
