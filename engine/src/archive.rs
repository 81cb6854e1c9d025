//! Image tarballs: `save` writes, `load` reads, and `import` turns a root filesystem tarball into
//! a one-layer image.
//!
//! `save` writes what docker (25+) writes: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) that also carries docker's `manifest.json`, so the same file loads in
//! docker (any version: older ones read only `manifest.json`), in OCI tools, and here, with
//! manifest and config digests unchanged. `load` reads that, plain OCI layouts, and the legacy
//! docker-archive layout (`<id>/layer.tar`, `<id>.json`, symlinked duplicate layers).
//! Archive member names are only used as lookup keys, never as paths to write to: every blob goes
//! to the content store under the digest of its own bytes.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::changes::{apply_change, ChangeError};
use crate::content::ContentError;
use crate::digest::Digest;
use crate::image::{now_secs, ImageError, ImageRecord, ImageStore, LayerRecord};
use crate::manifest::{
    media, Descriptor, History, ImageConfig, Index, Manifest, ManifestError, Platform, RootFs,
    RunConfig,
};
use crate::reference::Reference;
use crate::snapshot::{chain_ids, SnapshotError};
use crate::unpack::{decompress, unpack_layer, Compression, UnpackError, UnpackOptions};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading image archive: {0}")]
    Read(#[source] io::Error),
    #[error("writing image archive: {0}")]
    Write(#[source] io::Error),
    #[error("image archive has neither index.json nor manifest.json: not an image archive")]
    NotAnImageArchive,
    #[error("image archive refers to {0:?}, which it does not contain")]
    Missing(String),
    #[error("image archive file {name} is malformed: {source}")]
    Json {
        name: String,
        source: serde_json::Error,
    },
    #[error("image config {0} lists a different number of layers than its manifest")]
    LayerCountMismatch(Digest),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// One entry of docker's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Largest `index.json` / `manifest.json` accepted from an archive.
const MAX_METADATA: u64 = 16 << 20;
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Writes `images` (each with the names to record for it) as one tarball.
pub fn save(
    store: &ImageStore,
    images: &[(ImageRecord, Vec<Reference>)],
    out: impl Write,
) -> Result<(), ArchiveError> {
    let mut tar = tar::Builder::new(out);
    let mut written = std::collections::BTreeSet::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for (rec, tags) in images {
        for d in rec.blobs().filter(|d| Some(*d) != rec.index.as_ref()) {
            if written.insert(d.clone()) {
                let size = store.content.size(d)?;
                let f = store.content.open_blob(d)?;
                append(&mut tar, &format!("blobs/sha256/{}", d.hex()), size, f)?;
            }
        }
        let msize = store.content.size(&rec.manifest)?;
        let mut base = Descriptor::new(&rec.manifest_media_type, rec.manifest.clone(), msize);
        if tags.is_empty() {
            index.push(base.clone());
        }
        for t in tags {
            let mut d = base.clone();
            d.annotations
                .insert(NAME_ANNOTATION.to_owned(), t.to_string());
            d.annotations.insert(
                REF_ANNOTATION.to_owned(),
                t.tag().unwrap_or("latest").to_owned(),
            );
            index.push(d);
        }
        base.annotations.clear();
        docker.push(DockerManifestEntry {
            config: format!("blobs/sha256/{}", rec.id.hex()),
            repo_tags: Some(tags.iter().map(|t| t.familiar()).collect()),
            layers: rec
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.descriptor.digest.hex()))
                .collect(),
        });
    }
    let idx = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_owned()),
        manifests: index,
        annotations: BTreeMap::new(),
        extra: Default::default(),
    };
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    append_bytes(&mut tar, "index.json", &to_json("index.json", &idx)?)?;
    append_bytes(
        &mut tar,
        "manifest.json",
        &to_json("manifest.json", &docker)?,
    )?;
    tar.into_inner()
        .map_err(ArchiveError::Write)?
        .flush()
        .map_err(ArchiveError::Write)
}

