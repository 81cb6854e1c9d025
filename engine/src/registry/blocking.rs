//! Blocking wrappers: each call runs a current-thread tokio runtime for its own duration (blocking
//! work such as unpacking goes to the runtime's blocking pool). Use these from synchronous code
//! such as the CLI; never from inside another runtime.

use std::future::Future;

use super::{PullOptions, PullOutcome, PushOptions, PushOutcome, RegistryClient, RegistryError};
use crate::credentials::Credentials;
use crate::image::{ImageRecord, ImageStore};
use crate::reference::Reference;

fn run<T>(f: impl Future<Output = Result<T, RegistryError>>) -> Result<T, RegistryError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RegistryError::Runtime)?;
    rt.block_on(f)
}

pub fn pull(
    client: &RegistryClient,
    store: &ImageStore,
    reference: &Reference,
    opts: &PullOptions,
    progress: super::pull::Progress,
) -> Result<PullOutcome, RegistryError> {
    run(super::pull(client, store, reference, opts, progress))
}

pub fn push(
    client: &RegistryClient,
    store: &ImageStore,
    rec: &ImageRecord,
    target: &Reference,
    opts: &PushOptions,
    progress: super::push::PushProgress,
) -> Result<PushOutcome, RegistryError> {
    run(super::push(client, store, rec, target, opts, progress))
}

/// Checks `creds` against `registry` (what `login` does before saving them).
pub fn check_login(
    client: RegistryClient,
    registry: &str,
    creds: Credentials,
) -> Result<(), RegistryError> {
    let client = client.with_credentials(creds);
    let ep = client.endpoint_for(registry);
    run(async { client.check(&ep).await })
}
