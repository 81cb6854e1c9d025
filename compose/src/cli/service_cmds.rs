//! Project commands that act on the existing containers of services: start, stop, restart,
//! kill, pause, unpause, rm, exec, top, port, images, wait, and `ls` of all projects.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;

use anyhow::{anyhow, bail};
use engine::container::ops::Engine;
use engine::container::store::Container;

use super::stack::{self, Progress};
use super::GlobalOpts;
use crate::graph::DependencyGraph;
use crate::model::Project;
use crate::orchestrate::labels;
use crate::orchestrate::local::{self, Local, LocalOptions};

#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    /// Services (default: all)
    services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    timeout: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Signal to send
    #[arg(short, long, default_value = "SIGKILL")]
    signal: String,
    /// Remove containers for services not defined in the compose file
    #[arg(long)]
    remove_orphans: bool,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Don't ask to confirm removal (`-f` after `rm`)
    #[arg(long)]
    force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    volumes: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short, long)]
    detach: bool,
    /// Disable pseudo-TTY allocation (by default a TTY is allocated when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Run the command as this user
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory for the command
    #[arg(short, long)]
    workdir: Option<String>,
    /// Index of the container if the service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Give extended privileges to the process
    #[arg(long)]
    privileged: bool,
    /// Service name
    service: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// Service name
    service: String,
    /// Private (container) port
    private_port: u16,
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Index of the container if the service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Show all projects (default: running ones)
    #[arg(short, long)]
    all: bool,
    /// Only display project names
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Drop the project down after the first container stops
    #[arg(long)]
    down_project: bool,
}

fn backend(global: &GlobalOpts, st: stack::Stack, timeout: Option<u64>) -> anyhow::Result<Local> {
    st.backend(
        global,
        LocalOptions {
            timeout,
            ..Default::default()
        },
    )
}

/// Service names in start order (dependencies first).
fn start_order(project: &Project) -> Vec<String> {
    let g = DependencyGraph::new(
        project
            .services
            .iter()
            .map(|(k, s)| (k.clone(), s.depends_on.keys().cloned().collect::<Vec<_>>())),
    );
    g.start_order()
        .unwrap_or_else(|_| project.services.keys().cloned().collect())
}

/// Containers of the selected services grouped in start order (stop order when reversed).
fn ordered_groups(
    engine: &Engine,
    st: &stack::Stack,
    services: &[String],
) -> anyhow::Result<Vec<Vec<Container>>> {
    let list = stack::containers(engine, &st.project.name, services, false)?;
    let mut by_service: BTreeMap<String, Vec<Container>> = BTreeMap::new();
    for c in list {
        by_service
            .entry(stack::service_of(&c).to_owned())
            .or_default()
            .push(c);
    }
    let mut groups = Vec::new();
    for s in start_order(&st.project) {
        if let Some(g) = by_service.remove(&s) {
            groups.push(g);
        }
    }
    // Containers of services no longer in the file go last in start order.
    groups.extend(by_service.into_values());
    Ok(groups)
}

