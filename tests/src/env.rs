//! Per-test environment: a private state root, private config files, and a way to run the built
//! `rcompose` binary against them.
//!
//! Nothing a test does may touch the host's `/var/lib/rcompose`, `~/.docker/config.json` or
//! rcompose config, and nothing may outlive the test: [`StateRoot`] unmounts and removes its
//! directory on drop, also when the test panics.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::error::{Context, Error, Result};
use crate::registry::Registry;
use crate::util::{base64, hex};

/// Env var that overrides where the `rcompose` binary is looked for.
pub const RCOMPOSE_BIN_ENV: &str = "RCOMPOSE_BIN";
/// Env var that overrides the parent directory of state roots and test homes (default: the
/// system temp dir). Useful when /tmp is on a filesystem that cannot hold overlay upper dirs.
pub const TMPDIR_ENV: &str = "RCOMPOSE_E2E_TMPDIR";
/// Default time limit for one `rcompose` invocation via [`TestEnv::run`]: a hung command fails
/// its test instead of hanging the whole suite.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

fn temp_builder_dir(prefix: &str) -> Result<TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    match std::env::var_os(TMPDIR_ENV) {
        Some(base) => builder.tempdir_in(base),
        None => builder.tempdir(),
    }
    .with_context(|| format!("creating temp dir {prefix}*"))
}

/// Finds the `rcompose` binary built in this workspace's target dir.
///
/// Cargo only hands `CARGO_BIN_EXE_rcompose` to the `compose` crate's own tests, so this looks
/// next to the running test executable (`target/<profile>/deps/<test>` → `target/<profile>/`),
/// unless `RCOMPOSE_BIN` names the binary. `cargo test --workspace` builds the binary; with
/// `cargo test -p e2e` alone run `cargo build -p compose` first.
pub fn rcompose_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(RCOMPOSE_BIN_ENV) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(Error::msg(format!(
                "{RCOMPOSE_BIN_ENV}={} is not a file",
                bin.display()
            )))
        };
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| Error::msg("test executable has no parent dir"))?
        .to_path_buf();
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir.pop();
    }
    let bin = dir.join("rcompose");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(Error::msg(format!(
            "the rcompose binary is not built ({} is missing): run `cargo build -p compose` \
             first, or run the tests with `cargo test --workspace`, which builds it \
             (or set {RCOMPOSE_BIN_ENV})",
            bin.display()
        )))
    }
}

/// A unique short lowercase name (`<prefix><8 hex>`) for projects, networks and volumes, so
/// parallel tests never collide. Short because Linux interface names derived from it are limited
/// to 15 bytes.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = hex(&Sha256::digest(seed.as_bytes()));
    format!("{prefix}{}", &digest[..8])
}

/// A temporary rcompose state root (`--root`).
///
/// On drop it kills leftover processes started for this root (those whose environment holds
/// `RCOMPOSE_ROOT=<this root>`, i.e. rcompose commands and the supervisors they spawned), lazily
/// unmounts every mount under it (overlay rootfs, bind mounts), and removes it. Problems are
/// printed, not panicked on: a panic in drop during a failing test would abort the test binary.
#[derive(Debug)]
pub struct StateRoot {
    dir: Option<TempDir>,
    path: PathBuf,
}

impl StateRoot {
    /// Creates an empty state root.
    pub fn new() -> Result<Self> {
        let dir = temp_builder_dir("rcompose-e2e-root-")?;
        // Mount points in /proc/self/mountinfo are canonical; compare against the same form.
        let path = fs::canonicalize(dir.path()).context("canonicalizing state root")?;
        Ok(StateRoot {
            dir: Some(dir),
            path,
        })
    }

    /// The state root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Mount points at or under the root, deepest first.
    pub fn mounts(&self) -> Result<Vec<PathBuf>> {
        let info = fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
        let mut found: Vec<PathBuf> = info
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|field| PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(field))))
            .filter(|p| p.starts_with(&self.path))
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        found.dedup();
        Ok(found)
    }

    /// Processes whose environment names this root as `RCOMPOSE_ROOT`.
    pub fn processes(&self) -> Vec<i32> {
        let mut needle = b"RCOMPOSE_ROOT=".to_vec();
        needle.extend_from_slice(self.path.as_os_str().as_bytes());
        let me = std::process::id();
        let Ok(proc_dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        proc_dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .filter(|pid| u32::try_from(*pid).ok() != Some(me))
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_slice()))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Kills leftovers, unmounts and removes the root now, reporting what failed.
    pub fn cleanup(&mut self) -> Result<()> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        for pid in self.processes() {
            // SAFETY: kill(2) has no memory-safety preconditions. The pid was matched by an
            // environment entry naming this test's unique temp path.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let mut problems = Vec::new();
        // Stacked mounts on one path need one umount each, so go round until none are left.
        for _ in 0..16 {
            let mounts = self.mounts()?;
            if mounts.is_empty() {
                break;
            }
            for m in mounts {
                if let Err(e) = lazy_unmount(&m) {
                    problems.push(format!("umount {}: {e}", m.display()));
                }
            }
        }
        let left = self.mounts()?;
        if !left.is_empty() {
            problems.push(format!("still mounted: {left:?}"));
        }
        if let Err(e) = dir.close() {
            problems.push(format!("removing {}: {e}", self.path.display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "cleaning up state root {}: {}",
                self.path.display(),
                problems.join("; ")
            )))
        }
    }
}

