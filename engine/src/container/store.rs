//! `<root>/containers/<id>/`: creating, finding (id, unique id prefix or name), listing and
//! removing container records, with flock-protected state updates.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{write_atomic, LockFile};

use super::id::{generate_id, generate_name, is_hex, valid_name};
use super::record::{ContainerConfig, ContainerState, Status};
use super::ContainerError;

/// The per-container lock file (exclusive for state updates, shared for reads).
const LOCK_FILE: &str = ".lock";
/// Prefix of a removed container's directory awaiting deletion (see `detach_dir`).
const TRASH_PREFIX: &str = ".del-";
/// The name index under `containers/` (see [`ContainerStore::reserve_name`]).
const NAMES_DIR: &str = ".names";

/// A container as found on disk.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    pub state: ContainerState,
    pub dir: PathBuf,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.config.id
    }
}

/// The container records under one state root.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: PathBuf,
    dir: PathBuf,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContainerError + '_ {
    move |source| ContainerError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<(), ContainerError> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| ContainerError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(io_err(path))
}

/// `state.json` is rewritten in place, under the container's exclusive lock, and not fsynced.
/// In place because a temp file + rename makes a new inode on every transition (several per
/// container run), and inode allocation is the dearest metadata operation on some filesystems
/// (ext4 without a journal scans past every recently deleted inode); readers take the shared
/// lock (see [`read_state`]), so they never see a half-written file. Not fsynced: a state lost
/// to a machine crash is moot (its processes died with the machine) and [`ContainerStore::load`]
/// repairs an unreadable one.
fn write_state_json(path: &Path, v: &ContainerState) -> Result<(), ContainerError> {
    use std::os::unix::fs::FileExt;
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| ContainerError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all_at(&bytes, 0).map_err(io_err(path))?;
    f.set_len(bytes.len() as u64).map_err(io_err(path))
}

