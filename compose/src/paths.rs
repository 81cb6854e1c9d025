//! Resolving the relative paths of one compose file against the directory they are relative to
//! (the project directory for the main files, the extended file's directory for `extends`, the
//! included project's directory for `include`), and expanding `~`.

use std::path::{Component, Path, PathBuf};

use crate::yaml::{Kind, Node};

/// Joins `p` onto `base` unless it is absolute, expands a leading `~`, and removes `.` and `..`
/// lexically (as Go's `filepath.Abs`/`Clean` do: symlinks are not followed).
pub fn absolutize(base: &Path, p: &str, home: Option<&str>) -> String {
    let expanded: PathBuf = if p == "~" {
        PathBuf::from(home.unwrap_or("~"))
    } else if let (Some(rest), Some(h)) = (p.strip_prefix("~/"), home) {
        Path::new(h).join(rest)
    } else {
        PathBuf::from(p)
    };
    let joined = if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    };
    clean(&joined).to_string_lossy().into_owned()
}

/// Lexical clean of a path.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// A build context or additional context that names no local directory.
fn is_remote_context(s: &str) -> bool {
    s.contains("://")
        || s.starts_with("git@")
        || s.starts_with("github.com/")
        || s.starts_with("target:")
        || s.ends_with(".git")
}

fn resolve_scalar(n: &mut Node, base: &Path, home: Option<&str>) {
    if let Kind::Scalar(s, _) = &n.kind {
        if s.is_empty() {
            return;
        }
        let resolved = absolutize(base, s, home);
        let tag = n.tag;
        *n = Node::string(resolved, n.loc.clone());
        n.tag = tag;
    }
}

/// Resolves every path-valued key of a canonical compose file.
pub fn resolve(root: &mut Node, base: &Path, home: Option<&str>) {
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        for (_, svc) in services.iter_mut() {
            resolve_service(svc, base, home);
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(entries) = root.get_mut(kind).and_then(Node::as_map_mut) {
            for (_, res) in entries.iter_mut() {
                if let Some(f) = res.get_mut("file") {
                    resolve_scalar(f, base, home);
                }
            }
        }
    }
    if let Some(vols) = root.get_mut("volumes").and_then(Node::as_map_mut) {
        for (_, vol) in vols.iter_mut() {
            // A local volume that binds a host directory names it in driver_opts.device.
            let is_bind = vol
                .get("driver_opts")
                .and_then(|o| o.get("o"))
                .and_then(Node::as_scalar)
                .is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
            if is_bind {
                if let Some(dev) = vol.get_mut("driver_opts").and_then(|o| o.get_mut("device")) {
                    resolve_scalar(dev, base, home);
                }
            }
        }
    }
}

fn resolve_service(svc: &mut Node, base: &Path, home: Option<&str>) {
    if let Some(build) = svc.get_mut("build") {
        if let Some(ctx) = build.get_mut("context") {
            if ctx.as_scalar().is_some_and(|s| !is_remote_context(s)) {
                resolve_scalar(ctx, base, home);
            }
        }
        if let Some(extra) = build
            .get_mut("additional_contexts")
            .and_then(Node::as_map_mut)
        {
            for (_, v) in extra.iter_mut() {
                if v.as_scalar().is_some_and(|s| !is_remote_context(s)) {
                    resolve_scalar(v, base, home);
                }
            }
        }
    }
    if let Some(Kind::Seq(items)) = svc.get_mut("env_file").map(|n| &mut n.kind) {
        for item in items.iter_mut() {
            if let Some(p) = item.get_mut("path") {
                resolve_scalar(p, base, home);
            }
        }
    }
    if let Some(Kind::Seq(items)) = svc.get_mut("label_file").map(|n| &mut n.kind) {
        for item in items.iter_mut() {
            resolve_scalar(item, base, home);
        }
    }
    if let Some(Kind::Seq(items)) = svc.get_mut("volumes").map(|n| &mut n.kind) {
        for item in items.iter_mut() {
            if item.get("type").and_then(Node::as_scalar) == Some("bind") {
                if let Some(src) = item.get_mut("source") {
                    resolve_scalar(src, base, home);
                }
            }
        }
    }
    if let Some(f) = svc.get_mut("extends").and_then(|e| e.get_mut("file")) {
        resolve_scalar(f, base, home);
    }
    if let Some(Kind::Seq(items)) = svc
        .get_mut("develop")
        .and_then(|d| d.get_mut("watch"))
        .map(|n| &mut n.kind)
    {
        for item in items.iter_mut() {
            if let Some(p) = item.get_mut("path") {
                resolve_scalar(p, base, home);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonicalize, CanonOptions};
    use crate::yaml::{parse, Source};
    use serde_json::json;

    #[test]
    fn absolutize_cleans_and_expands_home() {
        let b = Path::new("/proj");
        assert_eq!(absolutize(b, "./data", None), "/proj/data");
        assert_eq!(absolutize(b, "../x/./y", None), "/x/y");
        assert_eq!(absolutize(b, "/abs", None), "/abs");
        assert_eq!(absolutize(b, "~/d", Some("/home/u")), "/home/u/d");
        assert_eq!(absolutize(b, ".", None), "/proj");
    }

    #[test]
    fn resolves_service_paths() {
        let mut n = parse(&Source::new(
            "c.yaml",
            "services:\n  a:\n    build: ./app\n    env_file: a.env\n    volumes: ['./d:/d', 'named:/n']\n    extends: {file: ../base.yaml, service: b}\nsecrets:\n  s: {file: ./s.txt}\n",
        ))
        .unwrap();
        canonicalize(&mut n, CanonOptions::default()).unwrap();
        resolve(&mut n, Path::new("/p/q"), None);
        let v = n.to_value();
        let a = &v["services"]["a"];
        assert_eq!(a["build"]["context"], json!("/p/q/app"));
        assert_eq!(a["env_file"][0]["path"], json!("/p/q/a.env"));
        assert_eq!(a["volumes"][0]["source"], json!("/p/q/d"));
        assert_eq!(a["volumes"][1]["source"], json!("named"));
        assert_eq!(a["extends"]["file"], json!("/p/base.yaml"));
        assert_eq!(v["secrets"]["s"]["file"], json!("/p/q/s.txt"));
    }

    #[test]
    fn remote_contexts_are_kept() {
        assert!(is_remote_context("https://github.com/a/b.git"));
        assert!(is_remote_context("git@github.com:a/b"));
        assert!(!is_remote_context("./app"));
    }
}
