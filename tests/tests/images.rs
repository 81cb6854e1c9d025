//! End-to-end tests of `rcompose image …`, `login` and `logout` against a real local registry.
//!
//! Every test has its own registry (on a free 127.0.0.1 port) and its own [`TestEnv`] (state
//! root, config, docker config), all removed on drop. Unpacked layers are checked directly under
//! `<root>/snapshots/<chain id>/fs`, merging the layers as overlayfs would (whiteout char devices,
//! the `trusted.overlay.opaque` xattr).
//!
//! Needs root, `docker-registry`, `skopeo` and `busybox-static`.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use e2e::oci::{sha256_digest, ImageSpec, Layer, OciLayout};
use e2e::{
    fixtures, free_port, inspect_raw, push, push_layout, Compression, Fixture, Output, Platform,
    Registry, TestEnv,
};
use serde_json::Value;

// ---------------------------------------------------------------- helpers

fn registry() -> Registry {
    Registry::start().unwrap_or_else(|e| panic!("starting the test registry: {e}"))
}

/// A fresh environment allowed to talk plain HTTP to `reg`.
fn env_for(reg: &Registry) -> TestEnv {
    let env = TestEnv::new().expect("creating the test env");
    env.allow_insecure(reg)
        .expect("writing insecure-registries");
    env
}

fn run_ok(env: &TestEnv, args: &[&str]) -> Output {
    env.run_ok(args)
        .unwrap_or_else(|e| panic!("rcompose {}: {e}", args.join(" ")))
}

/// Pushes `fixture` as `repo_tag` and pulls it into `env`; returns the full reference.
fn push_and_pull(env: &TestEnv, reg: &Registry, fixture: &Fixture, repo_tag: &str) -> String {
    let reference =
        push(fixture, reg, repo_tag).unwrap_or_else(|e| panic!("pushing {}: {e}", fixture.name));
    let out = run_ok(env, &["image", "pull", &reference]);
    assert!(
        out.stdout.contains(fixture.digest()),
        "pull output names the digest {}:\n{out}",
        fixture.digest()
    );
    reference
}

/// `image inspect NAME`, the single object.
fn inspect(env: &TestEnv, name: &str) -> Value {
    let out = run_ok(env, &["image", "inspect", name]);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"));
    let arr = v.as_array().expect("inspect prints an array");
    assert_eq!(arr.len(), 1, "one object for one name: {v}");
    arr[0].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string element").to_string())
        .collect()
}

fn diff_ids(info: &Value) -> Vec<String> {
    strings(&info["RootFS"]["Layers"])
}

/// chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The unpacked layer dirs of an image, bottom to top.
fn layer_dirs(env: &TestEnv, name: &str) -> Vec<PathBuf> {
    let info = inspect(env, name);
    chain_ids(&diff_ids(&info))
        .iter()
        .map(|c| {
            let hex = c.strip_prefix("sha256:").expect("sha256 chain id");
            let dir = env.root().join("snapshots").join(hex).join("fs");
            assert!(dir.is_dir(), "snapshot {} is missing", dir.display());
            dir
        })
        .collect()
}

fn is_whiteout(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .map(|m| m.file_type().is_char_device() && m.rdev() == 0)
        .unwrap_or(false)
}

fn is_opaque(dir: &Path) -> bool {
    let path = CString::new(dir.as_os_str().as_bytes()).expect("path without NUL");
    let name = CString::new("trusted.overlay.opaque").expect("xattr name");
    let mut buf = [0u8; 8];
    // SAFETY: valid NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// Resolves `path` (absolute, inside the image) through the layers as overlayfs would: the
/// topmost layer holding it wins; a whiteout or an opaque ancestor hides everything below.
fn lookup(layers: &[PathBuf], path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    let comps: Vec<&str> = rel.split('/').collect();
    for layer in layers.iter().rev() {
        let full = layer.join(rel);
        if is_whiteout(&full) {
            return None;
        }
        if fs::symlink_metadata(&full).is_ok() {
            return Some(full);
        }
        // A whited-out or opaque ancestor in this layer hides the lower layers.
        let mut anc = layer.clone();
        for c in &comps[..comps.len() - 1] {
            anc.push(c);
            if is_whiteout(&anc) || is_opaque(&anc) {
                return None;
            }
        }
    }
    None
}

fn read_in_image(layers: &[PathBuf], path: &str) -> Option<String> {
    lookup(layers, path)
        .map(|p| fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())))
}

