//! A service: the template of its containers.

use indexmap::IndexMap;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::build::Build;
use super::depends_on::DependsOn;
use super::deploy::{Deploy, DeviceRequest};
use super::develop::Develop;
use super::duration::GoDuration;
use super::healthcheck::Healthcheck;
use super::hooks::{PreStartHook, ServiceHook};
use super::limits::{BlkioConfig, Device, Ulimit};
use super::network::ServiceNetwork;
use super::port::PortConfig;
use super::project::Project;
use super::secret::ServiceSecret;
use super::serde_util::{self, Extensions};
use super::volume::ServiceVolume;

/// One service, in compose-go's field order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Key of the service in `services`; filled in by [`Project`] deserialization.
    #[serde(skip)]
    pub name: String,

    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub annotations: IndexMap<String, String>,
    /// Whether `up` attaches to this service's output; `None` means yes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// `host` or `private` cgroup namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub cpu_count: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_float"
    )]
    pub cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub cpu_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub cpu_quota: Option<i64>,
    /// Microseconds.
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub cpu_rt_period: Option<i64>,
    /// Microseconds.
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub cpu_rt_runtime: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_float"
    )]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub cpu_shares: Option<i64>,
    /// Overrides the image's CMD; `Some(vec![])` clears it, `None` keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub depends_on: IndexMap<String, DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Overrides the image's ENTRYPOINT; `Some(vec![])` clears it, `None` keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// `None` is a variable named without a value (`- KEY`).
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::nullable_map::deserialize"
    )]
    pub environment: IndexMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<EnvFile>,
    /// Ports or ranges, as strings (`"3000"`, `"8000-8010/udp"`).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<Extends>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// Host name → IP addresses.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub extra_hosts: IndexMap<String, Vec<String>>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub group_add: Vec<String>,
    /// `gpus: all` reads as one request with `count: -1`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "deserialize_gpus"
    )]
    pub gpus: Vec<DeviceRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Run an init process as PID 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub labels: IndexMap<String, String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub label_file: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_bytes"
    )]
    pub mem_limit: Option<i64>,
    /// Bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_bytes"
    )]
    pub mem_reservation: Option<i64>,
    /// Bytes; `-1` for unlimited swap.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_bytes"
    )]
    pub memswap_limit: Option<i64>,
    /// Percentage, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub mem_swappiness: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Language models by key in the top-level `models`; `None` means defaults.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, Option<ServiceModel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Networks by key in the top-level `networks`; `None` means defaults (printed `null`).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub oom_kill_disable: bool,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_int")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub privileged: bool,
    /// `always`, `never`, `missing`, `build`, `daily`, `every_<duration>`…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_refresh_after: Option<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub read_only: bool,
    /// `no`, `always`, `on-failure[:N]` or `unless-stopped`; see [`Service::restart_policy`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Number of containers; see [`Service::replicas`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_bytes"
    )]
    pub shm_size: Option<i64>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub stdin_open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub storage_opt: IndexMap<String, String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub sysctls: IndexMap<String, String>,
    /// `path[:options]` entries.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "serde_util::string_list::deserialize"
    )]
    pub tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub tty: bool,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub use_api_socket: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_start: Vec<PreStartHook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// What the engine does when a container stops, as docker's `RestartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RestartMode {
    /// Never restart.
    #[default]
    No,
    /// Always restart.
    Always,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Always restart unless stopped by the user.
    UnlessStopped,
}

/// Effective restart policy of a service's containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// Retries for [`RestartMode::OnFailure`]; 0 means unlimited.
    pub max_retries: u64,
}

impl RestartMode {
    /// Maps both `restart` and `deploy.restart_policy.condition` spellings, as docker compose does.
    fn from_condition(condition: &str) -> RestartMode {
        match condition {
            "always" | "any" => RestartMode::Always,
            "on-failure" => RestartMode::OnFailure,
            "unless-stopped" => RestartMode::UnlessStopped,
            // The loader rejects unknown values; "no", "none" and "" all mean no restart.
            _ => RestartMode::No,
        }
    }
}

