//! Compose variable interpolation (`$VAR`, `${VAR:-default}`, ...), matching the behaviour of
//! compose-go's `template` package as used by docker compose v2.
//!
//! compose-go implements this with a regular expression plus some hand-written brace counting,
//! and a few of its observable results follow from that implementation rather than from a
//! grammar. Those results are reproduced here on purpose, because a compose file must mean the
//! same thing to rcompose as to docker compose:
//!
//! * `$` followed by anything that cannot start a name (`$1`, `$-`, a trailing `$`) is kept as
//!   is, while `${` followed by something that is not a valid expression is an error.
//! * In `${NAME<op>ARG}` the argument extends to the matching `}`, where `{` and `}` are counted
//!   whether or not the `{` belongs to a `${`. When the braces do not balance, the argument
//!   extends to the last `}` on the same line instead.
//! * The argument of an operator is only interpolated when the operator uses it, so an error
//!   inside an unused default (or a missing required variable there) is not reported.

use serde::Serialize;

/// The result of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    pub value: String,
    /// Variables that were substituted by an empty string because they were unset and no
    /// operator supplied a value, in order of first use and without repetition. docker compose
    /// warns about each of them; the caller decides how to report them.
    pub unset: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("required variable {name} is missing a value{}", message_suffix(.message))]
    Required { name: String, message: String },
    #[error("invalid interpolation format for {input:?}: {reason}")]
    Syntax { input: String, reason: String },
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// One variable reference, as listed by `rcompose config --variables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariableUse {
    pub name: String,
    /// Whether a reference fails when the variable is unset (`${VAR?...}` or `${VAR:?...}`).
    /// This is what docker compose prints in its REQUIRED column; a plain `$VAR` is not
    /// required there, it just warns and becomes empty.
    pub required: bool,
    /// The raw, uninterpolated text after `:-` or `-`.
    pub default: Option<String>,
    /// The raw, uninterpolated text after `:+` or `+`.
    pub alternate: Option<String>,
}

/// Interpolates `input`, resolving variables through `lookup` (`None` meaning unset).
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    let mut ctx = EvalContext {
        input,
        lookup,
        unset: Vec::new(),
    };
    let mut value = String::with_capacity(input.len());
    ctx.eval(input, 0, &mut value)?;
    Ok(Interpolated {
        value,
        unset: ctx.unset,
    })
}

/// Whether interpolation could change `input`. Strings without a `$` are returned unchanged,
/// which lets callers skip the work (and keep the original allocation) for most values.
pub fn has_variables(input: &str) -> bool {
    input.contains('$')
}

/// Every variable `input` references, including those nested in defaults, alternates and error
/// messages, in order of first appearance. A variable referenced several times is listed once,
/// combined as by [`merge_variable`].
pub fn variables(input: &str) -> Result<Vec<VariableUse>, InterpolateError> {
    let mut found = Vec::new();
    collect_variables(input, input, 0, &mut found)?;
    Ok(found)
}

/// Adds `var` to `list`, combining it with an earlier use of the same name the way docker
/// compose does: a variable is required as soon as one of its uses is (that use fails when it
/// is unset, whatever the others say), and a plain `$VAR` must not erase the default or
/// alternate value given by another use.
pub fn merge_variable(list: &mut Vec<VariableUse>, var: VariableUse) {
    let Some(existing) = list.iter_mut().find(|v| v.name == var.name) else {
        list.push(var);
        return;
    };
    existing.required |= var.required;
    if existing.default.as_deref().unwrap_or_default().is_empty() && var.default.is_some() {
        existing.default = var.default;
    }
    if existing.alternate.as_deref().unwrap_or_default().is_empty() && var.alternate.is_some() {
        existing.alternate = var.alternate;
    }
}

