//! `container cp`: copying between the host and a container's filesystem as the container sees
//! it — the overlay root plus the named volumes, bind mounts and managed `/etc` files mounted
//! into it (and, while it runs, its tmpfs mounts), as docker's `cp` does. `export` and `commit`
//! still see only the overlay, as docker's do.
//!
//! Where container paths are looked up:
//! - **running** (or paused): `/proc/<init pid>/root`, the root of the container's own mount
//!   namespace, so every mount is seen as the container sees it. The init's root must be the
//!   container's overlay (same device and inode), so a recycled pid is never used.
//! - **not running**: the overlay (mounted for the call if needed) with the volumes, bind mounts
//!   and managed `/etc` files bind-mounted onto it as a start would mount them, in a private
//!   mount namespace of a helper thread: nothing shows on the host and nothing is left mounted,
//!   even after a crash. tmpfs mounts hold nothing while the container is down and are left out;
//!   a read-only root or mount stays read-only.
//!
//! Every container path is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from
//! that root: the kernel resolves `..` and absolute symlinks against the container's root, so no
//! symlink in the container can lead the copy out of it. Trees are then walked one name at a
//! time relative to directory fds with `O_NOFOLLOW`: a symlink met on the way is copied as a
//! symlink, never followed, whatever a running container changes meanwhile. Directories on
//! kernel filesystems (`/proc`, `/sys`, cgroupfs, …) are copied empty.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps,
    Uid,
};
use rustix::io::Errno;

use super::record::{MountKind, MountSpec, Status};
use super::rootfs::Overlay;
use super::store::{io_err, Container};
use super::{ContainerError, Engine};

/// How `cp` copies.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-L`: a symlink named as the source is followed (the copy keeps the link's name).
    pub follow_link: bool,
    /// `-a`: keep the source's uid/gid; otherwise copies out belong to the caller and copies in
    /// to root.
    pub archive: bool,
}

/// `cp CONTAINER:path dest`.
pub fn copy_out(
    engine: &Engine,
    c: &Container,
    path: &str,
    dest: &Path,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let req = Request::parse(path.as_bytes());
    let name = c.config.name.as_str();
    with_view(engine, c, |root| {
        let node = Node::resolve(root, path, opts.follow_link).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContainerError::Invalid(format!(
                    "Could not find the file {path} in container {name}"
                ))
            } else {
                io_err(&shown(name, path))(e)
            }
        })?;
        if req.dir_only && !node.is_dir() {
            return Err(ContainerError::Invalid(format!(
                "{path} in container {name} is not a directory"
            )));
        }
        let label = shown(name, path);
        match host_destination(&req, node.is_dir(), dest)? {
            Destination::Contents => copy_children_out(&node, dest, &label, opts),
            Destination::At(target) => copy_node_out(&node, &target, &label, opts),
        }
    })
}

/// `cp src CONTAINER:path`.
pub fn copy_in(
    engine: &Engine,
    c: &Container,
    src: &Path,
    path: &str,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let req = Request::parse(src.as_os_str().as_bytes());
    let resolved = if opts.follow_link {
        fs::canonicalize(src).map_err(io_err(src))?
    } else {
        src.to_owned()
    };
    let md = match fs::symlink_metadata(&resolved) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ContainerError::Invalid(format!(
                "no such file or directory: {}",
                src.display()
            )))
        }
        Err(e) => return Err(io_err(src)(e)),
    };
    if req.dir_only && !md.is_dir() {
        return Err(ContainerError::Invalid(format!(
            "{} is not a directory",
            src.display()
        )));
    }
    let name = c.config.name.as_str();
    with_view(engine, c, |root| {
        let label = shown(name, path);
        match container_destination(root, path, &req, md.is_dir(), &label)? {
            Placement::Contents(dir) => copy_children_in(dir.as_fd(), &resolved, &label, opts),
            Placement::At(parent, base, here) => {
                copy_node_in(parent.as_fd(), &base, &resolved, &md, &here, opts)
            }
        }
    })
}

/// `name:path`, how errors name a place in the container.
fn shown(name: &str, path: &str) -> PathBuf {
    PathBuf::from(format!("{name}:{path}"))
}

// ---------------------------------------------------------------- the container's root

