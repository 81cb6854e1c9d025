//! `<root>/containers/<id>/`: creating, finding (id, unique id prefix or name), listing and
//! removing container records, with flock-protected state updates.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{write_atomic, LockFile};

use super::id::{generate_id, generate_name, is_hex, valid_name};
use super::record::{ContainerConfig, ContainerState, Status};
use super::ContainerError;

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

/// `state.json` is replaced atomically (temp file + rename) but not fsynced: readers never see
/// a torn file, and a state lost to a machine crash is moot (its processes died with the
/// machine); [`ContainerStore::load`] repairs an unreadable one. Saves two fsyncs per
/// transition, several per container run.
fn write_state_json(path: &Path, v: &ContainerState) -> Result<(), ContainerError> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| ContainerError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    std::io::Write::write_all(&mut tmp, &bytes).map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| ContainerError::Io {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
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
        let p = self.dir(id).join(".lock");
        LockFile::acquire(&p).map_err(io_err(&p))
    }

    /// Records a new container: assigns id and (if empty) a generated name, refuses a taken
    /// name, writes `config.json` and a `created` `state.json`.
    pub fn create(&self, mut config: ContainerConfig) -> Result<Container, ContainerError> {
        let _lock = self.lock_store()?;
        let existing = self.list()?;
        if config.name.is_empty() {
            let mut attempt = 0;
            loop {
                let n = generate_name(attempt);
                if !existing.iter().any(|c| c.config.name == n) {
                    config.name = n;
                    break;
                }
                attempt += 1;
            }
        } else {
            if !valid_name(&config.name) {
                return Err(ContainerError::InvalidName(config.name));
            }
            if let Some(c) = existing.iter().find(|c| c.config.name == config.name) {
                return Err(ContainerError::NameInUse {
                    name: config.name,
                    id: c.config.id.clone(),
                });
            }
        }
        if config.id.is_empty() {
            config.id = generate_id();
        }
        if config.created.is_empty() {
            config.created = super::time::now();
        }
        let dir = self.dir(&config.id);
        fs::create_dir(&dir).map_err(io_err(&dir))?;
        if !config.image_id.is_empty() {
            // The image half's in-use contract (`crate::usage`).
            let p = dir.join(crate::usage::CONTAINER_IMAGE_FILE);
            write_atomic(&p, format!("{}\n", config.image_id).as_bytes()).map_err(io_err(&p))?;
        }
        let state = ContainerState::default();
        write_state_json(&dir.join("state.json"), &state)?;
        write_json(&dir.join("config.json"), &config)?;
        Ok(Container { config, state, dir })
    }

    /// Loads one container by id, with a dead supervisor's state repaired in memory.
    pub fn load(&self, id: &str) -> Result<Container, ContainerError> {
        let dir = self.dir(id);
        let config: ContainerConfig = read_json(&dir.join("config.json"))?;
        let mut state: ContainerState = match read_json(&dir.join("state.json")) {
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
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.config.name == key) {
            return Ok(c.clone());
        }
        if is_hex(key) {
            let mut matches = all.iter().filter(|c| c.config.id.starts_with(key));
            if let Some(first) = matches.next() {
                if matches.next().is_some() {
                    return Err(ContainerError::Ambiguous(key.to_owned()));
                }
                return Ok(first.clone());
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
        let _lock = self.lock_store()?;
        let mut c = self.find(key)?;
        if let Some(other) = self.list()?.iter().find(|o| o.config.name == new_name) {
            return Err(ContainerError::NameInUse {
                name: new_name.to_owned(),
                id: other.config.id.clone(),
            });
        }
        c.config.name = new_name.to_owned();
        self.write_config(&c.config)
    }

    /// Deletes a container's directory (the caller has unmounted and stopped everything).
    pub fn remove_dir(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContainerError::Io {
                path: dir,
                source: e,
            }),
        }
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
