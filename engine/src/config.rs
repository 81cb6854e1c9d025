//! Engine settings from `/etc/rcompose/config.json` (or `$RCOMPOSE_CONFIG`), using docker
//! `daemon.json` key names so an existing file can be reused as is.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/rcompose/config.json";
/// docker's default for parallel layer downloads per pull.
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading engine config {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("engine config {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct EngineConfig {
    /// Mirrors tried in order for `docker.io` images before the upstream registry.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Registries reached over plain HTTP or with unverified TLS (`host`, `host:port`, or an IP CIDR).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub max_concurrent_downloads: Option<usize>,
    #[serde(default)]
    pub max_concurrent_uploads: Option<usize>,
    /// The init binary `--init` runs as PID 1 (default: a statically linked docker-init,
    /// tini-static or catatonit found on the host).
    #[serde(default)]
    pub init_path: Option<PathBuf>,
}

impl EngineConfig {
    /// Loads `$RCOMPOSE_CONFIG`, else the default path; a missing file means defaults.
    pub fn load() -> Result<EngineConfig, ConfigError> {
        let path = std::env::var_os("RCOMPOSE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| ConfigError::Parse { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(EngineConfig::default()),
            Err(e) => Err(ConfigError::Io { path, source: e }),
        }
    }

    pub fn max_downloads(&self) -> usize {
        self.max_concurrent_downloads
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_CONCURRENT_DOWNLOADS)
    }

    pub fn max_uploads(&self) -> usize {
        self.max_concurrent_uploads.filter(|n| *n > 0).unwrap_or(5)
    }

    /// Is `host` (a registry `host[:port]`) allowed without verified TLS? Loopback always is,
    /// as in docker.
    pub fn is_insecure(&self, host: &str) -> bool {
        let bare = strip_port(host);
        if bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            let entry = entry
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if entry == host || entry == bare {
                return true;
            }
            match (entry.split_once('/'), bare.parse::<IpAddr>()) {
                (Some((net, bits)), Ok(ip)) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_daemon_json_keys() {
        let c: EngineConfig = serde_json::from_str(
            r#"{"registry-mirrors":["http://127.0.0.1:5001"],"insecure-registries":["myreg:5000","10.0.0.0/8"],"max-concurrent-downloads":5,"debug":true}"#,
        )
        .unwrap();
        assert_eq!(c.registry_mirrors, vec!["http://127.0.0.1:5001"]);
        assert_eq!(c.max_downloads(), 5);
        assert!(c.is_insecure("myreg:5000"));
        assert!(c.is_insecure("10.1.2.3:5000"));
        assert!(!c.is_insecure("11.1.2.3"));
        assert!(!c.is_insecure("docker.io"));
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("127.0.0.1:41234"));
        assert!(c.is_insecure("[::1]:5000"));
        assert_eq!(EngineConfig::default().max_downloads(), 3);
    }
}