/// Runs `f` with an fd of the container's root as `cp` sees it (see the module docs), under the
/// container's lock so that no start, stop or unmount happens in between.
fn with_view<T: Send>(
    engine: &Engine,
    c: &Container,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<T, ContainerError> + Send,
) -> Result<T, ContainerError> {
    let _lock = engine.store.lock(c.id())?;
    let c = engine.store.load(c.id())?;
    if c.state.is_active() {
        if let Some(root) = init_root(&c) {
            return f(root.as_fd());
        }
        // Between two runs of a restart policy no process runs; the lock keeps the next one
        // from starting until the copy is done.
        if c.state.status != Status::Restarting {
            return Err(ContainerError::Runtime(format!(
                "cannot reach the root of running container {}",
                c.config.name
            )));
        }
    }
    with_staged_view(engine, &c, f)
}

/// `/proc/<pid>/root` of the container's init, if that is still this container's root.
fn init_root(c: &Container) -> Option<OwnedFd> {
    if c.state.pid <= 0 {
        return None;
    }
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = rfs::open(format!("/proc/{}/root", c.state.pid), flags, Mode::empty()).ok()?;
    let seen = rfs::fstat(&root).ok()?;
    let overlay = rfs::stat(Overlay::new(&c.dir).merged()).ok()?;
    (seen.st_dev == overlay.st_dev && seen.st_ino == overlay.st_ino).then_some(root)
}

/// A source mounted onto the overlay for a stopped container's view.
#[derive(Debug)]
struct Bind {
    source: PathBuf,
    target: String,
    read_only: bool,
}

fn with_staged_view<T: Send>(
    engine: &Engine,
    c: &Container,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<T, ContainerError> + Send,
) -> Result<T, ContainerError> {
    let overlay = Overlay::new(&c.dir);
    let mounted_here = !overlay.is_mounted();
    if mounted_here {
        overlay.mount(&c.config.lowerdirs)?;
    }
    let rootfs = overlay.merged();
    let r = binds(engine, c, &rootfs).and_then(|binds| {
        in_private_mounts(|| {
            let root = open_root(&rootfs, c.config.read_only)?;
            for b in &binds {
                bind(root.as_fd(), b)?;
            }
            f(root.as_fd())
        })
    });
    if mounted_here && !c.state.is_active() {
        let u = overlay.unmount();
        if r.is_ok() {
            u?;
        }
    }
    r
}

/// What a start would mount, in its order: the managed `/etc` files unless a mount replaces
/// them, then the mounts shallowest first. Volumes are made ready here, in the host's
/// namespace, exactly as a start does (typed volumes stay mounted, an unused volume is filled
/// from the image); bind sources that do not exist are left out rather than created.
fn binds(engine: &Engine, c: &Container, rootfs: &Path) -> Result<Vec<Bind>, ContainerError> {
    let mut out = Vec::new();
    for f in ["hostname", "hosts", "resolv.conf"] {
        let target = format!("/etc/{f}");
        let source = c.dir.join(f);
        if c.config.mounts.iter().all(|m| m.target != target) && source.exists() {
            out.push(Bind {
                source,
                target,
                read_only: c.config.read_only,
            });
        }
    }
    let mut mounts: Vec<&MountSpec> = c.config.mounts.iter().collect();
    mounts.sort_by_key(|m| m.target.matches('/').count());
    for m in mounts {
        let source = match m.kind {
            MountKind::Tmpfs => continue,
            MountKind::Bind if !Path::new(&m.source).exists() => continue,
            MountKind::Bind => PathBuf::from(&m.source),
            MountKind::Volume => engine.volume_data(m, rootfs)?,
        };
        out.push(Bind {
            source,
            target: m.target.clone(),
            read_only: m.read_only,
        });
    }
    Ok(out)
}

/// Runs `f` on a thread with a mount namespace of its own whose mounts never propagate to the
/// host; its mounts go away with the thread.
fn in_private_mounts<T: Send>(
    f: impl FnOnce() -> Result<T, ContainerError> + Send,
) -> Result<T, ContainerError> {
    let helper_err = |what: String| ContainerError::Mount {
        target: PathBuf::from("/"),
        reason: what,
    };
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("cp".into())
            .spawn_scoped(s, || {
                unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
                    .map_err(|e| helper_err(format!("unshare(CLONE_NEWNS): {e}")))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_SLAVE,
                    None::<&str>,
                )
                .map_err(|e| helper_err(format!("making / a slave mount: {e}")))?;
                f()
            })
            .map_err(|e| helper_err(format!("spawning the copy thread: {e}")))?;
        handle
            .join()
            .unwrap_or_else(|_| Err(helper_err("the copy thread panicked".into())))
    })
}

