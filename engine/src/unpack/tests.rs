//! Unpack tests. They run as root (mknod, chown and `trusted.*` xattrs need it) and fail loudly
//! otherwise rather than skipping.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::*;

// ---- a raw tar writer: the `tar` crate's builder refuses the malicious names we need ----

struct E {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    data: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
    pax: Vec<(String, Vec<u8>)>,
    gnu_long_name: bool,
    gnu_long_link: bool,
}

fn e(name: &str, kind: u8) -> E {
    E {
        name: name.as_bytes().to_vec(),
        kind,
        link: Vec::new(),
        data: Vec::new(),
        mode: if kind == b'5' { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        dev: (0, 0),
        pax: Vec::new(),
        gnu_long_name: false,
        gnu_long_link: false,
    }
}
fn file(name: &str, data: &str) -> E {
    E {
        data: data.as_bytes().to_vec(),
        ..e(name, b'0')
    }
}
fn dir(name: &str) -> E {
    e(name, b'5')
}
fn symlink(name: &str, target: &str) -> E {
    E {
        link: target.as_bytes().to_vec(),
        mode: 0o777,
        ..e(name, b'2')
    }
}
fn hardlink(name: &str, target: &str) -> E {
    E {
        link: target.as_bytes().to_vec(),
        ..e(name, b'1')
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
    field[field.len() - 1] = 0;
}

fn header(name: &[u8], kind: u8, link: &[u8], size: u64, x: &E) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(x.mode));
    octal(&mut h[108..116], x.uid);
    octal(&mut h[116..124], x.gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], x.mtime);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], u64::from(x.dev.0));
    octal(&mut h[337..345], u64::from(x.dev.1));
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for x in entries {
        if !x.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &x.pax {
                // "%d %s=%s\n" where the length counts itself.
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while len.to_string().len() + rest != len {
                    len += 1;
                }
                body.extend_from_slice(format!("{len} {k}=").as_bytes());
                body.extend_from_slice(v);
                body.push(b'\n');
            }
            out.extend_from_slice(&header(b"././@PaxHeader", b'x', b"", body.len() as u64, x));
            out.extend_from_slice(&body);
            pad(&mut out);
        }
        if x.gnu_long_name {
            let mut body = x.name.clone();
            body.push(0);
            out.extend_from_slice(&header(b"././@LongLink", b'L', b"", body.len() as u64, x));
            out.extend_from_slice(&body);
            pad(&mut out);
        }
        if x.gnu_long_link {
            let mut body = x.link.clone();
            body.push(0);
            out.extend_from_slice(&header(b"././@LongLink", b'K', b"", body.len() as u64, x));
            out.extend_from_slice(&body);
            pad(&mut out);
        }
        let name: &[u8] = if x.gnu_long_name {
            b"placeholder"
        } else {
            &x.name
        };
        let link: &[u8] = if x.gnu_long_link {
            b"placeholder"
        } else {
            &x.link
        };
        out.extend_from_slice(&header(name, x.kind, link, x.data.len() as u64, x));
        out.extend_from_slice(&x.data);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

// ---- a sandbox whose surroundings must stay untouched ----

