//! Applying one layer tarball to an empty directory, producing an overlayfs-ready layer.
//!
//! Every filesystem call is made relative to a directory fd of the destination, and every parent
//! path is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel refuses any
//! resolution that would leave the destination (an absolute symlink, `..` above the top, a
//! `/proc` magic link), so no entry can write outside it, whatever its name, link target or the
//! symlinks created by earlier entries. On top of that, entry names and hard-link targets that are
//! absolute or contain `..` are refused outright, and the final component is never followed
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, existing entries are removed before being replaced).
//!
//! Layer whiteouts become what overlayfs reads: `.wh.NAME` a 0/0 character device `NAME`, and
//! `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;

use crate::digest::{Digest, HashingReader};

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    AbsolutePath,
    ParentComponent,
    /// Resolving the path would leave the destination (through a symlink or `..`).
    Escapes,
    /// A whiteout whose target is not a plain name.
    BadWhiteout,
    /// A hard link whose target is absolute, has `..`, or leaves the destination.
    LinkTargetEscapes,
    /// An xattr the engine reserves (`trusted.overlay.*` would steer overlayfs).
    ReservedXattr,
}

impl std::fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnsafeReason::AbsolutePath => "absolute path",
            UnsafeReason::ParentComponent => "path contains '..'",
            UnsafeReason::Escapes => "path resolves outside the layer directory",
            UnsafeReason::BadWhiteout => "whiteout names no plain file",
            UnsafeReason::LinkTargetEscapes => "hard link target is outside the layer",
            UnsafeReason::ReservedXattr => "reserved overlayfs xattr",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refusing layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: UnsafeReason },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Entry {
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("reading layer archive: {0}")]
    Archive(#[source] io::Error),
    #[error("opening layer destination {path}: {source}")]
    Destination { path: String, source: io::Error },
    #[error("layer content digest mismatch: expected diff id {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Looks at the first bytes to tell gzip, zstd and plain tar apart, and returns a decoder.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(256 * 1024, reader);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // MultiGzDecoder: some tools write a layer as several concatenated gzip members.
        Ok((
            Compression::Gzip,
            Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        ))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok((
            Compression::Zstd,
            Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
        ))
    } else {
        Ok((Compression::None, Box::new(br)))
    }
}

/// What unpacking found.
#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream (the layer's diff id).
    pub diff_id: Digest,
    /// Sum of regular file sizes (what docker reports as layer size).
    pub size: u64,
    pub compression: Compression,
}

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Apply uid/gid from the archive (needs root); default: when running as root.
    pub preserve_owner: bool,
    /// Verify the uncompressed stream against this diff id.
    pub expected_diff_id: Option<Digest>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            preserve_owner: rustix::process::geteuid().is_root(),
            expected_diff_id: None,
        }
    }
}

/// Unpacks a (possibly compressed) layer tarball into the existing directory `dest`.
pub fn unpack_layer(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Destination {
        path: dest.display().to_string(),
        source: e.into(),
    })?;
    let (compression, plain) = decompress(reader).map_err(UnpackError::Archive)?;
    let hashing = HashingReader::new(plain);
    let mut archive = tar::Archive::new(hashing);
    let mut applier = Applier {
        root: root.as_fd(),
        opts,
        size: 0,
        dir_times: Vec::new(),
        buf: vec![0u8; 256 * 1024],
    };
    for entry in archive.entries().map_err(UnpackError::Archive)? {
        let mut entry = entry.map_err(UnpackError::Archive)?;
        applier.apply(&mut entry)?;
    }
    applier.finish_dir_times()?;
    let size = applier.size;
    let (diff_id, _) = archive
        .into_inner()
        .finish()
        .map_err(UnpackError::Archive)?;
    if let Some(expected) = &opts.expected_diff_id {
        if *expected != diff_id {
            return Err(UnpackError::DiffIdMismatch {
                expected: expected.clone(),
                actual: diff_id,
            });
        }
    }
    Ok(UnpackStats {
        diff_id,
        size,
        compression,
    })
}