/// Nesting beyond this depth is refused so that hostile input cannot overflow the stack; real
/// compose files nest a handful of levels at most.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `:-`
    DefaultIfUnsetOrEmpty,
    /// `-`
    DefaultIfUnset,
    /// `:?`
    ErrorIfUnsetOrEmpty,
    /// `?`
    ErrorIfUnset,
    /// `:+`
    AlternateIfNonEmpty,
    /// `+`
    AlternateIfSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `$$`
    Dollar,
    /// `$NAME` or `${NAME}`
    Var(&'a str),
    /// `${NAME<op>ARG}`; `arg` is itself a template, interpolated only when needed.
    Expr {
        name: &'a str,
        op: Op,
        arg: &'a str,
    },
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Index just past the run of name characters starting at `from`.
fn name_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| !is_name_char(b))
        .map_or(bytes.len(), |p| from + p)
}

fn parse_op(bytes: &[u8]) -> Option<(Op, usize)> {
    match bytes {
        [b':', b'-', ..] => Some((Op::DefaultIfUnsetOrEmpty, 2)),
        [b':', b'?', ..] => Some((Op::ErrorIfUnsetOrEmpty, 2)),
        [b':', b'+', ..] => Some((Op::AlternateIfNonEmpty, 2)),
        [b'-', ..] => Some((Op::DefaultIfUnset, 1)),
        [b'?', ..] => Some((Op::ErrorIfUnset, 1)),
        [b'+', ..] => Some((Op::AlternateIfSet, 1)),
        _ => None,
    }
}

/// compose-go's brace matcher: any `{` opens (and the byte after it is skipped, so `{}` leaves
/// the count raised), any `}` closes. Returns the index of the `}` that balances the first `{`.
fn first_brace_closing_index(bytes: &[u8]) -> Option<usize> {
    let mut open = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'}' => {
                open = open.saturating_sub(1);
                if open == 0 {
                    return Some(i);
                }
            }
            b'{' => {
                open += 1;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits a template into pieces. All the delimiters are ASCII, so every index used for slicing
/// sits next to an ASCII byte and therefore on a UTF-8 character boundary.
fn scan(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let bytes = template.as_bytes();
    let mut pieces = Vec::new();
    let mut last_close = LastCloseCache::default();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let (piece, next) = match bytes.get(i + 1) {
            Some(b'$') => (Piece::Dollar, i + 2),
            Some(&b) if is_name_start(b) => {
                let end = name_end(bytes, i + 1);
                (Piece::Var(&template[i + 1..end]), end)
            }
            Some(b'{') => scan_braced(template, i, &mut last_close)?,
            _ => {
                i += 1;
                continue;
            }
        };
        if text_start < i {
            pieces.push(Piece::Text(&template[text_start..i]));
        }
        pieces.push(piece);
        i = next;
        text_start = next;
    }
    if text_start < bytes.len() {
        pieces.push(Piece::Text(&template[text_start..]));
    }
    Ok(pieces)
}

/// Remembers the last `}` of the line being scanned, so that a long line with many expressions
/// is not searched again for each of them.
#[derive(Default)]
struct LastCloseCache {
    line: Option<(usize, Option<usize>)>,
}

impl LastCloseCache {
    /// The last `}` in `bytes[from..]` before the end of `from`'s line.
    fn find(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        let last = match self.line {
            Some((line_end, last)) if from <= line_end => last,
            _ => {
                let line_end = bytes[from..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| from + p);
                let last = bytes[from..line_end]
                    .iter()
                    .rposition(|&b| b == b'}')
                    .map(|p| from + p);
                self.line = Some((line_end, last));
                last
            }
        };
        last.filter(|&close| close >= from)
    }
}

/// Scans the `${...}` starting at `start`, returning the piece and the index just past it.
fn scan_braced<'t>(
    template: &'t str,
    start: usize,
    last_close_cache: &mut LastCloseCache,
) -> Result<(Piece<'t>, usize), String> {
    let bytes = template.as_bytes();
    let name_start = start + 2;
    let unclosed = || {
        if bytes[name_start..].contains(&b'}') {
            "invalid variable name".to_string()
        } else {
            "unclosed \"${\"".to_string()
        }
    };
    if !bytes.get(name_start).is_some_and(|&b| is_name_start(b)) {
        return Err(unclosed());
    }
    let name_end = name_end(bytes, name_start);
    let name = &template[name_start..name_end];
    if bytes.get(name_end) == Some(&b'}') {
        return Ok((Piece::Var(name), name_end + 1));
    }
    let Some((op, op_len)) = parse_op(&bytes[name_end..]) else {
        return Err(unclosed());
    };
    let arg_start = name_end + op_len;
    // compose-go first matches `(.*)}` greedily, and `.` does not match a newline: the
    // candidate expression ends at the last `}` of the line.
    let Some(last_close) = last_close_cache.find(bytes, arg_start) else {
        return Err("unclosed \"${\"".to_string());
    };
    // Brace counting then narrows the candidate down to the balancing `}`. Its first `{` is the
    // one of `${`, and neither the name nor the operator contains braces, so the balancing `}`
    // can only come after the operator.
    let close = first_brace_closing_index(&bytes[start..=last_close])
        .map_or(last_close, |ci| (start + ci).max(arg_start));
    Ok((
        Piece::Expr {
            name,
            op,
            arg: &template[arg_start..close],
        },
        close + 1,
    ))
}

