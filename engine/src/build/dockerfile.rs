//! Dockerfile parsing (BuildKit's syntax, heredocs included) and docker's variable substitution.
//!
//! The parser keeps words as written: quotes stay in `ARG`/`ENV`/`LABEL` values, `COPY` sources,
//! `WORKDIR` and so on, exactly as BuildKit keeps them until the step runs. [`expand`] (docker's
//! `ProcessWord`) removes quotes and escapes and substitutes variables, so running a word through
//! it yields what docker would use. Shell-form `RUN`/`CMD`/`ENTRYPOINT` text is never expanded:
//! the shell does it.

use super::ast::{
    ArgDecl, Command, CopySpec, Dockerfile, Healthcheck, InlineFile, Instruction, Kind, Stage,
};

/// A syntax error, displayed as `Dockerfile:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// A variable-substitution error (`${V:?msg}`, a bad `${…}`, an unterminated quote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    pub message: String,
}

fn expand_fail<T>(message: impl Into<String>) -> Result<T, ExpandError> {
    Err(ExpandError {
        message: message.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Lines and logical instructions
// ---------------------------------------------------------------------------------------------

/// The physical lines, CRs and a BOM removed.
struct Source<'a> {
    lines: Vec<&'a str>,
    /// Index of the next line to read (0-based; the 1-based number of the last line read).
    next: usize,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        Source { lines, next: 0 }
    }

    /// The next line and its 1-based number.
    fn next_line(&mut self) -> Option<(usize, &'a str)> {
        let line = self.lines.get(self.next).copied()?;
        self.next += 1;
        Some((self.next, line))
    }
}

/// `# key=value` at the top of the file: BuildKit's `^#[ \t]*([a-z0-9]+)[ \t]*=[ \t]*(.+?)[ \t]*$`.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let key_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    if key_len == 0 {
        return None;
    }
    let key = rest[..key_len].to_ascii_lowercase();
    let rest = rest[key_len..].trim_start_matches([' ', '\t']);
    let value = rest.strip_prefix('=')?.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((key, value.to_string()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (and the blanks after it): `(text, continues)`.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(before) => (before, true),
        None => (line, false),
    }
}

/// A heredoc announced on an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeredocSpec {
    name: String,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    chomp: bool,
    /// No part of the name was quoted.
    expand: bool,
}

/// A heredoc with the lines that make it up.
struct Heredoc<'a> {
    spec: HeredocSpec,
    body: Vec<&'a str>,
}

impl Heredoc<'_> {
    /// The body, one `\n` after every line; tabs stripped for `<<-`.
    fn content(&self) -> String {
        let mut out = String::new();
        for line in &self.body {
            if self.spec.chomp {
                out.push_str(line.trim_start_matches('\t'));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    }
}

/// Reads heredoc bodies after the instruction line, appending the raw lines to `original`.
fn read_heredocs<'a>(
    src: &mut Source<'a>,
    specs: Vec<HeredocSpec>,
    line: usize,
    original: &mut String,
) -> Result<Vec<Heredoc<'a>>, ParseError> {
    let mut docs = Vec::new();
    for spec in specs {
        let mut body = Vec::new();
        let mut terminated = false;
        while let Some((_, text)) = src.next_line() {
            original.push('\n');
            original.push_str(text);
            let candidate = if spec.chomp {
                text.trim_start_matches('\t')
            } else {
                text
            };
            if candidate == spec.name {
                terminated = true;
                break;
            }
            body.push(text);
        }
        if !terminated {
            return fail(line, format!("unterminated heredoc {}", spec.name));
        }
        docs.push(Heredoc { spec, body });
    }
    Ok(docs)
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut src = Source::new(text);
    let mut df = Dockerfile {
        escape: '\\',
        ..Default::default()
    };

    // Parser directives: only at the very top, before any blank line, comment or instruction.
    let mut seen_escape = false;
    let mut seen_syntax = false;
    let mut seen_check = false;
    while let Some(&line_text) = src.lines.get(src.next) {
        let line = src.next + 1;
        let Some((key, value)) = directive(line_text) else {
            break;
        };
        let seen = match key.as_str() {
            "escape" => &mut seen_escape,
            "syntax" => &mut seen_syntax,
            "check" => &mut seen_check,
            _ => break,
        };
        if *seen {
            return fail(line, format!("only one {key} parser directive can be used"));
        }
        *seen = true;
        match key.as_str() {
            "escape" => {
                df.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return fail(
                            line,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        )
                    }
                }
            }
            "syntax" => df.syntax = Some(value),
            _ => {}
        }
        src.next += 1;
    }
    let escape = df.escape;

    let mut first_line = None;
    let mut stage_names: Vec<String> = Vec::new();
    while let Some((line, first)) = src.next_line() {
        let first = first.trim_start();
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        // Join continuation lines; comment lines and blank lines inside are skipped.
        let (head, mut continues) = trim_continuation(first, escape);
        let mut joined = head.to_string();
        while continues {
            let Some((_, next)) = src.next_line() else {
                break;
            };
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            let (part, more) = trim_continuation(next, escape);
            joined.push_str(part);
            continues = more;
        }
        let joined = joined.trim();
        if joined.is_empty() {
            continue;
        }
        first_line.get_or_insert(line);

        let (word, rest) = split_first_word(joined);
        let keyword = word.to_ascii_lowercase();
        let mut original = joined.to_string();

        // Flags and heredocs of the instructions that have them.
        let (flags, rest) = match keyword.as_str() {
            "from" | "run" | "copy" | "add" | "healthcheck" => split_flags(rest, escape),
            _ => (Vec::new(), rest),
        };
        let specs = match keyword.as_str() {
            "run" if !looks_like_json(rest) => shell_heredocs(rest),
            "copy" | "add" if !looks_like_json(rest) => parse_words(rest, escape)
                .iter()
                .filter_map(|w| heredoc_word(w, escape))
                .collect(),
            _ => Vec::new(),
        };
        let heredocs = read_heredocs(&mut src, specs, line, &mut original)?;

        if keyword == "from" {
            let stage = parse_from(&flags, rest, line)?;
            if let Some(name) = &stage.name {
                if stage_names.contains(name) {
                    return fail(line, format!("duplicate stage name {name:?}"));
                }
                stage_names.push(name.clone());
            }
            df.stages.push(stage);
            continue;
        }

        let kind = parse_kind(&keyword, word, &flags, rest, heredocs, line, escape)?;
        match df.stages.last_mut() {
            Some(stage) => stage.instructions.push(Instruction {
                line,
                original,
                kind,
            }),
            None => match kind {
                Kind::Arg(args) => df.global_args.extend(args),
                _ => {
                    return fail(
                        line,
                        format!(
                            "{} before the first FROM (only ARG may come before FROM)",
                            word.to_ascii_uppercase()
                        ),
                    )
                }
            },
        }
    }

    if df.stages.is_empty() {
        return match first_line {
            None => fail(1, "the Dockerfile has no instructions"),
            Some(line) => fail(line, "no FROM instruction"),
        };
    }
    Ok(df)
}

/// Parses one instruction given as text, such as an `ONBUILD` trigger stored in an image
/// (`RUN echo hi`). `FROM`, `ONBUILD`, `MAINTAINER` and heredocs are refused.
pub fn parse_trigger(text: &str) -> Result<Kind, ParseError> {
    parse_trigger_at(text, 1, '\\')
}

fn parse_trigger_at(text: &str, line: usize, escape: char) -> Result<Kind, ParseError> {
    let (word, rest) = split_first_word(text.trim());
    let keyword = word.to_ascii_lowercase();
    match keyword.as_str() {
        "" => return fail(line, "ONBUILD requires at least one argument"),
        "onbuild" => return fail(line, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        "from" | "maintainer" => {
            return fail(
                line,
                format!(
                    "{} isn't allowed as an ONBUILD trigger",
                    word.to_ascii_uppercase()
                ),
            )
        }
        _ => {}
    }
    let (flags, rest) = match keyword.as_str() {
        "run" | "copy" | "add" | "healthcheck" => split_flags(rest, escape),
        _ => (Vec::new(), rest),
    };
    let has_heredoc = match keyword.as_str() {
        "run" if !looks_like_json(rest) => !shell_heredocs(rest).is_empty(),
        "copy" | "add" if !looks_like_json(rest) => parse_words(rest, escape)
            .iter()
            .any(|w| heredoc_word(w, escape).is_some()),
        _ => false,
    };
    if has_heredoc {
        return fail(line, "heredocs are not supported in ONBUILD triggers");
    }
    parse_kind(&keyword, word, &flags, rest, Vec::new(), line, escape)
}

fn split_first_word(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

fn looks_like_json(rest: &str) -> bool {
    rest.starts_with('[') && serde_json::from_str::<Vec<String>>(rest).is_ok()
}

/// A `--name[=value]` flag of FROM, RUN, COPY, ADD, HEALTHCHECK.
type Flag = (String, Option<String>);

/// Splits leading `--flag[=value]` words (quotes removed from them) off `rest`; `--` ends them.
fn split_flags(rest: &str, escape: char) -> (Vec<Flag>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while rest.starts_with("--") {
        let (word, end) = read_flag_word(rest, escape);
        rest = rest[end..].trim_start();
        if word == "--" {
            break;
        }
        let body = word.strip_prefix("--").unwrap_or(&word);
        match body.split_once('=') {
            Some((name, value)) => flags.push((name.to_string(), Some(value.to_string()))),
            None => flags.push((body.to_string(), None)),
        }
    }
    (flags, rest)
}

/// One word up to unquoted whitespace, quotes and escapes removed, and its end offset.
fn read_flag_word(text: &str, escape: char) -> (String, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return (word, i),
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            Some('\'') => word.push(c),
            _ if c == escape => {
                if let Some((_, next)) = chars.next() {
                    word.push(next);
                }
            }
            _ => word.push(c),
        }
    }
    (word, text.len())
}

