//! Checks the schema cannot express: references to services and resources that do not exist,
//! dependency cycles, duplicate container names, and options that contradict each other. Each
//! error points at the value that is wrong.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::error::LoadError;
use crate::graph::{self, DependencyGraph};
use crate::yaml::{Key, Loc, Node};

type Result<T> = std::result::Result<T, LoadError>;

pub fn validate(root: &Node) -> Result<()> {
    let empty = Vec::new();
    let services = root
        .get("services")
        .and_then(Node::as_map)
        .unwrap_or(&empty);
    let names: HashSet<&str> = services.iter().map(|(k, _)| k.name.as_str()).collect();
    let declared = |kind: &str, name: &str| root.get(kind).and_then(|s| s.get(name)).is_some();

    let mut container_names: HashMap<String, Loc> = HashMap::new();
    for (key, svc) in services {
        service(key, svc, &names, &declared)?;
        if let Some(cn) = svc.get("container_name") {
            if let Some(name) = cn.as_scalar() {
                if let Some(first) = container_names.get(name) {
                    return Err(LoadError::at(
                        &cn.loc,
                        format!(
                            "container name {name:?} is already used by another service (at {first})"
                        ),
                    ));
                }
                container_names.insert(name.to_string(), cn.loc.clone());
            }
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(entries) = root.get(kind).and_then(Node::as_map) {
            for (k, res) in entries {
                resource(kind, k, res)?;
            }
        }
    }
    let graph = DependencyGraph::from_project(root);
    if let Some(cycle) = graph.find_cycle() {
        let loc = services
            .iter()
            .find(|(k, _)| Some(&k.name) == cycle.first())
            .map(|(k, svc)| {
                svc.get("depends_on")
                    .map(|d| d.loc.clone())
                    .unwrap_or_else(|| k.loc.clone())
            })
            .unwrap_or_else(Loc::none);
        return Err(LoadError::at(
            &loc,
            format!("dependency cycle between services: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

fn undefined_service(at: &Loc, svc: &str, what: &str, target: &str) -> LoadError {
    LoadError::at(
        at,
        format!("service {svc:?} {what} undefined service {target:?}"),
    )
}

fn service(
    key: &Key,
    svc: &Node,
    names: &HashSet<&str>,
    declared: &dyn Fn(&str, &str) -> bool,
) -> Result<()> {
    let name = key.name.as_str();
    if svc.get("image").is_none() && svc.get("build").is_none() {
        return Err(LoadError::at(
            &key.loc,
            format!("service {name:?} has neither an image nor a build context specified"),
        ));
    }
    if let Some(deps) = svc.get("depends_on").and_then(Node::as_map) {
        for (d, cfg) in deps {
            let optional = cfg.get("required").map(Node::to_value) == Some(Value::Bool(false));
            if !names.contains(&d.name.as_str()) && !optional {
                return Err(undefined_service(&d.loc, name, "depends on", &d.name));
            }
        }
    }
    if let Some(links) = svc.get("links").and_then(Node::as_seq) {
        for l in links {
            let target = l.as_scalar().unwrap_or_default();
            let target = target.split(':').next().unwrap_or(target);
            if !names.contains(&target) {
                return Err(undefined_service(&l.loc, name, "links to", target));
            }
        }
    }
    for field in ["network_mode", "ipc", "pid"] {
        if let Some(n) = svc.get(field) {
            if let Some(target) = n.as_scalar().and_then(|v| v.strip_prefix("service:")) {
                if !names.contains(&target) {
                    return Err(undefined_service(
                        &n.loc,
                        name,
                        &format!("uses in {field}"),
                        target,
                    ));
                }
            }
        }
    }
    if let Some(vf) = svc.get("volumes_from").and_then(Node::as_seq) {
        for v in vf {
            if let Some(target) = v.as_scalar().and_then(graph::volumes_from_service) {
                if !names.contains(&target) {
                    return Err(undefined_service(
                        &v.loc,
                        name,
                        "takes volumes from",
                        target,
                    ));
                }
            }
        }
    }
    if svc.get("network_mode").is_some() {
        if let Some(n) = svc.get("networks") {
            return Err(LoadError::at(
                &n.loc,
                format!("service {name:?} declares both network_mode and networks, which exclude each other"),
            ));
        }
    }
    if let Some(nets) = svc.get("networks").and_then(Node::as_map) {
        for (n, _) in nets {
            if n.name != "default" && !declared("networks", &n.name) {
                return Err(LoadError::at(
                    &n.loc,
                    format!("service {name:?} refers to undefined network {:?}", n.name),
                ));
            }
        }
    }
    if let Some(vols) = svc.get("volumes").and_then(Node::as_seq) {
        for v in vols {
            let is_volume = v.get("type").and_then(Node::as_scalar) == Some("volume");
            if let (true, Some(src)) = (is_volume, v.get("source")) {
                let s = src.as_scalar().unwrap_or_default();
                if !s.is_empty() && !declared("volumes", s) {
                    return Err(LoadError::at(
                        &src.loc,
                        format!("service {name:?} refers to undefined volume {s:?}"),
                    ));
                }
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(refs) = svc.get(kind).and_then(Node::as_seq) {
            for r in refs {
                if let Some(src) = r.get("source") {
                    let s = src.as_scalar().unwrap_or_default();
                    if !declared(kind, s) {
                        let what = &kind[..kind.len() - 1];
                        return Err(LoadError::at(
                            &src.loc,
                            format!("service {name:?} refers to undefined {what} {s:?}"),
                        ));
                    }
                }
            }
        }
    }
    if let Some(cn) = svc.get("container_name") {
        let replicas = svc
            .get("deploy")
            .and_then(|d| d.get("replicas"))
            .or_else(|| svc.get("scale"))
            .and_then(|r| r.to_value().as_i64())
            .unwrap_or(1);
        if replicas > 1 {
            return Err(LoadError::at(
                &cn.loc,
                format!(
                    "service {name:?} sets container_name and {replicas} replicas; a container \
                     name must be unique, so it allows one replica only"
                ),
            ));
        }
    }
    if let (Some(s), Some(d)) = (
        svc.get("scale").and_then(|n| n.to_value().as_i64()),
        svc.get("deploy")
            .and_then(|d| d.get("replicas"))
            .and_then(|n| n.to_value().as_i64()),
    ) {
        if s != d {
            return Err(LoadError::at(
                &svc.get("scale")
                    .map(|n| n.loc.clone())
                    .unwrap_or_else(Loc::none),
                format!("service {name:?}: scale ({s}) and deploy.replicas ({d}) disagree"),
            ));
        }
    }
    Ok(())
}

fn resource(kind: &str, key: &Key, res: &Node) -> Result<()> {
    let what = &kind[..kind.len() - 1];
    let external = res.get("external").map(Node::to_value) == Some(Value::Bool(true));
    if external {
        for conflicting in [
            "driver",
            "driver_opts",
            "ipam",
            "labels",
            "file",
            "environment",
            "content",
        ] {
            if let Some(n) = res.get(conflicting) {
                return Err(LoadError::at(
                    &n.loc,
                    format!(
                        "{what} {:?} is external, so it cannot also set {conflicting:?}",
                        key.name
                    ),
                ));
            }
        }
    }
    if matches!(kind, "secrets" | "configs") && !external {
        let sources: Vec<&str> = ["file", "environment", "content"]
            .into_iter()
            .filter(|s| res.get(s).is_some())
            .collect();
        let driver = res.get("driver").is_some();
        match (sources.len(), driver) {
            (1, _) | (0, true) => {}
            (0, false) => {
                return Err(LoadError::at(
                    &key.loc,
                    format!(
                        "{what} {:?} needs one of file, environment or content (or external: true)",
                        key.name
                    ),
                ))
            }
            _ => {
                return Err(LoadError::at(
                    &key.loc,
                    format!(
                        "{what} {:?} sets more than one of {}",
                        key.name,
                        sources.join(", ")
                    ),
                ))
            }
        }
        if kind == "secrets" && res.get("content").is_some() {
            return Err(LoadError::at(
                &key.loc,
                format!("secret {:?}: content is only allowed for configs", key.name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonicalize, CanonOptions};
    use crate::yaml::{parse, Source};

    fn check(text: &str) -> Result<()> {
        let mut n = parse(&Source::new("c.yaml", text)).unwrap();
        canonicalize(&mut n, CanonOptions::default()).unwrap();
        validate(&n)
    }

    fn line_of(text: &str) -> usize {
        check(text).unwrap_err().loc().map(|l| l.line).unwrap_or(0)
    }

    #[test]
    fn undefined_references() {
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    depends_on: [b]\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    links: ['b:alias']\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    network_mode: service:b\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    volumes_from: [b]\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    networks: [n]\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    volumes: ['vol:/d']\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    secrets: [s]\n"),
            4
        );
        assert_eq!(
            line_of("services:\n  a:\n    image: x\n    configs: [c]\n"),
            4
        );
        check("services:\n  a:\n    image: x\n    depends_on: {b: {required: false}}\n").unwrap();
    }

    #[test]
    fn cycles_and_duplicates() {
        let e = check("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n").unwrap_err();
        assert!(e.to_string().contains("a -> b -> a"), "{e}");
        assert_eq!(e.loc().unwrap().line, 4);
        let e = check(
            "services:\n  a: {image: x, container_name: c}\n  b: {image: x, container_name: c}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("already used"), "{e}");
        assert_eq!(e.loc().unwrap().line, 3);
    }

    #[test]
    fn contradictions() {
        let e = check(
            "services:\n  a: {image: x}\nnetworks:\n  n:\n    external: true\n    driver: bridge\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("external"), "{e}");
        assert_eq!(e.loc().unwrap().line, 6);
        assert!(check(
            "services:\n  a: {image: x, network_mode: host, networks: [n]}\nnetworks: {n: {}}\n"
        )
        .is_err());
        assert!(
            check("services:\n  a: {image: x, container_name: c, deploy: {replicas: 2}}\n")
                .is_err()
        );
        assert!(check("services:\n  a: {build: .}\n").is_ok());
        assert!(check("services:\n  a: {command: x}\n").is_err());
        assert!(
            check("services:\n  a: {image: x}\nsecrets:\n  s: {file: a, environment: B}\n")
                .is_err()
        );
        assert!(check("services:\n  a: {image: x}\nsecrets:\n  s: {}\n").is_err());
    }
}
