//! `rcompose volume …`: create, ls, inspect, rm, prune (local driver).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use engine::container::Engine;
use serde_json::{json, Value};

use super::table;
use super::GlobalOpts;

/// Raw arguments of `rcompose volume`.
#[derive(Debug, clap::Args)]
pub struct VolumeArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "COMMAND")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(name = "rcompose volume", about = "Manage volumes")]
struct VolumeCli {
    /// State root holding images, containers, volumes and networks
    #[arg(long = "root", global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set driver specific options (type=, o=, device=)
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    /// Volume name (generated when omitted)
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (name=, label=, dangling=)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output: table or json
    #[arg(long)]
    format: Option<String>,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Format output using a Go-style template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Force the removal of one or more volumes (missing ones are not an error)
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (label=)
    #[arg(long)]
    filter: Vec<String>,
}

fn kv(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

fn to_json(v: &engine::volume::Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options,
        "Scope": v.scope,
    })
}

fn label_match(v: &engine::volume::Volume, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(f),
    }
}

pub fn run(global: &GlobalOpts, args: VolumeArgs) -> anyhow::Result<i32> {
    let argv = std::iter::once(OsString::from("rcompose volume")).chain(args.args);
    let cli = match VolumeCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            e.print().context("printing usage")?;
            return Ok(code);
        }
    };
    let root = cli.root.unwrap_or_else(|| global.root.clone());
    let engine = Engine::open(&root)
        .with_context(|| format!("opening the state root {}", root.display()))?;
    match cli.command {
        Cmd::Create(a) => {
            let name = a
                .name
                .clone()
                .unwrap_or_else(engine::container::id::generate_id);
            let v = engine
                .volumes
                .create(&name, &a.driver, kv(&a.label), kv(&a.opt), false)?;
            println!("{}", v.name);
            Ok(0)
        }
        Cmd::Ls(a) => {
            let mut list = engine.volumes.list()?;
            for f in &a.filter {
                let (k, val) = f
                    .split_once('=')
                    .ok_or_else(|| anyhow!("bad filter {f:?}"))?;
                let mut keep = Vec::new();
                for v in list {
                    let ok = match k {
                        "name" => v.name.contains(val),
                        "label" => label_match(&v, val),
                        "driver" => v.driver == val,
                        "dangling" => {
                            (engine.volume_users(&v.name)?.is_empty())
                                == (val == "true" || val == "1")
                        }
                        _ => return Err(anyhow!("invalid filter {k:?}")),
                    };
                    if ok {
                        keep.push(v);
                    }
                }
                list = keep;
            }
            if a.quiet {
                for v in &list {
                    println!("{}", v.name);
                }
            } else if matches!(a.format.as_deref(), Some("json") | Some("{{json .}}")) {
                for v in &list {
                    let labels = v
                        .labels
                        .iter()
                        .map(|(k, x)| format!("{k}={x}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    println!(
                        "{}",
                        json!({"Driver": v.driver, "Labels": labels, "Mountpoint": v.mountpoint, "Name": v.name, "Scope": v.scope})
                    );
                }
            } else {
                let rows: Vec<[String; 2]> = list
                    .iter()
                    .map(|v| [v.driver.clone(), v.name.clone()])
                    .collect();
                print!("{}", table::render(&["DRIVER", "VOLUME NAME"], &rows));
            }
            Ok(0)
        }
        Cmd::Inspect(a) => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &a.volumes {
                match engine.volumes.get(n) {
                    Ok(v) => out.push(to_json(&v)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            match &a.format {
                Some(t) => {
                    for v in &out {
                        println!("{}", super::container::render_template(t, v)?);
                    }
                }
                None => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
            }
            Ok(i32::from(failed))
        }
        Cmd::Rm(a) => {
            let mut failed = false;
            for n in &a.volumes {
                match engine.remove_volume(n) {
                    Ok(()) => println!("{n}"),
                    Err(engine::container::ContainerError::Volume(
                        engine::volume::VolumeError::NotFound(_),
                    )) if a.force => {}
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        Cmd::Prune(a) => {
            if !a.force {
                eprintln!("WARNING! This will remove anonymous local volumes not used by at least one container.");
            }
            let mut removed = Vec::new();
            for v in engine.volumes.list()? {
                if !a.all && !v.anonymous {
                    continue;
                }
                if a.filter.iter().any(|f| {
                    f.strip_prefix("label=")
                        .is_some_and(|l| !label_match(&v, l))
                }) {
                    continue;
                }
                if engine.volume_users(&v.name)?.is_empty() {
                    engine.remove_volume(&v.name)?;
                    removed.push(v.name);
                }
            }
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for r in &removed {
                    println!("{r}");
                }
                println!();
            }
            println!("Total reclaimed space: 0B");
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_tree_is_valid() {
        use clap::CommandFactory;
        super::VolumeCli::command().debug_assert();
    }
}
