//! `rcompose container …`: run, create, start, stop, restart, kill, rm, ls/ps, logs, exec,
//! attach, top, inspect, diff, export, cp, wait, stats, rename, pause, unpause, prune.
//!
//! Like `image`, the group parses its raw arguments with its own clap tree, so docker's short
//! flags (`-f`, `-e`, `-p`, `-v`) keep their meaning next to the compose-wide globals.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use engine::container::attach::{self, AttachEnd, AttachOptions};
use engine::container::logs::{self, ReadOptions};
use engine::container::ops::ExecOptions;
use engine::container::record::{
    DeviceMapping, HealthConfig, LogConfig, MountKind, MountSpec, NetworkMode, Resources,
    RestartPolicy, Ulimit,
};
use engine::container::{
    cgroup, cp, id, netio, runtime, spec, store, term, time, Container, ContainerConfig,
    CreateOptions, Engine, Status,
};
use serde_json::{json, Value};

use super::table;
use super::GlobalOpts;

/// Raw arguments of `rcompose container`, parsed by [`ContainerCli`].
#[derive(Debug, clap::Args)]
pub struct ContainerArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "COMMAND")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(name = "rcompose container", about = "Manage containers")]
struct ContainerCli {
    /// State root holding images, containers, volumes and networks
    #[arg(long = "root", global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List containers
    #[command(alias = "ps", alias = "list")]
    Ls(LsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Display the running processes of a container
    Top(OneArg),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(OneArg),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ManyArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(ManyArgs),
    /// Unpause all processes within one or more containers
    Unpause(ManyArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Bind mount a volume (SRC:DST[:ro], NAME:DST, or DST)
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…,readonly)
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    domainname: Option<String>,
    /// Memory limit
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Mount volumes from the specified container(s) (NAME[:ro|:rw])
    #[arg(long = "volumes-from")]
    volumes_from: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    group_add: Vec<String>,
    /// Tune the host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_negative_numbers = true)]
    oom_score_adj: Option<i32>,
    /// PID namespace to use (host, or private by default)
    #[arg(long)]
    pid: Option<String>,
    /// IPC mode to use (host, or private/shareable by default)
    #[arg(long)]
    ipc: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes (the host's
    /// docker-init, tini-static or catatonit, or the config's init-path)
    #[arg(long)]
    init: bool,
    /// Restart policy to apply when a container exits (no, always, on-failure[:N], unless-stopped)
    #[arg(long, default_value = "no")]
    restart: String,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    health_retries: Option<u32>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval")]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    ulimit: Vec<String>,
    /// Sysctl options (name=value)
    #[arg(long)]
    sysctl: Vec<String>,
    /// Add a host device to the container (HOST[:CONTAINER[:PERMS]])
    #[arg(long)]
    device: Vec<String>,
    /// Connect a container to a network: a network made by `network create`, or host, none,
    /// bridge (a namespace of its own with loopback only), or container:NAME (another
    /// container's namespace)
    #[arg(long = "network", alias = "net", default_value = "bridge")]
    network: String,
    /// Add a network-scoped alias for the container (with --network NAME)
    #[arg(long = "network-alias")]
    network_alias: Vec<String>,
    /// IPv4 address on the network (with --network NAME)
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// Publish a container's port to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/PROTO], with
    /// --network NAME)
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Set meta data on a container
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<u64>,
    /// Log driver options (max-size, max-file)
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Security options (no-new-privileges, seccomp=unconfined)
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Image to run
    image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<u64>,
    /// Signal to send to the container
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Filter output based on conditions provided (name=, id=, label=, status=, exited=, ancestor=)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output: table, json, or a Go-style template
    #[arg(long)]
    format: Option<String>,
    /// Show the latest created container
    #[arg(short, long)]
    latest: bool,
    /// Show n last created containers
    #[arg(short = 'n', long = "last")]
    last: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for everything)
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long)]
    until: Option<String>,
    container: String,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    container: String,
}

#[derive(Debug, clap::Args)]
struct OneArg {
    container: String,
}

#[derive(Debug, clap::Args)]
struct ManyArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Format output using a Go-style template ({{.State.Status}}, {{json .Config}})
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit (accepted; the upper dir is read as it is)
    #[arg(short, long, default_value_t = true)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

#[derive(Debug, clap::Args)]
struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// CONTAINER:SRC_PATH or local path
    src: String,
    /// CONTAINER:DEST_PATH or local path
    dest: String,
}

