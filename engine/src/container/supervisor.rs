//! The per-container supervisor: `rcompose __supervise <root> <id> [--attach-first]`.
//!
//! Single-threaded (libcontainer clones from it), driven by one `poll(2)` loop over a
//! self-pipe for signals, the control socket, the container's stdout/stderr pipes (or pty
//! master) and attached clients. It starts the container, writes logs, reaps and records the
//! exit (code, OOM kill), applies the restart policy with backoff, runs healthchecks, serves
//! stop/kill/pause/wait/attach, and on the way out unmounts and (with `--rm`) removes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::control::{self, FrameBuf};
use super::logs;
use super::ops::{Engine, READY_FD_ENV};
use super::record::{ContainerConfig, HealthResult, Status};
use super::store::ContainerStore;
use super::user::ResolvedUser;
use super::{cgroup, health, restart, runtime, time, ContainerError};

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `b` lives for the call.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

fn install_signals() -> Result<OwnedFd, ContainerError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(|e| ContainerError::Supervisor(format!("pipe: {e}")))?;
    SIGNAL_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w);
    for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: `on_signal` only calls async-signal-safe functions. Handlers are reset to the
        // default by execve in the container, so they do not leak into it.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    Ok(r)
}

struct Client {
    stream: UnixStream,
    frames: FrameBuf,
    stdin: bool,
}

struct Sup {
    engine: Engine,
    store: ContainerStore,
    id: String,
    dir: PathBuf,
    config: ContainerConfig,
    user: ResolvedUser,
    ready: Option<File>,
    listener: UnixListener,
    sig: OwnedFd,
    init_pid: i32,
    outputs: Vec<(u8, OwnedFd)>,
    stdin_w: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    log: logs::Writer,
    clients: Vec<Client>,
    waiters: Vec<UnixStream>,
    kill_at: Option<Instant>,
    stopping: bool,
    next_health: Option<Instant>,
    /// The healthcheck running now, in a helper whose answer the loop polls for: a check may
    /// take up to its timeout, and logs, attach and stop must not wait for it.
    health_check: Option<runtime::Helper>,
    /// When to drop startup pages again, once the loop has settled (see `resident`).
    trim_at: Option<Instant>,
    started: Instant,
}