/// Checks the flags against what the instruction accepts: `values` take `=value`, `bools` may
/// stand alone (or be `=true`/`=false`); anything else is an error.
fn check_flags(
    instruction: &str,
    flags: &[Flag],
    values: &[&str],
    bools: &[&str],
    line: usize,
) -> Result<(), ParseError> {
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in flags {
        if seen.contains(&name.as_str()) {
            return fail(line, format!("duplicate flag specified: --{name}"));
        }
        seen.push(name);
        if values.contains(&name.as_str()) {
            if value.is_none() {
                return fail(line, format!("missing a value on flag: --{name}"));
            }
        } else if bools.contains(&name.as_str()) {
            if let Some(v) = value {
                if !matches!(v.to_ascii_lowercase().as_str(), "true" | "false") {
                    return fail(
                        line,
                        format!("expecting boolean value for flag {name}, not: {v}"),
                    );
                }
            }
        } else {
            return fail(line, format!("unknown flag for {instruction}: --{name}"));
        }
    }
    Ok(())
}

fn flag<'f>(flags: &'f [Flag], name: &str) -> Option<&'f str> {
    flags
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// BuildKit's `parseWords`: whitespace-separated words; quotes and escapes are kept in the words
/// but whitespace inside quotes (or escaped) does not split.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            if c == escape && q != '\'' {
                match chars.next() {
                    Some(next) => {
                        word.push(c);
                        word.push(next);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(c);
            continue;
        }
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if c.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        }
        if c == escape {
            // An escape at the very end is dropped.
            if let Some(next) = chars.next() {
                word.push(c);
                word.push(next);
            }
            continue;
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// A `COPY`/`ADD` word `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` (BuildKit: `^<<(-?)([^<]*)$`).
fn heredoc_word(word: &str, escape: char) -> Option<HeredocSpec> {
    let rest = word.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let quoted = rest.contains(['\'', '"']) || rest.contains(escape);
    let (name, _) = read_flag_word(rest, escape);
    if name.is_empty() {
        return None;
    }
    Some(HeredocSpec {
        name,
        chomp,
        expand: !quoted,
    })
}

/// Finds the heredocs (`<<WORD`, `<< WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`) a shell command
/// opens, skipping quoted text, `<<<` here-strings, `$((…))` arithmetic and `#` comments.
fn shell_heredocs(cmd: &str) -> Vec<HeredocSpec> {
    let c: Vec<char> = cmd.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut word_start = true;
    while i < c.len() {
        let ch = c[i];
        match ch {
            '\\' => {
                i += 2;
                word_start = false;
                continue;
            }
            '\'' => {
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                word_start = false;
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                word_start = false;
            }
            '#' if word_start => break,
            '$' if c.get(i + 1) == Some(&'(') && c.get(i + 2) == Some(&'(') => {
                let mut depth = 0usize;
                i += 1;
                while i < c.len() {
                    match c[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                word_start = false;
            }
            '<' if c.get(i + 1) == Some(&'<') => {
                if c.get(i + 2) == Some(&'<') {
                    // A here-string.
                    i += 3;
                    word_start = true;
                    continue;
                }
                let mut j = i + 2;
                let chomp = c.get(j) == Some(&'-');
                if chomp {
                    j += 1;
                }
                while j < c.len() && (c[j] == ' ' || c[j] == '\t') {
                    j += 1;
                }
                let mut name = String::new();
                let mut quoted = false;
                while j < c.len() {
                    let ch = c[j];
                    if ch.is_whitespace() || ";&|<>()".contains(ch) {
                        break;
                    }
                    match ch {
                        '\'' | '"' => {
                            quoted = true;
                            j += 1;
                            while j < c.len() && c[j] != ch {
                                name.push(c[j]);
                                j += 1;
                            }
                        }
                        '\\' => {
                            quoted = true;
                            j += 1;
                            if let Some(&next) = c.get(j) {
                                name.push(next);
                            }
                        }
                        _ => name.push(ch),
                    }
                    j += 1;
                }
                if !name.is_empty() {
                    out.push(HeredocSpec {
                        name,
                        chomp,
                        expand: !quoted,
                    });
                }
                i = j;
                word_start = false;
                continue;
            }
            c if c.is_whitespace() || ";&|()<>".contains(c) => word_start = true,
            _ => word_start = false,
        }
        i += 1;
    }
    out
}

/// Exec form when `rest` is a JSON array of strings, shell form otherwise (as docker does, so
/// `RUN [ -f x ]` is a shell command). Text starting with `["` that is not valid JSON is an error.
fn parse_command(rest: &str, line: usize) -> Result<Command, ParseError> {
    if rest.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(args) => return Ok(Command::Exec(args)),
            Err(e) if rest.starts_with("[\"") => {
                return fail(line, format!("invalid JSON array {rest}: {e}"))
            }
            Err(_) => {}
        }
    }
    Ok(Command::Shell(rest.to_string()))
}

fn parse_from(flags: &[Flag], rest: &str, line: usize) -> Result<Stage, ParseError> {
    check_flags("FROM", flags, &["platform"], &[], line)?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let name = match words.as_slice() {
        [_] => None,
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return fail(
                    line,
                    format!(
                        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                    ),
                );
            }
            Some(name)
        }
        [_, _, _] => {
            return fail(
                line,
                "FROM expects `FROM image AS name` with three arguments",
            )
        }
        [] => return fail(line, "FROM requires at least one argument"),
        _ => return fail(line, "FROM requires either one or three arguments"),
    };
    Ok(Stage {
        name,
        base: words[0].to_string(),
        platform: flag(flags, "platform").map(str::to_string),
        line,
        instructions: Vec::new(),
    })
}