#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output: table or json
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RenameArgs {
    container: String,
    new_name: String,
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (label=, until=)
    #[arg(long)]
    filter: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: ContainerArgs) -> anyhow::Result<i32> {
    let argv = std::iter::once(OsString::from("rcompose container")).chain(args.args);
    let cli = match ContainerCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            e.print().context("printing usage")?;
            return Ok(if code == 0 { 0 } else { 125 });
        }
    };
    let root = cli.root.unwrap_or_else(|| global.root.clone());
    let engine = Engine::open(&root)
        .with_context(|| format!("opening the state root {}", root.display()))?;
    match cli.command {
        Cmd::Run(a) => run_container(&engine, a, true),
        Cmd::Create(a) => run_container(&engine, a, false),
        Cmd::Start(a) => start(&engine, a),
        Cmd::Stop(a) => each(&a.containers, |c| {
            engine.stop_with(c, a.time, a.signal.as_deref())?;
            println!("{c}");
            Ok(())
        }),
        Cmd::Restart(a) => each(&a.containers, |c| {
            engine.stop_with(c, a.time, a.signal.as_deref())?;
            engine.start(c, false)?;
            println!("{c}");
            Ok(())
        }),
        Cmd::Kill(a) => each(&a.containers, |c| {
            engine.kill(c, &a.signal)?;
            println!("{c}");
            Ok(())
        }),
        Cmd::Rm(a) => each(&a.containers, |c| {
            let removed = engine.remove(c, a.force, a.volumes)?;
            super::container_net::forget(engine.root(), removed.id())?;
            println!("{c}");
            Ok(())
        }),
        Cmd::Port(a) => super::container_net::port(&engine, &a.container, a.port.as_deref()),
        Cmd::Ls(a) => ls(&engine, a),
        Cmd::Logs(a) => logs_cmd(&engine, a),
        Cmd::Exec(a) => exec(&engine, a),
        Cmd::Attach(a) => {
            let c = engine.store.find(&a.container)?;
            if !c.state.is_active() {
                bail!("You cannot attach to a stopped container, start it first");
            }
            let keys = detach_keys(a.detach_keys.as_deref().unwrap_or(&c.config.detach_keys))?;
            attach_session(&engine, &c, !a.no_stdin && c.config.open_stdin, keys)
        }
        Cmd::Top(a) => top(&engine, &a.container),
        Cmd::Inspect(a) => inspect(&engine, a),
        Cmd::Diff(a) => diff(&engine, &a.container),
        Cmd::Commit(a) => {
            let c = engine.store.find(&a.container)?;
            let tag = a
                .reference
                .as_deref()
                .map(engine::reference::Reference::parse)
                .transpose()?;
            let opts = engine::container::commit::CommitOptions {
                message: a.message.unwrap_or_default(),
                author: a.author.unwrap_or_default(),
                changes: a.change,
                tag,
            };
            let rec = engine::container::commit::commit(&c, &opts)?;
            println!("{}", rec.id);
            Ok(0)
        }
        Cmd::Export(a) => export(&engine, a),
        Cmd::Cp(a) => cp(&engine, a),
        Cmd::Wait(a) => each(&a.containers, |c| {
            println!("{}", engine.wait(c)?);
            Ok(())
        }),
        Cmd::Stats(a) => stats(&engine, a),
        Cmd::Rename(a) => {
            engine.store.rename(&a.container, &a.new_name)?;
            Ok(0)
        }
        Cmd::Pause(a) => each(&a.containers, |c| {
            engine.pause(c, true)?;
            println!("{c}");
            Ok(())
        }),
        Cmd::Unpause(a) => each(&a.containers, |c| {
            engine.pause(c, false)?;
            println!("{c}");
            Ok(())
        }),
        Cmd::Prune(a) => prune(&engine, a),
    }
}

/// Runs `f` on each container, reporting failures like docker (all attempted, exit 1 if any).
fn each(names: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<i32> {
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n) {
            eprintln!("Error response from daemon: {e:#}");
            failed = true;
        }
    }
    Ok(i32::from(failed))
}

// ---------------------------------------------------------------- parsing helpers

/// Docker's RAMInBytes: `512`, `64k`, `128m`, `1g`, `1.5g` (binary units).
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid size: {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size: {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

fn read_env_files(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading env file {}", f.display()))?;
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if l.contains('=') {
                out.push(l.to_owned());
            } else if let Ok(v) = std::env::var(l) {
                out.push(format!("{l}={v}"));
            }
        }
    }
    Ok(out)
}

/// `-e K=V` as given; `-e K` takes K from our environment (dropped when unset).
fn env_args(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn parse_volume(v: &str) -> anyhow::Result<MountSpec> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => bail!("invalid volume specification: {v:?}"),
    };
    if !dst.starts_with('/') {
        bail!("invalid volume specification: {v:?}: the container path must be absolute");
    }
    let mut m = MountSpec {
        target: dst.to_owned(),
        ..Default::default()
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => m.read_only = true,
            "rw" => {}
            "nocopy" => m.no_copy = true,
            "z" | "Z" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                m.options.push(o.to_owned())
            }
            _ => bail!("invalid volume option {o:?} in {v:?}"),
        }
    }
    if src.is_empty() {
        m.kind = MountKind::Volume;
    } else if src.starts_with('/') || src.starts_with('.') {
        m.kind = MountKind::Bind;
        let p = std::path::absolute(src).unwrap_or_else(|_| PathBuf::from(src));
        m.source = p.display().to_string();
    } else {
        m.kind = MountKind::Volume;
        m.source = src.to_owned();
    }
    Ok(m)
}

fn parse_mount(v: &str) -> anyhow::Result<MountSpec> {
    let mut m = MountSpec {
        kind: MountKind::Volume,
        ..Default::default()
    };
    for kv in v.split(',') {
        let (k, val) = kv.split_once('=').unwrap_or((kv, "true"));
        match k {
            "type" => {
                m.kind = match val {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => bail!("invalid mount type {val:?}"),
                }
            }
            "source" | "src" => m.source = val.to_owned(),
            "target" | "destination" | "dst" => m.target = val.to_owned(),
            "readonly" | "ro" => m.read_only = val != "false" && val != "0",
            "volume-nocopy" => m.no_copy = val != "false",
            "tmpfs-size" => m.options.push(format!("size={}", parse_bytes(val)?)),
            "tmpfs-mode" => m.options.push(format!("mode={val}")),
            "bind-propagation" => m.options.push(val.to_owned()),
            _ => bail!("unexpected key {k:?} in mount {v:?}"),
        }
    }
    if m.target.is_empty() {
        bail!("invalid mount {v:?}: target is required");
    }
    if m.kind == MountKind::Bind {
        if m.source.is_empty() {
            bail!("invalid mount {v:?}: source is required for bind mounts");
        }
        if !Path::new(&m.source).exists() {
            bail!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                m.source
            );
        }
    }
    Ok(m)
}

fn parse_tmpfs(v: &str) -> anyhow::Result<MountSpec> {
    let (target, opts) = v.split_once(':').unwrap_or((v, ""));
    let mut m = MountSpec {
        kind: MountKind::Tmpfs,
        target: target.to_owned(),
        ..Default::default()
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if o == "ro" {
            m.read_only = true;
        } else if let Some(size) = o.strip_prefix("size=") {
            m.options.push(format!("size={}", parse_bytes(size)?));
        } else {
            m.options.push(o.to_owned());
        }
    }
    Ok(m)
}

