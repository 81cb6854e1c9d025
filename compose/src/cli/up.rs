//! `rcompose up` and `rcompose create`: observe, plan, execute; then wait, or stream the logs
//! until the project stops.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use engine::container::ops::Engine;
use engine::image::ImageStore;

use super::attached::{self, Cascade, Outcome};
use super::logs::{Printer, Style};
use super::stack::{self, color_enabled, Progress, Stack};
use super::GlobalOpts;
use crate::model::DependsCondition;
use crate::orchestrate::execute;
use crate::orchestrate::local::{self, Local, LocalOptions};
use crate::orchestrate::observe::Observed;
use crate::orchestrate::plan::{self, Op, PullPolicy, UpOptions, World};
use crate::orchestrate::OrchestrateError;

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Services to start (default: all), with their dependencies
    pub services: Vec<String>,
    /// Detached mode: run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Pull images before running: always, missing or never
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Don't recreate containers that exist, even if their configuration changed
    #[arg(long)]
    pub no_recreate: bool,
    /// Recreate the dependencies of the named services even when they are up to date
    #[arg(long, conflicts_with = "no_recreate")]
    pub always_recreate_deps: bool,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Don't start the services after creating them
    #[arg(long)]
    pub no_start: bool,
    /// Scale SERVICE to NUM instances (overrides `scale` in the compose file)
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Remove containers for services not defined in the compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
    /// Wait for services to be running|healthy (implies detached mode)
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Stop all containers if any container was stopped (attached mode)
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Stop all containers if any container exited with failure (attached mode)
    #[arg(long)]
    pub abort_on_container_failure: bool,
    /// Return the exit code of the selected service container (implies --abort-on-container-exit)
    #[arg(long, value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Restrict attaching to these services
    #[arg(long, value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Do not attach (stream logs) to these services
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    /// Show timestamps
    #[arg(long)]
    pub timestamps: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Don't print the `name |` prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Pull without printing progress
    #[arg(long)]
    pub quiet_pull: bool,
    /// Print the plan, each step with its cause, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Maximum number of steps run at once (also COMPOSE_PARALLEL_LIMIT)
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Build images before starting containers
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long)]
    pub no_build: bool,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Services to create (default: all)
    services: Vec<String>,
    /// Pull images before creating: always, missing or never
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pull: Option<String>,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long, conflicts_with = "no_recreate")]
    force_recreate: bool,
    /// Don't recreate containers that exist
    #[arg(long)]
    no_recreate: bool,
    /// Remove containers for services not defined in the compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long, value_name = "SERVICE=NUM")]
    scale: Vec<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Pull without printing progress
    #[arg(long)]
    quiet_pull: bool,
}

impl From<CreateArgs> for UpArgs {
    fn from(c: CreateArgs) -> Self {
        UpArgs {
            services: c.services,
            detach: true,
            pull: c.pull,
            force_recreate: c.force_recreate,
            no_recreate: c.no_recreate,
            always_recreate_deps: false,
            no_deps: false,
            no_start: true,
            scale: c.scale,
            remove_orphans: c.remove_orphans,
            renew_anon_volumes: false,
            wait: false,
            wait_timeout: None,
            abort_on_container_exit: false,
            abort_on_container_failure: false,
            exit_code_from: None,
            attach: Vec::new(),
            no_attach: Vec::new(),
            timeout: None,
            timestamps: false,
            no_color: false,
            no_log_prefix: false,
            quiet_pull: c.quiet_pull,
            dry_run: c.dry_run,
            parallel: None,
            build: false,
            no_build: false,
        }
    }
}

fn parse_scale(items: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    items
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid --scale {s:?}: expected SERVICE=NUM"))?;
            let n = v
                .parse()
                .map_err(|_| anyhow!("invalid --scale {s:?}: {v:?} is not a number"))?;
            Ok((k.to_owned(), n))
        })
        .collect()
}