struct EvalContext<'a> {
    /// The string given to [`interpolate`], quoted in syntax errors so that the user can find
    /// it even when the error is in a nested default.
    input: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    unset: Vec<String>,
}

impl EvalContext<'_> {
    fn syntax(&self, reason: impl Into<String>) -> InterpolateError {
        InterpolateError::Syntax {
            input: self.input.to_string(),
            reason: reason.into(),
        }
    }

    fn eval(
        &mut self,
        template: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), InterpolateError> {
        if depth > MAX_DEPTH {
            return Err(self.syntax("too deeply nested"));
        }
        let pieces = scan(template).map_err(|reason| self.syntax(reason))?;
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Dollar => out.push('$'),
                Piece::Var(name) => match (self.lookup)(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        if !self.unset.iter().any(|n| n == name) {
                            self.unset.push(name.to_string());
                        }
                    }
                },
                Piece::Expr { name, op, arg } => {
                    let value = (self.lookup)(name);
                    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
                    match op {
                        Op::DefaultIfUnsetOrEmpty | Op::DefaultIfUnset => {
                            let use_value = match op {
                                Op::DefaultIfUnsetOrEmpty => non_empty,
                                _ => value.is_some(),
                            };
                            match value {
                                Some(value) if use_value => out.push_str(&value),
                                _ => self.eval(arg, depth + 1, out)?,
                            }
                        }
                        Op::ErrorIfUnsetOrEmpty | Op::ErrorIfUnset => {
                            let present = match op {
                                Op::ErrorIfUnsetOrEmpty => non_empty,
                                _ => value.is_some(),
                            };
                            match value {
                                Some(value) if present => out.push_str(&value),
                                _ => {
                                    let mut message = String::new();
                                    self.eval(arg, depth + 1, &mut message)?;
                                    return Err(InterpolateError::Required {
                                        name: name.to_string(),
                                        message,
                                    });
                                }
                            }
                        }
                        Op::AlternateIfNonEmpty | Op::AlternateIfSet => {
                            let use_alternate = match op {
                                Op::AlternateIfNonEmpty => non_empty,
                                _ => value.is_some(),
                            };
                            if use_alternate {
                                self.eval(arg, depth + 1, out)?;
                            } else if let Some(value) = value {
                                // Set but empty under `:+`: the (empty) value itself.
                                out.push_str(&value);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn collect_variables(
    input: &str,
    template: &str,
    depth: usize,
    found: &mut Vec<VariableUse>,
) -> Result<(), InterpolateError> {
    let syntax = |reason: String| InterpolateError::Syntax {
        input: input.to_string(),
        reason,
    };
    if depth > MAX_DEPTH {
        return Err(syntax("too deeply nested".to_string()));
    }
    for piece in scan(template).map_err(syntax)? {
        match piece {
            Piece::Text(_) | Piece::Dollar => {}
            Piece::Var(name) => merge_variable(
                found,
                VariableUse {
                    name: name.to_string(),
                    required: false,
                    default: None,
                    alternate: None,
                },
            ),
            Piece::Expr { name, op, arg } => {
                let mut var = VariableUse {
                    name: name.to_string(),
                    required: false,
                    default: None,
                    alternate: None,
                };
                match op {
                    Op::DefaultIfUnsetOrEmpty | Op::DefaultIfUnset => {
                        var.default = Some(arg.to_string())
                    }
                    Op::ErrorIfUnsetOrEmpty | Op::ErrorIfUnset => var.required = true,
                    Op::AlternateIfNonEmpty | Op::AlternateIfSet => {
                        var.alternate = Some(arg.to_string())
                    }
                }
                merge_variable(found, var);
                collect_variables(input, arg, depth + 1, found)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(input: &str, pairs: &[(&str, &str)]) -> Result<Interpolated, InterpolateError> {
        let vars = env(pairs);
        interpolate(input, &|name| vars.get(name).cloned())
    }

    fn ok(input: &str, pairs: &[(&str, &str)]) -> String {
        match run(input, pairs) {
            Ok(result) => result.value,
            Err(err) => panic!("interpolating {input:?} failed: {err}"),
        }
    }

    fn unset_of(input: &str, pairs: &[(&str, &str)]) -> Vec<String> {
        run(input, pairs).unwrap().unset
    }

    fn syntax_err(input: &str) -> String {
        match run(input, &[]) {
            Err(InterpolateError::Syntax { input: got, reason }) => {
                assert_eq!(got, input);
                reason
            }
            other => panic!("expected a syntax error for {input:?}, got {other:?}"),
        }
    }

    fn required_err(input: &str, pairs: &[(&str, &str)]) -> (String, String) {
        match run(input, pairs) {
            Err(InterpolateError::Required { name, message }) => (name, message),
            other => panic!("expected a required error for {input:?}, got {other:?}"),
        }
    }

    const SET: &[(&str, &str)] = &[("V", "val")];
    const EMPTY: &[(&str, &str)] = &[("V", "")];
    const UNSET: &[(&str, &str)] = &[];

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(ok("", UNSET), "");
        assert_eq!(ok("hello world", UNSET), "hello world");
        assert!(!has_variables("hello"));
        assert!(has_variables("a$b"));
        assert!(has_variables("$$"));
    }

    #[test]
    fn simple_forms() {
        assert_eq!(ok("$V", SET), "val");
        assert_eq!(ok("${V}", SET), "val");
        assert_eq!(ok("x${V}y", SET), "xvaly");
        assert_eq!(ok("x$V.y", SET), "xval.y");
        assert_eq!(ok("$V$V", SET), "valval");
        assert_eq!(ok("$V", EMPTY), "");
        assert_eq!(ok("${V}", UNSET), "");
        assert_eq!(ok("a ${V} b", UNSET), "a  b");
    }

    #[test]
    fn names_are_greedy_and_case_sensitive() {
        let vars = &[("V", "1"), ("V_2", "2"), ("v", "lower"), ("_", "u")];
        assert_eq!(ok("$V_2", vars), "2");
        assert_eq!(ok("$V-2", vars), "1-2");
        assert_eq!(ok("$v", vars), "lower");
        assert_eq!(ok("$_", vars), "u");
        assert_eq!(ok("${_}", vars), "u");
        assert_eq!(ok("$VX", vars), "");
        assert_eq!(unset_of("$VX", vars), vec!["VX"]);
    }

    #[test]
    fn default_when_unset_or_empty() {
        assert_eq!(ok("${V:-def}", SET), "val");
        assert_eq!(ok("${V:-def}", EMPTY), "def");
        assert_eq!(ok("${V:-def}", UNSET), "def");
        assert_eq!(ok("${V:-}", UNSET), "");
        assert_eq!(ok("${V:-with space and :-}", UNSET), "with space and :-");
    }

    #[test]
    fn default_when_unset() {
        assert_eq!(ok("${V-def}", SET), "val");
        assert_eq!(ok("${V-def}", EMPTY), "");
        assert_eq!(ok("${V-def}", UNSET), "def");
        assert_eq!(ok("${V-}", UNSET), "");
        assert_eq!(ok("${V-a-b}", UNSET), "a-b");
    }

    #[test]
    fn error_when_unset_or_empty() {
        assert_eq!(ok("${V:?boom}", SET), "val");
        assert_eq!(
            required_err("${V:?boom}", EMPTY),
            ("V".to_string(), "boom".to_string())
        );
        assert_eq!(
            required_err("${V:?boom}", UNSET),
            ("V".to_string(), "boom".to_string())
        );
        assert_eq!(
            required_err("${V:?}", UNSET),
            ("V".to_string(), String::new())
        );
    }

    #[test]
    fn error_when_unset() {
        assert_eq!(ok("${V?boom}", SET), "val");
        assert_eq!(ok("${V?boom}", EMPTY), "");
        assert_eq!(
            required_err("${V?boom}", UNSET),
            ("V".to_string(), "boom".to_string())
        );
        assert_eq!(
            required_err("${V?}", UNSET),
            ("V".to_string(), String::new())
        );
    }

    #[test]
    fn alternate_when_non_empty() {
        assert_eq!(ok("${V:+alt}", SET), "alt");
        assert_eq!(ok("${V:+alt}", EMPTY), "");
        assert_eq!(ok("${V:+alt}", UNSET), "");
        assert!(unset_of("${V:+alt}", UNSET).is_empty());
    }

    #[test]
    fn alternate_when_set() {
        assert_eq!(ok("${V+alt}", SET), "alt");
        assert_eq!(ok("${V+alt}", EMPTY), "alt");
        assert_eq!(ok("${V+alt}", UNSET), "");
        assert!(unset_of("${V+alt}", UNSET).is_empty());
    }

    #[test]
    fn required_error_display() {
        let with_message = InterpolateError::Required {
            name: "X".into(),
            message: "set X please".into(),
        };
        assert_eq!(
            with_message.to_string(),
            "required variable X is missing a value: set X please"
        );
        let without = InterpolateError::Required {
            name: "X".into(),
            message: String::new(),
        };
        assert_eq!(
            without.to_string(),
            "required variable X is missing a value"
        );
        let syntax = InterpolateError::Syntax {
            input: "${".into(),
            reason: "unclosed \"${\"".into(),
        };
        assert_eq!(
            syntax.to_string(),
            "invalid interpolation format for \"${\": unclosed \"${\""
        );
    }

    #[test]
    fn nested_defaults() {
        let vars = &[("B", "bee"), ("E", "")];
        assert_eq!(ok("${A:-${B:-c}}", vars), "bee");
        assert_eq!(ok("${A:-${C:-c}}", vars), "c");
        assert_eq!(ok("${A:-$B}", vars), "bee");
        assert_eq!(ok("${A:-x$B}y", vars), "xbeey");
        assert_eq!(ok("${A:-${E:-${B}}}", vars), "bee");
        assert_eq!(ok("${A-${E-no}}", vars), "");
        assert_eq!(ok("${B:+${A:-alt}}", vars), "alt");
        assert_eq!(ok("${B+[$B]}", vars), "[bee]");
        assert_eq!(ok("${A:-${B}-${B}}", vars), "bee-bee");
        assert_eq!(ok("${A:-$$B}", vars), "$B");
    }

    #[test]
    fn nested_error_message_is_interpolated() {
        assert_eq!(
            required_err("${V:?missing, see ${DOC:-the docs}}", UNSET),
            ("V".to_string(), "missing, see the docs".to_string())
        );
        assert_eq!(
            required_err("${V?$HINT}", &[("HINT", "try harder")]),
            ("V".to_string(), "try harder".to_string())
        );
    }

    #[test]
    fn unused_branches_are_not_evaluated() {
        let vars = &[("A", "a")];
        // Neither the required error nor the unset warning of an unused default fire.
        assert_eq!(ok("${A:-${B:?needed}}", vars), "a");
        assert_eq!(run("${A:-$B}", vars).unwrap().unset, Vec::<String>::new());
        assert_eq!(ok("${B:+${C:?needed}}", vars), "");
        // ... but they do once the default is used.
        assert_eq!(
            required_err("${B:-${C:?needed}}", vars),
            ("C".to_string(), "needed".to_string())
        );
        assert_eq!(unset_of("${B:-$C}", vars), vec!["C"]);
        // compose-go only parses a default when it uses it, so even a malformed one passes.
        assert_eq!(ok("${A:-${}", vars), "a");
    }

    #[test]
    fn several_expressions_on_one_line() {
        let vars = &[("A", "1"), ("B", "2")];
        assert_eq!(ok("${X:-a} and ${Y:-b}", vars), "a and b");
        assert_eq!(ok("${A:-a}-${B:-b}-${C:-c}", vars), "1-2-c");
        assert_eq!(ok("${X:-${A}}:${X:-${B}}", vars), "1:2");
        assert_eq!(ok("{${A}}", vars), "{1}");
        assert_eq!(ok("${X:-a}}", vars), "a}");
    }

    #[test]
    fn braces_inside_arguments() {
        assert_eq!(ok("${V:-{}}", UNSET), "{}");
        assert_eq!(ok("${V:-{a}}", UNSET), "{a}");
        assert_eq!(ok("${V:-{x}y}", UNSET), "{x}y");
        assert_eq!(ok(r#"${V:-{"k": 1}}"#, UNSET), r#"{"k": 1}"#);
        // Unbalanced: the argument runs to the last `}` of the line.
        assert_eq!(ok("${V:-{x}", UNSET), "{x");
    }

    #[test]
    fn arguments_stop_at_newlines() {
        assert_eq!(ok("${V:-a}\n${V:-b}", UNSET), "a\nb");
        assert_eq!(syntax_err("${V:-a\n}"), "unclosed \"${\"");
    }

    #[test]
    fn dollar_escapes() {
        assert_eq!(ok("$$", UNSET), "$");
        assert_eq!(ok("$$V", SET), "$V");
        assert_eq!(ok("$${V}", SET), "${V}");
        assert_eq!(ok("$$$V", SET), "$val");
        assert_eq!(ok("$$$$", UNSET), "$$");
        assert_eq!(ok("a$$b", UNSET), "a$b");
        assert!(unset_of("$$V", UNSET).is_empty());
    }

    #[test]
    fn lone_dollar_is_literal() {
        assert_eq!(ok("$", UNSET), "$");
        assert_eq!(ok("a$", UNSET), "a$");
        assert_eq!(ok("$ x", UNSET), "$ x");
        assert_eq!(ok("$1", UNSET), "$1");
        assert_eq!(ok("$-", UNSET), "$-");
        assert_eq!(ok("100$.", UNSET), "100$.");
        assert_eq!(ok("$(cmd)", UNSET), "$(cmd)");
        assert_eq!(ok("$é", UNSET), "$é");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(syntax_err("${"), "unclosed \"${\"");
        assert_eq!(syntax_err("abc ${V"), "unclosed \"${\"");
        assert_eq!(syntax_err("${V:-default"), "unclosed \"${\"");
        assert_eq!(syntax_err("${}"), "invalid variable name");
        assert_eq!(syntax_err("${a b}"), "invalid variable name");
        assert_eq!(syntax_err("${1A}"), "invalid variable name");
        assert_eq!(syntax_err("${V:x}"), "invalid variable name");
        assert_eq!(syntax_err("${V=x}"), "invalid variable name");
        assert_eq!(syntax_err("${V.x}"), "invalid variable name");
        assert_eq!(syntax_err("ok $V then ${"), "unclosed \"${\"");
        assert_eq!(syntax_err("${é}"), "invalid variable name");
        // Syntax errors in a default that is used report the whole input.
        match run("pre ${V:-${}}", UNSET) {
            Err(InterpolateError::Syntax { input, .. }) => assert_eq!(input, "pre ${V:-${}}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unset_reporting() {
        assert_eq!(unset_of("$A ${B} $A ${C:-c} ${D-d}", UNSET), vec!["A", "B"]);
        assert_eq!(unset_of("${A:-$B} ${B}", UNSET), vec!["B"]);
        assert!(unset_of("${A:-x}", &[("A", "")]).is_empty());
        assert!(unset_of("$A", &[("A", "")]).is_empty());
    }

    #[test]
    fn multibyte_text_is_safe() {
        let vars = &[("NAME", "wörld ✓")];
        assert_eq!(ok("héllo ${NAME} 日本", vars), "héllo wörld ✓ 日本");
        assert_eq!(ok("€$NAME€", vars), "€wörld ✓€");
        assert_eq!(ok("${X:-ünïcødé {ß}}", vars), "ünïcødé {ß}");
        assert_eq!(ok("${X:-é}é}", vars), "éé}");
        assert_eq!(ok("$€", vars), "$€");
        assert_eq!(syntax_err("${NAMEé}"), "invalid variable name");
        assert_eq!(syntax_err("${ü"), "unclosed \"${\"");
        // Every prefix of a multibyte-heavy template (as would come from a truncated file)
        // interpolates or errors without panicking.
        let template = "ß${X:-é{ü}${NAME:+ñ}}€$$日${Y-本}$";
        for (end, _) in template.char_indices() {
            let _ = run(&template[..end], vars);
            let _ = variables(&template[..end]);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowing() {
        let depth = 10_000;
        let template = format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
        assert!(matches!(
            run(&template, UNSET),
            Err(InterpolateError::Syntax { .. })
        ));
        assert!(variables(&template).is_err());
        let shallow = format!("{}x{}", "${A:-".repeat(10), "}".repeat(10));
        assert_eq!(ok(&shallow, UNSET), "x");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let alphabet = ["$", "{", "}", ":", "-", "+", "?", "A", "é", "\n", " ", "$$"];
        // A small deterministic generator instead of a fuzzing dependency.
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                s.push_str(alphabet[(state % alphabet.len() as u32) as usize]);
            }
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let _ = run(&s, &[("A", "a")]);
            let _ = variables(&s);
        }
    }

    fn var(
        name: &str,
        required: bool,
        default: Option<&str>,
        alternate: Option<&str>,
    ) -> VariableUse {
        VariableUse {
            name: name.to_string(),
            required,
            default: default.map(str::to_string),
            alternate: alternate.map(str::to_string),
        }
    }

    #[test]
    fn variables_lists_every_form() {
        assert_eq!(variables("no vars, $$ESCAPED").unwrap(), vec![]);
        assert_eq!(
            variables("$A ${B} ${C:-c} ${D-d} ${E:?e} ${F?} ${G:+g} ${H+h}").unwrap(),
            vec![
                var("A", false, None, None),
                var("B", false, None, None),
                var("C", false, Some("c"), None),
                var("D", false, Some("d"), None),
                var("E", true, None, None),
                var("F", true, None, None),
                var("G", false, None, Some("g")),
                var("H", false, None, Some("h")),
            ]
        );
    }

    #[test]
    fn variables_include_nested_ones_with_raw_defaults() {
        assert_eq!(
            variables("${A:-${B:-b}} ${C:?need $D} ${E:+${F}}").unwrap(),
            vec![
                var("A", false, Some("${B:-b}"), None),
                var("B", false, Some("b"), None),
                var("C", true, None, None),
                var("D", false, None, None),
                var("E", false, None, Some("${F}")),
                var("F", false, None, None),
            ]
        );
    }

    #[test]
    fn variables_merge_repeated_uses() {
        assert_eq!(
            variables("$A ${A:-x} ${A:?} ${A:-y} ${A:+z}").unwrap(),
            vec![var("A", true, Some("x"), Some("z"))]
        );
        assert_eq!(
            variables("${A:-} ${A:-later}").unwrap(),
            vec![var("A", false, Some("later"), None)]
        );
        let mut all = variables("${A:-x}").unwrap();
        for v in variables("$A ${B?}").unwrap() {
            merge_variable(&mut all, v);
        }
        assert_eq!(
            all,
            vec![var("A", false, Some("x"), None), var("B", true, None, None)]
        );
    }

    #[test]
    fn variables_reports_syntax_errors() {
        assert!(matches!(
            variables("${a b}"),
            Err(InterpolateError::Syntax { .. })
        ));
        assert!(matches!(
            variables("${A:-${}"),
            Err(InterpolateError::Syntax { .. })
        ));
    }

    #[test]
    fn variable_use_serializes() {
        let json = serde_json::to_string(&var("A", true, Some("d"), None)).unwrap();
        assert_eq!(
            json,
            r#"{"name":"A","required":true,"default":"d","alternate":null}"#
        );
    }
}
