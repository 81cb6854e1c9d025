//! End-to-end test harness for rcompose.
//!
//! - [`Registry`]: a real `docker-registry` on a free loopback port, optionally with htpasswd
//!   basic auth, stopped and removed on drop.
//! - [`fixtures`]: deterministic OCI image layouts built from the static busybox (single layer,
//!   whiteouts/opaque dirs, one per compression, multi-platform index, hard links, Docker
//!   schema 2), pushed with [`push`] (`skopeo copy --preserve-digests`).
//! - [`TestEnv`] / [`StateRoot`]: a private state root and config for each test, and
//!   [`rcompose`] to run the built binary against them; everything is unmounted and removed on
//!   drop.
//!
//! Needs the Debian packages `docker-registry`, `skopeo` and `busybox-static`; a missing one
//! fails the test with the package name, never skips it.
//!
//! ```no_run
//! use e2e::{fixtures, push, Registry, TestEnv};
//!
//! let registry = Registry::start().expect("registry starts");
//! let image = fixtures::busybox_image().expect("fixture builds");
//! let reference = push(&image, &registry, "busybox:latest").expect("push works");
//! let env = TestEnv::new().expect("test env");
//! let out = env.run_ok(["image", "pull", reference.as_str()]).expect("pull works");
//! assert!(out.stdout.contains(image.digest()));
//! ```

mod env;
mod error;
pub mod fixtures;
pub mod http;
mod leftovers;
pub mod oci;
mod project;
mod registry;
mod skopeo;
mod util;

pub use env::{
    rcompose, rcompose_bin, run_with_timeout, unique_name, Output, StateRoot, TestEnv,
    DEFAULT_TIMEOUT, RCOMPOSE_BIN_ENV, TMPDIR_ENV,
};
pub use error::{Context, Error, Result};
pub use fixtures::Fixture;
pub use leftovers::assert_nothing_left;
pub use oci::{list_tar, Compression, Descriptor, Platform, TarEntry};
pub use project::{busybox_env, exec_ok, free_subnet, read_port, stdout_lines};
pub use registry::{Credentials, Registry, RegistryOptions};
pub use skopeo::{
    copy_local, inspect_raw, inspect_raw_bytes, inspect_raw_bytes_with, push, push_layout,
    push_source, push_with,
};
pub use util::{base64, find_program, free_port, is_root, require_root, run_checked};
