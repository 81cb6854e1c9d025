//! Lifecycle operations on one state root: create (record, overlay dirs, netns, /etc files),
//! start (spawn the supervisor), stop, kill, pause, wait, remove, exec; and the bundle
//! preparation the supervisor runs before each start.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

use crate::image::ImageStore;
use crate::volume::{VolumeError, VolumeStore};

use super::record::{ContainerConfig, HealthConfig, MountKind, MountSpec, NetworkMode, Status};
use super::rootfs::Overlay;
use super::spec::{HostInfo, ResolvedMount, SpecInputs};
use super::store::{io_err, Container, ContainerStore};
use super::user::ResolvedUser;
use super::{control, etc, netns, runtime, ContainerError, SUPERVISE_ARG};

/// Environment variable naming the fd a supervisor reports readiness on.
pub const READY_FD_ENV: &str = "RCOMPOSE_SUPERVISOR_READY_FD";

/// What `create` needs beyond the config: the image to run.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The config as the user gave it (entrypoint/cmd/env/… empty = the image's).
    pub config: ContainerConfig,
    /// Whether `entrypoint` was given explicitly (an empty one resets the image's).
    pub entrypoint_set: bool,
}

/// The engine's container half on one state root.
#[derive(Debug, Clone)]
pub struct Engine {
    root: PathBuf,
    pub store: ContainerStore,
    pub volumes: VolumeStore,
    supervisor_exe: PathBuf,
}

impl Engine {
    pub fn open(root: &Path) -> Result<Engine, ContainerError> {
        Ok(Engine {
            root: root.to_owned(),
            store: ContainerStore::open(root)?,
            volumes: VolumeStore::open(root)?,
            supervisor_exe: std::env::current_exe()
                .unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
        })
    }