fn dir_entries(p: &Path) -> Vec<String> {
    match fs::read_dir(p) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// No leftovers of a failed or finished download under the state root.
fn assert_ingest_clean(env: &TestEnv) {
    let ingest = env.root().join("content/ingest");
    let left = dir_entries(&ingest);
    assert!(left.is_empty(), "content/ingest is not empty: {left:?}");
}

fn image_index(env: &TestEnv) -> Value {
    let p = env.root().join("images/index.json");
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).expect("images/index.json is JSON"),
        Err(_) => Value::Null,
    }
}

fn index_is_empty(v: &Value) -> bool {
    let empty = |k: &str| {
        v.get(k)
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
    };
    v.is_null() || (empty("tags") && empty("images"))
}

/// Runs rcompose with `stdin` fed from `input`.
fn run_with_stdin(env: &TestEnv, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut cmd = env.command().expect("rcompose command");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning rcompose");
    child
        .stdin
        .take()
        .expect("stdin pipe")
        .write_all(input)
        .expect("writing stdin");
    child.wait_with_output().expect("waiting for rcompose")
}

/// The table rows of `image ls` (header dropped), split on runs of 2+ spaces.
fn table_rows(out: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let split = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().map(split).unwrap_or_default();
    (header, lines.map(split).collect())
}

/// Two images sharing their busybox base layer, each with its own marker layer, in one layout
/// (tags `a` and `b`).
fn shared_base_layout(dir: &Path) -> OciLayout {
    let mut layout = OciLayout::create(dir).expect("creating layout");
    let base = fixtures::busybox_rootfs("shared", fixtures::AppletLinks::Symlinks)
        .expect("busybox rootfs");
    for tag in ["a", "b"] {
        let mut top = Layer::new();
        top.file("etc/which", 0o644, format!("{tag}\n"));
        let spec = ImageSpec::new()
            .layer(base.clone(), Compression::Gzip, "base")
            .layer(top, Compression::Gzip, "marker");
        let image = layout.add_image(&spec).expect("adding image");
        layout.tag(tag, &image.manifest).expect("tagging");
    }
    layout
}

// ---------------------------------------------------------------- pulls

#[test]
fn pull_single_layer_busybox() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::busybox_image().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "pull-single/busybox:latest");
    let out = run_ok(&env, &["image", "pull", &reference]);
    assert!(
        out.stdout.contains("Image is up to date"),
        "second pull is a no-op:\n{out}"
    );

    let layers = layer_dirs(&env, &reference);
    assert_eq!(layers.len(), 1);
    assert_eq!(
        read_in_image(&layers, "/etc/fixture").as_deref(),
        Some("busybox\n")
    );
    let bb = lookup(&layers, "/bin/busybox").expect("/bin/busybox unpacked");
    let meta = fs::metadata(&bb).expect("stat busybox");
    assert_eq!(meta.mode() & 0o111, 0o111, "busybox stays executable");
    assert_eq!(
        meta.len(),
        fs::metadata(fixtures::busybox_path())
            .expect("host busybox")
            .len()
    );
    let sh = fs::read_link(layers[0].join("bin/sh")).expect("bin/sh is a symlink");
    assert!(sh.to_string_lossy().contains("busybox"), "{sh:?}");
    assert_ingest_clean(&env);
}

#[test]
fn pull_gzip_zstd_and_uncompressed_layers() {
    let reg = registry();
    let env = env_for(&reg);
    for compression in Compression::ALL {
        let fx = fixtures::compressed(compression).expect("fixture");
        let reference = push_and_pull(
            &env,
            &reg,
            &fx,
            &format!("compressed/{}:latest", compression.name()),
        );
        let layers = layer_dirs(&env, &reference);
        assert_eq!(layers.len(), 2);
        assert_eq!(
            read_in_image(&layers, "/etc/fixture-compression").as_deref(),
            Some(format!("{}\n", compression.name()).as_str()),
            "{reference}"
        );
        assert!(lookup(&layers, "/bin/busybox").is_some());
        let info = inspect(&env, &reference);
        let want: Vec<String> = fx.images[0]
            .layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect();
        assert_eq!(diff_ids(&info), want, "{reference}: diff ids");
    }
    assert_ingest_clean(&env);
}

