//! `healthcheck`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::duration::GoDuration;
use super::serde_util::{self, Extensions};

/// A service's health check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`; empty inherits the image's check.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "deserialize_test"
    )]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<GoDuration>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub disable: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Healthcheck {
    /// Whether this turns health checking off (`disable: true` or `test: ["NONE"]`).
    pub fn is_disabled(&self) -> bool {
        self.disable || self.test.first().is_some_and(|t| t == "NONE")
    }
}

/// A bare string is shell form, as compose-go reads it: `["CMD-SHELL", s]`.
fn deserialize_test<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec!["CMD-SHELL".to_string(), s]),
        Some(other) => Vec::<String>::deserialize(other).map_err(D::Error::custom),
    }
}
