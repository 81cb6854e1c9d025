//! `rcompose run`: a one-off container of a service, as docker compose makes it: dependencies
//! started first (unless `--no-deps`), the service's ports left unpublished (unless
//! `--service-ports`), no network aliases (unless `--use-aliases`), labelled
//! `com.docker.compose.oneoff=True`, attached until it exits.
//!
//! Like `container`, the command parses its raw arguments with its own clap tree, so `-p`
//! (publish) after `run` does not collide with the global `-p` (project name).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use engine::container::attach::{self, AttachEnd, AttachOptions};
use engine::container::record::RestartPolicy;
use engine::container::{id, term};

use super::stack::{self, Progress};
use super::GlobalOpts;
use crate::model::{MountType, PortConfig, Project, Service, ServiceVolume};
use crate::orchestrate::execute::{self, Backend, Event};
use crate::orchestrate::labels;
use crate::orchestrate::local::{self, LocalOptions};
use crate::orchestrate::plan::{self, Op, UpOptions, World};
use crate::orchestrate::translate::{self, network_name, volume_name, ContainerPlan};

/// Label docker compose puts on one-off containers: the random part of the name, in full.
pub const SLUG: &str = "com.docker.compose.slug";

/// Raw arguments of `rcompose run`, parsed by [`RunCli`].
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(
    name = "rcompose run",
    about = "Run a one-off command on a service",
    override_usage = "rcompose run [OPTIONS] SERVICE [COMMAND]..."
)]
struct RunCli {
    /// Run container in background and print its name
    #[arg(short, long)]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    /// Run command with the service's ports enabled and mapped to the host
    #[arg(long)]
    service_ports: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    publish: Vec<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this environment)
    #[arg(short, long = "env", value_name = "KEY[=VAL]")]
    env: Vec<String>,
    /// Add or override a label
    #[arg(short, long = "label", value_name = "KEY=VAL")]
    label: Vec<String>,
    /// Bind mount a volume ([SOURCE:]TARGET[:MODE])
    #[arg(short, long = "volume", value_name = "VOLUME")]
    volume: Vec<String>,
    /// Override the entrypoint of the image
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Run as this user (name or uid)
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// Use the service's network aliases in the networks the container joins
    #[arg(long)]
    use_aliases: bool,
    /// Disable pseudo-TTY allocation (by default a TTY is allocated when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Keep STDIN open even if not attached (attached runs always keep it open)
    #[arg(short, long)]
    interactive: bool,
    /// Pull without printing progress
    #[arg(long)]
    quiet_pull: bool,
    /// Service to run
    service: String,
    /// Command and arguments (default: the service's command)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The hidden first argument of the helper that removes a detached `--rm` container once it
/// exited (with its network endpoints, which the engine alone cannot release).
const REAP: &str = "__reap";

/// The global `-p` (project name) is known to clap after the subcommand too, so `run -p 80:80`
/// would set the project name. The process's own arguments are read again instead: the project
/// name is the one given before `run`, and everything after `run` is `run`'s.
pub fn split_argv(argv: &[OsString]) -> Option<(Option<String>, Vec<OsString>)> {
    let mut project = None;
    let mut i = 1;
    while i < argv.len() {
        let t = argv[i].to_string_lossy();
        if t == "-p" || t == "--project-name" {
            project = argv.get(i + 1).map(|v| v.to_string_lossy().into_owned());
            i += 2;
        } else if let Some(v) = t.strip_prefix("--project-name=") {
            project = Some(v.to_owned());
            i += 1;
        } else if let Some(v) = t.strip_prefix("-p").filter(|v| !v.is_empty()) {
            project = Some(v.trim_start_matches('=').to_owned());
            i += 1;
        } else if super::GLOBAL_WITH_VALUE.contains(&t.as_ref()) {
            i += 2;
        } else if t.starts_with('-') {
            i += 1;
        } else if t == "run" {
            return Some((project, argv[i + 1..].to_vec()));
        } else {
            return None;
        }
    }
    None
}