#[test]
fn pull_whiteouts_and_opaque_dir() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::whiteouts().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "whiteouts/img:latest");
    let layers = layer_dirs(&env, &reference);
    assert_eq!(layers.len(), 3);
    for (path, want) in fixtures::WHITEOUT_EXPECTED {
        match want {
            Some(content) => assert_eq!(
                read_in_image(&layers, path).as_deref(),
                Some(*content),
                "{path}"
            ),
            None => assert!(
                lookup(&layers, path).is_none(),
                "{path} should be hidden in the merged tree"
            ),
        }
    }
    // The middle layer carries real overlay markers, not the `.wh.` files themselves.
    let mid = &layers[1];
    assert!(is_whiteout(&mid.join("data/remove.txt")));
    assert!(is_whiteout(&mid.join("data/removed-dir")));
    assert!(is_opaque(&mid.join("data/opaque")));
    let names = dir_entries(&mid.join("data"));
    assert!(
        names.iter().all(|n| !n.starts_with(".wh.")),
        "no .wh. files left: {names:?}"
    );
}

#[test]
fn pull_hard_links_share_an_inode() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::hardlinks().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "hardlinks/img:latest");
    let layers = layer_dirs(&env, &reference);
    let fs_dir = &layers[0];
    let ino = |p: &str| {
        fs::symlink_metadata(fs_dir.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .ino()
    };
    let orig = ino("data/original");
    assert_eq!(ino("data/same-dir-link"), orig);
    assert_eq!(ino("data/sub/other-dir-link"), orig);
    let meta = fs::metadata(fs_dir.join("data/original")).expect("stat");
    assert!(meta.nlink() >= 3, "nlink {}", meta.nlink());
    assert_eq!(
        fs::read_to_string(fs_dir.join("data/sub/other-dir-link")).expect("read link"),
        "hello\n"
    );
    // Applets are hard links to busybox too.
    assert_eq!(ino("bin/sh"), ino("bin/busybox"));
}

fn check_multi_platform(fx: &Fixture, repo: &str) {
    let reg = registry();
    let reference = push(fx, &reg, &format!("{repo}:latest")).expect("push");
    let host = Platform::host();

    let env = env_for(&reg);
    let out = run_ok(&env, &["image", "pull", &reference]);
    assert!(out.stdout.contains(fx.digest()), "index digest:\n{out}");
    let layers = layer_dirs(&env, &reference);
    assert_eq!(
        read_in_image(&layers, "/etc/fixture-platform").as_deref(),
        Some(format!("{}\n", host.to_string_short()).as_str())
    );
    let info = inspect(&env, &reference);
    let host_image = fx.image_for(&host).expect("host image in fixture");
    assert_eq!(info["Id"], host_image.config.digest.as_str());
    assert_eq!(info["Architecture"], host.architecture.as_str());

    let env2 = env_for(&reg);
    run_ok(
        &env2,
        &["image", "pull", "--platform", "linux/arm64", &reference],
    );
    let layers = layer_dirs(&env2, &reference);
    assert_eq!(
        read_in_image(&layers, "/etc/fixture-platform").as_deref(),
        Some("linux/arm64/v8\n")
    );
    let info = inspect(&env2, &reference);
    assert_eq!(info["Architecture"], "arm64");
    let arm = fx
        .image_for(&Platform::new("linux", "arm64", Some("v8")))
        .expect("arm64 image in fixture");
    assert_eq!(info["Id"], arm.config.digest.as_str());
}

#[test]
fn pull_multi_platform_oci_index() {
    let fx = fixtures::multi_platform().expect("fixture");
    check_multi_platform(&fx, "multi/oci");
}

#[test]
fn pull_multi_platform_docker_manifest_list() {
    let fx = fixtures::multi_platform_docker().expect("fixture");
    check_multi_platform(&fx, "multi/docker");
}

