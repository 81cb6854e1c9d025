use std::io::Write;
use std::sync::{Arc, Mutex};

use super::mock::{Auth, Mock};
use super::*;
use crate::config::EngineConfig;
use crate::credentials::{CredentialStore, Credentials};
use crate::digest::Digest;
use crate::image::ImageStore;
use crate::manifest::{media, Platform};
use crate::reference::Reference;

fn layer_tar(name: &str, data: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, name, data.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Publishes a two-layer image (gzip + zstd) for `arch` in `repo`; returns the manifest bytes.
fn publish_image(m: &Mock, repo: &str, arch: &str) -> Vec<u8> {
    let l1 = layer_tar("etc/arch", arch);
    let l2 = layer_tar("bin/tool", &format!("tool for {arch}"));
    let (c1, c2) = (gzip(&l1), zstd::stream::encode_all(&l2[..], 3).unwrap());
    let (d1, d2) = (m.put_blob(repo, &c1), m.put_blob(repo, &c2));
    let config = serde_json::json!({"architecture":arch,"os":"linux","created":"2024-05-01T10:00:00Z",
        "rootfs":{"type":"layers","diff_ids":[Digest::of(&l1),Digest::of(&l2)]},"config":{"Cmd":["sh"]}});
    let cb = serde_json::to_vec(&config).unwrap();
    let cd = m.put_blob(repo, &cb);
    let manifest = serde_json::json!({"schemaVersion":2,"mediaType":media::OCI_MANIFEST,
        "config":{"mediaType":media::OCI_CONFIG,"digest":cd,"size":cb.len()},
        "layers":[{"mediaType":media::OCI_LAYER_GZIP,"digest":d1,"size":c1.len()},
                  {"mediaType":media::OCI_LAYER_ZSTD,"digest":d2,"size":c2.len()}]});
    serde_json::to_vec(&manifest).unwrap()
}

fn publish_index(m: &Mock, repo: &str, tag: &str) -> Digest {
    let mut descs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let mb = publish_image(m, repo, arch);
        let md = m.put_manifest(repo, &format!("only-{arch}"), media::OCI_MANIFEST, &mb);
        descs.push(
            serde_json::json!({"mediaType":media::OCI_MANIFEST,"digest":md,"size":mb.len(),
            "platform":{"architecture":arch,"os":"linux"}}),
        );
    }
    let idx = serde_json::json!({"schemaVersion":2,"mediaType":media::OCI_INDEX,"manifests":descs});
    m.put_manifest(
        repo,
        tag,
        media::OCI_INDEX,
        &serde_json::to_vec(&idx).unwrap(),
    )
}

type Events = Arc<Mutex<Vec<PullEvent>>>;

fn recorder() -> (Events, pull::Progress) {
    let ev: Events = Arc::default();
    let e2 = ev.clone();
    (ev, Arc::new(move |e| e2.lock().unwrap().push(e)))
}

fn client(cfg: EngineConfig, creds: Option<CredentialStore>) -> RegistryClient {
    RegistryClient::new(cfg, creds).unwrap()
}

