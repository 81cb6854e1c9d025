//! Networks (top-level `networks`) and a service's attachment to one (service `networks`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::serde_util::{self, Extensions};

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// Real network name; the loader sets `<project>_<key>` unless the file chose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub driver_opts: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// Created outside compose; never created nor removed by us.
    #[serde(
        skip_serializing_if = "serde_util::is_false",
        deserialize_with = "serde_util::external::deserialize"
    )]
    pub external: bool,
    /// No route to the outside world.
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub internal: bool,
    #[serde(skip_serializing_if = "serde_util::is_false")]
    pub attachable: bool,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub labels: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// IP address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub options: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// One address pool of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    /// CIDR, e.g. `172.28.0.0/16`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub aux_addresses: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// How a service joins one network; `null` in the file means all defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNetwork {
    /// Extra DNS names of the service on this network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "serde_util::string_map::deserialize"
    )]
    pub driver_opts: IndexMap<String, String>,
    /// Which network provides the default gateway (highest wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw_priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Connection order: higher priority networks are joined first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
