//! Self-tests of the e2e harness: the registry, every fixture pushed and read back, the auth
//! registry, and cleanup of registries and test environments.
//!
//! These need `docker-registry`, `skopeo` and `busybox-static`; the environment tests need root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use e2e::oci::media;
use e2e::{
    fixtures, inspect_raw, inspect_raw_bytes_with, list_tar, push, push_with, Compression,
    Credentials, Fixture, Platform, Registry, StateRoot, TestEnv,
};
use serde_json::Value;

fn registry() -> Registry {
    Registry::start().unwrap_or_else(|e| panic!("starting the test registry: {e}"))
}

/// Pushes a fixture, reads its manifest back, and checks the registry serves the very bytes the
/// harness built (digest preserved).
fn push_and_inspect(reg: &Registry, fixture: &Fixture, repo_tag: &str) -> Value {
    push(fixture, reg, repo_tag).unwrap_or_else(|e| panic!("pushing {}: {e}", fixture.name));
    let (manifest, digest) =
        inspect_raw(reg, repo_tag).unwrap_or_else(|e| panic!("inspecting {repo_tag}: {e}"));
    assert_eq!(
        digest,
        fixture.digest(),
        "{repo_tag}: registry digest differs from the built one (was it rewritten?)"
    );
    manifest
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

fn layer_media_types(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {manifest}"))
        .iter()
        .map(|l| str_at(l, "/mediaType").to_string())
        .collect()
}

#[test]
fn registry_answers_and_drop_leaves_nothing() {
    let reg = registry();
    let resp = reg.get("/v2/").expect("GET /v2/");
    assert_eq!(resp.status, 200, "anonymous registry answers /v2/ with 200");
    assert!(reg.host_port().starts_with("127.0.0.1:"));

    let pid = reg.pid();
    let dir: PathBuf = reg.dir().to_path_buf();
    let addr = reg.host_port().to_string();
    assert!(dir.join("storage").is_dir());
    drop(reg);

    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "registry process {pid} survived drop"
    );
    assert!(
        !dir.exists(),
        "registry dir {} survived drop",
        dir.display()
    );
    assert!(
        e2e::http::get(&addr, "/v2/", None).is_err(),
        "something still answers on {addr}"
    );
}

#[test]
fn registries_run_side_by_side() {
    let a = registry();
    let b = registry();
    assert_ne!(a.host_port(), b.host_port());
    assert_ne!(a.dir(), b.dir());
}

#[test]
fn auth_registry_rejects_anonymous_and_accepts_credentials() {
    let reg = Registry::start_with_auth("tester", "s3cret-pass").expect("auth registry starts");
    let creds = reg
        .credentials()
        .expect("auth registry has credentials")
        .clone();

    let anon = e2e::http::get(reg.host_port(), "/v2/", None).expect("anonymous GET");
    assert_eq!(anon.status, 401);
    let challenge = anon.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Basic"),
        "challenge was {challenge:?}"
    );
    let wrong = e2e::http::get(reg.host_port(), "/v2/", Some(("tester", "wrong"))).expect("GET");
    assert_eq!(wrong.status, 401, "wrong password is rejected");
    let right = reg.get("/v2/").expect("GET with credentials");
    assert_eq!(right.status, 200, "right credentials are accepted");

    let image = fixtures::busybox_image().expect("busybox fixture");
    let err = push_with(&image, &reg, None, "private/busybox:latest")
        .expect_err("anonymous push must be rejected");
    assert!(
        err.to_string().contains("unauthorized") || err.to_string().contains("401"),
        "unexpected anonymous push error: {err}"
    );
    let wrong_creds = Credentials::new("tester", "nope");
    push_with(&image, &reg, Some(&wrong_creds), "private/busybox:latest")
        .expect_err("push with a wrong password must be rejected");

    push(&image, &reg, "private/busybox:latest").expect("push with credentials");
    inspect_raw_bytes_with(&reg, None, "private/busybox:latest")
        .expect_err("anonymous inspect must be rejected");
    let bytes = inspect_raw_bytes_with(&reg, Some(&creds), "private/busybox:latest")
        .expect("inspect with credentials");
    assert_eq!(e2e::oci::sha256_digest(&bytes), image.digest());
}

