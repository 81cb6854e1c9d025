//! Lifecycle hooks: `post_start`/`pre_stop` commands and `pre_start` init containers.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::serde_util::{self, Extensions};

/// A command run inside the service container (`post_start`, `pre_stop`, `develop.watch.exec`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceHook {
    /// Exec form; always printed, as compose-go does.
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::nullable_map::deserialize"
    )]
    pub environment: IndexMap<String, Option<String>>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// An init container run to completion before the service starts (`pre_start`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreStartHook {
    /// Exec form; `None` runs the image's own entrypoint and command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Image of the init container; the service's image when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Added to (and overriding) the service's environment.
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::nullable_map::deserialize"
    )]
    pub environment: IndexMap<String, Option<String>>,
    /// Run once per replica rather than once per service.
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub per_replica: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}