/// Everything that exists now, as the planner needs it.
pub fn observe_world(global: &GlobalOpts, st: &Stack, engine: &Engine) -> anyhow::Result<World> {
    let nm = local::network_manager(&global.root)?;
    let networks: BTreeSet<String> = nm.list()?.into_iter().map(|n| n.name).collect();
    let volumes: BTreeSet<String> = engine
        .volumes
        .list()
        .context("listing volumes")?
        .into_iter()
        .map(|v| v.name)
        .collect();
    let store = ImageStore::open(&global.root).context("opening the image store")?;
    let mut images = BTreeMap::new();
    for s in st.project.services.values() {
        let image = s.image_or_default(&st.project);
        if let Ok(rec) = store.resolve(&image) {
            images.insert(image, rec.id.to_string());
        }
    }
    Ok(World {
        observed: Observed::load(engine, &st.project.name)?,
        networks,
        volumes,
        images,
    })
}

pub fn run_create(global: &GlobalOpts, a: CreateArgs) -> anyhow::Result<i32> {
    run(global, a.into())
}

pub fn run(global: &GlobalOpts, a: UpArgs) -> anyhow::Result<i32> {
    let st = stack::load(global, &a.services)?;
    let engine = stack::engine(global)?;
    if !a.no_build {
        build_missing(global, &st, &a)?;
    }
    let mut world = observe_world(global, &st, &engine)?;
    let mut opts = UpOptions {
        services: a.services.clone(),
        no_deps: a.no_deps,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        always_recreate_deps: a.always_recreate_deps,
        no_start: a.no_start,
        remove_orphans: a.remove_orphans,
        pull: a.pull.as_deref().map(|p| match p {
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            _ => PullPolicy::Missing,
        }),
        scale: parse_scale(&a.scale)?,
    };
    let mut up = plan::plan_up(&st.project, &st.hashes, &world, &opts)?;
    if !up.orphans.is_empty() {
        eprintln!(
            "WARN Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            up.orphans.join(", ")
        );
    }
    if a.dry_run {
        print!("{}", up.plan);
        return Ok(0);
    }
    let backend = st.backend(
        global,
        LocalOptions {
            timeout: a.timeout,
            renew_anon_volumes: a.renew_anon_volumes,
            remove_anon_volumes: false,
        },
    )?;
    // The second plan below creates the same containers: a taken port fails before any pull.
    preflight_ports(&backend, &up.plan)?;
    let progress = Progress::new(false);
    let quiet_pull = a.quiet_pull;
    let on_event = |e: execute::Event<'_>| {
        if quiet_pull {
            let op = match &e {
                execute::Event::Started(op)
                | execute::Event::Done(op)
                | execute::Event::Skipped(op)
                | execute::Event::Failed(op, _) => op,
            };
            if matches!(op, Op::PullImage { .. }) && !matches!(e, execute::Event::Failed(..)) {
                return;
            }
        }
        progress.event(e)
    };
    let parallel = stack::parallel_limit(a.parallel);
    // Images first, then the containers planned against the images that are there now: a tag
    // that moved on the registry recreates its containers (docker compose pulls before it
    // converges).
    let pulls = up.plan.only(|op| matches!(op, Op::PullImage { .. }));
    if !pulls.is_empty() {
        if failed(&execute::run(&pulls, &backend, parallel, &on_event)) {
            return Ok(1);
        }
        world = observe_world(global, &st, &engine)?;
        opts.pull = Some(PullPolicy::Never);
        up = plan::plan_up(&st.project, &st.hashes, &world, &opts)?;
    }
    let attach = !(a.detach || a.wait || a.no_start);
    let offsets = if attach {
        log_offsets(&engine, &world.observed)
    } else {
        HashMap::new()
    };
    if failed(&execute::run(&up.plan, &backend, parallel, &on_event)) {
        return Ok(1);
    }
    if a.no_start {
        return Ok(0);
    }
    let selected = plan::selected_services(&st.project, &a.services, a.no_deps)?;
    if a.wait {
        return wait_ready(&engine, &st, &selected, a.wait_timeout, &progress);
    }
    if a.detach {
        return Ok(0);
    }
    attached(global, &engine, &st, &selected, &a, offsets)
}