pub fn run(global: &GlobalOpts, args: RunArgs) -> anyhow::Result<i32> {
    let raw: Vec<OsString> = std::env::args_os().collect();
    let (global, args) = match split_argv(&raw) {
        Some((project_name, tail)) => (
            &GlobalOpts {
                project_name,
                ..global.clone()
            },
            tail,
        ),
        None => (global, args.args),
    };
    if args.first().is_some_and(|a| a == REAP) {
        return reap(global, args.get(1));
    }
    let argv = std::iter::once(OsString::from("rcompose run")).chain(args);
    let a = match RunCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            e.print().context("printing usage")?;
            return Ok(if code == 0 { 0 } else { 1 });
        }
    };
    let st = stack::load(global, std::slice::from_ref(&a.service))?;
    let engine = stack::engine(global)?;
    let svc = st
        .project
        .services
        .get(&a.service)
        .cloned()
        .ok_or_else(|| anyhow!("no such service: {}", a.service))?;
    let backend = st.backend(global, LocalOptions::default())?;
    let progress = Progress::new(false);

    // Dependencies first, through the planner, as `up --no-recreate`-less `up DEPS` would.
    let deps = dependencies(&st.project, &svc);
    if !a.no_deps && !deps.is_empty() {
        let world = super::up::observe_world(global, &st, &engine)?;
        let opts = UpOptions {
            services: deps.clone(),
            ..Default::default()
        };
        let up = plan::plan_up(&st.project, &st.hashes, &world, &opts)?;
        let quiet_pull = a.quiet_pull;
        let errors = execute::run(&up.plan, &backend, stack::parallel_limit(None), &|e| {
            if quiet_pull && is_quiet_pull(&e) {
                return;
            }
            progress.event(e)
        });
        if !errors.is_empty() {
            for (_, e) in &errors {
                eprintln!("Error: {e}");
            }
            return Ok(1);
        }
    }

    // What the one-off container itself needs: its image (built when it has a build section
    // and is missing, as `up` does), networks, volumes.
    if svc.build.is_some() {
        let image = svc.image_or_default(&st.project);
        let store = engine::image::ImageStore::open(&global.root)?;
        if store.resolve(&image).is_err() {
            let opts = super::build::service_build_options(
                &st.project,
                &svc,
                &Default::default(),
                false,
                false,
            )?;
            super::build::build_image(&global.root, &opts, true)
                .with_context(|| format!("building the image of service {}", svc.name))?;
        }
    }
    let world = super::up::observe_world(global, &st, &engine)?;
    for op in resource_ops(&st.project, &svc, &world)? {
        if a.quiet_pull && matches!(op, Op::PullImage { .. }) {
            backend.execute(&op)?;
            continue;
        }
        let (kind, name) = op.subject();
        progress.line(" ", kind, name, op.verbs().0);
        match backend.execute(&op) {
            Ok(()) => progress.line("✔", kind, name, op.verbs().1),
            Err(e) => {
                progress.line("✘", kind, name, &format!("Error: {e}"));
                return Ok(1);
            }
        }
    }

    // The run container waits for its dependencies' conditions, as a service container does.
    if !a.no_deps {
        for (dep, d) in &svc.depends_on {
            for dc in
                stack::containers(&engine, &st.project.name, std::slice::from_ref(dep), false)?
            {
                local::wait_condition(&engine, &dc.config.name, d.condition, None)?;
            }
        }
    }

    let stdin_tty = std::io::stdin().is_terminal();
    let slug = id::generate_id();
    let opts = OneOff {
        name: a
            .name
            .clone()
            .unwrap_or_else(|| oneoff_name(&st.project.name, &svc.name, &slug)),
        command: a.command.clone(),
        entrypoint: a
            .entrypoint
            .as_deref()
            .map(|e| {
                shell_words::split(e).map_err(|err| anyhow!("invalid --entrypoint {e:?}: {err}"))
            })
            .transpose()?,
        env: a.env.clone(),
        labels: a.label.clone(),
        volumes: a.volume.clone(),
        publish: a.publish.clone(),
        service_ports: a.service_ports,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: if a.detach {
            svc.tty && !a.no_tty
        } else {
            !a.no_tty && stdin_tty
        },
        stdin_open: !a.detach || a.interactive || svc.stdin_open,
    };
    let one = oneoff_service(&svc, &opts, Path::new(&st.info.working_dir))?;
    let hash = st.hashes.get(&svc.name).cloned().unwrap_or_default();
    let mut cplan = translate::container_plan(&st.project, &st.info, &one, 1, &hash)?;
    for w in &cplan.warnings {
        eprintln!("WARN service {}: {w}", svc.name);
    }
    mark_oneoff(&mut cplan, &slug, a.use_aliases);
    let c = backend.create_from_plan(cplan, &[])?;

    if a.detach {
        if let Err(e) = engine.start(c.id(), false) {
            if a.rm {
                let _ = backend.remove_container(c.id(), true);
            }
            return Err(e.into());
        }
        if a.rm {
            spawn_reaper(global, c.id())?;
        }
        println!("{}", c.config.name);
        return Ok(0);
    }

    if let Err(e) = engine.start(c.id(), true) {
        if a.rm {
            let _ = backend.remove_container(c.id(), true);
        }
        return Err(e.into());
    }
    // Without a TTY, Ctrl-C and SIGTERM go to the container, as docker compose forwards them.
    let done = Arc::new(AtomicBool::new(false));
    if !c.config.tty {
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        let handle = signals.handle();
        let engine_s = engine.clone();
        let id_s = c.id().to_owned();
        let done_s = done.clone();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if done_s.load(Ordering::SeqCst) {
                    return;
                }
                let name = if sig == signal_hook::consts::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let _ = engine_s.kill(&id_s, name);
            }
        });
        // The handle closes the iterator once the session is over.
        let done_h = done.clone();
        std::thread::spawn(move || {
            while !done_h.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            handle.close();
        });
    }
    let keys = term::parse_detach_keys(&c.config.detach_keys)
        .ok_or_else(|| anyhow!("invalid detach keys {:?}", c.config.detach_keys))?;
    let end = attach::attach(
        &c.dir,
        &AttachOptions {
            stdin: c.config.open_stdin,
            tty: c.config.tty,
            detach_keys: keys,
        },
    );
    done.store(true, Ordering::SeqCst);
    let code = match end? {
        AttachEnd::Exited(code) => code,
        AttachEnd::Detached => {
            eprintln!("\r\nread escape sequence");
            return Ok(0);
        }
        AttachEnd::Lost => engine.wait(c.id()).unwrap_or(0),
    };
    if a.rm {
        backend
            .remove_container(c.id(), true)
            .with_context(|| format!("removing {}", c.config.name))?;
    }
    Ok(code)
}