/// The overlay's root; read-only (a read-only bind of itself) for a `--read-only` container.
fn open_root(rootfs: &Path, read_only: bool) -> Result<OwnedFd, ContainerError> {
    let mount_err = |reason: String| ContainerError::Mount {
        target: rootfs.to_owned(),
        reason,
    };
    if read_only {
        mount(
            Some(rootfs),
            rootfs,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err(format!("bind: {e}")))?;
        remount_read_only(rootfs).map_err(|e| mount_err(format!("read-only: {e}")))?;
    }
    rfs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(rootfs)(e.into()))
}

fn remount_read_only(target: &Path) -> nix::Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
}

/// Bind-mounts `b.source` onto its target inside `root`, creating a missing target as a start
/// would. The target is resolved in the root and mounted through its fd, so a symlink in the
/// container can only point the mount elsewhere inside the container.
fn bind(root: BorrowedFd<'_>, b: &Bind) -> Result<(), ContainerError> {
    let mount_err = |reason: String| ContainerError::Mount {
        target: PathBuf::from(&b.target),
        reason,
    };
    let is_dir = fs::metadata(&b.source).map_err(io_err(&b.source))?.is_dir();
    let target = ensure_target(root, &b.target, is_dir).map_err(|e| mount_err(e.to_string()))?;
    mount(
        Some(&b.source),
        &fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err(format!("bind {}: {e}", b.source.display())))?;
    if b.read_only {
        // Looked up again: the fd above names the directory under the new mount.
        let top = resolve_in_root(root, &b.target, true).map_err(|e| mount_err(e.to_string()))?;
        remount_read_only(&fd_path(&top)).map_err(|e| mount_err(format!("read-only: {e}")))?;
    }
    Ok(())
}

/// The mount target `path` in `root`, created (parents as directories, the last as a directory
/// or an empty file) when missing. A dangling symlink on the way is followed, inside the root,
/// as the runtime does when it mounts.
fn ensure_target(root: BorrowedFd<'_>, path: &str, dir: bool) -> io::Result<OwnedFd> {
    let mut path = PathBuf::from(path);
    for _ in 0..MAX_STEPS {
        match resolve_in_root(root, &path, true) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            other => return other,
        }
        let names = lexical(&path);
        let missing = first_missing(root, &names)?;
        let parent = resolve_in_root(root, joined(&names[..missing]), true)?;
        let name = names[missing].as_os_str();
        match rfs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                let target = rfs::readlinkat(&parent, name, Vec::new())?;
                path = follow_once(&joined(&names[..=missing]), target.to_bytes());
                path.extend(&names[missing + 1..]);
            }
            // Made by someone else meanwhile: look it up again.
            Ok(_) => {}
            Err(Errno::NOENT) if dir || missing + 1 < names.len() => {
                rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o755))?
            }
            Err(Errno::NOENT) => drop(rfs::openat(
                &parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )?),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno::LOOP.into())
}

/// Bounds the symlinks followed plus the directories made for one mount target.
const MAX_STEPS: usize = 256;

/// The index of the first of `names` that does not exist (all but the last must be there to
/// look further).
fn first_missing(root: BorrowedFd<'_>, names: &[OsString]) -> io::Result<usize> {
    for i in 0..names.len() {
        match resolve_in_root(root, joined(&names[..=i]), true) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(i),
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EXIST.into())
}

/// `/a/b` from `[a, b]`.
fn joined(names: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(names);
    p
}

/// The directory holding the last name of `path` (resolved in `root`).
fn resolve_parent(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let names = lexical(path);
    resolve_in_root(root, joined(&names[..names.len().saturating_sub(1)]), true)
}