/// Splits an entry name into plain components, refusing absolute names and `..`.
/// `./a//b/` gives `[a, b]`; `./` gives `[]` (the destination itself).
fn components(raw: &[u8]) -> Result<Vec<&OsStr>, UnsafeReason> {
    if raw.first() == Some(&b'/') {
        return Err(UnsafeReason::AbsolutePath);
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(UnsafeReason::ParentComponent),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

fn join(comps: &[&OsStr]) -> OsString {
    let mut p = OsString::from(".");
    for c in comps {
        p.push("/");
        p.push(c);
    }
    p
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Applier<'a> {
    root: BorrowedFd<'a>,
    opts: &'a UnpackOptions,
    size: u64,
    dir_times: Vec<(Vec<OsString>, i64, String)>,
    /// Copy buffer reused for every file: large, so big files take few write(2) calls.
    buf: Vec<u8>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        let unsafe_ = |reason| UnpackError::Unsafe {
            entry: name.clone(),
            reason,
        };
        let comps = components(&raw_name).map_err(unsafe_)?;
        let meta = read_meta(entry, &name)?;

        let Some((last, parents)) = comps.split_last() else {
            // The layer's root directory itself.
            if kind.is_dir() {
                self.set_fd_meta(self.root, &meta, &name)?;
                self.dir_times.push((Vec::new(), meta.mtime, name));
            }
            return Ok(());
        };
        let last_bytes = last.as_bytes();

        // Whiteouts: decided by name, whatever the entry type says.
        if let Some(target) = last_bytes.strip_prefix(WHITEOUT_PREFIX) {
            let parent = self.open_dir(parents, true, &name)?;
            if last_bytes == OPAQUE_MARKER {
                return rfs::fsetxattr(&parent, OVERLAY_OPAQUE, b"y", XattrFlags::empty())
                    .map_err(|e| entry_err(&name, "set opaque xattr", e));
            }
            if target.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are aufs bookkeeping (e.g. `.wh..wh.plnk`), meaningless here.
                return Ok(());
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(unsafe_(UnsafeReason::BadWhiteout));
            }
            let target = OsStr::from_bytes(target);
            self.remove_existing(&parent, target, &name)?;
            return rfs::mknodat(
                &parent,
                target,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|e| entry_err(&name, "create whiteout device", e));
        }

        let parent = self.open_dir(parents, true, &name)?;
        match kind {
            tar::EntryType::Directory => {
                let existing = rfs::statat(&parent, *last, AtFlags::SYMLINK_NOFOLLOW);
                let is_dir = matches!(&existing, Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory);
                if !is_dir {
                    if existing.is_ok() {
                        self.remove_existing(&parent, last, &name)?;
                    }
                    rfs::mkdirat(&parent, *last, Mode::from_raw_mode(0o700))
                        .map_err(|e| entry_err(&name, "mkdir", e))?;
                }
                let fd = rfs::openat(
                    &parent,
                    *last,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| entry_err(&name, "open directory", e))?;
                self.set_fd_meta(fd.as_fd(), &meta, &name)?;
                let owned: Vec<OsString> = comps.iter().map(|c| c.to_os_string()).collect();
                self.dir_times.push((owned, meta.mtime, name));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.remove_existing(&parent, last, &name)?;
                let fd = rfs::openat(
                    &parent,
                    *last,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| entry_err(&name, "create file", e))?;
                let mut file = std::fs::File::from(fd);
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(UnpackError::Archive(e)),
                    };
                    file.write_all(&self.buf[..n])
                        .map_err(|e| entry_err(&name, "write file", e))?;
                    self.size += n as u64;
                }
                self.set_fd_meta(file.as_fd(), &meta, &name)?;
                set_fd_time(file.as_fd(), meta.mtime)
                    .map_err(|e| entry_err(&name, "set mtime", e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                self.remove_existing(&parent, last, &name)?;
                // The link text is stored, never followed by us; where it points is the image's
                // business inside the container's root.
                rfs::symlinkat(OsStr::from_bytes(&target), &parent, *last)
                    .map_err(|e| entry_err(&name, "symlink", e))?;
                self.set_at_meta(&parent, last, &meta, &name, true)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let tcomps =
                    components(&target).map_err(|_| unsafe_(UnsafeReason::LinkTargetEscapes))?;
                let Some((tlast, tparents)) = tcomps.split_last() else {
                    return Err(unsafe_(UnsafeReason::LinkTargetEscapes));
                };
                let tparent = self.open_dir(tparents, false, &name).map_err(|e| match e {
                    UnpackError::Unsafe { entry, .. } => UnpackError::Unsafe {
                        entry,
                        reason: UnsafeReason::LinkTargetEscapes,
                    },
                    other => other,
                })?;
                if rfs::statat(&tparent, *tlast, AtFlags::SYMLINK_NOFOLLOW).is_ok()
                    && same_entry(&tparent, tlast, &parent, last)
                {
                    return Ok(());
                }
                self.remove_existing(&parent, last, &name)?;
                // Flags 0: link the target entry itself, never what a symlink there points at.
                rfs::linkat(&tparent, *tlast, &parent, *last, AtFlags::empty())
                    .map_err(|e| entry_err(&name, "hard link", e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                self.remove_existing(&parent, last, &name)?;
                rfs::mknodat(
                    &parent,
                    *last,
                    ft,
                    Mode::from_raw_mode(0o600),
                    rfs::makedev(major, minor),
                )
                .map_err(|e| entry_err(&name, "mknod", e))?;
                self.set_at_meta(&parent, last, &meta, &name, false)?;
            }
            other => {
                tracing::warn!(entry = %name, kind = ?other, "skipping unsupported layer entry type");
            }
        }
        Ok(())
    }

    /// Opens (optionally creating) the directory at `comps`, never leaving the destination.
    fn open_dir(&self, comps: &[&OsStr], create: bool, name: &str) -> Result<OwnedFd, UnpackError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rfs::openat2(self.root, join(comps), flags, Mode::empty(), RESOLVE) {
            Ok(fd) => return Ok(fd),
            Err(Errno::XDEV) | Err(Errno::LOOP) => {
                return Err(UnpackError::Unsafe {
                    entry: name.to_owned(),
                    reason: UnsafeReason::Escapes,
                })
            }
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(entry_err(name, "open parent directory", e)),
        }
        // Some parents are missing: walk down, creating them (tar does not promise a directory
        // entry before its children). Each step is resolved from the root again, beneath it.
        for i in 1..=comps.len() {
            match rfs::openat2(self.root, join(&comps[..i]), flags, Mode::empty(), RESOLVE) {
                Ok(_) => continue,
                Err(Errno::XDEV) | Err(Errno::LOOP) => {
                    return Err(UnpackError::Unsafe {
                        entry: name.to_owned(),
                        reason: UnsafeReason::Escapes,
                    })
                }
                Err(Errno::NOENT) => {
                    let up = rfs::openat2(
                        self.root,
                        join(&comps[..i - 1]),
                        flags,
                        Mode::empty(),
                        RESOLVE,
                    )
                    .map_err(|e| entry_err(name, "open parent directory", e))?;
                    match rfs::mkdirat(&up, comps[i - 1], Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        // A dangling symlink sits there: we will not create through it.
                        Err(Errno::EXIST) => {
                            return Err(UnpackError::Unsafe {
                                entry: name.to_owned(),
                                reason: UnsafeReason::Escapes,
                            })
                        }
                        Err(e) => return Err(entry_err(name, "create parent directory", e)),
                    }
                }
                Err(e) => return Err(entry_err(name, "open parent directory", e)),
            }
        }
        rfs::openat2(self.root, join(comps), flags, Mode::empty(), RESOLVE)
            .map_err(|e| entry_err(name, "open parent directory", e))
    }

    /// Removes whatever is at `parent/name` (a directory recursively), without following links.
    fn remove_existing(
        &self,
        parent: &OwnedFd,
        last: &OsStr,
        name: &str,
    ) -> Result<(), UnpackError> {
        match rfs::statat(parent, last, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(entry_err(name, "stat existing", e)),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                remove_tree_at(parent.as_fd(), last)
                    .map_err(|e| entry_err(name, "remove existing directory", e))
            }
            Ok(_) => rfs::unlinkat(parent, last, AtFlags::empty())
                .map_err(|e| entry_err(name, "remove existing", e)),
        }
    }

    fn set_fd_meta(&self, fd: BorrowedFd<'_>, meta: &Meta, name: &str) -> Result<(), UnpackError> {
        if self.opts.preserve_owner {
            rfs::fchown(fd, Some(uid(meta.uid, name)?), Some(gid(meta.gid, name)?))
                .map_err(|e| entry_err(name, "chown", e))?;
        }
        // chmod after chown: chown clears setuid/setgid bits.
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777))
            .map_err(|e| entry_err(name, "chmod", e))?;
        for (k, v) in &meta.xattrs {
            rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty())
                .map_err(|e| entry_err(name, "set xattr", e))?;
        }
        Ok(())
    }

    /// Metadata for entries that cannot be opened (symlinks, device nodes, fifos).
    fn set_at_meta(
        &self,
        parent: &OwnedFd,
        last: &OsStr,
        meta: &Meta,
        name: &str,
        symlink: bool,
    ) -> Result<(), UnpackError> {
        if self.opts.preserve_owner {
            rfs::chownat(
                parent,
                last,
                Some(uid(meta.uid, name)?),
                Some(gid(meta.gid, name)?),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| entry_err(name, "chown", e))?;
        }
        if !symlink {
            // The entry was just created by mknod, so this name is not a symlink.
            rfs::chmodat(
                parent,
                last,
                Mode::from_raw_mode(meta.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|e| entry_err(name, "chmod", e))?;
        }
        if !meta.xattrs.is_empty() {
            // lsetxattr through the parent's fd path: the parent is already resolved, and the
            // final component is not followed.
            let mut p = OsString::from(format!("/proc/self/fd/{}/", fd_num(parent)));
            p.push(last);
            for (k, v) in &meta.xattrs {
                rfs::lsetxattr(Path::new(&p), k.as_str(), v, XattrFlags::empty())
                    .map_err(|e| entry_err(name, "set xattr", e))?;
            }
        }
        rfs::utimensat(parent, last, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| entry_err(name, "set mtime", e))
    }

    /// Directory mtimes go last: creating children inside a directory bumps its mtime.
    fn finish_dir_times(&mut self) -> Result<(), UnpackError> {
        for (comps, mtime, name) in self.dir_times.drain(..).rev() {
            let refs: Vec<&OsStr> = comps.iter().map(|c| c.as_os_str()).collect();
            let fd = match rfs::openat2(
                self.root,
                join(&refs),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                Ok(fd) => fd,
                // Replaced or removed by a later entry: nothing to stamp.
                Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => continue,
                Err(e) => return Err(entry_err(&name, "reopen directory", e)),
            };
            set_fd_time(fd.as_fd(), mtime).map_err(|e| entry_err(&name, "set mtime", e))?;
        }
        Ok(())
    }
}