#[test]
fn pull_docker_schema2() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::docker_schema2().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "schema2/img:latest");
    let info = inspect(&env, &reference);
    assert_eq!(
        info["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(info["Descriptor"]["digest"], fx.digest());
    let layers = layer_dirs(&env, &reference);
    assert_eq!(
        read_in_image(&layers, "/etc/fixture").as_deref(),
        Some("docker-schema2\n")
    );
}

// ---------------------------------------------------------------- ls / tag / rm / inspect / history

#[test]
fn ls_columns_quiet_digests_and_json() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::busybox_image().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "ls/busybox:v1");
    let info = inspect(&env, &reference);
    let id = info["Id"].as_str().expect("Id").to_string();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let repo = reg.image_ref("ls/busybox");

    let out = run_ok(&env, &["image", "ls"]);
    let (header, rows) = table_rows(&out.stdout);
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{out}"
    );
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0][0], repo);
    assert_eq!(rows[0][1], "v1");
    assert_eq!(rows[0][2], short);
    assert!(rows[0][4].ends_with('B'), "size column: {:?}", rows[0]);

    let out = run_ok(&env, &["image", "ls", "-q"]);
    assert_eq!(out.stdout.trim(), short, "{out}");

    let out = run_ok(&env, &["image", "ls", "--digests"]);
    let (header, rows) = table_rows(&out.stdout);
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    );
    assert_eq!(rows[0][2], fx.digest(), "{out}");

    let out = run_ok(&env, &["image", "ls", "--format", "json"]);
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["Repository"], repo.as_str());
    assert_eq!(lines[0]["Tag"], "v1");
    assert_eq!(lines[0]["ID"], short);
    assert_eq!(lines[0]["Digest"], fx.digest());

    let out = run_ok(&env, &["image", "ls", "-f", "dangling=true", "-q"]);
    assert!(out.stdout.trim().is_empty(), "nothing dangling:\n{out}");
    let out = run_ok(&env, &["image", "ls", "-f", "reference=*/ls/*", "-q"]);
    assert_eq!(out.stdout.trim(), short, "{out}");
}

#[test]
fn tag_and_rm_untag_then_delete_keeping_shared_layers() {
    let reg = registry();
    let env = env_for(&reg);
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = shared_base_layout(&tmp.path().join("layout"));
    let a = push_layout(layout.dir(), "a", false, &reg, None, "shared/a:latest").expect("push a");
    let b = push_layout(layout.dir(), "b", false, &reg, None, "shared/b:latest").expect("push b");
    run_ok(&env, &["image", "pull", &a]);
    run_ok(&env, &["image", "pull", &b]);
    let layers_a = layer_dirs(&env, &a);
    let layers_b = layer_dirs(&env, &b);
    assert_eq!(layers_a[0], layers_b[0], "the base snapshot is shared");
    let info_a = inspect(&env, &a);
    let id_a = info_a["Id"].as_str().expect("Id").to_string();

    // A second tag: removing one of two tags only untags.
    run_ok(&env, &["image", "tag", &a, "local/alias:v2"]);
    let info = inspect(&env, "local/alias:v2");
    assert_eq!(info["Id"], id_a.as_str());
    let tags = strings(&info["RepoTags"]);
    assert!(tags.contains(&"local/alias:v2".to_string()), "{tags:?}");
    assert!(tags.contains(&a), "{tags:?}");

    let out = run_ok(&env, &["image", "rm", "local/alias:v2"]);
    assert!(
        out.stdout.contains("Untagged: local/alias:v2"),
        "untag line:\n{out}"
    );
    assert!(!out.stdout.contains("Deleted:"), "nothing deleted:\n{out}");
    assert!(layers_a[1].is_dir());

    // The last tag: untag and delete the image and its own layer, not the shared one.
    let out = run_ok(&env, &["image", "rm", &a]);
    assert!(out.stdout.contains(&format!("Untagged: {a}")), "{out}");
    assert!(out.stdout.contains("Deleted: "), "{out}");
    assert!(out.stdout.contains(&id_a), "deletes the image id:\n{out}");
    assert!(!layers_a[1].exists(), "a's own layer is gone");
    assert!(layers_b[0].is_dir(), "the shared base layer survives");
    assert!(layers_b[1].is_dir());
    assert!(!env
        .run(["image", "inspect", a.as_str()])
        .expect("run")
        .success());
    // b is still whole.
    assert_eq!(
        read_in_image(&layer_dirs(&env, &b), "/etc/which").as_deref(),
        Some("b\n")
    );

    let out = env.run(["image", "rm", "no-such/image:x"]).expect("run");
    assert!(!out.success(), "removing a missing image fails:\n{out}");
}

