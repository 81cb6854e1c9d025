//! The Compose front end of rcompose: loading compose files into a project model, and the
//! `rcompose` command line.

pub mod allocator;
pub mod canonical;
pub mod cli;
pub mod discovery;
pub mod dotenv;
pub mod emit;
pub mod error;
pub mod graph;
pub mod hash;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod orchestrate;
pub mod paths;
pub mod profiles;
pub mod schema;
pub mod syntax;
pub mod validate;
pub mod yaml;
pub mod yaml_de;
