//! The project's fixture images, built from the host's static busybox (Debian `busybox-static`)
//! into OCI image layouts, ready to push to a test [`Registry`](crate::Registry) with
//! [`push`](crate::push).
//!
//! Every fixture is tagged `latest` in its own layout directory (a temp dir owned by the
//! [`Fixture`], removed on drop). Digests are deterministic for a given busybox binary and crate
//! versions, and [`Fixture::digest`] is what the registry serves for the pushed tag, because the
//! push preserves digests.
//!
//! Marker files make it easy for an e2e test to check from inside a container which image,
//! compression or platform it got: `/etc/fixture` names the fixture, `/etc/fixture-compression`
//! and `/etc/fixture-platform` are described on the builders that write them.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::error::{Context, Error, Result};
use crate::oci::{
    BuiltImage, Compression, Descriptor, ImageSpec, Layer, ManifestFormat, OciLayout, Platform,
};
use crate::util::run_checked;

/// Where the static busybox comes from, unless `RCOMPOSE_E2E_BUSYBOX` names another file.
pub const BUSYBOX_PATH: &str = "/bin/busybox";

/// The tag every fixture layout uses for its image.
pub const LAYOUT_TAG: &str = "latest";

/// An image (or multi-platform index) written to an OCI layout directory.
#[derive(Debug)]
pub struct Fixture {
    /// Fixture name (`busybox`, `whiteouts`, ...), also written to `/etc/fixture` in the image.
    pub name: String,
    /// What the tag points at: an image manifest, or an index for multi-platform fixtures.
    pub top: Descriptor,
    /// The images, in index order for multi-platform fixtures (one entry otherwise).
    pub images: Vec<BuiltImage>,
    layout: OciLayout,
    /// skopeo's source name: `oci:<layout>:latest`, or `dir:<dir>` for Docker-format fixtures.
    source: String,
    _dir: TempDir,
}

impl Fixture {
    /// The OCI layout directory.
    pub fn layout_dir(&self) -> &Path {
        self.layout.dir()
    }

    /// The tag of the image inside the layout (always [`LAYOUT_TAG`]).
    pub fn tag(&self) -> &str {
        LAYOUT_TAG
    }

    /// `sha256:...` of the top-level manifest or index: the digest a registry reports for the
    /// pushed tag.
    pub fn digest(&self) -> &str {
        &self.top.digest
    }

    /// True when the tag points at an index (push with `--all`).
    pub fn is_index(&self) -> bool {
        self.images.len() > 1
            || self.top.media_type.contains("index")
            || self.top.media_type.contains("list")
    }

    /// The image for a platform, for multi-platform fixtures.
    pub fn image_for(&self, platform: &Platform) -> Option<&BuiltImage> {
        self.images.iter().find(|i| i.platform == *platform)
    }

    /// The single image of a single-image fixture (the host one for multi-platform fixtures).
    pub fn image(&self) -> Option<&BuiltImage> {
        self.image_for(&Platform::host()).or(self.images.first())
    }

    /// skopeo's name for this image: `oci:<layout>:latest`, or for Docker-format fixtures
    /// `dir:<dir>` (skopeo's OCI layout reader ignores index.json entries with Docker media
    /// types, so those are also written in skopeo's own `dir:` format, which keeps the exact
    /// manifest bytes).
    pub fn skopeo_source(&self) -> &str {
        &self.source
    }

    fn finish(
        name: &str,
        dir: TempDir,
        mut layout: OciLayout,
        top: Descriptor,
        images: Vec<BuiltImage>,
    ) -> Result<Self> {
        layout.tag(LAYOUT_TAG, &top)?;
        let docker = top.media_type.contains("docker");
        let source = if docker {
            let dir_path = dir.path().join("dir");
            write_dir_transport(&layout, &top, &images, &dir_path)?;
            format!("dir:{}", dir_path.display())
        } else {
            format!("oci:{}:{LAYOUT_TAG}", layout.dir().display())
        };
        Ok(Fixture {
            name: name.to_string(),
            top,
            images,
            layout,
            source,
            _dir: dir,
        })
    }

