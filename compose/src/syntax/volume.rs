//! Service `volumes:` short syntax `[SOURCE:]TARGET[:MODE]`, after compose-go `format.ParseVolume`
//! plus the target clean-up its canonical transform applies.

use serde_json::{json, Map, Value};

use super::SyntaxError;

/// Parses one service `volumes:` short-syntax string into the long form compose-go prints.
///
/// * bind (source starts with `.`, `/`, `~`, `\\` or a drive letter `C:`):
///   `{"type":"bind","source":"./data","target":"/data","read_only":true,
///     "bind":{"selinux":"z","propagation":"rshared","create_host_path":true}}`
/// * named volume: `{"type":"volume","source":"db","target":"/var/lib/db","volume":{}}`
///   (`"volume":{"nocopy":true}` with `nocopy`)
/// * anonymous volume (no source): `{"type":"volume","target":"/data","volume":{}}`
///
/// `read_only` appears only when true. Relative and `~` sources are returned as written. The
/// target must be absolute and is cleaned like Go's `path.Clean` (`/data/` → `/data`).
pub fn parse_volume(spec: &str) -> Result<Value, SyntaxError> {
    let err = |reason: String| SyntaxError::invalid("volume", spec, reason);

    if spec.is_empty() {
        return Err(err("the volume specification is empty".into()));
    }
    // compose-go returns a one- or two-byte spec as a bare anonymous volume before it looks for
    // colons or fills in defaults, so no `volume: {}` is added there. Mirror that for identical
    // `config` output ("/a" → no `volume` key, "/ab" → `volume: {}`).
    if spec.len() <= 2 {
        let target = checked_target(spec, None).map_err(err)?;
        let mut out = Map::new();
        out.insert("type".into(), json!("volume"));
        out.insert("target".into(), json!(target));
        return Ok(Value::Object(out));
    }

    let fields = split_fields(spec).map_err(err)?;
    let mut opts = Options::default();
    if let Some(mode) = fields.mode {
        opts = parse_options(mode).map_err(err)?;
    }
    let target = checked_target(fields.target, fields.source).map_err(err)?;

    let mut out = Map::new();
    let is_bind = fields.source.is_some_and(is_file_path);
    out.insert(
        "type".into(),
        json!(if is_bind { "bind" } else { "volume" }),
    );
    if let Some(source) = fields.source {
        out.insert("source".into(), json!(source));
    }
    out.insert("target".into(), json!(target));
    if opts.read_only {
        out.insert("read_only".into(), json!(true));
    }
    // compose-go creates the `bind` block as soon as a bind option is seen, even on a named
    // volume, and for every bind mount; short-syntax binds always get create_host_path (the
    // docker-compose v1 behaviour).
    if is_bind || opts.selinux.is_some() || opts.propagation.is_some() {
        let mut bind = Map::new();
        if let Some(selinux) = opts.selinux {
            bind.insert("selinux".into(), json!(selinux));
        }
        if let Some(propagation) = opts.propagation {
            bind.insert("propagation".into(), json!(propagation));
        }
        if is_bind {
            bind.insert("create_host_path".into(), json!(true));
        }
        out.insert("bind".into(), Value::Object(bind));
    }
    // Every non-bind short-syntax volume carries a (possibly empty) `volume` block, which
    // `docker compose config` prints as `volume: {}`; `nocopy` adds it to binds too.
    if opts.nocopy {
        out.insert("volume".into(), json!({"nocopy": true}));
    } else if !is_bind {
        out.insert("volume".into(), json!({}));
    }
    Ok(Value::Object(out))
}

struct Fields<'a> {
    source: Option<&'a str>,
    target: &'a str,
    mode: Option<&'a str>,
}

/// Splits on `:` the way compose-go does: a colon right after a single letter belongs to a
/// Windows drive (`C:\data`), and the first field is the target when it is the only one.
fn split_fields(spec: &str) -> Result<Fields<'_>, String> {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    let mut start = 0;
    for (i, c) in spec.char_indices() {
        if c != ':' {
            continue;
        }
        let current = &spec[start..i];
        let mut chars = current.chars();
        let drive_letter =
            matches!((chars.next(), chars.next()), (Some(l), None) if l.is_alphabetic());
        if drive_letter {
            continue;
        }
        parts.push(current);
        start = i + 1;
    }
    parts.push(&spec[start..]);

    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty section between colons".into());
    }
    match parts.as_slice() {
        [target] => Ok(Fields {
            source: None,
            target,
            mode: None,
        }),
        [source, target] => Ok(Fields {
            source: Some(source),
            target,
            mode: None,
        }),
        [source, target, mode] => Ok(Fields {
            source: Some(source),
            target,
            mode: Some(mode),
        }),
        _ => Err("too many colons; expected [SOURCE:]TARGET[:MODE]".into()),
    }
}

