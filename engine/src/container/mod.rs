//! Containers: records, root filesystems, OCI specs, the youki `libcontainer` runtime, the
//! per-container supervisor, logs, exec and the lifecycle operations behind
//! `rcompose container …`.
//!
//! Layout of `<root>/containers/<id>/`: `config.json` + `state.json` (the record),
//! `bundle/config.json` (the OCI spec), `upper/`, `work/`, `rootfs/` (overlay), `netns`,
//! `hosts`, `hostname`, `resolv.conf`, `<id>-json.log*`, `runtime/` (libcontainer state),
//! `ctl.sock` (supervisor control and attach).

pub mod attach;
pub mod cgroup;
pub mod commit;
pub mod control;
pub mod cp;
pub mod etc;
pub mod fs;
pub mod health;
pub mod id;
pub mod init;
pub mod logs;
pub mod migration;
pub mod netio;
pub mod netns;
pub mod ops;
pub mod record;
pub mod resident;
pub mod restart;
pub mod rootfs;
pub mod runtime;
pub mod security;
pub mod spec;
pub mod store;
pub mod supervisor;
pub mod term;
pub mod time;
pub mod user;

use std::io;
use std::path::PathBuf;

pub use ops::{CreateOptions, Engine};
pub use record::{ContainerConfig, ContainerState, Status};
pub use store::{Container, ContainerStore};

/// The argument that marks a process as a supervisor (`rcompose __supervise <root> <id>`).
pub const SUPERVISE_ARG: &str = "__supervise";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("container record {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple containers match the prefix {0:?}: use more characters")]
    Ambiguous(String),
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("the container name \"/{name}\" is already in use by container \"{id}\"; remove or rename that container to reuse the name")]
    NameInUse { name: String, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("mounting {}: {reason}", target.display())]
    Mount { target: PathBuf, reason: String },
    #[error("network namespace: {0}")]
    Netns(String),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("{0}")]
    Conflict(String),
    #[error("supervisor: {0}")]
    Supervisor(String),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
}
