//! Registry credentials in a docker-compatible `config.json` (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`): `auths.<server>.auth` is base64 of `user:password`. Credentials that
//! docker stored there are used as they are; `rcompose login` writes the same format (mode 0600),
//! keeping every other key of the file.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::fsutil::write_atomic;

/// The key docker uses for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("credentials file {path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no credentials file location: neither DOCKER_CONFIG nor HOME is set")]
    NoLocation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The credentials file, loaded.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// `docker.io` and its aliases share Docker Hub's key.
pub fn server_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_AUTH_KEY.to_owned(),
        other => other.to_owned(),
    }
}

impl CredentialStore {
    pub fn default_path() -> Result<PathBuf, CredentialsError> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return Ok(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".docker/config.json"))
            .ok_or(CredentialsError::NoLocation)
    }

    pub fn load_default() -> Result<CredentialStore, CredentialsError> {
        Self::load(&Self::default_path()?)
    }

    /// Loads `path`; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<CredentialStore, CredentialsError> {
        let doc = match fs::read(path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => serde_json::from_slice(&b).map_err(|source| CredentialsError::Parse {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(CredentialsError::Io {
                    path: path.to_owned(),
                    source: e,
                })
            }
        };
        Ok(CredentialStore {
            path: path.to_owned(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Credentials for a registry (`docker.io`, `host:port`); keys written with a scheme or a
    /// path (`https://host/v1/`) match too, as docker's do.
    pub fn get(&self, registry: &str) -> Option<Credentials> {
        let want = server_key(registry);
        let auths = self.doc.get("auths")?.as_object()?;
        let entry = auths.get(&want).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| normalize_key(k) == normalize_key(&want))
                .map(|(_, v)| v)
        })?;
        let obj = entry.as_object()?;
        if let Some(auth) = obj
            .get("auth")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()?;
            let s = String::from_utf8(raw).ok()?;
            let (u, p) = s.split_once(':')?;
            return Some(Credentials {
                username: u.to_owned(),
                password: p.to_owned(),
            });
        }
        let u = obj.get("username")?.as_str()?;
        let p = obj.get("password")?.as_str()?;
        Some(Credentials {
            username: u.to_owned(),
            password: p.to_owned(),
        })
    }

    pub fn set(&mut self, registry: &str, creds: &Credentials) {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(a) = auths.as_object_mut() {
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(auth));
            a.insert(server_key(registry), Value::Object(entry));
        }
    }

    /// Forgets a registry's credentials; false if there were none.
    pub fn remove(&mut self, registry: &str) -> bool {
        let want = server_key(registry);
        let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize_key(k) == normalize_key(&want))
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    }

    /// Writes the file atomically with mode 0600 (it holds passwords).
    pub fn save(&self) -> Result<(), CredentialsError> {
        let io = |source| CredentialsError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let json =
            serde_json::to_vec_pretty(&self.doc).map_err(|source| CredentialsError::Parse {
                path: self.path.clone(),
                source,
            })?;
        write_atomic(&self.path, &json).map_err(io)?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600)).map_err(io)
    }
}

/// Prompts on the terminal and reads a line with echo turned off (restored afterwards, also
/// on error). Without a terminal on stdin, reads a plain line.
pub fn read_password(prompt: &str) -> io::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    use std::io::{BufRead, Write};
    let stdin = io::stdin();
    let mut err = io::stderr();
    err.write_all(prompt.as_bytes())?;
    err.flush()?;
    let saved = tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        tcsetattr(&stdin, OptionalActions::Now, t)?;
        err.write_all(b"\n")?;
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn normalize_key(k: &str) -> String {
    let k = k
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn reads_docker_written_auths_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        // "user:pa:ss" — passwords may contain colons.
        fs::write(&p, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"reg.example:5000":{"auth":""}},"psFormat":"x"}"#).unwrap();
        let mut s = CredentialStore::load(&p).unwrap();
        assert_eq!(
            s.get("docker.io"),
            Some(Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(s.get("reg.example:5000"), None);
        s.set(
            "127.0.0.1:5000",
            &Credentials {
                username: "a".into(),
                password: "b".into(),
            },
        );
        s.save().unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let s2 = CredentialStore::load(&p).unwrap();
        assert_eq!(s2.get("127.0.0.1:5000").unwrap().username, "a");
        assert!(fs::read_to_string(&p).unwrap().contains("psFormat"));
        let mut s3 = s2.clone();
        assert!(s3.remove("127.0.0.1:5000"));
        assert!(!s3.remove("127.0.0.1:5000"));
        assert!(s3.remove("index.docker.io"));
        assert_eq!(s3.get("docker.io"), None);
        let missing = CredentialStore::load(&d.path().join("none.json")).unwrap();
        assert_eq!(missing.get("docker.io"), None);
    }
}
