//! Building images from Dockerfiles.

pub mod ast;
