//! Layers a build writes without running a container (`COPY`, `ADD`, `WORKDIR`): a list of
//! entries under absolute in-image paths, written as an uncompressed OCI layer tar, and the
//! merged view of an image's snapshots the sources of `COPY --from` are read from.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What goes into the layer at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir,
    /// A host file (its content is streamed in).
    File(PathBuf),
    Bytes(Vec<u8>),
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// In-image path, absolute and normalized (`/app/x`).
    pub path: String,
    pub source: Source,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// Normalizes an in-image path: absolute, no `.`/`..` (clamped at `/`), no trailing slash.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// Writes `entries` (plus directory entries for their missing parents, root-owned 0755) as a
/// tar into `out`. Later entries for the same path win.
pub fn write_tar(entries: &[Entry], out: &mut File) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut written: BTreeSet<String> = BTreeSet::new();
    let explicit: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    for e in entries {
        // Parents first, as unpackers expect.
        let mut parent = Path::new(&e.path).parent();
        let mut missing = Vec::new();
        while let Some(p) = parent {
            let s = p.to_string_lossy().into_owned();
            if s == "/" || written.contains(&s) || explicit.contains(s.as_str()) {
                break;
            }
            missing.push(s);
            parent = p.parent();
        }
        for dir in missing.into_iter().rev() {
            let d = Entry {
                path: dir.clone(),
                source: Source::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: e.mtime,
            };
            append(&mut b, &d)?;
            written.insert(dir);
        }
        append(&mut b, e)?;
        written.insert(e.path.clone());
    }
    b.finish()
}

fn append(b: &mut tar::Builder<&mut File>, e: &Entry) -> io::Result<()> {
    let name = e.path.trim_start_matches('/');
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode & 0o7777);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    match &e.source {
        Source::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{name}/"), io::empty())
        }
        Source::File(p) => {
            let f = File::open(p)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(f.metadata()?.len());
            b.append_data(&mut h, name, f)
        }
        Source::Bytes(bytes) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(bytes.len() as u64);
            b.append_data(&mut h, name, bytes.as_slice())
        }
        Source::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target)
        }
    }
}

/// Entries for a host path copied to `dest`: a file becomes one entry, a directory its whole
/// tree (the directory itself maps onto `dest`). `keep` filters relative paths (dockerignore).
pub fn entries_from_host(
    src: &Path,
    dest: &str,
    keep: &dyn Fn(&Path, bool) -> bool,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let entry = |path: String, source: Source, m: &fs::Metadata| Entry {
        path,
        source,
        mode: m.permissions().mode() & 0o7777,
        uid: u64::from(m.uid()),
        gid: u64::from(m.gid()),
        mtime: u64::try_from(m.mtime()).unwrap_or(0),
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src)?.to_string_lossy().into_owned();
        out.push(entry(clean(dest), Source::Symlink(target), &meta));
        return Ok(());
    }
    if meta.is_file() {
        out.push(entry(clean(dest), Source::File(src.to_owned()), &meta));
        return Ok(());
    }
    if meta.is_dir() {
        out.push(entry(clean(dest), Source::Dir, &meta));
        let mut names: Vec<_> = fs::read_dir(src)?.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for child in names {
            let p = child.path();
            let is_dir = child.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !keep(&p, is_dir) {
                continue;
            }
            let d = format!("{}/{}", clean(dest), child.file_name().to_string_lossy());
            entries_from_host(&p, &d, keep, out)?;
        }
    }
    Ok(())
}

/// A sha256 over what `entries` would write (paths, modes, owners, contents): the input part of
/// a COPY step's cache key. Mtimes are left out, as docker does.
pub fn digest_entries(entries: &[Entry]) -> io::Result<String> {
    let mut h = crate::digest::Hasher::new();
    for e in entries {
        h.update(e.path.as_bytes());
        h.update(format!("\0{:o}\0{}\0{}\0", e.mode, e.uid, e.gid).as_bytes());
        match &e.source {
            Source::Dir => h.update(b"d"),
            Source::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_bytes());
            }
            Source::Bytes(b) => {
                h.update(b"f");
                h.update(b);
            }
            Source::File(p) => {
                h.update(b"f");
                let mut f = File::open(p)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
        }
        h.update(b"\n");
    }
    Ok(h.finish().hex().to_owned())
}

/// The path inside an image whose snapshot dirs are `lowers` (bottom first): the topmost layer
/// holding it. Whiteouts hide what is below.
pub fn find_in_layers(lowers: &[PathBuf], path: &str) -> Option<PathBuf> {
    let rel = clean(path);
    let rel = rel.trim_start_matches('/');
    for dir in lowers.iter().rev() {
        let p = dir.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) => {
                // An overlay whiteout is a 0:0 character device.
                use std::os::unix::fs::FileTypeExt;
                if m.file_type().is_char_device() && m.rdev() == 0 {
                    return None;
                }
                return Some(p);
            }
            Err(_) => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean("app/./x/../y/"), "/app/y");
        assert_eq!(clean("/../../etc"), "/etc");
        assert_eq!(clean(""), "/");
    }

    #[test]
    fn tar_has_parents_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = tempfile::tempfile_in(dir.path()).unwrap();
        let entries = vec![Entry {
            path: "/a/b/c.txt".into(),
            source: Source::Bytes(b"hi".to_vec()),
            mode: 0o640,
            uid: 5,
            gid: 6,
            mtime: 1,
        }];
        write_tar(&entries, &mut f).unwrap();
        use std::io::Seek;
        f.seek(io::SeekFrom::Start(0)).unwrap();
        let mut a = tar::Archive::new(f);
        let names: Vec<(String, u32, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a/".to_string(), 0o755, 0),
                ("a/b/".to_string(), 0o755, 0),
                ("a/b/c.txt".to_string(), 0o640, 5)
            ]
        );
    }

    #[test]
    fn digest_ignores_mtime_but_not_content() {
        let e = |content: &[u8], mtime| Entry {
            path: "/x".into(),
            source: Source::Bytes(content.to_vec()),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
        };
        assert_eq!(
            digest_entries(&[e(b"a", 1)]).unwrap(),
            digest_entries(&[e(b"a", 2)]).unwrap()
        );
        assert_ne!(
            digest_entries(&[e(b"a", 1)]).unwrap(),
            digest_entries(&[e(b"b", 1)]).unwrap()
        );
    }
}