fn is_quiet_pull(e: &Event<'_>) -> bool {
    match e {
        Event::Started(op) | Event::Done(op) | Event::Skipped(op) => {
            matches!(op, Op::PullImage { .. })
        }
        Event::Failed(..) => false,
    }
}

/// The services `service` depends on (those the project has; optional missing ones are left).
pub fn dependencies(project: &Project, service: &Service) -> Vec<String> {
    let joined = service.network_mode_service();
    let mut deps: Vec<String> = service
        .depends_on
        .keys()
        .map(String::as_str)
        .chain(joined)
        .chain(service.volumes_from_services())
        .filter(|d| project.services.contains_key(*d))
        .map(str::to_owned)
        .collect();
    deps.dedup();
    deps
}

/// Networks, volumes and the image the one-off container needs and the world lacks, as the
/// planner would create them for the service.
pub fn resource_ops(project: &Project, svc: &Service, world: &World) -> anyhow::Result<Vec<Op>> {
    let mut ops = Vec::new();
    if svc.network_mode.is_none() || svc.network_mode.as_deref() == Some("bridge") {
        for net in svc.networks.keys() {
            let name = network_name(project, net);
            if world.networks.contains(&name) {
                continue;
            }
            if project.networks.get(net).is_some_and(|d| d.external) {
                bail!("network {name} declared as external, but could not be found");
            }
            ops.push(Op::CreateNetwork { name });
        }
    }
    for v in &svc.volumes {
        let Some(src) = v.source.as_deref() else {
            continue;
        };
        if v.kind != MountType::Volume || !project.volumes.contains_key(src) {
            continue;
        }
        let name = volume_name(project, src);
        if world.volumes.contains(&name) || ops.contains(&Op::CreateVolume { name: name.clone() }) {
            continue;
        }
        if project.volumes[src].external {
            bail!("external volume {name:?} not found");
        }
        ops.push(Op::CreateVolume { name });
    }
    let image = svc.image_or_default(project);
    let policy = svc.pull_policy.as_deref();
    if policy == Some("always") || !world.images.contains_key(&image) {
        match policy {
            Some("never") | Some("build") if !world.images.contains_key(&image) => {
                bail!(
                    "image {image} is not present and pull policy is {}",
                    policy.unwrap_or("")
                )
            }
            _ if svc.build.is_some() && !world.images.contains_key(&image) => {
                bail!("image {image} is not present and must be built (`rcompose build`)")
            }
            _ => ops.push(Op::PullImage { image }),
        }
    }
    Ok(ops)
}

