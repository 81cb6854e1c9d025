//! Loading the compose project named by the global options, for every project command.

use std::io::Read;

use anyhow::Context;

use super::GlobalOpts;
use crate::loader::{self, LoadOptions, Loaded};

/// Which loading steps a command wants (all of them, except for `config --no-…`).
#[derive(Debug, Clone, Copy)]
pub struct LoadSwitches {
    pub interpolate: bool,
    pub normalize: bool,
    pub resolve_paths: bool,
}

impl Default for LoadSwitches {
    fn default() -> Self {
        LoadSwitches {
            interpolate: true,
            normalize: true,
            resolve_paths: true,
        }
    }
}

/// Loads the project; warnings go to stderr as docker compose prints them.
pub fn load_project(
    global: &GlobalOpts,
    explicit_services: &[String],
    switches: LoadSwitches,
) -> anyhow::Result<Loaded> {
    let mut opts = LoadOptions::from_process().context("cannot read the working directory")?;
    opts.files = global.files.clone();
    opts.project_name = global.project_name.clone();
    opts.project_directory = global.project_directory.clone();
    opts.profiles = global.profiles.clone();
    opts.env_files = global.env_files.clone();
    opts.explicit_services = explicit_services.to_vec();
    opts.interpolate = switches.interpolate;
    opts.normalize = switches.normalize;
    opts.resolve_paths = switches.resolve_paths;
    if opts.files.iter().any(|f| f == "-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the compose file from standard input")?;
        opts.stdin_text = Some(text);
    }
    let loaded = loader::load(&opts)?;
    for w in &loaded.warnings {
        eprintln!("WARN {w}");
    }
    Ok(loaded)
}
