//! The OCI runtime: youki's `libcontainer`, called from a single-threaded process (the
//! supervisor for the container's init, the CLI for `exec`). libcontainer clones the container
//! init as a child of the caller, which can then `waitpid` it.

use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container as LcContainer;
use libcontainer::signal::Signal as LcSignal;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

use super::ContainerError;

/// Restores default SIGPIPE handling for the duration of a runtime call: the Rust runtime
/// ignores SIGPIPE, and an ignored signal would stay ignored across the container's execve.
struct SigpipeDefault;

impl SigpipeDefault {
    fn set() -> SigpipeDefault {
        // SAFETY: installing SIG_DFL for SIGPIPE has no preconditions; the process is
        // single-threaded here (supervisor or exec caller).
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        SigpipeDefault
    }
}

impl Drop for SigpipeDefault {
    fn drop(&mut self) {
        // SAFETY: as above; back to ignoring SIGPIPE so writes to gone peers return EPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}

/// Runs a libcontainer call with its tracing muted unless `RCOMPOSE_LOG` asks for it: it warns
/// about every cgroup v1 controller a host lacks, and its failures come back as errors anyway.
fn quiet<T>(f: impl FnOnce() -> T) -> T {
    if std::env::var_os("RCOMPOSE_LOG").is_some() {
        return f();
    }
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), f)
}

fn rt_err(
    what: &str,
) -> impl FnOnce(libcontainer::error::LibcontainerError) -> ContainerError + '_ {
    move |e| ContainerError::Runtime(format!("{what}: {e}"))
}

/// libcontainer's state directory for a container dir.
pub fn state_root(dir: &Path) -> PathBuf {
    dir.join("runtime")
}

/// Standard streams handed to the container (`None` inherits /dev/null-like defaults of the
/// caller).
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// A started process.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    /// The pty master when the process has a terminal.
    pub pty: Option<OwnedFd>,
}

/// Removes what a previous run of this container left in libcontainer's state (cgroup, state
/// dir); safe to call when nothing is there.
pub fn cleanup(dir: &Path, id: &str) {
    let root = state_root(dir);
    let cdir = root.join(id);
    if cdir.exists() {
        match LcContainer::load(cdir.clone()) {
            Ok(mut c) => {
                if let Err(e) = quiet(|| c.delete(true)) {
                    tracing::debug!("libcontainer delete {id}: {e}");
                }
            }
            Err(e) => tracing::debug!("libcontainer load {id}: {e}"),
        }
        let _ = fs::remove_dir_all(&cdir);
    }
}

/// Binds a console socket in `dir` (the runtime sends a pty master there).
pub fn console_listener(dir: &Path, name: &str) -> Result<(UnixListener, PathBuf), ContainerError> {
    // Bound relative to the container dir (sun_path is limited to 108 bytes); the supervisor
    // and exec run single-threaded, so the temporary chdir is safe.
    let path = dir.join(name);
    let _ = fs::remove_file(&path);
    let cwd = std::env::current_dir().map_err(super::store::io_err(dir))?;
    std::env::set_current_dir(dir).map_err(super::store::io_err(dir))?;
    let l = UnixListener::bind(name);
    let _ = std::env::set_current_dir(cwd);
    let l = l.map_err(super::store::io_err(&path))?;
    Ok((l, path))
}

/// Accepts the runtime's connection on a console socket and receives the pty master.
pub fn receive_pty(listener: &UnixListener) -> Result<OwnedFd, ContainerError> {
    let (conn, _) = listener
        .accept()
        .map_err(|e| ContainerError::Runtime(format!("console socket accept: {e}")))?;
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(|e| ContainerError::Runtime(format!("receiving the pty: {e}")))?;
    let cmsgs = msg
        .cmsgs()
        .map_err(|e| ContainerError::Runtime(format!("receiving the pty: {e}")))?;
    for c in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us via SCM_RIGHTS;
                // nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(ContainerError::Runtime(
        "no pty received on the console socket".into(),
    ))
}

