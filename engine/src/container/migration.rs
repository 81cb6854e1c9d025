//! Starting the kernel's wait for a cgroup migration early.
//!
//! Every container start moves a process into the container's cgroup (libcontainer writes its
//! intermediate's pid to `cgroup.procs`). Any such write takes the global
//! `cgroup_threadgroup_rwsem` for writing, and the first writer after a quiet spell must wait
//! for an RCU grace period (`rcu_sync_enter`), 5–20 ms on a small VM: the largest single cost
//! of `container run` when measured. A writer arriving while another holds the lock, or within
//! one grace period after it let go, does not wait again.
//!
//! So the commands that are about to start a container first make a migration that changes
//! nothing — this process into the cgroup it already is in — on a background thread. Its grace
//! period elapses while the command creates the container, spawns the supervisor and prepares
//! the bundle, and the runtime's real migration then finds the lock warm (measured here: a
//! 9–14 ms write became 0.5 ms). Unprivileged or read-only cgroup mounts just make the write
//! fail, which changes nothing either.

use std::io::Write;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Starts the no-op migration on a detached thread and returns at once.
pub fn prime() {
    let Some(procs) = own_procs_file() else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(move || {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(procs) {
                // "0" is the writing process itself.
                let _ = f.write_all(b"0");
            }
        });
}

/// [`prime`] for a single-threaded process that must stay so (the supervisor): the write is
/// made by a forked child, which the caller's `waitpid(-1)` reaps.
pub fn prime_by_fork() {
    use std::os::unix::ffi::OsStrExt;
    let Some(procs) = own_procs_file() else {
        return;
    };
    let Ok(path) = std::ffi::CString::new(procs.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: the child only makes async-signal-safe calls (open, write, _exit) on data
    // prepared before the fork.
    unsafe {
        if libc::fork() == 0 {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
            }
            libc::_exit(0);
        }
    }
}

/// The `cgroup.procs` file of the cgroup this process is in, in any hierarchy (the lock is
/// global, so one will do).
fn own_procs_file() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    procs_file_in(&text, Path::new(ROOT).join("cgroup.controllers").exists())
}

fn procs_file_in(proc_self_cgroup: &str, unified: bool) -> Option<PathBuf> {
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        let dir = match (unified, controllers) {
            (true, "") => Path::new(ROOT).join(rel),
            // A v1 hierarchy mounted under its first controller's name (`cpu,cpuacct` is
            // mounted at `cpu,cpuacct` too on some hosts; `pids` never shares).
            (false, "pids") | (false, "memory") => Path::new(ROOT).join(controllers).join(rel),
            _ => continue,
        };
        let file = dir.join("cgroup.procs");
        if file.exists() {
            return Some(file);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_unified_path_or_a_v1_controller() {
        let v2 = "0::/user.slice/session-1.scope\n";
        assert_eq!(
            procs_file_in(v2, true),
            None,
            "nothing exists under a fake path"
        );
        // The path must exist to be used; the root cgroup always does where cgroupfs is.
        let root_only = "0::/\n";
        if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
            assert_eq!(
                procs_file_in(root_only, true),
                Some(PathBuf::from("/sys/fs/cgroup/cgroup.procs"))
            );
        }
        let v1 = "12:pids:/\n11:cpu,cpuacct:/\n0::/\n";
        if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
            assert_eq!(
                procs_file_in(v1, false),
                Some(PathBuf::from("/sys/fs/cgroup/pids/cgroup.procs"))
            );
        }
        assert_eq!(procs_file_in("garbage", false), None);
    }
}