/// `path` (absolute in the container, or relative to its root) opened as an `O_PATH` fd with
/// `root` as the root for `..` and absolute symlinks; the last component is followed with
/// `follow`.
pub(crate) fn resolve_in_root(
    root: BorrowedFd<'_>,
    path: impl AsRef<Path>,
    follow: bool,
) -> io::Result<OwnedFd> {
    let bytes = path.as_ref().as_os_str().as_bytes();
    let start = bytes.iter().position(|b| *b != b'/').unwrap_or(bytes.len());
    let rel = match &bytes[start..] {
        [] => OsStr::new("."),
        rest => OsStr::from_bytes(rest),
    };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN: a rename elsewhere raced the lookup; the kernel asks for a retry.
    let mut tries = 0;
    loop {
        match rfs::openat2(root, rel, flags, Mode::empty(), how) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(Into::into),
        }
    }
}

/// `/proc/self/fd/N`: the path of exactly what `fd` names, for calls that take no fd.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

// ---------------------------------------------------------------- paths as cp reads them

/// What a `cp` path says beyond the place it names (docker's rules).
#[derive(Debug, PartialEq)]
struct Request {
    /// Ends in `/.`: the contents of a directory, not the directory itself.
    contents: bool,
    /// Ends in `/`: must be a directory.
    dir_only: bool,
    /// The name the copy gets (`None` for the root).
    base: Option<OsString>,
}

impl Request {
    fn parse(p: &[u8]) -> Request {
        let names = lexical(OsStr::from_bytes(p));
        Request {
            contents: p == b"." || p.ends_with(b"/."),
            dir_only: p.ends_with(b"/"),
            base: names.last().cloned(),
        }
    }

    /// Whether a directory source is copied as its contents.
    fn as_contents(&self) -> bool {
        self.contents || self.base.is_none()
    }
}

/// The names of `p` with `.` dropped and `..` applied, as docker cleans a path.
fn lexical(p: impl AsRef<Path>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in p.as_ref().components() {
        match c {
            Component::Normal(n) => out.push(n.to_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------- copying out

enum Destination {
    /// Copy a directory's entries into the destination directory.
    Contents,
    At(PathBuf),
}

/// Where on the host a source goes (docker's rules): into an existing directory under its
/// name, over an existing file, or as a new entry whose parent must exist.
fn host_destination(
    req: &Request,
    src_is_dir: bool,
    dest: &Path,
) -> Result<Destination, ContainerError> {
    match fs::metadata(dest) {
        Ok(md) if md.is_dir() => Ok(match &req.base {
            _ if src_is_dir && req.as_contents() => Destination::Contents,
            Some(base) => Destination::At(dest.join(base)),
            None => Destination::Contents,
        }),
        Ok(_) if src_is_dir => Err(ContainerError::Invalid(format!(
            "cannot overwrite non-directory {} with a directory",
            dest.display()
        ))),
        Ok(_) => Ok(Destination::At(dest.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dest.as_os_str().as_bytes().ends_with(b"/") && !src_is_dir {
                return Err(ContainerError::Invalid(format!(
                    "destination directory {} does not exist",
                    dest.display()
                )));
            }
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(ContainerError::Invalid(format!(
                    "no such directory: {}",
                    parent.display()
                )));
            }
            Ok(Destination::At(dest.to_owned()))
        }
        Err(e) => Err(io_err(dest)(e)),
    }
}

/// An entry of the container being copied: an `O_PATH` fd and what it is.
struct Node {
    fd: OwnedFd,
    st: Stat,
}

impl Node {
    fn resolve(root: BorrowedFd<'_>, path: impl AsRef<Path>, follow: bool) -> io::Result<Node> {
        Node::from_fd(resolve_in_root(root, path, follow)?)
    }

    fn child(dir: &Node, name: &CStr) -> io::Result<Node> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Node::from_fd(rfs::openat(&dir.fd, name, flags, Mode::empty())?)
    }

    fn from_fd(fd: OwnedFd) -> io::Result<Node> {
        let st = rfs::fstat(&fd)?;
        Ok(Node { fd, st })
    }

    fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.st.st_mode)
    }

    fn is_dir(&self) -> bool {
        self.kind() == FileType::Directory
    }

    /// The file opened for reading; the `O_PATH` fd pins the inode, so this is the file that
    /// was looked up, whatever was renamed since.
    fn open_read(&self) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
        Ok(File::from(rfs::open(
            fd_path(&self.fd),
            flags,
            Mode::empty(),
        )?))
    }
}

