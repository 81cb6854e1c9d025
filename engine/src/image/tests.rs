use super::*;
use crate::manifest::media;
use crate::snapshot::chain_ids;
use crate::unpack::{unpack_layer, UnpackOptions};

/// Builds a tiny image in the store: one layer per entry of `files`.
pub(crate) fn fake_image(store: &ImageStore, files: &[&str], tag: Option<&str>) -> ImageRecord {
    let mut layers = Vec::new();
    let mut diffs = Vec::new();
    for f in files {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(f.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, f, f.as_bytes()).unwrap();
        let data = b.into_inner().unwrap();
        let digest = store.content.put_bytes(&data).unwrap();
        diffs.push(digest.clone());
        layers.push((
            Descriptor::new(media::OCI_LAYER, digest, data.len() as u64),
            data,
        ));
    }
    let chains = chain_ids(&diffs);
    let config = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":diffs},
        "config":{"Cmd":["sh"]},"created":"2024-01-01T00:00:00Z"});
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = store.content.put_bytes(&config_bytes).unwrap();
    let manifest = serde_json::json!({"schemaVersion":2,"mediaType":media::OCI_MANIFEST,
        "config":{"mediaType":media::OCI_CONFIG,"digest":config_digest,"size":config_bytes.len()},
        "layers": layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>()});
    let manifest_digest = store
        .content
        .put_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    let mut recs = Vec::new();
    let mut parent: Option<Digest> = None;
    for ((desc, data), chain) in layers.iter().zip(&chains) {
        let opts = UnpackOptions::default();
        store
            .snapshots
            .create_with(chain, parent.as_ref(), |p| {
                unpack_layer(&data[..], p, &opts)
            })
            .unwrap();
        parent = Some(chain.clone());
        recs.push(LayerRecord {
            descriptor: desc.clone(),
            diff_id: desc.digest.clone(),
            chain_id: chain.clone(),
        });
    }
    let rec = ImageRecord {
        id: config_digest,
        manifest: manifest_digest,
        manifest_media_type: media::OCI_MANIFEST.into(),
        index: None,
        repo_digests: Vec::new(),
        layers: recs,
        created: Some("2024-01-01T00:00:00Z".into()),
        size: 0,
        added: now_secs(),
    };
    let tags: Vec<Reference> = tag
        .into_iter()
        .map(|t| Reference::parse(t).unwrap())
        .collect();
    store.add(rec.clone(), &tags).unwrap();
    rec
}

fn no_containers(_: &Digest) -> bool {
    false
}

#[test]
fn tag_resolve_and_untag_vs_delete() {
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let base = fake_image(&store, &["base"], Some("base:1"));
    let app = fake_image(&store, &["base", "app"], Some("app:latest"));
    assert_eq!(
        base.layers[0].chain_id, app.layers[0].chain_id,
        "first layer snapshot is shared"
    );
    store
        .tag("app", &Reference::parse("app:v2").unwrap())
        .unwrap();
    assert_eq!(store.resolve("app:v2").unwrap().id, app.id);
    assert_eq!(store.resolve(&app.id.hex()[..8]).unwrap().id, app.id);
    assert_eq!(store.resolve(&app.id.to_string()).unwrap().id, app.id);
    assert!(matches!(
        store.resolve("nope"),
        Err(ImageError::NotFound(_))
    ));

    // By id with two tags: refused without -f.
    assert!(matches!(
        store.remove(app.id.short(), false, &no_containers),
        Err(ImageError::MultipleRepositories(_))
    ));
    // By tag while another remains: only untag.
    let ev = store.remove("app:v2", false, &no_containers).unwrap();
    assert_eq!(ev, vec![RemoveEvent::Untagged("app:v2".into())]);
    assert!(store.content.exists(&app.id));
    // Refused while in use.
    assert!(matches!(
        store.remove("app", false, &|_| true),
        Err(ImageError::InUse(_))
    ));
    // Last tag: untag and delete; the shared base layer stays.
    let ev = store.remove("app", false, &no_containers).unwrap();
    assert_eq!(ev[0], RemoveEvent::Untagged("app:latest".into()));
    assert_eq!(ev[1], RemoveEvent::Deleted(app.id.clone()));
    assert_eq!(ev[2], RemoveEvent::Deleted(app.layers[1].chain_id.clone()));
    assert_eq!(ev.len(), 3);
    assert!(!store.content.exists(&app.id));
    assert!(!store.snapshots.exists(&app.layers[1].chain_id));
    assert!(store.snapshots.exists(&base.layers[0].chain_id));
    assert!(store.content.exists(&base.layers[0].descriptor.digest));
    assert!(store.resolve("base:1").is_ok());
}

#[test]
fn retag_leaves_dangling_and_prune_removes_it() {
    let root = tempfile::tempdir().unwrap();
    let store = ImageStore::open(root.path()).unwrap();
    let old = fake_image(&store, &["v1"], Some("x:latest"));
    fake_image(&store, &["v2"], None);
    let idx = store.index().unwrap();
    assert_eq!(idx.dangling().len(), 1);
    let newer = fake_image(&store, &["v3"], Some("x:latest"));
    let idx = store.index().unwrap();
    assert_eq!(idx.dangling().len(), 2);
    assert_eq!(idx.resolve("x").unwrap().id, newer.id);
    let ev = store.prune(false, &no_containers).unwrap();
    assert!(ev.contains(&RemoveEvent::Deleted(old.id.clone())));
    assert_eq!(store.index().unwrap().images.len(), 1);
    let ev = store.prune(true, &no_containers).unwrap();
    assert!(ev.contains(&RemoveEvent::Untagged("x:latest".into())));
    assert!(store.index().unwrap().images.is_empty());
    assert!(store.content.list().unwrap().is_empty());
    assert!(store.snapshots.list().unwrap().is_empty());
}
