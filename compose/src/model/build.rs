//! `build`: how to build a service's image.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::limits::Ulimit;
use super::secret::ServiceSecret;
use super::serde_util::{self, Extensions};

/// The long form of `build`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Build {
    /// Directory or URL of the build context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Build arguments; `None` means "take the value from the environment".
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::nullable_map::deserialize"
    )]
    pub args: IndexMap<String, Option<String>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bool_or_string"
    )]
    pub provenance: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bool_or_string"
    )]
    pub sbom: Option<String>,
    /// SSH agent sockets or keys by id; `None` for the default agent (`default`).
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::nullable_map::deserialize"
    )]
    pub ssh: IndexMap<String, Option<String>>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub labels: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub no_cache: bool,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub no_cache_filter: Vec<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub additional_contexts: IndexMap<String, String>,
    /// Always pull the base images.
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub pull: bool,
    /// Host name → IP addresses.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub extra_hosts: IndexMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Stage of a multi-stage Dockerfile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecret>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_bytes"
    )]
    pub shm_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub privileged: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `provenance` and `sbom` are a boolean or a builder-specific string; compose-go keeps a string.
fn bool_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(D::Error::custom("expected a boolean or a string")),
    }
}
