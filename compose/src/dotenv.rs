//! Parsers for `.env` files and service `env_file`s.
//!
//! [`parse`] accepts the syntax of compose-go's `dotenv` package, which docker compose uses for
//! both; [`parse_raw`] is the `format: raw` variant, which follows `docker run --env-file`.
//!
//! Like compose-go, the parser works statement by statement rather than line by line: after a
//! quoted value, parsing simply resumes with whatever follows the closing quote, so
//! `A="1" B="2"` defines two variables and `A="1" # note` ends in a comment.

use indexmap::IndexMap;

use crate::interpolate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based line on which the offending statement starts.
    pub line: usize,
    pub message: String,
}

/// The outcome of [`parse_with_unset`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedEnv {
    pub vars: IndexMap<String, String>,
    /// Variables referenced by values that were neither defined earlier in the file nor found
    /// by the lookup, in order of first use. docker compose warns about these.
    pub unset: Vec<String>,
}

/// Parses a `.env` / `env_file` document.
///
/// `lookup` resolves variables that are not defined earlier in the file, both for interpolation
/// and for bare `KEY` statements, which take their value from it (or are skipped when it has
/// none).
pub fn parse(
    src: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    parse_with_unset(src, lookup).map(|parsed| parsed.vars)
}

/// [`parse`], also reporting the variables that interpolated to nothing because they were unset.
pub fn parse_with_unset(
    src: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ParsedEnv, DotenvError> {
    let mut parser = Parser {
        src: src.strip_prefix('\u{feff}').unwrap_or(src),
        pos: 0,
        line: 1,
        lookup,
        out: ParsedEnv::default(),
    };
    parser.run()?;
    Ok(parser.out)
}

/// Parses an env_file with `format: raw`: one `KEY=VALUE` per line, the value taken verbatim
/// (no quotes, escapes, comments or interpolation). Blank lines and lines starting with `#` are
/// skipped; a bare `KEY` is skipped too, as there is nothing to look it up in.
pub fn parse_raw(src: &str) -> Result<IndexMap<String, String>, DotenvError> {
    parse_raw_with_lookup(src, &|_| None)
}

/// [`parse_raw`], except that a bare `KEY` takes its value from `lookup` when it has one, as
/// `docker run --env-file` does.
pub fn parse_raw_with_lookup(
    src: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut vars = IndexMap::new();
    for (index, line) in src.split('\n').enumerate() {
        let error = |message: String| DotenvError {
            line: index + 1,
            message,
        };
        // `\r` belongs to a CRLF line ending, but any other trailing whitespace is part of
        // the value.
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(error(format!("no variable name on line {line:?}")));
        }
        if key.contains([' ', '\t']) {
            return Err(error(format!("variable {key:?} contains whitespace")));
        }
        match value {
            Some(value) => {
                vars.insert(key.to_string(), value.to_string());
            }
            None => {
                if let Some(value) = lookup(key) {
                    vars.insert(key.to_string(), value);
                }
            }
        }
    }
    Ok(vars)
}

/// Whitespace that may separate the parts of a statement, which excludes the newline ending it.
fn is_inline_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphanumeric()
}

