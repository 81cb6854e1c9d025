//! Profiles: a service that names profiles exists only when one of them is active (`--profile`,
//! `COMPOSE_PROFILES`, `*` for all) or when it is named on the command line.

use crate::error::LoadError;
use crate::yaml::{Kind, Node};

fn service_profiles(svc: &Node) -> Vec<String> {
    svc.get("profiles")
        .and_then(Node::as_seq)
        .map(|s| {
            s.iter()
                .filter_map(Node::as_scalar)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every profile named by any service, sorted.
pub fn all_profiles(root: &Node) -> Vec<String> {
    let mut all: Vec<String> = root
        .get("services")
        .and_then(Node::as_map)
        .map(|s| {
            s.iter()
                .flat_map(|(_, svc)| service_profiles(svc))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all.dedup();
    all
}

fn enabled(name: &str, svc: &Node, active: &[String], explicit: &[String]) -> bool {
    let profiles = service_profiles(svc);
    profiles.is_empty()
        || explicit.iter().any(|e| e == name)
        || active.iter().any(|a| a == "*" || profiles.contains(a))
}

/// Drops disabled services. A dependency on a disabled service is an error unless it is marked
/// `required: false`, in which case it is dropped too.
pub fn apply(root: &mut Node, active: &[String], explicit: &[String]) -> Result<(), LoadError> {
    let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) else {
        return Ok(());
    };
    let disabled: Vec<(String, Vec<String>)> = services
        .iter()
        .filter(|(k, svc)| !enabled(&k.name, svc, active, explicit))
        .map(|(k, svc)| (k.name.clone(), service_profiles(svc)))
        .collect();
    services.retain(|(k, _)| !disabled.iter().any(|(d, _)| *d == k.name));
    for (name, svc) in services.iter_mut() {
        let Some(deps) = svc.get_mut("depends_on") else {
            continue;
        };
        let Kind::Map(entries) = &mut deps.kind else {
            continue;
        };
        let mut keep = Vec::with_capacity(entries.len());
        for (dep, cfg) in std::mem::take(entries) {
            match disabled.iter().find(|(d, _)| *d == dep.name) {
                None => keep.push((dep, cfg)),
                Some((_, profiles)) => {
                    let required = cfg
                        .get("required")
                        .map(|r| r.to_value() != serde_json::Value::Bool(false))
                        .unwrap_or(true);
                    if required {
                        return Err(LoadError::at(
                            &dep.loc,
                            format!(
                                "service {:?} depends on {:?}, which is disabled: enable one of \
                                 its profiles ({}) or mark the dependency `required: false`",
                                name.name,
                                dep.name,
                                profiles.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        *entries = keep;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonicalize, CanonOptions};
    use crate::yaml::{parse, Source};

    fn root(text: &str) -> Node {
        let mut n = parse(&Source::new("c.yaml", text)).unwrap();
        canonicalize(&mut n, CanonOptions::default()).unwrap();
        n
    }

    fn names(n: &Node) -> Vec<String> {
        n.get("services")
            .and_then(Node::as_map)
            .unwrap()
            .iter()
            .map(|(k, _)| k.name.clone())
            .collect()
    }

    const FILE: &str = "services:\n  web: {image: a}\n  debug: {image: b, profiles: [debug]}\n  tools: {image: c, profiles: [tools, debug]}\n";

    #[test]
    fn profiles_enable_services() {
        let mut n = root(FILE);
        apply(&mut n, &[], &[]).unwrap();
        assert_eq!(names(&n), ["web"]);
        let mut n = root(FILE);
        apply(&mut n, &["debug".into()], &[]).unwrap();
        assert_eq!(names(&n), ["web", "debug", "tools"]);
        let mut n = root(FILE);
        apply(&mut n, &[], &["tools".into()]).unwrap();
        assert_eq!(names(&n), ["web", "tools"]);
        let mut n = root(FILE);
        apply(&mut n, &["*".into()], &[]).unwrap();
        assert_eq!(names(&n).len(), 3);
        assert_eq!(all_profiles(&root(FILE)), ["debug", "tools"]);
    }

    #[test]
    fn dependency_on_disabled_service() {
        let text = "services:\n  web:\n    image: a\n    depends_on:\n      debug: {condition: service_started}\n  debug: {image: b, profiles: [debug]}\n";
        let mut n = root(text);
        let e = apply(&mut n, &[], &[]).unwrap_err();
        assert!(e.to_string().contains("disabled"), "{e}");
        assert_eq!(e.loc().unwrap().line, 5);
        let text = text.replace("condition: service_started", "required: false");
        let mut n = root(&text);
        apply(&mut n, &[], &[]).unwrap();
        assert_eq!(names(&n), ["web"]);
    }
}
