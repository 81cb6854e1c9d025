//! The build cache: the layer a step made, by the step's key (parent state, instruction,
//! arguments, input content). A hit reuses the layer blob and its history time, so a rebuild
//! with nothing changed yields the same image digest.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::write_atomic;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub diff_id: Digest,
    /// The gzip-compressed blob of the layer (`None`: the blob is the uncompressed tar).
    #[serde(default)]
    pub blob: Option<Digest>,
    /// Size of the blob.
    pub size: u64,
    /// The history time of the step that made it.
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    pub fn open(root: &Path) -> BuildCache {
        BuildCache {
            dir: root.join("build-cache"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The layer of `key`, when recorded and readable (a damaged entry is a miss).
    pub fn get(&self, key: &str) -> Option<CachedLayer> {
        let bytes = fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put(&self, key: &str, layer: &CachedLayer) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(layer).map_err(std::io::Error::other)?;
        write_atomic(&self.path(key), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damaged_entries_miss() {
        let d = tempfile::tempdir().unwrap();
        let c = BuildCache::open(d.path());
        assert!(c.get("k").is_none());
        let l = CachedLayer {
            diff_id: Digest::of(b"x"),
            blob: Some(Digest::of(b"y")),
            size: 3,
            created: "t".into(),
        };
        c.put("k", &l).unwrap();
        assert_eq!(c.get("k"), Some(l));
        fs::write(d.path().join("build-cache/k.json"), "{").unwrap();
        assert!(c.get("k").is_none());
    }
}
