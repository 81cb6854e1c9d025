//! Network and published-port records under `<root>/networks/`:
//!
//! ```text
//! networks/.lock                 flock: every mutation holds it exclusively
//! networks/<name>.json           one NetworkRecord per network (bridge, subnets, endpoints)
//! networks/ports/<cid>.json      the published ports of one container
//! ```
//!
//! Records are written atomically (temp file, rename; fsync too except for endpoint-only changes,
//! see [`Store::save_endpoints`]), so a crash leaves either the old or the new record, never half
//! of one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ipam::SubnetConfig;

/// Record store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network record {} is not valid", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid network name {0:?}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'")]
    InvalidName(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One network as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    /// 64 hex digits, docker style.
    pub id: String,
    pub driver: String,
    pub bridge: String,
    pub mtu: u32,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    pub subnets: Vec<SubnetConfig>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// Endpoints by container id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointRecord>,
}

impl NetworkRecord {
    /// The IPv4 subnet, if any.
    pub fn v4(&self) -> Option<&SubnetConfig> {
        self.subnets
            .iter()
            .find(|s| matches!(s.subnet, IpNet::V4(_)))
    }

    /// The IPv6 subnet, if any.
    pub fn v6(&self) -> Option<&SubnetConfig> {
        self.subnets
            .iter()
            .find(|s| matches!(s.subnet, IpNet::V6(_)))
    }
}

/// One container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub container_id: String,
    pub container_name: String,
    pub endpoint_id: String,
    /// Host end of the veth pair.
    pub host_veth: String,
    /// Interface name inside the container.
    pub ifname: String,
    pub netns: PathBuf,
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<IpNet>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub default_route: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port, resolved (a concrete host port).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    pub protocol: Protocol,
    /// `None` = every host address.
    #[serde(default)]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

/// The ports of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsRecord {
    pub container_id: String,
    pub ports: Vec<PublishedPort>,
}

/// Handle on `<root>/networks`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Exclusive lock on the network records, released on drop.
pub struct LockGuard {
    _file: File,
}

/// Whether `name` can name a network (and its record file).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Store {
    pub fn new(root: &Path) -> Self {
        Store {
            dir: root.join("networks"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ports_dir(&self) -> PathBuf {
        self.dir.join("ports")
    }

    /// Takes the exclusive lock (blocking until other commands release it).
    pub fn lock(&self) -> Result<LockGuard> {
        fs::create_dir_all(&self.dir).map_err(io_err("creating", &self.dir))?;
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        loop {
            // SAFETY: flock on an fd we own; it has no memory effects.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(StoreError::Io {
                    action: "locking",
                    path,
                    source: err,
                });
            }
        }
        Ok(LockGuard { _file: file })
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        if !valid_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    pub fn load(&self, name: &str) -> Result<Option<NetworkRecord>> {
        let path = self.path(name)?;
        read_json(&path)
    }

    /// Writes a record atomically and durably (fsync before rename): network create/remove.
    pub fn save(&self, rec: &NetworkRecord) -> Result<()> {
        let path = self.path(&rec.name)?;
        write_json(&path, rec, true)
    }

    /// Writes a record atomically but without fsync: endpoint changes (attach/detach).
    ///
    /// The rename alone makes the write atomic against a killed command, which is the crash the
    /// design guards against. What it does not survive is a power loss — but endpoints describe
    /// veths and namespaces that a power loss (reboot) destroys anyway, and `prune` drops
    /// endpoints whose veth is gone. The fsync costs 5–10 ms on this class of disk, more than the
    /// whole rest of an attach (see docs/networking.md).
    pub fn save_endpoints(&self, rec: &NetworkRecord) -> Result<()> {
        let path = self.path(&rec.name)?;
        write_json(&path, rec, false)
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }

    /// Every network record, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("reading", &self.dir)(e)),
        };
        for e in entries {
            let e = e.map_err(io_err("reading", &self.dir))?;
            let p = e.path();
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            if let Some(rec) = read_json::<NetworkRecord>(&p)? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn ports_path(&self, container_id: &str) -> Result<PathBuf> {
        if !valid_name(container_id) {
            return Err(StoreError::InvalidName(container_id.to_string()));
        }
        Ok(self.ports_dir().join(format!("{container_id}.json")))
    }

    pub fn load_ports(&self, container_id: &str) -> Result<Option<PortsRecord>> {
        read_json(&self.ports_path(container_id)?)
    }

    pub fn save_ports(&self, rec: &PortsRecord) -> Result<()> {
        let dir = self.ports_dir();
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        write_json(&self.ports_path(&rec.container_id)?, rec, true)
    }

    pub fn remove_ports(&self, container_id: &str) -> Result<()> {
        let path = self.ports_path(container_id)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }

    pub fn list_ports(&self) -> Result<Vec<PortsRecord>> {
        let dir = self.ports_dir();
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        for e in entries {
            let p = e.map_err(io_err("reading", &dir))?.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            if let Some(rec) = read_json::<PortsRecord>(&p)? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(out)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading", path)(e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|source| StoreError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

/// Temp file in the same directory, (fsync when `durable`), rename over the target.
fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let data = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record"),
        std::process::id()
    ));
    let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    f.write_all(&data).map_err(io_err("writing", &tmp))?;
    if durable {
        f.sync_data().map_err(io_err("syncing", &tmp))?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(io_err("renaming into place", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str) -> NetworkRecord {
        NetworkRecord {
            name: name.to_string(),
            id: "ab".repeat(32),
            driver: "bridge".to_string(),
            bridge: "rc0000babababab".to_string(),
            mtu: 1500,
            internal: false,
            enable_ipv6: false,
            subnets: vec![],
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: "2026-01-01T00:00:00Z".to_string(),
            endpoints: BTreeMap::new(),
        }
    }

    #[test]
    fn save_load_list_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let _g = s.lock().unwrap();
        assert!(s.load("a").unwrap().is_none());
        s.save(&rec("b")).unwrap();
        s.save(&rec("a")).unwrap();
        assert_eq!(s.load("a").unwrap().unwrap(), rec("a"));
        let names: Vec<_> = s.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["a", "b"]);
        s.remove("a").unwrap();
        s.remove("a").unwrap();
        assert_eq!(s.list().unwrap().len(), 1);
        assert!(matches!(s.load("../x"), Err(StoreError::InvalidName(_))));
        s.save_ports(&PortsRecord {
            container_id: "c1".into(),
            ports: vec![],
        })
        .unwrap();
        assert_eq!(s.list_ports().unwrap().len(), 1);
        // The ports directory is not mistaken for a network.
        assert_eq!(s.list().unwrap().len(), 1);
    }
}