fn parse_ulimit(v: &str) -> anyhow::Result<Ulimit> {
    let (name, vals) = v
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit {v:?}: want name=soft[:hard]"))?;
    if !spec::valid_ulimit(name) {
        bail!("invalid ulimit type: {name}");
    }
    let (s, h) = vals.split_once(':').unwrap_or((vals, vals));
    let num = |x: &str| -> anyhow::Result<u64> {
        if x == "-1" || x == "unlimited" {
            Ok(u64::MAX)
        } else {
            x.parse().map_err(|_| anyhow!("invalid ulimit value {x:?}"))
        }
    };
    let (soft, hard) = (num(s)?, num(h)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

fn parse_device(v: &str) -> DeviceMapping {
    let parts: Vec<&str> = v.split(':').collect();
    DeviceMapping {
        path_on_host: parts[0].to_owned(),
        path_in_container: parts
            .get(1)
            .map(|s| s.to_string())
            .unwrap_or_else(|| parts[0].to_owned()),
        permissions: parts
            .get(2)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "rwm".into()),
    }
}

fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

fn duration_nanos(s: &Option<String>, what: &str) -> anyhow::Result<u64> {
    match s {
        None => Ok(0),
        Some(v) => engine::container::health::parse_nanos(v)
            .ok_or_else(|| anyhow!("invalid {what}: {v:?}")),
    }
}

fn detach_keys(s: &str) -> anyhow::Result<Vec<u8>> {
    term::parse_detach_keys(s).ok_or_else(|| anyhow!("invalid detach keys {s:?}"))
}

/// `--pid` / `--ipc`: true for `host`; the container's own namespace otherwise.
fn namespace_mode(flag: &str, v: Option<&str>) -> anyhow::Result<bool> {
    match v {
        None | Some("") | Some("private") | Some("shareable") => Ok(false),
        Some("host") => Ok(true),
        Some(other) => bail!("{flag} {other:?} is not supported (host, private or shareable)"),
    }
}

fn build_config(a: &RunArgs) -> anyhow::Result<CreateOptions> {
    let mut env = read_env_files(&a.env_file)?;
    env.extend(env_args(&a.env));
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(parse_volume(v)?);
    }
    for v in &a.mount {
        mounts.push(parse_mount(v)?);
    }
    for v in &a.tmpfs {
        mounts.push(parse_tmpfs(v)?);
    }
    let restart = RestartPolicy::parse(&a.restart)
        .ok_or_else(|| anyhow!("invalid restart policy {:?}", a.restart))?;
    if a.rm && restart != RestartPolicy::No {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    let network_mode = match a.network.as_str() {
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        "bridge" | "default" => NetworkMode::Bridge,
        other if !other.starts_with("container:") => NetworkMode::Bridge,
        other => match other.strip_prefix("container:") {
            Some(target) if !target.is_empty() => {
                // Docker refuses what would configure a namespace this container only joins.
                for (set, what) in [
                    (a.hostname.is_some(), "hostname"),
                    (!a.dns.is_empty(), "dns"),
                    (!a.add_host.is_empty(), "add-host"),
                ] {
                    if set {
                        bail!("conflicting options: {what} and the network mode");
                    }
                }
                NetworkMode::Container(target.to_owned())
            }
            _ => bail!("network {other:?}: container: needs a container name or id"),
        },
    };
    let healthcheck = if a.no_healthcheck {
        Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        })
    } else if let Some(cmd) = &a.health_cmd {
        Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), cmd.clone()],
            interval: duration_nanos(&a.health_interval, "--health-interval")?,
            timeout: duration_nanos(&a.health_timeout, "--health-timeout")?,
            start_period: duration_nanos(&a.health_start_period, "--health-start-period")?,
            start_interval: duration_nanos(&a.health_start_interval, "--health-start-interval")?,
            retries: a.health_retries.unwrap_or(0),
        })
    } else {
        None
    };
    let mut log = LogConfig::default();
    for o in &a.log_opt {
        match o.split_once('=') {
            Some(("max-size", v)) => log.max_size = parse_bytes(v)? as u64,
            Some(("max-file", v)) => {
                log.max_file = v.parse().map_err(|_| anyhow!("invalid max-file {v:?}"))?
            }
            _ => bail!("unknown log opt {o:?} (supported: max-size, max-file)"),
        }
    }
    let mut no_new_privileges = false;
    let mut seccomp_unconfined = false;
    for o in &a.security_opt {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                no_new_privileges = true
            }
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp_unconfined = true,
            _ => bail!("unsupported security option {o:?}"),
        }
    }
    let memory = a
        .memory
        .as_deref()
        .map(parse_bytes)
        .transpose()?
        .unwrap_or(0);
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => -1,
        Some(v) => parse_bytes(v)?,
        None => 0,
    };
    let (entrypoint, entrypoint_set) = match &a.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), true),
        Some(e) => (vec![e.clone()], true),
        None => (Vec::new(), false),
    };
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        ulimits.push(parse_ulimit(u)?);
    }
    let config = ContainerConfig {
        name: a.name.clone().unwrap_or_default(),
        image: a.image.clone(),
        entrypoint,
        cmd: a.command.clone(),
        env,
        working_dir: a.workdir.clone().unwrap_or_default(),
        user: a.user.clone().unwrap_or_default(),
        hostname: a.hostname.clone().unwrap_or_default(),
        domainname: a.domainname.clone().unwrap_or_default(),
        labels: kv_map(&a.label),
        tty: a.tty,
        open_stdin: a.interactive,
        mounts,
        read_only: a.read_only,
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        no_new_privileges,
        seccomp_unconfined,
        resources: Resources {
            memory,
            memory_swap,
            nano_cpus: a.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            cpu_shares: a.cpu_shares.unwrap_or(0),
            pids_limit: a.pids_limit.unwrap_or(0),
            shm_size: a
                .shm_size
                .as_deref()
                .map(parse_bytes)
                .transpose()?
                .unwrap_or(0) as u64,
            memory_reservation: a
                .memory_reservation
                .as_deref()
                .map(parse_bytes)
                .transpose()?
                .unwrap_or(0),
            cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        },
        ulimits,
        sysctls: kv_map(&a.sysctl),
        devices: a.device.iter().map(|d| parse_device(d)).collect(),
        init: a.init,
        group_add: a.group_add.clone(),
        volumes_from: a.volumes_from.clone(),
        oom_score_adj: a.oom_score_adj.unwrap_or(0),
        pid_host: namespace_mode("--pid", a.pid.as_deref())?,
        ipc_host: namespace_mode("--ipc", a.ipc.as_deref())?,
        network_mode,
        extra_hosts: a.add_host.clone(),
        dns: a.dns.clone(),
        restart,
        healthcheck,
        stop_signal: a.stop_signal.clone().unwrap_or_default(),
        stop_timeout: a.stop_timeout,
        auto_remove: a.rm,
        log,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        ..Default::default()
    };
    Ok(CreateOptions {
        config,
        entrypoint_set,
    })
}

