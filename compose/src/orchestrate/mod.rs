//! The reconciler behind `up`, `down` and the other project commands: observe what exists
//! (containers by label), plan a DAG of small operations each with its cause, execute it in
//! parallel with no decisions left in the runner.

pub mod execute;
pub mod hooks;
pub mod join;
pub mod labels;
pub mod local;
pub mod observe;
pub mod plan;
pub mod translate;

use engine::container::ContainerError;

#[derive(Debug, thiserror::Error)]
pub enum OrchestrateError {
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("service {service:?}: {msg}")]
    Service { service: String, msg: String },
    #[error("{0}")]
    Missing(String),
    #[error("planning: {0}")]
    Plan(String),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] netctl::NetworkError),
    #[error(transparent)]
    Volume(#[from] engine::volume::VolumeError),
    #[error("{what}: {msg}")]
    Op { what: String, msg: String },
    #[error("dependency failed to start: {0}")]
    Dependency(String),
    #[error("timed out waiting for container {container} to be {condition}")]
    Timeout {
        container: String,
        condition: &'static str,
    },
}

/// A project named `p` loaded from `yaml` (unit tests of the reconciler and its commands).
#[cfg(test)]
pub(crate) fn test_project(yaml: &str) -> crate::model::Project {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("compose.yaml"), yaml).expect("write compose.yaml");
    let mut opts = crate::loader::LoadOptions::from_process().expect("load options");
    opts.cwd = dir.path().to_path_buf();
    opts.project_name = Some("p".into());
    crate::loader::load(&opts)
        .expect("the project loads")
        .project()
        .expect("the project fits the model")
}
