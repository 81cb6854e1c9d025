//! Typed compose project model, in the canonical long form `docker compose config` prints.
//!
//! The loader parses, interpolates, merges and normalises compose files into a
//! `serde_json::Value` in long form; [`Project`] deserializes from that and serializes back to it
//! with compose-go's field order, omitting unset values. Unknown keys other than `x-*`
//! extensions are dropped: the loader has already validated them against the schema.

mod build;
mod depends_on;
mod deploy;
mod develop;
mod duration;
mod healthcheck;
mod hooks;
mod limits;
mod network;
mod port;
mod project;
mod secret;
mod serde_util;
mod service;
mod volume;

#[cfg(test)]
mod tests;

pub use build::Build;
pub use depends_on::{DependsCondition, DependsOn};
pub use deploy::{
    Deploy, DeviceRequest, DiscreteResourceSpec, GenericResource, Placement, PlacementPreference,
    Resource, Resources, RestartPolicyConfig, UpdateConfig,
};
pub use develop::{Develop, WatchRule};
pub use duration::{GoDuration, ParseDurationError};
pub use healthcheck::Healthcheck;
pub use hooks::{PreStartHook, ServiceHook};
pub use limits::{BlkioConfig, Device, ThrottleDevice, Ulimit, WeightDevice};
pub use network::{Ipam, IpamPool, Network, ServiceNetwork};
pub use port::PortConfig;
pub use project::{Include, LanguageModel, Project};
pub use secret::{Config, Secret, ServiceSecret};
pub use serde_util::{parse_byte_size, Extensions};
pub use service::{
    CredentialSpec, EnvFile, Extends, Logging, Provider, RestartMode, RestartPolicy, Service,
    ServiceModel,
};
pub use volume::{
    BindOptions, ImageOptions, MountType, ServiceVolume, TmpfsOptions, Volume, VolumeOptions,
};