/// [`save`] into a file, atomically: written beside `path` and renamed, so a failed save leaves
/// no truncated archive behind.
pub fn save_to_path(
    store: &ImageStore,
    images: &[(ImageRecord, Vec<Reference>)],
    path: &std::path::Path,
) -> Result<(), ArchiveError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".rcompose-save-")
        .tempfile_in(dir)
        .map_err(ArchiveError::Write)?;
    save(store, images, io::BufWriter::new(tmp.as_file()))?;
    tmp.as_file().sync_all().map_err(ArchiveError::Write)?;
    tmp.persist(path)
        .map_err(|e| ArchiveError::Write(e.error))?;
    Ok(())
}

fn to_json<T: Serialize>(name: &str, v: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(v).map_err(|source| ArchiveError::Json {
        name: name.to_owned(),
        source,
    })
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
) -> Result<(), ArchiveError> {
    tar.append_data(&mut header(size), name, data)
        .map_err(ArchiveError::Write)
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    append(tar, name, data.len() as u64, data)
}

/// An image that `load` or `import` put in the store.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub record: ImageRecord,
    pub tags: Vec<Reference>,
}

/// Reads an image tarball (docker-archive or OCI layout; may be compressed) into the store.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<LoadedImage>, ArchiveError> {
    let _lease = store.lease()?;
    let (_, plain) = decompress(input).map_err(ArchiveError::Read)?;
    let mut archive = tar::Archive::new(plain);
    let mut files: HashMap<String, Digest> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Some(t) = entry.link_name_bytes() {
                    let t = String::from_utf8_lossy(&t).into_owned();
                    let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                        resolve_relative(&name, &t)
                    } else {
                        normalize(&t)
                    };
                    links.insert(name, target);
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if matches!(
                    name.as_str(),
                    "index.json" | "manifest.json" | "oci-layout" | "repositories"
                ) {
                    // Metadata files are read into memory: bound them so a hostile archive
                    // cannot make us allocate without limit.
                    if entry.size() > MAX_METADATA {
                        return Err(ArchiveError::Read(io::Error::other(format!(
                            "{name} is {} bytes, more than the {MAX_METADATA} allowed",
                            entry.size()
                        ))));
                    }
                    let mut v = Vec::new();
                    (&mut entry)
                        .take(MAX_METADATA)
                        .read_to_end(&mut v)
                        .map_err(ArchiveError::Read)?;
                    small.insert(name, v);
                } else if let Some(d) = name
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::from_hex(h).ok())
                {
                    let size = entry.size();
                    store.content.ingest(&d, Some(size), &mut entry)?;
                    files.insert(name, d);
                } else {
                    let (d, _) = store.content.put_reader(&mut entry)?;
                    files.insert(name, d);
                }
            }
            _ => {}
        }
    }
    let lookup = |path: &str| -> Result<Digest, ArchiveError> {
        let mut p = normalize(path);
        for _ in 0..16 {
            if let Some(d) = files.get(&p) {
                return Ok(d.clone());
            }
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Missing(path.to_owned()))
    };
    let docker: Vec<DockerManifestEntry> = match small.get("manifest.json") {
        Some(b) => serde_json::from_slice(b).map_err(|source| ArchiveError::Json {
            name: "manifest.json".into(),
            source,
        })?,
        None => Vec::new(),
    };
    // Names from docker's manifest.json, by config digest.
    let mut docker_tags: HashMap<Digest, Vec<Reference>> = HashMap::new();
    for e in &docker {
        let cfg = lookup(&e.config)?;
        for t in e.repo_tags.iter().flatten() {
            if let Ok(r) = Reference::parse(t) {
                docker_tags.entry(cfg.clone()).or_default().push(r);
            }
        }
    }

    // (manifest bytes, media type, tags)
    let mut manifests: Vec<(Vec<u8>, String, Vec<Reference>)> = Vec::new();
    let from_index = small.contains_key("index.json");
    if let Some(b) = small.get("index.json") {
        let idx: Index = serde_json::from_slice(b).map_err(|source| ArchiveError::Json {
            name: "index.json".into(),
            source,
        })?;
        let mut by_digest: BTreeMap<Digest, (String, Vec<Reference>)> = BTreeMap::new();
        for d in &idx.manifests {
            let mut desc = d.clone();
            if media::is_index(&d.media_type) {
                let inner: Index = serde_json::from_slice(&store.content.read(&d.digest)?)
                    .map_err(|source| ArchiveError::Json {
                        name: d.digest.to_string(),
                        source,
                    })?;
                desc = inner.select(&Platform::host())?.clone();
            }
            let name = d
                .annotations
                .get(NAME_ANNOTATION)
                .or(d
                    .annotations
                    .get(REF_ANNOTATION)
                    .filter(|n| n.contains('/') || n.contains(':')))
                .and_then(|n| Reference::parse(n).ok());
            let e = by_digest
                .entry(desc.digest.clone())
                .or_insert_with(|| (desc.media_type.clone(), Vec::new()));
            e.1.extend(name);
        }
        for (digest, (mt, tags)) in by_digest {
            manifests.push((store.content.read(&digest)?, mt, tags));
        }
    } else if !docker.is_empty() {
        for e in &docker {
            let cfg = lookup(&e.config)?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let d = lookup(l)?;
                let size = store.content.size(&d)?;
                let mt = match sniff(store, &d)? {
                    Compression::Gzip => media::OCI_LAYER_GZIP,
                    Compression::Zstd => media::OCI_LAYER_ZSTD,
                    Compression::None => media::OCI_LAYER,
                };
                layers.push(Descriptor::new(mt, d, size));
            }
            let m = Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.to_owned()),
                config: Descriptor::new(media::OCI_CONFIG, cfg.clone(), store.content.size(&cfg)?),
                layers,
                annotations: BTreeMap::new(),
                extra: Default::default(),
            };
            let bytes = serde_json::to_vec(&m).map_err(|source| ArchiveError::Json {
                name: "manifest".into(),
                source,
            })?;
            manifests.push((bytes, media::OCI_MANIFEST.to_owned(), Vec::new()));
        }
    } else {
        return Err(ArchiveError::NotAnImageArchive);
    }

    let mut out = Vec::new();
    for (bytes, mt, mut tags) in manifests {
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json {
                name: "manifest".into(),
                source,
            })?;
        let mdigest = store.content.put_bytes(&bytes)?;
        for t in docker_tags
            .get(&manifest.config.digest)
            .into_iter()
            .flatten()
        {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let mut record = record_for(store, &manifest, mdigest.clone(), &mt)?;
        // A manifest from index.json is stored byte for byte, so `name@digest` still names it
        // in the registry it came from (what containerd-backed docker reports after a load).
        // A manifest rebuilt from docker's manifest.json has a digest no registry knows.
        if from_index {
            for t in &tags {
                let rd = t.without_tag().with_digest(mdigest.clone()).to_string();
                if !record.repo_digests.contains(&rd) {
                    record.repo_digests.push(rd);
                }
            }
        }
        store.add(record.clone(), &tags)?;
        out.push(LoadedImage { record, tags });
    }
    Ok(out)
}