fn first_line(s: &str) -> &str {
    s.split('\n').next().unwrap_or(s)
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unparsed character; always on a character boundary.
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    out: ParsedEnv,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn advance_to(&mut self, pos: usize) {
        self.line += self.src[self.pos..pos].matches('\n').count();
        self.pos = pos;
    }

    fn skip_while(&mut self, pred: impl Fn(char) -> bool) {
        let len = self
            .rest()
            .find(|c: char| !pred(c))
            .unwrap_or(self.rest().len());
        self.advance_to(self.pos + len);
    }

    fn run(&mut self) -> Result<(), DotenvError> {
        loop {
            self.skip_while(char::is_whitespace);
            if self.rest().is_empty() {
                return Ok(());
            }
            if self.rest().starts_with('#') {
                match self.rest().find('\n') {
                    Some(newline) => self.advance_to(self.pos + newline),
                    None => return Ok(()),
                }
                continue;
            }
            let line = self.line;
            self.statement()
                .map_err(|message| DotenvError { line, message })?;
        }
    }

    fn statement(&mut self) -> Result<(), String> {
        if let Some(after) = self.rest().strip_prefix("export") {
            // `export` is only a keyword when whitespace follows it: `exportFOO=1` and
            // `export=1` define variables with those names.
            if after.starts_with(|c: char| c.is_ascii_whitespace()) {
                self.advance_to(self.pos + "export".len());
                self.skip_while(is_inline_space);
            }
        }

        let rest = self.rest();
        let mut terminator = None;
        for (offset, c) in rest.char_indices() {
            if is_inline_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    terminator = Some((offset, c));
                    break;
                }
                c if is_key_char(c) => {}
                c => {
                    return Err(format!(
                        "unexpected character {:?} in variable name {:?}",
                        c.to_string(),
                        first_line(rest)
                    ))
                }
            }
        }
        // A bare `KEY` on the last line, without a newline after it, is inherited just like
        // one followed by a newline.
        let (key_end, terminator) = terminator.unwrap_or((rest.len(), '\n'));
        let key = rest[..key_end].trim_end().to_string();
        let value_start = self.pos + key_end + terminator.len_utf8().min(rest.len() - key_end);

        if terminator == '\n' {
            self.advance_to(value_start);
            if key.is_empty() {
                // Only reachable through a lone `export`, which compose-go ignores as well.
                return Ok(());
            }
            check_key(&key)?;
            if let Some(value) = (self.lookup)(&key) {
                self.out.vars.insert(key, value);
            }
            return Ok(());
        }

        check_key(&key)?;
        self.advance_to(value_start);
        self.skip_while(is_inline_space);
        let value = self.value()?;
        self.out.vars.insert(key, value);
        Ok(())
    }

    fn value(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let quote = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => quote,
            _ => {
                let (line, after) = match rest.find('\n') {
                    Some(newline) => (&rest[..newline], self.pos + newline + 1),
                    None => (rest, self.src.len()),
                };
                // Only ` #` starts a comment, so `a#b` and URLs with fragments survive.
                let value = match line.find(" #") {
                    Some(comment) => &line[..comment],
                    None => line,
                }
                .trim_end();
                let value = self.interpolate(value)?;
                self.advance_to(after);
                return Ok(value);
            }
        };

        let mut raw = String::new();
        let mut escaped = false;
        let mut close = None;
        for (offset, c) in rest.char_indices().skip(1) {
            if escaped {
                escaped = false;
                // Escaping the quote drops the backslash; other escapes are kept for now and,
                // in double quotes, resolved by `expand_escapes`.
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                close = Some(offset);
                break;
            } else {
                raw.push(c);
            }
        }
        let Some(close) = close else {
            return Err(format!("unterminated quoted value {}", first_line(rest)));
        };
        let value = if quote == '"' {
            self.interpolate(&expand_escapes(&raw))?
        } else {
            raw
        };
        self.advance_to(self.pos + close + 1);
        Ok(value)
    }

    /// Interpolates a value, preferring variables defined earlier in the file over the lookup.
    fn interpolate(&mut self, value: &str) -> Result<String, String> {
        if !interpolate::has_variables(value) {
            return Ok(value.to_string());
        }
        let vars = &self.out.vars;
        let lookup = self.lookup;
        let resolve = |name: &str| vars.get(name).cloned().or_else(|| lookup(name));
        let result = interpolate::interpolate(value, &resolve).map_err(|err| err.to_string())?;
        for name in result.unset {
            if !self.out.unset.contains(&name) {
                self.out.unset.push(name);
            }
        }
        Ok(result.value)
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("missing variable name".to_string());
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("key cannot contain a space: {key:?}"));
    }
    Ok(())
}

