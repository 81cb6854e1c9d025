//! The image store: which images exist and which names point at them.
//!
//! `<root>/images/index.json` maps tags (`registry/repo:tag`) to manifest digests and holds one
//! record per manifest (image id = config digest, layers with their diff and chain ids, repo
//! digests). It is read without locking (it is only ever replaced atomically) and mutated under
//! an flock on `<root>/images/.lock`. Blobs live in the content store and unpacked layers in the
//! snapshot store; removing an image deletes only what no remaining image references.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::fsutil::{write_atomic, LockFile};
use crate::manifest::{Descriptor, ImageConfig, Manifest, ManifestError};
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{SnapshotError, SnapshotStore};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("image index {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("ambiguous image id prefix {0:?}: matches several images")]
    Ambiguous(String),
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories(String),
    #[error("conflict: unable to remove {0} (must force) - image is being used by a container")]
    InUse(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    pub chain_id: Digest,
}

/// What the store knows about one image manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// Image id: the config digest.
    pub id: Digest,
    pub manifest: Digest,
    pub manifest_media_type: String,
    /// The index (manifest list) this image was pulled through, if any.
    #[serde(default)]
    pub index: Option<Digest>,
    /// `registry/repo@sha256:…` names of this image in registries.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub layers: Vec<LayerRecord>,
    #[serde(default)]
    pub created: Option<String>,
    /// Unpacked size (sum of layer sizes).
    pub size: u64,
    /// When it entered the store (unix seconds).
    pub added: u64,
}

impl ImageRecord {
    /// Every blob this image needs.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest, &self.id]
            .into_iter()
            .chain(self.index.iter())
            .chain(self.layers.iter().map(|l| &l.descriptor.digest))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
}

impl ImageIndex {
    /// Tags pointing at a manifest, as references.
    pub fn tags_of(&self, manifest: &Digest) -> Vec<Reference> {
        self.tags
            .iter()
            .filter(|(_, m)| *m == manifest)
            .filter_map(|(t, _)| Reference::parse(t).ok())
            .collect()
    }

    /// Tags pointing at any manifest of image `id`.
    pub fn tags_of_id(&self, id: &Digest) -> Vec<Reference> {
        let ms: BTreeSet<&Digest> = self
            .images
            .values()
            .filter(|r| &r.id == id)
            .map(|r| &r.manifest)
            .collect();
        self.tags
            .iter()
            .filter(|(_, m)| ms.contains(m))
            .filter_map(|(t, _)| Reference::parse(t).ok())
            .collect()
    }

    /// Finds an image by tag, digest reference, full id or unique id prefix.
    pub fn resolve(&self, s: &str) -> Result<&ImageRecord, ImageError> {
        if let Ok(r) = Reference::parse(s) {
            if let Some(m) = self.tags.get(&r.to_string()) {
                if let Some(rec) = self.images.get(m) {
                    return Ok(rec);
                }
            }
            if let Some(d) = r.digest() {
                let by_name = r.without_tag().with_digest(d.clone()).to_string();
                if let Some(rec) = self
                    .images
                    .values()
                    .find(|rec| rec.repo_digests.contains(&by_name) || rec.manifest == *d)
                {
                    return Ok(rec);
                }
            }
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let ids: BTreeSet<&Digest> = self
                .images
                .values()
                .map(|r| &r.id)
                .filter(|id| id.hex().starts_with(&hex))
                .collect();
            match ids.len() {
                0 => {}
                1 => {
                    if let Some(rec) = ids.iter().next().and_then(|id| self.newest_with_id(id)) {
                        return Ok(rec);
                    }
                }
                _ => return Err(ImageError::Ambiguous(s.to_owned())),
            }
        }
        Err(ImageError::NotFound(s.to_owned()))
    }

    fn newest_with_id(&self, id: &Digest) -> Option<&ImageRecord> {
        self.images
            .values()
            .filter(|r| &r.id == id)
            .max_by_key(|r| r.added)
    }

    /// Records not reachable by any tag.
    pub fn dangling(&self) -> Vec<&ImageRecord> {
        let tagged: BTreeSet<&Digest> = self.tags.values().collect();
        self.images
            .values()
            .filter(|r| !tagged.contains(&r.manifest))
            .collect()
    }
}

/// One line of `image rm` / `image prune` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(Digest),
}