#[test]
fn inspect_and_history() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::whiteouts().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "inspect/img:latest");
    let built = &fx.images[0];
    let info = inspect(&env, &reference);
    assert_eq!(info["Id"], built.config.digest.as_str());
    assert_eq!(strings(&info["RepoTags"]), vec![reference.clone()]);
    assert_eq!(
        strings(&info["RepoDigests"]),
        vec![format!("{}@{}", reg.image_ref("inspect/img"), fx.digest())]
    );
    let want: Vec<String> = built.layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(diff_ids(&info), want);
    assert_eq!(info["RootFS"]["Type"], "layers");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Architecture"], Platform::host().architecture.as_str());
    assert_eq!(info["Created"], e2e::oci::FIXED_CREATED);
    assert!(info["Size"].as_u64().expect("Size") > 0);
    assert_eq!(info["Descriptor"]["digest"], fx.digest());
    assert!(info["Config"].is_object(), "{info}");

    let out = run_ok(&env, &["image", "history", &reference]);
    let (header, rows) = table_rows(&out.stdout);
    assert_eq!(
        header,
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        "{out}"
    );
    assert_eq!(rows.len(), 3, "one row per layer:\n{out}");
    // Newest first.
    assert!(
        rows[0].iter().any(|c| c.contains("re-add after whiteout")),
        "{out}"
    );
    assert!(
        rows[2].iter().any(|c| c.contains("busybox rootfs")),
        "{out}"
    );
    let id = info["Id"].as_str().expect("Id");
    assert_eq!(rows[0][0], &id[7..19]);

    let out = run_ok(&env, &["image", "history", "--format", "json", &reference]);
    assert_eq!(out.stdout.lines().count(), 3, "{out}");
    for l in out.stdout.lines() {
        let v: Value = serde_json::from_str(l).expect("history JSON line");
        assert!(v["CreatedBy"]
            .as_str()
            .is_some_and(|s| s.contains("rcompose-e2e")));
    }
}

// ---------------------------------------------------------------- save / load / import / prune

#[test]
fn save_load_round_trip_keeps_digests() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::whiteouts().expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "saveload/img:latest");
    let before = inspect(&env, &reference);
    let tar = env.work_dir().join("img.tar");
    let tar_s = tar.to_str().expect("utf-8 path");
    run_ok(&env, &["image", "save", "-o", tar_s, &reference]);
    assert!(fs::metadata(&tar).expect("archive").len() > 0);

    let env2 = TestEnv::new().expect("second env");
    let out = run_ok(&env2, &["image", "load", "-i", tar_s]);
    assert!(
        out.stdout.contains(&format!("Loaded image: {reference}")),
        "{out}"
    );
    let after = inspect(&env2, &reference);
    for key in ["Id", "RepoTags", "Created", "Os", "Architecture", "Size"] {
        assert_eq!(after[key], before[key], "{key} differs after load");
    }
    assert_eq!(after["RootFS"], before["RootFS"]);
    assert_eq!(
        after["Descriptor"]["digest"], before["Descriptor"]["digest"],
        "manifest digest kept"
    );
    assert_eq!(after["RepoDigests"], before["RepoDigests"]);
    // The loaded layers unpack to the same tree.
    let layers = layer_dirs(&env2, &reference);
    for (path, want) in fixtures::WHITEOUT_EXPECTED {
        assert_eq!(read_in_image(&layers, path).as_deref(), *want, "{path}");
    }
    assert_ingest_clean(&env2);

    // Through stdout/stdin too.
    let env3 = TestEnv::new().expect("third env");
    let mut cmd = env.command().expect("command");
    cmd.args(["image", "save", &reference]);
    let saved = cmd.output().expect("image save to stdout");
    assert!(saved.status.success(), "save to stdout failed");
    let loaded = run_with_stdin(&env3, &["image", "load"], &saved.stdout);
    assert!(
        loaded.status.success(),
        "load from stdin: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert_eq!(inspect(&env3, &reference)["Id"], before["Id"]);
}