/// Resolves the escape sequences of a double-quoted value the way compose-go does: `\a \b \f
/// \n \r \t \v \" \\`, octal `\0NNN`, and `\$`, which stays a literal dollar through the
/// interpolation that follows. Any other backslash is kept as is.
fn expand_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let replacement = match chars.peek() {
            Some('a') => "\u{7}",
            Some('b') => "\u{8}",
            Some('f') => "\u{c}",
            Some('n') => "\n",
            Some('r') => "\r",
            Some('t') => "\t",
            Some('v') => "\u{b}",
            Some('"') => "\"",
            Some('\\') => "\\",
            Some('$') => "$$",
            Some('0') => {
                chars.next();
                let mut digits = String::new();
                while digits.len() < 3 {
                    match chars.peek() {
                        Some(&d) if d.is_ascii_digit() => {
                            digits.push(d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                // compose-go rewrites `\0NNN` to Go's `\NNN`, which needs exactly three octal
                // digits worth at most 0o377; otherwise the rewritten text is kept, which is
                // the original minus its `0`.
                let octal = (digits.len() == 3)
                    .then(|| u32::from_str_radix(&digits, 8).ok())
                    .flatten()
                    .filter(|&v| v <= 0o377)
                    .and_then(char::from_u32);
                match octal {
                    Some(c) => out.push(c),
                    None => {
                        out.push('\\');
                        out.push_str(&digits);
                    }
                }
                continue;
            }
            _ => {
                out.push('\\');
                continue;
            }
        };
        chars.next();
        out.push_str(replacement);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn parse_with(src: &str, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        match parse(src, &lookup_from(pairs)) {
            Ok(vars) => vars.into_iter().collect(),
            Err(err) => panic!("parsing {src:?} failed: {err}"),
        }
    }

    fn parsed(src: &str) -> Vec<(String, String)> {
        parse_with(src, &[])
    }

    fn one(src: &str) -> String {
        let vars = parsed(src);
        assert_eq!(
            vars.len(),
            1,
            "expected one variable from {src:?}: {vars:?}"
        );
        vars[0].1.clone()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error(src: &str) -> DotenvError {
        match parse(src, &|_| None) {
            Err(err) => err,
            Ok(vars) => panic!("expected {src:?} to fail, got {vars:?}"),
        }
    }

    #[test]
    fn simple_assignments() {
        assert_eq!(
            parsed("A=1\nB=two\nC=\n"),
            kv(&[("A", "1"), ("B", "two"), ("C", "")])
        );
        assert_eq!(parsed(""), kv(&[]));
        assert_eq!(parsed("\n\n  \n\t\n"), kv(&[]));
        assert_eq!(one("FOO=bar"), "bar");
        assert_eq!(one("FOO=foobar="), "foobar=");
        assert_eq!(one("FOO.BAR=x"), "x");
        assert_eq!(parsed("my-key[0]=x"), kv(&[("my-key[0]", "x")]));
        assert_eq!(parsed("lower_case=x"), kv(&[("lower_case", "x")]));
    }

    #[test]
    fn whitespace_around_keys_and_values() {
        assert_eq!(parsed("FOO =bar"), kv(&[("FOO", "bar")]));
        assert_eq!(parsed("FOO= bar"), kv(&[("FOO", "bar")]));
        assert_eq!(parsed("  FOO  =  bar  "), kv(&[("FOO", "bar")]));
        assert_eq!(parsed("\tFOO=bar\t"), kv(&[("FOO", "bar")]));
        assert_eq!(one("FOO=a b  c"), "a b  c");
        assert_eq!(parsed("A=1\r\nB=2\r\n"), kv(&[("A", "1"), ("B", "2")]));
        assert_eq!(parsed("A=\nB=2"), kv(&[("A", ""), ("B", "2")]));
    }

    #[test]
    fn export_prefix() {
        assert_eq!(parsed("export A=2"), kv(&[("A", "2")]));
        assert_eq!(parsed("export\tA=2"), kv(&[("A", "2")]));
        assert_eq!(parsed("  export   A=2"), kv(&[("A", "2")]));
        assert_eq!(parsed("export exportA=2"), kv(&[("exportA", "2")]));
        assert_eq!(parsed("exportA=2"), kv(&[("exportA", "2")]));
        assert_eq!(parsed("export_A =2"), kv(&[("export_A", "2")]));
        assert_eq!(parsed("export.A= 2"), kv(&[("export.A", "2")]));
        assert_eq!(parsed("export=2"), kv(&[("export", "2")]));
    }

    #[test]
    fn yaml_style_colon() {
        assert_eq!(parsed("OPTION_A: 1"), kv(&[("OPTION_A", "1")]));
        assert_eq!(parsed("OPTION_A:1"), kv(&[("OPTION_A", "1")]));
        assert_eq!(parsed("OPTION_A: Foo=bar"), kv(&[("OPTION_A", "Foo=bar")]));
        assert_eq!(parsed("OPTION_A=1:B"), kv(&[("OPTION_A", "1:B")]));
        assert_eq!(parsed("A: \"quoted\""), kv(&[("A", "quoted")]));
    }

    #[test]
    fn comments() {
        assert_eq!(
            parsed("# comment\nA=1\n  # indented\n#B=2"),
            kv(&[("A", "1")])
        );
        assert_eq!(one("FOO=bar # this is foo"), "bar");
        assert_eq!(one("FOO=bar    # spaced"), "bar");
        assert_eq!(one("FOO=bar# not a comment"), "bar# not a comment");
        assert_eq!(one("FOO=http://x/#frag"), "http://x/#frag");
        assert_eq!(one("FOO=#bar"), "#bar");
        assert_eq!(one("FOO= #bar"), "#bar");
        assert_eq!(one("FOO=\"bar#baz\" # comment"), "bar#baz");
        assert_eq!(one("FOO='bar#baz' # comment"), "bar#baz");
        assert_eq!(one("FOO=\"ba # r\""), "ba # r");
        assert_eq!(parsed("#only a comment"), kv(&[]));
        assert_eq!(parsed("A=1\n# trailing"), kv(&[("A", "1")]));
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(one("FOO='bar'"), "bar");
        assert_eq!(one("FOO='$BAR ${BAZ:-x}'"), "$BAR ${BAZ:-x}");
        assert_eq!(one(r"FOO='a\nb\tc'"), r"a\nb\tc");
        assert_eq!(one(r"FOO='Let\'s go!'"), "Let's go!");
        assert_eq!(one("FOO='\"d\"'"), "\"d\"");
        assert_eq!(one("FOO=''"), "");
        assert_eq!(one("FOO='  padded  '"), "  padded  ");
    }

    #[test]
    fn double_quotes_and_escapes() {
        assert_eq!(one("FOO=\"bar\""), "bar");
        assert_eq!(one("FOO=\"\""), "");
        assert_eq!(one("FOO=\"'d'\""), "'d'");
        assert_eq!(one(r#"FOO="escaped\"bar""#), "escaped\"bar");
        assert_eq!(one(r#"FOO="a\nb""#), "a\nb");
        assert_eq!(one(r#"FOO="a\tb\rc""#), "a\tb\rc");
        assert_eq!(one(r#"FOO="back\\slash""#), "back\\slash");
        assert_eq!(one(r#"FOO="bar\\\n\ b\az""#), "bar\\\n\\ b\u{7}z");
        assert_eq!(one(r#"FOO="\a\b\f\v""#), "\u{7}\u{8}\u{c}\u{b}");
        assert_eq!(one(r#"FOO="unknown \q \x41 \c""#), r"unknown \q \x41 \c");
        assert_eq!(
            one(r#"FOO="{\"hello\": \"json\"}""#),
            r#"{"hello": "json"}"#
        );
        assert_eq!(one(r#"FOO="trailing\\""#), "trailing\\");
    }

    #[test]
    fn octal_escapes_follow_compose_go() {
        assert_eq!(one(r#"FOO="\0123""#), "S");
        assert_eq!(one(r#"FOO="\0101\0102""#), "AB");
        assert_eq!(one(r#"FOO="\0377""#), "\u{ff}");
        // Anything but exactly three octal digits up to 0o377 keeps the text minus its `0`.
        assert_eq!(one(r#"FOO="\0""#), "\\");
        assert_eq!(one(r#"FOO="\012""#), "\\12");
        assert_eq!(one(r#"FOO="\0777""#), "\\777");
        assert_eq!(one(r#"FOO="\0089""#), "\\089");
        assert_eq!(one(r#"FOO="\01234""#), "S4");
    }

    #[test]
    fn multiline_values() {
        assert_eq!(
            parsed("A=\"first line\nsecond line\"\nB=after"),
            kv(&[("A", "first line\nsecond line"), ("B", "after")])
        );
        assert_eq!(
            parsed("KEY='-----BEGIN-----\nabc\n-----END-----'\nNEXT=1"),
            kv(&[
                ("KEY", "-----BEGIN-----\nabc\n-----END-----"),
                ("NEXT", "1")
            ])
        );
        assert_eq!(
            one("URLS=\"stratum+tcp://a:3333\nstratum+tcp://b:443\""),
            "stratum+tcp://a:3333\nstratum+tcp://b:443"
        );
    }

    #[test]
    fn statements_resume_after_closing_quote() {
        assert_eq!(
            parsed("A=\"1\" B='2'\nC=3"),
            kv(&[("A", "1"), ("B", "2"), ("C", "3")])
        );
    }

    #[test]
    fn interpolation_in_unquoted_and_double_quoted_values() {
        assert_eq!(
            parsed("FOO=test\nBAR=$FOO\nBAZ=${FOO}bar\nQ=\"quote $FOO\"\nS='quote $FOO'"),
            kv(&[
                ("FOO", "test"),
                ("BAR", "test"),
                ("BAZ", "testbar"),
                ("Q", "quote test"),
                ("S", "quote $FOO"),
            ])
        );
        assert_eq!(one("BAR=$UNDEFINED"), "");
        assert_eq!(one("BAR=${UNDEFINED:-fallback}"), "fallback");
        assert_eq!(one("BAR=${UNDEFINED:-with space}"), "with space");
        assert_eq!(one("BAR=$$literal"), "$literal");
        assert_eq!(one("BAR=price: 5$"), "price: 5$");
    }

    #[test]
    fn escaped_dollars_in_double_quotes() {
        assert_eq!(one(r#"FOO="foo\$BAR""#), "foo$BAR");
        assert_eq!(one(r#"FOO="foo\${BAR}""#), "foo${BAR}");
        assert_eq!(
            parsed("FOO=test\nBAR=\"foo\\${FOO} ${FOO}\""),
            kv(&[("FOO", "test"), ("BAR", "foo${FOO} test")])
        );
        // An unquoted backslash is just a character, so the variable is still expanded.
        assert_eq!(parsed("A=x\nB=\\$A"), kv(&[("A", "x"), ("B", "\\x")]));
    }

    #[test]
    fn interpolation_prefers_earlier_definitions_over_lookup() {
        let env = &[("A", "from-env"), ("ONLY_ENV", "env")];
        assert_eq!(
            parse_with(
                "A=from-file\nB=$A\nC=$ONLY_ENV\nD=${LATER:-none}\nLATER=x",
                env
            ),
            kv(&[
                ("A", "from-file"),
                ("B", "from-file"),
                ("C", "env"),
                ("D", "none"),
                ("LATER", "x"),
            ])
        );
        // Before its definition the lookup is all there is.
        assert_eq!(
            parse_with("B=$A\nA=from-file", env),
            kv(&[("B", "from-env"), ("A", "from-file")])
        );
        // Redefinitions take effect for the lines after them.
        assert_eq!(
            parsed("A=1\nB=$A\nA=2\nC=$A"),
            kv(&[("A", "2"), ("B", "1"), ("C", "2")])
        );
    }

    #[test]
    fn unset_variables_are_reported() {
        let result =
            parse_with_unset("A=$X\nB=\"${Y}${X}\"\nC=${Z:-z}\nD='$W'", &|_| None).unwrap();
        assert_eq!(result.unset, vec!["X".to_string(), "Y".to_string()]);
        assert_eq!(result.vars.len(), 4);
    }

    #[test]
    fn inherited_keys() {
        let env = &[("FROM_ENV", "value"), ("EMPTY", "")];
        assert_eq!(
            parse_with("FROM_ENV\nMISSING\nEMPTY\nA=1\n", env),
            kv(&[("FROM_ENV", "value"), ("EMPTY", ""), ("A", "1")])
        );
        assert_eq!(
            parse_with("  FROM_ENV  \n", env),
            kv(&[("FROM_ENV", "value")])
        );
        assert_eq!(
            parse_with("export FROM_ENV\n", env),
            kv(&[("FROM_ENV", "value")])
        );
        // Also on the last line without a trailing newline.
        assert_eq!(
            parse_with("A=1\nFROM_ENV", env),
            kv(&[("A", "1"), ("FROM_ENV", "value")])
        );
        assert_eq!(parse_with("MISSING", env), kv(&[]));
        // A lone `export` is ignored.
        assert_eq!(parse_with("export\nA=1", env), kv(&[("A", "1")]));
    }

    #[test]
    fn later_definitions_override_earlier_ones() {
        assert_eq!(parsed("A=1\nB=2\nA=3"), kv(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(parsed("\u{feff}A=1"), kv(&[("A", "1")]));
        assert_eq!(
            parse_raw("\u{feff}A=1")
                .unwrap()
                .get("A")
                .map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn multibyte_text() {
        assert_eq!(
            parsed("NAMÉ=héllo wörld # ✓ comment\nB=\"日本\\n語\"\nC='ß'\nD=$NAMÉ"),
            kv(&[
                ("NAMÉ", "héllo wörld"),
                ("B", "日本\n語"),
                ("C", "ß"),
                // `É` cannot be part of an interpolated name, so only `$NAM` is looked up.
                ("D", "É"),
            ])
        );
        assert_eq!(
            error("A€=1").message,
            "unexpected character \"€\" in variable name \"A€=1\""
        );
        assert_eq!(error("A=\"ünterminated").line, 1);
        // Every prefix of a multibyte-heavy file parses or errors without panicking.
        let src = "É=\"ü\\n${X:-ß}\"\nexport Ö='日本' # c\nKEY\n€€\nA=\"\\0123é";
        for (end, _) in src.char_indices() {
            let _ = parse(&src[..end], &|_| Some("v".to_string()));
            let _ = parse_raw(&src[..end]);
        }
    }

    #[test]
    fn errors_name_the_line() {
        let err = error("A=1\nB=2\nlol$wut=3");
        assert_eq!(err.line, 3);
        assert_eq!(
            err.message,
            "unexpected character \"$\" in variable name \"lol$wut=3\""
        );
        assert_eq!(err.to_string(), format!("line 3: {}", err.message));

        let err = error("A=1\n\n# c\nFOO BAR=1");
        assert_eq!(err.line, 4);
        assert_eq!(err.message, "key cannot contain a space: \"FOO BAR\"");

        let err = error("A=\"multi\nline\"\nB=\"unterminated\nstill");
        assert_eq!(err.line, 3);
        assert_eq!(err.message, "unterminated quoted value \"unterminated");

        let err = error("A='x");
        assert_eq!(
            (err.line, err.message.as_str()),
            (1, "unterminated quoted value 'x")
        );

        let err = error("A=1\n=value");
        assert_eq!(
            (err.line, err.message.as_str()),
            (2, "missing variable name")
        );

        let err = error("\n\nA=${B:?B is needed}");
        assert_eq!(err.line, 3);
        assert_eq!(
            err.message,
            "required variable B is missing a value: B is needed"
        );

        let err = error("A=\"x\ny\"\nB=\"${\"");
        assert_eq!(err.line, 3);
        assert_eq!(
            err.message,
            "invalid interpolation format for \"${\": unclosed \"${\""
        );

        let err = error("export 'A'=1");
        assert_eq!(err.line, 1);
    }

    #[test]
    fn raw_format_takes_values_verbatim() {
        let src = "# comment\n\n  A=1\nB='quoted' # not a comment \nC=\"x\\n$HOME\"\nD=\nE=a=b\r\n  # indented comment\nF\n";
        let vars = parse_raw(src).unwrap();
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            kv(&[
                ("A", "1"),
                ("B", "'quoted' # not a comment "),
                ("C", "\"x\\n$HOME\""),
                ("D", ""),
                ("E", "a=b"),
            ])
        );
    }

    #[test]
    fn raw_format_bare_keys_use_the_lookup() {
        let vars = parse_raw_with_lookup("HOME\nMISSING\nA=1", &lookup_from(&[("HOME", "/root")]))
            .unwrap();
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            kv(&[("HOME", "/root"), ("A", "1")])
        );
    }

    #[test]
    fn raw_format_errors() {
        let err = parse_raw("A=1\n=2").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.message, "no variable name on line \"=2\"");
        let err = parse_raw("A=1\n\nMY VAR=2").unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.message, "variable \"MY VAR\" contains whitespace");
        assert_eq!(parse_raw("A =1").unwrap_err().line, 1);
    }
}