#[derive(Default)]
struct Options {
    read_only: bool,
    nocopy: bool,
    selinux: Option<&'static str>,
    propagation: Option<&'static str>,
}

fn parse_options(mode: &str) -> Result<Options, String> {
    let mut opts = Options::default();
    // Empty items ("ro,") are skipped, as compose-go does; the last of ro/rw wins.
    for option in mode.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => opts.read_only = true,
            "rw" => opts.read_only = false,
            "nocopy" => opts.nocopy = true,
            "z" => opts.selinux = Some("z"),
            "Z" => opts.selinux = Some("Z"),
            "shared" => opts.propagation = Some("shared"),
            "slave" => opts.propagation = Some("slave"),
            "private" => opts.propagation = Some("private"),
            "rshared" => opts.propagation = Some("rshared"),
            "rslave" => opts.propagation = Some("rslave"),
            "rprivate" => opts.propagation = Some("rprivate"),
            // macOS file-sharing hints: accepted and dropped, exactly as compose-go does.
            "consistent" | "cached" | "delegated" => {}
            other => {
                return Err(format!(
                    "unknown mode {other:?}; expected a comma-separated list of ro, rw, z, Z, \
                     nocopy, shared, slave, private, rshared, rslave, rprivate, consistent, \
                     cached, delegated"
                ))
            }
        }
    }
    Ok(opts)
}

fn checked_target(target: &str, source: Option<&str>) -> Result<String, String> {
    if !target.starts_with('/') {
        let hint = if source.is_none() && target.chars().nth(1) == Some(':') {
            " (a one-letter volume name followed by ':' is read as a Windows drive letter)"
        } else if source.is_none() {
            " (a single path is an anonymous volume's container path)"
        } else {
            ""
        };
        return Err(format!(
            "container path {target:?} is not an absolute path{hint}"
        ));
    }
    Ok(clean_path(target))
}

/// compose-go `isFilePath`: what makes a short-syntax source a host path rather than a volume
/// name.
fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) || source.starts_with("\\\\") {
        return true;
    }
    // Windows drive: one letter, then ':'.
    let mut chars = source.chars();
    matches!((chars.next(), chars.next()), (Some(l), Some(':')) if l.is_alphabetic())
}