struct Sandbox {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

fn sandbox() -> Sandbox {
    assert!(
        rustix::process::geteuid().is_root(),
        "unpack tests need root (mknod, chown, trusted xattrs)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let dest = base.join("snap/fs");
    let outside = base.join("outside");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(outside.join("sub")).unwrap();
    fs::write(outside.join("victim"), "original").unwrap();
    fs::write(base.join("x"), "sentinel").unwrap();
    fs::write(base.join("snap/x"), "sentinel").unwrap();
    Sandbox {
        _tmp: tmp,
        base,
        dest,
        outside,
    }
}

/// Everything under `base` except the destination: path → (type+mode, size, content, xattrs).
fn snapshot_outside(s: &Sandbox) -> BTreeMap<PathBuf, String> {
    fn walk(p: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for ent in fs::read_dir(p).unwrap() {
            let path = ent.unwrap().path();
            if path == skip {
                continue;
            }
            let m = fs::symlink_metadata(&path).unwrap();
            let mut desc = format!("{:o} {} {}:{}", m.mode(), m.len(), m.uid(), m.gid());
            if m.is_file() {
                desc.push_str(&format!(" {:?}", fs::read(&path).unwrap()));
            }
            let xa = rustix::fs::llistxattr(&path, &mut [0u8; 4096][..]).unwrap_or(0);
            desc.push_str(&format!(" xattrs={xa}"));
            out.insert(path.clone(), desc);
            if m.is_dir() {
                walk(&path, skip, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&s.base, &s.dest, &mut out);
    out
}

fn unpack(s: &Sandbox, entries: &[E]) -> Result<UnpackStats, UnpackError> {
    unpack_layer(&tar(entries)[..], &s.dest, &UnpackOptions::default())
}

/// Runs a malicious archive: it must be refused as `want` (or accepted when `None`), and nothing
/// outside the destination may change.
fn hostile(entries: Vec<E>, want: Option<UnsafeReason>) -> Sandbox {
    let s = sandbox();
    let before = snapshot_outside(&s);
    let r = unpack(&s, &entries);
    match (want, &r) {
        (Some(w), Err(UnpackError::Unsafe { reason, .. })) => assert_eq!(*reason, w, "{r:?}"),
        (None, Ok(_)) => {}
        _ => panic!("expected {want:?}, got {r:?}"),
    }
    assert_eq!(
        snapshot_outside(&s),
        before,
        "something outside the destination changed"
    );
    for p in ["/x", "/etc/x", "/rcompose-evil", "/etc/rcompose-evil"] {
        assert!(!Path::new(p).exists(), "{p} was created");
    }
    s
}

use UnsafeReason::*;

#[test]
fn refuses_parent_dir() {
    hostile(vec![file("../x", "evil")], Some(ParentComponent));
}

#[test]
fn refuses_absolute() {
    hostile(vec![file("/etc/rcompose-evil", "evil")], Some(AbsolutePath));
}

#[test]
fn refuses_dotdot_inside_path() {
    hostile(
        vec![dir("a"), file("a/../../x", "evil")],
        Some(ParentComponent),
    );
    hostile(vec![file("./../x", "evil")], Some(ParentComponent));
}

#[test]
fn refuses_write_through_symlink_to_root() {
    hostile(
        vec![symlink("l", "/"), file("l/rcompose-evil", "evil")],
        Some(Escapes),
    );
}

#[test]
fn refuses_write_through_symlink_to_parent() {
    hostile(vec![symlink("l", ".."), file("l/x", "evil")], Some(Escapes));
}

#[test]
fn refuses_write_through_absolute_symlink_to_real_dir() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap().to_owned();
    drop(s);
    // The absolute path exists on the host; the write must still not land there.
    let s = hostile(
        vec![symlink("l", &out), file("l/new", "evil")],
        Some(Escapes),
    );
    assert!(!s.outside.join("new").exists());
}

#[test]
fn refuses_symlink_chain_escape() {
    hostile(
        vec![
            dir("d"),
            symlink("a", "b"),
            symlink("b", "d/c"),
            symlink("d/c", "../.."),
            file("a/x", "evil"),
        ],
        Some(Escapes),
    );
}

#[test]
fn refuses_nested_relative_symlink_escape() {
    hostile(
        vec![
            dir("sub/deep"),
            symlink("sub/deep/l", "../../.."),
            file("sub/deep/l/x", "evil"),
        ],
        Some(Escapes),
    );
}

#[test]
fn refuses_hardlink_to_host_file() {
    hostile(vec![hardlink("h", "/etc/passwd")], Some(LinkTargetEscapes));
}

#[test]
fn refuses_hardlink_to_parent() {
    hostile(vec![hardlink("h", "../x")], Some(LinkTargetEscapes));
}

#[test]
fn refuses_hardlink_through_symlink() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap().to_owned();
    drop(s);
    hostile(
        vec![symlink("l", &out), hardlink("h", "l/victim")],
        Some(LinkTargetEscapes),
    );
    hostile(
        vec![symlink("l", ".."), hardlink("h", "l/x")],
        Some(LinkTargetEscapes),
    );
}

#[test]
fn refuses_whiteout_with_parent() {
    hostile(vec![file("../.wh.x", "")], Some(ParentComponent));
}

#[test]
fn refuses_whiteout_through_symlink() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap().to_owned();
    drop(s);
    let s = hostile(
        vec![symlink("l", &out), file("l/.wh.victim", "")],
        Some(Escapes),
    );
    assert_eq!(
        fs::read_to_string(s.outside.join("victim")).unwrap(),
        "original"
    );
    hostile(vec![symlink("l", ".."), file("l/.wh.x", "")], Some(Escapes));
}

#[test]
fn refuses_opaque_marker_through_symlink() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap().to_owned();
    drop(s);
    hostile(
        vec![symlink("l", &out), file("l/.wh..wh..opq", "")],
        Some(Escapes),
    );
}

#[test]
fn refuses_bad_whiteout_names() {
    hostile(vec![dir("a"), file("a/.wh...", "")], Some(BadWhiteout));
}

#[test]
fn refuses_device_named_with_parent() {
    let mut d = e("../null", b'3');
    d.dev = (1, 3);
    hostile(vec![d], Some(ParentComponent));
    let mut d = e("dev/../../evil", b'6');
    d.dev = (0, 0);
    hostile(vec![d], Some(ParentComponent));
}

#[test]
fn refuses_pax_path_override() {
    let mut f = file("harmless", "evil");
    f.pax.push(("path".into(), b"ok/../../x".to_vec()));
    hostile(vec![f], Some(ParentComponent));
}

#[test]
fn refuses_pax_linkpath_override() {
    let mut h = hardlink("h", "fine");
    h.pax
        .push(("linkpath".into(), b"../../etc/passwd".to_vec()));
    hostile(vec![file("fine", "x"), h], Some(LinkTargetEscapes));
}

#[test]
fn refuses_gnu_longname_escape() {
    let long = format!("{}/../../../x", "a".repeat(120));
    let mut f = file(&long, "evil");
    f.gnu_long_name = true;
    hostile(vec![f], Some(ParentComponent));
}

#[test]
fn refuses_gnu_longlink_escape() {
    let target = format!("{}/../../../../etc/passwd", "b".repeat(120));
    let mut h = hardlink("h", &target);
    h.gnu_long_link = true;
    hostile(vec![h], Some(LinkTargetEscapes));
}

#[test]
fn refuses_reserved_overlay_xattr() {
    let mut d = dir("d");
    d.pax.push((
        "SCHILY.xattr.trusted.overlay.redirect".into(),
        b"/etc".to_vec(),
    ));
    hostile(vec![d], Some(ReservedXattr));
}

#[test]
fn directory_replaces_symlink_pointing_outside() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap().to_owned();
    drop(s);
    let mut d = dir("d");
    d.mode = 0o777;
    let s = hostile(vec![symlink("d", &out), d, file("d/victim", "mine")], None);
    let m = fs::symlink_metadata(s.dest.join("d")).unwrap();
    assert!(m.is_dir());
    assert_eq!(fs::read_to_string(s.dest.join("d/victim")).unwrap(), "mine");
    assert_eq!(
        fs::read_to_string(s.outside.join("victim")).unwrap(),
        "original"
    );
}

