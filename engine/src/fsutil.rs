//! Crash-safe file primitives shared by the stores: atomic writes (temp file, fsync, rename,
//! fsync of the directory) and advisory locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// fsyncs a directory so that a rename or create inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fsync_dir(dir)
}

/// Asks the filesystem to spread `dir`'s subdirectories over the disk (`FS_TOPDIR_FL`, `chattr
/// +T`): ext2/3/4's Orlov allocator then places each new subdirectory, and the files in it, in
/// a block group of its own, as it does for directories at the top of a filesystem. Meant for
/// directories holding one subdirectory per container, volume or layer. On ext4 without a
/// journal, new inodes skip every inode of their group deleted in the last minutes, one buffer
/// lookup each; kept in one group, a stream of containers created and removed made each new
/// file cost up to half a millisecond (`up -d` of 30 services: 890 ms, 500 ms spread). Other
/// filesystems refuse the flag or ignore it, and that is fine.
pub fn spread_subdirs(dir: &Path) {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    let Ok(f) = File::open(dir) else {
        return;
    };
    if let Ok(flags) = ioctl_getflags(&f) {
        if !flags.contains(IFlags::TOPDIR) {
            let _ = ioctl_setflags(&f, flags | IFlags::TOPDIR);
        }
    }
}

/// An exclusive advisory lock held on a lock file until dropped.
#[derive(Debug)]
pub struct LockFile {
    // Held only for its flock: closing the file releases the lock.
    _file: File,
    path: PathBuf,
    remove_on_drop: bool,
}

impl LockFile {
    /// Blocks until the lock on `path` is held (creating the file if needed).
    pub fn acquire(path: &Path) -> io::Result<LockFile> {
        match Self::acquire_with(path, FlockOperation::LockExclusive)? {
            Some(lock) => Ok(lock),
            // A blocking flock only returns once held; this arm is unreachable in practice.
            None => Err(io::Error::other("lock not acquired")),
        }
    }

    /// Blocks until a shared lock on `path` is held: any number of shared holders, but none
    /// while an exclusive holder has it.
    pub fn acquire_shared(path: &Path) -> io::Result<LockFile> {
        match Self::acquire_with(path, FlockOperation::LockShared)? {
            Some(lock) => Ok(lock),
            None => Err(io::Error::other("lock not acquired")),
        }
    }

    /// Takes the lock if it is free; `None` if another holder has it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<LockFile>> {
        Self::acquire_with(path, FlockOperation::NonBlockingLockExclusive)
    }

    fn acquire_with(path: &Path, op: FlockOperation) -> io::Result<Option<LockFile>> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            match flock(&file, op) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // A holder may have removed the file (see `release_and_remove`) between our open and
            // our flock: then we hold a lock on an orphaned inode that nobody else will look at.
            // Only a lock on the inode currently at `path` counts.
            let held = file.metadata()?;
            match fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Some(LockFile {
                        _file: file,
                        path: path.to_owned(),
                        remove_on_drop: false,
                    }));
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the lock file while still holding the lock, so lock files do not pile up.
    pub fn release_and_remove(mut self) -> io::Result<()> {
        self.remove_on_drop = false;
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Makes dropping the lock remove its file (for per-item locks on error paths).
    pub fn set_remove_on_drop(&mut self, yes: bool) {
        self.remove_on_drop = yes;
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Still locked here: `_file` closes (and unlocks) only after this runs.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn spread_subdirs_sets_the_flag_where_the_filesystem_has_it() {
        use rustix::fs::{ioctl_getflags, IFlags};
        // In the target dir (a disk filesystem here), not /tmp (often tmpfs, which has no
        // inode flags and must simply be left alone).
        let d = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")).unwrap();
        spread_subdirs(d.path());
        let f = File::open(d.path()).unwrap();
        if let Ok(flags) = ioctl_getflags(&f) {
            // Filesystems with inode flags either take TOPDIR (ext2/3/4) or ignore it; on ext4
            // it must be set.
            let ext4 = rustix::fs::statfs(d.path()).is_ok_and(|s| s.f_type == 0xEF53);
            assert!(!ext4 || flags.contains(IFlags::TOPDIR), "{flags:?}");
        }
        spread_subdirs(&d.path().join("missing"));
    }

    #[test]
    fn lock_excludes_and_survives_removal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let a = LockFile::acquire(&p).unwrap();
        assert!(LockFile::try_acquire(&p).unwrap().is_none());
        a.release_and_remove().unwrap();
        let b = LockFile::try_acquire(&p).unwrap();
        assert!(b.is_some());
    }
}
