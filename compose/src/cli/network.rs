//! `rcompose network …`: create, ls, inspect, rm, prune, connect, disconnect (bridge driver),
//! with docker's flags, table columns and inspect JSON.
//!
//! `connect`/`disconnect` take a container by id, id prefix or name (read from
//! `<root>/containers/<id>/config.json`, namespace `<root>/containers/<id>/netns`), or — for
//! namespaces made outside rcompose (tests, debugging) — a path to a network namespace file such
//! as `/run/netns/NAME`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use ipnet::IpNet;
use netctl::{AttachRequest, IpamConfig, Network, NetworkManager, NetworkSpec, PruneOptions};
use serde_json::{json, Map, Value};

use super::table;
use super::GlobalOpts;

/// Raw arguments of `rcompose network` (parsed by [`NetworkCli`] so `-f` means `--filter` /
/// `--force` as in docker, not the global `--file`).
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "COMMAND")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(name = "rcompose network", about = "Manage networks")]
struct NetworkCli {
    /// State root holding images, containers, volumes and networks
    #[arg(long = "root", global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks (and what a crash left behind)
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Driver to manage the network (only "bridge")
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format (repeatable: one IPv4, one IPv6)
    #[arg(long)]
    subnet: Vec<IpNet>,
    /// Allocate container addresses from a sub-range
    #[arg(long = "ip-range")]
    ip_range: Vec<IpNet>,
    /// Gateway for the subnet it belongs to
    #[arg(long)]
    gateway: Vec<IpAddr>,
    /// Auxiliary addresses the allocator must not hand out (name=ip)
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable IPv6
    #[arg(long)]
    ipv6: bool,
    /// Accepted for docker compatibility (every network is attachable)
    #[arg(long)]
    attachable: bool,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options (com.docker.network.bridge.name, com.docker.network.driver.mtu)
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Network name
    name: String,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (name=, id=, driver=, label=KEY[=VALUE], type=custom)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Output format: `table` or `json`
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Verbose output (accepted, no effect)
    #[arg(short, long)]
    verbose: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (accepted, not applied)
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    /// IPv4 address
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// IPv6 address
    #[arg(long)]
    ip6: Option<Ipv6Addr>,
    /// Interface name inside the container (default: the next free ethN)
    #[arg(long)]
    ifname: Option<String>,
    /// MAC address of the container's interface
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    /// Add the default route via this network's gateway (automatic for the first network)
    #[arg(long)]
    default_route: bool,
    network: String,
    /// Container id, name, or a network namespace path
    container: String,
}

#[derive(Debug, clap::Args)]
struct DisconnectArgs {
    /// Force the container to disconnect (also when its namespace is gone)
    #[arg(short, long)]
    force: bool,
    network: String,
    /// Container id, name, or a network namespace path
    container: String,
}

