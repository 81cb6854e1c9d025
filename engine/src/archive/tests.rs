use super::*;
use crate::image::tests_support::fake_image;

#[test]
fn time_formatting_round_trips() {
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
    assert_eq!(
        parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
        Some(1_700_000_000)
    );
    assert_eq!(
        parse_rfc3339("2023-11-15T00:13:20+02:00"),
        Some(1_700_000_000)
    );
    assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
    assert_eq!(parse_rfc3339("garbage"), None);
}

#[test]
fn save_load_round_trip_keeps_digests() {
    let a = tempfile::tempdir().unwrap();
    let sa = ImageStore::open(a.path()).unwrap();
    let rec = fake_image(&sa, &["one", "two"], Some("app:1"));
    let mut buf = Vec::new();
    save(
        &sa,
        &[(rec.clone(), vec![Reference::parse("app:1").unwrap()])],
        &mut buf,
    )
    .unwrap();

    let b = tempfile::tempdir().unwrap();
    let sb = ImageStore::open(b.path()).unwrap();
    let loaded = load(&sb, &buf[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].record.id, rec.id);
    assert_eq!(loaded[0].record.manifest, rec.manifest);
    assert_eq!(loaded[0].tags, vec![Reference::parse("app:1").unwrap()]);
    let got = sb.resolve("app:1").unwrap();
    assert_eq!(got.layers, rec.layers);
    assert!(sb.snapshots.exists(&rec.layers[1].chain_id));

    // The archive is also a docker archive: manifest.json names config and layers.
    let mut ar = tar::Archive::new(&buf[..]);
    let mut names = Vec::new();
    let mut mj = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().into_owned();
        if n == "manifest.json" {
            e.read_to_end(&mut mj).unwrap();
        }
        names.push(n);
    }
    assert!(names.contains(&"oci-layout".to_owned()) && names.contains(&"index.json".to_owned()));
    let mj: serde_json::Value = serde_json::from_slice(&mj).unwrap();
    assert_eq!(mj[0]["RepoTags"][0], "app:1");
    assert_eq!(mj[0]["Config"], format!("blobs/sha256/{}", rec.id.hex()));
}

#[test]
fn loads_legacy_docker_archive_with_symlinked_layers() {
    // The layout `docker save` wrote before version 25.
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "hi", &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let diff = Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux",
        "rootfs":{"type":"layers","diff_ids":[diff, diff]}}))
    .unwrap();
    let cfg_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config":cfg_name,"RepoTags":["legacy:v1"],
        "Layers":["aaa/layer.tar","bbb/layer.tar"]}]),
    )
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("aaa/layer.tar", &layer);
    add(&cfg_name, &config);
    add("manifest.json", &manifest);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let tarball = b.into_inner().unwrap();

    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let loaded = load(&s, &tarball[..]).unwrap();
    assert_eq!(loaded[0].tags[0].familiar(), "legacy:v1");
    let rec = s.resolve("legacy:v1").unwrap();
    assert_eq!(rec.id, Digest::of(&config));
    assert_eq!(rec.layers.len(), 2);
    assert_eq!(
        std::fs::read(s.snapshots.fs_path(&rec.layers[0].chain_id).join("hi")).unwrap(),
        b"hi"
    );
    assert!(load(&s, &b"not a tar at all, just text padding"[..]).is_err());
}

#[test]
fn import_with_changes() {
    let rootfs = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o755);
        b.append_data(&mut h, "bin/app", &b"#!/x"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&rootfs).unwrap();
    let gz = gz.finish().unwrap();
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    let opts = ImportOptions {
        changes: vec![
            "CMD [\"/bin/app\"]".into(),
            "ENV A=1".into(),
            "EXPOSE 8080".into(),
            "WORKDIR /srv".into(),
        ],
        message: Some("hello".into()),
        platform: None,
        tag: Some(Reference::parse("imported:1").unwrap()),
    };
    let out = import(&s, &gz[..], &opts).unwrap();
    let rec = s.resolve("imported:1").unwrap();
    assert_eq!(rec.id, out.record.id);
    assert_eq!(rec.layers[0].diff_id, Digest::of(&rootfs));
    let cfg = s.config(&rec).unwrap();
    let run = cfg.config.unwrap();
    assert_eq!(run.cmd.unwrap(), vec!["/bin/app"]);
    assert_eq!(run.working_dir.as_deref(), Some("/srv"));
    assert_eq!(cfg.history[0].comment.as_deref(), Some("hello"));
    assert!(std::fs::read(s.snapshots.fs_path(&rec.layers[0].chain_id).join("bin/app")).is_ok());
    assert!(import(
        &s,
        &gz[..],
        &ImportOptions {
            changes: vec!["RUN x".into()],
            ..Default::default()
        }
    )
    .is_err());
}