/// docker's archive format, checked against another implementation: skopeo writes a
/// `docker-archive` as `docker save` does (layer tars and a config named by digest, listed in
/// `manifest.json`) and rcompose loads it; rcompose's `image save` is read back by skopeo's
/// `docker-archive` transport, which reads what docker's `load` reads.
#[test]
fn docker_archives_interoperate_with_skopeo() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::whiteouts().expect("fixture");
    let work = env.work_dir();
    let from_skopeo = work.join("from-skopeo.tar");
    e2e::copy_local(
        &format!("oci:{}:latest", fx.layout_dir().display()),
        &format!("docker-archive:{}:interop/img:v1", from_skopeo.display()),
    )
    .expect("skopeo writes a docker-archive");
    let out = run_ok(
        &env,
        &["image", "load", "-i", from_skopeo.to_str().expect("utf-8")],
    );
    assert!(out.stdout.contains("interop/img:v1"), "{out}");
    let layers = layer_dirs(&env, "interop/img:v1");
    for (path, want) in fixtures::WHITEOUT_EXPECTED {
        assert_eq!(read_in_image(&layers, path).as_deref(), *want, "{path}");
    }

    let from_us = work.join("from-rcompose.tar");
    run_ok(
        &env,
        &[
            "image",
            "save",
            "-o",
            from_us.to_str().expect("utf-8"),
            "interop/img:v1",
        ],
    );
    let back = work.join("back");
    e2e::copy_local(
        &format!("docker-archive:{}", from_us.display()),
        &format!("oci:{}:back", back.display()),
    )
    .expect("skopeo reads rcompose's archive as a docker-archive");
    let index: Value =
        serde_json::from_slice(&fs::read(back.join("index.json")).expect("index.json"))
            .expect("index is JSON");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
}

fn busybox_rootfs_tar() -> Vec<u8> {
    fixtures::busybox_rootfs("imported", fixtures::AppletLinks::Symlinks)
        .expect("rootfs")
        .tar()
        .expect("tar")
}

#[test]
fn import_rootfs_tarball_with_changes() {
    let env = TestEnv::new().expect("env");
    let tar = env
        .write_file("rootfs.tar", busybox_rootfs_tar())
        .expect("writing rootfs.tar");
    let out = run_ok(
        &env,
        &[
            "image",
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV GREETING=hello",
            "-c",
            "WORKDIR /data",
            tar.to_str().expect("utf-8"),
            "imported/app:1",
        ],
    );
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:"), "import prints the id:\n{out}");
    let info = inspect(&env, "imported/app:1");
    assert_eq!(info["Id"], id.as_str());
    assert_eq!(strings(&info["Config"]["Cmd"]), ["sh"]);
    assert!(strings(&info["Config"]["Env"]).contains(&"GREETING=hello".to_string()));
    assert_eq!(info["Config"]["WorkingDir"], "/data");
    let layers = layer_dirs(&env, "imported/app:1");
    assert_eq!(layers.len(), 1);
    assert_eq!(
        read_in_image(&layers, "/etc/fixture").as_deref(),
        Some("imported\n")
    );
    assert!(lookup(&layers, "/bin/busybox").is_some());

    // From stdin, untagged.
    let o = run_with_stdin(&env, &["image", "import", "-"], &busybox_rootfs_tar());
    assert!(
        o.status.success(),
        "import from stdin: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn prune_dangling_then_all() {
    let env = TestEnv::new().expect("env");
    let tar = env
        .write_file("rootfs.tar", busybox_rootfs_tar())
        .expect("writing rootfs.tar");
    let tar_s = tar.to_str().expect("utf-8");
    run_ok(&env, &["image", "import", tar_s, "prune/kept:1"]);
    // Different config (message) → a second, untagged image.
    let out = run_ok(&env, &["image", "import", "-m", "dangling", tar_s]);
    let dangling_id = out.stdout.trim().to_string();
    let out = run_ok(
        &env,
        &["image", "ls", "-q", "-f", "dangling=true", "--no-trunc"],
    );
    assert_eq!(out.stdout.trim(), dangling_id, "{out}");

    let out = run_ok(&env, &["image", "prune", "-f"]);
    assert!(out.stdout.contains(&dangling_id), "prune names it:\n{out}");
    assert!(out.stdout.contains("Total reclaimed space"), "{out}");
    let out = run_ok(&env, &["image", "ls", "-q", "--no-trunc"]);
    let ids: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(ids.len(), 1, "only the tagged image is left:\n{out}");
    assert_ne!(ids[0], dangling_id);

    run_ok(&env, &["image", "prune", "-a", "-f"]);
    let out = run_ok(&env, &["image", "ls", "-q"]);
    assert!(out.stdout.trim().is_empty(), "all gone:\n{out}");
    let snaps = dir_entries(&env.root().join("snapshots"));
    assert!(snaps.is_empty(), "snapshots left after prune -a: {snaps:?}");
    let blobs = dir_entries(&env.root().join("content/blobs/sha256"));
    assert!(blobs.is_empty(), "blobs left after prune -a: {blobs:?}");
}

// ---------------------------------------------------------------- push

#[test]
fn push_under_new_name_then_skip_existing_blobs() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::compressed(Compression::Gzip).expect("fixture");
    let reference = push_and_pull(&env, &reg, &fx, "push/src:latest");
    let target = reg.image_ref("push/copy:v1");
    run_ok(&env, &["image", "tag", &reference, &target]);

    let out = run_ok(&env, &["image", "push", &target]);
    assert!(
        out.stdout.contains("Pushed") || out.stdout.contains("Mounted from"),
        "{out}"
    );
    let (manifest, digest) = inspect_raw(&reg, "push/copy:v1").expect("skopeo inspect");
    assert_eq!(digest, fx.digest(), "the pushed manifest is byte-identical");
    assert!(
        out.stdout.contains(&digest),
        "push prints the digest:\n{out}"
    );
    let layer_digests: BTreeSet<String> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect();
    let built: BTreeSet<String> = fx.images[0]
        .layers
        .iter()
        .map(|l| l.descriptor.digest.clone())
        .collect();
    assert_eq!(layer_digests, built);
    for d in &layer_digests {
        let blob = reg.blob("push/copy", d).expect("blob served");
        assert_eq!(&sha256_digest(&blob), d);
    }

    // Again: every layer is already there.
    let out = run_ok(&env, &["image", "push", &target]);
    let existing = out.stdout.matches("Layer already exists").count();
    assert_eq!(existing, 2, "second push skips both layers:\n{out}");
    assert!(!out.stdout.contains(": Pushed"), "{out}");

    // The pushed image pulls back elsewhere with the same digest.
    let env2 = env_for(&reg);
    let out = run_ok(&env2, &["image", "pull", &target]);
    assert!(out.stdout.contains(fx.digest()), "{out}");
}

