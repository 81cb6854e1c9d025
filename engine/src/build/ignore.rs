//! `.dockerignore` matching with docker's rules (moby/patternmatcher and its `ignorefile` reader).
//!
//! * Lines starting with `#` are comments; blank lines are skipped; lines are trimmed.
//! * A leading `!` makes an exception that re-includes what earlier patterns excluded.
//! * Patterns are cleaned like Go's `filepath.Clean` (`./a//b/` is `a/b`, `a/../b` is `b`) and a
//!   leading `/` is removed: patterns are relative to the context root.
//! * `*` matches any run of characters except `/`, `?` one character except `/`, `[…]` a class
//!   (`[^…]` negated, `a-z` ranges, `\` escapes), `\c` the character `c`; `**` matches any number
//!   of directories (`**/x`, `a/**/b`, `a/**`).
//! * A path is excluded when the last pattern matching it, or matching one of its parent
//!   directories, is not an exception: excluding a directory excludes everything under it.
//!
//! Two small departures, both in the direction users expect: `**/name` matches `name` at any
//! depth but not `other_name` (docker's suffix shortcut matches both), and `**` followed by
//! something other than `/` (`**.log`) matches across directories.

/// A bad pattern, displayed as `.dockerignore:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore:{line}: {message}")]
pub struct IgnoreError {
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

/// The patterns of a `.dockerignore`, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// `!pattern`: re-includes.
    exception: bool,
    /// The cleaned pattern (without `!`).
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**/`: nothing, or any run of characters ending with `/`.
    DirStar,
    /// `**` elsewhere: any run of characters.
    AnyStar,
    /// `[…]`: one character but `/`, in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this token consumes the single character `c` (for the one-character tokens).
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::One => c != '/',
            Token::Class { negated, ranges } => {
                c != '/' && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
            Token::Star | Token::DirStar | Token::AnyStar => false,
        }
    }
}

impl IgnoreMatcher {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            // Comments only at the very start of the line, as docker reads them.
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(IgnoreError {
                        line,
                        message: "illegal exclusion pattern: \"!\"".to_string(),
                    });
                }
            }
            let mut cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let tokens = compile(&cleaned).map_err(|message| IgnoreError { line, message })?;
            patterns.push(Pattern {
                exception,
                text: cleaned,
                tokens,
            });
        }
        Ok(IgnoreMatcher { patterns })
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns after cleaning, `!` kept on exceptions (for messages and cache keys).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exception {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is left out of the
    /// context: the last pattern matching it or one of its parent directories is not an
    /// exception. The context root itself is never excluded. `is_dir` does not change the
    /// result (docker's patterns do not tell files from directories); it is accepted so callers
    /// need not care.
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let path = relative(rel_path);
        if path == "." || path.is_empty() {
            return false;
        }
        let parents: Vec<&str> = path
            .match_indices('/')
            .map(|(i, _)| &path[..i])
            .filter(|p| !p.is_empty())
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only exceptions can change an exclusion, only exclusions an inclusion.
            if pattern.exception != excluded {
                continue;
            }
            if matches(&pattern.tokens, &path)
                || parents.iter().any(|p| matches(&pattern.tokens, p))
            {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// For an excluded directory: whether an exception (`!pattern`) could re-include something
    /// below it, so a walker must still descend into it (checking every entry with
    /// [`is_excluded`](Self::is_excluded)). `false` means everything below is excluded too.
    pub fn may_include_under(&self, rel_dir: &str) -> bool {
        let dir = relative(rel_dir);
        let prefix = if dir == "." || dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| can_continue(&p.tokens, &prefix))
    }
}

/// A path as the patterns see it: cleaned, without a leading `/`.
fn relative(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.strip_prefix('/') {
        Some("") => ".".to_string(),
        Some(rest) => rest.to_string(),
        None => cleaned,
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Turns a cleaned pattern into tokens; a malformed `[…]` or a trailing `\` is an error.
fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let bad = || format!("syntax error in pattern {pattern:?}");
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                    tokens.push(Token::DirStar);
                } else {
                    tokens.push(Token::AnyStar);
                }
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    tokens.push(Token::Literal(next));
                }
                None => return Err(bad()),
            },
            '[' => {
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(bad());
                    };
                    i += 1;
                    if c == ']' && !ranges.is_empty() {
                        break;
                    }
                    let lo = if c == '\\' {
                        let Some(&e) = chars.get(i) else {
                            return Err(bad());
                        };
                        i += 1;
                        e
                    } else {
                        c
                    };
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
                        i += 1;
                        let Some(&h) = chars.get(i) else {
                            return Err(bad());
                        };
                        i += 1;
                        hi = if h == '\\' {
                            let Some(&e) = chars.get(i) else {
                                return Err(bad());
                            };
                            i += 1;
                            e
                        } else {
                            h
                        };
                        if hi < lo {
                            return Err(bad());
                        }
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            _ => tokens.push(Token::Literal(c)),
        }
    }
    Ok(tokens)
}

/// Where an NFA run over the tokens stands: `at[i]` means tokens `i..` remain to be matched;
/// `inside[i]` (for a `**/` at `i`) means it has read characters and needs a `/` to finish.
struct States {
    at: Vec<bool>,
    inside: Vec<bool>,
}

impl States {
    fn new(n: usize) -> Self {
        States {
            at: vec![false; n + 1],
            inside: vec![false; n + 1],
        }
    }

    fn any(&self) -> bool {
        self.at.iter().chain(&self.inside).any(|&s| s)
    }

    /// Adds the positions reachable without reading: past tokens that may match nothing.
    fn close(&mut self, tokens: &[Token]) {
        for (i, token) in tokens.iter().enumerate() {
            if self.at[i] && matches!(token, Token::Star | Token::AnyStar | Token::DirStar) {
                self.at[i + 1] = true;
            }
        }
    }
}

/// Runs the tokens over `input` from its start.
fn run(tokens: &[Token], input: &str) -> States {
    let n = tokens.len();
    let mut states = States::new(n);
    states.at[0] = true;
    states.close(tokens);
    for c in input.chars() {
        let mut next = States::new(n);
        for (i, token) in tokens.iter().enumerate() {
            let inside = states.inside[i];
            if !states.at[i] && !inside {
                continue;
            }
            match token {
                Token::Star => {
                    if c != '/' {
                        next.at[i] = true;
                    }
                }
                Token::AnyStar => next.at[i] = true,
                Token::DirStar => {
                    next.inside[i] = true;
                    if c == '/' {
                        next.at[i + 1] = true;
                    }
                }
                one => {
                    if one.accepts(c) {
                        next.at[i + 1] = true;
                    }
                }
            }
        }
        next.close(tokens);
        if !next.any() {
            return next;
        }
        states = next;
    }
    states
}

/// The whole of `path` matches.
fn matches(tokens: &[Token], path: &str) -> bool {
    run(tokens, path).at[tokens.len()]
}

/// Some path starting with `prefix` (and longer than it) could match.
fn can_continue(tokens: &[Token], prefix: &str) -> bool {
    let states = run(tokens, prefix);
    let n = tokens.len();
    states.at[..n].iter().chain(&states.inside[..n]).any(|&s| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> IgnoreMatcher {
        IgnoreMatcher::parse(text).unwrap()
    }

    fn excluded(matcher: &IgnoreMatcher, paths: &[&str]) -> Vec<String> {
        paths
            .iter()
            .filter(|p| matcher.is_excluded(p, false))
            .map(|p| p.to_string())
            .collect()
    }

    #[track_caller]
    fn check(text: &str, yes: &[&str], no: &[&str]) {
        let matcher = m(text);
        for p in yes {
            assert!(
                matcher.is_excluded(p, false),
                "{p:?} should be excluded by {text:?}"
            );
        }
        for p in no {
            assert!(
                !matcher.is_excluded(p, false),
                "{p:?} should be included with {text:?}"
            );
        }
    }

    #[test]
    fn comments_blanks_and_cleaning() {
        let matcher = m(
            "# comment\n\n   \n  #not-a-comment\n/abs\n./dot/\nx//y/../z/\n!  /kept \r\nCRLF\r\n",
        );
        assert_eq!(
            matcher.patterns(),
            vec!["#not-a-comment", "abs", "dot", "x/z", "!kept", "CRLF"]
        );
        check(
            "# comment\n#x\n  #y\n/abs\n./dot/\nx//y/../z/\n",
            &["#y", "abs", "abs/f", "dot", "dot/a/b", "x/z"],
            &["#x", "x", "x/y/z", "absent", "comment"],
        );
        assert!(m("").is_empty());
        assert!(m("# only\n\n").is_empty());
        assert!(!m("").is_excluded("a", false));
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("a/b/"), "a/b");
        assert_eq!(clean("./a"), "a");
        assert_eq!(clean("a/./b"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("//a//"), "/a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), "/");
    }

    #[test]
    fn star_question_class() {
        check(
            "*.txt",
            &["a.txt", ".txt", "a.txt/inner"],
            &["dir/a.txt", "a.txt.bak", "atxt"],
        );
        check("?.c", &["a.c"], &["ab.c", ".c", "d/a.c"]);
        check("a?c", &["abc"], &["a/c"]);
        check(
            "file[0-9].log",
            &["file1.log", "file9.log"],
            &["filex.log", "file10.log"],
        );
        check("[^a-c]*", &["d", "zz"], &["a", "b1", "c.x"]);
        check("[]x]", &["]", "x"], &["y"]);
        check("a[\\-]b", &["a-b"], &["a\\b"]);
        check("a\\*b", &["a*b"], &["axb"]);
        check("a/*/c", &["a/b/c", "a/b/c/d"], &["a/c", "a/b/x/c"]);
        check("*", &["a", "b/c", ".hidden"], &[]);
    }

    #[test]
    fn double_star() {
        check(
            "**/*.log",
            &["a.log", "x/a.log", "x/y/z.log", "x/y/z.log/inner"],
            &["a.log.txt", "log"],
        );
        check(
            "**/node_modules",
            &["node_modules", "a/node_modules", "a/b/node_modules/x"],
            &["my_node_modules", "a/node_modules_x"],
        );
        check(
            "a/**/b",
            &["a/b", "a/x/b", "a/x/y/b", "a/b/c"],
            &["b", "a/xb", "x/a/b"],
        );
        check("a/**", &["a/x", "a/x/y"], &["a", "ab"]);
        check("**", &["a", "a/b"], &[]);
        check("**.log", &["a.log", "d/e/f.log"], &["a.txt"]);
        check("a**b", &["ab", "axb", "a/x/b"], &["a/x/c"]);
    }

    #[test]
    fn directories_exclude_their_contents() {
        check(
            "dir/",
            &["dir", "dir/a", "dir/a/b/c"],
            &["dir2", "a/dir", "di"],
        );
        check("a/b", &["a/b", "a/b/c"], &["a", "a/bc", "b"]);
    }

    #[test]
    fn exceptions() {
        check(
            "*.md\n!README.md",
            &["CHANGES.md", "a.md"],
            &["README.md", "docs/a.md", "main.rs"],
        );
        check(
            "**/*.log\n!keep.log",
            &["a.log", "sub/keep.log", "sub/x.log"],
            &["keep.log", "x.txt"],
        );
        check(
            "**/*.log\n!**/keep.log",
            &["a.log", "sub/x.log"],
            &["keep.log", "sub/keep.log", "a/b/keep.log"],
        );
        // The last matching pattern wins.
        check("!README.md\n*.md", &["README.md", "a.md"], &[]);
        check("*.md\n!README.md\nREADME.md", &["README.md"], &[]);
        check(
            "*\n!src\nsrc/**/*.tmp",
            &["target", "Cargo.lock", "src/a.tmp", "src/x/b.tmp"],
            &["src", "src/main.rs", "src/x/y.rs"],
        );
        // An exception for something under an excluded directory.
        check(
            "dir\n!dir/keep",
            &["dir", "dir/other", "dir/other/x"],
            &["dir/keep", "dir/keep/inner"],
        );
    }

    #[test]
    fn docker_examples() {
        // From docker's documentation of .dockerignore.
        let matcher = m("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert_eq!(
            excluded(
                &matcher,
                &[
                    "somedir/temporary.txt",
                    "somedir/temp",
                    "somedir/subdir/temporary.txt",
                    "tempa",
                    "tempb",
                    "temp",
                    "temporary.txt",
                    "a/b/c/temp.txt",
                ]
            ),
            vec![
                "somedir/temporary.txt",
                "somedir/temp",
                "somedir/subdir/temporary.txt",
                "tempa",
                "tempb"
            ]
        );
        check(
            "*.md\n!README*.md\nREADME-secret.md",
            &["a.md", "README-secret.md"],
            &["README.md", "README-public.md"],
        );
        check(
            "*.md\nREADME-secret.md\n!README*.md",
            &["a.md"],
            &["README-secret.md", "README.md"],
        );
    }

    #[test]
    fn query_paths_are_cleaned() {
        let matcher = m("build\n");
        assert!(matcher.is_excluded("./build", true));
        assert!(matcher.is_excluded("/build/", true));
        assert!(matcher.is_excluded("build/x/../y", false));
        assert!(!matcher.is_excluded(".", true));
        assert!(!matcher.is_excluded("", true));
        assert!(!matcher.is_excluded("/", true));
        assert!(!m("*\n").is_excluded(".", true));
    }

    #[test]
    fn errors() {
        let e = IgnoreMatcher::parse("a\n!\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            ".dockerignore:2: illegal exclusion pattern: \"!\""
        );
        assert_eq!(IgnoreMatcher::parse("ok\n\n[abc\n").unwrap_err().line, 3);
        assert_eq!(IgnoreMatcher::parse("a\\").unwrap_err().line, 1);
        assert!(IgnoreMatcher::parse("[z-a]").is_err());
        assert!(IgnoreMatcher::parse("[]").is_err());
        assert!(IgnoreMatcher::parse("[a-").is_err());
    }

    #[test]
    fn may_include_under_rules() {
        let matcher = m("dir\n!dir/keep.txt\n");
        assert!(matcher.is_excluded("dir", true));
        assert!(matcher.may_include_under("dir"));
        assert!(!matcher.may_include_under("dir/sub"));
        assert!(!matcher.may_include_under("other"));

        // No exceptions: never descend.
        let matcher = m("node_modules\n*.log\n");
        assert!(!matcher.may_include_under("node_modules"));

        // Wildcard exceptions can reach any depth.
        let matcher = m("vendor\n!**/LICENSE\n");
        assert!(matcher.may_include_under("vendor"));
        assert!(matcher.may_include_under("vendor/a/b"));
        assert!(!matcher.is_excluded("vendor/a/LICENSE", false));
        assert!(matcher.is_excluded("vendor/a/README", false));

        let matcher = m("*\n!src/*/keep\n");
        assert!(matcher.may_include_under("src"));
        assert!(matcher.may_include_under("src/a"));
        assert!(!matcher.may_include_under("src/a/b"));
        assert!(!matcher.may_include_under("docs"));
        assert!(!matcher.is_excluded("src/a/keep", false));

        let matcher = m("a\n!a/b*/c\n");
        assert!(matcher.may_include_under("a/bx"));
        assert!(!matcher.may_include_under("a/x"));

        // The root: any exception could match below it.
        assert!(m("*\n!x").may_include_under("."));
        assert!(m("*\n!x").may_include_under(""));
    }
}