    fn create_layout(name: &str) -> Result<(TempDir, OciLayout)> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rcompose-e2e-fixture-{name}-"))
            .tempdir()
            .context("creating fixture temp dir")?;
        let layout = OciLayout::create(&dir.path().join("layout"))?;
        Ok((dir, layout))
    }

    fn single(name: &str, spec: &ImageSpec) -> Result<Self> {
        let (dir, layout) = Self::create_layout(name)?;
        let image = layout.add_image(spec)?;
        let top = image.manifest.clone();
        Self::finish(name, dir, layout, top, vec![image])
    }
}

/// Path of the static busybox to put into images.
pub fn busybox_path() -> PathBuf {
    std::env::var_os("RCOMPOSE_E2E_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BUSYBOX_PATH))
}

/// Reads the static busybox and its applet list.
///
/// A dynamically linked busybox (Debian's `busybox` package) would build images that cannot run,
/// since they have no libc; that is reported here instead of as a baffling exec failure later.
pub fn busybox() -> Result<(Vec<u8>, Vec<String>)> {
    let path = busybox_path();
    let data = std::fs::read(&path).map_err(|e| {
        Error::msg(format!(
            "reading {}: {e}; the fixture images need a static busybox: \
             `apt-get install busybox-static`",
            path.display()
        ))
    })?;
    if elf_has_interpreter(&data) {
        return Err(Error::msg(format!(
            "{} is dynamically linked; the fixture images need the static one: \
             `apt-get install busybox-static`",
            path.display()
        )));
    }
    let out = run_checked(Command::new(&path).arg("--list"))?;
    let mut applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect();
    applets.sort();
    applets.dedup();
    Ok((data, applets))
}

/// True when an ELF64 little-endian file has a PT_INTERP program header (dynamically linked).
/// Anything that is not such an ELF is assumed static: the check only exists for a clearer error.
fn elf_has_interpreter(data: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let off = usize::try_from(phoff).unwrap_or(usize::MAX);
        let at = off.saturating_add(i * usize::from(phentsize));
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == PT_INTERP)
            .unwrap_or(false)
    })
}

/// How busybox's applets are linked to the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppletLinks {
    /// `bin/<applet> -> busybox` symlinks.
    Symlinks,
    /// `bin/<applet>` hard links to `bin/busybox` (like the official busybox image).
    HardLinks,
}

