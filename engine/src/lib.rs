//! The container engine under rcompose: images (references, content store, layer snapshots,
//! registry client) and containers.

pub mod archive;
pub mod build;
pub mod changes;
pub mod config;
pub mod container;
pub mod content;
pub mod credentials;
pub mod digest;
pub mod fsutil;
pub mod image;
pub mod manifest;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod unpack;
pub mod usage;
pub mod volume;