/// Container entry `node` as host path `host`; `label` names it in errors.
fn copy_node_out(
    node: &Node,
    host: &Path,
    label: &Path,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    match node.kind() {
        FileType::Directory => {
            host_dir(host)?;
            copy_children_out(node, host, label, opts)?;
        }
        FileType::RegularFile => {
            let mut from = node.open_read().map_err(io_err(label))?;
            remove_host_link(host).map_err(io_err(host))?;
            let mut to = File::create(host).map_err(io_err(host))?;
            io::copy(&mut from, &mut to).map_err(io_err(host))?;
        }
        FileType::Symlink => {
            let target =
                rfs::readlinkat(&node.fd, c"", Vec::new()).map_err(|e| io_err(label)(e.into()))?;
            remove_host_non_dir(host).map_err(io_err(host))?;
            std::os::unix::fs::symlink(OsStr::from_bytes(target.to_bytes()), host)
                .map_err(io_err(host))?;
        }
        kind @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
            remove_host_non_dir(host).map_err(io_err(host))?;
            let mode = Mode::from_raw_mode(node.st.st_mode & 0o7777);
            rfs::mknodat(rfs::CWD, host, kind, mode, node.st.st_rdev)
                .map_err(|e| io_err(host)(e.into()))?;
        }
        // Sockets (and anything unknown) cannot be copied, as with tar.
        _ => return Ok(()),
    }
    set_host_meta(host, &node.st, node.kind(), opts).map_err(io_err(host))
}

