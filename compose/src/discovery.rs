//! Finding the compose files, the project directory, the `.env` file and the project name, the
//! way docker compose v2 does.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::dotenv;
use crate::error::LoadError;

/// File names searched for, in order of preference, in the working directory and its parents.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The variables compose interpolation sees: the `.env` file(s) under the shell environment
/// (the shell always wins).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: IndexMap<String, String>,
}

impl Environment {
    pub fn new(vars: IndexMap<String, String>) -> Self {
        Environment { vars }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    pub fn vars(&self) -> &IndexMap<String, String> {
        &self.vars
    }

    /// Adds `file_vars` beneath what is already set.
    pub fn add_defaults(&mut self, file_vars: IndexMap<String, String>) {
        for (k, v) in file_vars {
            self.vars.entry(k).or_insert(v);
        }
    }

    /// Whether a variable counts as "true" (`1`, `true`, `yes`), for COMPOSE_* switches.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "y" | "on"
            )
        })
    }
}

/// Reads a dotenv file, interpolating its values against `env` (and earlier lines of the file).
pub fn read_env_file(
    path: &Path,
    env: &Environment,
) -> Result<IndexMap<String, String>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
    dotenv::parse(&text, &|k| env.get(k))
        .map_err(|e| LoadError::Plain(format!("{}: {e}", path.display())))
}

/// Looks for a compose file in `dir` and its parents; returns it with its override file.
pub fn find_compose_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        for name in DEFAULT_FILES {
            let candidate = d.join(name);
            if candidate.is_file() {
                let mut files = vec![candidate];
                if let Some(o) = override_file(d, name) {
                    files.push(o);
                }
                return Some(files);
            }
        }
        cur = d.parent();
    }
    None
}

/// `compose.yaml` → `compose.override.yaml`, `docker-compose.yml` → `docker-compose.override.yml`.
fn override_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let (stem, ext) = name.rsplit_once('.')?;
    let o = dir.join(format!("{stem}.override.{ext}"));
    o.is_file().then_some(o)
}

/// Whether a project name is acceptable as given: lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit.
pub fn is_valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A directory name made into a project name: lowercased, other characters dropped.
pub fn normalize_project_name(name: &str) -> String {
    let lowered = name.to_lowercase();
    let kept: String = lowered
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    kept.trim_start_matches(['-', '_']).to_string()
}

pub fn check_project_name(name: &str, origin: &str) -> Result<String, LoadError> {
    if is_valid_project_name(name) {
        Ok(name.to_string())
    } else {
        Err(LoadError::Plain(format!(
            "invalid project name {name:?} ({origin}): it must contain only lowercase letters, \
             decimal digits, dashes and underscores, and begin with a lowercase letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert!(is_valid_project_name("my-app_1"));
        assert!(!is_valid_project_name("My-App"));
        assert!(!is_valid_project_name("-app"));
        assert!(!is_valid_project_name(""));
        assert_eq!(normalize_project_name("My.App Dir"), "myappdir");
        assert_eq!(normalize_project_name("_x"), "x");
        assert!(check_project_name("Bad", "-p").is_err());
    }

    #[test]
    fn finds_files_in_parents_with_override() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("docker-compose.yml"), "services: {}").unwrap();
        std::fs::write(d.path().join("docker-compose.override.yml"), "services: {}").unwrap();
        std::fs::write(d.path().join("compose.yaml"), "services: {}").unwrap();
        std::fs::write(d.path().join("compose.override.yaml"), "services: {}").unwrap();
        let sub = d.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let files = find_compose_files(&sub).unwrap();
        assert_eq!(
            files,
            vec![
                d.path().join("compose.yaml"),
                d.path().join("compose.override.yaml")
            ]
        );
        std::fs::remove_file(d.path().join("compose.yaml")).unwrap();
        let files = find_compose_files(&sub).unwrap();
        assert_eq!(files[0], d.path().join("docker-compose.yml"));
        assert_eq!(files[1], d.path().join("docker-compose.override.yml"));
    }
}