/// `KEY name=value …` or the legacy `KEY name value…` of ENV and LABEL (values as written).
fn parse_name_values(
    instruction: &str,
    rest: &str,
    line: usize,
    escape: char,
) -> Result<Vec<(String, String)>, ParseError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return fail(
            line,
            format!("{instruction} requires at least one argument"),
        );
    };
    if !first.contains('=') {
        let (name, value) = split_first_word(rest);
        if value.is_empty() {
            return fail(line, format!("{instruction} must have two arguments"));
        }
        return Ok(vec![(name.to_string(), value.to_string())]);
    }
    let mut pairs = Vec::new();
    for word in words {
        let Some((name, value)) = word.split_once('=') else {
            return fail(
                line,
                format!("syntax error - can't find = in {word:?}. Must be of the form: name=value"),
            );
        };
        if name.is_empty() {
            return fail(line, format!("{instruction} names can not be blank"));
        }
        pairs.push((name.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// Checks a Go duration (`30s`, `1m30s`, `1.5h`, `0`).
fn valid_duration(text: &str) -> bool {
    if text == "0" {
        return true;
    }
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !matches!(
            &rest[..unit_len],
            "ns" | "us" | "µs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

fn parse_copy(
    instruction: &str,
    flags: &[Flag],
    rest: &str,
    heredocs: Vec<Heredoc>,
    line: usize,
    escape: char,
) -> Result<CopySpec, ParseError> {
    let values: &[&str] = &["from", "chown", "chmod"];
    let unsupported = ["parents", "exclude", "checksum", "keep-git-dir", "unpack"];
    for (name, _) in flags {
        if unsupported.contains(&name.as_str()) {
            return fail(line, format!("{instruction} --{name} is not supported"));
        }
    }
    check_flags(instruction, flags, values, &["link"], line)?;
    if let Some(chmod) = flag(flags, "chmod") {
        if chmod.is_empty() || !chmod.chars().all(|c| ('0'..='7').contains(&c)) {
            return fail(
                line,
                format!("invalid --chmod={chmod}: expected an octal mode"),
            );
        }
    }
    let mut spec = CopySpec {
        from: flag(flags, "from").map(str::to_string),
        chown: flag(flags, "chown").map(str::to_string),
        chmod: flag(flags, "chmod").map(str::to_string),
        ..Default::default()
    };
    let json = if rest.starts_with('[') {
        serde_json::from_str::<Vec<String>>(rest).ok()
    } else {
        None
    };
    let mut words = match json {
        Some(words) => words,
        None if rest.starts_with("[\"") => {
            return fail(line, format!("invalid JSON array {rest}"));
        }
        None => parse_words(rest, escape),
    };
    if words.len() < 2 {
        return fail(
            line,
            format!("{instruction} requires at least two arguments (sources and a destination)"),
        );
    }
    let dest = words.pop().unwrap_or_default();
    if heredoc_word(&dest, escape).is_some() && !heredocs.is_empty() {
        return fail(
            line,
            format!("{instruction} destination can't be a heredoc"),
        );
    }
    let mut docs = heredocs.into_iter();
    for word in words {
        if heredoc_word(&word, escape).is_some() {
            if let Some(doc) = docs.next() {
                spec.inline.push(InlineFile {
                    name: doc.spec.name.clone(),
                    content: doc.content(),
                    expand: doc.spec.expand,
                });
                continue;
            }
        }
        spec.sources.push(word);
    }
    spec.dest = dest;
    Ok(spec)
}

fn parse_healthcheck(flags: &[Flag], rest: &str, line: usize) -> Result<Healthcheck, ParseError> {
    let (kind, args) = split_first_word(rest);
    if kind.eq_ignore_ascii_case("none") {
        if !args.is_empty() || !flags.is_empty() {
            return fail(line, "HEALTHCHECK NONE takes no arguments");
        }
        return Ok(Healthcheck::None);
    }
    if kind.is_empty() {
        return fail(line, "HEALTHCHECK requires at least one argument");
    }
    if !kind.eq_ignore_ascii_case("cmd") {
        return fail(
            line,
            format!("unknown type {kind:?} in HEALTHCHECK (try CMD)"),
        );
    }
    check_flags(
        "HEALTHCHECK",
        flags,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        &[],
        line,
    )?;
    for name in ["interval", "timeout", "start-period", "start-interval"] {
        if let Some(value) = flag(flags, name) {
            if !valid_duration(value) {
                return fail(line, format!("invalid --{name}={value}: not a duration"));
            }
        }
    }
    let retries = match flag(flags, "retries") {
        Some(v) => match v.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => return fail(line, format!("invalid --retries={v}: not a number")),
        },
        None => None,
    };
    if args.is_empty() {
        return fail(line, "missing command after HEALTHCHECK CMD");
    }
    Ok(Healthcheck::Check {
        test: parse_command(args, line)?,
        interval: flag(flags, "interval").map(str::to_string),
        timeout: flag(flags, "timeout").map(str::to_string),
        start_period: flag(flags, "start-period").map(str::to_string),
        start_interval: flag(flags, "start-interval").map(str::to_string),
        retries,
    })
}

#[allow(clippy::too_many_arguments)]
fn parse_kind(
    keyword: &str,
    word: &str,
    flags: &[Flag],
    rest: &str,
    heredocs: Vec<Heredoc>,
    line: usize,
    escape: char,
) -> Result<Kind, ParseError> {
    const KNOWN: &[&str] = &[
        "arg",
        "env",
        "label",
        "run",
        "copy",
        "add",
        "workdir",
        "user",
        "cmd",
        "entrypoint",
        "expose",
        "volume",
        "healthcheck",
        "shell",
        "stopsignal",
        "onbuild",
        "maintainer",
    ];
    if !KNOWN.contains(&keyword) {
        return fail(line, format!("unknown instruction: {word}"));
    }
    if rest.is_empty() {
        return fail(
            line,
            format!(
                "{} requires at least one argument",
                keyword.to_ascii_uppercase()
            ),
        );
    }
    Ok(match keyword {
        "arg" => {
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return fail(line, "ARG requires at least one argument");
            }
            let mut args = Vec::new();
            for word in words {
                let (name, default) = match word.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (word, None),
                };
                if name.is_empty() {
                    return fail(line, "ARG names can not be blank");
                }
                args.push(ArgDecl { name, default });
            }
            Kind::Arg(args)
        }
        "env" => Kind::Env(parse_name_values("ENV", rest, line, escape)?),
        "label" => Kind::Label(parse_name_values("LABEL", rest, line, escape)?),
        "run" => {
            for (name, _) in flags {
                if name == "mount" || name == "security" {
                    return fail(line, format!("RUN --{name} is not supported"));
                }
            }
            check_flags("RUN", flags, &["network"], &[], line)?;
            let network = flag(flags, "network").map(str::to_string);
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return fail(line, format!("unsupported network mode {n:?}"));
                }
            }
            let command = if heredocs.is_empty() {
                if rest.is_empty() {
                    return fail(line, "RUN requires at least one argument");
                }
                parse_command(rest, line)?
            } else if heredocs.len() == 1
                && parse_words(rest, '\\').len() == 1
                && heredoc_word(rest, '\\').is_some_and(|s| s == heredocs[0].spec)
            {
                // `RUN <<EOF`: the body is the script.
                Command::Shell(heredocs[0].content())
            } else {
                // A command whose heredocs follow it: the shell reads them itself.
                let mut script = rest.to_string();
                for doc in &heredocs {
                    script.push('\n');
                    for l in &doc.body {
                        script.push_str(l);
                        script.push('\n');
                    }
                    script.push_str(&doc.spec.name);
                }
                Command::Shell(script)
            };
            Kind::Run { command, network }
        }
        "copy" => Kind::Copy(parse_copy("COPY", flags, rest, heredocs, line, escape)?),
        "add" => Kind::Add(parse_copy("ADD", flags, rest, heredocs, line, escape)?),
        "workdir" => Kind::Workdir(rest.to_string()),
        "user" => Kind::User(rest.to_string()),
        "cmd" => Kind::Cmd(parse_command(rest, line)?),
        "entrypoint" => Kind::Entrypoint(parse_command(rest, line)?),
        "expose" => Kind::Expose(parse_words(rest, escape)),
        "volume" => {
            let list = match parse_command(rest, line)? {
                Command::Exec(list) => list,
                Command::Shell(text) => parse_words(&text, escape),
            };
            if list.is_empty() || list.iter().any(|v| v.trim().is_empty()) {
                return fail(line, "VOLUME specified can not be an empty string");
            }
            Kind::Volume(list)
        }
        "healthcheck" => Kind::Healthcheck(parse_healthcheck(flags, rest, line)?),
        "shell" => match serde_json::from_str::<Vec<String>>(rest) {
            Ok(list) if !list.is_empty() => Kind::Shell(list),
            Ok(_) => return fail(line, "SHELL requires at least one argument"),
            Err(e) => {
                return fail(
                    line,
                    format!("SHELL requires the arguments to be in JSON form: {e}"),
                )
            }
        },
        "stopsignal" => Kind::StopSignal(rest.to_string()),
        "onbuild" => {
            parse_trigger_at(rest, line, escape)?;
            Kind::Onbuild(rest.to_string())
        }
        "maintainer" => Kind::Maintainer(rest.to_string()),
        _ => return fail(line, format!("unknown instruction: {word}")),
    })
}

// ---------------------------------------------------------------------------------------------
// Variable substitution
// ---------------------------------------------------------------------------------------------

/// Docker's substitution of one word with the default escape character `\`. See
/// [`expand_with_escape`].
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    expand_with_escape(word, '\\', lookup)
}

/// Docker's `ProcessWord`: `$V`, `${V}`, `${V:-default}`, `${V-default}`, `${V:+alt}`,
/// `${V+alt}`, `${V:?message}`, `${V?message}` (defaults may nest), `'single'` quotes taken
/// literally, `"double"` quotes with substitution, the escape character escaping the next
/// character; quotes and escapes are removed. Unset variables expand to nothing. `escape` is the
/// Dockerfile's escape character ([`Dockerfile::escape`]).
pub fn expand_with_escape(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(word, escape, lookup, true);
    let mut out = Out::single();
    lexer.process(None, &mut out)?;
    Ok(out.current)
}

