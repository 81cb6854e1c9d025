//! `rcompose attach`: attach the local terminal to a service container, through
//! `rcompose container attach`.

use std::ffi::OsString;

use anyhow::anyhow;

use super::stack;
use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Service name
    service: String,
    /// Index of the container if the service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Override the key sequence for detaching from a container
    #[arg(long, value_name = "KEYS")]
    detach_keys: Option<String>,
}

pub fn run(global: &GlobalOpts, a: AttachArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, std::slice::from_ref(&a.service))?;
    let engine = stack::engine(global)?;
    let c = stack::containers(
        &engine,
        &st.project.name,
        std::slice::from_ref(&a.service),
        false,
    )?
    .into_iter()
    .find(|c| stack::number(c) == a.index)
    .ok_or_else(|| {
        anyhow!(
            "service {:?} has no container with index {}",
            a.service,
            a.index
        )
    })?;
    let mut args: Vec<OsString> = vec!["attach".into()];
    if a.no_stdin {
        args.push("--no-stdin".into());
    }
    if let Some(k) = &a.detach_keys {
        args.push("--detach-keys".into());
        args.push(k.into());
    }
    args.push(c.id().into());
    super::container::run(global, super::container::ContainerArgs { args })
}