impl Service {
    /// Number of containers to run: `scale`, else `deploy.replicas`, else 1.
    pub fn replicas(&self) -> u64 {
        // The loader guarantees the two agree when both are set; `scale` wins like compose-go.
        self.scale
            .or_else(|| self.deploy.as_ref().and_then(|d| d.replicas))
            .unwrap_or(1)
    }

    /// The image to run: `image`, or `<project>-<service>` for the image that `build` produces.
    pub fn image_or_default(&self, project: &Project) -> String {
        match &self.image {
            Some(image) if !image.is_empty() => image.clone(),
            _ => format!("{}-{}", project.name, self.name),
        }
    }

    /// Effective restart policy: `deploy.restart_policy` overrides `restart`, as in docker compose.
    pub fn restart_policy(&self) -> RestartPolicy {
        if let Some(policy) = self.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
            return RestartPolicy {
                mode: RestartMode::from_condition(policy.condition.as_deref().unwrap_or("")),
                max_retries: policy.max_attempts.unwrap_or(0),
            };
        }
        let Some(restart) = self.restart.as_deref() else {
            return RestartPolicy::default();
        };
        let (name, retries) = match restart.split_once(':') {
            Some((name, n)) => (name, n.trim().parse().unwrap_or(0)),
            None => (restart, 0),
        };
        RestartPolicy {
            mode: RestartMode::from_condition(name.trim()),
            max_retries: retries,
        }
    }

    /// Network keys in connection order: priority descending, then name, as compose does.
    /// The service whose network namespace this one joins (`network_mode: service:X`): an
    /// implicit dependency, as in docker compose.
    pub fn network_mode_service(&self) -> Option<&str> {
        self.network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
    }

    /// The services whose containers' volumes this one mounts (`volumes_from: [svc, svc:ro,
    /// service:svc]`; `container:name` names no service): implicit dependencies too.
    pub fn volumes_from_services(&self) -> impl Iterator<Item = &str> {
        self.volumes_from
            .iter()
            .filter_map(|v| crate::graph::volumes_from_service(v))
    }

    pub fn network_names(&self) -> Vec<&str> {
        let priority =
            |n: &Option<ServiceNetwork>| n.as_ref().and_then(|n| n.priority).unwrap_or(0);
        let mut names: Vec<(&str, i64)> = self
            .networks
            .iter()
            .map(|(name, net)| (name.as_str(), priority(net)))
            .collect();
        names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        names.into_iter().map(|(name, _)| name).collect()
    }
}

/// `gpus: all` is a request for every GPU; otherwise a list of device requests.
fn deserialize_gpus<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<DeviceRequest>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s == "all" => Ok(vec![DeviceRequest {
            count: Some(-1),
            ..DeviceRequest::default()
        }]),
        Some(other) => Vec::<DeviceRequest>::deserialize(other).map_err(D::Error::custom),
    }
}

/// One `env_file` entry in long form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvFile {
    pub path: String,
    /// A missing optional file is skipped; a missing required one is an error.
    pub required: bool,
    /// Alternative file format; compose's own `.env` rules when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

impl Default for EnvFile {
    fn default() -> Self {
        EnvFile {
            path: String::new(),
            required: true,
            format: None,
        }
    }
}

/// `logging`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub options: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `credential_spec` (Windows managed service accounts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CredentialSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `extends`; normally resolved by the loader, kept for completeness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Extends {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub service: String,
}

/// `provider`: a service managed by an external component instead of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provider {
    #[serde(rename = "type")]
    pub kind: String,
    /// Provider-specific; values are scalars or lists of scalars.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, Value>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A service's use of a top-level model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceModel {
    /// Environment variable that receives the model's endpoint URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_var: Option<String>,
    /// Environment variable that receives the model's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_var: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