/// Reads `state.json` under a shared lock on the container's `.lock`, so that an in-place
/// rewrite is never seen half done. The lock is only tried (for a while): a caller that holds
/// the exclusive lock itself must not deadlock on its own record, and a container made before
/// lock files existed has none.
fn read_state(dir: &Path) -> Result<ContainerState, ContainerError> {
    use rustix::fs::{flock, FlockOperation};
    let lock = fs::File::open(dir.join(LOCK_FILE)).ok();
    if let Some(l) = &lock {
        for _ in 0..200 {
            match flock(l, FlockOperation::NonBlockingLockShared) {
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                _ => break,
            }
        }
    }
    read_json(&dir.join("state.json"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ContainerError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| ContainerError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Whether `pid` is a live supervisor (not a zombie, still our binary's supervise mode).
pub fn supervisor_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => cmd
            .split(|b| *b == 0)
            .any(|arg| arg == super::SUPERVISE_ARG.as_bytes()),
        Err(_) => false,
    }
}

impl ContainerStore {
    pub fn open(root: &Path) -> Result<ContainerStore, ContainerError> {
        let dir = root.join("containers");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        crate::fsutil::spread_subdirs(&dir);
        Ok(ContainerStore {
            root: root.to_owned(),
            dir,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/containers/<id>`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn lock_store(&self) -> Result<LockFile, ContainerError> {
        let p = self.dir.join(".lock");
        LockFile::acquire(&p).map_err(io_err(&p))
    }

    /// The per-container lock every state mutation holds.
    pub fn lock(&self, id: &str) -> Result<LockFile, ContainerError> {
        let p = self.dir(id).join(LOCK_FILE);
        LockFile::acquire(&p).map_err(io_err(&p))
    }

    /// Records a new container: assigns id and (if empty) a generated name, refuses a taken
    /// name, writes `config.json` and a `created` `state.json`. The directory is filled under a
    /// temporary name and renamed into place, so a reader finds a whole record or none, with
    /// no temporary file per record file.
    pub fn create(&self, mut config: ContainerConfig) -> Result<Container, ContainerError> {
        if config.id.is_empty() {
            config.id = generate_id();
        }
        if config.created.is_empty() {
            config.created = super::time::now();
        }
        self.names_dir()?;
        // Name links change only under the store lock: a link whose record is missing is then
        // never one being created right now.
        let _lock = self.lock_store()?;
        if config.name.is_empty() {
            let mut attempt = 0;
            loop {
                let n = generate_name(attempt);
                if self.reserve_name(&n, &config.id).is_ok() {
                    config.name = n;
                    break;
                }
                attempt += 1;
            }
        } else {
            if !valid_name(&config.name) {
                return Err(ContainerError::InvalidName(config.name));
            }
            self.reserve_name(&config.name, &config.id)?;
        }
        let made = self.write_new_dir(&config);
        if made.is_err() {
            self.release_name(&config.name, &config.id);
        }
        let (state, dir) = made?;
        Ok(Container { config, state, dir })
    }

    fn write_new_dir(
        &self,
        config: &ContainerConfig,
    ) -> Result<(ContainerState, PathBuf), ContainerError> {
        let dir = self.dir(&config.id);
        let tmp = self.dir.join(format!(".new-{}", config.id));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let fill = || -> Result<ContainerState, ContainerError> {
            if !config.image_id.is_empty() {
                // The image half's in-use contract (`crate::usage`).
                let p = tmp.join(crate::usage::CONTAINER_IMAGE_FILE);
                fs::write(&p, format!("{}\n", config.image_id)).map_err(io_err(&p))?;
            }
            let lock = tmp.join(LOCK_FILE);
            fs::File::create(&lock).map_err(io_err(&lock))?;
            let state = ContainerState::default();
            write_state_json(&tmp.join("state.json"), &state)?;
            let p = tmp.join("config.json");
            let bytes = serde_json::to_vec_pretty(config).map_err(|e| ContainerError::Corrupt {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            let mut f = fs::File::create(&p).map_err(io_err(&p))?;
            io::Write::write_all(&mut f, &bytes).map_err(io_err(&p))?;
            // The record must survive a crash once the directory has its final name — unless
            // it is a `--rm` container, which is not meant to outlive its run anyway.
            if !config.auto_remove {
                f.sync_all().map_err(io_err(&p))?;
            }
            fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
            if !config.auto_remove {
                crate::fsutil::fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
            }
            Ok(state)
        };
        match fill() {
            Ok(state) => Ok((state, dir)),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// `containers/.names/<name>`: a symlink to the id that owns the name, so a name is checked
    /// and found without reading every record. Callers hold the store lock. A link whose
    /// container is gone (a crash between link and record, or before removal finished) or that
    /// no longer carries the name (a rename cut short) is stale and taken over.
    fn reserve_name(&self, name: &str, id: &str) -> Result<(), ContainerError> {
        let link = self.dir.join(NAMES_DIR).join(name);
        for _ in 0..3 {
            match std::os::unix::fs::symlink(id, &link) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if let Some(owner) = self.name_owner(name) {
                        return Err(ContainerError::NameInUse {
                            name: name.to_owned(),
                            id: owner,
                        });
                    }
                    let _ = fs::remove_file(&link);
                }
                Err(e) => return Err(io_err(&link)(e)),
            }
        }
        Err(ContainerError::Conflict(format!(
            "cannot claim the container name {name:?}: its index link keeps coming back"
        )))
    }

    /// The id of the container that really has `name`, per its index link and its record.
    fn name_owner(&self, name: &str) -> Option<String> {
        let link = self.dir.join(NAMES_DIR).join(name);
        let id = fs::read_link(&link).ok()?.to_str()?.to_owned();
        let config: ContainerConfig = read_json(&self.dir(&id).join("config.json")).ok()?;
        (config.name == name).then_some(id)
    }

    /// Drops `name`'s index link if it points at `id`.
    fn release_name(&self, name: &str, id: &str) {
        let link = self.dir.join(NAMES_DIR).join(name);
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == id) {
            let _ = fs::remove_file(&link);
        }
    }

    /// The name index, built from the records the first time a root without one is used.
    fn names_dir(&self) -> Result<PathBuf, ContainerError> {
        let names = self.dir.join(NAMES_DIR);
        if names.is_dir() {
            return Ok(names);
        }
        let _lock = self.lock_store()?;
        if !names.is_dir() {
            let tmp = self
                .dir
                .join(format!("{NAMES_DIR}.tmp-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir(&tmp).map_err(io_err(&tmp))?;
            for c in self.list()? {
                let _ = std::os::unix::fs::symlink(c.id(), tmp.join(&c.config.name));
            }
            fs::rename(&tmp, &names).map_err(io_err(&names))?;
        }
        Ok(names)
    }

    /// Loads one container by id, with a dead supervisor's state repaired in memory.
    pub fn load(&self, id: &str) -> Result<Container, ContainerError> {
        let dir = self.dir(id);
        let config: ContainerConfig = read_json(&dir.join("config.json"))?;
        let mut state: ContainerState = match read_state(&dir) {
            Ok(s) => s,
            // Lost in a crash (see `write_state_json`): whatever ran is gone.
            Err(ContainerError::Corrupt { .. }) => ContainerState {
                status: Status::Exited,
                exit_code: 255,
                error: "state lost in a crash".into(),
                ..ContainerState::default()
            },
            Err(e) => return Err(e),
        };
        if state.is_active() && !supervisor_alive(state.supervisor_pid) {
            // The supervisor died without recording the end (killed, machine crash).
            state.status = Status::Exited;
            state.pid = 0;
            state.supervisor_pid = 0;
            if state.error.is_empty() {
                state.error = "supervisor exited unexpectedly".into();
            }
            if state.exit_code == 0 {
                state.exit_code = 255;
            }
        }
        Ok(Container { config, state, dir })
    }

    /// Every container (records that cannot be read are skipped with a warning).
    pub fn list(&self) -> Result<Vec<Container>, ContainerError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() != 64 || !is_hex(name) {
                continue;
            }
            match self.load(name) {
                Ok(c) => out.push(c),
                Err(err) => tracing::warn!("skipping container {name}: {err}"),
            }
        }
        out.sort_by(|a, b| b.config.created.cmp(&a.config.created));
        Ok(out)
    }

    /// Finds a container by full id, name (with or without a leading `/`) or unique id prefix.
    pub fn find(&self, key: &str) -> Result<Container, ContainerError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if key.len() == 64 && is_hex(key) && self.dir(key).is_dir() {
            return self.load(key);
        }
        if valid_name(key) {
            self.names_dir()?;
            if let Some(id) = self.name_owner(key) {
                return self.load(&id);
            }
        }
        if is_hex(key) {
            // An id prefix: only directory names are compared, one record is read.
            let rd = fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
            let mut matches = rd.flatten().filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                (n.len() == 64 && is_hex(&n) && n.starts_with(key)).then_some(n)
            });
            if let Some(first) = matches.next() {
                if matches.next().is_some() {
                    return Err(ContainerError::Ambiguous(key.to_owned()));
                }
                return self.load(&first);
            }
        }
        Err(ContainerError::NotFound(key.to_owned()))
    }

    pub fn write_state(&self, id: &str, state: &ContainerState) -> Result<(), ContainerError> {
        write_state_json(&self.dir(id).join("state.json"), state)
    }

    pub fn write_config(&self, config: &ContainerConfig) -> Result<(), ContainerError> {
        write_json(&self.dir(&config.id).join("config.json"), config)
    }

    /// Read-modify-write of `state.json` under the container's lock.
    pub fn update_state<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerState) -> T,
    ) -> Result<T, ContainerError> {
        let _lock = self.lock(id)?;
        let p = self.dir(id).join("state.json");
        let mut state: ContainerState = read_json(&p).unwrap_or_else(|_| ContainerState {
            status: Status::Exited,
            exit_code: 255,
            error: "state lost in a crash".into(),
            ..ContainerState::default()
        });
        let out = f(&mut state);
        write_state_json(&p, &state)?;
        Ok(out)
    }

    /// Renames a container, refusing a name in use.
    pub fn rename(&self, key: &str, new_name: &str) -> Result<(), ContainerError> {
        if !valid_name(new_name) {
            return Err(ContainerError::InvalidName(new_name.to_owned()));
        }
        let mut c = self.find(key)?;
        if c.config.name == new_name {
            return Ok(());
        }
        let _lock = self.lock_store()?;
        self.reserve_name(new_name, c.id())?;
        let old = std::mem::replace(&mut c.config.name, new_name.to_owned());
        if let Err(e) = self.write_config(&c.config) {
            self.release_name(new_name, c.id());
            return Err(e);
        }
        self.release_name(&old, c.id());
        Ok(())
    }

    /// Takes a container's directory out of the store without deleting it: renamed to
    /// `.del-<id>` (so it is no longer listed or found) and its name released. The caller
    /// deletes it with [`ContainerStore::purge`]; `container prune` removes what a crash left.
    pub fn detach_dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        let dir = self.dir(id);
        let name = read_json::<ContainerConfig>(&dir.join("config.json"))
            .ok()
            .map(|c| c.name);
        let trash = self.dir.join(format!("{TRASH_PREFIX}{id}"));
        fs::rename(&dir, &trash).map_err(io_err(&dir))?;
        if let Some(name) = name {
            let _lock = self.lock_store()?;
            self.release_name(&name, id);
        }
        Ok(trash)
    }

    /// Deletes a directory [`ContainerStore::detach_dir`] set aside.
    pub fn purge(trash: &Path) {
        let _ = fs::remove_dir_all(trash);
    }

    /// Deletes what interrupted removals and creations left under `containers/` (`.del-*`,
    /// and `.new-*` older than a minute: a creation holds it for milliseconds).
    pub fn clean_leftovers(&self) -> Result<usize, ContainerError> {
        let mut n = 0;
        let rd = fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale_new = name.starts_with(".new-")
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(60));
            if (name.starts_with(TRASH_PREFIX) || stale_new) && fs::remove_dir_all(e.path()).is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes a container's directory (the caller has unmounted and stopped everything).
    pub fn remove_dir(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        let name = read_json::<ContainerConfig>(&dir.join("config.json"))
            .ok()
            .map(|c| c.name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ContainerError::Io {
                    path: dir,
                    source: e,
                })
            }
        }
        if let Some(name) = name {
            let _lock = self.lock_store()?;
            self.release_name(&name, id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_find_rename_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(d.path()).unwrap();
        let a = s
            .create(ContainerConfig {
                name: "web".into(),
                ..Default::default()
            })
            .unwrap();
        let b = s.create(ContainerConfig::default()).unwrap();
        assert!(!b.config.name.is_empty());
        assert_eq!(s.find("web").unwrap().id(), a.id());
        assert_eq!(s.find(&a.id()[..12]).unwrap().id(), a.id());
        assert_eq!(s.find(&format!("/{}", b.config.name)).unwrap().id(), b.id());
        assert!(matches!(
            s.create(ContainerConfig {
                name: "web".into(),
                ..Default::default()
            }),
            Err(ContainerError::NameInUse { .. })
        ));
        assert!(matches!(s.find("nope"), Err(ContainerError::NotFound(_))));
        s.rename("web", "api").unwrap();
        assert_eq!(s.find("api").unwrap().id(), a.id());
        s.update_state(a.id(), |st| st.exit_code = 3).unwrap();
        assert_eq!(s.load(a.id()).unwrap().state.exit_code, 3);
        assert_eq!(s.list().unwrap().len(), 2);
        s.remove_dir(a.id()).unwrap();
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn name_index_takes_over_stale_links_and_migrates_old_roots() {
        let d = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(d.path()).unwrap();
        let a = s
            .create(ContainerConfig {
                name: "web".into(),
                ..Default::default()
            })
            .unwrap();
        let names = d.path().join("containers").join(NAMES_DIR);
        assert_eq!(
            fs::read_link(names.join("web")).unwrap().to_str(),
            Some(a.id())
        );
        // A link left by a crash (its record never appeared) does not hold the name.
        std::os::unix::fs::symlink("f".repeat(64), names.join("api")).unwrap();
        let b = s
            .create(ContainerConfig {
                name: "api".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(s.find("api").unwrap().id(), b.id());
        // Renaming frees the old name and takes the new one; a taken one is refused.
        assert!(matches!(
            s.rename("web", "api"),
            Err(ContainerError::NameInUse { .. })
        ));
        s.rename("web", "front").unwrap();
        assert!(fs::symlink_metadata(names.join("web")).is_err());
        assert_eq!(s.find("front").unwrap().id(), a.id());
        s.remove_dir(b.id()).unwrap();
        assert!(fs::symlink_metadata(names.join("api")).is_err());
        // A root made before the index: it is built from the records on first use.
        fs::remove_dir_all(&names).unwrap();
        assert_eq!(s.find("front").unwrap().id(), a.id());
        assert!(fs::symlink_metadata(names.join("front")).is_ok());
        assert!(matches!(
            s.create(ContainerConfig {
                name: "front".into(),
                ..Default::default()
            }),
            Err(ContainerError::NameInUse { .. })
        ));
    }

    #[test]
    fn state_is_rewritten_in_place() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(d.path()).unwrap();
        let a = s.create(ContainerConfig::default()).unwrap();
        let p = a.dir.join("state.json");
        let ino = fs::metadata(&p).unwrap().ino();
        s.update_state(a.id(), |st| st.error = "x".repeat(500))
            .unwrap();
        s.update_state(a.id(), |st| st.error.clear()).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        // Shorter content leaves no tail of the longer one behind.
        assert!(s.load(a.id()).unwrap().state.error.is_empty());
        let entries = fs::read_dir(&a.dir).unwrap().count();
        assert_eq!(entries, 3, "config.json, state.json, .lock");
    }

    #[test]
    fn deferred_removal_and_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(d.path()).unwrap();
        let a = s
            .create(ContainerConfig {
                name: "gone".into(),
                ..Default::default()
            })
            .unwrap();
        // Detached: not listed, not found, its name free at once; deleted by purge.
        let trash = s.detach_dir(a.id()).unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(matches!(s.find("gone"), Err(ContainerError::NotFound(_))));
        s.create(ContainerConfig {
            name: "gone".into(),
            ..Default::default()
        })
        .unwrap();
        // A deletion that never ran, and a creation interrupted long ago, are cleaned up; a
        // creation under way (fresh) is left alone.
        let old_new = d.path().join("containers/.new-old");
        let fresh_new = d.path().join("containers/.new-fresh");
        fs::create_dir(&old_new).unwrap();
        fs::create_dir(&fresh_new).unwrap();
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::open(&old_new)
            .unwrap()
            .set_modified(past)
            .unwrap();
        assert_eq!(s.clean_leftovers().unwrap(), 2);
        assert!(!trash.exists() && !old_new.exists() && fresh_new.exists());
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn dead_supervisor_repaired() {
        let d = tempfile::tempdir().unwrap();
        let s = ContainerStore::open(d.path()).unwrap();
        let a = s.create(ContainerConfig::default()).unwrap();
        s.update_state(a.id(), |st| {
            st.status = Status::Running;
            st.supervisor_pid = i32::MAX;
        })
        .unwrap();
        let c = s.load(a.id()).unwrap();
        assert_eq!(c.state.status, Status::Exited);
    }
}
