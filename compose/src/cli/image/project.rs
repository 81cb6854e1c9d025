//! `rcompose pull` and `rcompose push`: the images of a compose project's services.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use engine::image::ImageStore;
use engine::reference::Reference;
use indexmap::IndexMap;

use super::super::project::{load_project, LoadSwitches};
use super::super::GlobalOpts;
use crate::model::Service;

#[derive(Debug, clap::Args)]
pub struct ProjectPullArgs {
    /// Services to pull (default: all)
    services: Vec<String>,
    /// Pull only what is missing (`missing`) or everything (`always`)
    #[arg(long, value_parser = ["missing", "always"])]
    policy: Option<String>,
    /// Keep going when an image fails to pull
    #[arg(long)]
    ignore_pull_failures: bool,
    /// Also pull the services the named ones depend on
    #[arg(long)]
    include_deps: bool,
    /// Skip services that have a build section
    #[arg(long)]
    ignore_buildable: bool,
    /// Pull without printing progress
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct ProjectPushArgs {
    /// Services to push (default: all with a build section and an image name)
    services: Vec<String>,
    /// Keep going when an image fails to push
    #[arg(long)]
    ignore_push_failures: bool,
    /// Also push the services the named ones depend on
    #[arg(long)]
    include_deps: bool,
    /// Push without printing progress
    #[arg(short, long)]
    quiet: bool,
}

/// The named services (all when none is named), plus their dependencies if asked.
fn select<'a>(
    services: &'a IndexMap<String, Service>,
    names: &[String],
    deps: bool,
) -> anyhow::Result<Vec<&'a Service>> {
    if names.is_empty() {
        return Ok(services.values().collect());
    }
    let mut chosen = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        let Some(s) = services.get(&n) else {
            bail!("no such service: {n}")
        };
        if chosen.insert(n.clone()) && deps {
            todo.extend(s.depends_on.keys().cloned());
        }
    }
    Ok(services
        .values()
        .filter(|s| chosen.contains(&s.name))
        .collect())
}

pub fn run_pull(global: &GlobalOpts, args: ProjectPullArgs) -> anyhow::Result<i32> {
    let loaded = load_project(global, &args.services, LoadSwitches::default())?;
    let project = loaded.project()?;
    let store = ImageStore::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))?;
    let mut pulled = BTreeSet::new();
    let mut failed = false;
    for svc in select(&project.services, &args.services, args.include_deps)? {
        let Some(image) = svc.image.as_deref() else {
            continue;
        };
        if svc.build.is_some() && args.ignore_buildable {
            continue;
        }
        let policy = args
            .policy
            .as_deref()
            .or(svc.pull_policy.as_deref())
            .unwrap_or("missing");
        let local = store.resolve(image).is_ok();
        let skip = match policy {
            "never" | "build" => true,
            "missing" | "if_not_present" => local && args.policy.is_some(),
            _ => false,
        };
        if skip || !pulled.insert(image.to_owned()) {
            continue;
        }
        if !args.quiet {
            println!("{} Pulling", svc.name);
        }
        match super::pull_image(&store, image, svc.platform.as_deref(), true) {
            Ok(_) => {
                if !args.quiet {
                    println!("{} Pulled", svc.name);
                }
            }
            // A service that can be built is not lost when its image is not in a registry.
            Err(e) if svc.build.is_some() => eprintln!(
                "WARN {} pull failed ({e:#}); it can be built instead",
                svc.name
            ),
            Err(e) if args.ignore_pull_failures => {
                eprintln!("WARN {} pull failed: {e:#}", svc.name)
            }
            Err(e) => {
                eprintln!("{} Error: {e:#}", svc.name);
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn run_push(global: &GlobalOpts, args: ProjectPushArgs) -> anyhow::Result<i32> {
    let loaded = load_project(global, &args.services, LoadSwitches::default())?;
    let project = loaded.project()?;
    let store = ImageStore::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))?;
    let mut failed = false;
    let mut pushed = BTreeSet::new();
    for svc in select(&project.services, &args.services, args.include_deps)? {
        // As docker compose: only images the project builds are pushed.
        let (Some(image), Some(_)) = (svc.image.as_deref(), svc.build.as_ref()) else {
            continue;
        };
        if !pushed.insert(image.to_owned()) {
            continue;
        }
        let r = Reference::parse(image).with_context(|| format!("service {}", svc.name))?;
        if !args.quiet {
            println!("{} Pushing", svc.name);
        }
        match super::push_image(&store, &r, true) {
            Ok(()) => {
                if !args.quiet {
                    println!("{} Pushed", svc.name);
                }
            }
            Err(e) if args.ignore_push_failures => {
                eprintln!("WARN {} push failed: {e:#}", svc.name)
            }
            Err(e) => {
                eprintln!("{} Error: {e:#}", svc.name);
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, deps: &[&str]) -> (String, Service) {
        let mut s = Service {
            name: name.to_owned(),
            ..Service::default()
        };
        for d in deps {
            s.depends_on.insert((*d).to_owned(), Default::default());
        }
        (name.to_owned(), s)
    }

    #[test]
    fn selects_services_and_dependencies() {
        let all: IndexMap<String, Service> = [
            svc("web", &["api"]),
            svc("api", &["db"]),
            svc("db", &[]),
            svc("x", &[]),
        ]
        .into_iter()
        .collect();
        let names = |v: Vec<&Service>| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(select(&all, &[], false).unwrap()),
            vec!["web", "api", "db", "x"]
        );
        assert_eq!(
            names(select(&all, &["web".into()], false).unwrap()),
            vec!["web"]
        );
        assert_eq!(
            names(select(&all, &["web".into()], true).unwrap()),
            vec!["web", "api", "db"]
        );
        assert!(select(&all, &["nope".into()], false).is_err());
    }
}