// ---------------------------------------------------------------- run / start / attach

fn run_container(engine: &Engine, a: RunArgs, start: bool) -> anyhow::Result<i32> {
    if start {
        // Let the cgroup lock's grace period run while the container is created.
        engine::container::migration::prime();
    }
    let opts = build_config(&a)?;
    let keys = detach_keys(&opts.config.detach_keys)?;
    let network = super::container_net::Request::from_args(
        engine.root(),
        &a.network,
        &a.network_alias,
        a.ip,
        &a.publish,
    )?;
    let c = engine.create(opts)?;
    if let Some(net) = &network {
        if let Err(e) = net.join(&c) {
            let _ = engine.remove(c.id(), true, true);
            let _ = super::container_net::forget(engine.root(), c.id());
            return Err(e);
        }
    }
    if !start {
        println!("{}", c.id());
        return Ok(0);
    }
    if let Err(e) = engine.start(c.id(), !a.detach) {
        if a.rm {
            let _ = engine.remove(c.id(), true, true);
        }
        return Err(e.into());
    }
    if a.detach {
        println!("{}", c.id());
        return Ok(0);
    }
    let code = attach_session(engine, &c, a.interactive, keys)?;
    if a.rm && network.is_some() {
        // The supervisor removed the container; its addresses and ports go now, not at the
        // next network change (which would also find them stale).
        super::container_net::forget(engine.root(), c.id())?;
    }
    Ok(code)
}

fn attach_session(
    engine: &Engine,
    c: &Container,
    stdin: bool,
    keys: Vec<u8>,
) -> anyhow::Result<i32> {
    let end = attach::attach(
        &c.dir,
        &AttachOptions {
            stdin,
            tty: c.config.tty,
            detach_keys: keys,
        },
    )?;
    match end {
        AttachEnd::Exited(code) => Ok(code),
        AttachEnd::Detached => {
            eprintln!("\r\nread escape sequence");
            Ok(0)
        }
        AttachEnd::Lost => Ok(engine
            .store
            .load(c.id())
            .map(|c| c.state.exit_code)
            .unwrap_or(0)),
    }
}

fn start(engine: &Engine, a: StartArgs) -> anyhow::Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let c = engine.store.find(&a.containers[0])?;
        let keys = detach_keys(a.detach_keys.as_deref().unwrap_or(&c.config.detach_keys))?;
        engine.start(c.id(), true)?;
        return attach_session(engine, &c, a.interactive && c.config.open_stdin, keys);
    }
    each(&a.containers, |c| {
        engine.start(c, false)?;
        println!("{c}");
        Ok(())
    })
}

// ---------------------------------------------------------------- ls

pub(crate) fn command_text(c: &ContainerConfig) -> String {
    let mut args = c.entrypoint.clone();
    args.extend(c.cmd.iter().cloned());
    args.join(" ")
}

/// "5 minutes ago", from the creation time.
pub(crate) fn created_text(c: &Container) -> String {
    time::parse_rfc3339(&c.config.created)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|d| format!("{} ago", time::human_duration(d)))
        .unwrap_or_default()
}

pub(crate) fn status_text(c: &Container) -> String {
    let s = &c.state;
    let ago = |t: &str| {
        time::parse_rfc3339(t)
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(time::human_duration)
            .unwrap_or_default()
    };
    match s.status {
        Status::Created => "Created".into(),
        Status::Running | Status::Paused => {
            let mut t = format!("Up {}", ago(&s.started_at));
            if let Some(h) = &s.health {
                let hs = if h.status == "starting" {
                    "health: starting"
                } else {
                    &h.status
                };
                t.push_str(&format!(" ({hs})"));
            }
            if s.status == Status::Paused {
                t.push_str(" (Paused)");
            }
            t
        }
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn matches_filter(c: &Container, f: &str) -> anyhow::Result<bool> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| anyhow!("bad format of filter (expected name=value): {f}"))?;
    Ok(match k {
        "name" => c.config.name.contains(v),
        "id" => c.config.id.starts_with(v),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.config.labels.get(lk).is_some_and(|x| x == lv),
            None => c.config.labels.contains_key(v),
        },
        "status" => c.state.status.as_str() == v,
        "exited" => c.state.status == Status::Exited && c.state.exit_code.to_string() == v,
        "ancestor" => c.config.image == v || c.config.image_id.contains(v),
        "health" => c
            .state
            .health
            .as_ref()
            .map_or(v == "none", |h| h.status == v),
        "volume" => c
            .config
            .mounts
            .iter()
            .any(|m| m.source == v || m.target == v),
        _ => bail!("invalid filter {k:?}"),
    })
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    for e in rd.flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => total += dir_size(&e.path()),
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}

fn virtual_size(c: &Container) -> u64 {
    c.config.lowerdirs.iter().map(|l| dir_size(l)).sum()
}

fn ls_row_json(c: &Container, size: bool) -> Value {
    let labels = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut v = json!({
        "Command": format!("\"{}\"", command_text(&c.config)),
        "CreatedAt": c.config.created,
        "ID": id::short_id(c.id()),
        "Image": c.config.image,
        "Labels": labels,
        "LocalVolumes": c.config.mounts.iter().filter(|m| m.kind == MountKind::Volume).count().to_string(),
        "Mounts": c.config.mounts.iter().map(|m| if m.kind == MountKind::Volume { m.source.clone() } else { m.target.clone() }).collect::<Vec<_>>().join(","),
        "Names": c.config.name,
        "Networks": c.config.network_mode.as_str(),
        "Ports": "",
        "RunningFor": time::parse_rfc3339(&c.config.created).and_then(|t| SystemTime::now().duration_since(t).ok()).map(|d| format!("{} ago", time::human_duration(d))).unwrap_or_default(),
        "State": c.state.status.as_str(),
        "Status": status_text(c),
    });
    if size {
        let upper = dir_size(&c.dir.join("upper"));
        v["Size"] = json!(format!(
            "{} (virtual {})",
            super::image::human_size(upper),
            super::image::human_size(upper + virtual_size(c))
        ));
    }
    v
}

