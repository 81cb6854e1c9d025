//! `develop`: watch mode.

use serde::{Deserialize, Serialize};

use super::hooks::ServiceHook;
use super::serde_util::{self, Extensions};

/// `develop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Develop {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// One `develop.watch` rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchRule {
    /// Host path to watch.
    pub path: String,
    /// `rebuild`, `sync`, `restart`, `sync+restart` or `sync+exec`.
    pub action: String,
    /// Container path for the sync actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub include: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub ignore: Vec<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub initial_sync: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}
