//! The container record: `config.json` (what the container should be) and `state.json` (what it
//! is now), each replaced atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a container's stdio, namespaces, limits and lifecycle are configured. Written once at
/// create (and on rename); read by the supervisor and every command.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// Image id (`sha256:…`), empty for a container made from raw lowerdirs.
    pub image_id: String,
    /// Overlay lower layers, bottom (base layer) first.
    pub lowerdirs: Vec<PathBuf>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub domainname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub mounts: Vec<MountSpec>,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    /// Disable the default seccomp profile (`--security-opt seccomp=unconfined`).
    pub seccomp_unconfined: bool,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    pub devices: Vec<DeviceMapping>,
    pub init: bool,
    /// Supplementary groups (names from the container's `/etc/group`, or numbers) on top of
    /// the user's own (`--group-add`).
    pub group_add: Vec<String>,
    /// `/proc/<pid>/oom_score_adj` of the container's processes (`--oom-score-adj`).
    pub oom_score_adj: i32,
    /// Containers whose mounts this one gets too, `NAME[:ro|:rw]` (`--volumes-from`); resolved
    /// into `mounts` when the container is created.
    pub volumes_from: Vec<String>,
    /// Share the host's PID namespace (`--pid host`).
    pub pid_host: bool,
    /// Share the host's IPC namespace (`--ipc host`).
    pub ipc_host: bool,
    /// The host's init binary mounted at `/sbin/docker-init` and run as PID 1 (`--init`),
    /// found when the container is created; empty without `--init`.
    pub init_path: String,
    pub network_mode: NetworkMode,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub restart: RestartPolicy,
    pub healthcheck: Option<HealthConfig>,
    pub stop_signal: String,
    /// Grace period in seconds before SIGKILL on stop.
    pub stop_timeout: Option<u64>,
    pub auto_remove: bool,
    pub log: LogConfig,
    /// Key sequence that detaches an attached client (docker's `ctrl-p,ctrl-q`).
    pub detach_keys: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MountSpec {
    #[serde(rename = "Type")]
    pub kind: MountKind,
    /// Host path (bind), volume name (volume) or empty (tmpfs).
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// Extra mount options (tmpfs `size=…`, `mode=…`; bind propagation).
    pub options: Vec<String>,
    /// For volumes: do not copy the image content into an empty volume.
    pub no_copy: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Resources {
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// memory+swap bytes; -1 = unlimited swap, 0 = unset.
    pub memory_swap: i64,
    /// CPUs × 1e9.
    pub nano_cpus: i64,
    pub cpu_shares: u64,
    /// 0 = unset, -1 = unlimited.
    pub pids_limit: i64,
    /// /dev/shm size in bytes (default 64 MiB).
    pub shm_size: u64,
    /// Soft memory limit in bytes (`--memory-reservation`); 0 = unset.
    #[serde(default)]
    pub memory_reservation: i64,
    /// CPUs the container may run on (`--cpuset-cpus`, e.g. `0-1`); empty = all.
    #[serde(default)]
    pub cpuset_cpus: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub permissions: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A private network namespace that netctl may attach to networks.
    #[default]
    Bridge,
    Host,
    /// A private namespace with loopback only.
    None,
    /// The network namespace (and `/etc/hosts`, `/etc/resolv.conf`, hostname) of another
    /// container, by id (`--network container:X`, compose's `network_mode: service:X`). Given
    /// as a name or id prefix to `create`, which stores the full id.
    Container(String),
}

impl NetworkMode {
    /// Docker's spelling: `bridge`, `host`, `none`, `container:<id>`.
    pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
        match self {
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::Container(id) => format!("container:{id}").into(),
        }
    }

    /// Whether the container gets a network namespace of its own at `<dir>/netns`.
    pub fn has_own_netns(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::None)
    }

    /// The container whose network namespace this one joins.
    pub fn joined(&self) -> Option<&str> {
        match self {
            NetworkMode::Container(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "Name")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    OnFailure {
        #[serde(default, rename = "MaximumRetryCount")]
        max_retries: u32,
    },
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses docker's `no`, `always`, `on-failure[:N]`, `unless-stopped`.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        Some(match s {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max_retries: 0 },
            _ => {
                let n = s.strip_prefix("on-failure:")?.parse().ok()?;
                RestartPolicy::OnFailure { max_retries: n }
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

/// A healthcheck: `test` is docker's form (`["CMD", …]`, `["CMD-SHELL", "…"]`, `["NONE"]`).
/// Durations are nanoseconds as in docker's image config; 0 means the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthConfig {
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub start_interval: u64,
    pub retries: u32,
}

impl HealthConfig {
    /// Whether this config disables checks (`NONE` or empty).
    pub fn disabled(&self) -> bool {
        self.test.first().is_none_or(|t| t == "NONE")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    /// Bytes per file before rotating; 0 = unlimited.
    pub max_size: u64,
    /// Files kept (current + rotated), at least 1.
    pub max_file: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 0,
            max_file: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// The live state, written by the supervisor (and by commands when no supervisor runs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerState {
    pub status: Status,
    /// The container's init process as seen from the host; 0 when not running.
    pub pid: i32,
    /// The supervisor's pid; 0 when none runs.
    pub supervisor_pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Set by `stop`: the restart policy must not bring it back (and `unless-stopped` stays down).
    pub manually_stopped: bool,
    pub health: Option<Health>,
}

impl ContainerState {
    /// Whether the container's processes exist (running, paused or restarting).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_forms() {
        assert_eq!(RestartPolicy::parse("no"), Some(RestartPolicy::No));
        assert_eq!(
            RestartPolicy::parse("on-failure:3"),
            Some(RestartPolicy::OnFailure { max_retries: 3 })
        );
        assert_eq!(RestartPolicy::parse("sometimes"), None);
        let json = serde_json::to_string(&RestartPolicy::OnFailure { max_retries: 2 }).unwrap();
        assert_eq!(json, r#"{"Name":"on-failure","MaximumRetryCount":2}"#);
    }

    #[test]
    fn records_roundtrip_with_defaults() {
        let c: ContainerConfig = serde_json::from_str(r#"{"id":"ab","name":"x"}"#).unwrap();
        assert_eq!(c.log.max_file, 1);
        let s = ContainerState::default();
        let back: ContainerState =
            serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(s, back);
    }
}
