//! The planner: desired state (project × options) against observed state → a DAG of small
//! operations, each with the reason it is there. The runner executes it without deciding
//! anything; `--dry-run` prints it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use petgraph::graph::{DiGraph, NodeIndex};

use super::observe::{Existing, Observed};
use super::translate::{container_name, network_name, volume_name};
use super::OrchestrateError;
use crate::model::{DependsCondition, Project, Service};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateNetwork {
        name: String,
    },
    CreateVolume {
        name: String,
    },
    PullImage {
        image: String,
    },
    /// A new container for replica `number` of `service`.
    CreateContainer {
        service: String,
        number: u32,
        name: String,
    },
    /// Replace a container whose configuration changed (anonymous volumes carried over).
    RecreateContainer {
        service: String,
        number: u32,
        name: String,
        old_id: String,
    },
    StartContainer {
        service: String,
        name: String,
    },
    RestartContainer {
        service: String,
        name: String,
    },
    /// Running and up to date: nothing to do, but dependents wait on its condition.
    Keep {
        service: String,
        name: String,
    },
    StopContainer {
        name: String,
    },
    RemoveContainer {
        name: String,
        id: String,
    },
    RemoveNetwork {
        name: String,
    },
    RemoveVolume {
        name: String,
    },
}

impl Op {
    /// What kind of object, and its name (`Container p-web-1`), as progress lines show it.
    pub fn subject(&self) -> (&'static str, &str) {
        match self {
            Op::CreateNetwork { name } | Op::RemoveNetwork { name } => ("Network", name),
            Op::CreateVolume { name } | Op::RemoveVolume { name } => ("Volume", name),
            Op::PullImage { image } => ("Image", image),
            Op::CreateContainer { name, .. }
            | Op::RecreateContainer { name, .. }
            | Op::StartContainer { name, .. }
            | Op::RestartContainer { name, .. }
            | Op::Keep { name, .. }
            | Op::StopContainer { name }
            | Op::RemoveContainer { name, .. } => ("Container", name),
        }
    }

    /// The verb shown while it runs and when it is done.
    pub fn verbs(&self) -> (&'static str, &'static str) {
        match self {
            Op::CreateNetwork { .. } | Op::CreateVolume { .. } | Op::CreateContainer { .. } => {
                ("Creating", "Created")
            }
            Op::PullImage { .. } => ("Pulling", "Pulled"),
            Op::RecreateContainer { .. } => ("Recreating", "Recreated"),
            Op::StartContainer { .. } => ("Starting", "Started"),
            Op::RestartContainer { .. } => ("Restarting", "Restarted"),
            Op::Keep { .. } => ("Running", "Running"),
            Op::StopContainer { .. } => ("Stopping", "Stopped"),
            Op::RemoveContainer { .. } | Op::RemoveNetwork { .. } | Op::RemoveVolume { .. } => {
                ("Removing", "Removed")
            }
        }
    }