fn ls(engine: &Engine, a: LsArgs) -> anyhow::Result<i32> {
    let mut list = engine.store.list()?;
    if !a.all && !a.latest && a.last.is_none() {
        list.retain(|c| c.state.is_active());
    }
    for f in &a.filter {
        let mut keep = Vec::new();
        for c in list {
            if matches_filter(&c, f)? {
                keep.push(c);
            }
        }
        list = keep;
    }
    if a.latest {
        list.truncate(1);
    }
    if let Some(n) = a.last {
        list.truncate(n);
    }
    if a.quiet {
        for c in &list {
            println!(
                "{}",
                if a.no_trunc {
                    c.id()
                } else {
                    id::short_id(c.id())
                }
            );
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for c in &list {
                let mut v = ls_row_json(c, a.size);
                if a.no_trunc {
                    v["ID"] = json!(c.id());
                }
                println!("{v}");
            }
            return Ok(0);
        }
        Some(t) if t != "table" && !t.is_empty() => {
            for c in &list {
                let mut v = ls_row_json(c, a.size);
                if a.no_trunc {
                    v["ID"] = json!(c.id());
                }
                println!("{}", render_template(t, &v)?);
            }
            return Ok(0);
        }
        _ => {}
    }
    let mut rows = Vec::new();
    for c in &list {
        let mut cmd = format!("\"{}\"", command_text(&c.config));
        if !a.no_trunc && cmd.chars().count() > 22 {
            cmd = format!(
                "\"{}…\"",
                command_text(&c.config).chars().take(19).collect::<String>()
            );
        }
        let created = created_text(c);
        let idtext = if a.no_trunc {
            c.id().to_owned()
        } else {
            id::short_id(c.id()).to_owned()
        };
        let mut row = vec![
            idtext,
            c.config.image.clone(),
            cmd,
            created,
            status_text(c),
            String::new(),
            c.config.name.clone(),
        ];
        if a.size {
            let upper = dir_size(&c.dir.join("upper"));
            row.push(format!(
                "{} (virtual {})",
                super::image::human_size(upper),
                super::image::human_size(upper + virtual_size(c))
            ));
        }
        rows.push(row);
    }
    if a.size {
        let rows: Vec<[String; 8]> = rows.into_iter().filter_map(|r| r.try_into().ok()).collect();
        print!(
            "{}",
            table::render(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES",
                    "SIZE"
                ],
                &rows
            )
        );
    } else {
        let rows: Vec<[String; 7]> = rows.into_iter().filter_map(|r| r.try_into().ok()).collect();
        print!(
            "{}",
            table::render(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES"
                ],
                &rows
            )
        );
    }
    Ok(0)
}

// ---------------------------------------------------------------- templates

/// A small Go-template subset: `{{.A.B}}`, `{{json .A}}`, `{{.A}}` with maps printed as JSON,
/// and literal text around them.
pub fn render_template(t: &str, v: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| anyhow!("template: unclosed action in {t:?}"))?
            + start;
        let action = rest[start + 2..end].trim();
        let (json_fn, path) = match action.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, action),
        };
        let path = path
            .strip_prefix('.')
            .ok_or_else(|| anyhow!("template: unsupported action {action:?}"))?;
        let mut cur = v;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = cur.get(part).unwrap_or(&Value::Null);
        }
        let text = match (json_fn, cur) {
            (true, x) => x.to_string(),
            (false, Value::String(s)) => s.clone(),
            (false, Value::Null) => "<no value>".into(),
            (false, Value::Array(a)) => format!(
                "[{}]",
                a.iter()
                    .map(|x| x
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            (false, Value::Object(_)) => format!("map{}", cur),
            (false, x) => x.to_string(),
        };
        out.push_str(&text);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------- logs

fn logs_cmd(engine: &Engine, a: LogsArgs) -> anyhow::Result<i32> {
    let c = engine.store.find(&a.container)?;
    let now = SystemTime::now();
    let parse = |s: &Option<String>| -> anyhow::Result<Option<SystemTime>> {
        s.as_deref()
            .map(|x| {
                time::parse_time_arg(x, now).ok_or_else(|| anyhow!("invalid time value {x:?}"))
            })
            .transpose()
    };
    let tail = if a.tail == "all" || a.tail == "-1" {
        None
    } else {
        Some(
            a.tail
                .parse::<usize>()
                .map_err(|_| anyhow!("invalid --tail value {:?}", a.tail))?,
        )
    };
    let opts = ReadOptions {
        tail,
        since: parse(&a.since)?,
        until: parse(&a.until)?,
    };
    let path = logs::path(&c.dir, c.id());
    let (entries, offset) = logs::read(&path, &opts)?;
    let ts = a.timestamps;
    let emit = |e: &logs::Entry| -> io::Result<()> {
        let line = if ts {
            format!("{} {}", e.time, e.log)
        } else {
            e.log.clone()
        };
        if e.stream == "stderr" {
            let mut err = io::stderr().lock();
            err.write_all(line.as_bytes())?;
            err.flush()
        } else {
            let mut out = io::stdout().lock();
            out.write_all(line.as_bytes())?;
            out.flush()
        }
    };
    for e in &entries {
        emit(e)?;
    }
    if a.follow && c.state.is_active() {
        let id = c.id().to_owned();
        let follow_opts = ReadOptions { tail: None, ..opts };
        logs::follow(&path, offset, &follow_opts, emit, || {
            engine
                .store
                .load(&id)
                .map(|c| !c.state.is_active())
                .unwrap_or(true)
        })?;
    }
    Ok(0)
}

// ---------------------------------------------------------------- exec

fn exec(engine: &Engine, a: ExecArgs) -> anyhow::Result<i32> {
    let mut env = read_env_files(&a.env_file)?;
    env.extend(env_args(&a.env));
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env,
        user: a.user.clone().unwrap_or_default(),
        workdir: a.workdir.clone().unwrap_or_default(),
        tty: a.tty,
        privileged: a.privileged,
    };
    let mut stdio = runtime::Stdio::default();
    if !a.tty {
        let dup = |fd: std::os::fd::BorrowedFd<'_>| -> anyhow::Result<OwnedFd> {
            Ok(fd.try_clone_to_owned()?)
        };
        stdio.stdin = Some(if a.interactive && !a.detach {
            dup(io::stdin().as_fd())?
        } else {
            OwnedFd::from(std::fs::File::open("/dev/null")?)
        });
        if a.detach {
            stdio.stdout = Some(OwnedFd::from(std::fs::File::create("/dev/null")?));
            stdio.stderr = Some(OwnedFd::from(std::fs::File::create("/dev/null")?));
        } else {
            stdio.stdout = Some(dup(io::stdout().as_fd())?);
            stdio.stderr = Some(dup(io::stderr().as_fd())?);
        }
    }
    let (_c, started) = match engine.exec(&a.container, &opts, stdio) {
        Ok(x) => x,
        Err(e @ engine::container::ContainerError::Runtime(_)) => {
            // Like docker: the command could not be started in the container.
            eprintln!("Error: {e}");
            return Ok(126);
        }
        Err(e) => return Err(e.into()),
    };
    if a.detach {
        return Ok(0);
    }
    let pid = started.pid;
    let mut status: libc_status::Status = None;
    if let Some(master) = started.pty {
        let _raw = if a.interactive {
            term::RawMode::enter(0)
        } else {
            None
        };
        term::relay_pty(&master, a.interactive, || {
            if status.is_none() {
                status = libc_status::try_wait(pid);
            }
            status.is_some()
        })?;
    }
    let code = match status {
        Some(c) => c,
        None => libc_status::wait(pid),
    };
    Ok(code)
}

