//! Per-container network namespaces, bind-mounted at `<dir>/netns` so that netctl can attach
//! interfaces before the container starts and the runtime can join it by path.
//!
//! The namespace is made in a short-lived helper thread (`unshare(CLONE_NEWNET)` only affects
//! the calling thread), which brings loopback up and bind-mounts its namespace file.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::ContainerError;

/// The namespace file of a container dir.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("netns")
}

/// Creates `<dir>/netns` (a new namespace, loopback up). A no-op if it is already mounted.
pub fn create(dir: &Path) -> Result<PathBuf, ContainerError> {
    let target = path(dir);
    if super::rootfs::is_mountpoint(&target) {
        return Ok(target);
    }
    File::create(&target).map_err(super::store::io_err(&target))?;
    let t = target.clone();
    let handle = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<(), String> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
            loopback_up().map_err(|e| format!("bringing up lo: {e}"))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &t,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("bind-mounting the namespace: {e}"))
        })
        .map_err(|e| ContainerError::Netns(format!("spawning helper thread: {e}")))?;
    let r = handle
        .join()
        .map_err(|_| ContainerError::Netns("helper thread panicked".into()))?;
    if let Err(e) = r {
        let _ = fs::remove_file(&target);
        return Err(ContainerError::Netns(e));
    }
    Ok(target)
}

/// Unmounts and removes `<dir>/netns` (missing is fine).
pub fn remove(dir: &Path) -> Result<(), ContainerError> {
    let target = path(dir);
    while super::rootfs::is_mountpoint(&target) {
        umount2(&target, MntFlags::MNT_DETACH)
            .map_err(|e| ContainerError::Netns(format!("umount {}: {e}", target.display())))?;
    }
    match fs::remove_file(&target) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ContainerError::Io {
            path: target,
            source: e,
        }),
        _ => Ok(()),
    }
}

fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the fd is wrapped immediately below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, owned, valid descriptor.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own, valid for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled in.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
