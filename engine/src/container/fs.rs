//! A container's filesystem from the host: `diff` (changes in the overlay's upper dir) and
//! `export` (tar of the merged root). A stopped container's overlay is mounted for the operation
//! and unmounted after. Both see the overlay only, as docker's do: volumes and bind mounts are
//! not part of the container's filesystem for them (`cp`, in `cp.rs`, sees those).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::rootfs::Overlay;
use super::store::{io_err, Container};
use super::ContainerError;

/// Paths created as mount points for every container: never reported as changes.
const RUNTIME_PATHS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/.dockerenv",
];

fn in_lower(c: &Container, rel: &Path) -> bool {
    c.config
        .lowerdirs
        .iter()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
}

/// Changes as `(kind, path)` with kind `A` (added), `C` (changed) or `D` (deleted), sorted
/// by path as docker prints them.
pub fn changes(c: &Container) -> Result<Vec<(char, String)>, ContainerError> {
    let upper = Overlay::new(&c.dir).upper();
    let mut skip: BTreeSet<String> = RUNTIME_PATHS.iter().map(|s| s.to_string()).collect();
    for m in &c.config.mounts {
        skip.insert(m.target.clone());
    }
    let mut out = Vec::new();
    walk(c, &upper, Path::new(""), &skip, &mut out)?;
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn walk(
    c: &Container,
    upper: &Path,
    rel: &Path,
    skip: &BTreeSet<String>,
    out: &mut Vec<(char, String)>,
) -> Result<bool, ContainerError> {
    let dir = upper.join(rel);
    let rd = match fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(ContainerError::Io {
                path: dir,
                source: e,
            })
        }
    };
    let mut any = false;
    for e in rd.flatten() {
        let r = rel.join(e.file_name());
        let shown = format!("/{}", r.display());
        let md = match e.metadata() {
            Ok(m) => m,
            Err(_) => continue,
        };
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            out.push(('D', shown));
            any = true;
            continue;
        }
        if ft.is_dir() {
            let existed = in_lower(c, &r);
            let child = walk(c, upper, &r, skip, out)?;
            if skip.contains(&shown) && !child {
                continue;
            }
            if !existed {
                out.push(('A', shown));
                any = true;
            } else if child {
                out.push(('C', shown));
                any = true;
            }
            continue;
        }
        if skip.contains(&shown) && md.len() == 0 {
            continue;
        }
        out.push((if in_lower(c, &r) { 'C' } else { 'A' }, shown));
        any = true;
    }
    Ok(any)
}

/// Runs `f` on the merged root, mounting the overlay for the call if it is not mounted.
pub fn with_rootfs<T>(
    c: &Container,
    f: impl FnOnce(&Path) -> Result<T, ContainerError>,
) -> Result<T, ContainerError> {
    // The supervisor mounts and unmounts under the same lock: no unmount mid-operation.
    let store = super::store::ContainerStore::open(
        c.dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/")),
    )?;
    let _lock = store.lock(c.id())?;
    let active = store
        .load(c.id())
        .map(|x| x.state.is_active())
        .unwrap_or(false);
    let o = Overlay::new(&c.dir);
    let mounted_here = !o.is_mounted();
    if mounted_here {
        o.mount(&c.config.lowerdirs)?;
    }
    let r = f(&o.merged());
    if mounted_here && !active {
        o.unmount()?;
    }
    r
}

/// Writes the merged root filesystem as a tar stream: the overlay only, without volumes or bind
/// mounts, as docker's `export` does.
pub fn export(c: &Container, out: impl Write) -> Result<(), ContainerError> {
    with_rootfs(c, |root| {
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Complete);
        b.append_dir_all(".", root).map_err(io_err(root))?;
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io_err(root))?;
        Ok(())
    })
}