    /// The container a dependent's condition is checked on.
    pub fn container(&self) -> Option<&str> {
        match self {
            Op::StartContainer { name, .. }
            | Op::RestartContainer { name, .. }
            | Op::Keep { name, .. }
            | Op::CreateContainer { name, .. }
            | Op::RecreateContainer { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// One node: the operation and why it is planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub cause: String,
}

/// What a step waits for on a predecessor: that it is done, or a `depends_on` condition of the
/// predecessor's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Done,
    Condition(DependsCondition),
}

#[derive(Debug, Default)]
pub struct Plan {
    pub graph: DiGraph<Step, Wait>,
}

impl Plan {
    fn add(&mut self, op: Op, cause: impl Into<String>) -> NodeIndex {
        self.graph.add_node(Step {
            op,
            cause: cause.into(),
        })
    }

    fn edge(&mut self, from: NodeIndex, to: NodeIndex, w: Wait) {
        if from != to && self.graph.find_edge(from, to).is_none() {
            self.graph.add_edge(from, to, w);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Steps in an order the runner could take (dependencies first).
    pub fn ordered(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None).unwrap_or_default()
    }

    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.ordered().into_iter().map(move |i| &self.graph[i])
    }

    /// The steps whose operation `keep` accepts, with the edges between them.
    pub fn only(&self, keep: impl Fn(&Op) -> bool) -> Plan {
        let mut out = Plan::default();
        let mut map = HashMap::new();
        for i in self.graph.node_indices() {
            if keep(&self.graph[i].op) {
                map.insert(i, out.graph.add_node(self.graph[i].clone()));
            }
        }
        for e in self.graph.edge_indices() {
            if let Some((a, b)) = self.graph.edge_endpoints(e) {
                if let (Some(x), Some(y)) = (map.get(&a), map.get(&b)) {
                    out.graph.add_edge(*x, *y, self.graph[e]);
                }
            }
        }
        out
    }

    /// Whether anything but `Keep` is planned.
    pub fn changes_something(&self) -> bool {
        self.graph
            .node_weights()
            .any(|s| !matches!(s.op, Op::Keep { .. }))
    }
}

impl fmt::Display for Plan {
    /// The `--dry-run` listing: one line per step, in run order, with its cause and what it
    /// waits for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.ordered() {
            let s = &self.graph[i];
            let (kind, name) = s.op.subject();
            let (verb, _) = s.op.verbs();
            let waits: Vec<String> = self
                .graph
                .edges_directed(i, petgraph::Direction::Incoming)
                .filter_map(|e| match e.weight() {
                    Wait::Condition(c) => {
                        let (_, n) = self.graph[petgraph::visit::EdgeRef::source(&e)]
                            .op
                            .subject();
                        Some(format!("{n} {}", c.as_str()))
                    }
                    Wait::Done => None,
                })
                .collect();
            write!(f, "{verb:<11} {kind} {name}  ({})", s.cause)?;
            if !waits.is_empty() {
                write!(f, " after {}", waits.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services named on the command line (empty: all).
    pub services: Vec<String>,
    pub no_deps: bool,
    /// Recreate the named services (all when none is named) even when up to date.
    pub force_recreate: bool,
    pub no_recreate: bool,
    /// Recreate the dependencies the named services pull in even when up to date.
    pub always_recreate_deps: bool,
    pub no_start: bool,
    pub remove_orphans: bool,
    /// `--pull`; `None` = each service's `pull_policy` (default missing).
    pub pull: Option<PullPolicy>,
    pub scale: BTreeMap<String, u32>,
}

/// What the planner knows about the world besides containers.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub observed: Observed,
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    /// Image name as written in the service → local image id.
    pub images: BTreeMap<String, String>,
}

/// The result of planning `up`.
#[derive(Debug, Default)]
pub struct UpPlan {
    pub plan: Plan,
    /// Containers of services not in the project, left alone (without `--remove-orphans`).
    pub orphans: Vec<String>,
}

/// The services `up` works on: the named ones and (unless `no_deps`) what they need.
pub fn selected_services(
    project: &Project,
    names: &[String],
    no_deps: bool,
) -> Result<Vec<String>, OrchestrateError> {
    if names.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    let mut chosen = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        let Some(s) = project.services.get(&n) else {
            return Err(OrchestrateError::NoSuchService(n));
        };
        if chosen.insert(n.clone()) && !no_deps {
            for (dep, d) in &s.depends_on {
                if project.services.contains_key(dep) || d.required {
                    todo.push(dep.clone());
                }
            }
            todo.extend(s.network_mode_service().map(str::to_owned));
            todo.extend(s.volumes_from_services().map(str::to_owned));
        }
    }
    Ok(project
        .services
        .keys()
        .filter(|k| chosen.contains(*k))
        .cloned()
        .collect())
}

fn image_wanted(svc: &Service, opts: &UpOptions) -> PullPolicy {
    if let Some(p) = opts.pull {
        return p;
    }
    match svc.pull_policy.as_deref() {
        Some("always") => PullPolicy::Always,
        Some("never") | Some("build") => PullPolicy::Never,
        _ => PullPolicy::Missing,
    }
}

/// Plans `up`.
pub fn plan_up(
    project: &Project,
    hashes: &BTreeMap<String, String>,
    world: &World,
    opts: &UpOptions,
) -> Result<UpPlan, OrchestrateError> {
    let selected = selected_services(project, &opts.services, opts.no_deps)?;
    let mut out = UpPlan::default();
    let plan = &mut out.plan;

    // Networks and volumes the selected services use.
    let mut net_nodes: HashMap<String, NodeIndex> = HashMap::new();
    let mut vol_nodes: HashMap<String, NodeIndex> = HashMap::new();
    for key in &selected {
        let svc = &project.services[key];
        if svc.network_mode.is_none() || svc.network_mode.as_deref() == Some("bridge") {
            for net in svc.networks.keys() {
                let def = project.networks.get(net);
                let name = network_name(project, net);
                if world.networks.contains(&name) || net_nodes.contains_key(&name) {
                    continue;
                }
                if def.is_some_and(|d| d.external) {
                    return Err(OrchestrateError::Missing(format!(
                        "network {name} declared as external, but could not be found"
                    )));
                }
                let n = plan.add(
                    Op::CreateNetwork { name: name.clone() },
                    format!("used by {key}, does not exist"),
                );
                net_nodes.insert(name, n);
            }
        }
        for v in &svc.volumes {
            let Some(src) = v.source.as_deref() else {
                continue;
            };
            if v.kind != crate::model::MountType::Volume || !project.volumes.contains_key(src) {
                continue;
            }
            let name = volume_name(project, src);
            if world.volumes.contains(&name) || vol_nodes.contains_key(&name) {
                continue;
            }
            if project.volumes[src].external {
                return Err(OrchestrateError::Missing(format!(
                    "external volume {name:?} not found"
                )));
            }
            let n = plan.add(
                Op::CreateVolume { name: name.clone() },
                format!("used by {key}, does not exist"),
            );
            vol_nodes.insert(name, n);
        }
    }

    // Images.
    let mut pull_nodes: HashMap<String, NodeIndex> = HashMap::new();
    for key in &selected {
        let svc = &project.services[key];
        let image = svc.image_or_default(project);
        if pull_nodes.contains_key(&image) {
            continue;
        }
        let local = world.images.contains_key(&image);
        let policy = image_wanted(svc, opts);
        let cause = match (policy, local) {
            (PullPolicy::Always, _) => "pull policy always",
            (PullPolicy::Missing, false) if svc.build.is_none() => "not present locally",
            (_, true) => continue,
            (_, false) if svc.build.is_some() => {
                return Err(OrchestrateError::Service {
                    service: key.clone(),
                    msg: format!(
                        "image {image} is not present and must be built (`rcompose build`, or `up` without --no-build)"
                    ),
                })
            }
            (_, false) => {
                return Err(OrchestrateError::Service {
                    service: key.clone(),
                    msg: format!("image {image} is not present and pull policy is never"),
                })
            }
        };
        let n = plan.add(
            Op::PullImage {
                image: image.clone(),
            },
            cause,
        );
        pull_nodes.insert(image, n);
    }

    // Containers, per service.
    let mut finals: HashMap<String, Vec<NodeIndex>> = HashMap::new();
    let mut starts: HashMap<String, Vec<NodeIndex>> = HashMap::new();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let order = start_order(project, &selected)?;
    for key in &order {
        let svc = &project.services[key];
        let want = opts
            .scale
            .get(key)
            .copied()
            .unwrap_or_else(|| u32::try_from(svc.replicas()).unwrap_or(u32::MAX));
        let existing = world.observed.of(key);
        let image = svc.image_or_default(project);
        let hash = hashes.get(key).cloned().unwrap_or_default();
        // docker compose's two strategies: services named on the command line follow
        // --force-recreate, the dependencies they pull in follow --always-recreate-deps.
        let named = opts.services.is_empty() || opts.services.contains(key);
        let forced = if named {
            opts.force_recreate
        } else {
            opts.always_recreate_deps
        };
        // `network_mode: service:X` joins X's first container: it must exist (and run) first,
        // and a new X means a new namespace to join.
        let joins = svc.network_mode_service();
        let joined_now = joins.and_then(|j| {
            world
                .observed
                .of(j)
                .iter()
                .find(|x| x.number == 1)
                .map(|x| x.id.as_str())
        });
        let mut prereqs: Vec<NodeIndex> = Vec::new();
        for net in svc.networks.keys() {
            if let Some(n) = net_nodes.get(&network_name(project, net)) {
                prereqs.push(*n);
            }
        }
        for v in &svc.volumes {
            if let Some(src) = v.source.as_deref() {
                if let Some(n) = vol_nodes.get(&volume_name(project, src)) {
                    prereqs.push(*n);
                }
            }
        }
        if let Some(n) = pull_nodes.get(&image) {
            prereqs.push(*n);
        }
        let mut my_finals = Vec::new();
        let mut my_starts = Vec::new();
        for e in existing.iter().filter(|e| e.number > want || e.number == 0) {
            plan.add(
                Op::RemoveContainer {
                    name: e.name.clone(),
                    id: e.id.clone(),
                },
                format!("scaled down to {want}"),
            );
        }
        for number in 1..=want {
            let name = container_name(&project.name, svc, number);
            let found: Option<&Existing> = existing.iter().find(|e| e.number == number);
            let (node, start_needed) = match found {
                None => (
                    plan.add(
                        Op::CreateContainer {
                            service: key.clone(),
                            number,
                            name: name.clone(),
                        },
                        "does not exist",
                    ),
                    true,
                ),
                Some(e) => {
                    let cause = if forced && named {
                        Some("--force-recreate".to_string())
                    } else if forced {
                        Some("dependency of a named service (--always-recreate-deps)".to_string())
                    } else if opts.no_recreate {
                        None
                    } else if e.config_hash != hash {
                        Some("configuration changed".to_string())
                    } else if world
                        .images
                        .get(&image)
                        .is_some_and(|id| !e.image_id.is_empty() && *id != e.image_id)
                    {
                        Some("image changed".to_string())
                    } else {
                        joins
                            .filter(|j| {
                                changed.contains(*j) || e.joined.as_deref() != joined_now
                            })
                            .map(|j| {
                                format!(
                                    "joins the network namespace of {j}, whose container was replaced"
                                )
                            })
                    };
                    match cause {
                        Some(cause) => (
                            plan.add(
                                Op::RecreateContainer {
                                    service: key.clone(),
                                    number,
                                    name: e.name.clone(),
                                    old_id: e.id.clone(),
                                },
                                cause,
                            ),
                            true,
                        ),
                        None if e.running => {
                            let restart = svc
                                .depends_on
                                .iter()
                                .any(|(d, dep)| dep.restart && changed.contains(d));
                            if restart && !opts.no_start {
                                let n = plan.add(
                                    Op::RestartContainer {
                                        service: key.clone(),
                                        name: e.name.clone(),
                                    },
                                    "a dependency with restart: true was replaced",
                                );
                                my_starts.push(n);
                                (n, false)
                            } else {
                                (
                                    plan.add(
                                        Op::Keep {
                                            service: key.clone(),
                                            name: e.name.clone(),
                                        },
                                        "up to date",
                                    ),
                                    false,
                                )
                            }
                        }
                        None => (
                            plan.add(
                                Op::Keep {
                                    service: key.clone(),
                                    name: e.name.clone(),
                                },
                                "up to date, not running",
                            ),
                            true,
                        ),
                    }
                }
            };
            if matches!(
                plan.graph[node].op,
                Op::CreateContainer { .. } | Op::RecreateContainer { .. }
            ) {
                changed.insert(key.clone());
            }
            for p in &prereqs {
                plan.edge(*p, node, Wait::Done);
            }
            if let Some(targets) = joins.and_then(|j| finals.get(j)) {
                let wait = if opts.no_start {
                    Wait::Done
                } else {
                    Wait::Condition(DependsCondition::ServiceStarted)
                };
                for t in targets.iter().take(1) {
                    plan.edge(*t, node, wait);
                }
            }
            // `volumes_from`: the engine copies the source container's mounts when this one is
            // created, so the source's first replica must exist (and be done) by then.
            for src in svc.volumes_from_services() {
                if let Some(t) = finals.get(src).and_then(|f| f.first()) {
                    plan.edge(*t, node, Wait::Done);
                }
            }
            let fin = if start_needed && !opts.no_start {
                let s = plan.add(
                    Op::StartContainer {
                        service: key.clone(),
                        name: name_of(&plan.graph[node].op),
                    },
                    match &plan.graph[node].op {
                        Op::Keep { .. } => "not running",
                        _ => "created",
                    },
                );
                plan.edge(node, s, Wait::Done);
                my_starts.push(s);
                s
            } else {
                node
            };
            my_finals.push(fin);
        }
        // depends_on: this service's starts wait for each dependency's condition.
        for (dep, d) in &svc.depends_on {
            let Some(dep_finals) = finals.get(dep) else {
                continue;
            };
            for s in my_starts.iter().chain(my_finals.iter()) {
                if !matches!(
                    plan.graph[*s].op,
                    Op::StartContainer { .. } | Op::RestartContainer { .. }
                ) {
                    continue;
                }
                for df in dep_finals {
                    plan.edge(*df, *s, Wait::Condition(d.condition));
                }
            }
        }
        finals.insert(key.clone(), my_finals);
        starts.insert(key.clone(), my_starts);
    }

    // Orphans.
    for (svc, list) in &world.observed.services {
        if project.services.contains_key(svc) {
            continue;
        }
        for e in list {
            if opts.remove_orphans {
                plan.add(
                    Op::RemoveContainer {
                        name: e.name.clone(),
                        id: e.id.clone(),
                    },
                    format!("orphan: service {svc} is not in the project"),
                );
            } else {
                out.orphans.push(e.name.clone());
            }
        }
    }
    Ok(out)
}

fn name_of(op: &Op) -> String {
    op.subject().1.to_owned()
}

/// `selected` in an order where dependencies come first.
fn start_order(project: &Project, selected: &[String]) -> Result<Vec<String>, OrchestrateError> {
    let graph = crate::graph::DependencyGraph::new(selected.iter().map(|s| {
        let svc = &project.services[s];
        let deps: Vec<String> = svc
            .depends_on
            .keys()
            .map(String::as_str)
            .chain(svc.network_mode_service())
            .chain(svc.volumes_from_services())
            .filter(|d| selected.iter().any(|x| x == d))
            .map(str::to_owned)
            .collect();
        (s.clone(), deps)
    }));
    graph
        .start_order()
        .map_err(|e| OrchestrateError::Plan(e.to_string()))
}

/// What `down` removes.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub remove_orphans: bool,
    pub volumes: bool,
}

/// Plans `down`: containers (dependents before their dependencies), then the project's
/// networks and, with `-v`, its volumes.
pub fn plan_down(
    project: &Project,
    observed: &Observed,
    networks: &BTreeSet<String>,
    volumes: &BTreeSet<String>,
    opts: &DownOptions,
) -> Result<Plan, OrchestrateError> {
    let mut plan = Plan::default();
    let mut by_service: HashMap<String, Vec<NodeIndex>> = HashMap::new();
    for (svc, list) in &observed.services {
        let in_project = project.services.contains_key(svc);
        if !in_project && !opts.remove_orphans {
            continue;
        }
        for e in list {
            let n = plan.add(
                Op::RemoveContainer {
                    name: e.name.clone(),
                    id: e.id.clone(),
                },
                if in_project {
                    "down".to_string()
                } else {
                    format!("orphan: service {svc} is not in the project")
                },
            );
            by_service.entry(svc.clone()).or_default().push(n);
        }
    }
    for e in &observed.oneoff {
        let n = plan.add(
            Op::RemoveContainer {
                name: e.name.clone(),
                id: e.id.clone(),
            },
            "one-off container of the project",
        );
        by_service.entry(e.service.clone()).or_default().push(n);
    }
    // A dependency goes after what depends on it.
    for (svc, s) in &project.services {
        for dep in s.depends_on.keys() {
            let (Some(mine), Some(theirs)) = (by_service.get(svc), by_service.get(dep)) else {
                continue;
            };
            for m in mine.clone() {
                for t in theirs.clone() {
                    plan.edge(m, t, Wait::Done);
                }
            }
        }
    }
    let containers: Vec<NodeIndex> = plan.graph.node_indices().collect();
    let mut tail = Vec::new();
    for name in networks {
        tail.push(plan.add(
            Op::RemoveNetwork { name: name.clone() },
            "network of the project",
        ));
    }
    if opts.volumes {
        for name in volumes {
            tail.push(plan.add(
                Op::RemoveVolume { name: name.clone() },
                "volume of the project (-v)",
            ));
        }
    }
    for t in tail {
        for c in &containers {
            plan.edge(*c, t, Wait::Done);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        crate::orchestrate::test_project(yaml)
    }

    const STACK: &str = "services:\n  web:\n    image: busybox\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: busybox\n    volumes: [data:/data]\nvolumes:\n  data: {}\n";

    fn hashes(p: &Project) -> BTreeMap<String, String> {
        p.services
            .keys()
            .map(|k| (k.clone(), format!("h-{k}")))
            .collect()
    }

    fn with_images(p: &Project) -> World {
        let mut w = World::default();
        for s in p.services.values() {
            w.images.insert(s.image_or_default(p), "sha256:i".into());
        }
        w
    }

    fn lines(plan: &Plan) -> Vec<String> {
        plan.to_string().lines().map(str::to_owned).collect()
    }

    #[test]
    fn fresh_up_creates_everything_in_order() {
        let p = project(STACK);
        let out = plan_up(&p, &hashes(&p), &World::default(), &UpOptions::default()).unwrap();
        let text = out.plan.to_string();
        for want in [
            "Creating    Network p_default",
            "Creating    Volume p_data",
            "Pulling     Image busybox  (not present locally)",
            "Creating    Container p-db-1  (does not exist)",
            "Starting    Container p-web-1  (created) after p-db-1 service_healthy",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
        let l = lines(&out.plan);
        let pos = |s: &str| l.iter().position(|x| x.contains(s)).unwrap();
        assert!(pos("Creating    Volume p_data") < pos("Creating    Container p-db-1"));
        assert!(pos("Starting    Container p-db-1") < pos("Starting    Container p-web-1"));
        assert_eq!(out.plan.graph.node_count(), 7);
    }

    fn running(p: &Project, svc: &str, n: u32, hash: &str) -> Existing {
        Existing {
            id: format!("id-{svc}-{n}"),
            name: format!("{}-{svc}-{n}", p.name),
            service: svc.into(),
            number: n,
            config_hash: hash.into(),
            image_id: "sha256:i".into(),
            running: true,
            joined: None,
        }
    }

    fn converged(p: &Project) -> World {
        let mut w = with_images(p);
        w.networks.insert("p_default".into());
        w.volumes.insert("p_data".into());
        for s in p.services.keys() {
            w.observed
                .services
                .insert(s.clone(), vec![running(p, s, 1, &format!("h-{s}"))]);
        }
        w
    }

    #[test]
    fn second_up_changes_nothing() {
        let p = project(STACK);
        let out = plan_up(&p, &hashes(&p), &converged(&p), &UpOptions::default()).unwrap();
        assert!(!out.plan.changes_something(), "{}", out.plan);
    }

    #[test]
    fn changed_service_is_recreated_alone() {
        let p = project(STACK);
        let mut h = hashes(&p);
        h.insert("web".into(), "new".into());
        let out = plan_up(&p, &h, &converged(&p), &UpOptions::default()).unwrap();
        let text = out.plan.to_string();
        assert!(
            text.contains("Recreating  Container p-web-1  (configuration changed)"),
            "{text}"
        );
        assert!(
            text.contains("Running     Container p-db-1  (up to date)"),
            "{text}"
        );
        assert!(!text.contains("p-db-1  (configuration"), "{text}");
    }

    #[test]
    fn network_mode_service_follows_the_joined_container() {
        let p = project("services:\n  vpn:\n    image: busybox\n  app:\n    image: busybox\n    network_mode: 'service:vpn'\n");
        // Fresh: app is created only once vpn's container runs.
        let out = plan_up(&p, &hashes(&p), &with_images(&p), &UpOptions::default()).unwrap();
        let g = &out.plan.graph;
        let find = |verb: &str, name: &str| {
            g.node_indices()
                .find(|i| g[*i].op.verbs().0 == verb && g[*i].op.subject().1 == name)
                .unwrap()
        };
        let edge = g
            .find_edge(find("Starting", "p-vpn-1"), find("Creating", "p-app-1"))
            .expect("app's create waits for vpn's start");
        assert_eq!(g[edge], Wait::Condition(DependsCondition::ServiceStarted));

        // Converged, with app joined to vpn's current container: nothing to do.
        let mut w = converged(&p);
        w.volumes.clear();
        for e in w.observed.services.get_mut("app").unwrap() {
            e.joined = Some("id-vpn-1".into());
        }
        let out = plan_up(&p, &hashes(&p), &w, &UpOptions::default()).unwrap();
        assert!(!out.plan.changes_something(), "{}", out.plan);

        // vpn recreated now: app follows.
        let mut h = hashes(&p);
        h.insert("vpn".into(), "new".into());
        let text = plan_up(&p, &h, &w, &UpOptions::default())
            .unwrap()
            .plan
            .to_string();
        assert!(
            text.contains("Recreating  Container p-app-1  (joins the network namespace of vpn"),
            "{text}"
        );

        // vpn was replaced by an earlier command: app is stale and recreated.
        for e in w.observed.services.get_mut("app").unwrap() {
            e.joined = Some("id-of-an-old-vpn".into());
        }
        let text = plan_up(&p, &hashes(&p), &w, &UpOptions::default())
            .unwrap()
            .plan
            .to_string();
        assert!(text.contains("Recreating  Container p-app-1"), "{text}");
    }

    #[test]
    fn restart_true_restarts_dependents_of_a_replaced_service() {
        let p = project("services:\n  web:\n    image: busybox\n    depends_on:\n      db: {condition: service_started, restart: true}\n  db:\n    image: busybox\n");
        let mut h = hashes(&p);
        h.insert("db".into(), "new".into());
        let mut w = converged(&p);
        w.volumes.clear();
        let out = plan_up(&p, &h, &w, &UpOptions::default()).unwrap();
        assert!(
            out.plan
                .to_string()
                .contains("Restarting  Container p-web-1"),
            "{}",
            out.plan
        );
    }

    #[test]
    fn scale_up_and_down_and_orphans() {
        let p = project(STACK);
        let mut w = converged(&p);
        w.observed
            .services
            .insert("old".into(), vec![running(&p, "old", 1, "x")]);
        w.observed
            .services
            .get_mut("web")
            .unwrap()
            .push(running(&p, "web", 2, "h-web"));
        let mut opts = UpOptions::default();
        opts.scale.insert("db".into(), 3);
        opts.scale.insert("web".into(), 1);
        let out = plan_up(&p, &hashes(&p), &w, &opts).unwrap();
        let text = out.plan.to_string();
        assert!(text.contains("Creating    Container p-db-3"), "{text}");
        assert!(
            text.contains("Removing    Container p-web-2  (scaled down to 1)"),
            "{text}"
        );
        assert_eq!(out.orphans, ["p-old-1"]);
        opts.remove_orphans = true;
        let out = plan_up(&p, &hashes(&p), &w, &opts).unwrap();
        assert!(out
            .plan
            .to_string()
            .contains("Removing    Container p-old-1  (orphan"));
    }

    #[test]
    fn force_recreate_acts_on_named_services_always_recreate_deps_on_their_dependencies() {
        let p = project(STACK);
        let w = converged(&p);
        let plan = |opts: UpOptions| plan_up(&p, &hashes(&p), &w, &opts).unwrap().plan;
        let text = plan(UpOptions {
            services: vec!["web".into()],
            force_recreate: true,
            ..Default::default()
        })
        .to_string();
        assert!(
            text.contains("Recreating  Container p-web-1  (--force-recreate)"),
            "{text}"
        );
        assert!(
            text.contains("Running     Container p-db-1  (up to date)"),
            "{text}"
        );
        let text = plan(UpOptions {
            services: vec!["web".into()],
            always_recreate_deps: true,
            ..Default::default()
        })
        .to_string();
        assert!(
            text.contains("Recreating  Container p-db-1  (dependency of a named service"),
            "{text}"
        );
        assert!(
            text.contains("Running     Container p-web-1  (up to date)"),
            "{text}"
        );
        // Nothing named: every service is named, so no service is a mere dependency.
        let quiet = plan(UpOptions {
            always_recreate_deps: true,
            ..Default::default()
        });
        assert!(!quiet.changes_something(), "{quiet}");
    }

    #[test]
    fn only_keeps_the_chosen_steps() {
        let p = project(STACK);
        let full = plan_up(&p, &hashes(&p), &World::default(), &UpOptions::default())
            .unwrap()
            .plan;
        let pulls = full.only(|op| matches!(op, Op::PullImage { .. }));
        assert_eq!(
            pulls.to_string(),
            "Pulling     Image busybox  (not present locally)\n"
        );
        let containers = full.only(|op| op.container().is_some());
        assert_eq!(containers.graph.node_count(), 4, "{containers}");
        assert!(containers
            .to_string()
            .contains("Starting    Container p-web-1  (created) after p-db-1 service_healthy"));
    }

    #[test]
    fn selection_pulls_in_dependencies_unless_no_deps() {
        let p = project(STACK);
        assert_eq!(
            selected_services(&p, &["web".into()], false).unwrap(),
            ["db", "web"]
        );
        assert_eq!(
            selected_services(&p, &["web".into()], true).unwrap(),
            ["web"]
        );
        assert!(selected_services(&p, &["nope".into()], false).is_err());
    }

    #[test]
    fn external_network_must_exist() {
        let p = project("services:\n  a:\n    image: busybox\n    networks: [ext]\nnetworks:\n  ext: {external: true}\n");
        let e = plan_up(&p, &hashes(&p), &with_images(&p), &UpOptions::default()).unwrap_err();
        assert!(e.to_string().contains("external"), "{e}");
    }

    #[test]
    fn down_removes_dependents_first_then_networks() {
        let p = project(STACK);
        let w = converged(&p);
        let plan = plan_down(
            &p,
            &w.observed,
            &w.networks,
            &w.volumes,
            &DownOptions {
                volumes: true,
                ..Default::default()
            },
        )
        .unwrap();
        let l = lines(&plan);
        let pos = |s: &str| l.iter().position(|x| x.contains(s)).unwrap();
        assert!(pos("p-web-1") < pos("p-db-1"));
        assert!(pos("p-db-1") < pos("Network p_default"));
        assert!(pos("Volume p_data") > pos("p-db-1"));
    }
}
