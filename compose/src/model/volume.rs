//! Named volumes (top-level `volumes`) and service mounts (service `volumes`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::serde_util::{self, Extensions};

/// A top-level named volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Real volume name; the loader sets `<project>_<key>` unless the file chose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub driver_opts: IndexMap<String, String>,
    /// Created outside compose; never created nor removed by us.
    #[serde(
        skip_serializing_if = "serde_util::is_false",
        deserialize_with = "serde_util::external::deserialize"
    )]
    pub external: bool,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub labels: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Kind of a service mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host path.
    Bind,
    /// A named (or anonymous) volume.
    #[default]
    Volume,
    /// A memory-backed filesystem.
    Tmpfs,
    /// A cluster (CSI) volume.
    Cluster,
    /// A Windows named pipe.
    Npipe,
    /// An image's filesystem, read-only.
    Image,
}

/// One service `volumes` entry in long form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Host path (bind), volume name (volume; none for an anonymous one) or image reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path in the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOptions>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindOptions {
    /// `z` or `Z`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Whether a missing host path is created; compose's default is `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    /// `enabled`, `disabled`, `writable` or `readonly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeOptions {
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub labels: IndexMap<String, String>,
    /// Do not copy the image's content at the target into a new volume.
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub nocopy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TmpfsOptions {
    /// Size in bytes.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_util::opt_bytes"
    )]
    pub size: Option<i64>,
    /// File mode (e.g. `1777` octal = 1023).
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_util::opt_mode")]
    pub mode: Option<u32>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Options of an image mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