/// `<project>-<service>-run-<12 hex>`, docker compose's one-off container name.
pub fn oneoff_name(project: &str, service: &str, slug: &str) -> String {
    let short: String = slug.chars().take(12).collect();
    format!("{project}-{service}-run-{short}")
}

/// What `run` changes about the service for its one-off container.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    pub name: String,
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub labels: Vec<String>,
    pub volumes: Vec<String>,
    pub publish: Vec<String>,
    pub service_ports: bool,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub stdin_open: bool,
}

/// The service as the one-off container runs it: command, entrypoint, environment, labels,
/// volumes, ports, user and working dir overridden; relative bind sources resolved against
/// `working_dir`.
pub fn oneoff_service(svc: &Service, o: &OneOff, working_dir: &Path) -> anyhow::Result<Service> {
    let mut s = svc.clone();
    s.container_name = Some(o.name.clone());
    if !o.command.is_empty() {
        s.command = Some(o.command.clone());
    }
    if let Some(ep) = &o.entrypoint {
        s.entrypoint = Some(ep.clone());
    }
    for e in &o.env {
        match e.split_once('=') {
            Some((k, v)) => s.environment.insert(k.to_owned(), Some(v.to_owned())),
            None => s.environment.insert(e.clone(), None),
        };
    }
    for l in &o.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid label {l:?}: expected KEY=VALUE"))?;
        s.labels.insert(k.to_owned(), v.to_owned());
    }
    for spec in &o.volumes {
        let value = crate::syntax::parse_volume(spec).map_err(|e| anyhow!("{e}"))?;
        let mut v: ServiceVolume =
            serde_json::from_value(value).map_err(|e| anyhow!("invalid volume {spec:?}: {e}"))?;
        if v.kind == MountType::Bind {
            if let Some(src) = &v.source {
                v.source = Some(resolve_host_path(src, working_dir));
            }
        }
        s.volumes.retain(|x| x.target != v.target);
        s.volumes.push(v);
    }
    if !o.service_ports {
        s.ports.clear();
    }
    for spec in &o.publish {
        for value in crate::syntax::parse_port(spec).map_err(|e| anyhow!("{e}"))? {
            let p: PortConfig =
                serde_json::from_value(value).map_err(|e| anyhow!("invalid port {spec:?}: {e}"))?;
            s.ports.push(p);
        }
    }
    if let Some(u) = &o.user {
        s.user = Some(u.clone());
    }
    if let Some(w) = &o.workdir {
        s.working_dir = Some(w.clone());
    }
    s.tty = o.tty;
    s.stdin_open = o.stdin_open;
    Ok(s)
}

