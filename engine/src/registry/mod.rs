//! OCI distribution client: pull and push images from and to registries.
//!
//! The functions are async (reqwest on tokio); [`blocking`] wraps them for callers without a
//! runtime by running a current-thread runtime for the duration of one call. Nothing here starts a
//! runtime behind the caller's back, so code that later forks (container start) is unaffected.

mod auth;
pub mod blocking;
mod client;
mod pull;
mod push;

use std::io;

pub use client::{Endpoint, RegistryClient};
pub use pull::{pull, LayerStatus, PullEvent, PullOptions, PullOutcome};
pub use push::{push, PushEvent, PushOptions, PushOutcome};

use crate::content::ContentError;
use crate::digest::Digest;
use crate::image::ImageError;
use crate::manifest::ManifestError;
use crate::snapshot::SnapshotError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url}: unexpected HTTP status {status}{}", body_suffix(.body))]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unauthorized: authentication required (try `rcompose login {registry}`){}", body_suffix(.body))]
    Unauthorized {
        url: String,
        registry: String,
        body: String,
    },
    #[error("manifest unknown: {reference} not found in the registry")]
    ManifestUnknown { reference: String },
    #[error("fetching a token from {realm}: {message}")]
    Token { realm: String, message: String },
    #[error("registry returned manifest {actual} for {reference}, expected {expected}")]
    ManifestDigest {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {digest} has external URLs only (foreign layer); not supported")]
    ForeignLayer { digest: Digest },
    #[error("image config {0} lists a different number of layers than its manifest")]
    LayerCountMismatch(Digest),
    #[error("all endpoints failed for {reference}: {errors}")]
    AllEndpointsFailed { reference: String, errors: String },
    #[error("invalid URL {url}: {message}")]
    Url { url: String, message: String },
    #[error("reading {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("starting the async runtime: {0}")]
    Runtime(io::Error),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("background task failed: {0}")]
    Task(String),
}

fn body_suffix(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        String::new()
    } else {
        format!(": {}", b.chars().take(300).collect::<String>())
    }
}

impl RegistryError {
    /// Worth trying again (network trouble, server overload), as opposed to a definite answer.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { source, .. } => !source.is_builder() && !source.is_redirect(),
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            RegistryError::Content(ContentError::Source { .. }) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
