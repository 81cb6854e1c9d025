//! Unpacked layers, one directory per chainID: `<root>/snapshots/<chainid-hex>/fs`.
//!
//! Keyed by chainID (not diff id) as the OCI image spec defines it, so a snapshot names a layer
//! *at a position in a stack*; identical stacks share snapshots across images. Each snapshot holds
//! only its own layer's changes (whiteouts as overlayfs char devices), ready to be one lowerdir.
//!
//! A snapshot appears atomically: it is unpacked under `snapshots/.tmp-*`, its `info.json` (the
//! completion marker) is written and fsynced, then the directory is renamed into place. A
//! directory without `info.json` is never treated as complete. Removal renames first, then
//! deletes, for the same reason.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::{fsync_dir, write_atomic, LockFile};
use crate::unpack::{UnpackError, UnpackStats};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot {0} not found")]
    NotFound(Digest),
    #[error("snapshot metadata {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("unpacking layer (chain id {chain_id}): {source}")]
    Unpack {
        chain_id: Digest,
        source: UnpackError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The completion marker and description of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of regular file content in this layer.
    pub size: u64,
}

/// OCI chainIDs of a layer stack: `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn open(root: &Path) -> Result<SnapshotStore, SnapshotError> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        crate::fsutil::spread_subdirs(&dir);
        Ok(SnapshotStore { dir })
    }

    /// The snapshot's directory (holding `fs/` and `info.json`).
    pub fn dir(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// The unpacked layer tree, to be used as an overlay lowerdir.
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        self.dir(chain_id).join("fs")
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.dir(chain_id).join("info.json").is_file()
    }

    pub fn info(&self, chain_id: &Digest) -> Result<SnapshotInfo, SnapshotError> {
        let p = self.dir(chain_id).join("info.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound(chain_id.clone()))
            }
            Err(e) => return Err(SnapshotError::Io { path: p, source: e }),
        };
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Corrupt { path: p, source })
    }

    /// Every complete snapshot.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let e = e.map_err(io_err(&self.dir))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                if self.exists(&d) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Makes the snapshot `chain_id` unless it exists: `fill` unpacks into the empty directory it
    /// is given. Concurrent callers for the same chainID wait for each other; the loser finds the
    /// snapshot done. Returns the snapshot's info.
    pub fn create_with(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        fill: impl FnOnce(&Path) -> Result<UnpackStats, UnpackError>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        if self.exists(chain_id) {
            return self.info(chain_id);
        }
        let lock_path = self.dir.join(format!(".{}.lock", chain_id.hex()));
        let mut lock = LockFile::acquire(&lock_path).map_err(io_err(&lock_path))?;
        lock.set_remove_on_drop(true);
        if self.exists(chain_id) {
            return self.info(chain_id);
        }
        let final_dir = self.dir(chain_id);
        if final_dir.exists() {
            // An incomplete leftover under the final name (should not happen; be safe).
            self.discard(&final_dir)?;
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", chain_id.short()))
            .tempdir_in(&self.dir)
            .map_err(io_err(&self.dir))?;
        let fs_dir = tmp.path().join("fs");
        fs::create_dir(&fs_dir).map_err(io_err(&fs_dir))?;
        let stats = fill(&fs_dir).map_err(|source| SnapshotError::Unpack {
            chain_id: chain_id.clone(),
            source,
        })?;
        let info = SnapshotInfo {
            chain_id: chain_id.clone(),
            diff_id: stats.diff_id,
            parent: parent.cloned(),
            size: stats.size,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|source| SnapshotError::Corrupt {
            path: final_dir.clone(),
            source,
        })?;
        // Unpacked files must be durable before the marker claims they are there.
        sync_fs(&fs_dir)?;
        write_atomic(&tmp.path().join("info.json"), &json).map_err(io_err(tmp.path()))?;
        let tmp_path = tmp.keep();
        fs::rename(&tmp_path, &final_dir).map_err(io_err(&final_dir))?;
        fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
        lock.release_and_remove().map_err(io_err(&lock_path))?;
        Ok(info)
    }

    /// Removes a snapshot (missing is fine).
    pub fn remove(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let d = self.dir(chain_id);
        if !d.exists() {
            return Ok(());
        }
        self.discard(&d)
    }

    /// Deletes leftovers of interrupted unpacks and removals.
    pub fn clean(&self) -> Result<(), SnapshotError> {
        for e in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let e = e.map_err(io_err(&self.dir))?;
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            if n.starts_with(".del-") {
                remove_tree(&e.path())?;
            } else if let Some(rest) = n.strip_prefix(".tmp-") {
                // Only when no unpack of that chain is running (its lock is free).
                let short = rest.split('-').next().unwrap_or("");
                let busy = fs::read_dir(&self.dir)
                    .map_err(io_err(&self.dir))?
                    .filter_map(Result::ok)
                    .filter_map(|l| l.file_name().to_str().map(str::to_owned))
                    .filter(|l| l.starts_with(&format!(".{short}")) && l.ends_with(".lock"))
                    .any(|l| matches!(LockFile::try_acquire(&self.dir.join(&l)), Ok(None)));
                if !busy {
                    remove_tree(&e.path())?;
                }
            }
        }
        Ok(())
    }

    fn discard(&self, d: &Path) -> Result<(), SnapshotError> {
        let name = d.file_name().and_then(|n| n.to_str()).unwrap_or("x");
        let trash = self.dir.join(format!(".del-{name}-{}", std::process::id()));
        fs::rename(d, &trash).map_err(io_err(d))?;
        fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
        remove_tree(&trash)
    }
}

fn remove_tree(p: &Path) -> Result<(), SnapshotError> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SnapshotError::Io {
            path: p.to_owned(),
            source: e,
        }),
    }
}

/// syncfs(2) on the filesystem holding `p`: one call flushes every file just unpacked, far
/// cheaper than an fsync per file.
fn sync_fs(p: &Path) -> Result<(), SnapshotError> {
    let f = fs::File::open(p).map_err(io_err(p))?;
    rustix::fs::syncfs(&f).map_err(|e| SnapshotError::Io {
        path: p.to_owned(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::{unpack_layer, UnpackOptions};

    #[test]
    fn chain_id_definition() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    fn layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn create_is_atomic_and_shared() {
        let root = tempfile::tempdir().unwrap();
        let st = SnapshotStore::open(root.path()).unwrap();
        let data = layer();
        let diff = Digest::of(&data);
        // A failing unpack leaves nothing visible.
        let r = st.create_with(&diff, None, |_| {
            Err(UnpackError::Archive(io::Error::other("boom")))
        });
        assert!(r.is_err());
        assert!(!st.exists(&diff));
        assert!(st.list().unwrap().is_empty());
        let opts = UnpackOptions {
            expected_diff_id: Some(diff.clone()),
            ..Default::default()
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    st.create_with(&diff, None, |p| unpack_layer(&data[..], p, &opts))
                        .unwrap()
                });
            }
        });
        assert!(st.exists(&diff));
        assert_eq!(fs::read(st.fs_path(&diff).join("f")).unwrap(), b"abc");
        assert_eq!(st.info(&diff).unwrap().size, 3);
        assert_eq!(st.list().unwrap(), vec![diff.clone()]);
        // Only the snapshot directory remains: no temp dirs, no lock files.
        assert_eq!(
            fs::read_dir(root.path().join("snapshots")).unwrap().count(),
            1
        );
        st.remove(&diff).unwrap();
        assert!(!st.exists(&diff));
        st.clean().unwrap();
        assert_eq!(
            fs::read_dir(root.path().join("snapshots")).unwrap().count(),
            0
        );
    }
}