#[test]
fn pulls_multi_platform_image_with_bearer_tokens_and_redirects() {
    let m = Mock::start(Auth::Bearer(None));
    let idx_digest = publish_index(&m, "team/app", "1.0");
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let c = client(EngineConfig::default(), None);
    let r = Reference::parse(&format!("{}/team/app:1.0", m.addr)).unwrap();
    let opts = PullOptions {
        platform: Some("linux/arm64".parse::<Platform>().unwrap()),
    };
    let (ev, p) = recorder();
    let out = blocking::pull(&c, &store, &r, &opts, p).unwrap();
    assert!(!out.up_to_date);
    assert_eq!(out.digest, idx_digest);
    assert_eq!(out.record.index, Some(idx_digest.clone()));
    assert_eq!(
        out.record.repo_digests,
        vec![format!("{}/team/app@{idx_digest}", m.addr)]
    );
    let rec = store.resolve(&format!("{}/team/app:1.0", m.addr)).unwrap();
    assert_eq!(rec, out.record);
    let top = &rec.layers[1].chain_id;
    assert_eq!(
        std::fs::read_to_string(store.snapshots.fs_path(top).join("bin/tool")).unwrap(),
        "tool for arm64"
    );
    assert_eq!(
        std::fs::read_to_string(
            store
                .snapshots
                .fs_path(&rec.layers[0].chain_id)
                .join("etc/arch")
        )
        .unwrap(),
        "arm64"
    );
    assert_eq!(rec.size, 5 + 14);
    let events = ev.lock().unwrap().clone();
    assert!(events.iter().any(|e| matches!(
        e,
        PullEvent::Layer {
            status: LayerStatus::PullComplete,
            ..
        }
    )));
    // Each layer was unpacked once, while it streamed (a fallback unpack would extract again).
    let extracting = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                PullEvent::Layer {
                    status: LayerStatus::Extracting,
                    ..
                }
            )
        })
        .count();
    assert_eq!(extracting, 2, "{events:?}");
    // Only the arm64 layers were fetched.
    let gets = m
        .log()
        .iter()
        .filter(|l| l.starts_with("GET /_redirected/"))
        .count();
    assert_eq!(gets, 3, "{:?}", m.log());

    // Again: nothing downloaded, reported up to date.
    let before = m.log().len();
    let (ev, p) = recorder();
    let again = blocking::pull(&c, &store, &r, &opts, p).unwrap();
    assert!(again.up_to_date);
    assert!(ev.lock().unwrap().iter().all(|e| !matches!(
        e,
        PullEvent::Layer {
            status: LayerStatus::Downloading { .. },
            ..
        }
    )));
    assert!(m.log()[before..]
        .iter()
        .all(|l| !l.contains("/_redirected/")));
    // Nothing left in ingest.
    assert_eq!(
        std::fs::read_dir(root.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn pull_by_digest_and_verification_failures() {
    let m = Mock::start(Auth::None);
    let mb = publish_image(&m, "x", "amd64");
    let md = m.put_manifest("x", "t", media::OCI_MANIFEST, &mb);
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let c = client(EngineConfig::default(), None);
    let by_digest = Reference::parse(&format!("{}/x@{md}", m.addr)).unwrap();
    let (_, p) = recorder();
    let out = blocking::pull(&c, &store, &by_digest, &PullOptions::default(), p).unwrap();
    assert_eq!(out.record.manifest, md);
    assert!(
        store.index().unwrap().tags.is_empty(),
        "pull by digest creates no tag"
    );

    // A registry that serves other bytes for a digest is caught.
    let wrong = Digest::of(b"not this");
    m.state.lock().unwrap().manifests.insert(
        ("x".into(), wrong.to_string()),
        (media::OCI_MANIFEST.into(), mb.clone()),
    );
    let r = Reference::parse(&format!("{}/x@{wrong}", m.addr)).unwrap();
    let (_, p) = recorder();
    let err = blocking::pull(&c, &store, &r, &PullOptions::default(), p).unwrap_err();
    assert!(matches!(err, RegistryError::ManifestDigest { .. }), "{err}");

    // A corrupted layer never lands in the content store.
    let root2 = tempfile::tempdir().unwrap();
    let store2 = ImageStore::open(root2.path()).unwrap();
    let manifest: crate::manifest::Manifest = serde_json::from_slice(&mb).unwrap();
    let bad = manifest.layers[0].digest.clone();
    m.state.lock().unwrap().corrupt.insert(bad.clone());
    let r = Reference::parse(&format!("{}/x:t", m.addr)).unwrap();
    let (_, p) = recorder();
    let err = blocking::pull(&c, &store2, &r, &PullOptions::default(), p).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(!store2.content.exists(&bad));
    assert!(store2.index().unwrap().images.is_empty());

    let missing = Reference::parse(&format!("{}/x:nope", m.addr)).unwrap();
    let (_, p) = recorder();
    let err = blocking::pull(&c, &store2, &missing, &PullOptions::default(), p).unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestUnknown { .. }),
        "{err}"
    );
}

#[test]
fn credentials_for_basic_and_token_auth() {
    let m = Mock::start(Auth::Basic("alice".into(), "s3cret".into()));
    let mb = publish_image(&m, "priv", "amd64");
    m.put_manifest("priv", "latest", media::OCI_MANIFEST, &mb);
    let r = Reference::parse(&format!("{}/priv", m.addr)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let (_, p) = recorder();
    let err = blocking::pull(
        &client(EngineConfig::default(), None),
        &store,
        &r,
        &PullOptions::default(),
        p,
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let mut creds = CredentialStore::load(&dir.path().join("config.json")).unwrap();
    creds.set(
        &m.addr,
        &Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        },
    );
    let (_, p) = recorder();
    blocking::pull(
        &client(EngineConfig::default(), Some(creds)),
        &store,
        &r,
        &PullOptions::default(),
        p,
    )
    .unwrap();

    let good = Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    let bad = Credentials {
        username: "alice".into(),
        password: "nope".into(),
    };
    blocking::check_login(client(EngineConfig::default(), None), &m.addr, good.clone()).unwrap();
    assert!(
        blocking::check_login(client(EngineConfig::default(), None), &m.addr, bad.clone()).is_err()
    );

    // Token endpoint guarded by credentials.
    let t = Mock::start(Auth::Bearer(Some(("bob".into(), "pw".into()))));
    let bob = Credentials {
        username: "bob".into(),
        password: "pw".into(),
    };
    blocking::check_login(client(EngineConfig::default(), None), &t.addr, bob).unwrap();
    assert!(blocking::check_login(client(EngineConfig::default(), None), &t.addr, bad).is_err());
}

#[test]
fn mirrors_are_tried_in_order_for_docker_hub() {
    let broken = Mock::start(Auth::None);
    broken.state.lock().unwrap().fail_all = Some(404);
    let mirror = Mock::start(Auth::None);
    let mb = publish_image(&mirror, "library/busybox", "amd64");
    mirror.put_manifest("library/busybox", "latest", media::OCI_MANIFEST, &mb);
    let cfg = EngineConfig {
        registry_mirrors: vec![
            format!("http://{}", broken.addr),
            format!("http://{}", mirror.addr),
        ],
        ..EngineConfig::default()
    };
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let (ev, p) = recorder();
    let out = blocking::pull(
        &client(cfg, None),
        &store,
        &Reference::parse("busybox").unwrap(),
        &PullOptions::default(),
        p,
    )
    .unwrap();
    assert!(ev
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, PullEvent::EndpointFailed { .. })));
    assert_eq!(
        out.record.repo_digests[0],
        format!("docker.io/library/busybox@{}", Digest::of(&mb))
    );
    assert!(store.resolve("busybox:latest").is_ok());
}

