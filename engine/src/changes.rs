//! Dockerfile-style config changes for `image import -c` (and later `commit -c`):
//! `CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `EXPOSE`, `USER`, `LABEL`, `VOLUME`, `STOPSIGNAL`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifest::RunConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("invalid change {0:?}: expected INSTRUCTION ARGUMENTS")]
    Malformed(String),
    #[error("unsupported change instruction {0:?} (supported: CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER, LABEL, VOLUME, STOPSIGNAL)")]
    Unsupported(String),
    #[error("invalid {instruction} arguments {args:?}: {reason}")]
    BadArgs {
        instruction: String,
        args: String,
        reason: String,
    },
}

/// Applies one change line to `cfg`.
pub fn apply_change(cfg: &mut RunConfig, line: &str) -> Result<(), ChangeError> {
    let line = line.trim();
    let (inst, args) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| ChangeError::Malformed(line.to_owned()))?;
    let args = args.trim();
    let inst_up = inst.to_ascii_uppercase();
    let bad = |reason: &str| ChangeError::BadArgs {
        instruction: inst_up.clone(),
        args: args.to_owned(),
        reason: reason.to_owned(),
    };
    match inst_up.as_str() {
        "CMD" => cfg.cmd = Some(command(args)),
        "ENTRYPOINT" => cfg.entrypoint = Some(command(args)),
        "WORKDIR" => cfg.working_dir = Some(args.to_owned()),
        "USER" => cfg.user = Some(args.to_owned()),
        "STOPSIGNAL" => cfg.stop_signal = Some(args.to_owned()),
        "ENV" => {
            let pairs = key_values(args).map_err(|r| bad(&r))?;
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let pairs = key_values(args).map_err(|r| bad(&r))?;
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in args.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if num.is_empty()
                    || !num.split('-').all(|n| n.parse::<u16>().is_ok())
                    || !matches!(proto, "tcp" | "udp" | "sctp")
                {
                    return Err(bad("expected PORT[/tcp|udp|sctp]"));
                }
                ports.insert(format!("{num}/{proto}"), Value::Object(Default::default()));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            let list = match serde_json::from_str::<Vec<String>>(args) {
                Ok(v) => v,
                Err(_) => args.split_whitespace().map(str::to_owned).collect(),
            };
            for v in list {
                vols.insert(v, Value::Object(Default::default()));
            }
        }
        other => return Err(ChangeError::Unsupported(other.to_owned())),
    }
    Ok(())
}

/// Exec form (`["a","b"]`) or shell form (run by `/bin/sh -c`).
fn command(args: &str) -> Vec<String> {
    if args.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            return v;
        }
    }
    vec!["/bin/sh".to_owned(), "-c".to_owned(), args.to_owned()]
}

/// `K=V K2="v 2"` or the legacy single `K V` form.
fn key_values(args: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(args)?;
    if words.is_empty() {
        return Err("missing key".to_owned());
    }
    if !words[0].contains('=') {
        let (k, v) = args
            .split_once(char::is_whitespace)
            .ok_or("expected KEY=VALUE or KEY VALUE")?;
        return Ok(vec![(k.to_owned(), unquote(v.trim()))]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{w:?} is not KEY=VALUE"))
        })
        .collect()
}

fn unquote(s: &str) -> String {
    split_words(s)
        .map(|w| w.join(" "))
        .unwrap_or_else(|_| s.to_owned())
}

/// Splits on whitespace honouring double and single quotes and backslash escapes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some('\\') if c == '"' => {
                            cur.push(chars.next().ok_or("unfinished escape")?)
                        }
                        Some(x) => cur.push(x),
                        None => return Err("unterminated quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().ok_or("unfinished escape")?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = RunConfig::default();
        for ch in [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init --flag",
            "ENV A=1 B=\"two words\"",
            "ENV C three",
            "ENV A=override",
            "WORKDIR /app",
            "EXPOSE 80 53/udp 8000-8001",
            "USER 1000:1000",
            "LABEL org.x=y 'k 2'=v",
            "volume /data",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/init --flag"]);
        assert_eq!(c.env.unwrap(), vec!["B=two words", "C=three", "A=override"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        let ports: Vec<String> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000-8001/tcp"]);
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let labels = c.labels.unwrap();
        assert_eq!(labels["org.x"], "y");
        assert_eq!(labels["k 2"], "v");
        assert!(c.volumes.unwrap().contains_key("/data"));
    }

    #[test]
    fn rejects_bad_changes() {
        let mut c = RunConfig::default();
        assert!(matches!(
            apply_change(&mut c, "RUN rm -rf /"),
            Err(ChangeError::Unsupported(_))
        ));
        assert!(matches!(
            apply_change(&mut c, "CMD"),
            Err(ChangeError::Malformed(_))
        ));
        assert!(matches!(
            apply_change(&mut c, "EXPOSE http"),
            Err(ChangeError::BadArgs { .. })
        ));
        assert!(matches!(
            apply_change(&mut c, "ENV A=\"open"),
            Err(ChangeError::BadArgs { .. })
        ));
    }
}
