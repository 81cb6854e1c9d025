//! Named volumes (local driver): `<root>/volumes/<name>/_data` plus `meta.json`. With
//! `driver_opts` `type`/`o`/`device` the data dir is a mount (tmpfs, bind, or any filesystem
//! type), made on first use and removed with the volume. A volume records whether it was
//! already filled from an image, so the copy-up happens only on first use, as in docker.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{write_atomic, LockFile};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("volume record {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("mounting volume {name}: {reason}")]
    Mount { name: String, reason: String },
    #[error("unsupported volume driver {0:?}: only \"local\" is available")]
    Driver(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// Filled from an image already (copy-up done or skipped for good).
    #[serde(rename = "RcomposeInitialized")]
    pub initialized: bool,
    /// Created implicitly for an anonymous mount.
    #[serde(rename = "RcomposeAnonymous")]
    pub anonymous: bool,
}

#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

pub fn valid_name(name: &str) -> bool {
    crate::container::id::valid_name(name)
}

impl VolumeStore {
    pub fn open(root: &Path) -> Result<VolumeStore, VolumeError> {
        let dir = root.join("volumes");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        crate::fsutil::spread_subdirs(&dir);
        Ok(VolumeStore { dir })
    }

    fn meta(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("meta.json")
    }

    fn lock(&self) -> Result<LockFile, VolumeError> {
        let p = self.dir.join(".lock");
        LockFile::acquire(&p).map_err(io_err(&p))
    }

    fn save(&self, v: &Volume) -> Result<(), VolumeError> {
        let p = self.meta(&v.name);
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| VolumeError::Corrupt {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&p, &bytes).map_err(io_err(&p))
    }

    /// Creates a volume, or returns the existing one of that name (as docker does).
    pub fn create(
        &self,
        name: &str,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::InvalidName(name.to_owned()));
        }
        if !driver.is_empty() && driver != "local" {
            return Err(VolumeError::Driver(driver.to_owned()));
        }
        let _l = self.lock()?;
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        let d = self.dir.join(name);
        let data = d.join("_data");
        fs::create_dir_all(&data).map_err(io_err(&data))?;
        let v = Volume {
            name: name.to_owned(),
            driver: "local".into(),
            mountpoint: data,
            created_at: crate::container::time::now(),
            labels,
            options,
            scope: "local".into(),
            initialized: false,
            anonymous,
        };
        self.save(&v)?;
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        let p = self.meta(name);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(VolumeError::Io { path: p, source: e }),
        };
        serde_json::from_slice(&bytes).map_err(|e| VolumeError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
        {
            if let Some(n) = e.file_name().to_str() {
                if let Ok(v) = self.get(n) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Makes the data dir usable (mounting it for `type` options) and returns it.
    pub fn prepare(&self, name: &str) -> Result<PathBuf, VolumeError> {
        let v = self.get(name)?;
        if let Some(kind) = v.options.get("type") {
            if !crate::container::rootfs::is_mountpoint(&v.mountpoint) {
                let device = v
                    .options
                    .get("device")
                    .cloned()
                    .unwrap_or_else(|| kind.clone());
                let mut o = v.options.get("o").cloned().unwrap_or_default();
                let mut flags = nix::mount::MsFlags::empty();
                let fstype = if kind == "none" || o.split(',').any(|x| x == "bind") {
                    flags |= nix::mount::MsFlags::MS_BIND;
                    o = o
                        .split(',')
                        .filter(|x| *x != "bind" && *x != "rbind")
                        .collect::<Vec<_>>()
                        .join(",");
                    None
                } else {
                    Some(kind.as_str())
                };
                nix::mount::mount(
                    Some(device.as_str()),
                    &v.mountpoint,
                    fstype,
                    flags,
                    if o.is_empty() { None } else { Some(o.as_str()) },
                )
                .map_err(|e| VolumeError::Mount {
                    name: name.to_owned(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(v.mountpoint)
    }

    /// Records that the volume has had its first-use copy-up.
    pub fn mark_initialized(&self, name: &str) -> Result<(), VolumeError> {
        let _l = self.lock()?;
        let mut v = self.get(name)?;
        if !v.initialized {
            v.initialized = true;
            self.save(&v)?;
        }
        Ok(())
    }

    /// Removes a volume; `users` are the containers that reference it (refused unless empty).
    pub fn remove(&self, name: &str, users: &[String]) -> Result<(), VolumeError> {
        let _l = self.lock()?;
        let v = self.get(name)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_owned(),
                containers: users.to_vec(),
            });
        }
        while crate::container::rootfs::is_mountpoint(&v.mountpoint) {
            nix::mount::umount2(&v.mountpoint, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
                VolumeError::Mount {
                    name: name.to_owned(),
                    reason: format!("umount: {e}"),
                }
            })?;
        }
        let d = self.dir.join(name);
        fs::remove_dir_all(&d).map_err(io_err(&d))
    }
}

/// Copies `src` (the image content at a mount point) into an empty volume dir, keeping
/// ownership, modes, symlinks and timestamps.
pub fn copy_up(src: &Path, dst: &Path) -> io::Result<()> {
    if !src.is_dir() {
        return Ok(());
    }
    if fs::read_dir(dst)?.next().is_some() {
        return Ok(());
    }
    copy_tree(src, dst)
}

fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = fs::symlink_metadata(src)?;
    fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let md = fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))?;
        } else if ft.is_file() {
            fs::copy(&from, &to)?;
            std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove_and_copy_up() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        let v = s
            .create("data", "local", BTreeMap::new(), BTreeMap::new(), false)
            .unwrap();
        assert!(v.mountpoint.ends_with("volumes/data/_data"));
        assert_eq!(
            s.create("data", "", BTreeMap::new(), BTreeMap::new(), false)
                .unwrap(),
            v
        );
        assert!(s
            .create("-x", "", BTreeMap::new(), BTreeMap::new(), false)
            .is_err());
        assert_eq!(s.list().unwrap().len(), 1);
        let src = d.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), "x").unwrap();
        copy_up(&src, &v.mountpoint).unwrap();
        assert_eq!(fs::read_to_string(v.mountpoint.join("sub/f")).unwrap(), "x");
        s.mark_initialized("data").unwrap();
        assert!(s.get("data").unwrap().initialized);
        assert!(matches!(
            s.remove("data", &["web".into()]),
            Err(VolumeError::InUse { .. })
        ));
        s.remove("data", &[]).unwrap();
        assert!(matches!(s.get("data"), Err(VolumeError::NotFound(_))));
    }
}