// ---------------------------------------------------------------- auth

#[test]
fn auth_registry_login_pull_logout() {
    let reg = Registry::start_with_auth("e2euser", "s3cret-pass").expect("auth registry");
    let fx = fixtures::busybox_image().expect("fixture");
    let reference = push(&fx, &reg, "private/busybox:latest").expect("push with creds");
    let env = env_for(&reg);
    let host = reg.host_port().to_string();

    let out = env.run(["image", "pull", reference.as_str()]).expect("run");
    assert!(!out.success(), "anonymous pull must fail:\n{out}");
    let msg = out.stderr.to_lowercase();
    assert!(
        msg.contains("unauthorized") || msg.contains("401") || msg.contains("authentication"),
        "the error says why:\n{out}"
    );
    assert!(index_is_empty(&image_index(&env)), "nothing stored");
    assert_ingest_clean(&env);

    // Wrong password is refused by login.
    let o = run_with_stdin(
        &env,
        &["login", "-u", "e2euser", "--password-stdin", &host],
        b"wrong\n",
    );
    assert!(!o.status.success(), "login with a wrong password fails");

    let o = run_with_stdin(
        &env,
        &["login", "-u", "e2euser", "--password-stdin", &host],
        b"s3cret-pass\n",
    );
    assert!(
        o.status.success(),
        "login: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let cfg_path = env.docker_config_dir().join("config.json");
    let cfg: Value =
        serde_json::from_slice(&fs::read(&cfg_path).expect("config.json written")).expect("json");
    assert!(cfg["auths"][host.as_str()].is_object(), "{cfg}");
    let mode = fs::metadata(&cfg_path).expect("stat").mode() & 0o777;
    assert_eq!(mode, 0o600, "config.json mode");

    let out = run_ok(&env, &["image", "pull", &reference]);
    assert!(out.stdout.contains(fx.digest()), "{out}");

    run_ok(&env, &["logout", &host]);
    let cfg: Value =
        serde_json::from_slice(&fs::read(&cfg_path).expect("config.json")).expect("json");
    assert!(cfg["auths"].get(host.as_str()).is_none(), "{cfg}");
    let env2 = env_for(&reg);
    let out = env2
        .run(["image", "pull", reference.as_str()])
        .expect("run");
    assert!(!out.success(), "after logout, anonymous again:\n{out}");

    // Credentials docker stored are used as they are.
    let env3 = env_for(&reg);
    env3.docker_login(&reg).expect("docker-style auth");
    run_ok(&env3, &["image", "pull", &reference]);
}

// ---------------------------------------------------------------- mirror

#[test]
fn mirror_serves_docker_io_names() {
    let reg = registry();
    let fx = fixtures::busybox_image().expect("fixture");
    push(&fx, &reg, "library/busybox:latest").expect("push to mirror");
    let env = TestEnv::new().expect("env");
    env.use_mirror(&reg).expect("mirror config");
    let out = run_ok(&env, &["image", "pull", "busybox"]);
    assert!(out.stdout.contains(fx.digest()), "{out}");
    assert!(
        !out.stdout.contains("failed"),
        "the mirror answered, no fallback:\n{out}"
    );
    let info = inspect(&env, "busybox");
    assert_eq!(strings(&info["RepoTags"]), ["busybox:latest"]);
    assert_eq!(
        strings(&info["RepoDigests"]),
        [format!("busybox@{}", fx.digest())]
    );
    assert!(
        reg.log().contains("library/busybox"),
        "the registry served the pull"
    );
    let out = run_ok(
        &env,
        &["image", "inspect", "docker.io/library/busybox:latest"],
    );
    assert!(out.stdout.contains(&fx.images[0].config.digest));
}

// ---------------------------------------------------------------- failures

#[test]
fn unreachable_registry_fails_cleanly() {
    let port = free_port().expect("free port");
    let env = TestEnv::new().expect("env");
    let reference = format!("127.0.0.1:{port}/nothing/here:latest");
    let out = env.run(["image", "pull", reference.as_str()]).expect("run");
    assert!(!out.success(), "pull from nowhere fails:\n{out}");
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "names the registry:\n{out}"
    );
    assert!(
        err.contains("connection refused") || err.contains("connect"),
        "says it could not connect:\n{out}"
    );
    assert!(!err.contains("panicked"), "{out}");
    assert!(index_is_empty(&image_index(&env)), "no image recorded");
    assert_ingest_clean(&env);
    let blobs = dir_entries(&env.root().join("content/blobs/sha256"));
    assert!(blobs.is_empty(), "no blobs: {blobs:?}");
    let snaps = dir_entries(&env.root().join("snapshots"));
    assert!(snaps.is_empty(), "no snapshots: {snaps:?}");
}

