//! Building images from Dockerfiles.

pub mod ast;
pub mod cache;
pub mod dockerfile;
pub mod executor;
pub mod fetch;
pub mod ignore;
pub mod layer;