/// waitpid helpers for exec'd processes (children of this process).
mod libc_status {
    pub type Status = Option<i32>;

    fn decode(st: i32) -> i32 {
        if st & 0x7f == 0 {
            (st >> 8) & 0xff
        } else {
            128 + (st & 0x7f)
        }
    }

    pub fn try_wait(pid: i32) -> Status {
        let mut st = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { waitpid(pid, &mut st, 1) };
        (r == pid).then(|| decode(st))
    }

    pub fn wait(pid: i32) -> i32 {
        let mut st = 0;
        loop {
            // SAFETY: as above; blocking.
            let r = unsafe { waitpid(pid, &mut st, 0) };
            if r == pid {
                return decode(st);
            }
            if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return 255;
            }
        }
    }

    extern "C" {
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }
}

// ---------------------------------------------------------------- top / stats

fn top(engine: &Engine, key: &str) -> anyhow::Result<i32> {
    let c = engine.store.find(key)?;
    if !c.state.is_active() {
        bail!("container {} is not running", c.config.name);
    }
    let ticks = 100u64;
    let mut rows = Vec::new();
    let mut pids = cgroup::pids(c.id());
    pids.sort();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(") ").map(|x| x.1).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ppid = f.get(1).copied().unwrap_or("0").to_owned();
        let utime: u64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0);
        let stime: u64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
        let secs = (utime + stime) / ticks;
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|v| v.split_whitespace().next().unwrap_or("0").to_owned())
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|x| *x == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        rows.push([
            uid,
            pid.to_string(),
            ppid,
            "0".into(),
            "?".into(),
            format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                (secs / 60) % 60,
                secs % 60
            ),
            cmd,
        ]);
    }
    print!(
        "{}",
        table::render(&["UID", "PID", "PPID", "C", "TTY", "TIME", "CMD"], &rows)
    );
    Ok(0)
}

fn stats(engine: &Engine, a: StatsArgs) -> anyhow::Result<i32> {
    let pick = || -> anyhow::Result<Vec<Container>> {
        if a.containers.is_empty() {
            let mut l = engine.store.list()?;
            if !a.all {
                l.retain(|c| c.state.is_active());
            }
            Ok(l)
        } else {
            a.containers
                .iter()
                .map(|k| engine.store.find(k).map_err(Into::into))
                .collect()
        }
    };
    let cpus = cgroup::online_cpus();
    let _ = cpus;
    loop {
        let list = pick()?;
        let first: Vec<(cgroup::Sample, std::time::Instant)> = list
            .iter()
            .map(|c| (cgroup::sample(c.id()), std::time::Instant::now()))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let mut rows = Vec::new();
        let mut json_rows = Vec::new();
        for (c, (s0, t0)) in list.iter().zip(first) {
            let s1 = cgroup::sample(c.id());
            let r = stats_row(c, &s0, &s1, t0.elapsed(), a.no_trunc);
            json_rows.push(json!({"Container": r[0], "ID": r[0], "Name": r[1], "CPUPerc": r[2], "MemUsage": r[3], "MemPerc": r[4], "NetIO": r[5], "BlockIO": r[6], "PIDs": r[7]}));
            rows.push(r);
        }
        if matches!(a.format.as_deref(), Some("json") | Some("{{json .}}")) {
            for r in &json_rows {
                println!("{r}");
            }
        } else {
            if !a.no_stream {
                print!("\x1b[2J\x1b[H");
            }
            print!(
                "{}",
                table::render(
                    &[
                        "CONTAINER ID",
                        "NAME",
                        "CPU %",
                        "MEM USAGE / LIMIT",
                        "MEM %",
                        "NET I/O",
                        "BLOCK I/O",
                        "PIDS"
                    ],
                    &rows
                )
            );
        }
        io::stdout().flush()?;
        if a.no_stream {
            return Ok(0);
        }
    }
}