#[test]
fn busybox_fixture_round_trips() {
    let reg = registry();
    let image = fixtures::busybox_image().expect("busybox fixture");
    let manifest = push_and_inspect(&reg, &image, "busybox:latest");
    assert_eq!(str_at(&manifest, "/mediaType"), media::OCI_MANIFEST);
    assert_eq!(str_at(&manifest, "/config/mediaType"), media::OCI_CONFIG);
    assert_eq!(layer_media_types(&manifest), [media::OCI_LAYER_GZIP]);

    // The config the registry serves has the runtime config and diff_ids we built.
    let built = image.image().expect("single image");
    let config_bytes = reg
        .blob("busybox", &built.config.digest)
        .expect("config blob");
    let config: Value = serde_json::from_slice(&config_bytes).expect("config is JSON");
    let host = Platform::host();
    assert_eq!(str_at(&config, "/architecture"), host.architecture);
    assert_eq!(str_at(&config, "/os"), "linux");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(str_at(&config, "/config/WorkingDir"), "/");
    assert!(str_at(&config, "/config/Env/0").starts_with("PATH="));
    assert_eq!(
        str_at(&config, "/rootfs/diff_ids/0"),
        built.layers[0].diff_id
    );
    assert_eq!(config["history"].as_array().map(Vec::len), Some(1));

    // The layer holds busybox, its applets as symlinks and the /etc files.
    let layer = reg
        .blob("busybox", &built.layers[0].descriptor.digest)
        .expect("layer blob");
    let entries = list_tar(&layer).expect("layer lists");
    let find = |p: &str| entries.iter().find(|e| e.path == p);
    let bb = find("bin/busybox").expect("bin/busybox in layer");
    assert_eq!(bb.mode, 0o755);
    assert_eq!(
        bb.data,
        std::fs::read(fixtures::busybox_path()).expect("host busybox")
    );
    let sh = find("bin/sh").expect("bin/sh in layer");
    assert_eq!(sh.kind, tar::EntryType::Symlink);
    assert_eq!(sh.link.as_deref(), Some("busybox"));
    assert!(find("etc/passwd").is_some());
    assert_eq!(
        find("etc/fixture").map(|e| e.data.clone()),
        Some(b"busybox\n".to_vec())
    );
    assert_eq!(find("tmp/").map(|e| e.mode), Some(0o1777));
    // Deterministic archive: sorted, fixed owner and mtime.
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are sorted");
}

#[test]
fn fixtures_are_deterministic() {
    // Layer archives and their compression, bypassing the per-process blob cache.
    let tar = |name| {
        fixtures::busybox_rootfs(name, fixtures::AppletLinks::Symlinks)
            .and_then(|l| l.tar())
            .expect("rootfs tar")
    };
    let (one, two) = (tar("a"), tar("a"));
    assert_eq!(one, two, "same rootfs, same tar bytes");
    assert_ne!(one, tar("b"), "the fixture name is in the rootfs");
    for c in Compression::ALL {
        assert_eq!(
            c.compress(&one).expect("compress"),
            c.compress(&two).expect("compress"),
            "{} is deterministic",
            c.name()
        );
    }
    let a = fixtures::busybox_image().expect("first build");
    let b = fixtures::busybox_image().expect("second build");
    assert_eq!(a.digest(), b.digest());
    let a = fixtures::multi_platform().expect("first build");
    let b = fixtures::multi_platform().expect("second build");
    assert_eq!(a.digest(), b.digest());
    for c in Compression::ALL {
        let a = fixtures::compressed(c).expect("first build");
        let b = fixtures::compressed(c).expect("second build");
        assert_eq!(a.digest(), b.digest(), "{} fixture", c.name());
    }
}