/// Reports the steps that failed; true when there were any.
fn failed(errors: &[(petgraph::graph::NodeIndex, String)]) -> bool {
    for (_, e) in errors {
        eprintln!("Error: {e}");
    }
    !errors.is_empty()
}

/// How far each existing container's log goes now.
fn log_offsets(engine: &Engine, observed: &Observed) -> HashMap<String, u64> {
    observed
        .services
        .values()
        .flatten()
        .filter_map(|e| {
            let path = engine::container::logs::path(&engine.store.dir(&e.id), &e.id);
            let len = std::fs::metadata(path).ok()?.len();
            Some((e.id.clone(), len))
        })
        .collect()
}

/// Builds the images of selected services that have a `build:` section and whose image is
/// missing (all of them with `--build`), before planning: the plan then sees the new image ids
/// and recreates what they changed.
fn build_missing(global: &GlobalOpts, st: &Stack, a: &UpArgs) -> anyhow::Result<()> {
    let store = ImageStore::open(&global.root).context("opening the image store")?;
    let selected = plan::selected_services(&st.project, &a.services, a.no_deps)?;
    for name in selected {
        let svc = &st.project.services[&name];
        if svc.build.is_none() {
            continue;
        }
        let image = svc.image_or_default(&st.project);
        if !a.build && store.resolve(&image).is_ok() {
            continue;
        }
        if a.dry_run {
            println!(
                "Building    Image {image}  (service {name}{})",
                if a.build {
                    ", --build"
                } else {
                    ", not present locally"
                }
            );
            continue;
        }
        eprintln!(" - Service {name}  Building");
        let opts =
            super::build::service_build_options(&st.project, svc, &BTreeMap::new(), false, false)?;
        super::build::build_image(&global.root, &opts, a.quiet_pull)
            .with_context(|| format!("building the image of service {name}"))?;
        eprintln!(" ✔ Service {name}  Built");
    }
    Ok(())
}

/// A host port already published or in use is an error before anything starts.
fn preflight_ports(backend: &Local, plan: &plan::Plan) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for step in plan.graph.node_weights() {
        if let Op::CreateContainer {
            service, number, ..
        } = &step.op
        {
            all.extend(backend.container_plan(service, *number)?.ports);
        }
    }
    if all.is_empty() {
        return Ok(());
    }
    let nm = local::network_manager(&backend.root)?;
    nm.check_ports(&all)
        .context("cannot publish the project's ports")?;
    Ok(())
}