fn same_entry(a: &OwnedFd, an: &OsStr, b: &OwnedFd, bn: &OsStr) -> bool {
    match (
        rfs::statat(a, an, AtFlags::SYMLINK_NOFOLLOW),
        rfs::statat(b, bn, AtFlags::SYMLINK_NOFOLLOW),
    ) {
        (Ok(x), Ok(y)) => x.st_ino == y.st_ino && x.st_dev == y.st_dev,
        _ => false,
    }
}

fn fd_num(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

fn uid(raw: u64, name: &str) -> Result<Uid, UnpackError> {
    match u32::try_from(raw) {
        Ok(v) if v != u32::MAX => Ok(Uid::from_raw(v)),
        _ => Err(entry_err(name, "owner", Errno::INVAL)),
    }
}

fn gid(raw: u64, name: &str) -> Result<Gid, UnpackError> {
    match u32::try_from(raw) {
        Ok(v) if v != u32::MAX => Ok(Gid::from_raw(v)),
        _ => Err(entry_err(name, "group", Errno::INVAL)),
    }
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn set_fd_time(fd: BorrowedFd<'_>, mtime: i64) -> Result<(), Errno> {
    rfs::futimens(fd, &times(mtime))
}

fn entry_err(name: &str, op: &'static str, e: impl Into<io::Error>) -> UnpackError {
    UnpackError::Entry {
        entry: name.to_owned(),
        op,
        source: e.into(),
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, UnpackError> {
    let h = entry.header();
    // Empty numeric fields read as 0, as Go's archive/tar (which wrote most layers) does.
    let mut meta = Meta {
        mode: h.mode().unwrap_or(0o644),
        uid: h.uid().unwrap_or(0),
        gid: h.gid().unwrap_or(0),
        mtime: h
            .mtime()
            .ok()
            .and_then(|m| i64::try_from(m).ok())
            .unwrap_or(0),
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Archive)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Archive)?;
            let Ok(key) = ext.key() else { continue };
            let val = ext.value_bytes();
            let num = || {
                std::str::from_utf8(val)
                    .ok()
                    .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
            };
            match key {
                "uid" => {
                    meta.uid = num()
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(meta.uid)
                }
                "gid" => {
                    meta.gid = num()
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(meta.gid)
                }
                "mtime" => meta.mtime = num().unwrap_or(meta.mtime),
                k => {
                    if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                        if x.starts_with("trusted.overlay.") {
                            return Err(UnpackError::Unsafe {
                                entry: name.to_owned(),
                                reason: UnsafeReason::ReservedXattr,
                            });
                        }
                        meta.xattrs.push((x.to_owned(), val.to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// Recursively removes `name` inside `dir`, never following symlinks.
fn remove_tree_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    {
        let mut rd = rfs::Dir::read_from(&fd)?;
        while let Some(ent) = rd.read() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            children.push((
                OsStr::from_bytes(n).to_os_string(),
                ent.file_type() == FileType::Directory,
            ));
        }
    }
    for (child, is_dir) in children {
        if is_dir {
            remove_tree_at(fd.as_fd(), &child)?;
        } else {
            match rfs::unlinkat(&fd, &child, AtFlags::empty()) {
                Err(Errno::ISDIR) => remove_tree_at(fd.as_fd(), &child)?,
                r => r?,
            }
        }
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests;
