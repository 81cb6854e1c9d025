//! The on-disk record store: one JSON file per network under `<root>/dns/records/`, written
//! atomically (temporary file + rename) so the resolver never reads half a file.
//!
//! The files are the source of truth: a resolver that starts (or restarts after a crash) loads
//! them all; a running one reloads them when told over its control socket (see `control.rs`).

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::{DnsError, Result};

/// One subnet of a network and the gateway address the resolver listens on in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSubnet {
    /// Address of the bridge in this subnet; the resolver listens here and containers' resolv.conf
    /// points here.
    pub gateway: IpAddr,
    /// The subnet; only clients inside it are answered.
    pub subnet: IpNet,
}

/// One container's presence on a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Container id (any stable key; `remove_endpoint` uses it).
    pub id: String,
    /// Lower-case DNS names: container name, service name, hostname, aliases. The first one is
    /// what a PTR query for the container's address answers.
    pub names: Vec<String>,
    /// The container's addresses on this network.
    pub ips: Vec<IpAddr>,
    /// The service's own `dns:` servers: names the resolver does not know, asked by this
    /// container, go there instead of to the host's resolvers (as docker's embedded DNS does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<IpAddr>,
}

/// Everything the resolver knows about one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Network name (also the file name).
    pub network: String,
    /// Subnets with their gateways (one per address family in practice).
    pub subnets: Vec<NetSubnet>,
    /// Attached containers, in attach order (the order a scaled name lists its replicas in before
    /// rotation).
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// Paths of the DNS state under a state root.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The DNS state directory of `root` (`<root>/dns`).
    pub fn new(root: &Path) -> Self {
        Layout {
            dir: root.join("dns"),
        }
    }

    /// `<root>/dns`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Directory of the per-network record files.
    pub fn records_dir(&self) -> PathBuf {
        self.dir.join("records")
    }

    /// Record file of one network.
    pub fn record_path(&self, network: &str) -> PathBuf {
        self.records_dir().join(format!("{network}.json"))
    }

    /// Serialises writers of record files (read-modify-write of one network).
    pub fn records_lock_path(&self) -> PathBuf {
        self.dir.join("records.lock")
    }

    /// Held by the running resolver for its whole life: at most one per state root.
    pub fn resolver_lock_path(&self) -> PathBuf {
        self.dir.join("resolver.lock")
    }

    /// The resolver's control socket.
    pub fn control_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// Where a spawned resolver writes its diagnostics.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("resolver.log")
    }

    /// Creates the state directories.
    pub fn create(&self) -> Result<()> {
        let records = self.records_dir();
        fs::create_dir_all(&records)
            .map_err(|e| DnsError::io("creating DNS state directory", &records, e))
    }
}

/// Checks a network name is usable as a file name (docker's rule for network names).
pub fn check_network_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(DnsError::InvalidNetworkName(name.to_owned()))
    }
}

/// Normalises a DNS name (lower case, no trailing dot) and checks it: labels of 1–63 characters
/// from letters, digits, `-` and `_` (compose service names may contain `_`), 253 at most in all.
pub fn normalize_name(name: &str) -> Result<String> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower.len() <= 253
        && lower.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        });
    if ok {
        Ok(lower)
    } else {
        Err(DnsError::InvalidName(name.to_owned()))
    }
}

/// Whether `name` would be accepted by `add_endpoint` (after lower-casing).
pub fn is_valid_name(name: &str) -> bool {
    normalize_name(name).is_ok()
}

/// Reads one network's record file; `None` when it does not exist.
pub fn read_record(layout: &Layout, network: &str) -> Result<Option<NetworkRecord>> {
    let path = layout.record_path(network);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| DnsError::Record { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DnsError::io("reading DNS record file", path, e)),
    }
}