fn resolve_host_path(src: &str, working_dir: &Path) -> String {
    if let Some(rest) = src.strip_prefix('~') {
        if let Some(home) = std::env::var_os("HOME") {
            let rest = rest.trim_start_matches('/');
            return Path::new(&home).join(rest).display().to_string();
        }
    }
    let p = Path::new(src);
    if p.is_absolute() {
        return src.to_owned();
    }
    let joined = working_dir.join(p);
    crate::syntax::clean_path(&joined.display().to_string())
}

/// One-off labels, no restart policy, and no network aliases unless `use_aliases`.
pub fn mark_oneoff(plan: &mut ContainerPlan, slug: &str, use_aliases: bool) {
    plan.config
        .labels
        .insert(labels::ONEOFF.into(), "True".into());
    plan.config.labels.insert(SLUG.into(), slug.to_owned());
    plan.config.restart = RestartPolicy::No;
    if !use_aliases {
        for n in &mut plan.networks {
            n.aliases.clear();
        }
    }
}

/// Starts the helper that removes a detached `--rm` container after it exits.
fn spawn_reaper(global: &GlobalOpts, id: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding the rcompose executable")?;
    std::process::Command::new(exe)
        .arg("--root")
        .arg(&global.root)
        .arg("run")
        .arg(REAP)
        .arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the helper that removes the container when it exits")?;
    Ok(())
}

