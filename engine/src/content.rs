//! The content store: verified blobs under `<root>/content/blobs/sha256/<hex>`.
//!
//! A blob is written to a temp file under `<root>/content/ingest/`, hashed and counted while it
//! streams, checked against the expected digest and size, fsynced, renamed into place and the
//! directory fsynced. So a blob path that exists always holds exactly the bytes its name promises;
//! a crash leaves at most a stray temp file in `ingest/` (removed by [`ContentStore::clean_ingest`]).
//! Writers of the same digest serialize on a per-digest lock file, so a second concurrent pull
//! waits for the first and then finds the blob done instead of downloading it again.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::fsutil::{fsync_dir, LockFile};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("reading blob data for {digest}: {source}")]
    Source { digest: Digest, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Handle on a state root's content store.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating directories as needed) the content store under `root`.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let blobs = root.join("content/blobs/sha256");
        let ingest = root.join("content/ingest");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        fs::create_dir_all(&ingest).map_err(io_err(&ingest))?;
        Ok(ContentStore { blobs, ingest })
    }

    /// Path of a blob (which may not exist).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let p = self.path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let p = self.path(digest);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut f = self.open_blob(digest)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(io_err(&self.path(digest)))?;
        Ok(v)
    }

    /// Removes a blob; removing a missing blob is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Every blob digest in the store (file names that are not digests are ignored).
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(io_err(&self.blobs))? {
            let e = e.map_err(io_err(&self.blobs))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Stores a blob whose digest is computed while writing (for content made locally).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let digest = Digest::of(bytes);
        self.ingest(&digest, Some(bytes.len() as u64), bytes)?;
        Ok(digest)
    }

    /// Stores a stream whose digest is not known in advance: hashed into a temp file, then
    /// published under the digest it turned out to have.
    pub fn put_reader(&self, mut reader: impl Read) -> Result<(Digest, u64), ContentError> {
        let mut tmp = tempfile::Builder::new()
            .suffix(".partial")
            .tempfile_in(&self.ingest)
            .map_err(io_err(&self.ingest))?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let tmp_path = tmp.path().to_owned();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ContentError::Io {
                        path: tmp_path,
                        source,
                    })
                }
            };
            hasher.update(&buf[..n]);
            tmp.as_file_mut()
                .write_all(&buf[..n])
                .map_err(io_err(&tmp_path))?;
        }
        let size = hasher.len();
        let digest = hasher.finish();
        if self.exists(&digest) {
            return Ok((digest, size));
        }
        tmp.as_file().sync_all().map_err(io_err(&tmp_path))?;
        let dest = self.path(&digest);
        // Same digest means same bytes, so a concurrent publisher of this digest is harmless.
        tmp.persist(&dest).map_err(|e| ContentError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        fsync_dir(&self.blobs).map_err(io_err(&self.blobs))?;
        Ok((digest, size))
    }

    /// Streams `reader` into the store, verifying digest and size; returns the blob size.
    /// If the blob already exists, `reader` is not read.
    pub fn ingest(
        &self,
        expected: &Digest,
        size: Option<u64>,
        mut reader: impl Read,
    ) -> Result<u64, ContentError> {
        match self.writer(expected, size)? {
            Ingest::Exists(n) => Ok(n),
            Ingest::Write(mut w) => {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => {
                            return Err(ContentError::Source {
                                digest: expected.clone(),
                                source,
                            })
                        }
                    };
                    w.write(&buf[..n])?;
                }
                w.commit()
            }
        }
    }

    /// Starts writing a blob, waiting for any concurrent writer of the same digest.
    pub fn writer(&self, expected: &Digest, size: Option<u64>) -> Result<Ingest, ContentError> {
        if let Some(n) = self.existing(expected)? {
            return Ok(Ingest::Exists(n));
        }
        let lock_path = self.ingest.join(format!("{}.lock", expected.hex()));
        let lock = LockFile::acquire(&lock_path).map_err(io_err(&lock_path))?;
        self.begin(expected, size, lock)
    }

    /// Like [`writer`](Self::writer) but never blocks: `Busy` while another writer holds the digest.
    pub fn try_writer(
        &self,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<TryIngest, ContentError> {
        if let Some(n) = self.existing(expected)? {
            return Ok(TryIngest::Ready(Ingest::Exists(n)));
        }
        let lock_path = self.ingest.join(format!("{}.lock", expected.hex()));
        match LockFile::try_acquire(&lock_path).map_err(io_err(&lock_path))? {
            Some(lock) => Ok(TryIngest::Ready(self.begin(expected, size, lock)?)),
            None => Ok(TryIngest::Busy),
        }
    }

    fn existing(&self, d: &Digest) -> Result<Option<u64>, ContentError> {
        match self.size(d) {
            Ok(n) => Ok(Some(n)),
            Err(ContentError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn begin(
        &self,
        expected: &Digest,
        size: Option<u64>,
        mut lock: LockFile,
    ) -> Result<Ingest, ContentError> {
        lock.set_remove_on_drop(true);
        // The previous holder may have committed while we waited.
        if let Some(n) = self.existing(expected)? {
            lock.release_and_remove().map_err(io_err(&self.ingest))?;
            return Ok(Ingest::Exists(n));
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}.", expected.hex()))
            .suffix(".partial")
            .tempfile_in(&self.ingest)
            .map_err(io_err(&self.ingest))?;
        Ok(Ingest::Write(Box::new(BlobWriter {
            store: self.clone(),
            expected: expected.clone(),
            size,
            tmp,
            hasher: Hasher::new(),
            lock,
        })))
    }

    /// Removes leftovers of interrupted ingests (temp files nobody holds a lock for).
    pub fn clean_ingest(&self) -> Result<(), ContentError> {
        for e in fs::read_dir(&self.ingest).map_err(io_err(&self.ingest))? {
            let e = e.map_err(io_err(&self.ingest))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(hex) = name.split('.').next() else {
                continue;
            };
            if !name.ends_with(".partial") {
                continue;
            }
            let lock_path = self.ingest.join(format!("{hex}.lock"));
            if let Some(lock) = LockFile::try_acquire(&lock_path).map_err(io_err(&lock_path))? {
                let _ = fs::remove_file(e.path());
                lock.release_and_remove().map_err(io_err(&lock_path))?;
            }
        }
        Ok(())
    }
}

/// Outcome of starting an ingest.
pub enum Ingest {
    /// The blob is already in the store (its size).
    Exists(u64),
    /// Write the data, then [`BlobWriter::commit`].
    Write(Box<BlobWriter>),
}

pub enum TryIngest {
    Ready(Ingest),
    Busy,
}

/// An in-progress blob write. Dropping it without `commit` discards the temp file.
pub struct BlobWriter {
    store: ContentStore,
    expected: Digest,
    size: Option<u64>,
    tmp: tempfile::NamedTempFile,
    hasher: Hasher,
    lock: LockFile,
}

impl BlobWriter {
    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ContentError> {
        if let Some(limit) = self.size {
            // Refuse oversize data early rather than filling the disk for a lying server.
            let total = self.hasher.len() + bytes.len() as u64;
            if total > limit {
                return Err(ContentError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected: limit,
                    actual: total,
                });
            }
        }
        self.hasher.update(bytes);
        let path = self.tmp.path().to_owned();
        self.tmp
            .as_file_mut()
            .write_all(bytes)
            .map_err(io_err(&path))
    }

    /// Verifies and publishes the blob; returns its size.
    pub fn commit(self) -> Result<u64, ContentError> {
        let BlobWriter {
            store,
            expected,
            size,
            tmp,
            hasher,
            lock,
        } = self;
        let len = hasher.len();
        if let Some(want) = size {
            if want != len {
                return Err(ContentError::SizeMismatch {
                    digest: expected,
                    expected: want,
                    actual: len,
                });
            }
        }
        let actual = hasher.finish();
        if actual != expected {
            return Err(ContentError::DigestMismatch { expected, actual });
        }
        let tmp_path = tmp.path().to_owned();
        tmp.as_file().sync_all().map_err(io_err(&tmp_path))?;
        let dest = store.path(&expected);
        tmp.persist(&dest).map_err(|e| ContentError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        fsync_dir(&store.blobs).map_err(io_err(&store.blobs))?;
        lock.release_and_remove().map_err(io_err(&store.ingest))?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_read_list_delete() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let dg = cs.put_bytes(b"hello").unwrap();
        assert!(cs.exists(&dg));
        assert_eq!(cs.read(&dg).unwrap(), b"hello");
        assert_eq!(cs.size(&dg).unwrap(), 5);
        assert_eq!(cs.list().unwrap(), vec![dg.clone()]);
        // Re-ingest does not read the source.
        struct Boom;
        impl Read for Boom {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("read"))
            }
        }
        assert_eq!(cs.ingest(&dg, Some(5), Boom).unwrap(), 5);
        cs.delete(&dg).unwrap();
        cs.delete(&dg).unwrap();
        assert!(!cs.exists(&dg));
        assert!(matches!(cs.read(&dg), Err(ContentError::NotFound(_))));
    }

    #[test]
    fn bad_data_never_visible() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let dg = Digest::of(b"good");
        assert!(matches!(
            cs.ingest(&dg, None, &b"evil"[..]),
            Err(ContentError::DigestMismatch { .. })
        ));
        assert!(matches!(
            cs.ingest(&dg, Some(4), &b"goodX"[..]),
            Err(ContentError::SizeMismatch { .. })
        ));
        assert!(matches!(
            cs.ingest(&dg, Some(9), &b"good"[..]),
            Err(ContentError::SizeMismatch { .. })
        ));
        assert!(!cs.exists(&dg));
        // Nothing is left behind in ingest/.
        assert_eq!(
            fs::read_dir(d.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
        // A source failure half-way also leaves nothing.
        let failing = (&b"go"[..]).chain(FailAfter);
        assert!(matches!(
            cs.ingest(&dg, None, failing),
            Err(ContentError::Source { .. })
        ));
        assert!(!cs.exists(&dg));
        assert_eq!(
            fs::read_dir(d.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
    }

    struct FailAfter;
    impl Read for FailAfter {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("connection reset"))
        }
    }

    #[test]
    fn put_reader_computes_digest() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let (dg, n) = cs.put_reader(&b"abc"[..]).unwrap();
        assert_eq!((dg.clone(), n), (Digest::of(b"abc"), 3));
        assert_eq!(cs.read(&dg).unwrap(), b"abc");
        assert_eq!(cs.put_reader(&b"abc"[..]).unwrap().0, dg);
        assert_eq!(
            fs::read_dir(d.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn concurrent_ingest_same_digest() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let dg = Digest::of(&data);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let n = cs.ingest(&dg, Some(data.len() as u64), &data[..]).unwrap();
                    assert_eq!(n, data.len() as u64);
                });
            }
        });
        assert_eq!(cs.read(&dg).unwrap(), data);
        assert_eq!(
            fs::read_dir(d.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn try_writer_reports_busy() {
        let d = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(d.path()).unwrap();
        let dg = Digest::of(b"x");
        let w = match cs.try_writer(&dg, None).unwrap() {
            TryIngest::Ready(Ingest::Write(w)) => w,
            _ => panic!("expected a writer"),
        };
        assert!(matches!(cs.try_writer(&dg, None).unwrap(), TryIngest::Busy));
        let mut w = w;
        w.write(b"x").unwrap();
        w.commit().unwrap();
        assert!(matches!(
            cs.try_writer(&dg, None).unwrap(),
            TryIngest::Ready(Ingest::Exists(1))
        ));
    }
}