/// Creates and starts the container's init from `<dir>/bundle/config.json`; with a tty the
/// pty master comes back through a console socket.
pub fn create_and_start(
    dir: &Path,
    id: &str,
    tty: bool,
    stdio: Stdio,
) -> Result<Started, ContainerError> {
    let console = if tty {
        Some(console_listener(dir, "console.sock")?)
    } else {
        None
    };
    let pid = create_and_start_with(
        dir,
        id,
        console.as_ref().map(|(_, p)| p.as_path()),
        stdio,
        false,
    )?;
    let pty = match &console {
        Some((l, p)) => {
            let pty = receive_pty(l);
            let _ = fs::remove_file(p);
            Some(pty?)
        }
        None => None,
    };
    Ok(Started { pid, pty })
}

/// Creates and starts the init. With `sibling`, the init becomes a child of the caller's
/// parent (for a forked helper: see [`in_helper`]). A console socket path makes it a tty
/// container; the pty master is sent there.
pub fn create_and_start_with(
    dir: &Path,
    id: &str,
    console: Option<&Path>,
    stdio: Stdio,
    sibling: bool,
) -> Result<i32, ContainerError> {
    cleanup(dir, id);
    let root = state_root(dir);
    fs::create_dir_all(&root).map_err(super::store::io_err(&root))?;
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(&root)
        .map_err(rt_err("state root"))?
        .with_executor(DefaultExecutor {});
    if let Some(p) = console {
        builder = builder.with_console_socket(Some(p));
    } else {
        if let Some(fd) = stdio.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            builder = builder.with_stderr(fd);
        }
    }
    let _guard = SigpipeDefault::set();
    let mut container = quiet(|| {
        builder
            .as_init(dir.join("bundle"))
            .with_systemd(false)
            .with_detach(true)
            .as_sibling(sibling)
            .build()
    })
    .map_err(rt_err("creating the container"))?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| ContainerError::Runtime("created container has no pid".into()))?;
    quiet(|| container.start()).map_err(rt_err("starting the container"))?;
    Ok(pid)
}

/// Runs `f` in a forked child of this (single-threaded) process and returns the text it
/// produced. The supervisor runs every libcontainer call this way, so the code and heap they
/// touch never count in its own resident set; processes they create as siblings are still
/// its children.
pub fn in_helper(
    f: impl FnOnce() -> Result<String, ContainerError>,
) -> Result<String, ContainerError> {
    spawn_helper(f)?.finish()
}

/// A forked helper whose answer has not been read yet (see [`spawn_helper`]).
#[derive(Debug)]
pub struct Helper {
    pub pid: i32,
    answer: fs::File,
}

impl Helper {
    /// Readable (or hung up) once the helper has answered or died: for a `poll(2)` loop.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.answer.as_raw_fd()
    }

    /// Reads the helper's answer to the end and reaps it (it may already have been reaped by
    /// a `waitpid(-1)` of the caller: the answer is what counts).
    pub fn finish(self) -> Result<String, ContainerError> {
        use std::io::Read;
        let mut msg = String::new();
        let mut answer = self.answer;
        let _ = answer.read_to_string(&mut msg);
        let mut status = 0;
        // SAFETY: reaping our own child with a valid status pointer.
        unsafe {
            libc::waitpid(self.pid, &mut status, 0);
        }
        if let Some(ok) = msg.strip_prefix("ok ") {
            Ok(ok.to_owned())
        } else if let Some(err) = msg.strip_prefix("err ") {
            Err(ContainerError::Runtime(err.to_owned()))
        } else {
            Err(ContainerError::Runtime(format!(
                "helper process failed (wait status {status})"
            )))
        }
    }

    /// Kills the helper (and so abandons its work) and reaps it.
    pub fn cancel(self) {
        let mut status = 0;
        // SAFETY: a non-blocking wait on our own child. 0 means it is still ours and unreaped,
        // so its pid cannot have been reused and the kill below reaches it; anything else
        // means it is gone (reaped here or by a `waitpid(-1)` earlier) and must not be
        // signalled.
        let still_ours = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } == 0;
        if still_ours {
            // SAFETY: see above.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
        let _ = self.finish();
    }
}

