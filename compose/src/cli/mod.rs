//! The `rcompose` command line: global options and the command tree.
//!
//! Each command group lives in its own module exposing a clap `Subcommand` (or `Args`) type and a
//! `run` function; this module only dispatches.

pub mod config;
pub mod container;
pub mod dns;
pub mod image;
pub mod login;
pub mod network;
pub mod project;
pub mod supervise;
pub mod table;
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
    about = "Compose-spec multi-container orchestrator and container engine, without a daemon",
    propagate_version = true
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
    /// Manage images (pull, push, ls, rm, tag, inspect, history, save, load, import, prune)
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
        Command::Dns(args) => dns::run(&cli.global, args),
        Command::Container(args) => container::run(&cli.global, args),
        Command::Volume(args) => volume::run(&cli.global, args),
        Command::Network(args) => network::run(&cli.global, args),
    }
}
