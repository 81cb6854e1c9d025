//! The container engine under rcompose: images (references, content store, layer snapshots,
//! registry client) and containers.

pub mod content;
pub mod digest;
pub mod fsutil;
pub mod reference;
pub mod unpack;
pub mod snapshot;
pub mod manifest;
pub mod image;
pub mod config;
pub mod credentials;