#[test]
fn file_replaces_symlink_pointing_outside() {
    let s = sandbox();
    let victim = s.outside.join("victim").to_str().unwrap().to_owned();
    drop(s);
    let s = hostile(vec![symlink("f", &victim), file("f", "mine")], None);
    assert_eq!(fs::read_to_string(s.dest.join("f")).unwrap(), "mine");
}

#[test]
fn hardlink_to_outside_symlink_links_the_symlink_itself() {
    let s = sandbox();
    let victim = s.outside.join("victim").to_str().unwrap().to_owned();
    drop(s);
    let s = hostile(
        vec![
            symlink("s", &victim),
            hardlink("h", "s"),
            file("h", "overwrite"),
        ],
        None,
    );
    assert!(fs::symlink_metadata(s.dest.join("s"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(s.dest.join("h")).unwrap(), "overwrite");
}

#[test]
fn dangling_symlink_parent_is_refused() {
    hostile(
        vec![symlink("l", "nowhere"), file("l/x", "evil")],
        Some(Escapes),
    );
}

// ---- faithful unpacking ----

#[test]
fn unpacks_everything_faithfully() {
    let s = sandbox();
    let mut d = dir("etc");
    d.mode = 0o750;
    d.mtime = 1_000_000;
    let mut f = file("etc/conf", "hello");
    f.mode = 0o4755;
    f.uid = 1234;
    f.gid = 5678;
    f.mtime = 1_234_567;
    f.pax
        .push(("SCHILY.xattr.user.note".into(), b"kept".to_vec()));
    let mut c = e("dev/null", b'3');
    c.dev = (1, 3);
    c.mode = 0o666;
    let mut b = e("dev/loop0", b'4');
    b.dev = (7, 0);
    let fifo = e("run/fifo", b'6');
    let mut sl = symlink("bin", "usr/bin");
    sl.uid = 42;
    let mut paxowner = file("big-ids", "x");
    paxowner.pax.push(("uid".into(), b"3000000".to_vec()));
    paxowner.pax.push(("gid".into(), b"3000001".to_vec()));
    let long = format!("deep/{}/file", "n".repeat(150));
    let mut longf = file(&long, "long");
    longf.gnu_long_name = true;
    let stats = unpack(
        &s,
        &[
            d,
            f,
            hardlink("etc/conf-link", "etc/conf"),
            c,
            b,
            fifo,
            sl,
            file("usr/bin/tool", "t"),
            paxowner,
            longf,
            file("./dot/prefixed", "p"),
        ],
    )
    .unwrap();
    let root = &s.dest;
    let conf = fs::metadata(root.join("etc/conf")).unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/conf")).unwrap(), "hello");
    assert_eq!(conf.mode() & 0o7777, 0o4755);
    assert_eq!((conf.uid(), conf.gid()), (1234, 5678));
    assert_eq!(conf.mtime(), 1_234_567);
    assert_eq!(conf.nlink(), 2);
    assert_eq!(
        fs::metadata(root.join("etc/conf-link")).unwrap().ino(),
        conf.ino()
    );
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(root.join("etc/conf"), "user.note", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"kept");
    let etc = fs::metadata(root.join("etc")).unwrap();
    assert_eq!(etc.mode() & 0o7777, 0o750);
    assert_eq!(
        etc.mtime(),
        1_000_000,
        "directory mtime must be applied after its children"
    );
    let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    assert!(fs::symlink_metadata(root.join("dev/loop0"))
        .unwrap()
        .file_type()
        .is_block_device());
    assert!(fs::symlink_metadata(root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let bin = fs::symlink_metadata(root.join("bin")).unwrap();
    assert!(bin.file_type().is_symlink());
    assert_eq!(bin.uid(), 42);
    assert_eq!(
        fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    let big = fs::metadata(root.join("big-ids")).unwrap();
    assert_eq!((big.uid(), big.gid()), (3_000_000, 3_000_001));
    assert_eq!(fs::read_to_string(root.join(&long)).unwrap(), "long");
    assert_eq!(fs::read_to_string(root.join("dot/prefixed")).unwrap(), "p");
    assert_eq!(stats.size, 5 + 1 + 1 + 4 + 1);
    assert_eq!(stats.compression, Compression::None);
}

#[test]
fn whiteouts_become_overlay_markers() {
    let s = sandbox();
    unpack(
        &s,
        &[
            dir("a"),
            file("a/.wh.gone", ""),
            dir("b"),
            file("b/.wh..wh..opq", ""),
            file(".wh..wh.plnk", ""),
        ],
    )
    .unwrap();
    let w = fs::symlink_metadata(s.dest.join("a/gone")).unwrap();
    assert!(w.file_type().is_char_device());
    assert_eq!(w.rdev(), 0);
    assert!(!s.dest.join("a/.wh.gone").exists());
    let mut buf = [0u8; 4];
    let n = rustix::fs::getxattr(s.dest.join("b"), "trusted.overlay.opaque", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!s.dest.join(".wh..wh.plnk").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let s = sandbox();
    unpack(
        &s,
        &[
            dir("x"),
            file("x/inner", "1"),
            file("x", "now a file"),
            dir("y"),
            dir("y"),
        ],
    )
    .unwrap();
    assert_eq!(fs::read_to_string(s.dest.join("x")).unwrap(), "now a file");
    assert!(s.dest.join("y").is_dir());
}

#[test]
fn symlink_parent_inside_root_is_followed() {
    let s = sandbox();
    unpack(
        &s,
        &[
            dir("real"),
            symlink("alias", "real"),
            file("alias/f", "via link"),
        ],
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(s.dest.join("real/f")).unwrap(),
        "via link"
    );
}

#[test]
fn decompression_and_diff_id() {
    let plain = tar(&[file("a", "alpha"), dir("d")]);
    let diff_id = Digest::of(&plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    for (bytes, want) in [
        (&plain, Compression::None),
        (&gz, Compression::Gzip),
        (&zst, Compression::Zstd),
    ] {
        let s = sandbox();
        let opts = UnpackOptions {
            expected_diff_id: Some(diff_id.clone()),
            ..Default::default()
        };
        let st = unpack_layer(&bytes[..], &s.dest, &opts).unwrap();
        assert_eq!(st.compression, want);
        assert_eq!(st.diff_id, diff_id);
        assert_eq!(fs::read_to_string(s.dest.join("a")).unwrap(), "alpha");
    }
    let s = sandbox();
    let opts = UnpackOptions {
        expected_diff_id: Some(Digest::of(b"other")),
        ..Default::default()
    };
    assert!(matches!(
        unpack_layer(&plain[..], &s.dest, &opts),
        Err(UnpackError::DiffIdMismatch { .. })
    ));
}

#[test]
fn truncated_archive_is_an_error() {
    let s = sandbox();
    let plain = tar(&[file("a", &"z".repeat(5000))]);
    let r = unpack_layer(&plain[..1500], &s.dest, &UnpackOptions::default());
    assert!(matches!(r, Err(UnpackError::Archive(_))), "{r:?}");
}

#[test]
fn error_names_the_entry() {
    let s = sandbox();
    let err = unpack(&s, &[symlink("l", "/"), file("l/etc/shadow", "x")]).unwrap_err();
    assert!(err.to_string().contains("l/etc/shadow"), "{err}");
}
