//! `rcompose down`: the project's containers, networks and (with `-v`) volumes, and nothing of
//! any other project.

use std::collections::BTreeSet;

use anyhow::bail;

use super::stack::{self, Progress};
use super::GlobalOpts;
use crate::orchestrate::execute;
use crate::orchestrate::labels;
use crate::orchestrate::local::{self, LocalOptions};
use crate::orchestrate::observe::Observed;
use crate::orchestrate::plan::{self, DownOptions};

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Services to stop and remove (default: all, with networks)
    services: Vec<String>,
    /// Remove named volumes declared in the volumes section and anonymous volumes
    #[arg(short, long)]
    volumes: bool,
    /// Remove images used by services: local (no custom tag) or all
    #[arg(long, value_parser = ["local", "all"])]
    rmi: Option<String>,
    /// Remove containers for services not defined in the compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    timeout: Option<u64>,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Maximum number of steps run at once (also COMPOSE_PARALLEL_LIMIT)
    #[arg(long)]
    parallel: Option<usize>,
}

pub fn run(global: &GlobalOpts, a: DownArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let name = &st.project.name;
    let mut observed = Observed::load(&engine, name)?;
    let nm = local::network_manager(&global.root)?;
    // Networks and volumes carry the project label; only ours are touched.
    let owned = |labels_: &std::collections::BTreeMap<String, String>| {
        labels_.get(labels::PROJECT).map(String::as_str) == Some(name.as_str())
    };
    let mut networks: BTreeSet<String> = nm
        .list()?
        .into_iter()
        .filter(|n| owned(&n.labels))
        .map(|n| n.name)
        .collect();
    let mut volumes: BTreeSet<String> = engine
        .volumes
        .list()?
        .into_iter()
        .filter(|v| owned(&v.labels))
        .map(|v| v.name)
        .collect();
    if !a.services.is_empty() {
        // Only those services' containers; networks and volumes stay (others may use them).
        observed.services.retain(|s, _| a.services.contains(s));
        observed.oneoff.retain(|e| a.services.contains(&e.service));
        networks.clear();
        volumes.clear();
    }
    let plan = plan::plan_down(
        &st.project,
        &observed,
        &networks,
        &volumes,
        &DownOptions {
            remove_orphans: a.remove_orphans,
            volumes: a.volumes,
        },
    )?;
    if a.dry_run {
        print!("{plan}");
        return Ok(0);
    }
    let images: Vec<String> = match a.rmi.as_deref() {
        None => Vec::new(),
        Some(kind) => st
            .project
            .services
            .values()
            .filter(|s| kind == "all" || s.image.is_none())
            .map(|s| s.image_or_default(&st.project))
            .collect(),
    };
    let backend = st.backend(
        global,
        LocalOptions {
            timeout: a.timeout,
            renew_anon_volumes: false,
            remove_anon_volumes: a.volumes,
        },
    )?;
    let progress = Progress::new(false);
    let errors = execute::run(&plan, &backend, stack::parallel_limit(a.parallel), &|e| {
        progress.event(e)
    });
    let mut failed = !errors.is_empty();
    for (_, e) in &errors {
        eprintln!("Error: {e}");
    }
    if !images.is_empty() {
        let store = engine::image::ImageStore::open(&global.root)?;
        for img in BTreeSet::<String>::from_iter(images) {
            match store.resolve(&img) {
                Ok(_) => match super::image::remove_image(&store, &img) {
                    Ok(()) => progress.line("✔", "Image", &img, "Removed"),
                    Err(e) => {
                        progress.line("✘", "Image", &img, &format!("Error: {e:#}"));
                        failed = true;
                    }
                },
                Err(_) => continue,
            }
        }
    }
    if failed {
        bail!("down did not finish cleanly (see the errors above)");
    }
    Ok(0)
}

impl DownArgs {
    /// `down` of the whole project with default options (`wait --down-project`).
    pub fn for_project() -> Self {
        DownArgs {
            services: Vec::new(),
            volumes: false,
            rmi: None,
            remove_orphans: false,
            timeout: None,
            dry_run: false,
            parallel: None,
        }
    }
}
