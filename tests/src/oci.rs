//! A small, deterministic OCI image writer: layer tarballs from in-memory entries, compressed as
//! asked, stored as blobs in an OCI image layout directory with config, manifest, index.
//!
//! Determinism matters: the same inputs give the same digests on every run (fixed mtimes, uid/gid
//! 0, sorted entries, fixed compression levels, fixed `created` times), so tests can compare
//! what rcompose pulled against the digests computed here.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};
use crate::util::hex;

/// mtime of every tar entry and `created` of every config: 2024-01-01T00:00:00Z.
pub const FIXED_MTIME: u64 = 1_704_067_200;
/// `created` timestamps in configs and history, matching [`FIXED_MTIME`].
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

/// OCI media types.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// gzip OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// zstd OCI layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer (Docker schema 2 has no zstd or uncompressed layer type in practice).
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker uncompressed layer.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (level 1: tests build fixtures in unoptimized debug builds, where higher levels cost
    /// seconds per image for a few hundred KiB saved).
    Gzip,
    /// zstd (level 3).
    Zstd,
}

impl Compression {
    /// All three, for tests that cover each.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// Short name: `none`, `gzip`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The layer media type for this compression in the given manifest format.
    pub fn layer_media_type(self, format: ManifestFormat) -> Result<&'static str> {
        Ok(match (format, self) {
            (ManifestFormat::Oci, Compression::None) => media::OCI_LAYER,
            (ManifestFormat::Oci, Compression::Gzip) => media::OCI_LAYER_GZIP,
            (ManifestFormat::Oci, Compression::Zstd) => media::OCI_LAYER_ZSTD,
            (ManifestFormat::Docker, Compression::None) => media::DOCKER_LAYER,
            (ManifestFormat::Docker, Compression::Gzip) => media::DOCKER_LAYER_GZIP,
            (ManifestFormat::Docker, Compression::Zstd) => {
                return Err(Error::msg(
                    "Docker schema 2 manifests have no zstd layer type",
                ))
            }
        })
    }

    /// Recognizes a blob's compression by its magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`);
    /// anything else is taken as uncompressed.
    pub fn detect(blob: &[u8]) -> Compression {
        if blob.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Decompresses a blob of this compression.
    pub fn decompress(self, blob: &[u8]) -> Result<Vec<u8>> {
        match self {
            Compression::None => Ok(blob.to_vec()),
            Compression::Gzip => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(blob), &mut out)
                    .context("gunzipping layer")?;
                Ok(out)
            }
            Compression::Zstd => zstd::decode_all(blob).context("zstd-decompressing layer"),
        }
    }

    /// Compresses a tar stream. Levels are fixed so digests are stable.
    pub fn compress(self, tar: &[u8]) -> Result<Vec<u8>> {
        match self {
            Compression::None => Ok(tar.to_vec()),
            Compression::Gzip => {
                // GzBuilder writes mtime 0 and no file name, so the header is deterministic.
                let mut enc =
                    flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(1));
                enc.write_all(tar).context("gzip-compressing layer")?;
                enc.finish().context("finishing gzip stream")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).context("zstd-compressing layer"),
        }
    }
}

/// Which manifest/config media types an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    /// OCI image manifest and config.
    #[default]
    Oci,
    /// Docker image manifest schema 2 and Docker config.
    Docker,
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the referenced blob.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl Descriptor {
    /// The `{mediaType, digest, size}` JSON form.
    pub fn to_json(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }

    /// The hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// An OS/architecture pair as in image configs and index entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, ...
    pub architecture: String,
    /// e.g. `v8` for arm64, `v7` for arm.
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform of the machine running the tests, in GOARCH spelling (what registries and
    /// the OCI spec use), so the default-platform image is the one that can actually run here.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new("linux", arch, variant)
    }

    /// `os/arch[/variant]`.
    pub fn to_string_short(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The JSON form used in index entries.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "architecture": self.architecture, "os": self.os });
        if let (Some(variant), Some(map)) = (&self.variant, v.as_object_mut()) {
            map.insert("variant".into(), Value::String(variant.clone()));
        }
        v
    }
}

#[derive(Debug, Clone)]
enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
    HardLink { target: String },
}

/// The contents of one layer, keyed by path (relative, no leading `/`).
///
/// Entries are written sorted by path, directories before their contents, and hard links after
/// every other entry so their targets always precede them in the archive.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

