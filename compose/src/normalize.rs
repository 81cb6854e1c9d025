//! Normalisation of the merged project, as docker compose applies it before printing or running:
//! the implicit `default` network, resource names, the Dockerfile default, `env_file` contents
//! folded into `environment`, and resources no service uses dropped.

use std::collections::HashSet;

use serde_json::Value;

use crate::discovery::Environment;
use crate::dotenv;
use crate::error::LoadError;
use crate::yaml::{Key, Kind, Loc, Node};

pub fn normalize(root: &mut Node, project: &str, env: &Environment) -> Result<(), LoadError> {
    let mut used: [HashSet<String>; 4] = Default::default();
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        for (_, svc) in services.iter_mut() {
            normalize_service(svc, env)?;
            collect_uses(svc, &mut used);
        }
    }
    if used[0].contains("default") {
        let has_networks = root.get("networks").is_some();
        if !has_networks {
            root.insert("networks", Node::map(Vec::new(), Loc::none()));
        }
        if let Some(nets) = root.get_mut("networks") {
            if nets.get("default").is_none() {
                nets.insert("default", Node::map(Vec::new(), Loc::none()));
            }
        }
    }
    for (i, kind) in ["networks", "volumes", "secrets", "configs"]
        .iter()
        .enumerate()
    {
        let Some(section) = root.get_mut(kind) else {
            continue;
        };
        if let Some(entries) = section.as_map_mut() {
            entries.retain(|(k, _)| used[i].contains(&k.name));
            for (k, res) in entries.iter_mut() {
                set_name(res, &k.name, project);
            }
        }
        if section.as_map().is_some_and(Vec::is_empty) {
            root.remove(kind);
        }
    }
    Ok(())
}

fn set_name(res: &mut Node, key: &str, project: &str) {
    if res.as_map().is_none() {
        *res = Node::map(Vec::new(), res.loc.clone());
    }
    if res
        .get("name")
        .and_then(Node::as_scalar)
        .is_some_and(|s| !s.is_empty())
    {
        return;
    }
    let external = res.get("external").map(Node::to_value) == Some(Value::Bool(true));
    let name = if external {
        key.to_string()
    } else {
        format!("{project}_{key}")
    };
    let loc = res.loc.clone();
    // compose prints `name` first.
    if let Some(m) = res.as_map_mut() {
        m.insert(
            0,
            (
                Key {
                    name: "name".into(),
                    loc: loc.clone(),
                },
                Node::string(name, loc),
            ),
        );
    }
}

fn collect_uses(svc: &Node, used: &mut [HashSet<String>; 4]) {
    if let Some(nets) = svc.get("networks").and_then(Node::as_map) {
        for (k, _) in nets {
            used[0].insert(k.name.clone());
        }
    }
    if let Some(vols) = svc.get("volumes").and_then(Node::as_seq) {
        for v in vols {
            if v.get("type").and_then(Node::as_scalar) == Some("volume") {
                if let Some(src) = v.get("source").and_then(Node::as_scalar) {
                    used[1].insert(src.to_string());
                }
            }
        }
    }
    for (i, kind) in [(2, "secrets"), (3, "configs")] {
        if let Some(refs) = svc.get(kind).and_then(Node::as_seq) {
            for r in refs {
                if let Some(src) = r.get("source").and_then(Node::as_scalar) {
                    used[i].insert(src.to_string());
                }
            }
        }
    }
    if let Some(build) = svc.get("build") {
        if let Some(refs) = build.get("secrets").and_then(Node::as_seq) {
            for r in refs {
                if let Some(src) = r.get("source").and_then(Node::as_scalar) {
                    used[2].insert(src.to_string());
                }
            }
        }
    }
}

fn normalize_service(svc: &mut Node, env: &Environment) -> Result<(), LoadError> {
    if svc.as_map().is_none() {
        return Ok(());
    }
    let loc = svc.loc.clone();
    if svc.get("network_mode").is_none() && svc.get("networks").is_none() {
        svc.insert(
            "networks",
            Node::map(
                vec![(
                    Key {
                        name: "default".into(),
                        loc: loc.clone(),
                    },
                    Node::null(loc.clone()),
                )],
                loc.clone(),
            ),
        );
    }
    if let Some(build) = svc.get_mut("build") {
        if build.get("dockerfile").is_none() && build.get("dockerfile_inline").is_none() {
            let bloc = build.loc.clone();
            build.insert("dockerfile", Node::string("Dockerfile", bloc));
        }
    }
    resolve_environment(svc, env)
}

