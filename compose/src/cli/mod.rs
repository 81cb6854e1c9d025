//! The `rcompose` command line: global options and the command tree.
//!
//! Each command group lives in its own module exposing a clap `Subcommand` (or `Args`) type and a
//! `run` function; this module only dispatches.

pub mod attach;
pub mod attached;
pub mod build;
pub mod config;
pub mod container;
pub mod container_net;
pub mod cp;
pub mod dns;
pub mod down;
pub mod events;
pub mod image;
pub mod login;
pub mod logs;
pub mod network;
pub mod project;
pub mod ps;
pub mod run;
pub mod scale;
pub mod service_cmds;
pub mod stack;
pub mod stats;
pub mod supervise;
pub mod table;
pub mod up;
pub mod version;
pub mod volume;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Default state root when neither `--root` nor `RCOMPOSE_ROOT` is given.
pub const DEFAULT_ROOT: &str = "/var/lib/rcompose";

#[derive(Debug, Parser)]
#[command(
    name = "rcompose",
    version,
    about = "Compose-spec multi-container orchestrator and container engine, without a daemon"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, as docker compose spells them.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// Compose configuration files (repeatable; `-` reads standard input)
    #[arg(
        short = 'f',
        long = "file",
        id = "global_file",
        global = true,
        value_name = "FILE"
    )]
    pub files: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first compose file)
    #[arg(long = "project-directory", global = true, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Enable a profile (repeatable)
    #[arg(
        long = "profile",
        id = "global_profile",
        global = true,
        value_name = "NAME"
    )]
    pub profiles: Vec<String>,
    /// Alternate environment file (repeatable)
    #[arg(
        long = "env-file",
        id = "global_env_file",
        global = true,
        value_name = "FILE"
    )]
    pub env_files: Vec<PathBuf>,
    /// State root holding images, containers, volumes and networks
    #[arg(long = "root", env = "RCOMPOSE_ROOT", global = true, value_name = "DIR", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format
    Config(config::ConfigArgs),
    /// Show the rcompose version information
    Version(version::VersionArgs),
    /// Manage images (build, pull, push, ls, rm, tag, inspect, history, save, load, import, prune)
    #[command(disable_help_flag = true)]
    Image(image::ImageArgs),
    /// Log in to a registry
    #[command(disable_help_flag = true)]
    Login(login::LoginArgs),
    /// Log out from a registry
    #[command(disable_help_flag = true)]
    Logout(login::LogoutArgs),
    /// Pull the images of the project's services
    Pull(image::project::ProjectPullArgs),
    /// Push the images the project builds
    Push(image::project::ProjectPushArgs),
    /// Create and start containers
    Up(up::UpArgs),
    /// Build or rebuild the images of services
    Build(build::BuildArgs),
    /// Stop and remove containers and networks (and volumes with -v)
    Down(down::DownArgs),
    /// Create containers for services without starting them
    Create(up::CreateArgs),
    /// Start existing containers of services
    Start(service_cmds::ServicesArgs),
    /// Stop services
    Stop(service_cmds::StopArgs),
    /// Restart service containers
    Restart(service_cmds::StopArgs),
    /// Force stop service containers
    Kill(service_cmds::KillArgs),
    /// Pause services
    Pause(service_cmds::ServicesArgs),
    /// Unpause services
    Unpause(service_cmds::ServicesArgs),
    /// Remove stopped service containers
    Rm(service_cmds::RmArgs),
    /// List containers of the project
    Ps(ps::PsArgs),
    /// View output from containers
    Logs(logs::LogsArgs),
    /// Execute a command in a running service container
    Exec(service_cmds::ExecArgs),
    /// Display the running processes
    Top(service_cmds::ServicesArgs),
    /// Print the public port for a port binding
    Port(service_cmds::PortArgs),
    /// List images used by the created containers
    Images(service_cmds::ServicesArgs),
    /// List running compose projects
    Ls(service_cmds::LsArgs),
    /// Block until containers of services stop, printing their exit codes
    Wait(service_cmds::WaitArgs),
    /// Run a one-off command on a service
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(cp::CpArgs),
    /// Attach local standard input, output, and error streams to a service's running container
    Attach(attach::AttachArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Scale services (SERVICE=REPLICAS)
    Scale(scale::ScaleArgs),
    /// Receive real time events from containers
    Events(events::EventsArgs),
    /// Service DNS resolver process (internal; started on demand by network commands)
    #[command(name = "__dns", hide = true)]
    Dns(dns::DnsArgs),
    /// Manage containers (run, create, start, stop, rm, ls, logs, exec, attach, inspect, …)
    #[command(disable_help_flag = true)]
    Container(container::ContainerArgs),
    /// Manage volumes (create, ls, inspect, rm, prune)
    #[command(disable_help_flag = true)]
    Volume(volume::VolumeArgs),
    /// Manage networks (create, ls, inspect, rm, prune, connect, disconnect)
    #[command(disable_help_flag = true)]
    Network(network::NetworkArgs),
}