/// Unpacks the layers of a manifest whose blobs are in the store, and builds its record.
fn record_for(
    store: &ImageStore,
    manifest: &Manifest,
    mdigest: Digest,
    mt: &str,
) -> Result<ImageRecord, ArchiveError> {
    let config = ImageConfig::parse(&store.content.read(&manifest.config.digest)?)?;
    let diffs = &config.rootfs.diff_ids;
    if diffs.len() != manifest.layers.len() {
        return Err(ArchiveError::LayerCountMismatch(
            manifest.config.digest.clone(),
        ));
    }
    let chains = chain_ids(diffs);
    let mut layers = Vec::new();
    let mut size = 0;
    for (i, desc) in manifest.layers.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| chains[p].clone());
        let opts = UnpackOptions {
            expected_diff_id: Some(diffs[i].clone()),
            ..UnpackOptions::default()
        };
        let info = store
            .snapshots
            .create_with(&chains[i], parent.as_ref(), |dir| {
                let f = store
                    .content
                    .open_blob(&desc.digest)
                    .map_err(|e| UnpackError::Archive(io::Error::other(e)))?;
                unpack_layer(f, dir, &opts)
            })?;
        size += info.size;
        layers.push(LayerRecord {
            descriptor: desc.clone(),
            diff_id: diffs[i].clone(),
            chain_id: chains[i].clone(),
        });
    }
    Ok(ImageRecord {
        id: manifest.config.digest.clone(),
        manifest: mdigest,
        manifest_media_type: mt.to_owned(),
        index: None,
        repo_digests: Vec::new(),
        layers,
        created: config.created.clone(),
        size,
        added: now_secs(),
    })
}