/// Runs `f` on each container of a group in parallel, groups one after another.
fn each_parallel(
    groups: &[Vec<Container>],
    progress: &Progress,
    verb: &str,
    f: &(dyn Fn(&Container) -> anyhow::Result<()> + Sync),
) -> i32 {
    let mut failed = false;
    for g in groups {
        let results: Vec<(String, anyhow::Result<()>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = g
                .iter()
                .map(|c| scope.spawn(move || (c.config.name.clone(), f(c))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (name, r) in results {
            match r {
                Ok(()) => progress.line("✔", "Container", &name, verb),
                Err(e) => {
                    progress.line("✘", "Container", &name, &format!("Error: {e:#}"));
                    failed = true;
                }
            }
        }
    }
    i32::from(failed)
}

pub fn start(global: &GlobalOpts, a: ServicesArgs) -> anyhow::Result<i32> {
    let st = stack::load(global, &a.services)?;
    let engine = stack::engine(global)?;
    let groups = ordered_groups(&engine, &st, &a.services)?;
    if groups.is_empty() {
        bail!("no containers to start (run `rcompose up` first)");
    }
    let project = st.project.clone();
    let progress = Progress::new(false);
    let f = |c: &Container| -> anyhow::Result<()> {
        // Wait for the dependencies' conditions as `up` does.
        if let Some(svc) = project.services.get(stack::service_of(c)) {
            for (dep, d) in &svc.depends_on {
                for dc in
                    stack::containers(&engine, &project.name, std::slice::from_ref(dep), false)?
                {
                    local::wait_condition(&engine, &dc.config.name, d.condition, None)?;
                }
            }
        }
        engine.start(c.id(), false)?;
        Ok(())
    };
    Ok(each_parallel(&groups, &progress, "Started", &f))
}

pub fn stop(global: &GlobalOpts, a: StopArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let mut groups = ordered_groups(&engine, &st, &a.services)?;
    groups.reverse();
    let progress = Progress::new(false);
    let b = backend(global, st, a.timeout)?;
    Ok(each_parallel(&groups, &progress, "Stopped", &|c| {
        b.stop_container(c.id())?;
        Ok(())
    }))
}

pub fn restart(global: &GlobalOpts, a: StopArgs) -> anyhow::Result<i32> {
    let st = stack::load(global, &a.services)?;
    let engine = stack::engine(global)?;
    let groups = ordered_groups(&engine, &st, &a.services)?;
    let progress = Progress::new(false);
    Ok(each_parallel(&groups, &progress, "Restarted", &|c| {
        engine.stop(c.id(), a.timeout)?;
        engine.start(c.id(), false)?;
        Ok(())
    }))
}

pub fn kill(global: &GlobalOpts, a: KillArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let mut groups = ordered_groups(&engine, &st, &a.services)?;
    for g in &mut groups {
        g.retain(|c| c.state.is_active());
    }
    let progress = Progress::new(false);
    Ok(each_parallel(&groups, &progress, "Killed", &|c| {
        engine.kill(c.id(), &a.signal)?;
        Ok(())
    }))
}

pub fn pause(global: &GlobalOpts, a: ServicesArgs, paused: bool) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let groups = ordered_groups(&engine, &st, &a.services)?;
    let progress = Progress::new(false);
    Ok(each_parallel(
        &groups,
        &progress,
        if paused { "Paused" } else { "Unpaused" },
        &|c| {
            engine.pause(c.id(), paused)?;
            Ok(())
        },
    ))
}

pub fn rm(global: &GlobalOpts, a: RmArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let mut groups = ordered_groups(&engine, &st, &a.services)?;
    groups.reverse();
    if !a.stop {
        for g in &mut groups {
            g.retain(|c| !c.state.is_active());
        }
    }
    let names: Vec<String> = groups
        .iter()
        .flatten()
        .map(|c| c.config.name.clone())
        .collect();
    if names.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    if !a.force && std::io::stdin().is_terminal() {
        eprint!(
            "Going to remove {}\n? Are you sure? [yN] ",
            names.join(", ")
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let b = backend(global, st, None)?;
    let progress = Progress::new(false);
    Ok(each_parallel(&groups, &progress, "Removed", &|c| {
        b.remove_container(c.id(), a.volumes)?;
        Ok(())
    }))
}

/// The container of replica `index` of `service`.
fn replica(engine: &Engine, project: &str, service: &str, index: u32) -> anyhow::Result<Container> {
    stack::containers(engine, project, &[service.to_owned()], false)?
        .into_iter()
        .find(|c| stack::number(c) == index)
        .ok_or_else(|| {
            anyhow!("service {service:?} has no container with index {index}; is it running?")
        })
}

pub fn exec(global: &GlobalOpts, a: ExecArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, std::slice::from_ref(&a.service))?;
    let engine = stack::engine(global)?;
    let c = replica(&engine, &st.project.name, &a.service, a.index)?;
    let mut args: Vec<OsString> = vec!["exec".into()];
    if a.detach {
        args.push("-d".into());
    } else {
        args.push("-i".into());
        if !a.no_tty && std::io::stdin().is_terminal() {
            args.push("-t".into());
        }
    }
    for e in &a.env {
        args.push("-e".into());
        args.push(e.into());
    }
    if let Some(u) = &a.user {
        args.push("-u".into());
        args.push(u.into());
    }
    if let Some(w) = &a.workdir {
        args.push("-w".into());
        args.push(w.into());
    }
    if a.privileged {
        args.push("--privileged".into());
    }
    args.push(c.id().into());
    args.extend(a.command.iter().map(OsString::from));
    super::container::run(global, super::container::ContainerArgs { args })
}

pub fn top(global: &GlobalOpts, a: ServicesArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let mut code = 0;
    for c in stack::containers(&engine, &st.project.name, &a.services, false)? {
        if !c.state.is_active() {
            continue;
        }
        println!("{}", c.config.name);
        let args = vec![OsString::from("top"), OsString::from(c.id())];
        code |= super::container::run(global, super::container::ContainerArgs { args })?;
        println!();
    }
    Ok(code)
}

pub fn port(global: &GlobalOpts, a: PortArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, std::slice::from_ref(&a.service))?;
    let engine = stack::engine(global)?;
    let c = replica(&engine, &st.project.name, &a.service, a.index)?;
    let nm = local::network_manager(&global.root)?;
    let found = nm
        .ports(c.id())?
        .into_iter()
        .find(|p| p.container_port == a.private_port && p.protocol.as_str() == a.protocol);
    match found {
        Some(p) => {
            let host = match p.host_ip {
                Some(ip) if ip.is_ipv6() => format!("[{ip}]"),
                Some(ip) => ip.to_string(),
                None => "0.0.0.0".into(),
            };
            println!("{host}:{}", p.host_port);
            Ok(0)
        }
        None => bail!(
            "no port {}/{} published for {}",
            a.private_port,
            a.protocol,
            c.config.name
        ),
    }
}

pub fn images(global: &GlobalOpts, a: ServicesArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let store = engine::image::ImageStore::open(&global.root)?;
    let mut rows = Vec::new();
    for c in stack::containers(&engine, &st.project.name, &a.services, false)? {
        let (repo, tag) = match engine::reference::Reference::parse(&c.config.image) {
            Ok(r) => {
                let familiar = r.familiar();
                match familiar.rsplit_once(':') {
                    Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
                    _ => (familiar, "<none>".to_owned()),
                }
            }
            Err(_) => (c.config.image.clone(), "<none>".into()),
        };
        let size = store
            .resolve(&c.config.image_id)
            .map(|r| r.layers.iter().map(|l| l.descriptor.size).sum::<u64>())
            .unwrap_or(0);
        let short: String = c
            .config
            .image_id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        rows.push([
            c.config.name.clone(),
            repo,
            tag,
            short,
            super::image::human_size(size),
        ]);
    }
    print!(
        "{}",
        super::table::render(
            &["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
            &rows
        )
    );
    Ok(0)
}

pub fn wait(global: &GlobalOpts, a: WaitArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let list = stack::containers(&engine, &st.project.name, &a.services, false)?;
    let mut last = 0;
    for c in &list {
        let code = engine.wait(c.id())?;
        println!("{}", code);
        last = code;
        if a.down_project {
            let down = super::down::DownArgs::for_project();
            return super::down::run(global, down).map(|_| code);
        }
    }
    Ok(last)
}

pub fn ls(global: &GlobalOpts, a: LsArgs) -> anyhow::Result<i32> {
    let engine = stack::engine(global)?;
    struct Proj {
        states: BTreeMap<String, usize>,
        files: String,
        running: bool,
    }
    let mut projects: BTreeMap<String, Proj> = BTreeMap::new();
    for c in engine.store.list()? {
        let Some(name) = c.config.labels.get(labels::PROJECT) else {
            continue;
        };
        let p = projects.entry(name.clone()).or_insert(Proj {
            states: BTreeMap::new(),
            files: c
                .config
                .labels
                .get(labels::CONFIG_FILES)
                .cloned()
                .unwrap_or_default(),
            running: false,
        });
        *p.states
            .entry(c.state.status.as_str().to_owned())
            .or_default() += 1;
        p.running |= c.state.is_active();
    }
    projects.retain(|_, p| a.all || p.running);
    if a.quiet {
        for n in projects.keys() {
            println!("{n}");
        }
        return Ok(0);
    }
    let status = |p: &Proj| {
        p.states
            .iter()
            .map(|(s, n)| format!("{s}({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match a.format.as_str() {
        "json" => {
            let v: Vec<serde_json::Value> = projects
                .iter()
                .map(|(n, p)| {
                    serde_json::json!({"Name": n, "Status": status(p), "ConfigFiles": p.files})
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let rows: Vec<[String; 3]> = projects
                .iter()
                .map(|(n, p)| [n.clone(), status(p), p.files.clone()])
                .collect();
            print!(
                "{}",
                super::table::render(&["NAME", "STATUS", "CONFIG FILES"], &rows)
            );
        }
        other => bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(0)
}
