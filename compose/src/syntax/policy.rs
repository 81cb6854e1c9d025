//! Small scalar forms: `restart:`, `stop_signal:`, and `environment:` list entries.

use super::SyntaxError;

/// Checks a `restart:` policy — `no`, `always`, `unless-stopped`, `on-failure` or
/// `on-failure:N` (N ≥ 0 retries) — and returns it unchanged, as compose prints it verbatim.
pub fn normalize_restart(s: &str) -> Result<String, SyntaxError> {
    let err = |reason: &str| SyntaxError::invalid("restart policy", s, reason);
    const EXPECTED: &str = "expected no, always, unless-stopped, on-failure or on-failure:N";

    match s.split_once(':') {
        None => match s {
            "no" | "always" | "unless-stopped" | "on-failure" => Ok(s.to_string()),
            _ => Err(err(EXPECTED)),
        },
        Some(("on-failure", retries)) => {
            if retries.is_empty() || !retries.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    "the maximum retry count after \"on-failure:\" must be a whole number",
                ));
            }
            if retries.parse::<u32>().is_err() {
                return Err(err("the maximum retry count is too large"));
            }
            Ok(s.to_string())
        }
        Some(("no" | "always" | "unless-stopped", _)) => Err(err(
            "only on-failure takes a maximum retry count (on-failure:N)",
        )),
        Some(_) => Err(err(EXPECTED)),
    }
}

/// Linux signal names without the `SIG` prefix, as the Docker engine's signal map knows them.
const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// Whether `s` is a signal the engine accepts for `stop_signal`: a name with or without `SIG`
/// (case-insensitive, like Docker), `RTMIN+n` / `RTMAX-n` for n in 1..=15, or a number 1..=64.
pub fn is_valid_signal(s: &str) -> bool {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&name) {
        return true;
    }
    let offset = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"));
    // Docker lists exactly RTMIN+1..RTMIN+15 and RTMAX-14..RTMAX-1; allow the symmetric 1..=15
    // and require the canonical spelling (no leading zero).
    offset.is_some_and(|n| {
        !n.starts_with('0') && n.parse::<u32>().is_ok_and(|n| (1..=15).contains(&n))
    })
}

/// Splits an `environment:` list entry: `KEY=VALUE` → `(KEY, Some(VALUE))` (split at the first
/// `=`, so the value may contain more), `KEY` alone → `(KEY, None)`, meaning "take it from the
/// environment of the command". `KEY=` gives an empty value, which is not the same as `KEY`.
pub fn parse_env_list_entry(s: &str) -> (String, Option<String>) {
    match s.split_once('=') {
        Some((key, value)) => (key.to_string(), Some(value.to_string())),
        None => (s.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        for ok in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:0",
            "on-failure:5",
            "on-failure:05",
        ] {
            assert_eq!(normalize_restart(ok).unwrap(), ok);
        }
        assert_eq!(
            normalize_restart("sometimes").unwrap_err().0,
            r#"invalid restart policy "sometimes": expected no, always, unless-stopped, on-failure or on-failure:N"#
        );
        for bad in [
            "",
            "No",
            "ALWAYS",
            "false",
            "unless_stopped",
            " no",
            "on-failure:",
            "x:1",
        ] {
            assert!(normalize_restart(bad).is_err(), "{bad}");
        }
        assert!(normalize_restart("on-failure:-1")
            .unwrap_err()
            .0
            .contains("whole number"));
        assert!(normalize_restart("on-failure:x")
            .unwrap_err()
            .0
            .contains("whole number"));
        assert!(normalize_restart("on-failure:1:2")
            .unwrap_err()
            .0
            .contains("whole number"));
        assert!(normalize_restart("on-failure:99999999999")
            .unwrap_err()
            .0
            .contains("too large"));
        assert!(normalize_restart("always:3")
            .unwrap_err()
            .0
            .contains("only on-failure"));
        assert!(normalize_restart("on-failure:é").is_err());
    }

    #[test]
    fn signals() {
        for ok in [
            "SIGTERM",
            "TERM",
            "term",
            "SigTerm",
            "SIGKILL",
            "SIGINT",
            "SIGQUIT",
            "SIGUSR1",
            "SIGHUP",
            "SIGWINCH",
            "SIGRTMIN",
            "SIGRTMAX",
            "SIGRTMIN+3",
            "RTMIN+15",
            "SIGRTMAX-1",
            "15",
            "9",
            "1",
            "64",
        ] {
            assert!(is_valid_signal(ok), "{ok}");
        }
        for bad in [
            "",
            "SIG",
            "0",
            "65",
            "-9",
            "+9",
            "SIGFOO",
            "SIGRTMIN+0",
            "SIGRTMIN+16",
            "SIGRTMIN+03",
            "SIGRTMIN-1",
            "SIGRTMAX+1",
            "SIG TERM",
            " TERM",
            "99999999999999999999",
            "SIGTERMé",
            "é",
        ] {
            assert!(!is_valid_signal(bad), "{bad}");
        }
    }

    #[test]
    fn env_entries() {
        assert_eq!(
            parse_env_list_entry("KEY=VAL"),
            ("KEY".into(), Some("VAL".into()))
        );
        assert_eq!(
            parse_env_list_entry("KEY=a=b"),
            ("KEY".into(), Some("a=b".into()))
        );
        assert_eq!(
            parse_env_list_entry("KEY="),
            ("KEY".into(), Some(String::new()))
        );
        assert_eq!(parse_env_list_entry("KEY"), ("KEY".into(), None));
        assert_eq!(parse_env_list_entry(""), (String::new(), None));
        assert_eq!(
            parse_env_list_entry("CLÉ=é"),
            ("CLÉ".into(), Some("é".into()))
        );
    }
}