pub fn run(global: &GlobalOpts, args: NetworkArgs) -> anyhow::Result<i32> {
    let argv = std::iter::once(OsString::from("rcompose network")).chain(args.args);
    let cli = match NetworkCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            e.print().context("printing usage")?;
            return Ok(code);
        }
    };
    let root = cli.root.unwrap_or_else(|| global.root.clone());
    let mut nm = NetworkManager::open(&root)
        .with_context(|| format!("opening the networks of {}", root.display()))?;
    // Service DNS follows every change; the resolver (`rcompose __dns`) is started on demand.
    let dns = netctl::dns::Registry::open(&root)
        .with_context(|| format!("opening the DNS state of {}", root.display()))?;
    let dns = match std::env::current_exe() {
        Ok(exe) => dns.with_resolver(exe),
        Err(_) => dns,
    };
    nm.set_dns(Box::new(dns));
    match cli.command {
        Cmd::Create(a) => create(&mut nm, a),
        Cmd::Ls(a) => ls(&nm, a),
        Cmd::Inspect(a) => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.networks {
                match nm.get(n) {
                    Ok(net) => out.push(inspect_json(&net)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
            Ok(code)
        }
        Cmd::Rm(a) => {
            let mut code = 0;
            for n in &a.networks {
                match nm.remove_network(n) {
                    Ok(()) => println!("{n}"),
                    Err(netctl::NetworkError::NotFound(_)) if a.force => {}
                    Err(e) => {
                        eprintln!("Error response: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Prune(a) => {
            if !a.force && std::io::stdin().is_terminal() {
                eprint!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).ok();
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    return Ok(0);
                }
            }
            let r = nm.prune(PruneOptions {
                unused_networks: true,
            })?;
            if !r.networks.is_empty() {
                println!("Deleted Networks:");
                for n in &r.networks {
                    println!("{n}");
                }
            }
            for e in &r.errors {
                eprintln!("Error: {e}");
            }
            Ok(if r.errors.is_empty() { 0 } else { 1 })
        }
        Cmd::Connect(a) => {
            let target = resolve_container(&root, &a.container)?;
            let attached_elsewhere = nm
                .list()?
                .iter()
                .any(|n| n.endpoints.contains_key(&target.id));
            // A container's first network also gets its /etc/hosts and /etc/resolv.conf (the
            // network's resolver), so names on it resolve, as on docker's user networks.
            if !attached_elsewhere {
                if let Ok(c) = engine::container::store::ContainerStore::open(&root)
                    .and_then(|s| s.load(&target.id))
                {
                    let net = crate::orchestrate::translate::NetworkJoin {
                        name: a.network.clone(),
                        aliases: a.alias.clone(),
                        ipv4_address: a.ip,
                        ipv6_address: a.ip6,
                        mac: a.mac_address.clone(),
                        ifname: a.ifname.clone(),
                    };
                    crate::orchestrate::join::join(
                        &root,
                        &mut nm,
                        &c,
                        &[net],
                        &[],
                        &Default::default(),
                    )?;
                    return Ok(0);
                }
            }
            let req = AttachRequest {
                container_id: target.id.clone(),
                container_name: target.name.clone(),
                netns_path: target.netns.clone(),
                aliases: a.alias.clone(),
                ipv4_address: a.ip,
                ipv6_address: a.ip6,
                mac: a.mac_address.clone(),
                ifname: a.ifname.clone(),
                is_default_route: a.default_route || !attached_elsewhere,
            };
            nm.attach(&a.network, &req)?;
            Ok(0)
        }
        Cmd::Disconnect(a) => {
            let target = resolve_container(&root, &a.container).or_else(|e| {
                // With --force, a container whose record is gone can still be disconnected by id.
                if a.force {
                    Ok::<_, anyhow::Error>(Target {
                        id: a.container.clone(),
                        name: a.container.clone(),
                        netns: PathBuf::new(),
                    })
                } else {
                    Err(e)
                }
            })?;
            nm.detach(&a.network, &target.id)?;
            Ok(0)
        }
    }
}

fn kv(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
            if k.is_empty() {
                bail!("invalid key=value {s:?}");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn create(nm: &mut NetworkManager, a: CreateArgs) -> anyhow::Result<i32> {
    let mut ipam: Vec<IpamConfig> = a
        .subnet
        .iter()
        .map(|s| IpamConfig {
            subnet: Some(*s),
            ..Default::default()
        })
        .collect();
    // docker pairs --gateway/--ip-range/--aux-address with the subnet that contains them.
    let slot = |ipam: &mut Vec<IpamConfig>, ip: IpAddr, what: &str| -> anyhow::Result<usize> {
        ipam.iter()
            .position(|c| c.subnet.is_some_and(|s| s.contains(&ip)))
            .ok_or_else(|| anyhow!("no matching subnet for {what} {ip}"))
    };
    for g in &a.gateway {
        let i = slot(&mut ipam, *g, "gateway")?;
        ipam[i].gateway = Some(*g);
    }
    for r in &a.ip_range {
        let i = slot(&mut ipam, r.network(), "range")?;
        ipam[i].ip_range = Some(*r);
    }
    for (k, v) in kv(&a.aux_address)? {
        let ip: IpAddr = v
            .parse()
            .map_err(|_| anyhow!("invalid auxiliary address {k}={v}"))?;
        let i = slot(&mut ipam, ip, "auxiliary address")?;
        ipam[i].aux_addresses.insert(k, ip);
    }
    let spec = NetworkSpec {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        internal: a.internal,
        enable_ipv6: a.ipv6,
        ipam,
        labels: kv(&a.label)?,
        options: kv(&a.opt)?,
        mtu: None,
    };
    let _ = a.attachable;
    let net = nm.create_network(&spec)?;
    println!("{}", net.id);
    Ok(0)
}

fn ls(nm: &NetworkManager, a: LsArgs) -> anyhow::Result<i32> {
    let mut nets = nm.list()?;
    for f in &a.filter {
        let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
        nets.retain(|n| match k {
            "name" => n.name.contains(v),
            "id" => n.id.starts_with(v),
            "driver" => n.driver == v,
            "type" => v == "custom",
            "scope" => v == "local",
            "label" => match v.split_once('=') {
                Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                None => n.labels.contains_key(v),
            },
            _ => true,
        });
    }
    let id = |n: &Network| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id[..12.min(n.id.len())].to_string()
        }
    };
    if a.quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(0);
    }
    if a.format == "json" {
        for n in &nets {
            let line = json!({
                "ID": id(n), "Name": n.name, "Driver": n.driver, "Scope": "local",
                "IPv6": n.enable_ipv6, "Internal": n.internal, "CreatedAt": n.created,
                "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            });
            println!("{line}");
        }
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = nets
        .iter()
        .map(|n| [id(n), n.name.clone(), n.driver.clone(), "local".to_string()])
        .collect();
    print!(
        "{}",
        table::render(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
    );
    Ok(0)
}

/// docker's `network inspect` object.
fn inspect_json(n: &Network) -> Value {
    let config: Vec<Value> = n
        .subnets
        .iter()
        .map(|s| {
            let mut c = Map::new();
            c.insert("Subnet".into(), json!(s.subnet.to_string()));
            c.insert("Gateway".into(), json!(s.gateway.to_string()));
            if let Some(r) = s.ip_range {
                c.insert("IPRange".into(), json!(r.to_string()));
            }
            if !s.aux_addresses.is_empty() {
                c.insert("AuxiliaryAddresses".into(), json!(s.aux_addresses));
            }
            Value::Object(c)
        })
        .collect();
    let containers: Map<String, Value> = n
        .endpoints
        .iter()
        .map(|(id, e)| {
            (
                id.clone(),
                json!({
                    "Name": e.container_name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac,
                    "IPv4Address": e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
                    "IPv6Address": e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
                }),
            )
        })
        .collect();
    let mut options = n.options.clone();
    options
        .entry("com.docker.network.bridge.name".into())
        .or_insert_with(|| n.bridge.clone());
    options
        .entry("com.docker.network.driver.mtu".into())
        .or_insert_with(|| n.mtu.to_string());
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": { "Driver": "default", "Options": {}, "Config": config },
        "Internal": n.internal,
        "Attachable": true,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// A container (or bare namespace) to connect.
struct Target {
    id: String,
    name: String,
    netns: PathBuf,
}

/// Finds a container by id, unique id prefix or name in `<root>/containers/*/config.json`; a
/// path to an existing file is taken as a network namespace (id derived from the path).
fn resolve_container(root: &Path, key: &str) -> anyhow::Result<Target> {
    if key.contains('/') {
        let path = PathBuf::from(key);
        if !path.exists() {
            bail!("network namespace {key} does not exist");
        }
        let path = std::path::absolute(&path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("netns")
            .to_string();
        let id = netctl::names::hash_hex(&[path.as_os_str().as_encoded_bytes()]);
        return Ok(Target {
            id,
            name,
            netns: path,
        });
    }
    let dir = root.join("containers");
    let mut hits = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let cfg = e.path().join("config.json");
            let Ok(data) = std::fs::read(&cfg) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<Value>(&data) else {
                continue;
            };
            let id = v["id"].as_str().unwrap_or_default().to_string();
            let name = v["name"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            if id.is_empty() {
                continue;
            }
            if id == key || name == key.trim_start_matches('/') {
                return Ok(Target {
                    netns: e.path().join("netns"),
                    id,
                    name,
                });
            }
            if id.starts_with(key) {
                hits.push(Target {
                    netns: e.path().join("netns"),
                    id,
                    name,
                });
            }
        }
    }
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => bail!("No such container: {key}"),
        _ => bail!("container id prefix {key:?} is ambiguous"),
    }
}