/// Global options that take a value (their value is not the subcommand).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--project-directory",
    "--profile",
    "--env-file",
    "--root",
];

/// Docker compose lets a subcommand's own short flag shadow a global one (`logs -f` follows,
/// `rm -f` forces, while `-f` before the subcommand names a file). Clap cannot shadow, so the
/// subcommand's meaning is spelled out long before parsing.
pub fn shadow_local_flags(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut sub: Option<String> = None;
    let mut skip_value = false;
    for (i, a) in args.into_iter().enumerate() {
        let text = a.to_string_lossy().into_owned();
        if i == 0 {
            out.push(a);
            continue;
        }
        match &sub {
            None => {
                if skip_value {
                    skip_value = false;
                } else if GLOBAL_WITH_VALUE.contains(&text.as_str()) {
                    skip_value = true;
                } else if !text.starts_with('-') {
                    sub = Some(text);
                }
                out.push(a);
            }
            Some(s) => {
                let long = match (s.as_str(), text.as_str()) {
                    ("logs", "-f") => Some("--follow"),
                    ("rm", "-f") => Some("--force"),
                    _ => None,
                };
                out.push(long.map(Into::into).unwrap_or(a));
            }
        }
    }
    out
}

/// Runs one parsed command line; the returned code is the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Version(args) => version::run(args),
        Command::Image(args) => image::run(&cli.global, args),
        Command::Login(args) => login::run_login(args),
        Command::Logout(args) => login::run_logout(args),
        Command::Pull(args) => image::project::run_pull(&cli.global, args),
        Command::Push(args) => image::project::run_push(&cli.global, args),
        Command::Up(a) => up::run(&cli.global, a),
        Command::Build(a) => build::run_build(&cli.global, a),
        Command::Down(a) => down::run(&cli.global, a),
        Command::Create(a) => up::run_create(&cli.global, a),
        Command::Start(a) => service_cmds::start(&cli.global, a),
        Command::Stop(a) => service_cmds::stop(&cli.global, a),
        Command::Restart(a) => service_cmds::restart(&cli.global, a),
        Command::Kill(a) => service_cmds::kill(&cli.global, a),
        Command::Pause(a) => service_cmds::pause(&cli.global, a, true),
        Command::Unpause(a) => service_cmds::pause(&cli.global, a, false),
        Command::Rm(a) => service_cmds::rm(&cli.global, a),
        Command::Ps(a) => ps::run(&cli.global, a),
        Command::Logs(a) => logs::run(&cli.global, a),
        Command::Exec(a) => service_cmds::exec(&cli.global, a),
        Command::Top(a) => service_cmds::top(&cli.global, a),
        Command::Port(a) => service_cmds::port(&cli.global, a),
        Command::Images(a) => service_cmds::images(&cli.global, a),
        Command::Ls(a) => service_cmds::ls(&cli.global, a),
        Command::Wait(a) => service_cmds::wait(&cli.global, a),
        Command::Run(a) => run::run(&cli.global, a),
        Command::Cp(a) => cp::run(&cli.global, a),
        Command::Attach(a) => attach::run(&cli.global, a),
        Command::Stats(a) => stats::run(&cli.global, a),
        Command::Scale(a) => scale::run(&cli.global, a),
        Command::Events(a) => events::run(&cli.global, a),
        Command::Dns(args) => dns::run(&cli.global, args),
        Command::Container(args) => container::run(&cli.global, args),
        Command::Volume(args) => volume::run(&cli.global, args),
        Command::Network(args) => network::run(&cli.global, args),
    }
}