/// Forks a helper that runs `f` and writes its answer to a pipe; the caller reads it with
/// [`Helper::finish`], at once or when the pipe becomes readable.
pub fn spawn_helper(
    f: impl FnOnce() -> Result<String, ContainerError>,
) -> Result<Helper, ContainerError> {
    use std::io::Write;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Runtime(format!("pipe: {e}")))?;
    // SAFETY: callers are single-threaded (the supervisor), so the child is a full copy in
    // which `f` may allocate and take locks; it leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ContainerError::Runtime(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        drop(r);
        let msg = match f() {
            Ok(s) => format!("ok {s}"),
            Err(e) => format!("err {e}"),
        };
        let mut out = fs::File::from(w);
        let _ = out.write_all(msg.as_bytes());
        drop(out);
        // SAFETY: ends the helper without running the parent's exit handlers or destructors.
        unsafe { libc::_exit(0) }
    }
    // The parent's copies of whatever `f` captured (stdio fds) are closed here.
    drop(f);
    drop(w);
    Ok(Helper {
        pid,
        answer: fs::File::from(r),
    })
}

/// Freezes (pause) or thaws (resume) the container through its cgroup freezer.
pub fn set_paused(dir: &Path, id: &str, paused: bool) -> Result<(), ContainerError> {
    let mut c = LcContainer::load(state_root(dir).join(id)).map_err(rt_err("loading state"))?;
    if paused {
        quiet(|| c.pause()).map_err(rt_err("pause"))
    } else {
        quiet(|| c.resume()).map_err(rt_err("unpause"))
    }
}

/// Sends a signal to every process of the container.
pub fn kill_all(dir: &Path, id: &str, signal: i32) -> Result<(), ContainerError> {
    let mut c = LcContainer::load(state_root(dir).join(id)).map_err(rt_err("loading state"))?;
    let sig = LcSignal::try_from(signal)
        .map_err(|e| ContainerError::Invalid(format!("signal {signal}: {e}")))?;
    quiet(|| c.kill(sig, true)).map_err(rt_err("kill"))
}

/// An exec'd process description (written as the tenant's `process.json`).
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    /// The container's `oom_score_adj`, which its exec'd processes share (as with docker).
    pub oom_score_adj: i32,
}

/// Starts a process inside the running container (joins its namespaces and cgroup). The
/// returned pid is a child of the caller.
pub fn exec(
    dir: &Path,
    id: &str,
    spec: &ExecSpec,
    stdio: Stdio,
) -> Result<Started, ContainerError> {
    exec_with(dir, id, spec, stdio, false)
}

/// [`exec`], optionally as a sibling of the caller (from a forked helper).
pub fn exec_with(
    dir: &Path,
    id: &str,
    spec: &ExecSpec,
    stdio: Stdio,
    sibling: bool,
) -> Result<Started, ContainerError> {
    let root = state_root(dir);
    let caps = &spec.capabilities;
    let process = serde_json::json!({
        "terminal": spec.tty,
        "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": spec.additional_gids},
        "args": spec.args,
        "env": spec.env,
        "cwd": spec.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "oomScoreAdj": spec.oom_score_adj,
    });
    let mut process = process;
    if spec.no_new_privileges {
        // See spec.rs: the field's mere presence changes libcontainer's seccomp ordering.
        process["noNewPrivileges"] = serde_json::json!(true);
    }
    let tmp = tempfile::Builder::new()
        .prefix("exec-")
        .suffix(".json")
        .tempfile_in(dir)
        .map_err(super::store::io_err(dir))?;
    fs::write(tmp.path(), process.to_string()).map_err(super::store::io_err(tmp.path()))?;
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(&root)
        .map_err(rt_err("state root"))?
        .with_executor(DefaultExecutor {});
    let mut listener = None;
    let sock_name = format!("exec-{}.sock", std::process::id());
    if spec.tty {
        let (l, p) = console_listener(dir, &sock_name)?;
        builder = builder.with_console_socket(Some(p));
        listener = Some(l);
    } else {
        if let Some(fd) = stdio.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            builder = builder.with_stderr(fd);
        }
    }
    let guard = SigpipeDefault::set();
    let pid = quiet(|| {
        builder
            .as_tenant()
            .with_process(Some(tmp.path()))
            .with_detach(true)
            .as_sibling(sibling)
            .build()
    });
    drop(guard);
    let pid = match pid {
        Ok(p) => p.as_raw(),
        Err(e) => {
            let _ = fs::remove_file(dir.join(&sock_name));
            return Err(ContainerError::Runtime(format!("exec: {e}")));
        }
    };
    let pty = match &listener {
        Some(l) => Some(receive_pty(l)?),
        None => None,
    };
    let _ = fs::remove_file(dir.join(&sock_name));
    Ok(Started { pid, pty })
}
