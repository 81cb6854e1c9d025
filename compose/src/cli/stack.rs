//! What every project command shares: the loaded project with its config hashes, the project's
//! containers, progress lines, and selecting containers by service.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Context;
use engine::container::ops::Engine;
use engine::container::store::Container;

use super::project::{load_project, LoadSwitches};
use super::GlobalOpts;
use crate::model::Project;
use crate::orchestrate::execute::Event;
use crate::orchestrate::labels;
use crate::orchestrate::local::{Local, LocalOptions};
use crate::orchestrate::translate::ProjectInfo;

pub struct Stack {
    pub project: Project,
    pub info: ProjectInfo,
    pub hashes: BTreeMap<String, String>,
}

impl Stack {
    /// The real backend (engine and networks of the state root) for this project.
    pub fn backend(&self, global: &GlobalOpts, opts: LocalOptions) -> anyhow::Result<Local> {
        Ok(Local::open(
            &global.root,
            self.project.clone(),
            self.info.clone(),
            self.hashes.clone(),
            opts,
        )?)
    }
}

/// Loads the project for a command naming `services` (they enable their profiles).
pub fn load(global: &GlobalOpts, services: &[String]) -> anyhow::Result<Stack> {
    let loaded = load_project(global, services, LoadSwitches::default())?;
    let project = loaded.project()?;
    for s in services {
        if !project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let hashes = project
        .services
        .iter()
        .map(|(k, s)| {
            let v = serde_json::to_value(s).unwrap_or_default();
            (k.clone(), crate::hash::service_hash(&v))
        })
        .collect();
    let info = ProjectInfo {
        working_dir: loaded.working_dir.display().to_string(),
        config_files: loaded
            .config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    Ok(Stack {
        project,
        info,
        hashes,
    })
}

/// The project name for commands that also work without a compose file (`down -p x`, `ps`):
/// the loaded project's, or `-p` alone when no file is found.
pub fn load_or_name(global: &GlobalOpts, services: &[String]) -> anyhow::Result<Stack> {
    match load(global, services) {
        Ok(s) => Ok(s),
        Err(e) => match &global.project_name {
            Some(name) if global.files.is_empty() => Ok(Stack {
                project: Project {
                    name: crate::discovery::normalize_project_name(name),
                    ..Default::default()
                },
                info: ProjectInfo::default(),
                hashes: BTreeMap::new(),
            }),
            _ => Err(e),
        },
    }
}

pub fn engine(global: &GlobalOpts) -> anyhow::Result<Engine> {
    Engine::open(&global.root)
        .with_context(|| format!("opening the state root {}", global.root.display()))
}

/// The project's service containers (not one-off ones unless `oneoff`), for `services` (all
/// when empty), ordered by service then number.
pub fn containers(
    engine: &Engine,
    project: &str,
    services: &[String],
    oneoff: bool,
) -> anyhow::Result<Vec<Container>> {
    let mut list: Vec<Container> =
        crate::orchestrate::observe::project_containers(engine, project)?
            .into_iter()
            .filter(|c| {
                let l = &c.config.labels;
                let is_oneoff = l.get(labels::ONEOFF).is_some_and(|v| v == "True");
                (oneoff || !is_oneoff)
                    && (services.is_empty()
                        || l.get(labels::SERVICE).is_some_and(|s| services.contains(s)))
            })
            .collect();
    list.sort_by(|a, b| {
        let key = |c: &Container| {
            (
                c.config
                    .labels
                    .get(labels::SERVICE)
                    .cloned()
                    .unwrap_or_default(),
                number(c),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(list)
}

pub fn service_of(c: &Container) -> &str {
    c.config
        .labels
        .get(labels::SERVICE)
        .map(String::as_str)
        .unwrap_or("")
}

pub fn number(c: &Container) -> u32 {
    c.config
        .labels
        .get(labels::NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Progress lines on stderr as docker compose prints them in plain mode
/// (` ✔ Container p-web-1  Started`).
pub struct Progress {
    quiet: bool,
    out: Mutex<()>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            out: Mutex::new(()),
        }
    }

    pub fn line(&self, mark: &str, kind: &str, name: &str, what: &str) {
        if self.quiet {
            return;
        }
        let _g = self.out.lock();
        eprintln!(" {mark} {kind} {name}  {what}");
    }

    pub fn event(&self, e: Event<'_>) {
        match e {
            Event::Started(op) => {
                let (kind, name) = op.subject();
                if !matches!(op, crate::orchestrate::plan::Op::Keep { .. }) {
                    self.line(" ", kind, name, op.verbs().0);
                }
            }
            Event::Done(op) => {
                let (kind, name) = op.subject();
                self.line("✔", kind, name, op.verbs().1);
            }
            Event::Failed(op, err) => {
                let (kind, name) = op.subject();
                self.line("✘", kind, name, &format!("Error: {err}"));
            }
            Event::Skipped(op) => {
                let (kind, name) = op.subject();
                self.line("-", kind, name, "Skipped (a step it depends on failed)");
            }
        }
    }
}

/// `--parallel` or `COMPOSE_PARALLEL_LIMIT`, else a generous default (the work is mostly
/// waiting on the kernel and on containers).
pub fn parallel_limit(flag: Option<usize>) -> usize {
    flag.or_else(|| {
        std::env::var("COMPOSE_PARALLEL_LIMIT")
            .ok()
            .and_then(|v| v.parse().ok())
    })
    .filter(|n| *n > 0)
    .unwrap_or(64)
}

/// Colours for `name |` prefixes, cycling as docker compose does.
pub fn prefix_color(i: usize, enabled: bool) -> (&'static str, &'static str) {
    const COLORS: [&str; 6] = [
        "\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[91m",
    ];
    if enabled {
        (COLORS[i % COLORS.len()], "\x1b[0m")
    } else {
        ("", "")
    }
}

pub fn color_enabled(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}
