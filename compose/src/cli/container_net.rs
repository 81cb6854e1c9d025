//! Engine containers on netctl networks: `container run --network NAME` (with `-p`,
//! `--network-alias`, `--ip`), the clean-up of `container rm`, and `container port`.
//!
//! Without `--network NAME` a container keeps the namespace of its own with loopback only
//! (`bridge`), or uses `host`, `none` or another container's; there is no default network.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use engine::container::ops::Engine;
use engine::container::store::Container;
use netctl::{NetworkManager, PortMapping};

use crate::orchestrate::join::{join, DnsOverrides};
use crate::orchestrate::local::network_manager;
use crate::orchestrate::translate::NetworkJoin;

/// What a new container asks of a network.
#[derive(Debug, Clone)]
pub struct Request {
    root: PathBuf,
    network: String,
    aliases: Vec<String>,
    ip: Option<Ipv4Addr>,
    ports: Vec<PortMapping>,
}

/// The `--network` values that name no netctl network.
fn builtin(network: &str) -> bool {
    matches!(network, "bridge" | "default" | "host" | "none") || network.starts_with("container:")
}

impl Request {
    /// Checks the request before anything is created (the network exists, the host ports are
    /// free); `None` when the container joins no netctl network.
    pub fn from_args(
        root: &Path,
        network: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
        publish: &[String],
    ) -> anyhow::Result<Option<Request>> {
        if builtin(network) {
            if !publish.is_empty() || !aliases.is_empty() || ip.is_some() {
                bail!(
                    "-p, --network-alias and --ip need --network NAME (a network made by `rcompose network create`); --network {network} has none"
                );
            }
            return Ok(None);
        }
        let nm = NetworkManager::open(root)
            .with_context(|| format!("opening the networks of {}", root.display()))?;
        nm.get(network)
            .with_context(|| format!("network {network} not found"))?;
        let ports = publish
            .iter()
            .map(|p| PortMapping::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        nm.check_ports(&ports)?;
        Ok(Some(Request {
            root: root.to_owned(),
            network: network.to_owned(),
            aliases: aliases.to_vec(),
            ip,
            ports,
        }))
    }

    /// Attaches the created container (veth, address, DNS names, ports, /etc files).
    pub fn join(&self, c: &Container) -> anyhow::Result<()> {
        let mut nm = network_manager(&self.root)?;
        let net = NetworkJoin {
            name: self.network.clone(),
            aliases: self.aliases.clone(),
            ipv4_address: self.ip,
            ..Default::default()
        };
        join(
            &self.root,
            &mut nm,
            c,
            std::slice::from_ref(&net),
            &self.ports,
            &DnsOverrides::default(),
        )?;
        Ok(())
    }
}

/// Drops a removed container's endpoints and published ports.
pub fn forget(root: &Path, id: &str) -> anyhow::Result<()> {
    if !root.join("networks").is_dir() {
        return Ok(());
    }
    let mut nm = network_manager(root)?;
    nm.detach_all(id)?;
    Ok(())
}

/// `container port CONTAINER [PRIVATE_PORT[/PROTO]]`, as docker prints it.
pub fn port(engine: &Engine, key: &str, wanted: Option<&str>) -> anyhow::Result<i32> {
    let c = engine.store.find(key)?;
    let ports = if engine.root().join("networks").is_dir() {
        NetworkManager::open(engine.root())?.ports(c.id())?
    } else {
        Vec::new()
    };
    let host = |p: &netctl::PublishedPort| match p.host_ip {
        Some(ip) if ip.is_ipv6() => format!("[{ip}]:{}", p.host_port),
        Some(ip) => format!("{ip}:{}", p.host_port),
        None => format!("0.0.0.0:{}", p.host_port),
    };
    let Some(spec) = wanted else {
        for p in &ports {
            println!(
                "{}/{} -> {}",
                p.container_port,
                p.protocol.as_str(),
                host(p)
            );
        }
        return Ok(0);
    };
    let (num, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let num: u16 = num
        .parse()
        .with_context(|| format!("invalid port {spec:?}"))?;
    let matching: Vec<&netctl::PublishedPort> = ports
        .iter()
        .filter(|p| p.container_port == num && p.protocol.as_str() == proto)
        .collect();
    if matching.is_empty() {
        bail!(
            "no public port '{num}/{proto}' published for {}",
            c.config.name
        );
    }
    for p in matching {
        println!("{}", host(p));
    }
    Ok(0)
}