/// A host directory to copy into: an existing one is merged into.
fn host_dir(host: &Path) -> Result<(), ContainerError> {
    match fs::symlink_metadata(host) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => Err(ContainerError::Invalid(format!(
            "cannot overwrite non-directory {} with a directory",
            host.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(host).map_err(io_err(host)),
        Err(e) => Err(io_err(host)(e)),
    }
}

/// The entries of directory `dir` into the host directory `host`. A kernel filesystem's
/// directory (`/proc`, `/sys`, …) is copied without its entries.
fn copy_children_out(
    dir: &Node,
    host: &Path,
    label: &Path,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    if on_kernel_fs(dir.fd.as_fd()) {
        return Ok(());
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let entries = rfs::openat(&dir.fd, c".", flags, Mode::empty())
        .and_then(rfs::Dir::new)
        .map_err(|e| io_err(label)(e.into()))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(label)(e.into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let os = OsStr::from_bytes(name.to_bytes());
        let child_label = label.join(os);
        let child = match Node::child(dir, name) {
            Ok(n) => n,
            // Removed since the directory was read (a running container).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&child_label)(e)),
        };
        copy_node_out(&child, &host.join(os), &child_label, opts)?;
    }
    Ok(())
}

/// Magic numbers of filesystems whose directories are the kernel's, not files to copy.
const KERNEL_FS: [u64; 11] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x1cd1,      // devpts
    0x1980_0202, // mqueue
    0x7363_6673, // securityfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0xcafe_4a11, // bpf
    0x6e73_6673, // nsfs
];

fn on_kernel_fs(fd: BorrowedFd<'_>) -> bool {
    rfs::fstatfs(fd).is_ok_and(|s| KERNEL_FS.contains(&(s.f_type as u64)))
}

/// A symlink at a host destination is replaced, not written through.
fn remove_host_link(host: &Path) -> io::Result<()> {
    match fs::symlink_metadata(host) {
        Ok(md) if md.file_type().is_symlink() => fs::remove_file(host),
        _ => Ok(()),
    }
}

fn remove_host_non_dir(host: &Path) -> io::Result<()> {
    match fs::symlink_metadata(host) {
        Ok(md) if md.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "cannot overwrite a directory with a non-directory",
        )),
        Ok(_) => fs::remove_file(host),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Owner (with `-a`), mode and times of a copied entry; the mode after the owner, since chown
/// clears set-id bits.
fn set_host_meta(host: &Path, st: &Stat, kind: FileType, opts: CopyOptions) -> io::Result<()> {
    if opts.archive {
        std::os::unix::fs::lchown(host, Some(st.st_uid), Some(st.st_gid))?;
    }
    if kind != FileType::Symlink {
        fs::set_permissions(host, fs::Permissions::from_mode(st.st_mode & 0o7777))?;
    }
    let times = timestamps(
        st.st_atime,
        st.st_atime_nsec as i64,
        st.st_mtime,
        st.st_mtime_nsec as i64,
    );
    rfs::utimensat(rfs::CWD, host, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn timestamps(atime: i64, atime_ns: i64, mtime: i64, mtime_ns: i64) -> Timestamps {
    let ts = |tv_sec, tv_nsec| Timespec { tv_sec, tv_nsec };
    Timestamps {
        last_access: ts(atime, atime_ns),
        last_modification: ts(mtime, mtime_ns),
    }
}

// ---------------------------------------------------------------- copying in

enum Placement {
    /// Copy a directory's entries into this container directory.
    Contents(OwnedFd),
    /// Create (or replace) this name in this container directory; the path names it in errors.
    At(OwnedFd, OsString, PathBuf),
}

/// Where in the container a host source goes (docker's rules, with the CLI's one hop through a
/// destination that is a symlink).
fn container_destination(
    root: BorrowedFd<'_>,
    path: &str,
    req: &Request,
    src_is_dir: bool,
    label: &Path,
) -> Result<Placement, ContainerError> {
    let invalid = |what: &str| ContainerError::Invalid(format!("{}: {what}", label.display()));
    let mut path = PathBuf::from(path);
    for hop in 0..2 {
        let node = match Node::resolve(root, &path, false) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if path.as_os_str().as_bytes().ends_with(b"/") && !src_is_dir {
                    return Err(invalid("destination directory does not exist"));
                }
                return placement_at(root, &path, label);
            }
            Err(e) => return Err(io_err(label)(e)),
        };
        match node.kind() {
            FileType::Directory if src_is_dir && req.as_contents() => {
                return Ok(Placement::Contents(node.fd))
            }
            FileType::Directory => {
                let base = req.base.clone().ok_or_else(|| invalid("no name to copy"))?;
                let here = label.join(&base);
                return Ok(Placement::At(node.fd, base, here));
            }
            FileType::Symlink if hop == 0 => {
                let target = rfs::readlinkat(&node.fd, c"", Vec::new())
                    .map_err(|e| io_err(label)(e.into()))?;
                path = follow_once(&path, target.to_bytes());
            }
            _ if src_is_dir => {
                return Err(invalid("cannot overwrite a non-directory with a directory"))
            }
            _ => return placement_at(root, &path, label),
        }
    }
    placement_at(root, &path, label)
}

/// Where symlink `path` with contents `target` points, as a container path.
fn follow_once(path: &Path, target: &[u8]) -> PathBuf {
    let names = lexical(path);
    // An absolute target replaces the whole path when joined.
    joined(&names[..names.len().saturating_sub(1)]).join(OsStr::from_bytes(target))
}

/// The parent directory (which must exist) and last name of `path`.
fn placement_at(
    root: BorrowedFd<'_>,
    path: &Path,
    label: &Path,
) -> Result<Placement, ContainerError> {
    let base = lexical(path).pop().ok_or_else(|| {
        ContainerError::Invalid(format!("{}: not a place to copy to", label.display()))
    })?;
    let parent = resolve_parent(root, path).map_err(io_err(label))?;
    if !Node::from_fd(parent.try_clone().map_err(io_err(label))?)
        .map_err(io_err(label))?
        .is_dir()
    {
        return Err(ContainerError::Invalid(format!(
            "{}: no such directory",
            label.display()
        )));
    }
    Ok(Placement::At(parent, base, label.to_owned()))
}

/// What a copied-in entry gets: the source's owner with `-a` (else root), mode and times.
struct InMeta {
    uid: Uid,
    gid: Gid,
    mode: Mode,
    times: Timestamps,
}

impl InMeta {
    fn of(md: &fs::Metadata, opts: CopyOptions) -> InMeta {
        let (uid, gid) = if opts.archive {
            (md.uid(), md.gid())
        } else {
            (0, 0)
        };
        InMeta {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            mode: Mode::from_raw_mode(md.mode() & 0o7777),
            times: timestamps(md.atime(), md.atime_nsec(), md.mtime(), md.mtime_nsec()),
        }
    }

    /// Through an open fd; the mode after the owner, since chown clears set-id bits.
    fn apply(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        rfs::fchown(fd, Some(self.uid), Some(self.gid))?;
        rfs::fchmod(fd, self.mode)?;
        rfs::futimens(fd, &self.times)
    }

    /// Owner and times of an entry that cannot be opened (a symlink, a device node), by name
    /// and without following it.
    fn apply_at(&self, parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        rfs::chownat(parent, name, Some(self.uid), Some(self.gid), nofollow)?;
        rfs::utimensat(parent, name, &self.times, nofollow)
    }
}

/// Host entry `src` as `name` in container directory `parent`; `here` names it in errors.
fn copy_node_in(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    src: &Path,
    md: &fs::Metadata,
    here: &Path,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let err = |e: Errno| io_err(here)(e.into());
    let meta = InMeta::of(md, opts);
    let ft = md.file_type();
    if ft.is_dir() {
        let dir = ensure_dir_at(parent, name).map_err(err)?;
        copy_children_in(dir.as_fd(), src, here, opts)?;
        meta.apply(dir.as_fd()).map_err(err)
    } else if ft.is_file() {
        let to = write_file_at(parent, name, src, here)?;
        meta.apply(to.as_fd()).map_err(err)
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err(src))?;
        remove_non_dir_at(parent, name).map_err(err)?;
        rfs::symlinkat(&target, parent, name).map_err(err)?;
        meta.apply_at(parent, name).map_err(err)
    } else if let Some(kind) = special_kind(&ft) {
        remove_non_dir_at(parent, name).map_err(err)?;
        rfs::mknodat(parent, name, kind, meta.mode, md.rdev()).map_err(err)?;
        meta.apply_at(parent, name).map_err(err)?;
        chmod_special_at(parent, name, kind, meta.mode).map_err(err)
    } else {
        // Sockets are skipped, as tar does.
        Ok(())
    }
}

/// A new file `name` in `parent` with the contents of `src`. `O_EXCL` never follows a symlink:
/// whatever sits at the name is removed first, and anything put there meanwhile fails the copy.
fn write_file_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    src: &Path,
    here: &Path,
) -> Result<File, ContainerError> {
    let mut from = File::open(src).map_err(io_err(src))?;
    remove_non_dir_at(parent, name).map_err(|e| io_err(here)(e.into()))?;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut to = rfs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
        .map(File::from)
        .map_err(|e| io_err(here)(e.into()))?;
    io::copy(&mut from, &mut to).map_err(io_err(here))?;
    Ok(to)
}