/// Writes one network's record file atomically.
pub fn write_record(layout: &Layout, record: &NetworkRecord) -> Result<()> {
    let path = layout.record_path(&record.network);
    let tmp = layout
        .records_dir()
        .join(format!(".{}.tmp{}", record.network, std::process::id()));
    let bytes = serde_json::to_vec(record).map_err(|source| DnsError::Record {
        path: path.clone(),
        source,
    })?;
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        DnsError::io("writing DNS record file", &path, e)
    })
}

/// Removes one network's record file; a missing one is fine.
pub fn remove_record(layout: &Layout, network: &str) -> Result<bool> {
    let path = layout.record_path(network);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DnsError::io("removing DNS record file", path, e)),
    }
}

/// Names of the networks that have a record file, sorted.
pub fn list_networks(layout: &Layout) -> Result<Vec<String>> {
    let dir = layout.records_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DnsError::io("listing DNS record files", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DnsError::io("listing DNS record files", &dir, e))?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if let Some(name) = file.strip_suffix(".json") {
            if check_network_name(name).is_ok() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Loads every record file. A file that cannot be read or parsed is reported in the second list
/// and left out, so one bad file does not take every network's DNS down.
pub fn load_all(layout: &Layout) -> Result<(Vec<NetworkRecord>, Vec<DnsError>)> {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for name in list_networks(layout)? {
        match read_record(layout, &name) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => {}
            Err(e) => bad.push(e),
        }
    }
    Ok((records, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_checked() {
        assert_eq!(normalize_name("Web.").ok().as_deref(), Some("web"));
        assert_eq!(
            normalize_name("proj-web_1.example").ok().as_deref(),
            Some("proj-web_1.example")
        );
        assert!(normalize_name("").is_err());
        assert!(normalize_name("a..b").is_err());
        assert!(normalize_name("has space").is_err());
        assert!(normalize_name(&"x".repeat(64)).is_err());
        assert!(is_valid_name(&"x".repeat(63)));
    }

    #[test]
    fn network_names_must_be_file_names() {
        assert!(check_network_name("proj_default").is_ok());
        assert!(check_network_name("a.b-c").is_ok());
        assert!(check_network_name("../x").is_err());
        assert!(check_network_name(".hidden").is_err());
        assert!(check_network_name("a/b").is_err());
        assert!(check_network_name("").is_err());
    }

    #[test]
    fn records_round_trip_atomically() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| DnsError::io("tempdir", "/tmp", e))?;
        let layout = Layout::new(dir.path());
        layout.create()?;
        assert_eq!(read_record(&layout, "n1")?, None);
        let record = NetworkRecord {
            network: "n1".into(),
            subnets: vec![NetSubnet {
                gateway: "10.1.0.1".parse().expect("literal"),
                subnet: "10.1.0.0/24".parse().expect("literal"),
            }],
            endpoints: vec![Endpoint {
                id: "c1".into(),
                names: vec!["web".into()],
                ips: vec!["10.1.0.2".parse().expect("literal")],
                dns_servers: Vec::new(),
            }],
        };
        write_record(&layout, &record)?;
        assert_eq!(read_record(&layout, "n1")?, Some(record.clone()));
        assert_eq!(list_networks(&layout)?, vec!["n1".to_owned()]);
        let (all, bad) = load_all(&layout)?;
        assert_eq!(all, vec![record]);
        assert!(bad.is_empty());
        // No temporary file is left behind.
        let leftovers = fs::read_dir(layout.records_dir())
            .map_err(|e| DnsError::io("list", layout.records_dir(), e))?
            .count();
        assert_eq!(leftovers, 1);
        assert!(remove_record(&layout, "n1")?);
        assert!(!remove_record(&layout, "n1")?);
        Ok(())
    }

    #[test]
    fn a_bad_file_is_reported_not_fatal() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| DnsError::io("tempdir", "/tmp", e))?;
        let layout = Layout::new(dir.path());
        layout.create()?;
        fs::write(layout.record_path("bad"), b"{not json")
            .map_err(|e| DnsError::io("write", "bad", e))?;
        let (all, bad) = load_all(&layout)?;
        assert!(all.is_empty());
        assert_eq!(bad.len(), 1);
        Ok(())
    }
}
