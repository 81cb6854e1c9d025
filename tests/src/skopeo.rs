//! Pushing fixtures to, and reading manifests back from, a test registry with `skopeo`
//! (Debian package `skopeo`).
//!
//! skopeo runs hermetically: its own signature policy from a temp file, an empty registries.conf
//! and explicit credentials (or explicitly none), so the host's container configuration and
//! logins can never change what a test sees.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::error::{Context, Result};
use crate::fixtures::Fixture;
use crate::oci::sha256_digest;
use crate::registry::{Credentials, Registry};
use crate::util::{find_program, run_checked};

/// Accept any image: fixtures are unsigned, and the policy only guards against pulling untrusted
/// images, which does not apply to a loopback test registry.
const POLICY: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

struct Skopeo {
    program: std::path::PathBuf,
    dir: TempDir,
}

impl Skopeo {
    fn new() -> Result<Self> {
        let program = find_program("skopeo", "skopeo")?;
        let dir = tempfile::Builder::new()
            .prefix("rcompose-e2e-skopeo-")
            .tempdir()
            .context("creating skopeo temp dir")?;
        std::fs::write(dir.path().join("policy.json"), POLICY).context("writing skopeo policy")?;
        std::fs::write(dir.path().join("registries.conf"), "")
            .context("writing registries.conf")?;
        Ok(Skopeo { program, dir })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env(
            "CONTAINERS_REGISTRIES_CONF",
            self.dir.path().join("registries.conf"),
        )
        // Keeps skopeo off the host's ~/.docker/config.json and auth.json.
        .env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
        .env("DOCKER_CONFIG", self.dir.path())
        .env("TMPDIR", self.dir.path())
        .arg("--policy")
        .arg(self.dir.path().join("policy.json"));
        cmd
    }
}

/// Pushes a fixture to `registry` as `repo:tag` and returns the full reference
/// (`127.0.0.1:<port>/repo:tag`). Uses the registry's credentials when it has any.
///
/// Digests are preserved (no recompression, no manifest rewrite), so the registry serves exactly
/// [`Fixture::digest`] and the layer blobs built by the harness; multi-platform fixtures are
/// copied with all their images.
pub fn push(fixture: &Fixture, registry: &Registry, repo_tag: &str) -> Result<String> {
    push_with(fixture, registry, registry.credentials(), repo_tag)
}

/// Like [`push`] with explicit credentials (`None` pushes anonymously), e.g. to check that an
/// auth registry rejects anonymous pushes.
pub fn push_with(
    fixture: &Fixture,
    registry: &Registry,
    creds: Option<&Credentials>,
    repo_tag: &str,
) -> Result<String> {
    push_source(
        fixture.skopeo_source(),
        fixture.is_index(),
        registry,
        creds,
        repo_tag,
    )
}

/// Pushes `oci:<layout>:<src_tag>` (any OCI image layout, e.g. one written with
/// [`OciLayout`](crate::oci::OciLayout)) to `<registry>/<repo_tag>`; `all` copies every image of
/// an index.
pub fn push_layout(
    layout: &Path,
    src_tag: &str,
    all: bool,
    registry: &Registry,
    creds: Option<&Credentials>,
    repo_tag: &str,
) -> Result<String> {
    let source = format!("oci:{}:{src_tag}", layout.display());
    push_source(&source, all, registry, creds, repo_tag)
}

/// Copies any skopeo source (`oci:...`, `dir:...`, `docker-archive:...`) to
/// `<registry>/<repo_tag>` with `skopeo copy --preserve-digests`; `all` copies every image of
/// an index.
pub fn push_source(
    source: &str,
    all: bool,
    registry: &Registry,
    creds: Option<&Credentials>,
    repo_tag: &str,
) -> Result<String> {
    let skopeo = Skopeo::new()?;
    let dest = registry.image_ref(repo_tag);
    let mut cmd = skopeo.command();
    // --preserve-digests makes skopeo fail rather than silently recompress a layer (it would
    // otherwise gzip uncompressed layers for a registry destination) or convert the manifest.
    cmd.args([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ]);
    if all {
        cmd.args(["--multi-arch", "all"]);
    }
    match creds {
        Some(c) => cmd.arg("--dest-creds").arg(c.colon_pair()),
        None => cmd.arg("--dest-no-creds"),
    };
    cmd.arg(source).arg(format!("docker://{dest}"));
    run_checked(&mut cmd)?;
    Ok(dest)
}

/// `skopeo copy SOURCE DEST` between local transports (`oci:`, `docker-archive:`, `dir:`):
/// the reference implementation the tests check rcompose's archives against.
pub fn copy_local(source: &str, dest: &str) -> Result<()> {
    let skopeo = Skopeo::new()?;
    let mut cmd = skopeo.command();
    cmd.args(["copy", "--quiet", source, dest]);
    run_checked(&mut cmd)?;
    Ok(())
}

/// The raw manifest (or index) bytes the registry serves for `reference` (`repo:tag` or
/// `repo@sha256:...`), via `skopeo inspect --raw`. Uses the registry's credentials if any.
pub fn inspect_raw_bytes(registry: &Registry, reference: &str) -> Result<Vec<u8>> {
    inspect_raw_bytes_with(registry, registry.credentials(), reference)
}

/// Like [`inspect_raw_bytes`] with explicit credentials (`None` is anonymous).
pub fn inspect_raw_bytes_with(
    registry: &Registry,
    creds: Option<&Credentials>,
    reference: &str,
) -> Result<Vec<u8>> {
    let skopeo = Skopeo::new()?;
    let mut cmd = skopeo.command();
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    match creds {
        Some(c) => cmd.arg("--creds").arg(c.colon_pair()),
        None => cmd.arg("--no-creds"),
    };
    cmd.arg(format!("docker://{}", registry.image_ref(reference)));
    Ok(run_checked(&mut cmd)?.stdout)
}

/// The raw manifest parsed as JSON, with its sha256 digest (of the exact bytes served).
pub fn inspect_raw(registry: &Registry, reference: &str) -> Result<(Value, String)> {
    let bytes = inspect_raw_bytes(registry, reference)?;
    let json = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing the manifest of {reference}"))?;
    Ok((json, sha256_digest(&bytes)))
}
