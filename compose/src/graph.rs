//! The dependency graph of a project's services: start order, reverse stop order, and the sets of
//! services that can start in parallel.
//!
//! Edges come from every way one service can need another: `depends_on`, `links`,
//! `network_mode` / `ipc` / `pid` of the form `service:X`, and `volumes_from`.

use std::collections::{BTreeSet, HashMap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", .0.join(" -> "))]
pub struct CycleError(pub Vec<String>);

/// Services and "needs" edges (an edge a → b means a needs b started first).
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl DependencyGraph {
    /// Builds the graph from `(service, services it needs)` pairs; needs naming unknown services
    /// are ignored (validation reports them).
    pub fn new<I, D>(services: I) -> Self
    where
        I: IntoIterator<Item = (String, D)>,
        D: IntoIterator<Item = String>,
    {
        let mut g = DependencyGraph::default();
        let pairs: Vec<(String, Vec<String>)> = services
            .into_iter()
            .map(|(s, d)| (s, d.into_iter().collect()))
            .collect();
        for (s, _) in &pairs {
            let i = g.graph.add_node(s.clone());
            g.index.insert(s.clone(), i);
        }
        for (s, deps) in &pairs {
            for d in deps {
                if let (Some(&a), Some(&b)) = (g.index.get(s), g.index.get(d)) {
                    if !g.graph.contains_edge(a, b) {
                        g.graph.add_edge(a, b, ());
                    }
                }
            }
        }
        g
    }

    /// Builds the graph of a canonical project tree.
    pub fn from_project(root: &Node) -> Self {
        let services = root
            .get("services")
            .and_then(Node::as_map)
            .map(|s| {
                s.iter()
                    .map(|(k, svc)| (k.name.clone(), needs(svc)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        DependencyGraph::new(services)
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.graph.node_weights().map(String::as_str)
    }

    /// A dependency cycle, if there is one, as the path that closes it (`a -> b -> a`).
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                // Walk the cycle inside the component from its smallest name, for stable output.
                let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
                let start = *scc.iter().min_by_key(|i| &self.graph[**i])?;
                let mut path = vec![self.graph[start].clone()];
                let mut cur = start;
                let mut seen = vec![start];
                loop {
                    let mut next: Vec<NodeIndex> = self
                        .graph
                        .neighbors_directed(cur, Direction::Outgoing)
                        .filter(|n| members.contains(n))
                        .collect();
                    next.sort_by_key(|n| &self.graph[*n]);
                    let n = *next.first()?;
                    path.push(self.graph[n].clone());
                    if n == start || seen.contains(&n) {
                        break;
                    }
                    seen.push(n);
                    cur = n;
                }
                return Some(path);
            }
        }
        None
    }

    /// Services grouped in levels: every service in a level needs only services of earlier
    /// levels, so each level can start in parallel. Names are sorted within a level.
    pub fn start_levels(&self) -> Result<Vec<Vec<String>>, CycleError> {
        if let Some(c) = self.find_cycle() {
            return Err(CycleError(c));
        }
        let mut remaining: HashMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|i| {
                (
                    i,
                    self.graph
                        .neighbors_directed(i, Direction::Outgoing)
                        .count(),
                )
            })
            .collect();
        let mut levels = Vec::new();
        while !remaining.is_empty() {
            let mut ready: Vec<NodeIndex> = remaining
                .iter()
                .filter(|(_, n)| **n == 0)
                .map(|(i, _)| *i)
                .collect();
            if ready.is_empty() {
                // Unreachable after the cycle check; refuse rather than loop forever.
                return Err(CycleError(Vec::new()));
            }
            ready.sort_by_key(|i| &self.graph[*i]);
            for i in &ready {
                remaining.remove(i);
                for dependent in self.graph.neighbors_directed(*i, Direction::Incoming) {
                    if let Some(n) = remaining.get_mut(&dependent) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            levels.push(ready.iter().map(|i| self.graph[*i].clone()).collect());
        }
        Ok(levels)
    }

    /// One start order (levels flattened).
    pub fn start_order(&self) -> Result<Vec<String>, CycleError> {
        Ok(self.start_levels()?.into_iter().flatten().collect())
    }

    /// The order to stop in: dependents before what they depend on.
    pub fn stop_order(&self) -> Result<Vec<String>, CycleError> {
        let mut order = self.start_order()?;
        order.reverse();
        Ok(order)
    }

    /// What `service` needs directly.
    pub fn dependencies(&self, service: &str) -> Vec<String> {
        self.neighbors(service, Direction::Outgoing)
    }

    /// Who needs `service` directly.
    pub fn dependents(&self, service: &str) -> Vec<String> {
        self.neighbors(service, Direction::Incoming)
    }

    fn neighbors(&self, service: &str, dir: Direction) -> Vec<String> {
        let mut v: Vec<String> = self
            .index
            .get(service)
            .map(|i| {
                self.graph
                    .neighbors_directed(*i, dir)
                    .map(|n| self.graph[n].clone())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `services` and everything they need, transitively (for `up svc` and `--with-dependencies`).
    pub fn with_dependencies(&self, services: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<String> = services.to_vec();
        while let Some(s) = stack.pop() {
            if out.insert(s.clone()) {
                stack.extend(self.dependencies(&s));
            }
        }
        out
    }
}

/// The services `svc` needs, by any of the ways Compose lets it say so.
pub fn needs(svc: &Node) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(deps) = svc.get("depends_on").and_then(Node::as_map) {
        out.extend(deps.iter().map(|(k, _)| k.name.clone()));
    }
    if let Some(links) = svc.get("links").and_then(Node::as_seq) {
        for l in links.iter().filter_map(Node::as_scalar) {
            out.push(l.split(':').next().unwrap_or(l).to_string());
        }
    }
    for key in ["network_mode", "ipc", "pid"] {
        if let Some(s) = svc
            .get(key)
            .and_then(Node::as_scalar)
            .and_then(|v| v.strip_prefix("service:"))
        {
            out.push(s.to_string());
        }
    }
    if let Some(vf) = svc.get("volumes_from").and_then(Node::as_seq) {
        for v in vf.iter().filter_map(Node::as_scalar) {
            if let Some(s) = volumes_from_service(v) {
                out.push(s.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `volumes_from` names a service (`svc`, `svc:ro`, `service:svc`) or a container
/// (`container:name`); only the former is a dependency.
pub fn volumes_from_service(v: &str) -> Option<&str> {
    if v.starts_with("container:") {
        return None;
    }
    let v = v.strip_prefix("service:").unwrap_or(v);
    Some(v.split(':').next().unwrap_or(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> DependencyGraph {
        DependencyGraph::new(edges.iter().map(|(s, d)| {
            (
                s.to_string(),
                d.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            )
        }))
    }

    #[test]
    fn levels_and_orders() {
        let graph = g(&[
            ("web", &["app"]),
            ("app", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("worker", &["db"]),
        ]);
        assert_eq!(
            graph.start_levels().unwrap(),
            vec![vec!["cache", "db"], vec!["app", "worker"], vec!["web"]]
        );
        let stop = graph.stop_order().unwrap();
        assert_eq!(stop.first().map(String::as_str), Some("web"));
        assert_eq!(graph.dependents("db"), ["app", "worker"]);
        assert_eq!(
            graph
                .with_dependencies(&["web".into()])
                .into_iter()
                .collect::<Vec<_>>(),
            ["app", "cache", "db", "web"]
        );
    }

    #[test]
    fn cycles_are_reported() {
        let graph = g(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert_eq!(graph.find_cycle().unwrap(), ["a", "b", "c", "a"]);
        assert!(graph.start_levels().is_err());
        let graph = g(&[("a", &["a"])]);
        assert_eq!(graph.find_cycle().unwrap(), ["a", "a"]);
    }

    #[test]
    fn volumes_from_forms() {
        assert_eq!(volumes_from_service("db:ro"), Some("db"));
        assert_eq!(volumes_from_service("service:db"), Some("db"));
        assert_eq!(volumes_from_service("container:x"), None);
    }
}