#[test]
fn each_compression_is_preserved() {
    let reg = registry();
    let mut digests = BTreeSet::new();
    for c in Compression::ALL {
        let image = fixtures::compressed(c).expect("compressed fixture");
        let repo = format!("compressed-{}", c.name());
        let manifest = push_and_inspect(&reg, &image, &format!("{repo}:latest"));
        let want = match c {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        };
        assert_eq!(layer_media_types(&manifest), [want, want], "{repo}");
        for layer in &image.image().expect("image").layers {
            let blob = reg
                .blob(&repo, &layer.descriptor.digest)
                .expect("layer blob");
            assert_eq!(Compression::detect(&blob), c, "{repo} blob compression");
            let tar = c.decompress(&blob).expect("decompresses");
            assert_eq!(
                e2e::oci::sha256_digest(&tar),
                layer.diff_id,
                "{repo} diff_id"
            );
        }
        let top = image.image().expect("image").layers[1]
            .descriptor
            .digest
            .clone();
        let marker = list_tar(&reg.blob(&repo, &top).expect("marker layer")).expect("lists");
        assert_eq!(
            marker.last().map(|e| e.path.as_str()),
            Some("etc/fixture-compression")
        );
        assert!(
            digests.insert(image.digest().to_string()),
            "digests differ per compression"
        );
    }
}

#[test]
fn whiteout_fixture_has_whiteouts_and_opaque_dir() {
    let reg = registry();
    let image = fixtures::whiteouts().expect("whiteouts fixture");
    let manifest = push_and_inspect(&reg, &image, "whiteouts:latest");
    assert_eq!(layer_media_types(&manifest).len(), 3);
    let built = image.image().expect("image");
    let layer2 = reg
        .blob("whiteouts", &built.layers[1].descriptor.digest)
        .expect("layer 2");
    let paths: BTreeSet<String> = list_tar(&layer2)
        .expect("lists")
        .into_iter()
        .map(|e| e.path)
        .collect();
    for want in [
        "data/.wh.remove.txt",
        "data/.wh.removed-dir",
        "data/.wh.recreated.txt",
        "data/opaque/.wh..wh..opq",
        "data/opaque/new.txt",
    ] {
        assert!(
            paths.contains(want),
            "{want} missing from layer 2: {paths:?}"
        );
    }
    let layer3 = reg
        .blob("whiteouts", &built.layers[2].descriptor.digest)
        .expect("layer 3");
    let recreated = list_tar(&layer3)
        .expect("lists")
        .into_iter()
        .find(|e| e.path == "data/recreated.txt")
        .expect("layer 3 re-adds recreated.txt");
    assert_eq!(recreated.data, b"v3\n");
    // Applying the pushed layers with the OCI whiteout rules gives exactly the documented tree.
    let mut tree: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for layer in &built.layers {
        let blob = reg
            .blob("whiteouts", &layer.descriptor.digest)
            .expect("layer");
        apply_layer(&mut tree, list_tar(&blob).expect("lists"));
    }
    for (path, want) in fixtures::WHITEOUT_EXPECTED {
        let got = tree.get(*path).map(|content| {
            content
                .as_ref()
                .map(|c| String::from_utf8_lossy(c).into_owned())
        });
        match want {
            Some(text) => assert_eq!(got, Some(Some(text.to_string())), "{path}"),
            None => assert_eq!(got, None, "{path} should be gone"),
        }
    }
}

/// Applies a layer to a path → file content (None for non-files) map, following the OCI image
/// spec's whiteout rules; the reference the fixture's expectation table is checked against.
fn apply_layer(tree: &mut BTreeMap<String, Option<Vec<u8>>>, entries: Vec<e2e::TarEntry>) {
    let under = |dir: &str, p: &str| p.starts_with(&format!("{dir}/"));
    // Opaque markers hide the lower contents of their directory before this layer's files land.
    for e in &entries {
        if let Some(dir) = e.path.strip_suffix("/.wh..wh..opq") {
            let dir = format!("/{dir}");
            tree.retain(|p, _| !under(&dir, p));
        }
    }
    for e in entries {
        let path = format!("/{}", e.path.trim_end_matches('/'));
        let (parent, name) = path.rsplit_once('/').expect("absolute path");
        if name == ".wh..wh..opq" {
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let gone = format!("{parent}/{hidden}");
            tree.retain(|p, _| *p != gone && !under(&gone, p));
            continue;
        }
        let content = (e.kind == tar::EntryType::Regular).then_some(e.data);
        tree.insert(path, content);
    }
}