impl Drop for StateRoot {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("rcompose-e2e: {e}");
        }
    }
}

/// umount2(MNT_DETACH): detaches even when busy (a container process may still hold it), so
/// cleanup never blocks on a straggler.
fn lazy_unmount(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(oct @ [a, b, c]) = bytes.get(i + 1..i + 4) {
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Turns a non-zero exit into an error that shows everything the command printed.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::msg(format!("{self}")))
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs a command with piped output, killing it when it outlives `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {shown}"))?;
    // Drain both pipes on threads so a chatty command cannot block on a full pipe. The buffers
    // are shared because a supervisor spawned by the command may inherit the pipes and keep them
    // open long after the command exits: we then take what arrived instead of waiting forever.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let handle = std::thread::spawn(move || {
            let Some(mut p) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n) = p.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = sink.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        });
        (buf, handle)
    };
    let (out_buf, out_thread) = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let (err_buf, err_thread) = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for command")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::msg(format!(
                "{shown} did not finish within {timeout:?}"
            )));
        }
        sleep(Duration::from_millis(10));
    };
    let grace = Instant::now() + Duration::from_secs(2);
    while !(out_thread.is_finished() && err_thread.is_finished()) && Instant::now() < grace {
        sleep(Duration::from_millis(5));
    }
    let take = |buf: &Arc<Mutex<Vec<u8>>>| {
        buf.lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (stdout, stderr) = (take(&out_buf), take(&err_buf));
    Ok(Output {
        command: shown,
        status,
        stdout,
        stderr,
    })
}

/// Everything one e2e test needs: a [`StateRoot`], a private `HOME`, `DOCKER_CONFIG` dir and
/// `RCOMPOSE_CONFIG` file, a working directory for compose files, and a unique project name.
///
/// Drop runs the deferred cleanup commands (see [`TestEnv::defer`]) and then removes everything.
#[derive(Debug)]
pub struct TestEnv {
    deferred: Vec<Vec<OsString>>,
    timeout: Duration,
    project: String,
    // Field order is drop order: the state root goes (unmount, kill) before the home dir.
    root: StateRoot,
    dir: TempDir,
}

impl TestEnv {
    /// Creates a fresh environment. The rcompose config starts as `{}` and `DOCKER_CONFIG` as an
    /// empty dir.
    pub fn new() -> Result<Self> {
        let root = StateRoot::new()?;
        let dir = temp_builder_dir("rcompose-e2e-env-")?;
        for sub in ["home", "docker-config", "work"] {
            fs::create_dir(dir.path().join(sub)).with_context(|| format!("creating {sub}"))?;
        }
        fs::write(dir.path().join("config.json"), "{}").context("writing rcompose config")?;
        Ok(TestEnv {
            deferred: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            project: unique_name("e2e"),
            root,
            dir,
        })
    }

    /// The state root passed as `--root`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The state root guard, for mount checks.
    pub fn state_root(&self) -> &StateRoot {
        &self.root
    }

    /// Working directory of every command: put `compose.yaml` here.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// `HOME` of every command.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `DOCKER_CONFIG` of every command (holds `config.json` with registry auths).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    /// `RCOMPOSE_CONFIG` of every command (the daemon.json-like engine config).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// A project name unique to this test (`e2e<8 hex>`), passed as `COMPOSE_PROJECT_NAME`.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Sets the time limit for [`TestEnv::run`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes a file under the work dir (parents created) and returns its path.
    pub fn write_file(&self, rel: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        let path = self.work_dir().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Replaces the rcompose config file.
    pub fn write_config(&self, config: &Value) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(config).context("serializing rcompose config")?;
        fs::write(self.config_path(), bytes).context("writing rcompose config")
    }

    /// Reads the rcompose config file.
    pub fn config(&self) -> Result<Value> {
        let bytes = fs::read(self.config_path()).context("reading rcompose config")?;
        serde_json::from_slice(&bytes).context("parsing rcompose config")
    }

    /// Sets one top-level key of the rcompose config, keeping the others.
    pub fn set_config(&self, key: &str, value: Value) -> Result<()> {
        let mut config = self.config()?;
        match config.as_object_mut() {
            Some(map) => {
                map.insert(key.to_string(), value);
            }
            None => config = json!({ key: value }),
        }
        self.write_config(&config)
    }

    /// Makes `registry` a pull-through mirror in the rcompose config (`registry-mirrors`, the
    /// key docker's daemon.json uses, with the mirror's `http://` URL) and allows plain HTTP to
    /// it (`insecure-registries`).
    pub fn use_mirror(&self, registry: &Registry) -> Result<()> {
        self.set_config("registry-mirrors", json!([registry.url()]))?;
        self.allow_insecure(registry)
    }

    /// Adds `registry` to `insecure-registries` (plain HTTP allowed) in the rcompose config.
    pub fn allow_insecure(&self, registry: &Registry) -> Result<()> {
        let mut list = self
            .config()?
            .get("insecure-registries")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let host = Value::String(registry.host_port().to_string());
        if !list.contains(&host) {
            list.push(host);
        }
        self.set_config("insecure-registries", Value::Array(list))
    }

    /// Adds the registry to `auths` in `$DOCKER_CONFIG/config.json` with its credentials, as
    /// `docker login` would; no-op for a registry without auth.
    pub fn docker_login(&self, registry: &Registry) -> Result<()> {
        let Some(creds) = registry.credentials() else {
            return Ok(());
        };
        let path = self.docker_config_dir().join("config.json");
        let mut config: Value = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).context("parsing docker config.json")?,
            Err(_) => json!({}),
        };
        let auth = base64(creds.colon_pair().as_bytes());
        if let Some(map) = config.as_object_mut() {
            let auths = map.entry("auths").or_insert_with(|| json!({}));
            if let Some(auths) = auths.as_object_mut() {
                auths.insert(registry.host_port().to_string(), json!({ "auth": auth }));
            }
        }
        let bytes = serde_json::to_vec_pretty(&config).context("serializing docker config")?;
        fs::write(&path, bytes).context("writing docker config.json")
    }

    /// A `Command` for the rcompose binary, wired to this environment: `--root`, `RCOMPOSE_ROOT`
    /// (also the marker the state root uses to find leftover processes), `RCOMPOSE_CONFIG`,
    /// `DOCKER_CONFIG`, `HOME`, `COMPOSE_PROJECT_NAME`, and the work dir as cwd.
    pub fn command(&self) -> Result<Command> {
        let mut cmd = Command::new(rcompose_bin()?);
        cmd.arg("--root")
            .arg(self.root())
            .current_dir(self.work_dir())
            .env("RCOMPOSE_ROOT", self.root())
            .env("RCOMPOSE_CONFIG", self.config_path())
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("HOME", self.home())
            .env("COMPOSE_PROJECT_NAME", &self.project)
            // Compose settings from the developer's shell must not leak into tests.
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES");
        Ok(cmd)
    }

    /// Runs `rcompose <args>` with the time limit; a non-zero exit is returned, not an error.
    pub fn run<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command()?;
        cmd.args(args);
        run_with_timeout(&mut cmd, self.timeout)
    }

    /// Runs `rcompose <args>` and fails unless it exits 0.
    pub fn run_ok<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(args)?.ok()
    }

    /// Registers `rcompose <args>` to run when the env is dropped (last registered runs first),
    /// e.g. `env.defer(["down", "--volumes"])` right after `up`, so networks and containers are
    /// removed even when the test fails halfway.
    pub fn defer<I, S>(&mut self, args: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.deferred.push(
            args.into_iter()
                .map(|a| a.as_ref().to_os_string())
                .collect(),
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        while let Some(args) = self.deferred.pop() {
            match self.run(&args) {
                Ok(out) if !out.success() => eprintln!("rcompose-e2e: deferred cleanup: {out}"),
                Ok(_) => {}
                Err(e) => eprintln!("rcompose-e2e: deferred cleanup: {e}"),
            }
        }
    }
}

/// `rcompose` wired to `env` (see [`TestEnv::command`]).
///
/// # Panics
/// When the binary is not built; the message says to run `cargo build -p compose`. Tests want
/// that failure loud, and a `Command` cannot carry an error.
pub fn rcompose(env: &TestEnv) -> Command {
    match env.command() {
        Ok(cmd) => cmd,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), b"/a b\\c");
        assert_eq!(unescape_mountinfo(r"/plain"), b"/plain");
        assert_eq!(unescape_mountinfo(r"/trailing\"), b"/trailing\\");
    }

    #[test]
    fn unique_names_differ_and_are_short() {
        let a = unique_name("e2e");
        let b = unique_name("e2e");
        assert_ne!(a, b);
        assert_eq!(a.len(), 11);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