fn sniff(store: &ImageStore, d: &Digest) -> Result<Compression, ArchiveError> {
    let f = store.content.open_blob(d)?;
    Ok(decompress(f).map_err(ArchiveError::Read)?.0)
}

fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn resolve_relative(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        return normalize(target);
    }
    let dir = link.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    normalize(&format!("{dir}/{target}"))
}

/// Options for `import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<Platform>,
    pub tag: Option<Reference>,
}

/// Makes a one-layer image from a root filesystem tarball (plain, gzip or zstd).
pub fn import(
    store: &ImageStore,
    input: impl Read,
    opts: &ImportOptions,
) -> Result<LoadedImage, ArchiveError> {
    let _lease = store.lease()?;
    let mut run = RunConfig::default();
    for c in &opts.changes {
        apply_change(&mut run, c)?;
    }
    // Keep the layer uncompressed: its digest is then its diff id, with no second pass.
    let (_, plain) = decompress(input).map_err(ArchiveError::Read)?;
    let (diff, size) = store.content.put_reader(plain)?;
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let created = rfc3339_now();
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: Some(run),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![diff.clone()],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("rcompose image import".to_owned()),
            comment: opts
                .message
                .clone()
                .or(Some("Imported from tarball".to_owned())),
            ..History::default()
        }],
        extra: Default::default(),
    };
    let cbytes = serde_json::to_vec(&config).map_err(|source| ArchiveError::Json {
        name: "config".into(),
        source,
    })?;
    let cdigest = store.content.put_bytes(&cbytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        config: Descriptor::new(media::OCI_CONFIG, cdigest, cbytes.len() as u64),
        layers: vec![Descriptor::new(media::OCI_LAYER, diff, size)],
        annotations: BTreeMap::new(),
        extra: Default::default(),
    };
    let mbytes = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
        name: "manifest".into(),
        source,
    })?;
    let mdigest = store.content.put_bytes(&mbytes)?;
    let record = record_for(store, &manifest, mdigest, media::OCI_MANIFEST)?;
    let tags: Vec<Reference> = opts.tag.iter().cloned().collect();
    store.add(record.clone(), &tags)?;
    Ok(LoadedImage { record, tags })
}

/// Current UTC time as RFC 3339 (what image configs use), without a date library.
pub fn rfc3339_now() -> String {
    format_rfc3339(now_secs())
}

pub fn format_rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses the RFC 3339 timestamps found in image configs into unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, ""),
    };
    let mut tp = clock.split(':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let sec: i64 = tp.next()?.split('.').next()?.parse().ok()?;
    let off = match offset.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (oh, om) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
        _ => 0,
    };
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy.rem_euclid(400);
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - off)
}

#[cfg(test)]
mod tests;
