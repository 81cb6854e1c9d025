//! A container's filesystem from the host: `diff` (changes in the overlay's upper dir),
//! `export` (tar of the merged root) and `cp` in both directions. A stopped container's
//! overlay is mounted for the operation and unmounted after.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

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

/// Writes the merged root filesystem as a tar stream.
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

/// Joins a container path onto the root without letting `..` or symlinks escape it.
fn resolve_in(root: &Path, p: &str, follow_last: bool) -> PathBuf {
    let mut cur = PathBuf::new();
    let comps: Vec<Component> = Path::new(p).components().collect();
    let mut hops = 0;
    let mut i = 0;
    let mut pending: Vec<PathBuf> = comps.iter().map(|c| PathBuf::from(c.as_os_str())).collect();
    while i < pending.len() {
        let part = pending[i].clone();
        i += 1;
        match part.to_str() {
            Some("/") | Some(".") => continue,
            Some("..") => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let cand = cur.join(&part);
        let is_last = i == pending.len();
        if (!is_last || follow_last) && hops < 40 {
            if let Ok(target) = fs::read_link(root.join(&cand)) {
                hops += 1;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                let rest: Vec<PathBuf> = pending[i..].to_vec();
                pending = target
                    .components()
                    .map(|c| PathBuf::from(c.as_os_str()))
                    .chain(rest)
                    .collect();
                i = 0;
                continue;
            }
        }
        cur = cand;
    }
    root.join(cur)
}

fn copy_any(
    src: &Path,
    dst: &Path,
    keep_owner: Option<(u32, u32)>,
    archive: bool,
) -> io::Result<()> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    let owner = if archive {
        Some((md.uid(), md.gid()))
    } else {
        keep_owner
    };
    if ft.is_dir() {
        if !dst.exists() {
            fs::create_dir(dst)?;
        }
        fs::set_permissions(dst, md.permissions())?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_any(&e.path(), &dst.join(e.file_name()), keep_owner, archive)?;
        }
    } else if ft.is_symlink() {
        let _ = fs::remove_file(dst);
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else {
        fs::copy(src, dst)?;
    }
    if let Some((u, g)) = owner {
        std::os::unix::fs::lchown(dst, Some(u), Some(g))?;
    }
    Ok(())
}

/// `cp CONTAINER:path dest`.
pub fn copy_out(
    c: &Container,
    path: &str,
    dest: &Path,
    follow: bool,
    archive: bool,
) -> Result<(), ContainerError> {
    with_rootfs(c, |root| {
        let src = resolve_in(root, path, follow);
        if fs::symlink_metadata(&src).is_err() {
            return Err(ContainerError::Invalid(format!(
                "Could not find the file {path} in container {}",
                c.config.name
            )));
        }
        let target = if dest.is_dir() {
            dest.join(src.file_name().unwrap_or_default())
        } else {
            dest.to_owned()
        };
        copy_any(&src, &target, None, archive).map_err(io_err(&target))
    })
}

/// `cp src CONTAINER:path`.
pub fn copy_in(
    c: &Container,
    src: &Path,
    path: &str,
    follow: bool,
    archive: bool,
) -> Result<(), ContainerError> {
    let src = if follow {
        fs::canonicalize(src).map_err(io_err(src))?
    } else {
        src.to_owned()
    };
    if fs::symlink_metadata(&src).is_err() {
        return Err(ContainerError::Invalid(format!(
            "no such file or directory: {}",
            src.display()
        )));
    }
    with_rootfs(c, |root| {
        let dst = resolve_in(root, path, true);
        let target = if dst.is_dir() {
            dst.join(src.file_name().unwrap_or_default())
        } else {
            dst
        };
        copy_any(&src, &target, Some((0, 0)), archive).map_err(io_err(&target))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/a", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/up")).unwrap();
        assert_eq!(
            resolve_in(root, "/../../etc/passwd", true),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in(root, "/link/b", true), root.join("a/b"));
        assert_eq!(resolve_in(root, "/a/b/up/x", true), root.join("x"));
        assert_eq!(resolve_in(root, "/link", false), root.join("link"));
    }
}