/// Lexical path clean-up with the semantics of Go's `path.Clean`: collapses repeated `/`,
/// drops `.` elements, resolves `..` against the preceding element (never above the root), and
/// removes a trailing `/`. The empty path becomes `.`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> Value {
        parse_volume(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> String {
        parse_volume(spec).unwrap_err().0
    }

    #[test]
    fn anonymous_volume() {
        assert_eq!(
            ok("/data"),
            json!({"type":"volume","target":"/data","volume":{}})
        );
        assert_eq!(
            ok("/var/lib/x/"),
            json!({"type":"volume","target":"/var/lib/x","volume":{}})
        );
        // compose-go's one/two-byte shortcut: no `volume` block.
        assert_eq!(ok("/a"), json!({"type":"volume","target":"/a"}));
        assert_eq!(ok("/"), json!({"type":"volume","target":"/"}));
        assert_eq!(ok("//"), json!({"type":"volume","target":"/"}));
    }

    #[test]
    fn named_volume() {
        let v = ok("db:/var/lib/db");
        assert_eq!(
            v,
            json!({"type":"volume","source":"db","target":"/var/lib/db","volume":{}})
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["type", "source", "target", "volume"]);
        assert_eq!(
            ok("db:/data:nocopy"),
            json!({"type":"volume","source":"db","target":"/data","volume":{"nocopy":true}})
        );
        assert_eq!(
            ok("db:/data:ro,nocopy"),
            json!({"type":"volume","source":"db","target":"/data","read_only":true,"volume":{"nocopy":true}})
        );
        // A bind-only option on a named volume still creates the bind block (compose-go does).
        assert_eq!(
            ok("db:/data:z"),
            json!({"type":"volume","source":"db","target":"/data","bind":{"selinux":"z"},"volume":{}})
        );
    }

    #[test]
    fn bind_mounts() {
        let v = ok("./data:/data:ro");
        assert_eq!(
            v,
            json!({"type":"bind","source":"./data","target":"/data","read_only":true,"bind":{"create_host_path":true}})
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["type", "source", "target", "read_only", "bind"]);
        assert_eq!(
            ok("/srv/www:/usr/share/nginx/html"),
            json!({"type":"bind","source":"/srv/www","target":"/usr/share/nginx/html","bind":{"create_host_path":true}})
        );
        assert_eq!(ok("~/x:/x")["type"], json!("bind"));
        assert_eq!(ok("../x:/x")["source"], json!("../x"));
        assert_eq!(ok(".:/app")["source"], json!("."));
        assert_eq!(ok(r"\\pipe\docker:/x")["type"], json!("bind"));
        assert_eq!(
            ok("./a:/b:Z,rshared,rw"),
            json!({"type":"bind","source":"./a","target":"/b","bind":{"selinux":"Z","propagation":"rshared","create_host_path":true}})
        );
        let bind = ok("./a:/b:rprivate,z")["bind"].clone();
        let keys: Vec<_> = bind.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["selinux", "propagation", "create_host_path"]);
        // nocopy on a bind still produces the volume block, as in compose-go.
        assert_eq!(
            ok("./a:/b:nocopy"),
            json!({"type":"bind","source":"./a","target":"/b","bind":{"create_host_path":true},"volume":{"nocopy":true}})
        );
    }

    #[test]
    fn windows_drive_source() {
        assert_eq!(
            ok(r"C:\data:/data"),
            json!({"type":"bind","source":r"C:\data","target":"/data","bind":{"create_host_path":true}})
        );
        assert_eq!(ok("c:/data:/data:ro")["source"], json!("c:/data"));
    }

    #[test]
    fn options() {
        assert_eq!(ok("./a:/b:ro,rw").get("read_only"), None);
        assert_eq!(ok("./a:/b:rw,ro")["read_only"], json!(true));
        for p in [
            "shared", "slave", "private", "rshared", "rslave", "rprivate",
        ] {
            assert_eq!(ok(&format!("./a:/b:{p}"))["bind"]["propagation"], json!(p));
        }
        // Consistency hints are accepted and dropped.
        assert_eq!(
            ok("./a:/b:cached"),
            json!({"type":"bind","source":"./a","target":"/b","bind":{"create_host_path":true}})
        );
        assert_eq!(ok("db:/b:delegated,consistent"), ok("db:/b"));
        assert_eq!(ok("db:/b:ro,"), ok("db:/b:ro"));
    }

    #[test]
    fn target_is_cleaned() {
        assert_eq!(ok("db:/a/./b/../c//")["target"], json!("/a/c"));
        assert_eq!(ok("db:/../x")["target"], json!("/x"));
        // The source is left alone for the caller to resolve.
        assert_eq!(ok("./a/../b/:/x")["source"], json!("./a/../b/"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err(""),
            r#"invalid volume "": the volume specification is empty"#
        );
        assert_eq!(
            err("db:data"),
            r#"invalid volume "db:data": container path "data" is not an absolute path"#
        );
        assert!(err("ab").contains(r#"container path "ab" is not an absolute path"#));
        assert!(err("data").contains("anonymous volume"));
        assert!(err("a:/data").contains("Windows drive letter"));
        assert!(err("/data:ro").contains(r#"container path "ro" is not an absolute path"#));
        assert!(err("db::/x").contains("empty section between colons"));
        assert!(err(":/x").contains("empty section between colons"));
        assert!(err("db:/x:").contains("empty section between colons"));
        assert!(err("db:/b:ro:rw").contains("too many colons"));
        assert!(err("./a:/b:ro,bogus").contains(r#"unknown mode "bogus""#));
        assert!(err("./a:/b:RO").contains(r#"unknown mode "RO""#));
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        for spec in [
            "é",
            "é:",
            "éé:/x",
            "é:/x",
            "/é",
            "db:/é:ro",
            "😀:😀:😀",
            "ü:ü",
            ":é:",
            "/x:é",
        ] {
            let _ = parse_volume(spec);
        }
        assert_eq!(ok("/é")["target"], json!("/é"));
        assert_eq!(ok("données:/é")["source"], json!("données"));
        // A non-ASCII letter followed by ':' is a drive letter to compose-go too.
        assert!(parse_volume("é:/x").is_err());
    }

    #[test]
    fn clean_path_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("a/./b", "a/b"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("/../a", "/a"),
            ("/a/b/../../..", "/"),
            ("a/b/../c", "a/c"),
            ("abc", "abc"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }
}