/// Entry point; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let (Some(root), Some(id)) = (args.first(), args.get(1)) else {
        return 2;
    };
    let attach_first = args.iter().any(|a| a == "--attach-first");
    let ready = std::env::var(READY_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        // SAFETY: the spawner dup'ed its readiness pipe to this fd for us alone.
        .map(|fd| unsafe { File::from_raw_fd(fd) });
    match run(Path::new(root), id, attach_first, ready) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn run(
    root: &Path,
    id: &str,
    attach_first: bool,
    mut ready: Option<File>,
) -> Result<(), ContainerError> {
    let fail = |ready: &mut Option<File>, e: &ContainerError| {
        if let Some(mut r) = ready.take() {
            let _ = writeln!(r, "error {e}");
        }
    };
    let setup = || -> Result<Sup, ContainerError> {
        let engine = Engine::open(root)?;
        let store = engine.store.clone();
        let c = store.load(id)?;
        let dir = c.dir.clone();
        std::env::set_current_dir(&dir).map_err(super::store::io_err(&dir))?;
        // SAFETY: ignoring SIGPIPE has no preconditions (peers going away must give EPIPE).
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let sig = install_signals()?;
        let _ = std::fs::remove_file(control::SOCKET);
        let listener = UnixListener::bind(control::SOCKET).map_err(super::store::io_err(&dir))?;
        listener
            .set_nonblocking(true)
            .map_err(super::store::io_err(&dir))?;
        let log = logs::Writer::open(logs::path(&dir, id), c.config.log.clone())
            .map_err(super::store::io_err(&dir))?;
        let me = std::process::id() as i32;
        store.update_state(id, |s| {
            s.supervisor_pid = me;
            s.status = Status::Restarting;
        })?;
        Ok(Sup {
            engine,
            store,
            id: id.to_owned(),
            dir,
            config: c.config,
            user: ResolvedUser::default(),
            ready: None,
            listener,
            sig,
            init_pid: 0,
            outputs: Vec::new(),
            stdin_w: None,
            pty: None,
            log,
            clients: Vec::new(),
            waiters: Vec::new(),
            kill_at: None,
            stopping: false,
            next_health: None,
            health_check: None,
            trim_at: None,
            started: Instant::now(),
        })
    };
    let mut sup = match setup() {
        Ok(s) => s,
        Err(e) => {
            fail(&mut ready, &e);
            return Err(e);
        }
    };
    sup.ready = ready;
    if attach_first {
        sup.signal_ready();
        sup.wait_first_attach();
    }
    let result = sup.lifecycle();
    sup.finish(result.as_ref().err());
    result
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own, flags only.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: reading into a live buffer of the given length.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
}

fn write_all_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a live buffer of the given length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

impl Sup {
    /// After the container's init exited: its cgroups and the runtime's state. The common
    /// case needs two rmdir passes and a directory removal, done here; libcontainer's full
    /// delete (in a helper, see `runtime::in_helper`) is the fallback when a cgroup will not go.
    fn helper_cleanup(&self) {
        // Without a PID namespace of its own the container's other processes outlive its
        // init: only the runtime's delete (which kills them) can empty the cgroup.
        if !self.config.pid_host && cgroup::remove_dirs(&self.id) {
            let state = runtime::state_root(&self.dir).join(&self.id);
            if std::fs::remove_dir_all(&state).is_ok() || !state.exists() {
                return;
            }
        }
        let (dir, id) = (self.dir.clone(), self.id.clone());
        let _ = runtime::in_helper(move || {
            runtime::cleanup(&dir, &id);
            Ok(String::new())
        });
    }

    fn helper_kill_all(&self, sig: i32) {
        let (dir, id) = (self.dir.clone(), self.id.clone());
        let _ =
            runtime::in_helper(move || runtime::kill_all(&dir, &id, sig).map(|_| String::new()));
    }

    fn helper_set_paused(&self, paused: bool) -> Result<(), ContainerError> {
        let (dir, id) = (self.dir.clone(), self.id.clone());
        runtime::in_helper(move || runtime::set_paused(&dir, &id, paused).map(|_| String::new()))
            .map(|_| ())
    }

    fn signal_ready(&mut self) {
        if let Some(mut r) = self.ready.take() {
            let _ = writeln!(r, "ok");
        }
    }

    fn wait_first_attach(&mut self) {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end && self.clients.is_empty() && !self.stopping {
            self.poll_once(Some(Duration::from_millis(50)));
        }
    }

    /// Start, supervise, restart; returns when the container is down for good.
    fn lifecycle(&mut self) -> Result<(), ContainerError> {
        let mut backoff = restart::Backoff::default();
        loop {
            if let Err(e) = self.start() {
                // The runtime's own diagnostics went to the container's stderr: keep them.
                self.drain_outputs();
                let _ = self.log.flush_partial();
                self.outputs.clear();
                let msg = e.to_string();
                self.store.update_state(&self.id, |s| {
                    s.status = Status::Exited;
                    s.error = msg.clone();
                    s.exit_code = 127;
                    s.pid = 0;
                    s.finished_at = time::now();
                })?;
                if let Some(mut r) = self.ready.take() {
                    let _ = writeln!(r, "error {msg}");
                }
                return Err(e);
            }
            self.signal_ready();
            let status = self.supervise();
            let code = exit_code(status);
            let oom = cgroup::oom_kills(&self.id) > 0;
            self.helper_cleanup();
            let ran_for = self.started.elapsed();
            let restarts = self
                .store
                .load(&self.id)
                .map(|c| c.state.restart_count)
                .unwrap_or(0);
            let again = !self.stopping
                && restart::should_restart(&self.config.restart, code, restarts, false);
            self.store.update_state(&self.id, |s| {
                s.exit_code = code;
                s.oom_killed = oom;
                s.pid = 0;
                s.finished_at = time::now();
                s.status = if again {
                    Status::Restarting
                } else {
                    Status::Exited
                };
                if let Some(h) = &mut s.health {
                    if !again {
                        h.status = "unhealthy".into();
                    }
                }
            })?;
            if !again {
                return Ok(());
            }
            let delay = backoff.next(ran_for);
            let until = Instant::now() + delay;
            while Instant::now() < until && !self.stopping {
                self.poll_once(Some(until.saturating_duration_since(Instant::now())));
            }
            if self.stopping {
                return Ok(());
            }
            self.store
                .update_state(&self.id, |s| s.restart_count += 1)?;
        }
    }

    fn start(&mut self) -> Result<(), ContainerError> {
        let mut stdio = runtime::Stdio::default();
        if !self.config.tty {
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            stdio.stdout = Some(ow);
            stdio.stderr = Some(ew);
            self.outputs = vec![(1, or), (2, er)];
            if self.config.open_stdin {
                let (ir, iw) = pipe()?;
                stdio.stdin = Some(ir);
                self.stdin_w = Some(iw);
            } else {
                let null = File::open("/dev/null")
                    .map_err(super::store::io_err(Path::new("/dev/null")))?;
                stdio.stdin = Some(OwnedFd::from(null));
            }
        }
        let console = if self.config.tty {
            Some(runtime::console_listener(&self.dir, "console.sock")?)
        } else {
            None
        };
        let console_path = console.as_ref().map(|(_, p)| p.clone());
        let (engine, config, dir, id) = (
            self.engine.clone(),
            self.config.clone(),
            self.dir.clone(),
            self.id.clone(),
        );
        // The runtime is about to move a process into the container's cgroup: keep the
        // cgroup lock's grace period from starting only then (see `migration`).
        super::migration::prime_by_fork();
        // Bundle, mounts and libcontainer run in a forked helper (see `runtime::in_helper`).
        let out = runtime::in_helper(move || {
            let user = engine.prepare_bundle(&config, &dir)?;
            let pid =
                runtime::create_and_start_with(&dir, &id, console_path.as_deref(), stdio, true)?;
            let gids: Vec<String> = user.additional_gids.iter().map(|g| g.to_string()).collect();
            Ok(format!(
                "{pid} {} {} {}",
                user.uid,
                user.gid,
                gids.join(",")
            ))
        });
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                if let Some((_, p)) = &console {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        };
        let mut f = out.split(' ');
        let mut num = || f.next().and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
        let pid = num() as i32;
        self.user.uid = num() as u32;
        self.user.gid = num() as u32;
        self.user.additional_gids = out
            .split(' ')
            .nth(3)
            .unwrap_or("")
            .split(',')
            .filter_map(|g| g.parse().ok())
            .collect();
        self.init_pid = pid;
        if let Some((listener, path)) = console {
            let pty = runtime::receive_pty(&listener);
            let _ = std::fs::remove_file(path);
            let pty = pty?;
            let out = pty
                .try_clone()
                .map_err(|e| ContainerError::Runtime(format!("dup pty: {e}")))?;
            set_nonblocking(out.as_raw_fd());
            self.outputs = vec![(1, out)];
            self.pty = Some(pty);
        }
        for (_, fd) in &self.outputs {
            set_nonblocking(fd.as_raw_fd());
        }
        self.started = Instant::now();
        // Give back what the allocator holds from setup, and the startup code's pages.
        // SAFETY: malloc_trim has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
        super::resident::trim();
        self.trim_at = Some(Instant::now() + Duration::from_secs(2));
        let has_health = self
            .config
            .healthcheck
            .as_ref()
            .and_then(health::command)
            .is_some();
        self.next_health = self
            .config
            .healthcheck
            .as_ref()
            .filter(|_| has_health)
            .map(|h| {
                let t = health::timing(h);
                let first = if t.start_period > Duration::ZERO {
                    t.start_interval
                } else {
                    t.interval
                };
                Instant::now() + first
            });
        self.store.update_state(&self.id, |s| {
            s.status = Status::Running;
            s.pid = pid;
            s.started_at = time::now();
            s.exit_code = 0;
            s.oom_killed = false;
            s.error.clear();
            s.health = if has_health {
                Some(health::starting())
            } else {
                None
            };
        })?;
        Ok(())
    }

    /// Runs the loop until the init exits and output is drained; returns its wait status.
    fn supervise(&mut self) -> libc::c_int {
        loop {
            let mut timeout: Option<Duration> = None;
            let now = Instant::now();
            for t in [self.kill_at, self.next_health, self.trim_at]
                .into_iter()
                .flatten()
            {
                let d = t.saturating_duration_since(now);
                timeout = Some(timeout.map_or(d, |x: Duration| x.min(d)));
            }
            self.poll_once(timeout);
            if let Some(status) = self.reap() {
                self.cancel_healthcheck();
                self.drain_outputs();
                let _ = self.log.flush_partial();
                self.outputs.clear();
                self.pty = None;
                self.stdin_w = None;
                self.kill_at = None;
                self.init_pid = 0;
                return status;
            }
            let now = Instant::now();
            if self.kill_at.is_some_and(|t| t <= now) {
                self.kill_at = None;
                self.helper_kill_all(libc::SIGKILL);
            }
            if self.trim_at.is_some_and(|t| t <= now) {
                self.trim_at = None;
                super::resident::trim();
            }
            if self.next_health.is_some_and(|t| t <= now) && !self.stopping {
                self.run_healthcheck();
            }
        }
    }

    fn reap(&mut self) -> Option<libc::c_int> {
        if self.init_pid <= 0 {
            return None;
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(self.init_pid, &mut status, libc::WNOHANG) };
        // Reap any other children (libcontainer's intermediate processes).
        loop {
            let mut s = 0;
            // SAFETY: as above.
            let o = unsafe { libc::waitpid(-1, &mut s, libc::WNOHANG) };
            if o <= 0 || o == self.init_pid {
                if o == self.init_pid {
                    return Some(s);
                }
                break;
            }
        }
        if r == self.init_pid {
            Some(status)
        } else {
            None
        }
    }

    fn poll_once(&mut self, timeout: Option<Duration>) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(4 + self.clients.len());
        let pfd = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.push(pfd(self.sig.as_raw_fd()));
        fds.push(pfd(self.listener.as_raw_fd()));
        for (_, fd) in &self.outputs {
            fds.push(pfd(fd.as_raw_fd()));
        }
        let nout = self.outputs.len();
        for c in &self.clients {
            fds.push(pfd(c.stream.as_raw_fd()));
        }
        let nclients = self.clients.len();
        if let Some(h) = &self.health_check {
            fds.push(pfd(h.fd()));
        }
        let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: `fds` is a live, correctly sized array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return;
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 32];
            let n = read_fd(self.sig.as_raw_fd(), &mut buf);
            for &s in buf.iter().take(n.max(0) as usize) {
                let s = i32::from(s);
                if s == libc::SIGTERM || s == libc::SIGINT || s == libc::SIGHUP {
                    self.request_stop(15, 10);
                }
            }
        }
        if fds[1].revents != 0 {
            while let Ok((s, _)) = self.listener.accept() {
                self.handle_request(s);
            }
        }
        for i in 0..nout {
            if fds[2 + i].revents != 0 {
                self.read_output(i);
            }
        }
        if fds.get(2 + nout + nclients).is_some_and(|h| h.revents != 0) {
            self.healthcheck_done();
        }
        let mut gone = Vec::new();
        for (i, c) in fds[2 + nout..2 + nout + nclients].iter().enumerate() {
            if c.revents != 0 && !self.client_input(i) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 8192];
        let (stream, fd) = match self.outputs.get(i) {
            Some((s, fd)) => (*s, fd.as_raw_fd()),
            None => return,
        };
        let n = read_fd(fd, &mut buf);
        if n <= 0 {
            return;
        }
        let data = &buf[..n as usize];
        let _ = self.log.feed(stream, data);
        let kind = if stream == 2 {
            control::FRAME_STDERR
        } else {
            control::FRAME_STDOUT
        };
        self.clients
            .retain_mut(|c| control::write_frame(&mut c.stream, kind, data).is_ok());
    }

    fn drain_outputs(&mut self) {
        for i in 0..self.outputs.len() {
            for _ in 0..1024 {
                let mut buf = [0u8; 8192];
                let (stream, fd) = (self.outputs[i].0, self.outputs[i].1.as_raw_fd());
                let n = read_fd(fd, &mut buf);
                if n <= 0 {
                    break;
                }
                let data = &buf[..n as usize];
                let _ = self.log.feed(stream, data);
                let kind = if stream == 2 {
                    control::FRAME_STDERR
                } else {
                    control::FRAME_STDOUT
                };
                self.clients
                    .retain_mut(|c| control::write_frame(&mut c.stream, kind, data).is_ok());
            }
        }
    }

    /// Handles input from attached client `i`; false when it went away.
    fn client_input(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 4096];
        let n = match self.clients[i].stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        self.clients[i].frames.push(&buf[..n]);
        while let Some((kind, payload)) = self.clients[i].frames.next_frame() {
            match kind {
                control::FRAME_STDIN if self.clients[i].stdin => {
                    let fd = self
                        .pty
                        .as_ref()
                        .or(self.stdin_w.as_ref())
                        .map(|f| f.as_raw_fd());
                    if let Some(fd) = fd {
                        write_all_fd(fd, &payload);
                    }
                }
                control::FRAME_STDIN_CLOSE if self.clients[i].stdin => {
                    self.stdin_w = None;
                }
                control::FRAME_RESIZE => {
                    let text = String::from_utf8_lossy(&payload);
                    let mut it = text
                        .split_whitespace()
                        .filter_map(|x| x.parse::<u16>().ok());
                    if let (Some(rows), Some(cols), Some(pty)) = (it.next(), it.next(), &self.pty) {
                        let ws = libc::winsize {
                            ws_row: rows,
                            ws_col: cols,
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        // SAFETY: TIOCSWINSZ reads the winsize we own from a pty master fd.
                        unsafe {
                            libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws);
                        }
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn request_stop(&mut self, sig: i32, timeout: u64) {
        self.stopping = true;
        let _ = self
            .store
            .update_state(&self.id, |s| s.manually_stopped = true);
        if self.init_pid > 0 {
            if sig == libc::SIGKILL {
                self.helper_kill_all(libc::SIGKILL);
            } else {
                // SAFETY: signalling our own child.
                unsafe {
                    libc::kill(self.init_pid, sig);
                }
                self.kill_at = Some(Instant::now() + Duration::from_secs(timeout));
            }
            if self
                .store
                .load(&self.id)
                .is_ok_and(|c| c.state.status == Status::Paused)
            {
                let _ = self.helper_set_paused(false);
            }
        }
    }

    fn handle_request(&mut self, mut s: UnixStream) {
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.len() < 256 {
            match s.read(&mut b) {
                Ok(1) if b[0] != b'\n' => line.push(b[0]),
                _ => break,
            }
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let num = |w: Option<&str>, d: i64| w.and_then(|x| x.parse::<i64>().ok()).unwrap_or(d);
        match cmd {
            "stop" => {
                let sig = num(words.next(), 15) as i32;
                let t = num(words.next(), 10).max(0) as u64;
                self.request_stop(sig, t);
                self.waiters.push(s);
            }
            "wait" => self.waiters.push(s),
            "kill" => {
                let sig = num(words.next(), 9) as i32;
                if self.init_pid > 0 {
                    let _ = self
                        .store
                        .update_state(&self.id, |st| st.manually_stopped = true);
                    self.stopping = true;
                    // SAFETY: signalling our own child.
                    unsafe {
                        libc::kill(self.init_pid, sig);
                    }
                    let _ = s.write_all(b"ok\n");
                } else {
                    let _ = s.write_all(b"error container is not running\n");
                }
            }
            "pause" | "unpause" => {
                let paused = cmd == "pause";
                match self.helper_set_paused(paused) {
                    Ok(()) => {
                        let _ = self.store.update_state(&self.id, |st| {
                            st.status = if paused {
                                Status::Paused
                            } else {
                                Status::Running
                            };
                        });
                        let _ = s.write_all(b"ok\n");
                    }
                    Err(e) => {
                        let _ = s.write_all(format!("error {e}\n").as_bytes());
                    }
                }
            }
            "attach" => {
                let stdin = words.next() == Some("1");
                let _ = s.set_read_timeout(None);
                let _ = s.set_nonblocking(true);
                self.clients.push(Client {
                    stream: s,
                    frames: FrameBuf::default(),
                    stdin,
                });
                // Blocking writes with a timeout: a stuck client is dropped, not waited on.
                if let Some(c) = self.clients.last_mut() {
                    let _ = c.stream.set_nonblocking(false);
                    let _ = c.stream.set_read_timeout(Some(Duration::from_millis(1)));
                }
            }
            _ => {
                let _ = s.write_all(b"error unknown request\n");
            }
        }
    }

    /// Starts one check. Exec, wait, and the state update all happen in a forked helper (the
    /// supervisor keeps none of that code resident), which answers the next delay; the loop
    /// picks the answer up in `healthcheck_done`.
    fn run_healthcheck(&mut self) {
        self.next_health = None;
        let Some(hc) = self.config.healthcheck.clone() else {
            return;
        };
        let Some(cmd) = health::command(&hc) else {
            return;
        };
        let t = health::timing(&hc);
        let since = self.started.elapsed();
        let (store, dir, id) = (self.store.clone(), self.dir.clone(), self.id.clone());
        let (config, user) = (self.config.clone(), self.user.clone());
        let helper = runtime::spawn_helper(move || {
            let start = time::now();
            let (code, output) = exec_check(&dir, &id, &config, &user, cmd, t.timeout)
                .unwrap_or_else(|e| (-1, e.to_string()));
            let result = HealthResult {
                start,
                end: time::now(),
                exit_code: code,
                output,
            };
            let in_start = since < t.start_period;
            let mut next = t.interval;
            store.update_state(&id, |s| {
                let h = s.health.get_or_insert_with(health::starting);
                health::record(h, result, t.retries, in_start);
                next = health::next_delay(&t, h, since);
            })?;
            Ok(next.as_millis().to_string())
        });
        match helper {
            Ok(h) => self.health_check = Some(h),
            Err(_) => self.next_health = Some(Instant::now() + health::timing(&hc).interval),
        }
    }

    /// The running check answered: schedule the next one.
    fn healthcheck_done(&mut self) {
        let Some(helper) = self.health_check.take() else {
            return;
        };
        let interval = self
            .config
            .healthcheck
            .as_ref()
            .map(|h| health::timing(h).interval)
            .unwrap_or(Duration::from_secs(30));
        let next = helper
            .finish()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(interval);
        if !self.stopping {
            self.next_health = Some(Instant::now() + next);
        }
        // The kernel maps up to 64 KiB around every page fault (MADV_RANDOM does not stop
        // that), so even the little code a check runs here leaves pages behind: drop them.
        super::resident::trim();
    }

    /// Abandons a running check (the container is gone or going).
    fn cancel_healthcheck(&mut self) {
        if let Some(h) = self.health_check.take() {
            h.cancel();
        }
    }
}

/// Execs a check in the container and waits for it (at most `timeout`); runs in a helper, whose
/// child the check process is.
fn exec_check(
    dir: &Path,
    id: &str,
    config: &ContainerConfig,
    user: &ResolvedUser,
    cmd: Vec<String>,
    timeout: Duration,
) -> Result<(i32, String), ContainerError> {
    let (r, w) = pipe()?;
    let w2 = w
        .try_clone()
        .map_err(|e| ContainerError::Runtime(e.to_string()))?;
    let null = File::open("/dev/null").map_err(super::store::io_err(Path::new("/dev/null")))?;
    let stdio = runtime::Stdio {
        stdin: Some(OwnedFd::from(null)),
        stdout: Some(w),
        stderr: Some(w2),
    };
    let host = super::spec::HostInfo::detect();
    let hostname = super::spec::hostname(config, &host);
    let capabilities = super::security::capability_set(
        config.privileged,
        &config.cap_add,
        &config.cap_drop,
        &host.bounding,
    )
    .map_err(ContainerError::Invalid)?;
    let spec = runtime::ExecSpec {
        args: cmd,
        env: super::spec::process_env(config, &hostname),
        cwd: if config.working_dir.is_empty() {
            "/".into()
        } else {
            config.working_dir.clone()
        },
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids.clone(),
        tty: false,
        capabilities,
        no_new_privileges: config.no_new_privileges,
        oom_score_adj: config.oom_score_adj,
    };
    let pid = runtime::exec_with(dir, id, &spec, stdio, false)?.pid;
    set_nonblocking(r.as_raw_fd());
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut status = None;
    while status.is_none() {
        let mut buf = [0u8; 1024];
        loop {
            let n = read_fd(r.as_raw_fd(), &mut buf);
            if n <= 0 {
                break;
            }
            if out.len() < health::MAX_OUTPUT {
                out.extend_from_slice(&buf[..n as usize]);
            }
        }
        let mut st = 0;
        // SAFETY: waitpid on the check process, our child.
        if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
            status = Some(exit_code(st));
            // What it wrote just before exiting.
            loop {
                let n = read_fd(r.as_raw_fd(), &mut buf);
                if n <= 0 || out.len() >= health::MAX_OUTPUT {
                    break;
                }
                out.extend_from_slice(&buf[..n as usize]);
            }
            break;
        }
        if Instant::now() >= end {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut st, 0);
            }
            return Ok((
                -1,
                format!("Health check exceeded timeout ({}s)", timeout.as_secs()),
            ));
        }
        let mut p = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling one valid pollfd.
        unsafe {
            libc::poll(&mut p, 1, 20);
        }
    }
    out.truncate(health::MAX_OUTPUT);
    Ok((
        status.unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
    ))
}

impl Sup {
    /// Unmounts, removes with `--rm`, then tells waiters and attached clients the exit code.
    fn finish(&mut self, err: Option<&ContainerError>) {
        self.cancel_healthcheck();
        let code = self
            .store
            .load(&self.id)
            .map(|c| c.state.exit_code)
            .unwrap_or(255);
        let _ = super::rootfs::Overlay::new(&self.dir).unmount();
        let _ = self.store.update_state(&self.id, |s| {
            s.supervisor_pid = 0;
            if s.status != Status::Exited {
                s.status = Status::Exited;
            }
        });
        let _ = std::fs::remove_file(self.dir.join(control::SOCKET));
        // `--rm`: the container is gone before the client hears the exit code; deleting its
        // files (an upper dir can be large) happens after.
        let mut trash = None;
        if self.config.auto_remove {
            if let Ok((_, t)) = self.engine.remove_deferred(&self.id, true) {
                trash = t;
            }
        }
        let text = code.to_string();
        for c in &mut self.clients {
            if let Some(e) = err {
                let _ = control::write_frame(
                    &mut c.stream,
                    control::FRAME_STDERR,
                    format!("Error: {e}\n").as_bytes(),
                );
            }
            let _ = control::write_frame(&mut c.stream, control::FRAME_EXIT, text.as_bytes());
        }
        for w in &mut self.waiters {
            let _ = w.write_all(format!("exit {code}\n").as_bytes());
        }
        self.clients.clear();
        self.waiters.clear();
        if let Some(t) = trash {
            ContainerStore::purge(&t);
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Supervisor(format!("pipe: {e}")))
}
