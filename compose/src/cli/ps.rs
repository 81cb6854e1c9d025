//! `rcompose ps`: the project's containers with docker compose's columns.

use anyhow::bail;
use engine::container::store::Container;
use serde_json::{json, Value};

use super::stack;
use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Show all stopped containers too
    #[arg(short, long)]
    all: bool,
    /// Only display IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display services
    #[arg(long = "services")]
    services_only: bool,
    /// Filter services by status: created, running, paused, restarting, exited, dead (repeatable)
    #[arg(long)]
    status: Vec<String>,
    /// Filter by a property (status=running, …)
    #[arg(long)]
    filter: Vec<String>,
    /// Output format: table or json
    #[arg(long, default_value = "table")]
    format: String,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
}

/// `0.0.0.0:8080->80/tcp, …` as docker shows published ports.
pub fn ports_text(ports: &[netctl::PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| {
            let host = match p.host_ip {
                Some(ip) if ip.is_ipv6() => format!("[{ip}]"),
                Some(ip) => ip.to_string(),
                None => "0.0.0.0".into(),
            };
            format!(
                "{host}:{}->{}/{}",
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(global: &GlobalOpts, a: PsArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    if a.services_only {
        let mut names: Vec<&String> = st.project.services.keys().collect();
        names.sort();
        for n in names {
            println!("{n}");
        }
        return Ok(0);
    }
    let engine = stack::engine(global)?;
    let mut list = stack::containers(&engine, &st.project.name, &a.services, true)?;
    let mut statuses = a.status.clone();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("status", v)) => statuses.push(v.to_owned()),
            _ => bail!("invalid filter {f:?} (supported: status=<state>)"),
        }
    }
    if !statuses.is_empty() {
        list.retain(|c| statuses.iter().any(|s| s == c.state.status.as_str()));
    } else if !a.all {
        list.retain(|c| c.state.is_active());
    }
    if a.quiet {
        for c in &list {
            println!("{}", c.id());
        }
        return Ok(0);
    }
    let nm = crate::orchestrate::local::network_manager(&global.root)?;
    let rows: Vec<(Container, String)> = list
        .into_iter()
        .map(|c| {
            let ports = nm.ports(c.id()).map(|p| ports_text(&p)).unwrap_or_default();
            (c, ports)
        })
        .collect();
    match a.format.as_str() {
        "json" => {
            let items: Vec<Value> = rows
                .iter()
                .map(|(c, ports)| {
                    json!({
                        "ID": c.id(),
                        "Name": c.config.name,
                        "Image": c.config.image,
                        "Command": command(c, true),
                        "Project": st.project.name,
                        "Service": stack::service_of(c),
                        "Created": c.config.created,
                        "State": c.state.status.as_str(),
                        "Status": super::container::status_text(c),
                        "Health": c.state.health.as_ref().map(|h| h.status.clone()).unwrap_or_default(),
                        "ExitCode": c.state.exit_code,
                        "Publishers": ports,
                        "Labels": c.config.labels,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&items)?);
        }
        "table" => {
            let table: Vec<[String; 7]> = rows
                .iter()
                .map(|(c, ports)| {
                    [
                        c.config.name.clone(),
                        c.config.image.clone(),
                        command(c, a.no_trunc),
                        stack::service_of(c).to_owned(),
                        super::container::created_text(c),
                        super::container::status_text(c),
                        ports.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                super::table::render(
                    &["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"],
                    &table
                )
            );
        }
        other => bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(0)
}

fn command(c: &Container, full: bool) -> String {
    let text = super::container::command_text(&c.config);
    if full || text.chars().count() <= 20 {
        format!("\"{text}\"")
    } else {
        let cut: String = text.chars().take(19).collect();
        format!("\"{cut}…\"")
    }
}
