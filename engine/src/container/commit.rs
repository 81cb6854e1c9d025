//! `container commit`: a new image whose last layer is the container's changes (the overlay's
//! upper dir as an OCI layer: whiteout devices become `.wh.` files, opaque dirs get
//! `.wh..wh..opq`), on top of the container's image, with the container's run config.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::changes::apply_change;
use crate::image::{now_secs, ImageRecord, ImageStore, LayerRecord};
use crate::manifest::{media, Descriptor, History, Manifest, RunConfig};
use crate::reference::Reference;
use crate::snapshot::chain_ids;
use crate::unpack::{unpack_layer, UnpackError, UnpackOptions};

use super::rootfs::Overlay;
use super::store::{io_err, Container};
use super::ContainerError;

/// Options of a commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub message: String,
    pub author: String,
    /// Dockerfile-style changes (`CMD`, `ENV`, …).
    pub changes: Vec<String>,
    pub tag: Option<Reference>,
}

fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Invalid(format!("commit: {e}"))
}

/// Writes the upper dir as a layer tar into `out`.
pub fn layer_tar(c: &Container, out: &mut File) -> Result<(), ContainerError> {
    let upper = Overlay::new(&c.dir).upper();
    let mut skip: BTreeSet<String> = [
        "dev",
        "proc",
        "sys",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for m in &c.config.mounts {
        skip.insert(m.target.trim_start_matches('/').to_owned());
    }
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    add_dir(&mut b, &upper, Path::new(""), &skip).map_err(io_err(&upper))?;
    b.finish().map_err(io_err(&upper))?;
    Ok(())
}

fn empty_entry(b: &mut tar::Builder<&mut File>, name: &Path) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(now_secs());
    h.set_cksum();
    b.append_data(&mut h, name, io::empty())
}

fn add_dir(
    b: &mut tar::Builder<&mut File>,
    upper: &Path,
    rel: &Path,
    skip: &BTreeSet<String>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(upper.join(rel))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let full = upper.join(&r);
        let md = fs::symlink_metadata(&full)?;
        let ft = md.file_type();
        let key = r.to_string_lossy().into_owned();
        let is_stub = skip.contains(&key) && (ft.is_dir() || md.len() == 0);
        if ft.is_char_device() && md.rdev() == 0 {
            let name = rel.join(format!(".wh.{}", e.file_name().to_string_lossy()));
            empty_entry(b, &name)?;
            continue;
        }
        if ft.is_dir() {
            if !is_stub {
                b.append_path_with_name(&full, &r)?;
                let opaque = xattr_get(&full, "trusted.overlay.opaque");
                if opaque.as_deref() == Some(b"y".as_slice()) {
                    empty_entry(b, &r.join(".wh..wh..opq"))?;
                }
            }
            add_dir(b, upper, &r, skip)?;
            continue;
        }
        if is_stub {
            continue;
        }
        b.append_path_with_name(&full, &r)?;
    }
    Ok(())
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 8];
    // SAFETY: both strings are NUL-terminated and live for the call; `buf` is writable.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// Commits the container; returns the new image's record.
pub fn commit(c: &Container, opts: &CommitOptions) -> Result<ImageRecord, ContainerError> {
    let root = c
        .dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| other("container dir has no state root"))?;
    let store = ImageStore::open(root)?;
    let _lease = store.lease()?;
    let parent = store.resolve(&c.config.image_id)?;
    let mut config = store.config(&parent)?;
    let manifest = store.manifest(&parent)?;

    let mut tmp = tempfile::tempfile_in(&c.dir).map_err(io_err(&c.dir))?;
    layer_tar(c, &mut tmp)?;
    tmp.seek(SeekFrom::Start(0)).map_err(io_err(&c.dir))?;
    let (diff, size) = store
        .content
        .put_reader(&mut tmp)
        .map_err(crate::image::ImageError::from)?;

    let mut run: RunConfig = config.config.clone().unwrap_or_default();
    run.cmd = Some(c.config.cmd.clone());
    run.entrypoint = if c.config.entrypoint.is_empty() {
        None
    } else {
        Some(c.config.entrypoint.clone())
    };
    run.env = Some(c.config.env.clone());
    run.working_dir = (!c.config.working_dir.is_empty()).then(|| c.config.working_dir.clone());
    run.user = (!c.config.user.is_empty()).then(|| c.config.user.clone());
    run.labels = (!c.config.labels.is_empty()).then(|| c.config.labels.clone());
    for ch in &opts.changes {
        apply_change(&mut run, ch).map_err(other)?;
    }
    let created = super::time::now();
    config.config = Some(run);
    config.created = Some(created.clone());
    if !opts.author.is_empty() {
        config.author = Some(opts.author.clone());
    }
    config.rootfs.diff_ids.push(diff.clone());
    config.history.push(History {
        created: Some(created),
        created_by: Some(format!(
            "rcompose container commit {}",
            super::id::short_id(&c.config.id)
        )),
        author: (!opts.author.is_empty()).then(|| opts.author.clone()),
        comment: (!opts.message.is_empty()).then(|| opts.message.clone()),
        empty_layer: false,
    });
    let cbytes = serde_json::to_vec(&config).map_err(other)?;
    let cdigest = store
        .content
        .put_bytes(&cbytes)
        .map_err(crate::image::ImageError::from)?;
    let mut layers_desc = manifest.layers.clone();
    layers_desc.push(Descriptor::new(media::OCI_LAYER, diff.clone(), size));
    let new_manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        config: Descriptor::new(media::OCI_CONFIG, cdigest.clone(), cbytes.len() as u64),
        layers: layers_desc.clone(),
        annotations: Default::default(),
        extra: Default::default(),
    };
    let mbytes = serde_json::to_vec(&new_manifest).map_err(other)?;
    let mdigest = store
        .content
        .put_bytes(&mbytes)
        .map_err(crate::image::ImageError::from)?;

    let chains = chain_ids(&config.rootfs.diff_ids);
    let mut layers: Vec<LayerRecord> = parent.layers.clone();
    let n = chains.len();
    let top = chains[n - 1].clone();
    let below = n.checked_sub(2).map(|i| chains[i].clone());
    let info = store
        .snapshots
        .create_with(&top, below.as_ref(), |dir| {
            let f = store
                .content
                .open_blob(&diff)
                .map_err(|e| UnpackError::Archive(io::Error::other(e)))?;
            let o = UnpackOptions {
                expected_diff_id: Some(diff.clone()),
                ..UnpackOptions::default()
            };
            unpack_layer(f, dir, &o)
        })
        .map_err(crate::image::ImageError::from)?;
    layers.push(LayerRecord {
        descriptor: Descriptor::new(media::OCI_LAYER, diff.clone(), size),
        diff_id: diff,
        chain_id: top,
    });
    let record = ImageRecord {
        id: cdigest,
        manifest: mdigest,
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        index: None,
        repo_digests: Vec::new(),
        layers,
        created: config.created.clone(),
        size: parent.size + info.size,
        added: now_secs(),
    };
    let tags: Vec<Reference> = opts.tag.iter().cloned().collect();
    store.add(record.clone(), &tags)?;
    Ok(record)
}