#[test]
fn missing_tag_fails_cleanly() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::busybox_image().expect("fixture");
    push(&fx, &reg, "missing/busybox:latest").expect("push");
    let reference = reg.image_ref("missing/busybox:nope");
    let out = env.run(["image", "pull", reference.as_str()]).expect("run");
    assert!(!out.success(), "{out}");
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("not found") || err.contains("unknown") || err.contains("404"),
        "{out}"
    );
    assert!(index_is_empty(&image_index(&env)));
    assert_ingest_clean(&env);
}

#[test]
fn concurrent_pulls_share_one_store() {
    let reg = registry();
    let env = env_for(&reg);
    let fx = fixtures::whiteouts().expect("fixture");
    let reference = push(&fx, &reg, "concurrent/img:latest").expect("push");
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| env.run(["image", "pull", reference.as_str()])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("run"))
            .collect()
    });
    for o in &outs {
        assert!(o.success(), "both pulls succeed:\n{o}");
        assert!(o.stdout.contains(fx.digest()), "{o}");
    }
    let out = run_ok(&env, &["image", "ls", "-q"]);
    assert_eq!(out.stdout.lines().count(), 1, "one image:\n{out}");
    let layers = layer_dirs(&env, &reference);
    for (path, want) in fixtures::WHITEOUT_EXPECTED {
        assert_eq!(read_in_image(&layers, path).as_deref(), *want, "{path}");
    }
    let snaps = dir_entries(&env.root().join("snapshots"));
    let snaps: Vec<&String> = snaps.iter().filter(|n| !n.starts_with('.')).collect();
    assert_eq!(snaps.len(), 3, "one snapshot per layer: {snaps:?}");
    let blobs = dir_entries(&env.root().join("content/blobs/sha256"));
    // 3 layers + config + manifest.
    assert_eq!(blobs.len(), 5, "{blobs:?}");
    for b in &blobs {
        let bytes = fs::read(env.root().join("content/blobs/sha256").join(b)).expect("blob");
        assert_eq!(
            sha256_digest(&bytes),
            format!("sha256:{b}"),
            "blob {b} intact"
        );
    }
    assert_ingest_clean(&env);
    let idx = image_index(&env);
    assert_eq!(idx["images"].as_object().map(|m| m.len()), Some(1), "{idx}");
}