fn special_kind(ft: &fs::FileType) -> Option<FileType> {
    if ft.is_fifo() {
        Some(FileType::Fifo)
    } else if ft.is_char_device() {
        Some(FileType::CharacterDevice)
    } else if ft.is_block_device() {
        Some(FileType::BlockDevice)
    } else {
        None
    }
}

/// chmod of a node just made by mknod, never through a symlink a running container may have
/// put in its place: the node is pinned by an `O_PATH` fd and checked before the chmod.
fn chmod_special_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    kind: FileType,
    mode: Mode,
) -> Result<(), Errno> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(parent, name, flags, Mode::empty())?;
    if FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode) != kind {
        return Err(Errno::LOOP);
    }
    rfs::chmodat(rfs::CWD, fd_path(&fd), mode, AtFlags::empty())
}

/// The entries of host directory `src` into container directory `dir`.
fn copy_children_in(
    dir: BorrowedFd<'_>,
    src: &Path,
    label: &Path,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    for entry in fs::read_dir(src).map_err(io_err(src))? {
        let entry = entry.map_err(io_err(src))?;
        let path = entry.path();
        let md = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let name = entry.file_name();
        copy_node_in(dir, &name, &path, &md, &label.join(&name), opts)?;
    }
    Ok(())
}

/// The directory `name` in `parent`: an existing one is merged into, a non-directory replaced.
fn ensure_dir_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
        Ok(_) => {
            rfs::unlinkat(parent, name, AtFlags::empty())?;
            rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))?;
        }
        Err(Errno::NOENT) => rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))?,
        Err(e) => return Err(e),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rfs::openat(parent, name, flags, Mode::empty())
}