/// Docker's `ProcessWords`: substitutes and splits into words at unquoted whitespace, including
/// whitespace produced by an unquoted substitution (`EXPOSE $PORTS`).
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    let mut lexer = Lexer::new(text, escape, lookup, true);
    let mut out = Out::split();
    lexer.process(None, &mut out)?;
    out.finish_word();
    Ok(out.words)
}

/// Substitutes `$V`/`${…}` in a heredoc body (`COPY <<EOF` with an unquoted name): quotes are
/// left alone, `\$` gives a literal `$`, other escapes stay as written.
pub fn expand_heredoc(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(content, '\\', lookup, false);
    let mut out = Out::single();
    lexer.process(None, &mut out)?;
    Ok(out.current)
}

/// Where expanded text goes: one word, or words split at unquoted whitespace.
struct Out {
    split: bool,
    words: Vec<String>,
    current: String,
    /// The current word exists even if empty (it had quotes).
    has_word: bool,
}

impl Out {
    fn single() -> Self {
        Out {
            split: false,
            words: Vec::new(),
            current: String::new(),
            has_word: false,
        }
    }

    fn split() -> Self {
        Out {
            split: true,
            ..Out::single()
        }
    }

    fn push(&mut self, c: char) {
        self.current.push(c);
        self.has_word = true;
    }

    fn push_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.has_word = true;
    }

    fn quoted(&mut self) {
        self.has_word = true;
    }

    /// Unquoted substitution result: splits at whitespace when splitting.
    fn push_unquoted(&mut self, s: &str) {
        if !self.split {
            self.current.push_str(s);
            return;
        }
        for c in s.chars() {
            if c.is_whitespace() {
                self.finish_word();
            } else {
                self.push(c);
            }
        }
    }

    fn finish_word(&mut self) {
        if self.has_word || !self.current.is_empty() {
            self.words.push(std::mem::take(&mut self.current));
        }
        self.has_word = false;
    }
}

struct Lexer<'l> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'l dyn Fn(&str) -> Option<String>,
    /// Quotes are processed (words); off for heredoc bodies.
    quotes: bool,
}