fn clean(path: &str) -> String {
    path.trim_start_matches("./").trim_matches('/').to_string()
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            self.entries
                .entry(acc.clone())
                .or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    /// Adds a directory (parents are added with mode 0755 when missing).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Dir { mode });
        self
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(
            path,
            Entry::File {
                mode,
                data: data.into(),
            },
        );
        self
    }

    /// Adds a symbolic link `path -> target` (target stored verbatim).
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(
            path,
            Entry::Symlink {
                target: target.to_string(),
            },
        );
        self
    }

    /// Adds a hard link `path` to `target`, a path inside this same layer.
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(
            path,
            Entry::HardLink {
                target: clean(target),
            },
        );
        self
    }

    /// Deletes `path` from the layers below (an empty `.wh.<name>` file next to it).
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let path = clean(path);
        let marker = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.file(&marker, 0o644, Vec::new())
    }

    /// Makes `dir` opaque: nothing from the layers below shows through it
    /// (an empty `<dir>/.wh..wh..opq` file).
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        let dir = clean(dir);
        self.dir(&dir, 0o755);
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, Vec::new())
    }

    /// Number of entries (directories included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the layer has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The uncompressed tar stream.
    pub fn tar(&self) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let (links, others): (Vec<_>, Vec<_>) = self
            .entries
            .iter()
            .partition(|(_, e)| matches!(e, Entry::HardLink { .. }));
        for (path, entry) in others.into_iter().chain(links) {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(FIXED_MTIME);
            header
                .set_username("root")
                .and_then(|()| header.set_groupname("root"))
                .context("setting tar owner names")?;
            let res = match entry {
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())
                }
                Entry::File { mode, data } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
                Entry::HardLink { target } => {
                    // Tar requires the target earlier in the same archive; hard links are
                    // written last, so any regular file of this layer qualifies. The link
                    // carries the target's mode, as GNU tar writes it.
                    let Some(Entry::File { mode, .. }) = self.entries.get(target) else {
                        return Err(Error::msg(format!(
                            "hard link {path} -> {target}: target is not a regular file in this layer"
                        )));
                    };
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
            };
            res.with_context(|| format!("adding {path} to layer tar"))?;
        }
        builder.into_inner().context("finishing layer tar")
    }
}

/// One entry of a layer tar, as listed by [`list_tar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Path as stored (directories end in `/`).
    pub path: String,
    /// Entry type.
    pub kind: tar::EntryType,
    /// Link target for symlinks and hard links.
    pub link: Option<String>,
    /// Permission bits.
    pub mode: u32,
    /// Content of regular files.
    pub data: Vec<u8>,
}

/// Lists a layer blob (any compression, detected by magic bytes), for checking what was pushed.
pub fn list_tar(blob: &[u8]) -> Result<Vec<TarEntry>> {
    let tar_bytes = Compression::detect(blob).decompress(blob)?;
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut out = Vec::new();
    for entry in archive.entries().context("reading layer tar")? {
        let mut entry = entry.context("reading layer tar entry")?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mode = entry.header().mode().context("reading entry mode")?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).context("reading entry data")?;
        out.push(TarEntry {
            path,
            kind,
            link,
            mode,
            data,
        });
    }
    Ok(out)
}

type BlobCache = Mutex<HashMap<(String, Compression), Arc<(Vec<u8>, String)>>>;

/// Compresses a layer tar once per process and returns the blob with its digest.
///
/// Compression is deterministic, so the cache changes no digest; it only stops every test from
/// paying again for gzip-compressing the same 2 MiB busybox in an unoptimized build.
fn compress_cached(
    diff_id: &str,
    compression: Compression,
    tar: &[u8],
) -> Result<Arc<(Vec<u8>, String)>> {
    static CACHE: OnceLock<BlobCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (diff_id.to_string(), compression);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let blob = compression.compress(tar)?;
    let digest = sha256_digest(&blob);
    let entry = Arc::new((blob, digest));
    if let Ok(mut c) = cache.lock() {
        c.insert(key, Arc::clone(&entry));
    }
    Ok(entry)
}

/// A layer as it went into an image.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// Descriptor of the (possibly compressed) blob.
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar, as listed in the config's `rootfs.diff_ids`.
    pub diff_id: String,
    /// How the blob is compressed.
    pub compression: Compression,
}