#[test]
fn push_uploads_mounts_and_skips() {
    let m = Mock::start(Auth::Bearer(None));
    let mb = publish_image(&m, "src/app", "amd64");
    m.put_manifest("src/app", "v1", media::OCI_MANIFEST, &mb);
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let c = client(EngineConfig::default(), None);
    let src = Reference::parse(&format!("{}/src/app:v1", m.addr)).unwrap();
    let (_, p) = recorder();
    let pulled = blocking::pull(&c, &store, &src, &PullOptions::default(), p)
        .unwrap()
        .record;
    let noop: push::PushProgress = Arc::new(|_| {});

    // Same registry, other repository: blobs are mounted, not uploaded.
    let dst = Reference::parse(&format!("{}/dst/app:v2", m.addr)).unwrap();
    let out = blocking::push(
        &c,
        &store,
        &pulled,
        &dst,
        &PushOptions::default(),
        noop.clone(),
    )
    .unwrap();
    assert_eq!(out.digest, pulled.manifest);
    let log = m.log();
    assert!(
        log.iter()
            .any(|l| l.contains("mount=") && l.contains("from=src/app")),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("PUT /v2/dst/app/blobs/uploads/")),
        "{log:?}"
    );
    assert!(m
        .state
        .lock()
        .unwrap()
        .manifests
        .contains_key(&("dst/app".to_string(), "v2".to_string())));

    // A fresh registry: real uploads; with a tiny chunk threshold, chunked PATCHes.
    let m2 = Mock::start(Auth::None);
    let dst2 = Reference::parse(&format!("{}/other:1", m2.addr)).unwrap();
    let opts = PushOptions {
        chunk_threshold: 64,
        chunk_size: 50,
    };
    blocking::push(&c, &store, &pulled, &dst2, &opts, noop.clone()).unwrap();
    let log = m2.log();
    assert!(
        log.iter().filter(|l| l.starts_with("PATCH ")).count() >= 2,
        "{log:?}"
    );
    assert!(log
        .iter()
        .any(|l| l.starts_with("PUT /v2/other/blobs/uploads/")));
    // Pull it back into a new root: same image id.
    let root2 = tempfile::tempdir().unwrap();
    let store2 = ImageStore::open(root2.path()).unwrap();
    let (_, p) = recorder();
    let back = blocking::pull(&c, &store2, &dst2, &PullOptions::default(), p).unwrap();
    assert_eq!(back.record.id, pulled.id);
    // Pushing again skips every blob after a HEAD.
    let before = m2.log().len();
    blocking::push(&c, &store, &pulled, &dst2, &PushOptions::default(), noop).unwrap();
    let log = m2.log()[before..].to_vec();
    assert!(!log.iter().any(|l| l.starts_with("POST ")), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("HEAD ")).count(), 3);
}

#[test]
fn concurrent_pulls_share_the_work() {
    let m = Mock::start(Auth::None);
    let mb = publish_image(&m, "c", "amd64");
    m.put_manifest("c", "latest", media::OCI_MANIFEST, &mb);
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/c", m.addr)).unwrap();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let (_, p) = recorder();
                blocking::pull(
                    &client(EngineConfig::default(), None),
                    &store,
                    &r,
                    &PullOptions::default(),
                    p,
                )
                .unwrap();
            });
        }
    });
    let rec = store.resolve(&r.to_string()).unwrap();
    assert!(store.snapshots.exists(&rec.layers[1].chain_id));
    assert_eq!(store.snapshots.list().unwrap().len(), 2);
    assert_eq!(
        std::fs::read_dir(root.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}