/// The helper: waits for the container to exit, then removes it with its network endpoints.
fn reap(global: &GlobalOpts, id: Option<&OsString>) -> anyhow::Result<i32> {
    let id = id
        .and_then(|s| s.to_str())
        .ok_or_else(|| anyhow!("{REAP}: a container id is required"))?;
    let engine = stack::engine(global)?;
    let _ = engine.wait(id);
    let c = match engine.store.find(id) {
        Ok(c) => c,
        Err(_) => return Ok(0),
    };
    if c.state.is_active() {
        return Ok(0);
    }
    // Container first: its namespace takes the veths with it (see Local::remove_container).
    let _ = engine.remove(c.id(), true, true);
    let mut nm = local::network_manager(&global.root)?;
    let _ = nm.unpublish(c.id());
    let _ = nm.detach_all(c.id());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        crate::orchestrate::test_project(yaml)
    }

    const YAML: &str = "services:\n  web:\n    image: busybox\n    command: [sleep, '9']\n    ports: ['8080:80']\n    environment: {A: '1'}\n    restart: always\n    depends_on: [db]\n    networks:\n      default: {aliases: [www]}\n  db:\n    image: busybox\n";

    #[test]
    fn clap_tree_is_valid() {
        use clap::CommandFactory;
        RunCli::command().debug_assert();
        let a =
            RunCli::try_parse_from(["run", "-p", "1:2", "--rm", "web", "sh", "-c", "x"]).unwrap();
        assert_eq!(a.publish, ["1:2"]);
        assert_eq!(a.command, ["sh", "-c", "x"]);
    }

    #[test]
    fn argv_after_run_is_runs_own() {
        let v = |s: &[&str]| s.iter().map(OsString::from).collect::<Vec<_>>();
        let (p, tail) = split_argv(&v(&[
            "rcompose", "--root", "/r", "-p", "proj", "run", "-p", "80:80", "web",
        ]))
        .unwrap();
        assert_eq!(p.as_deref(), Some("proj"));
        assert_eq!(tail, v(&["-p", "80:80", "web"]));
        let (p, tail) = split_argv(&v(&["rcompose", "-f", "x.yaml", "run", "web"])).unwrap();
        assert_eq!(p, None);
        assert_eq!(tail, v(&["web"]));
        let (p, _) = split_argv(&v(&["rcompose", "--project-name=q", "run", "web"])).unwrap();
        assert_eq!(p.as_deref(), Some("q"));
        assert!(split_argv(&v(&["rcompose", "up", "run"])).is_none());
    }

    #[test]
    fn name_is_project_service_run_slug() {
        assert_eq!(
            oneoff_name("p", "web", "0123456789abcdef0123"),
            "p-web-run-0123456789ab"
        );
    }

    #[test]
    fn overrides_and_unpublished_ports() {
        let p = project(YAML);
        let o = OneOff {
            name: "p-web-run-x".into(),
            command: vec!["echo".into(), "hi".into()],
            env: vec!["A=2".into(), "B=3".into()],
            volumes: vec!["./data:/data:ro".into()],
            publish: vec!["9090:90".into()],
            user: Some("nobody".into()),
            workdir: Some("/tmp".into()),
            ..Default::default()
        };
        let s = oneoff_service(&p.services["web"], &o, Path::new("/w")).unwrap();
        assert_eq!(
            s.command.as_deref(),
            Some(&["echo".to_owned(), "hi".to_owned()][..])
        );
        assert_eq!(s.environment["A"].as_deref(), Some("2"));
        assert_eq!(s.environment["B"].as_deref(), Some("3"));
        assert_eq!(s.ports.len(), 1, "service ports dropped, -p kept");
        assert_eq!(s.ports[0].target, 90);
        let v = s.volumes.iter().find(|v| v.target == "/data").unwrap();
        assert_eq!(v.source.as_deref(), Some("/w/data"));
        assert!(v.read_only);
        assert_eq!(s.user.as_deref(), Some("nobody"));

        let mut plan = translate::container_plan(&p, &Default::default(), &s, 1, "h").unwrap();
        assert_eq!(plan.config.name, "p-web-run-x");
        mark_oneoff(&mut plan, "slug", false);
        assert_eq!(plan.config.labels[labels::ONEOFF], "True");
        assert_eq!(plan.config.labels[labels::SERVICE], "web");
        assert_eq!(plan.config.restart, RestartPolicy::No);
        assert!(plan.networks.iter().all(|n| n.aliases.is_empty()));
    }

    #[test]
    fn service_ports_and_aliases_on_request() {
        let p = project(YAML);
        let o = OneOff {
            name: "n".into(),
            service_ports: true,
            ..Default::default()
        };
        let s = oneoff_service(&p.services["web"], &o, Path::new("/w")).unwrap();
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.command.as_deref().map(<[String]>::len), Some(2), "kept");
        let mut plan = translate::container_plan(&p, &Default::default(), &s, 1, "h").unwrap();
        mark_oneoff(&mut plan, "slug", true);
        assert!(plan.networks[0].aliases.contains(&"www".to_owned()));
    }

    #[test]
    fn resources_missing_from_the_world() {
        let p = project(YAML);
        let web = &p.services["web"];
        assert_eq!(dependencies(&p, web), ["db"]);
        let ops = resource_ops(&p, web, &World::default()).unwrap();
        assert_eq!(
            ops,
            [
                Op::CreateNetwork {
                    name: "p_default".into()
                },
                Op::PullImage {
                    image: "busybox".into()
                }
            ]
        );
        let mut world = World::default();
        world.networks.insert("p_default".into());
        world.images.insert("busybox".into(), "sha256:x".into());
        assert!(resource_ops(&p, web, &world).unwrap().is_empty());
    }

    #[test]
    fn bad_label_is_an_error() {
        let p = project(YAML);
        let o = OneOff {
            labels: vec!["novalue".into()],
            ..Default::default()
        };
        assert!(oneoff_service(&p.services["web"], &o, Path::new("/")).is_err());
    }
}
