//! The project: every service and resource of one compose application.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

use super::network::Network;
use super::secret::{Config, Secret};
use super::serde_util::{self, Extensions};
use super::service::Service;
use super::volume::Volume;

/// A loaded, normalised compose project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Sub-projects; normally resolved (and emptied) by the loader.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<Include>,
    /// Always printed, even empty, as compose-go does.
    #[serde(deserialize_with = "deserialize_services")]
    pub services: IndexMap<String, Service>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::map_null_as_default::deserialize"
    )]
    pub networks: IndexMap<String, Network>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::map_null_as_default::deserialize"
    )]
    pub volumes: IndexMap<String, Volume>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub secrets: IndexMap<String, Secret>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub configs: IndexMap<String, Config>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, LanguageModel>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Project {
    /// Service names, sorted, as compose-go returns them.
    pub fn service_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.services.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// Each service learns its own key, so helpers like [`Service::image_or_default`] need no name.
fn deserialize_services<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<IndexMap<String, Service>, D::Error> {
    let mut services = serde_util::map_null_as_default::deserialize::<D, Service>(deserializer)?;
    for (name, service) in services.iter_mut() {
        service.name.clone_from(name);
    }
    Ok(services)
}

/// An `include` entry in long form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Include {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub path: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_directory: Option<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub env_file: Vec<String>,
}

/// A top-level `models` entry: a language model served to the services that use it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LanguageModel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model reference, e.g. `ai/smollm2`.
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
