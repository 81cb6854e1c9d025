//! The root filesystem: an overlay of the image's snapshots (lower) under a per-container upper
//! and work dir, mounted at `<dir>/rootfs`.
//!
//! Mount options must fit in one page; with many layers the lowerdirs are given as short
//! relative symlinks (`l/0`, `l/1`, …) resolved against the container dir, which the mounting
//! thread's cwd is set to for the call (as docker's overlay2 driver does).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::store::io_err;
use super::ContainerError;

/// The paths of a container's overlay.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub dir: PathBuf,
}

const PAGE_LIMIT: usize = 4000;

impl Overlay {
    pub fn new(dir: &Path) -> Overlay {
        Overlay {
            dir: dir.to_owned(),
        }
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Creates upper, work and mountpoint dirs.
    pub fn prepare(&self) -> Result<(), ContainerError> {
        for d in [self.upper(), self.work(), self.merged()] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(())
    }

    /// Whether the merged dir is a mount point now.
    pub fn is_mounted(&self) -> bool {
        is_mountpoint(&self.merged())
    }

    /// Mounts the overlay (no-op when mounted). `lowerdirs` are bottom layer first.
    pub fn mount(&self, lowerdirs: &[PathBuf]) -> Result<(), ContainerError> {
        self.prepare()?;
        if self.is_mounted() {
            return Ok(());
        }
        let mut lowers: Vec<PathBuf> = lowerdirs.iter().rev().cloned().collect();
        if lowers.is_empty() {
            let empty = self.dir.join("empty");
            fs::create_dir_all(&empty).map_err(io_err(&empty))?;
            lowers.push(empty);
        }
        let upper = self.upper();
        let work = self.work();
        let joined = join_paths(&lowers);
        let opts = format!(
            "lowerdir={joined},upperdir={},workdir={},index=off",
            upper.display(),
            work.display()
        );
        let target = self.merged();
        let result = if opts.len() < PAGE_LIMIT {
            mount(
                Some("overlay"),
                &target,
                Some("overlay"),
                MsFlags::empty(),
                Some(opts.as_str()),
            )
        } else {
            self.mount_with_links(&lowers)?
        };
        result.map_err(|e| ContainerError::Mount {
            target,
            reason: format!("overlay with {} layers: {e}", lowers.len()),
        })
    }

    fn mount_with_links(&self, lowers: &[PathBuf]) -> Result<nix::Result<()>, ContainerError> {
        let links = self.dir.join("l");
        let _ = fs::remove_dir_all(&links);
        fs::create_dir_all(&links).map_err(io_err(&links))?;
        let mut rel = Vec::new();
        for (i, l) in lowers.iter().enumerate() {
            let link = links.join(i.to_string());
            std::os::unix::fs::symlink(l, &link).map_err(io_err(&link))?;
            rel.push(format!("l/{i}"));
        }
        let opts = format!(
            "lowerdir={},upperdir=upper,workdir=work,index=off",
            rel.join(":")
        );
        if opts.len() >= PAGE_LIMIT {
            return Err(ContainerError::Mount {
                target: self.merged(),
                reason: format!("too many layers ({}) for one overlay mount", lowers.len()),
            });
        }
        let cwd = std::env::current_dir().map_err(io_err(&self.dir))?;
        std::env::set_current_dir(&self.dir).map_err(io_err(&self.dir))?;
        let r = mount(
            Some("overlay"),
            "rootfs",
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        );
        let _ = std::env::set_current_dir(cwd);
        Ok(r)
    }

    /// Unmounts the overlay (lazily if busy); a no-op when not mounted.
    pub fn unmount(&self) -> Result<(), ContainerError> {
        let target = self.merged();
        while is_mountpoint(&target) {
            umount2(&target, MntFlags::MNT_DETACH).map_err(|e| ContainerError::Mount {
                target: target.clone(),
                reason: format!("umount: {e}"),
            })?;
        }
        Ok(())
    }
}

fn join_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `path` is a mount point (per `/proc/self/mountinfo`).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
}

/// Lazily unmounts everything mounted at or below `dir` (deepest first).
pub fn unmount_all_under(dir: &Path) -> io::Result<()> {
    let Ok(canon) = fs::canonicalize(dir) else {
        return Ok(());
    };
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let prefix = canon.to_string_lossy().replace(' ', "\\040");
    let mut mps: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mps {
        let p = m.replace("\\040", " ");
        let _ = umount2(Path::new(&p), MntFlags::MNT_DETACH);
    }
    Ok(())
}