/// Removes a non-directory at `name` (a file or symlink being replaced); a directory there is
/// an error, as with tar.
fn remove_non_dir_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Err(Errno::ISDIR),
        Ok(_) => rfs::unlinkat(parent, name, AtFlags::empty()),
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(d: &Path) -> OwnedFd {
        rfs::open(d, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    fn same(a: &OwnedFd, b: &Path) -> bool {
        let (x, y) = (rfs::fstat(a).unwrap(), rfs::stat(b).unwrap());
        x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }

    #[test]
    fn lookups_stay_in_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../etc", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("a/b/rel")).unwrap();
        let fd = root_of(&root);
        let r = resolve_in_root(fd.as_fd(), "/a/up", true).unwrap();
        assert!(same(&r, &root.join("etc")));
        let r = resolve_in_root(fd.as_fd(), "/../../a/b/rel/etc", true).unwrap();
        assert!(same(&r, &root.join("etc")));
        let r = resolve_in_root(fd.as_fd(), "/a/up", false).unwrap();
        assert_eq!(
            rfs::fstat(&r).unwrap().st_mode & libc::S_IFMT,
            libc::S_IFLNK
        );
        let r = resolve_in_root(fd.as_fd(), "/", true).unwrap();
        assert!(same(&r, &root));
    }

    #[test]
    fn missing_targets_are_made_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("x/root");
        fs::create_dir_all(&root).unwrap();
        // Unconfined, this would lead to <tmp>/outside.
        std::os::unix::fs::symlink("../../outside", root.join("link")).unwrap();
        let fd = root_of(&root);
        ensure_target(fd.as_fd(), "/link/x/y", true).unwrap();
        assert!(root.join("outside/x/y").is_dir());
        assert!(!d.path().join("outside").exists());
        ensure_target(fd.as_fd(), "/etc/hosts", false).unwrap();
        assert!(root.join("etc/hosts").is_file());
    }

    #[test]
    fn requests_follow_docker_path_rules() {
        let r = Request::parse(b"/data/.");
        assert!(r.contents && !r.dir_only);
        assert_eq!(r.base, Some(OsString::from("data")));
        let r = Request::parse(b"/a/b/");
        assert!(!r.contents && r.dir_only && r.base == Some(OsString::from("b")));
        let r = Request::parse(b"/a/b/..");
        assert_eq!(r.base, Some(OsString::from("a")));
        assert!(Request::parse(b"/").as_contents());
        assert_eq!(
            follow_once(Path::new("/data/up"), b"/../../etc"),
            Path::new("/../../etc")
        );
        assert_eq!(
            follow_once(Path::new("/data/link"), b"../x"),
            Path::new("/data/../x")
        );
    }

    #[test]
    fn copy_out_keeps_links_as_links() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("dir/sub")).unwrap();
        fs::write(root.join("dir/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("/../../etc/passwd", root.join("dir/pw")).unwrap();
        let fd = root_of(&root);
        let node = Node::resolve(fd.as_fd(), "/dir", false).unwrap();
        let out = d.path().join("out");
        copy_node_out(&node, &out, Path::new("c:/dir"), CopyOptions::default()).unwrap();
        assert_eq!(fs::read_to_string(out.join("sub/f")).unwrap(), "x");
        assert_eq!(
            fs::read_link(out.join("pw")).unwrap(),
            PathBuf::from("/../../etc/passwd")
        );
    }

    #[test]
    fn copy_in_through_a_symlink_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("x/root");
        fs::create_dir_all(root.join("target")).unwrap();
        // Unconfined, this would lead to <tmp>/target.
        fs::create_dir_all(d.path().join("target")).unwrap();
        std::os::unix::fs::symlink("../../target", root.join("up")).unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("inner")).unwrap();
        fs::write(src.join("inner/f"), "data").unwrap();
        let fd = root_of(&root);
        let req = Request::parse(src.as_os_str().as_bytes());
        let label = Path::new("c:/up");
        let Placement::At(parent, base, here) =
            container_destination(fd.as_fd(), "/up", &req, true, label).unwrap()
        else {
            panic!("expected a placement at a name");
        };
        let md = fs::symlink_metadata(&src).unwrap();
        copy_node_in(
            parent.as_fd(),
            &base,
            &src,
            &md,
            &here,
            CopyOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(root.join("target/src/inner/f")).unwrap(),
            "data"
        );
        assert_eq!(fs::read_dir(d.path().join("target")).unwrap().count(), 0);
    }
}
