//! Kernel resource knobs of a service: ulimits, block IO, device mappings.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::serde_util::{self, Extensions};

/// One `ulimits` entry: a single value for soft and hard, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ulimit {
    /// `nofile: 1024` sets soft and hard alike.
    Single(i64),
    /// `nofile: {soft: 1024, hard: 2048}`.
    Pair { soft: i64, hard: i64 },
}

impl Ulimit {
    /// The soft limit.
    pub fn soft(&self) -> i64 {
        match *self {
            Ulimit::Single(v) => v,
            Ulimit::Pair { soft, .. } => soft,
        }
    }

    /// The hard limit.
    pub fn hard(&self) -> i64 {
        match *self {
            Ulimit::Single(v) => v,
            Ulimit::Pair { hard, .. } => hard,
        }
    }
}

impl Serialize for Ulimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Pair {
            soft: i64,
            hard: i64,
        }
        match *self {
            Ulimit::Single(v) => s.serialize_i64(v),
            Ulimit::Pair { soft, hard } => Pair { soft, hard }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fn int(v: Option<&Value>, what: &str) -> Result<i64, String> {
            match v {
                Some(Value::Number(n)) => n.as_i64().ok_or_else(|| format!("{what}: {n}")),
                Some(Value::String(s)) => s.trim().parse().map_err(|_| format!("{what}: `{s}`")),
                _ => Err(format!("ulimit needs an integer `{what}`")),
            }
        }
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::Object(map) => Ok(Ulimit::Pair {
                soft: int(map.get("soft"), "soft").map_err(D::Error::custom)?,
                hard: int(map.get("hard"), "hard").map_err(D::Error::custom)?,
            }),
            single => int(Some(single), "value")
                .map(Ulimit::Single)
                .map_err(D::Error::custom),
        }
    }
}

/// `blkio_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}

/// Relative block IO weight of one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// Block IO rate limit of one device (bytes or operations per second).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleDevice {
    pub path: String,
    /// Accepts `"1mb"` for the `_bps` limits; always printed as an integer.
    #[serde(with = "serde_util::bytes")]
    pub rate: i64,
}

/// A host device made available in the container (`devices`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Cgroup permissions, `rwm` when the file did not say.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub permissions: String,
    #[serde(flatten)]
    pub extensions: Extensions,
}