    /// The binary spawned as `<exe> __supervise <root> <id>` (default: the current one).
    pub fn set_supervisor_exe(&mut self, exe: PathBuf) {
        self.supervisor_exe = exe;
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a container from an image in the store (merging the image config as docker
    /// does) and prepares its dirs, network namespace and /etc files.
    pub fn create(&self, opts: CreateOptions) -> Result<Container, ContainerError> {
        let images = ImageStore::open(&self.root)?;
        let rec = images.resolve(&opts.config.image)?;
        let img = images.config(&rec)?;
        let run = img.config.unwrap_or_default();
        let mut c = opts.config;
        c.image_id = rec.id.to_string();
        c.lowerdirs = rec
            .layers
            .iter()
            .map(|l| images.snapshots.fs_path(&l.chain_id))
            .collect();
        if !opts.entrypoint_set {
            c.entrypoint = run.entrypoint.clone().unwrap_or_default();
            if c.cmd.is_empty() {
                c.cmd = run.cmd.clone().unwrap_or_default();
            }
        }
        let mut env = run.env.clone().unwrap_or_default();
        for e in &c.env {
            let k = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(e.clone());
        }
        c.env = env;
        if c.working_dir.is_empty() {
            c.working_dir = run.working_dir.clone().unwrap_or_default();
        }
        if c.user.is_empty() {
            c.user = run.user.clone().unwrap_or_default();
        }
        if c.stop_signal.is_empty() {
            c.stop_signal = run.stop_signal.clone().unwrap_or_default();
        }
        let mut labels: BTreeMap<String, String> = run.labels.clone().unwrap_or_default();
        labels.extend(std::mem::take(&mut c.labels));
        c.labels = labels;
        if c.healthcheck.is_none() {
            if let Some(h) = &run.healthcheck {
                if let Ok(h) = serde_json::from_value::<HealthConfig>(h.clone()) {
                    if !h.disabled() {
                        c.healthcheck = Some(h);
                    }
                }
            }
        }
        if let Some(vols) = &run.volumes {
            for target in vols.keys() {
                if !c.mounts.iter().any(|m| &m.target == target) {
                    c.mounts.push(super::record::MountSpec {
                        kind: MountKind::Volume,
                        source: String::new(),
                        target: target.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        self.create_from_config(c)
    }

    /// Adds the mounts of the `--volumes-from` containers (volumes and bind mounts, as docker
    /// copies them; a target this container mounts itself is kept), read-only with `:ro`.
    fn add_volumes_from(&self, c: &mut ContainerConfig) -> Result<(), ContainerError> {
        for spec in std::mem::take(&mut c.volumes_from) {
            let (key, mode) = match spec.rsplit_once(':') {
                Some((k, m)) if m == "ro" || m == "rw" => (k, Some(m)),
                _ => (spec.as_str(), None),
            };
            let source = self.store.find(key)?;
            for m in &source.config.mounts {
                if m.kind == MountKind::Tmpfs || c.mounts.iter().any(|x| x.target == m.target) {
                    continue;
                }
                let mut m = m.clone();
                if let Some(mode) = mode {
                    m.read_only = mode == "ro";
                }
                c.mounts.push(m);
            }
            c.volumes_from.push(spec.clone());
        }
        Ok(())
    }

    /// Creates a container from a complete config (lowerdirs, command, … already final).
    pub fn create_from_config(&self, mut c: ContainerConfig) -> Result<Container, ContainerError> {
        self.add_volumes_from(&mut c)?;
        for m in &mut c.mounts {
            if m.kind == MountKind::Volume {
                let anonymous = m.source.is_empty();
                if anonymous {
                    m.source = super::id::generate_id();
                }
                self.volumes.create(
                    &m.source,
                    "local",
                    BTreeMap::new(),
                    BTreeMap::new(),
                    anonymous,
                )?;
            }
        }
        if c.init && c.init_path.is_empty() {
            let configured = crate::config::EngineConfig::load()
                .map_err(|e| ContainerError::Invalid(e.to_string()))?
                .init_path;
            c.init_path = super::init::find(configured.as_deref())?
                .display()
                .to_string();
        }
        if let NetworkMode::Container(key) = &c.network_mode {
            // Docker's rule: the joined container's hostname (and its /etc files, see
            // `prepare_bundle`) become this one's.
            let target = self.store.find(key)?;
            let host = HostInfo::detect();
            c.hostname = super::spec::hostname(&target.config, &host);
            c.domainname = target.config.domainname.clone();
            c.network_mode = NetworkMode::Container(target.id().to_owned());
        }
        let created = self.store.create(c)?;
        let setup = || -> Result<(), ContainerError> {
            Overlay::new(&created.dir).prepare()?;
            if created.config.network_mode.has_own_netns() {
                netns::create(&created.dir)?;
            }
            let host = HostInfo::detect();
            etc::init(
                &created.dir,
                &created.config,
                &super::spec::hostname(&created.config, &host),
            )
        };
        if let Err(e) = setup() {
            let _ = self.remove_files(&created);
            return Err(e);
        }
        Ok(created)
    }

    /// Starts a created or exited container: spawns its supervisor and waits until the
    /// container runs (or, with `attach_first`, until the supervisor waits for an attach).
    pub fn start(&self, key: &str, attach_first: bool) -> Result<Container, ContainerError> {
        let c = self.store.find(key)?;
        if c.state.is_active() {
            return Ok(c);
        }
        if c.config.network_mode.has_own_netns() && !netns::path(&c.dir).exists() {
            netns::create(&c.dir)?;
        }
        if let Some(target) = c.config.network_mode.joined() {
            self.joined_dir(target)?;
        }
        super::migration::prime();
        self.store.update_state(c.id(), |s| {
            s.manually_stopped = false;
            s.error.clear();
        })?;
        self.spawn_supervisor(c.id(), attach_first)?;
        self.store.load(c.id())
    }

    fn spawn_supervisor(&self, id: &str, attach_first: bool) -> Result<(), ContainerError> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| ContainerError::Supervisor(format!("pipe: {e}")))?;
        let wfd = w.as_raw_fd();
        let mut cmd = Command::new(&self.supervisor_exe);
        cmd.arg(SUPERVISE_ARG).arg(&self.root).arg(id);
        if attach_first {
            cmd.arg("--attach-first");
        }
        // The supervisor's own diagnostics (RCOMPOSE_LOG=debug) go to a file in the container dir.
        let diag = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.dir(id).join("supervisor.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        cmd.env("RCOMPOSE_ROOT", &self.root)
            .env(READY_FD_ENV, "3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(diag)
            .current_dir("/");
        // SAFETY: only async-signal-safe calls (setsid, fork, _exit, dup2) run between fork and
        // exec. The second fork detaches the supervisor from us entirely (no zombie in a
        // long-lived caller): the intermediate exits at once and is reaped below.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                match libc::fork() {
                    -1 => return Err(std::io::Error::last_os_error()),
                    0 => {}
                    _ => libc::_exit(0),
                }
                if libc::dup2(wfd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            ContainerError::Supervisor(format!("spawning {}: {e}", self.supervisor_exe.display()))
        })?;
        drop(w);
        // The intermediate of the double fork; the supervisor itself is init's child now.
        let mut child = child;
        let _ = child.wait();
        let mut f = File::from(r);
        let mut msg = String::new();
        let _ = f.read_to_string(&mut msg);
        let msg = msg.trim();
        if let Some(err) = msg.strip_prefix("error ") {
            return Err(ContainerError::Runtime(err.to_owned()));
        }
        if msg != "ok" {
            return Err(ContainerError::Supervisor(format!(
                "supervisor exited before the container started{}",
                if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                }
            )));
        }
        Ok(())
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout` seconds. Returns once
    /// the supervisor has recorded the exit.
    pub fn stop(&self, key: &str, timeout: Option<u64>) -> Result<Container, ContainerError> {
        self.stop_with(key, timeout, None)
    }

    /// [`Engine::stop`] with a signal other than the container's stop signal.
    pub fn stop_with(
        &self,
        key: &str,
        timeout: Option<u64>,
        signal: Option<&str>,
    ) -> Result<Container, ContainerError> {
        let c = self.store.find(key)?;
        if !c.state.is_active() {
            return Ok(c);
        }
        let sig = signal_number(match signal {
            Some(s) => s,
            None if c.config.stop_signal.is_empty() => "SIGTERM",
            None => &c.config.stop_signal,
        })?;
        let t = timeout.or(c.config.stop_timeout).unwrap_or(10);
        control::request_and_wait(&c.dir, &format!("stop {sig} {t}"))?;
        wait_supervisor_gone(c.state.supervisor_pid, Duration::from_secs(t + 10));
        Ok(self.store.load(c.id()).unwrap_or(c))
    }

    /// Sends a signal to the container's main process.
    pub fn kill(&self, key: &str, signal: &str) -> Result<Container, ContainerError> {
        let c = self.store.find(key)?;
        if !c.state.is_active() {
            return Err(ContainerError::NotRunning(c.config.name));
        }
        let sig = signal_number(signal)?;
        control::request(&c.dir, &format!("kill {sig}"))?;
        Ok(c)
    }

    pub fn pause(&self, key: &str, paused: bool) -> Result<Container, ContainerError> {
        let c = self.store.find(key)?;
        if !c.state.is_active() {
            return Err(ContainerError::NotRunning(c.config.name));
        }
        control::request(&c.dir, if paused { "pause" } else { "unpause" })?;
        self.store.load(c.id())
    }

    /// Blocks until the container is not running; returns its exit code.
    pub fn wait(&self, key: &str) -> Result<i32, ContainerError> {
        let c = self.store.find(key)?;
        if c.state.is_active() {
            let _ = control::request_and_wait(&c.dir, "wait");
            wait_supervisor_gone(c.state.supervisor_pid, Duration::from_secs(30));
        }
        match self.store.load(c.id()) {
            Ok(c) => Ok(c.state.exit_code),
            Err(_) => Ok(c.state.exit_code),
        }
    }

    /// Removes a container (force: stop it first), and with `volumes` its anonymous volumes.
    pub fn remove(
        &self,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<Container, ContainerError> {
        self.remove_with(key, force, volumes, false).map(|(c, _)| c)
    }

    /// [`Engine::remove`] of a stopped container that leaves deleting its files to the caller:
    /// the container is gone (unmounted, its directory renamed out of the store, its name free)
    /// when this returns, and [`ContainerStore::purge`] on the returned path frees the disk.
    /// A `--rm` container's supervisor answers its client in between.
    pub fn remove_deferred(
        &self,
        key: &str,
        volumes: bool,
    ) -> Result<(Container, Option<PathBuf>), ContainerError> {
        self.remove_with(key, false, volumes, true)
    }

    fn remove_with(
        &self,
        key: &str,
        force: bool,
        volumes: bool,
        defer: bool,
    ) -> Result<(Container, Option<PathBuf>), ContainerError> {
        let mut c = self.store.find(key)?;
        if c.state.is_active() {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    c.config.name,
                    c.state.status.as_str()
                )));
            }
            if c.state.status == Status::Paused {
                let _ = control::request(&c.dir, "unpause");
            }
            let _ = control::request_and_wait(&c.dir, "stop 9 0");
            wait_supervisor_gone(c.state.supervisor_pid, Duration::from_secs(10));
            c = self.store.load(c.id()).unwrap_or(c);
        }
        self.release_mounts(&c)?;
        let trash = if defer {
            Some(self.store.detach_dir(c.id())?)
        } else {
            self.store.remove_dir(c.id())?;
            None
        };
        if volumes {
            for m in &c.config.mounts {
                if m.kind == MountKind::Volume {
                    if let Ok(v) = self.volumes.get(&m.source) {
                        if v.anonymous {
                            let _ = self
                                .volumes
                                .remove(&m.source, &self.volume_users(&m.source)?);
                        }
                    }
                }
            }
        }
        Ok((c, trash))
    }

    /// Tears down everything of a stopped container: runtime state, mounts, netns, dir.
    pub fn remove_files(&self, c: &Container) -> Result<(), ContainerError> {
        self.release_mounts(c)?;
        self.store.remove_dir(c.id())
    }

    /// Runtime state, the overlay, the network namespace and anything else mounted below the
    /// container's directory.
    fn release_mounts(&self, c: &Container) -> Result<(), ContainerError> {
        runtime::cleanup(&c.dir, c.id());
        Overlay::new(&c.dir).unmount()?;
        netns::remove(&c.dir)?;
        let _ = super::rootfs::unmount_all_under(&c.dir);
        Ok(())
    }

    /// Names of containers whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .filter(|c| {
                c.config
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|c| c.config.name)
            .collect())
    }

    /// Removes a volume unless a container uses it.
    pub fn remove_volume(&self, name: &str) -> Result<(), ContainerError> {
        let users = self.volume_users(name)?;
        self.volumes.remove(name, &users)?;
        Ok(())
    }

    /// The dir of the container whose network namespace `id` names; it must be running, as
    /// docker requires (a stopped one's namespace would be joined with no one to serve it).
    fn joined_dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        let target = self.store.find(id).map_err(|e| match e {
            ContainerError::NotFound(_) => ContainerError::Conflict(format!(
                "cannot join the network namespace of container {}: it no longer exists",
                super::id::short_id(id)
            )),
            e => e,
        })?;
        if !target.state.is_active() {
            return Err(ContainerError::Conflict(format!(
                "cannot join the network namespace of a non running container: {}",
                target.config.name
            )));
        }
        Ok(target.dir)
    }

    /// Mounts the rootfs and writes `bundle/config.json` for the next start; returns the
    /// resolved user. Run by the supervisor (single-threaded: the overlay mount may chdir).
    pub fn prepare_bundle(
        &self,
        c: &ContainerConfig,
        dir: &Path,
    ) -> Result<ResolvedUser, ContainerError> {
        let overlay = Overlay::new(dir);
        {
            let _lock = self.store.lock(&c.id)?;
            overlay.mount(&c.lowerdirs)?;
        }
        let rootfs = overlay.merged();
        let user = super::user::resolve_adding(&rootfs, &c.user, &c.group_add)?;
        let mut mounts = Vec::new();
        for m in &c.mounts {
            let mut options = Vec::new();
            let (kind, source) = match m.kind {
                MountKind::Bind => {
                    options.push("rbind".to_owned());
                    options.push("rprivate".to_owned());
                    let src = PathBuf::from(&m.source);
                    if !src.exists() {
                        std::fs::create_dir_all(&src).map_err(io_err(&src))?;
                    }
                    ("bind", src)
                }
                MountKind::Volume => {
                    let data = self.volume_data(m, &rootfs)?;
                    options.push("rbind".to_owned());
                    options.push("rprivate".to_owned());
                    ("bind", data)
                }
                MountKind::Tmpfs => {
                    options.extend(["nosuid", "nodev", "noexec"].map(String::from));
                    ("tmpfs", PathBuf::from("tmpfs"))
                }
            };
            if m.read_only {
                options.push("ro".to_owned());
            }
            options.extend(m.options.iter().cloned());
            mounts.push(ResolvedMount {
                kind,
                source,
                target: m.target.clone(),
                options,
            });
        }
        let host = HostInfo::detect();
        let net_dir = match c.network_mode.joined() {
            Some(target) => self.joined_dir(target)?,
            None => dir.to_owned(),
        };
        let spec = super::spec::build(&SpecInputs {
            config: c,
            rootfs: &rootfs,
            dir,
            net_dir: &net_dir,
            user: user.clone(),
            mounts,
            host: &host,
        })?;
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(io_err(&bundle))?;
        let p = bundle.join("config.json");
        // Regenerated before every start: no fsync needed.
        std::fs::write(&p, spec.to_string()).map_err(io_err(&p))?;
        Ok(user)
    }

    /// The data dir of volume mount `m`, made usable (a volume with a `type` option is mounted)
    /// and, on its first use, filled from the image's content at the mount target unless
    /// `nocopy`. `rootfs` is the container's mounted overlay.
    pub fn volume_data(&self, m: &MountSpec, rootfs: &Path) -> Result<PathBuf, ContainerError> {
        let data = self.volumes.prepare(&m.source)?;
        let v = self.volumes.get(&m.source)?;
        if !v.initialized {
            if !m.no_copy {
                copy_up_in_root(rootfs, &m.target, &data)?;
            }
            self.volumes.mark_initialized(&m.source)?;
        }
        Ok(data)
    }

    /// Runs a process in a running container; returns its pid (a child of the caller, which
    /// must be single-threaded) and the pty master with `tty`.
    pub fn exec(
        &self,
        key: &str,
        opts: &ExecOptions,
        stdio: runtime::Stdio,
    ) -> Result<(Container, runtime::Started), ContainerError> {
        let c = self.store.find(key)?;
        if c.state.status != Status::Running {
            return Err(ContainerError::Conflict(format!(
                "container {} is not running",
                super::id::short_id(c.id())
            )));
        }
        let rootfs = Overlay::new(&c.dir).merged();
        let user_spec = if opts.user.is_empty() {
            &c.config.user
        } else {
            &opts.user
        };
        let user = super::user::resolve_adding(&rootfs, user_spec, &c.config.group_add)?;
        let host = HostInfo::detect();
        let hostname = super::spec::hostname(&c.config, &host);
        let mut env = super::spec::process_env(&c.config, &hostname);
        if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        for e in &opts.env {
            let k = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(e.clone());
        }
        let privileged = opts.privileged || c.config.privileged;
        let caps = super::security::capability_set(
            privileged,
            &c.config.cap_add,
            &c.config.cap_drop,
            &host.bounding,
        )
        .map_err(ContainerError::Invalid)?;
        let cwd = if !opts.workdir.is_empty() {
            opts.workdir.clone()
        } else if c.config.working_dir.is_empty() {
            "/".into()
        } else {
            c.config.working_dir.clone()
        };
        let spec = runtime::ExecSpec {
            args: opts.cmd.clone(),
            env,
            cwd,
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            tty: opts.tty,
            capabilities: caps,
            no_new_privileges: c.config.no_new_privileges,
            oom_score_adj: c.config.oom_score_adj,
        };
        let started = runtime::exec(&c.dir, c.id(), &spec, stdio)?;
        Ok((c, started))
    }
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub tty: bool,
    pub privileged: bool,
}

/// Copies the image content at `target` into an empty volume dir. The target is looked up inside
/// `rootfs` (`RESOLVE_IN_ROOT`): an image whose mount point is a symlink to `/etc` or `../..`
/// fills the volume from its own `/etc`, never from the host's.
fn copy_up_in_root(rootfs: &Path, target: &str, data: &Path) -> Result<(), ContainerError> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(rootfs)(e.into()))?;
    let fd = match super::cp::resolve_in_root(root.as_fd(), target, true) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(())
        }
        Err(e) => return Err(io_err(&rootfs.join(target.trim_start_matches('/')))(e)),
    };
    // The fd pins what was resolved; its /proc path names exactly that directory.
    let src = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    crate::volume::copy_up(&src, data).map_err(|e| {
        ContainerError::Volume(VolumeError::Io {
            path: data.to_owned(),
            source: e,
        })
    })
}

/// Waits (bounded) until a pid no longer runs the supervisor.
pub fn wait_supervisor_gone(pid: i32, max: Duration) {
    let end = Instant::now() + max;
    while super::store::supervisor_alive(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `SIGTERM`, `TERM`, `term` or `15` → 15.
pub fn signal_number(s: &str) -> Result<i32, ContainerError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(ContainerError::Invalid(format!("invalid signal: {s}"))),
    };
    Ok(n)
}

/// Keeps an fd alive for a child (helper for callers building stdio).
pub fn dup_fd(fd: &OwnedFd) -> Result<OwnedFd, ContainerError> {
    fd.try_clone()
        .map_err(|e| ContainerError::Runtime(format!("dup: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(signal_number("SIGTERM").unwrap(), 15);
        assert_eq!(signal_number("kill").unwrap(), 9);
        assert_eq!(signal_number("10").unwrap(), 10);
        assert!(signal_number("NOPE").is_err());
    }
}
