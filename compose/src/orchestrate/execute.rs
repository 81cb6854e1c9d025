//! The runner: walks a plan's DAG with at most `parallel` steps at once, each as soon as its
//! predecessors are done and their conditions hold. A failed step skips what depends on it;
//! independent steps go on. All decisions were made by the planner.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::plan::{Op, Plan, Wait};
use super::OrchestrateError;
use crate::model::DependsCondition;

/// What the runner asks of the world. The real one drives the engine and netctl; tests use a
/// recording fake.
pub trait Backend: Sync {
    fn execute(&self, op: &Op) -> Result<(), OrchestrateError>;
    /// Blocks until `container` meets `condition` (or fails to).
    fn wait_for(
        &self,
        container: &str,
        condition: DependsCondition,
    ) -> Result<(), OrchestrateError>;
}

/// Progress of one step.
#[derive(Debug)]
pub enum Event<'a> {
    Started(&'a Op),
    Done(&'a Op),
    Failed(&'a Op, &'a OrchestrateError),
    Skipped(&'a Op),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Waiting,
    Running,
    Done,
    Failed,
}

struct Shared {
    state: Vec<NodeState>,
    pending: Vec<usize>,
    ready: VecDeque<NodeIndex>,
    running: usize,
    finished: usize,
    errors: Vec<(NodeIndex, String)>,
}

/// Runs the plan; returns the failed steps with their errors (empty when all went well).
pub fn run(
    plan: &Plan,
    backend: &dyn Backend,
    parallel: usize,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Vec<(NodeIndex, String)> {
    let g = &plan.graph;
    let n = g.node_count();
    if n == 0 {
        return Vec::new();
    }
    let pending: Vec<usize> = g
        .node_indices()
        .map(|i| g.edges_directed(i, Direction::Incoming).count())
        .collect();
    let ready: VecDeque<NodeIndex> = g
        .node_indices()
        .filter(|i| pending[i.index()] == 0)
        .collect();
    let shared = Mutex::new(Shared {
        state: vec![NodeState::Waiting; n],
        pending,
        ready,
        running: 0,
        finished: 0,
        errors: Vec::new(),
    });
    let wake = Condvar::new();
    let workers = parallel.clamp(1, n);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| worker(plan, backend, on_event, &shared, &wake));
        }
    });
    match shared.into_inner() {
        Ok(s) => s.errors,
        Err(p) => p.into_inner().errors,
    }
}