/// `--wait`: every selected container running, and healthy where it has a healthcheck.
fn wait_ready(
    engine: &Engine,
    st: &Stack,
    services: &[String],
    timeout: Option<u64>,
    progress: &Progress,
) -> anyhow::Result<i32> {
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t));
    let list = stack::containers(engine, &st.project.name, services, false)?;
    let mut failed = false;
    for c in &list {
        let healthy = c.config.healthcheck.as_ref().is_some_and(|h| !h.disabled());
        let cond = if healthy {
            DependsCondition::ServiceHealthy
        } else {
            DependsCondition::ServiceStarted
        };
        let result = local::wait_condition(engine, &c.config.name, cond, deadline).and_then(|()| {
            // Started is not enough for a container that already died.
            let now = engine.store.find(c.id())?;
            if now.state.is_active() {
                Ok(())
            } else {
                Err(OrchestrateError::Dependency(format!(
                    "container {} exited ({})",
                    c.config.name, now.state.exit_code
                )))
            }
        });
        match result {
            Ok(()) => progress.line(
                "✔",
                "Container",
                &c.config.name,
                if healthy { "Healthy" } else { "Running" },
            ),
            Err(OrchestrateError::Timeout { .. }) => {
                let secs = timeout.unwrap_or_default();
                let what = if healthy { "healthy" } else { "running" };
                progress.line(
                    "✘",
                    "Container",
                    &c.config.name,
                    &format!("Error: not {what} after {secs}s (--wait-timeout)"),
                );
                failed = true;
            }
            Err(e) => {
                progress.line("✘", "Container", &c.config.name, &format!("Error: {e}"));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// Attached mode: stream logs until every container stopped; Ctrl-C stops the project
/// gracefully, a second one kills it.
fn attached(
    global: &GlobalOpts,
    engine: &Engine,
    st: &Stack,
    selected: &[String],
    a: &UpArgs,
    offsets: HashMap<String, u64>,
) -> anyhow::Result<i32> {
    let show: Vec<String> = if a.attach.is_empty() {
        selected
            .iter()
            .filter(|s| {
                !a.no_attach.contains(s)
                    && st.project.services.get(*s).and_then(|x| x.attach) != Some(false)
            })
            .cloned()
            .collect()
    } else {
        a.attach.clone()
    };
    let printer = Printer::new(
        Style {
            timestamps: a.timestamps,
            prefix: !a.no_log_prefix,
            color: color_enabled(a.no_color),
        },
        &stack::containers(engine, &st.project.name, &show, false)?,
    );
    let interrupts = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        let (interrupts, stop) = (interrupts.clone(), stop.clone());
        std::thread::spawn(move || {
            for _ in signals.forever() {
                interrupts.fetch_add(1, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let cascade = if a.abort_on_container_exit || a.exit_code_from.is_some() {
        Cascade::Exit
    } else if a.abort_on_container_failure {
        Cascade::Failure
    } else {
        Cascade::None
    };
    let outcome = attached::run(
        engine,
        &printer,
        &attached::Options {
            project: &st.project.name,
            watch: selected,
            show: &show,
            cascade,
            offsets,
        },
        &stop,
    )?;
    let mut exit_code = 0;
    match outcome {
        Outcome::Stopped => {}
        Outcome::Interrupted => {
            printer.note("Gracefully stopping... (press Ctrl+C again to force)");
            // docker compose's code for a run cut short by Ctrl-C (128 + SIGINT).
            exit_code = 130;
        }
        Outcome::Aborted { exit_code: code } => {
            printer.note("Aborting on container exit...");
            exit_code = code;
        }
    }
    if outcome != Outcome::Stopped {
        let backend = st.backend(
            global,
            LocalOptions {
                timeout: a.timeout,
                ..Default::default()
            },
        )?;
        // What runs now: containers may have been replaced since `up` started them.
        let names: Vec<String> = stack::containers(engine, &st.project.name, selected, false)?
            .into_iter()
            .filter(|c| c.state.is_active())
            .map(|c| c.config.name)
            .collect();
        let seen = interrupts.load(Ordering::SeqCst);
        let engine = &backend.engine;
        std::thread::scope(|scope| {
            for n in &names {
                scope.spawn(move || {
                    let _ = engine.stop(n, a.timeout);
                });
            }
            // A second Ctrl-C while stopping kills what is still running.
            let (names, interrupts) = (&names, &interrupts);
            scope.spawn(move || loop {
                if interrupts.load(Ordering::SeqCst) > seen {
                    for n in names {
                        let _ = engine.kill(n, "SIGKILL");
                    }
                    return;
                }
                let active = names
                    .iter()
                    .any(|n| engine.store.find(n).is_ok_and(|c| c.state.is_active()));
                if !active {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            });
        });
    }
    if let Some(svc) = &a.exit_code_from {
        let list = stack::containers(engine, &st.project.name, std::slice::from_ref(svc), false)?;
        if let Some(c) = list.first() {
            exit_code = c.state.exit_code;
        }
    }
    Ok(exit_code)
}
