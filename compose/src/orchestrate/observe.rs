//! What exists now: the project's containers, found by label in the engine's store.

use std::collections::BTreeMap;

use engine::container::ops::Engine;
use engine::container::store::Container;

use super::labels;
use super::OrchestrateError;

/// One container as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub config_hash: String,
    pub image_id: String,
    pub running: bool,
    /// The id of the container whose network namespace this one joins.
    pub joined: Option<String>,
}

/// The project's containers, by service (numbers ascending), and its one-off containers.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub services: BTreeMap<String, Vec<Existing>>,
    pub oneoff: Vec<Existing>,
}

impl Observed {
    pub fn load(engine: &Engine, project: &str) -> Result<Observed, OrchestrateError> {
        Ok(Self::from_containers(
            &project_containers(engine, project)?,
            project,
        ))
    }

    pub fn from_containers(all: &[Container], project: &str) -> Observed {
        let mut o = Observed::default();
        for c in all {
            let l = &c.config.labels;
            if l.get(labels::PROJECT).map(String::as_str) != Some(project) {
                continue;
            }
            let e = Existing {
                id: c.id().to_owned(),
                name: c.config.name.clone(),
                service: l.get(labels::SERVICE).cloned().unwrap_or_default(),
                number: l
                    .get(labels::NUMBER)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                config_hash: l.get(labels::CONFIG_HASH).cloned().unwrap_or_default(),
                image_id: c.config.image_id.clone(),
                running: c.state.is_active(),
                joined: c.config.network_mode.joined().map(str::to_owned),
            };
            if l.get(labels::ONEOFF).is_some_and(|v| v == "True") {
                o.oneoff.push(e);
            } else {
                o.services.entry(e.service.clone()).or_default().push(e);
            }
        }
        for v in o.services.values_mut() {
            v.sort_by_key(|e| e.number);
        }
        o
    }

    pub fn of(&self, service: &str) -> &[Existing] {
        self.services.get(service).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Every container of the project (one-off ones included).
pub fn project_containers(
    engine: &Engine,
    project: &str,
) -> Result<Vec<Container>, OrchestrateError> {
    Ok(engine
        .store
        .list()?
        .into_iter()
        .filter(|c| c.config.labels.get(labels::PROJECT).map(String::as_str) == Some(project))
        .collect())
}
