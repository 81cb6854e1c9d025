//! Splitting a `command:` / `entrypoint:` string into arguments the way docker compose does
//! (POSIX-shell-like words: quotes group, backslashes escape; no expansion of any kind).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated {0} quote in {1:?}")]
    Unterminated(&'static str, String),
    #[error("trailing backslash in {0:?}")]
    TrailingBackslash(String),
}

pub fn split(input: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => match chars.next() {
                Some(n) => {
                    cur.push(n);
                    in_word = true;
                }
                None => return Err(SplitError::TrailingBackslash(input.to_string())),
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(SplitError::Unterminated("single", input.to_string())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        // Inside double quotes a backslash only escapes what the shell lets it.
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some('\n') => {}
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => {
                                return Err(SplitError::Unterminated("double", input.to_string()))
                            }
                        },
                        Some(n) => cur.push(n),
                        None => return Err(SplitError::Unterminated("double", input.to_string())),
                    }
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split("echo hello  world").unwrap(),
            ["echo", "hello", "world"]
        );
        assert_eq!(
            split(r#"sh -c 'echo "a b"; exit 3'"#).unwrap(),
            ["sh", "-c", r#"echo "a b"; exit 3"#]
        );
        assert_eq!(
            split(r#"a "b \"c\" \d" e\ f"#).unwrap(),
            ["a", r#"b "c" \d"#, "e f"]
        );
        assert_eq!(split("a '' b").unwrap(), ["a", "", "b"]);
        assert_eq!(split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split("héllo wörld").unwrap(), ["héllo", "wörld"]);
    }

    #[test]
    fn reports_unterminated_quotes() {
        assert!(matches!(
            split("a 'b"),
            Err(SplitError::Unterminated("single", _))
        ));
        assert!(matches!(
            split("a \"b"),
            Err(SplitError::Unterminated("double", _))
        ));
        assert!(split("a \\").is_err());
    }
}