/// A minimal root filesystem: busybox in `/bin` with its applets, the usual top-level
/// directories, `/etc/passwd`, `/etc/group`, `/etc/os-release` and `/etc/fixture` = `name`.
pub fn busybox_rootfs(name: &str, links: AppletLinks) -> Result<Layer> {
    let (binary, applets) = busybox()?;
    let mut layer = Layer::new();
    for dir in [
        "bin", "dev", "etc", "home", "proc", "sys", "usr/bin", "usr/sbin", "var",
    ] {
        layer.dir(dir, 0o755);
    }
    layer
        .dir("root", 0o700)
        .dir("tmp", 0o1777)
        .dir("var/tmp", 0o1777);
    layer.file("bin/busybox", 0o755, binary);
    for applet in &applets {
        let path = format!("bin/{applet}");
        match links {
            AppletLinks::Symlinks => layer.symlink(&path, "busybox"),
            AppletLinks::HardLinks => layer.hardlink(&path, "bin/busybox"),
        };
    }
    // Scripts commonly start with #!/usr/bin/env.
    layer.symlink("usr/bin/env", "../../bin/busybox");
    layer.file(
        "etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    layer.file("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n");
    layer.file(
        "etc/os-release",
        0o644,
        "NAME=\"rcompose e2e busybox\"\nID=rcompose-e2e\n",
    );
    layer.file("etc/fixture", 0o644, format!("{name}\n"));
    Ok(layer)
}

/// `busybox`: one gzip layer with the busybox rootfs, `Cmd ["sh"]`.
pub fn busybox_image() -> Result<Fixture> {
    let spec = ImageSpec::new().layer(
        busybox_rootfs("busybox", AppletLinks::Symlinks)?,
        Compression::Gzip,
        "rcompose-e2e: busybox rootfs",
    );
    Fixture::single("busybox", &spec)
}

/// `compressed-<gzip|zstd|none>`: the busybox rootfs plus a second layer with
/// `/etc/fixture-compression` = the compression name, both layers compressed as asked.
pub fn compressed(compression: Compression) -> Result<Fixture> {
    let name = format!("compressed-{}", compression.name());
    let mut marker = Layer::new();
    marker.file(
        "etc/fixture-compression",
        0o644,
        format!("{}\n", compression.name()),
    );
    let spec = ImageSpec::new()
        .layer(
            busybox_rootfs(&name, AppletLinks::Symlinks)?,
            compression,
            "rcompose-e2e: busybox rootfs",
        )
        .layer(marker, compression, "rcompose-e2e: compression marker");
    Fixture::single(&name, &spec)
}

/// What the `whiteouts` fixture's `/data` must look like after its layers are applied:
/// `(path, Some(content))` must exist with that content, `(path, None)` must not exist.
pub const WHITEOUT_EXPECTED: &[(&str, Option<&str>)] = &[
    ("/data/keep.txt", Some("keep\n")),
    ("/data/remove.txt", None),
    ("/data/removed-dir", None),
    ("/data/removed-dir/inner.txt", None),
    ("/data/opaque/old.txt", None),
    ("/data/opaque/sub/deep.txt", None),
    ("/data/opaque/new.txt", Some("new\n")),
    ("/data/recreated.txt", Some("v3\n")),
    ("/data/added.txt", Some("added\n")),
];

/// `whiteouts`: three gzip layers.
///
/// 1. busybox rootfs plus `/data/{keep,remove,recreated}.txt`, `/data/removed-dir/inner.txt`,
///    `/data/opaque/{old.txt,sub/deep.txt}`;
/// 2. whiteouts for `remove.txt`, `removed-dir` and `recreated.txt`, an opaque `/data/opaque` with
///    a new `new.txt`;
/// 3. `recreated.txt` again (content `v3`) and a new `added.txt`.
///
/// [`WHITEOUT_EXPECTED`] lists the resulting tree.
pub fn whiteouts() -> Result<Fixture> {
    let mut base = busybox_rootfs("whiteouts", AppletLinks::Symlinks)?;
    base.file("data/keep.txt", 0o644, "keep\n")
        .file("data/remove.txt", 0o644, "remove\n")
        .file("data/recreated.txt", 0o644, "v1\n")
        .file("data/removed-dir/inner.txt", 0o644, "inner\n")
        .file("data/opaque/old.txt", 0o644, "old\n")
        .file("data/opaque/sub/deep.txt", 0o644, "deep\n");

    let mut deletions = Layer::new();
    deletions
        .whiteout("data/remove.txt")
        .whiteout("data/removed-dir")
        .whiteout("data/recreated.txt")
        .opaque("data/opaque")
        .file("data/opaque/new.txt", 0o644, "new\n");

    let mut additions = Layer::new();
    additions
        .file("data/recreated.txt", 0o644, "v3\n")
        .file("data/added.txt", 0o644, "added\n");

    let spec = ImageSpec::new()
        .layer(
            base,
            Compression::Gzip,
            "rcompose-e2e: busybox rootfs + /data",
        )
        .layer(
            deletions,
            Compression::Gzip,
            "rcompose-e2e: whiteouts + opaque dir",
        )
        .layer(
            additions,
            Compression::Gzip,
            "rcompose-e2e: re-add after whiteout",
        );
    Fixture::single("whiteouts", &spec)
}

/// `hardlinks`: one gzip layer whose applets are hard links to `/bin/busybox`, plus
/// `/data/original` (`hello\n`) with hard links `/data/same-dir-link` and
/// `/data/sub/other-dir-link` to it (all three share one inode once unpacked).
pub fn hardlinks() -> Result<Fixture> {
    let mut layer = busybox_rootfs("hardlinks", AppletLinks::HardLinks)?;
    layer
        .file("data/original", 0o644, "hello\n")
        .hardlink("data/same-dir-link", "data/original")
        .hardlink("data/sub/other-dir-link", "data/original");
    let spec = ImageSpec::new().layer(layer, Compression::Gzip, "rcompose-e2e: hard links");
    Fixture::single("hardlinks", &spec)
}

/// `docker-schema2`: the busybox image with Docker schema 2 media types (Docker manifest and
/// config, `rootfs.diff.tar.gzip` layer), for clients that must accept both formats.
pub fn docker_schema2() -> Result<Fixture> {
    let mut spec = ImageSpec::new().layer(
        busybox_rootfs("docker-schema2", AppletLinks::Symlinks)?,
        Compression::Gzip,
        "rcompose-e2e: busybox rootfs",
    );
    spec.format = ManifestFormat::Docker;
    Fixture::single("docker-schema2", &spec)
}

/// The platforms in the `multi-platform` index, in index order.
pub fn multi_platform_platforms() -> Vec<Platform> {
    let mut platforms = vec![
        Platform::new("linux", "amd64", None),
        Platform::new("linux", "arm64", Some("v8")),
    ];
    let host = Platform::host();
    if !platforms.contains(&host) {
        platforms.push(host);
    }
    platforms
}

/// `multi-platform`: an OCI index with linux/amd64 and linux/arm64/v8 entries (plus the host's
/// platform if it is neither).
///
/// The host platform's image is the full busybox rootfs; the others hold only a tiny layer (they
/// could not run here anyway). Every image has `/etc/fixture-platform` = `os/arch[/variant]`, so a
/// test can check that the client picked the right entry.
pub fn multi_platform() -> Result<Fixture> {
    multi_platform_as(ManifestFormat::Oci)
}

/// `multi-platform-docker`: like [`multi_platform`] but a Docker manifest list over Docker
/// schema 2 images.
pub fn multi_platform_docker() -> Result<Fixture> {
    multi_platform_as(ManifestFormat::Docker)
}

fn multi_platform_as(format: ManifestFormat) -> Result<Fixture> {
    let name = match format {
        ManifestFormat::Oci => "multi-platform",
        ManifestFormat::Docker => "multi-platform-docker",
    };
    let (dir, layout) = Fixture::create_layout(name)?;
    let host = Platform::host();
    let mut images = Vec::new();
    for platform in multi_platform_platforms() {
        let mut marker = Layer::new();
        marker.file(
            "etc/fixture-platform",
            0o644,
            format!("{}\n", platform.to_string_short()),
        );
        let mut spec = ImageSpec::new();
        spec.platform = platform.clone();
        spec.format = format;
        if platform == host {
            spec = spec.layer(
                busybox_rootfs(name, AppletLinks::Symlinks)?,
                Compression::Gzip,
                "rcompose-e2e: busybox rootfs",
            );
        } else {
            // Not runnable here: no point shipping a real binary; the marker is enough.
            spec.run.cmd = vec!["/bin/true".into()];
        }
        spec = spec.layer(marker, Compression::Gzip, "rcompose-e2e: platform marker");
        images.push(layout.add_image(&spec)?);
    }
    let index = layout.add_index(&images, format)?;
    Fixture::finish(name, dir, layout, index, images)
}

/// Writes skopeo's `dir:` transport format (version 1.1): `manifest.json` is the top manifest or
/// list, `<hex>.manifest.json` each instance manifest of a list, `<hex>` every other blob.
fn write_dir_transport(
    layout: &OciLayout,
    top: &Descriptor,
    images: &[BuiltImage],
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n")
        .context("writing dir transport version")?;
    let copy = |digest: &str, to: PathBuf| {
        std::fs::copy(layout.blob_path(digest), &to)
            .with_context(|| format!("copying blob {digest} to {}", to.display()))
            .map(|_| ())
    };
    copy(&top.digest, dir.join("manifest.json"))?;
    for image in images {
        if image.manifest.digest != top.digest {
            copy(
                &image.manifest.digest,
                dir.join(format!("{}.manifest.json", image.manifest.hex())),
            )?;
        }
        copy(&image.config.digest, dir.join(image.config.hex()))?;
        for layer in &image.layers {
            copy(&layer.descriptor.digest, dir.join(layer.descriptor.hex()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_busybox_has_no_interpreter() {
        // The test binary itself is dynamically linked; use it as the counter-example.
        let me = std::fs::read(std::env::current_exe().expect("current exe")).expect("read exe");
        assert!(elf_has_interpreter(&me));
        if let Ok(bb) = std::fs::read(busybox_path()) {
            assert!(!elf_has_interpreter(&bb), "busybox-static should be static");
        }
    }
}