/// The runtime part of an image config (`config` in the OCI image config).
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Entrypoint`, when set.
    pub entrypoint: Option<Vec<String>>,
    /// `Env`.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `User`, when set.
    pub user: Option<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            cmd: vec!["sh".into()],
            entrypoint: None,
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: "/".into(),
            user: None,
            labels: BTreeMap::new(),
        }
    }
}

/// Everything needed to write one image (config + manifest + layers).
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Layers bottom to top, each with its compression and a `created_by` history line.
    pub layers: Vec<(Layer, Compression, String)>,
    /// Runtime config.
    pub run: RunConfig,
    /// Platform written into the config (and into index entries).
    pub platform: Platform,
    /// OCI or Docker media types.
    pub format: ManifestFormat,
}

impl ImageSpec {
    /// An OCI image for the host platform with the default run config and no layers yet.
    pub fn new() -> Self {
        ImageSpec {
            layers: Vec::new(),
            run: RunConfig::default(),
            platform: Platform::host(),
            format: ManifestFormat::Oci,
        }
    }

    /// Appends a layer.
    pub fn layer(mut self, layer: Layer, compression: Compression, created_by: &str) -> Self {
        self.layers
            .push((layer, compression, created_by.to_string()));
        self
    }
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self::new()
    }
}

/// An image as written to a layout.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The manifest (its digest is what a registry reports for the tag).
    pub manifest: Descriptor,
    /// The config blob.
    pub config: Descriptor,
    /// Layers bottom to top.
    pub layers: Vec<BuiltLayer>,
    /// Platform in the config.
    pub platform: Platform,
}

/// An OCI image layout directory being written.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    refs: BTreeMap<String, Descriptor>,
}

impl OciLayout {
    /// Creates the layout skeleton (`oci-layout`, `blobs/sha256/`, empty `index.json`) in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("creating {}", dir.display()))?;
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .context("writing oci-layout")?;
        let layout = OciLayout {
            dir: dir.to_path_buf(),
            refs: BTreeMap::new(),
        };
        layout.write_index_json()?;
        Ok(layout)
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a blob by digest.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs/sha256").join(hex)
    }

    /// Stores a blob and returns its descriptor.
    pub fn write_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest);
        fs::write(&path, bytes).with_context(|| format!("writing blob {}", path.display()))?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest,
            size: bytes.len() as u64,
        })
    }

    /// Stores a blob whose digest the caller already computed.
    fn write_blob_known(&self, media_type: &str, bytes: &[u8], digest: &str) -> Result<Descriptor> {
        let path = self.blob_path(digest);
        fs::write(&path, bytes).with_context(|| format!("writing blob {}", path.display()))?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: bytes.len() as u64,
        })
    }

    /// Stores a JSON document as a blob. Serialized compactly, keys in insertion order, so the
    /// digest is stable.
    pub fn write_json(&self, media_type: &str, value: &Value) -> Result<Descriptor> {
        let bytes = serde_json::to_vec(value).context("serializing JSON blob")?;
        self.write_blob(media_type, &bytes)
    }

    /// Writes layers, config and manifest of one image.
    pub fn add_image(&self, spec: &ImageSpec) -> Result<BuiltImage> {
        let mut layers = Vec::new();
        let mut history = Vec::new();
        for (layer, compression, created_by) in &spec.layers {
            let tar = layer.tar()?;
            let diff_id = sha256_digest(&tar);
            let cached = compress_cached(&diff_id, *compression, &tar)?;
            let (blob, digest) = &*cached;
            let descriptor =
                self.write_blob_known(compression.layer_media_type(spec.format)?, blob, digest)?;
            layers.push(BuiltLayer {
                descriptor,
                diff_id,
                compression: *compression,
            });
            history.push(json!({ "created": FIXED_CREATED, "created_by": created_by }));
        }

        let run = &spec.run;
        let mut cfg = json!({
            "Env": run.env,
            "Cmd": run.cmd,
            "WorkingDir": run.working_dir,
        });
        if let Some(map) = cfg.as_object_mut() {
            if let Some(ep) = &run.entrypoint {
                map.insert("Entrypoint".into(), json!(ep));
            }
            if let Some(user) = &run.user {
                map.insert("User".into(), json!(user));
            }
            if !run.labels.is_empty() {
                map.insert("Labels".into(), json!(run.labels));
            }
        }
        let mut config = json!({
            "created": FIXED_CREATED,
            "architecture": spec.platform.architecture,
            "os": spec.platform.os,
        });
        if let Some(map) = config.as_object_mut() {
            if let Some(variant) = &spec.platform.variant {
                map.insert("variant".into(), json!(variant));
            }
            map.insert("config".into(), cfg);
            map.insert(
                "rootfs".into(),
                json!({
                    "type": "layers",
                    "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
                }),
            );
            map.insert("history".into(), Value::Array(history));
        }
        let (config_type, manifest_type) = match spec.format {
            ManifestFormat::Oci => (media::OCI_CONFIG, media::OCI_MANIFEST),
            ManifestFormat::Docker => (media::DOCKER_CONFIG, media::DOCKER_MANIFEST),
        };
        let config_desc = self.write_json(config_type, &config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config_desc.to_json(),
            "layers": layers.iter().map(|l| l.descriptor.to_json()).collect::<Vec<_>>(),
        });
        let manifest_desc = self.write_json(manifest_type, &manifest)?;
        Ok(BuiltImage {
            manifest: manifest_desc,
            config: config_desc,
            layers,
            platform: spec.platform.clone(),
        })
    }

    /// Writes an image index (or Docker manifest list) over already-written images, each entry
    /// carrying its platform.
    pub fn add_index(&self, images: &[BuiltImage], format: ManifestFormat) -> Result<Descriptor> {
        let media_type = match format {
            ManifestFormat::Oci => media::OCI_INDEX,
            ManifestFormat::Docker => media::DOCKER_MANIFEST_LIST,
        };
        let manifests: Vec<Value> = images
            .iter()
            .map(|img| {
                let mut entry = img.manifest.to_json();
                if let Some(map) = entry.as_object_mut() {
                    map.insert("platform".into(), img.platform.to_json());
                }
                entry
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": manifests,
        });
        self.write_json(media_type, &index)
    }

    /// Points `tag` at a manifest or index in `index.json` (the `org.opencontainers.image.ref.name`
    /// annotation skopeo's `oci:<dir>:<tag>` looks up).
    pub fn tag(&mut self, tag: &str, target: &Descriptor) -> Result<()> {
        self.refs.insert(tag.to_string(), target.clone());
        self.write_index_json()
    }

    fn write_index_json(&self) -> Result<()> {
        let manifests: Vec<Value> = self
            .refs
            .iter()
            .map(|(tag, desc)| {
                let mut entry = desc.to_json();
                if let Some(map) = entry.as_object_mut() {
                    map.insert(
                        "annotations".into(),
                        json!({ "org.opencontainers.image.ref.name": tag }),
                    );
                }
                entry
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec_pretty(&index).context("serializing index.json")?;
        fs::write(self.dir.join("index.json"), bytes).context("writing index.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_deterministic_and_ordered() {
        let mut layer = Layer::new();
        layer
            .file("b/file", 0o644, "x")
            .hardlink("a/link", "b/file")
            .symlink("a/sym", "../b/file")
            .whiteout("c/gone")
            .opaque("d");
        let one = layer.tar().expect("tar builds");
        let two = layer.clone().tar().expect("tar builds again");
        assert_eq!(sha256_digest(&one), sha256_digest(&two));

        let mut archive = tar::Archive::new(one.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("tar reads")
            .map(|e| {
                let e = e.expect("entry reads");
                assert_eq!(e.header().mtime().expect("mtime"), FIXED_MTIME);
                assert_eq!(e.header().uid().expect("uid"), 0);
                e.path().expect("path").display().to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "a/",
                "a/sym",
                "b/",
                "b/file",
                "c/",
                "c/.wh.gone",
                "d/",
                "d/.wh..wh..opq",
                "a/link"
            ]
        );
    }

    #[test]
    fn hardlink_to_missing_target_is_an_error() {
        let mut layer = Layer::new();
        layer.hardlink("a", "missing");
        assert!(layer.tar().is_err());
    }

    #[test]
    fn compressions_round_trip() {
        let data = b"some tar bytes".repeat(100);
        for c in Compression::ALL {
            let out = c.compress(&data).expect("compresses");
            assert_eq!(Compression::detect(&out), c);
            let back = c.decompress(&out).expect("decompresses");
            assert_eq!(back, data, "{}", c.name());
        }
    }
}