/// Folds `env_file` contents under `environment` and fills `KEY`-only entries from the
/// project's environment, so the container's environment is visible and hashed.
fn resolve_environment(svc: &mut Node, env: &Environment) -> Result<(), LoadError> {
    let mut from_files: Vec<(String, String, Loc)> = Vec::new();
    if let Some(files) = svc.remove("env_file") {
        for entry in files.as_seq().map(Vec::as_slice).unwrap_or_default() {
            let Some(path) = entry.get("path").and_then(Node::as_scalar) else {
                continue;
            };
            let required = entry.get("required").map(Node::to_value) != Some(Value::Bool(false));
            let raw = entry.get("format").and_then(Node::as_scalar) == Some("raw");
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    return Err(LoadError::at(
                        &entry.loc,
                        format!("cannot read env file {path}: {e}"),
                    ))
                }
            };
            let vars = if raw {
                dotenv::parse_raw(&text)
            } else {
                dotenv::parse(&text, &|k| env.get(k))
            }
            .map_err(|e| LoadError::at(&entry.loc, format!("env file {path}: {e}")))?;
            for (k, v) in vars {
                from_files.retain(|(ok, _, _)| *ok != k);
                from_files.push((k, v, entry.loc.clone()));
            }
        }
    }
    let has_env = svc.get("environment").is_some();
    if from_files.is_empty() && !has_env {
        return Ok(());
    }
    if !has_env {
        let loc = svc.loc.clone();
        svc.insert("environment", Node::map(Vec::new(), loc));
    }
    let Some(environment) = svc.get_mut("environment") else {
        return Ok(());
    };
    let Kind::Map(entries) = &mut environment.kind else {
        return Ok(());
    };
    let mut merged: Vec<(Key, Node)> = from_files
        .into_iter()
        .map(|(k, v, loc)| {
            (
                Key {
                    name: k,
                    loc: loc.clone(),
                },
                Node::string(v, loc),
            )
        })
        .collect();
    for (k, v) in std::mem::take(entries) {
        let value = if v.is_null() {
            match env.get(&k.name) {
                Some(x) => Node::string(x, v.loc.clone()),
                None => v,
            }
        } else {
            v
        };
        // An explicit KEY without a value does not hide a value from an env_file.
        if value.is_null() && merged.iter().any(|(mk, _)| mk.name == k.name) {
            continue;
        }
        merged.retain(|(mk, _)| mk.name != k.name);
        merged.push((k, value));
    }
    *entries = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonicalize, CanonOptions};
    use crate::yaml::{parse, Source};
    use indexmap::IndexMap;
    use serde_json::json;

    fn norm(text: &str, env: &[(&str, &str)]) -> Value {
        let mut n = parse(&Source::new("c.yaml", text)).unwrap();
        canonicalize(&mut n, CanonOptions::default()).unwrap();
        let env = Environment::new(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<IndexMap<_, _>>(),
        );
        normalize(&mut n, "proj", &env).unwrap();
        n.to_value()
    }

    #[test]
    fn default_network_and_names() {
        let v = norm(
            "services:\n  a: {image: x}\n  b: {image: y, network_mode: host}\nnetworks:\n  unused: {}\nvolumes:\n  data: {}\n  ext: {external: true}\n",
            &[],
        );
        assert_eq!(v["services"]["a"]["networks"], json!({"default": null}));
        assert!(v["services"]["b"].get("networks").is_none());
        assert_eq!(v["networks"], json!({"default": {"name": "proj_default"}}));
        assert!(v.get("volumes").is_none());
    }

    #[test]
    fn volume_names() {
        let v = norm(
            "services:\n  a: {image: x, volumes: ['data:/d', 'ext:/e']}\nvolumes:\n  data: {}\n  ext: {external: true}\n",
            &[],
        );
        assert_eq!(v["volumes"]["data"], json!({"name": "proj_data"}));
        assert_eq!(
            v["volumes"]["ext"],
            json!({"name": "ext", "external": true})
        );
    }

    #[test]
    fn env_file_folds_into_environment() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.env");
        std::fs::write(&f, "A=from_file\nB=file\n").unwrap();
        let text = format!(
            "services:\n  a:\n    image: x\n    env_file: {}\n    environment: [B=explicit, C, D]\n",
            f.display()
        );
        let v = norm(&text, &[("C", "from_shell")]);
        assert_eq!(
            v["services"]["a"]["environment"],
            json!({"A":"from_file","B":"explicit","C":"from_shell","D":null})
        );
        assert!(v["services"]["a"].get("env_file").is_none());
    }

    #[test]
    fn missing_optional_env_file_is_skipped() {
        let v = norm(
            "services:\n  a:\n    image: x\n    env_file: [{path: /nonexistent/x.env, required: false}]\n",
            &[],
        );
        assert!(v["services"]["a"].get("environment").is_none());
    }
}