/// The image half of a state root: content, snapshots and the name index.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    dir: PathBuf,
    pub content: ContentStore,
    pub snapshots: SnapshotStore,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let dir = root.join("images");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(ImageStore {
            root: root.to_owned(),
            dir,
            content: ContentStore::open(root)?,
            snapshots: SnapshotStore::open(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// A consistent view of the index (no lock needed: it is replaced atomically).
    pub fn index(&self) -> Result<ImageIndex, ImageError> {
        let p = self.index_path();
        match fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| ImageError::Corrupt { path: p, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ImageIndex::default()),
            Err(e) => Err(ImageError::Io { path: p, source: e }),
        }
    }

    /// Read-modify-write of the index under the store lock.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut ImageIndex) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let lock_path = self.dir.join(".lock");
        let _lock = LockFile::acquire(&lock_path).map_err(io_err(&lock_path))?;
        let mut idx = self.index()?;
        let out = f(&mut idx)?;
        let p = self.index_path();
        let json = serde_json::to_vec_pretty(&idx).map_err(|source| ImageError::Corrupt {
            path: p.clone(),
            source,
        })?;
        write_atomic(&p, &json).map_err(io_err(&p))?;
        Ok(out)
    }

    /// Held by anything that puts blobs and snapshots in place before recording an image
    /// (pull, load, import): garbage collection waits for every lease to end, so it never
    /// deletes content that an image about to be recorded relies on.
    pub fn lease(&self) -> Result<LockFile, ImageError> {
        let p = self.dir.join(".gc.lock");
        LockFile::acquire_shared(&p).map_err(io_err(&p))
    }

    pub fn resolve(&self, s: &str) -> Result<ImageRecord, ImageError> {
        Ok(self.index()?.resolve(s)?.clone())
    }

    pub fn manifest(&self, rec: &ImageRecord) -> Result<Manifest, ImageError> {
        let bytes = self.content.read(&rec.manifest)?;
        serde_json::from_slice(&bytes).map_err(|source| {
            ImageError::Manifest(ManifestError::Json {
                what: "manifest",
                source,
            })
        })
    }

    pub fn config(&self, rec: &ImageRecord) -> Result<ImageConfig, ImageError> {
        Ok(ImageConfig::parse(&self.content.read(&rec.id)?)?)
    }

    /// Records an image (its blobs and snapshots must already be in place) and points `tags` at
    /// it. Returns the images that lost their last tag because of it (now dangling).
    pub fn add(&self, mut rec: ImageRecord, tags: &[Reference]) -> Result<Vec<Digest>, ImageError> {
        self.update(|idx| {
            if let Some(old) = idx.images.get(&rec.manifest) {
                for d in &old.repo_digests {
                    if !rec.repo_digests.contains(d) {
                        rec.repo_digests.push(d.clone());
                    }
                }
                rec.added = rec.added.max(old.added);
                if rec.index.is_none() {
                    rec.index = old.index.clone();
                }
            }
            let manifest = rec.manifest.clone();
            idx.images.insert(manifest.clone(), rec);
            let mut orphaned = Vec::new();
            for t in tags {
                if let Some(prev) = idx.tags.insert(t.to_string(), manifest.clone()) {
                    if prev != manifest && !idx.tags.values().any(|m| *m == prev) {
                        if let Some(p) = idx.images.get(&prev) {
                            orphaned.push(p.id.clone());
                        }
                    }
                }
            }
            Ok(orphaned)
        })
    }

    /// `image tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<(), ImageError> {
        self.update(|idx| {
            let m = idx.resolve(source)?.manifest.clone();
            idx.tags.insert(target.to_string(), m);
            Ok(())
        })
    }

    /// `image rm`: untags `name`, and deletes the image when nothing else names it.
    /// `in_use` says whether a container uses an image id.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<RemoveEvent>, ImageError> {
        let mut removed = Vec::new();
        let events = self.update(|idx| {
            let rec = idx.resolve(name)?.clone();
            let mut events = Vec::new();
            let tags = idx.tags_of_id(&rec.id);
            let by_ref = Reference::parse(name).ok().filter(|r| match r.digest() {
                None => idx.tags.contains_key(&r.to_string()),
                Some(d) => {
                    rec.manifest == *d
                        || rec
                            .repo_digests
                            .contains(&r.without_tag().with_digest(d.clone()).to_string())
                }
            });
            match by_ref {
                // By tag while other tags remain: only untag.
                Some(r) if r.digest().is_none() && tags.len() > 1 => {
                    idx.tags.remove(&r.to_string());
                    events.push(RemoveEvent::Untagged(r.familiar()));
                    return Ok(events);
                }
                Some(_) => {}
                None if tags.len() > 1 && !force => {
                    return Err(ImageError::MultipleRepositories(rec.id.short().to_owned()))
                }
                None => {}
            }
            let used = in_use(&rec.id);
            if used && !force {
                return Err(ImageError::InUse(name.to_owned()));
            }
            for t in &tags {
                idx.tags.remove(&t.to_string());
                events.push(RemoveEvent::Untagged(t.familiar()));
            }
            if used {
                // Forced while a container uses it: the names go, the image stays for the container.
                return Ok(events);
            }
            let gone: Vec<ImageRecord> = idx
                .images
                .values()
                .filter(|r| r.id == rec.id)
                .cloned()
                .collect();
            for r in &gone {
                for d in &r.repo_digests {
                    if let Ok(rd) = Reference::parse(d) {
                        events.push(RemoveEvent::Untagged(rd.familiar()));
                    }
                }
                idx.images.remove(&r.manifest);
            }
            removed = gone;
            Ok(events)
        })?;
        let mut events = events;
        if !removed.is_empty() {
            events.extend(self.collect(&removed)?);
        }
        Ok(events)
    }

    /// `image prune`: removes dangling images (`all`: every image no container uses).
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<RemoveEvent>, ImageError> {
        let mut removed = Vec::new();
        let mut events = self.update(|idx| {
            let mut events = Vec::new();
            let victims: Vec<ImageRecord> = if all {
                idx.images
                    .values()
                    .filter(|r| !in_use(&r.id))
                    .cloned()
                    .collect()
            } else {
                idx.dangling()
                    .into_iter()
                    .filter(|r| !in_use(&r.id))
                    .cloned()
                    .collect()
            };
            for r in &victims {
                for t in idx.tags_of(&r.manifest) {
                    idx.tags.remove(&t.to_string());
                    events.push(RemoveEvent::Untagged(t.familiar()));
                }
                for d in &r.repo_digests {
                    if let Ok(rd) = Reference::parse(d) {
                        events.push(RemoveEvent::Untagged(rd.familiar()));
                    }
                }
                idx.images.remove(&r.manifest);
            }
            removed = victims;
            Ok(events)
        })?;
        if !removed.is_empty() {
            events.extend(self.collect(&removed)?);
        }
        Ok(events)
    }

    /// Deletes the blobs and snapshots of `removed` images that no remaining image uses.
    /// Runs under the store lock and the exclusive GC lock, so neither a concurrent `add` nor
    /// a pull still fetching (it holds a [`lease`](Self::lease)) can come to rely on them.
    fn collect(&self, removed: &[ImageRecord]) -> Result<Vec<RemoveEvent>, ImageError> {
        let gc_path = self.dir.join(".gc.lock");
        let _gc = LockFile::acquire(&gc_path).map_err(io_err(&gc_path))?;
        let lock_path = self.dir.join(".lock");
        let _lock = LockFile::acquire(&lock_path).map_err(io_err(&lock_path))?;
        let idx = self.index()?;
        let live_blobs: BTreeSet<&Digest> = idx.images.values().flat_map(|r| r.blobs()).collect();
        let live_chains: BTreeSet<&Digest> = idx
            .images
            .values()
            .flat_map(|r| r.layers.iter().map(|l| &l.chain_id))
            .collect();
        let live_ids: BTreeSet<&Digest> = idx.images.values().map(|r| &r.id).collect();
        let mut events = Vec::new();
        let mut seen = BTreeSet::new();
        for r in removed {
            if !live_ids.contains(&r.id) && seen.insert(r.id.clone()) {
                events.push(RemoveEvent::Deleted(r.id.clone()));
            }
            for b in r.blobs() {
                if !live_blobs.contains(b) {
                    self.content.delete(b)?;
                }
            }
            for l in r.layers.iter().rev() {
                if !live_chains.contains(&l.chain_id) && seen.insert(l.chain_id.clone()) {
                    self.snapshots.remove(&l.chain_id)?;
                    events.push(RemoveEvent::Deleted(l.chain_id.clone()));
                }
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::fake_image;
}