/// One container's `stats` columns (id, name, CPU %, memory, memory %, net I/O, block I/O,
/// pids) from two samples `wall` apart; a container that is not running shows zeros.
fn stats_row(
    c: &Container,
    s0: &cgroup::Sample,
    s1: &cgroup::Sample,
    wall: Duration,
    no_trunc: bool,
) -> [String; 8] {
    let active = c.state.is_active();
    let wall = wall.as_nanos() as f64;
    let cpu = if active && wall > 0.0 {
        (s1.cpu_ns.saturating_sub(s0.cpu_ns)) as f64 / wall * 100.0
    } else {
        0.0
    };
    let (usage, limit, pids, block) = if active {
        (s1.memory_usage, s1.memory_limit, s1.pids, s1.block)
    } else {
        (0, 0, 0, cgroup::BlockIo::default())
    };
    // Host network: the interfaces are the host's, which docker does not count either.
    let net = if active && c.config.network_mode != NetworkMode::Host {
        netio::read(c.state.pid)
    } else {
        netio::NetIo::default()
    };
    let mem_pct = if limit > 0 {
        usage as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let idtext = if no_trunc {
        c.id().to_owned()
    } else {
        id::short_id(c.id()).to_owned()
    };
    [
        idtext,
        c.config.name.clone(),
        format!("{cpu:.2}%"),
        format!("{} / {}", binary_size(usage), binary_size(limit)),
        format!("{mem_pct:.2}%"),
        format!("{} / {}", decimal_size(net.rx), decimal_size(net.tx)),
        format!(
            "{} / {}",
            decimal_size(block.read),
            decimal_size(block.write)
        ),
        pids.to_string(),
    ]
}

/// Decimal sizes as docker stats prints I/O (`units.HumanSizeWithPrecision(n, 3)`: 1000-based
/// units and Go's `%.3g`, so `1.23kB`, `8.39MB`, and even `1e+03kB` just under a megabyte).
fn decimal_size(n: u64) -> String {
    const U: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g3(v), U[i])
}

/// Go's `%.3g` for a non-negative number: three significant digits, exponent form when the
/// rounded exponent is 3 or more, trailing zeros dropped.
fn go_g3(v: f64) -> String {
    const PREC: i32 = 3;
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", (PREC - 1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..PREC).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (PREC - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// Binary sizes as docker stats prints them (`1.5MiB`).
fn binary_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(6)
            .collect::<String>()
            .trim_end_matches('.')
            .to_owned()
            + U[i]
    }
}

// ---------------------------------------------------------------- inspect

fn nanos_to_json(n: u64) -> Value {
    json!(n)
}

