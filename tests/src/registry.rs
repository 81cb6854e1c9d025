//! A real OCI distribution registry (`docker-registry`, Debian's build of the CNCF distribution
//! registry v2) on a free loopback port, one per test.
//!
//! Each instance gets its own config, storage and log in a temp dir, so tests never share state
//! and can run in parallel. Dropping the [`Registry`] stops and reaps the process and then removes
//! the temp dir, also when the test panics.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Context, Error, Result};
use crate::http;
use crate::util::{find_program, free_port};

/// How long a fresh registry may take to answer `/v2/` before we give up. It normally takes well
/// under a second; the margin covers a loaded 2-core CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times to retry when the port we picked was taken before the registry bound it.
const PORT_ATTEMPTS: usize = 5;

/// User name and password for a registry with basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password in clear text (test-only secret).
    pub password: String,
}

impl Credentials {
    /// Builds credentials from two strings.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `user:password`, the form skopeo's `--creds` options take.
    pub fn colon_pair(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }
}

/// How to start a [`Registry`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// When set, the registry requires these credentials (htpasswd basic auth) for every request.
    pub auth: Option<Credentials>,
}

/// A running `docker-registry` bound to `127.0.0.1:<free port>`.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    host_port: String,
    auth: Option<Credentials>,
    log_path: PathBuf,
    // Dropped after `Drop::drop` has reaped the process, so storage is never removed under a live
    // registry.
    dir: TempDir,
}

impl Registry {
    /// Starts an anonymous (no auth) registry.
    pub fn start() -> Result<Self> {
        Self::start_with(RegistryOptions::default())
    }

    /// Starts a registry that demands `username`/`password` via htpasswd basic auth.
    pub fn start_with_auth(username: &str, password: &str) -> Result<Self> {
        Self::start_with(RegistryOptions {
            auth: Some(Credentials::new(username, password)),
        })
    }

    /// Starts a registry with the given options and waits until it answers `/v2/`.
    pub fn start_with(opts: RegistryOptions) -> Result<Self> {
        let program = find_program("docker-registry", "docker-registry")?;
        let dir = tempfile::Builder::new()
            .prefix("rcompose-e2e-registry-")
            .tempdir()
            .context("creating registry temp dir")?;
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).context("creating registry storage dir")?;

        let htpasswd = match &opts.auth {
            Some(creds) => {
                let path = dir.path().join("htpasswd");
                write_htpasswd(&path, creds)?;
                Some(path)
            }
            None => None,
        };

        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let host_port = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            fs::write(&config, config_yaml(port, &storage, htpasswd.as_deref()))
                .context("writing registry config")?;
            let log_path = dir.path().join("registry.log");
            let log = File::create(&log_path).context("creating registry log")?;
            let log_err = log.try_clone().context("duplicating registry log handle")?;
            let mut child = Command::new(&program)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .with_context(|| format!("spawning {}", program.display()))?;
            match wait_ready(&mut child, &host_port, &log_path) {
                Ok(()) => {
                    return Ok(Registry {
                        child,
                        host_port,
                        auth: opts.auth,
                        log_path,
                        dir,
                    })
                }
                Err(WaitError::PortTaken) => {
                    stop_child(&mut child);
                    last_err = Some(Error::msg(format!(
                        "port {port} was taken before docker-registry bound it: {}",
                        read_log(&log_path)
                    )));
                }
                Err(WaitError::Other(e)) => {
                    stop_child(&mut child);
                    return Err(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::msg("docker-registry could not bind a port")))
    }

    /// `127.0.0.1:<port>`, the registry host as it appears in image references.
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host_port)
    }

    /// A full image reference on this registry: `image_ref("busybox:latest")` gives
    /// `127.0.0.1:<port>/busybox:latest`.
    pub fn image_ref(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host_port)
    }

    /// The credentials this registry requires, if it was started with auth.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.auth.as_ref()
    }

    /// Process id of the registry (for leak checks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir holding config, storage and log (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's log so far (stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// `GET path` on this registry, with its credentials if it has any.
    pub fn get(&self, path: &str) -> Result<http::Response> {
        let auth = self
            .auth
            .as_ref()
            .map(|c| (c.username.as_str(), c.password.as_str()));
        http::get(&self.host_port, path, auth)
    }

    /// A blob's bytes, straight from the registry API (`GET /v2/<repo>/blobs/<digest>`).
    pub fn blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        let resp = self.get(&format!("/v2/{repo}/blobs/{digest}"))?;
        if resp.status != 200 {
            return Err(Error::msg(format!(
                "GET blob {repo}@{digest}: HTTP {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            )));
        }
        Ok(resp.body)
    }
}

enum WaitError {
    PortTaken,
    Other(Error),
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn wait_ready(
    child: &mut Child,
    host_port: &str,
    log_path: &Path,
) -> std::result::Result<(), WaitError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = read_log(log_path);
            if log.contains("address already in use") {
                return Err(WaitError::PortTaken);
            }
            return Err(WaitError::Other(Error::msg(format!(
                "docker-registry exited during startup with {status}; its log:\n{log}"
            ))));
        }
        // Any HTTP answer on /v2/ means the API is serving; 401 is the normal answer of a
        // registry with auth to an anonymous probe.
        let probe = http::request(
            "GET",
            host_port,
            "/v2/",
            None,
            &[],
            Duration::from_millis(500),
        );
        if let Ok(resp) = probe {
            if resp.status == 200 || resp.status == 401 {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Other(Error::msg(format!(
                "docker-registry on {host_port} did not answer /v2/ within {READY_TIMEOUT:?}; \
                 its log:\n{}",
                read_log(log_path)
            ))));
        }
        sleep(Duration::from_millis(50));
    }
}

/// Stops and reaps a child: SIGTERM first so the registry can finish in-flight writes, SIGKILL if
/// it lingers. Either way it is waited for, so no zombie outlives the test.
fn stop_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid; it is not reaped yet, so the pid cannot have
            // been reused by another process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("<log unreadable: {e}>"))
}

/// The registry config. Paths are quoted YAML strings; temp paths never contain quotes.
fn config_yaml(port: u16, storage: &Path, htpasswd: Option<&Path>) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: \"{}\"\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: \"127.0.0.1:{port}\"\n  secret: rcompose-e2e-not-secret\n",
        storage.display()
    );
    if let Some(path) = htpasswd {
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: rcompose-e2e\n    path: \"{}\"\n",
            path.display()
        ));
    }
    yaml
}

/// Writes an Apache htpasswd file with one bcrypt entry, the only hash the registry accepts.
fn write_htpasswd(path: &Path, creds: &Credentials) -> Result<()> {
    // Cost 4 is bcrypt's minimum: these are throwaway test secrets, and a high cost would only
    // slow down every authenticated request the registry checks.
    let hash = bcrypt::hash(&creds.password, 4).context("bcrypt-hashing the test password")?;
    fs::write(path, format!("{}:{hash}\n", creds.username)).context("writing htpasswd")
}