impl<'l> Lexer<'l> {
    fn new(
        text: &str,
        escape: char,
        lookup: &'l dyn Fn(&str) -> Option<String>,
        quotes: bool,
    ) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            lookup,
            quotes,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Processes up to `stop` (consumed; an error when missing) or the end.
    fn process(&mut self, stop: Option<char>, out: &mut Out) -> Result<(), ExpandError> {
        loop {
            let Some(c) = self.peek() else {
                if stop.is_some() {
                    return expand_fail("syntax error: missing '}'");
                }
                return Ok(());
            };
            if Some(c) == stop {
                self.pos += 1;
                return Ok(());
            }
            if self.quotes && c == '\'' {
                let s = self.single_quoted()?;
                out.quoted();
                out.push_str(&s);
            } else if self.quotes && c == '"' {
                let s = self.double_quoted()?;
                out.quoted();
                out.push_str(&s);
            } else if c == '$' {
                let value = self.dollar()?;
                out.push_unquoted(&value);
            } else if c == self.escape {
                self.pos += 1;
                match self.next() {
                    None => {
                        if !self.quotes {
                            out.push(c);
                        }
                        return match stop {
                            Some(_) => expand_fail("syntax error: missing '}'"),
                            None => Ok(()),
                        };
                    }
                    Some(next) => {
                        // Heredoc bodies keep escapes as written; the escaped `$` is not
                        // substituted either way.
                        if !self.quotes {
                            out.push(c);
                        }
                        out.push(next);
                    }
                }
            } else if out.split && stop.is_none() && c.is_whitespace() {
                self.pos += 1;
                out.finish_word();
            } else {
                self.pos += 1;
                out.push(c);
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return expand_fail(
                        "unexpected end of statement while looking for matching single-quote",
                    )
                }
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return expand_fail(
                        "unexpected end of statement while looking for matching double-quote",
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                s.push(next);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    s.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            Some(c) if "@*#?-$!".contains(c) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// The word of `${V:-word}` up to the closing brace, itself expanded.
    fn brace_word(&mut self) -> Result<String, ExpandError> {
        let mut out = Out::single();
        self.process(Some('}'), &mut out)?;
        Ok(out.current)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return expand_fail("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return expand_fail("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.name();
        if name.is_empty() {
            return expand_fail("syntax error: bad substitution");
        }
        let value = (self.lookup)(&name);
        match self.next() {
            None => expand_fail("syntax error: missing '}'"),
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                let word = self.brace_word()?;
                let value = value.unwrap_or_default();
                match modifier {
                    Some('-') => Ok(if value.is_empty() { word } else { value }),
                    Some('+') => Ok(if value.is_empty() { value } else { word }),
                    Some('?') if value.is_empty() => Err(unset_error(&name, &word)),
                    Some('?') => Ok(value),
                    Some(m) => expand_fail(format!("unsupported modifier ({m}) in substitution")),
                    None => expand_fail("syntax error: missing '}'"),
                }
            }
            Some('-') => {
                let word = self.brace_word()?;
                Ok(value.unwrap_or(word))
            }
            Some('+') => {
                let word = self.brace_word()?;
                Ok(if value.is_some() { word } else { String::new() })
            }
            Some('?') => {
                let word = self.brace_word()?;
                value.ok_or_else(|| unset_error(&name, &word))
            }
            Some(m) => expand_fail(format!("unsupported modifier ({m}) in substitution")),
        }
    }
}

fn unset_error(name: &str, word: &str) -> ExpandError {
    let message = if word.is_empty() {
        "is not allowed to be unset"
    } else {
        word
    };
    ExpandError {
        message: format!("{name}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ok(text: &str) -> Dockerfile {
        match parse(text) {
            Ok(df) => df,
            Err(e) => panic!("{e}\n--- input:\n{text}"),
        }
    }

    fn err(text: &str) -> ParseError {
        match parse(text) {
            Ok(df) => panic!("expected an error, got {df:#?}"),
            Err(e) => e,
        }
    }

    /// The kinds of the first stage's instructions.
    fn kinds(text: &str) -> Vec<Kind> {
        ok(text).stages[0]
            .instructions
            .iter()
            .map(|i| i.kind.clone())
            .collect()
    }

    fn one(text: &str) -> Kind {
        let k = kinds(&format!("FROM scratch\n{text}"));
        assert_eq!(k.len(), 1, "{k:?}");
        k.into_iter().next().unwrap()
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    fn shell(v: &str) -> Command {
        Command::Shell(v.to_string())
    }

    fn exec(v: &[&str]) -> Command {
        Command::Exec(v.iter().map(|x| x.to_string()).collect())
    }

    fn run(cmd: Command) -> Kind {
        Kind::Run {
            command: cmd,
            network: None,
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (s(a), s(b))).collect()
    }

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter().map(|(a, b)| (s(a), s(b))).collect()
    }

    fn exp(word: &str, vars: &[(&str, &str)]) -> String {
        let vars = env(vars);
        expand(word, &|n| vars.get(n).cloned()).unwrap()
    }

    fn exp_err(word: &str, vars: &[(&str, &str)]) -> String {
        let vars = env(vars);
        expand(word, &|n| vars.get(n).cloned())
            .unwrap_err()
            .to_string()
    }

    // --- FROM and stages ---

    #[test]
    fn from_forms() {
        let df = ok("FROM alpine:3.20\nFROM --platform=linux/arm64 golang:1.22 AS Build\nfrom scratch as final\n");
        assert_eq!(df.escape, '\\');
        assert_eq!(df.stages.len(), 3);
        assert_eq!(df.stages[0].base, "alpine:3.20");
        assert_eq!(df.stages[0].name, None);
        assert_eq!(df.stages[0].platform, None);
        assert_eq!(df.stages[0].line, 1);
        assert_eq!(df.stages[1].base, "golang:1.22");
        assert_eq!(df.stages[1].name.as_deref(), Some("build"));
        assert_eq!(df.stages[1].platform.as_deref(), Some("linux/arm64"));
        assert_eq!(df.stages[1].line, 2);
        assert_eq!(df.stages[2].base, "scratch");
        assert_eq!(df.stages[2].name.as_deref(), Some("final"));
    }

    #[test]
    fn from_platform_with_arg() {
        let df = ok("FROM --platform=$BUILDPLATFORM ${IMAGE:-alpine} AS b\n");
        assert_eq!(df.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(df.stages[0].base, "${IMAGE:-alpine}");
    }

    #[test]
    fn from_errors() {
        assert_eq!(
            err("FROM\n").to_string(),
            "Dockerfile:1: FROM requires at least one argument"
        );
        assert_eq!(err("FROM a b\n").line, 1);
        assert_eq!(err("\nFROM a AS b c\n").line, 2);
        assert!(err("FROM a IS b\n").message.contains("three arguments"));
        assert!(err("FROM a AS 1x\n").message.contains("invalid name"));
        assert!(err("FROM --foo=bar a\n").message.contains("unknown flag"));
        assert_eq!(err("FROM a AS x\nFROM b AS X\n").line, 2);
    }

    #[test]
    fn missing_from() {
        assert_eq!(
            err("").to_string(),
            "Dockerfile:1: the Dockerfile has no instructions"
        );
        assert_eq!(err("# only a comment\n\n").line, 1);
        let e = err("\nARG A=1\n");
        assert_eq!(e.to_string(), "Dockerfile:2: no FROM instruction");
        let e = err("ARG A=1\n\nRUN echo hi\nFROM x\n");
        assert_eq!(
            e.to_string(),
            "Dockerfile:3: RUN before the first FROM (only ARG may come before FROM)"
        );
    }

    #[test]
    fn multi_stage() {
        let text = "\
# syntax=docker/dockerfile:1.7
ARG GO_VERSION=1.22
ARG BASE
FROM golang:${GO_VERSION} AS build
ARG GO_VERSION
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN --network=none go build -o /out/app ./cmd/app

FROM ${BASE:-alpine} AS runtime
COPY --from=build --chown=app:app --chmod=0755 /out/app /usr/local/bin/app
USER app
EXPOSE 8080/tcp 9090
ENTRYPOINT [\"/usr/local/bin/app\"]
CMD [\"serve\"]
";
        let df = ok(text);
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1.7"));
        assert_eq!(
            df.global_args,
            vec![
                ArgDecl {
                    name: s("GO_VERSION"),
                    default: Some(s("1.22"))
                },
                ArgDecl {
                    name: s("BASE"),
                    default: None
                }
            ]
        );
        assert_eq!(df.stages.len(), 2);
        let build = &df.stages[0];
        assert_eq!(build.name.as_deref(), Some("build"));
        assert_eq!(build.line, 4);
        assert_eq!(build.instructions.len(), 6);
        assert_eq!(
            build.instructions[0].kind,
            Kind::Arg(vec![ArgDecl {
                name: s("GO_VERSION"),
                default: None
            }])
        );
        assert_eq!(build.instructions[1].kind, Kind::Workdir(s("/src")));
        assert_eq!(
            build.instructions[2].kind,
            Kind::Copy(CopySpec {
                sources: vec![s("go.mod"), s("go.sum")],
                dest: s("./"),
                ..Default::default()
            })
        );
        assert_eq!(build.instructions[5].line, 10);
        assert_eq!(
            build.instructions[5].kind,
            Kind::Run {
                command: shell("go build -o /out/app ./cmd/app"),
                network: Some(s("none"))
            }
        );
        assert_eq!(
            build.instructions[5].original,
            "RUN --network=none go build -o /out/app ./cmd/app"
        );
        let rt = &df.stages[1];
        assert_eq!(rt.base, "${BASE:-alpine}");
        assert_eq!(rt.line, 12);
        assert_eq!(
            rt.instructions[0].kind,
            Kind::Copy(CopySpec {
                sources: vec![s("/out/app")],
                dest: s("/usr/local/bin/app"),
                from: Some(s("build")),
                chown: Some(s("app:app")),
                chmod: Some(s("0755")),
                ..Default::default()
            })
        );
        assert_eq!(rt.instructions[1].kind, Kind::User(s("app")));
        assert_eq!(
            rt.instructions[2].kind,
            Kind::Expose(vec![s("8080/tcp"), s("9090")])
        );
        assert_eq!(
            rt.instructions[3].kind,
            Kind::Entrypoint(exec(&["/usr/local/bin/app"]))
        );
        assert_eq!(rt.instructions[4].kind, Kind::Cmd(exec(&["serve"])));
        assert_eq!(rt.instructions[4].line, 17);
    }

    // --- Lines, comments, continuations, directives ---

    #[test]
    fn case_insensitive_and_comments() {
        let k = kinds(
            "from a\n# comment\n   # indented comment\nrun echo hi # not a comment\nWorkDir /x\n",
        );
        assert_eq!(
            k,
            vec![
                run(shell("echo hi # not a comment")),
                Kind::Workdir(s("/x"))
            ]
        );
    }

    #[test]
    fn continuation_lines() {
        let text = "FROM a\nRUN apt-get update && \\\n    apt-get install -y \\\n# a comment inside\n\n      curl \\  \n      git\nUSER me\n";
        let df = ok(text);
        let i = &df.stages[0].instructions;
        assert_eq!(
            i[0].kind,
            run(shell(
                "apt-get update &&     apt-get install -y       curl       git"
            ))
        );
        assert_eq!(i[0].line, 2);
        assert_eq!(
            i[0].original,
            "RUN apt-get update &&     apt-get install -y       curl       git"
        );
        assert_eq!(i[1].line, 8);
        assert_eq!(i[1].kind, Kind::User(s("me")));
    }

    #[test]
    fn continuation_at_end_of_file() {
        assert_eq!(kinds("FROM a\nRUN echo \\")[0], run(shell("echo")));
    }

    #[test]
    fn escape_directive() {
        let text = "# escape=`\n\nFROM mcr.microsoft.com/windows\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n    /w\n";
        let df = ok(text);
        assert_eq!(df.escape, '`');
        let i = &df.stages[0].instructions;
        assert_eq!(
            i[0].kind,
            Kind::Copy(CopySpec {
                sources: vec![s("testfile.txt")],
                dest: s("c:\\"),
                ..Default::default()
            })
        );
        assert_eq!(i[1].kind, run(shell("dir c:\\     /w")));
    }

    #[test]
    fn directives_only_at_top() {
        // After a comment or blank line, `# escape=` is a comment.
        let df = ok("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
        assert_eq!(df.escape, '\\');
        assert_eq!(df.stages[0].instructions[0].kind, run(shell("a  b")));
        let df = ok("\n# escape=`\nFROM a\n");
        assert_eq!(df.escape, '\\');
        // Unknown directives end the directive section.
        let df = ok("# foo=bar\n# escape=`\nFROM a\n");
        assert_eq!(df.escape, '\\');
        let df = ok("#Syntax = docker/dockerfile:1\n#  ESCAPE = `\nFROM a\n");
        assert_eq!(df.escape, '`');
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(err("# escape=`\n# escape=\\\nFROM a\n").line, 2);
        assert!(err("# escape=x\nFROM a\n")
            .message
            .contains("invalid escape token"));
    }

    #[test]
    fn crlf_and_bom() {
        let df = ok("\u{feff}# escape=`\r\nFROM a\r\nRUN echo a `\r\n  b\r\nENV A=1 \r\n");
        assert_eq!(df.escape, '`');
        let i = &df.stages[0].instructions;
        assert_eq!(i[0].kind, run(shell("echo a   b")));
        assert_eq!(i[1].kind, Kind::Env(pairs(&[("A", "1")])));
        assert_eq!(i[1].line, 5);
    }

    #[test]
    fn unknown_instruction() {
        let e = err("FROM a\nRUN x\nFOO bar\n");
        assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction: FOO");
        assert_eq!(
            err("frob\n").to_string(),
            "Dockerfile:1: unknown instruction: frob"
        );
    }

    // --- ARG / ENV / LABEL ---

    #[test]
    fn arg_forms() {
        assert_eq!(
            one("ARG A B=2 C=\"x y\" D="),
            Kind::Arg(vec![
                ArgDecl {
                    name: s("A"),
                    default: None
                },
                ArgDecl {
                    name: s("B"),
                    default: Some(s("2"))
                },
                ArgDecl {
                    name: s("C"),
                    default: Some(s("\"x y\""))
                },
                ArgDecl {
                    name: s("D"),
                    default: Some(s(""))
                },
            ])
        );
        assert!(err("FROM a\nARG\n").message.contains("at least one"));
        assert_eq!(err("FROM a\nARG =x\n").line, 2);
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            one("ENV k=v k2=\"v 2\" k3='a b'\\ c k4=a\\ b"),
            Kind::Env(pairs(&[
                ("k", "v"),
                ("k2", "\"v 2\""),
                ("k3", "'a b'\\ c"),
                ("k4", "a\\ b")
            ]))
        );
        // Legacy: one name, the rest of the line is the value.
        assert_eq!(
            one("ENV PATH /usr/local/bin:$PATH and more"),
            Kind::Env(pairs(&[("PATH", "/usr/local/bin:$PATH and more")]))
        );
        assert_eq!(
            one("env A=1 \\\n    B=2"),
            Kind::Env(pairs(&[("A", "1"), ("B", "2")]))
        );
        // After substitution (done by the executor) quotes are gone.
        if let Kind::Env(vars) = one("ENV k2=\"v 2\" k3='$HOME' k4=a\\ b") {
            let got: Vec<String> = vars
                .iter()
                .map(|(_, v)| exp(v, &[("HOME", "/root")]))
                .collect();
            assert_eq!(got, vec![s("v 2"), s("$HOME"), s("a b")]);
        } else {
            panic!()
        }
    }

    #[test]
    fn env_errors() {
        assert_eq!(
            err("FROM a\nENV\n").to_string(),
            "Dockerfile:2: ENV requires at least one argument"
        );
        assert_eq!(
            err("FROM a\nENV A\n").to_string(),
            "Dockerfile:2: ENV must have two arguments"
        );
        let e = err("FROM a\n\nENV A=1 B\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("can't find ="), "{e}");
        assert_eq!(err("FROM a\nENV =1\n").line, 2);
    }

    #[test]
    fn label_forms() {
        assert_eq!(
            one("LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 description=\"multi\\\n line\""),
            Kind::Label(pairs(&[
                ("\"com.example.vendor\"", "\"ACME Inc\""),
                ("version", "1.0"),
                ("description", "\"multi line\"")
            ]))
        );
        assert_eq!(
            one("LABEL maintainer me@example.com"),
            Kind::Label(pairs(&[("maintainer", "me@example.com")]))
        );
    }

    // --- RUN / CMD / ENTRYPOINT / SHELL ---

    #[test]
    fn run_forms() {
        assert_eq!(
            one("RUN echo \"hi there\""),
            run(shell("echo \"hi there\""))
        );
        assert_eq!(one("RUN [\"echo\", \"hi\"]"), run(exec(&["echo", "hi"])));
        assert_eq!(
            one("RUN [ -f /etc/passwd ] && echo y"),
            run(shell("[ -f /etc/passwd ] && echo y"))
        );
        assert_eq!(one("RUN [ \"$A\" = b ]"), run(shell("[ \"$A\" = b ]")));
        assert_eq!(
            one("RUN --network=host curl x"),
            Kind::Run {
                command: shell("curl x"),
                network: Some(s("host"))
            }
        );
        assert_eq!(
            one("RUN --network=none [\"true\"]"),
            Kind::Run {
                command: exec(&["true"]),
                network: Some(s("none"))
            }
        );
        assert_eq!(one("RUN -- --weird"), run(shell("--weird")));
    }

    #[test]
    fn run_errors() {
        let e = err("FROM a\nRUN [\"echo\", \"hi\"\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("invalid JSON"), "{e}");
        assert!(err("FROM a\nRUN [\"echo\", 1]\n")
            .message
            .contains("invalid JSON"));
        assert!(err("FROM a\nRUN --mount=type=cache,target=/x true\n")
            .message
            .contains("not supported"));
        assert!(err("FROM a\nRUN --network=bridge0 true\n")
            .message
            .contains("network"));
        assert!(err("FROM a\nRUN --frob true\n")
            .message
            .contains("unknown flag"));
        assert_eq!(
            err("FROM a\nRUN\n").to_string(),
            "Dockerfile:2: RUN requires at least one argument"
        );
        assert_eq!(err("FROM a\nRUN --network=none\n").line, 2);
    }

    #[test]
    fn cmd_entrypoint_shell() {
        assert_eq!(
            one("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
            Kind::Cmd(exec(&["nginx", "-g", "daemon off;"]))
        );
        assert_eq!(
            one("CMD nginx -g 'daemon off;'"),
            Kind::Cmd(shell("nginx -g 'daemon off;'"))
        );
        assert_eq!(one("CMD []"), Kind::Cmd(exec(&[])));
        assert_eq!(
            one("ENTRYPOINT exec top -b"),
            Kind::Entrypoint(shell("exec top -b"))
        );
        assert_eq!(
            one("ENTRYPOINT [\"/bin/tini\", \"--\"]"),
            Kind::Entrypoint(exec(&["/bin/tini", "--"]))
        );
        assert_eq!(
            one("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]"),
            Kind::Shell(vec![s("/bin/bash"), s("-o"), s("pipefail"), s("-c")])
        );
        assert!(err("FROM a\nSHELL /bin/bash -c\n").message.contains("JSON"));
        assert!(err("FROM a\nSHELL []\n").message.contains("at least one"));
        assert!(err("FROM a\nCMD [\"a\",]\n")
            .message
            .contains("invalid JSON"));
    }

    // --- COPY / ADD ---

    #[test]
    fn copy_forms() {
        assert_eq!(
            one("COPY a b c /dest/"),
            Kind::Copy(CopySpec {
                sources: vec![s("a"), s("b"), s("c")],
                dest: s("/dest/"),
                ..Default::default()
            })
        );
        assert_eq!(
            one("COPY [\"my file.txt\", \"other\", \"/my dir/\"]"),
            Kind::Copy(CopySpec {
                sources: vec![s("my file.txt"), s("other")],
                dest: s("/my dir/"),
                ..Default::default()
            })
        );
        assert_eq!(
            one("COPY --from=0 --chown=1000:1000 --link [\"a\", \"/b\"]"),
            Kind::Copy(CopySpec {
                sources: vec![s("a")],
                dest: s("/b"),
                from: Some(s("0")),
                chown: Some(s("1000:1000")),
                ..Default::default()
            })
        );
        assert_eq!(
            one("COPY \"a b\" $DEST"),
            Kind::Copy(CopySpec {
                sources: vec![s("\"a b\"")],
                dest: s("$DEST"),
                ..Default::default()
            })
        );
        assert_eq!(
            one("ADD --chmod=644 https://example.com/x.tgz /opt/"),
            Kind::Add(CopySpec {
                sources: vec![s("https://example.com/x.tgz")],
                dest: s("/opt/"),
                chmod: Some(s("644")),
                ..Default::default()
            })
        );
    }

    #[test]
    fn copy_errors() {
        assert!(err("FROM a\nCOPY a\n").message.contains("at least two"));
        assert!(err("FROM a\nCOPY\n").message.contains("at least one"));
        assert!(err("FROM a\nCOPY --chmod=u+x a b\n")
            .message
            .contains("octal"));
        assert!(err("FROM a\nCOPY --chown a b\n")
            .message
            .contains("missing a value"));
        assert!(err("FROM a\nCOPY --from=x --from=y a b\n")
            .message
            .contains("duplicate"));
        assert!(err("FROM a\nADD --checksum=sha256:0 a b\n")
            .message
            .contains("not supported"));
        assert!(err("FROM a\nCOPY --link=maybe a b\n")
            .message
            .contains("boolean"));
    }

    // --- WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, MAINTAINER ---

    #[test]
    fn simple_instructions() {
        assert_eq!(one("WORKDIR \"/my app\""), Kind::Workdir(s("\"/my app\"")));
        assert_eq!(exp("\"/my app\"", &[]), "/my app");
        assert_eq!(one("WORKDIR $HOME/src"), Kind::Workdir(s("$HOME/src")));
        assert_eq!(one("USER 1000:1000"), Kind::User(s("1000:1000")));
        assert_eq!(
            one("EXPOSE 80 443/tcp 53/udp"),
            Kind::Expose(vec![s("80"), s("443/tcp"), s("53/udp")])
        );
        assert_eq!(
            one("VOLUME [\"/data\", \"/var/log\"]"),
            Kind::Volume(vec![s("/data"), s("/var/log")])
        );
        assert_eq!(
            one("VOLUME /data /cache"),
            Kind::Volume(vec![s("/data"), s("/cache")])
        );
        assert!(err("FROM a\nVOLUME [\"\"]\n").message.contains("empty"));
        assert_eq!(one("STOPSIGNAL SIGTERM"), Kind::StopSignal(s("SIGTERM")));
        assert_eq!(
            one("MAINTAINER Jane Doe <jane@example.com>"),
            Kind::Maintainer(s("Jane Doe <jane@example.com>"))
        );
        assert_eq!(err("FROM a\nWORKDIR\n").line, 2);
        assert_eq!(err("FROM a\nUSER   \n").line, 2);
    }

    // --- HEALTHCHECK ---

    #[test]
    fn healthcheck() {
        assert_eq!(
            one("HEALTHCHECK NONE"),
            Kind::Healthcheck(Healthcheck::None)
        );
        assert_eq!(
            one("healthcheck none"),
            Kind::Healthcheck(Healthcheck::None)
        );
        assert_eq!(
            one("HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 \\\n  CMD curl -f http://localhost/ || exit 1"),
            Kind::Healthcheck(Healthcheck::Check {
                test: shell("curl -f http://localhost/ || exit 1"),
                interval: Some(s("5m")),
                timeout: Some(s("3s")),
                start_period: Some(s("1m30s")),
                start_interval: Some(s("500ms")),
                retries: Some(3),
            })
        );
        assert_eq!(
            one("HEALTHCHECK cmd [\"/bin/check\", \"-q\"]"),
            Kind::Healthcheck(Healthcheck::Check {
                test: exec(&["/bin/check", "-q"]),
                interval: None,
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: None,
            })
        );
        assert!(err("FROM a\nHEALTHCHECK --retries=x CMD true\n")
            .message
            .contains("retries"));
        assert!(err("FROM a\nHEALTHCHECK --interval=5 CMD true\n")
            .message
            .contains("interval"));
        assert!(err("FROM a\nHEALTHCHECK --timeout=1x CMD true\n")
            .message
            .contains("timeout"));
        assert!(err("FROM a\nHEALTHCHECK NONE extra\n")
            .message
            .contains("no arguments"));
        assert!(err("FROM a\nHEALTHCHECK --retries=1 NONE\n")
            .message
            .contains("no arguments"));
        assert!(err("FROM a\nHEALTHCHECK RUN true\n")
            .message
            .contains("try CMD"));
        assert!(err("FROM a\nHEALTHCHECK CMD\n")
            .message
            .contains("missing command"));
        assert!(err("FROM a\nHEALTHCHECK\n")
            .message
            .contains("at least one"));
        assert!(err("FROM a\nHEALTHCHECK --foo=1 CMD true\n")
            .message
            .contains("unknown flag"));
    }

    #[test]
    fn durations() {
        for d in [
            "0",
            "30s",
            "1m30s",
            "1.5h",
            "100ms",
            "10us",
            "3ns",
            "1h2m3s4ms",
        ] {
            assert!(valid_duration(d), "{d}");
        }
        for d in ["", "5", "s", "1x", "1.2.3s", ".s", "-1s"] {
            assert!(!valid_duration(d), "{d}");
        }
    }

    // --- ONBUILD ---

    #[test]
    fn onbuild() {
        assert_eq!(one("ONBUILD RUN echo hi"), Kind::Onbuild(s("RUN echo hi")));
        assert_eq!(one("ONBUILD copy . /app"), Kind::Onbuild(s("copy . /app")));
        assert!(err("FROM a\nONBUILD ONBUILD RUN x\n")
            .message
            .contains("isn't allowed"));
        assert!(err("FROM a\nONBUILD FROM x\n")
            .message
            .contains("isn't allowed"));
        assert!(err("FROM a\nONBUILD MAINTAINER x\n")
            .message
            .contains("isn't allowed"));
        assert_eq!(
            err("FROM a\nONBUILD FROB x\n").to_string(),
            "Dockerfile:2: unknown instruction: FROB"
        );
        assert_eq!(parse_trigger("RUN echo hi").unwrap(), run(shell("echo hi")));
        assert_eq!(
            parse_trigger("ADD . /app/src").unwrap(),
            Kind::Add(CopySpec {
                sources: vec![s(".")],
                dest: s("/app/src"),
                ..Default::default()
            })
        );
        assert!(parse_trigger("RUN <<EOF").is_err());
    }

    // --- Heredocs ---

    #[test]
    fn heredoc_in_shell_command() {
        let text = "FROM debian\nRUN cp a b && cat << _EOF_ >> /etc/apt/sources.list\ndeb http://deb.debian.org/debian bookworm contrib\n_EOF_\nRUN apt-get update\n";
        let df = ok(text);
        let i = &df.stages[0].instructions;
        assert_eq!(i.len(), 2);
        assert_eq!(
            i[0].kind,
            run(shell("cp a b && cat << _EOF_ >> /etc/apt/sources.list\ndeb http://deb.debian.org/debian bookworm contrib\n_EOF_"))
        );
        assert_eq!(
            i[0].original,
            "RUN cp a b && cat << _EOF_ >> /etc/apt/sources.list\ndeb http://deb.debian.org/debian bookworm contrib\n_EOF_"
        );
        assert_eq!(i[0].line, 2);
        assert_eq!(i[1].line, 5);
        assert_eq!(i[1].kind, run(shell("apt-get update")));
    }

    #[test]
    fn heredoc_script() {
        let text = "FROM a\nRUN <<EOF\nset -e\n\n# not a Dockerfile comment\napt-get update\nEOF\nUSER x\n";
        let df = ok(text);
        let i = &df.stages[0].instructions;
        assert_eq!(
            i[0].kind,
            run(shell(
                "set -e\n\n# not a Dockerfile comment\napt-get update\n"
            ))
        );
        assert_eq!(
            i[0].original,
            "RUN <<EOF\nset -e\n\n# not a Dockerfile comment\napt-get update\nEOF"
        );
        assert_eq!(i[1].kind, Kind::User(s("x")));
        assert_eq!(i[1].line, 8);
    }

    #[test]
    fn heredoc_chomp_and_quotes() {
        assert_eq!(
            kinds("FROM a\nRUN <<-EOF\n\techo a\n\t\techo b\n\tEOF\n")[0],
            run(shell("echo a\necho b\n"))
        );
        assert_eq!(
            kinds("FROM a\nRUN <<\"EOF\"\necho $HOME\nEOF\n")[0],
            run(shell("echo $HOME\n"))
        );
        assert_eq!(
            kinds("FROM a\nRUN <<'EOF'\necho $HOME\nEOF\n")[0],
            run(shell("echo $HOME\n"))
        );
        // Without `-`, a tab-indented terminator does not end the heredoc.
        assert!(err("FROM a\nRUN <<EOF\necho\n\tEOF\n")
            .message
            .contains("unterminated"));
    }

    #[test]
    fn heredoc_after_flags() {
        let text = "FROM a\nRUN --network=none <<EOF\ntrue\nEOF\n";
        assert_eq!(
            kinds(text)[0],
            Kind::Run {
                command: shell("true\n"),
                network: Some(s("none"))
            }
        );
    }

    #[test]
    fn heredoc_with_interpreter() {
        let text = "FROM python\nRUN <<EOT python3\nprint('hi')\nEOT\n";
        assert_eq!(
            kinds(text)[0],
            run(shell("<<EOT python3\nprint('hi')\nEOT"))
        );
        let text = "FROM a\nRUN python3 <<-'PY' && echo done\n\tprint(1)\n\tPY\n";
        assert_eq!(
            kinds(text)[0],
            run(shell("python3 <<-'PY' && echo done\n\tprint(1)\nPY"))
        );
    }

    #[test]
    fn heredoc_several() {
        let text = "FROM a\nRUN cat <<A > /a && cat <<-B > /b\none\nA\n\ttwo\n\tB\nCMD x\n";
        let i = &ok(text).stages[0].instructions;
        assert_eq!(
            i[0].kind,
            run(shell("cat <<A > /a && cat <<-B > /b\none\nA\n\ttwo\nB"))
        );
        assert_eq!(
            i[0].original,
            "RUN cat <<A > /a && cat <<-B > /b\none\nA\n\ttwo\n\tB"
        );
        assert_eq!(i[1].line, 7);
    }

    #[test]
    fn heredoc_after_continuation() {
        let text = "FROM a\nRUN set -e; \\\n  cat >/x <<EOF\nbody \\\nEOF\n";
        assert_eq!(
            kinds(text)[0],
            run(shell("set -e;   cat >/x <<EOF\nbody \\\nEOF"))
        );
    }

    #[test]
    fn not_heredocs() {
        assert_eq!(
            one("RUN echo \"<<EOF\" '<<X'"),
            run(shell("echo \"<<EOF\" '<<X'"))
        );
        assert_eq!(
            one("RUN echo $((1 << 2)) $(( 3<<4 ))"),
            run(shell("echo $((1 << 2)) $(( 3<<4 ))"))
        );
        assert_eq!(one("RUN cat <<< hello"), run(shell("cat <<< hello")));
        assert_eq!(one("RUN echo \\<<EOF"), run(shell("echo \\<<EOF")));
        assert_eq!(one("RUN echo hi # <<EOF"), run(shell("echo hi # <<EOF")));
        assert_eq!(
            one("RUN [\"sh\", \"-c\", \"cat <<EOF\"]"),
            run(exec(&["sh", "-c", "cat <<EOF"]))
        );
        assert_eq!(one("CMD cat <<EOF"), Kind::Cmd(shell("cat <<EOF")));
    }

    #[test]
    fn heredoc_unterminated() {
        let e = err("FROM a\n\nRUN cat <<EOF\nline\n");
        assert_eq!(e.to_string(), "Dockerfile:3: unterminated heredoc EOF");
        let e = err("FROM a\nCOPY <<A <<B /x\na\nA\nb\n");
        assert_eq!(e.to_string(), "Dockerfile:2: unterminated heredoc B");
    }

    #[test]
    fn copy_heredoc() {
        let text = "FROM a\nCOPY <<EOF /etc/app.conf\nname = $NAME\n  indented\nEOF\nCOPY --chmod=755 <<-\"SCRIPT\" /run.sh\n\t#!/bin/sh\n\techo $1\n\tSCRIPT\nCOPY <<A x <<'B' /dir/\na\nA\nb\nB\nADD <<EOF /empty\nEOF\n";
        let i = &ok(text).stages[0].instructions;
        assert_eq!(
            i[0].kind,
            Kind::Copy(CopySpec {
                inline: vec![InlineFile {
                    name: s("EOF"),
                    content: s("name = $NAME\n  indented\n"),
                    expand: true
                }],
                dest: s("/etc/app.conf"),
                ..Default::default()
            })
        );
        assert_eq!(
            i[0].original,
            "COPY <<EOF /etc/app.conf\nname = $NAME\n  indented\nEOF"
        );
        assert_eq!(
            i[1].kind,
            Kind::Copy(CopySpec {
                inline: vec![InlineFile {
                    name: s("SCRIPT"),
                    content: s("#!/bin/sh\necho $1\n"),
                    expand: false
                }],
                dest: s("/run.sh"),
                chmod: Some(s("755")),
                ..Default::default()
            })
        );
        assert_eq!(i[1].line, 6);
        assert_eq!(
            i[2].kind,
            Kind::Copy(CopySpec {
                sources: vec![s("x")],
                inline: vec![
                    InlineFile {
                        name: s("A"),
                        content: s("a\n"),
                        expand: true
                    },
                    InlineFile {
                        name: s("B"),
                        content: s("b\n"),
                        expand: false
                    }
                ],
                dest: s("/dir/"),
                ..Default::default()
            })
        );
        assert_eq!(i[2].line, 10);
        assert_eq!(
            i[3].kind,
            Kind::Add(CopySpec {
                inline: vec![InlineFile {
                    name: s("EOF"),
                    content: s(""),
                    expand: true
                }],
                dest: s("/empty"),
                ..Default::default()
            })
        );
        assert_eq!(i[3].line, 15);
        assert!(err("FROM a\nCOPY x <<EOF\nEOF\n")
            .message
            .contains("destination"));
    }

    // --- Substitution ---

    #[test]
    fn expand_basic() {
        let v = [("A", "a"), ("EMPTY", ""), ("B_2", "bee")];
        assert_eq!(exp("$A", &v), "a");
        assert_eq!(exp("${A}", &v), "a");
        assert_eq!(exp("x$A.y", &v), "xa.y");
        assert_eq!(exp("${A}b", &v), "ab");
        assert_eq!(exp("$Ab", &v), "");
        assert_eq!(exp("$B_2/$UNSET/", &v), "bee//");
        assert_eq!(exp("$", &v), "$");
        assert_eq!(exp("a$ b", &v), "a$ b");
        assert_eq!(exp("$/x", &v), "$/x");
        assert_eq!(exp("100%", &v), "100%");
    }

    #[test]
    fn expand_modifiers() {
        let v = [("A", "a"), ("EMPTY", "")];
        assert_eq!(exp("${A:-d}", &v), "a");
        assert_eq!(exp("${EMPTY:-d}", &v), "d");
        assert_eq!(exp("${UNSET:-d}", &v), "d");
        assert_eq!(exp("${A-d}", &v), "a");
        assert_eq!(exp("${EMPTY-d}", &v), "");
        assert_eq!(exp("${UNSET-d}", &v), "d");
        assert_eq!(exp("${A:+alt}", &v), "alt");
        assert_eq!(exp("${EMPTY:+alt}", &v), "");
        assert_eq!(exp("${UNSET:+alt}", &v), "");
        assert_eq!(exp("${A+alt}", &v), "alt");
        assert_eq!(exp("${EMPTY+alt}", &v), "alt");
        assert_eq!(exp("${UNSET+alt}", &v), "");
        assert_eq!(exp("${UNSET:-}", &v), "");
        assert_eq!(exp("${UNSET:-a b}", &v), "a b");
        assert_eq!(exp("${A:?must be set}", &v), "a");
        assert_eq!(exp("${EMPTY?x}", &v), "");
        assert_eq!(exp_err("${EMPTY:?must be set}", &v), "EMPTY: must be set");
        assert_eq!(
            exp_err("${UNSET?}", &v),
            "UNSET: is not allowed to be unset"
        );
    }

    #[test]
    fn expand_nested() {
        let v = [("A", "a"), ("B", "b")];
        assert_eq!(exp("${UNSET:-${B}}", &v), "b");
        assert_eq!(exp("${UNSET:-${U2:-$A}-x}", &v), "a-x");
        assert_eq!(exp("${A:+[${B}]}", &v), "[b]");
        assert_eq!(exp("${UNSET:-\"q}\"}", &v), "q}");
        assert_eq!(exp("${UNSET:-a\\}b}", &v), "a}b");
    }

    #[test]
    fn expand_quotes_and_escapes() {
        let v = [("A", "a b")];
        assert_eq!(exp("\\$A", &v), "$A");
        assert_eq!(exp("\\${A}", &v), "${A}");
        assert_eq!(exp("'$A'", &v), "$A");
        assert_eq!(exp("\"$A\"", &v), "a b");
        assert_eq!(exp("\"\\$A \\\" \\\\ \\x\"", &v), "$A \" \\ \\x");
        assert_eq!(exp("a\\ b", &v), "a b");
        assert_eq!(exp("it\\'s", &v), "it's");
        assert_eq!(exp("\"it's\"", &v), "it's");
        assert_eq!(exp("x\\", &v), "x");
        assert_eq!(exp("'a'\"b\"c", &v), "abc");
        let vars = env(&v);
        let lookup = |n: &str| vars.get(n).cloned();
        assert_eq!(
            expand_with_escape("c:\\dir\\$A", '`', &lookup).unwrap(),
            "c:\\dir\\a b"
        );
        assert_eq!(expand_with_escape("`$A", '`', &lookup).unwrap(), "$A");
    }

    #[test]
    fn expand_errors() {
        assert!(exp_err("'abc", &[]).contains("single-quote"));
        assert!(exp_err("\"abc", &[]).contains("double-quote"));
        assert!(exp_err("${A", &[]).contains("missing '}'"));
        assert!(exp_err("${A:-x", &[]).contains("missing '}'"));
        assert!(exp_err("${", &[]).contains("missing '}'"));
        assert!(exp_err("${}", &[]).contains("bad substitution"));
        assert!(exp_err("${:-x}", &[]).contains("bad substitution"));
        assert!(exp_err("${A:=x}", &[]).contains("unsupported modifier"));
        assert!(exp_err("${A/x/y}", &[]).contains("unsupported modifier"));
    }

    #[test]
    fn expand_words_split() {
        let vars = env(&[("PORTS", "80  443/tcp"), ("E", "")]);
        let lookup = |n: &str| vars.get(n).cloned();
        assert_eq!(
            expand_words("$PORTS 53/udp", '\\', &lookup).unwrap(),
            vec![s("80"), s("443/tcp"), s("53/udp")]
        );
        assert_eq!(
            expand_words("\"$PORTS\" a\\ b '' $E x$E", '\\', &lookup).unwrap(),
            vec![s("80  443/tcp"), s("a b"), s(""), s("x")]
        );
        assert_eq!(
            expand_words("  ", '\\', &lookup).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn expand_heredoc_body() {
        let vars = env(&[("NAME", "app")]);
        let lookup = |n: &str| vars.get(n).cloned();
        assert_eq!(
            expand_heredoc("name = \"$NAME\" it's ${NAME:-x}\n\\$NAME \\n\n", &lookup).unwrap(),
            "name = \"app\" it's app\n\\$NAME \\n\n"
        );
    }

    #[test]
    fn parse_words_rules() {
        assert_eq!(
            parse_words("  a  b\t c ", '\\'),
            vec![s("a"), s("b"), s("c")]
        );
        assert_eq!(
            parse_words("a=\"x y\" b='p q'", '\\'),
            vec![s("a=\"x y\""), s("b='p q'")]
        );
        assert_eq!(parse_words("a\\ b c", '\\'), vec![s("a\\ b"), s("c")]);
        assert_eq!(
            parse_words("a=\"x\\\" y\" z", '\\'),
            vec![s("a=\"x\\\" y\""), s("z")]
        );
        assert_eq!(parse_words("'' x", '\\'), vec![s("''"), s("x")]);
    }
}