#[test]
fn hardlink_fixture_has_hard_links() {
    let reg = registry();
    let image = fixtures::hardlinks().expect("hardlinks fixture");
    push_and_inspect(&reg, &image, "hardlinks:latest");
    let built = image.image().expect("image");
    let entries = list_tar(
        &reg.blob("hardlinks", &built.layers[0].descriptor.digest)
            .expect("layer"),
    )
    .expect("lists");
    let pos = |p: &str| {
        entries
            .iter()
            .position(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    for (link, target) in [
        ("data/same-dir-link", "data/original"),
        ("data/sub/other-dir-link", "data/original"),
        ("bin/sh", "bin/busybox"),
    ] {
        let e = &entries[pos(link)];
        assert_eq!(e.kind, tar::EntryType::Link, "{link} is a hard link");
        assert_eq!(e.link.as_deref(), Some(target));
        assert!(pos(target) < pos(link), "{target} precedes {link}");
    }
}

#[test]
fn multi_platform_index_round_trips() {
    let reg = registry();
    let image = fixtures::multi_platform().expect("multi-platform fixture");
    assert!(image.is_index());
    let index = push_and_inspect(&reg, &image, "multi:latest");
    assert_eq!(str_at(&index, "/mediaType"), media::OCI_INDEX);
    let entries = index["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = entries
        .iter()
        .map(|m| {
            let p = &m["platform"];
            match p["variant"].as_str() {
                Some(v) => format!("{}/{}/{v}", str_at(p, "/os"), str_at(p, "/architecture")),
                None => format!("{}/{}", str_at(p, "/os"), str_at(p, "/architecture")),
            }
        })
        .collect();
    assert!(
        platforms.contains(&"linux/amd64".to_string()),
        "{platforms:?}"
    );
    assert!(
        platforms.contains(&"linux/arm64/v8".to_string()),
        "{platforms:?}"
    );

    // Every child manifest was pushed (--all), unchanged.
    for (entry, built) in entries.iter().zip(&image.images) {
        let digest = str_at(entry, "/digest");
        assert_eq!(digest, built.manifest.digest);
        assert_eq!(str_at(entry, "/mediaType"), media::OCI_MANIFEST);
        let (child, child_digest) =
            inspect_raw(&reg, &format!("multi@{digest}")).expect("child manifest");
        assert_eq!(child_digest, digest);
        assert_eq!(str_at(&child, "/mediaType"), media::OCI_MANIFEST);
        let layers = child["layers"].as_array().expect("layers");
        let marker_digest = str_at(layers.last().expect("marker layer"), "/digest");
        let marker = list_tar(&reg.blob("multi", marker_digest).expect("marker blob"))
            .expect("lists")
            .into_iter()
            .find(|e| e.path == "etc/fixture-platform")
            .expect("platform marker");
        assert_eq!(
            String::from_utf8_lossy(&marker.data).trim(),
            built.platform.to_string_short()
        );
    }
    // Only the host platform carries the full rootfs.
    let host = image.image_for(&Platform::host()).expect("host entry");
    assert_eq!(host.layers.len(), 2);
}

#[test]
fn docker_schema2_fixtures_round_trip() {
    let reg = registry();
    let image = fixtures::docker_schema2().expect("docker fixture");
    let manifest = push_and_inspect(&reg, &image, "docker:latest");
    assert_eq!(str_at(&manifest, "/mediaType"), media::DOCKER_MANIFEST);
    assert_eq!(str_at(&manifest, "/config/mediaType"), media::DOCKER_CONFIG);
    assert_eq!(layer_media_types(&manifest), [media::DOCKER_LAYER_GZIP]);

    let list = fixtures::multi_platform_docker().expect("docker manifest list fixture");
    let index = push_and_inspect(&reg, &list, "docker-multi:latest");
    assert_eq!(str_at(&index, "/mediaType"), media::DOCKER_MANIFEST_LIST);
    for entry in index["manifests"].as_array().expect("manifests") {
        assert_eq!(str_at(entry, "/mediaType"), media::DOCKER_MANIFEST);
    }
}

#[test]
fn one_fixture_pushes_under_several_tags() {
    let reg = registry();
    let image = fixtures::busybox_image().expect("busybox fixture");
    let a = push(&image, &reg, "library/busybox:1").expect("push :1");
    let b = push(&image, &reg, "other:2").expect("push :2");
    assert_eq!(a, format!("{}/library/busybox:1", reg.host_port()));
    assert_eq!(b, format!("{}/other:2", reg.host_port()));
    let tags = reg.get("/v2/library/busybox/tags/list").expect("tags list");
    assert_eq!(tags.status, 200);
    let tags: Value = serde_json::from_slice(&tags.body).expect("tags JSON");
    assert_eq!(tags["tags"], serde_json::json!(["1"]));
}

#[test]
fn test_env_is_private_and_cleans_up() {
    e2e::require_root().expect("root");
    let env = TestEnv::new().expect("test env");
    let root = env.root().to_path_buf();
    let home = env.home();
    assert!(root.is_dir() && home.is_dir() && env.work_dir().is_dir());
    assert!(env.docker_config_dir().is_dir());
    assert_eq!(env.config().expect("config"), serde_json::json!({}));
    env.set_config("insecure-registries", serde_json::json!(["127.0.0.1:1"]))
        .expect("set config");
    assert_eq!(
        env.config().expect("config")["insecure-registries"][0],
        "127.0.0.1:1"
    );
    let reg = Registry::start_with_auth("u", "p").expect("auth registry");
    env.use_mirror(&reg).expect("mirror config");
    let config = env.config().expect("config");
    assert_eq!(config["registry-mirrors"][0], reg.url().as_str());
    assert_eq!(config["insecure-registries"][1], reg.host_port());
    env.docker_login(&reg).expect("docker login");
    let docker: Value = serde_json::from_slice(
        &std::fs::read(env.docker_config_dir().join("config.json")).expect("docker config"),
    )
    .expect("docker config JSON");
    assert_eq!(
        docker["auths"][reg.host_port()]["auth"],
        e2e::base64(b"u:p")
    );

    // Simulate what rcompose leaves behind: nested mounts and a process tagged with the root.
    let mnt = root.join("containers/x/rootfs");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    mount(&["-t", "tmpfs", "tmpfs"], &mnt);
    std::fs::create_dir_all(mnt.join("inner")).expect("mkdir inner");
    mount(&["--bind", "/etc"], &mnt.join("inner"));
    assert_eq!(env.state_root().mounts().expect("mounts").len(), 2);
    let mut straggler = Command::new("sleep")
        .arg("600")
        .env("RCOMPOSE_ROOT", &root)
        .spawn()
        .expect("spawn sleep");
    // /proc/<pid>/environ only shows the new environment once the child has exec'd.
    let tagged = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        env.state_root().processes() == [straggler.id() as i32]
    });
    assert!(tagged, "the straggler is found by its RCOMPOSE_ROOT");

    drop(env);
    assert!(!root.exists(), "state root survived drop");
    assert!(!home.exists(), "home survived drop");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mountinfo.contains(root.to_str().expect("utf-8 path")));
    let status = straggler.wait().expect("wait straggler");
    assert!(!status.success(), "straggler was killed");
}

fn mount(args: &[&str], target: &std::path::Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .expect("run mount");
    assert!(out.status.success(), "mount {args:?}: {out:?}");
}

#[test]
fn state_roots_are_distinct() {
    let a = StateRoot::new().expect("root a");
    let b = StateRoot::new().expect("root b");
    assert_ne!(a.path(), b.path());
    assert!(a.mounts().expect("mounts").is_empty());
}

#[test]
fn rcompose_binary_runs_against_the_private_root() {
    let env = TestEnv::new().expect("test env");
    let bin = e2e::rcompose_bin().unwrap_or_else(|e| panic!("{e}"));
    assert!(bin.ends_with("rcompose"));
    let out = env.run_ok(["version"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.stdout.trim().is_empty(), "version prints something");
    let via_command = e2e::rcompose(&env)
        .arg("version")
        .output()
        .expect("run rcompose");
    assert!(via_command.status.success());
}