pub fn inspect_value(c: &Container, size: bool) -> Value {
    let cfg = &c.config;
    let st = &c.state;
    let path = cfg
        .entrypoint
        .first()
        .or(cfg.cmd.first())
        .cloned()
        .unwrap_or_default();
    let mut args: Vec<String> = cfg
        .entrypoint
        .iter()
        .chain(cfg.cmd.iter())
        .cloned()
        .collect();
    if !args.is_empty() {
        args.remove(0);
    }
    let zero = |s: &str| {
        if s.is_empty() {
            time::ZERO.to_owned()
        } else {
            s.to_owned()
        }
    };
    let health = st
        .health
        .as_ref()
        .map(|h| serde_json::to_value(h).unwrap_or(Value::Null));
    let mut state = json!({
        "Status": st.status.as_str(),
        "Running": matches!(st.status, Status::Running | Status::Paused),
        "Paused": st.status == Status::Paused,
        "Restarting": st.status == Status::Restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.status == Status::Dead,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": zero(&st.started_at),
        "FinishedAt": zero(&st.finished_at),
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    let mounts: Vec<Value> = cfg
        .mounts
        .iter()
        .map(|m| {
            let kind = match m.kind {
                MountKind::Bind => "bind",
                MountKind::Volume => "volume",
                MountKind::Tmpfs => "tmpfs",
            };
            json!({"Type": kind, "Name": if m.kind == MountKind::Volume { m.source.clone() } else { String::new() },
                "Source": m.source, "Destination": m.target, "RW": !m.read_only, "Driver": if m.kind == MountKind::Volume { "local" } else { "" }})
        })
        .collect();
    let lower: Vec<String> = cfg
        .lowerdirs
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let healthcheck = cfg.healthcheck.as_ref().map(|h| {
        json!({"Test": h.test, "Interval": nanos_to_json(h.interval), "Timeout": nanos_to_json(h.timeout),
            "StartPeriod": nanos_to_json(h.start_period), "StartInterval": nanos_to_json(h.start_interval), "Retries": h.retries})
    });
    // A container in another's network namespace uses that one's namespace and /etc files.
    let net_dir = match cfg.network_mode.joined() {
        Some(target) => c.dir.with_file_name(target),
        None => c.dir.clone(),
    };
    let mut v = json!({
        "Id": cfg.id,
        "Created": cfg.created,
        "Path": path,
        "Args": args,
        "State": state,
        "Image": cfg.image_id,
        "ResolvConfPath": net_dir.join("resolv.conf"),
        "HostnamePath": net_dir.join("hostname"),
        "HostsPath": net_dir.join("hosts"),
        "LogPath": logs::path(&c.dir, &cfg.id),
        "Name": format!("/{}", cfg.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": cfg.network_mode.as_str(),
            "RestartPolicy": cfg.restart,
            "AutoRemove": cfg.auto_remove,
            "CapAdd": cfg.cap_add,
            "CapDrop": cfg.cap_drop,
            "Privileged": cfg.privileged,
            "ReadonlyRootfs": cfg.read_only,
            "Memory": cfg.resources.memory,
            "MemorySwap": cfg.resources.memory_swap,
            "NanoCpus": cfg.resources.nano_cpus,
            "CpuShares": cfg.resources.cpu_shares,
            "PidsLimit": cfg.resources.pids_limit,
            "ShmSize": if cfg.resources.shm_size == 0 { 64u64 << 20 } else { cfg.resources.shm_size },
            "Ulimits": cfg.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Sysctls": cfg.sysctls,
            "Devices": cfg.devices.iter().map(|d| json!({"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
            "ExtraHosts": cfg.extra_hosts,
            "Dns": cfg.dns,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": cfg.log.max_size.to_string(), "max-file": cfg.log.max_file.to_string()}},
            "Init": cfg.init,
        },
        "GraphDriver": {"Name": "overlay2", "Data": {
            "LowerDir": lower.join(":"),
            "UpperDir": c.dir.join("upper"),
            "WorkDir": c.dir.join("work"),
            "MergedDir": c.dir.join("rootfs"),
        }},
        "Mounts": mounts,
        "Config": {
            "Hostname": if cfg.hostname.is_empty() { id::short_id(&cfg.id).to_owned() } else { cfg.hostname.clone() },
            "Domainname": cfg.domainname,
            "User": cfg.user,
            "Tty": cfg.tty,
            "OpenStdin": cfg.open_stdin,
            "Env": cfg.env,
            "Cmd": cfg.cmd,
            "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
            "Image": cfg.image,
            "WorkingDir": cfg.working_dir,
            "Labels": cfg.labels,
            "StopSignal": if cfg.stop_signal.is_empty() { "SIGTERM" } else { &cfg.stop_signal },
            "StopTimeout": cfg.stop_timeout,
            "Healthcheck": healthcheck,
        },
        "NetworkSettings": {
            "SandboxKey": if cfg.network_mode == NetworkMode::Host { String::new() } else { net_dir.join("netns").display().to_string() },
            "Networks": {},
        },
    });
    if size {
        let upper = dir_size(&c.dir.join("upper"));
        v["SizeRw"] = json!(upper);
        v["SizeRootFs"] = json!(upper + virtual_size(c));
    }
    v
}

fn inspect(engine: &Engine, a: InspectArgs) -> anyhow::Result<i32> {
    let mut out = Vec::new();
    let mut failed = false;
    for k in &a.containers {
        match engine.store.find(k) {
            Ok(c) => out.push(inspect_value(&c, a.size)),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match &a.format {
        Some(t) => {
            for v in &out {
                println!("{}", render_template(t, v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
    }
    Ok(i32::from(failed))
}

// ---------------------------------------------------------------- diff / export / cp

fn diff(engine: &Engine, key: &str) -> anyhow::Result<i32> {
    let c = engine.store.find(key)?;
    for (kind, path) in engine::container::fs::changes(&c)? {
        println!("{kind} {path}");
    }
    Ok(0)
}

fn export(engine: &Engine, a: ExportArgs) -> anyhow::Result<i32> {
    let c = engine.store.find(&a.container)?;
    let out: Box<dyn Write> = match &a.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => {
            if io::IsTerminal::is_terminal(&io::stdout()) {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            Box::new(io::stdout().lock())
        }
    };
    engine::container::fs::export(&c, out)?;
    Ok(0)
}

fn split_container_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
}

fn cp(engine: &Engine, a: CpArgs) -> anyhow::Result<i32> {
    let opts = cp::CopyOptions {
        follow_link: a.follow_link,
        archive: a.archive,
    };
    match (split_container_path(&a.src), split_container_path(&a.dest)) {
        (Some((c, p)), None) => {
            let c = engine.store.find(c)?;
            cp::copy_out(engine, &c, p, Path::new(&a.dest), opts)?;
        }
        (None, Some((c, p))) => {
            let c = engine.store.find(c)?;
            cp::copy_in(engine, &c, Path::new(&a.src), p, opts)?;
        }
        _ => bail!("must specify exactly one container path: CONTAINER:PATH and a local path"),
    }
    Ok(0)
}

// ---------------------------------------------------------------- prune

fn prune(engine: &Engine, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force {
        eprintln!("WARNING! This will remove all stopped containers.");
    }
    let mut removed = Vec::new();
    for c in engine.store.list()? {
        if c.state.is_active() {
            continue;
        }
        let mut keep = false;
        for f in &a.filter {
            if let Some(until) = f.strip_prefix("until=") {
                let t = time::parse_time_arg(until, SystemTime::now())
                    .ok_or_else(|| anyhow!("invalid until {until:?}"))?;
                keep |= time::parse_rfc3339(&c.config.created).is_some_and(|cr| cr > t);
            } else if f.starts_with("label") {
                keep |= !matches_filter(&c, f)?;
            }
        }
        if keep {
            continue;
        }
        engine.remove(c.id(), false, false)?;
        removed.push(c.config.id.clone());
    }
    // What interrupted removals left behind (a supervisor killed while deleting).
    engine.store.clean_leftovers()?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for r in &removed {
            println!("{r}");
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    let _ = store::supervisor_alive(0);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_tree_is_valid() {
        use clap::CommandFactory;
        ContainerCli::command().debug_assert();
    }

    #[test]
    fn sizes_volumes_templates() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        let v = parse_volume("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.read_only),
            (MountKind::Volume, "data", true)
        );
        let v = parse_volume("/tmp:/x").unwrap();
        assert_eq!(v.kind, MountKind::Bind);
        let v = parse_volume("/anon").unwrap();
        assert_eq!((v.kind, v.source.as_str()), (MountKind::Volume, ""));
        assert!(parse_volume("a:b").is_err());
        let t = parse_tmpfs("/run:size=1m,mode=1777").unwrap();
        assert_eq!(t.options, vec!["size=1048576", "mode=1777"]);
        let u = parse_ulimit("nofile=100:200").unwrap();
        assert_eq!((u.soft, u.hard), (100, 200));
        let v = json!({"State": {"Status": "running", "Pid": 4}, "Config": {"Cmd": ["a", "b"]}});
        assert_eq!(
            render_template("{{.State.Status}}/{{.State.Pid}}", &v).unwrap(),
            "running/4"
        );
        assert_eq!(
            render_template("{{json .Config.Cmd}}", &v).unwrap(),
            "[\"a\",\"b\"]"
        );
        assert_eq!(render_template("{{.Config.Cmd}}", &v).unwrap(), "[a b]");
        assert_eq!(binary_size(1536 * 1024), "1.5MiB");
        for (n, shown) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (1125, "1.12kB"),
            (12_345, "12.3kB"),
            (123_456, "123kB"),
            (999_999, "1e+03kB"),
            (8_388_608, "8.39MB"),
            (1_500_000_000, "1.5GB"),
            (u64::MAX, "18.4EB"),
        ] {
            assert_eq!(decimal_size(n), shown, "{n}");
        }
    }
}
