//! `depends_on`: start order and readiness conditions between services.

use serde::{Deserialize, Serialize};

use super::serde_util::{self, Extensions};

/// What a dependency must reach before the dependent service starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependsCondition {
    /// The dependency's containers are running.
    #[default]
    ServiceStarted,
    /// The dependency's containers report healthy.
    ServiceHealthy,
    /// The dependency's containers exited with status 0.
    ServiceCompletedSuccessfully,
}

impl DependsCondition {
    /// The name used in compose files.
    pub fn as_str(&self) -> &'static str {
        match self {
            DependsCondition::ServiceStarted => "service_started",
            DependsCondition::ServiceHealthy => "service_healthy",
            DependsCondition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// One `depends_on` entry in long form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DependsOn {
    pub condition: DependsCondition,
    /// Restart this service when the dependency is restarted by a compose operation.
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub restart: bool,
    /// When false, a missing or failing dependency only warns.
    pub required: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Default for DependsOn {
    fn default() -> Self {
        // Compose's defaults for a dependency listed in short form.
        DependsOn {
            condition: DependsCondition::ServiceStarted,
            restart: false,
            required: true,
            extensions: Extensions::default(),
        }
    }
}
