//! The reconciler behind `up`, `down` and the other project commands: observe what exists
//! (containers by label), plan a DAG of small operations each with its cause, execute it in
//! parallel with no decisions left in the runner.

pub mod execute;
pub mod hooks;
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
}
