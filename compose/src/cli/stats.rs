//! `rcompose stats`: resource usage of the project's containers, through
//! `rcompose container stats`.

use std::ffi::OsString;

use super::stack;
use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output: table or json
    #[arg(long)]
    format: Option<String>,
}

pub fn run(global: &GlobalOpts, a: StatsArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let mut list = stack::containers(&engine, &st.project.name, &a.services, true)?;
    if !a.all {
        list.retain(|c| c.state.is_active());
    }
    if list.is_empty() {
        // `container stats` with no names would show every container of the root.
        if a.format.as_deref().is_some_and(|f| f.contains("json")) {
            return Ok(0);
        }
        print!(
            "{}",
            super::table::render::<8>(
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
                &[]
            )
        );
        return Ok(0);
    }
    let mut args: Vec<OsString> = vec!["stats".into()];
    if a.no_stream {
        args.push("--no-stream".into());
    }
    if a.no_trunc {
        args.push("--no-trunc".into());
    }
    if let Some(f) = &a.format {
        args.push("--format".into());
        args.push(f.into());
    }
    args.extend(list.iter().map(|c| OsString::from(c.id())));
    super::container::run(global, super::container::ContainerArgs { args })
}