fn worker(
    plan: &Plan,
    backend: &dyn Backend,
    on_event: &(dyn Fn(Event<'_>) + Sync),
    shared: &Mutex<Shared>,
    wake: &Condvar,
) {
    let g = &plan.graph;
    let total = g.node_count();
    loop {
        let node = {
            let Ok(mut s) = shared.lock() else { return };
            loop {
                if s.finished == total {
                    wake.notify_all();
                    return;
                }
                if let Some(i) = s.ready.pop_front() {
                    s.state[i.index()] = NodeState::Running;
                    s.running += 1;
                    break i;
                }
                s = match wake.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        };
        let step = &g[node];
        on_event(Event::Started(&step.op));
        let result = conditions(plan, backend, node).and_then(|()| backend.execute(&step.op));
        match &result {
            Ok(()) => on_event(Event::Done(&step.op)),
            Err(e) => on_event(Event::Failed(&step.op, e)),
        }
        let Ok(mut s) = shared.lock() else { return };
        s.running -= 1;
        finish(
            plan,
            &mut s,
            node,
            result.err().map(|e| e.to_string()),
            on_event,
        );
        wake.notify_all();
    }
}

/// Waits for the `depends_on` conditions on this step's incoming edges.
fn conditions(plan: &Plan, backend: &dyn Backend, node: NodeIndex) -> Result<(), OrchestrateError> {
    for e in plan.graph.edges_directed(node, Direction::Incoming) {
        if let Wait::Condition(c) = e.weight() {
            if let Some(container) = plan.graph[e.source()].op.container() {
                backend.wait_for(container, *c)?;
            }
        }
    }
    Ok(())
}

/// Records the end of a step and releases (or, after a failure, skips) its successors.
fn finish(
    plan: &Plan,
    s: &mut Shared,
    node: NodeIndex,
    error: Option<String>,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) {
    let mut stack = vec![(node, error)];
    while let Some((i, err)) = stack.pop() {
        let failed = err.is_some();
        s.state[i.index()] = if failed {
            NodeState::Failed
        } else {
            NodeState::Done
        };
        s.finished += 1;
        if let Some(e) = err {
            s.errors.push((i, e));
        }
        for succ in plan.graph.neighbors_directed(i, Direction::Outgoing) {
            let k = succ.index();
            if s.state[k] != NodeState::Waiting {
                continue;
            }
            if failed {
                // Skipped: counted as failed so its own successors are skipped too.
                on_event(Event::Skipped(&plan.graph[succ].op));
                s.pending[k] = 0;
                s.state[k] = NodeState::Running;
                stack.push((succ, Some(String::new())));
                continue;
            }
            s.pending[k] = s.pending[k].saturating_sub(1);
            if s.pending[k] == 0 {
                s.ready.push_back(succ);
            }
        }
    }
    // Skipped steps carry an empty message: only real failures are reported.
    s.errors.retain(|(_, e)| !e.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrate::plan::{plan_up, UpOptions, World};
    use std::collections::BTreeMap;

    struct Fake {
        log: Mutex<Vec<String>>,
        fail: Option<String>,
    }

    impl Backend for Fake {
        fn execute(&self, op: &Op) -> Result<(), OrchestrateError> {
            let (kind, name) = op.subject();
            let line = format!("{} {kind} {name}", op.verbs().1);
            if self.fail.as_deref() == Some(line.as_str()) {
                return Err(OrchestrateError::Op {
                    what: line,
                    msg: "boom".into(),
                });
            }
            self.log.lock().unwrap().push(line);
            Ok(())
        }
        fn wait_for(&self, c: &str, cond: DependsCondition) -> Result<(), OrchestrateError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("wait {c} {}", cond.as_str()));
            Ok(())
        }
    }

    fn stack() -> (crate::model::Project, BTreeMap<String, String>) {
        let p = crate::orchestrate::test_project(
            "services:\n  web:\n    image: busybox\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: busybox\n  other:\n    image: other\n",
        );
        let h = p.services.keys().map(|k| (k.clone(), k.clone())).collect();
        (p, h)
    }

    #[test]
    fn runs_in_dependency_order_with_conditions() {
        let (p, h) = stack();
        let plan = plan_up(&p, &h, &World::default(), &UpOptions::default())
            .unwrap()
            .plan;
        let fake = Fake {
            log: Mutex::new(Vec::new()),
            fail: None,
        };
        let errors = run(&plan, &fake, 4, &|_| {});
        assert!(errors.is_empty(), "{errors:?}");
        let log = fake.log.into_inner().unwrap();
        let pos = |s: &str| {
            log.iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("{s} in {log:?}"))
        };
        assert!(pos("Started Container p-db-1") < pos("wait p-db-1 service_healthy"));
        assert!(pos("wait p-db-1 service_healthy") < pos("Started Container p-web-1"));
        assert!(pos("Pulled Image busybox") < pos("Created Container p-db-1"));
        assert_eq!(log.len(), plan.graph.node_count() + 1);
    }

    #[test]
    fn a_failure_skips_dependents_only() {
        let (p, h) = stack();
        let plan = plan_up(&p, &h, &World::default(), &UpOptions::default())
            .unwrap()
            .plan;
        let fake = Fake {
            log: Mutex::new(Vec::new()),
            fail: Some("Started Container p-db-1".into()),
        };
        let skipped = Mutex::new(Vec::new());
        let errors = run(&plan, &fake, 2, &|e| {
            if let Event::Skipped(op) = e {
                skipped.lock().unwrap().push(op.subject().1.to_owned());
            }
        });
        assert_eq!(errors.len(), 1);
        let log = fake.log.into_inner().unwrap();
        assert!(!log
            .iter()
            .any(|l| l.contains("p-web-1") && l.starts_with("Started")));
        assert!(
            log.contains(&"Started Container p-other-1".to_string()),
            "{log:?}"
        );
        assert_eq!(skipped.into_inner().unwrap(), ["p-web-1"]);
    }
}
